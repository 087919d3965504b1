#!/usr/bin/env bash
# Everything crs needs, in .venv next to this repository: `bash scripts/install.sh` for using it,
# `bash scripts/install.sh --test` for its tests too (pytest, ruff, mypy, Selenium and Debian's
# Chromium for the browser test, Ray for the cluster tests). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "--test" ]; then
    extras="[dev,ray]"
elif [ -n "${1:-}" ]; then
    echo "usage: bash scripts/install.sh [--test]" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch is pinned in pyproject.toml to the CPU wheel; the pin must be resolved in this same install.
.venv/bin/pip install --disable-pip-version-check --quiet -e ".${extras}"
if [ -n "$extras" ]; then
    bash scripts/install-browser.sh
fi
echo "crs installed in .venv ($(.venv/bin/crs --version))"
