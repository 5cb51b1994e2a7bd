#!/bin/bash
# Give a parallel line of work its own git worktree of build/src and its
# own objdir, so it never disturbs build/src or build/qemu:
#   tooling/worktree.sh NAME       -> build/wt/NAME/src (branch NAME, from main)
#   QEMU_SRC=$PWD/build/wt/NAME/src QEMU_OBJ=$PWD/build/wt/NAME/qemu tooling/build.sh
# (src/ and qemu/ side by side, as build/src and build/qemu are, so that
# the compiler sees the same relative paths and ccache hits.)
# Its commits are then cherry-picked onto build/src's main and exported.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name=${1:?usage: tooling/worktree.sh NAME}
"$TOP/tooling/tree.sh"
wt=$BUILD/wt/$name/src
mkdir -p "$BUILD/wt/$name"
if [ ! -d "$wt" ]; then
    git -C "$SRC" worktree add -q -b "$name" "$wt" main
fi
echo "$wt"
