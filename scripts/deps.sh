#!/usr/bin/env bash
# Installs the Debian packages octoha's real components need, if they are
# missing and we can: as root, or through passwordless sudo. Otherwise it
# says which parts will fall back to embedded substitutes. Idempotent: it
# only calls apt when something is missing.
set -u
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present ($*)"
  exit 0
fi
echo "deps: missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "deps: not root and no passwordless sudo: cannot install them."
    echo "deps: octoha falls back to embedded parts where it can (in-process load balancer, SQLite, local directory)"
    echo "deps: and skips, saying why, the scenarios that need: ${missing[*]}"
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: no apt-get on this machine; install ${missing[*]} yourself, or octoha will use embedded fallbacks"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || { echo "deps: apt-get update failed"; exit 1; }
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || { echo "deps: apt-get install failed"; exit 1; }
# Debian starts packaged services on install where it can; octoha runs its
# own instances on loopback and needs none of the system ones.
for svc in nginx haproxy caddy smbd nmbd samba-ad-dc postgresql; do
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
# Caddy's unit would otherwise come back at boot and hold :80 and its admin
# port (localhost:2019) on every interface octoha does not own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable caddy >/dev/null 2>&1 || true; fi
echo "deps: installed ${missing[*]}"
