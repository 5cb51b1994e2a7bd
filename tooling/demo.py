#!/usr/bin/python3
"""The demonstration (make demo).

A ConnectX-like NIC is passed through (emulated: tests/qtest/vfio-emu, no
hardware) to a q35 guest on a host whose IOMMU minimum page is 64 KiB.
Firmware programs its BAR and turns memory decoding on, then off.  We show
what this series prints and what `info vfio-dma` says, and, when
`make baseline` has been built, what the unpatched QEMU does with the same
device.
"""

import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vfioemu import BUILD, Machine  # noqa: E402
from vfiomodel import trimmed  # noqa: E402

OURS = os.path.join(BUILD, "qemu-system-x86_64")
BASE = os.path.join(BUILD, "baseline", "qemu-system-x86_64")

PAGE = 64 << 10
HOST_PAGE = 4 << 10
CONTAINER = "iova_pgsizes = 0x%x\n" % PAGE
# Mellanox ConnectX-5 (15b3:1017), as lspci -vv shows it: Region 0: 64-bit
# prefetchable, size=32M; MSI-X: Count=64, Table: BAR=0 offset=00002000,
# PBA: BAR=0 offset=00003000.
NIC = """vendor_id = 0x15b3
device_id = 0x1017
bar0 = 0x2000000 mem64 prefetch
msix_entries = 64
msix_table = 0:0x2000
msix_pba = 0:0x3000
"""


def size_str(n):
    if n > 1 << 20 and n % (1 << 20):
        return "%d KiB" % (n >> 10) if n % 1024 == 0 else "%d B" % n
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return ("%.1f %s" % (v, unit)).replace(".0 ", " ")
    return "%d B" % n


def run(binary, show, props=""):
    """Run the scenario; return what a user would notice."""
    m = Machine(binary, container=CONTAINER)
    nic = m.add_device(NIC, qdev_id="nic0", props=props)
    m.start()
    m.program_bars(nic)
    m.take_events()
    m.set_decoding(nic, True)
    sections = [s for s in m.ram_device_sections() if "BAR 0" in s[2]]
    bar_maps = [x for x in m.mappings() if x["backing"] != "ram"]
    res = {
        "bar": nic.bar_addr[0],
        "sections": sections,
        "mapped": sum(x["size"] for x in bar_maps),
        "reachable": sum(trimmed(f, la, PAGE) for f, la, _ in sections),
    }
    if show:
        res["info_on"] = m.vm.hmp("info vfio-dma")
    m.set_decoding(nic, False)
    if show:
        res["info_off"] = m.vm.hmp("info vfio-dma")
    res["left"] = sum(x["size"] for x in m.mappings()
                      if x["backing"] != "ram")
    ev = m.take_events()
    res["failed_maps"] = sum(1 for e in ev if e["op"] == "MAP" and e["ret"])
    res["bad_unmaps"] = sum(1 for e in ev if e["op"] == "UNMAP" and
                            e.get("unmapped", 0) < e["size"])
    res["stderr"] = [line for line in m.stderr().splitlines() if line]
    rc = m.quit()
    res["rc"] = rc
    return res


def wrap(line, indent):
    return textwrap.fill(line, width=100, initial_indent=indent,
                         subsequent_indent=indent + "    ",
                         break_on_hyphens=False)


def indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def main():
    ours = run(OURS, True)
    secs = ours["sections"]
    print("Peer-to-peer DMA to a passed-through NIC on a host with 64 KiB "
          "IOMMU pages")
    print("=" * 79)
    print("Device: ConnectX-like NIC (emulated VFIO, no hardware), BAR0 "
          "32 MiB, MSI-X table at 0x2000")
    print("Host:   IOMMU minimum page 64 KiB (ARM SMMU 64K granule, POWER), "
          "host page 4 KiB")
    print("QEMU traps the MSI-X table, so the IOMMU is offered BAR0 in %d "
          "pieces:" % len(secs))
    for first, last, _ in secs:
        print("    0x%x-0x%x  %s" % (first, last, size_str(last - first + 1)))

    print("\n1. Firmware places BAR0 at 0x%x and turns decoding on." %
          ours["bar"])
    print("   This series warns (stderr):")
    for line in ours["stderr"] or ["(nothing)"]:
        print(wrap(line, "     "))
    print("   (qemu) info vfio-dma")
    print(indent(ours["info_on"], "     "))
    print("\n2. Decoding off: the BAR's mapping is gone, guest RAM stays.")
    print("   (qemu) info vfio-dma")
    off = ours["info_off"].rstrip().splitlines()
    ram = [line for line in off if "guest RAM" in line]
    print(indent("\n".join(line for line in off if line not in ram),
                 "     "))
    print("       (%d guest RAM rows, as above; no BAR row)" % len(ram))

    hint = [w for line in ours["stderr"] for w in line.split()
            if "x-msix-relocation=" in w]
    if hint:
        fixed = run(OURS, False, props=hint[0])
        print("\n3. With the hint applied (-device vfio-pci,...,%s): BAR0 has "
              "%s mapped of %s, %d warning(s)." %
              (hint[0], size_str(fixed["mapped"]), size_str(32 << 20),
               len(fixed["stderr"])))

    if not os.path.exists(BASE):
        print("\n(`make baseline` builds the unpatched QEMU for a "
              "side-by-side comparison.)")
        return 0 if ours["rc"] == 0 else 1
    base = run(BASE, False)
    print("\nSide by side, same device and host           unpatched 10.0.13   "
          "this series")

    def row(label, b, o):
        print("  %-44s %-19s %s" % (label, b, o))

    def pct(r):
        return "%s (%.1f%%)" % (size_str(r["mapped"]),
                                100.0 * r["mapped"] / r["reachable"])
    row("BAR0 mapped for P2P (of %s reachable)" %
        size_str(ours["reachable"]), pct(base), pct(ours))
    row("BAR0 still mapped after decoding off", size_str(base["left"]),
        size_str(ours["left"]))
    row("lines printed on stderr",
        len(base["stderr"]) or "none", len(ours["stderr"]) or "none")
    row("failed DMA map calls", base["failed_maps"], ours["failed_maps"])
    row("unmaps of never-mapped space", base["bad_unmaps"],
        ours["bad_unmaps"])
    row("exit status", base["rc"], ours["rc"])
    ok = ours["rc"] == 0 and ours["mapped"] == ours["reachable"] and \
        ours["left"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
