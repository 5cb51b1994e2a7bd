"""The one model of what the series maps of a RAM-device section.

A RAM-device section (an mmap'ed BAR that decodes, less what QEMU traps) is
mapped into the host IOMMU as its interior trimmed inward to the mapping
granule (the IOMMU's minimum page), within the IOMMU's usable IOVA ranges;
the rest is skipped.  The demo, `make bench`, the nested-VM system test, the
guest tier and the libvirt tier all take their expectation from here, so a
change of policy is a change of this file.

Ranges are (first, last) pairs, both inclusive.
"""

MSIX_ENTRY_SIZE = 16


def interior(first, last, granule):
    """The granule-aligned interior of [first, last] as (first, last), or
    None when no whole granule fits."""
    lo = (first + granule - 1) // granule * granule
    hi = (last + 1) // granule * granule
    return (lo, hi - 1) if lo < hi else None


def trimmed(first, last, granule):
    """Bytes of [first, last] that whole, aligned granules cover: what the
    IOMMU can map of a section once it is trimmed inward."""
    r = interior(first, last, granule)
    return r[1] - r[0] + 1 if r else 0


def remainder(first, last, granule):
    """The pieces of [first, last] outside its interior (skipped)."""
    r = interior(first, last, granule)
    if not r:
        return [(first, last)]
    return [p for p in ((first, r[0] - 1), (r[1] + 1, last)) if p[0] <= p[1]]


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


def clip(first, last, ranges):
    """[first, last] cut to each of the usable IOVA ranges (None: all
    usable): (inside pieces, outside pieces)."""
    if ranges is None:
        return [(first, last)], []
    inside = []
    for r0, r1 in sorted(ranges):
        a, b = max(first, r0), min(last, r1)
        if a <= b:
            inside.append((a, b))
    outside, cur = [], first
    for a, b in inside:
        if a > cur:
            outside.append((cur, a - 1))
        cur = b + 1
    if cur <= last:
        outside.append((cur, last))
    return inside, outside


def expect_section(first, last, granule, iova_ranges=None):
    """What the series does with one section: (mapped, skipped) where
    mapped is a list of ranges and skipped a list of (range, reason) with
    the reasons of x-query-vfio-dma-mappings ('unaligned',
    'outside-iova-ranges')."""
    inside, outside = clip(first, last, iova_ranges)
    mapped, skipped = [], [(r, "outside-iova-ranges") for r in outside]
    for a, b in inside:
        r = interior(a, b, granule)
        if r:
            mapped.append(r)
        skipped += [(p, "unaligned") for p in remainder(a, b, granule)]
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
