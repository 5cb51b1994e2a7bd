/*
 * Unit tests for the VFIO DMA mapping record and its range arithmetic
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/vfio/vfio-dma-record.h"

#define TOP_64K (UINT64_MAX - 0xffff)   /* 2^64 - 0x10000 */

#define assert_int128(v, hi, lo) do {                           \
        Int128 v_ = (v);                                        \
        g_assert_cmphex(int128_gethi(v_), ==, (hi));            \
        g_assert_cmphex(int128_getlo(v_), ==, (lo));            \
    } while (0)

#define assert_range(r, first, last) do {                       \
        const Range *r_ = (r);                                  \
        g_assert_false(range_is_empty(r_));                     \
        g_assert_cmphex(r_->lob, ==, (first));                  \
        g_assert_cmphex(r_->upb, ==, (last));                   \
    } while (0)

static void test_trim_top_of_space(void)
{
    Range r;

    /* A section ending exactly at 2^64. */
    g_assert_true(vfio_dma_range_trim(TOP_64K, int128_make64(0x10000),
                                      0x1000, &r));
    assert_range(&r, TOP_64K, UINT64_MAX);
    g_assert_true(vfio_dma_range_trim(TOP_64K, int128_make64(0x10000),
                                      0x10000, &r));
    assert_range(&r, TOP_64K, UINT64_MAX);

    /* Rounding the start up would reach 2^64: nothing is left. */
    g_assert_false(vfio_dma_range_trim(TOP_64K, int128_make64(0x10000),
                                       0x20000, &r));
    g_assert_true(range_is_empty(&r));

    /* Unaligned head, tail at 2^64. */
    g_assert_true(vfio_dma_range_trim(TOP_64K + 0x800,
                                      int128_make64(0x10000 - 0x800),
                                      0x1000, &r));
    assert_range(&r, TOP_64K + 0x1000, UINT64_MAX);

    /* The last page alone, and less than it. */
    g_assert_true(vfio_dma_range_trim(UINT64_MAX - 0xfff,
                                      int128_make64(0x1000), 0x1000, &r));
    assert_range(&r, UINT64_MAX - 0xfff, UINT64_MAX);
    g_assert_false(vfio_dma_range_trim(UINT64_MAX - 0xffe,
                                       int128_make64(0xfff), 0x1000, &r));
    g_assert_true(range_is_empty(&r));
}

static void test_trim_whole_space(void)
{
    Range r;

    g_assert_true(vfio_dma_range_trim(0, int128_2_64(), 0x1000, &r));
    assert_range(&r, 0, UINT64_MAX);
    g_assert_true(vfio_dma_range_trim(0, int128_2_64(), 1ULL << 63, &r));
    assert_range(&r, 0, UINT64_MAX);
    g_assert_true(vfio_dma_range_trim(0, int128_2_64(), 1, &r));
    assert_range(&r, 0, UINT64_MAX);
}

static void test_trim_sub_granule(void)
{
    Range r;

    /* Inside one granule. */
    g_assert_false(vfio_dma_range_trim(0x1800, int128_make64(0x400),
                                       0x1000, &r));
    g_assert_true(range_is_empty(&r));
    /* One byte short of a granule. */
    g_assert_false(vfio_dma_range_trim(0x1000, int128_make64(0xfff),
                                       0x1000, &r));
    g_assert_true(range_is_empty(&r));
    /* A granule's size, but straddling a boundary. */
    g_assert_false(vfio_dma_range_trim(0x1001, int128_make64(0x1000),
                                       0x1000, &r));
    g_assert_true(range_is_empty(&r));
    /* Empty input. */
    g_assert_false(vfio_dma_range_trim(0x1000, int128_zero(), 0x1000, &r));
    g_assert_true(range_is_empty(&r));
    /* A 4K-aligned BAR with a 64K IOMMU page. */
    g_assert_false(vfio_dma_range_trim(0xfe001000, int128_make64(0x4000),
                                       0x10000, &r));
    g_assert_true(range_is_empty(&r));
}

static void test_trim_aligned(void)
{
    Range r;

    g_assert_true(vfio_dma_range_trim(0x100000, int128_make64(0x200000),
                                      0x1000, &r));
    assert_range(&r, 0x100000, 0x2fffff);
    g_assert_true(vfio_dma_range_trim(0x100000, int128_make64(0x200000),
                                      0x100000, &r));
    assert_range(&r, 0x100000, 0x2fffff);
    /* Granule 1: identity. */
    g_assert_true(vfio_dma_range_trim(0x1234, int128_make64(0x11),
                                      1, &r));
    assert_range(&r, 0x1234, 0x1244);
}

static void test_trim_head_tail(void)
{
    Range r;

    /* Head only. */
    g_assert_true(vfio_dma_range_trim(0x1800, int128_make64(0x2800),
                                      0x1000, &r));
    assert_range(&r, 0x2000, 0x3fff);
    /* Tail only. */
    g_assert_true(vfio_dma_range_trim(0x1000, int128_make64(0x2800),
                                      0x1000, &r));
    assert_range(&r, 0x1000, 0x2fff);
    /* Both. */
    g_assert_true(vfio_dma_range_trim(0x1800, int128_make64(0x3000),
                                      0x1000, &r));
    assert_range(&r, 0x2000, 0x3fff);
    /* Both, leaving a single granule. */
    g_assert_true(vfio_dma_range_trim(0xfff, int128_make64(0x1002),
                                      0x1000, &r));
    assert_range(&r, 0x1000, 0x1fff);
}

/* Splitting against usable IOVA ranges */

typedef enum { PIECE_MAP, PIECE_OUT, PIECE_UNAL } PieceKind;

static void collect_piece(const VFIODMAPiece *piece, void *opaque)
{
    g_array_append_val((GArray *)opaque, *piece);
}

static PieceKind piece_kind(const VFIODMAPiece *p)
{
    if (p->map) {
        return PIECE_MAP;
    }
    return p->reason == VFIO_DMA_SKIP_REASON_UNALIGNED ? PIECE_UNAL
                                                       : PIECE_OUT;
}

