#!/bin/bash
# Initialises $PGDATA on first start and runs PostgreSQL in the foreground,
# following the official postgres image's contract:
#   POSTGRES_PASSWORD  superuser password (required unless
#                      POSTGRES_HOST_AUTH_METHOD=trust; never printed)
#   POSTGRES_USER      superuser name (default postgres)
#   POSTGRES_DB        database created at init (default $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  auth for network clients (default scram-sha-256)
#   /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz  run once after init
# As there, a first start runs a temporary server on the Unix socket only for
# the init steps, so "database system is ready to accept connections" is
# logged twice before the real server (on 0.0.0.0:5432) is up.
set -Eeuo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

log() { echo "octoha-postgres: $*"; }
fail() { echo "octoha-postgres: $*" >&2; exit 64; }

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
[ "$1" = postgres ] || exec "$@"

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    fail "database is uninitialized and POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust, for tests only)"
  fi
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwargs=()
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    # initdb reads the password from a file so it never shows in ps.
    pwfile=$(mktemp)
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    pwargs=(--pwfile="$pwfile")
  fi
  log "initialising $PGDATA for superuser $user, database $db, host auth $auth"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream.
  initdb --username="$user" "${pwargs[@]}" --auth-local=trust --auth-host="$auth" \
    ${POSTGRES_INITDB_ARGS:-} >/dev/null
  [ -z "${pwfile:-}" ] || rm -f "$pwfile"
  {
    echo
    echo "# octoha-postgres: network clients from anywhere, with $auth."
    echo "host all all all $auth"
  } >>"$PGDATA/pg_hba.conf"
  {
    echo
    echo "# octoha-postgres"
    echo "listen_addresses = '*'"
    echo "password_encryption = scram-sha-256"
  } >>"$PGDATA/postgresql.conf"

  # A temporary server on the Unix socket only, for the init steps.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -t 60 start
  psql=(psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$user")
  if [ "$db" != postgres ]; then
    "${psql[@]}" --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db";' >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case $f in
      *.sh)
        log "running $f"
        # shellcheck disable=SC1090 # init scripts are the user's, found at run time.
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
        ;;
      *.sql) log "running $f"; "${psql[@]}" --dbname "$db" -f "$f" >/dev/null ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | "${psql[@]}" --dbname "$db" >/dev/null ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop
  log "init process complete; ready for start up"
fi

exec "$@"
