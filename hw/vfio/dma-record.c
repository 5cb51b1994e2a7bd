/*
 * VFIO DMA mapping record and IOVA range arithmetic
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "hw/vfio/vfio-dma-record.h"

struct VFIODMARecord {
    IntervalTreeRoot root;
    uint64_t count[VFIO_DMA_STATE__MAX];
    Int128 bytes[VFIO_DMA_STATE__MAX];
    size_t footprint;
};

static const char *const vfio_dma_state_names[VFIO_DMA_STATE__MAX] = {
    [VFIO_DMA_MAPPED] = "mapped",
    [VFIO_DMA_SKIPPED] = "skipped",
    [VFIO_DMA_FAILED] = "failed",
};

static const char *const vfio_dma_skip_reason_names[VFIO_DMA_SKIP__MAX] = {
    [VFIO_DMA_SKIP_NONE] = "none",
    [VFIO_DMA_SKIP_UNALIGNED] = "unaligned",
    [VFIO_DMA_SKIP_OUTSIDE_IOVA] = "outside-iova-ranges",
    [VFIO_DMA_SKIP_NO_PAGE_SIZE] = "no-page-size",
};

const char *vfio_dma_state_str(VFIODMAState state)
{
    assert(state < VFIO_DMA_STATE__MAX);
    return vfio_dma_state_names[state];
}

const char *vfio_dma_skip_reason_str(VFIODMASkipReason reason)
{
    assert(reason < VFIO_DMA_SKIP__MAX);
    return vfio_dma_skip_reason_names[reason];
}

VFIODMAEntry *vfio_dma_entry_new(uint64_t iova_first, uint64_t iova_last,
                                 const VFIODMASectionId *section,
                                 const char *name)
{
    VFIODMAEntry *entry = g_new0(VFIODMAEntry, 1);

    assert(iova_first <= iova_last);
    assert(section->first <= section->last);
    entry->node.start = iova_first;
    entry->node.last = iova_last;
    entry->state = VFIO_DMA_MAPPED;
    entry->reason = VFIO_DMA_SKIP_NONE;
    entry->section = *section;
    entry->name = g_strdup(name ? name : "");
    return entry;
}

void vfio_dma_entry_free(VFIODMAEntry *entry)
{
    if (entry) {
        g_free(entry->name);
        g_free(entry);
    }
}

size_t vfio_dma_entry_footprint(const VFIODMAEntry *entry)
{
    return sizeof(*entry) + strlen(entry->name) + 1;
}

VFIODMARecord *vfio_dma_record_new(void)
{
    VFIODMARecord *rec = g_new0(VFIODMARecord, 1);
    int i;

    for (i = 0; i < VFIO_DMA_STATE__MAX; i++) {
        rec->bytes[i] = int128_zero();
    }
    rec->footprint = sizeof(*rec);
    return rec;
}

void vfio_dma_record_free(VFIODMARecord *rec)
{
    IntervalTreeNode *node;

    if (!rec) {
        return;
    }
    while ((node = interval_tree_iter_first(&rec->root, 0, UINT64_MAX))) {
        VFIODMAEntry *entry = container_of(node, VFIODMAEntry, node);

        interval_tree_remove(node, &rec->root);
        vfio_dma_entry_free(entry);
    }
    g_free(rec);
}

static void vfio_dma_entry_check(const VFIODMAEntry *entry)
{
    assert(entry->node.start <= entry->node.last);
    assert(entry->state < VFIO_DMA_STATE__MAX);
    assert(entry->reason < VFIO_DMA_SKIP__MAX);
    assert((entry->state == VFIO_DMA_SKIPPED) ==
           (entry->reason != VFIO_DMA_SKIP_NONE));
    assert(entry->state == VFIO_DMA_FAILED ? entry->error > 0
                                           : entry->error == 0);
    assert(entry->section.first <= entry->node.start &&
           entry->node.last <= entry->section.last);
}

void vfio_dma_record_insert(VFIODMARecord *rec, VFIODMAEntry *entry)
{
    vfio_dma_entry_check(entry);
    interval_tree_insert(&entry->node, &rec->root);
    rec->count[entry->state]++;
    int128_addto(&rec->bytes[entry->state], vfio_dma_entry_size(entry));
    rec->footprint += vfio_dma_entry_footprint(entry);
}

void vfio_dma_record_remove(VFIODMARecord *rec, VFIODMAEntry *entry)
{
    assert(rec->count[entry->state] > 0);
    interval_tree_remove(&entry->node, &rec->root);
    rec->count[entry->state]--;
    int128_subfrom(&rec->bytes[entry->state], vfio_dma_entry_size(entry));
    rec->footprint -= vfio_dma_entry_footprint(entry);
    vfio_dma_entry_free(entry);
}

static VFIODMAEntry *vfio_dma_entry_of(IntervalTreeNode *node)
{
    return node ? container_of(node, VFIODMAEntry, node) : NULL;
}

VFIODMAEntry *vfio_dma_record_first(VFIODMARecord *rec,
                                    uint64_t first, uint64_t last)
{
    assert(first <= last);
    return vfio_dma_entry_of(interval_tree_iter_first(&rec->root,
                                                      first, last));
}

VFIODMAEntry *vfio_dma_record_next(VFIODMAEntry *entry,
                                   uint64_t first, uint64_t last)
{
    return vfio_dma_entry_of(interval_tree_iter_next(&entry->node,
                                                     first, last));
}

int vfio_dma_record_foreach_range(VFIODMARecord *rec,
                                  uint64_t first, uint64_t last,
                                  VFIODMARecordFunc fn, void *opaque)
{
    VFIODMAEntry *entry, *next;
    int ret;

    for (entry = vfio_dma_record_first(rec, first, last); entry;
         entry = next) {
        /* Look ahead so that @fn may remove @entry. */
        next = vfio_dma_record_next(entry, first, last);
        ret = fn(entry, opaque);
        if (ret) {
            return ret;
        }
    }
    return 0;
}

