#!/usr/bin/env bash
# Installs what Atlas needs to build, run and test on Debian/Ubuntu. Idempotent: it only calls
# apt-get when a package is missing. Sourced by start.sh and test.sh.
set -euo pipefail

BUILD_PKGS=(pkg-config libssl-dev cmake clang libclang-dev libasound2-dev libgtk-3-dev libspeechd-dev)
RUN_PKGS=(espeak-ng sox speech-dispatcher speech-dispatcher-espeak-ng pulseaudio pulseaudio-utils
  libasound2-plugins libayatana-appindicator3-1 dbus dbus-x11 gnome-keyring keyutils)
# chromium: the dashboard's browser tests (tests/dashboard.rs drive it with playwright-core).
TEST_PKGS=(xvfb xdotool x11-utils x11-apps imagemagick trayer dunst python3 python3-pip unzip curl chromium)

want=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}")
if [[ "${ATLAS_SETUP_TESTS:-0}" == 1 ]]; then
  want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "atlas setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The independent MCP clients of the tests (Inspector CLI, Python `mcp`), cached outside the clone.
if [[ "${ATLAS_SETUP_TESTS:-0}" == 1 ]]; then
  source "$(dirname "${BASH_SOURCE[0]}")/mcp-clients.sh"
  source "$(dirname "${BASH_SOURCE[0]}")/oauth-server.sh"
fi

# Builds go to a target directory outside the clone so that a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/atlas/target}"
mkdir -p "$CARGO_TARGET_DIR"
