#!/usr/bin/env bash
# Builds the dashboard (dashboard/ -> dashboard/dist, which the daemon serves under /dashboard/).
# Its node_modules and the npm cache live outside the clone, under $ATLAS_DASHBOARD_NPM
# (~/.cache/atlas/dashboard-npm), one folder per package-lock hash, so a fresh clone (CI) reuses
# them; dashboard/node_modules is a symlink to it. Both steps are skipped when up to date: the
# install when that lock's folder is complete, the build when dist/ was built from the same
# sources. Needs node and npm (installed here when missing). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dash="$root/dashboard"
ATLAS_DASHBOARD_NPM="${ATLAS_DASHBOARD_NPM:-$HOME/.cache/atlas/dashboard-npm}"
if ! command -v npm >/dev/null; then
  echo "atlas setup: installing nodejs and npm" >&2
  SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
lock_hash="$(cat "$dash/package.json" "$dash/package-lock.json" | sha256sum | cut -c1-16)"
mods="$ATLAS_DASHBOARD_NPM/$lock_hash"
if [[ ! -f "$mods/.installed" ]]; then
  echo "atlas setup: installing the dashboard's npm packages (lock $lock_hash)" >&2
  rm -rf "$mods"
  mkdir -p "$mods"
  cp "$dash/package.json" "$dash/package-lock.json" "$mods/"
  (cd "$mods" && npm ci --silent --no-fund --no-audit --prefer-offline --cache "$ATLAS_DASHBOARD_NPM/npm-cache")
  touch "$mods/.installed"
  # Older locks' folders go (the npm cache stays, so going back is quick).
  find "$ATLAS_DASHBOARD_NPM" -mindepth 1 -maxdepth 1 -type d ! -name npm-cache ! -name "$lock_hash" -exec rm -rf {} +
fi
ln -sfn "$mods/node_modules" "$dash/node_modules"
src_hash="$( (cd "$dash" && find index.html vite.config.js package-lock.json src -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
if [[ ! -f "$dash/dist/.built-from" || "$(cat "$dash/dist/.built-from")" != "$src_hash" ]]; then
  echo "atlas setup: building the dashboard" >&2
  (cd "$dash" && node node_modules/vite/bin/vite.js build --logLevel warn)
  echo "$src_hash" >"$dash/dist/.built-from"
fi