int vfio_dma_record_foreach(VFIODMARecord *rec, VFIODMARecordFunc fn,
                            void *opaque)
{
    return vfio_dma_record_foreach_range(rec, 0, UINT64_MAX, fn, opaque);
}

GPtrArray *vfio_dma_record_collect_section(VFIODMARecord *rec,
                                           const VFIODMASectionId *section)
{
    GPtrArray *found = g_ptr_array_new();
    VFIODMAEntry *entry;

    for (entry = vfio_dma_record_first(rec, section->first, section->last);
         entry;
         entry = vfio_dma_record_next(entry, section->first, section->last)) {
        if (entry->section.key == section->key &&
            entry->section.first == section->first) {
            g_ptr_array_add(found, entry);
        }
    }
    return found;
}

uint64_t vfio_dma_record_count(const VFIODMARecord *rec, VFIODMAState state)
{
    uint64_t total = 0;
    int i;

    if (state < VFIO_DMA_STATE__MAX) {
        return rec->count[state];
    }
    assert(state == VFIO_DMA_STATE__MAX);
    for (i = 0; i < VFIO_DMA_STATE__MAX; i++) {
        total += rec->count[i];
    }
    return total;
}

Int128 vfio_dma_record_bytes(const VFIODMARecord *rec, VFIODMAState state)
{
    Int128 total = int128_zero();
    int i;

    if (state < VFIO_DMA_STATE__MAX) {
        return rec->bytes[state];
    }
    assert(state == VFIO_DMA_STATE__MAX);
    for (i = 0; i < VFIO_DMA_STATE__MAX; i++) {
        int128_addto(&total, rec->bytes[i]);
    }
    return total;
}

uint64_t vfio_dma_record_bytes_sat(const VFIODMARecord *rec,
                                   VFIODMAState state)
{
    Int128 bytes = vfio_dma_record_bytes(rec, state);

    if (int128_uge(bytes, int128_2_64())) {
        return UINT64_MAX;
    }
    return int128_get64(bytes);
}

size_t vfio_dma_record_footprint(const VFIODMARecord *rec)
{
    return rec->footprint;
}

/* Range arithmetic */

uint64_t vfio_dma_pgsize_min(uint64_t pgsizes)
{
    /* The lowest set bit; 0 for an empty bitmap. */
    return pgsizes & -pgsizes;
}

