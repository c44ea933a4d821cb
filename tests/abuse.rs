//! The engine under abuse (issue 7): each test reproduces a defect a reliability test found.
//! Every test here also runs as an unprivileged user in CI (`.ci/run`), where mode bits
//! matter and a mount namespace may be unavailable.
mod common;
use common::*;
use hhi::scheduler::{RunOptions, run};
use hhi::{ArtifactType, PortSpec, StageContext, StageKind, Store};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

/// Every object under `objects/` hashes to its name.
fn assert_objects_intact(store: &Path) {
    for shard in std::fs::read_dir(store.join("objects")).unwrap().flatten() {
        for obj in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = format!(
                "{}{}",
                shard.file_name().to_string_lossy(),
                obj.file_name().to_string_lossy()
            );
            let h = hhi::store::hash::hash_path(&obj.path()).unwrap();
            assert_eq!(
                h.digest.hex(),
                name,
                "object {name} does not hold its digest"
            );
        }
    }
}

fn all_object_text(store: &Path) -> String {
    files_under(&store.join("objects"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

const TAMPER: &str = r#"
[stages.src]
kind = "files"
path = "in.txt"

[stages.tamper]
kind = "command"
inputs = { t = "src.out" }
outputs = ["o"]
run = 'echo TAMPERED >> "$HHI_IN_t" && cp "$HHI_IN_t" "$HHI_OUT_o"'

[stages.sibling]
kind = "command"
inputs = { t = "src.out" }
outputs = ["o"]
run = 'sleep 0.3; cp "$HHI_IN_t" "$HHI_OUT_o"'
"#;

#[test]
fn a_command_that_writes_into_its_input_never_corrupts_the_store() {
    let p = Project::new();
    p.write("p.toml", TAMPER);
    p.write("in.txt", "original\n");
    let out = p.hhi(&["run", "p.toml", "--json"]);
    let o = outcomes(&text(&out.stdout));
    assert_eq!(o["tamper"], "failed", "{}", text(&out.stdout));
    let report = text(&out.stdout);
    // Either the write was refused (read-only mount) or the change was caught afterwards;
    // both name the input.
    assert!(
        report.contains("input `t`")
            || report.contains("Read-only file system")
            || report.contains("Permission denied"),
        "{report}"
    );
    assert_objects_intact(&p.store());
    assert!(
        !all_object_text(&p.store()).contains("TAMPERED"),
        "nothing made from tampered bytes is stored"
    );
    // The user's file is untouched, and the next run restores whatever was removed.
    assert_eq!(p.read("in.txt"), "original\n");
    let again = p.hhi(&["run", "p.toml", "--json"]);
    let o = outcomes(&text(&again.stdout));
    assert_eq!(o["sibling"], "fresh");
    assert_eq!(o["tamper"], "failed");
    assert_objects_intact(&p.store());
    // Without the offending stage, everything is fresh and audits clean.
    p.write("p.toml", &TAMPER[..TAMPER.find("[stages.tamper]").unwrap()]);
    let o = p.run("p.toml");
    assert!(o.values().all(|s| s == "fresh"), "{o:?}");
    let audit = p.hhi(&["audit", "p.toml", "--all"]);
    assert!(audit.status.success(), "{}", text(&audit.stdout));
}

static TAMPER_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// A library stage that appends to its input (on its first run only): bypasses any sandbox of `command`, so this
/// exercises the engine's own check of every input after every stage.
struct Appender;
impl StageKind for Appender {
    fn name(&self) -> &'static str {
        "appender"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "writes into its input"
    }
    fn params(&self) -> Vec<hhi::ParamSpec> {
        vec![]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("t", ArtifactType::Any, "")]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("o", ArtifactType::Blob, "")]
    }
    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let input = ctx.input("t")?.to_path_buf();
        if !TAMPER_ONCE.swap(false, std::sync::atomic::Ordering::SeqCst) {
            std::fs::copy(&input, ctx.output("o")?)?;
            return Ok(());
        }
        std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644))?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&input)?
            .write_all(b"TAMPERED\n")?;
        std::fs::copy(&input, ctx.output("o")?)?;
        Ok(())
    }
}

