/*
 * VFIO DMA mappings over QMP (x-query-vfio-dma-mappings) and HMP
 * (info vfio-dma)
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vfio.h"
#include "qemu/cutils.h"
#include "qemu/range.h"
#include "qom/object.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/qdev-core.h"
#include "hw/vfio/vfio-dma-container.h"
#include "hw/vfio/vfio-dma-map.h"

static VfioIommuBackend vfio_dma_query_backend(VFIODMAContainer *bcontainer)
{
    if (object_dynamic_cast(OBJECT(bcontainer), TYPE_VFIO_IOMMU_IOMMUFD)) {
        return VFIO_IOMMU_BACKEND_IOMMUFD;
    }
    if (object_dynamic_cast(OBJECT(bcontainer), TYPE_VFIO_IOMMU_SPAPR)) {
        return VFIO_IOMMU_BACKEND_SPAPR;
    }
    return VFIO_IOMMU_BACKEND_LEGACY;
}

typedef struct VFIODMAQuery {
    bool has_state;
    VfioDmaMappingState state;
    VfioDmaMappingList **tail;
} VFIODMAQuery;

/* One row: [@first, @last] of @entry, in @state */
static void vfio_dma_query_range(VFIODMAQuery *query, VFIODMAEntry *entry,
                                 uint64_t first, uint64_t last,
                                 VfioDmaMappingState state,
                                 VfioDmaSkipReason reason)
{
    VfioDmaMapping *m;
    uint64_t size = last - first;

    if (query->has_state && state != query->state) {
        return;
    }
    m = g_new0(VfioDmaMapping, 1);
    m->state = state;
    if (state == VFIO_DMA_MAPPING_STATE_SKIPPED) {
        m->has_reason = true;
        m->reason = reason;
    } else if (state == VFIO_DMA_MAPPING_STATE_FAILED) {
        m->has_q_errno = true;
        m->q_errno = entry->error;
        m->error = g_strdup(strerror(entry->error));
    }
    m->iova = first;
    /* Only a range of all 2^64 addresses does not fit; say UINT64_MAX. */
    m->size = size == UINT64_MAX ? size : size + 1;
    m->read_only = entry->readonly;
    m->ram_device = entry->ram_device;
    if (entry->section.mr) {
        /* The section's region is referenced until region_del. */
        Object *owner = memory_region_owner((MemoryRegion *)entry->section.mr);

        m->backing = vfio_dma_describe(entry->section.mr);
        if (entry->ram_device && owner) {
            m->device = object_get_canonical_path(owner);
        }
    } else {
        m->backing = g_strdup(entry->name);
    }
    QAPI_LIST_APPEND(query->tail, m);
}

/* The rows of @entry: its interior, and the unaligned head and tail */
static void vfio_dma_query_entry(VFIODMAQuery *query, VFIODMAEntry *entry)
{
    VfioDmaSkipReason unaligned = VFIO_DMA_SKIP_REASON_UNALIGNED;
    uint64_t first = vfio_dma_entry_interior_first(entry);
    uint64_t last = vfio_dma_entry_interior_last(entry);

    if (entry->head) {
        vfio_dma_query_range(query, entry, vfio_dma_entry_first(entry),
                             first - 1, VFIO_DMA_MAPPING_STATE_SKIPPED,
                             unaligned);
    }
    vfio_dma_query_range(query, entry, first, last, entry->state,
                         entry->reason);
    if (entry->tail) {
        vfio_dma_query_range(query, entry, last + 1,
                             vfio_dma_entry_last(entry),
                             VFIO_DMA_MAPPING_STATE_SKIPPED, unaligned);
    }
}

static VfioDmaContainer *vfio_dma_query_container(VFIODMAContainer *bcontainer,
                                                  bool has_state,
                                                  VfioDmaMappingState state)
{
    VfioDmaContainer *c = g_new0(VfioDmaContainer, 1);
    VFIODMARecord *record = bcontainer->dma_record;
    VfioIovaRangeList **ranges_tail = &c->iova_ranges;
    strList **devices_tail = &c->devices;
    VFIODMAQuery query = {
        .has_state = has_state,
        .state = state,
        .tail = &c->mappings,
    };
    VFIODMAEntry *entry;
    VFIODevice *vbasedev;
    GList *l;

    c->backend = vfio_dma_query_backend(bcontainer);
    c->page_sizes = bcontainer->pgsizes;
    c->min_page_size = bcontainer->pgsizes & -bcontainer->pgsizes;
    for (l = bcontainer->iova_ranges; l; l = l->next) {
        VfioIovaRange *r = g_new0(VfioIovaRange, 1);

        r->start = range_lob(l->data);
        r->last = range_upb(l->data);
        QAPI_LIST_APPEND(ranges_tail, r);
    }
    c->dma_entries = vfio_dma_record_mapped(record);
    c->dma_limit = bcontainer->dma_max_mappings;
    QLIST_FOREACH(vbasedev, &bcontainer->device_list, container_next) {
        QAPI_LIST_APPEND(devices_tail,
                         object_get_canonical_path(OBJECT(vbasedev->dev)));
    }
    for (entry = vfio_dma_record_first(record, 0, UINT64_MAX); entry;
         entry = vfio_dma_record_next(entry, 0, UINT64_MAX)) {
        vfio_dma_query_entry(&query, entry);
    }
    return c;
}

