//! Stage 10: the paper's evaluation rules, apart from any model.
//!
//! Model-based scores (BLEURT, NLI) arrive already computed in [`BeamScores`]; what lives
//! here is what decides the published numbers whatever the models: which token is the
//! verb, when two labels match, how the beams of an item and the items of a source are
//! reduced (`@k`), and the two baselines the paper compares with.

use crate::text::glove::WordVectors;
use anyhow::{Context, Result, bail};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Metric names as `metrics.json` spells them.
pub const METRICS: [&str; 6] = [
    "label_match",
    "verb_match",
    "verb_sim",
    "nli_pe",
    "nli_pc",
    "bleurt",
];

/// The beam counts the paper reports.
pub const PAPER_KS: [usize; 3] = [1, 5, 8];

/// The key of the mean of the source means in a [`Table`].
pub const OVERALL: &str = "overall";

/// The verb of a label in the paper's form is its second whitespace token
/// (`_ shaking hands with _` → `shaking`), whatever stands first.
pub fn verb(label: &str) -> Option<&str> {
    label.split_whitespace().nth(1)
}

/// The form two labels are compared in: spacing and case are not content.
pub fn normalize(label: &str) -> String {
    label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The label a prediction is compared with: imSitu-HHI's ground truth is a bare verb,
/// which becomes `_ verb` so that the verb rules read it.
pub fn reference(label: &str) -> String {
    if label.split_whitespace().count() == 1 {
        format!("_ {}", label.trim())
    } else {
        label.to_string()
    }
}

/// A label as BLEURT reads it: each `_` placeholder becomes `person`.
pub fn person_form(label: &str) -> String {
    label
        .split_whitespace()
        .map(|w| if w == "_" { "person" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn label_match(pred: &str, label: &str) -> bool {
    normalize(pred) == normalize(label)
}

/// A missing verb matches nothing, not even another missing verb.
pub fn verb_match(pred: &str, label: &str) -> bool {
    match (verb(pred), verb(label)) {
        (Some(a), Some(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => false,
    }
}

/// Cosine of two verbs' vectors, 0 when either is out of the vocabulary (the paper's rule).
/// imSitu-HHI's ground truth is a bare verb, so its callers use this directly.
pub fn verb_similarity(pred_verb: &str, label_verb: &str, vectors: &WordVectors) -> f64 {
    vectors.cosine(pred_verb, label_verb).map_or(0.0, f64::from)
}

/// One decoded beam. The score is the decoder's (sum of log-probs) and is informational.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beam {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// One line of a predictions JSONL file: an item's beams, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub source: String,
    pub id: String,
    pub beams: Vec<Beam>,
}

/// Reads predictions JSONL; errors name the file and the 1-based line.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionRecord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read predictions {}", path.display()))?;
    parse_predictions(&text, &path.display().to_string())
}

/// Parses predictions JSONL text; `origin` is the name errors give.
///
/// An item without beams or listed twice is an error rather than something to skip: either
/// would silently change what `@k` means for that item.
pub fn parse_predictions(text: &str, origin: &str) -> Result<Vec<PredictionRecord>> {
    let mut out = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let rec: PredictionRecord = serde_json::from_str(line)
            .with_context(|| format!("{origin}:{n}: not a prediction record"))?;
        if rec.beams.is_empty() {
            bail!("{origin}:{n}: item {}/{} has no beams", rec.source, rec.id);
        }
        if let Some(first) = seen.insert((rec.source.clone(), rec.id.clone()), n) {
            bail!(
                "{origin}:{n}: item {}/{} is listed twice (lines {first} and {n})",
                rec.source,
                rec.id
            );
        }
        out.push(rec);
    }
    Ok(out)
}

/// Predictions put in the test set's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// One record per test item, in test order.
    pub records: Vec<PredictionRecord>,
    /// Predictions for items outside the test set, dropped.
    pub extra: usize,
}

/// Orders `preds` like `test` (pairs of source and id). Every test item must have a
/// prediction: a metric over the items that happen to be present is not the benchmark's.
pub fn match_items<S: AsRef<str>>(
    test: &[(S, S)],
    preds: Vec<PredictionRecord>,
) -> Result<Matched> {
    let mut by_key: HashMap<(String, String), PredictionRecord> = preds
        .into_iter()
        .map(|r| ((r.source.clone(), r.id.clone()), r))
        .collect();
    let mut records = Vec::with_capacity(test.len());
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    for (source, id) in test {
        let key = (source.as_ref().to_string(), id.as_ref().to_string());
        if !seen.insert(key.clone()) {
            bail!("test item {}/{} is listed twice", key.0, key.1);
        }
        match by_key.remove(&key) {
            Some(r) => records.push(r),
            None => missing.push(format!("{}/{}", key.0, key.1)),
        }
    }
    if !missing.is_empty() {
        const SHOWN: usize = 20;
        let mut list = missing
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if missing.len() > SHOWN {
            list.push_str(&format!(" and {} more", missing.len() - SHOWN));
        }
        bail!("{} test items have no prediction: {list}", missing.len());
    }
    Ok(Matched {
        records,
        extra: by_key.len(),
    })
}

/// Scores of one beam against its item's label. `None` means "not computed" (no model or
/// no vectors configured), which keeps the metric out of the table instead of averaging
/// in a made-up value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BeamScores {
    pub label_match: f64,
    pub verb_match: f64,
    pub verb_sim: Option<f64>,
    pub nli_pe: Option<f64>,
    pub nli_pc: Option<f64>,
    pub bleurt: Option<f64>,
}

impl BeamScores {
    /// The value of a metric by its `metrics.json` name.
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "label_match" => Some(self.label_match),
            "verb_match" => Some(self.verb_match),
            "verb_sim" => self.verb_sim,
            "nli_pe" => self.nli_pe,
            "nli_pc" => self.nli_pc,
            "bleurt" => self.bleurt,
            _ => None,
        }
    }
}

