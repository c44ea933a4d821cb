//! A shared remote cache: the store's layout on S3 (or a shared folder), so that a lab
//! computes each stage once and every clone reuses it.
//!
//! ```text
//! <prefix>/objects/ab/cdef…       a file artifact's bytes; a folder's manifest (its files
//!                                 are objects of their own, under their own digests)
//! <prefix>/records/ab/cdef….json  the provenance record, named by cache key
//! ```
//! Everything is content-addressed, so uploads are idempotent and two clients writing the
//! same name write the same bytes. The record goes last, after every object it names (and
//! a folder's manifest after its files), so a record on the remote is the commit point, as
//! in the local store: a client killed mid-upload leaves objects nobody names yet, never a
//! record that names a missing object. Every byte downloaded is checked against its
//! BLAKE3 digest before it is published into the local store.
//!
//! Trust: a downloaded record is trusted as far as its digests. Whoever can write to the
//! remote can put a record under any cache key, so write access to the remote is write
//! access to everyone's results (as with Bazel's remote cache); `hhi audit --reproduce
//! STAGE` re-derives a stage locally and compares it bit for bit.

pub mod config;
pub mod sync;

use crate::store::Store;
use crate::store::hash::{self, Digest, Entry, ObjectKind};
use crate::store::record::{OutputRecord, Record};
use anyhow::{Context, anyhow};
use bytes::Bytes;
pub use config::{RemoteChoice, RemoteUrl};
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use object_store::path::Path as OsPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Objects at least this large go up as multipart uploads and come down as parallel
/// ranged reads, in parts of this size.
const PART: usize = 16 << 20;
/// Files at least this large are looked up on the remote before they are uploaded.
const ASK_FIRST: u64 = 256 << 10;
/// Requests in flight per transfer (parts of one object, or files of one folder).
const CONCURRENCY: usize = 8;

/// Why a transfer failed, as far as the run's behaviour depends on it.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The remote cannot be reached, or refuses us (credentials, bucket).
    #[error("{0}")]
    Unavailable(String),
    /// The remote holds bytes that are not what their name says (or fewer of them).
    #[error("{0}")]
    Corrupt(String),
    /// A record names an object the remote does not have.
    #[error("{0}")]
    Missing(String),
    /// Something on this machine (disk full, a damaged local object).
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

impl RemoteError {
    fn from_store(e: object_store::Error, what: &str) -> RemoteError {
        match e {
            object_store::Error::NotFound { .. } => {
                RemoteError::Missing(format!("{what}: not on the remote"))
            }
            e => RemoteError::Unavailable(format!("{what}: {e}")),
        }
    }
}

/// Counters for the run's summary line.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub url: String,
    pub fetched_stages: usize,
    pub fetched_bytes: u64,
    pub uploaded_stages: usize,
    pub uploaded_objects: usize,
    pub uploaded_bytes: u64,
    /// Objects the remote had already (content-addressed: nothing to send).
    pub already_there: usize,
    /// Remote objects found corrupt (never published; re-uploaded when rebuilt here).
    pub corrupt: Vec<String>,
    /// The first reason the remote was given up on, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Uploads that failed (the results stay local; `hhi push` retries).
    pub failed_uploads: Vec<String>,
    /// `--remote-required`: then a failed upload fails the run.
    pub required: bool,
}

impl Summary {
    /// Whether the remote let the run down where it was required.
    pub fn failed_required(&self) -> bool {
        self.required && !self.failed_uploads.is_empty()
    }
}

impl Summary {
    pub fn render(&self) -> String {
        let mut s = format!(
            "remote {}: {} stage(s) downloaded ({}), {} uploaded ({} object(s), {}; {} already there)",
            self.url,
            self.fetched_stages,
            crate::audit::human_bytes(self.fetched_bytes),
            self.uploaded_stages,
            self.uploaded_objects,
            crate::audit::human_bytes(self.uploaded_bytes),
            self.already_there,
        );
        if let Some(u) = &self.unavailable {
            s.push_str(&format!("\n  remote unavailable, used no further: {u}"));
        }
        for c in &self.corrupt {
            s.push_str(&format!("\n  corrupt on the remote (not used): {c}"));
        }
        for f in &self.failed_uploads {
            s.push_str(&format!(
                "\n  upload failed (kept locally; `hhi push` retries): {f}"
            ));
        }
        s
    }
}

