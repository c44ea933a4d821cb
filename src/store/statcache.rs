//! The stat cache: skips re-reading files whose metadata has not changed since they were
//! hashed.
//!
//! A cached digest is reused only when the full fingerprint matches: device, inode, size,
//! mtime *and* ctime (nanoseconds) of every file in the tree. ctime cannot be set by user
//! tools, so a file edited and then `touch`ed back to its old mtime is still re-hashed. As
//! in git's "racy" rule, nothing modified in the last two seconds is cached, because a
//! second write within the filesystem's timestamp granularity would go unseen.

use super::hash::{self, Digest, Hashed};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const RACY_NS: i128 = 2_000_000_000;

#[derive(Serialize, Deserialize, Clone)]
struct CacheEntry {
    fp: Digest,
    #[serde(flatten)]
    hashed: Hashed,
}

#[derive(Serialize, Deserialize, Default)]
struct OnDisk {
    version: u32,
    entries: HashMap<String, CacheEntry>,
}

pub struct StatCache {
    file: PathBuf,
    state: Mutex<(HashMap<String, CacheEntry>, bool)>,
}

struct Fingerprint {
    fp: Digest,
    newest_ns: i128,
}

fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    let meta = fs::symlink_metadata(path)?;
    let mut h = blake3::Hasher::new();
    let mut newest = 0i128;
    let mut add = |rel: &str, m: &fs::Metadata| {
        h.update(rel.as_bytes());
        h.update(&[0]);
        for v in [m.dev(), m.ino(), m.size(), m.mode() as u64] {
            h.update(&v.to_le_bytes());
        }
        let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        let ctime = m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128;
        h.update(&mtime.to_le_bytes());
        h.update(&ctime.to_le_bytes());
        newest = newest.max(mtime).max(ctime);
    };
    add("", &meta);
    if meta.is_dir() {
        for (rel, _, m) in hash::walk(path)? {
            add(&rel, &m);
        }
    }
    Ok(Fingerprint {
        fp: Digest(*h.finalize().as_bytes()),
        newest_ns: newest,
    })
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl StatCache {
    pub fn open(file: PathBuf) -> Self {
        // A missing or unreadable cache only costs re-hashing, so it is never an error.
        let entries = fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<OnDisk>(&b).ok())
            .filter(|d| d.version == 1)
            .map(|d| d.entries)
            .unwrap_or_default();
        StatCache {
            file,
            state: Mutex::new((entries, false)),
        }
    }

    /// An in-memory cache that is never saved.
    pub fn ephemeral() -> Self {
        StatCache {
            file: PathBuf::new(),
            state: Mutex::new((HashMap::new(), false)),
        }
    }

    fn key(path: &Path) -> Option<String> {
        std::path::absolute(path).ok()?.to_str().map(str::to_string)
    }

    /// The digest of a file or tree, re-reading it only if its fingerprint changed.
    pub fn hash(&self, path: &Path) -> io::Result<Hashed> {
        let before = fingerprint(path)?;
        let key = Self::key(path);
        if let Some(k) = &key {
            let state = self.state.lock().unwrap();
            if let Some(e) = state.0.get(k)
                && e.fp == before.fp
            {
                return Ok(e.hashed);
            }
        }
        let hashed = hash::hash_path(path)?;
        let after = fingerprint(path)?;
        // Only cache if nothing changed while we read and nothing is too fresh to trust.
        if let Some(k) = key {
            if after.fp == before.fp && now_ns() - after.newest_ns > RACY_NS {
                let mut state = self.state.lock().unwrap();
                state.0.insert(
                    k,
                    CacheEntry {
                        fp: after.fp,
                        hashed,
                    },
                );
                state.1 = true;
            } else {
                self.forget(path);
            }
        }
        Ok(hashed)
    }

    /// Records a digest we already know (e.g. computed just before publishing).
    pub fn remember(&self, path: &Path, hashed: Hashed) {
        let (Some(k), Ok(f)) = (Self::key(path), fingerprint(path)) else {
            return;
        };
        if now_ns() - f.newest_ns > RACY_NS {
            let mut state = self.state.lock().unwrap();
            state.0.insert(k, CacheEntry { fp: f.fp, hashed });
            state.1 = true;
        }
    }

    pub fn forget(&self, path: &Path) {
        if let Some(k) = Self::key(path) {
            let mut state = self.state.lock().unwrap();
            if state.0.remove(&k).is_some() {
                state.1 = true;
            }
        }
    }

    /// Drops entries for paths that no longer exist.
    pub fn prune(&self) {
        let mut state = self.state.lock().unwrap();
        let before = state.0.len();
        state.0.retain(|k, _| Path::new(k).exists());
        if state.0.len() != before {
            state.1 = true;
        }
    }

    /// Writes the cache if it changed. Concurrent writers are safe: the write is atomic
    /// and every entry is self-validating, so the worst case is a lost entry.
    pub fn save(&self) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        if !state.1 || self.file.as_os_str().is_empty() {
            return Ok(());
        }
        let disk = OnDisk {
            version: 1,
            entries: state.0.clone(),
        };
        let bytes = serde_json::to_vec(&disk).map_err(io::Error::other)?;
        super::fsutil::write_atomic(&self.file, &bytes)?;
        state.1 = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn backdate(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn same_size_edit_with_restored_mtime_is_still_seen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"aaaa").unwrap();
        backdate(&p);
        let cache = StatCache::ephemeral();
        let a = cache.hash(&p).unwrap();
        // Same size, mtime put back: only ctime tells the difference.
        fs::write(&p, b"bbbb").unwrap();
        backdate(&p);
        let b = cache.hash(&p).unwrap();
        assert_ne!(a.digest, b.digest);
    }
}
