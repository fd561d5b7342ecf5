#!/bin/sh
# Runs HAProxy in the foreground on the config the harness supplied.
# Arguments starting with '-' are passed to haproxy; any other command is run
# as is (e.g. `sh` for debugging).
set -eu
cfg=${HAPROXY_CFG:-/usr/local/etc/haproxy/haproxy.cfg}
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  if [ ! -r "$cfg" ]; then
    echo "octoha-haproxy: no config at $cfg; mount or copy one there (or set HAPROXY_CFG)" >&2
    exit 64
  fi
  exec haproxy -db -f "$cfg" "$@"
fi
exec "$@"
