//! The interaction inventory of the toy world and the long-tailed sampling of item types.
//!
//! Each type has a label in the paper's form and the ways a caption may state it. Forms are
//! written with `{A}` (the agent, drawn on the left before mirroring) and `{B}` (the other
//! person) and a one-letter prefix: `F` a finite clause, `S` a passive clause, `P` a
//! participle phrase (the Wikimedia Commons style, and the seed form stage 1 writes), `N` a
//! noun phrase. The first `P` form is the label with names in place of `_`, so that a
//! caption stating the interaction plainly parses back to the true label.

use rand::Rng;

pub struct Interaction {
    pub key: &'static str,
    pub label: &'static str,
    pub forms: &'static [&'static str],
}

impl Interaction {
    /// The second token of the label: what verb-level scores compare.
    pub fn verb(&self) -> &'static str {
        self.label.split(' ').nth(1).unwrap_or("")
    }

    /// Forms of one kind (`F`, `S`, `P` or `N`), without their prefix.
    pub fn forms_of(&self, kind: char) -> impl Iterator<Item = &'static str> + '_ {
        self.forms.iter().filter_map(move |f| {
            let mut c = f.chars();
            (c.next() == Some(kind) && c.next() == Some(':')).then(|| &f[2..])
        })
    }
}

macro_rules! it {
    ($key:literal, $label:literal, [$($f:literal),* $(,)?]) => {
        Interaction { key: $key, label: $label, forms: &[$($f),*] }
    };
}

