#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build-rpm.sh OUTDIR: builds the opaquevault and opaquevault-server .rpms from rpm/opaquevault.spec (rpmbuild -bb,
# on a source tarball of the staged tree), leaves them in OUTDIR, then runs rpmlint on the spec and the .rpms when
# rpmlint is installed. The version is the top of debian/changelog, so both formats carry the same one.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: build-rpm.sh OUTDIR}")
command -v rpmbuild >/dev/null || { echo "build-rpm: rpmbuild is missing (apt-get install rpm)" >&2; exit 1; }
version=$(sed -n '1s/^opaquevault (\([^)]*\)).*/\1/p' debian/changelog)
version=${version//-/_}   # no "-" in an RPM version
top=$out/.build
rm -rf "$top" && mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
packaging/stage-source.sh "$top/opaquevault-$version"
if [ ! -f "$top/opaquevault-$version/LICENSE" ]; then
  echo "build-rpm: warning: no LICENSE in the tree; using /usr/share/common-licenses/Apache-2.0 for this build" >&2
  cp /usr/share/common-licenses/Apache-2.0 "$top/opaquevault-$version/LICENSE"
fi
tar -C "$top" -czf "$top/SOURCES/opaquevault-$version.tar.gz" "opaquevault-$version"
cp packaging/sysusers.d/opaquevault.conf "$top/SOURCES/opaquevault.sysusers"
cp packaging/sysusers.d/opaquevault-server.conf "$top/SOURCES/opaquevault-server.sysusers"
# On a dpkg system the rpm database is empty, so BuildRequires cannot be checked: skip that check there.
# Debian's /bin/sh (dash) also cannot run rpm's brp-* scripts: use bash for the build scripts there.
nodeps=(); rpm -q rpm >/dev/null 2>&1 ||
  nodeps=(--nodeps --define "_buildshell /bin/bash" --define "__brp_compress /bin/bash %{_rpmconfigdir}/brp-compress %{_prefix}")
rpmbuild -bb "${nodeps[@]}" --define "_topdir $top" --define "ov_version $version" rpm/opaquevault.spec >"$top/build.log" 2>&1 ||
  { tail -n 40 "$top/build.log" >&2; exit 1; }
rm -f "$out"/*.rpm
mv "$top"/RPMS/*/*.rpm "$out"/
rm -rf "$top"
ls -1 "$out"
if command -v rpmlint >/dev/null; then
  echo "rpmlint rpm/opaquevault.spec $out/*.rpm"
  rpmlint -c packaging/rpmlint.toml rpm/opaquevault.spec "$out"/*.rpm
else
  echo "build-rpm: rpmlint is not installed; skipped (apt-get install rpmlint)"
fi
