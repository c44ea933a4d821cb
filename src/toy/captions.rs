//! The caption grammar, shared by Who's Waldo captions (`[NAME]`), news photo captions (full
//! names), the pretraining corpus (first names) and the Waldo-and-Wenda `cc`/`coco` items
//! (generic nouns). A caption is planned with person slots `{A}` (agent), `{B}` (the other
//! person), `{C}` (a bystander in the picture) and `{D}` (someone not in it), then filled.

use super::lexicon::{self, pick};
use super::world::{INTERACTIONS, UNRELATED};
use rand::Rng;

#[derive(Clone, Debug)]
pub struct Plan {
    /// The caption with person slots.
    pub text: String,
    pub states_interaction: bool,
    /// What a rule-based parser would take the caption to state, in participle form with
    /// slots (`{A} shaking hands with {B}`); None when it states no two-person action.
    pub seed: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct PlanOpts {
    pub bystander: bool,
    pub agent_left: bool,
    /// Probability of a "(left)"/"(right)" marker after the first person.
    pub positional: f64,
    /// Probability that the caption does not state the interaction at all.
    pub silent: f64,
    /// Probability that it states an unrelated action instead.
    pub unrelated: f64,
}

impl PlanOpts {
    pub fn whos_waldo(bystander: bool, agent_left: bool) -> Self {
        PlanOpts {
            bystander,
            agent_left,
            positional: 0.08,
            silent: 0.15,
            unrelated: 0.10,
        }
    }
}

/// Picks a form of the interaction: finite clause, passive, participle or noun phrase.
pub fn pick_form<R: Rng>(rng: &mut R, kind: usize) -> (char, &'static str) {
    let it = &INTERACTIONS[kind];
    let x: f64 = rng.random();
    let want = if x < 0.34 {
        'P'
    } else if x < 0.72 {
        'F'
    } else if x < 0.87 {
        'S'
    } else {
        'N'
    };
    let forms: Vec<&str> = it.forms_of(want).collect();
    if forms.is_empty() {
        let f: Vec<&str> = it.forms_of('F').collect();
        return ('F', f[rng.random_range(0..f.len())]);
    }
    (want, forms[rng.random_range(0..forms.len())])
}

/// A participle seed of the interaction (what stage 1 would extract from a plain caption).
pub fn seed_form<R: Rng>(rng: &mut R, kind: usize) -> &'static str {
    let p: Vec<&str> = INTERACTIONS[kind].forms_of('P').collect();
    // The plain label form most of the time, its variants sometimes.
    if rng.random_bool(0.7) {
        p[0]
    } else {
        p[rng.random_range(0..p.len())]
    }
}

/// Inserts `ins` right after the first slot of `s` when `s` starts with a slot.
pub fn after_first_slot(s: &str, ins: &str) -> Option<String> {
    (s.starts_with('{') && s.len() >= 3).then(|| format!("{}{}{}", &s[..3], ins, &s[3..]))
}

fn first_slot(s: &str) -> Option<char> {
    s.strip_prefix('{').and_then(|r| r.chars().next())
}

