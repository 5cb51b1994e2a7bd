#!/bin/bash
# Install everything the build, the tests and the demonstration need, from
# Debian's packages only (bookworm + bookworm-backports).  Idempotent.
#
# Usage: tooling/install-deps.sh [--system-test | --bench | --fuzz]
#   --system-test  also install what the nested-VM system test needs
#   --bench        also what make bench needs
#   --fuzz         also what the fuzz build needs (tooling/fuzz-build.sh)
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root (it calls apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Return success when every named package is installed already.
have_all() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
            grep -q '^install ok installed$' || return 1
    done
}

backports=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -e "$backports" ]; then
    cat > "$backports" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    updated=
else
    updated=yes
fi

build_pkgs=(
    build-essential pkg-config ninja-build ccache
    libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev
    flex bison python3-venv python3-setuptools
    python3-sphinx python3-sphinx-rtd-theme
    dpkg-dev quilt xz-utils git
    seabios qemu-system-data ipxe-qemu
    uuid-dev
)
# uuid-dev: the kernel's VFIO selftests (tests/vfio-selftests) link libuuid.
# python3-pycotap: the pristine upstream tree (make series, check-series)
# configures offline only with it; Debian's own patches drop it.
bpo_pkgs=(meson python3-pycotap)
# The nested-VM system test (tests/vfio-system): L0 is QEMU >= 10.0 from
# bookworm-backports; L1's initramfs is busybox-static, packed with cpio,
# its modules resolved with kmod's depmod.  (gcc builds the 64K shim; the
# kernel .deb is fetched by the test itself with apt-get download.)
# The guest tier (tests/vfio-guest) adds OVMF; the libvirt tier
# (tests/vfio-libvirt) bookworm's libvirt, started by the test itself.
systest_pkgs=(qemu-system-x86 busybox-static cpio kmod ovmf
              libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
systest_ok() {
    [ "${1:-}" != --system-test ] ||
        dpkg --compare-versions \
            "$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null)" \
            ge 1:10.0
}

# make bench: callgrind counts, gdb for its helper, gnuplot draws the chart.
bench_pkgs=(valgrind gdb gnuplot-nox)

# make fuzz and make check's short fuzz run (tests/vfio-fuzz): QEMU's
# libFuzzer targets need clang; libclang-rt-14-dev has libFuzzer and the
# sanitizer runtimes.
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}" "${bpo_pkgs[@]}")
if [ "${1:-}" = --system-test ]; then
    want+=("${systest_pkgs[@]}")
elif [ "${1:-}" = --bench ]; then
    want+=("${bench_pkgs[@]}")
elif [ "${1:-}" = --fuzz ]; then
    want+=("${fuzz_pkgs[@]}")
fi

if have_all "${want[@]}" && systest_ok "${1:-}" &&
   { [ "${1:-}" != --system-test ] || grep -q '^user = "root"' /etc/libvirt/qemu.conf 2>/dev/null; } &&
   dpkg --compare-versions "$(dpkg-query -W -f='${Version}' meson)" ge 1.5; then
    echo "install-deps: everything is installed already"
    exit 0
fi

if [ -z "$updated" ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -q
else
    apt-get update -q || true
fi
apt-get install -y -q --no-install-recommends "${build_pkgs[@]}"
apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo_pkgs[@]}"
if [ "${1:-}" = --bench ]; then
    apt-get install -y -q --no-install-recommends "${bench_pkgs[@]}"
fi
if [ "${1:-}" = --fuzz ]; then
    apt-get install -y -q --no-install-recommends "${fuzz_pkgs[@]}"
fi
if [ "${1:-}" = --system-test ]; then
    apt-get install -y -q --no-install-recommends -t bookworm-backports \
        "${systest_pkgs[@]}"
    systest_ok --system-test || {
        echo "install-deps: qemu-system-x86 is older than 10.0; the system" \
             "test needs bookworm-backports' 10.0" >&2
        exit 1
    }
fi

# libvirt without libvirt-daemon-system has no libvirt-qemu user: the
# libvirt tier runs its guests' QEMU as root (tests/vfio-libvirt starts
# virtlogd and libvirtd itself, without systemd).
if [ "${1:-}" = --system-test ]; then
    mkdir -p /etc/libvirt /var/log/libvirt/qemu /var/run/libvirt
    touch /etc/libvirt/qemu.conf
    grep -q '^user = "root"' /etc/libvirt/qemu.conf ||
        printf '# vfio-series libvirt tier\nuser = "root"\ngroup = "root"\n' \
            >> /etc/libvirt/qemu.conf
fi

mver=$(dpkg-query -W -f='${Version}' meson)
if ! dpkg --compare-versions "$mver" ge 1.5; then
    echo "install-deps: meson $mver is too old; QEMU 10.0 needs >= 1.5 from bookworm-backports" >&2
    exit 1
fi
echo "install-deps: done (meson $mver)"