static GList *make_iova_list(const uint64_t (*bounds)[2], size_t n)
{
    GList *list = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        Range *r = g_new(Range, 1);

        range_set_bounds(r, bounds[i][0], bounds[i][1]);
        list = range_list_insert(list, r);
    }
    return list;
}

/* Is @r covered by the union of the sorted ranges of @list? */
static bool range_in_list(const Range *r, GList *list)
{
    uint64_t pos = r->lob;

    for (; list; list = list->next) {
        Range *u = list->data;

        if (range_contains(u, pos)) {
            if (u->upb >= r->upb) {
                return true;
            }
            pos = u->upb + 1;
        }
    }
    return false;
}

static bool range_hits_list(const Range *r, GList *list)
{
    for (; list; list = list->next) {
        if (range_overlaps_range(list->data, r)) {
            return true;
        }
    }
    return false;
}

/*
 * Check the properties vfio_dma_range_split() promises: ascending,
 * disjoint pieces covering @range exactly, pieces to map aligned and
 * inside a usable range, outside pieces outside of all of them.
 */
static void check_split(const Range *range, GList *iova, uint64_t granule,
                        GArray *pieces)
{
    uint64_t next = range->lob;
    bool done = false;
    guint i;

    g_assert_cmpuint(pieces->len, >, 0);
    for (i = 0; i < pieces->len; i++) {
        VFIODMAPiece *p = &g_array_index(pieces, VFIODMAPiece, i);

        g_assert_false(done);
        g_assert_false(range_is_empty(&p->range));
        g_assert_cmphex(p->range.lob, ==, next);
        switch (piece_kind(p)) {
        case PIECE_MAP:
            g_assert_cmphex(p->range.lob & (granule - 1), ==, 0);
            g_assert_cmphex((p->range.upb + 1) & (granule - 1), ==, 0);
            g_assert_true(!iova || range_in_list(&p->range, iova));
            break;
        case PIECE_OUT:
            g_assert_nonnull(iova);
            g_assert_false(range_hits_list(&p->range, iova));
            break;
        case PIECE_UNAL:
            g_assert_true(!iova || range_in_list(&p->range, iova));
            break;
        default:
            g_assert_not_reached();
        }
        if (p->range.upb == range->upb) {
            done = true;
        } else {
            next = p->range.upb + 1;
        }
    }
    g_assert_true(done);
}

typedef struct {
    uint64_t first, last;
    PieceKind skip;
} ExpectedPiece;

static void check_pieces(GArray *pieces, const ExpectedPiece *exp, size_t n)
{
    size_t i;

    g_assert_cmpuint(pieces->len, ==, n);
    for (i = 0; i < n; i++) {
        VFIODMAPiece *p = &g_array_index(pieces, VFIODMAPiece, i);

        assert_range(&p->range, exp[i].first, exp[i].last);
        g_assert_cmpint(piece_kind(p), ==, exp[i].skip);
    }
}

#define split_and_check(rng, usable, gran, ...) do {                    \
        static const ExpectedPiece exp_[] = { __VA_ARGS__ };            \
        g_autoptr(GArray) pieces_ =                                     \
            g_array_new(false, false, sizeof(VFIODMAPiece));            \
                                                                        \
        vfio_dma_range_split((rng), (usable), (gran), collect_piece,    \
                             pieces_);                                  \
        check_split((rng), (usable), (gran), pieces_);                  \
        check_pieces(pieces_, exp_, G_N_ELEMENTS(exp_));                \
    } while (0)

#define P_MAP(f, l) { (f), (l), PIECE_MAP }
#define P_OUT(f, l) { (f), (l), PIECE_OUT }
#define P_UNAL(f, l) { (f), (l), PIECE_UNAL }

/* x86 with a 48-bit IOMMU: everything but the MSI window. */
static const uint64_t x86_iova[][2] = {
    { 0, 0xfedfffff },
    { 0xfef00000, 0xffffffffffff },
};

static void test_split_inside(void)
{
    GList *iova = make_iova_list(x86_iova, G_N_ELEMENTS(x86_iova));
    Range r;

    range_set_bounds(&r, 0x100000, 0x7fffffff);
    split_and_check(&r, iova, 0x1000, P_MAP(0x100000, 0x7fffffff));
    range_set_bounds(&r, 0x100000000, 0x17fffffff);
    split_and_check(&r, iova, 0x1000, P_MAP(0x100000000, 0x17fffffff));
    /* Touching both ends of a usable range. */
    range_set_bounds(&r, 0, 0xfedfffff);
    split_and_check(&r, iova, 0x1000, P_MAP(0, 0xfedfffff));
    /* No list: everything is usable. */
    range_set_bounds(&r, 0, UINT64_MAX);
    split_and_check(&r, NULL, 0x1000, P_MAP(0, UINT64_MAX));
    g_list_free_full(iova, g_free);
}

static void test_split_outside(void)
{
    GList *iova = make_iova_list(x86_iova, G_N_ELEMENTS(x86_iova));
    Range r;

    /* In the MSI window. */
    range_set_bounds(&r, 0xfee00000, 0xfeefffff);
    split_and_check(&r, iova, 0x1000, P_OUT(0xfee00000, 0xfeefffff));
    /* Above the IOMMU's address width. */
    range_set_bounds(&r, 0x1000000000000, 0x1000000ffffff);
    split_and_check(&r, iova, 0x1000,
                    P_OUT(0x1000000000000, 0x1000000ffffff));
    range_set_bounds(&r, TOP_64K, UINT64_MAX);
    split_and_check(&r, iova, 0x1000, P_OUT(TOP_64K, UINT64_MAX));
    g_list_free_full(iova, g_free);
}

