"""The catalogue of device layouts `make bench` measures.

Each layout is a real device's BARs and MSI-X placement, as `lspci -vv`
prints them, written in the VFIO emulation's configuration syntax
(tests/qtest/vfio-emu/vfio-emu.h).  `source` says where the layout comes
from so that a reader can check it; `lspci` repeats the lines that matter.

What is left out, on purpose: expansion ROMs (QEMU reads them, it never
DMA-maps them) and I/O BARs where the emulated root port has no I/O window
(an I/O BAR is never a RAM-device section).  Nothing else is changed: sizes,
64-bit/prefetchable flags, the MSI-X table's and PBA's BAR and offset, and
the number of vectors are those of the device.
"""

PCIUTILS = ("pciutils/pciutils (git), commit 0f5b941aa5cf, file %s: "
            "lspci -vvx output of a real device kept as a test case")

LAYOUTS = [
    {
        "name": "nic-cx6dx",
        "title": "NIC: ConnectX-6 Dx, BAR0 32M, MSI-X at 0x2000",
        "source": "Mellanox/NVIDIA ConnectX-6 Dx (MT42822, mlx5_core), as "
                  "published `lspci -vvv` output of a BlueField-2 DPU shows "
                  "it; ConnectX-4/5 place BAR0 and MSI-X the same way "
                  "(the project's demo uses a ConnectX-5)",
        "lspci": ["Region 0: Memory (64-bit, prefetchable) [size=32M]",
                  "MSI-X: Count=64, Vector table: BAR=0 offset=00002000, "
                  "PBA: BAR=0 offset=00003000"],
        "keys": """vendor_id = 0x15b3
device_id = 0xa2d6
bar0 = 0x2000000 mem64 prefetch
msix_entries = 64
msix_table = 0:0x2000
msix_pba = 0:0x3000
""",
    },
    {
        "name": "gpu-t4",
        "title": "GPU: Tesla T4, BAR0 16M (MSI-X at 0xb90000), BAR1 256M",
        "source": "NVIDIA Tesla T4 (TU104GL), published `lspci -vv` output; "
                  "the NVIDIA L20 (AD102GL) shows the same BAR0 size and "
                  "MSI-X offsets",
        "lspci": ["Region 0: Memory (32-bit, non-prefetchable) [size=16M]",
                  "Region 1: Memory (64-bit, prefetchable) [size=256M]",
                  "Region 3: Memory (64-bit, prefetchable) [size=32M]",
                  "MSI-X: Count=6, Vector table: BAR=0 offset=00b90000, "
                  "PBA: BAR=0 offset=00ba0000"],
        "keys": """vendor_id = 0x10de
device_id = 0x1eb8
bar0 = 0x1000000 mem32
bar1 = 0x10000000 mem64 prefetch
bar3 = 0x2000000 mem64 prefetch
msix_entries = 6
msix_table = 0:0xb90000
msix_pba = 0:0xba0000
""",
    },
    {
        "name": "nvme-900p",
        "title": "NVMe: Optane 900P, BAR0 16K, MSI-X at 0x2000",
        "source": "Intel Optane SSD 900P (NVMe), published `lspci -vv` "
                  "output; the NVMe test case in " +
                  PCIUTILS % "tests/cap-dev3" +
                  " has the same BAR0 and table offset (16 vectors, PBA at "
                  "0x2100)",
        "lspci": ["Region 0: Memory (64-bit, non-prefetchable) [size=16K]",
                  "MSI-X: Count=32, Vector table: BAR=0 offset=00002000, "
                  "PBA: BAR=0 offset=00003000"],
        "keys": """vendor_id = 0x8086
device_id = 0x2700
class = 0x010802
bar0 = 0x4000 mem64
msix_entries = 32
msix_table = 0:0x2000
msix_pba = 0:0x3000
""",
    },
    {
        "name": "igb-82576",
        "title": "e1000e-like: 82576, BAR3 16K with MSI-X at 0",
        "source": "Intel 82576 (8086:10c9, igb), " +
                  PCIUTILS % "tests/cap-pcie-2" +
                  "; the 82574L (e1000e, and QEMU's e1000e model) has the "
                  "same BAR3",
        "lspci": ["Region 0: Memory (32-bit, non-prefetchable) [size=128K]",
                  "Region 1: Memory (32-bit, non-prefetchable) [size=4M]",
                  "Region 2: I/O ports [size=32]",
                  "Region 3: Memory (32-bit, non-prefetchable) [size=16K]",
                  "MSI-X: TabSize=10, Vector table: BAR=3 offset=00000000, "
                  "PBA: BAR=3 offset=00002000"],
        "keys": """vendor_id = 0x8086
device_id = 0x10c9
class = 0x020000
bar0 = 0x20000 mem32
bar1 = 0x400000 mem32
bar3 = 0x4000 mem32
msix_entries = 10
msix_table = 3:0x0
msix_pba = 3:0x2000
""",
    },
    {
        "name": "rtl8101e",
        "title": "MSI-X in its own BAR: RTL8101E, BAR2 4K + BAR4 64K",
        "source": "Realtek RTL8101E/RTL8102E, device 01:00.0 of " +
                  PCIUTILS % "tests/cap-vc-and-rcl",
        "lspci": ["Region 0: I/O ports [size=256]",
                  "Region 2: Memory (64-bit, prefetchable) [size=4K]",
                  "Region 4: Memory (64-bit, prefetchable) [size=64K]",
                  "MSI-X: Count=2, Vector table: BAR=4 offset=00000000, "
                  "PBA: BAR=4 offset=00000800"],
        "keys": """vendor_id = 0x10ec
device_id = 0x8136
class = 0x020000
bar2 = 0x1000 mem64 prefetch
bar4 = 0x10000 mem64 prefetch
msix_entries = 2
msix_table = 4:0x0
msix_pba = 4:0x800
""",
    },
    {
        "name": "myri10g",
        "title": "MSI-X deep in a second BAR: Myri-10G, BAR0 16M + BAR2 1M",
        "source": "Myricom Myri-10G (10G-PCIE-8A), " +
                  PCIUTILS % "tests/cap-address-xlation",
        "lspci": ["Region 0: Memory (64-bit, prefetchable) [size=16M]",
                  "Region 2: Memory (64-bit, non-prefetchable) [size=1M]",
                  "MSI-X: TabSize=128, Vector table: BAR=2 offset=000f0000, "
                  "PBA: BAR=2 offset=000f9000"],
        "keys": """vendor_id = 0x14c1
device_id = 0x0008
class = 0x020000
bar0 = 0x1000000 mem64 prefetch
bar2 = 0x100000 mem64
msix_entries = 128
msix_table = 2:0xf0000
msix_pba = 2:0xf9000
""",
    },
    {
        "name": "ehci-ich7",
        "title": "Sub-page BAR: ICH7 EHCI, BAR0 1K",
        "source": "Intel 82801G (ICH7) USB2 EHCI controller, device 00:1d.7 "
                  "of " + PCIUTILS % "tests/cap-vc-and-rcl",
        "lspci": ["Region 0: Memory (32-bit, non-prefetchable) [size=1K]",
                  "(no MSI-X)"],
        "keys": """vendor_id = 0x8086
device_id = 0x27cc
class = 0x0c0320
bar0 = 0x400 mem32
""",
    },
]

# IOMMU minimum pages measured (the emulated container's iova_pgsizes).
PAGES = [0x1000, 0x10000, 0x200000]

HOST_PAGE = 0x1000


def by_name(name):
    for layout in LAYOUTS:
        if layout["name"] == name:
            return layout
    raise KeyError(name)
