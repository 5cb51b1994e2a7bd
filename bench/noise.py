#!/usr/bin/python3
"""How much a VM with typical assigned devices prints at start.

A GPU (Tesla T4 layout), a NIC (ConnectX-6 Dx) and an NVMe drive (Optane
900P), from bench/layouts.py, on emulated hosts with 4 KiB and 64 KiB
IOMMU pages (4 KiB host pages): BARs placed as firmware places them,
decoding on, then one more off/on cycle per device.  For each build that
exists (the unpatched base, this series) it prints the lines QEMU wrote
to stderr and how many of them start a warning.  `make bench` runs it
too (build/bench/noise.md); the numbers are in the message of the
reporting patch (0013).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tooling"))
sys.path.insert(0, HERE)

import vfioemu  # noqa: E402
import layouts as L  # noqa: E402

BUILDS = [("unpatched base", os.path.join(vfioemu.BUILD, "baseline",
                                          "qemu-system-x86_64")),
          ("this series", os.path.join(vfioemu.BUILD, "qemu-system-x86_64"))]
DEVICES = ["gpu-t4", "nic-cx6dx", "nvme-900p"]
PAGES = [0x1000, 0x10000]


def run(binary, page):
    m = vfioemu.Machine(binary, container="iova_pgsizes = 0x%x\n" % page)
    devs = [m.add_device(L.by_name(n)["keys"]) for n in DEVICES]
    m.start()
    for d in devs:
        m.program_bars(d)
        m.set_decoding(d, True)
    for d in devs:
        m.set_decoding(d, False)
        m.set_decoding(d, True)
    err = m.stderr()
    m.quit()
    return [line for line in err.splitlines() if line.strip()]


def main():
    print("| build | IOMMU page | lines | warnings |")
    print("| --- | --- | --- | --- |")
    for page in PAGES:
        for name, binary in BUILDS:
            if not os.path.exists(binary):
                continue
            lines = run(binary, page)
            warnings = [x for x in lines if ": warning: " in x]
            print("| %s | %d KiB | %d | %d |" % (name, page >> 10, len(lines),
                                                len(warnings)))
            for w in warnings:
                print("|   | | | %s |" % w.split(": warning: ", 1)[1])


if __name__ == "__main__":
    main()
