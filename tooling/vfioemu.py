"""Drive emulated vfio-pci devices in a q35 machine from Python.

The scripts' counterpart of tests/qtest/vfio-emu/vfio-emu-qtest.c: start
qemu-system-x86_64 under -accel qtest with the VFIO UAPI emulation
(libvfio-emu.so, LD_PRELOAD) and N emulated devices, each behind its own
pcie-root-port; program the root ports and the BARs through PCI config
cycles (0xcf8/0xcfc) as firmware would; toggle memory decoding; read the
emulated IOMMU's table and call log, QEMU's flat view and QMP.

Works with any build of QEMU 10.0 (the unpatched base too): the emulation
only sees system calls.  Used by `make demo` and `make bench`.  QEMU is run
with QEMU's own python/qemu/machine (tooling/qemuvm.py).
"""

import json
import os
import re
import shutil
import tempfile

from qemuvm import VM

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("VFIO_BUILD", os.path.join(TOP, "build"))  # per base
# The base's upstream version, for labels ("unpatched 10.2.2")
BASE_VERSION = {"10.0": "10.0.13", "10.2": "10.2.2"}[
    os.environ.get("QEMU_BASE", "10.0")]
PRELOAD = os.path.join(BUILD, "qemu", "tests", "qtest", "vfio-emu",
                       "libvfio-emu.so")

ROOT_PORT_SLOT = 0x10
MEM32_SIZE = 16 << 20
MEM64_SIZE = 4 << 30

PCI_COMMAND = 0x04
PCI_COMMAND_MEMORY = 0x2
PCI_COMMAND_MASTER = 0x4
PCI_BAR0 = 0x10
PCI_CAP_PTR = 0x34
PCI_CAP_ID_PM = 0x01
PCI_CAP_ID_MSIX = 0x11
PCI_PM_CTRL = 4
# q35's ACPI PCI hotplug registers (the guest's _EJ0)
ACPI_PCIHP_ADDR_ICH9 = 0x0cc0
ACPI_PCIHP_EJ = 0x0008
ACPI_PCIHP_SEL = 0x0010


def mem32_window(i):
    """Device i's 32-bit window behind its root port (16 MiB)."""
    return 0xe0000000 + i * MEM32_SIZE


def mem64_window(i):
    """Device i's 64-bit prefetchable window (4 GiB)."""
    return 0x4000000000 + (i << 32)


def bar_layout(i, bars):
    """Where Machine.program_bars() puts device i's memory BARs, given as
    {bar: (size, mem64)}: {bar: address}, largest first, each naturally
    aligned, in the device's windows."""
    nxt = {False: mem32_window(i), True: mem64_window(i)}
    out = {}
    for bar in sorted(bars, key=lambda b: (-bars[b][0], b)):
        size, mem64 = bars[bar]
        out[bar] = (nxt[mem64] + size - 1) & ~(size - 1)
        nxt[mem64] = out[bar] + size
    return out



