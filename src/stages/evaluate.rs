//! `evaluate`: stage 10. Scores predictions (hhi's own `predict` output, or any system's,
//! imported as `Predictions`) against a benchmark table: label and verb exact match, verb
//! similarity from word vectors (`glove`), NLI p_e / p_c with a BART-MNLI checkpoint
//! (`nli`, premise = the item's caption, hypothesis = the prediction), aggregated @1/@5/@8
//! as the paper does (`text::eval`). Beside the model: the most frequent training
//! pseudo-label (with `labels`) and chance (labels drawn uniformly from the benchmark's
//! distinct labels), scored the same way.

use super::filter_pairs::Nli;
use super::io::{PseudoLabel, TableItem, optional_input, read_jsonl, write_jsonl};
use super::train_tokenizer::backend;
use crate::context::StageContext;
use crate::params::ParamSpec;
use crate::registry::{PortSpec, StageKind};
use crate::text::eval::{
    self, BeamScores, ItemScores, OVERALL, PAPER_KS, chance_beams, match_items, most_frequent,
    read_predictions, score_beam,
};
use crate::text::glove::WordVectors;
use crate::types::ArtifactType;
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub struct Evaluate;

impl StageKind for Evaluate {
    fn name(&self) -> &'static str {
        "evaluate"
    }
    fn version(&self) -> u32 {
        4
    }
    fn about(&self) -> &'static str {
        "stage 10: scores predictions @1/@5/@8 (label/verb match, verb similarity, NLI) beside the most-frequent-label and chance baselines"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::int(
                "baseline_beams",
                8,
                "beams of each baseline (the most frequent labels in order; chance draws)",
            )
            .range(1.0, 1000.0),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "testset",
                ArtifactType::Table,
                "the benchmark (import_wenda, import_imsitu, or the toy world's test split)",
            ),
            PortSpec::new(
                "predictions",
                ArtifactType::Predictions,
                "JSONL {source, id, beams: [{text, score?}]} (predict, or another system's)",
            ),
            PortSpec::new(
                "labels",
                ArtifactType::PseudoLabels,
                "the training pseudo-labels, for the most-frequent-label baseline",
            )
            .optional(),
            PortSpec::new(
                "glove",
                ArtifactType::Any,
                "word vectors in GloVe or word2vec text format, for verb similarity",
            )
            .optional(),
            PortSpec::new(
                "nli",
                ArtifactType::Any,
                "a BART-MNLI checkpoint folder, for NLI p_e and p_c",
            )
            .optional(),
            PortSpec::new(
                "bleurt",
                ArtifactType::Any,
                "a BLEURT-20 checkpoint folder (bleurt-pytorch's layout + tokenizer.json: tools/convert_bleurt.py), for BLEURT",
            )
            .optional(),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![
            PortSpec::new(
                "metrics",
                ArtifactType::Metrics,
                "metrics.json {model, most_frequent, chance}: metric → @k → source/overall",
            ),
            PortSpec::new(
                "items",
                ArtifactType::Stats,
                "JSONL per item: label, caption and each beam's scores",
            ),
        ]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let nli_dir = optional_input(ctx, "nli");
        let bleurt_dir = optional_input(ctx, "bleurt");
        if nli_dir.is_none() && bleurt_dir.is_none() {
            return run(ctx, None, None);
        }
        let kind = backend(ctx)?;
        crate::with_backend!(kind, B, _AD => {
            let nli = nli_dir.map(|d| Nli::<B>::load(&d)).transpose()?;
            let bleurt = bleurt_dir
                .map(|d| crate::models::bleurt::Scorer::<B>::load(&d, &Default::default()))
                .transpose()?;
            let nli_fn = |pairs: &[(&str, &str)]| match &nli {
                Some(m) => m.scores(pairs),
                None => Ok(Vec::new()),
            };
            let bleurt_fn = |pairs: &[(&str, &str)]| match &bleurt {
                Some(m) => m.scores(pairs, BLEURT_BATCH),
                None => Ok(Vec::new()),
            };
            run(
                ctx,
                nli.as_ref().map(|_| &nli_fn as &NliFn),
                bleurt.as_ref().map(|_| &bleurt_fn as &BleurtFn),
            )
        })
    }
}

/// Pairs per BLEURT forward pass (an item's beams fit in one).
const BLEURT_BATCH: usize = 32;

type NliFn<'a> =
    dyn Fn(&[(&str, &str)]) -> anyhow::Result<Vec<crate::models::bart::NliScores>> + 'a;
