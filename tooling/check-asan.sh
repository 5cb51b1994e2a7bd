#!/bin/bash
# Our unit tests and qtests under AddressSanitizer + UndefinedBehaviorSanitizer
# (make check-asan; make check runs it too unless CHECK_ASAN=0).
#   build/src -> build/asan (configured with --enable-asan --enable-ubsan)
# The last line is "N passed, M failed", as for make check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

obj=$BUILD/asan
"$TOP/tooling/tree.sh"

# Configure, then build only what the vfio tests need.
QEMU_OBJ=$obj QEMU_CONFIGURE_EXTRA="--enable-asan --enable-ubsan" \
    "$TOP/tooling/build.sh" > "$BUILD/asan.build.log" 2>&1 || {
    tail -30 "$BUILD/asan.build.log" >&2
    die "check-asan: the sanitizer build failed (log: build/asan.build.log)"
}
mapfile -t tests < <(meson test -C "$obj" --no-rebuild --list 2>/dev/null |
                     sed -n 's|^.* / ||p' | grep -E 'vfio' | sort -u)
[ "${#tests[@]}" -gt 0 ] || die "check-asan: no vfio tests found in $obj"
mapfile -t targets < <(meson introspect "$obj" --targets |
    "$PYTHON" -c '
import json, os, sys
for t in json.load(sys.stdin):
    if "vfio" in t["name"] and t["type"] in ("executable", "shared module"):
        for f in t["filename"]:
            print(os.path.relpath(f, sys.argv[1]))
' "$obj")
PATH=/usr/lib/ccache:$PATH ninja -C "$obj" "${targets[@]}" >> "$BUILD/asan.build.log" 2>&1 || {
    tail -30 "$BUILD/asan.build.log" >&2
    die "check-asan: building the tests failed (log: build/asan.build.log)"
}

# libvfio-emu.so is preloaded ahead of the ASan runtime: tell ASan that is
# fine.  Leaks are reported but QEMU's exit-time allocations are not ours,
# so only errors and undefined behaviour fail a test.
export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
passed=0
failed=0
meson test -C "$obj" --no-rebuild --print-errorlogs -t 4 "${tests[@]}" \
    > "$BUILD/asan.test.log" 2>&1 || true
while read -r status name; do
    if [ "$status" = OK ] || [ "$status" = SKIP ]; then
        passed=$((passed + 1))
        echo "ok: asan+ubsan: $name"
    else
        failed=$((failed + 1))
        echo "FAILED: asan+ubsan: $name ($status)"
    fi
done < <("$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["result"], r["name"])
' "$obj/meson-logs/testlog.json")
if grep -q -E 'ERROR: AddressSanitizer|runtime error:' "$BUILD/asan.test.log"; then
    echo "FAILED: asan+ubsan: sanitizer reports in build/asan.test.log"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
