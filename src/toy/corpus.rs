//! The text corpora: CC-News-style articles (ordinary sentences plus photo-caption lines
//! with the markers stage 1 looks for) and web-like pretraining documents in which
//! picture descriptions sit next to their captions, so a small LM learns both prompts of
//! stages 2 and 3.

use super::captions::{self, PlanOpts};
use super::lexicon::{self, pick};
use super::world::{self, INTERACTIONS, UNRELATED};
use rand::Rng;

/// Dummy names of the stage-2 prompt, in the order names are replaced.
pub const DUMMY: [&str; 2] = ["Alex", "Bailey"];

#[derive(Clone, Debug, Default)]
pub struct NewsStats {
    pub lines: usize,
    pub caption_lines: usize,
    pub interaction_caption_lines: usize,
}

const FILLER: &[&str] = &[
    "The {city} council voted on {weekday} to approve a new budget for the coming year.",
    "Officials said the project would cost about {n} million dollars.",
    "{name} told reporters that the talks had been productive.",
    "Tickets for the {event} go on sale in {month}.",
    "The {event} drew more than {n} thousand visitors last year.",
    "Police said no one was injured.",
    "The company reported a profit of {n} million in the third quarter.",
    "Rain is expected across {city} for most of the week.",
    "{name}, who has led the group since {year}, will step down in {month}.",
    "The agreement still needs to be approved by parliament.",
    "Organisers expect the {event} to return next year.",
    "Critics say the plan does not go far enough.",
    "{name} scored twice as {city} beat {city} 3-1.",
    "The museum will reopen to the public in {month}.",
    "Shares in the firm rose {n} percent in early trading.",
    "{name} said the decision was made after months of discussion.",
    "A spokesman for the ministry declined to comment.",
    "The new bridge is expected to open in {year}.",
    "Residents of {city} have complained about the noise for years.",
    "The match was delayed by an hour because of heavy rain.",
    "{name} will travel to {city} next week for further talks.",
    "Schools in the region will remain closed until {weekday}.",
];

const SOLO_CAPTIONS: &[&str] = &[
    "{A} speaks at a rally in {city}",
    "{A} arrives at {venue} in {city}",
    "{A} waves to supporters{date}",
    "{A} looks on during the {event} in {city}",
    "{A} poses for photographers at {venue}",
    "{A} addresses the media in {city}{date}",
    "{A} celebrates after winning {prize}",
];

fn fill_misc<R: Rng>(rng: &mut R, s: &str) -> String {
    let mut out = lexicon::fill_slots(rng, s);
    for (slot, f) in [
        ("{weekday}", 0),
        ("{month}", 1),
        ("{event}", 2),
        ("{venue}", 3),
        ("{year}", 4),
        ("{n}", 5),
        ("{name}", 6),
        ("{date}", 7),
        ("{prize}", 8),
    ] {
        while let Some(i) = out.find(slot) {
            let v = match f {
                0 => pick(rng, lexicon::WEEKDAYS).to_string(),
                1 => pick(rng, lexicon::MONTHS).to_string(),
                2 => pick(rng, lexicon::EVENTS).to_string(),
                3 => pick(rng, lexicon::VENUES).to_string(),
                4 => lexicon::year(rng).to_string(),
                5 => rng.random_range(2..90).to_string(),
                6 => lexicon::full_name(rng),
                7 => lexicon::date_phrase(rng),
                _ => pick(rng, lexicon::PRIZES).to_string(),
            };
            out.replace_range(i..i + slot.len(), &v);
        }
    }
    out
}

/// A person as news names them: first and last name, sometimes with a title.
fn news_name<R: Rng>(rng: &mut R) -> String {
    let n = lexicon::full_name(rng);
    if rng.random_bool(0.22) {
        format!("{} {n}", pick(rng, lexicon::TITLES))
    } else {
        n
    }
}

fn credit<R: Rng>(rng: &mut R) -> (String, String) {
    let who = lexicon::full_name(rng);
    let agency = pick(rng, lexicon::AGENCIES);
    match rng.random_range(0..6) {
        0 => (String::new(), format!(" (AP Photo/{who})")),
        1 => (String::new(), format!(" Photo: {agency}")),
        2 => (String::new(), format!(" (Photo by {who}/{agency})")),
        3 => (String::new(), " (Getty Images)".to_string()),
        4 => (
            format!("Image copyright {agency} Image caption "),
            String::new(),
        ),
        _ => (String::new(), String::new()),
    }
}

