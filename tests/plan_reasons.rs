//! `plan` names a changed numeric parameter with its old and new value, through the
//! library with a typed stage kind.
mod common;
use hhi::scheduler::{RunOptions, run};
use hhi::{ArtifactType, ParamSpec, PortSpec, StageContext, StageKind, Store};
use std::sync::Arc;

struct Train;
impl StageKind for Train {
    fn name(&self) -> &'static str {
        "train"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "writes its learning rate"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::float("lr", 1e-5, "learning rate").range(0.0, 1.0)]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("model", ArtifactType::Blob, "")]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        std::fs::write(ctx.output("model")?, format!("{}", ctx.params.float("lr")))?;
        Ok(())
    }
}

#[test]
fn plan_shows_old_and_new_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = hhi::stages::builtin();
    reg.register(Train);
    let pfile = dir.path().join("p.toml");
    let store = Arc::new(Store::open(&dir.path().join("store")));
    let downstream = "[stages.use]\nkind = \"command\"\ninputs = { m = \"fit.model\" }\noutputs = [\"o\"]\nrun = \"cp \\\"$HHI_IN_m\\\" \\\"$HHI_OUT_o\\\"\"\n";
    std::fs::write(
        &pfile,
        format!("[stages.fit]\nkind = \"train\"\nlr = 0.00001\n{downstream}"),
    )
    .unwrap();
    let p = hhi::Pipeline::load(&pfile, &reg).unwrap();
    assert!(
        run(&p, store.clone(), &RunOptions::default())
            .unwrap()
            .success()
    );

    std::fs::write(
        &pfile,
        format!("[stages.fit]\nkind = \"train\"\nlr = 2e-5\n{downstream}"),
    )
    .unwrap();
    let p = hhi::Pipeline::load(&pfile, &reg).unwrap();
    let plan = hhi::plan::plan(&store, &p, &[]).unwrap();
    let fit = &plan.stages[0];
    assert_eq!(fit.state, hhi::plan::PlanState::Run);
    assert_eq!(fit.reasons.len(), 1);
    assert_eq!(fit.reasons[0].to_string(), "param `lr` 1e-5 → 2e-5");
    assert_eq!(
        plan.stages[1].reasons[0].to_string(),
        "input `fit.model` will be rebuilt"
    );

    let report = run(&p, store.clone(), &RunOptions::default()).unwrap();
    assert!(matches!(
        report.outcome("fit"),
        Some(hhi::scheduler::Outcome::Ran { .. })
    ));
    assert!(matches!(
        report.outcome("use"),
        Some(hhi::scheduler::Outcome::Ran { .. })
    ));
}

/// The `plan --json` schema, pinned: one snapshot per reason, with digests replaced by
/// their role (`<old>`, `<new>`, `<digest>`) so the snapshot is stable.
mod schema {
    use super::common::*;

    const BASE: &str = r#"
[pipeline]
seed = 1

[stages.src]
kind = "files"
path = "in.txt"

[stages.up]
kind = "command"
inputs = { t = "src.out" }
outputs = ["o"]
run = 'cat "$HHI_IN_t" | tr a-z A-Z > "$HHI_OUT_o"'

[stages.down]
kind = "command"
inputs = { a = "up.o" }
outputs = ["o"]
run = 'cat "$HHI_IN_a" > "$HHI_OUT_o"'
"#;

