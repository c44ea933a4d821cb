//! `train_captioner` killed with SIGKILL after a checkpoint resumes from it and ends with the
//! same bytes (model and curve) as a run that was never interrupted.
mod common;

use common::Project;
use hhi::vision::features::{Features, Key};
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
[pipeline]
name = "resume"
seed = 5

[stages.feats]
kind = "files"
path = "feats"
as = "Features"

[stages.labels]
kind = "files"
path = "labels.jsonl"
as = "PseudoLabels"

[stages.tok]
kind = "files"
path = "tok"
as = "Tokenizer"

[stages.cap]
kind = "train_captioner"
features = "feats.out"
labels = "labels.out"
tokenizer = "tok.out"
prefix_length = 4
layers = 2
n_embd = 32
heads = 4
lr = 1e-3
steps = 400
checkpoint_every = 20
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("p.toml", PIPELINE);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    p.write(
        "tok/tokenizer.json",
        &std::fs::read_to_string(fixtures.join("gpt2/tokenizer.json")).unwrap(),
    );
    let labels = [
        "_ shaking hands with _",
        "_ hugging _",
        "_ giving _ a high five",
        "_ lecturing to _",
    ];
    let (n, dim) = (40, 8);
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&format!(
            "{{\"id\":\"{i:04}\",\"caption\":\"c\",\"label\":\"{}\",\"weight\":{}}}\n",
            labels[i % 4],
            1.0 + (i % 3) as f64 * 0.25
        ));
    }
    p.write("labels.jsonl", &lines);
    let data: Vec<f32> = (0..n * dim)
        .map(|j| (((j * 7919) % 101) as f32 / 50.0) - 1.0 + ((j / dim) % 4) as f32)
        .collect();
    Features {
        keys: (0..n)
            .map(|i| Key {
                source: "ww".into(),
                id: format!("{i:04}"),
            })
            .collect(),
        dim,
        data,
    }
    .write(&p.path("feats"))
    .unwrap();
    p
}

fn digests(p: &Project) -> (String, String, f64) {
    let rec: serde_json::Value = serde_json::from_str(&p.ok(&["show", "cap", "--json"])).unwrap();
    let d = |port: &str| rec["outputs"][port]["digest"].as_str().unwrap().to_string();
    let resumed = rec["figures"]["resumed_from_step"].as_f64().unwrap_or(-1.0);
    (d("model"), d("curve"), resumed)
}

/// The step of the newest checkpoint under the store's work folder, if any.
fn checkpoint_step(p: &Project) -> Option<u64> {
    let work = p.store().join("work");
    let mut stack = vec![work];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "step")
                && path.parent().is_some_and(|d| d.ends_with("captioner"))
            {
                return std::fs::read_to_string(&path).ok()?.trim().parse().ok();
            }
        }
    }
    None
}

#[test]
fn killed_train_captioner_resumes_to_the_same_bytes() {
    let straight = project();
    let out = straight.run("p.toml");
    assert_eq!(out["cap"], "ran");
    let (model, curve, resumed) = digests(&straight);
    assert_eq!(resumed, 0.0);

    let p = project();
    let mut child = p
        .cmd(&["run", "p.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let at = loop {
        if let Some(s) = checkpoint_step(&p) {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint was written"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "hhi finished before the first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!((20..400).contains(&at), "checkpoint at step {at}");

    let out = p.run("p.toml");
    assert_eq!(out["cap"], "ran");
    let (model2, curve2, resumed2) = digests(&p);
    assert!(resumed2 >= 20.0, "the rerun started from step {resumed2}");
    assert_eq!(
        model2, model,
        "resumed model differs from the uninterrupted one"
    );
    assert_eq!(
        curve2, curve,
        "resumed curve differs from the uninterrupted one"
    );
}
