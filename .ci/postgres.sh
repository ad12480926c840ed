# Start a throw-away PostgreSQL server from Debian's packages for the test suite (sourced by .ci/run).
# Sets DVZA_TEST_POSTGRES_URL. Installs the server package when it is missing.
PG_PORT="${PG_PORT:-55432}"
PG_DATA="${PG_DATA:-/tmp/dvza-ci-pg}"

_pg_as() {  # run a command as the database owner (initdb refuses to run as root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    echo "== installing PostgreSQL from Debian's packages (apt-get; a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q postgresql
  fi
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  rm -rf "$PG_DATA" && mkdir -p "$PG_DATA"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DATA"
  _pg_as "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null
  _pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1" \
    -l "$PG_DATA/server.log" -w start >/dev/null
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE dvza_test" >/dev/null
  export DVZA_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/dvza_test"
  echo "PostgreSQL running on port $PG_PORT"
}

stop_postgres() {
  [ -n "${PG_BIN:-}" ] && _pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
}
