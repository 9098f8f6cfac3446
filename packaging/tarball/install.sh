#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# install.sh [--prefix DIR] [--server] [--uninstall]: installs this OpaqueVault release tarball.
#   ov, ov-mcp (with --server, ov-server) -> PREFIX/bin         (default PREFIX: /usr/local; the user guide's
#                                                                ExecStart=/usr/local/bin/ov run ... names it)
#   man pages, shell completions         -> PREFIX/share/...
#   /etc/ov                              -> root:root 0755 (systemd-tmpfiles keeps it so at every boot)
#   with --server: the ov-server user, ov-server.service/.socket in /etc/systemd/system (ExecStart= pointing at
#   PREFIX/bin/ov-server), enabled but not started
# Run as root. Nothing is downloaded. A .deb or .rpm install puts ov in /usr/bin instead: use that path in units.
set -eu
prefix=/usr/local server=0 uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --server) server=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '3,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "install.sh: error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $prefix in /*) ;; *) echo "install.sh: error: --prefix must be an absolute path" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "install.sh: error: run as root (sudo ./install.sh)" >&2; exit 4; }
here=$(cd "$(dirname "$0")" && pwd)

if [ $uninstall = 1 ]; then
  if [ -f /etc/systemd/system/ov-server.socket ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now ov-server.socket ov-server.service >/dev/null 2>&1 || true
  fi
  rm -f "$prefix/bin/ov" "$prefix/bin/ov-mcp" "$prefix/bin/ov-server" "$prefix/share/man/man1/ov.1" "$prefix/share/man/man1/ov-server.1" \
    "$prefix/share/bash-completion/completions/ov" "$prefix/share/zsh/site-functions/_ov" \
    "$prefix/share/fish/vendor_completions.d/ov.fish" /etc/tmpfiles.d/opaquevault.conf \
    /etc/systemd/system/ov-server.service /etc/systemd/system/ov-server.socket /etc/sysusers.d/opaquevault-server.conf
  echo "install.sh: removed OpaqueVault from $prefix (/etc/ov, keys and /var/lib/ov-server are kept)"
  exit 0
fi

# Binaries: a temporary name in the same directory, then rename, so a running ov is never half-written.
install -d -m 0755 "$prefix/bin" "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
  "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
put() { install -m "$1" "$2" "$3.new.$$" && mv -f "$3.new.$$" "$3"; }
put 0755 "$here/bin/ov" "$prefix/bin/ov"
put 0755 "$here/bin/ov-mcp" "$prefix/bin/ov-mcp" # `ov mcp serve` execs it from ov's directory
put 0644 "$here/share/man/man1/ov.1" "$prefix/share/man/man1/ov.1"
put 0644 "$here/share/completions/ov.bash" "$prefix/share/bash-completion/completions/ov"
put 0644 "$here/share/completions/ov.zsh" "$prefix/share/zsh/site-functions/_ov"
put 0644 "$here/share/completions/ov.fish" "$prefix/share/fish/vendor_completions.d/ov.fish"
install -d -m 0755 /etc/tmpfiles.d
put 0644 "$here/units/opaquevault.tmpfiles" /etc/tmpfiles.d/opaquevault.conf
if [ -d /etc/ov ]; then
  echo "install.sh: /etc/ov exists; left as it is ($(stat -c '%U:%G %a' /etc/ov))"
else
  install -d -o root -g root -m 0755 /etc/ov
fi
if [ $server = 1 ]; then
  put 0755 "$here/bin/ov-server" "$prefix/bin/ov-server"
  put 0644 "$here/share/man/man1/ov-server.1" "$prefix/share/man/man1/ov-server.1"
  install -d -m 0755 /etc/sysusers.d /etc/systemd/system
  put 0644 "$here/units/opaquevault-server.sysusers" /etc/sysusers.d/opaquevault-server.conf
  sed "s|/usr/bin/ov-server|$prefix/bin/ov-server|g" "$here/units/ov-server.service" >/etc/systemd/system/ov-server.service.new.$$
  mv -f /etc/systemd/system/ov-server.service.new.$$ /etc/systemd/system/ov-server.service
  put 0644 "$here/units/ov-server.socket" /etc/systemd/system/ov-server.socket
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemd-sysusers /etc/sysusers.d/opaquevault-server.conf
    systemctl daemon-reload
    systemctl enable ov-server.socket >/dev/null
  fi
fi
echo "install.sh: installed $("$prefix/bin/ov" --version) as $prefix/bin/ov$([ $server = 1 ] && echo " and ov-server")"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "install.sh: hint: $prefix/bin is not in PATH" ;; esac
