#!/usr/bin/env bash
# Debian's Chromium and its driver, for tests/test_browser.py. Installed from the system's package
# registry once, here, so that no tool ever downloads a browser at test time.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=$(command -v sudo || true)
$SUDO apt-get install -y chromium chromium-driver \
    || { $SUDO apt-get update && $SUDO apt-get install -y chromium chromium-driver; }
