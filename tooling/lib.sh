# Shared settings for the project's scripts.  Source it; do not run it.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The base: QEMU_BASE (or BASE) is 10.0 (the default, Debian 13's
# 10.0.13) or 10.2 (Debian sid's 10.2.2).  Everything below follows it.
QEMU_BASE=${QEMU_BASE:-${BASE:-10.0}}
case "$QEMU_BASE" in
    10.0|10.0.13)
        QEMU_BASE=10.0
        DEB_VERSION=1:10.0.13+ds-0+deb13u1
        UPSTREAM_VERSION=10.0.13
        DEB_SUITE=trixie        # apt-get source falls back to this suite
        UPSTREAM_DIR=upstream   # ../shared/<this>: the pinned files
        BUILD_DEFAULT=$TOP/build ;;
    10.2|10.2.2)
        QEMU_BASE=10.2
        DEB_VERSION=1:10.2.2+ds-1
        UPSTREAM_VERSION=10.2.2
        DEB_SUITE=sid
        UPSTREAM_DIR=upstream-10.2
        BUILD_DEFAULT=$TOP/build/10.2 ;;
    *)
        echo "QEMU_BASE=$QEMU_BASE: the bases are 10.0 (10.0.13) and 10.2 (10.2.2)" >&2
        exit 1 ;;
esac
export QEMU_BASE
BASES="10.0 10.2"
BUILD=${BUILD:-$BUILD_DEFAULT}
SHARED=${SHARED:-$TOP/../shared}

DEB_VERSION_NOEPOCH=${DEB_VERSION#*:}
DSC=qemu_${DEB_VERSION_NOEPOCH}.dsc
ORIG=qemu_${UPSTREAM_VERSION}+ds.orig.tar.xz
DEBTAR=qemu_${DEB_VERSION_NOEPOCH}.debian.tar.xz
SUMS=$TOP/patches/$QEMU_BASE/SHA256SUMS   # the pinned package's sums

DL=$BUILD/upstream             # the three package files, verified
PRISTINE_DEB=$BUILD/pristine/debian   # dpkg-source -x: orig + Debian's quilt series
PRISTINE_ORIG=$BUILD/pristine/orig    # the orig tarball only
SRC=$BUILD/src                 # git: base commit + one commit per patch
OBJ=$BUILD/qemu                # objdir of the patched build
BASE_SRC=$BUILD/baseline/src  # unpatched tree for `make baseline`
BASE_OBJ=$BUILD/baseline/qemu # its objdir (src/ and qemu/ side by side, for ccache)

# The series of this base: patches/<base>/ holds its patches (the wiring:
# changes to upstream files, and the files only this base has), its
# series and cover letter.  The files we own that both bases share sit at
# their QEMU paths, listed in patches/new-files against the step (the
# patch's name less its number) that adds them; patches/shared/<step>.diff
# holds what a later step changes in them, once for both bases.
PATCHES=$TOP/patches/$QEMU_BASE
SERIES=$PATCHES/series
NEWFILES=$TOP/patches/new-files    # "<path> <step>" for every shared file
SHARED_DIFFS=$TOP/patches/shared    # <step>.diff: changes to shared files
LOCALFILES=$PATCHES/local-files     # files only this base has (in its patches)

# Debian's firmware packages: seabios, qemu-system-data, ipxe-qemu.
FIRMWARE_PATH=/usr/share/seabios:/usr/share/qemu:/usr/lib/ipxe/qemu

export CCACHE_BASEDIR=$BUILD
export VFIO_BUILD=$BUILD   # the Python tools (tooling/vfioemu.py, tests/vfio-system) read it
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

# The step of a patch: its file name less the number and ".patch".
step_of() {
    local b=${1##*/}
    b=${b#[0-9][0-9][0-9][0-9]-}
    echo "${b%.patch}"
}

# The steps of this base's series, in order.
series_steps() {
    local p
    for p in $(series_patches); do step_of "$p"; done
}

# Print the shared files added by step $1.
owned_files() {
    [ -f "$NEWFILES" ] || return 0
    awk -v p="$1" '!/^#/ && NF == 2 && $2 == p { print $1 }' "$NEWFILES"
}

# Every shared file the steps of this base's series add.
owned_all() {
    local s
    for s in $(series_steps); do owned_files "$s"; done
}

# Files only this base has: they live in its patches like upstream files.
local_files() {
    [ -f "$LOCALFILES" ] || return 0
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$LOCALFILES" | grep -v '^$' || true
}

# A hash of every input: the series, the manifests, the patches, our files.
inputs_hash() {
    (
        cd "$TOP"
        echo "$QEMU_BASE"
        cat "$SERIES" "$NEWFILES" "$LOCALFILES" 2>/dev/null || true
        for p in $(series_patches); do
            cat "$PATCHES/$p"
            s=$(step_of "$p")
            cat "$SHARED_DIFFS/$s.diff" 2>/dev/null || true
            for f in $(owned_files "$s"); do
                echo "$f"; cat "$f"; stat -c %a "$f"
            done
        done
    ) | sha256sum | cut -d' ' -f1
}
