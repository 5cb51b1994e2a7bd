/*
 * VFIO DMA mapping of memory sections, by record
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/range.h"
#include "hw/vfio/vfio-dma-container.h"
#include "hw/vfio/vfio-dma-map.h"
#include "trace.h"

/*
 * Why part of a device's memory is not DMA-mapped.  Each is reported once
 * per device region (a BAR, however many mmaps it has).
 */
typedef enum VFIODMACause {
    /* not aligned: QEMU emulates a page of it (the MSI-X table) */
    VFIO_DMA_CAUSE_EMULATED_PAGE,
    /* not aligned: smaller than a page */
    VFIO_DMA_CAUSE_SMALL,
    /* not aligned: other memory covers part of it */
    VFIO_DMA_CAUSE_COVERED,
    /* not aligned: QEMU's mmap of it is not aligned like its address */
    VFIO_DMA_CAUSE_VADDR,
    /* not aligned: the guest placed it so */
    VFIO_DMA_CAUSE_PLACED,
    VFIO_DMA_CAUSE_OUTSIDE_IOVA,
    VFIO_DMA_CAUSE_MAP_FAILED,
} VFIODMACause;

typedef struct VFIODMAReportKey {
    const Object *owner;
    const MemoryRegion *region;
    VFIODMACause cause;
} VFIODMAReportKey;

/* A warning being collected until the listener commits */
typedef struct VFIODMAReport {
    VFIODMAReportKey key;
    VFIODevice *vbasedev;
    VFIODMARegion region;
    uint64_t region_addr;       /* guest-physical address of the region */
    GArray *ranges;             /* Range, guest-physical: not mapped */
    uint64_t granule;
    int error;                  /* VFIO_DMA_CAUSE_MAP_FAILED: errno */
    char *covered_by;           /* VFIO_DMA_CAUSE_COVERED: by what */
} VFIODMAReport;

/* A device region looked up lately: QEMU maps the same mmaps again and again */
typedef struct VFIODMACachedRegion {
    const MemoryRegion *mr;     /* the mmap; NULL: unused */
    VFIODevice *vbasedev;
    VFIODMARegion region;
} VFIODMACachedRegion;

#define VFIO_DMA_REGION_CACHE 8

struct VFIODMAReports {
    GHashTable *warned;         /* VFIODMAReportKey: reported already */
    GHashTable *pending;        /* VFIODMAReportKey -> VFIODMAReport */
    unsigned nr_pending;        /* of @pending, checked at every commit */
    VFIODMACachedRegion cache[VFIO_DMA_REGION_CACHE];
    unsigned cache_next;
    unsigned nr_stale;          /* entries left by failed unmaps */
    /* the region of the section being mapped, if not in @cache */
    VFIODMARegion uncached;
    uint64_t pgsizes;           /* the container's, when @granule was set */
    uint64_t granule;           /* see vfio_dma_granule() */
};

static guint vfio_dma_report_key_hash(gconstpointer v)
{
    const VFIODMAReportKey *k = v;

    return g_direct_hash(k->owner) ^ g_direct_hash(k->region) ^ k->cause;
}

static gboolean vfio_dma_report_key_equal(gconstpointer a, gconstpointer b)
{
    const VFIODMAReportKey *ka = a, *kb = b;

    return ka->owner == kb->owner && ka->region == kb->region &&
           ka->cause == kb->cause;
}

static void vfio_dma_report_free(gpointer p)
{
    VFIODMAReport *report = p;

    g_array_unref(report->ranges);
    g_free(report->covered_by);
    g_free(report);
}

void vfio_dma_init(VFIODMAContainer *bcontainer)
{
    VFIODMAReports *reports = g_new0(VFIODMAReports, 1);

    reports->warned = g_hash_table_new_full(vfio_dma_report_key_hash,
                                            vfio_dma_report_key_equal,
                                            g_free, NULL);
    reports->pending = g_hash_table_new_full(vfio_dma_report_key_hash,
                                             vfio_dma_report_key_equal,
                                             NULL, vfio_dma_report_free);
    bcontainer->dma_record = vfio_dma_record_new();
    bcontainer->dma_reports = reports;
}

void vfio_dma_cleanup(VFIODMAContainer *bcontainer)
{
    VFIODMAReports *reports = bcontainer->dma_reports;

    vfio_dma_record_free(bcontainer->dma_record);
    bcontainer->dma_record = NULL;
    if (reports) {
        g_hash_table_unref(reports->warned);
        g_hash_table_unref(reports->pending);
        g_free(reports);
        bcontainer->dma_reports = NULL;
    }
}

/*
 * Describing what backs a range: only when a warning is printed or a
 * query answered, never on the mapping path.
 */

/* The VFIO device whose region @mr maps, and that region, or NULL */
static VFIODevice *vfio_dma_region_of(const MemoryRegion *mr,
                                      VFIODMARegion *region)
{
    Object *owner = memory_region_owner((MemoryRegion *)mr);
    VFIODevice *vbasedev = owner ? vfio_get_vfio_device(owner) : NULL;

    memset(region, 0, sizeof(*region));
    region->mr = mr;
    region->index = -1;
    region->size = memory_region_size((MemoryRegion *)mr);
    range_make_empty(&region->emulated[0]);
    range_make_empty(&region->emulated[1]);
    if (!vbasedev || !vbasedev->ops->vfio_dma_region ||
        !vbasedev->ops->vfio_dma_region(vbasedev, mr, region)) {
        return NULL;
    }
    return vbasedev;
}

