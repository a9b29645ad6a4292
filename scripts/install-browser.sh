#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the browser tests (the dashboard and the offline
# report): installed from the system's package registry when missing, never downloaded by a
# test tool. Idempotent: does nothing when both are already there.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