/// BLEURT scores of (reference, candidate) pairs.
type BleurtFn<'a> = dyn Fn(&[(&str, &str)]) -> anyhow::Result<Vec<f32>> + 'a;

#[derive(Serialize)]
struct ItemOut<'a> {
    source: &'a str,
    id: &'a str,
    label: &'a str,
    caption: &'a str,
    beams: Vec<BeamOut<'a>>,
}

#[derive(Serialize)]
struct BeamOut<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    #[serde(flatten)]
    scores: &'a BeamScores,
}

/// Scores of `beams` for `item`, NLI included when a model is given.
fn score_item(
    item: &TableItem,
    beams: &[&str],
    vectors: Option<&WordVectors>,
    nli: Option<&NliFn>,
    bleurt: Option<&BleurtFn>,
) -> anyhow::Result<Vec<BeamScores>> {
    let label = eval::reference(&item.label);
    let mut out: Vec<BeamScores> = beams
        .iter()
        .map(|b| score_beam(b, &label, vectors))
        .collect();
    if let Some(nli) = nli {
        let pairs: Vec<(&str, &str)> = beams.iter().map(|b| (item.caption.as_str(), *b)).collect();
        for (s, p) in out.iter_mut().zip(nli(&pairs)?) {
            s.nli_pe = Some(p.entailment as f64);
            s.nli_pc = Some(p.contradiction as f64);
        }
    }
    if let Some(bleurt) = bleurt {
        // The paper reads `_` as `person` on both sides.
        let reference = eval::person_form(&label);
        let cands: Vec<String> = beams.iter().map(|b| eval::person_form(b)).collect();
        let pairs: Vec<(&str, &str)> = cands
            .iter()
            .map(|c| (reference.as_str(), c.as_str()))
            .collect();
        for (s, v) in out.iter_mut().zip(bleurt(&pairs)?) {
            s.bleurt = Some(v as f64);
        }
    }
    Ok(out)
}

fn read_vectors(path: &Path) -> anyhow::Result<WordVectors> {
    if path.is_dir() {
        let mut txt: Vec<_> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        txt.sort();
        match txt.as_slice() {
            [one] => return WordVectors::read(one),
            _ => bail!(
                "{}: give `glove` one vectors file (found {} .txt files in the folder)",
                path.display(),
                txt.len()
            ),
        }
    }
    WordVectors::read(path)
}

