//! An English verb lexicon with inflection, and the closed-class word lists that the
//! rule-based extractor and filters need in place of a tagger.

use std::collections::HashMap;
use std::sync::OnceLock;

const VERB_DATA: &str = include_str!("verbs.txt");

/// The five forms of a verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerbForms {
    pub base: &'static str,
    pub third_person: String,
    pub past: String,
    pub past_participle: String,
    pub ing: String,
}

struct Lexicon {
    verbs: Vec<VerbForms>,
    /// Any form → index into `verbs`.
    forms: HashMap<String, usize>,
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// Vowel letters of a word with `u` after `q` read as a consonant (quit, quiz) and `y`
/// read as a vowel only after a consonant.
fn vowel_mask(word: &str) -> Vec<bool> {
    let chars: Vec<char> = word.chars().collect();
    let mut mask = Vec::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        let v = match c {
            'u' if i > 0 && chars[i - 1] == 'q' => false,
            'y' => i > 0 && !is_vowel(chars[i - 1]),
            c => is_vowel(c),
        };
        mask.push(v);
    }
    mask
}

/// One-syllable consonant–vowel–consonant words double their last letter (shop →
/// shopping), except after w, x or y.
fn doubles_final(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    let n = chars.len();
    if n < 3 || !chars.iter().all(|c| c.is_ascii_lowercase()) {
        return false;
    }
    let mask = vowel_mask(word);
    let last = chars[n - 1];
    if mask[n - 1] || matches!(last, 'w' | 'x' | 'y') || !mask[n - 2] || mask[n - 3] {
        return false;
    }
    let groups = mask
        .iter()
        .enumerate()
        .filter(|&(i, &v)| v && (i == 0 || !mask[i - 1]))
        .count();
    groups == 1
}

fn ends_consonant_y(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    chars.len() >= 2 && chars[chars.len() - 1] == 'y' && !is_vowel(chars[chars.len() - 2])
}

fn ends_consonant_e(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    chars.len() >= 2
        && chars[chars.len() - 1] == 'e'
        && !is_vowel(chars[chars.len() - 2])
        && chars[chars.len() - 2] != 'y'
}

fn double_last(word: &str) -> String {
    let mut s = word.to_string();
    if let Some(c) = word.chars().last() {
        s.push(c);
    }
    s
}

fn regular_third_person(base: &str) -> String {
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| base.ends_with(e))
    {
        format!("{base}es")
    } else if ends_consonant_y(base) {
        format!("{}ies", &base[..base.len() - 1])
    } else {
        format!("{base}s")
    }
}

fn regular_past(base: &str, double: bool) -> String {
    if base.ends_with('e') {
        format!("{base}d")
    } else if ends_consonant_y(base) {
        format!("{}ied", &base[..base.len() - 1])
    } else if double || doubles_final(base) {
        format!("{}ed", double_last(base))
    } else {
        format!("{base}ed")
    }
}

fn regular_ing(base: &str, double: bool) -> String {
    if base.ends_with("ie") && base.len() > 2 {
        format!("{}ying", &base[..base.len() - 2])
    } else if base == "be" || ["ee", "ye", "oe"].iter().any(|e| base.ends_with(e)) {
        format!("{base}ing")
    } else if ends_consonant_e(base) || base.ends_with("ue") && base.len() > 3 {
        format!("{}ing", &base[..base.len() - 1])
    } else if double || doubles_final(base) {
        format!("{}ing", double_last(base))
    } else {
        format!("{base}ing")
    }
}

fn parse_line(line: &'static str) -> Option<VerbForms> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let fields: Vec<&'static str> = line.split_whitespace().collect();
    let base = fields[0];
    let double = fields.get(1) == Some(&"+");
    let regular = |double: bool| VerbForms {
        base,
        third_person: regular_third_person(base),
        past: regular_past(base, double),
        past_participle: regular_past(base, double),
        ing: regular_ing(base, double),
    };
    Some(match fields.len() {
        3 => VerbForms {
            past: fields[1].to_string(),
            past_participle: fields[2].to_string(),
            ..regular(false)
        },
        5 => VerbForms {
            base,
            third_person: fields[1].to_string(),
            past: fields[2].to_string(),
            past_participle: fields[3].to_string(),
            ing: fields[4].to_string(),
        },
        _ => regular(double),
    })
}

