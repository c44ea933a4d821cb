//! Stages as Slurm jobs, against a real Slurm: `.ci/run` starts a single-node cluster
//! (`tools/slurm_cluster.sh start`: munged, slurmctld, slurmd) and sets
//! HHI_REQUIRE_SLURM=1. Elsewhere these tests print why they skipped when no cluster
//! answers `sinfo`. Nothing here mocks `sbatch`: jobs are submitted, followed, cancelled
//! and time-limited by Slurm itself.
mod common;

use common::{Project, SMOKE, smoke_project, text};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cluster_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mixed", "allocated"].contains(&l.trim()))
        });
    if !up {
        assert!(
            std::env::var_os("HHI_REQUIRE_SLURM").is_none(),
            "HHI_REQUIRE_SLURM is set but no Slurm cluster answers `sinfo`"
        );
        eprintln!(
            "SKIPPED: no Slurm cluster answers `sinfo` (as root: tools/slurm_cluster.sh start)"
        );
    }
    up
}

/// The state Slurm gives job `id` (`scontrol show job`).
fn job_state(id: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", id, "--oneliner"])
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .unwrap_or("")
        .to_string()
}

/// The id of the live job named `hhi-<stage>` submitted from this project, waiting for it.
fn live_job(stage: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args([
                "-h",
                "-n",
                &format!("hhi-{stage}"),
                "-t",
                "RUNNING",
                "-o",
                "%i",
            ])
            .output()
            .unwrap();
        if let Some(id) = text(&out.stdout).lines().next() {
            return id.trim().to_string();
        }
        assert!(start.elapsed() < within, "no running job hhi-{stage}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn smoke_on_slurm_matches_a_local_run_and_a_rerun_submits_nothing() {
    if !cluster_up() {
        return;
    }
    let local = smoke_project();
    local.run(SMOKE);
    let p = smoke_project();
    let toml = p.read(SMOKE);
    p.write(
        SMOKE,
        &toml.replacen(
            "backend = \"auto\"",
            "backend = \"auto\"\nexecutor = \"slurm\"\nslurm = { cpus = 1, time = \"0:10:00\" }",
            1,
        ),
    );
    let out = p.run(SMOKE);
    assert!(out.values().all(|s| s == "ran"), "{out:?}");
    assert_eq!(
        p.read("pipelines/smoke.lock"),
        local.read("pipelines/smoke.lock"),
        "the same keys and digests as a local run"
    );
    // Where it ran: in the record, `show` and `plan`.
    let shown = p.ok(&["show", "captioner"]);
    assert!(shown.contains("slurm     job "), "{shown}");
    let plan = p.ok(&["plan", SMOKE]);
    assert!(
        plan.lines()
            .any(|l| l.contains("captioner") && l.contains("(ran as slurm job ")),
        "{plan}"
    );
    // A second run submits no job: every stage is fresh, no new job file appears.
    let jobs = std::fs::read_dir(p.store().join("slurm")).unwrap().count();
    let out = p.run(SMOKE);
    assert!(out.values().all(|s| s == "fresh"), "{out:?}");
    assert_eq!(
        std::fs::read_dir(p.store().join("slurm")).unwrap().count(),
        jobs
    );
}

/// A command pipeline: `slow` counts to 8, a second a step, keeping its count in
/// $HHI_WORK (its checkpoint) and writing where it started from; `quick` is its sibling.
const SLOW: &str = r#"
[pipeline]
executor = "slurm"

[stages.slow]
kind = "command"
outputs = ["o"]
run = '''
i=$(cat "$HHI_WORK/n" 2>/dev/null || echo 0)
start=$i
while [ "$i" -lt 8 ]; do i=$((i+1)); echo "$i" > "$HHI_WORK/n"; sleep 1; done
echo "started at $start" > "$HHI_OUT_o"
'''

[stages.quick]
kind = "command"
outputs = ["o"]
run = "sleep 4; echo done > \"$HHI_OUT_o\""
"#;

fn slow_project(tag: &str) -> Project {
    let p = Project::new();
    // Distinct commands per test, so that two tests never share a cache key (and a job).
    // Distinct stage names too: tests run concurrently and find their jobs by name.
    p.write(
        "p.toml",
        &SLOW
            .replace("sleep 4;", &format!("sleep 4; echo {tag};"))
            .replace("[stages.slow]", &format!("[stages.slow_{tag}]"))
            .replace("[stages.quick]", &format!("[stages.quick_{tag}]")),
    );
    p
}

#[test]
fn a_cancelled_job_fails_its_stage_by_name_and_a_rerun_resumes() {
    if !cluster_up() {
        return;
    }
    let p = slow_project("cancel");
    let child = p
        .cmd(&["run", "p.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = live_job("slow_cancel", Duration::from_secs(60));
    let work = p.store().join("work");
    wait_for("two steps of `slow`", Duration::from_secs(60), || {
        common::files_under(&work).iter().any(|f| {
            f.ends_with("n")
                && std::fs::read_to_string(f)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .is_some_and(|n| n >= 2)
        })
    });
    assert!(Command::new("scancel").arg(&id).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stage = |n: &str| {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()
            .clone()
    };
    let slow = stage("slow_cancel");
    assert_eq!(slow["outcome"]["state"], "failed", "{slow}");
    let err = slow["outcome"]["error"].as_str().unwrap();
    assert!(
        err.contains(&format!("Slurm job {id}")) && err.contains("CANCELLED"),
        "{err}"
    );
    assert_eq!(
        stage("quick_cancel")["outcome"]["state"],
        "ran",
        "the sibling finished: {report}"
    );
    assert_eq!(job_state(&id), "CANCELLED");

    // The rerun resumes from the count the cancelled job left.
    let again = p.run("p.toml");
    assert_eq!(again["slow_cancel"], "ran");
    assert_eq!(again["quick_cancel"], "fresh");
    let started: u32 = p
        .read_output("slow_cancel.o")
        .trim()
        .trim_start_matches("started at ")
        .parse()
        .unwrap();
    assert!(started >= 2, "the rerun started over: {started}");
}

#[test]
fn ctrl_c_cancels_submitted_jobs_unless_detached_and_a_rerun_attaches() {
    if !cluster_up() {
        return;
    }
    let p = slow_project("interrupt");
    let mut child = p
        .cmd(&["run", "p.toml"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = live_job("slow_interrupt", Duration::from_secs(60));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    wait_for("the job to be cancelled", Duration::from_secs(30), || {
        job_state(&id) == "CANCELLED"
    });

    // --detach: the job keeps running, and the next run attaches instead of resubmitting.
    let q = slow_project("detach");
    let child = q
        .cmd(&["run", "p.toml", "--detach"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = live_job("slow_detach", Duration::from_secs(60));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        text(&out.stderr).contains("keep running (--detach)"),
        "{}",
        text(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(job_state(&id), "RUNNING");
    let again = q.run("p.toml");
    assert_eq!(again["slow_detach"], "ran");
    let shown = q.ok(&["show", "slow_detach"]);
    assert!(
        shown.contains(&format!("slurm     job {id} ")),
        "attached to {id}: {shown}"
    );
}

#[test]
fn a_job_past_its_time_limit_is_reported_as_timed_out() {
    if !cluster_up() {
        return;
    }
    let p = Project::new();
    p.write(
        "p.toml",
        r#"
[stages.forever]
kind = "command"
outputs = ["o"]
run = "sleep 600"
executor = "slurm"
slurm = { time = "0:01:00" }
"#,
    );
    let out = p.hhi(&["run", "p.toml", "--json"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = report["stages"][0]["outcome"]["error"].as_str().unwrap();
    assert!(err.starts_with("timed out: Slurm job "), "{err}");
    assert!(
        err.contains("slurm.time") && err.contains("0:01:00"),
        "{err}"
    );
}

#[test]
fn independent_stages_are_all_submitted_at_once_unless_jobs_is_given() {
    if !cluster_up() {
        return;
    }
    let p = Project::new();
    let mut toml = String::from("[pipeline]\nexecutor = \"slurm\"\n");
    for i in 0..4 {
        toml.push_str(&format!(
            "\n[stages.fan{i}]\nkind = \"command\"\noutputs = [\"o\"]\nrun = \"sleep 6; echo {i} > $HHI_OUT_o\"\n"
        ));
    }
    p.write("p.toml", &toml);
    // More stages than this machine's cores (and than the cluster's CPUs): all four are
    // queued with Slurm at once, which runs what fits.
    let child = p
        .cmd(&["run", "p.toml", "-q"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("four queued jobs", Duration::from_secs(30), || {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%j"])
            .output()
            .unwrap();
        (0..4).all(|i| {
            text(&out.stdout)
                .lines()
                .any(|l| l.trim() == format!("hhi-fan{i}"))
        })
    });
    assert!(child.wait_with_output().unwrap().status.success());
}