static void test_split_one_hole(void)
{
    GList *iova = make_iova_list(x86_iova, G_N_ELEMENTS(x86_iova));
    Range r;

    range_set_bounds(&r, 0xfe000000, 0xfeffffff);
    split_and_check(&r, iova, 0x1000,
                    P_MAP(0xfe000000, 0xfedfffff),
                    P_OUT(0xfee00000, 0xfeefffff),
                    P_MAP(0xfef00000, 0xfeffffff));
    /* Starting in the hole. */
    range_set_bounds(&r, 0xfee80000, 0xfeffffff);
    split_and_check(&r, iova, 0x1000,
                    P_OUT(0xfee80000, 0xfeefffff),
                    P_MAP(0xfef00000, 0xfeffffff));
    /* Ending in the hole. */
    range_set_bounds(&r, 0xfe000000, 0xfee7ffff);
    split_and_check(&r, iova, 0x1000,
                    P_MAP(0xfe000000, 0xfedfffff),
                    P_OUT(0xfee00000, 0xfee7ffff));
    /* Crossing the top of the usable space up to 2^64. */
    range_set_bounds(&r, 0xffff00000000, UINT64_MAX);
    split_and_check(&r, iova, 0x1000,
                    P_MAP(0xffff00000000, 0xffffffffffff),
                    P_OUT(0x1000000000000, UINT64_MAX));
    /* The whole space. */
    range_set_bounds(&r, 0, UINT64_MAX);
    split_and_check(&r, iova, 0x1000,
                    P_MAP(0, 0xfedfffff),
                    P_OUT(0xfee00000, 0xfeefffff),
                    P_MAP(0xfef00000, 0xffffffffffff),
                    P_OUT(0x1000000000000, UINT64_MAX));
    g_list_free_full(iova, g_free);
}

static void test_split_several_holes(void)
{
    static const uint64_t usable[][2] = {
        { 0x50000, 0x5ffff },           /* given out of order */
        { 0x10000, 0x1ffff },
        { 0x70000, UINT64_MAX },
        { 0x30000, 0x3ffff },
    };
    GList *iova = make_iova_list(usable, G_N_ELEMENTS(usable));
    Range r;

    range_set_bounds(&r, 0x8000, 0x77fff);
    split_and_check(&r, iova, 0x1000,
                    P_OUT(0x8000, 0xffff),
                    P_MAP(0x10000, 0x1ffff),
                    P_OUT(0x20000, 0x2ffff),
                    P_MAP(0x30000, 0x3ffff),
                    P_OUT(0x40000, 0x4ffff),
                    P_MAP(0x50000, 0x5ffff),
                    P_OUT(0x60000, 0x6ffff),
                    P_MAP(0x70000, 0x77fff));
    range_set_bounds(&r, 0x18000, 0x57fff);
    split_and_check(&r, iova, 0x1000,
                    P_MAP(0x18000, 0x1ffff),
                    P_OUT(0x20000, 0x2ffff),
                    P_MAP(0x30000, 0x3ffff),
                    P_OUT(0x40000, 0x4ffff),
                    P_MAP(0x50000, 0x57fff));
    /* An untrimmed range is trimmed again inside the usable ranges. */
    range_set_bounds(&r, 0x18800, 0x307ff);
    split_and_check(&r, iova, 0x1000,
                    P_UNAL(0x18800, 0x18fff),
                    P_MAP(0x19000, 0x1ffff),
                    P_OUT(0x20000, 0x2ffff),
                    P_UNAL(0x30000, 0x307ff));
    g_list_free_full(iova, g_free);
}

static void test_split_unaligned_usable(void)
{
    static const uint64_t odd[][2] = {
        { 0x1000, 0x22fff },
        { 0x31000, 0x31fff },
        { 0x40800, UINT64_MAX },
    };
    GList *iova = make_iova_list(odd, G_N_ELEMENTS(odd));
    GList *adjacent = NULL;
    Range r, *a, *b;

    /* Usable ranges that are not aligned to a 64K granule. */
    range_set_bounds(&r, 0, 0x5ffff);
    split_and_check(&r, iova, 0x10000,
                    P_OUT(0, 0xfff),
                    P_UNAL(0x1000, 0xffff),
                    P_MAP(0x10000, 0x1ffff),
                    P_UNAL(0x20000, 0x22fff),
                    P_OUT(0x23000, 0x30fff),
                    P_UNAL(0x31000, 0x31fff),
                    P_OUT(0x32000, 0x407ff),
                    P_UNAL(0x40800, 0x4ffff),
                    P_MAP(0x50000, 0x5ffff));
    g_list_free_full(iova, g_free);

    /* Touching usable ranges are one range: no cut at 0x1800. */
    a = g_new(Range, 1);
    b = g_new(Range, 1);
    range_set_bounds(a, 0, 0x17ff);
    range_set_bounds(b, 0x1800, 0x2fff);
    adjacent = g_list_append(g_list_append(NULL, a), b);
    range_set_bounds(&r, 0, 0x2fff);
    split_and_check(&r, adjacent, 0x1000, P_MAP(0, 0x2fff));
    g_list_free_full(adjacent, g_free);
}

/*
 * Random usable lists and ranges: check the invariants, and that the
 * pieces to map are exactly the granules inside usable ranges.
 */
static void test_split_random(void)
{
    int iter;

    for (iter = 0; iter < 500; iter++) {
        uint64_t granule = 1ULL << g_test_rand_int_range(0, 6);
        g_autoptr(GArray) pieces = g_array_new(false, false,
                                               sizeof(VFIODMAPiece));
        GList *iova = NULL;
        uint64_t byte, lob, mapped_bytes = 0, expected = 0;
        int n = g_test_rand_int_range(0, 5), i;
        Range r;

        for (i = 0; i < n; i++) {
            Range *u = g_new(Range, 1);

            lob = g_test_rand_int_range(0, 256);
            range_set_bounds(u, lob, lob + g_test_rand_int_range(0, 64));
            iova = range_list_insert(iova, u);
        }
        lob = g_test_rand_int_range(0, 128);
        range_set_bounds(&r, lob, lob + g_test_rand_int_range(0, 200));

        vfio_dma_range_split(&r, iova, granule, collect_piece, pieces);
        check_split(&r, iova, granule, pieces);

        for (i = 0; i < pieces->len; i++) {
            VFIODMAPiece *p = &g_array_index(pieces, VFIODMAPiece, i);

            if (p->map) {
                mapped_bytes += range_size(&p->range);
            }
        }
        /* Count the whole granules of @r inside one usable range. */
        for (byte = ROUND_UP(r.lob, granule); byte + granule - 1 <= r.upb;
             byte += granule) {
            Range g;

            range_set_bounds(&g, byte, byte + granule - 1);
            if (!iova || range_in_list(&g, iova)) {
                expected += granule;
            }
        }
        g_assert_cmpuint(mapped_bytes, ==, expected);
        g_list_free_full(iova, g_free);
    }
}

