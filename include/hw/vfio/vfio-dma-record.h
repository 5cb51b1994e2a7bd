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

/*
 * A VFIODMARecord remembers, per container, every IOVA range the memory
 * listener dealt with: what it mapped into the host IOMMU, what it chose
 * not to map and why, and what the kernel refused.  Removing a section
 * then unmaps exactly what was mapped for it, and introspection can tell
 * the user which guest-physical ranges are not reachable by DMA.
 *
 * The record is not thread-safe: callers serialise on the BQL, like the
 * memory listener does.  The module uses no target-specific headers so
 * that it can be linked into unit tests.
 */

/**
 * VFIODMAState: what happened to a recorded IOVA range
 *
 * @VFIO_DMA_MAPPED: the DMA map call succeeded; the range must be
 *     unmapped when its section goes away.
 * @VFIO_DMA_SKIPPED: no DMA map call was attempted; see #VFIODMASkipReason.
 * @VFIO_DMA_FAILED: the DMA map call failed with the entry's errno (or
 *     would have, e.g. ENOSPC with the container's DMA entries all used).
 * @VFIO_DMA_STATE__MAX: number of states.
 */
typedef enum VFIODMAState {
    VFIO_DMA_MAPPED,
    VFIO_DMA_SKIPPED,
    VFIO_DMA_FAILED,
    VFIO_DMA_STATE__MAX,
} VFIODMAState;

/**
 * VFIODMASkipReason: why a range was not mapped
 *
 * @VFIO_DMA_SKIP_NONE: not skipped (the state of the entry is not
 *     %VFIO_DMA_SKIPPED, or the range piece is to be mapped).
 * @VFIO_DMA_SKIP_UNALIGNED: the range is not aligned to the mapping
 *     granule (IOMMU minimum page or host page).
 * @VFIO_DMA_SKIP_OUTSIDE_IOVA: the range lies outside the usable IOVA
 *     ranges reported by the host IOMMU.
 * @VFIO_DMA_SKIP_NO_PAGE_SIZE: the host IOMMU reported no page size.
 * @VFIO_DMA_SKIP__MAX: number of reasons.
 */
typedef enum VFIODMASkipReason {
    VFIO_DMA_SKIP_NONE,
    VFIO_DMA_SKIP_UNALIGNED,
    VFIO_DMA_SKIP_OUTSIDE_IOVA,
    VFIO_DMA_SKIP_NO_PAGE_SIZE,
    VFIO_DMA_SKIP__MAX,
} VFIODMASkipReason;

/**
 * VFIODMASectionId: identity of the memory section an entry came from
 *
 * @key: opaque key, the section's MemoryRegion; never dereferenced.
 * @first: first guest-physical address of the section.
 * @last: last guest-physical address of the section (inclusive, so that
 *     a section reaching 2^64 is representable).
 */
typedef struct VFIODMASectionId {
    const void *key;
    uint64_t first;
    uint64_t last;
} VFIODMASectionId;

/**
 * VFIODMAEntry: one recorded IOVA range
 *
 * @node: interval tree node; @node.start and @node.last are the first and
 *     last IOVA of the range (inclusive).  Read them with
 *     vfio_dma_entry_first() and vfio_dma_entry_last(), never write them.
 * @state: what happened to the range.
 * @reason: why it was skipped; %VFIO_DMA_SKIP_NONE unless @state is
 *     %VFIO_DMA_SKIPPED.
 * @error: positive errno of the failed map call; 0 unless @state is
 *     %VFIO_DMA_FAILED.
 * @readonly: the range is (or would be) mapped read-only.
 * @ram_device: the range is backed by a RAM device (e.g. an mmap'ed device
 *     BAR) rather than guest RAM.
 * @vaddr: host virtual address of the first byte of the range.
 * @section: the memory section the range belongs to; the IOVA range lies
 *     within [@section.first, @section.last].
 * @name: display name of what backs the range, owned by the entry.
 *
 * The fields other than @node may be set between vfio_dma_entry_new() and
 * vfio_dma_record_insert(); once inserted, an entry must not be modified
 * (the record's counters depend on its state and range).
 */
typedef struct VFIODMAEntry {
    IntervalTreeNode node;
    VFIODMAState state;
    VFIODMASkipReason reason;
    int error;
    bool readonly;
    bool ram_device;
    void *vaddr;
    VFIODMASectionId section;
    char *name;
} VFIODMAEntry;

