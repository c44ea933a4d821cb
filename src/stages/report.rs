//! `report`: the run as a page a researcher looks at (see [`crate::report`]). Reads
//! whichever artifacts it is given, copies the test images beside the page, and writes
//! `index.html` and `diversity.json` into one folder.

use super::io::{Pair, PseudoLabel, TableItem, optional_input, read_jsonl, write_json};
use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::report::{Card, Curve, Funnel, ReportData, Sample, read_metrics, render};
use crate::store::fsutil::link_or_copy_all;
use crate::text::eval;
use crate::types::ArtifactType;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Report;

/// The stats ports: (port, the method step whose funnel it is).
const FUNNELS: [(&str, &str); 4] = [
    ("interactions_stats", "stage 2: generated interactions"),
    ("synth_stats", "stage 3: synthetic captions"),
    ("filter_stats", "stage 4: filters on synthetic pairs"),
    ("label_stats", "stage 7: pseudo-label post-processing"),
];

impl StageKind for Report {
    fn name(&self) -> &'static str {
        "report"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "an offline HTML page of the run: metrics, predictions over the test images, training curves, filter funnels, samples, diversity and synthetic-data quality, the pipeline"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::string("title", "hhi report", "the page's title"),
            ParamSpec::int(
                "sample",
                20,
                "rows of each sample table (synthetic pairs, pseudo-labels), evenly spaced",
            )
            .range(0.0, 10_000.0),
            ParamSpec::int(
                "max_cards",
                2000,
                "the most test items the prediction grid shows (their images are copied beside the page)",
            )
            .range(1.0, 1_000_000.0),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        let mut v = vec![
            PortSpec::new("metrics", ArtifactType::Metrics, "evaluate's metrics.json").optional(),
            PortSpec::new(
                "predictions",
                ArtifactType::Predictions,
                "beam predictions (needs `testset`)",
            )
            .optional(),
            PortSpec::new(
                "testset",
                ArtifactType::Table,
                "the benchmark: ground truth, captions and images",
            )
            .optional(),
            PortSpec::new(
                "labels",
                ArtifactType::PseudoLabels,
                "the pseudo-labels the captioner trained on",
            )
            .optional(),
            PortSpec::new(
                "pairs",
                ArtifactType::SyntheticPairs,
                "synthetic caption → interaction pairs (filter_pairs' output, or synthesize_captions')",
            )
            .optional(),
        ];
        for (port, doc) in FUNNELS {
            v.push(PortSpec::new(port, ArtifactType::Stats, doc).optional());
        }
        v
    }
    /// `curves = { captioner = "captioner.curve", … }`: any number of training curves.
    fn input_table(&self) -> Option<&'static str> {
        Some("curves")
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new(
            "report",
            ArtifactType::Report,
            "a folder: index.html (open it in a browser), images/, diversity.json",
        )]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let fixed: Vec<String> = self.inputs().into_iter().map(|p| p.name).collect();
        let curve_ports: Vec<(String, std::path::PathBuf)> = ctx
            .inputs()
            .iter()
            .filter(|(k, _)| !fixed.contains(k))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        if ctx.inputs().is_empty() {
            bail!(
                "the report has nothing to show: give it at least one of {} or `curves = {{ … }}`",
                fixed
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let out = ctx.output("report")?.to_path_buf();
        std::fs::create_dir_all(&out)?;
        let sample = ctx.params.int("sample") as usize;
        let max_cards = ctx.params.int("max_cards") as usize;
        let mut data = ReportData {
            title: ctx.params.str("title").to_string(),
            ..ReportData::default()
        };
        if let Some(p) = optional_input(ctx, "metrics") {
            data.metrics = Some(read_metrics(&p)?);
        }
        let testset = match optional_input(ctx, "testset") {
            Some(dir) => Some((read_jsonl::<TableItem>(&dir.join("items.jsonl"))?, dir)),
            None => None,
        };
        if let Some((items, _)) = &testset {
            data.test_labels = Some(items.iter().map(|t| t.label.clone()).collect());
        }
        if let Some(p) = optional_input(ctx, "predictions") {
            let Some((items, dir)) = &testset else {
                bail!(
                    "`predictions` needs `testset`: the grid shows each prediction beside its image and ground truth"
                );
            };
            let preds = eval::read_predictions(&p)?;
            let by_key: BTreeMap<(&str, &str), &eval::PredictionRecord> = preds
                .iter()
                .map(|r| ((r.source.as_str(), r.id.as_str()), r))
                .collect();
            let mut cards = Vec::new();
            let mut top1 = Vec::new();
            for it in items {
                let beams: Vec<(String, Option<f32>)> = by_key
                    .get(&(it.source.as_str(), it.id.as_str()))
                    .map(|r| r.beams.iter().map(|b| (b.text.clone(), b.score)).collect())
                    .unwrap_or_default();
                if let Some((t, _)) = beams.first() {
                    top1.push(t.clone());
                }
                if cards.len() >= max_cards {
                    continue;
                }
                let image = copy_image(dir, &it.image, &out)?;
                cards.push(Card {
                    source: it.source.clone(),
                    id: it.id.clone(),
                    label: it.label.clone(),
                    caption: it.caption.clone(),
                    image,
                    beams,
                });
            }
            data.cards = Some((cards, items.len()));
            data.top1 = Some(top1);
        }
        if let Some(p) = optional_input(ctx, "labels") {
            let labels: Vec<PseudoLabel> = read_jsonl(&p)?;
            let rows = spaced(&labels, sample)
                .map(|l| Sample {
                    caption: l.caption.clone(),
                    text: l.label.clone(),
                    note: format!("{:.3}", l.weight),
                })
                .collect();
            data.pseudo_labels = Some((labels.into_iter().map(|l| l.label).collect(), rows));
        }
        if let Some(p) = optional_input(ctx, "pairs") {
            let pairs: Vec<Pair> = read_jsonl(&p)?;
            let rows = spaced(&pairs, sample)
                .map(|p| Sample {
                    caption: p.caption.clone(),
                    text: p.interaction.clone(),
                    note: p.label.clone().unwrap_or_default(),
                })
                .collect();
            // The `_` label where the filters set one: the form the test labels have.
            let all = pairs
                .into_iter()
                .map(|p| p.label.unwrap_or(p.interaction))
                .collect();
            data.synthetic = Some((all, rows));
        }
        for (port, name) in FUNNELS {
            if let Some(p) = optional_input(ctx, port) {
                data.funnels.push(read_funnel(&p, name)?);
            }
        }
        for (name, p) in &curve_ports {
            data.curves.push(read_curve(p, name)?);
        }
        let page = render(&data);
        std::fs::write(out.join("index.html"), &page.html)?;
        write_json(&out.join("diversity.json"), &page.diversity)?;
        if let Some((cards, _)) = &data.cards {
            ctx.figure("cards", cards.len() as f64);
        }
        ctx.figure("curves", data.curves.len() as f64);
        ctx.figure("html_bytes", page.html.len() as f64);
        Ok(())
    }
}