/* The record */

/* Stand-ins for MemoryRegions: only their addresses are used. */
static const char mr_ram, mr_bar0, mr_bar2;
static const char mr_many[3];

#define MR(x) ((const MemoryRegion *)&(x))
#define STATE_ANY VFIO_DMA_MAPPING_STATE__MAX
#define MAPPED VFIO_DMA_MAPPING_STATE_MAPPED
#define SKIPPED VFIO_DMA_MAPPING_STATE_SKIPPED
#define FAILED VFIO_DMA_MAPPING_STATE_FAILED

static VFIODMAEntry *add_entry(VFIODMARecord *rec, uint64_t first,
                               uint64_t last, const VFIODMASectionId *sec,
                               VfioDmaMappingState state, const char *name)
{
    VFIODMAEntry *e = vfio_dma_record_add(rec, first, last, sec, state);

    e->name = g_strdup(name);
    if (state == SKIPPED) {
        e->reason = VFIO_DMA_SKIP_REASON_UNALIGNED;
    } else if (state == FAILED) {
        e->error = EINVAL;
    }
    e->vaddr = (void *)(uintptr_t)(0x7f0000000000ULL + first);
    return e;
}

/* Entries in @state (any with STATE_ANY), and their bytes, by a walk */
static uint64_t count_state(VFIODMARecord *rec, VfioDmaMappingState state)
{
    VFIODMAEntry *e;
    uint64_t n = 0;

    for (e = vfio_dma_record_first(rec, 0, UINT64_MAX); e;
         e = vfio_dma_record_next(e, 0, UINT64_MAX)) {
        n += state == STATE_ANY || e->state == state;
    }
    if (state == MAPPED) {
        g_assert_cmpuint(vfio_dma_record_mapped(rec), ==, n);
    }
    return n;
}

static Int128 entry_size(const VFIODMAEntry *e)
{
    return int128_add(int128_make64(vfio_dma_entry_last(e) -
                                    vfio_dma_entry_first(e)), int128_one());
}

static Int128 bytes_state(VFIODMARecord *rec, VfioDmaMappingState state)
{
    VFIODMAEntry *e;
    Int128 n = int128_zero();

    for (e = vfio_dma_record_first(rec, 0, UINT64_MAX); e;
         e = vfio_dma_record_next(e, 0, UINT64_MAX)) {
        if (state == STATE_ANY || e->state == state) {
            n = int128_add(n, entry_size(e));
        }
    }
    return n;
}

/* The entries of a section, as region_del finds them */
static GPtrArray *collect_section(VFIODMARecord *rec,
                                  const VFIODMASectionId *sec)
{
    GPtrArray *found = g_ptr_array_new();
    VFIODMAEntry *e;

    for (e = vfio_dma_record_first(rec, sec->first, sec->last); e;
         e = vfio_dma_record_next(e, sec->first, sec->last)) {
        if (e->section.mr == sec->mr && e->section.first == sec->first) {
            g_ptr_array_add(found, e);
        }
    }
    return found;
}

static void test_record_insert_lookup_remove(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    VFIODMASectionId ram = { MR(mr_ram), 0, 0x7fffffff };
    VFIODMASectionId bar = { MR(mr_bar0), 0xfe000000, 0xfe00ffff };
    VFIODMAEntry *e1, *e2, *found;

    g_assert_null(vfio_dma_record_first(rec, 0, UINT64_MAX));
    g_assert_cmpuint(vfio_dma_record_mapped(rec), ==, 0);

    e1 = add_entry(rec, 0, 0x9ffff, &ram, MAPPED,
                   "guest RAM");
    e2 = vfio_dma_record_add(rec, 0xfe000000, 0xfe00ffff, &bar,
                             MAPPED);
    g_assert_null(e2->name);
    g_assert_cmpint(e2->error, ==, 0);
    e2->name = g_strdup("vfio0 (0000:01:00.0) BAR 0");
    e2->ram_device = true;
    e2->readonly = true;
    e2->vaddr = (void *)(uintptr_t)0x7f1234560000ULL;
    g_assert_cmpuint(vfio_dma_record_mapped(rec), ==, 2);

    found = vfio_dma_record_first(rec, 0xfe008000, 0xfe008000);
    g_assert_true(found == e2);
    g_assert_cmphex(vfio_dma_entry_first(found), ==, 0xfe000000);
    g_assert_cmphex(vfio_dma_entry_last(found), ==, 0xfe00ffff);
    assert_int128(entry_size(found), 0, 0x10000);
    g_assert_cmpstr(found->name, ==, "vfio0 (0000:01:00.0) BAR 0");
    g_assert_true(found->ram_device);
    g_assert_true(found->readonly);
    g_assert_cmphex((uintptr_t)found->vaddr, ==, 0x7f1234560000ULL);
    g_assert_true(found->section.mr == MR(mr_bar0));
    g_assert_cmphex(found->section.first, ==, 0xfe000000);
    g_assert_cmphex(found->section.last, ==, 0xfe00ffff);
    g_assert_null(vfio_dma_record_next(found, 0xfe008000, 0xfe008000));

    found = vfio_dma_record_first(rec, 0x9ffff, 0x9ffff);
    g_assert_true(found == e1);
    g_assert_cmpstr(found->name, ==, "guest RAM");
    g_assert_false(found->ram_device);
    g_assert_null(vfio_dma_record_first(rec, 0xa0000, 0xfdffffff));
    g_assert_null(vfio_dma_record_first(rec, 0xfe010000, UINT64_MAX));

    vfio_dma_record_remove(rec, e1);
    g_assert_null(vfio_dma_record_first(rec, 0, 0x9ffff));
    g_assert_true(vfio_dma_record_first(rec, 0, UINT64_MAX) == e2);
    g_assert_cmpuint(count_state(rec, STATE_ANY), ==, 1);
    /* The remaining entry is freed with the record. */
}

