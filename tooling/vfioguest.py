"""Real guests (firmware + Debian's kernel + a busybox initramfs) on
build/qemu-system-x86_64 (TCG) with emulated vfio-pci devices, and the
checks the guest and libvirt tiers share: the emulated IOMMU's table
against what the guest placed, through the one model (vfiomodel).

The guest's /init is tests/vfio-guest/guest-init: a shell on ttyS1 that
runs the host's commands and ends each answer with "@@END <status>".
"""

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

import vfiomodel
from vfioemu import read_state_file
from qemuvm import VM, VMLaunchFailure  # noqa: F401

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The guest's files (kernel, initramfs) serve both bases: build/vfio-guest;
# the emulator is the chosen base's (QEMU_BASE: VFIO_BUILD, tooling/lib.sh)
OUT = os.path.join(TOP, "build", "vfio-guest")
BUILD = os.environ.get("VFIO_BUILD", os.path.join(TOP, "build"))
QEMU = os.path.join(BUILD, "qemu-system-x86_64")
PRELOAD = os.path.join(BUILD, "qemu", "tests", "qtest", "vfio-emu",
                       "libvfio-emu.so")
GUEST_INIT = os.path.join(TOP, "tests", "vfio-guest", "guest-init")
BUSYBOX = "/bin/busybox"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
PAGE_4K = 0x1000
UNMAPPED = 0xffffffffffffffff
# x86 host default of the emulation: 48 bits less the MSI window
IOVA_48 = [(0, 0xfedfffff), (0xfef00000, (1 << 48) - 1)]


def iova_limit(bits):
    """Usable IOVA ranges of an IOMMU with `bits` address bits."""
    return [(0, 0xfedfffff), (0xfef00000, (1 << bits) - 1)]


def iova_key(ranges):
    return "iova_ranges = " + ",".join("0x%x-0x%x" % r for r in ranges)


# Devices shaped like real hardware (lspci -vv of each; bench/layouts.py
# has the sources).  msix: (BAR, table offset, entries).
DEVICES = {
    "nic": dict(name="0000:01:00.0", title="ConnectX-like NIC",
                msix=(0, 0x2000, 64), keys="""vendor_id = 0x15b3
device_id = 0x1017
bar0 = 0x2000000 mem64 prefetch
msix_entries = 64
msix_table = 0:0x2000
msix_pba = 0:0x3000
"""),
    "gpu": dict(name="0000:02:00.0", title="GPU-like, 16 GiB BAR1",
                msix=(0, 0xb90000, 6), keys="""vendor_id = 0x10de
device_id = 0x20b5
class = 0x030200
bar0 = 0x1000000 mem32
bar1 = 0x400000000 mem64 prefetch
bar3 = 0x2000000 mem64 prefetch
msix_entries = 6
msix_table = 0:0xb90000
msix_pba = 0:0xba0000
"""),
    "e1000e": dict(name="0000:03:00.0", title="e1000e-like (82574L)",
                   msix=(3, 0, 5), keys="""vendor_id = 0x8086
device_id = 0x10d3
class = 0x020000
bar0 = 0x20000 mem32
bar1 = 0x20000 mem32
bar2 = 0x20 io
bar3 = 0x4000 mem32
msix_entries = 5
msix_table = 3:0x0
msix_pba = 3:0x2000
"""),
}


def ids_of(qid):
    keys = DEVICES[qid]["keys"]
    v = re.search(r"vendor_id = (0x[0-9a-f]+)", keys).group(1)
    d = re.search(r"device_id = (0x[0-9a-f]+)", keys).group(1)
    return int(v, 16), int(d, 16)


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------ kernel, initrd

