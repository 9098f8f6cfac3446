#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real-systemd harness (`make e2e`): boots Debian 12 with systemd as PID 1 in systemd-nspawn, installs the
# packages with `apt-get install` from a local repository and `ov` with the release tarball's install.sh (into
# /usr/local/bin, where the guide's unit looks for it), and follows the user guide
# (docs/spec/user-guide-migrating-from-dotenv.md, the contract) word for word as the user `deploy`: register,
# import a .env, cut a service over to `ov run` with the guide's own unit text, reboot, retire the .env; then the
# guide's troubleshooting commands, failure drills, D-Bus Lock, sealing the machine key with systemd-creds
# (docs/migrating-from-dotenv.md), an upgrade and a purge.
#
# One line per check (`ok`, `FAIL`), then `N passed, M failed`; exits non-zero on any failure. A check that
# cannot run because an earlier one failed is a FAIL too, never a skip.
#
# Environment: E2E_SKIP_BUILD=1 reuses dist/ (skips `make apt-repo`); E2E_KEEP=1 keeps the work directory
# (overlay upper, logs); E2E_CACHE (default /var/cache/opaquevault-e2e) holds the root filesystem tarball.
#
# shellcheck disable=SC2016  # guide commands are single-quoted on purpose: $USER expands as deploy, inside
# shellcheck disable=SC2015  # `a && b || { echo why; return 1; }` is the check idiom here: any failure explains itself
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
HERE=$REPO/packaging/e2e
GUIDE=$REPO/docs/spec/user-guide-migrating-from-dotenv.md   # the contract: its commands and its unit text
DOCS=$REPO/docs/migrating-from-dotenv.md                     # the long form: the "before" unit, sealed keys
START=$SECONDS

# ---------------------------------------------------------------------------------------------------------------
# Preconditions: without root or systemd-nspawn there is nothing to run; say so plainly and succeed.

if [ "$(id -u)" != 0 ]; then
  echo "skip  1 e2e: needs root (systemd-nspawn, mount, nsenter); run \`sudo make e2e\`"
  echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
missing=()
for t in systemd-nspawn:systemd-container debootstrap:debootstrap nsenter:util-linux zstd:zstd \
         apt-ftparchive:apt-utils dpkg-buildpackage:dpkg-dev dh:debhelper; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "skip  1 e2e: missing ${missing[*]} (apt-get install ${missing[*]})"
  echo "0 passed, 0 failed, 1 skipped"; exit 0
fi

E2E_WORK=$(mktemp -d /var/tmp/opaquevault-e2e.XXXXXX)
E2E_SHARE=$REPO/dist
# shellcheck source=packaging/e2e/lib.sh
. "$HERE/lib.sh"

