"""The one model of what the series maps of a RAM-device section.

A RAM-device section (an mmap'ed BAR that decodes, less what QEMU traps) is
mapped into the host IOMMU as its interior trimmed inward to the mapping
granule (the IOMMU's minimum page), within the IOMMU's usable IOVA ranges;
the rest is skipped.  The demo, `make bench`, the nested-VM system test, the
guest tier, the libvirt tier and the random and soak tests all take their
expectation from here.  The rule itself is not written here but in C, once,
in tests/qtest/vfio-emu/vfio-emu-model.c, which the listener qtest links and
which this module calls in libvfio-emu-model.so (ctypes): a change of policy
is a change of that file.

Ranges are (first, last) pairs, both inclusive.
"""

import ctypes
import os
import re

MSIX_ENTRY_SIZE = 16


def trimmed(first, last, granule):
    """Bytes of [first, last] that whole, aligned granules cover: what the
    IOMMU can map of a section once it is trimmed inward."""
    return total(expect_section(first, last, granule)[0])


def bar_sections(addr, size, msix=None):
    """The RAM-device sections of a decoding, mmap'ed BAR at addr: the BAR
    less the MSI-X table QEMU traps.  msix: (table offset, entries) when the
    table is in this BAR.  (vfio-pci disables the PBA's emulation, so the
    PBA does not split the BAR.)"""
    last = addr + size - 1
    if not msix:
        return [(addr, last)]
    t0 = addr + msix[0]
    t1 = t0 + msix[1] * MSIX_ENTRY_SIZE - 1
    return [p for p in ((addr, t0 - 1), (t1 + 1, last)) if p[0] <= p[1]]


def _model_lib():
    """libvfio-emu-model.so of the chosen base's build (VFIO_BUILD)."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = os.environ.get("VFIO_BUILD", os.path.join(top, "build"))
    path = os.environ.get("VFIO_EMU_MODEL", os.path.join(
        build, "qemu", "tests", "qtest", "vfio-emu", "libvfio-emu-model.so"))
    if not os.path.exists(path):
        raise RuntimeError("%s is missing: run `make build`" % path)
    lib = ctypes.CDLL(path)
    lib.vfio_emu_model_section.restype = ctypes.c_int
    lib.vfio_emu_model_section.argtypes = [
        ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
        ctypes.POINTER(ctypes.c_uint64), ctypes.c_int,
        ctypes.POINTER(_Piece), ctypes.c_int]
    return lib


class _Piece(ctypes.Structure):
    # VfioEmuModelPiece
    _fields_ = [("first", ctypes.c_uint64), ("last", ctypes.c_uint64),
                ("kind", ctypes.c_int32), ("pad", ctypes.c_int32)]


_MAPPED, _UNALIGNED, _OUTSIDE = 0, 1, 2   # VfioEmuModelKind
_lib = None


def pieces(first, last, granule, iova_ranges=None):
    """vfio_emu_model_section(): [(first, last, kind)] in address order,
    kind 'mapped', 'unaligned' or 'outside-iova-ranges'."""
    global _lib
    if _lib is None:
        _lib = _model_lib()
    ranges = sorted(iova_ranges or [])
    usable = (ctypes.c_uint64 * max(1, 2 * len(ranges)))(
        *[v for r in ranges for v in r])
    room = 4 * len(ranges) + 3
    out = (_Piece * room)()
    n = _lib.vfio_emu_model_section(first, last, granule, usable,
                                    len(ranges), out, room)
    if n < 0:
        raise RuntimeError("vfio_emu_model_section: no room for the pieces")
    kinds = {_MAPPED: "mapped", _UNALIGNED: "unaligned",
             _OUTSIDE: "outside-iova-ranges"}
    return [(out[i].first, out[i].last, kinds[out[i].kind])
            for i in range(n)]


def expect_section(first, last, granule, iova_ranges=None):
    """What the series does with one section: (mapped, skipped) where
    mapped is a list of ranges and skipped a list of (range, reason) with
    the reasons of x-query-vfio-dma-mappings ('unaligned',
    'outside-iova-ranges')."""
    mapped, skipped = [], []
    for a, b, kind in pieces(first, last, granule, iova_ranges):
        if kind == "mapped":
            mapped.append((a, b))
        else:
            skipped.append(((a, b), kind))
    return mapped, sorted(skipped)


def merge(ranges):
    """Sorted ranges, adjacent and overlapping ones merged."""
    out = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def total(ranges):
    return sum(last - first + 1 for first, last in ranges)


HOST_PAGE = 4096


def warned(piece, reason, bar_addr, bar_size, msix, granule,
           host_page=HOST_PAGE):
    """Whether the series warns about a skipped piece of a BAR, or only
    records it (QMP, trace point): the rest of the host page(s) that hold
    the BAR's MSI-X table is not warned about, unless the BAR is smaller
    than a granule.  msix: (table offset, entries) when the table is in
    this BAR."""
    if reason != "unaligned" or not msix or bar_size < granule:
        return True
    t0 = bar_addr + msix[0]
    t1 = t0 + msix[1] * MSIX_ENTRY_SIZE - 1
    lo = t0 // host_page * host_page
    hi = (t1 // host_page + 1) * host_page - 1
    return not (lo <= piece[0] and piece[1] <= hi)


# The series' warnings, by parts (the one place in Python that knows the
# wording; tests/qtest/vfio-emu/vfio-emu-qtest.c has the C one):
#   [prefix: ]warning: DEVICE REGION: SIZE not DMA-mapped: CAUSE
#   Guest-physical RANGES, IOMMU page SIZE, host page SIZE.
#   [Usable IOVA ranges: RANGES.]
#   Peer-to-peer DMA to that range will fault.
#   Hint: HINT
_HEAD = re.compile(r"warning: ((\S+) '([\w-]+)' \((\S+)\)|\S+ \S+|vfio:) "
                   r"(BAR (\d)|region [^:]*): ([0-9.]+ [KMGTPE]?i?B) not "
                   r"DMA-mapped: (.*)$")
_WHERE = re.compile(r"^Guest-physical (.*), IOMMU page ([0-9.]+ [KMGTPE]?i?B),"
                    r" host page ([0-9.]+ [KMGTPE]?i?B)\.$")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T][0-9:.]+\+\d{4}: ")


def cause_reason(cause):
    """The QMP reason (or "failed") that a warning's cause belongs to."""
    if cause.startswith("the host refused"):
        return "failed"
    if cause.startswith(("above the host IOMMU", "in a range the host")):
        return "outside-iova-ranges"
    return "unaligned"


