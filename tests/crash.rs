//! `kill -9` in the middle of a stage loses nothing that had finished, leaves no partial
//! object, and the killed stage resumes from its checkpoint.
mod common;
use common::*;
use std::time::{Duration, Instant};

const PIPELINE: &str = r#"
[stages.first]
kind = "command"
outputs = ["o"]
run = "echo first > \"$HHI_OUT_o\""

[stages.long]
kind = "command"
inputs = { i = "first.o" }
outputs = ["o"]
env = { MARK = "MARKFILE" }
run = '''
start=0
[ -f "$HHI_WORK/step" ] && start=$(cat "$HHI_WORK/step")
echo "partial output" > "$HHI_OUT_o"
i=$start
while [ $i -lt 8 ]; do
  i=$((i+1))
  echo $i > "$HHI_WORK/step.tmp" && mv "$HHI_WORK/step.tmp" "$HHI_WORK/step"
  if [ $start -eq 0 ] && [ $i -eq 5 ]; then touch "$MARK"; sleep 60; fi
done
echo "resumed from step $start" > "$HHI_OUT_o"
'''
"#;

#[test]
fn kill_9_then_rerun_resumes() {
    let p = Project::new();
    let mark = p.path("reached-step-5");
    p.write(
        "p.toml",
        &PIPELINE.replace("MARKFILE", &mark.display().to_string()),
    );
    let mut child = p
        .cmd(&["run", "p.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !mark.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the long stage never reached step 5"
        );
        assert!(child.try_wait().unwrap().is_none(), "hhi exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // No process of the stage outlives hhi: not `sh`, not the `sleep 60` it forked.
    let marker = format!("MARK={}", mark.display());
    let start = Instant::now();
    loop {
        let alive = processes_with_env(&marker);
        if alive.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "stage processes survived `kill -9` of hhi: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Every object under objects/ is complete: its content hashes to its name.
    let objects = p.store().join("objects");
    let mut n = 0;
    for shard in std::fs::read_dir(&objects).unwrap().flatten() {
        for obj in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = format!(
                "{}{}",
                shard.file_name().to_string_lossy(),
                obj.file_name().to_string_lossy()
            );
            let h = hhi::store::hash::hash_path(&obj.path()).unwrap();
            assert_eq!(h.digest.hex(), name, "partial object visible");
            assert!(
                !std::fs::read_to_string(obj.path())
                    .unwrap_or_default()
                    .contains("partial")
            );
            n += 1;
        }
    }
    assert_eq!(n, 1, "only `first`'s output was published");

    let plan = p.plan_json("p.toml");
    let st = |name: &str| {
        plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(st("first"), "fresh", "a finished stage survives the kill");
    assert_eq!(st("long"), "run");

    let out = p.run("p.toml");
    assert_eq!(out["first"], "fresh");
    assert_eq!(out["long"], "ran");
    let rec: serde_json::Value = serde_json::from_str(&p.ok(&["show", "long", "--json"])).unwrap();
    let digest = rec["outputs"]["o"]["digest"].as_str().unwrap();
    let content = std::fs::read_to_string(objects.join(&digest[..2]).join(&digest[2..])).unwrap();
    assert_eq!(
        content.trim(),
        "resumed from step 5",
        "the rerun continued from its checkpoint"
    );
    assert!(p.ok(&["audit", "p.toml", "--all"]).contains("no problems"));
    // The work folder is cleaned up once the stage is done.
    assert!(files_under(&p.store().join("work")).is_empty());
}

/// Pids (and command names) of live processes whose environment holds `entry`.
fn processes_with_env(entry: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if state.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            continue; // a zombie is not running
        }
        if env.split(|&b| b == 0).any(|kv| kv == entry.as_bytes()) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            out.push(format!(
                "{} {}",
                e.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    out
}
