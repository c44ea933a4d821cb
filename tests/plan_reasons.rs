//! `plan` names a changed numeric parameter with its old and new value, through the
//! library with a typed stage kind.
use hhi::scheduler::{RunOptions, run};
use hhi::{ArtifactType, ParamSpec, PortSpec, Registry, StageContext, StageKind, Store};
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
    let mut reg = Registry::builtin();
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
    assert_eq!(fit.state, "run");
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