/// In order of frequency: news photographs show handshakes far more often than fencing.
pub const INTERACTIONS: &[Interaction] = &[
    it!(
        "handshake",
        "_ shaking hands with _",
        [
            "P:{A} shaking hands with {B}",
            "P:{A} and {B} shaking hands",
            "F:{A} shakes hands with {B}",
            "F:{A} and {B} shake hands",
            "F:{A} greets {B} with a handshake",
            "F:{A} and {B} exchange a handshake",
            "N:the handshake between {A} and {B}",
            "S:{B} is greeted with a handshake by {A}"
        ]
    ),
    it!(
        "hug",
        "_ hugging _",
        [
            "P:{A} hugging {B}",
            "P:{A} and {B} hugging",
            "F:{A} hugs {B}",
            "F:{A} and {B} hug",
            "F:{A} gives {B} a hug",
            "F:{A} and {B} share a hug",
            "N:a hug between {A} and {B}",
            "S:{B} is hugged by {A}"
        ]
    ),
    it!(
        "plaque",
        "_ handing a plaque to _",
        [
            "P:{A} handing a plaque to {B}",
            "F:{A} hands a plaque to {B}",
            "F:{A} hands {B} a plaque",
            "F:{A} presents a plaque to {B}",
            "N:the presentation of a plaque to {B} by {A}",
            "S:{B} is handed a plaque by {A}",
            "S:{B} receives a plaque from {A}"
        ]
    ),
    it!(
        "kiss",
        "_ kissing _",
        [
            "P:{A} kissing {B}",
            "P:{A} and {B} kissing",
            "F:{A} kisses {B}",
            "F:{A} and {B} kiss",
            "F:{A} gives {B} a kiss",
            "N:a kiss between {A} and {B}",
            "S:{B} is kissed by {A}"
        ]
    ),
    it!(
        "highfive",
        "_ giving _ a high five",
        [
            "P:{A} giving {B} a high five",
            "F:{A} gives {B} a high five",
            "F:{A} high-fives {B}",
            "F:{A} and {B} exchange a high five",
            "N:a high five between {A} and {B}",
            "S:{B} gets a high five from {A}"
        ]
    ),
    it!(
        "trophy",
        "_ handing a trophy to _",
        [
            "P:{A} handing a trophy to {B}",
            "F:{A} hands a trophy to {B}",
            "F:{A} hands {B} the trophy",
            "F:{A} presents the trophy to {B}",
            "N:the trophy presentation to {B} by {A}",
            "S:{B} receives the trophy from {A}",
            "S:{B} is handed the trophy by {A}"
        ]
    ),
    it!(
        "interview",
        "_ interviewing _",
        [
            "P:{A} interviewing {B}",
            "F:{A} interviews {B}",
            "F:{A} holds a microphone to {B}",
            "N:an interview of {B} by {A}",
            "S:{B} is interviewed by {A}"
        ]
    ),
    it!(
        "dance",
        "_ dancing with _",
        [
            "P:{A} dancing with {B}",
            "P:{A} and {B} dancing",
            "F:{A} dances with {B}",
            "F:{A} and {B} dance",
            "F:{A} shares a dance with {B}",
            "N:a dance between {A} and {B}",
            "S:{B} is twirled by {A}"
        ]
    ),
    it!(
        "flowers",
        "_ handing flowers to _",
        [
            "P:{A} handing flowers to {B}",
            "F:{A} hands flowers to {B}",
            "F:{A} hands {B} a bouquet of flowers",
            "F:{A} presents flowers to {B}",
            "N:flowers for {B} from {A}",
            "S:{B} receives flowers from {A}"
        ]
    ),
    it!(
        "boxing",
        "_ boxing with _",
        [
            "P:{A} boxing with {B}",
            "P:{A} and {B} boxing",
            "F:{A} boxes with {B}",
            "F:{A} and {B} box",
            "F:{A} spars with {B} in the ring",
            "N:the boxing bout between {A} and {B}",
            "S:{B} is punched by {A}"
        ]
    ),
    it!(
        "tennis",
        "_ playing tennis with _",
        [
            "P:{A} playing tennis with {B}",
            "P:{A} and {B} playing tennis",
            "F:{A} plays tennis with {B}",
            "F:{A} and {B} play tennis",
            "N:a tennis match between {A} and {B}",
            "S:{B} returns a serve from {A}"
        ]
    ),
    it!(
        "salute",
        "_ saluting _",
        [
            "P:{A} saluting {B}",
            "F:{A} salutes {B}",
            "F:{A} gives {B} a salute",
            "N:a salute from {A} to {B}",
            "S:{B} is saluted by {A}"
        ]
    ),
    it!(
        "wrestling",
        "_ wrestling with _",
        [
            "P:{A} wrestling with {B}",
            "P:{A} and {B} wrestling",
            "F:{A} wrestles with {B}",
            "F:{A} and {B} wrestle",
            "N:the wrestling match between {A} and {B}",
            "S:{B} is pinned by {A}"
        ]
    ),
    it!(
        "holdhands",
        "_ holding hands with _",
        [
            "P:{A} holding hands with {B}",
            "P:{A} and {B} holding hands",
            "F:{A} holds hands with {B}",
            "F:{A} and {B} hold hands",
            "F:{A} walks hand in hand with {B}",
            "S:{B} is held by the hand by {A}"
        ]
    ),
    it!(
        "kick",
        "_ kicking a ball to _",
        [
            "P:{A} kicking a ball to {B}",
            "F:{A} kicks a ball to {B}",
            "F:{A} kicks the ball to {B}",
            "F:{A} passes the ball to {B}",
            "N:a pass from {A} to {B}",
            "S:{B} receives a ball kicked by {A}"
        ]
    ),
    it!(
        "throw",
        "_ throwing a ball to _",
        [
            "P:{A} throwing a ball to {B}",
            "F:{A} throws a ball to {B}",
            "F:{A} tosses the ball to {B}",
            "N:a throw from {A} to {B}",
            "S:{B} catches a ball thrown by {A}"
        ]
    ),
    it!(
        "bow",
        "_ bowing to _",
        [
            "P:{A} bowing to {B}",
            "F:{A} bows to {B}",
            "F:{A} greets {B} with a bow",
            "N:a bow from {A} to {B}",
            "S:{B} is greeted with a bow by {A}"
        ]
    ),
    it!(
        "toast",
        "_ clinking glasses with _",
        [
            "P:{A} clinking glasses with {B}",
            "P:{A} and {B} clinking glasses",
            "F:{A} clinks glasses with {B}",
            "F:{A} and {B} clink glasses",
            "F:{A} raises a glass with {B}",
            "N:a toast between {A} and {B}",
            "S:{B} is toasted by {A}"
        ]
    ),
    it!(
        "carry",
        "_ carrying _",
        [
            "P:{A} carrying {B}",
            "F:{A} carries {B}",
            "F:{A} lifts {B} into the air",
            "N:{B} in the arms of {A}",
            "S:{B} is carried by {A}"
        ]
    ),
    it!(
        "chess",
        "_ playing chess with _",
        [
            "P:{A} playing chess with {B}",
            "P:{A} and {B} playing chess",
            "F:{A} plays chess with {B}",
            "F:{A} and {B} play chess",
            "N:a chess game between {A} and {B}",
            "S:{B} is checkmated by {A}"
        ]
    ),
    it!(
        "wheelchair",
        "_ pushing _ in a wheelchair",
        [
            "P:{A} pushing {B} in a wheelchair",
            "F:{A} pushes {B} in a wheelchair",
            "N:a wheelchair ride for {B} with {A}",
            "S:{B} is pushed in a wheelchair by {A}"
        ]
    ),
    it!(
        "helpup",
        "_ helping _ up",
        [
            "P:{A} helping {B} up",
            "F:{A} helps {B} up",
            "F:{A} pulls {B} to his feet",
            "N:a helping hand from {A} to {B}",
            "S:{B} is helped up by {A}"
        ]
    ),
    it!(
        "lecture",
        "_ lecturing to _",
        [
            "P:{A} lecturing to {B}",
            "F:{A} lectures to {B}",
            "F:{A} gives a lecture to {B}",
            "N:a lecture by {A} for {B}",
            "S:{B} listens to a lecture by {A}"
        ]
    ),
    it!(
        "chase",
        "_ chasing _",
        [
            "P:{A} chasing {B}",
            "F:{A} chases {B}",
            "F:{A} runs after {B}",
            "N:a chase between {A} and {B}",
            "S:{B} is chased by {A}"
        ]
    ),
    it!(
        "propose",
        "_ proposing to _",
        [
            "P:{A} proposing to {B}",
            "F:{A} proposes to {B}",
            "F:{A} kneels and proposes to {B}",
            "N:the marriage proposal of {A} to {B}",
            "S:{B} accepts a proposal from {A}"
        ]
    ),
    it!(
        "piggyback",
        "_ giving _ a piggyback ride",
        [
            "P:{A} giving {B} a piggyback ride",
            "F:{A} gives {B} a piggyback ride",
            "N:a piggyback ride for {B} from {A}",
            "S:{B} rides on the back of {A}",
            "S:{B} gets a piggyback ride from {A}"
        ]
    ),
    it!(
        "umbrella",
        "_ holding an umbrella over _",
        [
            "P:{A} holding an umbrella over {B}",
            "F:{A} holds an umbrella over {B}",
            "F:{A} shelters {B} with an umbrella",
            "S:{B} is sheltered by an umbrella held by {A}"
        ]
    ),
    it!(
        "fencing",
        "_ fencing with _",
        [
            "P:{A} fencing with {B}",
            "P:{A} and {B} fencing",
            "F:{A} fences with {B}",
            "F:{A} and {B} fence",
            "N:a fencing bout between {A} and {B}",
            "S:{B} parries a thrust from {A}"
        ]
    ),
    it!(
        "swing",
        "_ pushing _ on a swing",
        [
            "P:{A} pushing {B} on a swing",
            "F:{A} pushes {B} on a swing",
            "S:{B} is pushed on a swing by {A}",
            "N:a swing ride for {B} with {A}"
        ]
    ),
    it!(
        "armwrestle",
        "_ arm-wrestling with _",
        [
            "P:{A} arm-wrestling with {B}",
            "P:{A} and {B} arm-wrestling",
            "F:{A} arm-wrestles with {B}",
            "F:{A} and {B} arm-wrestle",
            "N:an arm-wrestling match between {A} and {B}",
            "S:{B} is beaten at arm-wrestling by {A}"
        ]
    ),
];