def _system_test():
    path = os.path.join(TOP, "tests", "vfio-system", "run")
    loader = importlib.machinery.SourceFileLoader("vfio_system_run", path)
    spec = importlib.util.spec_from_loader("vfio_system_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def kernel():
    """Debian's kernel, the one the system test fetches (its cache under
    build/vfio-system/kernel: apt-get download, dpkg-deb -x)."""
    st = _system_test()
    _, vmlinuz, _ = st.get_kernel()
    return vmlinuz


def initramfs():
    """busybox-static and guest-init, as an uncompressed newc cpio (no
    module: pciehp, the 8250 UART and sysfs are built into Debian's kernel).
    Rebuilt when guest-init or busybox changes."""
    os.makedirs(OUT, exist_ok=True)
    h = hashlib.sha256()
    for p in (GUEST_INIT, BUSYBOX):
        with open(p, "rb") as f:
            h.update(f.read())
    cpio = os.path.join(OUT, "initramfs-%s.cpio" % h.hexdigest()[:12])
    if os.path.exists(cpio):
        return cpio
    root = tempfile.mkdtemp(prefix="vfio-guest-root-")
    try:
        for d in ("bin", "sbin", "dev", "proc", "sys", "tmp"):
            os.makedirs(os.path.join(root, d))
        shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
        for applet in subprocess.run([BUSYBOX, "--list"], check=True,
                                     capture_output=True,
                                     text=True).stdout.split():
            if applet != "busybox":
                os.symlink("busybox", os.path.join(root, "bin", applet))
        shutil.copy2(GUEST_INIT, os.path.join(root, "init"))
        files = subprocess.run(["find", "."], cwd=root, check=True,
                               capture_output=True).stdout
        for old in os.listdir(OUT):
            if old.startswith("initramfs-"):
                os.remove(os.path.join(OUT, old))
        with open(cpio + ".tmp", "wb") as f:
            subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0",
                            "--quiet"], cwd=root, input=files, stdout=f,
                           check=True)
        os.rename(cpio + ".tmp", cpio)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return cpio


# The guest's kernel command line.  The guest tier turns QEMU's ACPI PCI
# hotplug off (ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off) and has
# the kernel drive its root ports natively (pciehp: device_del/device_add).
# The libvirt tier keeps what libvirt gives, ACPI PCI hotplug on, and must
# not force native control: with ACPI hotplug on, QEMU's root ports do not
# report a cold-plugged device in Presence Detect State, and a pciehp that
# overrides _OSC (pcie_ports=native) powers the "empty" slot off at probe:
# the device's BARs are unmapped, its config space reads all-ones.
APPEND_BASE = "console=ttyS0 quiet loglevel=3 panic=-1"
APPEND = APPEND_BASE + " pcie_ports=native"


# --------------------------------------------------------- the emulation