UPGRADE_PID=''
cleanup() {
  poweroff_container
  overlay_down
  if [ -n "$UPGRADE_PID" ]; then kill "$UPGRADE_PID" 2>/dev/null; wait "$UPGRADE_PID" 2>/dev/null; fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then echo "     kept $E2E_WORK"; else rm -rf "$E2E_WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TIMES=()
timed() { TIMES+=("$1 $((SECONDS - $2))s"); }
# abort REASON: a step everything else depends on failed.
abort() { fail "$*"; note "stopping here: the remaining checks depend on this one"; summary; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# The user guide: every command the harness runs "from the guide" must appear in it, word for word, and every
# command of the guide is run, except the few listed in GUIDE_NOT_RUN with the reason.

# doc_commands FILE: the command lines of FILE's code blocks, with backslash continuations joined, comment lines
# and trailing "# comments" dropped and blanks squeezed; not the migration picture (box-drawing characters) nor
# unit text (```ini blocks, or blocks that start with a [Section] line).
doc_commands() {
  awk '/^ *```/ { inblock = !inblock; skipblk = ($0 ~ /```ini/); first = 1; next }
       inblock && first { first = 0; if ($0 ~ /^ *\[[A-Za-z]+\]/ || $0 ~ /──/) skipblk = 1 }
       inblock && !skipblk { sub(/^ +/, ""); line = line $0
                 if (line ~ /\\$/) { sub(/ *\\$/, " ", line); next }
                 sub(/ +# .*$/, "", line); gsub(/[ \t]+/, " ", line); sub(/ $/, "", line)
                 if (line != "" && line !~ /^#/) print line; line = "" }' "$1"
}
GUIDE_COMMANDS=$(doc_commands "$GUIDE")
DOCS_COMMANDS=$(doc_commands "$DOCS")
declare -A GUIDE_NOT_RUN=(
  ['ov agent start']='the macOS section (an interactive, per-login agent); on Linux it is tested by internal/cli/testdata/script/agent_user.txtar'
)
# The commands run, one per line, in a file: guide() may run in a subshell ($(...)), which an array would not survive.
GUIDE_RAN_FILE=$E2E_WORK/guide-ran
: >"$GUIDE_RAN_FILE"
# guide [-D] [-p PREFIX] [-x EXTRA] 'COMMAND': runs COMMAND from the guide as deploy, in deploy's home; -D takes it
# from docs/migrating-from-dotenv.md instead. PREFIX goes before it (e.g. `timeout`); EXTRA after it, or before
# its first ` -- ` or ` | ` (e.g. --password-file, which the guide says to add in scripts). The output is in
# GUIDE_OUT.
GUIDE_OUT=''
guide() {
  local prefix='' extra='' src=guide cmd run
  while [ $# -gt 1 ]; do
    case $1 in -p) prefix=$2; shift 2 ;; -x) extra=$2; shift 2 ;; -D) src=docs; shift ;; *) break ;; esac
  done
  cmd=$1
  printf '%s\t%s\n' "$src" "$cmd" >>"$GUIDE_RAN_FILE"
  run=$cmd
  if [ -n "$extra" ]; then
    if [[ $cmd == *' -- '* ]]; then run="${cmd%% -- *} $extra -- ${cmd#* -- }"
    elif [[ $cmd == *' | '* ]]; then run="${cmd%% | *} $extra | ${cmd#* | }"
    else run="$cmd $extra"; fi
  fi
  [ -n "$prefix" ] && run="$prefix $run"
  log "guide: $run"
  GUIDE_OUT=$(as_user deploy "$run" 2>&1)
  local rc=$?
  printf '%s\n' "$GUIDE_OUT" >>"$E2E_WORK/harness.log"
  return $rc
}
# doc_unit N: the Nth ```ini block of docs/migrating-from-dotenv.md (1: the unit before, 3: sealed key).
doc_unit() { awk -v n="$1" '/^```ini/ { k++; inb = (k == n); next } /^```/ { inb = 0 } inb' "$DOCS"; }
# guide_unit: the unit after the guide's §4, made the way the guide says: the unit before (doc_unit 1) with its
# ExecStart= replaced by the guide's own [Service] text (kept as written, continuation lines and all) and its
# EnvironmentFile= line deleted ("# ← delete this line").
guide_unit() {
  local frag
  frag=$(awk '/^```/ { if (inb) exit; getline; if ($0 ~ /^\[Service\]$/) inb = 1; next } inb && /^ExecStart=/ { take = 1 }
              inb && take { print; if ($0 !~ /\\$/) take = 0 }' "$GUIDE")
  [ -n "$frag" ] || return 1
  doc_unit 1 | awk -v frag="$frag" '/^ExecStart=/ { print frag; next } /^EnvironmentFile=/ { next } { print }'
}

# ---------------------------------------------------------------------------------------------------------------
# What myapp must see: the values of fixtures/env.production as dotenv (and systemd) read them.

declare -A EXPECT=(
  [NODE_ENV]='production'
  [PORT]='8080'
  [DATABASE_URL]='postgres://myapp:Zq7$kP2!x@db.internal:5432/myapp?sslmode=require'
  [STRIPE_SECRET_KEY]='sk_live_51Hx9Tq2eZvKYlo2C0000000000000000000000'
  [SMTP_PASSWORD]='pa$$w0rd with spaces & a $HOME'
  [SESSION_SECRET]='correct horse # battery staple'
  [GREETING]='say "hello" to the vault'
  [TLS_PRIVATE_KEY]='-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ
-----END PRIVATE KEY-----'
)
ALL_NAMES=(NODE_ENV PORT DATABASE_URL STRIPE_SECRET_KEY SMTP_PASSWORD SESSION_SECRET GREETING TLS_PRIVATE_KEY)
CUT_NAMES=(DATABASE_URL STRIPE_SECRET_KEY)            # what the guide's --secrets passes
SEEN=/home/deploy/.myapp-env                           # written by fixtures/myapp-server at every start

# env_is DUMP [-only] NAMES...: the NUL-separated environment DUMP (a host path) has exactly EXPECT's value for
# every NAME; with -only, no other name of ALL_NAMES. Prints what differs (names and lengths, never values).
env_is() {
  local dump=$1 only=0 kv name bad=() ; shift
  [ "${1:-}" = -only ] && { only=1; shift; }
  [ -s "$dump" ] || { echo "no environment recorded at ${dump#"$E2E_WORK/root"}"; return 1; }
  declare -A got=()
  while IFS= read -r -d '' kv; do got[${kv%%=*}]=${kv#*=}; done <"$dump"
  for name in "$@"; do
    if [ -z "${got[$name]+x}" ]; then bad+=("$name missing")
    elif [ "${got[$name]}" != "${EXPECT[$name]}" ]; then bad+=("$name differs (${#got[$name]} bytes, want ${#EXPECT[$name]})"); fi
  done
  if [ $only = 1 ]; then
    for name in "${ALL_NAMES[@]}"; do
      [[ " $* " == *" $name "* ]] || [ -z "${got[$name]+x}" ] || bad+=("$name present")
    done
  fi
  [ ${#bad[@]} -eq 0 ] || { echo "${bad[*]}"; return 1; }
}

# wait_for SECONDS CMD...: retries CMD until it succeeds.
wait_for() {
  local i n=$(($1 * 5)); shift
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  "$@"
}
# restart_myapp: starts myapp afresh and waits for it to record its environment.
fresh_seen() { rm -f "$(cpath "$SEEN")"; }
seen_written() { [ -s "$(cpath "$SEEN")" ]; }
active() { [ "$(ct systemctl is-active "$1" 2>/dev/null)" = active ]; }
jgrep() { local unit=$1; shift; ct journalctl -u "$unit" --no-pager -o cat "$@" 2>/dev/null; }
# http_get PATH: a plain HTTP GET to ov-server's socket from inside the container, with bash only. The request
# goes out in one write, and a server that answers and closes early (TLS) does not kill the writer.
http_get() {
  ct bash -c 'trap "" PIPE; exec 3<>/dev/tcp/127.0.0.1/8443 || exit 1
    printf -v req "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" "$1"; printf "%s" "$req" >&3 2>/dev/null
    timeout 10 cat <&3' bash "$1"
}
echo "== e2e: $(date -u +%FT%TZ), work in $E2E_WORK"

# ---------------------------------------------------------------------------------------------------------------
# Packages, the local apt repository, the root filesystem, the boot.

t=$SECONDS
if [ "${E2E_SKIP_BUILD:-0}" != 1 ]; then
  make -s apt-repo tarball >"$E2E_WORK/build.log" 2>&1 || abort "make apt-repo tarball: $(tail -n 3 "$E2E_WORK/build.log" | tr '\n' ' ')"
fi
ls dist/apt-repo/opaquevault_*.deb dist/apt-repo/opaquevault-server_*.deb >/dev/null 2>&1 ||
  abort "make apt-repo: no opaquevault and opaquevault-server .debs in dist/apt-repo"
debs=(dist/apt-repo/opaquevault_*.deb)
VERSION=$(dpkg-deb -f "${debs[0]}" Version)
ls dist/tarball/opaquevault-"$VERSION"-linux-*.tar.gz >/dev/null 2>&1 || abort "make tarball: no dist/tarball/opaquevault-$VERSION-linux-*.tar.gz"
ok "make apt-repo tarball: opaquevault $VERSION .debs, a local apt repository in dist/apt-repo, the release tarball"
timed build $t

# The upgrade (same tree, version +e2e1) builds in the background while the first version is tested.
UPGRADE_VERSION=$VERSION+e2e1
(packaging/build-deb.sh dist/e2e/upgrade-deb "$UPGRADE_VERSION" &&
 packaging/apt-repo.sh dist/e2e/upgrade-deb dist/e2e/upgrade-repo) >"$E2E_WORK/upgrade-build.log" 2>&1 &
UPGRADE_PID=$!

t=$SECONDS
rootfs_lower || abort "root filesystem: debootstrap failed (see $E2E_WORK/debootstrap.log)"
ok "root filesystem: Debian $E2E_SUITE with $E2E_PACKAGES (cache $E2E_ROOTFS_CACHE, $((SECONDS - t)) s)"
timed "rootfs(cache-$E2E_ROOTFS_CACHE)" $t

t=$SECONDS
overlay_up "$E2E_LOWER" || abort "mount the overlay on $E2E_LOWER"
boot || abort "boot systemd in systemd-nspawn: $(tail -n 3 "$E2E_WORK/nspawn.log" | tr '\n' ' ')"
BOOT_ID=$(ct cat /proc/sys/kernel/random/boot_id)
ok "boot: systemd $(ct systemctl --version | awk 'NR==1 {print $2}') is PID 1, $(ct systemctl is-system-running) in $((SECONDS - t)) s"
timed boot $t

# ---------------------------------------------------------------------------------------------------------------
# 1. apt install from the local repository.

t=$SECONDS
# The signed repository, as the docs say to add it: the archive key in /usr/share/keyrings, signed-by= (no
# [trusted=yes]); apt-get update fails on a bad or missing signature.
KEYRING=/usr/share/keyrings/opaquevault-archive-keyring.gpg
install -m 0644 dist/apt-repo/opaquevault-archive-keyring.gpg "$(cpath $KEYRING)"
echo "deb [signed-by=$KEYRING] file:/share/apt-repo ./" >"$(cpath /etc/apt/sources.list.d/opaquevault.list)"
if out=$(ct apt-get update 2>&1 && ct env DEBIAN_FRONTEND=noninteractive apt-get install -y opaquevault opaquevault-server 2>&1) &&
   ! grep -qiE 'not signed|NO_PUBKEY|insecure|unauthenticated' <<<"$out"; then
  ok "apt-get install opaquevault opaquevault-server (from the signed file:/share/apt-repo, signed-by=, $((SECONDS - t)) s)"
else
  printf '%s\n' "$out" >>"$E2E_WORK/harness.log"
  abort "apt-get install opaquevault opaquevault-server: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

# A repository whose Packages index was changed after signing is refused by apt (the signature is what protects).
tampered_refused() {
  local out
  rm -rf dist/e2e/tampered && cp -a dist/apt-repo dist/e2e/tampered && echo "# tampered" >>dist/e2e/tampered/Packages || return 1
  echo "deb [signed-by=$KEYRING] file:/share/e2e/tampered ./" >"$(cpath /etc/apt/sources.list.d/tampered.list)"
  out=$(ct apt-get update 2>&1)
  rm -f "$(cpath /etc/apt/sources.list.d/tampered.list)"; ct apt-get update >/dev/null 2>&1
  grep -qE 'Hash Sum mismatch|does not match|File has unexpected size|Mirror sync in progress' <<<"$out" ||
    { echo "apt-get update accepted a tampered Packages: $(tail -n 2 <<<"$out" | tr '\n' ' ')"; return 1; }
}
check "a tampered copy of the signed repository (Packages edited after signing) is refused by apt-get update" -- tampered_refused

installed_files() {
  local f bad=()
  for f in /usr/bin/ov /usr/bin/ov-mcp /usr/bin/ov-server /usr/share/man/man1/ov.1.gz /usr/share/man/man1/ov-server.1.gz \
           /usr/share/bash-completion/completions/ov /usr/share/zsh/vendor-completions/_ov \
           /usr/share/fish/vendor_completions.d/ov.fish /usr/share/polkit-1/actions/com.opaquevault.policy \
           /usr/lib/tmpfiles.d/opaquevault.conf /usr/lib/sysusers.d/opaquevault-server.conf \
           /lib/systemd/system/ov-server.service /lib/systemd/system/ov-server.socket \
           /usr/share/doc/opaquevault/migrating-from-dotenv.md /usr/share/doc/opaquevault-server/self-hosting.md; do
    ct test -e "$f" || bad+=("$f missing")
  done
  [ "$(ct stat -c '%U:%G %a' /etc/ov 2>&1)" = "root:root 755" ] || bad+=("/etc/ov is $(ct stat -c '%U:%G %a' /etc/ov 2>&1)")
  ct getent passwd ov-server >/dev/null || bad+=("no ov-server user")
  ct getent group opaquevault >/dev/null || bad+=("no opaquevault group")
  [ "$(ct /usr/bin/ov --version)" = "ov $VERSION" ] || bad+=("ov --version: $(ct /usr/bin/ov --version 2>&1)")
  [ ${#bad[@]} -eq 0 ] || { echo "${bad[*]}"; return 1; }
}
check "installed: ov, ov-server, units, man pages, completions, polkit actions, /etc/ov root:root 0755, ov-server user" -- installed_files

# The install the guide's unit assumes (ExecStart=/usr/local/bin/ov): the release tarball's install.sh.
tarball_install() {
  local tb; tb=$(cd dist/tarball && ls opaquevault-"$VERSION"-linux-*.tar.gz)
  ct tar -xzf "/share/tarball/$tb" -C /root && ct sh -c "/root/${tb%.tar.gz}/install.sh" || return 1
  [ "$(ct /usr/local/bin/ov --version)" = "ov $VERSION" ] || { echo "/usr/local/bin/ov --version: $(ct /usr/local/bin/ov --version 2>&1)"; return 1; }
  [ "$(ct stat -c '%U:%G %a' /usr/local/bin/ov)" = "root:root 755" ] || { echo "/usr/local/bin/ov is $(ct stat -c '%U:%G %a' /usr/local/bin/ov)"; return 1; }
  [ "$(ct sh -c 'command -v ov')" = /usr/local/bin/ov ] || { echo "ov on PATH is $(ct sh -c 'command -v ov'), not /usr/local/bin/ov"; return 1; }
  [ "$(ct stat -c '%U:%G %a' /etc/ov 2>&1)" = "root:root 755" ] || { echo "/etc/ov is $(ct stat -c '%U:%G %a' /etc/ov 2>&1)"; return 1; }
}
check "release tarball: sudo ./install.sh puts ov $VERSION in /usr/local/bin (root:root 0755), first on PATH" -- tarball_install

# ---------------------------------------------------------------------------------------------------------------
# 2. ov-server from its units: socket-activated, ready, healthy, reloadable, verified, rated.

socket_waiting() {
  [ "$(ct systemctl is-enabled ov-server.socket)" = enabled ] || { echo "ov-server.socket not enabled"; return 1; }
  active ov-server.socket || { echo "ov-server.socket not active"; return 1; }
  ! active ov-server.service || { echo "ov-server.service already running before any connection"; return 1; }
}
check "ov-server.socket enabled and listening on 127.0.0.1:8443; ov-server.service not started yet" -- socket_waiting

first_connect() {
  local r
  r=$(http_get /healthz) || { echo "no answer on 127.0.0.1:8443"; return 1; }
  [[ $r == "HTTP/1.1 200"* ]] || { echo "GET /healthz: ${r%%$'\r'*}"; return 1; }
  active ov-server.service || { echo "ov-server.service is $(ct systemctl is-active ov-server.service)"; return 1; }
  jgrep ov-server.service -b | grep -q 'ov-server: listening on http://127.0.0.1:8443 (db /var/lib/ov-server/ov-server.db)' ||
    { echo "no startup line in journalctl -u ov-server"; return 1; }
  [ "$(ct systemctl show -p StatusText --value ov-server.service)" = serving ] || { echo "StatusText is not 'serving'"; return 1; }
  r=$(http_get /metrics)
  [[ $r == "HTTP/1.1 404"* ]] || { echo "GET /metrics on the API listener: ${r%%$'\r'*} (want 404: metrics only on --metrics-listen)"; return 1; }
  [ "$(ct stat -c '%U %a' /var/lib/ov-server/ov-server.db)" = "ov-server 600" ] ||
    { echo "database is $(ct stat -c '%U %a' /var/lib/ov-server/ov-server.db 2>&1)"; return 1; }
}
check "first connection starts ov-server (Type=notify, STATUS=serving); GET /healthz 200, /metrics 404 on the API listener; journal has its listening line; db ov-server 0600" -- first_connect

# Reload without TLS: the process survives SIGHUP and keeps serving. (What a reload does to the certificate is
# checked through TLS handshakes below, for the setup that renews by reload.)
reload_server() {
  local pid r; pid=$(ct systemctl show -p MainPID --value ov-server.service)
  ct systemctl reload ov-server.service || return 1
  active ov-server.service || { echo "ov-server.service is $(ct systemctl is-active ov-server.service) after reload"; return 1; }
  [ "$(ct systemctl show -p MainPID --value ov-server.service)" = "$pid" ] || { echo "MainPID changed on reload"; return 1; }
  r=$(http_get /healthz)
  [[ $r == "HTTP/1.1 200"* ]] || { echo "GET /healthz after reload: ${r%%$'\r'*}"; return 1; }
}
check "systemctl reload ov-server without TLS (SIGHUP): same PID, still active, /healthz 200" -- reload_server

verify_units() { # verify_units UNIT...: systemd-analyze verify exits 0 and prints nothing (no man-db inside: --man=no)
  local out rc=0; out=$(ct systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
  [ $rc -eq 0 ] && [ -z "$out" ] || { echo "$out"; echo "systemd-analyze verify: exit $rc"; return 1; }
}
check "systemd-analyze verify ov-server.service ov-server.socket: clean" -- verify_units ov-server.service ov-server.socket
SECURITY_SERVER=$(ct systemd-analyze security ov-server.service 2>/dev/null | tail -n 1)
note "systemd-analyze security ov-server.service: ${SECURITY_SERVER:-n/a}"

# TLS as self-hosting.md says: the packaged example drop-in, certificate and key through LoadCredential=.
TLS_DROPIN=/etc/systemd/system/ov-server.service.d
server_tls() {
  local pid r want got
  new_cert "$E2E_WORK/tls" || return 1
  install -d -m 0700 "$(cpath /etc/ov-server)"
  install -m 0600 "$E2E_WORK/tls.crt" "$E2E_WORK/tls.key" "$(cpath /etc/ov-server)/"
  install -d "$(cpath $TLS_DROPIN)"
  ct cp /usr/share/doc/opaquevault-server/examples/ov-server.conf $TLS_DROPIN/override.conf || return 1
  ct systemctl daemon-reload && ct systemctl restart ov-server.service || { jgrep ov-server.service -n 5; return 1; }
  pid=$(ct systemctl show -p MainPID --value ov-server.service)
  wait_for 5 eval "jgrep ov-server.service -b _PID=$pid | grep -q '^ov-server: listening on https://127.0.0.1:8443 '" ||
    { echo "not serving HTTPS: $(jgrep ov-server.service -b _PID="$pid" | tail -n 2)"; return 1; }
  # A plain HTTP request to the TLS socket: "HTTP/1.0 400 ... Client sent an HTTP request to an HTTPS server."
  r=$(http_get /healthz)
  [[ $r == "HTTP/1.0 400"*"HTTPS server"* ]] || { echo "plain HTTP got: ${r%%$'\r'*}"; return 1; }
  # The certificate served is the one installed, by its fingerprint, through a real TLS handshake.
  want=$(openssl x509 -in "$E2E_WORK/tls.crt" -noout -fingerprint -sha256)
  got=$(served_fingerprint)
  [ -n "$got" ] && [ "$got" = "$want" ] || { echo "served certificate ${got:-none}, want $want"; return 1; }
  # TLS 1.3 only: a client that offers at most TLS 1.2 gets no session.
  if nsenter -t "$CPID" -n -- openssl s_client -tls1_2 -connect 127.0.0.1:8443 -servername localhost </dev/null >/dev/null 2>&1; then
    echo "a TLS 1.2 client got a session"; return 1
  fi
  # A renewal, as self-hosting.md says: new files, then `systemctl restart` (LoadCredential= copies them at
  # start; the socket keeps the port open meanwhile). First the page's warning: a reload re-reads the copies
  # systemd made at start, so the old certificate is still served afterwards.
  local old=$want
  new_cert "$E2E_WORK/tls2" || return 1
  install -m 0600 "$E2E_WORK/tls2.crt" "$(cpath /etc/ov-server)/tls.crt" && install -m 0600 "$E2E_WORK/tls2.key" "$(cpath /etc/ov-server)/tls.key"
  want=$(openssl x509 -in "$E2E_WORK/tls2.crt" -noout -fingerprint -sha256)
  ct systemctl reload ov-server.service || return 1
  wait_for 10 eval "jgrep ov-server.service -b _PID=$pid | grep -q 'reloaded TLS certificate'" ||
    { echo "no 'reloaded TLS certificate' after systemctl reload: $(jgrep ov-server.service -b _PID="$pid" | tail -n 2)"; return 1; }
  got=$(served_fingerprint)
  [ "$got" = "$old" ] || { echo "after reload with LoadCredential=: served ${got:-none}, want the old $old (self-hosting.md says a restart is needed)"; return 1; }
  ct systemctl restart ov-server.service || return 1
  wait_for 10 eval '[ "$(served_fingerprint)" = "$want" ]' || { echo "after restart: served $(served_fingerprint), want $want"; return 1; }
}
# new_cert PREFIX: a fresh self-signed P-256 certificate for 127.0.0.1 in PREFIX.crt and PREFIX.key.
new_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
# served_fingerprint: the SHA-256 fingerprint of the certificate ov-server presents on 127.0.0.1:8443, from a TLS
# handshake made in the container's network namespace with the host's openssl.
served_fingerprint() {
  nsenter -t "$CPID" -n -- openssl s_client -connect 127.0.0.1:8443 -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
# The renewal by reload of self-hosting.md ("Renewing the certificate"): --tls-cert/--tls-key files in
# /etc/ssl/ov-server that the ov-server user can read; new files + `systemctl reload` serve the new certificate
# from the same process; a broken renewal (a certificate without its key) is logged and the old one kept.
TLS_FLAGS_DIR=/etc/ssl/ov-server
install_tls_files() { # install_tls_files PREFIX: PREFIX.crt 0644 and PREFIX.key 0640 root:ov-server into TLS_FLAGS_DIR
  install -m 0644 "$1.crt" "$(cpath $TLS_FLAGS_DIR)/tls.crt" && install -m 0640 "$1.key" "$(cpath $TLS_FLAGS_DIR)/tls.key" &&
    ct chgrp ov-server $TLS_FLAGS_DIR/tls.key
}
server_tls_reload() {
  local pid want got old
  new_cert "$E2E_WORK/tls3" && new_cert "$E2E_WORK/tls4" && new_cert "$E2E_WORK/tls5" && install -d "$(cpath $TLS_DROPIN)" || return 1
  install -d -m 0750 "$(cpath $TLS_FLAGS_DIR)" && ct chgrp ov-server $TLS_FLAGS_DIR && install_tls_files "$E2E_WORK/tls3" || return 1
  printf '[Service]\nExecStart=\nExecStart=/usr/bin/ov-server --tls-cert %s/tls.crt --tls-key %s/tls.key\n' \
    $TLS_FLAGS_DIR $TLS_FLAGS_DIR >"$(cpath $TLS_DROPIN)/override.conf"
  ct systemctl daemon-reload && ct systemctl restart ov-server.service || { jgrep ov-server.service -b -n 5; return 1; }
  pid=$(ct systemctl show -p MainPID --value ov-server.service)
  wait_for 5 eval "jgrep ov-server.service -b _PID=$pid | grep -q '^ov-server: listening on https://127.0.0.1:8443 '" ||
    { echo "not serving HTTPS from the flags: $(jgrep ov-server.service -b _PID="$pid" | tail -n 2)"; return 1; }
  want=$(openssl x509 -in "$E2E_WORK/tls3.crt" -noout -fingerprint -sha256)
  got=$(served_fingerprint)
  [ -n "$got" ] && [ "$got" = "$want" ] || { echo "before reload: served ${got:-none}, want $want"; return 1; }
  # The renewal: new files, then reload. Same process, new certificate in the next handshake.
  install_tls_files "$E2E_WORK/tls4" || return 1
  old=$want want=$(openssl x509 -in "$E2E_WORK/tls4.crt" -noout -fingerprint -sha256)
  [ "$old" != "$want" ] || { echo "two fresh certificates have one fingerprint"; return 1; }
  ct systemctl reload ov-server.service || return 1
  wait_for 10 eval "jgrep ov-server.service -b _PID=$pid | grep -q 'reloaded TLS certificate'" ||
    { echo "no 'reloaded TLS certificate' after systemctl reload: $(jgrep ov-server.service -b _PID="$pid" | tail -n 2)"; return 1; }
  got=$(served_fingerprint)
  [ "$got" = "$want" ] || { echo "after reload: served ${got:-none}, want the renewed $want"; return 1; }
  [ "$(ct systemctl show -p MainPID --value ov-server.service)" = "$pid" ] && active ov-server.service ||
    { echo "reload did not keep the process: MainPID $(ct systemctl show -p MainPID --value ov-server.service), was $pid"; return 1; }
  # A broken renewal: a new certificate whose key is not there. The old certificate stays, and the journal says why.
  install -m 0644 "$E2E_WORK/tls5.crt" "$(cpath $TLS_FLAGS_DIR)/tls.crt" || return 1
  ct systemctl reload ov-server.service || return 1
  wait_for 10 eval "jgrep ov-server.service -b _PID=$pid | grep 'reload TLS certificate; keeping the old one' | grep -q 'private key does not match public key'" ||
    { echo "no error for a certificate without its key: $(jgrep ov-server.service -b _PID="$pid" | tail -n 2)"; return 1; }
  got=$(served_fingerprint)
  [ "$got" = "$want" ] || { echo "after a broken renewal: served ${got:-none}, want the previous $want kept"; return 1; }
  active ov-server.service || { echo "ov-server.service is $(ct systemctl is-active ov-server.service) after a broken renewal"; return 1; }
}
# Back to the packaged unit (plain HTTP on loopback) for the rest of the run, whatever happened above.
server_plain() {
  ct rm -rf $TLS_DROPIN /etc/ov-server $TLS_FLAGS_DIR && ct systemctl daemon-reload && ct systemctl restart ov-server.service &&
    wait_for 5 eval 'http_get /healthz | grep -q "^HTTP/1.1 200"'
}
check "TLS (self-hosting.md): example drop-in, LoadCredential=tls.crt/tls.key: serves https://127.0.0.1:8443 with that certificate, TLS 1.3 only; after a renewal a reload still serves the old one and a restart serves the new one (fingerprints through real handshakes)" -- server_tls
check "TLS renewal by reload (self-hosting.md): --tls-cert/--tls-key in /etc/ssl/ov-server; new files + systemctl reload: same PID, the new certificate in the next handshake; a certificate without its key: error in the journal, the old one kept" -- server_tls_reload
check "back to the packaged unit: plain HTTP on 127.0.0.1:8443 again" -- server_plain

# ---------------------------------------------------------------------------------------------------------------
# 3. The user guide, as the user deploy, against this ov-server.

setup_deploy() {
  ct useradd -m -s /bin/bash deploy && ct useradd -m -s /bin/bash intruder || return 1
  echo 'deploy ALL=(ALL) NOPASSWD: ALL' >"$(cpath /etc/sudoers.d/deploy)" && chmod 0440 "$(cpath /etc/sudoers.d/deploy)"
  # The master password has a "$" in it, as real ones do; ov reads it from a 0600 file (--password-file).
  as_user deploy 'install -m 600 /dev/null ~/.ov-password && printf "%s\n" "deploy-pa\$\$word with spaces" >~/.ov-password'
  as_user deploy 'ov auth register --server http://127.0.0.1:8443 --email deploy@example.com --password-file ~/.ov-password --emergency-kit ~/emergency-kit.txt'
}
check "user deploy registers an account: ov auth register --server http://127.0.0.1:8443 --email deploy@example.com" -- setup_deploy

# myapp as it runs before the migration: the guide's first unit, EnvironmentFile= and the .env.
install_myapp() {
  install -D -m 0755 "$HERE/fixtures/myapp-server" "$(cpath /opt/myapp/bin/server)"
  install -m 0600 "$HERE/fixtures/env.production" "$(cpath /opt/myapp/.env.production)"
  ct chown deploy:deploy /opt/myapp/.env.production
  doc_unit 1 >"$(cpath /etc/systemd/system/myapp.service)"
  grep -q '^EnvironmentFile=/opt/myapp/.env.production$' "$(cpath /etc/systemd/system/myapp.service)" ||
    { echo "the guide's first unit has no EnvironmentFile="; return 1; }
  fresh_seen
  ct systemctl daemon-reload && ct systemctl enable --now myapp.service >/dev/null 2>&1 || return 1
  wait_for 10 seen_written
  env_is "$(cpath "$SEEN")" "${ALL_NAMES[@]}"
}
check "myapp.service (the guide's unit, EnvironmentFile=) sees every value of .env.production exactly" -- install_myapp

# §1 Import
PWF='--password-file ~/.ov-password'
if guide -x "$PWF" 'ov secret import /opt/myapp/.env.production --app myapp --env production' &&
   grep -q "^Imported ${#ALL_NAMES[@]}/${#ALL_NAMES[@]} secret(s) into myapp/production$" <<<"$GUIDE_OUT"; then
  ok "§1 ov secret import /opt/myapp/.env.production --app myapp --env production: Imported ${#ALL_NAMES[@]}/${#ALL_NAMES[@]}"
else
  fail "§1 ov secret import: $(tail -n 2 <<<"$GUIDE_OUT" | tr '\n' ' ')"
fi

# §2 Verify
list_matches() {
  local n missing=()
  for n in "${ALL_NAMES[@]}"; do grep -q "^$n " <<<"$GUIDE_OUT" || missing+=("$n"); done
  grep -q "^${#ALL_NAMES[@]} secret(s) in myapp/production" <<<"$GUIDE_OUT" && [ ${#missing[@]} -eq 0 ]
}
if guide -x "$PWF" 'ov secret list --app myapp --env production' && list_matches; then
  ok "§2 ov secret list --app myapp --env production: ${#ALL_NAMES[@]} names, matching the import"
else
  fail "§2 ov secret list: $(tail -n 2 <<<"$GUIDE_OUT" | tr '\n' ' ')"
fi

run_all_exact() {
  rm -f "$(cpath /home/deploy/run.env)"
  as_user deploy "ov run --app myapp --env production $PWF -- sh -c 'env -0 >~/run.env'" || return 1
  env_is "$(cpath /home/deploy/run.env)" "${ALL_NAMES[@]}"
}
check "ov run --app myapp --env production -- CMD (password): CMD gets the same values EnvironmentFile= gave" -- run_all_exact

# §3 Setup: machine key and agent.
KEY_OK=0 AGENT_OK=0
if guide 'sudo install -d -o $USER -g $USER -m 700 /etc/ov' &&
   [ "$(ct stat -c '%U:%G %a' /etc/ov)" = "deploy:deploy 700" ] &&
   guide -x "$PWF" 'ov auth derive-machine-key --out /etc/ov/myapp.key' &&
   [ "$(ct stat -c '%U:%G %a %s' /etc/ov/myapp.key)" = "deploy:deploy 600 32" ]; then
  KEY_OK=1
  ok "§3 sudo install -d -o \$USER ... /etc/ov; ov auth derive-machine-key --out /etc/ov/myapp.key: deploy:deploy 0600, 32 bytes"
else
  fail "§3 machine key: $(tail -n 2 <<<"$GUIDE_OUT" | tr '\n' ' ') ($(ct stat -c '%U:%G %a %s' /etc/ov /etc/ov/myapp.key 2>&1 | tr '\n' ' '))"
fi

final_state() {
  local want got bad=()
  for want in "/etc/ov root:root 755" "/etc/ov/agent.socket root:root 644" "/etc/ov/myapp.key deploy:deploy 600"; do
    got="${want%% *} $(ct stat -c '%U:%G %a' "${want%% *}" 2>&1)"
    [ "$got" = "$want" ] || bad+=("$got, want ${want#* }")
  done
  [ ${#bad[@]} -eq 0 ] || { echo "${bad[*]}"; return 1; }
}
if [ $KEY_OK = 0 ]; then
  fail "§3 sudo ov agent install ... --enable: not run, the machine key step failed"
else
  if guide 'sudo ov agent install --machine-key /etc/ov/myapp.key --app myapp --env production --user $USER --enable'; then
    AGENT_OK=1
    ok "§3 sudo ov agent install --machine-key /etc/ov/myapp.key --app myapp --env production --user \$USER --enable"
    check "§3 final state: /etc/ov root:root 0755, /etc/ov/agent.socket root:root 0644, /etc/ov/myapp.key deploy:deploy 0600" -- final_state
  else
    fail "§3 ov agent install: $(tail -n 2 <<<"$GUIDE_OUT" | tr '\n' ' ')"
  fi
fi

agent_socket() {
  [ "$(ct systemctl is-enabled ov-agent.socket)" = enabled ] && active ov-agent.socket || { echo "ov-agent.socket not enabled and listening"; return 1; }
  # The guide: --enable runs `systemctl daemon-reload && systemctl enable --now ov-agent`.
  [ "$(ct systemctl is-enabled ov-agent.service)" = enabled ] || { echo "ov-agent.service is $(ct systemctl is-enabled ov-agent.service)"; return 1; }
  active ov-agent.service || { echo "ov-agent.service is $(ct systemctl is-active ov-agent.service)"; return 1; }
  guide -D 'systemctl status ov-agent.socket' && verify_units ov-agent.service ov-agent.socket
}
agent_activation() {
  as_user deploy 'ov agent status' || return 1
  wait_for 10 active ov-agent.service || { echo "ov-agent.service did not start"; return 1; }
  jgrep ov-agent.service -b | grep -q 'agent ready' || { echo "no 'agent ready' in journalctl -u ov-agent -b"; return 1; }
  guide -D 'busctl introspect com.opaquevault.Agent1 /com/opaquevault/Agent1' || { echo "$GUIDE_OUT"; return 1; }
  grep -E -q '^\.(Status|Lock|Reload) +method' <<<"$GUIDE_OUT" || { echo "no Status/Lock/Reload methods: $GUIDE_OUT"; return 1; }
}
# busctl_lock USER: USER calls Lock on the agent over the system bus; the output is in LOCK_OUT.
LOCK_OUT=''
busctl_lock() { LOCK_OUT=$(as_user "$1" 'busctl call com.opaquevault.Agent1 /com/opaquevault/Agent1 com.opaquevault.Agent1 Lock' 2>&1); }
agent_state() { as_user deploy 'ov agent status --json' 2>&1 | grep -oE '"state": *"[a-z]+"' | sed -E 's/.*"([a-z]+)"$/state=\1/'; }
dbus_lock() {
  local uid
  uid=$(ct id -u intruder)
  # Another user: the D-Bus error AccessDenied (not a missing binary or agent), logged with its uid; still unlocked.
  if busctl_lock intruder; then echo "intruder could call Lock"; return 1; fi
  grep -q 'Access denied' <<<"$LOCK_OUT" || { echo "intruder's Lock failed, but not with AccessDenied: $LOCK_OUT"; return 1; }
  ct journalctl -b -u ov-agent.service -o verbose --no-pager OV_PEER_UID="$uid" 2>/dev/null | grep -q 'MESSAGE=D-Bus call denied' ||
    { echo "no 'D-Bus call denied' for uid $uid in journalctl -u ov-agent -b"; return 1; }
  [ "$(agent_state)" = state=unlocked ] || { echo "after the intruder's Lock: $(agent_state)"; return 1; }
  # The agent's own user, then root: locked; `systemctl reload ov-agent` re-reads the key and unlocks it.
  local who
  for who in deploy root; do
    busctl_lock "$who" || { echo "$who: Lock: $LOCK_OUT"; return 1; }
    [ "$(agent_state)" = state=locked ] || { echo "after $who's Lock: $(agent_state)"; return 1; }
    ct systemctl reload ov-agent.service && wait_for 10 eval '[ "$(agent_state)" = state=unlocked ]' ||
      { echo "systemctl reload ov-agent did not unlock it: $(agent_state)"; return 1; }
  done
}
AGENT_SECURITY=''
if [ $AGENT_OK = 1 ]; then
  check "--enable: ov-agent.service and ov-agent.socket enabled and active; systemd-analyze verify clean" -- agent_socket
  check "ov agent status through the rendezvous; journal has 'agent ready'; busctl introspect com.opaquevault.Agent1 /com/opaquevault/Agent1" -- agent_activation
  check "D-Bus Lock: another user gets AccessDenied (journal names its uid); the agent's user and root lock it; systemctl reload unlocks" -- dbus_lock
  AGENT_SECURITY=$(ct systemd-analyze security ov-agent.service 2>/dev/null | tail -n 1)
  note "systemd-analyze security ov-agent.service: ${AGENT_SECURITY:-n/a}"
else
  fail "agent checks (enabled units, activation, D-Bus Lock): not run, ov agent install failed"
fi

# §4 Cut over.
CUT_OK=0
foreground_run() {
  guide 'sudo systemctl stop myapp' || return 1
  fresh_seen
  # The guide says: hit an endpoint, check logs, Ctrl-C. Here: let it start, then SIGINT after 5 s.
  guide -p 'timeout -s INT 5' 'ov run --app myapp --env production --machine-key /etc/ov/myapp.key --secrets DATABASE_URL,STRIPE_SECRET_KEY -- /opt/myapp/bin/server'
  [ $? = 124 ] || { echo "ov run exited before the timeout: $GUIDE_OUT"; return 1; }
  grep -q '^myapp: listening on :' <<<"$GUIDE_OUT" || { echo "no startup line: $GUIDE_OUT"; return 1; }
  env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}"
}
cut_over() {
  guide_unit >"$(cpath /etc/systemd/system/myapp.service)" || { echo "the guide has no [Service] ExecStart= text in §4"; return 1; }
  grep -q '^ExecStart=/usr/local/bin/ov run' "$(cpath /etc/systemd/system/myapp.service)" || { echo "the guide's unit has no ov run"; return 1; }
  ! grep -q '^EnvironmentFile=' "$(cpath /etc/systemd/system/myapp.service)" || { echo "EnvironmentFile= is still there"; return 1; }
  fresh_seen
  guide 'sudo systemctl daemon-reload' && guide 'sudo systemctl start myapp' || return 1
  wait_for 15 seen_written || { jgrep myapp.service -b -n 5; return 1; }
  active myapp.service && env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}"
}
if [ $KEY_OK = 1 ]; then
  check "§4 sudo systemctl stop myapp; ov run ... --machine-key /etc/ov/myapp.key --secrets DATABASE_URL,STRIPE_SECRET_KEY -- /opt/myapp/bin/server: exact values" -- foreground_run
  check "§4 the guide's own unit text (ExecStart=/usr/local/bin/ov run ..., EnvironmentFile= deleted); daemon-reload; start: active, exactly DATABASE_URL and STRIPE_SECRET_KEY" -- cut_over &&
    CUT_OK=1
else
  fail "§4 cut over: not run, the machine key step failed"
fi

# ---------------------------------------------------------------------------------------------------------------
# Restarts through systemd (docs/agent.md): a restart policy for myapp; a change to a secret it uses restarts it
# with the new value; a change to another secret restarts nothing.

RESTART_POLICY=/etc/ov/restart.d/myapp.service.conf
RESTART_RULE=/etc/polkit-1/rules.d/60-opaquevault-agent-restart.rules
ROTATED='postgres://myapp:rotated-e2e-Qx81@db.internal:5432/myapp?sslmode=require'
invocation() { ct systemctl show -p InvocationID --value myapp.service; }
agent_log_since() { ct journalctl -u ov-agent.service --since "@$1" --no-pager "${@:2}" 2>/dev/null; }
set_secret() { printf '%s' "$2" | as_user deploy "ov secret set $1 --app myapp --env production --password-file ~/.ov-password"; }
restart_setup() {
  local t0
  grep -q '"deploy"' "$(cpath "$RESTART_RULE")" || { echo "ov agent install wrote no polkit restart rule for deploy"; return 1; }
  ct install -d -o root -g root -m 0755 /etc/ov/restart.d || return 1
  printf 'app = myapp\nenv = production\nnames = DATABASE_URL, STRIPE_SECRET_KEY\naction = restart\ninterval = 1s\n' \
    >"$(cpath "$RESTART_POLICY")" && ct chown root:root "$RESTART_POLICY" && ct chmod 0644 "$RESTART_POLICY" || return 1
  t0=$(ct date +%s); sleep 1
  ct systemctl restart ov-agent.service || return 1
  wait_for 15 eval "agent_log_since $t0 -o cat | grep -q 'watching for changes'" ||
    { agent_log_since "$t0" -o cat | tail -n 5; return 1; }
}
# polkit_denied WHAT CMD: CMD, run as deploy, fails with polkit's refusal (systemctl exits 1 and says "Access
# denied", or "Interactive authentication required" when the default rule wants an admin and --no-ask-password
# forbids asking). Any other failure (a typo, a missing unit) is not a denial and fails the check.
polkit_denied() {
  local out rc=0
  out=$(as_user deploy "$2" 2>&1) || rc=$?
  [ $rc -ne 0 ] || { echo "deploy could $1"; return 1; }
  [ $rc -eq 1 ] && grep -qE 'Access denied|Interactive authentication required' <<<"$out" ||
    { echo "deploy $1: exit $rc, $(tr '\n' ' ' <<<"$out")(want exit 1 with polkit's 'Access denied' or 'Interactive authentication required')"; return 1; }
}
restart_polkit() {
  local pid
  as_user deploy 'systemctl --no-ask-password try-restart myapp.service' || { echo "deploy may not try-restart myapp.service"; return 1; }
  wait_for 10 active myapp.service || return 1
  polkit_denied "stop myapp.service" 'systemctl --no-ask-password stop myapp.service' || return 1
  active myapp.service || { echo "myapp.service is $(ct systemctl is-active myapp.service) after deploy's refused stop"; return 1; }
  http_get /healthz >/dev/null; pid=$(ct systemctl show -p MainPID --value ov-server.service)
  polkit_denied "restart ov-server.service" 'systemctl --no-ask-password try-restart ov-server.service' || return 1
  [ "$(ct systemctl show -p MainPID --value ov-server.service)" = "$pid" ] || { echo "ov-server.service restarted after deploy's refused try-restart"; return 1; }
  # The same commands as root succeed: the refusals above were polkit's, not broken commands.
  ct systemctl --no-ask-password try-restart ov-server.service || { echo "root could not try-restart ov-server.service"; return 1; }
  [ "$(ct systemctl show -p MainPID --value ov-server.service)" != "$pid" ] || { echo "root's try-restart did not restart ov-server.service"; return 1; }
  ct systemctl --no-ask-password stop myapp.service || { echo "root could not stop myapp.service"; return 1; }
  ! active myapp.service || { echo "myapp.service still active after root's stop"; return 1; }
  ct systemctl start myapp.service && wait_for 10 active myapp.service
}
restart_on_change() {
  local before t0 r old=${EXPECT[DATABASE_URL]}
  wait_for 10 active myapp.service || return 1
  before=$(invocation); t0=$(ct date +%s); sleep 1; fresh_seen
  set_secret DATABASE_URL "$ROTATED" || return 1
  wait_for 15 seen_written || { echo "myapp.service did not restart: $(agent_log_since "$t0" -o cat | tail -n 4 | tr '\n' ' ')"; return 1; }
  wait_for 10 active myapp.service && [ "$(invocation)" != "$before" ] || { echo "myapp.service not active again"; return 1; }
  EXPECT[DATABASE_URL]=$ROTATED; env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}"; r=$?; EXPECT[DATABASE_URL]=$old
  [ $r = 0 ] || return 1
  agent_log_since "$t0" -o cat OV_UNIT=myapp.service | grep -q '^secrets changed: asking systemd to try-restart the unit$' &&
    agent_log_since "$t0" -o verbose OV_UNIT=myapp.service | grep -qE '^ *OV_SECRETS=DATABASE_URL@v[0-9]+$' &&
    wait_for 10 eval "agent_log_since $t0 -o cat OV_UNIT=myapp.service | grep -q '^unit restarted$'" ||
    { echo "journal: $(agent_log_since "$t0" -o cat | tail -n 4 | tr '\n' ' ')"; return 1; }
  ! agent_log_since "$t0" -o verbose | grep -qF 'rotated-e2e-Qx81' || { echo "the new value is in the agent's journal"; return 1; }
}
restart_not_on_other() {
  local before t0
  before=$(invocation); t0=$(ct date +%s); sleep 1; fresh_seen
  set_secret GREETING 'a greeting changed by the e2e run' || return 1   # a name myapp does not use
  wait_for 15 eval "agent_log_since $t0 -o cat OV_UNIT=myapp.service | grep -q 'does not list; not restarted'" ||
    { echo "no 'not restarted' in the agent's journal: $(agent_log_since "$t0" -o cat | tail -n 3 | tr '\n' ' ')"; return 1; }
  sleep 3
  ! seen_written && [ "$(invocation)" = "$before" ] || { echo "myapp.service restarted for GREETING"; return 1; }
}
restart_restore() {
  local r=0
  fresh_seen
  set_secret DATABASE_URL "${EXPECT[DATABASE_URL]}" || r=1
  set_secret GREETING "${EXPECT[GREETING]}" || r=1
  [ $r = 0 ] && wait_for 15 seen_written && wait_for 10 active myapp.service && env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}" || r=1
  ct rm -f "$RESTART_POLICY"; ct systemctl restart ov-agent.service
  return $r
}
if [ $CUT_OK = 1 ] && [ $AGENT_OK = 1 ] && active ov-agent.service && active myapp.service; then
  if check "restart policy /etc/ov/restart.d/myapp.service.conf: ov-agent watches myapp/production" -- restart_setup; then
    check "polkit rule: deploy may try-restart myapp.service, not stop it, not restart ov-server.service" -- restart_polkit
    check "ov secret set DATABASE_URL: myapp.service restarts within seconds with the new value; the journal says why, no value" -- restart_on_change
    check "ov secret set GREETING (not in the policy): nothing restarts" -- restart_not_on_other
  fi
  check "restart policy removed, DATABASE_URL and GREETING restored: myapp.service has the guide's values again" -- restart_restore
else
  fail "restarts through systemd: not run, the cut-over or the agent failed"
fi

# §5 Reboot-test, §6 retire the .env, and a second reboot.
after_reboot() { # after_reboot: the boot id changed and myapp came back with its two secrets
  local id; id=$(ct cat /proc/sys/kernel/random/boot_id)
  [ "$id" != "$BOOT_ID" ] || { echo "the boot id did not change"; return 1; }
  BOOT_ID=$id
  wait_for 20 seen_written || { jgrep myapp.service -b -n 5; return 1; }
  guide 'systemctl status myapp' && grep -q 'Active: active (running)' <<<"$GUIDE_OUT" || { echo "myapp: $(grep Active: <<<"$GUIDE_OUT")"; return 1; }
  # -b: the journal is persistent, so without it the previous boot's startup line would do.
  guide -x -b 'journalctl -u myapp -n 50' && grep -q 'myapp: listening on :' <<<"$GUIDE_OUT" || { echo "no startup line in journalctl -u myapp -b"; return 1; }
  env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}"
}
# The guide's troubleshooting item 1: `systemctl status ov-agent` says active after a boot, before any client.
agent_after_boot() {
  wait_for 10 active ov-agent.service
  guide 'systemctl status ov-agent' && grep -q 'Active: active (running)' <<<"$GUIDE_OUT" || { echo "ov-agent: $(grep Active: <<<"$GUIDE_OUT")"; return 1; }
  jgrep ov-agent.service -b | grep -q 'agent ready' || { echo "no 'agent ready' in journalctl -u ov-agent -b"; return 1; }
  active ov-agent.socket || { echo "ov-agent.socket is not listening"; return 1; }
}
if [ $CUT_OK = 1 ]; then
  t=$SECONDS
  fresh_seen
  if reboot_container guide 'sudo reboot'; then
    timed reboot $t
    check "§5 sudo reboot (nspawn exit 133, new boot id): systemctl status myapp active (running); journalctl -u myapp -n 50 has its startup" -- after_reboot
    if [ $AGENT_OK = 1 ]; then
      check "after the reboot: systemctl status ov-agent active (running), started at boot ('agent ready' in journalctl -u ov-agent -b); socket listening" -- agent_after_boot
    fi
  else
    fail "§5 sudo reboot: $(tail -n 2 "$E2E_WORK/nspawn.log" | tr '\n' ' ')"; CUT_OK=0
  fi
fi
if [ $CUT_OK = 1 ]; then
  retire() {
    guide 'sudo mv /opt/myapp/.env.production /opt/myapp/.env.production.bak' &&
      ct test -f /opt/myapp/.env.production.bak && ! ct test -e /opt/myapp/.env.production
  }
  check "§6 sudo mv /opt/myapp/.env.production /opt/myapp/.env.production.bak" -- retire
  fresh_seen
  if reboot_container; then
    check "second reboot without the .env: myapp active (running) with its secrets" -- after_reboot
  else
    fail "second reboot: $(tail -n 2 "$E2E_WORK/nspawn.log" | tr '\n' ' ')"
  fi
else
  fail "§5 reboot-test and §6 retire the .env: not run, the cut-over failed"
fi

# The guide's troubleshooting items 2 and 3, as written.
key_listing() {
  guide 'ls -la /etc/ov/myapp.key' || { echo "$GUIDE_OUT"; return 1; }
  grep -qE '^-rw------- 1 deploy deploy 32 ' <<<"$GUIDE_OUT" || { echo "ls -la: $GUIDE_OUT"; return 1; }
}
routing_count() {
  local n
  guide 'ov run --app myapp --env production -- env | grep -c .' || { echo "$GUIDE_OUT"; return 1; }
  n=$(tail -n 1 <<<"$GUIDE_OUT")
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge ${#ALL_NAMES[@]} ] || { echo "env | grep -c . printed: $GUIDE_OUT"; return 1; }
}
if [ $KEY_OK = 1 ]; then
  check "troubleshooting 2: ls -la /etc/ov/myapp.key: -rw------- 1 deploy deploy 32" -- key_listing
fi
if [ $AGENT_OK = 1 ]; then
  check "troubleshooting 3: ov run --app myapp --env production -- env | grep -c . (no password: through the agent)" -- routing_count
fi

# ---------------------------------------------------------------------------------------------------------------
# Failure drills.

drill_server_down() {
  local rc=0
  ct systemctl disable --now ov-server.socket ov-server.service >/dev/null 2>&1
  fresh_seen
  reboot_container || return 1
  if active ov-server.service; then echo "ov-server is running"; rc=1
  elif ! after_reboot; then rc=1
  elif ! jgrep myapp.service -b | grep -q 'ov: warning: using the cached copy of myapp/production'; then
    echo "journalctl -u myapp -b does not say 'ov: warning: using the cached copy of myapp/production'"; rc=1
  fi
  ct systemctl enable --now ov-server.socket >/dev/null 2>&1
  return $rc
}
drill_key_mode() {
  ct chmod 0644 /etc/ov/myapp.key
  ct systemctl restart myapp.service
  wait_for 15 eval "jgrep myapp.service -b | grep -q 'read machine key /etc/ov/myapp.key: mode 0644 is too open (must be 0600 or 0400)'" ||
    { echo "no 'mode 0644 is too open' in journalctl -u myapp: $(jgrep myapp.service -b -n 3 | tr '\n' ' ')"; ct chmod 0600 /etc/ov/myapp.key; return 1; }
  ! active myapp.service || [ "$(ct systemctl show -p NRestarts --value myapp.service)" -gt 0 ] || { echo "myapp kept running"; return 1; }
  ct chmod 0600 /etc/ov/myapp.key
  fresh_seen
  ct systemctl reset-failed myapp.service; ct systemctl restart myapp.service
  wait_for 15 seen_written && active myapp.service
}
drill_agent_killed() {
  local old new
  old=$(ct systemctl show -p MainPID --value ov-agent.service)
  [ "$old" != 0 ] || { as_user deploy 'ov agent status' >/dev/null 2>&1; old=$(ct systemctl show -p MainPID --value ov-agent.service); }
  ct systemctl kill -s KILL ov-agent.service
  wait_for 10 eval '! active ov-agent.service' || true
  active ov-agent.socket || { echo "ov-agent.socket is not listening"; return 1; }
  as_user deploy 'ov agent status' || return 1
  wait_for 10 active ov-agent.service || return 1
  new=$(ct systemctl show -p MainPID --value ov-agent.service)
  [ "$new" != 0 ] && [ "$new" != "$old" ]
}
if [ $CUT_OK = 1 ]; then
  check "drill: ov-server down at boot: myapp starts from ov run's cache and says so in its journal" -- drill_server_down
  check "drill: chmod 0644 /etc/ov/myapp.key: myapp fails with 'mode 0644 is too open'; chmod 0600 restores it" -- drill_key_mode
else
  fail "drills (server down at boot, key mode 0644): not run, the cut-over failed"
fi
if [ $AGENT_OK = 1 ]; then
  check "drill: systemctl kill -s KILL ov-agent: the socket starts a new agent on the next connection" -- drill_agent_killed
else
  fail "drill (agent killed, restarted by its socket): not run, ov agent install failed"
fi

# A routine password change keeps the machine keys working (they do not derive from the password).
change_password() {
  as_user deploy 'install -m 600 /dev/null ~/.ov-password.new && printf "%s\n" "a new pa\$\$word" >~/.ov-password.new' || return 1
  guide -D -x "$PWF --new-password-file ~/.ov-password.new" 'ov auth change-password --keep-machine-keys' || { echo "$GUIDE_OUT"; return 1; }
  # The old password is refused as a wrong password (exit 3, "wrong password or Account Secret Key"), not by
  # any other failure (a lost login also exits 3, with "not logged in").
  local out rc=0
  out=$(as_user deploy "ov secret list --app myapp --env production $PWF" 2>&1) || rc=$?
  [ $rc -eq 3 ] && grep -q '^ov: error: unlock deploy@example.com: .*wrong password or Account Secret Key' <<<"$out" ||
    { echo "ov secret list with the old password: exit $rc, $(tr '\n' ' ' <<<"$out")(want exit 3, wrong password)"; return 1; }
  as_user deploy 'mv ~/.ov-password.new ~/.ov-password' &&
    as_user deploy "ov secret list --app myapp --env production $PWF" 2>&1 | grep -q "^${#ALL_NAMES[@]} secret(s)" ||
    { echo "the new password does not work"; return 1; }
  fresh_seen; ct systemctl restart myapp.service
  wait_for 15 seen_written && active myapp.service && env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}"
}
if [ $CUT_OK = 1 ]; then
  check "ov auth change-password --keep-machine-keys: new password works, old one not; myapp restarts with its machine key" -- change_password
else
  fail "password change keeping machine keys: not run, the cut-over failed"
fi

# ---------------------------------------------------------------------------------------------------------------
# ov doctor on the cut-over unit, healthy and broken five ways; ov systemd cutover / retire-env / rollback.
# /usr/local/bin comes first on PATH, so these call the packaged /usr/bin/ov explicitly.

DR=''
dr() { DR=$(ct /usr/bin/ov doctor --unit myapp.service 2>&1); }
# doctor_passes LINE...: exit 0, no ✗, and each LINE in the output.
doctor_passes() {
  local w
  dr || { echo "$DR"; return 1; }
  for w in "$@" 'All checks passed.'; do grep -qF -- "$w" <<<"$DR" || { echo "no '$w': $DR"; return 1; }; done
  ! grep -q '^✗' <<<"$DR" || { echo "$DR"; return 1; }
}
doctor_healthy() {
  doctor_passes '✓ ExecStart=: runs /usr/local/bin/ov run --app myapp --env production -- /opt/myapp/bin/server' \
    '✓ machine key: /etc/ov/myapp.key: 32 bytes, owned by deploy' '✓ secrets: all 2 name(s) of --secrets exist' \
    '✓ daemon-reload:' '✓ EnvironmentFile=: none in effect'
}
# doctor_fails LINE...: exit 1 with the summary error, and each LINE in the output.
doctor_fails() {
  local w rc
  dr; rc=$?
  [ $rc = 1 ] || { echo "exit $rc: $DR"; return 1; }
  grep -qE '^ov: error: doctor: [0-9]+ of [0-9]+ checks failed$' <<<"$DR" || { echo "$DR"; return 1; }
  for w in "$@"; do grep -qF -- "$w" <<<"$DR" || { echo "no '$w': $DR"; return 1; }; done
}
dropin() {
  ct install -d /etc/systemd/system/myapp.service.d
  printf '[Service]\nExecStart=\nExecStart=%s run --app %s --env production --machine-key /etc/ov/myapp.key -- /opt/myapp/bin/server\n' "$1" "$2" \
    >"$(cpath /etc/systemd/system/myapp.service.d/90-drill.conf)"
  ct systemctl daemon-reload
}
undrop() { ct rm -f /etc/systemd/system/myapp.service.d/90-drill.conf; ct systemctl daemon-reload; }
d_owner() {
  local r; ct chown root:root /etc/ov/myapp.key
  doctor_fails '✗ machine key: read machine key /etc/ov/myapp.key: is owned by uid 0 (root), want uid' '    fix: sudo chown deploy: /etc/ov/myapp.key'; r=$?
  ct chown deploy:deploy /etc/ov/myapp.key; return $r
}
d_mode() {
  local r; ct chmod 0644 /etc/ov/myapp.key
  doctor_fails '✗ machine key: read machine key /etc/ov/myapp.key: mode 0644 is too open (must be 0600 or 0400)' '    fix: sudo chmod 600 /etc/ov/myapp.key'; r=$?
  ct chmod 0600 /etc/ov/myapp.key; return $r
}
d_reload() {
  local r; echo '# edited' >>"$(cpath /etc/systemd/system/myapp.service)"
  doctor_fails '✗ daemon-reload: myapp.service changed on disk since systemd read it' '    fix: sudo systemctl daemon-reload && sudo systemctl restart myapp.service'; r=$?
  sed -i '$d' "$(cpath /etc/systemd/system/myapp.service)"; ct systemctl daemon-reload; return $r
}
d_app() { local r; dropin /usr/local/bin/ov wrongapp; doctor_fails '✗ grant: ' 'wrongapp'; r=$?; undrop; return $r; }
d_ov() { local r; dropin /opt/nowhere/bin/ov myapp; doctor_fails '✗ ExecStart=: runs /opt/nowhere/bin/ov, which does not exist' 'ov is installed as /usr/bin/ov'; r=$?; undrop; return $r; }
d_agent() {
  local r; ct systemctl stop ov-agent.socket ov-agent.service
  doctor_fails '✗ agent: ov-agent.socket is inactive, so nothing listens for the agent' '✗ agent socket: '; r=$?
  ct systemctl start ov-agent.service; return $r
}

SEC='--secrets DATABASE_URL,GREETING,NODE_ENV,PORT,SESSION_SECRET,SMTP_PASSWORD,STRIPE_SECRET_KEY,TLS_PRIVATE_KEY'
CUT="ct /usr/bin/ov systemd cutover myapp.service --app myapp --env production --machine-key /etc/ov/myapp.key"
DROP=/etc/systemd/system/myapp.service.d/50-opaquevault.conf
c_setup() {
  ct systemctl stop myapp.service; doc_unit 1 >"$(cpath /etc/systemd/system/myapp.service)"
  ct cp -p /opt/myapp/.env.production.bak /opt/myapp/.env.production && ct systemctl daemon-reload
}
c_refuse() {
  local out rc
  ct cp -p /opt/myapp/.env.production /root/env.keep; echo 'ONLY_IN_FILE=x' >>"$(cpath /opt/myapp/.env.production)"
  out=$($CUT 2>&1); rc=$?; ct mv /root/env.keep /opt/myapp/.env.production
  [ $rc = 1 ] && grep -qF 'ONLY_IN_FILE (from /opt/myapp/.env.production) is not in the vault' <<<"$out" &&
    grep -qF 'nothing was written' <<<"$out" && ! ct test -e $DROP && ! grep -qF 'sk_live_51Hx9Tq2eZvKYlo2C' <<<"$out" || { echo "exit $rc: $out"; return 1; }
}
c_dry() {
  local out n; out=$($CUT --dry-run 2>&1) || { echo "$out"; return 1; }
  for n in "${ALL_NAMES[@]}"; do grep -qx "  same     $n (/opt/myapp/.env.production)" <<<"$out" || { echo "no 'same $n': $out"; return 1; }; done
  grep -qx "ExecStart=/usr/bin/ov run --app myapp --env production --machine-key /etc/ov/myapp.key $SEC -- /opt/myapp/bin/server" <<<"$out" &&
    ! ct test -e $DROP && ! grep -qF 'sk_live_51Hx9Tq2eZvKYlo2C' <<<"$out" || { echo "$out"; return 1; }
}
c_apply() {
  local out; out=$($CUT 2>&1) || { echo "$out"; return 1; }
  grep -qx "✓ Wrote $DROP and reloaded systemd." <<<"$out" && [ "$(ct stat -c '%U:%G %a' $DROP)" = "root:root 644" ] &&
    [ "$(ct systemctl show -p NeedDaemonReload --value myapp.service)" = no ] && [ -z "$(ct systemctl show -p EnvironmentFiles --value myapp.service)" ] &&
    diff <(doc_unit 1) "$(cpath /etc/systemd/system/myapp.service)" >/dev/null || { echo "$out"; return 1; }
}
c_early() {
  local out rc; out=$(ct /usr/bin/ov systemd retire-env myapp.service 2>&1); rc=$?
  [ $rc = 1 ] && grep -qF 'the journal shows no start of myapp.service from the vault (myapp/production) since the cut-over' <<<"$out" &&
    ct test -f /opt/myapp/.env.production || { echo "exit $rc: $out"; return 1; }
}
# Exactly the environment EnvironmentFile= gave before the cut-over (install_myapp compared it), now from the vault.
c_start() {
  fresh_seen; ct systemctl restart myapp.service
  wait_for 15 seen_written && active myapp.service && env_is "$(cpath "$SEEN")" -only "${ALL_NAMES[@]}" || return 1
  wait_for 5 eval "jgrep myapp.service -b OV_EVENT=run-start | grep -qx 'ov run: starting /opt/myapp/bin/server with 8 secret(s) of myapp/production from the vault'" ||
    { echo "no run-start entry in journalctl -u myapp -b"; return 1; }
}
doctor_healthy_cut() {
  doctor_passes '✓ ExecStart=: runs /usr/bin/ov run --app myapp --env production -- /opt/myapp/bin/server' \
    '✓ secrets: all 8 name(s) of --secrets exist' '✓ EnvironmentFile=: none in effect'
}
c_reboot() {
  fresh_seen; reboot_container || return 1
  wait_for 20 seen_written && active myapp.service && env_is "$(cpath "$SEEN")" -only "${ALL_NAMES[@]}"
}
c_retire() {
  local out d; d=$(ct date -u +%Y%m%d); out=$(ct /usr/bin/ov systemd retire-env myapp.service 2>&1) || { echo "$out"; return 1; }
  grep -qx "✓ Renamed /opt/myapp/.env.production to /opt/myapp/.env.production.retired-$d (0600)" <<<"$out" &&
    [ "$(ct stat -c '%U:%G %a' "/opt/myapp/.env.production.retired-$d")" = "deploy:deploy 600" ] && ! ct test -e /opt/myapp/.env.production ||
    { echo "$out"; return 1; }
}
c_rollback() {
  local out; out=$(ct /usr/bin/ov systemd rollback myapp.service 2>&1) || { echo "$out"; return 1; }
  grep -qx "✓ Removed $DROP and reloaded systemd." <<<"$out" && ! ct test -e $DROP &&
    ct systemctl show -p EnvironmentFiles --value myapp.service | grep -qF /opt/myapp/.env.production || { echo "$out"; return 1; }
  ct /usr/bin/ov systemd rollback myapp.service >/dev/null 2>&1; [ $? = 5 ] || { echo "a second rollback did not exit 5"; return 1; }
  # Back on EnvironmentFile=, from the retired copy: the environment it had before.
  ct sh -c 'mv /opt/myapp/.env.production.retired-* /opt/myapp/.env.production' && fresh_seen && ct systemctl restart myapp.service &&
    wait_for 15 seen_written && env_is "$(cpath "$SEEN")" -only "${ALL_NAMES[@]}"
}
c_restore() {
  ct mv /opt/myapp/.env.production /opt/myapp/.env.production.bak
  guide_unit >"$(cpath /etc/systemd/system/myapp.service)"
  ct systemctl daemon-reload; fresh_seen; ct systemctl restart myapp.service; wait_for 15 seen_written && active myapp.service
}
if [ $CUT_OK = 1 ] && [ $AGENT_OK = 1 ]; then
  check "ov doctor --unit myapp.service: every check passes on the guide's cut-over unit, exit 0" -- doctor_healthy
  check "ov doctor: key owned by root, not deploy: ✗ with 'sudo chown deploy:', exit 1" -- d_owner
  check "ov doctor: key mode 0644: ✗ with 'sudo chmod 600', exit 1" -- d_mode
  check "ov doctor: unit edited without daemon-reload: ✗ daemon-reload, exit 1" -- d_reload
  check "ov doctor: --app wrongapp in ExecStart=: ✗ grant, exit 1" -- d_app
  check "ov doctor: ExecStart= names a missing ov: ✗ naming /usr/bin/ov as the fix, exit 1" -- d_ov
  check "ov doctor: ov-agent stopped: ✗ agent and ✗ agent socket, exit 1" -- d_agent
  c_setup
  check "ov systemd cutover: a variable only in the .env is refused, named, nothing written, exit 1" -- c_refuse
  check "ov systemd cutover --dry-run: all 8 names 'same', the ov run line, nothing written" -- c_dry
  check "ov systemd cutover: drop-in root:root 0644, reloaded (no NeedDaemonReload, no EnvironmentFiles), unit file untouched" -- c_apply
  check "ov systemd retire-env before a start from the vault: refused, .env kept" -- c_early
  check "after the cut-over: myapp has exactly the environment EnvironmentFile= gave; the journal has the run-start entry" -- c_start
  check "ov doctor --unit myapp.service on the ov-made drop-in: all pass" -- doctor_healthy_cut
  check "reboot after ov systemd cutover: myapp runs from the vault with exactly the environment it had before" -- c_reboot
  check "ov systemd retire-env: .env renamed to .env.production.retired-DATE, deploy:deploy 0600" -- c_retire
  check "ov systemd rollback: drop-in removed, reloaded, EnvironmentFile= back with the same environment; a second rollback exits 5" -- c_rollback
  check "back to the guide's unit for the rest of the run" -- c_restore
else
  fail "ov doctor and ov systemd cutover/retire-env/rollback: not run, the cut-over or the agent failed"
fi

# ---------------------------------------------------------------------------------------------------------------
# The agent as a systemd credential provider (docs/agent.md): LoadCredential=NAME:/run/ov/credentials.sock, a
# unit without a wrapper; ov env-from-credentials for programs that need variables; forged requests refused.
CREDT=/home/deploy/.credtest
cred_setup() {
  ct install -d -m 0755 -o root -g root /etc/ov/credentials.d || return 1
  cat >"$(cpath /usr/local/bin/credtest)" <<'EOS'
#!/bin/bash
# What a unit with LoadCredential= gets: the files, its own environment and a child's.
set -e
d=$HOME/.credtest
rm -rf "$d" && mkdir -m 0700 "$d"
cp "$CREDENTIALS_DIRECTORY/DATABASE_URL" "$CREDENTIALS_DIRECTORY/STRIPE_SECRET_KEY" "$d/"
printf '%s' "$CREDENTIALS_DIRECTORY" >"$d/dir"
env -0 >"$d/self.env"
bash -c 'env -0' >"$d/child.env"
EOS
  # A client that binds an abstract address of its choosing, as systemd does, writes nothing and reads to EOF
  # (perl-base's Socket: no python3 in the container).
  cat >"$(cpath /usr/local/bin/ov-forge)" <<'EOS'
#!/usr/bin/perl
use Socket;
socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!\n";
bind($s, pack_sockaddr_un("\0" . $ARGV[1])) or die "bind: $!\n";
connect($s, pack_sockaddr_un($ARGV[0])) or die "connect: $!\n";
shutdown($s, 1);
my ($n, $nz) = (0, 0);
while (my $r = sysread($s, my $buf, 65536)) { $n += $r; $nz += ($buf =~ tr/\0//c); }
print "bytes=$n nonzero=$nz\n";
EOS
  printf '[Service]\nType=oneshot\nUser=deploy\nLoadCredential=DATABASE_URL:/run/ov/credentials.sock\nLoadCredential=STRIPE_SECRET_KEY:/run/ov/credentials.sock\nExecStart=/usr/local/bin/credtest\n' \
    >"$(cpath /etc/systemd/system/credtest.service)"
  printf '[Service]\nType=oneshot\nUser=deploy\nLoadCredential=SESSION_SECRET:/run/ov/credentials.sock\nExecStart=/bin/true\n' \
    >"$(cpath /etc/systemd/system/credbad.service)"
  printf 'app=myapp\nenv=production\nsecrets=DATABASE_URL,STRIPE_SECRET_KEY\n' >"$(cpath /etc/ov/credentials.d/credtest.service.conf)"
  ct chown root:root /usr/local/bin/credtest /usr/local/bin/ov-forge /etc/systemd/system/credtest.service \
    /etc/systemd/system/credbad.service /etc/ov/credentials.d/credtest.service.conf &&
    ct chmod 0755 /usr/local/bin/credtest /usr/local/bin/ov-forge &&
    ct chmod 0644 /etc/systemd/system/credtest.service /etc/systemd/system/credbad.service /etc/ov/credentials.d/credtest.service.conf &&
    ct systemctl daemon-reload
}
# agentlog FIELD=VALUE...: the messages of the agent's journal entries (this boot) with these fields.
agentlog() { ct journalctl -b --no-pager -o cat _SYSTEMD_UNIT=ov-agent.service "$@" 2>/dev/null; }
cred_socket() {
  [ "$(ct systemctl is-enabled ov-agent-credentials.socket)" = enabled ] && active ov-agent-credentials.socket ||
    { echo "ov-agent-credentials.socket is $(ct systemctl is-enabled ov-agent-credentials.socket), $(ct systemctl is-active ov-agent-credentials.socket)"; return 1; }
  [ "$(ct stat -c '%U:%G %a %F' /run/ov/credentials.sock 2>&1)" = "root:root 600 socket" ] ||
    { echo "/run/ov/credentials.sock: $(ct stat -c '%U:%G %a %F' /run/ov/credentials.sock 2>&1)"; return 1; }
  [ "$(ct stat -c '%U:%G %a' /etc/ov/credentials.d 2>&1)" = "root:root 755" ] ||
    { echo "/etc/ov/credentials.d: $(ct stat -c '%U:%G %a' /etc/ov/credentials.d 2>&1)"; return 1; }
  verify_units ov-agent-credentials.socket
}
cred_files() {
  local d n f
  ct systemctl start credtest.service || { jgrep credtest.service -b -n 5; return 1; }
  d=$(cpath $CREDT)
  grep -qx /run/credentials/credtest.service "$d/dir" || { echo "CREDENTIALS_DIRECTORY=$(cat "$d/dir")"; return 1; }
  for n in DATABASE_URL STRIPE_SECRET_KEY; do
    cmp -s "$d/$n" <(printf '%s' "${EXPECT[$n]}") || { echo "$n: $(stat -c %s "$d/$n") bytes, not the vault's value"; return 1; }
    for f in self.env child.env; do
      ! tr '\0' '\n' <"$d/$f" | grep -q "^$n=" || { echo "$f has a variable $n"; return 1; }
      ! grep -qaF -- "${EXPECT[$n]}" "$d/$f" || { echo "$f holds the value of $n"; return 1; }
    done
  done
  ct rm -rf $CREDT
}
cred_journal() {
  agentlog OV_UNIT=credtest.service OV_CREDENTIAL=DATABASE_URL | grep -qx 'served credential' ||
    { echo "no 'served credential' with OV_UNIT=credtest.service OV_CREDENTIAL=DATABASE_URL in the agent's journal"; return 1; }
  ! ct journalctl -b --no-pager -o verbose _SYSTEMD_UNIT=ov-agent.service | grep -qaF -e "${EXPECT[DATABASE_URL]}" -e "${EXPECT[STRIPE_SECRET_KEY]}" ||
    { echo "the agent's journal holds a value"; return 1; }
}
cred_refused() {
  if ct systemctl start credbad.service 2>/dev/null; then echo "credbad.service (no policy) started"; return 1; fi
  [ "$(ct systemctl show -p ExecMainStatus --value credbad.service)" = 243 ] || jgrep credbad.service -b | grep -q '243/CREDENTIALS' ||
    { echo "credbad.service did not fail with 243/CREDENTIALS: $(jgrep credbad.service -b -n 3 | tr '\n' ' ')"; return 1; }
  agentlog OV_UNIT=credbad.service OV_CREDENTIAL=SESSION_SECRET | grep -qx 'credential refused: no usable policy for the unit' ||
    { echo "no refusal naming credbad.service and SESSION_SECRET in the agent's journal"; return 1; }
  ct systemctl reset-failed credbad.service
}
cred_forged() {
  local out
  # Another user cannot even connect: the socket is root's, 0600.
  out=$(as_user deploy '/usr/local/bin/ov-forge /run/ov/credentials.sock 0123abcd/unit/credtest.service/DATABASE_URL' 2>&1) &&
    { echo "deploy connected: $out"; return 1; }
  grep -q 'connect: Permission denied' <<<"$out" || { echo "deploy: $out"; return 1; }
  # Root, from a process that is not systemd's credential setup, for a unit without a policy: refused with more than
  # systemd's 1 MiB limit of zeros (so that systemd would fail the unit), no value, logged with unit and credential.
  out=$(ct /usr/local/bin/ov-forge /run/ov/credentials.sock 0123abcd/unit/forged.service/DATABASE_URL 2>&1)
  [ "$out" = "bytes=1048577 nonzero=0" ] || { echo "forged.service: $out"; return 1; }
  agentlog OV_UNIT=forged.service OV_CREDENTIAL=DATABASE_URL | grep -qx 'credential refused: no usable policy for the unit' ||
    { echo "no refusal naming forged.service in the agent's journal"; return 1; }
  # An address that is not systemd's: nothing at all, logged with the address.
  out=$(ct /usr/local/bin/ov-forge /run/ov/credentials.sock not-systemd 2>&1)
  [ "$out" = "bytes=0 nonzero=0" ] || { echo "not-systemd: $out"; return 1; }
  agentlog 'OV_PEER_ADDR="@not-systemd"' | grep -qF "credential refused: the caller's address is not systemd's" ||
    agentlog 'OV_PEER_ADDR=@not-systemd' | grep -qF "credential refused: the caller's address is not systemd's" ||
    { echo "no refusal for the address @not-systemd in the agent's journal"; return 1; }
}
# ov systemd cutover --credentials on the guide's unit: LoadCredential= lines + ov env-from-credentials.
CCUT="ct /usr/bin/ov systemd cutover myapp.service --app myapp --env production --credentials --machine-key /etc/ov/myapp.key"
POL=/etc/ov/credentials.d/myapp.service.conf
cc_apply() {
  local out
  c_setup
  out=$($CCUT 2>&1) || { echo "$out"; return 1; }
  grep -qx "✓ Wrote $POL" <<<"$out" && grep -qx "✓ Wrote $DROP and reloaded systemd." <<<"$out" &&
    ! grep -q 'has no ov-agent-credentials.socket' <<<"$out" &&
    [ "$(ct stat -c '%U:%G %a' $POL)" = "root:root 644" ] && [ "$(ct stat -c '%U:%G %a' $DROP)" = "root:root 644" ] &&
    grep -qx 'LoadCredential=DATABASE_URL:/run/ov/credentials.sock' "$(cpath $DROP)" &&
    grep -qx 'ExecStart=/usr/bin/ov env-from-credentials -- /opt/myapp/bin/server' "$(cpath $DROP)" &&
    ! grep -q 'machine-key' "$(cpath $DROP)" && ! grep -qF 'sk_live_51Hx9Tq2eZvKYlo2C' <<<"$out" || { echo "$out"; return 1; }
}
cc_start() {
  fresh_seen; ct systemctl restart myapp.service
  wait_for 15 seen_written && active myapp.service && env_is "$(cpath "$SEEN")" -only "${ALL_NAMES[@]}" ||
    { jgrep myapp.service -b -n 5; return 1; }
  ct test -s /run/credentials/myapp.service/TLS_PRIVATE_KEY || { echo "no /run/credentials/myapp.service/TLS_PRIVATE_KEY"; return 1; }
  agentlog OV_UNIT=myapp.service OV_CREDENTIAL=TLS_PRIVATE_KEY | grep -qx 'served credential' || { echo "no 'served credential' for myapp.service"; return 1; }
}
cc_rollback() {
  local out; out=$(ct /usr/bin/ov systemd rollback myapp.service 2>&1) || { echo "$out"; return 1; }
  ! ct test -e $POL && ! ct test -e $DROP || { echo "$out"; return 1; }
  c_restore
}
if [ $AGENT_OK = 1 ] && [ $CUT_OK = 1 ]; then
  if cred_setup; then
    check "credential provider: ov-agent-credentials.socket enabled, /run/ov/credentials.sock root:root 0600, /etc/ov/credentials.d root:root 0755, verify clean" -- cred_socket
    check "LoadCredential= from the agent: the exact values in \$CREDENTIALS_DIRECTORY; neither the service's nor its child's environment holds a name or a value" -- cred_files
    check "credential provider journal: 'served credential' with OV_UNIT and OV_CREDENTIAL; no value in the agent's journal" -- cred_journal
    check "a unit without a policy: fails with 243/CREDENTIALS; the agent's journal names the unit and the credential" -- cred_refused
    check "forged requests: another user cannot connect; root outside systemd for a unit without a policy gets 1 MiB+1 zeros, not-systemd addresses nothing; both logged" -- cred_forged
    check "ov systemd cutover --credentials --machine-key: policy and drop-in root:root 0644, LoadCredential= lines, ExecStart= through ov env-from-credentials, reloaded" -- cc_apply
    check "after the --credentials cut-over: myapp has exactly the environment EnvironmentFile= gave, through ov env-from-credentials" -- cc_start
    check "ov systemd rollback after --credentials: policy and drop-in removed; back to the guide's unit" -- cc_rollback
  else
    fail "credential provider: setting up the test units failed"
  fi
else
  fail "credential provider checks: not run, the agent or the cut-over failed"
fi

# ---------------------------------------------------------------------------------------------------------------
# The machine key sealed with systemd-creds (host key; no TPM here) and LoadCredentialEncrypted=.

sealed() {
  local rc=0
  guide -D 'sudo install -d -m 0700 /etc/credstore.encrypted' || return 1
  guide -D -x "$PWF" 'ov auth derive-machine-key --app myapp --env production --out - | sudo systemd-creds encrypt --with-key=host --name=ov-myapp - /etc/credstore.encrypted/ov-myapp' ||
    { echo "$GUIDE_OUT"; return 1; }
  doc_unit 3 >"$(cpath /etc/systemd/system/myapp.service)"
  grep -q '^LoadCredentialEncrypted=ov-myapp:/etc/credstore.encrypted/ov-myapp$' "$(cpath /etc/systemd/system/myapp.service)" ||
    { echo "the doc's sealed-key unit has no LoadCredentialEncrypted="; return 1; }
  # No plain key to fall back on while the sealed one is tested.
  ct mv /etc/ov/myapp.key /root/myapp.key.plain || return 1
  fresh_seen
  if ! { guide -D 'sudo systemctl daemon-reload' && guide -D 'sudo systemctl restart myapp'; }; then rc=1
  elif ! wait_for 15 seen_written; then jgrep myapp.service -b -n 5; rc=1
  elif ! { active myapp.service && env_is "$(cpath "$SEEN")" -only "${CUT_NAMES[@]}"; }; then rc=1
  fi
  ct mv /root/myapp.key.plain /etc/ov/myapp.key
  return $rc
}
if [ $CUT_OK = 1 ]; then
  check "ov auth derive-machine-key ... --out - | sudo systemd-creds encrypt --with-key=host ...; plain key removed; LoadCredentialEncrypted=; ov run --machine-key-credential ov-myapp" -- sealed
else
  fail "LoadCredentialEncrypted= with systemd-creds --with-key=host: not run, the cut-over failed"
fi

# ---------------------------------------------------------------------------------------------------------------
# Upgrade to a newer build, then purge.

t=$SECONDS
if ! wait "$UPGRADE_PID"; then
  UPGRADE_PID=''
  fail "build $UPGRADE_VERSION for the upgrade: $(tail -n 3 "$E2E_WORK/upgrade-build.log" | tr '\n' ' ')"
else
  UPGRADE_PID=''
  upgrade() {
    local before after
    before=$(ct systemctl show -p MainPID --value ov-server.service)
    [ "$before" != 0 ] || { http_get /healthz >/dev/null; before=$(ct systemctl show -p MainPID --value ov-server.service); }
    echo "deb [signed-by=$KEYRING] file:/share/e2e/upgrade-repo ./" >"$(cpath /etc/apt/sources.list.d/opaquevault-upgrade.list)"
    ct apt-get update >/dev/null 2>&1 && ct env DEBIAN_FRONTEND=noninteractive apt-get install -y --only-upgrade opaquevault opaquevault-server >/dev/null 2>&1 ||
      { echo "apt-get upgrade failed"; return 1; }
    [ "$(ct /usr/bin/ov --version)" = "ov $UPGRADE_VERSION" ] || { echo "ov --version: $(ct /usr/bin/ov --version)"; return 1; }
    # The old server was stopped for the upgrade; the socket is back and starts the new one on the next connection.
    [ "$(ct systemctl is-enabled ov-server.socket)" = enabled ] && active ov-server.socket || { echo "ov-server.socket lost"; return 1; }
    http_get /healthz | grep -q '^HTTP/1.1 200' || { echo "no /healthz after the upgrade"; return 1; }
    after=$(ct systemctl show -p MainPID --value ov-server.service)
    [ "$after" != 0 ] && [ "$after" != "$before" ] || { echo "ov-server.service was not restarted ($before -> $after)"; return 1; }
    jgrep ov-server.service -b _PID="$after" | grep -q "version=$UPGRADE_VERSION" || { echo "the running ov-server is not $UPGRADE_VERSION"; return 1; }
    [ "$(ct stat -c '%U:%G %a' /etc/ov)" = "root:root 755" ] || { echo "/etc/ov is $(ct stat -c '%U:%G %a' /etc/ov)"; return 1; }
    if [ $KEY_OK = 1 ]; then [ "$(ct stat -c '%U:%G %a' /etc/ov/myapp.key)" = "deploy:deploy 600" ] || { echo "/etc/ov/myapp.key changed"; return 1; }; fi
    as_user deploy "ov secret list --app myapp --env production $PWF" 2>&1 | grep -q "^${#ALL_NAMES[@]} secret(s) in myapp/production" ||
      { echo "the database lost secrets"; return 1; }
    if [ $CUT_OK = 1 ]; then fresh_seen; ct systemctl restart myapp.service; wait_for 15 seen_written && active myapp.service || { echo "myapp does not restart"; return 1; }; fi
  }
  check "apt upgrade to $UPGRADE_VERSION: socket kept, next connection runs the new ov-server; /etc/ov, keys and the database kept" -- upgrade
  timed upgrade $t
fi

purge() {
  local f bad=()
  ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y opaquevault opaquevault-server >/dev/null 2>&1 || { echo "apt-get purge failed"; return 1; }
  for f in /usr/bin/ov /usr/bin/ov-mcp /usr/bin/ov-server /lib/systemd/system/ov-server.service /lib/systemd/system/ov-server.socket \
           /etc/systemd/system/sockets.target.wants/ov-server.socket /usr/share/polkit-1/actions/com.opaquevault.policy \
           /usr/lib/tmpfiles.d/opaquevault.conf; do
    ! ct test -e "$f" || bad+=("$f left")
  done
  ! active ov-server.socket || bad+=("ov-server.socket still listening")
  ! http_get /healthz >/dev/null 2>&1 || bad+=("127.0.0.1:8443 still answers")
  ct test -s /var/lib/ov-server/ov-server.db || bad+=("the database was removed")
  [ "$(ct stat -c '%U:%G %a' /etc/ov 2>&1)" = "root:root 755" ] || bad+=("/etc/ov is $(ct stat -c '%U:%G %a' /etc/ov 2>&1)")
  if [ $KEY_OK = 1 ]; then ct test -f /etc/ov/myapp.key || bad+=("/etc/ov/myapp.key was removed"); fi
  ct getent passwd ov-server >/dev/null || bad+=("the ov-server user was removed (its files would be orphaned)")
  ! ct dpkg-query -W -f='${db:Status-Status}\n' opaquevault opaquevault-server 2>/dev/null | grep -qvx 'not-installed' ||
    bad+=("dpkg still knows: $(ct dpkg-query -W -f='${Package}:${db:Status-Status} ' opaquevault opaquevault-server 2>/dev/null)")
  [ ${#bad[@]} -eq 0 ] || { echo "${bad[*]}"; return 1; }
}
check "apt purge: binaries, units, enablement, tmpfiles and polkit files gone; database, /etc/ov and its keys, ov-server user kept" -- purge

# ---------------------------------------------------------------------------------------------------------------
# The guide and the harness agree.

# Each way: every command run "from the guide" is in it word for word, and every command of the guide was run
# (or is listed in GUIDE_NOT_RUN with why); docs/migrating-from-dotenv.md holds every command of the guide.
guide_both_ways() {
  local cmd bad=() ran n
  ran=$(sort -u "$GUIDE_RAN_FILE")
  n=$(grep -c . <<<"$ran")
  while IFS=$'\t' read -r src cmd; do
    if [ "$src" = guide ]; then grep -qxF -- "$cmd" <<<"$GUIDE_COMMANDS" || bad+=("ran but not in the guide: \`$cmd\`")
    else grep -qxF -- "$cmd" <<<"$DOCS_COMMANDS" || bad+=("ran but not in docs/migrating-from-dotenv.md: \`$cmd\`"); fi
  done <<<"$ran"
  while IFS= read -r cmd; do
    [ -n "$cmd" ] || continue
    [ -n "${GUIDE_NOT_RUN[$cmd]+x}" ] && continue
    grep -qxF -- "guide"$'\t'"$cmd" <<<"$ran" || bad+=("in the guide but never run: \`$cmd\`")
    grep -qxF -- "$cmd" <<<"$DOCS_COMMANDS" || bad+=("in the guide but not in docs/migrating-from-dotenv.md: \`$cmd\`")
  done <<<"$GUIDE_COMMANDS"
  [ ${#bad[@]} -eq 0 ] || { printf '%s\n' "${bad[@]}"; return 1; }
  echo "$n distinct commands run; not run: ${!GUIDE_NOT_RUN[*]}"
}
check "the guide word for word, both ways: each of its $(grep -c . <<<"$GUIDE_COMMANDS") commands run (but $(printf '`%s` ' "${!GUIDE_NOT_RUN[@]}")), each command run is in it; docs/ has them all" -- guide_both_ways

timed total $START
note "timing: ${TIMES[*]}"
summary
[ "$N_FAIL" -eq 0 ]
