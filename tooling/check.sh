#!/bin/bash
# `make check`: everything a submission must pass.
#   1. hygiene: the series applies to pristine upstream and on top of the
#      Debian package; checkpatch passes on every generated patch
#   2. the documentation (sphinx -W), and the build (emulator, unit tests,
#      qtests)
#   3. our unit tests and qtests, and upstream x86 qtests that exercise PCI
#      and the memory API, through meson's test runner
#   4. our tests again under ASan+UBSan (tooling/check-asan.sh)
#   5. the kernel's own VFIO selftests (Debian's linux-source-7.3) against
#      vfio-emu (tests/vfio-selftests)
#   6. the nested-VM system test, when its packages are installed
#   7. the guest tier and the libvirt tier (tests/vfio-guest, tests/vfio-libvirt)
# The last line is "N passed, M failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"

passed=0
failed=0
failures=()

result() {   # result NAME STATUS(0=pass)
    set -- "[$QEMU_BASE] $1" "$2"
    if [ "$2" = 0 ]; then
        passed=$((passed + 1))
        echo "PASS: $1"
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAIL: $1"
    fi
}

step() {     # step NAME COMMAND...: one pass or fail
    local name=$1
    shift
    note "$name"
    "$@"
    result "$name" $?
}

finish() {
    [ -n "${CHECK_INNER:-}" ] && { echo "$passed passed, $failed failed"; exit 0; }
    echo
    if [ ${#failures[@]} -gt 0 ]; then
        echo "Failed: ${failures[*]}"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}

# Hygiene: checkpatch on every patch of the generated series.  Errors
# fail; a warning passes only when the patch's description justifies it
# with a "checkpatch:" line.
checkpatch_series() {
    local p rc=0 out
    for p in "$BUILD"/series/[0-9]*.patch; do
        [ -e "$p" ] || continue
        case "$p" in *0000-cover-letter.patch) continue ;; esac
        out=$(cd "$SRC" && ./scripts/checkpatch.pl --no-signoff "$p" 2>&1)
        if grep -q '^ERROR:' <<< "$out"; then
            echo "$out" | grep -A4 '^ERROR:' | head -40
            echo "checkpatch: errors in $(basename "$p")"
            rc=1
        elif grep -q '^WARNING:' <<< "$out" && ! grep -q '^checkpatch: ' "$p"; then
            echo "$out" | grep -A4 '^WARNING:' | head -40
            echo "checkpatch: unjustified warnings in $(basename "$p")" \
                 "(justify them in the description with a 'checkpatch: ...' line)"
            rc=1
        fi
    done
    return $rc
}

# Every base in turn (CHECK_BASES, default both): each run is this script
# with QEMU_BASE set, whose results are counted here.
if [ -z "${CHECK_INNER:-}" ]; then
    for b in ${CHECK_BASES:-$BASES}; do
        note "base $b"
        out=$(mktemp)
        QEMU_BASE=$b CHECK_INNER=1 "$0" | tee "$out"
        p=$(sed -n 's/^\([0-9]*\) passed, [0-9]* failed$/\1/p' "$out" | tail -1)
        f=$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p' "$out" | tail -1)
        [ -n "$p" ] || { p=0; f=1; failures+=("[$b] check.sh did not finish"); }
        passed=$((passed + p))
        failed=$((failed + f))
        mapfile -t -O "${#failures[@]}" failures < <(sed -n 's/^FAIL: //p' "$out")
        rm -f "$out"
    done
    CHECK_INNER= finish
fi

step "hygiene: series applies to pristine QEMU $UPSTREAM_VERSION" "$TOP/tooling/series.sh" --check
step "hygiene: Debian patches apply on top of Debian's series" \
    "$TOP/tooling/debian-patches.sh" --check
step "hygiene: checkpatch.pl on every patch" checkpatch_series

# The documentation: sphinx -W (warnings are errors) builds QEMU's manuals
# from build/src in build/docs, including the QMP reference generated from
# our QAPI schema and our page for administrators.
build_docs() {
    local man=$BUILD/docs/docs/manual
    QEMU_OBJ=$BUILD/docs QEMU_CONFIGURE_EXTRA=--enable-docs \
        BUILD_TARGETS=sphinxdocs "$TOP/tooling/build.sh" > "$BUILD/docs.log" 2>&1 || {
        tail -30 "$BUILD/docs.log"
        return 1
    }
    grep -q 'x-query-vfio-dma-mappings' "$man/interop/qemu-qmp-ref.html" &&
        grep -q 'peer-to-peer' "$man/system/devices/vfio-dma.html" || {
        echo "docs: the QMP reference or docs/system/devices/vfio-dma.rst is missing from the manuals"
        return 1
    }
}
# The manuals once: the QAPI schema's doc comments are checked by every
# build (qapi-gen), the manuals' text is the same for both bases.
if [ "$QEMU_BASE" = 10.0 ]; then
    step "docs: sphinx -W builds the manuals, the QMP reference and vfio-dma.rst" build_docs
fi

# The build: the emulator, then every test binary meson knows of.
build_all() {
    "$TOP/tooling/build.sh" && ninja -C "$OBJ" -j "$(nproc)" > "$BUILD/ninja-all.log" 2>&1 || {
        tail -30 "$BUILD/ninja-all.log"
        return 1
    }
}
step "build: qemu-system-x86_64 and the tests" build_all
if [ "$failed" -gt 0 ] && [ ! -x "$OBJ/qemu-system-x86_64" ]; then
    finish
fi

# Our tests: every test whose name says vfio.  Upstream guards: PCI and
# memory-API paths of x86 (q35, i440fx, hot-plug, device introspection,
# every QMP query and HMP info command, and the libqos device graph).
guards='qtest-x86_64/(q35-test|i440fx-test|device-plug-test|device-introspect-test|qmp-cmd-test|test-hmp|qos-test)$'
mapfile -t tests < <(meson test -C "$OBJ" --list 2>/dev/null |
    sed -n 's|^.* / ||p' | grep -E "vfio|$guards" | sort -u)
note "meson test: ${#tests[@]} tests: ${tests[*]}"
rm -f "$OBJ/meson-logs/testlog.json"
meson test -C "$OBJ" --no-rebuild --print-errorlogs --num-processes "$(nproc)" \
    "${tests[@]}" > "$BUILD/meson-test.log" 2>&1
mrc=$?
grep -E '^ *[0-9]+/[0-9]+ ' "$BUILD/meson-test.log" || tail -40 "$BUILD/meson-test.log"
if [ -s "$OBJ/meson-logs/testlog.json" ]; then
    while IFS=$'\t' read -r name res; do
        case "$res" in
            OK|SKIP|EXPECTEDFAIL) result "meson: $name" 0 ;;
            *) result "meson: $name ($res)" 1 ;;
        esac
    done < <("$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    print(t["name"] + "\t" + t["result"])' "$OBJ/meson-logs/testlog.json")
else
    result "meson test ran (exit $mrc; log: build/meson-test.log)" 1
fi
if [ "$mrc" != 0 ]; then
    grep -B2 -A30 -E 'FAIL|ERROR|TIMEOUT' "$BUILD/meson-test.log" | head -80
fi

# The vfio tests again, under AddressSanitizer + UndefinedBehaviorSanitizer
# (a build of its own in build/asan; CHECK_ASAN=0 skips it).
if [ "${CHECK_ASAN:-1}" != 0 ] && [ "$QEMU_BASE" = 10.0 ]; then
    step "asan+ubsan: the vfio unit tests and qtests" "$TOP/tooling/check-asan.sh"
else
    note "asan+ubsan: skipped (CHECK_ASAN=0)"
fi

# The listener under random configurations and walks of guest actions,
# checked against the model after every action (tests/vfio-random; a
# fixed set of seeded cases here, more with make random CASES=N).
step "randomized state machine: 24 cases of 30 actions (tests/vfio-random)" \
    "$TOP/tests/vfio-random/run"

# A short soak under LeakSanitizer, in the ASan build check-asan made
# (make soak runs the 10,000 cycles with the release build's figures);
# on 10.0, which has the ASan build.
if [ "${CHECK_ASAN:-1}" != 0 ] && [ "$QEMU_BASE" = 10.0 ]; then
    step "soak under LeakSanitizer: 300 decode/move and 10 plug cycles (tests/vfio-soak)" \
        "$TOP/tests/vfio-soak/run" --lsan-only --cycles 300 --plugs 10 --sample 50
fi

# Guest-input fuzzing: QEMU's generic-fuzz on emulated vfio-pci devices
# with vfio-emu's check_mappings oracle (tests/vfio-fuzz), from a clang
# build of its own in build/fuzz; the committed corpus and crash
# reproducers are replayed, then 45 s of fuzzing.  On 10.0, like the ASan
# build (CHECK_FUZZ=0 skips it).
fuzz_check() {
    "$TOP/tooling/fuzz-build.sh" > "$BUILD/fuzz.build.log" 2>&1 || {
        tail -30 "$BUILD/fuzz.build.log"
        return 1
    }
    "$TOP/tests/vfio-fuzz/run" --check
}
if [ "${CHECK_FUZZ:-1}" != 0 ] && [ "$QEMU_BASE" = 10.0 ]; then
    step "fuzz: generic-fuzz on emulated vfio-pci, corpus replayed, 45 s (tests/vfio-fuzz)" \
        fuzz_check
fi

# The kernel's VFIO selftests, built from Debian's linux-source-7.3, run
# against vfio-emu in a private mount namespace (tests/vfio-selftests).
if [ "$QEMU_BASE" != 10.0 ]; then
    note "kernel VFIO selftests: once, on 10.0 (they test vfio-emu, which both bases share)"
elif "$TOP/tests/vfio-selftests/run" --can-run; then
    step "kernel VFIO selftests (linux-source-7.3) against vfio-emu" \
        "$TOP/tests/vfio-selftests/run"
else
    result "kernel VFIO selftests: cannot run (tests/vfio-selftests/run --can-run)" 1
fi

# The nested-VM system test needs its own packages (tooling/install-deps.sh
# --system-test); without them it is reported as not run.
# Its selftests-7.3 variant (the kernel's VFIO selftests on the real 7.3
# kernel, compared with vfio-emu's results) runs no QEMU of ours: on 10.0
# only, like the selftests against vfio-emu.
if [ -x "$TOP/tests/vfio-system/run" ]; then
    if "$TOP/tests/vfio-system/run" --can-run; then
        systest_args=()
        [ "$QEMU_BASE" = 10.0 ] || systest_args=(--no-selftests)
        step "system test: real kernel VFIO in a nested VM (L2: QEMU $UPSTREAM_VERSION)" \
            "$TOP/tests/vfio-system/run" "${systest_args[@]}"
    else
        note "system test: not run (its packages are missing: tooling/install-deps.sh --system-test)"
    fi
fi

# The guest tier (real firmware and Linux on emulated vfio-pci devices)
# and the libvirt tier; their packages come with --system-test.
if "$TOP/tests/vfio-guest/run" --can-run; then
    step "guest tier: SeaBIOS/OVMF and Linux on emulated vfio-pci" \
        "$TOP/tests/vfio-guest/run"
else
    result "guest tier: its packages (tooling/install-deps.sh --system-test)" 1
fi
# The libvirt tier: it starts and stops its own virtlogd and libvirtd
# (and refuses to run beside ones it did not start).
if "$TOP/tests/vfio-libvirt/run" --can-run; then
    step "libvirt tier: virsh drives our QEMU with emulated vfio-pci" \
        "$TOP/tests/vfio-libvirt/run"
else
    result "libvirt tier: its packages (tooling/install-deps.sh --system-test)" 1
fi

finish
