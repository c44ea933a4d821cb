//! Tokens and entities for the rule-based stage-1 extractor: a tokenizer that keeps
//! abbreviations and `[NAME]` whole, and a gazetteer-and-capitalisation tagger standing in
//! for spaCy's PERSON / DATE / GPE / ORG entities.

use crate::text::lexicon::{
    self, AUXILIARIES, CONJUNCTIONS, DETERMINERS, MONTHS, NON_NAME_CAPITALS, ORG_CUES, PERSON_CUES,
    PLACES, POSSESSIVES, PREPOSITIONS, PRONOUNS, TIME_WORDS, WEEKDAYS, is_in, is_in_lower,
};
use crate::text::names::is_known_first_name;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Byte offsets into the tokenized text.
    pub start: usize,
    pub end: usize,
}

/// The entity a token belongs to, as far as the extraction rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ent {
    None,
    /// Part of the person span with this index.
    Person(usize),
    /// DATE, TIME, GPE, LOC, FAC or ORG: arguments of these types are dropped.
    Dropped,
}

#[rustfmt::skip]
const ABBREVIATIONS: &[&str] = &[
    "Mr.", "Mrs.", "Ms.", "Dr.", "Jr.", "Sr.", "St.", "Sen.", "Rep.", "Gov.", "Gen.", "Lt.",
    "Col.", "Sgt.", "Capt.", "Prof.", "Rev.", "Jan.", "Feb.", "Aug.", "Sept.", "Sep.", "Oct.",
    "Nov.", "Dec.", "Inc.", "Corp.", "Co.", "Ltd.", "vs.", "No.", "Mt.", "Ft.",
];

#[rustfmt::skip]
const PLACE_PREFIXES: &[&str] = &[
    "St.", "Saint", "San", "Santa", "Los", "Las", "New", "El", "Fort", "Mount", "Mt.", "Lake",
    "Port", "North", "South", "East", "West", "Upper", "Lower", "Greater",
];

#[rustfmt::skip]
const NAME_PARTICLES: &[&str] = &[
    "de", "da", "del", "della", "der", "den", "van", "von", "bin", "al", "la", "le", "du",
    "dos", "di", "ibn",
];

/// Splits text into word and punctuation tokens. `[NAME]`, abbreviations (`Mr.`, `U.S.`),
/// initials (`J.`) and hyphenated or apostrophised words stay whole; a possessive `'s`
/// becomes its own token.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if text[byte_at(i)..].starts_with("[NAME]") {
            tokens.push(Token {
                text: "[NAME]".into(),
                start: byte_at(i),
                end: byte_at(i) + 6,
            });
            i += 6;
            continue;
        }
        let next_is_s = chars.get(i + 1).is_some_and(|n| n.1 == 's' || n.1 == 'S');
        let after_s_ends = chars.get(i + 2).is_none_or(|n| !n.1.is_alphanumeric());
        if (c == '\'' || c == '’') && next_is_s && after_s_ends && !tokens.is_empty() {
            tokens.push(Token {
                text: text[byte_at(i)..byte_at(i + 2)].to_string(),
                start: byte_at(i),
                end: byte_at(i + 2),
            });
            i += 2;
            continue;
        }
        if !c.is_alphanumeric() {
            let s = byte_at(i);
            tokens.push(Token {
                text: c.to_string(),
                start: s,
                end: byte_at(i + 1),
            });
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        while j < chars.len() {
            let d = chars[j].1;
            let next_alnum = chars.get(j + 1).is_some_and(|n| n.1.is_alphanumeric());
            if d.is_alphanumeric() || (matches!(d, '-' | '\'' | '’' | '.') && next_alnum) {
                j += 1;
            } else {
                break;
            }
        }
        let mut word = text[byte_at(start)..byte_at(j)].to_string();
        // A trailing period belongs to abbreviations and single-letter initials.
        if chars.get(j).is_some_and(|c| c.1 == '.') {
            let with_dot = format!("{word}.");
            let initial = word.chars().count() == 1 && word.chars().all(|c| c.is_uppercase());
            let dotted = word.contains('.');
            if is_in(ABBREVIATIONS, &with_dot) || initial || dotted {
                word = with_dot;
                j += 1;
            }
        }
        let (s, e) = (byte_at(start), byte_at(j));
        let lower = word.to_lowercase();
        let clitic = ["'s", "’s"]
            .iter()
            .find(|c| lower.ends_with(*c) && word.len() > c.len());
        match clitic {
            Some(cl) => {
                let cut = e - cl.len();
                tokens.push(Token {
                    text: text[s..cut].to_string(),
                    start: s,
                    end: cut,
                });
                tokens.push(Token {
                    text: text[cut..e].to_string(),
                    start: cut,
                    end: e,
                });
            }
            None => tokens.push(Token {
                text: word,
                start: s,
                end: e,
            }),
        }
        i = j;
    }
    tokens
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_uppercase()) && word.chars().any(|c| c.is_alphabetic())
}

