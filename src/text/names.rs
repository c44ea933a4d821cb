//! Name lists and the name substitutions of stages 2, 3, 4d and 6.

use regex::Regex;

/// Unisex dummy names for the stage-2 interaction prompt (the first two are the ones the
/// acceptance rule looks for). None is an English word, so a generated word cannot be
/// mistaken for a name.
#[rustfmt::skip]
pub const DUMMY_NAMES: &[&str] = &[
    "Alex", "Bailey", "Charlie", "Dani", "Erin", "Finley", "Hayden", "Jordan", "Kendall",
    "Logan", "Morgan", "Peyton", "Quinn", "Riley", "Sasha", "Taylor", "Avery", "Casey",
    "Emerson", "Jamie",
];

/// The fixed names that replace `[NAME]` when pseudo-labelling (stage 6), cyclically.
#[rustfmt::skip]
pub const PSEUDO_LABEL_NAMES: &[&str] = &[
    "Adam", "Bob", "Cindy", "David", "Eliza", "Francis", "George", "Harold", "Ilana", "Jessica",
];

/// Common real first names (a unisex mix) for stage 3's random names and stage 1's person
/// gazetteer. Names that are also common English words (Will, Rose, Mark, May, Grace, …)
/// are left out: stage 3 checks names as word tokens and stage 1 must not read a month or
/// a verb as a person. Disjoint from `DUMMY_NAMES`, so replacing dummy names by real ones
/// can never chain.
#[rustfmt::skip]
pub const FIRST_NAMES: &[&str] = &[
    "Aaron", "Abigail", "Ada", "Adrian", "Agnes", "Aidan", "Aisha", "Alan", "Albert", "Alberto",
    "Alejandro", "Alexander", "Alfred", "Alice", "Alicia", "Alison", "Allison", "Alvin",
    "Amanda", "Amber", "Amelia", "Amy", "Ana", "Andre", "Andrea", "Andrew", "Angela", "Anita",
    "Ann", "Anna", "Anne", "Anthony", "Antonio", "Arthur", "Ashley", "Audrey", "Barbara",
    "Beatrice", "Benjamin", "Bernard", "Beth", "Betty", "Beverly", "Bianca", "Boris", "Brandon",
    "Brenda", "Brian", "Bruce", "Bruno", "Caleb", "Calvin", "Cameron", "Carl", "Carla",
    "Carlos", "Carmen", "Carol", "Caroline", "Catherine", "Cecilia", "Chad", "Charles",
    "Charlotte", "Chen", "Cheryl", "Chloe", "Christian", "Christina", "Christine",
    "Christopher", "Claire", "Clara", "Claude", "Colin", "Connor", "Craig", "Cynthia", "Daniel",
    "Daniela", "Darius", "Darren", "Deborah", "Denise", "Dennis", "Derek", "Diana", "Diane",
    "Diego", "Dmitri", "Dominic", "Donald", "Donna", "Doris", "Dorothy", "Douglas", "Dylan",
    "Edgar", "Edith", "Eduardo", "Edward", "Eileen", "Elena", "Eli", "Elijah", "Elizabeth",
    "Ella", "Ellen", "Emily", "Emma", "Emmanuel", "Eric", "Ethan", "Eugene", "Eva", "Evelyn",
    "Fatima", "Felix", "Fernando", "Fiona", "Florence", "Francesca", "Francisco", "Fred",
    "Gabriel", "Gabriela", "Gary", "Gavin", "Gerald", "Gina", "Giovanni", "Gloria", "Gordon",
    "Gregory", "Hannah", "Hans", "Harry", "Hassan", "Heather", "Helen", "Helena", "Henry",
    "Hiroshi", "Howard", "Hugo", "Ian", "Igor", "Ingrid", "Irene", "Isaac", "Isabel",
    "Isabella", "Ivan", "Jacob", "Jacqueline", "James", "Jane", "Janet", "Jason", "Javier",
    "Jean", "Jeffrey", "Jennifer", "Jeremy", "Jesse", "Joan", "Joanna", "Joe", "Joel", "John",
    "Jonathan", "Jorge", "Jose", "Joseph", "Joshua", "Joyce", "Juan", "Judith", "Julia",
    "Julian", "Julie", "Justin", "Karen", "Katherine", "Kathleen", "Keith", "Kenneth", "Kevin",
    "Kimberly", "Klaus", "Kyle", "Lara", "Laura", "Lauren", "Lawrence", "Leah", "Lena", "Leo",
    "Leon", "Leonardo", "Lillian", "Linda", "Lisa", "Lorenzo", "Louis", "Louise", "Lucas",
    "Lucia", "Lucy", "Luis", "Luke", "Lydia", "Madison", "Manuel", "Marco", "Margaret", "Maria",
    "Marie", "Marilyn", "Mario", "Martha", "Martin", "Mary", "Matthew", "Maurice", "Maya",
    "Megan", "Melissa", "Mia", "Michael", "Michelle", "Miguel", "Mikhail", "Miriam", "Mohammed",
    "Monica", "Nadia", "Nancy", "Naomi", "Natalie", "Nathan", "Nicholas", "Nicole", "Nina",
    "Noah", "Olga", "Oliver", "Olivia", "Omar", "Oscar", "Pablo", "Pamela", "Patricia",
    "Patrick", "Paul", "Paula", "Pedro", "Peter", "Philip", "Priya", "Rachel", "Rafael",
    "Rahul", "Ralph", "Raymond", "Rebecca", "Regina", "Ricardo", "Richard", "Robert", "Roberto",
    "Roger", "Ronald", "Rosa", "Ruth", "Ryan", "Samantha", "Samuel", "Sandra", "Sara", "Sarah",
    "Scott", "Sean", "Sergei", "Sharon", "Sofia", "Sophie", "Stephanie", "Stephen", "Steven",
    "Susan", "Sylvia", "Tanya", "Teresa", "Thomas", "Timothy", "Tom", "Tony", "Valerie",
    "Vanessa", "Vera", "Veronica", "Victoria", "Vincent", "Walter", "Wayne", "Wei", "William",
    "Yuki", "Yusuf", "Zachary", "Zoe", "Adele", "Ahmed", "Ali", "Amir", "Anton", "Ben", "Dan",
    "Emil", "Erik", "Ivana", "Jim", "Kate", "Ken", "Lars", "Leila", "Maxine", "Rita", "Sam",
    "Tim",
];

