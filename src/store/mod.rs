//! The content-addressed store (`artifacts/` by default).
//!
//! ```text
//! artifacts/
//!   objects/ab/cdef…      every artifact, a file or a folder, named by its BLAKE3 digest
//!   records/ab/cdef….json provenance records, named by cache key
//!   work/<key>/           checkpoints of stages that have not finished yet
//!   logs/<key>.log        output of `command` stages
//!   runs/<digest12>.json  what each run used, named by content (recent runs, for `gc --keep`)
//!   roots/<digest12>.json the lock files that used this store (`gc` keeps what they name)
//!   tmp/                  staging; emptied at the start of every run and every gc
//!   statcache.json, lock
//! ```
//! Objects are written under `tmp/`, made read-only and renamed into place, so a name under
//! `objects/` always holds complete content. Durability is batched: one `syncfs` after a
//! stage's outputs are in place, before its record is committed (records are the commit
//! points). Objects leave the store the same way in reverse: renamed out into `tmp/` first,
//! then deleted, so a kill in the middle never leaves a half-deleted folder under a digest.

pub mod fsutil;
pub mod hash;
pub mod lock;
pub mod record;
pub mod runs;
pub mod statcache;

use anyhow::Context;
use hash::{Digest, Hashed, ObjectKind};
use record::Record;
use statcache::StatCache;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum ObjectStatus {
    Intact,
    Missing,
    Corrupt { found: Digest },
}

pub struct Store {
    root: PathBuf,
    pub stat: StatCache,
    /// Where stages stage their outputs, when not `tmp/` (see [`Store::with_staging`]).
    staging: Option<PathBuf>,
}

fn split(d: &Digest) -> (String, String) {
    let h = d.hex();
    (h[..2].to_string(), h[2..].to_string())
}

impl Store {
    /// Opens (without creating) the store at `root`. The path is made absolute because
    /// stages run in other working directories and receive paths into the store.
    pub fn open(root: &Path) -> Store {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        Store {
            stat: StatCache::open(root.join("statcache.json")),
            root,
            staging: None,
        }
    }

    /// The store with outputs staged under `dir` instead of `tmp/`: a Slurm job's staging
    /// must survive the `tmp/` cleaning that a later `hhi run` does on start while the job
    /// is still running (detached). `dir` must be on the store's filesystem.
    pub fn with_staging(mut self, dir: PathBuf) -> Store {
        self.staging = Some(dir);
        self
    }

    /// The store named by `--store`, else `HHI_STORE`, else `artifacts/` here.
    pub fn default_root() -> PathBuf {
        std::env::var_os("HHI_STORE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("artifacts"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn exists(&self) -> bool {
        self.root.join("objects").is_dir()
    }

    pub fn init(&self) -> io::Result<()> {
        for d in ["objects", "records", "work", "logs", "runs", "roots", "tmp"] {
            fs::create_dir_all(self.root.join(d))?;
        }
        let readme = self.root.join("README");
        if !readme.exists() {
            fs::write(
                readme,
                "hhi content-addressed store. Do not edit: `hhi audit` checks it, `hhi gc` cleans it.\n",
            )?;
        }
        Ok(())
    }

    pub fn object_path(&self, d: &Digest) -> PathBuf {
        let (a, b) = split(d);
        self.root.join("objects").join(a).join(b)
    }

    pub fn record_path(&self, key: &Digest) -> PathBuf {
        let (a, b) = split(key);
        self.root.join("records").join(a).join(format!("{b}.json"))
    }

    pub fn work_dir(&self, key: &Digest) -> PathBuf {
        self.root.join("work").join(key.hex())
    }

    pub fn log_path(&self, key: &Digest) -> PathBuf {
        self.root.join("logs").join(format!("{}.log", key.hex()))
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Removes staging left by killed runs. Call only while holding the store lock.
    pub fn clean_tmp(&self) -> io::Result<()> {
        let tmp = self.tmp_dir();
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                fsutil::remove_all(&e.path())?;
            }
        }
        fs::create_dir_all(tmp)
    }

    /// The record for `key`, if there is a readable one. A torn or unparsable record (a
    /// disk that filled up, a hand edit) is reported and treated as absent, so the stage
    /// simply reruns and overwrites it instead of wedging `plan`, `run` and `audit`.
    pub fn read_record(&self, key: &Digest) -> anyhow::Result<Option<Record>> {
        let path = self.record_path(key);
        match fs::read(&path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(r) => Ok(Some(r)),
                Err(e) => {
                    tracing::warn!(
                        "record {} is unreadable ({e}); treating it as absent",
                        path.display()
                    );
                    Ok(None)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading record {}", path.display())),
        }
    }

    pub fn write_record(&self, rec: &Record) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(rec)?;
        fsutil::write_atomic(&self.record_path(&rec.key), &bytes)
            .with_context(|| format!("writing record for stage `{}`", rec.stage))
    }

