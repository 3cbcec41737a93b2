#!/usr/bin/env bash
# Install the real agent CLIs used by the opt-in real-agent test tier
# (tests/real_agents) into a project-local, git-ignored directory.
#
#   scripts/install-real-agents.sh            # Claude Code + Aider (the tested pair)
#   scripts/install-real-agents.sh --all      # + Codex, Gemini CLI, OpenCode
#
# Nothing is installed globally. Re-running is cheap: a package already at the
# pinned version is skipped. Override the target with REAL_AGENTS_DIR=...
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${REAL_AGENTS_DIR:-$ROOT/.real-agents}"
NPM_PREFIX="$DEST/npm"
AIDER_VENV="$DEST/aider-venv"
PYTHON="${PYTHON:-python3}"

CLAUDE_VERSION="2.1.330"
CODEX_VERSION="0.169.0"
GEMINI_VERSION="0.61.0"
OPENCODE_VERSION="1.18.33"
AIDER_VERSION="0.86.2"

WANT_ALL=0
for arg in "$@"; do
  case "$arg" in
    --all) WANT_ALL=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

mkdir -p "$NPM_PREFIX"
# Ignore the whole directory from inside, so git never sees ~2 GB of binaries.
[ -f "$DEST/.gitignore" ] || printf '# created by scripts/install-real-agents.sh\n*\n' >"$DEST/.gitignore"
# Keep the npm prefix self-contained (its own package.json, no workspace lookup).
[ -f "$NPM_PREFIX/package.json" ] || echo '{"name": "real-agents", "private": true}' >"$NPM_PREFIX/package.json"

failures=()

npm_installed_version() {  # $1 = package name
  local pj="$NPM_PREFIX/node_modules/$1/package.json"
  [ -f "$pj" ] && node -e 'process.stdout.write(require(process.argv[1]).version)' "$pj" || true
}

npm_pkg() {  # $1 = package name, $2 = version
  local have
  have="$(npm_installed_version "$1")"
  if [ "$have" = "$2" ]; then
    echo "== $1@$2 already installed"
    return 0
  fi
  echo "== npm install $1@$2"
  local t0=$SECONDS
  if npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --save-exact "$1@$2"; then
    echo "   done in $((SECONDS - t0)) s"
  else
    echo "!! npm install $1@$2 failed" >&2
    failures+=("$1@$2")
  fi
}

npm_pkg "@anthropic-ai/claude-code" "$CLAUDE_VERSION"
if [ "$WANT_ALL" = 1 ]; then
  npm_pkg "@openai/codex" "$CODEX_VERSION"
  npm_pkg "@google/gemini-cli" "$GEMINI_VERSION"
  npm_pkg "opencode-ai" "$OPENCODE_VERSION"
fi

echo "== aider-chat==$AIDER_VERSION in $AIDER_VENV"
if [ -x "$AIDER_VENV/bin/aider" ] \
   && [ "$("$AIDER_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aider-chat"))' 2>/dev/null)" = "$AIDER_VERSION" ]; then
  echo "   already installed"
else
  t0=$SECONDS
  if { [ -x "$AIDER_VENV/bin/python" ] || "$PYTHON" -m venv "$AIDER_VENV"; } \
     && "$AIDER_VENV/bin/python" -m pip install --quiet --upgrade pip \
     && "$AIDER_VENV/bin/python" -m pip install --quiet "aider-chat==$AIDER_VERSION"; then
    echo "   done in $((SECONDS - t0)) s"
  else
    echo "!! aider-chat==$AIDER_VERSION failed" >&2
    failures+=("aider-chat==$AIDER_VERSION")
  fi
fi

echo
echo "Binaries (the tests look here; set TUNDRA_REAL_AGENTS_DIR to use another dir):"
for b in claude codex gemini opencode; do
  if [ -x "$NPM_PREFIX/node_modules/.bin/$b" ]; then
    echo "  $b: $NPM_PREFIX/node_modules/.bin/$b"
  fi
done
[ -x "$AIDER_VENV/bin/aider" ] && echo "  aider: $AIDER_VENV/bin/aider"
du -sh "$NPM_PREFIX" "$AIDER_VENV" 2>/dev/null | sed 's/^/  size: /' || true

if [ "${#failures[@]}" -gt 0 ]; then
  echo "FAILED: ${failures[*]}" >&2
  exit 1
fi
