#!/bin/bash
# Fetch (if needed), verify and unpack the pinned base:
#   build/pristine/debian  upstream + Debian's quilt series (dpkg-source -x)
#   build/pristine/orig    upstream only (the orig tarball)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stamp=$BUILD/pristine/.stamp
if [ -f "$stamp" ] && [ -d "$PRISTINE_DEB" ] && [ -d "$PRISTINE_ORIG" ]; then
    exit 0
fi

mkdir -p "$DL"
if [ -f "$SHARED/upstream/$DSC" ]; then
    note "base: using $SHARED/upstream"
    for f in "$DSC" "$ORIG" "$DEBTAR" SHA256SUMS; do
        cp -f "$SHARED/upstream/$f" "$DL/"
    done
else
    note "base: $SHARED/upstream has no $DSC; fetching with apt-get source"
    list=/etc/apt/sources.list.d/trixie-src.sources
    if [ ! -e "$list" ]; then
        [ "$(id -u)" = 0 ] || die "need root to add the trixie deb-src entry ($list)"
        cat > "$list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        apt-get update -q
    fi
    (cd "$DL" && apt-get source --download-only "qemu=$DEB_VERSION")
    # The sums we trust are the ones recorded with the project.
    cat > "$DL/SHA256SUMS" <<'SUMS'
da73c092f5684c551b0334d675eb16a3dec91e1edea94759cfb1102fa4a0364e  qemu_10.0.13+ds-0+deb13u1.debian.tar.xz
a426c892e5369058c3423816c8625bc8010bb5a58ece57261f62b64ee4d765ad  qemu_10.0.13+ds-0+deb13u1.dsc
6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae  qemu_10.0.13+ds.orig.tar.xz
SUMS
fi

# Refuse anything that is not byte-for-byte the pinned package.
expected=$TOP/tooling/SHA256SUMS
if ! cmp -s "$expected" "$DL/SHA256SUMS"; then
    die "SHA256SUMS in the source differs from tooling/SHA256SUMS: the pinned
base must be qemu $DEB_VERSION exactly. Replace ../shared/upstream with the
files of that version (apt-get source qemu=$DEB_VERSION) and retry."
fi
if ! (cd "$DL" && sha256sum --quiet -c "$expected"); then
    rm -f "$DL"/qemu_*
    die "checksum mismatch in the pinned base (see above): the files are not
qemu $DEB_VERSION. Delete them, fetch that exact version again
(apt-get source qemu=$DEB_VERSION, or restore ../shared/upstream) and retry."
fi

rm -rf "$BUILD/pristine"
mkdir -p "$BUILD/pristine"
note "base: unpacking with dpkg-source (Debian's patches applied)"
(cd "$DL" && dpkg-source --no-check -x "$DSC" "$PRISTINE_DEB" >/dev/null)
note "base: unpacking the orig tarball (pristine upstream)"
mkdir -p "$PRISTINE_ORIG"
tar -xJf "$DL/$ORIG" -C "$PRISTINE_ORIG" --strip-components=1
touch "$stamp"
