//! Every class of pipeline error is reported with file:line:column and a hint, and a bad
//! pipeline never touches the store.
mod common;
use common::*;
use hhi::{ArtifactType, ParamSpec, PortSpec, Registry, StageContext, StageKind};
use std::path::Path;

struct MakeCaptions;
impl StageKind for MakeCaptions {
    fn name(&self) -> &'static str {
        "make_captions"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "test kind"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::int("count", 10, "how many").range(1.0, 1000.0)]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("captions", ArtifactType::Captions, "")]
    }
    fn run(&self, _: &mut StageContext) -> anyhow::Result<()> {
        unreachable!("loader tests never run stages")
    }
}

struct Summarize;
impl StageKind for Summarize {
    fn name(&self) -> &'static str {
        "summarize"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "test kind"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::float("lr", 5e-5, "learning rate").range(0.0, 1.0),
            ParamSpec::int("epochs", 3, "epochs").range(1.0, 100.0),
        ]
    }
    fn inputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("captions", ArtifactType::Captions, "")]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        vec![PortSpec::new("model", ArtifactType::Summarizer, "")]
    }
    fn run(&self, _: &mut StageContext) -> anyhow::Result<()> {
        unreachable!("loader tests never run stages")
    }
}

fn registry() -> Registry {
    let mut r = hhi::stages::builtin();
    r.register(MakeCaptions).register(Summarize);
    r
}

const GOOD: &str = r#"[pipeline]
name = "t"

[stages.gen]
kind = "make_captions"
count = 5

[stages.sum]
kind = "summarize"
captions = "gen.captions"
lr = 1e-4
"#;

/// Parses `src` and returns the rendered diagnostics (panics if it loads).
fn errors(src: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, src).unwrap();
    match hhi::Pipeline::parse(Path::new("p.toml"), src, &registry()) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(d) => d.to_string(),
    }
}

fn assert_has(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "expected `{n}` in:\n{out}");
    }
}

#[test]
fn good_pipeline_loads() {
    let p = hhi::Pipeline::parse(Path::new("p.toml"), GOOD, &registry()).unwrap();
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[1].params.float("lr"), 1e-4);
    assert_eq!(p.stages[1].params.int("epochs"), 3, "default filled in");
}

#[test]
fn toml_syntax_error() {
    let out = errors("[pipeline]\nname = \"x\"\n[stages.a\nkind = 1\n");
    assert_has(&out, &["invalid TOML", "p.toml:3:"]);
}

#[test]
fn unknown_kind_suggests_the_closest() {
    let out = errors(&GOOD.replace("kind = \"summarize\"", "kind = \"sumarize\""));
    assert_has(
        &out,
        &[
            "unknown stage kind `sumarize`",
            "p.toml:9:8",
            "did you mean `summarize`?",
        ],
    );
}

#[test]
fn unknown_output_port() {
    let out = errors(&GOOD.replace("\"gen.captions\"", "\"gen.captionz\""));
    assert_has(
        &out,
        &[
            "stage `gen` has no output port `captionz`",
            "p.toml:10:12",
            "did you mean `gen.captions`?",
        ],
    );
}

#[test]
fn unknown_upstream_stage() {
    let out = errors(&GOOD.replace("\"gen.captions\"", "\"gne.captions\""));
    assert_has(
        &out,
        &[
            "unknown stage `gne`",
            "p.toml:10:12",
            "did you mean `gen.captions`?",
        ],
    );
}

#[test]
fn missing_required_input() {
    let out = errors(&GOOD.replace("captions = \"gen.captions\"\n", ""));
    assert_has(
        &out,
        &[
            "stage `sum` is missing required input `captions` (Captions)",
            "p.toml:8:9",
        ],
    );
}

#[test]
fn type_mismatch_on_an_edge() {
    let src = format!("{GOOD}\n[stages.raw]\nkind = \"files\"\npath = \"p.toml\"\n")
        .replace("\"gen.captions\"", "\"raw.out\"");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, &src).unwrap();
    let out = match hhi::Pipeline::parse(&path, &src, &registry()) {
        Ok(_) => panic!("should not load"),
        Err(d) => d.to_string(),
    };
    assert_has(
        &out,
        &[
            "type mismatch: `raw.out` is Blob but input `captions` of `sum` expects Captions",
            ":10:12",
            "as = \"Captions\"",
        ],
    );
    // Declaring the import's type fixes it.
    let fixed = src.replace("path = \"p.toml\"", "path = \"p.toml\"\nas = \"Captions\"");
    std::fs::write(&path, &fixed).unwrap();
    assert!(hhi::Pipeline::parse(&path, &fixed, &registry()).is_ok());
}

