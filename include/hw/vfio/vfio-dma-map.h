/*
 * VFIO DMA mapping of memory sections, by record
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_DMA_MAP_H
#define HW_VFIO_VFIO_DMA_MAP_H

#include "exec/memory.h"
#include "hw/vfio/vfio-dma-record.h"

typedef struct VFIOContainerBase VFIOContainerBase;
typedef struct VFIODevice VFIODevice;

/*
 * The memory listener of a VFIO container maps guest RAM and RAM device
 * sections (mmap'ed device BARs, for peer-to-peer DMA) into the host
 * IOMMU through these functions, which keep a record of every range they
 * map, skip or fail to map:
 *
 * - A RAM device section is trimmed inward to the mapping granule, the
 *   larger of the IOMMU's minimum page and the host page; what remains
 *   inside the usable IOVA ranges is mapped.  What is left out, and maps
 *   that fail, are reported with warn_report() once per container, memory
 *   region and cause, when the listener commits.  Failures are not fatal.
 * - Guest RAM keeps the strict policy: a failed map is an error for the
 *   caller.
 * - Removing a section unmaps exactly the ranges recorded as mapped for
 *   it, and nothing else.
 */

typedef struct VFIODMATracker VFIODMATracker;

/**
 * vfio_dma_tracker_new: per-container state of the DMA mapping record
 *
 * @bcontainer: the container being created.
 *
 * Returns: the state; free it with vfio_dma_tracker_free().
 */
VFIODMATracker *vfio_dma_tracker_new(VFIOContainerBase *bcontainer);

/**
 * vfio_dma_tracker_free: free the state of a container
 *
 * @tracker: the state, or NULL.
 */
void vfio_dma_tracker_free(VFIODMATracker *tracker);

/**
 * vfio_dma_tracker_record: the record of a container's DMA mappings
 *
 * @bcontainer: the container.
 *
 * Returns: the record, for introspection; it must not be modified.
 */
VFIODMARecord *vfio_dma_tracker_record(VFIOContainerBase *bcontainer);

/**
 * vfio_dma_tracker_next: walk the containers
 *
 * @bcontainer: a container, or NULL to start the walk.
 *
 * Returns: the container created after @bcontainer, or the first one if
 * @bcontainer is NULL; NULL at the end.
 */
VFIOContainerBase *vfio_dma_tracker_next(VFIOContainerBase *bcontainer);

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
bool vfio_dma_map_section(VFIOContainerBase *bcontainer,
                          MemoryRegionSection *section, Error **errp);

/**
 * vfio_dma_unmap_section: unmap what was recorded for a section
 *
 * @bcontainer: the container.
 * @section: the section being removed.
 *
 * Unmaps exactly the ranges recorded as mapped for @section, and forgets
 * every range recorded for it.  A failed unmap is reported and the range
 * stays in the record, since the IOMMU still holds it.
 */
void vfio_dma_unmap_section(VFIOContainerBase *bcontainer,
                            MemoryRegionSection *section);

/**
 * vfio_dma_listener_commit: the commit hook of the VFIO memory listener
 *
 * @listener: the container's listener.
 *
 * Prints the warnings collected since the last commit.
 */
void vfio_dma_listener_commit(MemoryListener *listener);

/**
 * vfio_dma_forget_device: forget the warnings given about a device
 *
 * @vbasedev: a device being detached.
 *
 * A device plugged in later, even in the same place, is warned about
 * again.
 */
void vfio_dma_forget_device(VFIODevice *vbasedev);

#endif /* HW_VFIO_VFIO_DMA_MAP_H */
