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
#include "qemu/queue.h"
#include "qemu/range.h"
#include "exec/memory.h"
#include "hw/vfio/vfio-common.h"
#include "hw/vfio/vfio-container-base.h"
#include "hw/vfio/vfio-dma-map.h"
#include "pci.h"
#include "trace.h"

/* Why part of a RAM device section is not DMA-mapped; one warning each. */
typedef enum VFIODMACause {
    VFIO_DMA_CAUSE_UNALIGNED,
    VFIO_DMA_CAUSE_OUTSIDE_IOVA,
    VFIO_DMA_CAUSE_MAP_FAILED,
} VFIODMACause;

/* A BAR mmapped in pieces (around its MSI-X table) is one key. */
typedef struct VFIODMAReportKey {
    const Object *owner;
    const MemoryRegion *mr;     /* the BAR's region, or the section's */
    VFIODMACause cause;
} VFIODMAReportKey;

/* A warning being collected until the listener commits. */
typedef struct VFIODMAReport {
    VFIODMAReportKey key;
    char *what;             /* "vfio-pci 'nic0' (0000:01:00.0) BAR 0" */
    int bar;                /* -1 when the region is not a PCI BAR */
    GArray *ranges;         /* Range: guest-physical, not mapped */
    uint64_t granule;
    int error;              /* VFIO_DMA_CAUSE_MAP_FAILED: positive errno */
    bool vaddr_unaligned;   /* QEMU's mmap is not aligned like the IOVA */
} VFIODMAReport;

struct VFIODMATracker {
    VFIOContainerBase *bcontainer;
    VFIODMARecord *record;
    GHashTable *warned;     /* VFIODMAReportKey set: already warned about */
    GHashTable *pending;    /* VFIODMAReportKey -> VFIODMAReport */
    bool pgsize_warned;
    QTAILQ_ENTRY(VFIODMATracker) next;
};

/* Every container's tracker, in the order the containers were created. */
static QTAILQ_HEAD(, VFIODMATracker) vfio_dma_trackers =
    QTAILQ_HEAD_INITIALIZER(vfio_dma_trackers);

static guint vfio_dma_report_key_hash(gconstpointer v)
{
    const VFIODMAReportKey *k = v;

    return g_direct_hash(k->owner) ^ g_direct_hash(k->mr) ^ k->cause;
}

static gboolean vfio_dma_report_key_equal(gconstpointer a, gconstpointer b)
{
    const VFIODMAReportKey *ka = a, *kb = b;

    return ka->owner == kb->owner && ka->mr == kb->mr &&
           ka->cause == kb->cause;
}

static void vfio_dma_report_free(gpointer p)
{
    VFIODMAReport *report = p;

    g_free(report->what);
    g_array_unref(report->ranges);
    g_free(report);
}

VFIODMATracker *vfio_dma_tracker_new(VFIOContainerBase *bcontainer)
{
    VFIODMATracker *tracker = g_new0(VFIODMATracker, 1);

    tracker->bcontainer = bcontainer;
    tracker->record = vfio_dma_record_new();
    tracker->warned = g_hash_table_new_full(vfio_dma_report_key_hash,
                                            vfio_dma_report_key_equal,
                                            g_free, NULL);
    tracker->pending = g_hash_table_new_full(vfio_dma_report_key_hash,
                                             vfio_dma_report_key_equal,
                                             NULL, vfio_dma_report_free);
    QTAILQ_INSERT_TAIL(&vfio_dma_trackers, tracker, next);
    return tracker;
}

void vfio_dma_tracker_free(VFIODMATracker *tracker)
{
    if (!tracker) {
        return;
    }
    QTAILQ_REMOVE(&vfio_dma_trackers, tracker, next);
    vfio_dma_record_free(tracker->record);
    g_hash_table_unref(tracker->warned);
    g_hash_table_unref(tracker->pending);
    g_free(tracker);
}

VFIODMARecord *vfio_dma_tracker_record(VFIOContainerBase *bcontainer)
{
    return bcontainer->dma_tracker->record;
}

