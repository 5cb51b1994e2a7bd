#!/bin/bash
# Write build/src's history back into the repository: every commit after
# `base` becomes patches/NNNN-*.patch for the upstream files it changes,
# and the files it adds (ones the base lacks) become our own files at
# their QEMU paths, listed in patches/new-files against that patch.
#
# A new file is stored as the last commit leaves it.  Later commits may
# change a file an earlier one added: their patches carry those changes
# as diffs, and `make tree` rebuilds the file as the adding commit had it
# by reverse-applying them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -d "$SRC/.git" ] || die "no build/src: run 'make tree' first"
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=normal)" ]; then
    git -C "$SRC" status --short | head -20 >&2
    die "build/src has uncommitted or untracked changes: commit them first"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$SRC" ls-tree -r --name-only base | sort > "$tmp/base-files"

mapfile -t commits < <(git -C "$SRC" rev-list --reverse base..HEAD)
: > "$tmp/series"
: > "$tmp/new-files"
: > "$tmp/owned"
mkdir -p "$tmp/patches"
n=0
for c in "${commits[@]}"; do
    n=$((n + 1))
    subject=$(git -C "$SRC" log -1 --format=%s "$c")
    body=$(git -C "$SRC" log -1 --format=%b "$c")
    for field in Forwarded Last-Update; do
        grep -q "^$field: " <<< "$body" ||
            die "commit '$subject' lacks a '$field:' line (DEP-3): amend its message"
    done
    # Upstream files changed, and files added that the base does not have.
    git -C "$SRC" diff-tree --no-commit-id --name-status -r "$c" > "$tmp/changes"
    upstream=()
    while IFS=$'\t' read -r status path; do
        if grep -qxF "$path" "$tmp/base-files"; then
            upstream+=("$path")
        elif [ "$status" = A ]; then
            if grep -qxF "$path" "$tmp/owned"; then
                die "$path is added twice"
            fi
            echo "$path" >> "$tmp/owned"
            printf '%s %s\n' "$path" "@@$n@@" >> "$tmp/new-files"
        elif [ "$status" = M ] && grep -qxF "$path" "$tmp/owned"; then
            # A change to a file an earlier commit added: in the patch.
            upstream+=("$path")
        else
            die "commit '$subject' changes $path ($status), which is neither
upstream nor added by an earlier commit"
        fi
    done < "$tmp/changes"
    name=$(git -C "$SRC" format-patch -1 --start-number "$n" -o "$tmp/name" "$c" | xargs basename)
    rm -rf "$tmp/name"
    fmt=(git -C "$SRC" format-patch -1 --stdout --zero-commit --no-signature
         --no-numbered --no-stat "$c")
    if [ ${#upstream[@]} -gt 0 ]; then
        "${fmt[@]}" --stat -- "${upstream[@]}" > "$tmp/patches/$name"
    else
        # Nothing upstream changes: headers only.
        "${fmt[@]}" -- ':(exclude)*' > "$tmp/patches/$name"
    fi
    echo "$name" >> "$tmp/series"
    sed -i "s|@@$n@@\$|$name|" "$tmp/new-files"
done

# Our files: drop those no longer owned, write the current ones.
if [ -f "$NEWFILES" ]; then
    awk '!/^#/ && NF == 2 { print $1 }' "$NEWFILES" | while read -r f; do
        grep -qxF "$f" "$tmp/owned" || { rm -f "$TOP/$f"; echo "removed $f"; }
    done
fi
while read -r f; do
    mkdir -p "$TOP/$(dirname "$f")"
    git -C "$SRC" show "HEAD:$f" > "$TOP/$f"
    mode=$(git -C "$SRC" ls-tree HEAD -- "$f" | cut -d' ' -f1)
    if [ "$mode" = 100755 ]; then chmod 755 "$TOP/$f"; else chmod 644 "$TOP/$f"; fi
done < "$tmp/owned"

rm -f "$PATCHES"/*.patch
cp "$tmp"/patches/*.patch "$PATCHES"/ 2>/dev/null || true
{
    echo "# Applied in this order on top of QEMU $UPSTREAM_VERSION ($DEB_VERSION)."
    cat "$tmp/series"
} > "$SERIES"
{
    echo "# <file we own> <patch that wires it in>; written by 'make export'."
    sort -k2,2 -k1,1 "$tmp/new-files"
} > "$NEWFILES"

git -C "$SRC" rev-parse HEAD > "$SRC/.git/vfio-series-synced"
inputs_hash > "$SRC/.git/vfio-series-inputs"
note "export: ${#commits[@]} patches, $(wc -l < "$tmp/owned") new files"
