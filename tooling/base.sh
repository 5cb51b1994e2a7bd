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
up=$SHARED/$UPSTREAM_DIR
if [ -f "$up/$DSC" ]; then
    note "base: using $up"
    for f in "$DSC" "$ORIG" "$DEBTAR" SHA256SUMS; do
        cp -f "$up/$f" "$DL/"
    done
else
    note "base: $up has no $DSC; fetching with apt-get source"
    list=/etc/apt/sources.list.d/$DEB_SUITE-src.sources
    if [ ! -e "$list" ]; then
        [ "$(id -u)" = 0 ] || die "need root to add the $DEB_SUITE deb-src entry ($list)"
        suites=$DEB_SUITE
        [ "$DEB_SUITE" = sid ] || suites="$DEB_SUITE $DEB_SUITE-updates"
        cat > "$list" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suites
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        apt-get update -q
    fi
    (cd "$DL" && apt-get source --download-only "qemu=$DEB_VERSION")
    # The sums we trust are the ones recorded with the project.
    cp "$SUMS" "$DL/SHA256SUMS"
fi

# Refuse anything that is not byte-for-byte the pinned package.
if ! cmp -s "$SUMS" "$DL/SHA256SUMS"; then
    die "SHA256SUMS in the source differs from ${SUMS#$TOP/}: the pinned
base must be qemu $DEB_VERSION exactly. Replace ../shared/$UPSTREAM_DIR with the
files of that version (apt-get source qemu=$DEB_VERSION) and retry."
fi
if ! (cd "$DL" && sha256sum --quiet -c "$SUMS"); then
    rm -f "$DL"/qemu_*
    die "checksum mismatch in the pinned base (see above): the files are not
qemu $DEB_VERSION. Delete them, fetch that exact version again
(apt-get source qemu=$DEB_VERSION, or restore ../shared/$UPSTREAM_DIR) and retry."
fi

rm -rf "$BUILD/pristine"
mkdir -p "$BUILD/pristine"
note "base: unpacking with dpkg-source (Debian's patches applied)"
(cd "$DL" && dpkg-source --no-check -x "$DSC" "$PRISTINE_DEB" >/dev/null)
note "base: unpacking the orig tarball (pristine upstream)"
mkdir -p "$PRISTINE_ORIG"
tar -xJf "$DL/$ORIG" -C "$PRISTINE_ORIG" --strip-components=1
touch "$stamp"