/// Actions that news captions state between two people but that a picture does not show
/// (or shows as something else): the "unrelated action" captions and distractor seeds.
/// Pairs of (finite clause, participle phrase).
pub const UNRELATED: &[(&str, &str)] = &[
    ("{A} meets {B}", "{A} meeting {B}"),
    ("{A} poses with {B}", "{A} posing with {B}"),
    ("{A} speaks with {B}", "{A} speaking with {B}"),
    ("{A} congratulates {B}", "{A} congratulating {B}"),
    ("{A} welcomes {B}", "{A} welcoming {B}"),
    ("{A} thanks {B}", "{A} thanking {B}"),
    ("{A} talks to {B}", "{A} talking to {B}"),
    ("{A} listens to {B}", "{A} listening to {B}"),
    ("{A} waits for {B}", "{A} waiting for {B}"),
    ("{A} defeats {B}", "{A} defeating {B}"),
    (
        "{A} and {B} attend the opening ceremony",
        "{A} and {B} attending the opening ceremony",
    ),
    ("{A} visits {B}", "{A} visiting {B}"),
    (
        "{A} signs an agreement with {B}",
        "{A} signing an agreement with {B}",
    ),
    ("{A} jokes with {B}", "{A} joking with {B}"),
];

/// Zipf-like weights, exponent `s`, in table order.
pub fn zipf_weights(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|r| 1.0 / ((r + 1) as f64).powf(s)).collect()
}