fn is_year(word: &str) -> bool {
    word.len() == 4
        && word.chars().all(|c| c.is_ascii_digit())
        && (word.starts_with("19") || word.starts_with("20"))
}

/// Capitalised words that are function words or sentence adverbs, never names. A
/// capitalised verb form (`Mark`, `Will`, `Hope`) is a name inside a sentence and a verb
/// only where a sentence starts (`sentence_start`).
fn is_non_name_capital(word: &str, sentence_start: bool) -> bool {
    let lower = word.to_lowercase();
    let l = lower.as_str();
    is_in(DETERMINERS, l)
        || is_in(POSSESSIVES, l)
        || is_in(PREPOSITIONS, l)
        || is_in(PRONOUNS, l)
        || is_in(AUXILIARIES, l)
        || is_in(CONJUNCTIONS, l)
        || is_in(NON_NAME_CAPITALS, l)
        || (sentence_start && lexicon::is_verb_form(l) && !is_known_first_name(word))
}

/// Whether token `i` opens a sentence (or a quote, a parenthesis, a title after a colon).
fn starts_sentence(tokens: &[Token], i: usize) -> bool {
    i == 0
        || is_in(
            &[
                ".", "!", "?", ":", ";", "\"", "“", "‘", "(", "[", "—", "–", "-", "|",
            ],
            &tokens[i - 1].text,
        )
}

fn is_date_word(word: &str) -> bool {
    is_in(MONTHS, word) || is_in(WEEKDAYS, word) || is_year(word) || is_in(TIME_WORDS, word)
}

/// A person found in a token sequence: tokens `start..end`, the last one its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSpan {
    pub start: usize,
    pub end: usize,
}

