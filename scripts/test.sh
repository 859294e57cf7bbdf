#!/usr/bin/env bash
# Installs everything including test tools (first run), then lint, format and type checks, then
# the test suite.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --test
cd "$ROOT"
# Lint, format and types first: each takes seconds, and a red one says exactly where.
"$ROOT/.venv/bin/ruff" check voiceloop tests scripts
"$ROOT/.venv/bin/ruff" format --check voiceloop tests scripts
"$ROOT/.venv/bin/mypy"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