/// Every `len / n`-th element, `n` at most: a sample that spans the whole file and does
/// not depend on anything but the file.
fn spaced<T>(v: &[T], n: usize) -> impl Iterator<Item = &T> {
    let n = n.min(v.len());
    (0..n).map(move |i| &v[i * v.len() / n])
}

/// Copies a test image beside the page, under the path it has in the table; `None` when
/// the item has no image.
fn copy_image(table: &Path, image: &str, out: &Path) -> anyhow::Result<Option<String>> {
    if image.is_empty() {
        return Ok(None);
    }
    let rel = Path::new(image);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("the test set names an image outside its folder: `{image}`");
    }
    let src = table.join(rel);
    let dst = out.join(rel);
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    link_or_copy_all(&src, &dst)
        .with_context(|| format!("copying the test image {}", src.display()))?;
    Ok(Some(image.to_string()))
}

/// A funnel from any of the method's stats: `filter_pairs` (`input` and `funnel:
/// [{rule, left}]`), `postprocess_labels` (`funnel: [[step, left]]`) or the generation
/// stages (`attempts`, `rejected: {reason: n}`, `accepted`).
pub fn parse_funnel(v: &serde_json::Value, name: &str) -> Option<Funnel> {
    let mut steps = Vec::new();
    if let Some(f) = v.get("funnel").and_then(|f| f.as_array()) {
        if let Some(input) = v.get("input").and_then(|x| x.as_u64()) {
            steps.push(("input".to_string(), input as usize));
        }
        for s in f {
            let (label, left) = if let Some(a) = s.as_array() {
                (a.first()?.as_str()?.to_string(), a.get(1)?.as_u64()?)
            } else {
                (
                    s.get("rule")?.as_str()?.to_string(),
                    s.get("left")?.as_u64()?,
                )
            };
            steps.push((label, left as usize));
        }
    } else if let (Some(attempts), Some(rejected)) = (
        v.get("attempts").and_then(|x| x.as_u64()),
        v.get("rejected").and_then(|x| x.as_object()),
    ) {
        steps.push(("attempts".to_string(), attempts as usize));
        let mut reasons: Vec<(&String, u64)> = rejected
            .iter()
            .filter_map(|(k, n)| n.as_u64().map(|n| (k, n)))
            .collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut left = attempts;
        for (reason, n) in reasons {
            left = left.saturating_sub(n);
            steps.push((reason.clone(), left as usize));
        }
    } else {
        return None;
    }
    Some(Funnel {
        name: name.to_string(),
        steps,
    })
}

