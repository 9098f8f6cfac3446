#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# apt-repo.sh DEBDIR REPODIR: makes REPODIR a flat apt repository of the .debs in DEBDIR (Packages, Packages.gz,
# Release), so that the real `apt install opaquevault` can be run against it:
#   echo 'deb [trusted=yes] file:/path/to/REPODIR ./' | sudo tee /etc/apt/sources.list.d/opaquevault.list
#   sudo apt-get update && sudo apt-get install opaquevault opaquevault-server
# It is not signed: [trusted=yes] is for test machines only. A published repository is signed with the
# project's key (apt-ftparchive release ... | gpg --clearsign -o InRelease).
set -euo pipefail
src=${1:?usage: apt-repo.sh DEBDIR REPODIR}
repo=${2:?usage: apt-repo.sh DEBDIR REPODIR}
command -v apt-ftparchive >/dev/null || { echo "apt-repo: apt-ftparchive is missing (apt-get install apt-utils)" >&2; exit 1; }
ls "$src"/*.deb >/dev/null 2>&1 || { echo "apt-repo: no .deb in $src (run make deb)" >&2; exit 1; }
rm -rf "$repo"
mkdir -p "$repo"
cp "$src"/*.deb "$repo"/
cd "$repo"
apt-ftparchive packages . >Packages
gzip -9nk Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin=OpaqueVault -o APT::FTPArchive::Release::Label=OpaqueVault \
  -o APT::FTPArchive::Release::Suite=local -o APT::FTPArchive::Release::Codename=local release . >Release
echo "apt-repo: $(grep -c '^Package:' Packages) package(s) in $PWD"
