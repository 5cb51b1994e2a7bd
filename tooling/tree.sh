#!/bin/bash
# Assemble build/src: a git repository with one commit for the pinned base
# (Debian's source package, its quilt series applied) and one commit per
# patch in patches/series.  The new files we own go in with the patch that
# patches/new-files names for them, as that patch had them: the stored
# file less the changes that later patches make to it.
#
# Refuses to throw away work: build/src must be clean and at the commit the
# last `make tree` or `make export` left it at (FORCE=1 overrides).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/tooling/base.sh"

synced=$SRC/.git/vfio-series-synced
stampf=$SRC/.git/vfio-series-inputs

if [ ! -d "$SRC/.git" ]; then
    note "tree: creating build/src from the base"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    (cd "$PRISTINE_DEB" && tar --exclude=./debian --exclude=./.pc -cf - .) |
        (cd "$SRC" && tar -xf -)
    git -C "$SRC" init -q -b base-work
    git -C "$SRC" config core.autocrlf false
    git -C "$SRC" config gc.auto 0
    git -C "$SRC" config user.name vfio-series
    git -C "$SRC" config user.email vfio-series@localhost
    git -C "$SRC" add -A -f
    GIT_AUTHOR_DATE="2025-01-01T00:00:00Z" GIT_COMMITTER_DATE="2025-01-01T00:00:00Z" \
        git -C "$SRC" commit -q --no-verify \
        -m "QEMU $UPSTREAM_VERSION as Debian ships it ($DEB_VERSION)" \
        -m "dpkg-source -x of the pinned package: upstream plus Debian's quilt series."
    git -C "$SRC" tag base
    git -C "$SRC" checkout -q -b main
    git -C "$SRC" branch -q -D base-work
else
    if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]; then
        die "build/src has uncommitted changes. Commit them there and run
'make export', or discard them (git -C build/src reset --hard) first."
    fi
    head=$(git -C "$SRC" rev-parse HEAD)
    if [ "${FORCE:-}" != 1 ] && [ -f "$synced" ] && [ "$head" != "$(cat "$synced")" ]; then
        die "build/src has commits that are not exported. Run 'make export'
to keep them, or 'make tree FORCE=1' to drop them."
    fi
    if [ -f "$stampf" ] && [ "$(cat "$stampf")" = "$(inputs_hash)" ] &&
       [ "$head" = "$(cat "$synced" 2>/dev/null)" ]; then
        exit 0
    fi
fi

note "tree: applying patches/series to build/src"
git -C "$SRC" checkout -q main 2>/dev/null || git -C "$SRC" checkout -q -b main
git -C "$SRC" reset -q --hard base
git -C "$SRC" clean -q -fdx

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Our files as each one's own patch adds them: walk the series backwards
# from the stored files, reverse-applying what every patch changes in them.
mkdir -p "$tmp/owned" "$tmp/at"
owned_all=$(awk '!/^#/ && NF == 2 { print $1 }' "$NEWFILES" 2>/dev/null || true)
for f in $owned_all; do
    [ -f "$TOP/$f" ] || die "patches/new-files names $f, which does not exist"
    mkdir -p "$tmp/owned/$(dirname "$f")"
    cp -p "$TOP/$f" "$tmp/owned/$f"
done
mapfile -t rev < <(series_patches | tac)
for p in "${rev[@]}"; do
    [ -f "$PATCHES/$p" ] || die "patches/series names $p, which does not exist"
    for f in $(owned_files "$p"); do
        mkdir -p "$tmp/at/$p/$(dirname "$f")"
        cp -p "$tmp/owned/$f" "$tmp/at/$p/$f"
    done
    incl=()
    for f in $owned_all; do
        incl+=("--include=$f")
    done
    if [ ${#incl[@]} -gt 0 ] && grep -q '^diff --git' "$PATCHES/$p"; then
        (cd "$tmp/owned" && git apply -R --whitespace=nowarn "${incl[@]}" \
            "$PATCHES/$p") || die "$p: its changes to our files do not reverse-apply"
    fi
done

n=0
for p in $(series_patches); do
    n=$((n + 1))
    [ -f "$PATCHES/$p" ] || die "patches/series names $p, which does not exist"
    git mailinfo "$tmp/msg" "$tmp/diff" < "$PATCHES/$p" > "$tmp/info"
    author=$(sed -n 's/^Author: //p' "$tmp/info")
    email=$(sed -n 's/^Email: //p' "$tmp/info")
    subject=$(sed -n 's/^Subject: //p' "$tmp/info")
    date=$(sed -n 's/^Date: //p' "$tmp/info")
    [ -n "$subject" ] || die "$p: no Subject header"
    if [ -s "$tmp/diff" ]; then
        git -C "$SRC" apply --index --whitespace=nowarn "$tmp/diff" ||
            die "$p does not apply to the base"
    fi
    for f in $(owned_files "$p"); do
        [ -f "$TOP/$f" ] || die "patches/new-files names $f (for $p), which does not exist"
        if git -C "$SRC" cat-file -e "base:$f" 2>/dev/null; then
            die "$f exists in the base: change it through a patch, not as a new file"
        fi
        mkdir -p "$SRC/$(dirname "$f")"
        cp -p "$tmp/at/$p/$f" "$SRC/$f"
        git -C "$SRC" add -f "$f"
    done
    { echo "$subject"; echo; cat "$tmp/msg"; } > "$tmp/commitmsg"
    GIT_AUTHOR_NAME=$author GIT_AUTHOR_EMAIL=$email GIT_AUTHOR_DATE=$date \
        GIT_COMMITTER_DATE=$date \
        git -C "$SRC" commit -q --no-verify --allow-empty --cleanup=verbatim \
        -F "$tmp/commitmsg"
done

# Files in patches/new-files must belong to a patch in the series.
if [ -f "$NEWFILES" ]; then
    awk '!/^#/ && NF == 2 { print $2 }' "$NEWFILES" | sort -u | while read -r p; do
        series_patches | grep -qxF "$p" ||
            die "patches/new-files names patch $p, which is not in patches/series"
    done
fi

git -C "$SRC" rev-parse HEAD > "$synced"
inputs_hash > "$stampf"
note "tree: build/src is base + $n patches"
