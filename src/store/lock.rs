//! The store lock: one `hhi` process mutates a store at a time. The second one either waits,
//! saying who holds the lock, or fails at once with `--no-wait`. The OS releases the lock
//! when the holder dies, even by `kill -9`, so a crash never wedges the store.

use anyhow::{Context, bail};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct StoreLock {
    _file: File,
    info: PathBuf,
}

fn holder(info: &Path) -> String {
    fs::read_to_string(info)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "another hhi process".into())
}

impl StoreLock {
    pub fn acquire(root: &Path, wait: bool, what: &str) -> anyhow::Result<StoreLock> {
        fs::create_dir_all(root).with_context(|| format!("creating store {}", root.display()))?;
        let path = root.join("lock");
        let info = root.join("lock.info");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                // The holder writes its name just after locking; give it a moment.
                for _ in 0..20 {
                    if info.exists() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                let who = holder(&info);
                if !wait {
                    bail!(
                        "the store {} is in use by {who}\n  = help: wait for it to finish, or drop --no-wait to queue behind it",
                        root.display()
                    );
                }
                // Not eprintln!: a closed stderr (`hhi run … 2>&- `) must not panic here.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "waiting for the store {}: it is in use by {who}",
                    root.display()
                );
                file.lock().context("waiting for the store lock")?;
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let mut f = File::create(&info)?;
        writeln!(
            f,
            "pid {} (`{what}`, since {})",
            std::process::id(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        )?;
        Ok(StoreLock { _file: file, info })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.info);
    }
}
