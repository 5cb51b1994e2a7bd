/*
 * VFIO DMA mapping of memory sections, by record
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_DMA_MAP_H
#define HW_VFIO_VFIO_DMA_MAP_H

#include "hw/vfio/vfio-dma-container.h"
#include "hw/vfio/vfio-dma-record.h"

typedef struct VFIODevice VFIODevice;

/*
 * The memory listener of a VFIO container maps guest RAM and RAM device
 * sections (mmap'ed device memory, for peer-to-peer DMA) through these
 * functions, which record every range they map, leave out or fail to
 * map.  Removing a section unmaps exactly what was recorded as mapped.
 * A RAM device section is mapped as far as it can be, and nothing about
 * it is fatal; guest RAM must be mapped whole.
 */

/* Set up and tear down the record of a container */
void vfio_dma_init(VFIODMAContainer *bcontainer);
void vfio_dma_cleanup(VFIODMAContainer *bcontainer);

/**
 * vfio_dma_map_section: map a RAM or RAM device section, and record it
 *
 * @bcontainer: the container.
 * @section: a section of RAM without a RamDiscardManager, or of a RAM
 *     device, that passed the listener's checks.
 * @errp: where to store the error of a failed guest RAM map.
 *
 * Returns: false, with @errp set, only when a guest RAM map fails.
 */
bool vfio_dma_map_section(VFIODMAContainer *bcontainer,
                          MemoryRegionSection *section, Error **errp);

/**
 * vfio_dma_unmap_section: unmap what was recorded for a section
 *
 * @bcontainer: the container.
 * @section: the section being removed.
 *
 * A failed unmap is reported; the range stays in the record, since the
 * host still holds it.
 */
void vfio_dma_unmap_section(VFIODMAContainer *bcontainer,
                            MemoryRegionSection *section);

/* The commit hook of the listener: prints what was collected to report */
void vfio_dma_listener_commit(MemoryListener *listener);

/* Forget what was reported of a device being detached */
void vfio_dma_forget_device(VFIODevice *vbasedev);

/**
 * vfio_dma_describe: what backs a recorded range, for people
 *
 * @mr: the range's MemoryRegion.
 *
 * Returns: "guest RAM (pc.ram)", "vfio-pci 'nic0' (0000:01:00.0) BAR 0",
 * or the region's name; the caller frees it.
 */
char *vfio_dma_describe(const MemoryRegion *mr);

#endif /* HW_VFIO_VFIO_DMA_MAP_H */