VFIOContainerBase *vfio_dma_tracker_next(VFIOContainerBase *bcontainer)
{
    VFIODMATracker *tracker = bcontainer ?
        QTAILQ_NEXT(bcontainer->dma_tracker, next) :
        QTAILQ_FIRST(&vfio_dma_trackers);

    return tracker ? tracker->bcontainer : NULL;
}

/*
 * Describing what backs a section, for warnings and introspection.
 */

/* The BAR of a vfio-pci device whose mmap is @mr, or -1. */
static int vfio_dma_pci_bar(VFIOPCIDevice *vdev, const MemoryRegion *mr)
{
    int i, j;

    for (i = 0; i < PCI_ROM_SLOT; i++) {
        VFIORegion *region = &vdev->bars[i].region;

        for (j = 0; j < region->nr_mmaps; j++) {
            if (&region->mmaps[j].mem == mr) {
                return i;
            }
        }
    }
    return -1;
}

/* The vfio-pci device @owner is, or NULL. */
static VFIOPCIDevice *vfio_dma_pci_device(const Object *owner)
{
    return owner ? (VFIOPCIDevice *)object_dynamic_cast((Object *)owner,
                                                        TYPE_VFIO_PCI)
                 : NULL;
}

static VFIOPCIDevice *vfio_dma_pci_owner(const MemoryRegion *mr)
{
    return vfio_dma_pci_device(memory_region_owner((MemoryRegion *)mr));
}

/*
 * "vfio-pci 'nic0' (0000:01:00.0) BAR 0" for a BAR of a VFIO device, the
 * region's name otherwise.
 */
static char *vfio_dma_describe(const MemoryRegion *mr, int *bar)
{
    Object *owner = memory_region_owner((MemoryRegion *)mr);
    VFIODevice *vbasedev = owner ? vfio_get_vfio_device(owner) : NULL;
    VFIOPCIDevice *vdev;
    g_autofree char *dev = NULL;

    *bar = -1;
    if (!vbasedev) {
        return g_strdup(memory_region_name(mr));
    }
    if (vbasedev->dev->id) {
        dev = g_strdup_printf("%s '%s' (%s)", object_get_typename(owner),
                              vbasedev->dev->id, vbasedev->name);
    } else {
        dev = g_strdup_printf("%s %s", object_get_typename(owner),
                              vbasedev->name);
    }
    vdev = vfio_dma_pci_owner(mr);
    if (vdev) {
        *bar = vfio_dma_pci_bar(vdev, mr);
    }
    if (*bar >= 0) {
        return g_strdup_printf("%s BAR %d", dev, *bar);
    }
    return g_strdup_printf("%s region %s", dev, memory_region_name(mr));
}

/*
 * Warnings: collected per (owner, BAR or region, cause) while the listener
 * runs, printed when it commits, and never twice for the same key.
 */

/* What a warning about @mr is for: its BAR, if it is an mmap of one */
static const MemoryRegion *vfio_dma_report_region(const MemoryRegion *mr)
{
    VFIOPCIDevice *vdev = vfio_dma_pci_owner(mr);
    int bar = vdev ? vfio_dma_pci_bar(vdev, mr) : -1;

    return bar >= 0 ? vdev->bars[bar].region.mem : mr;
}

static void vfio_dma_report(VFIODMATracker *tracker,
                            const MemoryRegion *mr, VFIODMACause cause,
                            const Range *range, uint64_t granule,
                            int error, bool vaddr_unaligned)
{
    VFIODMAReportKey key = {
        .owner = memory_region_owner((MemoryRegion *)mr),
        .mr = vfio_dma_report_region(mr),
        .cause = cause,
    };
    VFIODMAReport *report;

    if (g_hash_table_contains(tracker->warned, &key)) {
        return;
    }
    report = g_hash_table_lookup(tracker->pending, &key);
    if (!report) {
        report = g_new0(VFIODMAReport, 1);
        report->key = key;
        report->what = vfio_dma_describe(mr, &report->bar);
        report->ranges = g_array_new(false, false, sizeof(Range));
        report->granule = granule;
        g_hash_table_insert(tracker->pending, &report->key, report);
    }
    g_array_append_val(report->ranges, *range);
    report->error = report->error ?: error;
    report->vaddr_unaligned |= vaddr_unaligned;
}

