/*
 * VFIO DMA mapping record and IOVA range arithmetic
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_DMA_RECORD_H
#define HW_VFIO_VFIO_DMA_RECORD_H

#include "qemu/int128.h"
#include "qemu/interval-tree.h"
#include "qemu/range.h"
#include "qapi/qapi-types-vfio.h"

/*
 * A VFIODMARecord remembers, per container, every IOVA range the memory
 * listener dealt with: what it mapped into the host IOMMU, what it did
 * not map and why, and what the host refused.  Removing a section unmaps
 * exactly what was mapped for it.  Callers hold the BQL.
 */

/**
 * VFIODMASectionId: the memory section an entry belongs to
 *
 * @mr: the section's MemoryRegion, or NULL once the section is gone
 *     but the host still holds the range (a failed unmap).
 * @first: first guest-physical address of the section.
 * @last: last guest-physical address of the section (inclusive).
 */
typedef struct VFIODMASectionId {
    const MemoryRegion *mr;
    uint64_t first;
    uint64_t last;
} VFIODMASectionId;

/**
 * VFIODMAEntry: one recorded IOVA range
 *
 * @node: @node.start and @node.last are the first and last IOVA.
 * @state: what happened to the range.
 * @reason: why it was not mapped, if @state is skipped.
 * @error: positive errno of the map call, if @state is failed.
 * @readonly: the range is (or would be) mapped read-only.
 * @ram_device: device memory backs the range, not guest RAM.
 * @vaddr: host address of the first byte of the range.
 * @section: the section the range belongs to.
 * @name: what backed the range, kept only while @section.mr is NULL.
 */
typedef struct VFIODMAEntry {
    IntervalTreeNode node;
    VfioDmaMappingState state;
    VfioDmaSkipReason reason;
    int error;
    bool readonly;
    bool ram_device;
    void *vaddr;
    VFIODMASectionId section;
    char *name;
} VFIODMAEntry;

typedef struct VFIODMARecord VFIODMARecord;

static inline uint64_t vfio_dma_entry_first(const VFIODMAEntry *entry)
{
    return entry->node.start;
}

static inline uint64_t vfio_dma_entry_last(const VFIODMAEntry *entry)
{
    return entry->node.last;
}

VFIODMARecord *vfio_dma_record_new(void);
void vfio_dma_record_free(VFIODMARecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VFIODMARecord, vfio_dma_record_free)

/**
 * vfio_dma_record_add: record a range
 *
 * @rec: the record.
 * @first: first IOVA of the range.
 * @last: last IOVA of the range (inclusive).
 * @section: the section the range lies in.
 * @state: what happened to the range.
 *
 * Returns: the new entry; the caller fills in the other fields.
 */
VFIODMAEntry *vfio_dma_record_add(VFIODMARecord *rec,
                                  uint64_t first, uint64_t last,
                                  const VFIODMASectionId *section,
                                  VfioDmaMappingState state);

/**
 * vfio_dma_record_remove: remove and free an entry
 *
 * @rec: the record.
 * @entry: an entry of @rec.
 */
void vfio_dma_record_remove(VFIODMARecord *rec, VFIODMAEntry *entry);

/**
 * vfio_dma_record_first: the first entry that overlaps a range
 *
 * @rec: the record.
 * @first: first IOVA of the range.
 * @last: last IOVA of the range (inclusive).
 *
 * Returns: the entry with the lowest IOVA that overlaps [@first, @last],
 * or NULL.  vfio_dma_record_next() gives the following ones.
 */
VFIODMAEntry *vfio_dma_record_first(VFIODMARecord *rec,
                                    uint64_t first, uint64_t last);
VFIODMAEntry *vfio_dma_record_next(VFIODMAEntry *entry,
                                   uint64_t first, uint64_t last);

/**
 * vfio_dma_record_mapped: how many entries are mapped
 *
 * @rec: the record.
 *
 * Returns: the number of DMA mappings the host holds for the record's
 * container.
 */
uint64_t vfio_dma_record_mapped(const VFIODMARecord *rec);

/*
 * IOVA range arithmetic for RAM device sections.
 */

/**
 * vfio_dma_range_trim: the part of a range made of whole aligned granules
 *
 * @start: first address of the range.
 * @size: size of the range, up to 2^64 - @start.
 * @granule: a power of two.
 * @out: set to the trimmed range, or made empty.
 *
 * Returns: true if the trimmed range is not empty.
 */
bool vfio_dma_range_trim(uint64_t start, Int128 size, uint64_t granule,
                         Range *out);

/**
 * VFIODMAPiece: a piece of a section, to map or to leave out
 *
 * @range: the piece.
 * @map: whether the piece is to be mapped; if not, @reason says why.
 * @reason: why the piece is left out.
 */
typedef struct VFIODMAPiece {
    Range range;
    bool map;
    VfioDmaSkipReason reason;
} VFIODMAPiece;

typedef void (*VFIODMAPieceFunc)(const VFIODMAPiece *piece, void *opaque);

/**
 * vfio_dma_range_split: cut a section into pieces to map or leave out
 *
 * @range: the section's range, not empty.
 * @iova_ranges: the usable IOVA ranges (a sorted GList of Range), or
 *     NULL if every IOVA is usable.
 * @granule: the mapping granule, a power of two.
 * @fn: called for each piece, in order; together they cover @range
 *     exactly.
 * @opaque: passed to @fn.
 */
void vfio_dma_range_split(const Range *range, GList *iova_ranges,
                          uint64_t granule, VFIODMAPieceFunc fn,
                          void *opaque);

#endif /* HW_VFIO_VFIO_DMA_RECORD_H */
