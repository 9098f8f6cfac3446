#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# stage-source.sh DIR [VERSION]: copies the source tree (tracked and untracked files that git does not ignore)
# into DIR, so packages are built away from the shared working tree: dpkg-buildpackage writes next to its
# source and into debian/, and never touches bin/ or dist/ here. With VERSION, a changelog entry for it is put
# on top of debian/changelog in the copy (the harness builds an "upgrade" this way).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: stage-source.sh DIR [VERSION]}
version=${2:-}
rm -rf "$dir"
mkdir -p "$dir"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -C "$dir" -xf -
else
  tar --exclude=./bin --exclude=./dist --exclude=./.git -cf - . | tar -C "$dir" -xf -
fi
if [ -n "$version" ]; then
  {
    printf 'opaquevault (%s) unstable; urgency=medium\n\n  * Rebuild as %s.\n\n' "$version" "$version"
    printf ' -- OpaqueVault maintainers <packaging@opaquevault.com>  %s\n\n' "$(date -R)"
    cat debian/changelog
  } >"$dir/debian/changelog"
fi
