//! Helpers shared by the integration tests: a scratch project folder with its own store,
//! and a way to run the real `hhi` binary in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store(&self) -> PathBuf {
        self.path("artifacts")
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(hhi_bin());
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("HHI_STORE")
            .env_remove("HHI_LOG");
        c
    }

    /// Runs hhi and returns its output, whatever the exit status.
    pub fn hhi(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("hhi runs")
    }

    /// Runs hhi and panics with its output unless it succeeded.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.hhi(args))
    }

    /// `hhi run --json` and the outcome of each stage (`fresh`, `ran`, `failed`, …).
    pub fn run(&self, pipeline: &str) -> std::collections::BTreeMap<String, String> {
        outcomes(&self.ok(&["run", pipeline, "--json"]))
    }

    /// The text of a file output, found with `hhi path <stage>.<port>`.
    pub fn read_output(&self, output: &str) -> String {
        let path = self.ok(&["path", output]);
        std::fs::read_to_string(path.trim()).expect("the output is a readable file")
    }

    pub fn plan_json(&self, pipeline: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["plan", pipeline, "--json"])).unwrap()
    }
}

pub const SMOKE: &str = "pipelines/smoke.toml";

/// A project holding copies of `pipelines/smoke.toml` and its prompt files.
pub fn smoke_project() -> Project {
    let p = Project::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    p.write(
        SMOKE,
        &std::fs::read_to_string(src.join("smoke.toml")).unwrap(),
    );
    for f in [
        "prompts/interactions.txt",
        "prompts/captions.txt",
        "glove/toy.50d.txt",
    ] {
        let text = std::fs::read_to_string(src.join(f)).unwrap();
        p.write(&format!("pipelines/{f}"), &text);
    }
    p
}

/// The `hhi` binary under test. `HHI_TEST_BIN` overrides the path cargo compiled in, so
/// that `.ci/run` can run these tests as an unprivileged user from a copy of the binaries
/// (the build folder may sit where that user cannot reach).
pub fn hhi_bin() -> PathBuf {
    std::env::var_os("HHI_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hhi")))
}

/// The stdout of a finished hhi, or a panic showing all it said if it failed.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "hhi {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn outcomes(json: &str) -> std::collections::BTreeMap<String, String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["outcome"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// A four-stage diamond: src (file) → upper, count → join.
pub const DIAMOND: &str = r#"
[pipeline]
name = "diamond"
seed = 1

[stages.src]
kind = "files"
path = "data/in.txt"

[stages.upper]
kind = "command"
run = "tr a-z A-Z < \"$HHI_IN_text\" > \"$HHI_OUT_out\"; echo \"$SUFFIX\" >> \"$HHI_OUT_out\""
inputs = { text = "src.out" }
outputs = ["out"]
env = { SUFFIX = "one" }

[stages.count]
kind = "command"
run = "wc -c < \"$HHI_IN_text\" > \"$HHI_OUT_out\""
inputs = { text = "src.out", helper = { file = "scripts/helper.sh" } }
outputs = ["out"]

[stages.join]
kind = "command"
run = "cat \"$HHI_IN_a\" \"$HHI_IN_b\" > \"$HHI_OUT_out\""
inputs = { a = "upper.out", b = "count.out" }
outputs = ["out"]
"#;

pub fn diamond() -> Project {
    let p = Project::new();
    p.write("pipelines/diamond.toml", DIAMOND);
    p.write("pipelines/data/in.txt", "hello world\n");
    p.write("pipelines/scripts/helper.sh", "echo helper\n");
    p
}
