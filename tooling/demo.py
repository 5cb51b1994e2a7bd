#!/usr/bin/python3
"""The demonstration (make demo)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QEMU  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(TOP, "build", "qemu-system-x86_64")


def main():
    vm = QEMU(BINARY, ["-M", "q35"])
    version = vm.cmd("query-version")
    q = version["qemu"]
    print("QEMU %d.%d.%d%s, q35 machine under -accel qtest" %
          (q["major"], q["minor"], q["micro"], version["package"]))
    props = vm.cmd("device-list-properties", typename="vfio-pci")
    print("\nvfio-pci has %d properties; the ones about BARs, MSI-X and DMA:" % len(props))
    for p in sorted(props, key=lambda p: p["name"]):
        if any(k in p["name"] for k in ("msix", "bar", "sysfsdev", "host", "iommufd", "rombar")):
            print("  %-28s %-10s %s" % (p["name"], p["type"], p.get("description", "")))
    rc = vm.quit()
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