    /// The reasons of stage `stage` as JSON text, digests masked.
    fn reasons(p: &Project, stage: &str, extra: &[&str]) -> String {
        let mut args = vec!["plan", "p.toml", "--json"];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&p.ok(&args)).unwrap();
        let st = v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == stage)
            .unwrap();
        let mut r = st["reasons"].clone();
        for x in r.as_array_mut().unwrap() {
            for k in ["old", "new", "digest"] {
                if x.get(k)
                    .and_then(|d| d.as_str())
                    .is_some_and(|d| d.len() == 64)
                {
                    x[k] = serde_json::Value::String(format!("<{k}>"));
                }
            }
        }
        serde_json::to_string(&r).unwrap()
    }

    /// Canonical JSON text (sorted keys), as `reasons` produces.
    fn norm(s: &str) -> String {
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(s).unwrap()).unwrap()
    }

    fn project() -> Project {
        let p = Project::new();
        p.write("p.toml", BASE);
        p.write("in.txt", "one\n");
        p
    }

    #[test]
    fn every_reason_has_a_pinned_json_form() {
        let p = project();
        assert_eq!(reasons(&p, "src", &[]), norm(r#"[{"reason":"no_record"}]"#));
        p.run("p.toml");
        assert_eq!(
            reasons(&p, "up", &["--force", "up"]),
            norm(r#"[{"reason":"forced"}]"#)
        );

        p.write("in.txt", "two\n");
        assert_eq!(
            reasons(&p, "src", &[]),
            norm(
                r#"[{"reason":"file","port":"path","path":"in.txt","old":"<old>","new":"<new>"}]"#
            )
        );
        assert_eq!(
            reasons(&p, "down", &[]),
            norm(r#"[{"reason":"upstream_runs","port":"a","from":"up.o"}]"#)
        );
        p.ok(&["run", "p.toml", "--target", "up"]);
        assert_eq!(
            reasons(&p, "down", &[]),
            norm(r#"[{"reason":"input","port":"a","from":"up.o","old":"<old>","new":"<new>"}]"#)
        );
        p.run("p.toml");

        p.write("p.toml", &BASE.replace("seed = 1", "seed = 2"));
        assert_eq!(
            reasons(&p, "src", &[]),
            norm(r#"[{"reason":"seed","old":8585906563364766389,"new":2476390440566372476}]"#)
                .replace("8585906563364766389", &seed_of(&p, "src", 1))
                .replace("2476390440566372476", &seed_of(&p, "src", 2))
        );
        p.write("p.toml", BASE);

        p.write(
            "p.toml",
            &BASE
                .replace("'cat \"$HHI_IN_t\"", "'cat \"$HHI_IN_t\" \"$HHI_IN_x\"")
                .replace(
                    "inputs = { t = \"src.out\" }",
                    "inputs = { t = \"src.out\", x = \"src.out\" }",
                ),
        );
        let added = reasons(&p, "up", &[]);
        assert!(
            added.contains(&norm(
                r#"{"reason":"input_added","port":"x","from":"src.out"}"#
            )),
            "{added}"
        );
        p.write("p.toml", BASE);
        p.write(
            "p.toml",
            &BASE
                .replace("inputs = { a = \"up.o\" }", "inputs = {}")
                .replace("cat \"$HHI_IN_a\"", "echo"),
        );
        let removed = reasons(&p, "down", &[]);
        assert!(
            removed.contains(&norm(
                r#"{"reason":"input_removed","port":"a","from":"up.o"}"#
            )),
            "{removed}"
        );
        p.write("p.toml", BASE);

        let rec: serde_json::Value =
            serde_json::from_str(&p.ok(&["show", "up", "--json"])).unwrap();
        let d = rec["outputs"]["o"]["digest"].as_str().unwrap().to_string();
        let obj = p.store().join("objects").join(&d[..2]).join(&d[2..]);
        std::fs::remove_file(&obj).unwrap();
        assert_eq!(
            reasons(&p, "up", &[]),
            norm(r#"[{"reason":"output_missing","port":"o","digest":"<digest>"}]"#)
        );
        std::fs::write(&obj, "not it\n").unwrap();
        assert_eq!(
            reasons(&p, "up", &[]),
            norm(r#"[{"reason":"output_corrupt","port":"o","digest":"<digest>"}]"#)
        );
    }

    fn seed_of(_p: &Project, stage: &str, pipeline_seed: u64) -> String {
        hhi::pipeline::stage_seed(pipeline_seed, stage).to_string()
    }
}