fn word_regex(word: &str) -> Option<Regex> {
    Regex::new(&format!(r"\b{}\b", regex::escape(word))).ok()
}

/// Replaces each `[NAME]` by the next name of `names`, cycling when the seed has more
/// placeholders than names (the paper's `encode_names`). With no names the seed is kept.
pub fn fill_names(seed: &str, names: &[&str]) -> String {
    if names.is_empty() {
        return seed.to_string();
    }
    let mut out = String::with_capacity(seed.len() + 16);
    for (i, fragment) in seed.split("[NAME]").enumerate() {
        if i > 0 {
            out.push_str(names[(i - 1) % names.len()]);
        }
        out.push_str(fragment);
    }
    out
}

/// The names that `fill_names` would use for a seed, in order.
pub fn names_used(seed: &str, names: &[&str]) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let n = seed.matches("[NAME]").count();
    (0..n).map(|i| names[i % names.len()].to_string()).collect()
}

/// Each whole-word occurrence of one of `names` becomes `[NAME]` (longer names first, so a
/// name that extends another is masked whole).
pub fn mask_names(text: &str, names: &[&str]) -> String {
    let mut sorted: Vec<&str> = names.iter().copied().filter(|n| !n.is_empty()).collect();
    if sorted.is_empty() {
        return text.to_string();
    }
    sorted.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let alternation: Vec<String> = sorted.iter().map(|n| regex::escape(n)).collect();
    match Regex::new(&format!(r"\b(?:{})\b", alternation.join("|"))) {
        Ok(re) => re.replace_all(text, "[NAME]").into_owned(),
        Err(_) => text.to_string(),
    }
}

/// Stage 4d: each name, one after the other, `\bname\b` → `_`.
pub fn names_to_underscore(text: &str, names: &[&str]) -> String {
    let mut out = text.to_string();
    for name in names.iter().filter(|n| !n.is_empty()) {
        if let Some(re) = word_regex(name) {
            out = re.replace_all(&out, "_").into_owned();
        }
    }
    out
}

/// Whole-word occurrences of `word` in `text`.
pub fn count_word(text: &str, word: &str) -> usize {
    if word.is_empty() {
        return 0;
    }
    word_regex(word).map_or(0, |re| re.find_iter(text).count())
}

