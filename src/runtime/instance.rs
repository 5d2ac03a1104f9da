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

/// The pid of the running daemon, if one holds the lock. Only looks: it never takes the lock,
/// so a daemon starting at this moment is not refused.
pub fn running(data_dir: &Path) -> Option<u32> {
    let path = lock_path(data_dir);
    let pid: u32 = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
    match lock_held(&path) {
        Some(held) => held.then_some(pid),
        // No lock table to read: a live process with that pid is the best evidence there is.
        // SAFETY: signal 0 only checks that the process exists.
        None => (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0).then_some(pid),
    }
}

/// Whether some process holds a `flock` on `path`, from Linux's lock table (`/proc/locks`,
/// which names each lock's file by device and inode). `None` when the table cannot be read.
fn lock_held(path: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    Some(table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; blocked waiters start with "->".
        fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str())
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_reads_the_lock_without_taking_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(running(dir.path()), None, "no lock file yet");
        let lock = acquire(dir.path()).expect("first lock");
        assert_eq!(running(dir.path()), Some(std::process::id()));
        drop(lock);
        assert_eq!(
            running(dir.path()),
            None,
            "a stale pid file is not a daemon"
        );

        // A check that took the lock (even for a moment) would rewrite the file with its own
        // pid, and a daemon starting at that moment would be refused.
        std::fs::write(lock_path(dir.path()), "999999").expect("write");
        assert_eq!(running(dir.path()), None);
        assert_eq!(
            std::fs::read_to_string(lock_path(dir.path())).expect("read"),
            "999999",
            "the status check took the lock"
        );
    }
}