    /// Every record in the store.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.root.join("records")) else {
            return out;
        };
        for shard in rd.flatten() {
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Ok(rec) = fs::read(f.path())
                    .map_err(anyhow::Error::from)
                    .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(anyhow::Error::from))
                {
                    out.push(rec);
                }
            }
        }
        out
    }

    /// Is the object there with the expected content? Uses the stat cache, so an untouched
    /// object costs a few `stat` calls; any change to it forces a full re-hash.
    pub fn object_status(&self, d: &Digest) -> ObjectStatus {
        self.status_with(d, |p| self.stat.hash(p))
    }

    /// Like [`Store::object_status`] but re-reads every byte (for audits).
    pub fn object_status_full(&self, d: &Digest) -> ObjectStatus {
        self.status_with(d, hash::hash_path)
    }

    fn status_with(&self, d: &Digest, hash: impl Fn(&Path) -> io::Result<Hashed>) -> ObjectStatus {
        let p = self.object_path(d);
        if fs::symlink_metadata(&p).is_err() {
            return ObjectStatus::Missing;
        }
        match hash(&p) {
            Ok(h) if h.digest == *d => ObjectStatus::Intact,
            Ok(h) => ObjectStatus::Corrupt { found: h.digest },
            Err(_) => ObjectStatus::Corrupt {
                found: Digest([0; 32]),
            },
        }
    }

    /// A fresh staging path under `tmp/` (not created).
    pub fn staging_path(&self, label: &str) -> PathBuf {
        self.staging
            .clone()
            .unwrap_or_else(|| self.tmp_dir())
            .join(format!("{label}-{}", fsutil::unique_suffix()))
    }

    /// Moves a finished file or folder into the store under its digest. If an intact copy
    /// is already there, the staged one is dropped; a corrupt copy is replaced. Nothing is
    /// fsynced here: call [`Store::sync`] before committing a record that names the object.
    pub fn publish(&self, staged: &Path) -> io::Result<Hashed> {
        let hashed = hash::hash_path(staged)?;
        let target = self.object_path(&hashed.digest);
        if fs::symlink_metadata(&target).is_ok() {
            if self.object_status(&hashed.digest) == ObjectStatus::Intact {
                fsutil::remove_all(staged)?;
                return Ok(hashed);
            }
            tracing::warn!("replacing corrupt object {}", hashed.digest);
            self.discard(&target)?;
        }
        fsutil::make_readonly_below(staged)?;
        let shard = target.parent().expect("object paths have a shard folder");
        fs::create_dir_all(shard)?;
        if let Err(e) = fs::rename(staged, &target) {
            // Another stage of this run may have published the same content a moment ago
            // (renaming a folder onto an existing one fails); then ours is redundant.
            if self.object_status(&hashed.digest) == ObjectStatus::Intact {
                fsutil::remove_all(staged)?;
                return Ok(hashed);
            }
            return Err(e);
        }
        fsutil::seal_top(&target)?;
        self.stat.remember(&target, hashed);
        Ok(hashed)
    }

    /// Makes everything written to the store so far durable (one `syncfs`).
    pub fn sync(&self) -> io::Result<()> {
        fsutil::sync_filesystem(&self.root)
    }

    /// Removes an object (or any path inside the store): renamed into `tmp/` first, so a
    /// kill during a long delete leaves garbage in `tmp/` (cleaned by the next run or gc),
    /// never a partial tree under a digest's name.
    pub fn discard(&self, path: &Path) -> io::Result<()> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stat.forget(path);
        if meta.is_dir() {
            // Moving a folder to another parent needs write access to it (its `..`).
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        }
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doomed = tmp.join(format!("discard-{name}-{}", fsutil::unique_suffix()));
        fs::rename(path, &doomed)?;
        fsutil::remove_all(&doomed)
    }

    /// Whether this process may write into the store (false for a read-only mount or a
    /// store owned by someone else), so that an all-fresh `run` can still succeed.
    pub fn writable(&self) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(self.root.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access only reads the NUL-terminated path.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    }

    pub fn roots_dir(&self) -> PathBuf {
        self.root.join("roots")
    }

    /// Registers a lock file as a root (as Nix registers indirect GC roots): as long as the
    /// file exists, `gc` keeps every record and object it names.
    pub fn register_root(&self, lock: &Path) -> anyhow::Result<()> {
        let lock = std::path::absolute(lock)?;
        let text = lock.to_string_lossy().into_owned();
        let path = self.roots_dir().join(format!(
            "{}.json",
            Digest::of_bytes(text.as_bytes()).short()
        ));
        if fs::read(&path).ok().as_deref() == Some(serde_json::to_vec(&text)?.as_slice()) {
            return Ok(());
        }
        fsutil::write_atomic(&path, &serde_json::to_vec(&text)?)
            .with_context(|| format!("registering {} as a gc root", lock.display()))
    }

    /// The registered lock files, with the root file that names each.
    pub fn roots(&self) -> Vec<(PathBuf, PathBuf)> {
        let Ok(rd) = fs::read_dir(self.roots_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, PathBuf)> = rd
            .flatten()
            .filter_map(|e| {
                let lock: String = serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
                Some((e.path(), PathBuf::from(lock)))
            })
            .collect();
        out.sort();
        out
    }

    /// Copies a user's file or folder into the store (a `{ file = … }` input or a `path`
    /// parameter), unless the store already holds it.
    pub fn import(&self, src: &Path) -> anyhow::Result<Hashed> {
        let hashed = self
            .stat
            .hash(src)
            .with_context(|| format!("hashing {}", src.display()))?;
        if self.object_status(&hashed.digest) == ObjectStatus::Intact {
            return Ok(hashed);
        }
        let staged = self.staging_path("import");
        fsutil::copy_all(src, &staged)
            .with_context(|| format!("copying {} into the store", src.display()))?;
        let published = self.publish(&staged)?;
        if published.digest != hashed.digest {
            anyhow::bail!(
                "{} changed while it was being imported; run again",
                src.display()
            );
        }
        Ok(published)
    }

    pub fn object_kind(&self, d: &Digest) -> Option<ObjectKind> {
        let m = fs::symlink_metadata(self.object_path(d)).ok()?;
        Some(if m.is_dir() {
            ObjectKind::Dir
        } else {
            ObjectKind::File
        })
    }
}