def parse_dma_messages(text):
    """QEMU's stderr (or libvirt's domain log, timestamps removed): the
    series' warnings as dicts (device, qid, bdf, region, bar, size, cause,
    reason, ranges, iommu_page, host_page, iova_ranges, hint, text), and
    every other line."""
    warnings, other, cur = [], [], None
    for line in text.splitlines():
        line = _STAMP.sub("", line)
        if not line.strip():
            continue
        m = _HEAD.search(line)
        if m:
            cur = dict(device=m.group(1), qid=m.group(3), bdf=m.group(4),
                       region=m.group(5),
                       bar=int(m.group(6)) if m.group(6) else None,
                       size=m.group(7), cause=m.group(8),
                       reason=cause_reason(m.group(8)), ranges=[],
                       iommu_page=None, host_page=None, iova_ranges=None,
                       hint="", text=line)
            warnings.append(cur)
            continue
        if cur is not None and not line.startswith("qemu-system-"):
            cur["text"] += "\n" + line
            w = _WHERE.match(line)
            if w:
                cur["ranges"] = [tuple(int(x, 16) for x in r.split("-"))
                                 for r in w.group(1).split(", ")]
                cur["iommu_page"], cur["host_page"] = w.group(2), w.group(3)
            elif line.startswith("Usable IOVA ranges: "):
                cur["iova_ranges"] = line[20:].rstrip(".")
            elif line.startswith("Hint: "):
                cur["hint"] = line[6:]
            continue
        cur = None
        other.append(line)
    return warnings, other


def size_to_str(n):
    """QEMU's size_to_str() (util/cutils.c): what HMP prints for a size."""
    import math
    e = math.frexp(n / (1000.0 / 1024.0))[1] if n else 0
    i = max(e - 1, 0) // 10
    return "%s %sB" % (("%0.3g" % (n / float(1 << (i * 10)))),
                       ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][i])


_INFO_ROW = re.compile(r"^\s+0x([0-9a-f]+)\s+([0-9.]+ [KMGTPE]?i?B) (r[w ]|\s\s) "
                       r"(skipped: \S+|\S+)\s+(.*)$")


def parse_info_vfio_dma(text):
    """HMP's `info vfio-dma`: one dict (iova, size as printed, rw, state,
    backing) per row of every container."""
    rows = []
    for line in text.splitlines():
        m = _INFO_ROW.match(line)
        if m:
            rows.append(dict(iova=int(m.group(1), 16), size=m.group(2),
                             rw=m.group(3).strip(), state=m.group(4),
                             backing=m.group(5).strip()))
    return rows


def info_rows_of(table):
    """What `info vfio-dma` must list as mapped for an IOMMU table (the
    emulation's mappings): sorted (iova, printed size)."""
    return sorted((m["iova"], size_to_str(m["size"])) for m in table)