/// What the async tasks share (never the runtime itself: a task must not drop it).
struct Inner {
    os: Arc<dyn ObjectStore>,
    prefix: OsPath,
    /// Objects found corrupt on the remote this run: uploaded over, not skipped.
    bad: Mutex<HashSet<Digest>>,
    summary: Mutex<Summary>,
    bar: Mutex<Option<ProgressBar>>,
}

/// A connection to the remote cache, with its own small runtime so that transfers run
/// beside the stages (which are on the scheduler's threads).
pub struct Remote {
    pub url: RemoteUrl,
    required: bool,
    inner: Arc<Inner>,
    down: Mutex<Option<String>>,
    uploads: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.url)
    }
}

impl Remote {
    /// Opens the remote and checks that it answers (one listing request). With `required`,
    /// an unreachable remote is an error; otherwise it is a warning and `None`.
    pub fn connect(url: &RemoteUrl, required: bool) -> anyhow::Result<Option<Remote>> {
        let fail = |e: anyhow::Error| -> anyhow::Result<Option<Remote>> {
            if required {
                Err(e.context(format!(
                    "the remote cache {url} is required (--remote-required)"
                )))
            } else {
                tracing::warn!("remote cache {url} unavailable, running without it: {e:#}");
                Ok(None)
            }
        };
        let remote = match Self::open(url, required) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let probe = remote.rt.block_on(async {
            let inner = &remote.inner;
            inner
                .os
                .list_with_delimiter(Some(&inner.prefix))
                .await
                .map(|_| ())
        });
        match probe {
            Ok(()) => Ok(Some(remote)),
            Err(e) => fail(anyhow!("{}", explain(&e))),
        }
    }

    /// Opens without probing (for `push`, `pull` and `audit --remote`, whose first request
    /// says soon enough).
    pub fn open(url: &RemoteUrl, required: bool) -> anyhow::Result<Remote> {
        let (os, prefix) = config::open(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hhi-remote")
            .enable_all()
            .build()
            .context("starting the remote cache's threads")?;
        Ok(Remote {
            inner: Arc::new(Inner {
                os,
                prefix,
                bad: Mutex::new(HashSet::new()),
                summary: Mutex::new(Summary {
                    url: url.to_string(),
                    required,
                    ..Default::default()
                }),
                bar: Mutex::new(None),
            }),
            url: url.clone(),
            required,
            down: Mutex::new(None),
            uploads: Mutex::new(Vec::new()),
            rt,
        })
    }

    /// Shows transfers on this bar (bytes moved of bytes queued).
    pub fn attach_bar(&self, bar: ProgressBar) {
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix:.bold} {msg} {bytes}/{total_bytes} {binary_bytes_per_sec}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(format!("remote {}", self.url));
        *self.inner.bar.lock().expect("bar lock") = Some(bar);
    }

    fn is_down(&self) -> bool {
        self.down.lock().expect("down lock").is_some()
    }

    /// Gives up on the remote for the rest of this command, saying why once.
    fn mark_down(&self, why: &str) {
        let mut d = self.down.lock().expect("down lock");
        if d.is_none() {
            tracing::warn!(
                "remote cache {} unavailable ({why}); the rest of this run does without it",
                self.url
            );
            *d = Some(why.to_string());
            self.inner.summary.lock().expect("summary lock").unavailable = Some(why.to_string());
        }
    }

