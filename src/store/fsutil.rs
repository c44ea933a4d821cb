//! Small filesystem helpers with the durability rules the store relies on.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name that no other thread or process writing into the same folder will pick.
pub fn unique_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// temp file in the same folder, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs every file under `path` (or `path` itself), so a rename that publishes it
/// never exposes data that a power loss could still take away.
pub fn fsync_tree(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            fsync_tree(&entry?.path())?;
        }
        fsync_dir(path)
    } else {
        File::open(path)?.sync_all()
    }
}

/// Makes a stored object read-only, so that a stage handed an input path cannot edit the
/// store's copy by accident.
pub fn make_readonly(path: &Path) -> io::Result<()> {
    make_readonly_below(path)?;
    seal_top(path)
}

/// Makes everything inside `path` read-only but leaves `path` itself as it is. A folder
/// must stay writable until it is renamed into the store: moving a directory to another
/// parent rewrites its `..` entry, which needs write access to it (EACCES otherwise, for
/// every user but root).
pub fn make_readonly_below(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            make_readonly(&entry?.path())?;
        }
    }
    Ok(())
}

/// Makes `path` itself (not what is inside) read-only.
pub fn seal_top(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o555))
    } else {
        let exec = meta.permissions().mode() & 0o111 != 0;
        fs::set_permissions(
            path,
            fs::Permissions::from_mode(if exec { 0o555 } else { 0o444 }),
        )
    }
}

/// Flushes every dirty page of the filesystem holding `path` with one `syncfs(2)`: one
/// call makes a whole stage's outputs durable, where an fsync per file cost seconds for a
/// folder of 20,000 files. Falls back to fsyncing the tree where syncfs is unavailable.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(path)?;
    // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
        return Ok(());
    }
    fsync_tree(path)
}

/// Removes a file or tree even if it was made read-only.
pub fn remove_all(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(path)? {
            remove_all(&entry?.path())?;
        }
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    }
}

/// Copies a file or a folder tree (regular files and folders only; the executable bit is
/// kept, other permission bits are not).
pub fn copy_all(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::metadata(from)?;
    if meta.is_dir() {
        fs::create_dir_all(to)?;
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_all(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(from, to)?;
        let exec = meta.permissions().mode() & 0o111 != 0;
        fs::set_permissions(
            to,
            fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }),
        )
    }
}

/// Like [`copy_all`], but hard-links files where it can: for a copy of a read-only store
/// object that the store will deduplicate anyway, this avoids writing the bytes twice.
pub fn link_or_copy_all(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::metadata(from)?;
    if meta.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            link_or_copy_all(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if fs::hard_link(from, to).is_ok() {
        Ok(())
    } else {
        copy_all(from, to)
    }
}

/// Bytes used by a file or tree (apparent sizes).
pub fn disk_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| disk_size(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta.len()
    }
}
