#!/usr/bin/env bash
# Installs the independent MCP clients the tests use, outside the clone so CI reuses them:
# the MCP Inspector CLI (0.15.0: the last that runs on Node 20) under
# $ATLAS_MCP_CLIENTS/npm and the Python `mcp` package in the venv $ATLAS_MCP_CLIENTS/py.
# Idempotent; sourced by setup.sh when tests are set up. Exports ATLAS_MCP_INSPECTOR and
# ATLAS_MCP_PYTHON for the tests.
set -euo pipefail
ATLAS_MCP_CLIENTS="${ATLAS_MCP_CLIENTS:-$HOME/.cache/atlas/mcp-clients}"
INSPECTOR_VERSION=0.15.0
PY_MCP_VERSION=2.3.0
mkdir -p "$ATLAS_MCP_CLIENTS"
if ! command -v npm >/dev/null; then
  echo "atlas setup: installing nodejs and npm" >&2
  SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
inspector="$ATLAS_MCP_CLIENTS/npm/node_modules/.bin/mcp-inspector"
if [[ ! -x "$inspector" ]] || ! grep -q "\"version\": \"$INSPECTOR_VERSION\"" "$ATLAS_MCP_CLIENTS/npm/node_modules/@modelcontextprotocol/inspector/package.json" 2>/dev/null; then
  echo "atlas setup: installing @modelcontextprotocol/inspector@$INSPECTOR_VERSION" >&2
  npm install --silent --no-fund --no-audit --prefix "$ATLAS_MCP_CLIENTS/npm" \
    "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >/dev/null
fi
py="$ATLAS_MCP_CLIENTS/py/bin/python"
if [[ ! -x "$py" ]] || ! "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$PY_MCP_VERSION')" 2>/dev/null; then
  echo "atlas setup: installing the Python mcp $PY_MCP_VERSION client" >&2
  python3 -m venv "$ATLAS_MCP_CLIENTS/py"
  "$py" -m pip install --quiet --disable-pip-version-check "mcp==$PY_MCP_VERSION"
fi
export ATLAS_MCP_INSPECTOR="$inspector" ATLAS_MCP_PYTHON="$py"
