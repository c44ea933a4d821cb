//! Experiments through the real binary on `smoke.toml`: `--set` overrides, sweeps, the
//! run table and diffs between runs.
mod common;

use common::{Project, SMOKE, smoke_project, text};

/// (name, state, key, reasons) per stage, as `plan --json` gives them.
fn plan_rows(p: &Project, extra: &[&str]) -> Vec<(String, String, String, String)> {
    let mut args = vec!["plan", SMOKE, "--json"];
    args.extend_from_slice(extra);
    let plan: serde_json::Value = serde_json::from_str(&p.ok(&args)).unwrap();
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
                s["key"].to_string(),
                s["reasons"].to_string(),
            )
        })
        .collect()
}

/// Records in the store per stage name: how many times each stage ran, over all variants.
fn records_per_stage(p: &Project) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for f in common::files_under(&p.store().join("records")) {
        let rec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        *out.entry(rec["stage"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

#[test]
fn an_override_is_the_same_as_editing_the_file_and_leaves_the_lock_alone() {
    let p = smoke_project();
    p.run(SMOKE);
    let lock = p.read("pipelines/smoke.lock");
    let set = ["--set", "captioner.lr=2e-2", "--set", "predict.beam=3"];
    let overridden = plan_rows(&p, &set);

    let toml = p.read(SMOKE);
    let edited = toml
        .replacen(
            "lr = 1e-2\nsteps = 60\n\n[stages.predict]",
            "lr = 2e-2\nsteps = 60\n\n[stages.predict]",
            1,
        )
        .replacen(
            "features = \"test_features.features\"\nbeam = 4",
            "features = \"test_features.features\"\nbeam = 3",
            1,
        );
    assert_eq!(edited.matches("= 2e-2").count(), 1);
    assert_eq!(edited.matches("beam = 3").count(), 1);
    p.write(SMOKE, &edited);
    let by_edit = plan_rows(&p, &[]);
    assert_eq!(overridden, by_edit, "same keys, same states, same reasons");
    let stale: Vec<&str> = by_edit
        .iter()
        .filter(|r| r.1 != "fresh")
        .map(|r| r.0.as_str())
        .collect();
    assert_eq!(stale, ["captioner", "predict", "evaluate", "report"]);
    assert!(by_edit[16].3.contains("lr"), "{:?}", by_edit[16]);
    p.write(SMOKE, &toml);

    // The run: recorded with its overrides, P.lock untouched; --write-lock writes what
    // running the edited file writes.
    let run: serde_json::Value =
        serde_json::from_str(&p.ok(&["run", SMOKE, "--json", set[0], set[1], set[2], set[3]]))
            .unwrap();
    assert_eq!(
        run["overrides"],
        serde_json::json!(["captioner.lr=2e-2", "predict.beam=3"])
    );
    assert_eq!(
        p.read("pipelines/smoke.lock"),
        lock,
        "an experiment left P.lock alone"
    );
    p.ok(&["run", SMOKE, set[0], set[1], set[2], set[3], "--write-lock"]);
    let written = p.read("pipelines/smoke.lock");
    assert_ne!(written, lock);
    p.write(SMOKE, &edited);
    let out = p.run(SMOKE);
    assert!(out.values().all(|s| s == "fresh"), "{out:?}");
    assert_eq!(p.read("pipelines/smoke.lock"), written);
}

#[test]
fn bad_overrides_are_errors_that_name_them() {
    let p = smoke_project();
    let cases: [(&str, &[&str]); 5] = [
        (
            "captionr.lr=1e-3",
            &["no stage `captionr`", "did you mean `captioner`"],
        ),
        (
            "captioner.lrr=1e-3",
            &[
                "unknown parameter `lrr`",
                "did you mean `lr`",
                "# --set captioner.lrr=1e-3",
            ],
        ),
        (
            "captioner.lr=fast",
            &[
                "bad value for `lr`",
                "expected float",
                "# --set captioner.lr=fast",
            ],
        ),
        (
            "captioner.steps=-5",
            &["steps", "# --set captioner.steps=-5"],
        ),
        ("captioner=1", &["must name a stage and a parameter"]),
    ];
    for (set, want) in cases {
        let out = p.hhi(&["run", SMOKE, "--set", set]);
        assert!(!out.status.success(), "--set {set} was accepted");
        let err = text(&out.stderr);
        for w in want {
            assert!(err.contains(w), "--set {set}: `{w}` not in\n{err}");
        }
    }
    // Nothing ran, nothing was written.
    assert!(!p.store().join("records").exists() || records_per_stage(&p).is_empty());
    assert!(!p.path("pipelines/smoke.lock").exists());
}

#[test]
fn a_sweep_shares_the_text_half_and_runs_diff_compares() {
    let p = smoke_project();
    let out = p.ok(&[
        "run",
        SMOKE,
        "--set",
        "captioner.lr=2e-2,5e-2,1e-1",
        "--name",
        "lr",
    ]);
    // Counted from the records: the text half ran once, the captioner three times.
    let counts = records_per_stage(&p);
    for stage in ["lm", "summarizer", "labels", "clip", "captioner_encdec"] {
        assert_eq!(counts[stage], 1, "{stage}: {counts:?}");
    }
    for stage in ["captioner", "predict", "evaluate", "report"] {
        assert_eq!(counts[stage], 3, "{stage}: {counts:?}");
    }
    // The merged sweep computed what each variant alone computes: rerun alone, all fresh.
    let alone: serde_json::Value =
        serde_json::from_str(&p.ok(&["run", SMOKE, "--json", "--set", "captioner.lr=5e-2"]))
            .unwrap();
    let states: Vec<&str> = alone["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"]["state"].as_str().unwrap())
        .collect();
    assert!(states.iter().all(|s| *s == "fresh"), "{states:?}");
    // The sweep ends with its table, the three variants in order.
    let table = out.trim_end().split("\n\n").last().unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("verb_match@1"), "{table}");
    for (i, lr) in ["2e-2", "5e-2", "1e-1"].iter().enumerate() {
        assert!(
            lines[i + 1].contains(&format!("lr.{}", i + 1))
                && lines[i + 1].contains(&format!("captioner.lr={lr}")),
            "{table}"
        );
    }

    // `runs`: the three, newest first, with their values and a chosen figure.
    let runs: serde_json::Value = serde_json::from_str(&p.ok(&[
        "runs",
        SMOKE,
        "--json",
        "--metric",
        "captioner.final_loss",
        "--metric",
        "verb_match@1",
    ]))
    .unwrap();
    let runs: Vec<&serde_json::Value> = runs.as_array().unwrap().iter().skip(1).collect();
    assert_eq!(runs.len(), 3, "the sweep's three, behind the lone rerun");
    let lrs: Vec<&str> = runs
        .iter()
        .map(|r| r["overrides"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        lrs,
        [
            "captioner.lr=1e-1",
            "captioner.lr=5e-2",
            "captioner.lr=2e-2"
        ]
    );
    // The first variant ran everything; the others only what the learning rate reaches.
    let ran: Vec<u64> = runs.iter().map(|r| r["ran"].as_u64().unwrap()).collect();
    assert_eq!(ran, [4, 4, 23]);
    for r in &runs {
        assert!(r["metrics"]["captioner.final_loss"].is_number(), "{r}");
        assert!(r["metrics"]["evaluate.verb_match@1"].is_number(), "{r}");
        assert!(
            r["metrics"]["evaluate_encdec.verb_match@1"].is_number(),
            "{r}"
        );
    }
    let losses: Vec<f64> = runs
        .iter()
        .map(|r| r["metrics"]["captioner.final_loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses[0] != losses[2],
        "different learning rates, different losses"
    );
    let page = p.path("runs.html");
    p.ok(&["runs", SMOKE, "-n", "4", "--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    for name in [
        "lr.1",
        "lr.2",
        "lr.3",
        "evaluate verb_match @1",
        "captioner.lr=5e-2",
    ] {
        assert!(html.contains(name), "{name} not on the runs page");
    }
    assert_eq!(
        html.matches("index.html\">open</a>").count(),
        4,
        "a report link per run"
    );
    let listed = p.ok(&["runs"]);
    assert!(
        listed.contains("lr.3") && listed.contains("captioner.lr=1e-1"),
        "{listed}"
    );

    // `diff` between two of them: the learning rate, the artifacts it changed and the
    // metrics with their deltas.
    let d = p.ok(&["diff", "lr.1", "lr.3"]);
    assert!(d.contains("captioner.lr: 0.02 → 0.1"), "{d}");
    assert!(d.contains("captioner.model:"), "{d}");
    assert!(!d.contains("lm.model"), "the text half is shared: {d}");
    let j: serde_json::Value =
        serde_json::from_str(&p.ok(&["diff", "lr.1", "lr.3", "--json"])).unwrap();
    assert_eq!(j["params"].as_array().unwrap().len(), 1, "{j}");
    let m = j["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "evaluate.verb_match@1")
        .expect("verb match @1 compared");
    let (a, b, delta) = (
        m["a"].as_f64().unwrap(),
        m["b"].as_f64().unwrap(),
        m["delta"].as_f64().unwrap(),
    );
    assert!((b - a - delta).abs() < 1e-12);
    // A run id works as well as a name; an unknown one says what exists.
    let id = runs[0]["id"].as_str().unwrap();
    assert!(
        p.ok(&["diff", &id[..8], "lr.1"])
            .contains("captioner.lr: 0.1 → 0.02")
    );
    let bad = p.hhi(&["diff", "nosuch", "lr.1"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("no run `nosuch`"),
        "{}",
        text(&bad.stderr)
    );
    // A sweep never asks for one lock.
    let both = p.hhi(&[
        "run",
        SMOKE,
        "--set",
        "captioner.lr=2e-2,5e-2",
        "--write-lock",
    ]);
    assert!(!both.status.success());
    assert!(text(&both.stderr).contains("which one should P.lock describe"));
}