/// The model-free scores of one beam; the model scores are left `None` for the caller.
/// With vectors, a missing verb or word scores 0 (the paper's rule), not `None`.
pub fn score_beam(pred: &str, label: &str, vectors: Option<&WordVectors>) -> BeamScores {
    let verb_sim = vectors.map(|v| match (verb(pred), verb(label)) {
        (Some(a), Some(b)) => verb_similarity(a, b, v),
        _ => 0.0,
    });
    BeamScores {
        label_match: f64::from(u8::from(label_match(pred, label))),
        verb_match: f64::from(u8::from(verb_match(pred, label))),
        verb_sim,
        ..BeamScores::default()
    }
}

/// The scores of all beams of one item, best beam first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScores {
    pub source: String,
    pub id: String,
    pub beams: Vec<BeamScores>,
}

/// `metrics.json`: metric → `@k` → source or `overall` → value.
pub type Table = BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>;

/// Lower is better only for the NLI contradiction probability, so `@k` takes its minimum.
fn lower_is_better(metric: &str) -> bool {
    metric == "nli_pc"
}

/// The paper's `@k`: per item the best of its first k beams (all of them if it has fewer),
/// then the mean within each source, and `overall` the unweighted mean of the source means
/// so that a large source does not outvote a small one.
///
/// A metric appears only if every beam of every item has it, and not at all if an item has
/// no beams: a mean over the items that happen to be scored is a different number. k = 0
/// selects nothing and is left out.
pub fn aggregate(items: &[ItemScores], ks: &[usize]) -> Table {
    let mut table = Table::new();
    if items.is_empty() {
        return table;
    }
    for metric in METRICS {
        let complete = items
            .iter()
            .all(|it| !it.beams.is_empty() && it.beams.iter().all(|b| b.get(metric).is_some()));
        if !complete {
            continue;
        }
        let lower = lower_is_better(metric);
        let mut by_k = BTreeMap::new();
        for &k in ks.iter().filter(|&&k| k > 0) {
            let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
            for it in items {
                let values = it.beams.iter().take(k).filter_map(|b| b.get(metric));
                let best = if lower {
                    values.fold(f64::INFINITY, f64::min)
                } else {
                    values.fold(f64::NEG_INFINITY, f64::max)
                };
                let e = sums.entry(it.source.as_str()).or_insert((0.0, 0));
                e.0 += best;
                e.1 += 1;
            }
            let mut row: BTreeMap<String, f64> = sums
                .into_iter()
                .map(|(s, (sum, n))| (s.to_string(), sum / n as f64))
                .collect();
            let overall = row.values().sum::<f64>() / row.len() as f64;
            row.insert(OVERALL.to_string(), overall);
            by_k.insert(format!("@{k}"), row);
        }
        if !by_k.is_empty() {
            table.insert(metric.to_string(), by_k);
        }
    }
    table
}

/// The most-frequent-label baseline: the `n` commonest labels (ties by label, so the
/// baseline does not depend on input order), given as the same beams to every item.
/// Labels are counted as given; normalise them first if spelling variants should merge.
pub fn most_frequent<'a>(labels: impl IntoIterator<Item = &'a str>, n: usize) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(n).map(|(l, _)| l.to_string()).collect()
}

