#!/usr/bin/env bash
# Runs every `atlas bench` (engine, voice, agent, accuracy) on a release build, the way the figures in
# ARCHITECTURE.md were measured: the tiny.en test model (f16, then Q8_0; accuracy on Q8_0), and for the agent a private virtual
# desktop (Xvfb with a tray host, PulseAudio with a null sink as microphone and speaker).
# Prints one JSON object per benchmark. Usage: scripts/bench.sh [engine|voice|agent|accuracy]...
set -euo pipefail
cd "$(dirname "$0")/.."
export ATLAS_SETUP_TESTS=1
source scripts/setup.sh
# `atlas-tray` too: the daemon measured by `bench agent` runs its tray icon in that helper.
cargo build --release --quiet --bins
ATLAS="$CARGO_TARGET_DIR/release/atlas"
# The Q8_0 model (the default form, what start.sh installs) and the f16 one it is made from.
Q8="$(ATLAS_BIN="$ATLAS" bash scripts/test-model.sh)"
MODEL="$(dirname "$Q8")/ggml-tiny.en.bin"
which=("$@")
((${#which[@]})) || which=(engine voice agent accuracy)

run="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
chmod 700 "$run"
# HOME stays: a fresh one would make the first GTK start build a font cache, which is not what a
# user's daemon pays.
export XDG_RUNTIME_DIR="$run" NO_AT_BRIDGE=1 ATLAS_SPEECH=espeak
export ATLAS_CONFIG="$run/config.toml" ATLAS_DATA_DIR="$run/data"
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disallow-exit --use-pid-file=no \
  -L "module-native-protocol-unix auth-anonymous=1" \
  -L "module-null-sink sink_name=vsink rate=48000" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl set-default-sink vsink
pactl set-default-source vsink.monitor
display=":$((40 + RANDOM % 20))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 &
pids+=($!)
export DISPLAY="$display"
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.2; done
trayer --edge top --align right --widthtype pixel --width 200 --heighttype pixel --height 40 \
  --SetDockType true --transparent false >/dev/null 2>&1 &
pids+=($!)
sleep 1

for b in "${which[@]}"; do
  case "$b" in
    engine) "$ATLAS" bench engine --json ;;
    voice | agent) for m in "$MODEL" "$Q8"; do "$ATLAS" bench "$b" --json --model "$m"; done ;;
    accuracy) "$ATLAS" bench accuracy --json --model "$Q8" ;;
    *) echo "unknown benchmark $b (engine, voice, agent, accuracy)" >&2; exit 2 ;;
  esac
done