typedef struct VFIODMARecord VFIODMARecord;

/**
 * VFIODMARecordFunc: callback of vfio_dma_record_foreach()
 *
 * @entry: the current entry; the callback may remove it with
 *     vfio_dma_record_remove(), but must not remove or insert any other.
 * @opaque: the caller's data.
 *
 * Returns: 0 to continue, any other value to stop the walk and make
 * vfio_dma_record_foreach() return it.
 */
typedef int (*VFIODMARecordFunc)(VFIODMAEntry *entry, void *opaque);

/**
 * vfio_dma_state_str: name of a #VFIODMAState, e.g. "mapped"
 *
 * @state: the state.
 */
const char *vfio_dma_state_str(VFIODMAState state);

/**
 * vfio_dma_skip_reason_str: name of a #VFIODMASkipReason, e.g. "unaligned"
 *
 * @reason: the reason.
 */
const char *vfio_dma_skip_reason_str(VFIODMASkipReason reason);

/**
 * vfio_dma_entry_new: allocate an entry that is not yet in a record
 *
 * @iova_first: first IOVA of the range.
 * @iova_last: last IOVA of the range, inclusive; >= @iova_first.
 * @section: the section the range belongs to; the range must lie within
 *     its guest-physical range.
 * @name: display name of the backing memory, copied.
 *
 * The entry starts as %VFIO_DMA_MAPPED, not read-only, guest RAM, with a
 * NULL @vaddr; the caller sets the other fields before inserting it.
 *
 * Returns: the new entry; free it with vfio_dma_entry_free() unless it is
 * handed to vfio_dma_record_insert().
 */
VFIODMAEntry *vfio_dma_entry_new(uint64_t iova_first, uint64_t iova_last,
                                 const VFIODMASectionId *section,
                                 const char *name);

/**
 * vfio_dma_entry_free: free an entry that is not in a record
 *
 * @entry: the entry, or NULL.
 */
void vfio_dma_entry_free(VFIODMAEntry *entry);

/**
 * vfio_dma_entry_first: first IOVA of an entry
 *
 * @entry: the entry.
 */
static inline uint64_t vfio_dma_entry_first(const VFIODMAEntry *entry)
{
    return entry->node.start;
}

/**
 * vfio_dma_entry_last: last IOVA of an entry (inclusive)
 *
 * @entry: the entry.
 */
static inline uint64_t vfio_dma_entry_last(const VFIODMAEntry *entry)
{
    return entry->node.last;
}

/**
 * vfio_dma_entry_size: size in bytes of an entry's IOVA range
 *
 * @entry: the entry.
 *
 * Returns: the size, up to 2^64 for an entry covering [0, UINT64_MAX].
 */
static inline Int128 vfio_dma_entry_size(const VFIODMAEntry *entry)
{
    return int128_add(int128_make64(entry->node.last - entry->node.start),
                      int128_one());
}

/**
 * vfio_dma_entry_footprint: memory used by an entry
 *
 * @entry: the entry.
 *
 * Returns: sizeof(VFIODMAEntry) plus the size of its name including the
 * terminating NUL; the allocator's own overhead is not counted.
 */
size_t vfio_dma_entry_footprint(const VFIODMAEntry *entry);

/**
 * vfio_dma_record_new: create an empty record
 *
 * Returns: the record; free it with vfio_dma_record_free().
 */
VFIODMARecord *vfio_dma_record_new(void);

/**
 * vfio_dma_record_free: free a record and all its entries
 *
 * @rec: the record, or NULL.
 *
 * Nothing is unmapped: the caller unmaps the %VFIO_DMA_MAPPED entries
 * first if the mappings are to go away.
 */
void vfio_dma_record_free(VFIODMARecord *rec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VFIODMARecord, vfio_dma_record_free)

/**
 * vfio_dma_record_insert: add an entry to a record, in O(log n)
 *
 * @rec: the record.
 * @entry: an entry from vfio_dma_entry_new(), not in any record; the
 *     record takes ownership of it.
 *
 * Entries may overlap each other; the record does not merge or check
 * them.  @entry must be consistent: @reason set exactly when the state is
 * %VFIO_DMA_SKIPPED, a positive @error exactly when it is
 * %VFIO_DMA_FAILED.
 */
void vfio_dma_record_insert(VFIODMARecord *rec, VFIODMAEntry *entry);

