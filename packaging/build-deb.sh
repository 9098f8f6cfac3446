#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build-deb.sh OUTDIR [VERSION]: builds opaquevault and opaquevault-server .debs with dpkg-buildpackage from a
# staged copy of the tree (see stage-source.sh) and leaves them, with the .changes and .buildinfo, in OUTDIR.
# VERSION (default: the top of debian/changelog) is how the e2e harness builds an upgrade.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: build-deb.sh OUTDIR [VERSION]}")
version=${2:-}
for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev debhelper)" >&2; exit 1; }
done
work=$out/.build
packaging/stage-source.sh "$work/src" "$version"
rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo
(cd "$work/src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || { tail -n 40 "$work/build.log" >&2; exit 1; }
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
mv "$work"/*.ddeb "$out"/ 2>/dev/null || true
rm -rf "$work"
ls -1 "$out"