#[test]
fn a_library_stage_that_changes_its_input_fails_naming_it_and_the_object_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = hhi::stages::builtin();
    reg.register(Appender);
    let pfile = dir.path().join("p.toml");
    std::fs::write(dir.path().join("in.txt"), "original\n").unwrap();
    std::fs::write(
        &pfile,
        "[stages.src]\nkind = \"files\"\npath = \"in.txt\"\n\n[stages.bad]\nkind = \"appender\"\nt = \"src.out\"\n",
    )
    .unwrap();
    let p = hhi::Pipeline::load(&pfile, &reg).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("store")));
    let report = run(&p, store.clone(), &RunOptions::default()).unwrap();
    let err = format!("{:?}", report.outcome("bad"));
    assert!(
        err.contains("changed its input") && err.contains("input `t`"),
        "{err}"
    );
    assert!(
        store.records().iter().all(|r| r.stage != "bad"),
        "no record for the tampering stage"
    );
    assert_objects_intact(store.root());
    assert!(!all_object_text(store.root()).contains("TAMPERED"));
    // The next run brings the damaged object back (here by re-importing the file).
    let report = run(&p, store.clone(), &RunOptions::default()).unwrap();
    assert!(report.success(), "{}", report.render());
    let rec = store
        .records()
        .into_iter()
        .find(|r| r.stage == "src")
        .unwrap();
    let obj = store.object_path(&rec.outputs["out"].digest);
    assert_eq!(std::fs::read_to_string(obj).unwrap(), "original\n");
}

#[test]
fn folder_artifacts_publish_and_gc_as_any_user() {
    // As root this passes trivially; CI also runs it as an unprivileged user, where moving
    // a read-only folder into the store used to fail with EACCES.
    let p = Project::new();
    p.write("data/a/x.txt", "x\n");
    p.write("data/a/sub/y.txt", "y\n");
    p.write(
        "p.toml",
        r#"
[stages.imp]
kind = "files"
path = "data/a"

[stages.mk]
kind = "command"
inputs = { d = "imp.out" }
outputs = ["dir"]
run = 'mkdir -p "$HHI_OUT_dir/deep" && cp -r "$HHI_IN_d" "$HHI_OUT_dir/deep/copy"'
"#,
    );
    let o = p.run("p.toml");
    assert_eq!(o["imp"], "ran");
    assert_eq!(o["mk"], "ran");
    assert!(p.ok(&["audit", "p.toml", "--all"]).contains("no problems"));
    // Forget the pipeline: its lock file goes, gc removes the folders.
    std::fs::remove_file(p.path("p.lock")).unwrap();
    p.ok(&["gc", "--keep", "0"]);
    assert!(files_under(&p.store().join("objects")).is_empty());
    assert!(files_under(&p.store().join("tmp")).is_empty());
}

#[test]
fn gc_keeps_what_any_existing_lock_file_names() {
    let p = Project::new();
    p.write(
        "a.toml",
        "[stages.a]\nkind = \"command\"\noutputs = [\"o\"]\nrun = 'echo a > \"$HHI_OUT_o\"'\n",
    );
    p.run("a.toml");
    for i in 0..7 {
        p.write(
            "b.toml",
            &format!("[stages.b]\nkind = \"command\"\noutputs = [\"o\"]\nrun = 'echo b{i} > \"$HHI_OUT_o\"'\n"),
        );
        p.run("b.toml");
    }
    p.ok(&["gc", "--keep", "1"]);
    p.ok(&["gc", "--keep", "1"]);
    let audit = p.hhi(&["audit", "a.toml"]);
    assert!(audit.status.success(), "{}", text(&audit.stdout));
    // Once a.lock is deleted, A is no longer a root.
    std::fs::remove_file(p.path("a.lock")).unwrap();
    p.ok(&["gc", "--keep", "1"]);
    assert!(!all_object_text(&p.store()).contains("a\n"));
    assert!(all_object_text(&p.store()).contains("b6"));
}

#[test]
fn a_truncated_record_is_reported_and_treated_as_absent() {
    let p = diamond();
    p.run("pipelines/diamond.toml");
    let rec: serde_json::Value = serde_json::from_str(&p.ok(&["show", "count", "--json"])).unwrap();
    let key = rec["key"].as_str().unwrap();
    let path = p
        .store()
        .join("records")
        .join(&key[..2])
        .join(format!("{}.json", &key[2..]));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let plan = p.hhi(&["plan", "pipelines/diamond.toml", "--json"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stderr).contains("unreadable"),
        "{}",
        text(&plan.stderr)
    );
    let audit = p.hhi(&["audit", "pipelines/diamond.toml"]);
    assert!(!audit.status.success(), "audit reports the broken record");
    let o = p.run("pipelines/diamond.toml");
    assert_eq!(o["count"], "ran");
    assert_eq!(o["join"], "fresh", "same bytes again: early cutoff");
    p.ok(&["run", "pipelines/diamond.toml", "--force", "count"]);
    assert!(
        p.ok(&["audit", "pipelines/diamond.toml"])
            .contains("no problems")
    );
}

#[test]
fn failure_messages_survive_bad_bytes_and_huge_logs() {
    let p = Project::new();
    p.write(
        "p.toml",
        r#"
[stages.bad]
kind = "command"
outputs = ["o"]
run = 'printf "caf\351 is not UTF-8\n"; echo "the real error"; exit 3'

[stages.huge]
kind = "command"
outputs = ["o"]
run = 'head -c 300000000 /dev/zero | tr "\0" "a"; echo; echo "last words"; exit 4'
"#,
    );
    let out = p.hhi(&["run", "p.toml", "--json", "--jobs", "1"]);
    let report = text(&out.stdout);
    assert!(report.contains("the real error"), "{report}");
    assert!(report.contains("caf\u{fffd} is not UTF-8"), "{report}");
    assert!(report.contains("last words"), "{report}");
    assert!(!report.contains("printed nothing"), "{report}");
    // The tail is read from the end: hhi's own peak memory stays far below the log's size.
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}

