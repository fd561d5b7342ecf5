#!/bin/bash
# Starts smbd in the foreground (no nmbd, no NetBIOS) with one share,
# 'octoha' at /share, for one user taken from the environment:
#   SMB_USER      user name (required)
#   SMB_PASSWORD  its password (required; read here, never printed)
#   SMB_UID/SMB_GID  numeric ids for that user (optional; match a bind mount)
#   SMB_LOG_LEVEL smbd log level (default 1)
# Any other command given to the container is run as is.
set -Eeuo pipefail

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

fail() { echo "octoha-samba: $*" >&2; exit 64; }
[ -n "${SMB_USER:-}" ] || fail "SMB_USER is not set"
[ -n "${SMB_PASSWORD:-}" ] || fail "SMB_PASSWORD is not set"
[[ $SMB_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || fail "SMB_USER must be a lowercase Unix user name"
[ "$SMB_USER" != root ] || fail "SMB_USER must not be root"
case "${SMB_UID:-}${SMB_GID:-}" in *[!0-9]*) fail "SMB_UID and SMB_GID must be numbers" ;; esac

if ! id -u "$SMB_USER" >/dev/null 2>&1; then
  if ! getent group "$SMB_USER" >/dev/null; then
    groupadd ${SMB_GID:+--gid "$SMB_GID"} "$SMB_USER"
  fi
  useradd --no-create-home --home-dir /share --shell /usr/sbin/nologin \
    --gid "$SMB_USER" ${SMB_UID:+--uid "$SMB_UID"} "$SMB_USER"
fi
mkdir -p /share
# Only the top: a bind-mounted share may be large, and force user below
# makes every new file the user's anyway.
chown "$SMB_USER:" /share
chmod 0770 /share

cat >/etc/samba/smb.conf <<CONF
# Written by octoha-samba at container start.
[global]
   server role = standalone server
   workgroup = WORKGROUP
   server string = octoha
   server min protocol = SMB2_02
   disable netbios = yes
   smb ports = 445
   map to guest = never
   restrict anonymous = 2
   passdb backend = tdbsam
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes
   log level = ${SMB_LOG_LEVEL:-1}

[octoha]
   path = /share
   read only = no
   browseable = yes
   valid users = $SMB_USER
   force user = $SMB_USER
   force group = $SMB_USER
   create mask = 0664
   directory mask = 0775
CONF
testparm -s /etc/samba/smb.conf >/dev/null 2>&1 || { testparm -s /etc/samba/smb.conf >&2 || true; fail "invalid generated smb.conf"; }

# The password goes in on stdin, never on a command line.
printf '%s\n%s\n' "$SMB_PASSWORD" "$SMB_PASSWORD" | smbpasswd -s -a "$SMB_USER" >/dev/null
unset SMB_PASSWORD

mkdir -p /run/samba /var/log/samba
echo "octoha-samba: share 'octoha' at /share for user $SMB_USER, smbd on port 445 (SMB2+)"
# A published port accepts connections (docker-proxy) before smbd listens,
# so say when it really does: a log line to wait for. Bounded: 60 s.
(
  for _ in $(seq 600); do
    if awk '$2 ~ /:01BD$/ && $4 == "0A" { found=1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "octoha-samba: smbd is listening on port 445"
      exit 0
    fi
    sleep 0.1
  done
  echo "octoha-samba: smbd is not listening on port 445 after 60s" >&2
) &
exec smbd --foreground --no-process-group --debug-stdout --configfile=/etc/samba/smb.conf "$@"
