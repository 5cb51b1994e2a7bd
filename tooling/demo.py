#!/usr/bin/python3
"""The demonstration (make demo).

A ConnectX-like NIC is passed through (emulated: tests/qtest/vfio-emu, no
hardware) to a q35 guest on a host whose IOMMU minimum page is 64 KiB.
Firmware programs its BAR and turns memory decoding on, then off.  We show
what this series prints and what `info vfio-dma` says, and, when
`make baseline` has been built, what the unpatched QEMU does with the same
device.

Then the most common real-world failure, with a real guest (OVMF and
Linux under TCG, tooling/vfioguest.py): a guest CPU with 46 physical
address bits on a host IOMMU with 39 makes OVMF put a GPU's 16 GiB BAR
above the limit.  The guest's sysfs, our warning and its hint, what the
unpatched base prints and how many of its map ioctls fail; then the hint
applied through libvirt's <maxphysaddr> (the libvirt tier's daemons and
domain, tests/vfio-libvirt/run) or, without libvirt, -cpu phys-bits=39.
"""

import os
import shutil
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import vfiomodel  # noqa: E402
from vfioemu import BASE_VERSION, BUILD, Machine  # noqa: E402
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



# ---------------------------------------------------------------- part 2
# The most common real-world failure, end to end with a real guest: OVMF
# with 46 physical address bits puts a GPU's 16 GiB BAR above a 39-bit
# IOMMU (the guest tier's machinery: tooling/vfioguest.py).

LIBVIRT_RUN = os.path.join(os.path.dirname(HERE), "tests", "vfio-libvirt",
                           "run")


def guest_bar1(g):
    """BAR 1 of the GPU as the guest's sysfs has it: (start, end)."""
    import vfioguest as vg
    _, lines = g.run("devs")
    _, d = vg.State("demo", lines, {}, [], []).guest_dev("gpu")
    return d["res"].get(1) if d else None


def bar_rows(info):
    return [line.rstrip() for line in info.splitlines()
            if "'gpu'" in line]


def gpu_guest(binary, bits, workdir):
    """OVMF + Linux with phys-bits `bits` on a 39-bit IOMMU."""
    import vfioguest as vg
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    emu = vg.Emulation(workdir, ["gpu"], iova=vg.iova_limit(39))
    g = vg.Guest(workdir, emu, firmware="ovmf", cpu="qemu64,phys-bits=%d" %
                 bits, binary=binary)
    try:
        g.wait_ready(240)
        res = dict(bar1=guest_bar1(g))
        if binary == OURS:
            res["info"] = g.vm.hmp("info vfio-dma")
    finally:
        res_text = g.stderr()
        g.quit()
    res["stderr"] = [x for x in res_text.splitlines() if x.strip()]
    res["failed"] = sum(1 for e in emu.events()
                        if e["op"] == "MAP" and e["ret"])
    res["mapped1"] = sum(m["size"] for m in emu.mappings()
                         if ":bar1+" in m.get("backing", ""))
    return res


def gpu_libvirt(workdir):
    """The hint applied through libvirt's <maxphysaddr> (the libvirt
    tier's daemons and domain); None when libvirt cannot run here."""
    import importlib.machinery
    import importlib.util
    import vfioguest as vg
    loader = importlib.machinery.SourceFileLoader("vfio_libvirt_run",
                                                  LIBVIRT_RUN)
    spec = importlib.util.spec_from_loader("vfio_libvirt_run", loader)
    lv = importlib.util.module_from_spec(spec)
    loader.exec_module(lv)
    if not all(os.path.exists(p) for p in lv.NEEDS) or os.geteuid():
        return None
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    rundir = tempfile.mkdtemp(prefix="vfio-demo-")
    try:
        daemons = lv.Daemons(rundir)
    except RuntimeError as e:
        return dict(error=str(e))
    res = {}
    try:
        emu = vg.Emulation(workdir, ["gpu"], iova=vg.iova_limit(39))
        lv.virsh("destroy", lv.DOM, check=False)
        lv.virsh("undefine", lv.DOM, "--nvram", check=False)
        g = lv.LibvirtGuest(workdir, emu, lv.cpu_xml(MAXPHYSADDR))
        try:
            g.wait_ready(240)
            res["bar1"] = guest_bar1(g)
            res["info"] = g.hmp("info vfio-dma")
            with open(lv.DOMLOG, errors="replace") as f:
                res["warnings"] = vfiomodel.parse_dma_messages(f.read())[0]
        finally:
            g.destroy()
        res["mapped1"] = sum(m["size"] for m in emu.mappings()
                             if ":bar1+" in m.get("backing", ""))
    finally:
        daemons.stop()
        shutil.rmtree(rundir, ignore_errors=True)
    return res


MAXPHYSADDR = "<maxphysaddr mode='emulate' bits='39'/>"


