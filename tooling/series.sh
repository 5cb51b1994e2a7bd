#!/bin/bash
# build/series/: the series as `git am`-able patches against pristine
# upstream QEMU 10.0.13 (the orig tarball, without Debian's quilt series),
# with a cover letter.  Proves the series applies without Debian's patches.
#   tooling/series.sh          generate, authored and signed off by you
#   tooling/series.sh --check  generate with a stand-in author (make check)
#   tooling/series.sh --build  also build every commit and run its tests
#                              (make check-series)
# The author and Signed-off-by come from your git configuration (user.name
# and user.email), or from SERIES_AUTHOR="Full Name <you@example.org>".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=${1:-}
# Who sends the series: build/src's commits carry a placeholder.
if [ "$mode" = --check ] || [ "$mode" = --build ]; then
    ident="Series Check <series-check@example.org>"
else
    ident=${SERIES_AUTHOR:-}
    if [ -z "$ident" ]; then
        name=$(env -u GIT_AUTHOR_NAME git config --global --get user.name || true)
        mail=$(env -u GIT_AUTHOR_EMAIL git config --global --get user.email || true)
        ident="$name <$mail>"
    fi
    case "$ident" in
        *vfio-series*|*@localhost*|*example.*|" <"*|*"<>"|*"Your Name"*)
            die "the series needs a real author for its From: and
Signed-off-by: lines; '$ident' will not do.  Set yours with
    git config --global user.name 'Your Full Name'
    git config --global user.email you@your.domain
or run: SERIES_AUTHOR='Your Full Name <you@your.domain>' make series" ;;
    esac
    [[ "$ident" =~ ^[^\<\>]+\ \<[^@\ ]+@[^@\ ]+\>$ ]] ||
        die "SERIES_AUTHOR or git's user.name and user.email give '$ident';
it must read 'Full Name <you@your.domain>'"
fi

"$TOP/tooling/tree.sh"
out=$BUILD/series
repo=$BUILD/series-tree/src   # objdir beside it: series-tree/qemu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A repository of pristine upstream, kept between runs.
if [ ! -d "$repo/.git" ]; then
    rm -rf "$repo"
    mkdir -p "$repo"
    (cd "$PRISTINE_ORIG" && tar -cf - .) | (cd "$repo" && tar -xf -)
    git -C "$repo" init -q -b upstream
    git -C "$repo" config gc.auto 0
    git -C "$repo" add -A -f
    GIT_AUTHOR_DATE="2025-01-01T00:00:00Z" GIT_COMMITTER_DATE="2025-01-01T00:00:00Z" \
        git -C "$repo" commit -q --no-verify -m "QEMU $UPSTREAM_VERSION (pristine upstream)"
    git -C "$repo" tag v$UPSTREAM_VERSION
fi
git -C "$repo" checkout -q -B series "v$UPSTREAM_VERSION"
git -C "$repo" clean -q -fdx

git -C "$SRC" format-patch -q --zero-commit --no-signature -o "$tmp/full" base..main
n=$(ls "$tmp/full" 2>/dev/null | wc -l)
# The submitter's name where build/src has its placeholder.
placeholder="$GIT_COMMITTER_NAME <$GIT_COMMITTER_EMAIL>"
for p in "$tmp"/full/*.patch; do
    [ -e "$p" ] || continue
    IDENT=$ident PH=$placeholder "$PYTHON" - "$p" <<'PY'
import os, sys
path = sys.argv[1]
text = open(path).read()
head, sep, body = text.partition("\n---\n")
head = head.replace("From: " + os.environ["PH"], "From: " + os.environ["IDENT"], 1)
head = head.replace("Signed-off-by: " + os.environ["PH"],
                    "Signed-off-by: " + os.environ["IDENT"])
# our new files name their authors: the submitter
body = body.replace("+ * Copyright (c) 2026 The vfio-series authors",
                    "+ * Copyright (c) 2026 " + os.environ["IDENT"])
open(path, "w").write(head + sep + body)
PY
done
if [ "$n" -gt 0 ]; then
    git -C "$repo" am -q --committer-date-is-author-date "$tmp"/full/*.patch || {
        git -C "$repo" am --abort || true
        die "the series does not apply to pristine upstream QEMU $UPSTREAM_VERSION"
    }
fi

rm -rf "$out"
mkdir -p "$out"
if [ "$n" -gt 0 ]; then
    git -C "$repo" format-patch -q --zero-commit --no-signature --cover-letter \
        --subject-prefix="PATCH" -o "$out" "v$UPSTREAM_VERSION..series"
    # Fill the cover letter from patches/cover-letter (subject line, blank, body).
    cover=$(ls "$out"/0000-cover-letter.patch)
    sed -i "s|^From: $placeholder\$|From: $ident|" "$cover"
    subject=$(head -1 "$PATCHES/cover-letter")
    tail -n +3 "$PATCHES/cover-letter" > "$tmp/blurb"
    python3 - "$cover" "$subject" "$tmp/blurb" <<'PY'
import sys
path, subject, blurb = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
text = open(path).read()
text = text.replace("*** SUBJECT HERE ***", subject)
text = text.replace("*** BLURB HERE ***", blurb.rstrip("\n"))
open(path, "w").write(text)
PY
fi
note "series: $n patches against QEMU $UPSTREAM_VERSION in build/series"

if [ "$mode" = --build ]; then
    # Build every prefix of the series: each commit must build on its own.
    # The +ds orig tarball cannot be configured without Debian's own
    # patches (they drop the firmware blobs it lacks from pc-bios/), so the
    # commits are built on the Debian-patched base: build/src's main holds
    # the same commits (make tree), in a detached worktree of their own.
    "$TOP/tooling/tree.sh"
    wt=$BUILD/check-series/src
    if [ ! -d "$wt" ]; then
        mkdir -p "$BUILD/check-series"
        git -C "$SRC" worktree add -q --detach "$wt" base
    fi
    mapfile -t commits < <(git -C "$SRC" rev-list --reverse base..main)
    [ "${#commits[@]}" -eq "$n" ] ||
        die "build/src has ${#commits[@]} commits but the series $n patches: run make tree"
    for c in "${commits[@]}"; do
        subject=$(git -C "$SRC" log -1 --format=%s "$c")
        git -C "$wt" checkout -q --detach "$c"
        note "check-series: building $subject"
        QEMU_SRC=$wt QEMU_OBJ=$BUILD/check-series/qemu \
            NINJA_TARGETS=all "$TOP/tooling/build.sh" > "$BUILD/check-series/build.log" 2>&1 || {
            tail -20 "$BUILD/check-series/build.log" >&2
            die "commit '$subject' does not build (log: build/check-series/build.log)"
        }
        # The tests that exist at this commit: every one with vfio in its name.
        mapfile -t tests < <(meson test -C "$BUILD/check-series/qemu" --list 2>/dev/null |
            sed -n 's|^.* / ||p' | grep vfio | sort -u)
        if [ ${#tests[@]} -gt 0 ]; then
            meson test -C "$BUILD/check-series/qemu" --no-rebuild \
                --num-processes "$(nproc)" "${tests[@]}" \
                > "$BUILD/check-series/test.log" 2>&1 || {
                grep -E '^ *[0-9]+/[0-9]+ ' "$BUILD/check-series/test.log" >&2
                die "commit '$subject' fails its tests (log: build/check-series/test.log)"
            }
        fi
        note "check-series: '$subject' builds and passes ${#tests[@]} tests"
    done
    note "check-series: all ${#commits[@]} commits build (with every test binary) and pass their tests"
fi
