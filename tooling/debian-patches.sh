#!/bin/bash
# build/debian-patches/: the series as DEP-3 quilt patches that drop into
# the Debian package's debian/patches/vfio/, and a series fragment.
#   tooling/debian-patches.sh          generate
#   tooling/debian-patches.sh --check  also apply them with quilt on top of
#       Debian's own series and compare the result with build/src
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/tooling/tree.sh"
out=$BUILD/debian-patches
rm -rf "$out"
mkdir -p "$out/vfio"
git -C "$SRC" format-patch -q --zero-commit --no-signature --no-numbered \
    -o "$out/vfio" base..main
: > "$out/series.fragment"
for p in "$out"/vfio/*.patch; do
    [ -e "$p" ] || continue
    # quilt reads the header up to the first diff; git's "From <sha>" line
    # means nothing outside git, and DEP-3 takes From/Subject/Date.
    sed -i '1{/^From 0\{40\} /d}' "$p"
    echo "vfio/$(basename "$p")" >> "$out/series.fragment"
done
n=$(wc -l < "$out/series.fragment")
note "debian-patches: $n patches in build/debian-patches (series.fragment)"

[ "${1:-}" = --check ] || exit 0

work=$BUILD/debian-check
rm -rf "$work"
mkdir -p "$work"
(cd "$PRISTINE_DEB" && tar -cf - .) | (cd "$work" && tar -xf -)
cp -r "$out/vfio" "$work/debian/patches/"
cat "$out/series.fragment" >> "$work/debian/patches/series"
if [ "$n" -gt 0 ]; then
    (cd "$work" && QUILT_PATCHES=debian/patches QUILT_PC=.pc \
        quilt push -a -q --fuzz=0 > "$work.log" 2>&1) || {
        tail -20 "$work.log" >&2
        die "the Debian patches do not apply on top of Debian's series (log: $work.log)"
    }
fi
# The package's tree must now equal build/src (git keeps no empty folders).
find "$work" -path "$work/debian" -prune -o -path "$work/.pc" -prune -o \
    -type d -empty -print | xargs -r rmdir
if ! diff -r -q -x debian -x .pc -x .git "$work" "$SRC" > "$work.diff"; then
    head -20 "$work.diff" >&2
    die "the Debian package with our patches differs from build/src"
fi
rm -rf "$work"
note "debian-patches: $n patches apply with quilt on top of Debian's series; tree identical to build/src"
