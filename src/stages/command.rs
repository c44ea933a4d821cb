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

/// How many lines of the command's output a failure quotes, read from at most this many
/// bytes at the end of the log.
const TAIL_LINES: usize = 20;
const TAIL_BYTES: u64 = 64 * 1024;

/// `$HHI_IN_<this>`: the same mapping the loader checks for collisions.
fn env_name(port: &str) -> String {
    crate::pipeline::port_env_suffix(port)
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
        let sandbox = Sandbox::new(ctx.store_objects());
        cmd.process_group(0);
        // SAFETY: the closure runs in the forked child and makes only async-signal-safe
        // system calls; every allocation was done before the fork.
        unsafe {
            cmd.pre_exec(move || {
                sandbox.enter();
                Ok(())
            });
        }
        ctx.progress().set_message("running");
        let child = cmd.spawn().context("starting sh")?;
        let group = crate::stages::reaper::Group::register(child.id() as libc::pid_t);
        let (status, peak) = wait_with_rusage(child.id() as libc::pid_t)?;
        drop(group); // kills what the command left running in the background
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

/// The last lines of a log, read from its end (a failing command may have written
/// gigabytes) and decoded lossily (one bad byte must not hide the error). When the log is
/// empty because the store's disk is full, that is what the user is told.
fn tail(log: &std::path::Path) -> String {
    let bytes = read_tail(log, TAIL_BYTES).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if bytes.len() as u64 == TAIL_BYTES && lines.len() > 1 {
        lines.remove(0); // probably cut in the middle
    }
    if lines.is_empty() {
        if let Some(full) = no_space_left(log) {
            return format!("(the command printed nothing: {full})");
        }
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
    if let Some(full) = no_space_left(log) {
        s.push_str(&format!("\n  = note: {full}"));
    }
    s
}

/// At most the last `n` bytes of a file.
fn read_tail(path: &std::path::Path, n: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n)))?;
    let mut buf = Vec::new();
    f.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// "no space left on device" and the mount's path, if the filesystem holding `path` is
/// full (as seen by this user).
fn no_space_left(path: &std::path::Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent()?;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills in a plain struct from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    (st.f_bavail == 0).then(|| {
        format!(
            "no space left on device: the filesystem holding {} is full",
            dir.display()
        )
    })
}

/// Keeps a command from writing into the store's objects and from outliving hhi.
///
/// Where the kernel allows (root, or unprivileged user namespaces), the command gets a
/// private mount namespace in which the store's `objects/` is a read-only bind mount: mode
/// 0444 does not stop root, a read-only mount does. Elsewhere the engine's check of every
/// input after the stage still catches a write. `sh` also dies with hhi's thread
/// (`PR_SET_PDEATHSIG`); what `sh` forks is in its process group, which the run's reaper
/// (`stages::reaper`) kills when hhi dies.
struct Sandbox {
    objects: Option<std::ffi::CString>,
}

impl Sandbox {
    fn new(objects: Option<&std::path::Path>) -> Sandbox {
        use std::os::unix::ffi::OsStrExt;
        Sandbox {
            objects: objects
                .filter(|p| p.is_dir())
                .and_then(|p| std::ffi::CString::new(p.as_os_str().as_bytes()).ok()),
        }
    }

    /// Runs in the forked child, before exec. Best effort: failures leave the detection.
    fn enter(&self) {
        // SAFETY: raw system calls with NUL-terminated paths that outlive the calls.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let Some(objects) = &self.objects else {
                return;
            };
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return;
            }
            let none = std::ptr::null();
            let private = libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            if private != 0
                || libc::mount(
                    objects.as_ptr(),
                    objects.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
            {
                return;
            }
            libc::mount(
                none,
                objects.as_ptr(),
                none,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            );
        }
    }
}