fn lexicon() -> &'static Lexicon {
    static LEX: OnceLock<Lexicon> = OnceLock::new();
    LEX.get_or_init(|| {
        let mut verbs: Vec<VerbForms> = Vec::new();
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for v in VERB_DATA.lines().filter_map(parse_line) {
            if seen.insert(v.base, ()).is_none() {
                verbs.push(v);
            }
        }
        // Bases take precedence over inflected forms of other verbs (`lay` is its own
        // lemma, not only the past of `lie`), irregular forms over regular ones.
        let mut forms: HashMap<String, usize> = HashMap::new();
        for (i, v) in verbs.iter().enumerate() {
            forms.entry(v.base.to_string()).or_insert(i);
        }
        for (i, v) in verbs.iter().enumerate() {
            for f in [&v.past, &v.past_participle, &v.third_person, &v.ing] {
                forms.entry(f.clone()).or_insert(i);
            }
        }
        // The other forms of `be` that the table's five columns cannot hold.
        if let Some(&be) = forms.get("be") {
            for f in ["am", "are", "were", "'m", "'re"] {
                forms.entry(f.to_string()).or_insert(be);
            }
        }
        Lexicon { verbs, forms }
    })
}

/// The base form of any known verb form (`shook` → `shake`, `hugging` → `hug`).
/// Lower-case input is expected; other input is lower-cased first.
pub fn lemma_of(word: &str) -> Option<&'static str> {
    let lex = lexicon();
    let idx = match lex.forms.get(word) {
        Some(&i) => i,
        None => *lex.forms.get(&word.to_lowercase())?,
    };
    Some(lex.verbs[idx].base)
}

/// All forms of a known base verb.
pub fn forms_of(base: &str) -> Option<&'static VerbForms> {
    let lex = lexicon();
    lex.verbs.iter().find(|v| v.base == base)
}

/// The `-ing` form of a base verb: the lexicon's form when known, else the regular
/// spelling rules (e-drop, -ie → -ying, doubling of one-syllable CVC words).
pub fn ing_form(base: &str) -> String {
    match forms_of(base) {
        Some(v) => v.ing.clone(),
        None => regular_ing(base, false),
    }
}

/// Whether `word` is a form of a known verb.
pub fn is_verb_form(word: &str) -> bool {
    lemma_of(word).is_some()
}

/// Number of verbs in the lexicon.
pub fn verb_count() -> usize {
    lexicon().verbs.len()
}

#[rustfmt::skip]
pub const PREPOSITIONS: &[&str] = &[
    "about", "above", "across", "after", "against", "along", "alongside", "amid", "amidst",
    "among", "around", "as", "at", "before", "behind", "below", "beneath", "beside", "besides",
    "between", "beyond", "by", "despite", "down", "during", "except", "following", "for",
    "from", "in", "inside", "into", "like", "near", "of", "off", "on", "onto", "opposite",
    "out", "outside", "over", "past", "per", "since", "through", "throughout", "till", "to",
    "toward", "towards", "under", "underneath", "until", "up", "upon", "via", "with", "within",
    "without",
];

/// Particles that follow a verb without an object of their own (`picking up`).
pub const PARTICLES: &[&str] = &["up", "down", "out", "off", "away", "back"];

#[rustfmt::skip]
pub const DETERMINERS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "each", "every", "some", "any", "no",
    "another", "both", "either", "neither", "all", "several", "many", "few", "much", "more",
    "most", "such",
];

pub const POSSESSIVES: &[&str] = &["my", "your", "his", "her", "its", "our", "their"];

#[rustfmt::skip]
pub const PRONOUNS: &[&str] = &[
    "i", "me", "you", "he", "him", "she", "her", "it", "we", "us", "they", "them", "myself",
    "yourself", "himself", "herself", "itself", "ourselves", "themselves", "who", "whom",
    "whose", "which", "what", "someone", "somebody", "everyone", "everybody", "anyone",
    "nobody", "one", "each other", "mine", "yours", "hers", "ours", "theirs",
];

#[rustfmt::skip]
pub const AUXILIARIES: &[&str] = &[
    "be", "am", "is", "are", "was", "were", "been", "being", "have", "has", "had", "having",
    "do", "does", "did", "will", "would", "shall", "should", "can", "could", "may", "might",
    "must", "'s", "'re", "'ve", "'ll", "'d",
];

