/*
 * VFIO DMA mapping record and IOVA range arithmetic
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/vfio/vfio-dma-record.h"

/* Entries kept for reuse: a decode toggle frees and adds the same ones */
#define VFIO_DMA_RECORD_SPARE 16

struct VFIODMARecord {
    IntervalTreeRoot root;
    uint64_t mapped;
    VFIODMAEntry *spare[VFIO_DMA_RECORD_SPARE];
    unsigned nr_spare;
};

VFIODMARecord *vfio_dma_record_new(void)
{
    return g_new0(VFIODMARecord, 1);
}

static void vfio_dma_entry_free(VFIODMAEntry *entry)
{
    g_free(entry->name);
    g_free(entry);
}

void vfio_dma_record_free(VFIODMARecord *rec)
{
    IntervalTreeNode *node;

    if (!rec) {
        return;
    }
    while ((node = interval_tree_iter_first(&rec->root, 0, UINT64_MAX))) {
        interval_tree_remove(node, &rec->root);
        vfio_dma_entry_free(container_of(node, VFIODMAEntry, node));
    }
    while (rec->nr_spare) {
        g_free(rec->spare[--rec->nr_spare]);
    }
    g_free(rec);
}

VFIODMAEntry *vfio_dma_record_add(VFIODMARecord *rec,
                                  uint64_t first, uint64_t last,
                                  const VFIODMASectionId *section,
                                  VfioDmaMappingState state)
{
    VFIODMAEntry *entry;

    assert(section->first <= first && first <= last &&
           last <= section->last);
    if (rec->nr_spare) {
        entry = rec->spare[--rec->nr_spare];
        memset(entry, 0, sizeof(*entry));
    } else {
        entry = g_new0(VFIODMAEntry, 1);
    }
    entry->node.start = first;
    entry->node.last = last;
    entry->section = *section;
    entry->state = state;
    interval_tree_insert(&entry->node, &rec->root);
    if (state == VFIO_DMA_MAPPING_STATE_MAPPED) {
        rec->mapped++;
    }
    return entry;
}

void vfio_dma_record_remove(VFIODMARecord *rec, VFIODMAEntry *entry)
{
    if (entry->state == VFIO_DMA_MAPPING_STATE_MAPPED) {
        assert(rec->mapped);
        rec->mapped--;
    }
    interval_tree_remove(&entry->node, &rec->root);
    if (rec->nr_spare < VFIO_DMA_RECORD_SPARE) {
        g_free(entry->name);
        rec->spare[rec->nr_spare++] = entry;
        return;
    }
    vfio_dma_entry_free(entry);
}

static VFIODMAEntry *vfio_dma_entry_of(IntervalTreeNode *node)
{
    return node ? container_of(node, VFIODMAEntry, node) : NULL;
}

VFIODMAEntry *vfio_dma_record_first(VFIODMARecord *rec,
                                    uint64_t first, uint64_t last)
{
    return vfio_dma_entry_of(interval_tree_iter_first(&rec->root,
                                                      first, last));
}

VFIODMAEntry *vfio_dma_record_next(VFIODMAEntry *entry,
                                   uint64_t first, uint64_t last)
{
    return vfio_dma_entry_of(interval_tree_iter_next(&entry->node,
                                                     first, last));
}

uint64_t vfio_dma_record_mapped(const VFIODMARecord *rec)
{
    return rec->mapped;
}

/*
 * IOVA range arithmetic
 */

bool vfio_dma_range_trim(uint64_t start, Int128 size, uint64_t granule,
                         Range *out)
{
    Int128 mask, first, end;

    assert(is_power_of_2(granule));
    assert(int128_nonneg(size));
    end = int128_add(int128_make64(start), size);
    assert(int128_le(end, int128_2_64()));

    mask = int128_make64(granule - 1);
    first = int128_and(int128_add(int128_make64(start), mask),
                       int128_not(mask));
    end = int128_and(end, int128_not(mask));
    if (int128_ge(first, end)) {
        range_make_empty(out);
        return false;
    }
    range_set_bounds(out, int128_get64(first),
                     int128_get64(int128_sub(end, int128_one())));
    return true;
}

typedef struct VFIODMASplit {
    uint64_t granule;
    VFIODMAPieceFunc fn;
    void *opaque;
} VFIODMASplit;

static void vfio_dma_add_piece(VFIODMASplit *split, uint64_t first,
                               uint64_t last, bool map,
                               VfioDmaSkipReason reason)
{
    VFIODMAPiece piece = { .map = map, .reason = reason };

    range_set_bounds(&piece.range, first, last);
    split->fn(&piece, split->opaque);
}

/* [@first, @last] is usable: map its aligned interior, leave out the rest */
static void vfio_dma_add_usable(VFIODMASplit *split, uint64_t first,
                                uint64_t last)
{
    Int128 size = int128_add(int128_make64(last - first), int128_one());
    VfioDmaSkipReason unaligned = VFIO_DMA_SKIP_REASON_UNALIGNED;
    Range aligned;

    if (!vfio_dma_range_trim(first, size, split->granule, &aligned)) {
        vfio_dma_add_piece(split, first, last, false, unaligned);
        return;
    }
    if (range_lob(&aligned) > first) {
        vfio_dma_add_piece(split, first, range_lob(&aligned) - 1, false,
                           unaligned);
    }
    vfio_dma_add_piece(split, range_lob(&aligned), range_upb(&aligned), true,
                       0);
    if (range_upb(&aligned) < last) {
        vfio_dma_add_piece(split, range_upb(&aligned) + 1, last, false,
                           unaligned);
    }
}

void vfio_dma_range_split(const Range *range, GList *iova_ranges,
                          uint64_t granule, VFIODMAPieceFunc fn,
                          void *opaque)
{
    VfioDmaSkipReason outside = VFIO_DMA_SKIP_REASON_OUTSIDE_IOVA_RANGES;
    VFIODMASplit split = { .granule = granule, .fn = fn, .opaque = opaque };
    VFIODMASplit *pieces = &split;
    uint64_t pos, lob, upb, prev_last = 0;
    GList *l;

    assert(!range_is_empty(range));
    assert(is_power_of_2(granule));
    lob = range->lob;
    upb = range->upb;

    if (!iova_ranges) {
        vfio_dma_add_usable(pieces, lob, upb);
        return;
    }

    /* Everything below @pos has been classified. */
    pos = lob;
    for (l = iova_ranges; l; l = l->next) {
        const Range *usable = l->data;
        uint64_t ufirst = usable->lob, ulast = usable->upb;

        assert(!range_is_empty(usable));
        /* The list is sorted: this range starts after the previous one. */
        assert(l == iova_ranges || ufirst > prev_last + 1);
        /* Merge the following usable ranges that overlap or touch. */
        while (l->next && ulast != UINT64_MAX &&
               range_lob(l->next->data) <= ulast + 1) {
            l = l->next;
            assert(range_lob(l->data) >= ufirst);
            ulast = MAX(ulast, range_upb(l->data));
        }
        prev_last = ulast;

        if (ulast < pos) {
            continue;
        }
        if (ufirst > upb) {
            break;
        }
        if (ufirst > pos) {
            vfio_dma_add_piece(pieces, pos, ufirst - 1, false, outside);
            pos = ufirst;
        }
        if (ulast >= upb) {
            vfio_dma_add_usable(pieces, pos, upb);
            return;
        }
        vfio_dma_add_usable(pieces, pos, ulast);
        pos = ulast + 1;
    }
    vfio_dma_add_piece(pieces, pos, upb, false, outside);
}