/* "vfio-pci 'nic0' (0000:01:00.0)", or "vfio-pci 0000:01:00.0" */
static char *vfio_dma_device_name(VFIODevice *vbasedev)
{
    const char *type = object_get_typename(OBJECT(vbasedev->dev));

    if (vbasedev->dev->id) {
        return g_strdup_printf("%s '%s' (%s)", type, vbasedev->dev->id,
                               vbasedev->name);
    }
    return g_strdup_printf("%s %s", type, vbasedev->name);
}

char *vfio_dma_describe(const MemoryRegion *mr)
{
    VFIODMARegion region;
    VFIODevice *vbasedev = vfio_dma_region_of(mr, &region);
    g_autofree char *dev = NULL;

    if (!memory_region_is_ram_device((MemoryRegion *)mr)) {
        return g_strdup_printf("guest RAM (%s)", memory_region_name(mr));
    }
    if (!vbasedev) {
        return g_strdup(memory_region_name(mr));
    }
    dev = vfio_dma_device_name(vbasedev);
    return g_strdup_printf("%s %s", dev, region.name);
}

/*
 * Warnings: collected per device region and cause while the listener
 * runs, printed when it commits, never twice for the same key.
 */

/*
 * Whether [@first, @last] (offsets in @region) lies within the @page pages
 * that hold what QEMU emulates of it, or with @touch, shares one with it
 */
static bool vfio_dma_by_emulated(const VFIODMARegion *region, uint64_t first,
                                 uint64_t last, uint64_t page, bool touch)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(region->emulated); i++) {
        const Range *e = &region->emulated[i];
        uint64_t lo, hi;

        if (range_is_empty(e)) {
            continue;
        }
        lo = QEMU_ALIGN_DOWN(e->lob, page);
        hi = QEMU_ALIGN_UP(e->upb + 1, page) - 1;
        if (touch ? lo <= last && first <= hi : lo <= first && last <= hi) {
            return true;
        }
    }
    return false;
}

/*
 * The memory region that covers guest-physical @addr instead of @mr, or
 * NULL.  The caller frees the name.
 */
static char *vfio_dma_covered_by(const MemoryRegion *mr, hwaddr addr)
{
    MemoryRegionSection s = memory_region_find(get_system_memory(), addr, 1);
    char *name = NULL;

    if (s.mr) {
        if (s.mr != mr) {
            name = g_strdup(memory_region_name(s.mr));
        }
        memory_region_unref(s.mr);
    }
    return name;
}

/*
 * Why the unaligned piece [@first, @last] of @section is not mapped.
 * Returns false if it is not worth a warning: the rest of a host page
 * that QEMU emulates part of (the MSI-X table), which no setting but
 * moving the table recovers; it stays visible in the record.
 */
static bool vfio_dma_unaligned_cause(MemoryRegionSection *section,
                                     const VFIODMARegion *region,
                                     uint64_t first, uint64_t last,
                                     uint64_t granule, bool vaddr_unaligned,
                                     VFIODMACause *cause, char **covered_by)
{
    /* offsets of the piece, and of @section->mr, in the device region */
    uint64_t start = section->offset_within_address_space;
    uint64_t off = region->offset + section->offset_within_region;
    uint64_t ofirst = off + (first - start);
    uint64_t olast = off + (last - start);
    uint64_t mr_first = start - section->offset_within_region;
    uint64_t mr_last = mr_first + memory_region_size(section->mr) - 1;

    *covered_by = NULL;
    /* before its mmap: a small region is mmapped aligned to its size */
    if (region->size < granule) {
        *cause = VFIO_DMA_CAUSE_SMALL;
        return true;
    }
    if (vaddr_unaligned) {
        *cause = VFIO_DMA_CAUSE_VADDR;
        return true;
    }
    if (vfio_dma_by_emulated(region, ofirst, olast,
                             qemu_real_host_page_size(), false)) {
        return false;
    }
    if (vfio_dma_by_emulated(region, ofirst, olast, granule, true)) {
        *cause = VFIO_DMA_CAUSE_EMULATED_PAGE;
        return true;
    }
    /* other memory in front of the head or the tail of the mmap */
    if (first == start && first > mr_first) {
        *covered_by = vfio_dma_covered_by(section->mr, first - 1);
    }
    if (!*covered_by && last < mr_last &&
        last == start + int128_get64(section->size) - 1) {
        *covered_by = vfio_dma_covered_by(section->mr, last + 1);
    }
    *cause = *covered_by ? VFIO_DMA_CAUSE_COVERED : VFIO_DMA_CAUSE_PLACED;
    return true;
}

static void vfio_dma_report(VFIODMAContainer *bcontainer,
                            MemoryRegionSection *section,
                            VFIODevice *vbasedev, const VFIODMARegion *region,
                            VFIODMACause cause, const Range *range,
                            uint64_t granule, int error, char *covered_by)
{
    VFIODMAReports *reports = bcontainer->dma_reports;
    VFIODMAReportKey key = {
        .owner = memory_region_owner(section->mr),
        .region = region->mr,
        .cause = cause,
    };
    VFIODMAReport *report;

    if (g_hash_table_contains(reports->warned, &key)) {
        g_free(covered_by);
        return;
    }
    report = g_hash_table_lookup(reports->pending, &key);
    if (!report) {
        report = g_new0(VFIODMAReport, 1);
        report->key = key;
        report->vbasedev = vbasedev;
        report->region = *region;
        report->region_addr = section->offset_within_address_space -
                              section->offset_within_region - region->offset;
        report->ranges = g_array_new(false, false, sizeof(Range));
        report->granule = granule;
        report->error = error;
        report->covered_by = covered_by;
        g_hash_table_insert(reports->pending, &report->key, report);
        reports->nr_pending++;
    } else {
        g_free(covered_by);
    }
    g_array_append_val(report->ranges, *range);
}

