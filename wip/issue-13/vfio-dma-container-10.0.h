/*
 * VFIO DMA mapping: the container, as this QEMU has it
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_DMA_CONTAINER_H
#define HW_VFIO_VFIO_DMA_CONTAINER_H

#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/vfio/vfio-common.h"
#include "hw/vfio/vfio-container-base.h"

/*
 * What the DMA mapping code (dma-map.c, dma-query.c) needs of a
 * container: its type and its map and unmap calls.
 */
typedef VFIOContainerBase VFIODMAContainer;

static inline int vfio_dma_container_map(VFIODMAContainer *bcontainer,
                                         hwaddr iova, uint64_t size,
                                         void *vaddr, bool readonly,
                                         MemoryRegion *mr)
{
    return vfio_container_dma_map(bcontainer, iova, size, vaddr, readonly);
}

/* Unmap [@first, @last], which may be the whole 64-bit IOVA space */
static inline int vfio_dma_container_unmap(VFIODMAContainer *bcontainer,
                                           hwaddr first, hwaddr last)
{
    int ret;

    if (first == 0 && last == UINT64_MAX) {
        /* The unmap ioctl doesn't accept a full 64-bit span. */
        ret = vfio_container_dma_unmap(bcontainer, 0, 1ULL << 63, NULL);
        if (ret) {
            return ret;
        }
        first = 1ULL << 63;
    }
    return vfio_container_dma_unmap(bcontainer, first, last - first + 1, NULL);
}

#endif /* HW_VFIO_VFIO_DMA_CONTAINER_H */
