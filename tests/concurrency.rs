//! Independent stages run at the same time; two hhi processes share a store safely.
mod common;
use common::*;
use std::time::{Duration, Instant};

/// Two stages that each wait (up to `timeout` seconds) until the other has started: both
/// succeed only if they really overlap. No timing is asserted.
fn rendezvous(p: &Project, timeout: u32) {
    let sync = p.path("sync");
    std::fs::create_dir_all(&sync).unwrap();
    let stage = |me: &str, other: &str| {
        format!(
            "[stages.{me}]\nkind = \"command\"\noutputs = [\"o\"]\nenv = {{ SYNC = \"{}\" }}\nrun = '''\n\
             touch \"$SYNC/{me}\"\n\
             n=0; while [ ! -e \"$SYNC/{other}\" ] && [ $n -lt {} ]; do sleep 0.1; n=$((n+1)); done\n\
             [ -e \"$SYNC/{other}\" ] || {{ echo \"{other} never started\" >&2; exit 1; }}\n\
             echo {me} > \"$HHI_OUT_o\"\n'''\n",
            sync.display(),
            timeout * 10
        )
    };
    p.write(
        "p.toml",
        &format!("{}{}", stage("left", "right"), stage("right", "left")),
    );
}

#[test]
fn independent_stages_overlap() {
    let p = Project::new();
    rendezvous(&p, 60);
    let out = outcomes(&p.ok(&["run", "p.toml", "--json", "--jobs", "2"]));
    assert_eq!(out["left"], "ran");
    assert_eq!(out["right"], "ran");
}

#[test]
fn jobs_one_really_serialises() {
    // The control for the test above: with one job the rendezvous cannot happen.
    let p = Project::new();
    rendezvous(&p, 1);
    let out = p.hhi(&["run", "p.toml", "--json", "--jobs", "1"]);
    assert!(!out.status.success());
    let o = outcomes(&text(&out.stdout));
    assert_eq!(o.values().filter(|s| *s == "failed").count(), 1, "{o:?}");
}

const SLOW: &str = "[stages.slow]\nkind = \"command\"\noutputs = [\"o\"]\nrun = \"sleep 1; echo done > \\\"$HHI_OUT_o\\\"\"\n\
                    [stages.after]\nkind = \"command\"\noutputs = [\"o\"]\ninputs = { i = \"slow.o\" }\nrun = \"cp \\\"$HHI_IN_i\\\" \\\"$HHI_OUT_o\\\"\"\n";

#[test]
fn two_runs_on_one_store_both_succeed() {
    let p = Project::new();
    p.write("p.toml", SLOW);
    let a = p
        .cmd(&["run", "p.toml", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = p
        .cmd(&["run", "p.toml", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    let mut states: Vec<String> = [&a, &b]
        .iter()
        .map(|o| outcomes(&text(&o.stdout))["slow"].clone())
        .collect();
    states.sort();
    assert_eq!(
        states,
        ["fresh", "ran"],
        "one ran the stage, the other waited and found it fresh"
    );
    let waited = [&a, &b]
        .iter()
        .any(|o| text(&o.stderr).contains("waiting for the store"));
    assert!(waited, "the second process says whom it waits for");
    assert!(p.ok(&["audit", "p.toml", "--all"]).contains("no problems"));
}

#[test]
fn no_wait_fails_clearly_while_the_store_is_busy() {
    let p = Project::new();
    p.write("p.toml", SLOW);
    let mut first = p
        .cmd(&["run", "p.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !p.path("artifacts/lock.info").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = p.hhi(&["run", "p.toml", "--no-wait"]);
    assert!(!second.status.success());
    let err = text(&second.stderr);
    assert!(
        err.contains("is in use by pid") && err.contains("hhi run p.toml"),
        "{err}"
    );
    assert!(first.wait().unwrap().success());
}