/* "0xFIRST-0xLAST" after @sep */
static void vfio_dma_append_range(GString *str, const char *sep,
                                  const Range *r)
{
    g_string_append_printf(str, "%s0x%" PRIx64 "-0x%" PRIx64, sep,
                           r->lob, r->upb);
}

/* "0xFIRST-0xLAST, ..." of the usable IOVA ranges */
static char *vfio_dma_iova_ranges_str(VFIODMAContainer *bcontainer)
{
    GString *str = g_string_new(NULL);
    GList *l;

    for (l = bcontainer->iova_ranges; l; l = l->next) {
        vfio_dma_append_range(str, str->len ? ", " : "", l->data);
    }
    return g_string_free(str, false);
}

/* The number of address bits that the usable IOVA ranges end at */
static int vfio_dma_iova_bits(VFIODMAContainer *bcontainer)
{
    GList *last = g_list_last(bcontainer->iova_ranges);

    return last ? 64 - clz64(range_upb(last->data)) : 64;
}

/* Whether @r lies above every usable IOVA */
static bool vfio_dma_above_iova(VFIODMAContainer *bcontainer, const Range *r)
{
    GList *last = g_list_last(bcontainer->iova_ranges);

    return last && r->lob > range_upb(last->data);
}

static void vfio_dma_phys_bits_hint(Error **errp, int bits)
{
    error_append_hint(errp, "Hint: limit the guest's physical address bits"
                      " to %d, so that firmware places BARs below the"
                      " limit: -cpu ...,phys-bits=%d (or"
                      " host-phys-bits-limit=%d), or libvirt's"
                      " <maxphysaddr mode='emulate' bits='%d'/> (with a"
                      " host-passthrough CPU also"
                      " <maxphysaddr mode='passthrough' limit='%d'/>).\n",
                      bits, bits, bits, bits, bits);
}

static void vfio_dma_append_hint(VFIODMAContainer *bcontainer,
                                 VFIODMAReport *report, const char *what,
                                 Error **errp)
{
    g_autofree char *granule = size_to_str(report->granule);
    const Range *first = &g_array_index(report->ranges, Range, 0);
    VFIODevice *vbasedev = report->vbasedev;

    switch (report->key.cause) {
    case VFIO_DMA_CAUSE_EMULATED_PAGE:
        if (vbasedev && vbasedev->ops->vfio_dma_hint &&
            vbasedev->ops->vfio_dma_hint(vbasedev, &report->region, errp)) {
            return;
        }
        error_append_hint(errp, "Hint: QEMU emulates part of a %s page of"
                          " %s.\n", granule, what);
        return;
    case VFIO_DMA_CAUSE_SMALL:
        error_append_hint(errp, "Hint: none; %s is smaller than the %s"
                          " page, so no setting can make it mappable.\n",
                          what, granule);
        return;
    case VFIO_DMA_CAUSE_COVERED:
        error_append_hint(errp, "Hint: '%s' covers part of %s; the guest"
                          " can move %s to a free address.\n",
                          report->covered_by, what, what);
        return;
    case VFIO_DMA_CAUSE_VADDR:
        error_append_hint(errp, "Hint: QEMU could not align its mapping of"
                          " %s to %s; this is a QEMU bug.\n", what, granule);
        return;
    case VFIO_DMA_CAUSE_PLACED:
        error_append_hint(errp, "Hint: the guest placed %s at 0x%" PRIx64
                          ", which is not a multiple of %s.\n", what,
                          report->region_addr, granule);
        return;
    case VFIO_DMA_CAUSE_OUTSIDE_IOVA:
        if (vfio_dma_above_iova(bcontainer, first)) {
            vfio_dma_phys_bits_hint(errp, vfio_dma_iova_bits(bcontainer));
        } else {
            error_append_hint(errp, "Hint: the host reserves that range"
                              " (for instance for MSI); the guest can move"
                              " %s to another address.\n", what);
        }
        return;
    case VFIO_DMA_CAUSE_MAP_FAILED:
        if (report->error == EFAULT &&
            object_dynamic_cast(OBJECT(bcontainer),
                                TYPE_VFIO_IOMMU_IOMMUFD)) {
            error_append_hint(errp, "Hint: the iommufd backend cannot map"
                              " device memory on this host kernel; the"
                              " legacy VFIO container can.\n");
        } else if (report->error == ENOSPC) {
            error_append_hint(errp, "Hint: the host's limit of DMA mappings"
                              " per container is reached (module parameter"
                              " dma_entry_limit of vfio_iommu_type1).\n");
        } else {
            error_append_hint(errp, "Hint: the host kernel log may say"
                              " why.\n");
        }
        return;
    }
    g_assert_not_reached();
}

/* What is wrong, in a few words */
static char *vfio_dma_cause_str(VFIODMAContainer *bcontainer,
                                VFIODMAReport *report)
{
    g_autofree char *granule = size_to_str(report->granule);
    const Range *first = &g_array_index(report->ranges, Range, 0);

    switch (report->key.cause) {
    case VFIO_DMA_CAUSE_EMULATED_PAGE:
        return g_strdup_printf("shares a %s page with memory QEMU emulates",
                               granule);
    case VFIO_DMA_CAUSE_SMALL:
        return g_strdup_printf("smaller than a %s page", granule);
    case VFIO_DMA_CAUSE_COVERED:
        return g_strdup_printf("partly covered by '%s', the rest is not"
                               " aligned to %s pages", report->covered_by,
                               granule);
    case VFIO_DMA_CAUSE_VADDR:
        return g_strdup_printf("QEMU's mapping is not aligned to %s",
                               granule);
    case VFIO_DMA_CAUSE_PLACED:
        return g_strdup_printf("not aligned to %s pages", granule);
    case VFIO_DMA_CAUSE_OUTSIDE_IOVA:
        if (vfio_dma_above_iova(bcontainer, first)) {
            return g_strdup_printf("above the host IOMMU's %d-bit address"
                                   " limit", vfio_dma_iova_bits(bcontainer));
        }
        return g_strdup("in a range the host IOMMU reserves");
    case VFIO_DMA_CAUSE_MAP_FAILED:
        return g_strdup_printf("the host refused to map it (%s)",
                               strerror(report->error));
    }
    g_assert_not_reached();
}