class Emulation:
    """A vfio-emu configuration and state directory for some devices."""

    def __init__(self, workdir, qids, pgsizes=PAGE_4K, iova=IOVA_48,
                 iommufd=False):
        self.dir = workdir
        self.qids = list(qids)
        self.pgsizes = pgsizes
        self.granule = pgsizes & -pgsizes
        self.iova = iova
        self.iommufd = iommufd
        self.state = os.path.join(workdir, "state")
        os.makedirs(self.state, exist_ok=True)
        self.config = os.path.join(workdir, "vfio-emu.conf")
        text = "[container]\niova_pgsizes = 0x%x\n%s\n\n" % (
            pgsizes, iova_key(iova))
        for i, q in enumerate(self.qids):
            d = DEVICES[q]
            text += "[device %s]\ngroup = %d\n%s\n" % (d["name"], 10 + i,
                                                      d["keys"])
            sysfs = self.sysfs(q)
            os.makedirs(sysfs, exist_ok=True)
            link = os.path.join(sysfs, "iommu_group")
            if not os.path.islink(link):
                os.symlink("../../kernel/iommu_groups/%d" % (10 + i), link)
            if iommufd:
                vd = os.path.join(sysfs, "vfio-dev", "vfio%d" % i)
                os.makedirs(vd, exist_ok=True)
                with open(os.path.join(vd, "dev"), "w") as f:
                    f.write("511:%d\n" % i)
        with open(self.config, "w") as f:
            f.write(text)

    def sysfs(self, qid):
        return os.path.join(self.dir, "sys", DEVICES[qid]["name"])

    def env(self):
        return {"LD_PRELOAD": PRELOAD, "VFIO_EMU_CONFIG": self.config,
                "VFIO_EMU_STATE": self.state}

    def device_arg(self, qid, bus):
        extra = ",iommufd=iommufd0" if self.iommufd else ""
        return "vfio-pci,sysfsdev=%s,bus=%s,addr=0.0,id=%s%s" % (
            self.sysfs(qid), bus, qid, extra)

    def qemu_args(self):
        """Root ports and devices (each device behind its own port)."""
        args = []
        if self.iommufd:
            args += ["-object", "iommufd,id=iommufd0"]
        for i, q in enumerate(self.qids):
            args += ["-device", "pcie-root-port,id=rp%d,chassis=%d,addr=%x.0"
                     % (i, i + 1, 0x10 + i),
                     "-device", self.device_arg(q, "rp%d" % i)]
        return args

    def _read(self, name):
        return read_state_file(os.path.join(self.state, name))

    def mappings(self):
        return self._read("mappings")

    def events(self):
        return self._read("events")

    def qid_of_backing(self, backing):
        for q in self.qids:
            if backing.startswith(DEVICES[q]["name"] + ":"):
                return q, int(backing.split(":bar")[1].split("+")[0])
        return None, None


# --------------------------------------------------------------- warnings

WARN_PREFIX = "qemu-system-x86_64: warning: "
def parse_warnings(text):
    """Our DMA warnings in QEMU's stderr (or libvirt's domain log), by parts
    (vfiomodel.parse_dma_messages; "cause" is the QMP reason the warning's
    cause belongs to), and the other lines."""
    warns, other = vfiomodel.parse_dma_messages(text)
    for w in warns:
        w["cause"] = w["reason"]
    other = [line for line in other
             if not line.startswith(("char device", "main-loop"))]
    return warns, other


def hint_names_bits(hint, bits):
    """Does the hint give the number of address bits to use (not "N")?"""
    return bool(re.search(r"(?:phys-bits(?:-limit)?=|limit='|bits='?)%d\b"
                          % bits, hint))


# --------------------------------------------------------------- checking

class Checker:
    def __init__(self, path=None):
        self.file = open(path, "w") if path else None
        self.count = 0
        self.failures = []
        self.xfail = []

    def chk(self, ok, what, seen=""):
        self.count += 1
        line = "%s %s%s" % ("ok  " if ok else "FAIL", what,
                             "" if ok else ": " + str(seen)[:600])
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()
        if not ok:
            self.failures.append(line)
            log("   " + line)
        return ok

    def expect_fail(self, ok, what, seen=""):
        """A check known to fail until a change lands: reported, not
        counted as a failure; an unexpected pass is reported too."""
        self.count += 1
        if ok:
            line = "XPASS %s (the change has landed: make it a plain check)" \
                % what
        else:
            line = "XFAIL %s: %s" % (what, str(seen)[:300])
            self.xfail.append(line)
        log("   " + line)
        if self.file:
            self.file.write(line + "\n")


def fmt(ranges):
    return " ".join("0x%x-0x%x" % tuple(r[:2]) for r in ranges) or "(none)"


def query_pci_devices(qmp_result):
    """{qdev_id: {bar: (address, size)}} of query-pci's memory BARs."""
    out = {}

    def walk(devs):
        for d in devs:
            if d.get("qdev_id"):
                out[d["qdev_id"]] = {    # unmapped: -1 (PCI_BAR_UNMAPPED)
                    r["bar"]: (r["address"] & UNMAPPED, r["size"])
                    for r in d.get("regions", []) if r["type"] == "memory"}
            br = d.get("pci_bridge")
            if br and br.get("devices"):
                walk(br["devices"])
    for bus in qmp_result:
        walk(bus["devices"])
    return out