#[test]
fn unknown_parameter_says_did_you_mean() {
    let out = errors(&GOOD.replace("lr = 1e-4", "lr = 1e-4\nepohcs = 4"));
    assert_has(
        &out,
        &[
            "unknown parameter `epohcs` for kind `summarize`",
            "p.toml:12:1",
            "did you mean `epochs`?",
        ],
    );
}

#[test]
fn bad_values() {
    let out = errors(&GOOD.replace("lr = 1e-4", "lr = \"fast\""));
    assert_has(
        &out,
        &[
            "bad value for `lr`: expected float, found a string",
            "p.toml:11:6",
        ],
    );
    let out = errors(&GOOD.replace("count = 5", "count = 0"));
    assert_has(
        &out,
        &[
            "`count` = 0 is out of range: expected 1 ..= 1000",
            "p.toml:6:9",
        ],
    );
    let out = errors(&GOOD.replace("lr = 1e-4", "lr = nan"));
    assert_has(&out, &["`lr` must be a finite number", "p.toml:11:6"]);
}

#[test]
fn missing_file() {
    let out = errors("[stages.a]\nkind = \"files\"\npath = \"nowhere.txt\"\n");
    assert_has(
        &out,
        &[
            "file not found: `nowhere.txt`",
            "p.toml:3:8",
            "relative to the pipeline file",
        ],
    );
    let out = errors(
        "[stages.a]\nkind = \"command\"\nrun = \"true\"\ninputs = { s = { file = \"x.sh\" } }\n",
    );
    assert_has(&out, &["file not found: `x.sh`", "p.toml:4:25"]);
}

#[test]
fn cycle_names_its_stages() {
    let src = "[stages.a]\nkind = \"command\"\nrun = \"true\"\ninputs = { x = \"b.o\" }\noutputs = [\"o\"]\n\
               [stages.b]\nkind = \"command\"\nrun = \"true\"\ninputs = { x = \"a.o\" }\noutputs = [\"o\"]\n\
               [stages.c]\nkind = \"command\"\nrun = \"true\"\ninputs = { x = \"b.o\" }\noutputs = [\"o\"]\n";
    let out = errors(src);
    assert_has(&out, &["cycle between stages `a`, `b`", "p.toml:1:9"]);
    assert!(
        !out.contains("`c`"),
        "c is downstream of the cycle, not on it:\n{out}"
    );
}

#[test]
fn several_problems_are_reported_together() {
    let src = GOOD
        .replace("count = 5", "count = 0")
        .replace("lr = 1e-4", "lr = 1e-4\nepohcs = 4");
    let out = errors(&src);
    assert_has(&out, &["out of range", "epohcs", "2 problems"]);
}

