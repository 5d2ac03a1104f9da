//! Test helpers of the speech module: [`StalledService`], a fake speech-dispatcher that never
//! answers, and shorthands for the skip rule of [`crate::test_skip`] (a missing program skips the
//! test, a failure under `ATLAS_REQUIRE_DESKTOP=1`). The sound server is [`crate::test_pulse`]'s.

// `tts/config.rs`'s tests still import it from here.
pub(crate) use crate::test_pulse::VirtualSpeaker;

/// True when `program` is on `PATH`; otherwise the test is skipped (a failure under
/// `ATLAS_REQUIRE_DESKTOP=1`).
pub(crate) fn require(program: &str, package: &str) -> bool {
    crate::test_skip::require_programs(crate::test_skip::Need::Desktop, &[(program, package)])
}

/// True when espeak-ng can be run (see [`require`]).
pub(crate) fn espeak_present() -> bool {
    require("espeak-ng", "espeak-ng")
}

/// A speech service that accepts connections and never answers: what a stalled
/// speech-dispatcher looks like to a client. Point `SPEECHD_ADDRESS` at [`Self::address`].
pub(crate) struct StalledService {
    dir: tempfile::TempDir,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StalledService {
    /// Listens on a socket in a new temporary folder; connections are held open, unread.
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("speechd.sock")).expect("bind");
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(conn);
            }
        });
        Self { dir, accepted }
    }

    /// The address in speech-dispatcher's `SPEECHD_ADDRESS` form.
    pub(crate) fn address(&self) -> String {
        format!(
            "unix_socket:{}",
            self.dir.path().join("speechd.sock").display()
        )
    }

    /// How many clients connected.
    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