def gpu_part():
    import vfioguest as vg
    out = os.path.join(BUILD, "vfio-guest", "demo")
    need = [p for p in (vg.OVMF_CODE, vg.BUSYBOX, "/usr/bin/cpio")
            if not os.path.exists(p)]
    print("\nA GPU's 16 GiB BAR, a host IOMMU with a 39-bit IOVA limit "
          "(0x7fffffffff), 4 KiB pages")
    print("=" * 79)
    if need:
        print("(not shown: %s missing; tooling/install-deps.sh --system-test)"
              % ", ".join(need))
        return True
    ours = gpu_guest(OURS, 46, os.path.join(out, "phys-bits-46"))
    b = ours["bar1"]
    print("1. OVMF and Linux (TCG), -cpu qemu64,phys-bits=46.  The guest's "
          "sysfs (the GPU's resource),")
    print("   BAR 1: 0x%x-0x%x, %s, above 2^39." %
          (b[0], b[1], size_str(b[1] - b[0] + 1))
          if b else "1. The guest does not see the GPU's BAR 1.")
    warns = vfiomodel.parse_dma_messages("\n".join(ours["stderr"]))[0]
    w1 = [w for w in warns if w["bar"] == 1]
    print("   This series warns (%d warnings: BAR 1, BAR 3), BAR 1's:" %
          len(warns))
    for w in w1[:1]:
        print(wrap(w["text"].splitlines()[0], "     "))
        print(wrap("Hint: " + w["hint"], "     "))
    ok = bool(w1) and "phys-bits=39" in w1[0]["hint"] and \
        ours["mapped1"] == 0
    if os.path.exists(BASE):
        base = gpu_guest(BASE, 46, os.path.join(out, "baseline-46"))
        print("   Unpatched %s: %d lines on stderr, %d failing "
              "VFIO_IOMMU_MAP_DMA ioctls, e.g.:" %
              (BASE_VERSION, len(base["stderr"]), base["failed"]))
        for line in base["stderr"][:1]:
            print(wrap(line, "     "))
    fixed = gpu_libvirt(os.path.join(out, "libvirt-39"))
    if fixed and "error" not in fixed:
        print("2. The hint through libvirt (virsh start): <cpu mode='custom'>"
              "<model>qemu64</model>")
        print("   %s</cpu>  (passthrough limit='39' means host-phys-bits, "
              "which TCG ignores)" % MAXPHYSADDR)
        print("   $ virsh qemu-monitor-command %s --hmp 'info vfio-dma'  "
              "(the GPU's rows)" % "vfio-series-guest")
        nwarn = len(fixed["warnings"])
    else:
        if fixed:
            print("(libvirt not used: %s)" % fixed["error"])
        fixed = gpu_guest(OURS, 39, os.path.join(out, "phys-bits-39"))
        print("2. The hint applied: -cpu qemu64,phys-bits=39 (no libvirt "
              "here); (qemu) info vfio-dma, GPU rows:")
        nwarn = len(vfiomodel.parse_dma_messages(
            "\n".join(fixed["stderr"]))[0])
    for line in bar_rows(fixed["info"]):
        print("    " + line.strip())
    b = fixed["bar1"]
    print("   The guest's sysfs, BAR 1: 0x%x-0x%x, %s 2^39; BAR 1 mapped: "
          "%s; %d warning(s)." % (b[0], b[1], "below" if b[1] < 1 << 39 else
                                  "above", size_str(fixed["mapped1"]), nwarn)
          if b else "   BAR 1: the guest does not see it")
    return ok and b and b[1] < 1 << 39 and fixed["mapped1"] == 16 << 30

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
    rows = ours["info_on"].rstrip().splitlines()
    ram = [line for line in rows if "guest RAM" in line]
    print("   (qemu) info vfio-dma  (%d guest RAM rows left out)" % len(ram))
    print(indent("\n".join(line for line in rows if line not in ram and
                           line.lstrip().startswith("0x")), "     "))
    off = ours["info_off"].rstrip().splitlines()
    print("2. Decoding off: info vfio-dma has %d guest RAM rows and no BAR row."
          % len([line for line in off if "guest RAM" in line]))
    hint = [w for line in ours["stderr"] for w in line.split()
            if "x-msix-relocation=" in w]
    if hint:
        fixed = run(OURS, False, props=hint[0])
        print("3. With the hint applied (-device vfio-pci,...,%s): BAR0 has "
              "%s mapped of %s, %d warning(s)." %
              (hint[0], size_str(fixed["mapped"]), size_str(32 << 20),
               len(fixed["stderr"])))

    ok = ours["rc"] == 0 and ours["mapped"] == ours["reachable"] and \
        ours["left"] == 0
    if not os.path.exists(BASE):
        print("\n(`make baseline` builds the unpatched QEMU for a "
              "side-by-side comparison.)")
        return 0 if gpu_part() and ok else 1
    base = run(BASE, False)
    print("\nSide by side, same device and host           unpatched %-7s   "
          "this series" % BASE_VERSION)

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
    return 0 if gpu_part() and ok else 1


if __name__ == "__main__":
    sys.exit(main())
