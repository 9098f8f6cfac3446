#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole flow on the embedded default, in a throw-away directory: start ov-server on SQLite, register,
# import examples/demo.env, verify the count, and run a program with its secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
# Not under /tmp: ov refuses secret files below a world-writable directory.
cache=${XDG_CACHE_HOME:-$HOME/.cache}
mkdir -p "$cache"
work=$(mktemp -d "$cache/ov-demo.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Keep the demo's config, state and cache out of the real home directory.
export XDG_CONFIG_HOME=$work/config XDG_STATE_HOME=$work/state XDG_CACHE_HOME=$work/cache
unset OV_SERVER

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "start ov-server on SQLite ($work/ov-server.db)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18443)
"$BIN/ov-server" --listen "127.0.0.1:$port" --db "$work/ov-server.db" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/server.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
cat "$work/server.log"
server=http://127.0.0.1:$port

# The master password comes from a 0600 file here so the demo runs unattended; at a terminal, leave
# --password-file out and ov asks for it with echo off.
install -m 600 /dev/null "$work/password"
printf 'correct horse battery staple demo\n' >"$work/password"

step "1. register"
show "$BIN/ov" auth register --server "$server" --email demo@example.com --password-file "$work/password"

step "2. import the .env"
# A service's .env is 0600 (ov warns about one that every user can read); git keeps examples/demo.env
# as 0644, so the demo imports a 0600 copy.
show install -m 600 examples/demo.env "$work/.env"
show "$BIN/ov" secret import "$work/.env" --app demo --env dev --password-file "$work/password"

step "3. verify"
show "$BIN/ov" secret list --app demo --env dev --password-file "$work/password"

step "4. run a program with its secrets"
show "$BIN/ov" run --app demo --env dev --password-file "$work/password" -- \
  sh -c 'echo "GREETING=$GREETING"; echo "PORT=$PORT"; echo "DATABASE_URL has ${#DATABASE_URL} characters, TLS_KEY has $(printf "%s\n" "$TLS_KEY" | wc -l) lines"'

step "the server holds only ciphertext"
if command -v sqlite3 >/dev/null; then
  sqlite3 "$work/ov-server.db" 'select count(*) || " sealed records" from records;'
fi
if grep -a -q 'hello from the vault' "$work/ov-server.db"* 2>/dev/null; then
  echo "FAIL: a plaintext value is in the server database"; exit 1
fi
echo "no plaintext value found in $work/ov-server.db"
printf '\ndemo finished\n'