static void vfio_dma_warn(VFIODMAContainer *bcontainer,
                          VFIODMAReport *report)
{
    g_autofree char *iommu = size_to_str(bcontainer->pgsizes &
                                         -bcontainer->pgsizes);
    g_autofree char *host = size_to_str(qemu_real_host_page_size());
    g_autofree char *what = NULL;
    g_autofree char *dev = NULL;
    g_autofree char *size = NULL;
    g_autofree char *cause = vfio_dma_cause_str(bcontainer, report);
    g_autoptr(GString) ranges = g_string_new(NULL);
    Error *err = NULL;
    Int128 total = int128_zero();
    guint i;

    for (i = 0; i < report->ranges->len; i++) {
        Range *r = &g_array_index(report->ranges, Range, i);

        vfio_dma_append_range(ranges, i ? ", " : "", r);
        total = int128_add(total, int128_make64(r->upb - r->lob));
        total = int128_add(total, int128_one());
    }
    size = size_to_str(int128_gethi(total) ? UINT64_MAX
                                           : int128_getlo(total));
    if (report->vbasedev) {
        dev = vfio_dma_device_name(report->vbasedev);
        what = g_strdup(report->region.name);
    } else {
        dev = g_strdup("vfio:");
        what = g_strdup_printf("region %s",
                               memory_region_name(report->key.region));
    }

    error_setg(&err, "%s %s: %s not DMA-mapped: %s", dev, what, size, cause);
    error_append_hint(&err, "Guest-physical %s, IOMMU page %s, host page %s"
                      ".\n", ranges->str, iommu, host);
    if (report->key.cause == VFIO_DMA_CAUSE_OUTSIDE_IOVA) {
        g_autofree char *iova = vfio_dma_iova_ranges_str(bcontainer);

        error_append_hint(&err, "Usable IOVA ranges: %s.\n", iova);
    }
    error_append_hint(&err, "Peer-to-peer DMA to that range will fault.\n");
    vfio_dma_append_hint(bcontainer, report, what, &err);
    warn_report_err(err);
}

static void vfio_dma_warn_pending(VFIODMAContainer *bcontainer)
{
    VFIODMAReports *reports = bcontainer->dma_reports;
    GHashTableIter iter;
    VFIODMAReport *report;

    reports->nr_pending = 0;
    g_hash_table_iter_init(&iter, reports->pending);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&report)) {
        vfio_dma_warn(bcontainer, report);
        g_hash_table_add(reports->warned,
                         g_memdup2(&report->key, sizeof(report->key)));
        g_hash_table_iter_remove(&iter);
    }
}

void vfio_dma_listener_commit(MemoryListener *listener)
{
    VFIODMAContainer *bcontainer = container_of(listener, VFIODMAContainer,
                                                listener);

    /* Every transaction ends here: nothing but this test, most times */
    if (bcontainer->dma_reports->nr_pending) {
        vfio_dma_warn_pending(bcontainer);
    }
}

static gboolean vfio_dma_key_has_owner(gpointer key, gpointer value,
                                       gpointer opaque)
{
    return ((VFIODMAReportKey *)key)->owner == opaque;
}

void vfio_dma_forget_device(VFIODevice *vbasedev)
{
    VFIODMAReports *reports = vbasedev->bcontainer->dma_reports;
    int i;

    for (i = 0; i < VFIO_DMA_REGION_CACHE; i++) {
        if (reports->cache[i].vbasedev == vbasedev) {
            reports->cache[i].mr = NULL;
            reports->cache[i].vbasedev = NULL;
        }
    }
    g_hash_table_foreach_remove(reports->warned, vfio_dma_key_has_owner,
                                OBJECT(vbasedev->dev));
    g_hash_table_foreach_remove(reports->pending, vfio_dma_key_has_owner,
                                OBJECT(vbasedev->dev));
    reports->nr_pending = g_hash_table_size(reports->pending);
}

/*
 * Mapping and unmapping
 */

static VFIODMASectionId vfio_dma_section_id(MemoryRegionSection *section)
{
    VFIODMASectionId id = {
        .mr = section->mr,
        .first = section->offset_within_address_space,
        .last = section->offset_within_address_space +
                int128_get64(int128_sub(section->size, int128_one())),
    };

    return id;
}

static void *vfio_dma_section_vaddr(MemoryRegionSection *section,
                                    hwaddr iova)
{
    return memory_region_get_ram_ptr(section->mr) +
           section->offset_within_region +
           (iova - section->offset_within_address_space);
}

/* Inlined, like the other helpers of the mapping path: calls cost there */
static inline QEMU_ALWAYS_INLINE
bool vfio_dma_outside_iova_ranges(VFIODMAContainer *bcontainer, hwaddr iova,
                                  hwaddr last)
{
    Range range;
    GList *l;

    if (!bcontainer->iova_ranges) {
        return false;
    }
    range_set_bounds(&range, iova, last);
    for (l = bcontainer->iova_ranges; l; l = l->next) {
        if (range_contains_range(l->data, &range)) {
            return false;
        }
    }
    return true;
}

