/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * LD_PRELOAD shim: hide IOMMU page sizes below a minimum from VFIO users
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * Used by the VFIO system test (tests/vfio-system) to run QEMU against a
 * real kernel's type1 container as if the host IOMMU's smallest page were
 * 64 KiB: after a successful VFIO_IOMMU_GET_INFO it clears the bits below
 * PGSIZE_SHIM_MIN (default 64 KiB) in iova_pgsizes and sets that bit, as a
 * 64K-granule IOMMU reports it (x86's IOMMUs report 4K, 2M and 1G: hiding
 * 4K alone would leave 2M).  The kernel still maps at 4 KiB, so anything
 * QEMU maps at 64 KiB is accepted; only what QEMU believes changes.  Built
 * on the host with
 *     gcc -O2 -shared -fPIC -o pgsize-shim.so pgsize-shim.c -ldl
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

typedef int (*ioctl_fn)(int, unsigned long, ...);

static uint64_t shim_min(void)
{
    const char *s = getenv("PGSIZE_SHIM_MIN");

    return s && *s ? strtoull(s, NULL, 0) : 64 * 1024;
}

int ioctl(int fd, unsigned long request, ...)
{
    static ioctl_fn real;
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (!real) {
        real = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
        if (!real) {
            fprintf(stderr, "pgsize-shim: no ioctl in libc\n");
            abort();
        }
    }
    ret = real(fd, request, arg);
    if (ret == 0 && request == VFIO_IOMMU_GET_INFO) {
        struct vfio_iommu_type1_info *info = arg;

        if (info->flags & VFIO_IOMMU_INFO_PGSIZES) {
            uint64_t old = info->iova_pgsizes;

            info->iova_pgsizes &= ~(shim_min() - 1);
            info->iova_pgsizes |= shim_min();
            fprintf(stderr, "pgsize-shim: iova_pgsizes 0x%llx -> 0x%llx\n",
                    (unsigned long long)old,
                    (unsigned long long)info->iova_pgsizes);
        }
    }
    return ret;
}
