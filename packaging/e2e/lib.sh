# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are read by e2e.sh, which sources this file
# shellcheck disable=SC2016  # single-quoted bash -c scripts take their arguments as "$1"
# Helpers of the real-systemd harness (packaging/e2e/e2e.sh): a cached Debian root filesystem, an overlay per
# run, systemd-nspawn boots, commands inside with nsenter, and the ok/FAIL/skip report. Sourced, not run.
#
# Facts this relies on are in docs/design/testing-systemd.md: nspawn needs --keep-unit, `systemctl reboot`
# inside makes nspawn exit 133, nsenter -a into the container's PID 1 runs anything inside.

E2E_SUITE=${E2E_SUITE:-bookworm}
E2E_CACHE=${E2E_CACHE:-/var/cache/opaquevault-e2e}
# What the checks need inside, beyond minbase. Keep it short: every package costs debootstrap time.
E2E_PACKAGES=${E2E_PACKAGES:-systemd,systemd-sysv,dbus,polkitd,libpam-systemd,procps,sudo}
E2E_MACHINE=${E2E_MACHINE:-ov-e2e}
E2E_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------------------------------------------------------
# Report

N_OK=0 N_FAIL=0 N_SKIP=0 CHECK_NO=0
ok()   { CHECK_NO=$((CHECK_NO + 1)); N_OK=$((N_OK + 1));     printf 'ok   %2d %s\n' "$CHECK_NO" "$*"; }
fail() { CHECK_NO=$((CHECK_NO + 1)); N_FAIL=$((N_FAIL + 1)); printf 'FAIL %2d %s\n' "$CHECK_NO" "$*"; }
skip() { CHECK_NO=$((CHECK_NO + 1)); N_SKIP=$((N_SKIP + 1)); printf 'skip %2d %s\n' "$CHECK_NO" "$*"; }
note() { printf '     %s\n' "$*"; }
# check NAME -- CMD...: ok when CMD succeeds, else FAIL with the last lines of its output; returns CMD's success.
# CMD runs in this shell (not a subshell), so it may reboot the container or set variables.
check() {
  local name=$1 rc=0
  shift; [ "${1:-}" = -- ] && shift
  if "$@" >"$E2E_WORK/check.out" 2>&1; then ok "$name"
  else rc=1; fail "$name: $(tail -n 3 "$E2E_WORK/check.out" | tr '\n' ' ')"; fi
  cat "$E2E_WORK/check.out" >>"$E2E_WORK/harness.log"
  return $rc
}
summary() {
  local s="$N_OK passed, $N_FAIL failed"
  [ "$N_SKIP" -gt 0 ] && s+=", $N_SKIP skipped"
  echo "$s"
}
log() { printf '%s %s\n' "$(date +%T)" "$*" >>"$E2E_WORK/harness.log"; }

# ---------------------------------------------------------------------------------------------------------------
# Root filesystem: debootstrap once, keep a zstd tarball keyed by suite, mirror and package list, unpack it once
# into a lower directory that every run mounts read-only under an overlay.

e2e_mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb)\s+\S+debian/?(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
      awk '{print $2}' | grep -v security | head -n 1)
  echo "${m:-http://deb.debian.org/debian}"
}

# rootfs_lower: sets E2E_LOWER to the lower directory, building the tarball and unpacking it when needed, and
# E2E_ROOTFS_CACHE to hit or miss.
E2E_LOWER='' E2E_ROOTFS_CACHE=''
rootfs_lower() {
  local mirror key tarball lower tmp
  mirror=$(e2e_mirror)
  key=$(printf '%s\n' "$E2E_SUITE" "$mirror" "$E2E_PACKAGES" "v2" | sha256sum | cut -c1-12)
  tarball=$E2E_CACHE/$E2E_SUITE-$key.tar.zst
  lower=$E2E_CACHE/$E2E_SUITE-$key.root
  mkdir -p "$E2E_CACHE"
  E2E_ROOTFS_CACHE=hit
  if [ ! -s "$tarball" ]; then
    E2E_ROOTFS_CACHE=miss
    log "debootstrap $E2E_SUITE from $mirror with $E2E_PACKAGES"
    tmp=$(mktemp -d "$E2E_CACHE/debootstrap.XXXXXX")
    if ! debootstrap --variant=minbase --include="$E2E_PACKAGES" "$E2E_SUITE" "$tmp" "$mirror" \
        >>"$E2E_WORK/debootstrap.log" 2>&1; then
      rm -rf "$tmp"
      echo "debootstrap failed; see $E2E_WORK/debootstrap.log" >&2
      return 1
    fi
    rootfs_prepare "$tmp"
    tar --numeric-owner --xattrs --acls -C "$tmp" -cf - . | zstd -q -T0 -o "$tarball.part"
    mv "$tarball.part" "$tarball"
    rm -rf "$tmp"
  fi
  if [ ! -e "$lower/.unpacked" ]; then
    rm -rf "$lower"; mkdir -p "$lower"
    zstd -q -dc "$tarball" | tar --numeric-owner --xattrs --acls -C "$lower" -xf -
    touch "$lower/.unpacked"
  fi
  E2E_LOWER=$lower
}