#[test]
fn bad_pipeline_never_touches_the_store() {
    let p = Project::new();
    p.write("p.toml", "[stages.a]\nkind = \"comand\"\n");
    let out = p.hhi(&["run", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_has(&err, &["p.toml:2:8", "did you mean `command`?"]);
    assert!(
        !p.store().exists(),
        "the store was created by a bad pipeline"
    );
    assert!(!p.path("p.lock").exists());
    let out = p.hhi(&["plan", "p.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!p.store().exists());
}

/// Loads `src` as `dir/p.toml` (so relative paths resolve in `dir`) and returns the
/// rendered diagnostics (panics if it loads).
fn errors_in(dir: &Path, src: &str) -> String {
    let path = dir.join("p.toml");
    std::fs::write(&path, src).unwrap();
    match hhi::Pipeline::load(&path, &registry()) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_path_is_one_problem_not_two() {
    let out = errors("[stages.a]\nkind = \"files\"\npath = \"nowhere.txt\"\n");
    assert_has(&out, &["file not found: `nowhere.txt`", "1 problem"]);
    assert!(
        !out.contains("missing required parameter"),
        "the path was given; only the file is missing:\n{out}"
    );
    // The same for a parameter given with a bad value.
    let out = errors("[stages.a]\nkind = \"command\"\nrun = 5\n");
    assert_has(&out, &["bad value for `run`", "p.toml:3:7", "1 problem"]);
    assert!(!out.contains("missing required parameter"), "{out}");
}

#[test]
fn ports_that_share_an_environment_name_are_rejected() {
    let out = errors(
        "[stages.a]\nkind = \"command\"\nrun = \"true\"\noutputs = [\"x\"]\n\
         [stages.b]\nkind = \"command\"\nrun = \"true\"\n\
         inputs = { a-b = \"a.x\", a_b = \"a.x\" }\noutputs = [\"o-1\", \"o_1\"]\n",
    );
    assert_has(
        &out,
        &[
            "inputs `a-b` and `a_b` of stage `b` would both be $HHI_IN_a_b",
            "p.toml:8:25",
            "outputs `o-1` and `o_1` of stage `b` would both be $HHI_OUT_o_1",
            "p.toml:9:19",
            "rename one of them",
            "2 problems",
        ],
    );
    // Names that stay distinct are fine.
    let ok = "[stages.a]\nkind = \"command\"\nrun = \"true\"\noutputs = [\"x\"]\n\
              [stages.b]\nkind = \"command\"\nrun = \"true\"\n\
              inputs = { a-b = \"a.x\", a_c = \"a.x\" }\noutputs = [\"o-1\", \"o_2\"]\n";
    hhi::Pipeline::parse(Path::new("p.toml"), ok, &registry()).unwrap();
}

#[test]
fn environment_names_and_values_are_checked_at_load_time() {
    let src = "[stages.a]\nkind = \"command\"\nrun = \"true\"\n\
               env = { \"X=Y\" = \"1\", \"\" = \"2\", PATH = \"\", \"A\\u0000\" = \"b\", B = \"c\\u0000\" }\n";
    let out = errors(src);
    assert_has(
        &out,
        &[
            "environment variable name `X=Y` contains `=`",
            "p.toml:4:9",
            "did you mean X = \"…\"?",
            "empty environment variable name in `env`",
            "p.toml:4:22",
            "`PATH` is empty",
            "p.toml:4:39",
            "environment variable name `A\\0` contains a NUL byte",
            "p.toml:4:43",
            "the value of `B` in `env` contains a NUL byte",
            "p.toml:4:64",
            "5 problems",
        ],
    );
    let ok = "[stages.a]\nkind = \"command\"\nrun = \"true\"\n\
              env = { X = \"\", PATH = \"/usr/bin:/bin\", LANG = \"C=1\" }\n";
    hhi::Pipeline::parse(Path::new("p.toml"), ok, &registry()).unwrap();
}

#[test]
fn special_files_are_rejected_and_symlinks_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = std::ffi::CString::new(d.join("fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let out = errors_in(d, "[stages.a]\nkind = \"files\"\npath = \"fifo\"\n");
    assert_has(
        &out,
        &[
            "`fifo` is a FIFO (named pipe), not a file or folder",
            "p.toml:3:8",
            "1 problem",
        ],
    );
    let out = errors_in(
        d,
        "[stages.a]\nkind = \"command\"\nrun = \"true\"\ninputs = { n = { file = \"/dev/null\" } }\n",
    );
    assert_has(&out, &["`/dev/null` is a character device", "p.toml:4:25"]);

    std::os::unix::fs::symlink("nothing", d.join("dangling")).unwrap();
    let out = errors_in(d, "[stages.a]\nkind = \"files\"\npath = \"dangling\"\n");
    assert_has(
        &out,
        &["`dangling` is a symlink to a missing file", "p.toml:3:8"],
    );

    // A symlink to a file is read as that file.
    std::fs::write(d.join("real.txt"), "x").unwrap();
    std::os::unix::fs::symlink("real.txt", d.join("link.txt")).unwrap();
    let path = d.join("p.toml");
    std::fs::write(&path, "[stages.a]\nkind = \"files\"\npath = \"link.txt\"\n").unwrap();
    let p = hhi::Pipeline::load(&path, &registry()).unwrap();
    match &p.stages[0].inputs["path"].source {
        hhi::pipeline::InputSource::File { rel, abs } => {
            assert_eq!(rel, "link.txt", "the name as written");
            assert_eq!(abs, &d.join("real.txt").canonicalize().unwrap());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_utf8_pipeline_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        b"[stages.a]\nkind = \"command\"\n# caf\xe9\nrun = \"true\"\n",
    )
    .unwrap();
    let out = match hhi::Pipeline::load(&path, &registry()) {
        Ok(_) => panic!("should not load"),
        Err(e) => e.to_string(),
    };
    assert_has(
        &out,
        &[
            "not valid UTF-8 (byte 0xe9)",
            "p.toml:3:6",
            "re-save the file as UTF-8",
        ],
    );
}