#[rustfmt::skip]
pub const CONJUNCTIONS: &[&str] = &[
    "and", "or", "but", "nor", "yet", "so", "&", "while", "whereas", "because", "although",
    "though", "as", "when", "whenever", "where", "if", "unless", "that", "than", "after",
    "before", "since", "until",
];

/// Subordinators and relative words that open a new clause.
#[rustfmt::skip]
pub const CLAUSE_OPENERS: &[&str] = &[
    "while", "whereas", "because", "although", "though", "when", "whenever", "where", "if",
    "unless", "that", "who", "whom", "which", "whose", "as", "after", "before", "since",
    "until", "during",
];

#[rustfmt::skip]
pub const MONTHS: &[&str] = &[
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December", "Jan.", "Feb.", "Aug.", "Sept.", "Sep.", "Oct.", "Nov.",
    "Dec.",
];

pub const WEEKDAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Lower-case words that make a DATE or TIME phrase (`last week`, `Monday night`).
#[rustfmt::skip]
pub const TIME_WORDS: &[&str] = &[
    "today", "yesterday", "tomorrow", "tonight", "morning", "afternoon", "evening", "night",
    "week", "weekend", "month", "year", "season", "decade", "century", "day", "days", "weeks",
    "months", "years", "hour", "hours", "minute", "minutes", "noon", "midnight", "earlier",
    "later", "ago", "time", "times",
];

/// Capitalised words that make a span an organisation or facility rather than a person.
#[rustfmt::skip]
pub const ORG_CUES: &[&str] = &[
    "University", "College", "School", "Academy", "Institute", "Party", "House", "Senate",
    "Congress", "Parliament", "Council", "Ministry", "Department", "Office", "Agency",
    "Committee", "Commission", "Court", "Club", "FC", "United", "City", "Company", "Corp",
    "Corp.", "Inc", "Inc.", "Ltd", "Group", "Association", "Federation", "League", "Union",
    "Bank", "Foundation", "Center", "Centre", "Hospital", "Museum", "Stadium", "Arena", "Hall",
    "Church", "Cathedral", "Palace", "Airport", "Station", "Square", "Street", "Avenue", "Road",
    "Park", "Hotel", "Theatre", "Theater", "Festival", "Games", "Cup", "Championship",
    "Championships", "Olympics", "Open", "Summit", "Forum", "Army", "Navy", "Police", "Times",
    "News", "Post", "Journal", "Reuters", "Press", "Images", "Getty", "AP", "AFP", "EPA",
    "NATO", "UN", "EU", "NBA", "NFL", "FIFA", "UEFA", "Republicans", "Democrats", "Republican",
    "Democratic", "Labour", "Conservative", "Conservatives", "Assembly", "Cabinet", "Kremlin",
    "Pentagon", "Vatican", "Capitol", "Embassy",
];

/// Place names (GPE and LOC) a news caption commonly holds.
#[rustfmt::skip]
pub const PLACES: &[&str] = &[
    "Afghanistan", "Africa", "America", "Argentina", "Asia", "Athens", "Australia", "Austria",
    "Baghdad", "Beijing", "Belgium", "Berlin", "Boston", "Brazil", "Britain", "Brussels",
    "Cairo", "California", "Canada", "Chicago", "Chile", "China", "Colombia", "Cuba", "Delhi",
    "Denmark", "Dubai", "Egypt", "England", "Europe", "Finland", "Florida", "France", "Geneva",
    "Germany", "Greece", "Havana", "Hollywood", "Houston", "India", "Indonesia", "Iran", "Iraq",
    "Ireland", "Israel", "Istanbul", "Italy", "Japan", "Jerusalem", "Kabul", "Kenya", "Kiev",
    "Kyiv", "Korea", "Lagos", "Lebanon", "Lisbon", "London", "Madrid", "Manchester", "Mexico",
    "Miami", "Milan", "Moscow", "Mumbai", "Munich", "Nairobi", "Netherlands", "Nigeria",
    "Norway", "Oslo", "Ottawa", "Pakistan", "Paris", "Peru", "Poland", "Portugal", "Prague",
    "Qatar", "Rome", "Russia", "Scotland", "Seoul", "Shanghai", "Singapore", "Spain",
    "Stockholm", "Sweden", "Switzerland", "Sydney", "Syria", "Taiwan", "Texas", "Tokyo",
    "Toronto", "Turkey", "Ukraine", "Venezuela", "Vienna", "Vietnam", "Wales", "Warsaw",
    "Washington", "York", "Zurich", "U.S.", "US", "USA", "UK", "U.K.", "Ohio", "Georgia",
    "Virginia", "Carolina", "Jersey", "Arizona", "Michigan", "Iowa", "Ontario", "Quebec",
    "Bavaria", "Gaza", "Crimea", "Tehran", "Riyadh", "Saudi", "Arabia", "Emirates", "Zealand",
    "Philippines", "Thailand", "Malaysia", "Sudan", "Ethiopia", "Ghana", "Morocco", "Tunisia",
    "Libya", "Yemen", "Jordan", "Manila", "Bangkok", "Hanoi", "Caracas", "Bogota", "Lima",
    "Santiago",
    // Words of multi-word places, so that `from Hong Kong` is not read as a person.
    "Hong", "Kong", "Buenos", "Aires", "Angeles", "Francisco", "Kuala", "Lumpur", "Aviv",
    "Dhabi", "Janeiro", "Paulo", "Lanka", "Sri", "Vegas", "Orleans", "Zealand",
];