/* Why a map of guest RAM failed, when it is clear */
static void vfio_dma_explain_ram(VFIODMAContainer *bcontainer,
                                 MemoryRegionSection *section, hwaddr iova,
                                 hwaddr last, int ret, Error **errp)
{
    uint64_t iommu_page = bcontainer->pgsizes & -bcontainer->pgsizes;

    if (vfio_dma_outside_iova_ranges(bcontainer, iova, last)) {
        g_autofree char *ranges = vfio_dma_iova_ranges_str(bcontainer);

        /* QEMU places guest RAM whatever the guest's address bits */
        error_append_hint(errp, "Guest RAM at 0x%" HWADDR_PRIx " lies"
                          " outside the host IOMMU's usable IOVA ranges"
                          " (%s): give the guest less memory.\n", iova,
                          ranges);
    } else if (ret == -EINVAL && ((iova | (last + 1)) & (iommu_page - 1))) {
        g_autofree char *page = size_to_str(iommu_page);

        error_append_hint(errp, "Guest memory '%s' at 0x%" HWADDR_PRIx
                          " is not aligned to the host IOMMU's minimum"
                          " page, %s: the host cannot map it for DMA.\n",
                          memory_region_name(section->mr), iova, page);
    } else if (ret == -ENOSPC) {
        /* Also when the host said it allows none (DMA_AVAIL of 0) */
        error_append_hint(errp, "The host allows no more DMA mappings: it"
                          " limits them per container (vfio_iommu_type1's"
                          " dma_entry_limit module parameter).\n");
    }
}

/*
 * Did the host unmap less than [@first, @last], saying it unmapped
 * @unmapped bytes?  (For the whole 64-bit space, which does not fit, it
 * cannot be told.)
 */
static bool vfio_dma_unmapped_less(uint64_t first, uint64_t last,
                                   uint64_t unmapped)
{
    return last - first != UINT64_MAX && unmapped <= last - first;
}

/* @unmapped gets the number of bytes the host says it unmapped */
static inline QEMU_ALWAYS_INLINE
int vfio_dma_unmap_entry(VFIODMAContainer *bcontainer, VFIODMAEntry *entry,
                         uint64_t *unmapped)
{
    return vfio_dma_container_unmap(bcontainer,
                                    vfio_dma_entry_interior_first(entry),
                                    vfio_dma_entry_interior_last(entry),
                                    unmapped);
}

/*
 * Ranges whose unmap failed stay in the IOMMU, detached from any section.
 * Before [@first, @last] is mapped again, an identical one (same range,
 * host address and access) is taken over as is, and any other that
 * overlaps it is unmapped first, so that the map does not fail with
 * EEXIST.  Returns 1 if a range was taken over, 0 if [@first, @last] is
 * to be mapped, or the negative errno of an unmap that failed again
 * (-EEXIST if the host unmapped less than all of the range).
 */
static int vfio_dma_clear_stale(VFIODMAContainer *bcontainer,
                                uint64_t first, uint64_t last, void *vaddr,
                                bool readonly)
{
    VFIODMARecord *record = bcontainer->dma_record;
    VFIODMAReports *reports = bcontainer->dma_reports;
    VFIODMAEntry *entry, *next;
    uint64_t unmapped;
    int adopted = 0;
    int ret;

    for (entry = vfio_dma_record_first(record, first, last); entry;
         entry = next) {
        next = vfio_dma_record_next(entry, first, last);
        if (entry->section.mr) {
            continue;
        }
        if (vfio_dma_entry_first(entry) == first &&
            vfio_dma_entry_last(entry) == last && entry->vaddr == vaddr &&
            entry->readonly == readonly) {
            trace_vfio_dma_adopt(first, last);
            vfio_dma_record_remove(record, entry);
            reports->nr_stale--;
            adopted = 1;
            continue;
        }
        trace_vfio_dma_unmap(entry->name, vfio_dma_entry_first(entry),
                             vfio_dma_entry_last(entry));
        ret = vfio_dma_unmap_entry(bcontainer, entry, &unmapped);
        if (ret) {
            return ret;
        }
        /* Less than all of it: the host may still hold the rest */
        if (vfio_dma_unmapped_less(vfio_dma_entry_first(entry),
                                   vfio_dma_entry_last(entry), unmapped)) {
            trace_vfio_dma_unmap_size(vfio_dma_entry_first(entry),
                                      vfio_dma_entry_last(entry), unmapped);
            return -EEXIST;
        }
        vfio_dma_record_remove(record, entry);
        reports->nr_stale--;
    }
    return adopted;
}

/* The container's DMA entries are all used: a map would fail with ENOSPC */
static bool vfio_dma_limit_reached(VFIODMAContainer *bcontainer)
{
    return bcontainer->dma_max_mappings &&
           vfio_dma_record_mapped(bcontainer->dma_record) >=
           bcontainer->dma_max_mappings;
}

/*
 * Map [@first, @last] of @section unless a stale mapping is taken over.
 * With @limited, a map the host would refuse for its limit of DMA
 * entries fails with -ENOSPC without asking it.
 */
static inline QEMU_ALWAYS_INLINE
int vfio_dma_map_range(VFIODMAContainer *bcontainer,
                       MemoryRegionSection *section, uint64_t first,
                       uint64_t last, void *vaddr, bool limited)
{
    int ret;

    if (bcontainer->dma_reports->nr_stale) {
        ret = vfio_dma_clear_stale(bcontainer, first, last, vaddr,
                                   section->readonly);
        if (ret < 0) {
            return -EEXIST;
        }
        if (ret) {
            return 0;
        }
    }
    if (limited && vfio_dma_limit_reached(bcontainer)) {
        return -ENOSPC;
    }
    /* A range is at most a section, less than 2^64 bytes. */
    return vfio_dma_container_map(bcontainer, first, last - first + 1, vaddr,
                                  section->readonly, section->mr);
}