pub fn plan<R: Rng>(rng: &mut R, kind: usize, o: &PlanOpts) -> Plan {
    let x: f64 = rng.random();
    let place = lexicon::place_phrase(rng);
    let date = lexicon::date_phrase(rng);
    let mut used_role = false;
    let (mut text, states, seed) = if x < o.silent {
        let t = match rng.random_range(0..5) {
            0 => format!("{{A}} and {{B}}{place}{date}."),
            1 => format!("{{A}} with {{B}}{place}{date}."),
            2 => format!(
                "{{A}} and {{B}} at the {}{date}.",
                pick(rng, lexicon::EVENTS)
            ),
            3 => {
                let (l, r) = if o.agent_left {
                    ("{A}", "{B}")
                } else {
                    ("{B}", "{A}")
                };
                format!("From left: {l} and {r}{place}{date}.")
            }
            _ => {
                used_role = true;
                let role = lexicon::role(rng);
                format!("{{A}}, {role}, and {{B}}{place}.")
            }
        };
        (t, false, None)
    } else if x < o.silent + o.unrelated {
        let (fin, part) = UNRELATED[rng.random_range(0..UNRELATED.len())];
        (
            format!("{fin}{place}{date}."),
            false,
            Some(part.to_string()),
        )
    } else {
        let (form, core) = pick_form(rng, kind);
        let mut core = core.to_string();
        if rng.random_bool(o.positional) {
            let left = match first_slot(&core) {
                Some('A') => o.agent_left,
                _ => !o.agent_left,
            };
            if let Some(c) = after_first_slot(&core, if left { " (left)" } else { " (right)" }) {
                core = c;
            }
        } else if form != 'N' && rng.random_bool(0.25) {
            let role = lexicon::role(rng);
            if let Some(c) = after_first_slot(&core, &format!(", {role},")) {
                core = c;
                used_role = true;
            }
        }
        if o.bystander && form != 'N' && rng.random_bool(0.35) {
            core.push_str(" as {C} looks on");
        }
        let seed = Some(seed_form(rng, kind).to_string());
        let t = match form {
            'P' if rng.random_bool(0.5) => format!("{core}{place}{date}"),
            _ => format!("{core}{place}{date}."),
        };
        (t, true, seed)
    };
    if rng.random_bool(0.25) {
        let extra = match rng.random_range(0..4) {
            0 if !used_role => {
                let role = lexicon::role(rng);
                format!("{{B}} is {role}.")
            }
            1 => format!("The two first met in {}.", lexicon::year(rng)),
            2 => "{D} also attended the event.".to_string(),
            _ => format!(
                "{{A}} won {} in {}.",
                pick(rng, lexicon::PRIZES),
                lexicon::year(rng)
            ),
        };
        if !text.ends_with('.') {
            text.push('.');
        }
        text.push(' ');
        text.push_str(&extra);
    }
    Plan {
        text,
        states_interaction: states,
        seed,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Filled {
    pub text: String,
    /// Person slot and the character spans of its mentions, in order of first mention.
    pub clusters: Vec<(char, Vec<[usize; 2]>)>,
}

/// Replaces the slots by names (character offsets are Unicode scalar counts, as Python's
/// string indices are) and capitalises the first letter.
pub fn fill(text: &str, name: &mut dyn FnMut(char) -> String) -> Filled {
    let mut out = String::new();
    let mut n_chars = 0usize;
    let mut clusters: Vec<(char, Vec<[usize; 2]>)> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let lit = &rest[..i];
        out.push_str(lit);
        n_chars += lit.chars().count();
        let tail = &rest[i..];
        let slot = tail.chars().nth(1).filter(|_| {
            tail[1..].starts_with(|c: char| c.is_ascii_uppercase()) && tail.get(2..3) == Some("}")
        });
        match slot {
            Some(c) => {
                let nm = name(c);
                let len = nm.chars().count();
                match clusters.iter_mut().find(|(k, _)| *k == c) {
                    Some((_, v)) => v.push([n_chars, n_chars + len]),
                    None => clusters.push((c, vec![[n_chars, n_chars + len]])),
                }
                out.push_str(&nm);
                n_chars += len;
                rest = &tail[3..];
            }
            None => {
                out.push('{');
                n_chars += 1;
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    if let Some(f) = out.chars().next().filter(|c| c.is_ascii_lowercase()) {
        out.replace_range(0..1, &f.to_ascii_uppercase().to_string());
    }
    Filled {
        text: out,
        clusters,
    }
}

/// The caption of a `cc` (Conceptual Captions: hypernyms, lower case, no final period) or
/// `coco` (a plain sentence about "a man", "a woman") Waldo-and-Wenda item.
pub fn generic_caption<R: Rng>(rng: &mut R, kind: usize, coco: bool) -> (String, bool) {
    const CC_NOUNS: &[&str] = &[
        "person",
        "actor",
        "politician",
        "footballer",
        "pop artist",
        "a man",
        "a woman",
        "a boy",
        "a girl",
        "athlete",
        "a fan",
        "business person",
    ];
    const COCO_NOUNS: &[&str] = &[
        "a man",
        "a woman",
        "a person",
        "a boy",
        "a girl",
        "a young man",
        "an older woman",
        "a child",
    ];
    const CC_PLACES: &[&str] = &[
        " during the premiere",
        " at the event",
        " in the city",
        " during a match",
        " at the wedding",
        " on the street",
        "",
    ];
    const COCO_PLACES: &[&str] = &[
        " in a room",
        " on a street",
        " in a park",
        " on a field",
        " next to a building",
        " in front of a crowd",
        "",
    ];
    let nouns = if coco { COCO_NOUNS } else { CC_NOUNS };
    let (a, b) = (pick(rng, nouns), pick(rng, nouns));
    let place = pick(rng, if coco { COCO_PLACES } else { CC_PLACES });
    let stated = !rng.random_bool(0.12);
    let core = if !stated {
        if coco {
            "{A} standing next to {B}".to_string()
        } else {
            "{A} and {B}".to_string()
        }
    } else if coco {
        let p: Vec<&str> = INTERACTIONS[kind].forms_of('P').collect();
        p[rng.random_range(0..p.len())].to_string()
    } else {
        let (_, f) = pick_form(rng, kind);
        f.to_string()
    };
    let filled = fill(&format!("{core}{place}"), &mut |c| {
        if c == 'A' {
            a.to_string()
        } else {
            b.to_string()
        }
    });
    let text = if coco {
        format!("{}.", filled.text)
    } else {
        filled.text.to_lowercase()
    };
    (text, stated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fill_records_spans_of_each_person() {
        let f = fill("the hug between {A} and {B}; {A} smiles.", &mut |_| {
            "[NAME]".to_string()
        });
        assert_eq!(f.text, "The hug between [NAME] and [NAME]; [NAME] smiles.");
        assert_eq!(f.clusters.len(), 2);
        for (_, spans) in &f.clusters {
            for s in spans {
                assert_eq!(&f.text[s[0]..s[1]], "[NAME]");
            }
        }
        assert_eq!(f.clusters[0].1.len(), 2);
    }

    #[test]
    fn plans_mention_both_people_and_fill_completely() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut silent = 0;
        for i in 0..2000 {
            let kind = i % INTERACTIONS.len();
            let p = plan(
                &mut rng,
                kind,
                &PlanOpts::whos_waldo(i % 3 == 0, i % 2 == 0),
            );
            assert!(
                p.text.contains("{A}") && p.text.contains("{B}"),
                "{}",
                p.text
            );
            let f = fill(&p.text, &mut |c| format!("N{c}"));
            assert!(!f.text.contains('{') && !f.text.contains('}'), "{}", f.text);
            if !p.states_interaction {
                silent += 1;
            }
        }
        assert!((300..700).contains(&silent), "{silent}");
    }
}
