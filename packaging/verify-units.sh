#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# verify-units.sh: `make units`. Runs `systemd-analyze verify` (which must exit 0 and print nothing: it exits 0 on
# unknown keys) and `systemd-analyze security --offline` (exposure must stay "OK" or better, below 5.0) on the units
# the packages ship, and on the agent units `ov agent install --root` renders (its failure fails the run).
# Works without systemd as PID 1: the units are checked in a scratch root that has the host's units and ours.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
THRESHOLD=${THRESHOLD:-49}   # systemd-analyze's 0-100 scale: below 50 is "OK", below 10 "SAFE"
command -v systemd-analyze >/dev/null || { echo "skip units: systemd-analyze is missing (apt-get install systemd); nothing verified"; exit 0; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
cp -a /lib/systemd/system "$root/usr/lib/systemd/"
ln -s usr/bin "$root/bin"
ln -s usr/bin "$root/sbin"
cp "$BIN/ov" "$BIN/ov-server" /bin/kill "$root/usr/bin/"
cp units/ov-server.service units/ov-server.socket "$root/etc/systemd/system/"
units=(ov-server.service ov-server.socket)
services=(ov-server.service)

# The agent's units are templates rendered by `ov agent install`; render them into the scratch root.
echo 'deploy:x:1000:1000::/home/deploy:/bin/sh' >"$root/etc/passwd"
echo 'deploy:x:1000:' >"$root/etc/group"
mkdir -p "$root/etc/ov" && head -c 32 /dev/urandom >"$root/etc/ov/myapp.key" && chmod 600 "$root/etc/ov/myapp.key"
if ! out=$("$BIN/ov" agent install --root "$root" --machine-key /etc/ov/myapp.key --app myapp --env production --user deploy 2>&1); then
  echo "$out"; echo "units: ov agent install --root $root: FAILED"; exit 1
fi
units+=(ov-agent.service ov-agent.socket ov-agent-credentials.socket)
services+=(ov-agent.service)

# Both must hold: exit status 0 (a missing ExecStart= binary, a bad unit name, a unit that fails to load) and no
# output (unknown keys and bad values are only warnings, with status 0).
vrc=0
out=$(systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>&1) || vrc=$?
if [ "$vrc" -ne 0 ] || [ -n "$out" ]; then echo "$out"; echo "units: systemd-analyze verify ${units[*]}: FAILED (exit $vrc)"; exit 1; fi
echo "units: systemd-analyze verify ${units[*]}: clean"
rc=0
for s in "${services[@]}"; do
  line=$(systemd-analyze security --offline=true --root="$root" --threshold="$THRESHOLD" "$s" 2>&1 | tail -n 1) || rc=1
  echo "units: $line"
done
exit $rc