/**
 * vfio_dma_record_remove: remove an entry from a record and free it,
 * in O(log n)
 *
 * @rec: the record.
 * @entry: an entry of @rec.
 */
void vfio_dma_record_remove(VFIODMARecord *rec, VFIODMAEntry *entry);

/**
 * vfio_dma_record_first: first entry overlapping an IOVA range
 *
 * @rec: the record.
 * @first: first IOVA of the range.
 * @last: last IOVA of the range, inclusive.
 *
 * Overlapping entries are visited in ascending order of their first IOVA
 * with vfio_dma_record_first() and vfio_dma_record_next(); finding each
 * one costs O(log n).
 *
 * Returns: the overlapping entry with the lowest first IOVA, or NULL.
 */
VFIODMAEntry *vfio_dma_record_first(VFIODMARecord *rec,
                                    uint64_t first, uint64_t last);

/**
 * vfio_dma_record_next: next entry overlapping an IOVA range
 *
 * @entry: an entry returned by vfio_dma_record_first() or
 *     vfio_dma_record_next() with the same @first and @last.
 * @first: first IOVA of the range.
 * @last: last IOVA of the range, inclusive.
 *
 * Returns: the next overlapping entry in IOVA order, or NULL.
 */
VFIODMAEntry *vfio_dma_record_next(VFIODMAEntry *entry,
                                   uint64_t first, uint64_t last);

/**
 * vfio_dma_record_foreach_range: call a function on each entry
 * overlapping an IOVA range, in IOVA order
 *
 * @rec: the record.
 * @first: first IOVA of the range.
 * @last: last IOVA of the range, inclusive.
 * @fn: the function; it may remove the entry it is given.
 * @opaque: passed to @fn.
 *
 * Returns: 0 if @fn returned 0 for every entry, else the first non-zero
 * value @fn returned (the walk stops there).
 */
int vfio_dma_record_foreach_range(VFIODMARecord *rec,
                                  uint64_t first, uint64_t last,
                                  VFIODMARecordFunc fn, void *opaque);

/**
 * vfio_dma_record_foreach: call a function on every entry, in IOVA order
 *
 * @rec: the record.
 * @fn: the function; it may remove the entry it is given.
 * @opaque: passed to @fn.
 *
 * Returns: as vfio_dma_record_foreach_range().
 */
int vfio_dma_record_foreach(VFIODMARecord *rec, VFIODMARecordFunc fn,
                            void *opaque);

/**
 * vfio_dma_record_collect_section: the entries of one memory section
 *
 * @rec: the record.
 * @section: the section; entries match on @section->key and
 *     @section->first, and are searched for within
 *     [@section->first, @section->last] of IOVA space, where the entries
 *     of that section lie.
 *
 * The cost is O(log n) per entry overlapping the section's range.  This
 * is what a listener's region_del uses: it unmaps the %VFIO_DMA_MAPPED
 * entries it gets and removes them all.
 *
 * Returns: a new array of the matching entries (borrowed: they stay in
 * @rec) in IOVA order, possibly empty; free it with g_ptr_array_unref().
 */
GPtrArray *vfio_dma_record_collect_section(VFIODMARecord *rec,
                                           const VFIODMASectionId *section);

/**
 * vfio_dma_record_count: number of entries in a state, in O(1)
 *
 * @rec: the record.
 * @state: the state, or %VFIO_DMA_STATE__MAX for all entries.
 */
uint64_t vfio_dma_record_count(const VFIODMARecord *rec, VFIODMAState state);

/**
 * vfio_dma_record_bytes: total size of the entries in a state, in O(1)
 *
 * @rec: the record.
 * @state: the state, or %VFIO_DMA_STATE__MAX for all entries.
 *
 * The sums are kept exactly as 128-bit integers, updated on insert and
 * remove, so that entries as large as 2^64 bytes are counted correctly.
 * Overlapping entries are counted once each.
 */
Int128 vfio_dma_record_bytes(const VFIODMARecord *rec, VFIODMAState state);

/**
 * vfio_dma_record_bytes_sat: vfio_dma_record_bytes() saturated to 64 bits
 *
 * @rec: the record.
 * @state: the state, or %VFIO_DMA_STATE__MAX for all entries.
 *
 * Returns: the total, or UINT64_MAX if it is 2^64 or more.
 */
uint64_t vfio_dma_record_bytes_sat(const VFIODMARecord *rec,
                                   VFIODMAState state);