/* Append "0xFIRST-0xLAST" to @str, after a comma unless it is the first */
static void vfio_dma_append_range(GString *str, Range *r)
{
    g_string_append_printf(str, "%s0x%" PRIx64 "-0x%" PRIx64,
                           str->len ? ", " : "", range_lob(r), range_upb(r));
}

static char *vfio_dma_ranges_str(GArray *ranges, uint64_t *total)
{
    GString *str = g_string_new(NULL);
    Int128 sum = int128_zero();
    guint i;

    for (i = 0; i < ranges->len; i++) {
        Range *r = &g_array_index(ranges, Range, i);

        vfio_dma_append_range(str, r);
        sum = int128_add(sum, int128_add(int128_make64(range_upb(r) -
                                                       range_lob(r)),
                                         int128_one()));
    }
    *total = int128_gethi(sum) ? UINT64_MAX : int128_getlo(sum);
    return g_string_free(str, false);
}

static char *vfio_dma_iova_ranges_str(VFIOContainerBase *bcontainer)
{
    GString *str = g_string_new(NULL);
    GList *l;

    for (l = bcontainer->iova_ranges; l; l = l->next) {
        vfio_dma_append_range(str, l->data);
    }
    return g_string_free(str, false);
}

/*
 * The BAR that x-msix-relocation should move the MSI-X table of @vdev to:
 * the first one the device does not use (vfio-pci then adds it), else the
 * table's own BAR (vfio-pci doubles it and puts the table in the new
 * upper half).  "auto" only knows devices from a list, empty in 10.0.
 */
static int vfio_dma_msix_relocation_bar(VFIOPCIDevice *vdev)
{
    int i;

    for (i = 0; i < PCI_ROM_SLOT; i++) {
        if (!vdev->bars[i].size && !(i && vdev->bars[i - 1].mem64)) {
            return i;
        }
    }
    return vdev->msix->table_bar;
}

/* The hint that fits why part of a BAR is not mapped. */
static char *vfio_dma_hint(VFIOContainerBase *bcontainer,
                           VFIODMAReport *report)
{
    VFIOPCIDevice *vdev = vfio_dma_pci_device(report->key.owner);
    g_autofree char *granule = size_to_str(report->granule);
    bool msix_in_bar = vdev && vdev->msix && report->bar >= 0 &&
        vdev->msix->table_bar == report->bar;
    int relo;

    switch (report->key.cause) {
    case VFIO_DMA_CAUSE_UNALIGNED:
        if (vdev && report->bar >= 0 &&
            vdev->bars[report->bar].size < report->granule) {
            return g_strdup_printf("BAR %d is smaller than the IOMMU page;"
                                   " no setting can make it reachable",
                                   report->bar);
        }
        if (msix_in_bar) {
            relo = vfio_dma_msix_relocation_bar(vdev);
            return g_strdup_printf("the MSI-X table at offset 0x%" PRIx32
                                   " of BAR %d splits it: set"
                                   " x-msix-relocation=bar%d on the device"
                                   " to move the MSI-X table %s",
                                   vdev->msix->table_offset, report->bar,
                                   relo, relo == report->bar ?
                                   "to an added upper half of that BAR" :
                                   "to that unused BAR");
        }
        if (report->vaddr_unaligned) {
            return g_strdup_printf("QEMU's mapping of the region is not"
                                   " aligned to %s", granule);
        }
        return g_strdup_printf("the guest placed it at an address that is"
                               " not a multiple of %s", granule);
    case VFIO_DMA_CAUSE_OUTSIDE_IOVA:
        return g_strdup("limit the guest's physical address bits so that"
                        " firmware places BARs lower (-cpu"
                        " ...,host-phys-bits-limit=N, or libvirt's"
                        " <maxphysaddr mode='passthrough' limit='N'/>)");
    case VFIO_DMA_CAUSE_MAP_FAILED:
        if (report->error == EFAULT &&
            object_dynamic_cast(OBJECT(bcontainer),
                                TYPE_VFIO_IOMMU_IOMMUFD)) {
            return g_strdup("the iommufd backend cannot map device memory"
                            " on this host kernel; the legacy VFIO"
                            " container can");
        }
        if (report->error == ENOSPC) {
            return g_strdup("the host's limit of DMA mappings per container"
                            " is reached (vfio_iommu_type1 module parameter"
                            " dma_entry_limit)");
        }
        return g_strdup("the host kernel log may say why");
    }
    g_assert_not_reached();
}

