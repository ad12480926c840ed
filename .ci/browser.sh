#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/e2e) when it is missing and we may install
# packages (root). Playwright drives this binary (executable_path), so no browser download is needed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is not installed and we are not root: browser tests will be skipped" >&2
  exit 0
fi
echo "== installing Chromium from Debian's packages (apt-get; a minute or two)"
export DEBIAN_FRONTEND=noninteractive
# -q: apt's line-by-line progress without the animated bar, so a CI log shows it is working
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