class State:
    """One step's snapshot: what the guest placed, QEMU's query-pci, the
    IOMMU table, QMP's view."""

    def __init__(self, step, guest_lines, pci, table, qmp):
        self.step = step
        self.pci = pci
        self.table = table
        self.qmp = qmp
        self.guest = {}          # (vendor, device) -> bdf, command, {bar: (s, e)}
        for line in guest_lines:
            w = line.split()
            if w[:1] == ["DEV"]:
                self.guest[w[1]] = dict(ids=(int(w[2], 16), int(w[3], 16)),
                                        command=int(w[4]), res={})
            elif w[:1] == ["RES"] and w[1] in self.guest:
                flags = int(w[5], 16)
                if flags & 0x200 and int(w[2]) < 6:     # IORESOURCE_MEM
                    self.guest[w[1]]["res"][int(w[2])] = (int(w[3], 16),
                                                          int(w[4], 16))

    def guest_dev(self, qid):
        for bdf, d in self.guest.items():
            if d["ids"] == ids_of(qid):
                return bdf, d
        return None, None


def expected(emu, st, qids):
    """What the model says the IOMMU holds for the devices' BARs:
    ({(qid, bar): [mapped]}, {(qid, bar): [(range, reason)]} skipped, and
    the skipped ranges that are warned about, likewise)."""
    want_m, want_s, want_w = {}, {}, {}
    for q in qids:
        bir, off, n = DEVICES[q]["msix"]
        for bar, (a, size) in st.pci.get(q, {}).items():
            if a == UNMAPPED:
                continue
            secs = vfiomodel.bar_sections(a, size,
                                          (off, n) if bar == bir else None)
            for f, la in secs:
                m, sk = vfiomodel.expect_section(f, la, emu.granule, emu.iova)
                if emu.iommufd:     # every BAR map fails with EFAULT
                    sk += [(r, "failed") for r in m]
                    m = []
                want_m.setdefault((q, bar), []).extend(m)
                want_s.setdefault((q, bar), []).extend(sk)
                want_w.setdefault((q, bar), []).extend(
                    (r, why) for r, why in sk
                    if vfiomodel.warned(r, why, a, size,
                                        (off, n) if bar == bir else None,
                                        emu.granule))
    return want_m, want_s, want_w


def bar_table(emu, table):
    got = {}
    for m in table:
        q, bar = emu.qid_of_backing(m.get("backing", "ram"))
        if q:
            got.setdefault((q, bar), []).append((m["iova"],
                                                 m["iova"] + m["size"] - 1))
    return got


def qmp_entries(qmp):
    out = []
    for c in qmp:
        out += c["mappings"]
    return out


