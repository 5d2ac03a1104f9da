#!/usr/bin/env bash
# Installs the independent OAuth 2.0 authorization server the account tests use,
# oauth2-mock-server (npm; 8.2.3: the last line that runs on Node 20), under
# $ATLAS_OAUTH_SERVER_DIR (default ~/.cache/atlas/oauth2-mock-server), outside the clone so CI
# reuses it. Idempotent; sourced by setup.sh when tests are set up. Exports
# ATLAS_OAUTH_MOCK_SERVER (the program) for the tests.
set -euo pipefail
ATLAS_OAUTH_SERVER_DIR="${ATLAS_OAUTH_SERVER_DIR:-$HOME/.cache/atlas/oauth2-mock-server}"
OAUTH_MOCK_VERSION=8.2.3
mkdir -p "$ATLAS_OAUTH_SERVER_DIR"
if ! command -v npm >/dev/null; then
  echo "atlas setup: installing nodejs and npm" >&2
  SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
server="$ATLAS_OAUTH_SERVER_DIR/node_modules/.bin/oauth2-mock-server"
if [[ ! -x "$server" ]] || ! grep -q "\"version\": \"$OAUTH_MOCK_VERSION\"" "$ATLAS_OAUTH_SERVER_DIR/node_modules/oauth2-mock-server/package.json" 2>/dev/null; then
  echo "atlas setup: installing oauth2-mock-server@$OAUTH_MOCK_VERSION" >&2
  npm install --silent --no-fund --no-audit --prefix "$ATLAS_OAUTH_SERVER_DIR" \
    "oauth2-mock-server@$OAUTH_MOCK_VERSION" >/dev/null
fi
export ATLAS_OAUTH_MOCK_SERVER="$server"