static void test_record_overlap(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    VFIODMASectionId sec = { MR(mr_ram), 0, 0xffff };
    VFIODMAEntry *a, *b, *c, *wide, *e, *next;

    /* Inserted out of order; @wide overlaps @b and @c. */
    c = add_entry(rec, 0x3000, 0x3fff, &sec, MAPPED, "c");
    a = add_entry(rec, 0x0000, 0x0fff, &sec, MAPPED, "a");
    wide = add_entry(rec, 0x1800, 0x37ff, &sec, FAILED, "wide");
    b = add_entry(rec, 0x1000, 0x1fff, &sec, SKIPPED, "b");

    /* [0x1fff, 0x3000] touches b, wide and c, in IOVA order. */
    e = vfio_dma_record_first(rec, 0x1fff, 0x3000);
    g_assert_true(e == b);
    e = vfio_dma_record_next(e, 0x1fff, 0x3000);
    g_assert_true(e == wide);
    e = vfio_dma_record_next(e, 0x1fff, 0x3000);
    g_assert_true(e == c);
    g_assert_null(vfio_dma_record_next(e, 0x1fff, 0x3000));

    /* Only @wide covers [0x2000, 0x2fff]. */
    e = vfio_dma_record_first(rec, 0x2000, 0x2fff);
    g_assert_true(e == wide);
    g_assert_null(vfio_dma_record_next(e, 0x2000, 0x2fff));

    /* Nothing at or beyond 0x4000, nor in [0x3800, 0x3fff] but @c. */
    g_assert_null(vfio_dma_record_first(rec, 0x4000, UINT64_MAX));
    e = vfio_dma_record_first(rec, 0x3800, 0x3fff);
    g_assert_true(e == c);

    /* Walk everything in IOVA order. */
    e = vfio_dma_record_first(rec, 0, UINT64_MAX);
    g_assert_true(e == a);
    e = vfio_dma_record_next(e, 0, UINT64_MAX);
    g_assert_true(e == b);
    e = vfio_dma_record_next(e, 0, UINT64_MAX);
    g_assert_true(e == wide);
    e = vfio_dma_record_next(e, 0, UINT64_MAX);
    g_assert_true(e == c);
    g_assert_null(vfio_dma_record_next(e, 0, UINT64_MAX));

    /* A walk may remove the entry it is at, as region_del does. */
    for (e = vfio_dma_record_first(rec, 0, UINT64_MAX); e; e = next) {
        next = vfio_dma_record_next(e, 0, UINT64_MAX);
        if (e->state == MAPPED) {
            vfio_dma_record_remove(rec, e);
        }
    }
    g_assert_cmpuint(count_state(rec, MAPPED), ==, 0);
    e = vfio_dma_record_first(rec, 0, UINT64_MAX);
    g_assert_true(e == b);
    e = vfio_dma_record_next(e, 0, UINT64_MAX);
    g_assert_true(e == wide);
    g_assert_null(vfio_dma_record_next(e, 0, UINT64_MAX));
}

static void test_record_collect_section(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    g_autoptr(GPtrArray) got = NULL;
    /* BAR 2 mapped twice (an alias), and an overlapping foreign key. */
    VFIODMASectionId low = { MR(mr_ram), 0, 0x9ffff };
    VFIODMASectionId high = { MR(mr_ram), 0x100000, 0x7fffffff };
    VFIODMASectionId bar_a = { MR(mr_bar2), 0xfe000000, 0xfe0fffff };
    VFIODMASectionId bar_b = { MR(mr_bar2), 0xfe100000, 0xfe1fffff };
    VFIODMASectionId other = { MR(mr_bar0), 0xfe080000, 0xfe17ffff };
    VFIODMASectionId bogus = { MR(mr_ram), 0x10000, 0x9ffff };
    /* Another region at the same address as BAR 2 (a stale section). */
    VFIODMASectionId same_start = { MR(mr_bar0), 0xfe000000, 0xfe000fff };
    VFIODMAEntry *head, *mid, *tail;
    int i;

    for (i = 0; i < 10; i++) {
        add_entry(rec, i * 0x10000, i * 0x10000 + 0xffff, &low,
                  MAPPED, "guest RAM");
        add_entry(rec, 0x100000 + i * 0x100000, 0x100000 + i * 0x100000 +
                  0xfffff, &high, MAPPED, "guest RAM");
        add_entry(rec, 0xfe100000 + i * 0x10000,
                  0xfe100000 + i * 0x10000 + 0xffff, &bar_b,
                  MAPPED, "BAR 2 alias");
    }
    add_entry(rec, 0xfe080000, 0xfe17ffff, &other, FAILED, "BAR 0");
    head = add_entry(rec, 0xfe000000, 0xfe000fff, &bar_a, SKIPPED,
                     "BAR 2");
    mid = add_entry(rec, 0xfe010000, 0xfe0effff, &bar_a, MAPPED,
                    "BAR 2");
    tail = add_entry(rec, 0xfe0ff000, 0xfe0fffff, &bar_a, SKIPPED,
                     "BAR 2");

    add_entry(rec, 0xfe000000, 0xfe000fff, &same_start, MAPPED,
              "stale");

    got = collect_section(rec, &bar_a);
    g_assert_cmpuint(got->len, ==, 3);
    g_assert_true(g_ptr_array_index(got, 0) == head);
    g_assert_true(g_ptr_array_index(got, 1) == mid);
    g_assert_true(g_ptr_array_index(got, 2) == tail);
    g_ptr_array_unref(got);

    got = collect_section(rec, &bar_b);
    g_assert_cmpuint(got->len, ==, 10);
    for (i = 0; i < 10; i++) {
        VFIODMAEntry *e = g_ptr_array_index(got, i);

        g_assert_cmphex(vfio_dma_entry_first(e), ==,
                        0xfe100000 + i * 0x10000);
        g_assert_true(e->section.mr == MR(mr_bar2));
        g_assert_cmphex(e->section.first, ==, 0xfe100000);
    }
    /* Remove them as region_del would. */
    for (i = 0; i < got->len; i++) {
        vfio_dma_record_remove(rec, g_ptr_array_index(got, i));
    }
    g_ptr_array_unref(got);
    got = collect_section(rec, &bar_b);
    g_assert_cmpuint(got->len, ==, 0);
    g_ptr_array_unref(got);

    got = collect_section(rec, &other);
    g_assert_cmpuint(got->len, ==, 1);
    g_assert_cmpstr(((VFIODMAEntry *)g_ptr_array_index(got, 0))->name, ==,
                    "BAR 0");
    g_ptr_array_unref(got);

    got = collect_section(rec, &low);
    g_assert_cmpuint(got->len, ==, 10);
    g_ptr_array_unref(got);

    /* Another key at the same start: only its own entry. */
    got = collect_section(rec, &same_start);
    g_assert_cmpuint(got->len, ==, 1);
    g_assert_cmpstr(((VFIODMAEntry *)g_ptr_array_index(got, 0))->name, ==,
                    "stale");
    g_ptr_array_unref(got);

    /* Same key, unknown start: nothing. */
    got = collect_section(rec, &bogus);
    g_assert_cmpuint(got->len, ==, 0);
    g_assert_cmpuint(count_state(rec, STATE_ANY), ==,
                     10 + 10 + 1 + 3 + 1);
}

