//! The one fake speech-dispatcher of the tests: [`StalledSpeechd`] accepts connections and never
//! answers, which is what a stalled speech-dispatcher looks like to a client. Shared by the unit
//! tests (`crate::test_speechd`) and the integration tests (`tests/tests.rs` includes this file by
//! path). Like the other harnesses it changes no environment variable of this process: point a
//! client's `SPEECHD_ADDRESS` at [`StalledSpeechd::address`].
#![allow(dead_code)]

use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A speech service that holds every connection open, unread, until the test ends.
pub struct StalledSpeechd {
    dir: tempfile::TempDir,
    accepted: Arc<AtomicUsize>,
}

impl StalledSpeechd {
    /// Listens on a socket in a new temporary folder.
    pub fn start() -> StalledSpeechd {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = UnixListener::bind(dir.path().join("speechd.sock")).expect("bind");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(conn);
            }
        });
        StalledSpeechd { dir, accepted }
    }

    /// The address in speech-dispatcher's `SPEECHD_ADDRESS` form.
    pub fn address(&self) -> String {
        format!(
            "unix_socket:{}",
            self.dir.path().join("speechd.sock").display()
        )
    }

    /// How many clients connected.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
