# shellcheck shell=bash
# Finds or starts the Postgres server that tests and the local stack use, and exports
# TEST_DATABASE_URL (an admin URL allowed to create databases). In order:
#   1. TEST_DATABASE_URL, or DATABASE_URL, if set;
#   2. a server answering on 127.0.0.1:5432 as user postgres;
#   3. a throwaway cluster made from the local PostgreSQL binaries in a temporary folder
#      (works as root too), stopped and removed when the calling script exits.
# Source it and call `ensure_postgres`. `ensure_postgres own-first` tries 3 before 2: the
# test suite's way, since its stacks need ~55 connections each and a shared server's
# default max_connections (100) runs out when anything else uses it too.

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  dir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

pg_answers() {
  local psql
  psql=$(command -v psql || { local d; d=$(pg_bindir) && echo "$d/psql"; }) || return 1
  [ -x "$psql" ] || return 1
  "$psql" "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}" ] || [ -n "${DATABASE_URL:-}" ]; then
    export TEST_DATABASE_URL=${TEST_DATABASE_URL:-$DATABASE_URL}
    echo "postgres: using $TEST_DATABASE_URL" >&2
    return 0
  fi
  local local_url=postgres://postgres@127.0.0.1:5432/postgres
  local bin
  if [ "${1:-}" = own-first ] && bin=$(pg_bindir); then
    start_throwaway_postgres "$bin"
    return
  fi
  if pg_answers "$local_url"; then
    export TEST_DATABASE_URL=$local_url
    echo "postgres: using the server on 127.0.0.1:5432" >&2
    return 0
  fi
  bin=$(pg_bindir) || {
    echo "postgres: none found. Install PostgreSQL (Debian: apt-get install postgresql)," >&2
    echo "          start one on 127.0.0.1:5432, or set TEST_DATABASE_URL to an admin URL." >&2
    return 1
  }
  start_throwaway_postgres "$bin"
}

# A cluster in a temporary folder, sized for the test suite (max_connections=300), made
# for speed rather than durability (fsync off: nothing in it outlives the run).
start_throwaway_postgres() {
  local bin=$1
  PG_TMP=$(mktemp -d /tmp/shop-pg.XXXXXX)
  chmod 755 "$PG_TMP"
  local port; port=$(free_port)
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_TMP"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >"$PG_TMP/initdb.log" 2>&1 \
    || { echo "postgres: initdb failed, see $PG_TMP/initdb.log" >&2; return 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w start \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off" >/dev/null \
    || { echo "postgres: could not start, see $PG_TMP/server.log" >&2; return 1; }
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -m fast stop)
  trap 'stop_postgres' EXIT
  export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres
  echo "postgres: started a throwaway cluster on 127.0.0.1:$port" >&2
}

stop_postgres() {
  if [ -n "${PG_TMP:-}" ]; then
    "${PG_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}
