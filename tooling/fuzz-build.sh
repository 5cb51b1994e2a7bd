#!/bin/bash
# The fuzz build: QEMU's own fuzzing framework (tests/qtest/fuzz, libFuzzer)
# built with clang, ASan and UBSan, for tests/vfio-fuzz.
#   tooling/fuzz-build.sh     build/src -> build/fuzz: qemu-fuzz-x86_64 and
#                             tests/qtest/vfio-emu/libvfio-emu.so
# QEMU_SRC/QEMU_OBJ build a worktree instead (tooling/worktree.sh; name the
# objdir .../fuzz beside .../src so that ccache sees the same relative paths).
# Run it niced; on a shared machine, under the build lock:
#   flock /tmp/qemu-build.lock tooling/fuzz-build.sh
# (make check does not take the lock: it runs its builds one after another.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Debian 12's clang-14 (clang, libclang-rt-14-dev: libFuzzer and the
# sanitizer runtimes); tooling/install-deps.sh --fuzz installs them.
command -v clang > /dev/null && command -v clang++ > /dev/null ||
    die "clang is missing: tooling/install-deps.sh --fuzz"

export QEMU_OBJ=${QEMU_OBJ:-$BUILD/fuzz}
# Only the qtest accelerator runs under the fuzzer: no TCG (a target needs
# one accelerator besides qtest, and KVM is the cheaper one to build).
# -Werror off: a clang warning in code we do not own must not stop the
# fuzzer; the build log keeps the warnings.
export QEMU_CONFIGURE_EXTRA="--cc=clang --cxx=clang++
    --enable-fuzzing --enable-asan --enable-ubsan --disable-tcg
    --disable-werror"
export BUILD_TARGETS="qemu-fuzz-x86_64 tests/qtest/vfio-emu/libvfio-emu.so"
exec nice -n "${FUZZ_NICE:-10}" "$TOP/tooling/build.sh"