VfioDmaContainerList *qmp_x_query_vfio_dma_mappings(const char *device,
                                                    bool has_state,
                                                    VfioDmaMappingState state,
                                                    Error **errp)
{
    VfioDmaContainerList *head = NULL, **tail = &head;
    VFIODMAContainer *only = NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
    VFIODevice *vbasedev;

    if (device) {
        bool ambiguous = false;
        Object *obj = object_resolve_path_type(device, TYPE_DEVICE,
                                               &ambiguous);
        if (!obj) {
            error_setg(errp, "Device '%s' not found%s", device,
                       ambiguous ? " (the name is ambiguous)" : "");
            return NULL;
        }
        vbasedev = vfio_get_vfio_device(obj);
        if (!vbasedev) {
            error_setg(errp, "Device '%s' is not a VFIO device", device);
            return NULL;
        }
        if (!vbasedev->bcontainer) {
            error_setg(errp, "VFIO device '%s' is not attached to a"
                       " container", device);
            return NULL;
        }
        only = vbasedev->bcontainer;
    }

    /* Every container, in the order of their first device */
    QLIST_FOREACH(vbasedev, &vfio_device_list, global_next) {
        VFIODMAContainer *bcontainer = vbasedev->bcontainer;

        if (!bcontainer || (only && bcontainer != only) ||
            !g_hash_table_add(seen, bcontainer)) {
            continue;
        }
        QAPI_LIST_APPEND(tail, vfio_dma_query_container(bcontainer,
                                                        has_state, state));
    }
    return head;
}

static char *vfio_dma_query_pgsizes_str(uint64_t pgsizes)
{
    GString *str = g_string_new(NULL);
    int bit;

    for (bit = 0; bit < 64; bit++) {
        if (pgsizes & (1ULL << bit)) {
            g_autofree char *size = size_to_str(1ULL << bit);

            g_string_append_printf(str, "%s%s", str->len ? " " : "", size);
        }
    }
    if (!str->len) {
        g_string_append(str, "none reported");
    }
    return g_string_free(str, false);
}

/* "mapped", "skipped: unaligned", "failed: Bad address" */
static char *vfio_dma_query_state_str(VfioDmaMapping *e)
{
    if (e->has_reason) {
        return g_strdup_printf("skipped: %s",
                               e->reason == VFIO_DMA_SKIP_REASON_UNALIGNED ?
                               "unaligned" : "outside IOVA");
    }
    if (e->has_q_errno) {
        return g_strdup_printf("failed: %s", e->error);
    }
    return g_strdup(VfioDmaMappingState_str(e->state));
}

void hmp_info_vfio_dma(Monitor *mon, const QDict *qdict)
{
    g_autoptr(VfioDmaContainerList) containers = NULL;
    VfioDmaContainerList *c;
    Error *err = NULL;
    int n = 0;

    containers = qmp_x_query_vfio_dma_mappings(NULL, false, 0, &err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    if (!containers) {
        monitor_printf(mon, "No VFIO container\n");
        return;
    }
    for (c = containers; c; c = c->next) {
        VfioDmaContainer *v = c->value;
        g_autofree char *pgsizes =
            vfio_dma_query_pgsizes_str(v->page_sizes);
        VfioIovaRangeList *r;
        strList *d;
        VfioDmaMappingList *m;

        monitor_printf(mon, "Container %d: %s, IOMMU page sizes: %s\n", n++,
                       VfioIommuBackend_str(v->backend), pgsizes);
        monitor_printf(mon, "  usable IOVA ranges:");
        if (!v->iova_ranges) {
            monitor_printf(mon, " not reported");
        }
        for (r = v->iova_ranges; r; r = r->next) {
            monitor_printf(mon, " 0x%" PRIx64 "-0x%" PRIx64, r->value->start,
                           r->value->last);
        }
        monitor_printf(mon, "\n  DMA entries: %" PRIu64 " used, ",
                       v->dma_entries);
        if (v->dma_limit) {
            monitor_printf(mon, "limit %" PRIu64 "\n", v->dma_limit);
        } else {
            monitor_printf(mon, "limit unknown\n");
        }
        monitor_printf(mon, "  devices:");
        for (d = v->devices; d; d = d->next) {
            monitor_printf(mon, " %s", d->value);
        }
        monitor_printf(mon, "\n  %-14s %8s %-2s %-25s %s\n",
                       "IOVA", "size", "rw", "state", "backing");
        for (m = v->mappings; m; m = m->next) {
            VfioDmaMapping *e = m->value;
            g_autofree char *size = size_to_str(e->size);
            g_autofree char *state = vfio_dma_query_state_str(e);

            monitor_printf(mon, "  0x%012" PRIx64 " %8s %-2s %-25s %s\n",
                           e->iova, size, e->read_only ? "r" : "rw", state,
                           e->backing);
        }
    }
}
