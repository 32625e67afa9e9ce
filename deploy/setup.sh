#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, idempotently:
# the Debian packages it runs (SIP server, speech synthesis, audio tools, a SIP client for interop tests,
# a browser for the operator page tests, SIPp as the callers of benchmarks/bench_nodes.py, wrk as the HTTP
# load generator of benchmarks/bench_tickets.py --load wrk) and a virtual
# environment at .venv with the Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(kamailio baresip espeak-ng sox libsox-fmt-all ffmpeg chromium fonts-wqy-microhei sip-tester wrk)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
