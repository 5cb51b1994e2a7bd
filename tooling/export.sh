#!/bin/bash
# Write build/src's history (build/10.2/src for QEMU_BASE=10.2) back into
# the repository.  Every commit after `base` is a step:
#   - its changes to upstream files, and to the files only this base has
#     (patches/<base>/local-files), become patches/<base>/NNNN-<step>.patch;
#   - the files it adds become ours, shared by both bases, at their QEMU
#     paths, listed in patches/new-files against the step;
#   - its changes to shared files an earlier step added become
#     patches/shared/<step>.diff, which both bases apply.
# A shared file is stored as the last commit leaves it; `make tree`
# rebuilds each step's version by reverse-applying the later steps' diffs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -d "$SRC/.git" ] || die "no ${SRC#$TOP/}: run 'make tree' first"
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=normal)" ]; then
    git -C "$SRC" status --short | head -20 >&2
    die "${SRC#$TOP/} has uncommitted or untracked changes: commit them first"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$SRC" ls-tree -r --name-only base | sort > "$tmp/base-files"
local_files > "$tmp/local"
owned_all | sort -u > "$tmp/owned-before"

mapfile -t commits < <(git -C "$SRC" rev-list --reverse base..HEAD)
: > "$tmp/series"
: > "$tmp/new-files"
: > "$tmp/owned"
mkdir -p "$tmp/patches" "$tmp/shared"
n=0
for c in "${commits[@]}"; do
    n=$((n + 1))
    subject=$(git -C "$SRC" log -1 --format=%s "$c")
    body=$(git -C "$SRC" log -1 --format=%b "$c")
    for field in Forwarded Last-Update; do
        grep -q "^$field: " <<< "$body" ||
            die "commit '$subject' lacks a '$field:' line (DEP-3): amend its message"
    done
    name=$(git -C "$SRC" format-patch -1 --start-number "$n" -o "$tmp/name" "$c" | xargs basename)
    rm -rf "$tmp/name"
    step=$(step_of "$name")
    # Upstream and local files changed; shared files added or changed.
    git -C "$SRC" diff-tree --no-commit-id --name-status -r "$c" > "$tmp/changes"
    upstream=()
    shared=()
    while IFS=$'\t' read -r status path; do
        if grep -qxF "$path" "$tmp/base-files" || grep -qxF "$path" "$tmp/local"; then
            upstream+=("$path")
        elif [ "$status" = A ]; then
            grep -qxF "$path" "$tmp/owned" && die "$path is added twice"
            echo "$path" >> "$tmp/owned"
            printf '%s %s\n' "$path" "$step" >> "$tmp/new-files"
        elif [ "$status" = M ] && grep -qxF "$path" "$tmp/owned"; then
            shared+=("$path")
        else
            die "commit '$subject' changes $path ($status), which is neither
upstream, local to $QEMU_BASE, nor added by an earlier commit"
        fi
    done < "$tmp/changes"
    fmt=(git -C "$SRC" format-patch -1 --stdout --zero-commit --no-signature
         --no-numbered --no-stat "$c")
    if [ ${#upstream[@]} -gt 0 ]; then
        "${fmt[@]}" --stat -- "${upstream[@]}" > "$tmp/patches/$name"
    else
        # Nothing upstream changes: the message only (without --stat,
        # format-patch writes no '---' line before the diff).
        { "${fmt[@]}" | sed '/^diff --git /,$d'; echo "---"; } > "$tmp/patches/$name"
    fi
    if [ ${#shared[@]} -gt 0 ]; then
        git -C "$SRC" diff --no-color --full-index "$c^" "$c" -- "${shared[@]}" \
            > "$tmp/shared/$step.diff"
    fi
    echo "$name" >> "$tmp/series"
done

# Shared files: drop those this base no longer adds, write the current ones.
sort -u "$tmp/owned" > "$tmp/owned-after"
comm -23 "$tmp/owned-before" "$tmp/owned-after" | while read -r f; do
    rm -f "$TOP/$f"; echo "removed $f"
done
while read -r f; do
    mkdir -p "$TOP/$(dirname "$f")"
    git -C "$SRC" show "HEAD:$f" > "$TOP/$f"
    mode=$(git -C "$SRC" ls-tree HEAD -- "$f" | cut -d' ' -f1)
    if [ "$mode" = 100755 ]; then chmod 755 "$TOP/$f"; else chmod 644 "$TOP/$f"; fi
done < "$tmp/owned"

# This base's steps are rewritten; those only the other base has stay.
mapfile -t oldsteps < <(series_steps)
cut -d' ' -f2 "$tmp/new-files" | sort -u > "$tmp/steps"
sed 's/^[0-9]\{4\}-//; s/\.patch$//' "$tmp/series" >> "$tmp/steps"
for s in "${oldsteps[@]}"; do echo "$s"; done >> "$tmp/steps"
sort -u -o "$tmp/steps" "$tmp/steps"
if [ -f "$NEWFILES" ]; then
    awk '!/^#/ && NF == 2' "$NEWFILES" | while read -r f s; do
        grep -qxF "$s" "$tmp/steps" || echo "$f $s"
    done >> "$tmp/new-files"
fi
while read -r s; do
    rm -f "$SHARED_DIFFS/$s.diff"
done < "$tmp/steps"
mkdir -p "$SHARED_DIFFS"
cp "$tmp"/shared/*.diff "$SHARED_DIFFS"/ 2>/dev/null || true

rm -f "$PATCHES"/*.patch
mkdir -p "$PATCHES"
cp "$tmp"/patches/*.patch "$PATCHES"/ 2>/dev/null || true
{
    echo "# Applied in this order on top of QEMU $UPSTREAM_VERSION ($DEB_VERSION)."
    cat "$tmp/series"
} > "$SERIES"
{
    echo "# <file we own, shared by both bases> <step that adds it>; written by 'make export'."
    sort -u "$tmp/new-files" | sort -k2,2 -k1,1
} > "$NEWFILES"

git -C "$SRC" rev-parse HEAD > "$SRC/.git/vfio-series-synced"
inputs_hash > "$SRC/.git/vfio-series-inputs"
note "export ($QEMU_BASE): ${#commits[@]} patches, $(wc -l < "$tmp/owned") shared files"