/// Tags the tokens: person spans and the entity types whose arguments are dropped.
pub fn tag(tokens: &[Token]) -> (Vec<Ent>, Vec<PersonSpan>) {
    let n = tokens.len();
    let mut ents = vec![Ent::None; n];
    let mut persons: Vec<PersonSpan> = Vec::new();
    let mut single_candidates: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let t = tokens[i].text.as_str();
        if t == "[NAME]" {
            let mut e = i + 1;
            while e < n && tokens[e].text == "[NAME]" {
                e += 1;
            }
            persons.push(PersonSpan { start: i, end: e });
            i = e;
            continue;
        }
        if !is_capitalised(t) {
            if is_date_word(t) {
                ents[i] = Ent::Dropped;
            }
            i += 1;
            continue;
        }
        // A maximal run of capitalised words, name particles allowed inside.
        let mut e = i + 1;
        while e < n {
            let w = tokens[e].text.as_str();
            let particle = is_in(NAME_PARTICLES, w)
                && tokens.get(e + 1).is_some_and(|t| is_capitalised(&t.text));
            if (is_capitalised(w) && w != "[NAME]") || particle {
                e += 1;
            } else {
                break;
            }
        }
        // Leading titles make the rest a person; leading function words are dropped.
        let mut s = i;
        let mut cued = i > 0 && is_in_lower(PERSON_CUES, &tokens[i - 1].text);
        while s < e {
            let w = tokens[s].text.as_str();
            if is_in_lower(PERSON_CUES, w) && !is_known_first_name(w) {
                cued = true;
                s += 1;
            } else if is_non_name_capital(w, s == i && starts_sentence(tokens, s))
                && !is_date_word(w)
            {
                cued = false;
                s += 1;
            } else {
                break;
            }
        }
        if s < e {
            let words: Vec<&str> = tokens[s..e].iter().map(|t| t.text.as_str()).collect();
            let known_first = is_known_first_name(words[0]);
            // `Steven Hall`, `Michael Park`: a cue word as the surname of a known first
            // name or a titled person is a name; `Madison Square Garden` is not.
            let cue_is_surname = (known_first || cued)
                && (2..=3).contains(&words.len())
                && words[..words.len() - 1].iter().all(|w| !is_in(ORG_CUES, w));
            let org = words.iter().any(|w| is_in(ORG_CUES, w)) && !cue_is_surname;
            let all_places_or_dates = words.iter().all(|w| is_in(PLACES, w) || is_date_word(w));
            let after_the = s > 0 && tokens[s - 1].text.eq_ignore_ascii_case("the");
            // `in St. Louis`, `from Las Vegas`: an unknown name after a place preposition
            // or with a place prefix is a place.
            let place_prefix = is_in(PLACE_PREFIXES, words[0]);
            let prev = if s == i && s > 0 {
                tokens[s - 1].text.as_str()
            } else {
                ""
            };
            let after_place_prep = is_in(&["in", "at", "near", "outside", "inside"], prev);
            // After `from` and `of` a full name is as likely as a place (`a plaque from
            // Elin Nguyen`, `a portrait of Ana Liu`): a place needs a known place word.
            let after_from_of = is_in(&["from", "of"], prev)
                && (words.len() == 1 || words.iter().any(|w| is_in(PLACES, w)));
            let place_like =
                place_prefix || ((after_place_prep || after_from_of) && !cued && !known_first);
            let is_person = !org
                && !after_the
                && !place_like
                && (cued || known_first || (!all_places_or_dates && words.len() >= 2));
            if is_person {
                persons.push(PersonSpan { start: s, end: e });
            } else if !org && !after_the && !all_places_or_dates && words.len() == 1 {
                single_candidates.push((s, e));
            } else {
                ents[s..e].fill(Ent::Dropped);
            }
        }
        i = e;
    }
    // A lone capitalised word that repeats the surname of a person found elsewhere in the
    // caption is that person again; other lone capitalised words are places or bodies.
    for (s, e) in single_candidates {
        let w = tokens[s].text.as_str();
        let surname = persons
            .iter()
            .any(|p| p.end - p.start >= 2 && tokens[p.end - 1].text == w);
        if surname {
            persons.push(PersonSpan { start: s, end: e });
        } else {
            ents[s..e].fill(Ent::Dropped);
        }
    }
    // A day number beside a month (`July 23`, `23rd of July`) is part of the DATE.
    for i in 0..n {
        let t = tokens[i].text.as_str();
        let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let day = (1..=2).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && matches!(&t[digits.len()..], "" | "st" | "nd" | "rd" | "th");
        let month_at = |k: usize| tokens.get(k).is_some_and(|m| is_in(MONTHS, &m.text));
        let of_month = tokens.get(i + 1).is_some_and(|m| m.text == "of") && month_at(i + 2);
        if day && ((i > 0 && month_at(i - 1)) || month_at(i + 1) || of_month) {
            ents[i] = Ent::Dropped;
        }
    }
    persons.sort_by_key(|p| p.start);
    for (k, p) in persons.iter().enumerate() {
        ents[p.start..p.end].fill(Ent::Person(k));
    }
    (ents, persons)
}

