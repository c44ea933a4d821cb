//! `postprocess_labels`: stage 7. Removes ignored and test ids and labels that are not in
//! the paper's form, then sets the sample weights (`src/text/labels.rs`).

use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::stages::io::{self, PseudoLabel, StageLog, TableItem};
use crate::text::labels::{WEIGHT_EXPONENT, postprocess_with};
use crate::types::ArtifactType;
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

pub struct PostprocessLabels;

const TOP: usize = 30;

#[derive(Serialize)]
struct Stats {
    /// Items left after each step, in order.
    funnel: Vec<(String, usize)>,
    test_ids: usize,
    ignored_ids: usize,
    labels_distinct: usize,
    weight_exponent: f64,
    weight_min: f64,
    weight_max: f64,
    weight_mean: f64,
    weight_sum: f64,
    top_labels: Vec<(String, usize)>,
}

/// The Table's items: `items.jsonl` inside a Table folder, or a JSONL file.
fn table_items(path: &Path) -> Result<Vec<TableItem>> {
    if path.is_dir() {
        io::read_jsonl(&path.join("items.jsonl"))
    } else {
        io::read_jsonl(path)
    }
}

impl StageKind for PostprocessLabels {
    fn name(&self) -> &'static str {
        "postprocess_labels"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "stage 7: drops ignored and test ids and labels without an -ing word, off the strict form \
         or naming a photo/image/picture; sets class-balanced, caption-deduplicated weights"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::list(
                "test_sources",
                &["ww"],
                "Table items of these sources are test ids, removed from the labels",
            ),
            ParamSpec::float(
                "weight_exponent",
                WEIGHT_EXPONENT,
                "w = (N/count(label), normalised)^exponent: 1 is fully class-balanced, 0 uniform",
            )
            .range(0.0, 4.0),
            io::optional_path(
                "ignore",
                "optional list of ids to remove (one per line or a JSON array): the paper's \
                 duplicates and items that share an artist or date with test items",
            ),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "labels",
                ArtifactType::PseudoLabels,
                "pseudo-labels, JSONL {id, caption, label, weight}",
            ),
            PortSpec::new(
                "test",
                ArtifactType::Table,
                "the benchmark (Waldo and Wenda): its `ww` ids are removed",
            ),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "labels",
                ArtifactType::PseudoLabels,
                "the kept labels with their weights, in input order",
            ),
            PortSpec::new("stats", ArtifactType::Stats, "the funnel and the weights"),
        ]
    }

    fn run(&self, ctx: &mut StageContext) -> Result<()> {
        let items: Vec<PseudoLabel> = io::read_jsonl(ctx.input("labels")?)?;
        let sources: HashSet<&str> = ctx
            .params
            .list("test_sources")
            .iter()
            .map(String::as_str)
            .collect();
        let test: HashSet<String> = table_items(ctx.input("test")?)?
            .into_iter()
            .filter(|i| sources.contains(i.source.as_str()))
            .map(|i| i.id)
            .collect();
        let ignored: HashSet<String> = match io::optional_input(ctx, "ignore") {
            Some(p) => io::read_id_list(&p)?.into_iter().collect(),
            None => HashSet::new(),
        };
        let exponent = ctx.params.float("weight_exponent");
        let (kept, funnel) = postprocess_with(&items, &ignored, &test, exponent);
        io::write_jsonl(ctx.output("labels")?, &kept)?;

        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for i in &kept {
            *counts.entry(i.label.clone()).or_default() += 1;
        }
        let mut top: Vec<(String, usize)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(TOP);
        let w: Vec<f64> = kept.iter().map(|i| i.weight).collect();
        let sum: f64 = w.iter().sum();
        let (min, max) = if w.is_empty() {
            (0.0, 0.0)
        } else {
            w.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                })
        };
        let stats = Stats {
            funnel: funnel
                .steps()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            test_ids: test.len(),
            ignored_ids: ignored.len(),
            labels_distinct: counts.len(),
            weight_exponent: exponent,
            weight_min: min,
            weight_max: max,
            weight_mean: if w.is_empty() {
                0.0
            } else {
                sum / w.len() as f64
            },
            weight_sum: sum,
            top_labels: top,
        };
        io::write_json(ctx.output("stats")?, &stats)?;
        for (step, n) in funnel.steps() {
            ctx.figure(&format!("after_{step}"), n as f64);
        }
        ctx.figure("labels", kept.len() as f64);
        ctx.figure("labels_distinct", counts.len() as f64);
        ctx.figure("test_ids", test.len() as f64);
        let mut log = StageLog::open(ctx);
        log.line(format!(
            "funnel: {}",
            funnel
                .steps()
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" → ")
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::io::testing::run_kind;

    fn label(id: &str, caption: &str, label: &str) -> PseudoLabel {
        PseudoLabel {
            id: id.into(),
            caption: caption.into(),
            label: label.into(),
            weight: 1.0,
        }
    }

    #[test]
    fn funnel_and_weights_through_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels.jsonl");
        io::write_jsonl(
            &labels,
            &[
                label("1", "x", "_ hugging _"),
                label("2", "y", "_ hugging _"),
                label("3", "x", "_ shaking hands with _"),
                label("4", "z", "_ kissing _"),
                label("t", "w", "_ hugging _"),
                label("ign", "w", "_ hugging _"),
                label("5", "v", "_ and _ talking"),
                label("6", "v", "_ photographing _"),
            ],
        )
        .unwrap();
        let table = dir.path().join("table");
        std::fs::create_dir_all(&table).unwrap();
        io::write_jsonl(
            &table.join("items.jsonl"),
            &[
                TableItem {
                    id: "t".into(),
                    source: "ww".into(),
                    label: "_ hugging _".into(),
                    caption: String::new(),
                    image: String::new(),
                },
                TableItem {
                    id: "4".into(),
                    source: "cc".into(),
                    label: "_ hugging _".into(),
                    caption: String::new(),
                    image: String::new(),
                },
            ],
        )
        .unwrap();
        let ignore = dir.path().join("ignore.txt");
        std::fs::write(&ignore, "ign\n").unwrap();
        let (r, fig, out) = run_kind(
            &PostprocessLabels,
            dir.path(),
            &[],
            &[("labels", labels), ("test", table), ("ignore", ignore)],
        );
        r.unwrap();
        let kept: Vec<PseudoLabel> = io::read_jsonl(&out["labels"]).unwrap();
        let ids: Vec<&str> = kept.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4"]);
        // Hand-computed: labels h, h, s, k (N = 4): 1/c = .5, .5, 1, 1 (sum 3) → ×4/3 →
        // ^.25 → 0.9036020, 0.9036020, 1.0745699, 1.0745699; mean 0.9890860 →
        // 0.9135728, 0.9135728, 1.0864272, 1.0864272; caption x shared by 1 and 3: halved.
        let want = [0.4567864, 0.9135728, 0.5432136, 1.0864272];
        for (i, w) in kept.iter().zip(want) {
            assert!((i.weight - w).abs() < 1e-6, "{} {} vs {w}", i.id, i.weight);
        }
        assert_eq!(fig["after_input"], 8.0);
        assert_eq!(fig["after_ignored_ids"], 7.0);
        assert_eq!(fig["after_test_ids"], 6.0);
        assert_eq!(fig["after_strict_form"], 5.0);
        assert_eq!(fig["labels"], 4.0);
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out["stats"]).unwrap()).unwrap();
        assert_eq!(stats["funnel"][0][0], "input");
        assert_eq!(stats["test_ids"], 1);
    }
}