uint64_t vfio_dma_ram_device_granule(uint64_t pgsizes,
                                     uint64_t host_page_size,
                                     bool *fallback)
{
    uint64_t min = vfio_dma_pgsize_min(pgsizes);

    assert(is_power_of_2(host_page_size));
    if (fallback) {
        *fallback = !min;
    }
    return MAX(min, host_page_size);
}

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

static void vfio_dma_add_piece(GArray *pieces, uint64_t first, uint64_t last,
                               VFIODMASkipReason skip)
{
    VFIODMAPiece piece = { .skip = skip };

    range_set_bounds(&piece.range, first, last);
    g_array_append_val(pieces, piece);
}

/* [first, last] is inside a usable IOVA range: map what is aligned. */
static void vfio_dma_add_usable(GArray *pieces, uint64_t first, uint64_t last,
                                uint64_t granule)
{
    Int128 size = int128_add(int128_make64(last - first), int128_one());
    Range aligned;

    if (!vfio_dma_range_trim(first, size, granule, &aligned)) {
        vfio_dma_add_piece(pieces, first, last, VFIO_DMA_SKIP_UNALIGNED);
        return;
    }
    if (range_lob(&aligned) > first) {
        vfio_dma_add_piece(pieces, first, range_lob(&aligned) - 1,
                           VFIO_DMA_SKIP_UNALIGNED);
    }
    vfio_dma_add_piece(pieces, range_lob(&aligned), range_upb(&aligned),
                       VFIO_DMA_SKIP_NONE);
    if (range_upb(&aligned) < last) {
        vfio_dma_add_piece(pieces, range_upb(&aligned) + 1, last,
                           VFIO_DMA_SKIP_UNALIGNED);
    }
}

void vfio_dma_range_split(const Range *range, GList *iova_ranges,
                          uint64_t granule, GArray *pieces)
{
    uint64_t pos, lob, upb, prev_last = 0;
    GList *l;

    assert(!range_is_empty(range));
    assert(is_power_of_2(granule));
    lob = range->lob;
    upb = range->upb;

    if (!iova_ranges) {
        vfio_dma_add_usable(pieces, lob, upb, granule);
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
            vfio_dma_add_piece(pieces, pos, ufirst - 1,
                               VFIO_DMA_SKIP_OUTSIDE_IOVA);
            pos = ufirst;
        }
        if (ulast >= upb) {
            vfio_dma_add_usable(pieces, pos, upb, granule);
            return;
        }
        vfio_dma_add_usable(pieces, pos, ulast, granule);
        pos = ulast + 1;
    }
    vfio_dma_add_piece(pieces, pos, upb, VFIO_DMA_SKIP_OUTSIDE_IOVA);
}

static gint vfio_dma_range_cmp_lob(gconstpointer a, gconstpointer b)
{
    const Range *ra = a, *rb = b;

    if (ra->lob != rb->lob) {
        return ra->lob < rb->lob ? -1 : 1;
    }
    return 0;
}

unsigned vfio_dma_range_complement(const Range *section, const Range *mapped,
                                   size_t n_mapped, GArray *gaps)
{
    g_autofree Range *sorted = NULL;
    unsigned added = 0;
    Range gap;
    uint64_t pos;
    size_t i;

    assert(!range_is_empty(section));
    if (n_mapped) {
        sorted = g_memdup2(mapped, n_mapped * sizeof(*mapped));
        qsort(sorted, n_mapped, sizeof(*sorted), vfio_dma_range_cmp_lob);
    }

    /* Everything in @section below @pos is covered or reported. */
    pos = section->lob;
    for (i = 0; i < n_mapped; i++) {
        const Range *m = &sorted[i];

        if (range_is_empty(m) || m->upb < pos) {
            continue;
        }
        if (m->lob > section->upb) {
            break;
        }
        if (m->lob > pos) {
            range_set_bounds(&gap, pos, m->lob - 1);
            g_array_append_val(gaps, gap);
            added++;
        }
        if (m->upb >= section->upb) {
            return added;
        }
        pos = m->upb + 1;
    }

    range_set_bounds(&gap, pos, section->upb);
    g_array_append_val(gaps, gap);
    return added + 1;
}
