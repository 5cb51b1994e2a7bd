#!/bin/bash
# Assemble build/src (build/10.2/src for QEMU_BASE=10.2): a git repository
# with one commit for the pinned base (Debian's source package, its quilt
# series applied) and one commit per patch in patches/<base>/series.  Each
# commit is the base's patch (its wiring) plus the shared files as that
# step has them: the files patches/new-files says it adds, and what
# patches/shared/<step>.diff says it changes.
#
# Refuses to throw away work: build/src must be clean and at the commit the
# last `make tree` or `make export` left it at (FORCE=1 overrides).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/tooling/base.sh"

synced=$SRC/.git/vfio-series-synced
stampf=$SRC/.git/vfio-series-inputs

if [ ! -d "$SRC/.git" ]; then
    note "tree: creating ${SRC#$TOP/} from the base"
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
        die "${SRC#$TOP/} has uncommitted changes. Commit them there and run
'make export', or discard them (git -C ${SRC#$TOP/} reset --hard) first."
    fi
    head=$(git -C "$SRC" rev-parse HEAD)
    if [ "${FORCE:-}" != 1 ] && [ -f "$synced" ] && [ "$head" != "$(cat "$synced")" ]; then
        die "${SRC#$TOP/} has commits that are not exported. Run 'make export'
to keep them, or 'make tree FORCE=1' to drop them."
    fi
    if [ -f "$stampf" ] && [ "$(cat "$stampf")" = "$(inputs_hash)" ] &&
       [ "$head" = "$(cat "$synced" 2>/dev/null)" ]; then
        exit 0
    fi
fi

note "tree: applying patches/$QEMU_BASE/series to ${SRC#$TOP/}"
git -C "$SRC" checkout -q main 2>/dev/null || git -C "$SRC" checkout -q -b main
git -C "$SRC" reset -q --hard base
git -C "$SRC" clean -q -fdx

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The shared files as each step adds or changes them: walk the series
# backwards from the stored files, reverse-applying each step's
# patches/shared/<step>.diff, and keep each step's state of what it touches.
mkdir -p "$tmp/cur" "$tmp/at"
mapfile -t owned < <(owned_all)
for f in "${owned[@]}"; do
    [ -f "$TOP/$f" ] || die "patches/new-files names $f, which does not exist"
    mkdir -p "$tmp/cur/$(dirname "$f")"
    cp -p "$TOP/$f" "$tmp/cur/$f"
done
# A step only the other base has may not change files this base has too.
steps=$(series_steps)
for d in "$SHARED_DIFFS"/*.diff; do
    [ -e "$d" ] || continue
    grep -qxF "$(basename "$d" .diff)" <<< "$steps" && continue
    for f in $(sed -n 's|^+++ b/||p' "$d"); do
        grep -qxF "$f" <<< "$(printf '%s\n' "${owned[@]}")" &&
            die "$(basename "$d") changes $f, but its step is not in the $QEMU_BASE series"
    done
done
mapfile -t rev < <(series_patches | tac)
for p in "${rev[@]}"; do
    [ -f "$PATCHES/$p" ] || die "$QEMU_BASE/series names $p, which does not exist"
    s=$(step_of "$p")
    d=$SHARED_DIFFS/$s.diff
    touched=$(owned_files "$s")
    [ -f "$d" ] && touched="$touched $(sed -n 's|^+++ b/||p' "$d")"
    for f in $touched; do
        mkdir -p "$tmp/at/$s/$(dirname "$f")"
        cp -p "$tmp/cur/$f" "$tmp/at/$s/$f"
    done
    if [ -f "$d" ]; then
        (cd "$tmp/cur" && git apply -R --whitespace=nowarn "$d") ||
            die "patches/shared/$s.diff does not reverse-apply to the stored files"
    fi
done

n=0
for p in $(series_patches); do
    n=$((n + 1))
    s=$(step_of "$p")
    git mailinfo "$tmp/msg" "$tmp/diff" < "$PATCHES/$p" > "$tmp/info"
    author=$(sed -n 's/^Author: //p' "$tmp/info")
    email=$(sed -n 's/^Email: //p' "$tmp/info")
    subject=$(sed -n 's/^Subject: //p' "$tmp/info")
    date=$(sed -n 's/^Date: //p' "$tmp/info")
    [ -n "$subject" ] || die "$p: no Subject header"
    if grep -q "^diff --git" "$tmp/diff"; then
        git -C "$SRC" apply --index --whitespace=nowarn "$tmp/diff" ||
            die "$QEMU_BASE/$p does not apply to the base"
    fi
    if [ -d "$tmp/at/$s" ]; then
        for f in $(cd "$tmp/at/$s" && find . -type f | sed 's|^\./||'); do
            if grep -qxF "$f" <<< "$(owned_files "$s")" &&
               git -C "$SRC" cat-file -e "base:$f" 2>/dev/null; then
                die "$f exists in the base: change it through a patch, not as a new file"
            fi
            mkdir -p "$SRC/$(dirname "$f")"
            cp -p "$tmp/at/$s/$f" "$SRC/$f"
            git -C "$SRC" add -f "$f"
        done
    fi
    { echo "$subject"; echo; cat "$tmp/msg"; } > "$tmp/commitmsg"
    GIT_AUTHOR_NAME=$author GIT_AUTHOR_EMAIL=$email GIT_AUTHOR_DATE=$date \
        GIT_COMMITTER_DATE=$date \
        git -C "$SRC" commit -q --no-verify --allow-empty --cleanup=verbatim \
        -F "$tmp/commitmsg"
done

git -C "$SRC" rev-parse HEAD > "$synced"
inputs_hash > "$stampf"
note "tree: ${SRC#$TOP/} is QEMU $UPSTREAM_VERSION ($DEB_VERSION) + $n patches"
