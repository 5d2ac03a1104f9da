//! Test helpers of the speech module: shorthands for the skip rule of [`crate::test_skip`] (a
//! missing program skips the test, a failure under `ATLAS_REQUIRE_DESKTOP=1`). The sound server
//! is [`crate::test_pulse`]'s, the stalled speech-dispatcher [`crate::test_speechd`]'s.

/// True when `program` is on `PATH`; otherwise the test is skipped (a failure under
/// `ATLAS_REQUIRE_DESKTOP=1`).
pub(crate) fn require(program: &str, package: &str) -> bool {
    crate::test_skip::require_programs(crate::test_skip::Need::Desktop, &[(program, package)])
}

/// True when espeak-ng can be run (see [`require`]).
pub(crate) fn espeak_present() -> bool {
    require("espeak-ng", "espeak-ng")
}
