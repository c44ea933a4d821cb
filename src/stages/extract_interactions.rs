//! `extract_interactions`: stage 1. Caption-like lines of news articles → cleaned →
//! the interactions they state (rule-based reading, `src/text/extract.rs`).
//!
//! As in the paper's code, every caption line is parsed and each interaction is kept once
//! per line; the same line in two articles counts twice (`unique = "none"`), so frequent
//! interactions are frequent seeds.

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, Doc, Interaction, StageLog};
use crate::text::captions::{caption_lines, is_caption_line};
use crate::text::extract::{ExtractOptions, extract_interactions_with};
use crate::types::ArtifactType;
use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

pub struct ExtractInteractions;

/// How many of the most frequent interactions the stats list.
const TOP: usize = 30;

#[derive(Serialize)]
struct Stats {
    articles: usize,
    lines: usize,
    caption_lines: usize,
    caption_lines_with_interaction: usize,
    interactions_found: usize,
    interactions_written: usize,
    distinct_interactions: usize,
    distinct_verbs: usize,
    /// Share of caption lines that gave at least one interaction.
    yield_per_caption_line: f64,
    keep_plain_pps: bool,
    unique: String,
    top_interactions: Vec<(String, usize)>,
    top_verbs: Vec<(String, usize)>,
}

/// The `-ing` word of a seed (`[NAME] shaking hands with [NAME]` → `shaking`).
fn verb_of(interaction: &str) -> Option<&str> {
    interaction
        .split_whitespace()
        .find(|w| w.len() > 4 && w.ends_with("ing"))
}

fn top(counts: &BTreeMap<String, usize>, n: usize) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