/// Titles and roles that mark the capitalised words after them as a person's name.
#[rustfmt::skip]
pub const PERSON_CUES: &[&str] = &[
    "president", "vice", "prime", "minister", "senator", "sen.", "rep.", "representative",
    "gov.", "governor", "mayor", "mr.", "mrs.", "ms.", "miss", "dr.", "prof.", "professor",
    "coach", "manager", "captain", "capt.", "gen.", "general", "col.", "colonel", "lt.", "sgt.",
    "sergeant", "king", "queen", "prince", "princess", "pope", "chancellor", "secretary",
    "judge", "justice", "ceo", "chairman", "chairwoman", "chair", "director", "actor",
    "actress", "singer", "rapper", "star", "striker", "goalkeeper", "quarterback", "player",
    "teammate", "wife", "husband", "son", "daughter", "brother", "sister", "mother", "father",
    "friend", "defender", "midfielder", "forward", "pitcher", "driver", "champion", "boxer",
    "wrestler", "rev.", "reverend", "sir", "lady", "lord", "dame", "officer", "detective",
    "sheriff", "chief", "leader", "candidate", "nominee", "speaker", "cardinal", "bishop",
    "archbishop", "ambassador", "envoy", "deputy", "commissioner", "founder", "author",
    "artist", "designer", "model", "comedian", "host", "presenter", "coach", "skipper",
    "winger", "batsman", "bowler", "guitarist", "drummer", "dancer", "chef", "emperor",
    "empress", "duke", "duchess", "sheikh", "premier", "councillor", "councilman",
    "councilwoman", "lawmaker", "congressman", "congresswoman", "jr.", "sr.",
];

/// Capitalised words that may open a sentence or a title and are never part of a name.
#[rustfmt::skip]
pub const NON_NAME_CAPITALS: &[&str] = &[
    "former", "late", "then", "incoming", "outgoing", "acting", "new", "newly", "elected",
    "first", "here", "there", "file", "pictured", "photo", "image", "caption", "left", "right",
    "center", "centre", "above", "below", "top", "bottom", "also", "meanwhile",
];

pub fn is_in(list: &[&str], word: &str) -> bool {
    list.contains(&word)
}

