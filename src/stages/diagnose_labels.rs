//! `diagnose_labels`: pseudo-labels against the toy world's hidden truth.
//!
//! The headline figure is exact-match accuracy among items whose caption states the
//! interaction (the only ones a caption-reading summarizer can get right); the issue's
//! target is 80%. Verb accuracy, coverage and the most frequent confusions say why.

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, PseudoLabel, StageLog, TruthRecord};
use crate::types::ArtifactType;
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub struct DiagnoseLabels;

const TOP: usize = 20;
const EXAMPLES: usize = 10;

#[derive(Serialize, Default)]
struct Group {
    items: usize,
    exact: usize,
    verb: usize,
    accuracy: f64,
    verb_accuracy: f64,
}

impl Group {
    fn add(&mut self, label: &str, truth: &str) {
        self.items += 1;
        self.exact += usize::from(label == truth);
        self.verb += usize::from(verb(label).is_some() && verb(label) == verb(truth));
    }
    fn done(mut self) -> Self {
        let n = self.items.max(1) as f64;
        self.accuracy = self.exact as f64 / n;
        self.verb_accuracy = self.verb as f64 / n;
        self
    }
}

#[derive(Serialize)]
struct Miss {
    id: String,
    caption: String,
    label: String,
    truth: String,
}

#[derive(Serialize)]
struct Stats {
    labels: usize,
    labels_with_truth: usize,
    /// Items whose caption states the interaction (the headline group).
    stating: Group,
    /// The stating items whose true label survives stage 4g unchanged: a summarizer
    /// trained on stage-4 targets can write only those (`_ pushing _ in a wheelchair`
    /// becomes `_ pushing _`), so this is the group's accuracy below its ceiling.
    reachable: Group,
    /// True labels that stage 4g rewrites, with what it makes of them.
    unreachable_labels: BTreeMap<String, String>,
    /// Every labelled item with a true interaction.
    all: Group,
    /// Captions that do not state the interaction (silent or an unrelated action).
    not_stating: Group,
    /// Share of the truth's stating `ww` items that have a label.
    coverage: f64,
    target: f64,
    meets_target: bool,
    per_label: BTreeMap<String, Group>,
    top_confusions: Vec<(String, String, usize)>,
    examples_wrong: Vec<Miss>,
}

/// The second whitespace token (the paper's verb of a label).
fn verb(label: &str) -> Option<&str> {
    label.split_whitespace().nth(1)
}