/**
 * vfio_dma_record_footprint: memory used by a record, in O(1)
 *
 * @rec: the record.
 *
 * Returns: the size of the record itself plus vfio_dma_entry_footprint()
 * of each of its entries.
 */
size_t vfio_dma_record_footprint(const VFIODMARecord *rec);

/*
 * Range arithmetic.  Pure functions on IOVA / guest-physical ranges;
 * inclusive bounds are used wherever a range may end at UINT64_MAX.
 */

/**
 * vfio_dma_pgsize_min: smallest page size of a page-size bitmap
 *
 * @pgsizes: bitmap of supported page sizes (bit n set: 2^n bytes).
 *
 * Returns: the smallest page size in @pgsizes, or 0 if @pgsizes is 0.
 */
uint64_t vfio_dma_pgsize_min(uint64_t pgsizes);

/**
 * vfio_dma_ram_device_granule: mapping granule for a RAM device section
 *
 * @pgsizes: the host IOMMU's page-size bitmap.
 * @host_page_size: the host page size, a power of two.
 * @fallback: set to true if @pgsizes is 0 and the host page size was used
 *     instead, so that the caller can warn (once); set to false otherwise.
 *     May be NULL.
 *
 * Returns: the larger of the IOMMU's minimum page size and
 * @host_page_size, or @host_page_size when @pgsizes is 0; always a power
 * of two.
 */
uint64_t vfio_dma_ram_device_granule(uint64_t pgsizes,
                                     uint64_t host_page_size,
                                     bool *fallback);

/**
 * vfio_dma_range_trim: shrink a range inward to a granule
 *
 * @start: first address of the range.
 * @size: size of the range; start + size must not exceed 2^64 (a size of
 *     2^64 at @start 0 is allowed).
 * @granule: a power of two.
 * @out: set to [ROUND_UP(@start), ROUND_DOWN(@start + @size) - 1], or to
 *     the empty range if no aligned granule fits in the range.
 *
 * The range never grows: only whole granules inside it are kept.
 *
 * Returns: true if @out is not empty.
 */
bool vfio_dma_range_trim(uint64_t start, Int128 size, uint64_t granule,
                         Range *out);

/**
 * VFIODMAPiece: one piece of a range split by vfio_dma_range_split()
 *
 * @range: the piece, never empty.
 * @skip: %VFIO_DMA_SKIP_NONE for a piece to map (inside a usable IOVA
 *     range and aligned to the granule), %VFIO_DMA_SKIP_OUTSIDE_IOVA for a
 *     piece outside every usable IOVA range, %VFIO_DMA_SKIP_UNALIGNED for a
 *     piece inside a usable range that is cut off by aligning to the
 *     granule.
 */
typedef struct VFIODMAPiece {
    Range range;
    VFIODMASkipReason skip;
} VFIODMAPiece;

/**
 * vfio_dma_range_split: split a range against the usable IOVA ranges
 *
 * @range: the range to split, not empty (normally the result of
 *     vfio_dma_range_trim()).
 * @iova_ranges: the usable IOVA ranges, a GList of #Range sorted by
 *     address (as the container's iova_ranges, built with
 *     range_list_insert()); touching ranges are merged.  NULL means that
 *     the whole 64-bit space is usable.
 * @granule: a power of two; the pieces to map are trimmed to it.
 * @pieces: a GArray of #VFIODMAPiece to which the pieces are appended in
 *     ascending address order.  They are disjoint and together cover
 *     @range exactly.
 */
void vfio_dma_range_split(const Range *range, GList *iova_ranges,
                          uint64_t granule, GArray *pieces);

/**
 * vfio_dma_range_complement: the parts of a section not covered by pieces
 *
 * @section: the section's range, not empty.
 * @mapped: the pieces that were mapped, in any order, possibly
 *     overlapping or reaching outside @section; empty ones are ignored.
 * @n_mapped: number of elements of @mapped (may be 0, @mapped then NULL).
 * @gaps: a GArray of #Range to which the maximal sub-ranges of @section
 *     covered by no piece (the head, the gaps between pieces and the
 *     tail) are appended in ascending order.
 *
 * Returns: the number of ranges appended to @gaps.
 */
unsigned vfio_dma_range_complement(const Range *section, const Range *mapped,
                                   size_t n_mapped, GArray *gaps);

#endif /* HW_VFIO_VFIO_DMA_RECORD_H */