def read_state_file(path):
    """A file of the emulation's state directory (JSON Lines: one object a
    line, see tests/qtest/vfio-emu/vfio-emu.h); missing: empty."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Device:
    def __init__(self, index, group, keys, qdev_id=None, props=""):
        self.index = index
        self.props = props
        self.group = group
        self.keys = keys
        self.name = "0000:%02x:00.0" % (index + 1)
        self.id = qdev_id or "vfio%d" % index
        self.port = "rp%d" % index
        self.busnr = index + 1
        self.sysfs = None
        self.bar_size = [0] * 6
        self.bar_mem64 = [False] * 6
        self.bar_io = [False] * 6
        self.bar_addr = [None] * 6
        self.decoding = False


class Machine:
    """A q35 machine with emulated vfio-pci devices.

    container: lines of the emulation's [container] section;
    faults: extra [fault NAME] sections; extra_args: more QEMU arguments;
    wrapper: a command prefix (e.g. valgrind) for QEMU.
    """

    def __init__(self, binary, container="", faults="", ram_mb=512,
                 extra_args=(), wrapper=(), workdir=None, preload=PRELOAD,
                 env=None):
        self.binary = binary
        self.container = container
        self.faults = faults
        self.ram_mb = ram_mb
        self.extra_args = list(extra_args)
        self.wrapper = list(wrapper)
        self.preload = preload
        self.env = env
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="vfioemu-")
        os.makedirs(self.dir, exist_ok=True)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state, exist_ok=True)
        self.config = os.path.join(self.dir, "config")
        self.devs = []
        self.vm = None
        self.events_seen = 0

    def add_device(self, keys, group=None, qdev_id=None, props=""):
        """keys: the emulation's [device] lines; props: vfio-pci's, e.g.
        "x-msix-relocation=bar2"."""
        d = Device(len(self.devs), group or 10 + len(self.devs), keys,
                   qdev_id, props)
        d.sysfs = os.path.join(self.dir, "sys", d.name)
        os.makedirs(d.sysfs, exist_ok=True)
        link = os.path.join(d.sysfs, "iommu_group")
        if not os.path.islink(link):
            os.symlink("../../kernel/iommu_groups/%d" % d.group, link)
        self.devs.append(d)
        return d

    def _config_text(self):
        text = "[container]\n" + self.container.strip() + "\n\n"
        for d in self.devs:
            text += "[device %s]\ngroup = %d\n%s\n\n" % (
                d.name, d.group, d.keys.strip())
        return text + self.faults

    def start(self):
        if not os.path.exists(self.preload):
            raise RuntimeError("%s is missing: run `make build`" % self.preload)
        with open(self.config, "w") as f:
            f.write(self._config_text())
        args = ["-M", "q35", "-m", "%dM" % self.ram_mb] + self.extra_args
        for i, d in enumerate(self.devs):
            args += ["-device", "pcie-root-port,id=%s,chassis=%d,addr=%x.0" %
                     (d.port, i + 1, ROOT_PORT_SLOT + i),
                     "-device", "vfio-pci,sysfsdev=%s,bus=%s,addr=0.0,id=%s%s" %
                     (d.sysfs, d.port, d.id, "," + d.props if d.props else "")]
        env = dict(self.env or os.environ)
        env.update(VFIO_EMU_CONFIG=self.config, VFIO_EMU_STATE=self.state,
                   LD_PRELOAD=self.preload)
        self.vm = VM(self.binary, args, env=env, wrapper=self.wrapper,
                     stderr_path=os.path.join(self.dir, "stderr"))
        for d in self.devs:
            self._program_root_port(d)
            self._size_bars(d)

    # PCI configuration cycles, as firmware does them
    def _cfg_addr(self, bus, devfn, off):
        self.vm.qtest_cmd("outl 0xcf8 0x%x" %
                          (0x80000000 | bus << 16 | devfn << 8 | (off & 0xfc)))
        return 0xcfc + (off & 3)

    def cfg_read(self, bus, devfn, off, size=4):
        port = self._cfg_addr(bus, devfn, off)
        op = {1: "inb", 2: "inw", 4: "inl"}[size]
        return int(self.vm.qtest_cmd("%s 0x%x" % (op, port)).split()[1], 0)

    def cfg_write(self, bus, devfn, off, val, size=4):
        port = self._cfg_addr(bus, devfn, off)
        op = {1: "outb", 2: "outw", 4: "outl"}[size]
        self.vm.qtest_cmd("%s 0x%x 0x%x" % (op, port, val))

    def _program_root_port(self, d, windows_of=None):
        """The root port's bus numbers and its windows: device d's own, or
        those of device index windows_of (two ports then claim the same
        addresses, as a guest may program them)."""
        rp = (ROOT_PORT_SLOT + d.index) << 3
        w_index = d.index if windows_of is None else windows_of
        m32, m64 = mem32_window(w_index), mem64_window(w_index)
        m32_last, m64_last = m32 + MEM32_SIZE - 1, m64 + MEM64_SIZE - 1
        w = self.cfg_write
        w(0, rp, 0x18, 0, 1)                     # primary bus
        w(0, rp, 0x19, d.busnr, 1)               # secondary bus
        w(0, rp, 0x1a, d.busnr, 1)               # subordinate bus
        w(0, rp, 0x1c, 0xf0, 1)                  # no I/O window
        w(0, rp, 0x1d, 0, 1)
        w(0, rp, 0x20, (m32 >> 16) & 0xfff0, 2)
        w(0, rp, 0x22, (m32_last >> 16) & 0xfff0, 2)
        w(0, rp, 0x24, ((m64 >> 16) & 0xfff0) | 1, 2)
        w(0, rp, 0x26, ((m64_last >> 16) & 0xfff0) | 1, 2)
        w(0, rp, 0x28, m64 >> 32)
        w(0, rp, 0x2c, m64_last >> 32)
        w(0, rp, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2)

    def _size_bars(self, d):
        i = 0
        while i < 6:
            off = PCI_BAR0 + 4 * i
            orig = self.cfg_read(d.busnr, 0, off)
            d.bar_io[i] = bool(orig & 1)
            d.bar_mem64[i] = not d.bar_io[i] and (orig & 6) == 4
            self.cfg_write(d.busnr, 0, off, 0xffffffff)
            lo = self.cfg_read(d.busnr, 0, off)
            self.cfg_write(d.busnr, 0, off, orig)
            mask = 0xffffffff00000000 | (lo & (~3 if d.bar_io[i] else ~0xf)
                                         & 0xffffffff)
            if d.bar_mem64[i]:
                orig_hi = self.cfg_read(d.busnr, 0, off + 4)
                self.cfg_write(d.busnr, 0, off + 4, 0xffffffff)
                hi = self.cfg_read(d.busnr, 0, off + 4)
                self.cfg_write(d.busnr, 0, off + 4, orig_hi)
                mask = (hi << 32) | (mask & 0xffffffff)
            d.bar_size[i] = ((~mask + 1) & (2**64 - 1)) if mask & 0xffffffff else 0
            i += 2 if d.bar_mem64[i] else 1

    def set_bar(self, d, bar, addr):
        off = PCI_BAR0 + 4 * bar
        self.cfg_write(d.busnr, 0, off, addr & 0xffffffff)
        if d.bar_mem64[bar]:
            self.cfg_write(d.busnr, 0, off + 4, addr >> 32)
        d.bar_addr[bar] = addr

    def program_bars(self, d):
        """Place every memory BAR in the device's windows (bar_layout())."""
        bars = {b: (d.bar_size[b], d.bar_mem64[b]) for b in range(6)
                if d.bar_size[b] and not d.bar_io[b]}
        for bar, addr in sorted(bar_layout(d.index, bars).items()):
            self.set_bar(d, bar, addr)

    def find_cap(self, d, cap_id):
        """The config-space offset of capability cap_id, or None."""
        off = self.cfg_read(d.busnr, 0, PCI_CAP_PTR, 1) & ~3
        for _ in range(48):
            if not off:
                return None
            if self.cfg_read(d.busnr, 0, off, 1) == cap_id:
                return off
            off = self.cfg_read(d.busnr, 0, off + 1, 1) & ~3
        return None

    def set_power(self, d, state):
        """Write power state (0: D0, 3: D3hot) to PMCSR; returns what the
        guest reads back."""
        pm = self.find_cap(d, PCI_CAP_ID_PM)
        csr = self.cfg_read(d.busnr, 0, pm + PCI_PM_CTRL, 2)
        self.cfg_write(d.busnr, 0, pm + PCI_PM_CTRL, (csr & ~3) | state, 2)
        return self.cfg_read(d.busnr, 0, pm + PCI_PM_CTRL, 2) & 3

    def unplug(self, d):
        """device_del, the guest's eject through the ACPI hotplug
        registers, and DEVICE_DELETED."""
        self.vm.cmd("device_del", id=d.id)
        bsel = self.vm.cmd("qom-get", path="/machine/peripheral/%s/%s" %
                           (d.port, d.port), property="acpi-pcihp-bsel")
        self.vm.qtest_cmd("outl 0x%x 0x%x" %
                          (ACPI_PCIHP_ADDR_ICH9 + ACPI_PCIHP_SEL, bsel))
        self.vm.qtest_cmd("outl 0x%x 1" % (ACPI_PCIHP_ADDR_ICH9 +
                                            ACPI_PCIHP_EJ))
        self.vm.event_wait("DEVICE_DELETED", 30,
                           match={"data": {"device": d.id}})
        d.decoding = False
        d.bar_addr = [None] * 6

    def replug(self, d):
        """device_add in the same slot; the BARs are sized, not placed."""
        args = dict(driver="vfio-pci", id=d.id, sysfsdev=d.sysfs, bus=d.port,
                    addr="0.0")
        for prop in filter(None, d.props.split(",")):
            k, _, v = prop.partition("=")
            args[k] = v
        self.vm.cmd("device_add", **args)
        self._size_bars(d)

    def set_decoding(self, d, on):
        cmd = self.cfg_read(d.busnr, 0, PCI_COMMAND, 2)
        cmd = cmd | PCI_COMMAND_MEMORY if on else cmd & ~PCI_COMMAND_MEMORY
        self.cfg_write(d.busnr, 0, PCI_COMMAND, cmd, 2)
        d.decoding = on

    def set_faults(self, text):
        """Replace the runtime fault rules (the emulation re-reads them)."""
        tmp = os.path.join(self.state, "faults.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.state, "faults"))

    # What the emulated IOMMU holds, and what QEMU asked of it
    def _state_file(self, name):
        return read_state_file(os.path.join(self.state, name))

    def mappings(self):
        return self._state_file("mappings")

    def events(self):
        return self._state_file("events")

    def take_events(self):
        ev = self.events()
        new = ev[self.events_seen:]
        self.events_seen = len(ev)
        return new

    def ram_device_sections(self):
        """RAM-device sections of the system address space's flat view.

        Returns (first, last, region name) tuples, from HMP `info mtree -f`.
        """
        text = self.vm.hmp("info mtree -f")
        out = []
        in_memory = False
        for line in text.splitlines():
            if line.startswith("FlatView"):
                in_memory = False
            if line.startswith(" AS \"memory\"") or \
                    line.startswith(' AS "memory"'):
                in_memory = True
            m = re.match(r"\s+([0-9a-f]+)-([0-9a-f]+) \(prio [-0-9]+, "
                         r"ramd\): (.*?)(?: @[0-9a-f]+)?(?: KVM)?$", line)
            if in_memory and m:
                out.append((int(m.group(1), 16), int(m.group(2), 16),
                            m.group(3)))
        return out

    def stderr(self):
        return self.vm.read_stderr()

    def quit(self):
        rc = self.vm.quit() if self.vm else 0
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc
