#!/usr/bin/env bash
# Sets everything up and starts the Atlas agent on its embedded defaults: SQLite in the data dir,
# the bundled workflows, the local whisper model. Extra arguments go to `atlas daemon`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --bin atlas
exec "$CARGO_TARGET_DIR/release/atlas" daemon "$@"