/// Draws an index with probability proportional to `weights`.
pub fn sample_weighted<R: Rng>(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

/// The exponent of the label distribution: long-tailed like news, yet flat enough that
/// the most frequent label alone stays a weak baseline.
pub const ZIPF_S: f64 = 0.8;

pub fn kind_weights() -> Vec<f64> {
    zipf_weights(INTERACTIONS.len(), ZIPF_S)
}

pub fn verbs() -> Vec<&'static str> {
    let mut v: Vec<&str> = INTERACTIONS.iter().map(|i| i.verb()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The paper's strict label form, without a regex dependency.
pub fn is_strict_label(label: &str) -> bool {
    // ^_ [^ ]*ing [^_]*_[^_]*$
    let Some(rest) = label.strip_prefix("_ ") else {
        return false;
    };
    let Some(sp) = rest.find(' ') else {
        return false;
    };
    let (word, tail) = (&rest[..sp], &rest[sp + 1..]);
    word.ends_with("ing") && tail.matches('_').count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_strict_and_distinct() {
        assert!(INTERACTIONS.len() >= 24);
        let mut seen = std::collections::BTreeSet::new();
        for it in INTERACTIONS {
            assert!(is_strict_label(it.label), "{}", it.label);
            assert!(seen.insert(it.label), "duplicate {}", it.label);
            let first = it.forms_of('P').next().unwrap_or("");
            assert_eq!(first.replace("{A}", "_").replace("{B}", "_"), it.label);
            for f in it.forms {
                assert!(f.contains("{A}") && f.contains("{B}"), "{f}");
            }
        }
        assert!(
            verbs().len() < INTERACTIONS.len(),
            "some types must share a verb"
        );
    }

    #[test]
    fn strict_form_checker_matches_the_regex() {
        assert!(is_strict_label("_ giving _ a high five"));
        assert!(is_strict_label("_ helping _ up"));
        assert!(!is_strict_label("_ and _ shaking hands"));
        assert!(!is_strict_label("_ shaking hands with _ and _"));
        assert!(!is_strict_label("_ shakes hands with _"));
    }
}
