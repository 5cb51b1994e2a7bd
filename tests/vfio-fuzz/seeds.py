#!/usr/bin/python3
"""Write the seed corpus of tests/vfio-fuzz (tests/vfio-fuzz/corpus/).

Each seed is a generic-fuzz input (build/src/tests/qtest/fuzz/
generic_fuzz.c): operations separated by "FUZZ", each an opcode byte and
its operands as the C structs lay them out (little-endian, padded).
generic-fuzz maps every BAR and enables the devices before each input
(pci_enum()), so a seed starts with decoding on and the BARs programmed;
"base" picks one of the two vfio-pci devices (in QOM order, so each seed
does the same to both).  The seeds are what the guest does that the series
must follow: decoding off and on, BAR moves (32-bit, a 64-bit BAR's high
half, onto RAM, sizing), MSI-X enable, mask and table writes, and a
combination of them.

Usage: tests/vfio-fuzz/seeds.py   (rewrites corpus/seed-*)
"""

import glob
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"FUZZ"
OP_READ, OP_WRITE, OP_PCI_READ, OP_PCI_WRITE, OP_CLOCK_STEP = 2, 3, 4, 5, 9
BYTE, WORD, LONG, QUAD = 0, 1, 2, 3
PCI_COMMAND, PCI_BAR0, PCI_BAR1, PCI_ROM = 0x04, 0x10, 0x14, 0x30
MSIX_FLAGS = 0x42            # vfio-emu's MSI-X capability is at 0x40
MEM_ON, MEM_OFF = 0x0007, 0x0006


def cfg_write(dev, off, val, size=LONG):
    # struct { uint8_t size, base, offset; uint32_t value; }
    return bytes([OP_PCI_WRITE]) + struct.pack("<BBBxI", size, dev, off, val)


def cfg_read(dev, off, size=LONG):
    return bytes([OP_PCI_READ]) + struct.pack("<BBB", size, dev, off)


def mmio_write(region, off, val, size=LONG):
    # struct { uint8_t size, base; uint32_t offset; uint64_t value; }
    return bytes([OP_WRITE]) + struct.pack("<BBxxIQ", size, region, off, val)


def mmio_read(region, off, size=LONG):
    return bytes([OP_READ]) + struct.pack("<BBxxI", size, region, off)


def both(fn):
    return [op for dev in (0, 1) for op in fn(dev)]


SEEDS = {
    "decode-toggle": both(lambda d: [
        cfg_write(d, PCI_COMMAND, MEM_OFF, WORD),
        cfg_write(d, PCI_COMMAND, MEM_ON, WORD),
        cfg_write(d, PCI_COMMAND, MEM_OFF, WORD)]),
    "bar-move": both(lambda d: [
        cfg_write(d, PCI_BAR0, 0xf0000000),
        cfg_write(d, PCI_BAR0, 0xe8000000)]),
    "bar-move-decode-off": both(lambda d: [
        cfg_write(d, PCI_COMMAND, MEM_OFF, WORD),
        cfg_write(d, PCI_BAR0, 0xf2000000),
        cfg_write(d, PCI_COMMAND, MEM_ON, WORD)]),
    "bar-high-half": both(lambda d: [
        cfg_write(d, PCI_BAR1, 0x1),
        cfg_write(d, PCI_BAR1, 0x0)]),
    "bar-over-ram": both(lambda d: [
        cfg_write(d, PCI_BAR0, 0x10000000)]),
    "bar-sizing": both(lambda d: [
        cfg_write(d, PCI_BAR0, 0xffffffff),
        cfg_read(d, PCI_BAR0),
        cfg_write(d, PCI_BAR0, 0xf4000000)]),
    "bar-byte-writes": both(lambda d: [
        cfg_write(d, PCI_BAR0 + 3, 0xf6, BYTE),
        cfg_write(d, PCI_BAR0 + 2, 0x10, BYTE),
        cfg_write(d, PCI_COMMAND, 0x02, BYTE)]),
    "msix": both(lambda d: [
        cfg_write(d, MSIX_FLAGS, 0xc000, WORD),
        mmio_write(d, 0x0, 0xfee00000),
        mmio_write(d, 0x8, 0x4041),
        mmio_write(d, 0xc, 0x0),
        cfg_write(d, MSIX_FLAGS, 0x8000, WORD),
        mmio_read(d, 0x0),
        cfg_write(d, MSIX_FLAGS, 0x0000, WORD)]),
    "msix-then-move": both(lambda d: [
        cfg_write(d, MSIX_FLAGS, 0x8000, WORD),
        cfg_write(d, PCI_BAR0, 0xf8000000),
        bytes([OP_CLOCK_STEP]),
        cfg_write(d, PCI_COMMAND, MEM_OFF, WORD),
        cfg_write(d, MSIX_FLAGS, 0x0000, WORD),
        cfg_write(d, PCI_COMMAND, MEM_ON, WORD)]),
    "rom": both(lambda d: [
        cfg_write(d, PCI_ROM, 0xfffff801),
        cfg_read(d, PCI_ROM)]),
}


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "seed-*")):
        os.remove(old)
    for name, ops in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(SEP.join(ops))
    print("seeds.py: %d seeds in %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
