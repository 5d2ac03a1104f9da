//! One daemon per user: an advisory lock on `<data dir>/atlas.lock` holding the daemon's pid, and
//! the status file `atlas status` reads.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Held by the running daemon; the lock goes with the process, however it ends.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error("an atlas daemon is already running (pid {pid}); stop it first, or use `atlas status`")]
    Running {
        /// Its pid (0 when unreadable).
        pid: u32,
    },
    /// The lock file could not be used.
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("atlas.lock")
}

/// Takes the daemon lock, writing our pid into it.
pub fn acquire(data_dir: &Path) -> Result<InstanceLock, LockError> {
    let path = lock_path(data_dir);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a file descriptor we own; non-blocking.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        return Err(LockError::Running {
            pid: text.trim().parse().unwrap_or(0),
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(InstanceLock { _file: file, path })
}

impl InstanceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid of the running daemon, if one holds the lock.
pub fn running(data_dir: &Path) -> Option<u32> {
    match acquire(data_dir) {
        Ok(_lock) => None,
        Err(LockError::Running { pid }) => Some(pid),
        Err(LockError::Io { .. }) => None,
    }
}

/// Where the daemon writes its status.
pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join("status.json")
}

/// Writes the status file atomically.
pub fn write_status(data_dir: &Path, status: &serde_json::Value) {
    let path = status_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let ok = std::fs::write(&tmp, serde_json::to_vec_pretty(status).unwrap_or_default())
        .and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = ok {
        tracing::warn!(error = %e, "cannot write the status file");
    }
}
