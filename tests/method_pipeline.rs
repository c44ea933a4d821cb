//! The method's pipelines end to end through the real binary: `smoke.toml` runs, edits
//! rerun exactly what depends on them, and two fresh stores agree on every digest.
mod common;

use common::{Project, SMOKE, smoke_project};

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

/// What follows the pseudo-labels in smoke.toml: both captioners and their predictions and
/// evaluations, and the report.
const AFTER_LABELS: [&str; 7] = [
    "captioner",
    "predict",
    "evaluate",
    "captioner_encdec",
    "predict_encdec",
    "evaluate_encdec",
    "report",
];

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
    assert_eq!(out.len(), 23, "{out:?}");
    assert!(stale(&p).is_empty());
    // A model stage records its kernel class, and reruns to the same bits on this machine.
    let shown = p.ok(&["show", "lm"]);
    assert!(shown.contains("kernels)"), "{shown}");
    let audit = p.ok(&["audit", SMOKE, "--reproduce", "lm"]);
    assert!(
        audit.contains("reproduce `lm`: bitwise identical"),
        "{audit}"
    );
    assert!(
        audit.contains("here as when recorded: bit-equality expected"),
        "{audit}"
    );

    // The synthesis prompt: stage 3 and what follows from it.
    let prompt = p.read("pipelines/prompts/captions.txt");
    p.write(
        "pipelines/prompts/captions.txt",
        &prompt.replace("Caption of image", "Caption of a picture"),
    );
    assert_eq!(
        stale(&p),
        names(
            &[
                &[
                    "synth",
                    "filter",
                    "summarizer",
                    "labels",
                    "postprocess",
                    "diagnose"
                ][..],
                &AFTER_LABELS,
            ]
            .concat()
        )
    );
    p.write("pipelines/prompts/captions.txt", &prompt);
    assert!(stale(&p).is_empty());

    // The summarizer's learning rate: stage 5 and what follows from it.
    let toml = p.read(SMOKE);
    let edited = toml.replacen("lr = 1e-3\nepochs", "lr = 2e-3\nepochs", 1);
    assert_ne!(edited, toml, "smoke.toml sets the summarizer's lr");
    p.write(SMOKE, &edited);
    let mut want = vec!["summarizer", "labels", "postprocess", "diagnose"];
    want.extend(AFTER_LABELS);
    assert_eq!(stale(&p), names(&want));
    p.write(SMOKE, &toml);

    // The captioner's learning rate: stage 8 and what follows from it; the text half and
    // the CLIP features stay fresh.
    let edited = toml.replacen(
        "lr = 1e-2\nsteps = 60\n\n[stages.predict]",
        "lr = 2e-2\nsteps = 60\n\n[stages.predict]",
        1,
    );
    assert_ne!(edited, toml, "smoke.toml sets the captioner's lr");
    p.write(SMOKE, &edited);
    assert_eq!(
        stale(&p),
        names(&["captioner", "predict", "evaluate", "report"])
    );
    p.write(SMOKE, &toml);

    // The evaluation's outputs: the paper's tables, baselines beside the model.
    let metrics: serde_json::Value =
        serde_json::from_str(&p.read_output("evaluate.metrics")).unwrap();
    // smoke's tiny LM writes no usable interaction, so stage 7 keeps no pseudo-label and
    // there is no most-frequent baseline (never a made-up number; src/stages/evaluate.rs
    // tests it); the captioners train on stage 6's labels.
    assert!(metrics.get("most_frequent").is_none(), "{metrics}");
    for table in ["model", "chance"] {
        for metric in ["label_match", "verb_match", "verb_sim"] {
            for k in ["@1", "@5", "@8"] {
                let v = &metrics[table][metric][k]["overall"];
                assert!(v.is_number(), "{table}.{metric}.{k}: {metrics}");
            }
        }
        assert!(
            metrics[table].get("bleurt").is_none(),
            "no BLEURT model, no BLEURT number"
        );
        assert!(
            metrics[table].get("nli_pe").is_none(),
            "no NLI model, no NLI number"
        );
    }
    // Without `labels`, no most-frequent baseline.
    let encdec: serde_json::Value =
        serde_json::from_str(&p.read_output("evaluate_encdec.metrics")).unwrap();
    assert!(encdec.get("most_frequent").is_none(), "{encdec}");
    assert!(
        encdec["model"]["verb_match"]["@8"]["ww"].is_number(),
        "{encdec}"
    );

    // Two fresh stores: the same keys and digests for every artifact.
    let q = smoke_project();
    q.run(SMOKE);
    assert_eq!(
        p.read("pipelines/smoke.lock"),
        q.read("pipelines/smoke.lock")
    );
}