fn run(
    ctx: &mut StageContext,
    nli: Option<&NliFn>,
    bleurt: Option<&BleurtFn>,
) -> anyhow::Result<()> {
    let table_dir = ctx.input("testset")?.to_path_buf();
    let test: Vec<TableItem> = read_jsonl(&table_dir.join("items.jsonl"))?;
    if test.is_empty() {
        bail!("{}: the test set is empty", table_dir.display());
    }
    let keys: Vec<(&str, &str)> = test
        .iter()
        .map(|t| (t.source.as_str(), t.id.as_str()))
        .collect();
    let preds = read_predictions(ctx.input("predictions")?)?;
    let matched = match_items(&keys, preds)?;
    let vectors = optional_input(ctx, "glove")
        .map(|p| read_vectors(&p))
        .transpose()?;
    let n_base = ctx.params.int("baseline_beams") as usize;

    ctx.progress().start(test.len() as u64, "items");
    let mut model_items = Vec::with_capacity(test.len());
    let mut per_item = Vec::with_capacity(test.len());
    for (item, rec) in test.iter().zip(&matched.records) {
        let texts: Vec<&str> = rec.beams.iter().map(|b| b.text.as_str()).collect();
        let scores = score_item(item, &texts, vectors.as_ref(), nli, bleurt)?;
        model_items.push(ItemScores {
            source: item.source.clone(),
            id: item.id.clone(),
            beams: scores,
        });
        ctx.progress().inc(1);
    }
    for ((item, rec), scored) in test.iter().zip(&matched.records).zip(&model_items) {
        per_item.push(ItemOut {
            source: &item.source,
            id: &item.id,
            label: &item.label,
            caption: &item.caption,
            beams: rec
                .beams
                .iter()
                .zip(&scored.beams)
                .map(|(b, s)| BeamOut {
                    text: &b.text,
                    score: b.score,
                    scores: s,
                })
                .collect(),
        });
    }

    let mut tables = BTreeMap::new();
    tables.insert("model", eval::aggregate(&model_items, &PAPER_KS));
    // Baselines, scored exactly like the model.
    let baseline = |beams_of: &dyn Fn(usize) -> Vec<String>| -> anyhow::Result<eval::Table> {
        let mut items = Vec::with_capacity(test.len());
        for (i, item) in test.iter().enumerate() {
            let beams = beams_of(i);
            let refs: Vec<&str> = beams.iter().map(String::as_str).collect();
            items.push(ItemScores {
                source: item.source.clone(),
                id: item.id.clone(),
                beams: score_item(item, &refs, vectors.as_ref(), nli, bleurt)?,
            });
        }
        Ok(eval::aggregate(&items, &PAPER_KS))
    };
    if let Some(path) = optional_input(ctx, "labels") {
        let labels: Vec<PseudoLabel> = read_jsonl(&path)?;
        let top = most_frequent(labels.iter().map(|l| l.label.as_str()), n_base);
        if top.is_empty() {
            // No number rather than a made-up one.
            tracing::warn!(
                "evaluate: {} holds no pseudo-labels; no most-frequent-label baseline",
                path.display()
            );
        } else {
            super::io::StageLog::open(ctx).line(format!("most frequent training labels: {top:?}"));
            tables.insert("most_frequent", baseline(&|_| top.clone())?);
        }
    }
    let mut candidates: Vec<String> = test.iter().map(|t| eval::reference(&t.label)).collect();
    candidates.sort();
    candidates.dedup();
    let seed = ctx.seed;
    tables.insert(
        "chance",
        baseline(&|i| chance_beams(&candidates, n_base, seed, i as u64))?,
    );

    let out = ctx.output("metrics")?;
    std::fs::write(out, serde_json::to_vec_pretty(&tables)?)
        .with_context(|| format!("writing {}", out.display()))?;
    write_jsonl(ctx.output("items")?, &per_item)?;
    for (table, t) in &tables {
        for (metric, ks) in t {
            for (k, sources) in ks {
                if let Some(v) = sources.get(OVERALL) {
                    ctx.figure(&format!("{table}.{metric}{k}"), *v);
                }
            }
        }
    }
    ctx.figure("items", test.len() as f64);
    ctx.figure("extra_predictions", matched.extra as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::io::testing::run_kind;

    fn table(dir: &Path) -> std::path::PathBuf {
        let t = dir.join("table");
        std::fs::create_dir_all(&t).unwrap();
        let rows = [
            ("ww", "1", "_ shaking hands with _"),
            ("ww", "2", "_ hugging _"),
            ("cc", "3", "_ hugging _"),
        ];
        let items: Vec<TableItem> = rows
            .iter()
            .map(|(s, id, l)| TableItem {
                id: id.to_string(),
                source: s.to_string(),
                label: l.to_string(),
                caption: "[NAME] and [NAME]".into(),
                image: String::new(),
            })
            .collect();
        write_jsonl(&t.join("items.jsonl"), &items).unwrap();
        t
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn scores_the_paper_tables_with_both_baselines() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let preds = write(
            d,
            "preds.jsonl",
            "{\"source\":\"ww\",\"id\":\"1\",\"beams\":[{\"text\":\"_ hugging _\"},{\"text\":\"_ shaking hands with _\"}]}\n\
             {\"source\":\"ww\",\"id\":\"2\",\"beams\":[{\"text\":\"_ hugging _\",\"score\":-0.5}]}\n\
             {\"source\":\"cc\",\"id\":\"3\",\"beams\":[{\"text\":\"_ kissing _\"}]}\n\
             {\"source\":\"cc\",\"id\":\"9\",\"beams\":[{\"text\":\"_ kissing _\"}]}\n",
        );
        let labels = write(
            d,
            "labels.jsonl",
            "{\"id\":\"a\",\"caption\":\"c\",\"label\":\"_ hugging _\",\"weight\":1.0}\n\
             {\"id\":\"b\",\"caption\":\"c\",\"label\":\"_ hugging _\",\"weight\":1.0}\n\
             {\"id\":\"c\",\"caption\":\"c\",\"label\":\"_ kissing _\",\"weight\":1.0}\n",
        );
        let glove = write(
            d,
            "v.txt",
            "2 2\nhugging 1 0\nkissing 0.6 0.8\nshaking 0 1\n",
        );
        let (r, fig, out) = run_kind(
            &Evaluate,
            d,
            &[],
            &[
                ("testset", table(d)),
                ("predictions", preds),
                ("labels", labels),
                ("glove", glove),
            ],
        );
        r.unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out["metrics"]).unwrap()).unwrap();
        let at = |t: &str, metric: &str, k: &str, s: &str| m[t][metric][k][s].as_f64().unwrap();
        // @1: ww item 1 wrong, item 2 right → 0.5; cc item 3 wrong → 0; overall 0.25.
        assert_eq!(at("model", "label_match", "@1", "ww"), 0.5);
        assert_eq!(at("model", "label_match", "@1", "cc"), 0.0);
        assert_eq!(at("model", "label_match", "@1", "overall"), 0.25);
        // @5: item 1's second beam is right.
        assert_eq!(at("model", "label_match", "@5", "ww"), 1.0);
        // Verb similarity: kissing vs hugging = 0.6.
        assert!((at("model", "verb_sim", "@1", "cc") - 0.6).abs() < 1e-6);
        // Most frequent training label `_ hugging _` as beam 1 for every item.
        assert_eq!(at("most_frequent", "label_match", "@1", "ww"), 0.5);
        assert_eq!(at("most_frequent", "label_match", "@1", "cc"), 1.0);
        assert!(m["chance"]["label_match"]["@8"]["overall"].is_number());
        assert!(m["model"].get("nli_pe").is_none() && m["model"].get("bleurt").is_none());
        assert_eq!(fig["extra_predictions"], 1.0);
        assert_eq!(fig["model.label_match@1"], 0.25);
        let items = std::fs::read_to_string(&out["items"]).unwrap();
        assert_eq!(items.lines().count(), 3);
        assert!(items.contains("\"verb_sim\":0.6"), "{items}");
    }

    /// With `bleurt` (the tiny parity checkpoint of tests/bleurt.rs), every beam gets the
    /// score the model gives (label, prediction) with `_` read as `person`, and the tables
    /// gain `bleurt` @1/@5/@8 for the model and the baselines.
    #[test]
    fn bleurt_scores_every_beam_and_joins_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let preds = write(
            d,
            "preds.jsonl",
            "{\"source\":\"ww\",\"id\":\"1\",\"beams\":[{\"text\":\"_ hugging _\"},{\"text\":\"_ shaking hands with _\"}]}\n\
             {\"source\":\"ww\",\"id\":\"2\",\"beams\":[{\"text\":\"_ hugging _\"}]}\n\
             {\"source\":\"cc\",\"id\":\"3\",\"beams\":[{\"text\":\"_ kissing _\"}]}\n",
        );
        let ckpt = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleurt");
        let (r, fig, out) = run_kind(
            &Evaluate,
            d,
            &[],
            &[
                ("testset", table(d)),
                ("predictions", preds),
                ("bleurt", ckpt.clone()),
            ],
        );
        r.unwrap();
        let scorer =
            crate::models::bleurt::Scorer::<crate::models::Cpu>::load(&ckpt, &Default::default())
                .unwrap();
        let want = scorer
            .scores(
                &[
                    ("person shaking hands with person", "person hugging person"),
                    (
                        "person shaking hands with person",
                        "person shaking hands with person",
                    ),
                ],
                2,
            )
            .unwrap();
        let items = std::fs::read_to_string(&out["items"]).unwrap();
        let first: serde_json::Value = serde_json::from_str(items.lines().next().unwrap()).unwrap();
        for (b, w) in first["beams"].as_array().unwrap().iter().zip(&want) {
            assert!(
                (b["bleurt"].as_f64().unwrap() - *w as f64).abs() < 1e-6,
                "{b}"
            );
        }
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out["metrics"]).unwrap()).unwrap();
        for t in ["model", "chance"] {
            for k in ["@1", "@5", "@8"] {
                assert!(m[t]["bleurt"][k]["overall"].is_number(), "{t} {k}: {m}");
            }
        }
        // @5 takes the better of item 1's two beams.
        let ww5 = m["model"]["bleurt"]["@5"]["ww"].as_f64().unwrap();
        let ww1 = m["model"]["bleurt"]["@1"]["ww"].as_f64().unwrap();
        assert!(ww5 >= ww1);
        assert!(fig.contains_key("model.bleurt@1"));
    }

    #[test]
    fn missing_predictions_and_bad_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let preds = write(
            d,
            "preds.jsonl",
            "{\"source\":\"ww\",\"id\":\"1\",\"beams\":[{\"text\":\"_ hugging _\"}]}\n",
        );
        let (r, _, _) = run_kind(
            &Evaluate,
            d,
            &[],
            &[("testset", table(d)), ("predictions", preds)],
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("ww/2") && e.contains("cc/3"), "{e}");
        let bad = write(
            d,
            "bad.jsonl",
            "{\"source\":\"ww\",\"id\":\"1\",\"beams\":[{\"text\":\"_ a _\"}]}\nnot json\n",
        );
        let (r, _, _) = run_kind(
            &Evaluate,
            d,
            &[],
            &[("testset", table(d)), ("predictions", bad)],
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("bad.jsonl:2"), "{e}");
    }
}
