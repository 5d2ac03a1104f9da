#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: formatting, lints, docs, unit and integration
# tests (real SQLite files, real HTTP servers on 127.0.0.1, real processes killed mid-run), and the
# workflow-loader property tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export ATLAS_SETUP_TESTS=1
source scripts/setup.sh

echo "== whisper test model"
cargo build --quiet --bin atlas
ATLAS_BIN="$CARGO_TARGET_DIR/debug/atlas" bash scripts/test-model.sh
# The real model, PulseAudio, espeak-ng and speech-dispatcher are installed above: tests that
# need them fail rather than skip when they are missing.
export ATLAS_REQUIRE_MODEL=1 ATLAS_REQUIRE_DESKTOP=1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
echo "== cargo test"
cargo test --all-targets 2>&1 | tee "$CARGO_TARGET_DIR/test-output.txt"
# The summary line CI reads.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$CARGO_TARGET_DIR/test-output.txt"
