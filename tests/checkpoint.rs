//! The checkpoint API of the stage context, through the library: a stage that dies after
//! saving a checkpoint resumes from it when the same key runs again.
use hhi::scheduler::{RunOptions, run};
use hhi::{ArtifactType, ParamSpec, PortSpec, StageContext, StageKind, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

static CRASH: AtomicBool = AtomicBool::new(true);

struct Steps;
impl StageKind for Steps {
    fn name(&self) -> &'static str {
        "steps"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "counts to `n`, checkpointing every step"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::int("n", 10, "steps")]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("log", ArtifactType::Text, "")]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let start: u64 = ctx.load_checkpoint("step")?.unwrap_or(0);
        let n = ctx.params.int("n") as u64;
        for step in start..n {
            ctx.save_checkpoint("step", &(step + 1))?;
            if step == 6 && CRASH.swap(false, Ordering::SeqCst) {
                std::fs::write(ctx.output("log")?, "half-written")?;
                anyhow::bail!("simulated crash at step {step}");
            }
        }
        std::fs::write(ctx.output("log")?, format!("started at {start}"))?;
        ctx.figure("final_loss", 0.5);
        Ok(())
    }
}

#[test]
fn a_failed_stage_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = hhi::stages::builtin();
    reg.register(Steps);
    let pfile = dir.path().join("p.toml");
    std::fs::write(&pfile, "[stages.s]\nkind = \"steps\"\nn = 10\n").unwrap();
    let p = hhi::Pipeline::load(&pfile, &reg).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("store")));

    let first = run(&p, store.clone(), &RunOptions::default()).unwrap();
    assert!(!first.success());
    assert!(format!("{:?}", first.outcome("s")).contains("simulated crash at step 6"));
    assert!(store.records().is_empty(), "no record for a failed stage");
    assert!(
        !store
            .root()
            .join("objects")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "no half-written object"
    );

    let second = run(&p, store.clone(), &RunOptions::default()).unwrap();
    assert!(second.success());
    let rec = &store.records()[0];
    let out = std::fs::read_to_string(store.object_path(&rec.outputs["log"].digest)).unwrap();
    assert_eq!(out, "started at 7");
    assert_eq!(rec.figures["final_loss"], 0.5);
    assert!(rec.peak_rss_bytes.unwrap_or(0) > 0);
    assert!(
        !Path::new(&store.work_dir(&rec.key)).exists(),
        "work folder removed after success"
    );
}
