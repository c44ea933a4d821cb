//! Reruns follow exactly what changed.
mod common;
use common::*;

const P: &str = "pipelines/diamond.toml";

fn all(state: &str) -> std::collections::BTreeMap<String, String> {
    ["count", "join", "src", "upper"]
        .iter()
        .map(|s| (s.to_string(), state.to_string()))
        .collect()
}

#[test]
fn second_run_runs_nothing_and_plan_says_fresh() {
    let p = diamond();
    assert_eq!(p.run(P), all("ran"));
    assert!(
        p.read("artifacts/../pipelines/diamond.lock")
            .contains("[stages.join")
    );
    assert_eq!(p.run(P), all("fresh"));
    let plan = p.plan_json(P);
    for s in plan["stages"].as_array().unwrap() {
        assert_eq!(s["state"], "fresh", "{s}");
        assert!(s["reasons"].as_array().unwrap().is_empty());
    }
    // --check exits 0 when nothing would run.
    assert!(p.hhi(&["plan", P, "--check"]).status.success());
}

#[test]
fn param_change_reruns_the_stage_and_its_descendants_only() {
    let p = diamond();
    p.run(P);
    p.write(
        "pipelines/diamond.toml",
        &DIAMOND.replace("SUFFIX = \"one\"", "SUFFIX = \"two\""),
    );
    let plan = p.plan_json(P);
    let upper = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "upper")
        .unwrap();
    assert_eq!(upper["state"], "run");
    let r = &upper["reasons"][0];
    assert_eq!(r["reason"], "param");
    assert_eq!(r["name"], "env");
    assert_eq!(r["old"], r#"{"SUFFIX":"one"}"#);
    assert_eq!(r["new"], r#"{"SUFFIX":"two"}"#);
    let human = p.ok(&["plan", P]);
    assert!(
        human.contains(r#"param `env` {"SUFFIX":"one"} → {"SUFFIX":"two"}"#),
        "{human}"
    );
    assert!(
        human.contains("input `upper.out` will be rebuilt"),
        "{human}"
    );
    assert!(!p.hhi(&["plan", P, "--check"]).status.success());

    let out = p.run(P);
    assert_eq!(out["src"], "fresh");
    assert_eq!(out["count"], "fresh");
    assert_eq!(out["upper"], "ran");
    assert_eq!(out["join"], "ran");
    assert!(
        p.read("artifacts/../pipelines/diamond.lock")
            .contains("[stages.upper")
    );
}

#[test]
fn key_order_in_the_file_does_not_invalidate() {
    let p = Project::new();
    p.write("pipelines/data/in.txt", "x\n");
    let mk = |lr: &str| {
        format!(
            "[stages.a]\nkind = \"files\"\npath = \"data/in.txt\"\n[stages.b]\nkind = \"command\"\nrun = \"cp \\\"$HHI_IN_x\\\" \\\"$HHI_OUT_o\\\"\"\ninputs = {{ x = \"a.out\" }}\noutputs = [\"o\"]\nenv = {{ LR = \"{lr}\" }}\n"
        )
    };
    p.write("pipelines/p.toml", &mk("1"));
    p.run("pipelines/p.toml");
    // Reordering keys inside the stage table changes nothing.
    let reordered = "[stages.b]\noutputs = [\"o\"]\nenv = { LR = \"1\" }\ninputs = { x = \"a.out\" }\nrun = \"cp \\\"$HHI_IN_x\\\" \\\"$HHI_OUT_o\\\"\"\nkind = \"command\"\n[stages.a]\npath = \"data/in.txt\"\nkind = \"files\"\n";
    p.write("pipelines/p.toml", reordered);
    assert!(p.run("pipelines/p.toml").values().all(|s| s == "fresh"));
}

#[test]
fn file_input_change_reruns_its_consumers() {
    let p = diamond();
    p.run(P);
    p.write("pipelines/scripts/helper.sh", "echo changed\n");
    let human = p.ok(&["plan", P]);
    assert!(
        human.contains("file `scripts/helper.sh` changed"),
        "{human}"
    );
    let out = p.run(P);
    assert_eq!(out["count"], "ran");
    assert_eq!(out["upper"], "fresh");
    assert_eq!(out["src"], "fresh");
    // count's output (a byte count of src) is unchanged, so join is cut off early.
    assert_eq!(out["join"], "fresh");
}

#[test]
fn early_cutoff_keeps_consumers_fresh() {
    let p = diamond();
    p.run(P);
    // A different command that writes the same bytes.
    p.write(
        "pipelines/diamond.toml",
        &DIAMOND.replace(
            "wc -c < \\\"$HHI_IN_text\\\"",
            "cat \\\"$HHI_IN_text\\\" | wc -c",
        ),
    );
    let out = p.run(P);
    assert_eq!(out["count"], "ran", "{out:?}");
    assert_eq!(out["join"], "fresh", "{out:?}");
}

#[test]
fn data_change_in_a_files_stage_propagates() {
    let p = diamond();
    p.run(P);
    p.write("pipelines/data/in.txt", "goodbye world\n");
    let plan = p.ok(&["plan", P]);
    assert!(plan.contains("file `data/in.txt` changed"), "{plan}");
    assert_eq!(p.run(P), all("ran"));
    assert!(
        p.read("pipelines/../artifacts/../pipelines/diamond.lock")
            .contains("diamond")
    );
}

#[test]
fn force_and_target() {
    let p = diamond();
    let out = outcomes(&p.ok(&["run", P, "--json", "--target", "upper"]));
    assert_eq!(out["upper"], "ran");
    assert_eq!(out["src"], "ran");
    assert_eq!(out["count"], "not_selected");
    let out = outcomes(&p.ok(&["run", P, "--json", "--force", "src"]));
    assert_eq!(out["src"], "ran");
    assert_eq!(out["upper"], "fresh", "identical output: cut off");
    assert_eq!(out["count"], "ran");
    let bad = p.hhi(&["run", P, "--target", "uper"]);
    assert!(
        text(&bad.stderr).contains("did you mean `upper`"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn failure_stops_descendants_not_siblings() {
    let p = diamond();
    p.write(
        "pipelines/diamond.toml",
        &DIAMOND.replace("tr a-z A-Z", "echo boom >&2; exit 3; tr a-z A-Z"),
    );
    let out = p.hhi(&["run", P, "--json"]);
    assert!(!out.status.success());
    let o = outcomes(&text(&out.stdout));
    assert_eq!(o["upper"], "failed");
    assert_eq!(o["count"], "ran");
    assert_eq!(o["join"], "skipped");
    let human = p.hhi(&["run", P]);
    let s = text(&human.stdout);
    assert!(
        s.contains("exited with status 3") && s.contains("| boom"),
        "{s}"
    );
    // Fixing it reruns only what is missing.
    p.write("pipelines/diamond.toml", DIAMOND);
    let o = p.run(P);
    assert_eq!(
        (o["count"].as_str(), o["upper"].as_str(), o["join"].as_str()),
        ("fresh", "ran", "ran")
    );
}

#[test]
fn missing_output_fails_clearly() {
    let p = diamond();
    p.write(
        "pipelines/diamond.toml",
        &DIAMOND.replace(
            "wc -c < \\\"$HHI_IN_text\\\" > \\\"$HHI_OUT_out\\\"",
            "true",
        ),
    );
    let out = p.hhi(&["run", P]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("did not create output `out`"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn show_finds_records_by_stage_key_and_digest() {
    let p = diamond();
    p.run(P);
    let by_name: serde_json::Value =
        serde_json::from_str(&p.ok(&["show", "join", "--json"])).unwrap();
    let key = by_name["key"].as_str().unwrap().to_string();
    let digest = by_name["outputs"]["out"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(by_name["inputs"]["a"]["from"], "upper.out");
    for q in [&key[..10], &digest[..10]] {
        let r: serde_json::Value = serde_json::from_str(&p.ok(&["show", q, "--json"])).unwrap();
        assert_eq!(r["key"].as_str().unwrap(), key);
    }
    let human = p.ok(&["show", "join"]);
    assert!(
        human.contains("outputs") && human.contains(&digest),
        "{human}"
    );
    let dot = p.ok(&["graph", P]);
    assert!(dot.contains("\"upper\" -> \"join\""), "{dot}");
}