/// Person mentions of a sentence as byte spans (`Coach Ann Lee` → the span of `Ann Lee`).
pub fn find_persons(sentence: &str) -> Vec<(usize, usize)> {
    let tokens = tokenize(sentence);
    let (_, persons) = tag(&tokens);
    persons
        .iter()
        .map(|p| (tokens[p.start].start, tokens[p.end - 1].end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    fn persons(s: &str) -> Vec<&str> {
        find_persons(s).into_iter().map(|(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn tokenizer_keeps_names_abbreviations_and_splits_possessives() {
        assert_eq!(
            texts("Mr. O'Neil's [NAME]'s hug."),
            vec!["Mr.", "O'Neil", "'s", "[NAME]", "'s", "hug", "."]
        );
        assert_eq!(
            texts("the U.S. team, J. Smith"),
            vec!["the", "U.S.", "team", ",", "J.", "Smith"]
        );
        assert_eq!(
            texts("high-fives (left)"),
            vec!["high-fives", "(", "left", ")"]
        );
    }

    #[test]
    fn surnames_that_look_like_places_verbs_or_bodies() {
        // A cue word as a known first name's surname; a verb form inside a sentence.
        assert_eq!(
            persons("Steven Hall talks to Michael Park and Mark Johnson."),
            vec!["Steven Hall", "Michael Park", "Mark Johnson"]
        );
        assert_eq!(persons("Mark the date."), Vec::<&str>::new());
        assert_eq!(persons("a concert at Carnegie Hall"), Vec::<&str>::new());
        assert_eq!(persons("at Madison Square Garden"), Vec::<&str>::new());
        // After `from`/`of` a full name is a person unless a place word says otherwise.
        assert_eq!(
            persons("a plaque from Elin Nguyen and a letter from New York"),
            vec!["Elin Nguyen"]
        );
        assert_eq!(
            persons("flights from Hong Kong to Oslo"),
            Vec::<&str>::new()
        );
        assert_eq!(persons("arriving in Elin Nguyen"), Vec::<&str>::new());
    }

    #[test]
    fn day_numbers_beside_months_are_dates() {
        let toks = tokenize("on July 23, 2000 and the 4th of July and 12 May and 7 times");
        let (ents, _) = tag(&toks);
        let at = |w: &str| ents[toks.iter().position(|t| t.text == w).unwrap()];
        assert_eq!(at("23"), Ent::Dropped);
        assert_eq!(at("4th"), Ent::Dropped);
        assert_eq!(at("12"), Ent::Dropped);
        assert_eq!(at("2000"), Ent::Dropped);
        assert_eq!(at("7"), Ent::None);
    }

    #[test]
    fn persons_by_gazetteer_title_and_shape() {
        assert_eq!(
            persons("John Smith shakes hands with Maria Lopez in Geneva"),
            vec!["John Smith", "Maria Lopez"]
        );
        assert_eq!(
            persons("Coach Ann Lee hugs Tom Brady"),
            vec!["Ann Lee", "Tom Brady"]
        );
        assert_eq!(
            persons("President Joe Biden greets Emmanuel Macron at the White House"),
            vec!["Joe Biden", "Emmanuel Macron"]
        );
        assert_eq!(
            persons("The coach Zed Quorra met Harvard University staff"),
            vec!["Zed Quorra"]
        );
        assert_eq!(
            persons("[NAME] and [NAME] shake hands"),
            vec!["[NAME]", "[NAME]"]
        );
        assert_eq!(
            persons("Ann Lee talks to reporters. Lee smiled"),
            vec!["Ann Lee", "Lee"]
        );
        assert_eq!(persons("In Paris on Monday, Geneva"), Vec::<&str>::new());
        assert_eq!(
            persons("Former Mayor Kofi Mensah visits"),
            vec!["Kofi Mensah"]
        );
        assert_eq!(
            persons("Ann Lee in St. Louis and Las Vegas, at Zed Quorra"),
            vec!["Ann Lee"]
        );
        assert_eq!(
            persons("dinner with Zed Quorra in Paris"),
            vec!["Zed Quorra"]
        );
    }

    #[test]
    fn dropped_entities_are_tagged() {
        let toks = tokenize("at the White House in Paris in May 2019 on Monday night");
        let (ents, _) = tag(&toks);
        let dropped: Vec<&str> = toks
            .iter()
            .zip(&ents)
            .filter(|(_, e)| **e == Ent::Dropped)
            .map(|(t, _)| t.text.as_str())
            .collect();
        assert_eq!(
            dropped,
            vec!["White", "House", "Paris", "May", "2019", "Monday", "night"]
        );
    }
}