static void test_record_counters(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    VFIODMASectionId sec = { MR(mr_ram), 0, 0xffffffff };
    VFIODMAEntry *m1, *m2, *s, *f;
    VfioDmaMappingState st;

    for (st = 0; st <= STATE_ANY; st++) {
        g_assert_cmpuint(count_state(rec, st), ==, 0);
        assert_int128(bytes_state(rec, st), 0, 0);
    }

    m1 = add_entry(rec, 0x0, 0xfffff, &sec, MAPPED, "guest RAM");
    m2 = add_entry(rec, 0x100000, 0x100fff, &sec, MAPPED, "ram");
    s = add_entry(rec, 0x200000, 0x2007ff, &sec, SKIPPED, "skip");
    f = add_entry(rec, 0x300000, 0x30ffff, &sec, FAILED, "fail");
    g_assert_cmpint(f->error, ==, EINVAL);

    g_assert_cmpuint(count_state(rec, MAPPED), ==, 2);
    g_assert_cmpuint(count_state(rec, SKIPPED), ==, 1);
    g_assert_cmpuint(count_state(rec, FAILED), ==, 1);
    g_assert_cmpuint(count_state(rec, STATE_ANY), ==, 4);
    assert_int128(bytes_state(rec, MAPPED), 0, 0x101000);
    assert_int128(bytes_state(rec, SKIPPED), 0, 0x800);
    assert_int128(bytes_state(rec, FAILED), 0, 0x10000);
    assert_int128(bytes_state(rec, STATE_ANY), 0,
                  0x101000 + 0x800 + 0x10000);

    vfio_dma_record_remove(rec, m2);
    g_assert_cmpuint(count_state(rec, MAPPED), ==, 1);
    assert_int128(bytes_state(rec, MAPPED), 0, 0x100000);
    vfio_dma_record_remove(rec, s);
    g_assert_cmpuint(count_state(rec, SKIPPED), ==, 0);
    assert_int128(bytes_state(rec, SKIPPED), 0, 0);
    vfio_dma_record_remove(rec, f);
    g_assert_cmpuint(count_state(rec, FAILED), ==, 0);
    assert_int128(bytes_state(rec, FAILED), 0, 0);
    g_assert_cmpuint(count_state(rec, STATE_ANY), ==, 1);
    vfio_dma_record_remove(rec, m1);
    g_assert_cmpuint(count_state(rec, STATE_ANY), ==, 0);
    assert_int128(bytes_state(rec, STATE_ANY), 0, 0);
    g_assert_null(vfio_dma_record_first(rec, 0, UINT64_MAX));
}

static void test_record_whole_space(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    g_autoptr(GPtrArray) got = NULL;
    VFIODMASectionId all = { MR(mr_ram), 0, UINT64_MAX };
    VFIODMASectionId top = { MR(mr_bar0), TOP_64K, UINT64_MAX };
    VFIODMAEntry *big, *small;

    big = add_entry(rec, 0, UINT64_MAX, &all, MAPPED, "everything");
    assert_int128(entry_size(big), 1, 0);
    assert_int128(bytes_state(rec, MAPPED), 1, 0);
    g_assert_true(vfio_dma_record_first(rec, 0, 0) == big);
    g_assert_true(vfio_dma_record_first(rec, UINT64_MAX, UINT64_MAX) == big);
    g_assert_true(vfio_dma_record_first(rec, 0x12345678, 0x12345678) == big);

    small = add_entry(rec, TOP_64K, UINT64_MAX, &top, SKIPPED,
                      "top");
    assert_int128(bytes_state(rec, STATE_ANY), 1,
                  0x10000);

    got = collect_section(rec, &all);
    g_assert_cmpuint(got->len, ==, 1);
    g_assert_true(g_ptr_array_index(got, 0) == big);
    g_ptr_array_unref(got);
    got = collect_section(rec, &top);
    g_assert_cmpuint(got->len, ==, 1);
    g_assert_true(g_ptr_array_index(got, 0) == small);

    vfio_dma_record_remove(rec, big);
    assert_int128(bytes_state(rec, STATE_ANY), 0,
                  0x10000);
    g_assert_null(vfio_dma_record_first(rec, 0, TOP_64K - 1));
    g_assert_true(vfio_dma_record_first(rec, UINT64_MAX, UINT64_MAX) ==
                  small);
}

