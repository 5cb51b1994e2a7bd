#!/bin/bash
# Re-run after every rebase onto main while main still has the one-base
# layout (patches/*.patch): rewrites patches/10.0/, patches/shared/,
# patches/new-files and the shared files from REF's 10.0 series.
#   wip/issue-13/convert.sh [REF]     (default: main)
# 1. REF's own tooling assembles its 10.0 history (base + one commit per
#    patch) in /tmp/convert-10.0/build/src;
# 2. every commit gets the mechanical change to the neutral names
#    (neutral.pl: VFIOContainerBase -> VFIODMAContainer, ...) and, from
#    the record on, 10.0's include/hw/vfio/vfio-dma-container.h;
# 3. this branch's tooling/export.sh writes that history back in the
#    two-base layout.
# The 10.2 series is then `QEMU_BASE=10.2 make tree` on top of it.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
ref=${1:-main}
work=/tmp/convert-10.0
here=$TOP/wip/issue-13

rm -rf "$work"
mkdir -p "$work/main" "$work/build"
git -C "$TOP" archive "$ref" | tar -x -C "$work/main"
if [ -f "$TOP/build/pristine/.stamp" ]; then
    cp -al "$TOP/build/pristine" "$work/build/pristine"
fi
(cd "$work/main" && BUILD=$work/build SHARED=$TOP/../shared tooling/tree.sh)

src=$work/build/src
VFIO_DMA_CONTAINER_H=$here/vfio-dma-container-10.0.h \
    FILTER_BRANCH_SQUELCH_WARNING=1 \
    git -C "$src" filter-branch -f --tree-filter "perl $here/neutral.pl" -- base..main

# The layout: REF's patches/ become patches/10.0/.
cd "$TOP"
mkdir -p patches/10.0
if [ -f patches/series ]; then
    git mv -f patches/series patches/10.0/series
    git mv -f patches/cover-letter patches/10.0/cover-letter
    git rm -q -f patches/*.patch
fi
git show "$ref:tooling/SHA256SUMS" > patches/10.0/SHA256SUMS
git rm -q -f --ignore-unmatch tooling/SHA256SUMS
printf '%s\n' "# Files only this base has; they live in its patches like upstream files." \
    include/hw/vfio/vfio-dma-container.h > patches/10.0/local-files
# export.sh replaces the 10.0 steps' entries; the old format has none.
grep -v '\.patch$' patches/new-files > "$work/new-files" || true
cp "$work/new-files" patches/new-files
BUILD=$work/build QEMU_BASE=10.0 tooling/export.sh
git add -A patches hw include tests docs
echo "converted: git -C $TOP status"
