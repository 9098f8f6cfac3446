#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# apt-repo.sh DEBDIR REPODIR: makes REPODIR a flat, signed apt repository of the .debs in DEBDIR (Packages,
# Packages.gz, Release, InRelease, Release.gpg) and puts the signing key's public half beside them as
# opaquevault-archive-keyring.gpg, so that the real `apt install opaquevault` can be run against it:
#   sudo install -m 0644 REPODIR/opaquevault-archive-keyring.gpg /usr/share/keyrings/
#   echo 'deb [signed-by=/usr/share/keyrings/opaquevault-archive-keyring.gpg] file:/path/to/REPODIR ./' |
#     sudo tee /etc/apt/sources.list.d/opaquevault.list
#   sudo apt-get update && sudo apt-get install opaquevault opaquevault-server
# The signing key is never in the repository. OV_APT_GNUPGHOME names a GnuPG home that holds it (a release
# machine's); without it, a key for tests is made once in dist/apt-signing (0700) and reused.
set -euo pipefail
src=${1:?usage: apt-repo.sh DEBDIR REPODIR}
repo=${2:?usage: apt-repo.sh DEBDIR REPODIR}
command -v apt-ftparchive >/dev/null || { echo "apt-repo: apt-ftparchive is missing (apt-get install apt-utils)" >&2; exit 1; }
command -v gpg >/dev/null || { echo "apt-repo: gpg is missing (apt-get install gnupg)" >&2; exit 1; }
ls "$src"/*.deb >/dev/null 2>&1 || { echo "apt-repo: no .deb in $src (run make deb)" >&2; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd)
export GNUPGHOME=${OV_APT_GNUPGHOME:-$top/dist/apt-signing}
uid='OpaqueVault test archive key <archive@opaquevault.invalid>'
if [ -z "${OV_APT_GNUPGHOME:-}" ] && ! gpg --batch --list-secret-keys "$uid" >/dev/null 2>&1; then
  install -d -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-generate-key "$uid" ed25519 sign 1y
  echo "apt-repo: made a test signing key in $GNUPGHOME (set OV_APT_GNUPGHOME to sign with a real one)"
fi
signer=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
[ -n "$signer" ] || { echo "apt-repo: no secret key in $GNUPGHOME" >&2; exit 1; }
rm -rf "$repo"
mkdir -p "$repo"
cp "$src"/*.deb "$repo"/
cd "$repo"
apt-ftparchive packages . >Packages
gzip -9nk Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin=OpaqueVault -o APT::FTPArchive::Release::Label=OpaqueVault \
  -o APT::FTPArchive::Release::Suite=local -o APT::FTPArchive::Release::Codename=local release . >Release
gpg --batch --yes --local-user "$signer" --clearsign -o InRelease Release
gpg --batch --yes --local-user "$signer" --armor --detach-sign -o Release.gpg Release
gpg --batch --yes --export "$signer" >opaquevault-archive-keyring.gpg
gpgv --keyring ./opaquevault-archive-keyring.gpg InRelease 2>/dev/null || { echo "apt-repo: InRelease does not verify" >&2; exit 1; }
echo "apt-repo: $(grep -c '^Package:' Packages) package(s) in $PWD, signed by $signer"