def check_state(chk, emu, st, qids):
    """After one step: the table holds exactly the trimmed interiors of
    the sections the guest placed, QMP equals the table, query-pci equals
    the guest's sysfs."""
    s = st.step
    for q in qids:
        bdf, g = st.guest_dev(q)
        if g is None:
            continue
        qp = st.pci.get(q, {})
        # all-ones: the device is gone or its slot powered off (sysfs
        # keeps the resources; "command" 0xffff would look like decoding)
        if not chk.chk(g["command"] != 0xffff, "%s: %s config space answers "
                       "(not all-ones: the slot has power)" % (s, q),
                       "command 0x%x" % g["command"]):
            continue
        for bar, (a, e) in g["res"].items():
            want = (a, e - a + 1) if g["command"] & 2 else (UNMAPPED,
                                                            e - a + 1)
            chk.chk(qp.get(bar) == want,
                    "%s: %s BAR %d at 0x%x in the guest's sysfs, decoding %s:"
                    " query-pci agrees" % (s, q, bar, a,
                                           "on" if g["command"] & 2 else
                                           "off"), qp.get(bar))
    want_m, want_s, want_w = expected(emu, st, qids)
    got = bar_table(emu, st.table)
    for key in sorted(set(want_m) | set(got)):
        wm = vfiomodel.merge(want_m.get(key, []))
        gm = vfiomodel.merge(got.get(key, []))
        chk.chk(gm == wm, "%s: %s BAR %d: the IOMMU maps exactly the "
                "trimmed interiors (%s)" % (s, key[0], key[1], fmt(wm)),
                "table %s" % fmt(gm))
    # nothing outside a section: every BAR mapping inside one section
    secs = []
    for key, lst in want_m.items():
        secs += [(key, r) for r in lst]
    for key, lst in got.items():
        for r in lst:
            chk.chk(any(k == key and a <= r[0] and r[1] <= b
                        for k, (a, b) in secs),
                    "%s: %s BAR %d mapping 0x%x-0x%x lies in a section's "
                    "interior" % (s, key[0], key[1], r[0], r[1]))
    # QMP = the table (every mapped entry, RAM too)
    ents = qmp_entries(st.qmp)
    qm = sorted((e["iova"], e["size"]) for e in ents if e["state"] == "mapped")
    tm = sorted((m["iova"], m["size"]) for m in st.table)
    chk.chk(qm == tm, "%s: x-query-vfio-dma-mappings lists as mapped exactly "
            "the IOMMU table (%d entries)" % (s, len(tm)),
            "QMP %s table %s" % (fmt([(a, a + n - 1) for a, n in qm]),
                                 fmt([(a, a + n - 1) for a, n in tm])))
    # QMP's skipped/failed entries = the model's
    qs = {}
    for e in ents:
        if e["ram-device"] and e["state"] != "mapped":
            m = re.match(r"vfio-pci '([\w-]+)' \(\S+\) BAR (\d)", e["backing"])
            key = (m.group(1), int(m.group(2))) if m else e["backing"]
            why = e.get("reason") if e["state"] == "skipped" else "failed"
            qs.setdefault(key, []).append(((e["iova"],
                                            e["iova"] + e["size"] - 1), why))
    for key in sorted(set(want_s) | set(qs), key=str):
        chk.chk(sorted(qs.get(key, [])) == sorted(want_s.get(key, [])),
                "%s: %s: QMP's unmapped entries are the model's (%s)" %
                (s, key, fmt([r for r, _ in want_s.get(key, [])])),
                "QMP %s" % sorted(qs.get(key, [])))
    # what the warnings must be about
    return want_w


class EventReplay:
    """Replays the emulation's events log: every UNMAP undoes exactly one
    live MAP (no UNMAP of never-mapped space)."""

    MAPS = ("MAP", "IOAS_MAP")
    UNMAPS = ("UNMAP", "IOAS_UNMAP")

    def __init__(self):
        self.seen = 0
        self.live = {}          # (container, iova, size) -> backing
        self.min_bar = None

    def feed(self, chk, step, events):
        new = events[self.seen:]
        self.seen = len(events)
        bad, failed_maps, nmaps = [], 0, 0
        self.min_bar = None
        for e in new:
            key = (e.get("container"), e.get("iova"), e.get("size"))
            if e["op"] in self.MAPS:
                nmaps += 1
                if e["ret"] == 0:
                    self.live[key] = e.get("backing", "ram")
                else:
                    failed_maps += 1
            elif e["op"] in self.UNMAPS:
                if key not in self.live or e.get("unmapped") != e["size"]:
                    bad.append("seq=%d %s 0x%x+0x%x unmapped=%s" % (
                        e["seq"], e["op"], e["iova"], e["size"],
                        e.get("unmapped")))
                self.live.pop(key, None)
            elif e["op"] in ("RELEASE", "DESTROY"):
                c = e.get("container")
                for k in [k for k in self.live if k[0] == c]:
                    del self.live[k]
            nbar = sum(1 for b in self.live.values() if b != "ram")
            self.min_bar = nbar if self.min_bar is None else \
                min(self.min_bar, nbar)
        chk.chk(not bad, "%s: every UNMAP undoes exactly one live MAP (no "
                "UNMAP of never-mapped space)" % step, "; ".join(bad[:4]))
        return failed_maps, nmaps


