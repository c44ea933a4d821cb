//! The method's pipelines end to end through the real binary: `smoke.toml` runs, edits
//! rerun exactly what depends on them, and two fresh stores agree on every digest.
mod common;

use common::Project;
use hhi::context::StageContext;
use hhi::params::{Params, Value};
use hhi::progress::Progress;
use hhi::registry::StageKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SMOKE: &str = "pipelines/smoke.toml";

/// A project holding copies of `pipelines/smoke.toml` and its prompt files.
fn smoke_project() -> Project {
    let p = Project::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    p.write(SMOKE, &std::fs::read_to_string(src.join("smoke.toml")).unwrap());
    for f in ["interactions.txt", "captions.txt"] {
        let text = std::fs::read_to_string(src.join("prompts").join(f)).unwrap();
        p.write(&format!("pipelines/prompts/{f}"), &text);
    }
    p
}

/// The stages `plan --json` says would run.
fn stale(p: &Project) -> Vec<String> {
    let plan = p.plan_json(SMOKE);
    let mut v: Vec<String> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] != "fresh")
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn smoke_runs_end_to_end_and_edits_rerun_only_their_descendants() {
    let p = smoke_project();
    let out = p.run(SMOKE);
    assert!(out.values().all(|s| s == "ran"), "{out:?}");
    assert_eq!(out.len(), 13, "{out:?}");
    assert!(stale(&p).is_empty());

    // The synthesis prompt: stage 3 and what follows from it.
    let prompt = p.read("pipelines/prompts/captions.txt");
    p.write(
        "pipelines/prompts/captions.txt",
        &prompt.replace("Caption of image", "Caption of a picture"),
    );
    assert_eq!(
        stale(&p),
        names(&["synth", "filter", "summarizer", "labels", "postprocess", "diagnose"])
    );
    p.write("pipelines/prompts/captions.txt", &prompt);
    assert!(stale(&p).is_empty());

    // The summarizer's learning rate: stage 5 and what follows from it.
    let toml = p.read(SMOKE);
    let edited = toml.replacen("lr = 1e-3\nepochs", "lr = 2e-3\nepochs", 1);
    assert_ne!(edited, toml, "smoke.toml sets the summarizer's lr");
    p.write(SMOKE, &edited);
    assert_eq!(
        stale(&p),
        names(&["summarizer", "labels", "postprocess", "diagnose"])
    );
    p.write(SMOKE, &toml);

    // Two fresh stores: the same keys and digests for every artifact.
    let q = smoke_project();
    q.run(SMOKE);
    assert_eq!(p.read("pipelines/smoke.lock"), q.read("pipelines/smoke.lock"));
}

// ---- development harness (ignored): runs kinds directly, outside a store, with timings.

