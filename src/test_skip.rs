//! How a test that cannot run on this machine says so. Shared by the unit tests
//! (`crate::test_skip`) and the integration tests (`tests/tests.rs` includes this file by path),
//! so both follow one rule.
//!
//! A test that needs something a machine may lack (a sound server, an X server, espeak-ng, the
//! whisper model) calls [`skip`] when it is missing, then returns. With `ATLAS_REQUIRE_MODEL=1` or
//! `ATLAS_REQUIRE_DESKTOP=1` (set by `scripts/test.sh` on a machine it prepared) that is a failure
//! saying what to install. Otherwise the skip is printed and appended as `test-name: reason` to
//! the file named by `ATLAS_SKIP_LOG`, so that the suite's summary counts the test as skipped
//! rather than passed (the test harness itself cannot tell an early return from a pass).
#![allow(dead_code)]

use std::io::Write;

/// What a test needs, and so which `ATLAS_REQUIRE_*` variable makes its absence a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The whisper test model (`ATLAS_REQUIRE_MODEL`).
    Model,
    /// Sound server, X server and speech tools (`ATLAS_REQUIRE_DESKTOP`).
    Desktop,
}

impl Need {
    /// The variable that, set to `1`, makes a missing prerequisite fail the test.
    pub fn variable(self) -> &'static str {
        match self {
            Need::Model => "ATLAS_REQUIRE_MODEL",
            Need::Desktop => "ATLAS_REQUIRE_DESKTOP",
        }
    }

    /// Whether this machine promised to have it.
    pub fn is_required(self) -> bool {
        std::env::var(self.variable()).as_deref() == Ok("1")
    }
}

/// The running test's name as the harness spells it (it names each test's thread so).
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("an unnamed test")
        .to_owned()
}

/// The current test cannot run: `reason` says what is missing and how to install it. Panics
/// when `need` is required; otherwise prints the skip and records it in `ATLAS_SKIP_LOG`. The
/// caller returns right after.
#[track_caller]
pub fn skip(need: Need, reason: &str) {
    let test = current_test();
    if need.is_required() {
        panic!(
            "{test} cannot run: {reason} ({}=1 makes this a failure)",
            need.variable()
        );
    }
    eprintln!("skipped: {test}: {reason}");
    if let Some(log) = std::env::var_os("ATLAS_SKIP_LOG") {
        let line = format!("{test}: {}\n", reason.replace('\n', " "));
        // One write of one line on an O_APPEND file: lines of tests running at once (and of
        // child test processes) do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record the skip in ATLAS_SKIP_LOG: {e}");
        }
    }
}

/// Whether `program` is on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// True when every `(program, package)` is on `PATH`; otherwise [`skip`]s naming the missing
/// programs and the packages to install, and returns false.
pub fn require_programs(need: Need, programs: &[(&str, &str)]) -> bool {
    let missing: Vec<_> = programs.iter().filter(|(p, _)| !on_path(p)).collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, pkg)| *pkg).collect();
    packages.dedup();
    skip(
        need,
        &format!(
            "{} not installed (apt-get install {})",
            names.join(", "),
            packages.join(" ")
        ),
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs this test binary's `inner` test in a child with `env`, returning (passed, stderr,
    /// skip log contents).
    fn child(inner: &str, env: &[(&str, &str)]) -> (bool, String, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("skipped.txt");
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([inner, "--exact", "--ignored", "--nocapture"])
            .env_remove("ATLAS_REQUIRE_MODEL")
            .env_remove("ATLAS_REQUIRE_DESKTOP")
            .env("ATLAS_SKIP_LOG", &log)
            .envs(env.iter().copied())
            .output()
            .expect("run the test binary");
        let recorded = std::fs::read_to_string(&log).unwrap_or_default();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            recorded,
        )
    }

    fn inner_name() -> String {
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        format!("{module}::a_test_whose_prerequisite_is_missing")
    }

    #[test]
    #[ignore = "run by the skip tests below, in a child process"]
    fn a_test_whose_prerequisite_is_missing() {
        skip(
            Need::Desktop,
            "frobnicator is not installed (apt-get install frob)",
        );
    }

    #[test]
    fn a_skip_is_recorded_with_the_test_name_and_reason() {
        let inner = inner_name();
        let (passed, stderr, log) = child(&inner, &[]);
        assert!(passed, "{stderr}");
        assert_eq!(
            log,
            format!("{inner}: frobnicator is not installed (apt-get install frob)\n")
        );
        assert!(stderr.contains(&format!("skipped: {inner}")), "{stderr}");
    }

    #[test]
    fn a_required_prerequisite_that_is_missing_fails_the_test() {
        let (passed, stderr, log) = child(&inner_name(), &[("ATLAS_REQUIRE_DESKTOP", "1")]);
        assert!(
            !passed,
            "the test passed although its prerequisite was required"
        );
        assert!(
            stderr.contains("apt-get install frob") && stderr.contains("ATLAS_REQUIRE_DESKTOP"),
            "{stderr}"
        );
        assert_eq!(log, "", "a failure is not a skip");
        // The other variable does not make a desktop test required.
        let (passed, _, log) = child(&inner_name(), &[("ATLAS_REQUIRE_MODEL", "1")]);
        assert!(passed);
        assert!(!log.is_empty());
    }

    #[test]
    fn missing_programs_are_named_with_their_packages() {
        assert!(require_programs(Need::Desktop, &[("sh", "dash")]));
        assert!(on_path("sh"));
        assert!(!on_path("surely-no-such-program-atlas"));
    }
}