# ------------------------------------------------------------------ guest

class Guest:
    """A guest on our QEMU (TCG): firmware 'seabios' or 'ovmf', Debian's
    kernel, guest-init; its control channel on ttyS1."""

    def __init__(self, workdir, emu, firmware="seabios", cpu="qemu64",
                 ram_mb=256, binary=QEMU, extra=()):
        self.dir = workdir
        self.emu = emu
        self.sock = os.path.join(tempfile.mkdtemp(prefix="vfio-guest-"),
                                 "ctl")
        args = ["-M", "q35", "-accel", "tcg", "-cpu", cpu, "-m",
                "%dM" % ram_mb, "-smp", "1", "-no-user-config",
                "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
                "-kernel", kernel(), "-initrd", initramfs(),
                "-append", APPEND,
                "-serial", "file:" + os.path.join(workdir, "console.log"),
                "-chardev", "socket,id=ctl,path=%s,server=on,wait=off" %
                self.sock, "-serial", "chardev:ctl"]
        if firmware == "ovmf":
            vars_ = os.path.join(workdir, "OVMF_VARS.fd")
            shutil.copy(OVMF_VARS, vars_)
            args += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,"
                     "file=" + OVMF_CODE,
                     "-drive", "if=pflash,format=raw,unit=1,file=" + vars_]
        args += emu.qemu_args() + list(extra)
        with open(os.path.join(workdir, "cmdline"), "w") as f:
            f.write(shlex.join(args) + "\n")
        env = dict(os.environ)
        env.update(emu.env())
        self.t0 = time.monotonic()
        self.vm = VM(binary, args, env=env, qtest=False, qmp_timer=120,
                     stderr_path=os.path.join(workdir, "stderr"))
        self.buf = b""
        self.conn = None
        self.boots = 0

    def connect(self):
        end = time.monotonic() + 30
        while self.conn is None:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                self.conn = s
            except OSError:
                s.close()
                if time.monotonic() > end:
                    raise RuntimeError("cannot connect to the guest's ttyS1")
                time.sleep(0.1)

    def line(self, timeout, what):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not self.vm.running():
                raise RuntimeError("%s: %s (see %s)" % (
                    what, "timed out after %ds" % timeout if left <= 0 else
                    "QEMU exited", self.dir))
            self.conn.settimeout(min(left, 1.0))
            try:
                chunk = self.conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise RuntimeError(what + ": the control channel closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").strip("\r\x00 ")

    def wait_ready(self, timeout=180):
        self.connect()
        while True:
            line = self.line(timeout, "waiting for the guest to boot")
            # OVMF writes to every serial port: its escape sequences may
            # precede READY on the same line
            if "READY " in line:
                self.boots += 1
                return time.monotonic() - self.t0

    def run(self, cmd, timeout=60):
        """A command in the guest: (status, output lines)."""
        self.conn.sendall(cmd.encode() + b"\n")
        out = []
        while True:
            line = self.line(timeout, "guest: " + cmd)
            if line.startswith("@@END "):
                return int(line.split()[1]), out
            if line:
                out.append(line)

    def snapshot(self, step):
        rc, lines = self.run("devs")
        pci = query_pci_devices(self.vm.cmd("query-pci"))
        with open(os.path.join(self.dir, "qmp-%s.json" % step), "w") as f:
            qmp = self.vm.cmd("x-query-vfio-dma-mappings")
            json.dump(qmp, f, indent=1)
        return State(step, lines, pci, self.emu.mappings(), qmp)

    def stderr(self):
        return self.vm.read_stderr()

    def quit(self):
        if self.conn:
            self.conn.close()
        rc = self.vm.quit()
        shutil.rmtree(os.path.dirname(self.sock), ignore_errors=True)
        return rc