static void vfio_dma_warn(VFIOContainerBase *bcontainer,
                          VFIODMAReport *report)
{
    g_autofree char *ranges = NULL;
    g_autofree char *size = NULL;
    uint64_t iommu_page = vfio_dma_pgsize_min(bcontainer->pgsizes);
    g_autofree char *iommu = iommu_page ? size_to_str(iommu_page) :
                             g_strdup("not reported");
    g_autofree char *host_page = size_to_str(qemu_real_host_page_size());
    g_autofree char *hint = vfio_dma_hint(bcontainer, report);
    g_autofree char *why = NULL;
    uint64_t total;

    ranges = vfio_dma_ranges_str(report->ranges, &total);
    size = size_to_str(total);
    switch (report->key.cause) {
    case VFIO_DMA_CAUSE_UNALIGNED:
        why = g_strdup("not aligned to the IOMMU page");
        break;
    case VFIO_DMA_CAUSE_OUTSIDE_IOVA: {
        g_autofree char *iova = vfio_dma_iova_ranges_str(bcontainer);

        why = g_strdup_printf("outside the host IOMMU's usable IOVA ranges"
                              " (%s)", iova);
        break;
    }
    case VFIO_DMA_CAUSE_MAP_FAILED:
        why = g_strdup_printf("the DMA map failed: %s",
                              strerror(report->error));
        break;
    }
    warn_report("%s: guest-physical %s (%s) not DMA-mapped, %s (IOMMU"
                " minimum page %s, host page %s): peer-to-peer DMA to it"
                " will fault; hint: %s", report->what, ranges, size, why,
                iommu, host_page, hint);
}

void vfio_dma_listener_commit(MemoryListener *listener)
{
    VFIOContainerBase *bcontainer = container_of(listener, VFIOContainerBase,
                                                 listener);
    VFIODMATracker *tracker = bcontainer->dma_tracker;
    GHashTableIter iter;
    VFIODMAReport *report;

    g_hash_table_iter_init(&iter, tracker->pending);
    while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&report)) {
        vfio_dma_warn(bcontainer, report);
        g_hash_table_add(tracker->warned,
                         g_memdup2(&report->key, sizeof(report->key)));
        g_hash_table_iter_remove(&iter);
    }
}

static gboolean vfio_dma_key_has_owner(gpointer key, gpointer value,
                                       gpointer opaque)
{
    return ((VFIODMAReportKey *)key)->owner == opaque;
}

void vfio_dma_forget_device(VFIODevice *vbasedev)
{
    VFIODMATracker *tracker;

    QTAILQ_FOREACH(tracker, &vfio_dma_trackers, next) {
        g_hash_table_foreach_remove(tracker->warned, vfio_dma_key_has_owner,
                                    OBJECT(vbasedev->dev));
        g_hash_table_foreach_remove(tracker->pending, vfio_dma_key_has_owner,
                                    OBJECT(vbasedev->dev));
    }
}

/*
 * Mapping and unmapping.
 */

