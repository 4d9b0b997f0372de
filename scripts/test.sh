#!/usr/bin/env bash
# Set everything up (Chromium, PostgreSQL, Redis included) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PYTHONDONTWRITEBYTECODE=1
echo "== ruff"; .venv/bin/ruff check sfu confidentiality session_rules web tests bench
echo "== mypy"; .venv/bin/mypy
echo "== hazard log"; .venv/bin/confide hazards check
echo "== pytest"; exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