fn read_funnel(path: &Path, name: &str) -> anyhow::Result<Funnel> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the stats {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON object", path.display()))?;
    parse_funnel(&v, name).with_context(|| {
        format!(
            "{} ({name}): no funnel in these stats; expected `funnel` (filter_pairs, postprocess_labels) or `attempts` and `rejected` (generate_interactions, synthesize_captions)",
            path.display()
        )
    })
}

fn read_curve(path: &Path, name: &str) -> anyhow::Result<Curve> {
    let points: Vec<super::io::CurvePoint> = read_jsonl(path).with_context(|| {
        format!("the curve `{name}` is not a training curve (JSONL of step, loss, lr)")
    })?;
    Ok(Curve {
        name: name.to_string(),
        points: points.iter().map(|p| (p.step as f64, p.loss)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn funnels_from_the_three_stats_shapes() {
        let f = parse_funnel(
            &json!({"input": 10, "funnel": [{"rule": "a", "left": 7, "removed": 3}]}),
            "x",
        )
        .unwrap();
        assert_eq!(f.steps, [("input".into(), 10), ("a".into(), 7)]);
        let f = parse_funnel(&json!({"funnel": [["input", 5], ["ing_word", 2]]}), "x").unwrap();
        assert_eq!(f.steps, [("input".into(), 5), ("ing_word".into(), 2)]);
        let f = parse_funnel(
            &json!({"attempts": 10, "accepted": 4, "rejected": {"b": 2, "a": 4}}),
            "x",
        )
        .unwrap();
        assert_eq!(
            f.steps,
            [("attempts".into(), 10), ("a".into(), 6), ("b".into(), 4)]
        );
        assert!(parse_funnel(&json!({"labels": 3}), "x").is_none());
    }

    #[test]
    fn samples_span_the_file() {
        let v: Vec<u32> = (0..100).collect();
        let s: Vec<u32> = spaced(&v, 4).copied().collect();
        assert_eq!(s, [0, 25, 50, 75]);
        assert_eq!(spaced(&v[..2], 5).count(), 2);
    }
}