/// Case-insensitive membership for the lower-case lists.
pub fn is_in_lower(list: &[&str], word: &str) -> bool {
    let lower = word.to_lowercase();
    list.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_is_large_with_many_irregulars() {
        assert!(verb_count() >= 500, "{}", verb_count());
        let irregular = lexicon()
            .verbs
            .iter()
            .filter(|v| {
                v.past != regular_past(v.base, false) || v.ing != regular_ing(v.base, false)
            })
            .count();
        assert!(irregular >= 150, "{irregular}");
    }

    #[test]
    fn regular_spelling_rules() {
        assert_eq!(ing_form("shop"), "shopping");
        assert_eq!(ing_form("shake"), "shaking");
        assert_eq!(ing_form("tie"), "tying");
        assert_eq!(ing_form("die"), "dying");
        assert_eq!(ing_form("see"), "seeing");
        assert_eq!(ing_form("hug"), "hugging");
        assert_eq!(ing_form("greet"), "greeting");
        assert_eq!(ing_form("visit"), "visiting");
        assert_eq!(ing_form("open"), "opening");
        assert_eq!(ing_form("box"), "boxing");
        assert_eq!(ing_form("bow"), "bowing");
        assert_eq!(ing_form("play"), "playing");
        assert_eq!(ing_form("admit"), "admitting");
        assert_eq!(ing_form("high-five"), "high-fiving");
        assert_eq!(ing_form("argue"), "arguing");
        assert_eq!(ing_form("be"), "being");
        assert_eq!(ing_form("panic"), "panicking");
        assert_eq!(ing_form("quiz"), "quizzing");
        assert_eq!(ing_form("quit"), "quitting");
        assert_eq!(ing_form("dye"), "dyeing");
        // Unknown verbs follow the same rules.
        assert_eq!(ing_form("blorp"), "blorping");
        assert_eq!(ing_form("zate"), "zating");
        let f = forms_of("carry").map(|v| (v.third_person.clone(), v.past.clone()));
        assert_eq!(f, Some(("carries".to_string(), "carried".to_string())));
        let f = forms_of("kiss").map(|v| (v.third_person.clone(), v.past.clone()));
        assert_eq!(f, Some(("kisses".to_string(), "kissed".to_string())));
        let f = forms_of("stop").map(|v| v.past.clone());
        assert_eq!(f.as_deref(), Some("stopped"));
        let f = forms_of("agree").map(|v| (v.past.clone(), v.ing.clone()));
        assert_eq!(f, Some(("agreed".to_string(), "agreeing".to_string())));
    }

    #[test]
    fn lemmas_of_inflected_forms() {
        for (form, base) in [
            ("shook", "shake"),
            ("shaken", "shake"),
            ("shakes", "shake"),
            ("hugging", "hug"),
            ("hugged", "hug"),
            ("greets", "greet"),
            ("gave", "give"),
            ("handed", "hand"),
            ("is", "be"),
            ("were", "be"),
            ("met", "meet"),
            ("left", "leave"),
            ("lay", "lay"),
            ("lying", "lie"),
            ("carried", "carry"),
            ("high-fived", "high-five"),
            ("went", "go"),
            ("does", "do"),
            ("spoke", "speak"),
            ("taught", "teach"),
            ("fought", "fight"),
            ("held", "hold"),
            ("led", "lead"),
            ("congratulates", "congratulate"),
        ] {
            assert_eq!(lemma_of(form), Some(base), "{form}");
        }
        assert_eq!(lemma_of("Shakes"), Some("shake"));
        assert_eq!(lemma_of("summit"), None);
        assert!(is_verb_form("wrestling"));
        assert!(!is_verb_form("during"));
    }

    #[test]
    fn every_interaction_verb_of_the_brief_is_known() {
        for v in [
            "shake",
            "hug",
            "greet",
            "kiss",
            "embrace",
            "hand",
            "give",
            "present",
            "award",
            "congratulate",
            "talk",
            "speak",
            "chat",
            "interview",
            "lecture",
            "teach",
            "fight",
            "box",
            "wrestle",
            "tackle",
            "push",
            "pull",
            "carry",
            "lift",
            "dance",
            "play",
            "pass",
            "throw",
            "kick",
            "feed",
            "help",
            "comfort",
            "console",
            "meet",
            "welcome",
            "applaud",
            "high-five",
            "salute",
            "toast",
            "argue",
            "debate",
            "sign",
            "photograph",
            "follow",
            "chase",
            "escort",
            "guide",
            "lead",
            "hold",
            "pat",
            "touch",
            "point",
            "wave",
            "bow",
            "arrest",
        ] {
            assert!(forms_of(v).is_some(), "{v}");
        }
    }

    #[test]
    fn closed_class_lists() {
        assert!(is_in(PREPOSITIONS, "with"));
        assert!(is_in(DETERMINERS, "the"));
        assert!(is_in(PRONOUNS, "they"));
        assert!(is_in(AUXILIARIES, "was"));
        assert!(is_in(CONJUNCTIONS, "and"));
        assert!(is_in(MONTHS, "May"));
        assert!(is_in(WEEKDAYS, "Monday"));
        assert!(is_in(ORG_CUES, "University"));
        assert!(is_in(PLACES, "Geneva"));
        assert!(is_in_lower(PERSON_CUES, "President"));
    }
}