    /// The remote's record for `key`, for `plan` (no objects are fetched or checked).
    pub fn lookup(&self, key: &Digest) -> anyhow::Result<Option<Record>> {
        if self.is_down() {
            return Ok(None);
        }
        match self.rt.block_on(self.inner.get_record(key)) {
            Ok(r) => Ok(r),
            Err(RemoteError::Unavailable(e)) if !self.required => {
                self.mark_down(&e);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Before running a stale stage: if the remote has a record for `key`, downloads its
    /// objects, verifies every digest, publishes them and writes the record locally, as if
    /// the stage had run here. `Ok(None)` means: run it here (a miss, a corrupt or
    /// incomplete remote entry, or the remote being down, each reported).
    pub fn fetch(
        &self,
        store: &Store,
        key: &Digest,
        stage: &str,
    ) -> anyhow::Result<Option<Record>> {
        if self.is_down() {
            return Ok(None);
        }
        match self.rt.block_on(self.inner.fetch_stage(store, key)) {
            Ok(r) => Ok(r),
            Err(RemoteError::Local(e)) => Err(e.context(format!(
                "publishing `{stage}`'s outputs fetched from {}",
                self.url
            ))),
            Err(RemoteError::Corrupt(e)) => {
                tracing::warn!(
                    "`{stage}`: the remote's copy is corrupt ({e}); not used, running the stage here"
                );
                self.inner
                    .summary
                    .lock()
                    .expect("summary lock")
                    .corrupt
                    .push(e);
                Ok(None)
            }
            Err(RemoteError::Missing(e)) => {
                tracing::warn!(
                    "`{stage}`: the remote's record is incomplete ({e}); running the stage here"
                );
                Ok(None)
            }
            Err(RemoteError::Unavailable(e)) => {
                if self.required {
                    return Err(anyhow!(
                        "the remote cache {} failed while fetching `{stage}`: {e}",
                        self.url
                    ));
                }
                self.mark_down(&e);
                Ok(None)
            }
        }
    }

    /// Uploads a completed stage in the background (objects, then the record): the run
    /// goes on, and [`Remote::finish`] waits for what is still in flight.
    pub fn spawn_upload(&self, store: Arc<Store>, rec: Record) {
        if self.is_down() {
            return;
        }
        let inner = self.inner.clone();
        let handle = self.rt.spawn(async move {
            let stage = rec.stage.clone();
            if let Err(e) = inner.upload_stage(&store, &rec, false).await {
                tracing::warn!("uploading `{stage}` to the remote cache failed: {e}");
                inner
                    .summary
                    .lock()
                    .expect("summary lock")
                    .failed_uploads
                    .push(format!("`{stage}`: {e}"));
            }
        });
        self.uploads.lock().expect("uploads lock").push(handle);
    }

    /// Uploads a stage now (for `hhi push`); `force` re-sends objects the remote has.
    pub fn upload(&self, store: &Store, rec: &Record, force: bool) -> Result<bool, RemoteError> {
        self.rt.block_on(self.inner.upload_stage(store, rec, force))
    }

    /// Waits for the background uploads and returns the run's counters.
    pub fn finish(&self) -> Summary {
        let handles: Vec<_> = std::mem::take(&mut *self.uploads.lock().expect("uploads lock"));
        self.rt.block_on(async {
            for h in handles {
                let _ = h.await;
            }
        });
        if let Some(bar) = self.inner.bar.lock().expect("bar lock").take() {
            bar.finish_and_clear();
        }
        self.inner.summary.lock().expect("summary lock").clone()
    }

    /// The summary so far (for `pull` and `push`).
    pub fn summary(&self) -> Summary {
        self.inner.summary.lock().expect("summary lock").clone()
    }

    /// Downloads an object and re-hashes it without keeping it (`audit --remote`).
    pub fn verify_object(&self, out: &OutputRecord) -> Result<(), RemoteError> {
        self.rt
            .block_on(self.inner.verify_object(out.digest, out.object))
    }

    /// The remote's record for `key`, errors included (`audit --remote`, `pull`).
    pub fn record(&self, key: &Digest) -> Result<Option<Record>, RemoteError> {
        self.rt.block_on(self.inner.get_record(key))
    }

    /// Fetches one stage's record and objects (for `hhi pull`).
    pub fn pull_stage(&self, store: &Store, key: &Digest) -> Result<Option<Record>, RemoteError> {
        self.rt.block_on(self.inner.fetch_stage(store, key))
    }
}

/// The remote a run uses (see [`RemoteChoice`]), connected and probed; `None` without
/// one, or when it is unreachable and not required (after a warning).
pub fn for_run(
    pipeline: &crate::pipeline::Pipeline,
    store: &Store,
    choice: &RemoteChoice,
    required: bool,
) -> anyhow::Result<Option<Arc<Remote>>> {
    match resolve_url(
        pipeline,
        store,
        choice,
        required.then_some("--remote-required"),
    )? {
        Some(url) => Ok(Remote::connect(&url, required)?.map(Arc::new)),
        None => Ok(None),
    }
}

/// The remote URL in force for `pipeline` (see [`RemoteChoice`]), checked not to be the
/// store itself. With `needed_by`, having none is an error naming what needed it.
pub fn resolve_url(
    pipeline: &crate::pipeline::Pipeline,
    store: &Store,
    choice: &RemoteChoice,
    needed_by: Option<&str>,
) -> anyhow::Result<Option<RemoteUrl>> {
    let Some(url) = choice.resolve(pipeline.remote.as_ref())? else {
        if let Some(what) = needed_by {
            anyhow::bail!(
                "{what} needs a remote cache and none is configured: give --remote URL, set HHI_REMOTE, or add `remote = \"s3://bucket/prefix\"` to [pipeline] in {}",
                pipeline.path.display()
            );
        }
        return Ok(None);
    };
    config::check_not_the_store(&url, store.root())?;
    Ok(Some(url))
}

/// An S3 error body (XML) cut down to its code and message.
fn short_s3_error(text: &str) -> String {
    let between = |a: &str, b: &str| {
        let start = text.find(a)? + a.len();
        let end = text[start..].find(b)? + start;
        Some(&text[start..end])
    };
    match (
        between("<Code>", "</Code>"),
        between("<Message>", "</Message>"),
    ) {
        (Some(code), Some(msg)) => {
            let head = text.split("<?xml").next().unwrap_or(text);
            let head = head.trim_end().trim_end_matches(':').trim_end();
            format!("{head}: {code}: {msg}")
        }
        _ => text.to_string(),
    }
}

/// An `object_store` error in words a user can act on.
fn explain(e: &object_store::Error) -> String {
    let text = short_s3_error(&e.to_string());
    let hint = if text.contains("169.254.169.254") {
        // No credentials anywhere, so object_store asked the EC2 instance metadata.
        " (no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write ~/.aws/credentials)"
    } else if text.contains("NoSuchBucket") {
        " (the bucket does not exist: create it, e.g. `aws s3 mb s3://BUCKET`)"
    } else if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("AccessDenied")
        || matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        )
    {
        " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)"
    } else if text.contains("Connect") || text.contains("connect") || text.contains("dns") {
        " (is the endpoint right? AWS_ENDPOINT_URL)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

impl Inner {
    fn object_key(&self, d: &Digest) -> OsPath {
        let h = d.hex();
        self.prefix
            .clone()
            .join("objects")
            .join(&h[..2])
            .join(&h[2..])
    }

    fn record_key(&self, key: &Digest) -> OsPath {
        let h = key.hex();
        self.prefix
            .clone()
            .join("records")
            .join(&h[..2])
            .join(format!("{}.json", &h[2..]))
    }

    fn queue(&self, bytes: u64, msg: &str) {
        if let Some(bar) = &*self.bar.lock().expect("bar lock") {
            bar.inc_length(bytes);
            bar.set_message(msg.to_string());
        }
    }

    fn moved(&self, bytes: u64) {
        if let Some(bar) = &*self.bar.lock().expect("bar lock") {
            bar.inc(bytes);
        }
    }

    /// The whole object at `p`.
    async fn get_bytes(&self, p: &OsPath) -> object_store::Result<Bytes> {
        self.os.get(p).await?.bytes().await
    }

    async fn exists(&self, p: &OsPath) -> Result<bool, RemoteError> {
        match self.os.head(p).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(RemoteError::Unavailable(explain(&e))),
        }
    }

    async fn get_record(&self, key: &Digest) -> Result<Option<Record>, RemoteError> {
        let p = self.record_key(key);
        let bytes = match self.get_bytes(&p).await {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(RemoteError::Unavailable(explain(&e))),
        };
        let rec: Record = serde_json::from_slice(&bytes).map_err(|e| {
            RemoteError::Corrupt(format!("record {} is unreadable: {e}", key.short()))
        })?;
        if rec.key != *key {
            return Err(RemoteError::Corrupt(format!(
                "record {} holds the record of {}",
                key.short(),
                rec.key.short()
            )));
        }
        Ok(Some(rec))
    }

    async fn fetch_stage(
        &self,
        store: &Store,
        key: &Digest,
    ) -> Result<Option<Record>, RemoteError> {
        let Some(rec) = self.get_record(key).await? else {
            return Ok(None);
        };
        let total: u64 = rec.outputs.values().map(|o| o.size).sum();
        self.queue(total, &format!("↓ {}", rec.stage));
        // Futures built first, then polled a few at a time: a `.map(closure)` over the
        // stream trips rustc's higher-ranked lifetime check once spawned.
        let futs: Vec<_> = rec
            .outputs
            .values()
            .map(|o| self.fetch_object(store, o))
            .collect();
        // Every object is tried even after one fails, so that each corrupt one is named
        // (and re-uploaded when the stage is rebuilt here), not only the first.
        let results: Vec<Result<u64, RemoteError>> = futures::stream::iter(futs)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut fetched = Vec::new();
        let mut corrupt = Vec::new();
        let mut other = None;
        for r in results {
            match r {
                Ok(n) => fetched.push(n),
                Err(RemoteError::Corrupt(e)) => corrupt.push(e),
                Err(e) => other = other.or(Some(e)),
            }
        }
        if !corrupt.is_empty() {
            corrupt.sort();
            return Err(RemoteError::Corrupt(corrupt.join("; ")));
        }
        if let Some(e) = other {
            return Err(e);
        }
        store
            .sync()
            .map_err(|e| RemoteError::Local(anyhow!("syncing the store: {e}")))?;
        store.write_record(&rec)?;
        let mut s = self.summary.lock().expect("summary lock");
        s.fetched_stages += 1;
        s.fetched_bytes += fetched.iter().sum::<u64>();
        Ok(Some(rec))
    }

    /// Makes the local store hold `out`'s object, downloading it if needed; returns the
    /// bytes downloaded.
    async fn fetch_object(&self, store: &Store, out: &OutputRecord) -> Result<u64, RemoteError> {
        if store.object_status(&out.digest) == crate::store::ObjectStatus::Intact {
            self.moved(out.size);
            return Ok(0);
        }
        let staged = store.staging_path("fetch");
        let result = self
            .download_into(&staged, out.digest, out.object, out.size)
            .await;
        let publish = || -> Result<(), RemoteError> {
            let h = store.publish(&staged).map_err(|e| {
                RemoteError::Local(anyhow!("publishing {}: {e}", out.digest.short()))
            })?;
            if h.digest != out.digest {
                // Every file was verified on the way in; this would be a bug in rebuilding.
                let _ = store.discard(&store.object_path(&h.digest));
                return Err(RemoteError::Corrupt(format!(
                    "object {} rebuilt as {}",
                    out.digest.short(),
                    h.digest.short()
                )));
            }
            Ok(())
        };
        let r = result.and_then(|n| publish().map(|()| n));
        if r.is_err() {
            let _ = crate::store::fsutil::remove_all(&staged);
        }
        if let Err(RemoteError::Corrupt(_)) = &r {
            self.bad.lock().expect("bad lock").insert(out.digest);
        }
        r
    }

    /// Downloads object `d` to `dest` (a file, or a folder rebuilt from its manifest),
    /// verifying every digest on the way.
    async fn download_into(
        &self,
        dest: &Path,
        d: Digest,
        kind: ObjectKind,
        size: u64,
    ) -> Result<u64, RemoteError> {
        match kind {
            ObjectKind::File => self.download_file(dest, d, size, false).await,
            ObjectKind::Dir => {
                let entries = self.manifest(d).await?;
                fs::create_dir_all(dest).map_err(|e| RemoteError::Local(e.into()))?;
                for e in &entries {
                    if let Entry::Dir { path } = e {
                        fs::create_dir_all(dest.join(path))
                            .map_err(|e| RemoteError::Local(e.into()))?;
                    }
                }
                let files: Vec<_> = entries
                    .iter()
                    .filter_map(|e| match e {
                        Entry::File {
                            path,
                            exec,
                            size,
                            digest,
                        } => Some((dest.join(path), *exec, *size, *digest)),
                        Entry::Dir { .. } => None,
                    })
                    .collect();
                let futs: Vec<_> = files
                    .into_iter()
                    .map(|(p, exec, size, digest)| async move {
                        if let Some(parent) = p.parent() {
                            fs::create_dir_all(parent).map_err(|e| RemoteError::Local(e.into()))?;
                        }
                        self.download_file(&p, digest, size, exec).await
                    })
                    .collect();
                let sizes: Vec<u64> = futures::stream::iter(futs)
                    .buffer_unordered(CONCURRENCY)
                    .try_collect()
                    .await?;
                Ok(sizes.iter().sum())
            }
        }
    }

    /// A folder object's manifest, verified against the folder's digest.
    async fn manifest(&self, d: Digest) -> Result<Vec<Entry>, RemoteError> {
        let p = self.object_key(&d);
        let bytes = self
            .get_bytes(&p)
            .await
            .map_err(|e| RemoteError::from_store(e, &format!("folder manifest {}", d.short())))?;
        let found = Digest::of_bytes(&bytes);
        if found != d {
            return Err(RemoteError::Corrupt(format!(
                "folder manifest {}: its bytes hash to {}",
                d.short(),
                found.short()
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            RemoteError::Corrupt(format!("folder manifest {} is not text", d.short()))
        })?;
        hash::parse_manifest(text)
            .map_err(|e| RemoteError::Corrupt(format!("folder manifest {}: {e}", d.short())))
    }

    /// Downloads the file object `d` (of `size` bytes) to `dest` and checks its digest.
    /// Large files come down as parallel ranged reads written in place.
    async fn download_file(
        &self,
        dest: &Path,
        d: Digest,
        size: u64,
        exec: bool,
    ) -> Result<u64, RemoteError> {
        let r = self.download_file_unchecked(dest, d, size, exec).await;
        if let Err(RemoteError::Corrupt(_)) = &r {
            self.bad.lock().expect("bad lock").insert(d);
        }
        r
    }

    async fn download_file_unchecked(
        &self,
        dest: &Path,
        d: Digest,
        size: u64,
        exec: bool,
    ) -> Result<u64, RemoteError> {
        let p = self.object_key(&d);
        let what = format!("object {}", d.short());
        let file = fs::File::create(dest).map_err(|e| RemoteError::Local(e.into()))?;
        if size >= PART as u64 {
            let ranges: Vec<std::ops::Range<u64>> = (0..size)
                .step_by(PART)
                .map(|s| s..(s + PART as u64).min(size))
                .collect();
            let file = &file;
            let futs: Vec<_> = ranges
                .into_iter()
                .map(|r| {
                    let (p, what) = (&p, &what);
                    async move {
                        let bytes = self.os.get_range(p, r.clone()).await.map_err(|e| match e {
                            object_store::Error::NotFound { .. } => {
                                RemoteError::Missing(format!("{what}: not on the remote"))
                            }
                            // A range past the end: the remote object is shorter than
                            // the record says.
                            object_store::Error::Generic { .. }
                                if e.to_string().contains("Range") =>
                            {
                                RemoteError::Corrupt(format!("{what} is truncated"))
                            }
                            e => RemoteError::Unavailable(format!("{what}: {}", explain(&e))),
                        })?;
                        if bytes.len() as u64 != r.end - r.start {
                            return Err(RemoteError::Corrupt(format!("{what} is truncated")));
                        }
                        file.write_all_at(&bytes, r.start)
                            .map_err(|e| RemoteError::Local(e.into()))?;
                        self.moved(bytes.len() as u64);
                        Ok(())
                    }
                })
                .collect();
            futures::stream::iter(futs)
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
        } else {
            let bytes = self
                .get_bytes(&p)
                .await
                .map_err(|e| RemoteError::from_store(e, &what))?;
            file.write_all_at(&bytes, 0)
                .map_err(|e| RemoteError::Local(e.into()))?;
            self.moved(bytes.len() as u64);
        }
        drop(file);
        let (found, len) = hash::hash_file(dest).map_err(|e| RemoteError::Local(e.into()))?;
        if len != size {
            return Err(RemoteError::Corrupt(format!(
                "{what} has {len} bytes, the record says {size}"
            )));
        }
        if found != d {
            return Err(RemoteError::Corrupt(format!(
                "{what}: its bytes hash to {}",
                found.short()
            )));
        }
        if exec {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dest, fs::Permissions::from_mode(0o755))
                .map_err(|e| RemoteError::Local(e.into()))?;
        }
        Ok(size)
    }

    /// Hashes what the remote holds for an object without keeping it.
    async fn verify_object(&self, d: Digest, kind: ObjectKind) -> Result<(), RemoteError> {
        let dir = tempfile::tempdir().map_err(|e| RemoteError::Local(e.into()))?;
        let dest = dir.path().join("o");
        match kind {
            ObjectKind::File => {
                let size = self
                    .os
                    .head(&self.object_key(&d))
                    .await
                    .map_err(|e| RemoteError::from_store(e, &format!("object {}", d.short())))?
                    .size;
                self.download_file(&dest, d, size, false).await?;
            }
            ObjectKind::Dir => {
                self.download_into(&dest, d, kind, 0).await?;
                let h = hash::hash_path(&dest).map_err(|e| RemoteError::Local(e.into()))?;
                if h.digest != d {
                    return Err(RemoteError::Corrupt(format!(
                        "folder {} rebuilt as {}",
                        d.short(),
                        h.digest.short()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Uploads a stage: its objects (concurrently), then its record. Returns whether
    /// anything was sent (false when the remote had the record already).
    async fn upload_stage(
        &self,
        store: &Store,
        rec: &Record,
        force: bool,
    ) -> Result<bool, RemoteError> {
        // After corruption was found (in an output, or in a file of a folder output), the
        // record's presence proves nothing: walk the objects and re-send the bad ones.
        let repair = !self.bad.lock().expect("bad lock").is_empty();
        if !force && !repair && self.exists(&self.record_key(&rec.key)).await? {
            return Ok(false);
        }
        let total: u64 = rec.outputs.values().map(|o| o.size).sum();
        self.queue(total, &format!("↑ {}", rec.stage));
        let futs: Vec<_> = rec
            .outputs
            .values()
            .map(|o| self.upload_object(store, o.digest, o.object, force))
            .collect();
        futures::stream::iter(futs)
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        // The record last: its presence on the remote promises every object above.
        let bytes = fs::read(store.record_path(&rec.key))
            .with_context(|| format!("reading the record of `{}`", rec.stage))?;
        self.os
            .put(&self.record_key(&rec.key), PutPayload::from(bytes))
            .await
            .map_err(|e| RemoteError::Unavailable(explain(&e)))?;
        self.summary.lock().expect("summary lock").uploaded_stages += 1;
        Ok(true)
    }

    async fn upload_object(
        &self,
        store: &Store,
        d: Digest,
        kind: ObjectKind,
        force: bool,
    ) -> Result<(), RemoteError> {
        let local = store.object_path(&d);
        match kind {
            ObjectKind::File => self.upload_file(&local, d, force).await,
            ObjectKind::Dir => {
                let (h, entries) = hash::hash_tree(&local)
                    .map_err(|e| RemoteError::Local(anyhow!("reading {}: {e}", local.display())))?;
                if h.digest != d {
                    return Err(RemoteError::Local(anyhow!(
                        "the local object {} is damaged (it hashes to {}); run `hhi audit`",
                        d.short(),
                        h.digest.short()
                    )));
                }
                let files: Vec<(std::path::PathBuf, Digest)> = entries
                    .iter()
                    .filter_map(|e| match e {
                        Entry::File { path, digest, .. } => Some((local.join(path), *digest)),
                        Entry::Dir { .. } => None,
                    })
                    .collect();
                let futs: Vec<_> = files
                    .into_iter()
                    .map(|(p, fd)| async move { self.upload_file(&p, fd, force).await })
                    .collect();
                futures::stream::iter(futs)
                    .buffer_unordered(CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await?;
                // The manifest after its files, so a folder on the remote is complete.
                let text = hash::manifest_text(&entries);
                self.put_small(&self.object_key(&d), Bytes::from(text.into_bytes()))
                    .await?;
                Ok(())
            }
        }
    }

    async fn put_small(&self, p: &OsPath, bytes: Bytes) -> Result<(), RemoteError> {
        self.os
            .put(p, PutPayload::from(bytes))
            .await
            .map_err(|e| RemoteError::Unavailable(explain(&e)))?;
        Ok(())
    }

    /// Uploads one file under its digest unless the remote has it (or `force`).
    async fn upload_file(&self, local: &Path, d: Digest, force: bool) -> Result<(), RemoteError> {
        let key = self.object_key(&d);
        let size = fs::metadata(local)
            .map_err(|e| RemoteError::Local(anyhow!("{}: {e}", local.display())))?
            .len();
        let repair = self.bad.lock().expect("bad lock").contains(&d);
        // A small file costs as much to PUT as to ask about (a HEAD), and PUTting the same
        // bytes under their own digest is harmless: only larger files are looked up first.
        if !force && !repair && size >= ASK_FIRST && self.exists(&key).await? {
            self.summary.lock().expect("summary lock").already_there += 1;
            self.moved(size);
            return Ok(());
        }
        let file = fs::File::open(local)
            .map_err(|e| RemoteError::Local(anyhow!("{}: {e}", local.display())))?;
        let read = |off: u64, len: usize| -> Result<Bytes, RemoteError> {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, off)
                .map_err(|e| RemoteError::Local(anyhow!("{}: {e}", local.display())))?;
            Ok(Bytes::from(buf))
        };
        if size < PART as u64 {
            self.put_small(&key, read(0, size as usize)?).await?;
        } else {
            let upload = self
                .os
                .put_multipart(&key)
                .await
                .map_err(|e| RemoteError::Unavailable(explain(&e)))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut off = 0u64;
            while off < size {
                let n = (size - off).min(PART as u64) as usize;
                if let Err(e) = w.wait_for_capacity(CONCURRENCY).await {
                    let _ = w.abort().await;
                    return Err(RemoteError::Unavailable(explain(&e)));
                }
                w.put(read(off, n)?);
                off += n as u64;
                self.moved(n as u64);
            }
            w.finish()
                .await
                .map_err(|e| RemoteError::Unavailable(explain(&e)))?;
        }
        if size < PART as u64 {
            self.moved(size);
        }
        self.bad.lock().expect("bad lock").remove(&d);
        let mut s = self.summary.lock().expect("summary lock");
        s.uploaded_objects += 1;
        s.uploaded_bytes += size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn s3_error_bodies_are_cut_to_code_and_message() {
        let text = "Error performing list request: Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            super::short_s3_error(text),
            "Error performing list request: Server returned non-2xx status code: 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(
            super::short_s3_error("connection refused"),
            "connection refused"
        );
    }
}
