#!/bin/sh
# Install Debian's headless-capable Chromium for the report HTML test; does nothing when it is there.
# Idempotent: `apt-get update` + `apt-get install -y chromium` only when /usr/bin/chromium is missing.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
test -x /usr/bin/chromium
