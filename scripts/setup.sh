#!/usr/bin/env bash
# Set up everything Confide needs on a fresh Debian machine with Python 3.11.
#   scripts/setup.sh          the service (Python venv in .venv; runtime dependencies only)
#   scripts/setup.sh --test   also the test and lint tools, and Debian Chromium, PostgreSQL,
#                             Redis, nginx and coturn for the test suite
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_pkgs=()
if [ "$want_test" = 1 ]; then
    command -v chromium >/dev/null || apt_pkgs+=(chromium chromium-driver)
    command -v redis-server >/dev/null || apt_pkgs+=(redis-server)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_pkgs+=(postgresql)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx)
    # nginx's stream module: the deploy guide routes TURN over TLS on 443 by SNI
    [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || apt_pkgs+=(libnginx-mod-stream)
    command -v turnserver >/dev/null || apt_pkgs+=(coturn)
    # npm fetches axe-core, the accessibility checker the browser tests inject into each page
    command -v npm >/dev/null || apt_pkgs+=(npm)
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "installing Debian packages: ${apt_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# the service needs only its runtime dependencies; the tests add their tools
if [ "$want_test" = 1 ]; then target=".[dev]"; stamp=.venv/.confide-installed-dev
else target="."; stamp=.venv/.confide-installed; fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e "$target"
    touch "$stamp"
fi
if [ "$want_test" = 1 ]; then
    # pinned: a newer axe may add rules, and the tests' bar (no serious or critical finding)
    # should move only when someone chooses to move it
    axe_version=4.10.3
    if ! grep -qs "\"version\": \"$axe_version\"" .node/node_modules/axe-core/package.json; then
        npm install --prefix .node --no-audit --no-fund --no-save --loglevel=error \
            "axe-core@$axe_version" >/dev/null
    fi
fi