/* Guest RAM: host-page aligned, and a failure is the caller's error. */
static bool vfio_dma_map_ram(VFIODMAContainer *bcontainer,
                             MemoryRegionSection *section, Error **errp)
{
    VFIODMASectionId id = vfio_dma_section_id(section);
    hwaddr iova = REAL_HOST_PAGE_ALIGN(section->offset_within_address_space);
    Int128 llend = int128_and(int128_add(int128_make64(id.first),
                                         section->size),
                              int128_exts64(qemu_real_host_page_mask()));
    VFIODMAEntry *entry;
    hwaddr last;
    int ret;

    if (int128_le(llend, int128_make64(iova))) {
        return true;
    }
    last = int128_get64(int128_sub(llend, int128_one()));
    trace_vfio_listener_region_add_ram(iova, last,
                                       vfio_dma_section_vaddr(section, iova));

    ret = vfio_dma_map_range(bcontainer, section, iova, last,
                             vfio_dma_section_vaddr(section, iova), false);
    if (ret) {
        error_setg(errp, "vfio_container_dma_map(%p, 0x%" HWADDR_PRIx ", "
                   "0x%" HWADDR_PRIx ", %p) = %d (%s)",
                   bcontainer, iova, last - iova + 1,
                   vfio_dma_section_vaddr(section, iova), ret,
                   strerror(-ret));
        vfio_dma_explain_ram(bcontainer, section, iova, last, ret, errp);
        return false;
    }

    entry = vfio_dma_record_add(bcontainer->dma_record, iova, last, &id,
                                VFIO_DMA_MAPPING_STATE_MAPPED);
    entry->readonly = section->readonly;
    entry->vaddr = vfio_dma_section_vaddr(section, iova);
    return true;
}

/* The granule of RAM device mappings: the IOMMU page, at least the host's */
static uint64_t vfio_dma_granule(VFIODMAContainer *bcontainer)
{
    VFIODMAReports *reports = bcontainer->dma_reports;

    if (!reports->granule || reports->pgsizes != bcontainer->pgsizes) {
        reports->pgsizes = bcontainer->pgsizes;
        reports->granule = MAX(bcontainer->pgsizes & -bcontainer->pgsizes,
                               qemu_real_host_page_size());
    }
    return reports->granule;
}

/* What the pieces of a RAM device section share */
typedef struct VFIODMAMapSection {
    VFIODMAContainer *bcontainer;
    MemoryRegionSection *section;
    VFIODMASectionId id;
    uint8_t *vaddr;             /* of the section's first byte */
    uint64_t granule;
    bool vaddr_unaligned;
    bool described;             /* @vbasedev and @region are set */
    VFIODevice *vbasedev;
    const VFIODMARegion *region; /* in the region cache, or @uncached */
} VFIODMAMapSection;

/* The device region of the section, looked up once and only if needed */
static void vfio_dma_describe_section(VFIODMAMapSection *ms)
{
    VFIODMAReports *reports = ms->bcontainer->dma_reports;
    VFIODMACachedRegion *c;
    int i;

    if (ms->described) {
        return;
    }
    ms->described = true;
    for (i = 0; i < VFIO_DMA_REGION_CACHE; i++) {
        c = &reports->cache[i];
        if (c->mr == ms->section->mr) {
            ms->vbasedev = c->vbasedev;
            ms->region = &c->region;
            return;
        }
    }
    ms->vbasedev = vfio_dma_region_of(ms->section->mr, &reports->uncached);
    ms->region = &reports->uncached;
    if (ms->vbasedev) {
        /* forgotten when the device is detached */
        c = &reports->cache[reports->cache_next++ % VFIO_DMA_REGION_CACHE];
        c->mr = ms->section->mr;
        c->vbasedev = ms->vbasedev;
        c->region = reports->uncached;
        ms->region = &c->region;
    }
}

/* Report that [@first, @last] of the section is not mapped, for @reason */
static void vfio_dma_report_skip(VFIODMAMapSection *ms, uint64_t first,
                                 uint64_t last, VfioDmaSkipReason reason)
{
    VFIODMACause cause = VFIO_DMA_CAUSE_OUTSIDE_IOVA;
    char *covered_by = NULL;
    Range range;

    if (trace_event_get_state_backends(TRACE_VFIO_DMA_SKIP)) {
        trace_vfio_dma_skip(memory_region_name(ms->section->mr), first, last,
                            VfioDmaSkipReason_str(reason), ms->granule);
    }
    vfio_dma_describe_section(ms);
    if (reason == VFIO_DMA_SKIP_REASON_UNALIGNED &&
        !vfio_dma_unaligned_cause(ms->section, ms->region, first, last,
                                  ms->granule, ms->vaddr_unaligned, &cause,
                                  &covered_by)) {
        return;
    }
    range_set_bounds(&range, first, last);
    vfio_dma_report(ms->bcontainer, ms->section, ms->vbasedev, ms->region,
                    cause, &range, ms->granule, 0, covered_by);
}

/* Record that @piece of the section is not mapped, and report it */
static void vfio_dma_skip_piece(VFIODMAMapSection *ms,
                                const VFIODMAPiece *piece)
{
    uint64_t first = piece->range.lob;
    VFIODMAEntry *entry;

    entry = vfio_dma_record_add(ms->bcontainer->dma_record, first,
                                piece->range.upb, &ms->id,
                                VFIO_DMA_MAPPING_STATE_SKIPPED);
    entry->reason = piece->reason;
    entry->ram_device = true;
    entry->readonly = ms->section->readonly;
    entry->vaddr = ms->vaddr + (first - ms->id.first);
    vfio_dma_report_skip(ms, first, piece->range.upb, piece->reason);
}