impl StageKind for DiagnoseLabels {
    fn name(&self) -> &'static str {
        "diagnose_labels"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "pseudo-label exact-match and verb accuracy against the toy world's hidden truth, among \
         captions that state the interaction (target ≥ 80%), with coverage and confusions"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::float(
                "target",
                0.8,
                "the accuracy the stats compare against (`meets_target`); a miss is a warning",
            )
            .range(0.0, 1.0),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "labels",
                ArtifactType::PseudoLabels,
                "pseudo-labels (before or after stage 7)",
            ),
            PortSpec::new("truth", ArtifactType::Truth, "toy_world's hidden truth"),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "stats",
            ArtifactType::Stats,
            "accuracies, coverage, per-label accuracy, confusions, wrong examples",
        )]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let labels: Vec<PseudoLabel> = io::read_jsonl(ctx.input("labels")?)?;
        let truth: Vec<TruthRecord> = io::read_jsonl(ctx.input("truth")?)?;
        let target = ctx.params.float("target");
        let by_id: HashMap<&str, &TruthRecord> = truth.iter().map(|t| (t.id.as_str(), t)).collect();
        let mut stating = Group::default();
        let mut reachable = Group::default();
        let mut unreachable: BTreeMap<String, String> = BTreeMap::new();
        let mut all = Group::default();
        let mut not_stating = Group::default();
        let mut per_label: BTreeMap<String, Group> = BTreeMap::new();
        let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut wrong = Vec::new();
        let mut with_truth = 0;
        for l in &labels {
            let Some(t) = by_id.get(l.id.as_str()) else {
                continue;
            };
            with_truth += 1;
            if t.label.is_empty() {
                continue;
            }
            all.add(&l.label, &t.label);
            if !t.caption_states_interaction {
                not_stating.add(&l.label, &t.label);
                continue;
            }
            stating.add(&l.label, &t.label);
            let target = crate::text::filters::remove_personless_pps(&t.label);
            if target == t.label {
                reachable.add(&l.label, &t.label);
            } else {
                unreachable.insert(t.label.clone(), target);
            }
            per_label
                .entry(t.label.clone())
                .or_default()
                .add(&l.label, &t.label);
            if l.label != t.label {
                *confusions
                    .entry((t.label.clone(), l.label.clone()))
                    .or_default() += 1;
                if wrong.len() < EXAMPLES {
                    wrong.push(Miss {
                        id: l.id.clone(),
                        caption: l.caption.clone(),
                        label: l.label.clone(),
                        truth: t.label.clone(),
                    });
                }
            }
        }
        let stating_in_truth = truth
            .iter()
            .filter(|t| t.source == "ww" && t.caption_states_interaction && !t.label.is_empty())
            .count();
        let mut top: Vec<(String, String, usize)> = confusions
            .into_iter()
            .map(|((a, b), n)| (a, b, n))
            .collect();
        top.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        top.truncate(TOP);
        let stating = stating.done();
        let stats = Stats {
            labels: labels.len(),
            labels_with_truth: with_truth,
            coverage: stating.items as f64 / stating_in_truth.max(1) as f64,
            meets_target: stating.items > 0 && stating.accuracy >= target,
            target,
            stating,
            reachable: reachable.done(),
            unreachable_labels: unreachable,
            all: all.done(),
            not_stating: not_stating.done(),
            per_label: per_label.into_iter().map(|(k, g)| (k, g.done())).collect(),
            top_confusions: top,
            examples_wrong: wrong,
        };
        io::write_json(ctx.output("stats")?, &stats)?;
        ctx.figure("accuracy", stats.stating.accuracy);
        ctx.figure("verb_accuracy", stats.stating.verb_accuracy);
        ctx.figure("items_stating", stats.stating.items as f64);
        ctx.figure("accuracy_reachable", stats.reachable.accuracy);
        ctx.figure(
            "share_reachable",
            stats.reachable.items as f64 / stats.stating.items.max(1) as f64,
        );
        ctx.figure("coverage", stats.coverage);
        ctx.figure("accuracy_all", stats.all.accuracy);
        ctx.figure("accuracy_not_stating", stats.not_stating.accuracy);
        let line = format!(
            "pseudo-label accuracy {:.1}% (verb {:.1}%) on {} items whose caption states the \
             interaction (coverage {:.1}%; {:.1}% on the {} whose label stage 4g keeps); \
             target {:.0}%",
            100.0 * stats.stating.accuracy,
            100.0 * stats.stating.verb_accuracy,
            stats.stating.items,
            100.0 * stats.coverage,
            100.0 * stats.reachable.accuracy,
            stats.reachable.items,
            100.0 * target
        );
        StageLog::open(ctx).line(&line);
        if !stats.meets_target {
            tracing::warn!("stage `{}`: {line}", ctx.stage);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::io::testing::run_kind;

    fn truth(id: &str, label: &str, states: bool) -> TruthRecord {
        TruthRecord {
            id: id.into(),
            source: "ww".into(),
            label: label.into(),
            verb: label.split(' ').nth(1).unwrap_or("").into(),
            kind: "k".into(),
            caption_states_interaction: states,
        }
    }

    fn pl(id: &str, label: &str) -> PseudoLabel {
        PseudoLabel {
            id: id.into(),
            caption: "c".into(),
            label: label.into(),
            weight: 1.0,
        }
    }

    #[test]
    fn accuracy_among_stating_captions() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("truth.jsonl");
        io::write_jsonl(
            &t,
            &[
                truth("1", "_ hugging _", true),
                truth("2", "_ shaking hands with _", true),
                truth("3", "_ handing a plaque to _", true),
                truth("4", "_ hugging _", false),
                truth("5", "", false),
                truth("6", "_ hugging _", true),
            ],
        )
        .unwrap();
        let l = dir.path().join("labels.jsonl");
        io::write_jsonl(
            &l,
            &[
                pl("1", "_ hugging _"),
                pl("2", "_ shaking hands with _"),
                pl("3", "_ handing a trophy to _"),
                pl("4", "_ talking to _"),
                pl("5", "_ waving to _"),
                pl("x", "_ hugging _"),
            ],
        )
        .unwrap();
        let (r, fig, out) = run_kind(
            &DiagnoseLabels,
            dir.path(),
            &[],
            &[("labels", l), ("truth", t)],
        );
        r.unwrap();
        assert!((fig["accuracy"] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(fig["verb_accuracy"], 1.0);
        assert_eq!(fig["items_stating"], 3.0);
        assert!((fig["coverage"] - 0.75).abs() < 1e-12);
        assert_eq!(fig["accuracy_not_stating"], 0.0);
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out["stats"]).unwrap()).unwrap();
        assert_eq!(s["meets_target"], false);
        assert_eq!(s["top_confusions"][0][1], "_ handing a trophy to _");
        assert_eq!(s["examples_wrong"][0]["id"], "3");
    }
}
