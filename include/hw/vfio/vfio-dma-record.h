/*
 * VFIO DMA mapping record and IOVA range arithmetic
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_DMA_RECORD_H
#define HW_VFIO_VFIO_DMA_RECORD_H

#include "qemu/host-utils.h"
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
 * @head: bytes at the start of the range that lie outside the aligned
 *     interior of a RAM device section: skipped, as unaligned.
 * @tail: the same at the end of the range.
 * @state: what happened to the range less @head and @tail.
 * @reason: why it was not mapped, if @state is skipped.
 * @error: positive errno of the map call, if @state is failed.
 * @readonly: the range is (or would be) mapped read-only.
 * @ram_device: device memory backs the range, not guest RAM.
 * @vaddr: host address of the first byte of the range, @head included.
 * @section: the section the range belongs to.
 * @name: what backed the range, kept only while @section.mr is NULL.
 */
typedef struct VFIODMAEntry {
    IntervalTreeNode node;
    uint64_t head;
    uint64_t tail;
    VfioDmaMappingState state;
    VfioDmaSkipReason reason;
    int error;
    bool readonly;
    bool ram_device;
    void *vaddr;
    VFIODMASectionId section;
    char *name;
} VFIODMAEntry;

/* Entries kept for reuse: a decode toggle frees and adds the same ones */
#define VFIO_DMA_RECORD_SPARE 16
/* Entries that cover a whole section, lately added, found without a search */
#define VFIO_DMA_RECORD_RECENT 4

/*
 * The fields are dma-record.c's; the header has them for the inline
 * lookups below, which the mapping path calls for every section.
 */
typedef struct VFIODMARecord {
    IntervalTreeRoot root;
    uint64_t mapped;
    VFIODMAEntry *spare[VFIO_DMA_RECORD_SPARE];
    unsigned nr_spare;
    VFIODMAEntry *recent[VFIO_DMA_RECORD_RECENT];
    unsigned recent_next;
} VFIODMARecord;

static inline uint64_t vfio_dma_entry_first(const VFIODMAEntry *entry)
{
    return entry->node.start;
}

static inline uint64_t vfio_dma_entry_last(const VFIODMAEntry *entry)
{
    return entry->node.last;
}

/* The part of the range that @state is about: less @head and @tail */
static inline uint64_t vfio_dma_entry_interior_first(const VFIODMAEntry *entry)
{
    return entry->node.start + entry->head;
}

static inline uint64_t vfio_dma_entry_interior_last(const VFIODMAEntry *entry)
{
    return entry->node.last - entry->tail;
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
static inline VFIODMAEntry *vfio_dma_record_add(VFIODMARecord *rec,
                                                uint64_t first, uint64_t last,
                                                const VFIODMASectionId *section,
                                                VfioDmaMappingState state)
{
    VFIODMAEntry *entry;

    assert(section->first <= first && first <= last &&
           last <= section->last);
    entry = rec->nr_spare ? rec->spare[--rec->nr_spare]
                          : g_new(VFIODMAEntry, 1);
    *entry = (VFIODMAEntry) {
        .node.start = first,
        .node.last = last,
        .state = state,
        .section = *section,
    };
    interval_tree_insert(&entry->node, &rec->root);
    rec->mapped += state == VFIO_DMA_MAPPING_STATE_MAPPED;
    if (first == section->first && last == section->last) {
        rec->recent[rec->recent_next++ % VFIO_DMA_RECORD_RECENT] = entry;
    }
    return entry;
}

/* The rest of vfio_dma_record_remove(), out of line */
void vfio_dma_record_drop(VFIODMARecord *rec, VFIODMAEntry *entry);

/**
 * vfio_dma_record_remove: remove and free an entry
 *
 * @rec: the record.
 * @entry: an entry of @rec.
 */
static inline void vfio_dma_record_remove(VFIODMARecord *rec,
                                          VFIODMAEntry *entry)
{
    if (entry->state == VFIO_DMA_MAPPING_STATE_MAPPED) {
        assert(rec->mapped);
        rec->mapped--;
    }
    interval_tree_remove(&entry->node, &rec->root);
    entry->section.mr = NULL;   /* vfio_dma_record_section() skips it */
    if (!entry->name && rec->nr_spare < VFIO_DMA_RECORD_SPARE) {
        rec->spare[rec->nr_spare++] = entry;
        return;
    }
    vfio_dma_record_drop(rec, entry);
}

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
static inline VFIODMAEntry *vfio_dma_record_first(VFIODMARecord *rec,
                                                  uint64_t first,
                                                  uint64_t last)
{
    IntervalTreeNode *node = interval_tree_iter_first(&rec->root, first,
                                                      last);

    return node ? container_of(node, VFIODMAEntry, node) : NULL;
}

static inline VFIODMAEntry *vfio_dma_record_next(VFIODMAEntry *entry,
                                                 uint64_t first,
                                                 uint64_t last)
{
    IntervalTreeNode *node = interval_tree_iter_next(&entry->node, first,
                                                     last);

    return node ? container_of(node, VFIODMAEntry, node) : NULL;
}

/**
 * vfio_dma_record_section: the entry that covers all of a section
 *
 * @rec: the record.
 * @section: the section.
 *
 * Returns: the entry of @section whose range is all of @section, if it is
 * among the last few added; otherwise NULL, and vfio_dma_record_first()
 * finds the entries of @section.
 */
static inline VFIODMAEntry *vfio_dma_record_section(
    VFIODMARecord *rec, const VFIODMASectionId *section)
{
    int i;

    for (i = 0; i < VFIO_DMA_RECORD_RECENT; i++) {
        VFIODMAEntry *entry = rec->recent[i];

        if (entry && entry->section.mr == section->mr &&
            entry->section.first == section->first &&
            entry->node.start == section->first &&
            entry->node.last == section->last) {
            return entry;
        }
    }
    return NULL;
}

/**
 * vfio_dma_record_mapped: how many entries are mapped
 *
 * @rec: the record.
 *
 * Returns: the number of DMA mappings the host holds for the record's
 * container.
 */
static inline uint64_t vfio_dma_record_mapped(const VFIODMARecord *rec)
{
    return rec->mapped;
}

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
static inline bool vfio_dma_range_trim(uint64_t start, Int128 size,
                                       uint64_t granule, Range *out)
{
    uint64_t mask = granule - 1;
    uint64_t first, last;

    assert(is_power_of_2(granule));
    assert(int128_nonneg(size) &&
           int128_le(int128_add(int128_make64(start), size), int128_2_64()));
    if (!int128_nz(size)) {
        goto empty;
    }
    /* A size of 2^64 has a low half of 0, and then @start is 0. */
    last = start + (int128_getlo(size) - 1);
    first = (start + mask) & ~mask;
    if (first < start) {
        goto empty;             /* no granule starts at or after @start */
    }
    if ((last & mask) != mask) {
        if (last < mask) {
            goto empty;         /* no granule ends at or before @last */
        }
        last = (last & ~mask) - 1;
    }
    if (first > last) {
        goto empty;
    }
    out->lob = first;
    out->upb = last;
    return true;

empty:
    range_make_empty(out);
    return false;
}

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