# rootfs_prepare ROOT: what every boot wants and debootstrap does not do.
rootfs_prepare() {
  local root=$1
  rm -f "$root"/var/cache/apt/archives/*.deb
  mkdir -p "$root/var/log/journal"        # persistent journal: the previous boot's logs survive a reboot
  : >"$root/etc/machine-id"               # each run writes its own (overlay_up)
  echo "$E2E_MACHINE" >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$E2E_MACHINE" >"$root/etc/hosts"
  # Nothing in the container may try to reach the network: it has none (--private-network).
  : >"$root/etc/apt/sources.list"
  # Boot faster: units a container never needs.
  local u
  for u in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
           man-db.timer dpkg-db-backup.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
}

# overlay_up LOWER: mounts a fresh overlay at $E2E_WORK/root and gives it its own machine id.
overlay_up() {
  mkdir -p "$E2E_WORK/upper" "$E2E_WORK/ovwork" "$E2E_WORK/root"
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$E2E_WORK/upper,workdir=$E2E_WORK/ovwork" "$E2E_WORK/root"
  E2E_MOUNTED=1
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$E2E_WORK/root/etc/machine-id"
  echo >>"$E2E_WORK/root/etc/machine-id"
}

overlay_down() {
  [ "${E2E_MOUNTED:-0}" = 1 ] || return 0
  umount "$E2E_WORK/root" 2>/dev/null || umount -l "$E2E_WORK/root"
  E2E_MOUNTED=0
}

# ---------------------------------------------------------------------------------------------------------------
# Container

NSPAWN_PID='' CPID=''

# boot: starts systemd-nspawn in the background and waits until the system is up. Sets NSPAWN_PID and CPID
# (the container's PID 1 as seen from the host).
boot() {
  local _ state=''
  systemd-nspawn -D "$E2E_WORK/root" --register=no --keep-unit --boot --console=passive --private-network \
    --machine="$E2E_MACHINE" --capability=CAP_IPC_LOCK --system-call-filter=@memlock \
    --system-call-filter=memfd_secret --bind-ro="$E2E_SHARE:/share" \
    </dev/null >>"$E2E_WORK/nspawn.log" 2>&1 &
  NSPAWN_PID=$!
  CPID=''
  for _ in $(seq 600); do
    kill -0 "$NSPAWN_PID" 2>/dev/null || { echo "systemd-nspawn exited; see $E2E_WORK/nspawn.log" >&2; return 1; }
    if [ -z "$CPID" ]; then
      local c
      c=$(cat "/proc/$NSPAWN_PID/task/$NSPAWN_PID/children" 2>/dev/null) || c=''
      # nspawn's helper child execs systemd once the namespaces are ready.
      for c in $c; do [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && CPID=$c; done
    fi
    if [ -n "$CPID" ]; then
      state=$(nsenter -t "$CPID" -a -- systemctl is-system-running 2>/dev/null) || true
      case $state in running | degraded) log "booted: $state (pid $CPID)"; return 0 ;; esac
    fi
    sleep 0.1
  done
  echo "the container did not come up (state: ${state:-unknown})" >&2
  return 1
}

# wait_nspawn SECONDS: waits for our systemd-nspawn to exit and sets NSPAWN_RC to its status; fails on timeout.
# (Not in a $(...) subshell: only this shell can reap its child.)
NSPAWN_RC=''
wait_nspawn() {
  local _
  for _ in $(seq $(($1 * 10))); do
    if ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
      NSPAWN_RC=0; wait "$NSPAWN_PID" || NSPAWN_RC=$?
      NSPAWN_PID='' CPID=''
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# reboot_container [CMD...]: CMD (default: `systemctl reboot` inside) reboots the container, nspawn exits 133,
# and the container boots again on the same overlay: a real reboot.
reboot_container() {
  if [ $# -gt 0 ]; then "$@" >/dev/null 2>&1; else ct systemctl reboot >/dev/null 2>&1; fi
  wait_nspawn 60 || { echo "the container did not go down within 60 s" >&2; return 1; }
  [ "$NSPAWN_RC" = 133 ] || { echo "systemd-nspawn exited $NSPAWN_RC on reboot, not 133" >&2; return 1; }
  boot
}

# poweroff_container: `systemctl poweroff` inside; if nspawn is still there after 30 s, TERM then KILL it
# (only the nspawn we started, by its PID).
poweroff_container() {
  [ -n "$NSPAWN_PID" ] || return 0
  [ -n "$CPID" ] && ct systemctl poweroff >/dev/null 2>&1
  wait_nspawn 30 && return 0
  kill -TERM "$NSPAWN_PID" 2>/dev/null
  wait_nspawn 10 && return 0
  kill -KILL "$NSPAWN_PID" 2>/dev/null
  wait_nspawn 10
}

# ct CMD...: runs CMD as root inside the container, with a clean environment.
ct() {
  nsenter -t "$CPID" -a -- env -i PATH="$E2E_PATH" LANG=C.UTF-8 HOME=/root USER=root LOGNAME=root TERM=dumb "$@"
}

# as_user USER SHELL-COMMAND: runs a shell command as USER inside the container, in USER's home, with the environment
# a login gives (no PAM session: nothing here needs one).
as_user() {
  local user=$1; shift
  nsenter -t "$CPID" -a -- env -i PATH="$E2E_PATH" LANG=C.UTF-8 TERM=dumb \
    setpriv --reuid="$user" --regid="$user" --init-groups --reset-env \
    bash -c 'cd ~ && eval "$1"' bash "$*"
}

# cpath PATH: the host path of a file in the container (the overlay is mounted on the host).
cpath() { echo "$E2E_WORK/root$1"; }
