#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throwaway PostgreSQL server for the tests (internal/store/pgstore and the multi-instance tests).
#
#   scripts/test-postgres.sh start [DIR]   initdb into DIR (default: a new temporary directory), start the
#                                          server on a unix socket in DIR and on 127.0.0.1 (a free port),
#                                          and print the DSN to use as OV_TEST_POSTGRES_DSN
#   scripts/test-postgres.sh stop DIR|DSN  stop it and remove its directory (DIR, or the DSN's host=)
#
# The unix socket trusts local users (it lives in a 0700 directory); TCP on 127.0.0.1 wants a
# scram-sha-256 password, which the tests use to check password handling. Run as root, the server runs
# as the postgres user (initdb refuses root). Nothing here is fit for production data.
#
#   export OV_TEST_POSTGRES_DSN=$(scripts/test-postgres.sh start)
#   go test ./internal/store/... ./daemon/server/...
#   scripts/test-postgres.sh stop "$OV_TEST_POSTGRES_DSN"
set -euo pipefail

die() { echo "test-postgres: $*" >&2; exit 1; }

pgbin() {
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r | head -1)
  if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  die "initdb not found: apt-get install postgresql"
}

# as_owner CMD...: run CMD as the owner of the cluster (postgres when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:-}
case "$cmd" in
start)
  bin=$(pgbin)
  dir=${2:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ov-pg.XXXXXX")
    # As root, the postgres user must reach the directory: $TMPDIR may be private to root.
    if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
      rmdir "$dir"
      dir=$(mktemp -d /tmp/ov-pg.XXXXXX)
    fi
  fi
  mkdir -p "$dir"
  chmod 0700 "$dir"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user: apt-get install postgresql"
    chown postgres: "$dir"
  fi
  [ -f "$dir/data/PG_VERSION" ] || as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  cat >"$dir/data/pg_hba.conf" <<EOF
local all all              trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
  started=
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 20000))
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c max_connections=200 -c password_encryption=scram-sha-256" \
        start >/dev/null 2>&1; then
      started=1
      break
    fi
  done
  [ -n "$started" ] || { tail -20 "$dir/server.log" >&2 || true; die "pg_ctl start failed"; }
  echo "postgres://postgres@/postgres?host=$dir&port=$port&sslmode=disable"
  ;;
stop)
  dir=${2:-}
  case "$dir" in postgres://* | postgresql://*) dir=$(sed -E 's/.*[?&]host=([^&]*).*/\1/' <<<"$dir") ;; esac
  if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then die "usage: $0 stop DIR|DSN"; fi
  as_owner "$(pgbin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  die "usage: $0 start [DIR] | stop DIR"
  ;;
esac