/* The whole-section entries region_del finds without a search */
static void test_record_section(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    VFIODMASectionId secs[VFIO_DMA_RECORD_RECENT + 2];
    VFIODMASectionId piece = { MR(mr_bar2), 0xfd000000, 0xfd0fffff };
    VFIODMASectionId wrong = { MR(mr_bar0), 0xfe000000, 0xfe00ffff };
    VFIODMAEntry *e[VFIO_DMA_RECORD_RECENT + 2], *p, *found;
    int i;

    for (i = 0; i < ARRAY_SIZE(secs); i++) {
        secs[i] = (VFIODMASectionId) {
            MR(mr_many[i % 3]), 0xfe000000 + i * 0x100000,
            0xfe000000 + i * 0x100000 + 0xfffff,
        };
        e[i] = add_entry(rec, secs[i].first, secs[i].last, &secs[i], MAPPED,
                         NULL);
    }
    /* The last few are found; the older ones only by a search */
    for (i = 0; i < ARRAY_SIZE(secs); i++) {
        found = vfio_dma_record_section(rec, &secs[i]);
        if (i < ARRAY_SIZE(secs) - VFIO_DMA_RECORD_RECENT) {
            g_assert_null(found);
            g_assert_true(vfio_dma_record_first(rec, secs[i].first,
                                                secs[i].last) == e[i]);
        } else {
            g_assert_true(found == e[i]);
        }
    }
    /* Not another region's, at the same address */
    wrong.first = secs[ARRAY_SIZE(secs) - 1].first;
    wrong.last = secs[ARRAY_SIZE(secs) - 1].last;
    g_assert_null(vfio_dma_record_section(rec, &wrong));
    /* Not a piece of a section */
    p = add_entry(rec, piece.first + 0x1000, piece.last, &piece, MAPPED,
                  NULL);
    g_assert_null(vfio_dma_record_section(rec, &piece));
    vfio_dma_record_remove(rec, p);
    /* Not once removed, though the entry is kept for reuse */
    i = ARRAY_SIZE(secs) - 1;
    vfio_dma_record_remove(rec, e[i]);
    g_assert_null(vfio_dma_record_section(rec, &secs[i]));
    /* Nor once detached from its section (a failed unmap) */
    i--;
    e[i]->section.mr = NULL;
    e[i]->name = g_strdup("stale");
    g_assert_null(vfio_dma_record_section(rec, &secs[i]));
    /* Reused for the same section again, it is found again */
    i++;
    e[i] = add_entry(rec, secs[i].first, secs[i].last, &secs[i], SKIPPED,
                     NULL);
    g_assert_true(vfio_dma_record_section(rec, &secs[i]) == e[i]);
    /*
     * Entries kept for reuse and entries freed (more than are kept) are
     * not found; under ASan, nothing freed is read.
     */
    for (i = 0; i < VFIO_DMA_RECORD_SPARE + ARRAY_SIZE(secs); i++) {
        VFIODMASectionId s = { MR(mr_ram), i * 0x1000ULL,
                               i * 0x1000ULL + 0xfff };

        add_entry(rec, s.first, s.last, &s, MAPPED, "named");
    }
    while ((p = vfio_dma_record_first(rec, 0, UINT64_MAX))) {
        vfio_dma_record_remove(rec, p);
    }
    for (i = 0; i < VFIO_DMA_RECORD_SPARE + ARRAY_SIZE(secs); i++) {
        VFIODMASectionId s = { MR(mr_ram), i * 0x1000ULL,
                               i * 0x1000ULL + 0xfff };

        g_assert_null(vfio_dma_record_section(rec, &s));
    }
    for (i = 0; i < ARRAY_SIZE(secs); i++) {
        g_assert_null(vfio_dma_record_section(rec, &secs[i]));
    }
}

#define N_MANY 10000

