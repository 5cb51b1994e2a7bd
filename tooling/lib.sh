# Shared settings for the project's scripts.  Source it; do not run it.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
SHARED=${SHARED:-$TOP/../shared}

DEB_VERSION=1:10.0.13+ds-0+deb13u1
DEB_VERSION_NOEPOCH=10.0.13+ds-0+deb13u1
UPSTREAM_VERSION=10.0.13
DSC=qemu_${DEB_VERSION_NOEPOCH}.dsc
ORIG=qemu_10.0.13+ds.orig.tar.xz
DEBTAR=qemu_${DEB_VERSION_NOEPOCH}.debian.tar.xz

DL=$BUILD/upstream             # the three package files, verified
PRISTINE_DEB=$BUILD/pristine/debian   # dpkg-source -x: orig + Debian's quilt series
PRISTINE_ORIG=$BUILD/pristine/orig    # the orig tarball only
SRC=$BUILD/src                 # git: base commit + one commit per patch
OBJ=$BUILD/qemu                # objdir of the patched build
BASE_SRC=$BUILD/baseline/src  # unpatched tree for `make baseline`
BASE_OBJ=$BUILD/baseline/qemu # its objdir (src/ and qemu/ side by side, for ccache)

PATCHES=$TOP/patches
SERIES=$PATCHES/series
NEWFILES=$PATCHES/new-files    # "<path> <patch>" for every file we own

# Debian's firmware packages: seabios, qemu-system-data, ipxe-qemu.
FIRMWARE_PATH=/usr/share/seabios:/usr/share/qemu:/usr/lib/ipxe/qemu

export CCACHE_BASEDIR=$BUILD
export CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}

# Use Debian's python, which sees the backported meson.
PYTHON=/usr/bin/python3

# Fixed identity and dates for commits made in build/src, so that
# `make tree && make export` is byte-for-byte stable.
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-vfio-series}
export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-vfio-series@localhost}
export GIT_COMMITTER_NAME=vfio-series
export GIT_COMMITTER_EMAIL=vfio-series@localhost

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

note() {
    echo "== $*"
}

# Print the patch names of the series, in order, without comments.
series_patches() {
    [ -f "$SERIES" ] || return 0
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$SERIES" | grep -v '^$' || true
}

# Print the new files owned by patch $1.
owned_files() {
    [ -f "$NEWFILES" ] || return 0
    awk -v p="$1" '!/^#/ && NF == 2 && $2 == p { print $1 }' "$NEWFILES"
}

# A hash of every input: the series, the manifest, the patches, our files.
inputs_hash() {
    (
        cd "$TOP"
        cat "$SERIES" "$NEWFILES" 2>/dev/null || true
        for p in $(series_patches); do
            cat "$PATCHES/$p"
            for f in $(owned_files "$p"); do
                echo "$f"; cat "$f"; stat -c %a "$f"
            done
        done
    ) | sha256sum | cut -d' ' -f1
}
