#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build-tarball.sh OUTDIR [VERSION]: the release tarball, opaquevault-VERSION-linux-ARCH.tar.gz, for machines
# installed without a package manager: ov, ov-mcp (the MCP server `ov mcp serve` execs) and ov-server built from this tree (static, -trimpath), the man pages,
# completions, ov-server's units, the docs, and install.sh, which puts ov in /usr/local/bin: the
# path the user guide's unit names (ExecStart=/usr/local/bin/ov run ...). Reproducible: file times are
# SOURCE_DATE_EPOCH (the newest commit's), owners are root, entries are sorted.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: build-tarball.sh OUTDIR [VERSION]}")
version=${2:-$(dpkg-parsechangelog -S Version 2>/dev/null || sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)}
arch=$(go env GOARCH)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
name=opaquevault-$version-linux-$arch
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
d=$stage/$name
mkdir -p "$d/bin" "$d/share/man/man1" "$d/share/completions" "$d/units" "$d/doc"
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-X github.com/opaquevault/opaquevault/internal/version.Version=$version" \
  -o "$d/bin/" ./cmd/ov ./cmd/ov-mcp ./cmd/ov-server
install -m 0644 packaging/man/ov.1 packaging/man/ov-server.1 "$d/share/man/man1/"
install -m 0644 packaging/completions/ov.bash packaging/completions/ov.zsh packaging/completions/ov.fish "$d/share/completions/"
install -m 0644 units/ov-server.service units/ov-server.socket "$d/units/"
install -m 0644 packaging/tmpfiles.d/opaquevault.conf "$d/units/opaquevault.tmpfiles"
install -m 0644 packaging/sysusers.d/opaquevault-server.conf "$d/units/opaquevault-server.sysusers"
install -m 0644 README.md LICENSE "$d/"
install -m 0644 docs/*.md "$d/doc/"
install -m 0755 packaging/tarball/install.sh "$d/install.sh"
mkdir -p "$out"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --mode='go-w' \
  -C "$stage" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