/*
 * Map [@first, @last] of the section, and record it with the @head bytes
 * before it and the @tail bytes after it, which are left out as unaligned
 */
static inline QEMU_ALWAYS_INLINE
void vfio_dma_map_interior(VFIODMAMapSection *ms, uint64_t first,
                           uint64_t last, uint64_t head, uint64_t tail)
{
    void *vaddr = ms->vaddr + (first - ms->id.first);
    VFIODMAEntry *entry;
    int ret;

    ret = vfio_dma_map_range(ms->bcontainer, ms->section, first, last, vaddr,
                             true);
    entry = vfio_dma_record_add(ms->bcontainer->dma_record, first - head,
                                last + tail, &ms->id,
                                ret ? VFIO_DMA_MAPPING_STATE_FAILED
                                    : VFIO_DMA_MAPPING_STATE_MAPPED);
    entry->head = head;
    entry->tail = tail;
    entry->error = -ret;
    entry->ram_device = true;
    entry->readonly = ms->section->readonly;
    entry->vaddr = (uint8_t *)vaddr - head;
    if (ret) {
        Range range;

        trace_vfio_dma_map_failed(memory_region_name(ms->section->mr), first,
                                  last, ret);
        vfio_dma_describe_section(ms);
        range_set_bounds(&range, first, last);
        vfio_dma_report(ms->bcontainer, ms->section, ms->vbasedev,
                        ms->region, VFIO_DMA_CAUSE_MAP_FAILED, &range,
                        ms->granule, -ret, NULL);
    } else if (trace_event_get_state_backends(TRACE_VFIO_DMA_MAP)) {
        trace_vfio_dma_map(memory_region_name(ms->section->mr), first, last,
                           vaddr);
    }
}

/* Map @piece of the section, or record why not */
static void vfio_dma_map_piece(const VFIODMAPiece *piece, void *opaque)
{
    VFIODMAMapSection *ms = opaque;

    if (!piece->map) {
        vfio_dma_skip_piece(ms, piece);
        return;
    }
    vfio_dma_map_interior(ms, piece->range.lob, piece->range.upb, 0, 0);
}

/* RAM device: map what can be mapped; nothing here is fatal. */
static void vfio_dma_map_ram_device(VFIODMAContainer *bcontainer,
                                    MemoryRegionSection *section)
{
    VFIODMAMapSection ms;
    uint64_t first, last;
    Range sec, interior;

    /* @ms.vbasedev and @ms.region are set when first needed */
    ms.bcontainer = bcontainer;
    ms.section = section;
    ms.id = vfio_dma_section_id(section);
    ms.granule = vfio_dma_granule(bcontainer);
    ms.described = false;
    first = ms.id.first;
    last = ms.id.last;
    ms.vaddr = vfio_dma_section_vaddr(section, first);
    range_set_bounds(&sec, first, last);
    /*
     * The host wants the IOVA and the host address both aligned to the
     * IOMMU page: when QEMU's mmap of the region is not aligned like the
     * IOVA, no part of the section can be mapped.
     */
    ms.vaddr_unaligned = (first ^ (uintptr_t)ms.vaddr) & (ms.granule - 1);
    if (ms.vaddr_unaligned) {
        VFIODMAPiece all = {
            .range = sec, .reason = VFIO_DMA_SKIP_REASON_UNALIGNED,
        };

        vfio_dma_skip_piece(&ms, &all);
        return;
    }
    /*
     * The common case, a section inside one usable IOVA range: its aligned
     * interior is mapped, and one entry records it with the unaligned
     * head and tail.
     */
    if (!((first | (last + 1)) & (ms.granule - 1))) {
        interior = sec;
    } else {
        vfio_dma_range_trim(first, section->size, ms.granule, &interior);
    }
    if (!range_is_empty(&interior) &&
        !vfio_dma_outside_iova_ranges(bcontainer, first, last)) {
        uint64_t head = range_lob(&interior) - first;
        uint64_t tail = last - range_upb(&interior);

        if (head) {
            vfio_dma_report_skip(&ms, first, range_lob(&interior) - 1,
                                 VFIO_DMA_SKIP_REASON_UNALIGNED);
        }
        vfio_dma_map_interior(&ms, range_lob(&interior),
                              range_upb(&interior), head, tail);
        if (tail) {
            vfio_dma_report_skip(&ms, range_upb(&interior) + 1, last,
                                 VFIO_DMA_SKIP_REASON_UNALIGNED);
        }
        return;
    }
    vfio_dma_range_split(&sec, bcontainer->iova_ranges, ms.granule,
                         vfio_dma_map_piece, &ms);
}

bool vfio_dma_map_section(VFIODMAContainer *bcontainer,
                          MemoryRegionSection *section, Error **errp)
{
    if (memory_region_is_ram_device(section->mr)) {
        vfio_dma_map_ram_device(bcontainer, section);
        return true;
    }
    return vfio_dma_map_ram(bcontainer, section, errp);
}

/*
 * The IOMMU may still hold what @entry mapped: keep that, detached from
 * its section, until it is mapped again or the container goes away.
 * Returns the entry that stays.
 */
