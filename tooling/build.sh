#!/bin/bash
# Configure (once) and build the minimal x86_64 emulator.
#   tooling/build.sh            build/src -> build/qemu, link build/qemu-system-x86_64
#   tooling/build.sh baseline   unpatched base -> build/baseline/qemu-system-x86_64
# Extra configure flags come from $QEMU_CONFIGURE_EXTRA (e.g. sanitizers);
# $QEMU_OBJ overrides the object directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=${1:-patched}
if [ "$mode" = baseline ]; then
    "$TOP/tooling/base.sh"
    src=$BASE_SRC
    obj=$BASE_OBJ
    if [ ! -f "$src/.stamp" ]; then
        rm -rf "$src"
        mkdir -p "$src"
        (cd "$PRISTINE_DEB" && tar --exclude=./debian --exclude=./.pc -cf - .) |
            (cd "$src" && tar -xf -)
        touch "$src/.stamp"
    fi
elif [ -n "${QEMU_SRC:-}" ]; then
    # A worktree of build/src (tooling/worktree.sh); never touches build/src.
    src=$QEMU_SRC
    obj=${QEMU_OBJ:?QEMU_OBJ must name the objdir for QEMU_SRC}
else
    "$TOP/tooling/tree.sh"
    src=$SRC
    obj=${QEMU_OBJ:-$OBJ}
fi

configure_flags=(
    --python="$PYTHON"
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-tcg --enable-kvm
    --disable-docs --disable-tools
    --disable-download --disable-install-blobs
    --firmwarepath="$FIRMWARE_PATH"
    ${QEMU_CONFIGURE_EXTRA:-}
)
# Debian's ccache masquerades as the compilers from /usr/lib/ccache.
export PATH=/usr/lib/ccache:$PATH
flags_id=$(printf '%s\n' ccache "${configure_flags[@]}" | sha256sum | cut -c1-16)

if [ ! -f "$obj/build.ninja" ] || [ "$(cat "$obj/.configured" 2>/dev/null)" != "$flags_id" ]; then
    note "build: configuring $obj"
    rm -rf "$obj"
    mkdir -p "$obj"
    (cd "$obj" && "$src/configure" "${configure_flags[@]}") > "$obj.configure.log" 2>&1 || {
        tail -30 "$obj.configure.log" >&2
        die "configure failed; the whole log is $obj.configure.log"
    }
    echo "$flags_id" > "$obj/.configured"
fi

note "build: ninja in $obj"
jobs=${JOBS:-$(nproc)}
# $BUILD_TARGETS replaces the emulator as the target (e.g. sphinxdocs).
# shellcheck disable=SC2206 # a list
targets=(${BUILD_TARGETS:-qemu-system-x86_64})
# The VFIO UAPI emulation, when the tree has it: demo and bench preload it.
emu=tests/qtest/vfio-emu/libvfio-emu.so
# (the source tree says, not build.ninja: a worktree may have moved to a
# commit without it, and ninja regenerates build.ninja only when it runs)
if [ -z "${BUILD_TARGETS:-}" ] && [ -f "$src/tests/qtest/vfio-emu/meson.build" ]; then
    targets+=("$emu")
fi
# ... and the model the scripts take their expectations from (vfiomodel.py)
if [ -z "${BUILD_TARGETS:-}" ] && [ -f "$src/tests/qtest/vfio-emu/vfio-emu-model.c" ]; then
    targets+=(tests/qtest/vfio-emu/libvfio-emu-model.so)
fi
# shellcheck disable=SC2086 # NINJA_TARGETS is a list
ninja -C "$obj" -j "$jobs" "${targets[@]}" ${NINJA_TARGETS:-}

# Run from the build tree, QEMU looks for firmware under qemu-bundle/
# (the configured paths, relocated): link Debian's firmware there.
IFS=: read -r -a fwdirs <<< "$FIRMWARE_PATH"
for d in "${fwdirs[@]}"; do
    mkdir -p "$obj/qemu-bundle$(dirname "$d")"
    ln -sfn "$d" "$obj/qemu-bundle$d"
done

if [ "$mode" = baseline ]; then
    ln -sfn qemu/qemu-system-x86_64 "$BUILD/baseline/qemu-system-x86_64"
elif [ -z "${QEMU_OBJ:-}" ]; then
    ln -sfn qemu/qemu-system-x86_64 "$BUILD/qemu-system-x86_64"
fi
note "build: $obj/qemu-system-x86_64 is ready"