static VFIODMASectionId vfio_dma_section_id(MemoryRegionSection *section)
{
    VFIODMASectionId id = {
        .key = section->mr,
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

static bool vfio_dma_outside_iova_ranges(VFIOContainerBase *bcontainer,
                                         hwaddr iova, hwaddr last)
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

static int vfio_dma_unmap_entry(VFIOContainerBase *bcontainer,
                                VFIODMAEntry *entry)
{
    uint64_t first = vfio_dma_entry_first(entry);
    uint64_t last = vfio_dma_entry_last(entry);
    uint64_t half;
    int ret;

    if (first == 0 && last == UINT64_MAX) {
        /* The unmap ioctl doesn't accept a full 64-bit span. */
        half = 1ULL << 63;
        ret = vfio_container_dma_unmap(bcontainer, 0, half, NULL);
        if (ret) {
            return ret;
        }
        first = half;
    }
    return vfio_container_dma_unmap(bcontainer, first, last - first + 1,
                                    NULL);
}

/*
 * Ranges whose unmap failed stay in the IOMMU, detached from any section.
 * Before [@first, @last] is mapped again, an identical one (same range,
 * host address and access) is taken over as is, *@adopted, and any other
 * that overlaps is unmapped first, so that the map does not fail with
 * EEXIST.  Returns 0, or the negative errno of an unmap that failed again.
 */
static int vfio_dma_clear_stale(VFIOContainerBase *bcontainer,
                                uint64_t first, uint64_t last, void *vaddr,
                                bool readonly, bool *adopted)
{
    VFIODMARecord *record = bcontainer->dma_tracker->record;
    VFIODMAEntry *entry, *next;
    int ret;

    *adopted = false;
    for (entry = vfio_dma_record_first(record, first, last); entry;
         entry = next) {
        next = vfio_dma_record_next(entry, first, last);
        if (entry->section.key || entry->state != VFIO_DMA_MAPPED) {
            continue;
        }
        if (vfio_dma_entry_first(entry) == first &&
            vfio_dma_entry_last(entry) == last && entry->vaddr == vaddr &&
            entry->readonly == readonly) {
            trace_vfio_dma_adopt(entry->name, first, last);
            vfio_dma_record_remove(record, entry);
            *adopted = true;
            continue;
        }
        trace_vfio_dma_unmap(entry->name, vfio_dma_entry_first(entry),
                             vfio_dma_entry_last(entry));
        ret = vfio_dma_unmap_entry(bcontainer, entry);
        if (ret) {
            return ret;
        }
        vfio_dma_record_remove(record, entry);
    }
    return 0;
}

/* Guest RAM: host-page aligned, and a failure is the caller's error. */
static bool vfio_dma_map_ram(VFIOContainerBase *bcontainer,
                             MemoryRegionSection *section, Error **errp)
{
    VFIODMASectionId id = vfio_dma_section_id(section);
    hwaddr iova = REAL_HOST_PAGE_ALIGN(section->offset_within_address_space);
    Int128 llend = int128_and(int128_add(int128_make64(id.first),
                                         section->size),
                              int128_exts64(qemu_real_host_page_mask()));
    Int128 llsize = int128_sub(llend, int128_make64(iova));
    g_autofree char *name = NULL;
    VFIODMAEntry *entry;
    void *vaddr;
    uint64_t iommu_page = vfio_dma_pgsize_min(bcontainer->pgsizes);
    bool adopted;
    int ret;

    if (int128_le(llend, int128_make64(iova))) {
        return true;
    }
    vaddr = vfio_dma_section_vaddr(section, iova);
    trace_vfio_listener_region_add_ram(iova,
        int128_get64(int128_sub(llend, int128_one())), vaddr);

    /* a range that an earlier unmap left in the IOMMU would be EEXIST */
    ret = vfio_dma_clear_stale(bcontainer, iova,
                               int128_get64(int128_sub(llend, int128_one())),
                               vaddr, section->readonly, &adopted) ?
          -EEXIST : 0;
    if (!ret && !adopted) {
        ret = vfio_container_dma_map(bcontainer, iova, int128_get64(llsize),
                                     vaddr, section->readonly);
    }
    if (ret) {
        error_setg(errp, "vfio_container_dma_map(%p, 0x%" HWADDR_PRIx ", "
                   "0x%" HWADDR_PRIx ", %p) = %d (%s)",
                   bcontainer, iova, int128_get64(llsize), vaddr, ret,
                   strerror(-ret));
        if (vfio_dma_outside_iova_ranges(bcontainer, iova,
                int128_get64(int128_sub(llend, int128_one())))) {
            g_autofree char *ranges = vfio_dma_iova_ranges_str(bcontainer);

            error_append_hint(errp, "Guest RAM at 0x%" HWADDR_PRIx " lies"
                              " outside the host IOMMU's usable IOVA ranges"
                              " (%s): limit the guest's physical address"
                              " bits (-cpu ...,host-phys-bits-limit=N, or"
                              " libvirt's <maxphysaddr mode='passthrough'"
                              " limit='N'/>).\n", iova, ranges);
        } else if (ret == -EINVAL && iommu_page &&
                   ((iova | int128_get64(llsize)) & (iommu_page - 1))) {
            g_autofree char *page = size_to_str(iommu_page);

            error_append_hint(errp, "Guest memory '%s' at 0x%" HWADDR_PRIx
                              " is not aligned to the host IOMMU's minimum"
                              " page, %s: the host cannot map it for DMA.\n",
                              memory_region_name(section->mr), iova, page);
        }
        return false;
    }

    name = g_strdup_printf("guest RAM (%s)", memory_region_name(section->mr));
    entry = vfio_dma_entry_new(iova,
                               int128_get64(int128_sub(llend, int128_one())),
                               &id, name);
    entry->readonly = section->readonly;
    entry->vaddr = vaddr;
    vfio_dma_record_insert(bcontainer->dma_tracker->record, entry);
    return true;
}

static VFIODMACause vfio_dma_skip_cause(VFIODMASkipReason reason)
{
    return reason == VFIO_DMA_SKIP_OUTSIDE_IOVA ?
           VFIO_DMA_CAUSE_OUTSIDE_IOVA : VFIO_DMA_CAUSE_UNALIGNED;
}

/*
 * The container's DMA entries are all used (the host reported how many it
 * allows): a map would fail with ENOSPC.
 */
static bool vfio_dma_limit_reached(VFIOContainerBase *bcontainer)
{
    return bcontainer->dma_max_mappings &&
           vfio_dma_record_count(bcontainer->dma_tracker->record,
                                 VFIO_DMA_MAPPED) >=
           bcontainer->dma_max_mappings;
}

/* RAM device: map what can be mapped; nothing here is fatal. */
static void vfio_dma_map_ram_device(VFIOContainerBase *bcontainer,
                                    MemoryRegionSection *section)
{
    VFIODMATracker *tracker = bcontainer->dma_tracker;
    VFIODMASectionId id = vfio_dma_section_id(section);
    Range sec;
    const char *name = memory_region_name(section->mr);
    g_autofree char *what = NULL;
    g_autoptr(GArray) pieces = g_array_new(false, false,
                                           sizeof(VFIODMAPiece));
    uint64_t granule;
    bool fallback, vaddr_unaligned;
    int bar;
    guint i;

    range_set_bounds(&sec, id.first, id.last);
    granule = vfio_dma_ram_device_granule(bcontainer->pgsizes,
                                          qemu_real_host_page_size(),
                                          &fallback);
    if (fallback && !tracker->pgsize_warned) {
        g_autofree char *host_page = size_to_str(granule);

        warn_report("vfio: the host IOMMU reports no supported page size;"
                    " device memory (BARs) is mapped for peer-to-peer DMA"
                    " with the host page size, %s", host_page);
        tracker->pgsize_warned = true;
    }

    /*
     * The kernel wants the IOVA and the host address both aligned to the
     * IOMMU page: when QEMU's mmap of the region is not aligned like the
     * IOVA, no part of the section can be mapped.
     */
    vaddr_unaligned = (id.first ^
                       (uintptr_t)vfio_dma_section_vaddr(section, id.first)) &
                      (granule - 1);
    if (vaddr_unaligned) {
        VFIODMAPiece all = { .range = sec, .skip = VFIO_DMA_SKIP_UNALIGNED };

        g_array_append_val(pieces, all);
    } else {
        vfio_dma_range_split(&sec, bcontainer->iova_ranges, granule, pieces);
    }

    if (pieces->len > 1) {
        trace_vfio_dma_trim(name, id.first, id.last, granule, pieces->len);
    }
    what = vfio_dma_describe(section->mr, &bar);
    for (i = 0; i < pieces->len; i++) {
        VFIODMAPiece *piece = &g_array_index(pieces, VFIODMAPiece, i);
        uint64_t first = range_lob(&piece->range);
        uint64_t last = range_upb(&piece->range);
        VFIODMAEntry *entry = vfio_dma_entry_new(first, last, &id, what);
        void *vaddr = vfio_dma_section_vaddr(section, first);
        int ret;

        entry->ram_device = true;
        entry->readonly = section->readonly;
        entry->vaddr = vaddr;
        if (piece->skip != VFIO_DMA_SKIP_NONE) {
            entry->state = VFIO_DMA_SKIPPED;
            entry->reason = piece->skip;
            trace_vfio_dma_skip(name, first, last,
                                vfio_dma_skip_reason_str(piece->skip),
                                granule);
            vfio_dma_report(tracker, section->mr,
                            vfio_dma_skip_cause(piece->skip), &piece->range,
                            granule, 0, vaddr_unaligned);
        } else {
            bool adopted;

            ret = vfio_dma_clear_stale(bcontainer, first, last, vaddr,
                                       section->readonly, &adopted) ?
                  -EEXIST : 0;
            if (!ret && !adopted && vfio_dma_limit_reached(bcontainer)) {
                /* the host would refuse it: don't ask */
                ret = -ENOSPC;
            } else if (!ret && !adopted) {
                /* A piece is at most a section, less than 2^64 bytes. */
                ret = vfio_container_dma_map(bcontainer, first,
                                             last - first + 1, vaddr,
                                             section->readonly);
            }
            if (ret) {
                entry->state = VFIO_DMA_FAILED;
                entry->error = -ret;
                trace_vfio_dma_map_failed(name, first, last, ret);
                vfio_dma_report(tracker, section->mr,
                                VFIO_DMA_CAUSE_MAP_FAILED, &piece->range,
                                granule, -ret, false);
            } else {
                trace_vfio_dma_map(name, first, last, vaddr);
            }
        }
        vfio_dma_record_insert(tracker->record, entry);
    }
}

bool vfio_dma_map_section(VFIOContainerBase *bcontainer,
                          MemoryRegionSection *section, Error **errp)
{
    if (memory_region_is_ram_device(section->mr)) {
        vfio_dma_map_ram_device(bcontainer, section);
        return true;
    }
    return vfio_dma_map_ram(bcontainer, section, errp);
}


void vfio_dma_unmap_section(VFIOContainerBase *bcontainer,
                            MemoryRegionSection *section)
{
    VFIODMARecord *record = bcontainer->dma_tracker->record;
    VFIODMASectionId id = vfio_dma_section_id(section);
    const char *name = memory_region_name(section->mr);
    g_autoptr(GPtrArray) entries = vfio_dma_record_collect_section(record,
                                                                   &id);
    bool unmapped = false;
    guint i;

    for (i = 0; i < entries->len; i++) {
        VFIODMAEntry *entry = g_ptr_array_index(entries, i);
        uint64_t first = vfio_dma_entry_first(entry);
        uint64_t last = vfio_dma_entry_last(entry);
        VFIODMASectionId gone = { .key = NULL, .first = id.first,
                                  .last = id.last };
        VFIODMAEntry *stale;
        int ret;

        if (entry->state != VFIO_DMA_MAPPED) {
            vfio_dma_record_remove(record, entry);
            continue;
        }
        unmapped = true;
        trace_vfio_dma_unmap(name, first, last);
        ret = vfio_dma_unmap_entry(bcontainer, entry);
        if (!ret) {
            vfio_dma_record_remove(record, entry);
            continue;
        }
        error_report("vfio: failed to unmap guest-physical 0x%" PRIx64
                     "-0x%" PRIx64 " (%s) from the host IOMMU: %s; the"
                     " IOMMU keeps it until the range is mapped again or"
                     " the container goes away",
                     first, last, entry->name, strerror(-ret));
        /* The IOMMU still holds it: keep it, detached from the section. */
        stale = vfio_dma_entry_new(first, last, &gone, entry->name);
        stale->readonly = entry->readonly;
        stale->ram_device = entry->ram_device;
        stale->vaddr = entry->vaddr;
        vfio_dma_record_remove(record, entry);
        vfio_dma_record_insert(record, stale);
    }
    if (!unmapped) {
        trace_vfio_dma_unmap_none(name, id.first, id.last);
    }
}
