//! The method's pipelines end to end through the real binary: `smoke.toml` runs, edits
//! rerun exactly what depends on them, and two fresh stores agree on every digest.
mod common;

use common::Project;

const SMOKE: &str = "pipelines/smoke.toml";

/// A project holding copies of `pipelines/smoke.toml` and its prompt files.
fn smoke_project() -> Project {
    let p = Project::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    p.write(
        SMOKE,
        &std::fs::read_to_string(src.join("smoke.toml")).unwrap(),
    );
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
        names(&[
            "synth",
            "filter",
            "summarizer",
            "labels",
            "postprocess",
            "diagnose"
        ])
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
    assert_eq!(
        p.read("pipelines/smoke.lock"),
        q.read("pipelines/smoke.lock")
    );
}