/// One photo-caption line, and whether it states an interaction of the world.
fn caption_line<R: Rng>(rng: &mut R, weights: &[f64]) -> (String, bool) {
    let (mut text, states) = if rng.random_bool(0.22) {
        let s = {
            let t = pick(rng, SOLO_CAPTIONS);
            fill_misc(rng, t)
        };
        (s.replace("{B}", "{A}"), false)
    } else {
        let kind = world::sample_weighted(rng, weights);
        let o = PlanOpts {
            bystander: rng.random_bool(0.2),
            agent_left: true,
            positional: 0.0,
            silent: 0.0,
            unrelated: 0.15,
        };
        let p = captions::plan(rng, kind, &o);
        (p.text, p.states_interaction)
    };
    let marker = match rng.random_range(0..5) {
        0 => " (left)",
        1 => " (right)",
        2 => " (center)",
        3 => ", pictured,",
        _ => "",
    };
    let (pre, mut post) = credit(rng);
    let mut marked = !pre.is_empty() || !post.is_empty();
    if let Some(t) = captions::after_first_slot(&text, marker).filter(|_| !marker.is_empty()) {
        // ", pictured," before a role appositive would double the comma.
        text = t.replacen(",,", ",", 1);
        marked = true;
    }
    // Every caption line carries at least one marker.
    if !marked {
        post = format!(" Photo: {}", pick(rng, lexicon::AGENCIES));
    }
    let mut names: Vec<(char, String)> = Vec::new();
    let filled = captions::fill(&text, &mut |c| {
        if let Some((_, n)) = names.iter().find(|(k, _)| *k == c) {
            return n.clone();
        }
        let n = news_name(rng);
        names.push((c, n.clone()));
        n
    });
    let mut line = format!("{pre}{}", filled.text);
    if !line.ends_with('.') {
        line.push('.');
    }
    line.push_str(&post);
    (line, states)
}

