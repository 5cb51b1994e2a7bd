/*
 * VFIO DMA mapping record and IOVA range arithmetic
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/vfio/vfio-dma-record.h"

VFIODMARecord *vfio_dma_record_new(void)
{
    return g_new0(VFIODMARecord, 1);
}

static void vfio_dma_entry_free(VFIODMAEntry *entry)
{
    g_free(entry->name);
    g_free(entry);
}

void vfio_dma_record_drop(VFIODMARecord *rec, VFIODMAEntry *entry)
{
    int i;

    if (rec->nr_spare < VFIO_DMA_RECORD_SPARE) {
        g_free(entry->name);
        rec->spare[rec->nr_spare++] = entry;
        return;
    }
    for (i = 0; i < VFIO_DMA_RECORD_RECENT; i++) {
        if (rec->recent[i] == entry) {
            rec->recent[i] = NULL;
        }
    }
    vfio_dma_entry_free(entry);
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

/*
 * IOVA range arithmetic
 */

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
