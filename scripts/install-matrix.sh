#!/usr/bin/env bash
# Install the version matrix of real agent CLIs (issue 14) for
# `python -m tests.real_agents.record_matrix`, one prefix per (CLI, version):
#
#   scripts/install-matrix.sh                 # every CLI and version below
#   scripts/install-matrix.sh claude codex    # only these CLIs
#
# Everything goes to .real-agents/matrix/<cli>-<version>/ (git-ignored through
# .real-agents/.gitignore). The pinned versions of scripts/install-real-agents.sh
# are reused from .real-agents/npm and .real-agents/aider-venv, not installed twice.
# Re-running skips what is installed. The versions are read from
# tests/real_agents/matrix_versions.txt (one `<cli> <version>` a line).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${REAL_AGENTS_DIR:-$ROOT/.real-agents}/matrix"
PYTHON="${PYTHON:-python3}"
VERSIONS="$ROOT/tests/real_agents/matrix_versions.txt"
mkdir -p "$DEST"
[ -f "$ROOT/.real-agents/.gitignore" ] || printf '*\n' >"$ROOT/.real-agents/.gitignore"

declare -A PACKAGE=(
  [claude]="@anthropic-ai/claude-code"
  [codex]="@openai/codex"
  [gemini]="@google/gemini-cli"
  [opencode]="opencode-ai"
)
failures=()

want() {  # $1 = cli; true when no CLI was named or this one was
  [ "${#SELECTED[@]}" -eq 0 ] && return 0
  local c; for c in "${SELECTED[@]}"; do [ "$c" = "$1" ] && return 0; done
  return 1
}
SELECTED=("$@")

while read -r cli version pinned; do
  case "$cli" in ''|'#'*) continue ;; esac
  want "$cli" || continue
  [ "$pinned" = "pinned" ] && { echo "== $cli $version: the pinned install (scripts/install-real-agents.sh)"; continue; }
  prefix="$DEST/$cli-$version"
  if [ "$cli" = aider ]; then
    if [ -x "$prefix/bin/aider" ]; then echo "== aider $version already installed"; continue; fi
    echo "== aider-chat==$version in $prefix"
    if ! { "$PYTHON" -m venv "$prefix" \
           && "$prefix/bin/python" -m pip install --quiet "aider-chat==$version"; }; then
      failures+=("aider $version")
    fi
    continue
  fi
  pkg="${PACKAGE[$cli]}"
  if [ -f "$prefix/node_modules/$pkg/package.json" ]; then echo "== $cli $version already installed"; continue; fi
  echo "== npm install $pkg@$version"
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || echo '{"name": "matrix", "private": true}' >"$prefix/package.json"
  if ! npm install --prefix "$prefix" --no-audit --no-fund --save-exact "$pkg@$version"; then
    failures+=("$cli $version")
  fi
done <"$VERSIONS"

if [ "${#failures[@]}" -gt 0 ]; then
  echo "!! failed: ${failures[*]}" >&2
  exit 1
fi