pub fn news_article<R: Rng>(rng: &mut R) -> (String, NewsStats) {
    let weights = world::kind_weights();
    let paragraphs = rng.random_range(3..7);
    let n_captions = rng.random_range(1..4);
    let mut slots: Vec<usize> = (0..n_captions)
        .map(|_| rng.random_range(0..=paragraphs))
        .collect();
    slots.sort_unstable();
    let mut st = NewsStats::default();
    let mut lines: Vec<String> = Vec::new();
    for p in 0..=paragraphs {
        for _ in slots.iter().filter(|&&s| s == p) {
            let (l, states) = caption_line(rng, &weights);
            st.caption_lines += 1;
            st.interaction_caption_lines += states as usize;
            lines.push(l);
        }
        if p == paragraphs {
            break;
        }
        let k = rng.random_range(2..5);
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < k {
            let i = rng.random_range(0..FILLER.len());
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        let mut para: Vec<String> = picked.iter().map(|&i| fill_misc(rng, FILLER[i])).collect();
        if rng.random_bool(0.12) {
            // An interaction told in the body text, without any caption marker.
            let kind = world::sample_weighted(rng, &weights);
            let (_, f) = captions::pick_form(rng, kind);
            let s = captions::fill(&format!("{f}{}.", lexicon::place_phrase(rng)), &mut |_| {
                lexicon::full_name(rng)
            });
            let at = rng.random_range(0..=para.len());
            para.insert(at, s.text);
        }
        lines.push(para.join(" "));
    }
    st.lines = lines.len();
    (lines.join("\n"), st)
}

/// Distinct first names for slots A, B, C, D.
fn first_names<R: Rng>(rng: &mut R) -> [String; 4] {
    let mut v: Vec<&str> = Vec::new();
    while v.len() < 4 {
        let n = pick(rng, lexicon::FIRST_NAMES);
        if !v.contains(&n) {
            v.push(n);
        }
    }
    [v[0], v[1], v[2], v[3]].map(|s| s.to_string())
}

fn slot_index(c: char) -> usize {
    match c {
        'A' => 0,
        'B' => 1,
        'C' => 2,
        _ => 3,
    }
}

/// A seed interaction in participle form (with slots) for the LM corpora.
fn seed<R: Rng>(rng: &mut R, weights: &[f64]) -> String {
    if rng.random_bool(0.18) {
        UNRELATED[rng.random_range(0..UNRELATED.len())]
            .1
            .to_string()
    } else {
        let k = world::sample_weighted(rng, weights);
        captions::seed_form(rng, k).to_string()
    }
}

/// The names of the corpus's stage-3 caption blocks, given in order of first mention in
/// the caption: the first person a caption names is Adam, the second Bob, and so on. These
/// are the names stage 6 puts into captions, in the same order, and `name_pool` in
/// `pipelines/full.toml` draws the query's two names from the first two. A toy LM of this
/// size does not learn to copy arbitrary names from the query line into its caption
/// (measured: 0 of 2,000 generations with 130 names; 6% accepted with 6 names drawn at
/// random), so the toy world makes names predictable from their position instead, and the
/// summarizer trained on these captions meets the same names when it pseudo-labels.
pub const CAPTION_BLOCK_NAMES: &[&str] = &["Adam", "Bob", "Cindy", "David"];

/// A caption block of the stage-3 prompt: the stated interaction and its caption, with
/// names given by [`CAPTION_BLOCK_NAMES`] in order of first mention in the caption.
fn caption_pair<R: Rng>(rng: &mut R, weights: &[f64]) -> (String, String) {
    let kind = world::sample_weighted(rng, weights);
    let o = PlanOpts {
        bystander: rng.random_bool(0.2),
        agent_left: rng.random_bool(0.5),
        positional: 0.05,
        silent: 0.0,
        unrelated: 0.1,
    };
    let p = captions::plan(rng, kind, &o);
    let seed = p
        .seed
        .unwrap_or_else(|| captions::seed_form(rng, kind).to_string());
    let mut order: Vec<char> = Vec::new();
    let mut name = |c: char| {
        let i = order.iter().position(|&k| k == c).unwrap_or_else(|| {
            order.push(c);
            order.len() - 1
        });
        CAPTION_BLOCK_NAMES[i.min(CAPTION_BLOCK_NAMES.len() - 1)].to_string()
    };
    let caption = captions::fill(&p.text, &mut name).text;
    (captions::fill(&seed, &mut name).text, caption)
}

pub fn pretrain_doc<R: Rng>(rng: &mut R) -> String {
    // Flatter than the image world: the LM should know every type's phrasing.
    let weights = world::zipf_weights(INTERACTIONS.len(), 0.4);
    match rng.random_range(0..100) {
        0..20 => {
            let dummy = rng.random_bool(0.6);
            let n = rng.random_range(8..17);
            let mut out = String::new();
            if rng.random_bool(0.25) {
                out.push_str(pick(
                    rng,
                    &[
                        "Things people do together:\n",
                        "Activities:\n",
                        "What they did:\n",
                    ],
                ));
            }
            let lines: Vec<String> = (0..n)
                .map(|_| {
                    let names = if dummy {
                        [DUMMY[0], DUMMY[1], "Charlie", "Dani"].map(String::from)
                    } else {
                        first_names(rng)
                    };
                    let s = seed(rng, &weights);
                    captions::fill(&s, &mut |c| names[slot_index(c)].clone()).text
                })
                .collect();
            out.push_str(&lines.join("\n"));
            out
        }
        20..75 => {
            let k = rng.random_range(3..11);
            let mut out = String::new();
            for _ in 0..k {
                let (s, c) = caption_pair(rng, &weights);
                out.push_str(&format!("Caption of image showing {s}:\n{c}\n\n"));
            }
            out.truncate(out.trim_end().len());
            out
        }
        75..90 => {
            let mut parts: Vec<String> = Vec::new();
            for _ in 0..rng.random_range(2..6) {
                if rng.random_bool(0.5) {
                    parts.push({
                        let t = pick(rng, FILLER);
                        fill_misc(rng, t)
                    });
                }
                let (s, c) = caption_pair(rng, &weights);
                parts.push(match rng.random_range(0..3) {
                    0 => format!("Image: {s}\nCaption: {c}"),
                    1 => format!("<img alt=\"{s}\"> {c}"),
                    _ => format!("[Image: {s}] {c}"),
                });
            }
            parts.join("\n")
        }
        _ => news_article(rng).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MARKERS: &[&str] = &[
        "(left)",
        "(right)",
        "(center)",
        ", pictured,",
        "Photo:",
        "Photo by",
        "AP Photo",
        "Getty",
        "Image copyright",
    ];

    #[test]
    fn articles_hold_marked_caption_lines_under_1000_chars() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut marked = 0;
        for _ in 0..200 {
            let (text, st) = news_article(&mut rng);
            assert!(st.caption_lines >= 1);
            for l in text.lines() {
                assert!(l.len() < 1000);
                marked += MARKERS.iter().any(|m| l.contains(m)) as usize;
            }
        }
        assert!(marked >= 200);
    }

    #[test]
    fn pretraining_corpus_has_both_prompt_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let docs: Vec<String> = (0..300).map(|_| pretrain_doc(&mut rng)).collect();
        assert!(
            docs.iter()
                .any(|d| d.contains("Caption of image showing ") && d.contains(":\n"))
        );
        assert!(docs.iter().any(|d| {
            d.lines()
                .filter(|l| l.starts_with("Alex ") && l.contains("Bailey"))
                .count()
                >= 8
        }));
        assert!(docs.iter().all(|d| !d.contains('{')));
    }
}