/* 10,000 entries: 2,500 sections of four entries each, 1 MiB apart. */
static void test_record_many(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    g_autofree VFIODMAEntry **entries = g_new(VFIODMAEntry *, N_MANY);
    g_autoptr(GPtrArray) got = NULL;
    uint64_t count[STATE_ANY] = { 0 };
    VFIODMASectionId sec;
    VFIODMAEntry *e;
    int i, n;

    /* Insert in a scrambled order (7919 is prime, coprime to N_MANY). */
    for (n = 0; n < N_MANY; n++) {
        g_autofree char *name = NULL;
        VfioDmaMappingState st;
        uint64_t first;

        i = (int)(((uint64_t)n * 7919) % N_MANY);
        sec = (VFIODMASectionId) {
            .mr = MR(mr_many[(i / 4) % 3]),
            .first = (uint64_t)(i / 4) << 20,
            .last = ((uint64_t)(i / 4) << 20) + 0xfffff,
        };
        first = sec.first + (i % 4) * 0x40000;
        st = i % 4 == 3 ? SKIPPED : i % 7 == 0 ? FAILED
                                                         : MAPPED;
        name = g_strdup_printf("entry %d", i);
        entries[i] = add_entry(rec, first, first + 0x3ffff, &sec, st, name);
        count[st]++;
    }

    g_assert_cmpuint(count_state(rec, STATE_ANY), ==,
                     N_MANY);
    g_assert_cmpuint(count_state(rec, MAPPED), ==,
                     count[MAPPED]);
    g_assert_cmpuint(count_state(rec, SKIPPED), ==,
                     N_MANY / 4);
    g_assert_cmpuint(count_state(rec, FAILED), ==,
                     count[FAILED]);
    g_assert_cmpuint(count[FAILED], >, 0);
    assert_int128(bytes_state(rec, STATE_ANY), 0,
                  (uint64_t)N_MANY * 0x40000);

    /* Every entry is found by any of its addresses, and is alone there. */
    for (i = 0; i < N_MANY; i++) {
        uint64_t addr = ((uint64_t)i << 18) + (i % 0x40000);

        e = vfio_dma_record_first(rec, addr, addr);
        g_assert_true(e == entries[i]);
        g_assert_null(vfio_dma_record_next(e, addr, addr));
    }

    /* A walk visits them all in order. */
    e = vfio_dma_record_first(rec, 0, UINT64_MAX);
    for (i = 0; i < N_MANY; i++) {
        g_assert_true(e == entries[i]);
        e = vfio_dma_record_next(e, 0, UINT64_MAX);
    }
    g_assert_null(e);

    /* One section among 2,500. */
    sec = (VFIODMASectionId) { MR(mr_many[1234 % 3]), 1234ULL << 20,
                               (1234ULL << 20) + 0xfffff };
    got = collect_section(rec, &sec);
    g_assert_cmpuint(got->len, ==, 4);
    for (i = 0; i < 4; i++) {
        g_assert_true(g_ptr_array_index(got, i) == entries[1234 * 4 + i]);
    }

    /* Remove every odd entry; the rest is still found, the holes are. */
    for (i = 1; i < N_MANY; i += 2) {
        vfio_dma_record_remove(rec, entries[i]);
    }
    g_assert_cmpuint(count_state(rec, STATE_ANY), ==,
                     N_MANY / 2);
    g_assert_cmpuint(count_state(rec, SKIPPED), ==, 0);
    assert_int128(bytes_state(rec, STATE_ANY), 0,
                  (uint64_t)N_MANY / 2 * 0x40000);
    for (i = 0; i < N_MANY; i++) {
        uint64_t addr = ((uint64_t)i << 18) + 0x1000;

        e = vfio_dma_record_first(rec, addr, addr);
        if (i % 2) {
            g_assert_null(e);
        } else {
            g_assert_true(e == entries[i]);
        }
    }
    /* A query over removed neighbours finds the survivors in order. */
    e = vfio_dma_record_first(rec, 101ULL << 18, (110ULL << 18) - 1);
    for (i = 102; i < 110; i += 2) {
        g_assert_true(e == entries[i]);
        e = vfio_dma_record_next(e, 101ULL << 18, (110ULL << 18) - 1);
    }
    g_assert_null(e);
}

/* Random overlapping entries and queries against a plain list. */
static void test_record_random(void)
{
    g_autoptr(VFIODMARecord) rec = vfio_dma_record_new();
    g_autoptr(GPtrArray) live = g_ptr_array_new();
    VFIODMASectionId sec = { MR(mr_ram), 0, 0xfffff };
    int round, q;

    for (round = 0; round < 2000; round++) {
        if (live->len && g_test_rand_int_range(0, 3) == 0) {
            int k = g_test_rand_int_range(0, live->len);

            vfio_dma_record_remove(rec, g_ptr_array_index(live, k));
            g_ptr_array_remove_index_fast(live, k);
        } else {
            uint64_t first = g_test_rand_int_range(0, 0xf0000);
            uint64_t len = g_test_rand_int_range(1, 0x8000);

            g_ptr_array_add(live, add_entry(rec, first, first + len - 1,
                                            &sec, MAPPED, "r"));
        }
    }
    g_assert_cmpuint(count_state(rec, MAPPED), ==,
                     live->len);

    for (q = 0; q < 500; q++) {
        uint64_t first = g_test_rand_int_range(0, 0x100000);
        uint64_t last = first + g_test_rand_int_range(0, 0x4000);
        guint expected = 0, i;
        uint64_t prev = 0;
        VFIODMAEntry *e;

        for (i = 0; i < live->len; i++) {
            VFIODMAEntry *l = g_ptr_array_index(live, i);

            if (vfio_dma_entry_first(l) <= last &&
                vfio_dma_entry_last(l) >= first) {
                expected++;
            }
        }
        i = 0;
        for (e = vfio_dma_record_first(rec, first, last); e;
             e = vfio_dma_record_next(e, first, last)) {
            g_assert_cmphex(vfio_dma_entry_first(e), <=, last);
            g_assert_cmphex(vfio_dma_entry_last(e), >=, first);
            g_assert_cmphex(vfio_dma_entry_first(e), >=, prev);
            g_assert_true(g_ptr_array_find(live, e, NULL));
            prev = vfio_dma_entry_first(e);
            i++;
        }
        g_assert_cmpuint(i, ==, expected);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/vfio/dma-range/trim/top-of-space",
                    test_trim_top_of_space);
    g_test_add_func("/vfio/dma-range/trim/whole-space",
                    test_trim_whole_space);
    g_test_add_func("/vfio/dma-range/trim/sub-granule",
                    test_trim_sub_granule);
    g_test_add_func("/vfio/dma-range/trim/aligned", test_trim_aligned);
    g_test_add_func("/vfio/dma-range/trim/head-tail", test_trim_head_tail);
    g_test_add_func("/vfio/dma-range/split/inside", test_split_inside);
    g_test_add_func("/vfio/dma-range/split/outside", test_split_outside);
    g_test_add_func("/vfio/dma-range/split/one-hole", test_split_one_hole);
    g_test_add_func("/vfio/dma-range/split/several-holes",
                    test_split_several_holes);
    g_test_add_func("/vfio/dma-range/split/unaligned-usable",
                    test_split_unaligned_usable);
    g_test_add_func("/vfio/dma-range/split/random", test_split_random);
    g_test_add_func("/vfio/dma-record/insert-lookup-remove",
                    test_record_insert_lookup_remove);
    g_test_add_func("/vfio/dma-record/overlap", test_record_overlap);
    g_test_add_func("/vfio/dma-record/collect-section",
                    test_record_collect_section);
    g_test_add_func("/vfio/dma-record/counters", test_record_counters);
    g_test_add_func("/vfio/dma-record/whole-space", test_record_whole_space);
    g_test_add_func("/vfio/dma-record/section", test_record_section);
    g_test_add_func("/vfio/dma-record/many", test_record_many);
    g_test_add_func("/vfio/dma-record/random", test_record_random);

    return g_test_run();
}
