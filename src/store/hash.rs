//! BLAKE3 content hashing of files and directory trees.
//!
//! A file's digest is the plain BLAKE3 of its bytes, so anyone can check a stored file with
//! `b3sum`. A tree's digest is the BLAKE3 of its manifest: one line per entry, sorted by
//! path, giving folders, and for files their executable bit, size and digest. Files are
//! hashed in parallel (rayon), large ones with memory maps and multithreading, like b3sum.

use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Files at least this large are hashed with mmap + rayon; below it, a plain read is
/// faster than setting up a map and a thread pool.
const MMAP_THRESHOLD: u64 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }
    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
    /// The first 12 hex digits, for humans.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        blake3::Hash::from_hex(s)
            .map(|h| Digest(*h.as_bytes()))
            .map_err(|_| format!("`{s}` is not a 64-digit BLAKE3 hex digest"))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    File,
    Dir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashed {
    pub digest: Digest,
    /// Total bytes of file content.
    pub size: u64,
    pub kind: ObjectKind,
}

fn unsupported(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{}: {what}; artifacts may hold only regular files and folders",
            path.display()
        ),
    )
}

pub fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let len = fs::metadata(path)?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        let mut buf = Vec::with_capacity(len as usize);
        fs::File::open(path)?.read_to_end(&mut buf)?;
        hasher.update(&buf);
    }
    Ok((Digest(*hasher.finalize().as_bytes()), len))
}

/// One entry of a tree manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        exec: bool,
        size: u64,
        digest: Digest,
    },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path } | Entry::File { path, .. } => path,
        }
    }
}

/// Lists every folder and regular file under `root`, relative paths with `/`, sorted.
pub fn walk(root: &Path) -> io::Result<Vec<(String, PathBuf, fs::Metadata)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root.to_path_buf())];
    while let Some((rel, dir)) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_str().filter(|n| !n.contains('\n')).ok_or_else(|| {
                unsupported(&entry.path(), "file name is not UTF-8 or has a newline")
            })?;
            let rel = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                stack.push((rel.clone(), entry.path()));
            } else if !meta.is_file() {
                return Err(unsupported(&entry.path(), "symlink or special file"));
            }
            out.push((rel, entry.path(), meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub fn manifest(root: &Path) -> io::Result<Vec<Entry>> {
    walk(root)?
        .into_par_iter()
        .map(|(rel, path, meta)| {
            if meta.is_dir() {
                Ok(Entry::Dir { path: rel })
            } else {
                let (digest, size) = hash_file(&path)?;
                let exec = meta.permissions().mode() & 0o111 != 0;
                Ok(Entry::File {
                    path: rel,
                    exec,
                    size,
                    digest,
                })
            }
        })
        .collect()
}

/// The manifest's canonical bytes; a tree's digest is the BLAKE3 of these.
pub fn manifest_text(entries: &[Entry]) -> String {
    let mut s = String::from("hhi-tree-v1\n");
    for e in entries {
        match e {
            Entry::Dir { path } => s.push_str(&format!("d {path}\n")),
            Entry::File {
                path,
                exec,
                size,
                digest,
            } => {
                let x = if *exec { 'x' } else { '-' };
                s.push_str(&format!("f {x} {size} {digest} {path}\n"));
            }
        }
    }
    s
}

/// Reads a manifest back from its canonical bytes (a tree fetched from a remote cache is
/// rebuilt from it). Paths are checked to stay inside the tree: the manifest's digest is
/// verified by the caller, but the record naming it came from elsewhere.
pub fn parse_manifest(text: &str) -> Result<Vec<Entry>, String> {
    let mut lines = text.lines();
    if lines.next() != Some("hhi-tree-v1") {
        return Err("not an hhi tree manifest (no `hhi-tree-v1` header)".into());
    }
    let safe = |p: &str| {
        !p.is_empty()
            && !p.starts_with('/')
            && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
    };
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let bad = || format!("manifest line {}: `{line}`", n + 2);
        let entry = if let Some(path) = line.strip_prefix("d ") {
            Entry::Dir { path: path.into() }
        } else if let Some(rest) = line.strip_prefix("f ") {
            let mut it = rest.splitn(4, ' ');
            let (Some(x), Some(size), Some(digest), Some(path)) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            Entry::File {
                path: path.into(),
                exec: match x {
                    "x" => true,
                    "-" => false,
                    _ => return Err(bad()),
                },
                size: size.parse().map_err(|_| bad())?,
                digest: digest.parse().map_err(|_| bad())?,
            }
        } else {
            return Err(bad());
        };
        if !safe(entry.path()) {
            return Err(format!("{}: path leaves the tree", bad()));
        }
        out.push(entry);
    }
    Ok(out)
}

pub fn hash_tree(root: &Path) -> io::Result<(Hashed, Vec<Entry>)> {
    let entries = manifest(root)?;
    debug_assert!(entries.windows(2).all(|w| w[0].path() < w[1].path()));
    let size = entries
        .iter()
        .map(|e| {
            if let Entry::File { size, .. } = e {
                *size
            } else {
                0
            }
        })
        .sum();
    let digest = Digest::of_bytes(manifest_text(&entries).as_bytes());
    Ok((
        Hashed {
            digest,
            size,
            kind: ObjectKind::Dir,
        },
        entries,
    ))
}

/// Hashes a file or a folder.
pub fn hash_path(path: &Path) -> io::Result<Hashed> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        Ok(hash_tree(path)?.0)
    } else if meta.is_file() {
        let (digest, size) = hash_file(path)?;
        Ok(Hashed {
            digest,
            size,
            kind: ObjectKind::File,
        })
    } else {
        Err(unsupported(path, "symlink or special file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_and_unsafe_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir_all(t.join("sub/deeper")).unwrap();
        fs::write(t.join("sub/x y"), b"1").unwrap();
        fs::write(t.join("run.sh"), b"#!/bin/sh").unwrap();
        fs::set_permissions(t.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        let (_, entries) = hash_tree(&t).unwrap();
        let text = manifest_text(&entries);
        assert_eq!(parse_manifest(&text).unwrap(), entries);
        for bad in ["d ../up", "d /abs", "f - 1 zz a", "d a//b", "x what"] {
            let text = format!("hhi-tree-v1\n{bad}\n");
            assert!(parse_manifest(&text).is_err(), "{bad}");
        }
        assert!(parse_manifest("f - 1 00 a\n").is_err());
    }

    #[test]
    fn file_digest_is_plain_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        fs::write(&p, b"hello").unwrap();
        let (d, n) = hash_file(&p).unwrap();
        assert_eq!(d.hex(), blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(n, 5);
    }

    #[test]
    fn tree_digest_depends_on_names_content_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        fs::create_dir_all(t.join("sub")).unwrap();
        fs::write(t.join("sub/x"), b"1").unwrap();
        let a = hash_path(&t).unwrap();
        fs::write(t.join("sub/x"), b"2").unwrap();
        let b = hash_path(&t).unwrap();
        assert_ne!(a.digest, b.digest);
        fs::rename(t.join("sub/x"), t.join("sub/y")).unwrap();
        let c = hash_path(&t).unwrap();
        assert_ne!(b.digest, c.digest);
        fs::create_dir(t.join("empty")).unwrap();
        assert_ne!(c.digest, hash_path(&t).unwrap().digest);
        assert_eq!(hash_path(&t).unwrap().kind, ObjectKind::Dir);
    }
}
