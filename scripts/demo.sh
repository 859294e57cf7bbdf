#!/usr/bin/env bash
# Installs everything (first run), then runs a spoken conversation end to end in the virtual
# room on the embedded offline stack. Extra arguments go to `voiceloop demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/voiceloop" demo "$@"
