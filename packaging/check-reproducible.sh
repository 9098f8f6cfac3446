#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-reproducible.sh: `make repro`. Builds the .debs and the release tarball twice from this tree, in two
# directories, and fails unless every file is byte-identical (Go's -trimpath build, SOURCE_DATE_EPOCH from the
# changelog for dpkg, sorted tar entries with fixed times and owners for the tarball).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null || { echo "skip repro: $tool is missing (apt-get install dpkg-dev debhelper)"; exit 0; }
done
out=$(mktemp -d /var/tmp/ov-repro.XXXXXX)
trap 'rm -rf "$out"' EXIT
for n in 1 2; do
  packaging/build-deb.sh "$out/$n/deb" >/dev/null
  packaging/build-tarball.sh "$out/$n/tarball" >/dev/null
done
rc=0 n=0
while IFS= read -r f; do
  n=$((n + 1))
  if cmp -s "$out/1/$f" "$out/2/$f"; then echo "repro: same  $f ($(sha256sum <"$out/1/$f" | cut -c1-16))"
  else echo "repro: DIFFERENT $f"; rc=1; fi
done < <(cd "$out/1" && find . -type f \( -name '*.deb' -o -name '*.tar.gz' \) | sort)
[ "$n" -gt 0 ] || { echo "repro: nothing was built"; exit 1; }
[ $rc = 0 ] && echo "repro: $n artifacts byte-identical across two builds" || echo "repro: FAILED"
exit $rc
