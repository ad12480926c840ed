#!/usr/bin/env bash
# What the login-adapter tests (tests/login) need besides Python packages:
# * xmlsec1 from Debian's packages: pysaml2 signs and verifies SAML messages with it (DigiD adapter
#   and the local DigiD-like IdP);
# * the npm package oidc-provider (tests/idp/oidc/package-lock.json) for the OpenID Provider the OIDC
#   adapter is tested against; node 20 and npm come with the machine (Debian's nodejs/npm otherwise).
# Installs only what is missing; without root, missing system packages make those tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v xmlsec1 >/dev/null 2>&1 || missing+=(xmlsec1)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "${missing[*]} missing and we are not root: the SAML/OIDC login tests will be skipped" >&2
  fi
fi
if command -v npm >/dev/null 2>&1; then
  lock=tests/idp/oidc/package-lock.json
  stamp=tests/idp/oidc/node_modules/.installed-stamp
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    npm ci --prefix tests/idp/oidc --no-audit --no-fund --loglevel=error
    touch "$stamp"
  fi
fi
