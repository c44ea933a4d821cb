//! The command line at its edges: output into a closed pipe, an empty `HHI_STORE`, `show`
//! of a digest that several records produced, symlinked inputs, `--help` texts, `-j 0`,
//! and log lines without colour codes when nobody is looking at a terminal.
mod common;
use common::*;
use std::os::fd::FromRawFd;
use std::process::Stdio;

/// The write end of a pipe whose read end is already closed: every write fails with EPIPE,
/// as `hhi … | head` does once `head` has exited.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { libc::close(fds[0]) };
    Stdio::from(unsafe { std::fs::File::from_raw_fd(fds[1]) })
}

const SAME_TWICE: &str = r#"
[stages.one]
kind = "command"
run = "echo same > \"$HHI_OUT_o\""
outputs = ["o"]

[stages.two]
kind = "command"
run = "echo same > \"$HHI_OUT_o\"; true"
outputs = ["o"]
"#;

#[test]
fn closed_stdout_is_not_a_panic() {
    let p = diamond();
    for args in [
        &["plan", "pipelines/diamond.toml", "--json"][..],
        &["plan", "pipelines/diamond.toml"],
        &["stages"],
        &["graph", "pipelines/diamond.toml"],
        &[
            "hash",
            "pipelines/data/in.txt",
            "pipelines/scripts/helper.sh",
        ],
    ] {
        let out = p.cmd(args).stdout(closed_pipe()).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "hhi {args:?}: {err}");
        assert!(!err.contains("panicked"), "hhi {args:?}: {err}");
    }
    // The exit status still says what it would have said.
    let out = p
        .cmd(&["plan", "pipelines/diamond.toml", "--check"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = p
        .cmd(&["run", "pipelines/diamond.toml"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    // An error message into a closed stderr: still exit 2, not a panic (101).
    p.write("bad.toml", "[stages.a]\nkind = \"comand\"\n");
    let out = p
        .cmd(&["plan", "bad.toml"])
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn empty_hhi_store_means_the_default_store() {
    let p = diamond();
    let out = p
        .cmd(&["run", "pipelines/diamond.toml"])
        .env("HHI_STORE", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        p.store().join("objects").is_dir(),
        "./artifacts is the store"
    );
    for stray in ["objects", "records", "runs"] {
        assert!(
            !p.path(stray).exists(),
            "the project folder became the store: {stray}/"
        );
    }
    // And `--store ""` is refused rather than meaning the current folder.
    let out = p.hhi(&["plan", "pipelines/diamond.toml", "--store", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be empty"));
}

#[test]
fn show_lists_every_record_that_produced_a_digest() {
    let p = Project::new();
    p.write("p.toml", SAME_TWICE);
    p.write("same.txt", "same\n");
    p.ok(&["run", "p.toml"]);
    let digest = p.ok(&["hash", "same.txt"]);
    let digest = digest.split_whitespace().next().unwrap();
    for what in [digest, &digest[..8]] {
        let out = p.ok(&["show", what]);
        assert!(out.contains("2 records produced these bytes"), "{out}");
        assert!(
            out.contains("stage     one ") && out.contains("stage     two "),
            "{out}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&p.ok(&["show", what, "--json"])).unwrap();
        let stages: Vec<&str> = json
            .as_array()
            .expect("an array when several records match")
            .iter()
            .map(|r| r["stage"].as_str().unwrap())
            .collect();
        assert_eq!(stages.len(), 2);
        assert!(stages.contains(&"one") && stages.contains(&"two"));
    }
    // One record: one object, as before.
    let json: serde_json::Value = serde_json::from_str(&p.ok(&["show", "one", "--json"])).unwrap();
    assert_eq!(json["stage"], "one");
}

#[test]
fn symlinked_inputs_are_followed() {
    let p = Project::new();
    p.write("real.txt", "first\n");
    std::os::unix::fs::symlink("real.txt", p.path("link.txt")).unwrap();
    p.write(
        "p.toml",
        r#"
[stages.imp]
kind = "files"
path = "link.txt"

[stages.cat]
kind = "command"
run = "cat \"$HHI_IN_x\" > \"$HHI_OUT_o\""
inputs = { x = { file = "link.txt" } }
outputs = ["o"]
"#,
    );
    let first = p.run("p.toml");
    assert_eq!(first["imp"], "ran");
    assert_eq!(first["cat"], "ran");
    let want = p.ok(&["hash", "real.txt"]);
    let want = want.split_whitespace().next().unwrap();
    assert!(
        p.ok(&["show", "imp"]).contains(want),
        "imported the target's bytes"
    );
    // Editing the target is a change to the input.
    p.write("real.txt", "second\n");
    let again = p.run("p.toml");
    assert_eq!(again["imp"], "ran");
    assert_eq!(again["cat"], "ran");
}

#[test]
fn help_describes_every_argument() {
    for cmd in ["run", "plan", "audit", "graph"] {
        let help = p_help(&[cmd, "--help"]);
        let args = help.split("Arguments:").nth(1).unwrap_or("");
        let described = args.split("Options:").next().unwrap_or("");
        assert!(described.contains("The pipeline file"), "{cmd}:\n{help}");
    }
    let gc = p_help(&["gc", "--help"]);
    let line = gc.lines().find(|l| l.contains("--no-wait")).unwrap();
    assert!(line.contains("Fail at once"), "{gc}");
    // --quiet only where there are progress bars.
    assert!(p_help(&["run", "--help"]).contains("--quiet"));
    for cmd in ["plan", "audit", "show", "gc", "stages", "hash", "graph"] {
        assert!(!p_help(&[cmd, "--help"]).contains("--quiet"), "{cmd}");
    }
    let top = p_help(&["--help"]);
    assert!(!top.contains("--quiet"), "{top}");
}

fn p_help(args: &[&str]) -> String {
    Project::new().ok(args)
}

#[test]
fn zero_jobs_is_an_error() {
    let p = diamond();
    let out = p.hhi(&["run", "pipelines/diamond.toml", "-j", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("must be at least 1"),
        "{}",
        text(&out.stderr)
    );
    assert!(!p.store().exists(), "nothing ran");
    p.ok(&["run", "pipelines/diamond.toml", "-j", "1", "-q"]);
}

#[test]
fn log_lines_have_no_colour_codes_off_a_terminal() {
    let p = diamond();
    let out = p
        .cmd(&["run", "pipelines/diamond.toml"])
        .env("HHI_LOG", "info")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("INFO"), "expected log lines:\n{err}");
    assert!(!err.contains('\u{1b}'), "ANSI escapes in a pipe:\n{err:?}");
}

/// `graph --format svg` goes through Graphviz's `dot`; without it, the error says how to
/// get it. (`.ci/run` installs Graphviz; elsewhere the drawing half is skipped with a reason.)
#[test]
fn graph_as_svg_through_dot_or_a_message_on_how_to_get_it() {
    let p = diamond();
    let out = p
        .cmd(&["graph", "pipelines/diamond.toml", "--format", "svg"])
        .env("HHI_DOT", "/nonexistent/dot")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("Graphviz")
            && err.contains("apt install graphviz")
            && err.contains("--format dot"),
        "{err}"
    );
    let has_dot = std::process::Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_dot {
        assert!(
            std::env::var_os("HHI_REQUIRE_GRAPHVIZ").is_none(),
            "HHI_REQUIRE_GRAPHVIZ is set but `dot` is not on PATH"
        );
        eprintln!("SKIPPED the drawing half: Graphviz's `dot` is not installed");
        return;
    }
    let svg = p.ok(&["graph", "pipelines/diamond.toml", "--format", "svg"]);
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    // Every stage is drawn.
    let dot = p.ok(&["graph", "pipelines/diamond.toml"]);
    for line in dot
        .lines()
        .filter(|l| l.contains("[label=") && !l.contains("->"))
    {
        let name = line.trim().split('"').nth(1).unwrap();
        assert!(svg.contains(name), "{name} missing from the SVG");
    }
}
