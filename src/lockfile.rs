//! `P.lock`, written by `hhi run` beside `P.toml`: for each stage its cache key and its
//! outputs' digests. Users commit it; `hhi audit` checks a store against it.

use crate::store::hash::Digest;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedOutput {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedStage {
    pub kind: String,
    pub key: Digest,
    #[serde(default)]
    pub outputs: BTreeMap<String, LockedOutput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LockFile {
    pub version: u32,
    pub pipeline: String,
    #[serde(default)]
    pub stages: BTreeMap<String, LockedStage>,
}

const HEADER: &str = "# Written by `hhi run`: each stage's cache key and output digests.\n# Commit it; `hhi audit` checks that a store holds exactly these artifacts.\n\n";

impl LockFile {
    /// The lock beside a pipeline, if there is one.
    pub fn read(path: &Path) -> anyhow::Result<Option<LockFile>> {
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(toml::from_str(&s).with_context(|| {
                format!(
                    "{} is not a valid lock file; delete it and run `hhi run` to rewrite it",
                    path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn render(&self) -> String {
        format!(
            "{HEADER}{}",
            toml::to_string(self).expect("lock file serialises")
        )
    }

    /// Writes atomically, and not at all when nothing changed (keeps no-op runs cheap and
    /// the file's mtime meaningful).
    pub fn write(&self, path: &Path) -> anyhow::Result<bool> {
        let text = self.render();
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        crate::store::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing lock file {}", path.display()))?;
        Ok(true)
    }
}