/// The chance baseline for one item: `n` distinct labels drawn uniformly without
/// replacement from the distinct candidates (all of them if fewer). Candidates are sorted
/// first and each item has its own ChaCha stream, so the draw depends only on the
/// candidate set, the seed and the item's index, not on input order or on other items.
pub fn chance_beams(candidates: &[String], n: usize, seed: u64, item_index: u64) -> Vec<String> {
    let mut pool: Vec<&String> = candidates
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(item_index);
    let m = n.min(pool.len());
    // Partial Fisher-Yates: the first m slots end up a uniform sample, in draw order.
    for i in 0..m {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    pool.into_iter().take(m).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn verb_is_second_token() {
        assert_eq!(verb("_ shaking hands with _"), Some("shaking"));
        assert_eq!(verb("  _   hugging\t_ "), Some("hugging"));
        assert_eq!(verb("man kissing _"), Some("kissing"));
        assert_eq!(verb("_"), None);
        assert_eq!(verb(""), None);
        assert_eq!(verb("   "), None);
    }

    #[test]
    fn normalize_trims_collapses_and_lowercases() {
        assert_eq!(
            normalize("  _  Shaking\thands  with _ \n"),
            "_ shaking hands with _"
        );
        assert_eq!(normalize(""), "");
        assert!(label_match("_ Hugging  _", "_ hugging _"));
        assert!(!label_match("_ hugging _", "_ hugging _ tightly"));
    }

    #[test]
    fn verb_match_needs_both_verbs() {
        assert!(verb_match("_ Hugging _ tightly", "_ hugging _"));
        assert!(!verb_match("_ kissing _", "_ hugging _"));
        assert!(!verb_match("_", "_"));
        assert!(!verb_match("_", "_ hugging _"));
    }

    fn vectors() -> WordVectors {
        WordVectors::from_reader(Cursor::new("hugging 1 2 2\nkissing 2 0 0\n"), "v").unwrap()
    }

    #[test]
    fn score_beam_fills_model_free_scores() {
        let v = vectors();
        let s = score_beam("_ hugging _", "_ kissing _", Some(&v));
        assert_eq!(s.label_match, 0.0);
        assert_eq!(s.verb_match, 0.0);
        assert!(close(s.verb_sim.unwrap(), f64::from(1.0f32 / 3.0)), "{s:?}");
        assert_eq!((s.nli_pe, s.nli_pc, s.bleurt), (None, None, None));

        let s = score_beam("_  Hugging _", "_ hugging _", Some(&v));
        assert_eq!((s.label_match, s.verb_match), (1.0, 1.0));
        assert!((s.verb_sim.unwrap() - 1.0).abs() < 1e-6);

        // Configured vectors: missing word or missing verb is 0, not None.
        assert_eq!(
            score_beam("_ waving _", "_ hugging _", Some(&v)).verb_sim,
            Some(0.0)
        );
        assert_eq!(score_beam("_", "_ hugging _", Some(&v)).verb_sim, Some(0.0));
        // No vectors: not computed.
        assert_eq!(
            score_beam("_ hugging _", "_ hugging _", None).verb_sim,
            None
        );
    }

    fn beam(v: f64, pc: f64) -> BeamScores {
        BeamScores {
            label_match: if v >= 0.9 { 1.0 } else { 0.0 },
            verb_match: v,
            verb_sim: Some(v),
            nli_pe: Some(v),
            nli_pc: Some(pc),
            bleurt: None,
        }
    }

    fn item(source: &str, id: &str, vs: &[f64], pcs: &[f64]) -> ItemScores {
        ItemScores {
            source: source.into(),
            id: id.into(),
            beams: vs.iter().zip(pcs).map(|(&v, &p)| beam(v, p)).collect(),
        }
    }

    /// 2 sources: "ww" with 3 items (one of only 3 beams) and "coco" with 2 items.
    fn results() -> Vec<ItemScores> {
        vec![
            item(
                "ww",
                "1",
                &[0.2, 0.1, 0.5, 0.3, 0.0, 0.9, 0.4, 0.6],
                &[0.5, 0.6, 0.2, 0.4, 0.3, 0.1, 0.7, 0.05],
            ),
            item(
                "ww",
                "2",
                &[0.7, 0.3, 0.2, 0.1, 0.8, 0.0, 0.0, 0.0],
                &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            ),
            item("ww", "3", &[0.4, 0.6, 0.5], &[0.9, 0.8, 0.3]),
            item(
                "coco",
                "a",
                &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                &[0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.0],
            ),
            item(
                "coco",
                "b",
                &[0.6, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
                &[0.4, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
            ),
        ]
    }

    fn at(t: &Table, metric: &str, k: &str, source: &str) -> f64 {
        t[metric][k][source]
    }

    #[test]
    fn aggregate_at_k_by_hand() {
        let t = aggregate(&results(), &PAPER_KS);
        // Max of verb_sim over the first k beams, per item:
        //   ww/1: @1 0.2, @5 0.5, @8 0.9     ww/2: @1 0.7, @5 0.8, @8 0.8
        //   ww/3 (3 beams): @1 0.4, @5 0.6, @8 0.6
        //   coco/a: @1 0, @5 0, @8 1         coco/b: 0.6 at every k
        let ww = [
            (0.2 + 0.7 + 0.4) / 3.0,
            (0.5 + 0.8 + 0.6) / 3.0,
            (0.9 + 0.8 + 0.6) / 3.0,
        ];
        let coco = [0.3, 0.3, 0.8];
        for (i, k) in ["@1", "@5", "@8"].into_iter().enumerate() {
            for m in ["verb_sim", "nli_pe", "verb_match"] {
                assert!(close(at(&t, m, k, "ww"), ww[i]), "{m} {k}");
                assert!(close(at(&t, m, k, "coco"), coco[i]), "{m} {k}");
                // Unweighted mean of the source means, not the mean of 5 items.
                assert!(
                    close(at(&t, m, k, OVERALL), (ww[i] + coco[i]) / 2.0),
                    "{m} {k}"
                );
            }
        }
        // Min of nli_pc over the first k beams:
        //   ww/1: @1 0.5, @5 0.2, @8 0.05    ww/2: 0.1 at every k
        //   ww/3: @1 0.9, @5 0.3, @8 0.3     coco/a: @1 0.3, @5 0.3, @8 0   coco/b: @1 0.4, else 0.2
        let ww = [
            (0.5 + 0.1 + 0.9) / 3.0,
            (0.2 + 0.1 + 0.3) / 3.0,
            (0.05 + 0.1 + 0.3) / 3.0,
        ];
        let coco = [(0.3 + 0.4) / 2.0, (0.3 + 0.2) / 2.0, (0.0 + 0.2) / 2.0];
        for (i, k) in ["@1", "@5", "@8"].into_iter().enumerate() {
            assert!(close(at(&t, "nli_pc", k, "ww"), ww[i]), "nli_pc {k}");
            assert!(close(at(&t, "nli_pc", k, "coco"), coco[i]), "nli_pc {k}");
            assert!(close(at(&t, "nli_pc", k, OVERALL), (ww[i] + coco[i]) / 2.0));
        }
        // label_match is 1 only for beams at 0.9 or above: ww/1 beam 6, coco/a beam 8.
        assert!(close(at(&t, "label_match", "@1", OVERALL), 0.0));
        assert!(close(at(&t, "label_match", "@5", OVERALL), 0.0));
        assert!(close(at(&t, "label_match", "@8", "ww"), 1.0 / 3.0));
        assert!(close(at(&t, "label_match", "@8", "coco"), 0.5));
        assert!(close(
            at(&t, "label_match", "@8", OVERALL),
            (1.0 / 3.0 + 0.5) / 2.0
        ));
        // bleurt was never computed: absent, not 0.
        assert!(!t.contains_key("bleurt"));
        assert_eq!(t.len(), 5);
        assert_eq!(t["verb_sim"].keys().collect::<Vec<_>>(), ["@1", "@5", "@8"]);
        assert_eq!(
            t["verb_sim"]["@1"].keys().collect::<Vec<_>>(),
            ["coco", OVERALL, "ww"]
        );
    }

    #[test]
    fn metric_missing_on_one_beam_is_absent() {
        let mut r = results();
        r[4].beams[7].nli_pe = None; // outside @1 and @5, still drops the metric
        let t = aggregate(&r, &PAPER_KS);
        assert!(!t.contains_key("nli_pe"));
        assert!(t.contains_key("verb_sim"));
    }

    #[test]
    fn aggregate_degenerate_inputs() {
        assert!(aggregate(&[], &PAPER_KS).is_empty());
        let t = aggregate(&results(), &[0, 2]);
        assert_eq!(t["verb_sim"].keys().collect::<Vec<_>>(), ["@2"]);
        let mut r = results();
        r[0].beams.clear();
        assert!(aggregate(&r, &PAPER_KS).is_empty());
    }

    fn preds(text: &str) -> Result<Vec<PredictionRecord>> {
        parse_predictions(text, "p.jsonl")
    }

    #[test]
    fn reads_predictions() {
        let p = preds(concat!(
            r#"{"source": "ww", "id": "002130", "beams": [{"text": "_ hugging _", "score": -1.5}, {"text": "_ kissing _"}]}"#,
            "\n\n",
            r#"{"source": "coco", "id": "7", "beams": [{"text": "_ waving to _"}]}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].beams[0].score, Some(-1.5));
        assert_eq!(p[0].beams[1].score, None);
        assert_eq!(p[1].id, "7");
        // Round trip: an absent score stays absent.
        let line = serde_json::to_string(&p[1]).unwrap();
        assert!(!line.contains("score"), "{line}");
    }

    #[test]
    fn prediction_errors_name_lines() {
        let good = r#"{"source": "ww", "id": "1", "beams": [{"text": "_ hugging _"}]}"#;
        let e = format!(
            "{:#}",
            preds(&format!("{good}\n\n{{\"source\": \"ww\"\n")).unwrap_err()
        );
        assert!(e.starts_with("p.jsonl:3:"), "{e}");
        let e = preds(r#"{"source": "ww", "id": "1", "beams": []}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.jsonl:1:") && e.contains("ww/1") && e.contains("no beams"),
            "{e}"
        );
        let e = preds(&format!("{good}\n{good}\n")).unwrap_err().to_string();
        assert!(e.contains("lines 1 and 2"), "{e}");
    }

    fn record(source: &str, id: &str) -> PredictionRecord {
        PredictionRecord {
            source: source.into(),
            id: id.into(),
            beams: vec![Beam {
                text: "_ hugging _".into(),
                score: None,
            }],
        }
    }

    #[test]
    fn match_items_orders_and_counts_extras() {
        let test = [("ww", "2"), ("coco", "1"), ("ww", "1")];
        let p = vec![
            record("ww", "1"),
            record("cc", "9"),
            record("coco", "1"),
            record("ww", "2"),
        ];
        let m = match_items(&test, p).unwrap();
        let keys: Vec<_> = m
            .records
            .iter()
            .map(|r| (r.source.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(keys, test);
        assert_eq!(m.extra, 1);
    }

    #[test]
    fn match_items_lists_missing() {
        let test: Vec<(String, String)> = (0..25)
            .map(|i| ("ww".to_string(), format!("{i:03}")))
            .collect();
        let e = match_items(&test, vec![record("ww", "000"), record("ww", "003")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("23 test items have no prediction: ww/001, ww/002, ww/004"),
            "{e}"
        );
        assert!(e.contains("ww/021") && !e.contains("ww/022"), "{e}");
        assert!(e.ends_with("and 3 more"), "{e}");
        let e = match_items(&[("ww", "1"), ("ww", "1")], vec![record("ww", "1")]).unwrap_err();
        assert!(e.to_string().contains("listed twice"));
    }

    #[test]
    fn most_frequent_breaks_ties_by_label() {
        let labels = ["_ b _", "_ a _", "_ c _", "_ b _", "_ c _", "_ d _"];
        assert_eq!(most_frequent(labels, 3), ["_ b _", "_ c _", "_ a _"]);
        assert_eq!(
            most_frequent(labels.iter().copied().rev(), 3),
            ["_ b _", "_ c _", "_ a _"]
        );
        assert_eq!(most_frequent(labels, 10).len(), 4);
        assert!(most_frequent([], 3).is_empty());
    }

    #[test]
    fn chance_beams_are_deterministic_distinct_and_order_free() {
        let c: Vec<String> = (0..30).map(|i| format!("_ verb{i:02} _")).collect();
        let a = chance_beams(&c, 8, 7, 3);
        assert_eq!(a.len(), 8);
        assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 8);
        assert_eq!(a, chance_beams(&c, 8, 7, 3));
        let mut shuffled = c.clone();
        shuffled.reverse();
        shuffled.extend(c.iter().take(5).cloned()); // duplicates do not weigh more
        assert_eq!(a, chance_beams(&shuffled, 8, 7, 3));
        assert_ne!(a, chance_beams(&c, 8, 7, 4));
        assert_ne!(a, chance_beams(&c, 8, 8, 3));
        let mut all = chance_beams(&c[..5], 8, 7, 3);
        all.sort();
        assert_eq!(all, &c[..5]);
        assert!(chance_beams(&[], 8, 7, 3).is_empty());
    }

    #[test]
    fn chance_beams_are_roughly_uniform() {
        let c: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let mut counts = [0usize; 10];
        for item in 0..5000 {
            for l in chance_beams(&c, 2, 1, item) {
                counts[l.parse::<usize>().unwrap()] += 1;
            }
        }
        // Each label is expected 1000 times; 5 standard deviations is about ±150.
        assert!(
            counts.iter().all(|&n| (850..1150).contains(&n)),
            "{counts:?}"
        );
    }
}
