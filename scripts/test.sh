#!/usr/bin/env bash
# Set everything up (Chromium, PostgreSQL, Redis included) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PYTHONDONTWRITEBYTECODE=1
echo "== ruff"; .venv/bin/ruff check sfu confidentiality session_rules web tests bench
echo "== mypy"; .venv/bin/mypy
echo "== hazard log"; .venv/bin/confide hazards check
echo "== pytest"
# the suite's JUnit XML becomes the evidence record the service ships and shows the CSO
# (web/safety/shipped/evidence-record.json; build the wheel after this run)
mkdir -p var/test-results
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider --junitxml=var/test-results/junit.xml "$@" \
    || status=$?
echo "== evidence record"
.venv/bin/confide hazards record var/test-results/junit.xml --repo-root . || { [ "$status" != 0 ] || status=2; }
exit "$status"
