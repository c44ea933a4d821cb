//! `command`: runs an external program, DVC-style, with its inputs and outputs as paths in
//! environment variables.

use crate::context::StageContext;
use crate::params::{ParamSpec, ParamType, Params};
use crate::registry::{PortSpec, Signature, StageKind};
use crate::types::ArtifactType;
use anyhow::{Context, bail};
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;

pub struct Command;

/// How many lines of the command's output a failure quotes.
const TAIL_LINES: usize = 20;

fn env_name(port: &str) -> String {
    port.replace('-', "_")
}

impl StageKind for Command {
    fn name(&self) -> &'static str {
        "command"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "runs `sh -c RUN` in the pipeline's folder; inputs = { port = \"stage.port\" | { file = \"…\" } } \
         are read-only paths in $HHI_IN_<port>; each name in `outputs` is a path in $HHI_OUT_<port> \
         that the command must create (file or folder); $HHI_WORK is a folder that survives a kill, \
         for checkpoints; $HHI_SEED is the stage's seed"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::required("run", ParamType::Str, "the shell command, run with sh -c"),
            ParamSpec::list("outputs", &[], "names of the outputs the command creates"),
            ParamSpec::map("env", "extra environment variables (part of the cache key)"),
        ]
    }
    fn outputs(&self) -> Vec<PortSpec> {
        Vec::new()
    }
    fn input_table(&self) -> Option<&'static str> {
        Some("inputs")
    }
    fn signature(&self, params: &Params) -> Result<Signature, String> {
        let mut outputs: Vec<PortSpec> = Vec::new();
        for name in params.list("outputs") {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "output name `{name}` must use letters, digits, `_` and `-`"
                ));
            }
            if outputs.iter().any(|o| &o.name == name) {
                return Err(format!("output `{name}` is listed twice"));
            }
            outputs.push(PortSpec::new(
                name,
                ArtifactType::Blob,
                "created by the command",
            ));
        }
        Ok(Signature {
            inputs: Vec::new(),
            outputs,
        })
    }

    fn run(&self, ctx: &mut StageContext) -> anyhow::Result<()> {
        let script = ctx.params.str("run").to_string();
        let log = File::create(ctx.log_path())
            .with_context(|| format!("creating {}", ctx.log_path().display()))?;
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&script)
            .current_dir(&ctx.pipeline_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("HHI_WORK", ctx.work_dir())
            .env("HHI_SEED", ctx.seed.to_string())
            .env("HHI_STAGE", &ctx.stage);
        for (port, path) in ctx.inputs() {
            cmd.env(format!("HHI_IN_{}", env_name(port)), path);
        }
        for (port, path) in ctx.outputs() {
            cmd.env(format!("HHI_OUT_{}", env_name(port)), path);
        }
        for (k, v) in ctx.params.map("env") {
            cmd.env(k, v);
        }
        // SAFETY: prctl is async-signal-safe. It makes the shell die with hhi, so a killed
        // run leaves no command writing into a work folder behind it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        ctx.progress().set_message("running");
        let child = cmd.spawn().context("starting sh")?;
        let (status, peak) = wait_with_rusage(child.id() as libc::pid_t)?;
        ctx.set_peak_rss(peak);
        if !status.success() {
            let how = match (status.code(), status.signal()) {
                (Some(c), _) => format!("exited with status {c}"),
                (None, Some(s)) => format!("was killed by signal {s}"),
                _ => "failed".to_string(),
            };
            bail!("the command {how}\n{}", tail(ctx.log_path()));
        }
        for (port, path) in ctx.outputs() {
            if std::fs::symlink_metadata(path).is_err() {
                bail!(
                    "the command did not create output `{port}` ($HHI_OUT_{})\n{}",
                    env_name(port),
                    tail(ctx.log_path())
                );
            }
        }
        Ok(())
    }
}

/// Waits for the child and returns its exit status and peak resident memory. std's
/// `Child::wait` does not report resource usage, hence wait4.
fn wait_with_rusage(pid: libc::pid_t) -> anyhow::Result<(std::process::ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waiting for the command");
        }
    }
    Ok((
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64 * 1024,
    ))
}

fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "(the command printed nothing)".into();
    }
    let start = lines.len().saturating_sub(TAIL_LINES);
    let mut s = format!(
        "last {} line(s) of output ({}):",
        lines.len() - start,
        log.display()
    );
    for l in &lines[start..] {
        s.push_str("\n  | ");
        s.push_str(l);
    }
    s
}
