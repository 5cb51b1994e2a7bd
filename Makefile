# The project's entry points.  `make demo` and `make check` do everything,
# including installing Debian's packages (as root) and building QEMU.
.PHONY: all deps base tree export build baseline series check-series \
        debian-patches check check-asan system-test vfio-selftests guest-test \
        random soak fuzz \
        libvirt-test demo bench clean help

# The base: make QEMU_BASE=10.2 <target> (or BASE=10.2); the default is
# 10.0 (Debian 13's 10.0.13).  10.0 builds in build/, 10.2 in build/10.2/.
QEMU_BASE ?= $(or $(BASE),10.0)
override QEMU_BASE := $(patsubst 10.0.13,10.0,$(patsubst 10.2.2,10.2,$(QEMU_BASE)))
VFIO_BUILD := $(CURDIR)/build$(if $(filter 10.2,$(QEMU_BASE)),/10.2)
export QEMU_BASE VFIO_BUILD

all: build

help:
	@echo "Every target takes QEMU_BASE=10.0 (default) or QEMU_BASE=10.2; make check tests both"
	@echo "make demo            build the patched emulator and run the demonstration"
	@echo "make check           run every test (what CI runs)"
	@echo "make build           build build/qemu-system-x86_64"
	@echo "make baseline        build the unpatched base at build/baseline/"
	@echo "make tree            assemble build/src (git: base + one commit per patch)"
	@echo "make export          write build/src's commits back to patches/ and our files"
	@echo "make series          git am-able series against pristine upstream (10.0.13 or 10.2.2) in build/series (author: git config or SERIES_AUTHOR)"
	@echo "make check-series    build every commit of the series and run the vfio tests it has"
	@echo "make check-asan      the vfio tests under ASan+UBSan (part of make check)"
	@echo "make system-test     nested-VM test of our QEMU against real kernel VFIO (installs its packages)"
	@echo "make vfio-selftests  the kernel's VFIO selftests (linux-source-7.3) against vfio-emu"
	@echo "make random          the randomized state-machine test, CASES=N cases (default 24), SEED=S"
	@echo "make soak            10,000 decode/move and 100 plug cycles: RSS, record size, LeakSanitizer"
	@echo "make fuzz            generic-fuzz on emulated vfio-pci devices (clang build in build/fuzz), FUZZ_TIME=seconds (300)"
	@echo "make guest-test      real guests (SeaBIOS, OVMF, Linux) on emulated vfio-pci devices"
	@echo "make libvirt-test    libvirt runs our QEMU with emulated vfio-pci devices"
	@echo "make debian-patches  DEP-3 quilt patches for debian/patches in build/debian-patches"
	@echo "make bench           this series against the base: build/bench/report.md (TOGGLES=N)"

deps:
	@tooling/install-deps.sh

base: deps
	@tooling/base.sh

tree: base
	@tooling/tree.sh

export:
	@tooling/export.sh

build: deps
	@tooling/build.sh

baseline: deps
	@tooling/build.sh baseline

series: base
	@tooling/series.sh

check-series: deps
	@tooling/series.sh --build

debian-patches: base
	@tooling/debian-patches.sh

# make check (and CI) installs the system test's packages too: Debian's
# QEMU and the 6.12 kernel from bookworm-backports, busybox.
check:
	@tooling/install-deps.sh --system-test
	@tooling/install-deps.sh --fuzz
	@tooling/check.sh

system-test: build
	@tooling/install-deps.sh --system-test
	@tests/vfio-system/run

vfio-selftests: build
	@tests/vfio-selftests/run

random: build
	@tests/vfio-random/run $(if $(CASES),--cases $(CASES)) $(if $(SEED),--seed $(SEED))

soak: build check-asan
	@tests/vfio-soak/run $(if $(CYCLES),--cycles $(CYCLES)) $(if $(PLUGS),--plugs $(PLUGS))
fuzz:
	@tooling/install-deps.sh --fuzz
	@tooling/fuzz-build.sh
	@tests/vfio-fuzz/run $(if $(FUZZ_TIME),--time $(FUZZ_TIME)) $(if $(SEED),--seed $(SEED))

guest-test: build
	@tooling/install-deps.sh --system-test
	@tests/vfio-guest/run

libvirt-test: build
	@tooling/install-deps.sh --system-test
	@tests/vfio-libvirt/run

check-asan: deps
	@tooling/check-asan.sh

# the demo's second part boots OVMF and Linux (OVMF, busybox, the kernel the
# system test fetches) and applies the hint through libvirt: --system-test.
demo: build
	@tooling/install-deps.sh --system-test
	@/usr/bin/python3 tooling/demo.py

bench: build baseline
	@tooling/install-deps.sh --bench
	@/usr/bin/python3 bench/run.py $(if $(TOGGLES),--toggles $(TOGGLES))
	@/usr/bin/python3 bench/noise.py | tee $(VFIO_BUILD)/bench/noise.md

clean:
	rm -rf build