/// Word tokens in the manner of NLTK's `word_tokenize` as far as names are concerned:
/// punctuation is split off and a clitic `'s` becomes its own token, while hyphens and
/// inner apostrophes stay inside a word (`O'Neil`, `Jean-Paul`).
pub fn word_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for chunk in text.split_whitespace() {
        let mut current = String::new();
        let chars: Vec<char> = chunk.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let inner = i > 0
                && i + 1 < chars.len()
                && chars[i - 1].is_alphanumeric()
                && chars[i + 1].is_alphanumeric();
            if c.is_alphanumeric() || ((c == '-' || c == '\'' || c == '’') && inner) {
                current.push(c);
            } else {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                tokens.push(c.to_string());
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
    }
    // Split the possessive clitic the way NLTK does: `Adam's` → `Adam`, `'s`.
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        let lower = t.to_lowercase();
        let clitic = ["'s", "’s"]
            .iter()
            .find(|c| lower.ends_with(*c) && t.len() > c.len());
        match clitic {
            Some(c) => {
                let cut = t.len() - c.len();
                out.push(t[..cut].to_string());
                out.push(t[cut..].to_string());
            }
            None => out.push(t),
        }
    }
    out
}

/// Whether `name` is one of the word tokens of `text` (stage 3's acceptance test).
pub fn has_word_token(text: &str, name: &str) -> bool {
    word_tokens(text).iter().any(|t| t == name)
}

/// Whether `word` is in the stage-1 person gazetteer (any of the three lists).
pub fn is_known_first_name(word: &str) -> bool {
    FIRST_NAMES.contains(&word) || DUMMY_NAMES.contains(&word) || PSEUDO_LABEL_NAMES.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lists_have_the_required_members() {
        assert_eq!(
            &DUMMY_NAMES[..5],
            &["Alex", "Bailey", "Charlie", "Dani", "Erin"]
        );
        assert!(DUMMY_NAMES.len() >= 20);
        assert_eq!(PSEUDO_LABEL_NAMES.len(), 10);
        assert_eq!(PSEUDO_LABEL_NAMES[0], "Adam");
        assert_eq!(PSEUDO_LABEL_NAMES[9], "Jessica");
        let unique: HashSet<&str> = FIRST_NAMES.iter().copied().collect();
        assert!(unique.len() >= 290, "{}", unique.len());
    }

    #[test]
    fn first_names_exclude_dummy_names_and_common_words() {
        for n in DUMMY_NAMES {
            assert!(!FIRST_NAMES.contains(n), "{n}");
        }
        for w in [
            "Will", "Rose", "Mark", "May", "Grace", "June", "Bill", "Hope", "Faith",
        ] {
            assert!(!FIRST_NAMES.contains(&w), "{w}");
        }
        for n in FIRST_NAMES.iter().chain(DUMMY_NAMES) {
            assert!(
                !crate::text::lexicon::is_verb_form(&n.to_lowercase()),
                "{n}"
            );
        }
    }

    #[test]
    fn fill_names_in_order_and_cycles() {
        assert_eq!(
            fill_names("[NAME] shaking hands with [NAME]", DUMMY_NAMES),
            "Alex shaking hands with Bailey"
        );
        assert_eq!(fill_names("[NAME] [NAME] [NAME]", &["A", "B"]), "A B A");
        assert_eq!(fill_names("no names", &["A"]), "no names");
        assert_eq!(fill_names("[NAME] x", &[]), "[NAME] x");
        assert_eq!(
            names_used("[NAME] and [NAME]", &["A", "B", "C"]),
            vec!["A", "B"]
        );
    }

    #[test]
    fn mask_names_whole_words_only() {
        assert_eq!(
            mask_names("Alex hugs Bailey; Alexander watches", &["Alex", "Bailey"]),
            "[NAME] hugs [NAME]; Alexander watches"
        );
        assert_eq!(
            mask_names("Ann and Anna", &["Ann", "Anna"]),
            "[NAME] and [NAME]"
        );
        assert_eq!(mask_names("x", &[]), "x");
    }

    #[test]
    fn names_to_underscore_stage_4d() {
        assert_eq!(
            names_to_underscore("Maria hugging Tom's son and Tomas", &["Maria", "Tom"]),
            "_ hugging _'s son and Tomas"
        );
    }

    #[test]
    fn count_word_counts_whole_words() {
        assert_eq!(count_word("Alex and Alex, not Alexa", "Alex"), 2);
        assert_eq!(count_word("abc", ""), 0);
    }

    #[test]
    fn word_tokens_like_nltk() {
        assert_eq!(
            word_tokens("Adam's hat, Bob."),
            vec!["Adam", "'s", "hat", ",", "Bob", "."]
        );
        assert!(has_word_token("Jean-Paul met O'Neil", "O'Neil"));
        assert!(!has_word_token("Jean-Paul met O'Neil", "Jean"));
        assert!(has_word_token("(Cindy) laughs", "Cindy"));
        assert!(!has_word_token("Cindyville", "Cindy"));
    }
}
