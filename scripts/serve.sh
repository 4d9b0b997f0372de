#!/usr/bin/env bash
# Set everything up and run Confide on its embedded defaults (SQLite under ./var).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/confide serve --demo "$@"