impl StageKind for ExtractInteractions {
    fn name(&self) -> &'static str {
        "extract_interactions"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "stage 1: photo-caption lines of news articles → cleaned → seed interactions \
         ([NAME] VERB-ing [NAME] …) by a rule-based reading of the clause"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::bool(
                "keep_plain_pps",
                true,
                "keep prepositional arguments without a person (`… at the summit`), as the \
                 paper's parser does; stage 4g removes them from labels either way",
            ),
            ParamSpec::one_of(
                "unique",
                &["none", "pair", "interaction"],
                "none",
                "`none`: one record per interaction per caption line (the paper); `pair`: each \
                 (interaction, caption) once; `interaction`: each interaction once, with its \
                 first caption",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "articles",
            ArtifactType::Corpus,
            "news articles, JSONL {id, text}",
        )]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "interactions",
                ArtifactType::Interactions,
                "JSONL {interaction, caption}, in article and line order",
            ),
            PortSpec::new(
                "stats",
                ArtifactType::Stats,
                "counts: lines, caption lines, yield, distinct interactions, most frequent",
            ),
        ]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let docs: Vec<Doc> = io::read_jsonl(ctx.input("articles")?)?;
        let opts = ExtractOptions {
            keep_plain_pps: ctx.params.bool("keep_plain_pps"),
        };
        let unique = ctx.params.str("unique").to_string();
        let progress = ctx.progress().clone();
        progress.start(docs.len() as u64, "articles");
        // Per article: (lines, caption lines, [(caption, interactions)]).
        type PerArticle = (usize, usize, Vec<(String, Vec<String>)>);
        let per: Vec<PerArticle> = docs
            .par_iter()
            .map(|d| {
                let lines = d.text.lines().count();
                let n_caption = d.text.lines().filter(|l| is_caption_line(l)).count();
                let found = caption_lines(&d.text)
                    .into_iter()
                    .map(|c| {
                        let i = extract_interactions_with(&c, opts);
                        (c, i)
                    })
                    .collect();
                progress.inc(1);
                (lines, n_caption, found)
            })
            .collect();

        let (mut lines, mut n_caption, mut with, mut found) = (0, 0, 0, 0);
        let mut out: Vec<Interaction> = Vec::new();
        let mut seen_pair: HashSet<(String, String)> = HashSet::new();
        let mut seen_int: HashSet<String> = HashSet::new();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut verbs: BTreeMap<String, usize> = BTreeMap::new();
        for (l, c, caps) in per {
            lines += l;
            n_caption += c;
            for (caption, ints) in caps {
                with += usize::from(!ints.is_empty());
                for i in ints {
                    found += 1;
                    *counts.entry(i.clone()).or_default() += 1;
                    if let Some(v) = verb_of(&i) {
                        *verbs.entry(v.to_string()).or_default() += 1;
                    }
                    let keep = match unique.as_str() {
                        "pair" => seen_pair.insert((i.clone(), caption.clone())),
                        "interaction" => seen_int.insert(i.clone()),
                        _ => true,
                    };
                    if keep {
                        out.push(Interaction {
                            interaction: i,
                            caption: caption.clone(),
                        });
                    }
                }
            }
        }
        io::write_jsonl(ctx.output("interactions")?, &out)?;
        let stats = Stats {
            articles: docs.len(),
            lines,
            caption_lines: n_caption,
            caption_lines_with_interaction: with,
            interactions_found: found,
            interactions_written: out.len(),
            distinct_interactions: counts.len(),
            distinct_verbs: verbs.len(),
            yield_per_caption_line: if n_caption == 0 {
                0.0
            } else {
                with as f64 / n_caption as f64
            },
            keep_plain_pps: opts.keep_plain_pps,
            unique,
            top_interactions: top(&counts, TOP),
            top_verbs: top(&verbs, TOP),
        };
        io::write_json(ctx.output("stats")?, &stats)?;
        for (k, v) in [
            ("articles", stats.articles),
            ("caption_lines", stats.caption_lines),
            ("caption_lines_with_interaction", with),
            ("interactions", stats.interactions_written),
            ("distinct_interactions", stats.distinct_interactions),
            ("distinct_verbs", stats.distinct_verbs),
        ] {
            ctx.figure(k, v as f64);
        }
        ctx.figure("yield_per_caption_line", stats.yield_per_caption_line);
        let mut log = StageLog::open(ctx);
        log.line(format!(
            "{} interactions ({} distinct) from {with} of {n_caption} caption lines in {} articles",
            stats.interactions_written, stats.distinct_interactions, stats.articles
        ));
        if out.is_empty() {
            tracing::warn!(
                "stage `{}`: no interaction found in {n_caption} caption lines",
                ctx.stage
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;
    use crate::stages::io::testing::run_kind;

    fn corpus(dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("news.jsonl");
        let docs = [
            Doc {
                id: "a".into(),
                text: "The summit opened on Monday.\n\
                       Maria Lopez (left) shakes hands with John Okafor at the summit. Photo: Reuters\n\
                       Talks went on late."
                    .into(),
            },
            Doc {
                id: "b".into(),
                text: "Maria Lopez (left) shakes hands with John Okafor at the summit. Photo: Reuters\n\
                       A view of the city (left). Photo: AFP"
                    .into(),
            },
        ];
        io::write_jsonl(&p, &docs).unwrap();
        p
    }

    #[test]
    fn caption_lines_give_seeds_and_stats() {
        let dir = tempfile::tempdir().unwrap();
        let news = corpus(dir.path());
        let (r, fig, out) = run_kind(
            &ExtractInteractions,
            dir.path(),
            &[],
            &[("articles", news.clone())],
        );
        r.unwrap();
        let ints: Vec<Interaction> = io::read_jsonl(&out["interactions"]).unwrap();
        assert_eq!(ints.len(), 2, "{ints:?}");
        assert_eq!(
            ints[0].interaction,
            "[NAME] shaking hands with [NAME] at the summit"
        );
        assert_eq!(
            ints[0].caption,
            "Maria Lopez shakes hands with John Okafor at the summit."
        );
        assert_eq!(fig["caption_lines"], 3.0);
        assert_eq!(fig["caption_lines_with_interaction"], 2.0);
        assert_eq!(fig["distinct_interactions"], 1.0);
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out["stats"]).unwrap()).unwrap();
        assert_eq!(stats["top_verbs"][0][0], "shaking");

        let d2 = tempfile::tempdir().unwrap();
        let (r, _, out) = run_kind(
            &ExtractInteractions,
            d2.path(),
            &[
                ("unique", Value::Str("pair".into())),
                ("keep_plain_pps", Value::Bool(false)),
            ],
            &[("articles", news)],
        );
        r.unwrap();
        let ints: Vec<Interaction> = io::read_jsonl(&out["interactions"]).unwrap();
        assert_eq!(ints.len(), 1);
        assert_eq!(ints[0].interaction, "[NAME] shaking hands with [NAME]");
    }
}
