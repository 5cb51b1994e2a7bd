/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * Copyright (c) 2026 The vfio-series authors
 *
 * Linked into copies of the kernel's VFIO selftests (build/vfio-selftests/
 * bin/anymode/): sets the selftests library's default IOMMU mode from
 * $VFIO_SELFTESTS_DEFAULT_MODE before main() runs.  The tests that take no
 * IOMMU-mode variant (vfio_pci_device_test, vfio_pci_irq_test) and the
 * driver test's probe use that default, iommufd; with this they run in
 * every mode, and on a kernel without iommufd at all.  Nothing else of the
 * tests changes.
 */
#include <stdlib.h>

extern const char *default_iommu_mode;

__attribute__((constructor))
static void vfio_selftests_set_default_mode(void)
{
    const char *mode = getenv("VFIO_SELFTESTS_DEFAULT_MODE");

    if (mode && *mode) {
        default_iommu_mode = mode;
    }
}
