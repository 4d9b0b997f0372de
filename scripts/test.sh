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
rm -f var/test-results/*.xml
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider)
status=0
if [ "$#" -gt 0 ]; then
    # a chosen part of the suite, as given
    "${pytest[@]}" --junitxml=var/test-results/junit.xml "$@" || status=$?
else
    # the tests with no real-time media share both cores (three at a time: the outage,
    # failover and reconnect tests among them mostly wait on a clock); then the real-time
    # ones (browsers, live media) run one at a time, each with the machine to itself, so a
    # frame rate or a deadline they check is the product's and not the suite's
    "${pytest[@]}" -n 3 -m "not realtime" --junitxml=var/test-results/junit-shared.xml \
        || status=$?
    "${pytest[@]}" -m realtime --junitxml=var/test-results/junit-realtime.xml || status=$?
fi
echo "== evidence record"
.venv/bin/confide hazards record var/test-results/*.xml --repo-root . || { [ "$status" != 0 ] || status=2; }
exit "$status"