/// Runs one kind in `root/<name>` unless its outputs exist; returns the output paths.
fn stage(
    root: &Path,
    name: &str,
    kind: &dyn StageKind,
    params: &[(&str, Value)],
    inputs: &[(&str, PathBuf)],
) -> BTreeMap<String, PathBuf> {
    let dir = root.join(name);
    let out = dir.join("out");
    let mut values = BTreeMap::new();
    for spec in kind.params() {
        if let Some(d) = spec.default {
            values.insert(spec.name.to_string(), d);
        }
    }
    for (k, v) in params {
        values.insert(k.to_string(), v.clone());
    }
    let params = Params(values);
    let sig = kind.signature(&params).unwrap();
    let outputs: BTreeMap<String, PathBuf> = sig
        .outputs
        .iter()
        .map(|o| (o.name.clone(), out.join(&o.name)))
        .collect();
    if dir.join("done").exists() {
        return outputs;
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let mut ctx = StageContext::new(
        name.into(),
        params,
        17,
        "ndarray".into(),
        root.to_path_buf(),
        inputs.iter().map(|(k, p)| (k.to_string(), p.clone())).collect(),
        outputs.clone(),
        dir.join("work"),
        Progress::hidden(),
    );
    let t = std::time::Instant::now();
    kind.run(&mut ctx).unwrap();
    let line = format!("{name}: {:.1}s {:?}\n", t.elapsed().as_secs_f64(), ctx_figures(&ctx));
    eprint!("{line}");
    use std::io::Write;
    std::fs::OpenOptions::new().create(true).append(true).open(root.join("times.txt")).unwrap().write_all(line.as_bytes()).unwrap();
    std::fs::write(dir.join("done"), "").unwrap();
    outputs
}

fn ctx_figures(_ctx: &StageContext) -> String {
    String::new()
}

#[test]
#[ignore]
fn dev_chain() {
    use hhi::stages::*;
    let root = PathBuf::from(std::env::var("DEV_ROOT").unwrap_or("/tmp/h3dev".into()));
    let i = |x: i64| Value::Int(x);
    let f = |x: f64| Value::Float(x);
    let world = stage(&root, "world", &toy_world::ToyWorld, &[], &[]);
    let caps = stage(
        &root,
        "import",
        &import_whos_waldo::ImportWhosWaldo,
        &[],
        &[("data", world["whos_waldo"].clone())],
    );
    // Stage 1 directly from the rules.
    let seeds = root.join("seeds.jsonl");
    if !seeds.exists() {
        let docs: Vec<io::Doc> = io::read_jsonl(&world["news"]).unwrap();
        let mut out = Vec::new();
        for d in docs {
            for l in hhi::text::extract::caption_lines(&d.text) {
                for s in hhi::text::extract::extract_interactions(&l) {
                    out.push(io::Interaction {
                        interaction: s,
                        caption: l.clone(),
                    });
                }
            }
        }
        io::write_jsonl(&seeds, &out).unwrap();
    }
    let tok = stage(
        &root,
        "tok",
        &train_tokenizer::TrainTokenizer,
        &[("vocab_size", i(1000))],
        &[("corpus", world["pretrain"].clone())],
    );
    let lm = stage(
        &root,
        "lm",
        &train_lm::TrainLm,
        &[("max_steps", i(std::env::var("LM_STEPS").map(|s| s.parse().unwrap()).unwrap_or(300)))],
        &[("corpus", world["pretrain"].clone()), ("tokenizer", tok["tokenizer"].clone())],
    );
    let p2 = root.join("p2.txt");
    std::fs::write(&p2, "{seeds}\n").unwrap();
    let gi = stage(
        &root,
        "gen",
        &generate_interactions::GenerateInteractions,
        &[("count", i(300))],
        &[("lm", lm["model"].clone()), ("seeds", seeds.clone()), ("prompt", p2)],
    );
    let p3 = root.join("p3.txt");
    std::fs::write(&p3, "Caption of image showing {interaction}:\n{caption}\n\n").unwrap();
    let syn = stage(
        &root,
        "syn",
        &synthesize_captions::SynthesizeCaptions,
        &[("count", i(std::env::var("SYN").map(|s| s.parse().unwrap()).unwrap_or(500))), ("shots", i(std::env::var("SHOTS").map(|s| s.parse().unwrap()).unwrap_or(4)))],
        &[
            ("lm", lm["model"].clone()),
            ("interactions", gi["interactions"].clone()),
            ("captions", caps["captions"].clone()),
            ("prompt", p3),
        ],
    );
    let filt = stage(
        &root,
        "filter",
        &filter_pairs::FilterPairs,
        &[],
        &[("pairs", syn["pairs"].clone())],
    );
    let t5 = stage(
        &root,
        "t5",
        &train_summarizer::TrainSummarizer,
        &[("lr", f(1e-3)), ("epochs", i(std::env::var("T5_EPOCHS").map(|s| s.parse().unwrap()).unwrap_or(5)))],
        &[("pairs", filt["pairs"].clone()), ("tokenizer", tok["tokenizer"].clone())],
    );
    let labels = stage(
        &root,
        "label",
        &pseudo_label::PseudoLabelKind,
        &[],
        &[("model", t5["model"].clone()), ("captions", caps["captions"].clone())],
    );
    let truth: Vec<io::TruthRecord> = io::read_jsonl(&world["truth"]).unwrap();
    let truth: BTreeMap<String, io::TruthRecord> =
        truth.into_iter().map(|t| (t.id.clone(), t)).collect();
    let got: Vec<io::PseudoLabel> = io::read_jsonl(&labels["labels"]).unwrap();
    let (mut n, mut ok) = (0, 0);
    for l in &got {
        if let Some(t) = truth.get(&l.id)
            && t.caption_states_interaction
        {
            n += 1;
            ok += (l.label == t.label) as usize;
        }
    }
    eprintln!("accuracy {ok}/{n} = {:.3}", ok as f64 / n.max(1) as f64);
}

#[test]
#[ignore]
fn dev_sample() {
    use hhi::models::generate::{SampleOptions, sample_streams};
    let root = PathBuf::from(std::env::var("DEV_ROOT").unwrap_or("/tmp/h3dev".into()));
    let dev = Default::default();
    let lmdir = root.join(std::env::var("LM_NAME").unwrap_or("lm".into())).join("out/model"); let (m, _) = hhi::models::gpt_neo::GptNeo::<hhi::models::Cpu>::load(&lmdir, &dev).unwrap();
    let tok = hhi::text::tokenizer::Tokenizer::load(&lmdir).unwrap();
    let prompt = std::env::var("PROMPT").unwrap().replace("\\n", "\n");
    let ids = tok.encode(&prompt).unwrap();
    eprintln!("{} tokens", ids.len());
    let o = SampleOptions { max_new_tokens: 60, temperature: std::env::var("TEMP").map(|t| t.parse().unwrap()).unwrap_or(1.0), top_p: 0.95, no_repeat_ngram: 3, stop_token: tok.token_id("\n"), seed: 1, ..Default::default() };
    let rows: Vec<Vec<u32>> = (0..8).map(|_| ids.clone()).collect();
    let out = sample_streams(&m, &rows, &(0..8).collect::<Vec<u64>>(), &o, &dev).unwrap();
    for r in out {
        eprintln!("---- {:?}", tok.decode(&r[ids.len()..]).unwrap());
    }
}

#[test]
#[ignore]
fn dev_lm() {
    use hhi::stages::*;
    let root = PathBuf::from(std::env::var("DEV_ROOT").unwrap_or("/tmp/h3dev".into()));
    let e = |k: &str, d: i64| Value::Int(std::env::var(k).map(|s| s.parse().unwrap()).unwrap_or(d));
    let name = std::env::var("LM_NAME").unwrap_or("lmx".into());
    let _ = std::fs::remove_dir_all(root.join(&name));
    stage(
        &root,
        &name,
        &train_lm::TrainLm,
        &[
            ("max_steps", e("LM_STEPS", 20)),
            ("hidden", e("HIDDEN", 128)),
            ("layers", e("LAYERS", 2)),
            ("seq_len", e("SEQ", 256)),
            ("batch", e("BATCH", 8)),
            ("epochs", Value::Float(100.0)),
            ("lr", Value::Float(std::env::var("LR").map(|s| s.parse().unwrap()).unwrap_or(1e-3))),
        ],
        &[("corpus", root.join("world/out/pretrain")), ("tokenizer", root.join(std::env::var("TOK").unwrap_or("tok".into())).join("out/tokenizer"))],
    );
}