#[test]
fn logs_of_failed_stages_are_collected_with_their_work_folder() {
    let p = Project::new();
    p.write(
        "p.toml",
        "[stages.f]\nkind = \"command\"\noutputs = [\"o\"]\nrun = 'echo oops; exit 1'\n",
    );
    p.hhi(&["run", "p.toml"]);
    assert_eq!(files_under(&p.store().join("logs")).len(), 1);
    // The work folder (and so the log) is kept while a rerun might resume; once it is gone,
    // gc collects the log.
    for e in std::fs::read_dir(p.store().join("work")).unwrap().flatten() {
        std::fs::remove_dir_all(e.path()).unwrap();
    }
    let out = p.ok(&["gc"]);
    assert!(out.contains("1 log(s)"), "{out}");
    assert!(files_under(&p.store().join("logs")).is_empty());
}

#[test]
fn an_all_fresh_run_works_on_a_read_only_store() {
    let p = diamond();
    p.run("pipelines/diamond.toml");
    let lock_before = p.read("pipelines/diamond.lock");
    // Read-only for everyone but root: run as root, a chmod is not enough, so the test
    // makes the store unwritable only where that means something.
    set_mode_tree(&p.store(), false);
    let writable = hhi::Store::open(&p.store()).writable();
    let out = p.hhi(&["run", "pipelines/diamond.toml", "--json"]);
    set_mode_tree(&p.store(), true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = outcomes(&text(&out.stdout));
    assert!(o.values().all(|s| s == "fresh"), "{o:?}");
    assert_eq!(p.read("pipelines/diamond.lock"), lock_before);
    if !writable {
        // And a run that needs to write says so clearly.
        p.write("pipelines/data/in.txt", "changed\n");
        set_mode_tree(&p.store(), false);
        let out = p.hhi(&["run", "pipelines/diamond.toml"]);
        set_mode_tree(&p.store(), true);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("read-only"),
            "{}",
            text(&out.stderr)
        );
    }
}

fn set_mode_tree(root: &Path, writable: bool) {
    // Only the store's top folders: enough to make it unwritable.
    for d in [
        "", "objects", "records", "runs", "roots", "tmp", "work", "logs",
    ] {
        let p = root.join(d);
        if p.exists() {
            let mode = if writable { 0o755 } else { 0o555 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

#[test]
fn kill_9_during_gc_never_leaves_a_partial_object() {
    let p = Project::new();
    p.write(
        "p.toml",
        "[stages.many]\nkind = \"command\"\noutputs = [\"d\"]\nrun = 'mkdir \"$HHI_OUT_d\" && cd \"$HHI_OUT_d\" && seq 1 20000 | xargs touch'\n",
    );
    p.run("p.toml");
    std::fs::remove_file(p.path("p.lock")).unwrap();
    let mut child = p
        .cmd(&["gc", "--keep", "0"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(40));
    let _ = child.kill();
    child.wait().unwrap();
    // Whatever moment the kill hit: under objects/ only complete objects remain.
    assert_objects_intact(&p.store());
    p.ok(&["gc", "--keep", "0"]);
    assert!(files_under(&p.store().join("tmp")).is_empty());
    assert!(files_under(&p.store().join("objects")).is_empty());
}

#[test]
fn a_full_disk_is_named_in_the_failure() {
    // A 256 KiB tmpfs as the store, mounted in a private mount (and, for non-root users, user)
    // namespace so the test needs no privileges: the command fills it, its log cannot be
    // written, and the failure must still say why.
    let p = Project::new();
    p.write(
        "p.toml",
        "[stages.big]\nkind = \"command\"\noutputs = [\"o\"]\nrun = 'head -c 1000000 /dev/zero > \"$HHI_OUT_o\"'\n",
    );
    let script = format!(
        "mkdir -p store && mount -t tmpfs -o size=256k tmpfs store && exec {} --store store run p.toml --json",
        hhi_bin().display()
    );
    // `unshare -m` as root; `-rm` (a user namespace too) for everyone else.
    let root = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let flags = if root { "-m" } else { "-rm" };
    let out = std::process::Command::new("unshare")
        .args([flags, "sh", "-c", &script])
        .current_dir(p.dir.path())
        .output()
        .expect("unshare (util-linux) runs");
    let report = text(&out.stdout);
    assert!(!out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(
        report.contains("no space left on device") || report.contains("No space left on device"),
        "the failure names the full disk:\n{report}\n{}",
        text(&out.stderr)
    );
}
