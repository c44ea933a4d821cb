//! The method's non-model stage kinds run through the library, chained as a pipeline
//! chains them: toy_world → import_whos_waldo / import_wenda / import_news →
//! extract_interactions. The toy world written in the real formats must read back through
//! the importers that read real data.

use hhi::params::{Params, Value};
use hhi::progress::Progress;
use hhi::{Registry, StageContext};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn registry() -> Registry {
    let mut r = Registry::empty();
    hhi::stages::register_method(&mut r);
    r
}

/// Runs one kind with defaults overridden by `params`; returns its output paths.
fn run(
    r: &Registry,
    kind: &str,
    dir: &Path,
    name: &str,
    params: &[(&str, Value)],
    inputs: &[(&str, PathBuf)],
) -> BTreeMap<String, PathBuf> {
    let k = r.get(kind).unwrap_or_else(|| panic!("kind {kind}"));
    let mut values = BTreeMap::new();
    for spec in k.params() {
        if let Some(d) = spec.default {
            values.insert(spec.name.to_string(), d);
        }
    }
    for (n, v) in params {
        values.insert(n.to_string(), v.clone());
    }
    let params = Params(values);
    let sig = k.signature(&params).unwrap();
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let outputs: BTreeMap<String, PathBuf> = sig
        .outputs
        .iter()
        .map(|o| (o.name.clone(), out.join(&o.name)))
        .collect();
    let work = dir.join(format!("{name}.work"));
    std::fs::create_dir_all(&work).unwrap();
    let mut ctx = StageContext::new(
        name.into(),
        params,
        11,
        "ndarray".into(),
        dir.to_path_buf(),
        inputs
            .iter()
            .map(|(k, p)| (k.to_string(), p.clone()))
            .collect(),
        outputs.clone(),
        work,
        Progress::hidden(),
    );
    ctx.set_log_path(dir.join(format!("{name}.log")));
    let t = Instant::now();
    k.run(&mut ctx).unwrap_or_else(|e| panic!("{kind}: {e:#}"));
    eprintln!("{kind:<22} {:>7.2} s", t.elapsed().as_secs_f64());
    outputs
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The chain at a given size; returns the extraction stats.
fn chain(dir: &Path, toy: &[(&str, Value)]) -> serde_json::Value {
    let r = registry();
    let world = run(&r, "toy_world", dir, "toy", toy, &[]);
    let caps = run(
        &r,
        "import_whos_waldo",
        dir,
        "ww",
        &[],
        &[("data", world["whos_waldo"].clone())],
    );
    let bench = run(
        &r,
        "import_wenda",
        dir,
        "wenda",
        &[],
        &[("csv", world["waldo_wenda"].clone())],
    );
    let news = run(
        &r,
        "import_news",
        dir,
        "news",
        &[],
        &[("data", world["news"].clone())],
    );
    let seeds = run(
        &r,
        "extract_interactions",
        dir,
        "seeds",
        &[],
        &[("articles", news["articles"].clone())],
    );

    // Who's Waldo: every two-person item with its split; nothing bad in the toy world.
    let truth = lines(&world["truth"]);
    let captions = lines(&caps["captions"]);
    let ww_truth = truth.iter().filter(|t| t["source"] == "ww").count();
    assert!(
        captions.len() > ww_truth * 8 / 10,
        "{} of {ww_truth}",
        captions.len()
    );
    assert!(captions.iter().all(|c| c["persons"].as_u64().unwrap() >= 2));
    assert!(captions.iter().all(|c| c["split"] != ""));
    assert!(
        !dir.join("ww.log").exists()
            || !std::fs::read_to_string(dir.join("ww.log"))
                .unwrap()
                .contains("bad")
    );

    // The benchmark: every row, with its image, labels in the strict form.
    let items = lines(&bench["items"].join("items.jsonl"));
    let bench_truth = truth.iter().filter(|t| t["source"] != "ww").count();
    let ww_rows = items.iter().filter(|i| i["source"] == "ww").count();
    assert_eq!(items.len(), ww_rows + bench_truth);
    for i in &items {
        let img = i["image"].as_str().unwrap();
        assert!(!img.is_empty() && bench["items"].join(img).is_file(), "{i}");
        assert!(hhi::text::labels::is_strict_form(
            i["label"].as_str().unwrap()
        ));
    }
    let log = std::fs::read_to_string(dir.join("wenda.log")).unwrap();
    assert!(!log.contains("break the strict form"), "{log}");

    // News round-trips with its ids.
    let articles = lines(&news["articles"]);
    assert_eq!(articles.len(), lines(&world["news"]).len());
    assert_eq!(articles[0]["id"], "news-000000");

    let stats = json(&seeds["stats"]);
    assert!(
        stats["distinct_interactions"].as_u64().unwrap() > 0,
        "{stats}"
    );
    stats
}

#[test]
fn toy_world_reads_back_through_the_importers_and_gives_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let stats = chain(
        dir.path(),
        &[
            ("items", Value::Int(200)),
            ("test_items", Value::Int(30)),
            ("news_articles", Value::Int(120)),
            ("pretrain_docs", Value::Int(20)),
        ],
    );
    assert!(
        stats["distinct_interactions"].as_u64().unwrap() >= 10,
        "{stats}"
    );
}