static VFIODMAEntry *vfio_dma_keep_stale(VFIODMAContainer *bcontainer,
                                         VFIODMAEntry *entry)
{
    VFIODMARecord *record = bcontainer->dma_record;
    g_autofree char *name = vfio_dma_describe(entry->section.mr);

    if (entry->head || entry->tail) {
        /* What stays is the mapped interior alone */
        VFIODMAEntry *stale = vfio_dma_record_add(
            record, vfio_dma_entry_interior_first(entry),
            vfio_dma_entry_interior_last(entry), &entry->section,
            VFIO_DMA_MAPPING_STATE_MAPPED);

        stale->ram_device = entry->ram_device;
        stale->readonly = entry->readonly;
        stale->vaddr = (uint8_t *)entry->vaddr + entry->head;
        vfio_dma_record_remove(record, entry);
        entry = stale;
    }
    entry->name = g_steal_pointer(&name);
    entry->section.mr = NULL;
    bcontainer->dma_reports->nr_stale++;
    return entry;
}

/*
 * The host unmapped @unmapped bytes where @entry's mapped interior was
 * unmapped; a caller that unmaps exactly what one map created gets the
 * size of that map back.  Otherwise report the difference: with less,
 * keep the range as possibly mapped, since the host's word is all QEMU
 * has; with more, the host removed mappings that QEMU still counts on.
 */
static void vfio_dma_check_unmapped(VFIODMAContainer *bcontainer,
                                    VFIODMAEntry *entry, uint64_t unmapped)
{
    uint64_t first = vfio_dma_entry_interior_first(entry);
    uint64_t last = vfio_dma_entry_interior_last(entry);
    uint64_t size = last - first + 1;       /* 0: the whole 64-bit space */
    g_autofree char *name = NULL;
    Error *err = NULL;

    if (!size || unmapped == size) {
        vfio_dma_record_remove(bcontainer->dma_record, entry);
        return;
    }
    trace_vfio_dma_unmap_size(first, last, unmapped);
    if (vfio_dma_unmapped_less(first, last, unmapped)) {
        entry = vfio_dma_keep_stale(bcontainer, entry);
        error_setg(&err, "vfio: the host IOMMU unmapped only 0x%" PRIx64
                   " of the 0x%" PRIx64 " bytes mapped at guest-physical"
                   " 0x%" PRIx64 "-0x%" PRIx64 " (%s); QEMU counts the"
                   " range as still mapped until it is mapped again or the"
                   " container goes away",
                   unmapped, size, first, last, entry->name);
    } else {
        name = vfio_dma_describe(entry->section.mr);
        vfio_dma_record_remove(bcontainer->dma_record, entry);
        error_setg(&err, "vfio: the host IOMMU unmapped 0x%" PRIx64
                   " bytes where QEMU unmapped the 0x%" PRIx64 " bytes"
                   " at guest-physical 0x%" PRIx64 "-0x%" PRIx64 " (%s):"
                   " mappings next to that range may be gone, and DMA"
                   " to them fails", unmapped, size, first, last, name);
    }
    error_append_hint(&err, "The host's DMA mappings are not what QEMU"
                      " mapped: a bug of the host kernel or of QEMU."
                      " 'info vfio-dma' shows what QEMU mapped.\n");
    error_report_err(err);
}

/* Unmap what @entry of @section mapped, and forget it; true if it had */
static inline QEMU_ALWAYS_INLINE
bool vfio_dma_unmap_one(VFIODMAContainer *bcontainer,
                        MemoryRegionSection *section, VFIODMAEntry *entry)
{
    uint64_t unmapped = 0;
    int ret;

    if (entry->state != VFIO_DMA_MAPPING_STATE_MAPPED) {
        vfio_dma_record_remove(bcontainer->dma_record, entry);
        return false;
    }
    if (trace_event_get_state_backends(TRACE_VFIO_DMA_UNMAP)) {
        trace_vfio_dma_unmap(memory_region_name(section->mr),
                             vfio_dma_entry_interior_first(entry),
                             vfio_dma_entry_interior_last(entry));
    }
    ret = vfio_dma_unmap_entry(bcontainer, entry, &unmapped);
    if (ret) {
        entry = vfio_dma_keep_stale(bcontainer, entry);
        error_report("vfio: failed to unmap guest-physical 0x%" PRIx64
                     "-0x%" PRIx64 " (%s) from the host IOMMU: %s; the"
                     " IOMMU keeps it until the range is mapped again or"
                     " the container goes away",
                     vfio_dma_entry_first(entry), vfio_dma_entry_last(entry),
                     entry->name, strerror(-ret));
    } else {
        vfio_dma_check_unmapped(bcontainer, entry, unmapped);
    }
    return true;
}

void vfio_dma_unmap_section(VFIODMAContainer *bcontainer,
                            MemoryRegionSection *section)
{
    VFIODMARecord *record = bcontainer->dma_record;
    VFIODMASectionId id = vfio_dma_section_id(section);
    VFIODMAEntry *entry, *next;
    bool unmapped = false;

    /* Most sections have one entry, which covers them */
    entry = vfio_dma_record_section(record, &id);
    if (entry) {
        unmapped = vfio_dma_unmap_one(bcontainer, section, entry);
        entry = NULL;
    } else {
        entry = vfio_dma_record_first(record, id.first, id.last);
    }
    for (; entry; entry = next) {
        bool ours = entry->section.mr == id.mr &&
                    entry->section.first == id.first;

        /* The section's entries don't overlap: none follows its last one */
        next = ours && vfio_dma_entry_last(entry) == id.last ? NULL :
               vfio_dma_record_next(entry, id.first, id.last);
        if (ours) {
            unmapped |= vfio_dma_unmap_one(bcontainer, section, entry);
        }
    }
    if (!unmapped) {
        trace_vfio_dma_unmap_none(memory_region_name(section->mr), id.first,
                                  id.last);
    }
}
