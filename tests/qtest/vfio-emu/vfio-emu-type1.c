/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: containers and the type1 IOMMU (vfio_iommu_type1.c)
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The checks of VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA are made in the
 * order the kernel's vfio_iommu_type1 driver makes them, so that a call gets
 * the errno it would get on a host.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "standard-headers/linux/pci_regs.h"
#include "vfio-emu-int.h"

/*
 * Containers: the type1 IOMMU
 */

uint64_t emu_min_pgsize(VfioEmu *emu)
{
    uint64_t bitmap = emu->cfg->pgsizes;

    return bitmap ? bitmap & -bitmap : 4096;
}

/*
 * vfio_update_pgsize_bitmap(): the container's page sizes are the
 * domain's, with those below PAGE_SIZE hidden behind PAGE_SIZE
 */
static uint64_t emu_type1_pgsizes(VfioEmu *emu)
{
    uint64_t bitmap = emu->cfg->pgsizes;

    if (bitmap & (emu->page_size - 1)) {
        bitmap &= ~(emu->page_size - 1);
        bitmap |= emu->page_size;
    }
    return bitmap;
}

/* The alignment MAP_DMA and UNMAP_DMA require */
static uint64_t emu_type1_min_pgsize(VfioEmu *emu)
{
    uint64_t bitmap = emu_type1_pgsizes(emu);

    return bitmap ? bitmap & -bitmap : 4096;
}

/* Index of the first mapping that ends at or after @iova */
guint emu_dma_lower_bound(EmuContainer *c, uint64_t iova)
{
    guint lo = 0, hi = c->dmas->len;

    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        EmuDma *d = &g_array_index(c->dmas, EmuDma, mid);

        if (d->iova + d->size - 1 < iova) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The mapping containing @iova, or NULL */
EmuDma *emu_dma_find(EmuContainer *c, uint64_t iova)
{
    guint i = emu_dma_lower_bound(c, iova);
    EmuDma *d;

    if (i == c->dmas->len) {
        return NULL;
    }
    d = &g_array_index(c->dmas, EmuDma, i);
    return d->iova <= iova ? d : NULL;
}

bool emu_dma_overlaps(EmuContainer *c, uint64_t iova, uint64_t last)
{
    guint i = emu_dma_lower_bound(c, iova);

    return i < c->dmas->len && g_array_index(c->dmas, EmuDma, i).iova <= last;
}

bool emu_iova_valid(VfioEmu *emu, uint64_t iova, uint64_t last)
{
    int i;

    if (!emu->cfg->has_ranges) {
        return true;
    }
    for (i = 0; i < emu->cfg->ranges->len; i++) {
        EmuRange *r = &g_array_index(emu->cfg->ranges, EmuRange, i);

        if (iova >= r->start && last <= r->last) {
            return true;
        }
    }
    return false;
}

/* Is [vaddr, vaddr + size) mapped in this process? */
static bool emu_vaddr_mapped(uint64_t vaddr, uint64_t size)
{
    return syscall(SYS_msync, (void *)(uintptr_t)vaddr, (size_t)size,
                   MS_ASYNC) == 0;
}

static void emu_dma_clear(gpointer p)
{
    EmuDma *d = p;

    g_free(d->backing);
    if (d->file >= 0) {
        close(d->file);
    }
}

EmuContainer *emu_container_new(VfioEmu *emu)
{
    EmuContainer *c = g_new0(EmuContainer, 1);

    c->id = ++emu->next_container_id;
    c->fd_open = true;
    c->dmas = g_array_new(false, false, sizeof(EmuDma));
    g_array_set_clear_func(c->dmas, emu_dma_clear);
    g_ptr_array_add(emu->containers, c);
    return c;
}

void emu_container_maybe_free(VfioEmu *emu, EmuContainer *c)
{
    if (c->fd_open || c->ngroups) {
        return;
    }
    g_ptr_array_remove(emu->containers, c);
    g_array_unref(c->dmas);
    g_free(c);
}

/* The last group left: the IOMMU backend and all its mappings go away. */
static void emu_container_release(VfioEmu *emu, EmuContainer *c)
{
    uint64_t dropped = 0;
    int i;

    if (!c->iommu_type) {
        return;
    }
    for (i = 0; i < c->dmas->len; i++) {
        dropped += g_array_index(c->dmas, EmuDma, i).size;
    }
    g_array_set_size(c->dmas, 0);
    c->iommu_type = 0;
    emu_log(emu, "op=RELEASE container=%d unmapped=0x%" PRIx64, c->id,
            dropped);
    emu_write_mappings(emu);
}

void emu_group_detach(VfioEmu *emu, EmuGroup *g)
{
    EmuContainer *c = g->container;

    g->container = NULL;
    c->ngroups--;
    emu_log(emu, "op=GROUP_UNSET_CONTAINER group=%d container=%d", g->id,
            c->id);
    if (!c->ngroups) {
        emu_container_release(emu, c);
        emu_container_maybe_free(emu, c);
    }
}

/*
 * A broken host, for tests of QEMU's checks (no kernel does this): spoil
 * the capability chain of a VFIO_IOMMU_GET_INFO answer.
 */
static void emu_malform_info(void *arg,
                             const struct vfio_iommu_type1_info *info,
                             EmuMalformed how)
{
    struct vfio_info_cap_header *first = arg + info->cap_offset;
    struct vfio_info_cap_header *hdr;

    for (hdr = first; hdr; hdr = hdr->next ? arg + hdr->next : NULL) {
        struct vfio_iommu_type1_info_cap_iova_range *cap = (void *)hdr;
        uint64_t start;

        if (hdr->id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            continue;
        }
        if (how == EMU_MALFORMED_NR_IOVAS) {
            cap->nr_iovas = 0x10000000;
        } else if (how == EMU_MALFORMED_NO_RANGES) {
            cap->nr_iovas = 0;
        } else if (how == EMU_MALFORMED_RANGE_WRAP && cap->nr_iovas) {
            start = cap->iova_ranges[0].start;
            cap->iova_ranges[0].start = cap->iova_ranges[0].end;
            cap->iova_ranges[0].end = start;
        } else if (how == EMU_MALFORMED_RANGES_UNSORTED &&
                   cap->nr_iovas > 1) {
            struct vfio_iova_range r = cap->iova_ranges[0];

            cap->iova_ranges[0] = cap->iova_ranges[1];
            cap->iova_ranges[1] = r;
        } else if (how == EMU_MALFORMED_RANGES_OVERLAP &&
                   cap->nr_iovas > 1) {
            cap->iova_ranges[0].end = cap->iova_ranges[1].start + 0xfff;
        }
    }
    if (how == EMU_MALFORMED_CAP_LOOP) {
        /* the first points to itself: the others are never reached */
        first->next = info->cap_offset;
    } else if (how == EMU_MALFORMED_CAP_PAST_ARGSZ) {
        first->next = info->argsz + 8;
    }
}

static int emu_get_iommu_info(VfioEmu *emu, EmuContainer *c, void *arg)
{
    struct vfio_iommu_type1_info info = { 0 };
    size_t minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
    EmuConfig *cfg = emu->cfg;
    EmuCaps caps = { .buf = g_byte_array_new() };
    struct vfio_iommu_type1_info_cap_migration *mig;
    struct vfio_iommu_type1_info_dma_avail *avail;

    /* vfio_iommu_type1_get_info() */
    memcpy(&info, arg, minsz);
    if (info.argsz < minsz) {
        g_byte_array_unref(caps.buf);
        return -EINVAL;
    }
    minsz = MIN(info.argsz, sizeof(info));
    info.flags = VFIO_IOMMU_INFO_PGSIZES;
    info.iova_pgsizes = emu_type1_pgsizes(emu);

    /* vfio_iommu_migration_build_caps(), then the DMA-avail capability */
    mig = emu_caps_add(&caps, sizeof(*mig),
                       VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
    mig->flags = 0;
    mig->pgsize_bitmap = emu_type1_min_pgsize(emu);
    mig->max_dirty_bitmap_size = ROUND_UP((uint64_t)INT_MAX, 64) / 8;
    avail = emu_caps_add(&caps, sizeof(*avail),
                         VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1);
    avail->avail = c->dma_avail;
    if (cfg->has_ranges) {
        struct vfio_iommu_type1_info_cap_iova_range *cap;
        int i, n = cfg->ranges->len;

        cap = emu_caps_add(&caps,
                           sizeof(*cap) + n * sizeof(cap->iova_ranges[0]),
                           VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1);
        cap->nr_iovas = n;
        for (i = 0; i < n; i++) {
            EmuRange *r = &g_array_index(cfg->ranges, EmuRange, i);

            cap->iova_ranges[i].start = r->start;
            cap->iova_ranges[i].end = r->last;
        }
    }

    emu_caps_copy_out(&caps, arg, sizeof(info), &info.argsz, &info.flags,
                      VFIO_IOMMU_INFO_CAPS, &info.cap_offset);
    g_byte_array_unref(caps.buf);
    memcpy(arg, &info, minsz);
    if (cfg->malformed_info && info.cap_offset) {
        emu_malform_info(arg, &info, cfg->malformed_info);
    }
    return 0;
}

/*
 * The hexadecimal number at @p, followed by @sep; NULL if there is none,
 * else what follows @sep.  (sscanf() made every MAP cost as much as the
 * rest of QEMU's work for it.)
 */
static const char *emu_parse_hex(const char *p, char sep, uint64_t *val)
{
    const char *start = p;

    *val = 0;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            *val = *val << 4 | (*p - '0');
        } else if (*p >= 'a' && *p <= 'f') {
            *val = *val << 4 | (*p - 'a' + 10);
        } else {
            break;
        }
    }
    return p > start && p - start <= 16 && *p == sep ? p + 1 : NULL;
}

/*
 * Would pin_user_pages() (or, for a BAR mmap, follow_fault_pfn()) accept
 * [vaddr, vaddr + size)?  Every page must be in a VMA that allows the
 * access (VM_WRITE for a writable mapping, else VM_READ); a BAR mmap must
 * have its device's memory enabled (decoding on, not in D3hot), as
 * vfio_pci_mmap_huge_fault() gives SIGBUS otherwise.
 */
bool emu_vaddr_pin_ok(VfioEmu *emu, uint64_t vaddr, uint64_t size,
                      bool write)
{
    g_autofree char *maps = NULL;
    uint64_t pos = vaddr, end = vaddr + size;
    const char *line, *p;
    int i;

    if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL)) {
        return emu_vaddr_mapped(vaddr, size);
    }
    /* "lo-hi perms ...": in address order, lo inclusive, hi exclusive */
    for (line = maps; *line && pos < end; line = p ? p + 1 : line + 1) {
        uint64_t lo, hi;
        const char *perms;

        perms = emu_parse_hex(line, '-', &lo);
        perms = perms ? emu_parse_hex(perms, ' ', &hi) : NULL;
        p = strchr(line, '\n');
        if (!p) {
            p = line + strlen(line) - 1;
        }
        if (!perms || p - perms < 4 || hi <= pos) {
            continue;
        }
        if (lo > pos || perms[write ? 1 : 0] == '-') {
            return false;
        }
        pos = hi;
    }
    if (pos < end) {
        return false;
    }
    for (i = 0; i < emu->bar_mmaps->len; i++) {
        EmuBarMmap *r = &g_array_index(emu->bar_mmaps, EmuBarMmap, i);

        if (vaddr < r->start + r->size && r->start < end &&
            !emu_device_memory_enabled(r->dev)) {
            return false;
        }
    }
    return true;
}

/* The mapping that overlaps [iova, iova + size), as vfio_find_dma() */
static EmuDma *emu_dma_find_range(EmuContainer *c, uint64_t iova,
                                  uint64_t size)
{
    guint i = emu_dma_lower_bound(c, iova);
    EmuDma *d;

    if (i == c->dmas->len) {
        return NULL;
    }
    d = &g_array_index(c->dmas, EmuDma, i);
    return d->iova <= iova + size - 1 ? d : NULL;
}

static int emu_do_map(VfioEmu *emu, EmuContainer *c,
                      struct vfio_iommu_type1_dma_map *map,
                      const char *backing)
{
    uint64_t iova = map->iova, vaddr = map->vaddr, size = map->size;
    uint64_t pgsize = emu_type1_min_pgsize(emu);
    bool set_vaddr = map->flags & VFIO_DMA_MAP_FLAG_VADDR;
    bool prot = map->flags &
                (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    bool wraps = iova + size - 1 < iova || vaddr + size - 1 < vaddr;
    EmuDma dma, *d;

    /* The same checks, in the same order, as vfio_dma_do_map() */
    if (emu->cfg->kernel >= EMU_KERNEL_7_3) {
        /* 6.19 and later: check_add_overflow() first, EOVERFLOW */
        if (!size) {
            return -EINVAL;
        }
        if (wraps) {
            return -EOVERFLOW;
        }
        if ((prot && set_vaddr) || (!prot && !set_vaddr)) {
            return -EINVAL;
        }
        if ((size | iova | vaddr) & (pgsize - 1)) {
            return -EINVAL;
        }
    } else {
        if ((prot && set_vaddr) || (!prot && !set_vaddr)) {
            return -EINVAL;
        }
        if (!size || (size | iova | vaddr) & (pgsize - 1)) {
            return -EINVAL;
        }
        if (wraps) {
            return -EINVAL;
        }
    }
    d = emu_dma_find_range(c, iova, size);
    if (set_vaddr) {
        /* VFIO_UPDATE_VADDR: a new vaddr for an invalidated mapping */
        if (!d) {
            return -ENOENT;
        }
        if (!d->vaddr_invalid || d->iova != iova || d->size != size) {
            return -EINVAL;
        }
        d->vaddr = vaddr;
        d->vaddr_invalid = false;
        g_free(d->backing);
        d->backing = g_strdup(backing);
        return 0;
    }
    if (d) {
        return -EEXIST;
    }
    if (!c->dma_avail) {
        return -ENOSPC;
    }
    if (!emu_iova_valid(emu, iova, iova + size - 1)) {
        return -EINVAL;
    }
    /* vfio_pin_map_dma(): pinning fails with EFAULT */
    if (!emu_vaddr_pin_ok(emu, vaddr, size,
                          map->flags & VFIO_DMA_MAP_FLAG_WRITE)) {
        return -EFAULT;
    }

    dma = (EmuDma) {
        .iova = iova,
        .size = size,
        .vaddr = vaddr,
        .flags = map->flags,
        .backing = g_strdup(backing),
        .file = -1,
    };
    g_array_insert_val(c->dmas, emu_dma_lower_bound(c, iova), dma);
    c->dma_avail--;
    return 0;
}

/*
 * [container] check_mappings, an oracle for fuzzing QEMU: a mapping of BAR
 * memory must be where the device's config space puts that memory (the
 * BAR's address plus the offset in the BAR), inside the BAR (a sub-page
 * BAR may be mapped as a whole page), clear of the MSI-X table and PBA,
 * whose pages QEMU traps, and only while the device decodes memory.  No
 * kernel checks this: a violation aborts the process, with the reason.
 */
static G_NORETURN G_GNUC_PRINTF(4, 5)
void emu_check_fail(int container, uint64_t iova, uint64_t size,
                    const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "vfio-emu: check_mappings: container=%d iova=0x%"
            PRIx64 " size=0x%" PRIx64 ": %s\n", container, iova, size, why);
    abort();
}

static bool emu_overlaps(uint64_t a, uint64_t alen, uint64_t b,
                         uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static void emu_check_dma(VfioEmu *emu, int container, uint64_t iova,
                          uint64_t size, const char *backing)
{
    const char *sep = g_strrstr(backing, ":bar");
    g_autofree char *name = NULL;
    uint8_t config[EMU_CONFIG_SIZE];
    EmuDeviceCfg *cfg;
    EmuDevice *dev = NULL;
    uint64_t off, addr, bar_size, table, pba;
    int bar;
    guint i;

    if (!sep) {
        return;                 /* guest RAM */
    }
    /* "DEVICE:barN+0xOFFSET", as vfio_emu_describe_vaddr() writes it */
    name = g_strndup(backing, sep - backing);
    bar = sep[4] - '0';
    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *d = g_ptr_array_index(emu->devices, i);

        if (!strcmp(d->cfg->name, name)) {
            dev = d;
        }
    }
    if (!dev || bar < 0 || bar >= EMU_NUM_BARS ||
        !g_str_has_prefix(sep + 5, "+0x") ||
        !emu_parse_hex(sep + 8, '\0', &off)) {
        emu_check_fail(container, iova, size, "unknown backing %s", backing);
    }
    cfg = dev->cfg;
    if (emu_raw_pread(dev->memfd, config, sizeof(config),
                      VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) !=
        sizeof(config)) {
        emu_check_fail(container, iova, size, "cannot read the config space "
                       "of %s", name);
    }
    /* (ldl_le_p() returns an int) */
    addr = (uint32_t)ldl_le_p(config + PCI_BASE_ADDRESS_0 + 4 * bar) &
           (uint32_t)PCI_BASE_ADDRESS_MEM_MASK;
    if (cfg->bar[bar].mem64) {
        addr |= (uint64_t)(uint32_t)ldl_le_p(config + PCI_BASE_ADDRESS_0 +
                                             4 * (bar + 1)) << 32;
    }
    if (!emu_device_memory_enabled(dev)) {
        emu_check_fail(container, iova, size, "%s is mapped while %s does "
                       "not decode memory (command 0x%x)", backing, name,
                       lduw_le_p(config + PCI_COMMAND));
    }
    bar_size = MAX(cfg->bar[bar].size, emu->page_size);
    if (off + size > bar_size) {
        emu_check_fail(container, iova, size, "%s: the mapping ends past "
                       "bar%d (0x%" PRIx64 " bytes)", backing, bar,
                       cfg->bar[bar].size);
    }
    if (iova != addr + off) {
        emu_check_fail(container, iova, size, "%s is mapped at 0x%" PRIx64
                       ", but bar%d is at 0x%" PRIx64 ": it belongs at 0x%"
                       PRIx64, backing, iova, bar, addr, addr + off);
    }
    table = (uint64_t)cfg->msix_entries * PCI_MSIX_ENTRY_SIZE;
    pba = DIV_ROUND_UP(cfg->msix_entries, 64) * 8;
    if (table && cfg->msix_table_bar == bar &&
        emu_overlaps(off, size, cfg->msix_table_offset, table)) {
        emu_check_fail(container, iova, size, "%s: the mapping covers the "
                       "MSI-X table (bar%d+0x%x, 0x%" PRIx64 " bytes)",
                       backing, bar, cfg->msix_table_offset, table);
    }
    if (table && cfg->msix_pba_bar == bar &&
        emu_overlaps(off, size, cfg->msix_pba_offset, pba)) {
        emu_check_fail(container, iova, size, "%s: the mapping covers the "
                       "MSI-X PBA (bar%d+0x%x, 0x%" PRIx64 " bytes)",
                       backing, bar, cfg->msix_pba_offset, pba);
    }
}

/*
 * Every mapping of every container, against the config spaces as they are
 * now: called before a config space access changes anything, when QEMU
 * has finished with the previous one.
 */
void emu_check_mappings(VfioEmu *emu)
{
    guint i, j;

    if (!emu->cfg->check_mappings) {
        return;
    }
    for (i = 0; i < emu->containers->len; i++) {
        EmuContainer *c = g_ptr_array_index(emu->containers, i);

        for (j = 0; j < c->dmas->len; j++) {
            EmuDma *d = &g_array_index(c->dmas, EmuDma, j);

            if (!d->vaddr_invalid) {
                emu_check_dma(emu, c->id, d->iova, d->size, d->backing);
            }
        }
    }
}

static int emu_map_dma(VfioEmu *emu, EmuContainer *c, void *arg)
{
    struct vfio_iommu_type1_dma_map map;
    size_t minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
    uint32_t mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE |
                    VFIO_DMA_MAP_FLAG_VADDR;
    g_autoptr(GPtrArray) backings = g_ptr_array_new_with_free_func(g_free);
    const char *backing;
    int ret, injected;

    memcpy(&map, arg, minsz);
    g_ptr_array_add(backings, vfio_emu_describe_vaddr(emu, map.vaddr));
    backing = g_ptr_array_index(backings, 0);

    if (map.argsz < minsz || map.flags & ~mask) {
        ret = -EINVAL;
        injected = 0;
    } else {
        injected = emu_check_faults(emu, EMU_FAULT_MAP, map.iova, map.size,
                                    backings);
        if (emu->cfg->check_mappings && !injected &&
            !(map.flags & VFIO_DMA_MAP_FLAG_VADDR)) {
            /* asked for: the config space already says where it goes */
            emu_check_dma(emu, c->id, map.iova, map.size, backing);
        }
        ret = injected ? -injected : emu_do_map(emu, c, &map, backing);
    }

    emu_log(emu, "op=MAP container=%d iova=0x%" PRIx64 " size=0x%" PRIx64
            " vaddr=0x%" PRIx64 " flags=0x%x ret=%d backing=%s%s",
            c->id, (uint64_t)map.iova, (uint64_t)map.size,
            (uint64_t)map.vaddr, map.flags, ret, backing,
            injected ? " injected=1" : "");
    if (!ret) {
        emu_write_mappings(emu);
    }
    return ret;
}

static int emu_do_unmap(VfioEmu *emu, EmuContainer *c,
                        struct vfio_iommu_type1_dma_unmap *unmap,
                        struct vfio_bitmap *bitmap, uint64_t *unmapped)
{
    uint64_t pgsize = emu_type1_min_pgsize(emu);
    uint64_t iova = unmap->iova, size = unmap->size, end;
    bool unmap_all = unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL;
    bool v2 = c->iommu_type == VFIO_TYPE1v2_IOMMU;
    EmuDma *d;
    guint i;

    bool invalidate_vaddr = unmap->flags & VFIO_DMA_UNMAP_FLAG_VADDR;
    guint first;

    *unmapped = 0;
    /* The same checks, in the same order, as vfio_dma_do_unmap() */
    if (iova & (pgsize - 1)) {
        return -EINVAL;
    }
    if (unmap_all) {
        if (iova || size) {
            return -EINVAL;
        }
        size = UINT64_MAX;
    } else if (!size || size & (pgsize - 1)) {
        return -EINVAL;
    } else if (iova + size - 1 < iova) {
        return emu->cfg->kernel >= EMU_KERNEL_7_3 ? -EOVERFLOW : -EINVAL;
    }
    if (unmap->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
        /* the bitmap's page size must be the IOMMU's smallest */
        if (!c->dirty_tracking || bitmap->pgsize != pgsize) {
            return -EINVAL;
        }
    }

    end = iova + size;     /* may wrap to 0 for UNMAP_ALL: use last */
    if (v2 && !unmap_all) {
        d = emu_dma_find(c, iova);
        if (d && d->iova != iova) {
            return -EINVAL;
        }
        d = emu_dma_find(c, end - 1);
        if (d && d->iova + d->size != end) {
            return -EINVAL;
        }
    }

    i = first = emu_dma_lower_bound(c, iova);
    while (i < c->dmas->len) {
        d = &g_array_index(c->dmas, EmuDma, i);
        if (d->iova > iova + size - 1) {
            break;
        }
        if (!v2 && iova > d->iova) {
            break;
        }
        if (invalidate_vaddr) {
            /* Invalidated twice: undo this call's invalidations */
            if (d->vaddr_invalid) {
                while (first < i) {
                    g_array_index(c->dmas, EmuDma, first++).vaddr_invalid =
                        false;
                }
                *unmapped = 0;
                return -EINVAL;
            }
            d->vaddr_invalid = true;
            *unmapped += d->size;
            i++;
            continue;
        }
        if (unmap->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
            /* No page is pinned by a vendor driver: all of it is dirty */
            uint64_t first_bit = (d->iova - iova) / pgsize;
            uint64_t nbits = d->size / pgsize, b;

            for (b = first_bit; b < first_bit + nbits; b++) {
                ((uint8_t *)(uintptr_t)bitmap->data)[b / 8] |= 1 << (b % 8);
            }
        }
        *unmapped += d->size;
        g_array_remove_index(c->dmas, i);
        c->dma_avail++;
    }
    return 0;
}

static int emu_unmap_dma(VfioEmu *emu, EmuContainer *c, void *arg)
{
    struct vfio_iommu_type1_dma_unmap unmap;
    size_t minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
    uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                    VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL;
    g_autoptr(GPtrArray) backings = g_ptr_array_new();
    struct vfio_bitmap bitmap = { 0 };
    const EmuFault *f = NULL;
    uint64_t unmapped = 0;
    int ret, injected = 0;

    memcpy(&unmap, arg, minsz);
    /* vfio_iommu_type1_unmap_dma() */
    if (unmap.argsz < minsz || unmap.flags & ~mask ||
        ((unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) &&
         (unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL |
                         VFIO_DMA_UNMAP_FLAG_VADDR)))) {
        ret = -EINVAL;
    } else if ((unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) &&
               (unmap.argsz < minsz + sizeof(bitmap) ||
                (memcpy(&bitmap, (uint8_t *)arg + minsz, sizeof(bitmap)),
                 !bitmap.pgsize || !bitmap.data ||
                 bitmap.size < DIV_ROUND_UP(unmap.size / bitmap.pgsize,
                                            64) * 8))) {
        ret = -EINVAL;
    } else {
        bool all = unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL;
        uint64_t last = all ? UINT64_MAX : unmap.iova + unmap.size - 1;
        guint i;

        for (i = emu_dma_lower_bound(c, unmap.iova);
             (all || unmap.size) && i < c->dmas->len; i++) {
            EmuDma *d = &g_array_index(c->dmas, EmuDma, i);

            if (d->iova > last) {
                break;
            }
            g_ptr_array_add(backings, d->backing);
        }
        f = emu_match_fault(emu, EMU_FAULT_UNMAP, unmap.iova, unmap.size,
                            backings);
        injected = f ? f->err : 0;
        ret = injected ? -injected :
              f && f->unmaps_nothing ? 0 :
              emu_do_unmap(emu, c, &unmap, &bitmap, &unmapped);
    }

    emu_log(emu, "op=UNMAP container=%d iova=0x%" PRIx64 " size=0x%" PRIx64
            " flags=0x%x ret=%d unmapped=0x%" PRIx64 "%s",
            c->id, (uint64_t)unmap.iova, (uint64_t)unmap.size, unmap.flags,
            ret, unmapped, f ? " injected=1" : "");
    if (ret) {
        return ret;
    }
    if (emu->cfg->check_mappings && !f &&
        c->iommu_type == VFIO_TYPE1v2_IOMMU &&
        !(unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL |
                         VFIO_DMA_UNMAP_FLAG_VADDR)) &&
        unmapped != unmap.size) {
        emu_check_fail(c->id, unmap.iova, unmap.size, "UNMAP_DMA unmapped "
                       "only 0x%" PRIx64 " bytes: the rest was never mapped",
                       unmapped);
    }
    if (unmapped) {
        emu_write_mappings(emu);
    }
    /*
     * Report how much was unmapped (only on success, like the kernel), or
     * what the fault says
     */
    unmap.size = f && f->has_unmapped && !f->unmaps_nothing ? f->unmapped :
                 unmapped;
    memcpy(arg, &unmap, minsz);
    return 0;
}

/* vfio_iommu_type1_dirty_pages() */
static int emu_dirty_pages(VfioEmu *emu, EmuContainer *c, void *arg)
{
    struct vfio_iommu_type1_dirty_bitmap dirty;
    size_t minsz = offsetofend(struct vfio_iommu_type1_dirty_bitmap, flags);
    uint32_t mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
                    VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
                    VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
    struct vfio_iommu_type1_dirty_bitmap_get range;
    uint64_t pgsize = emu_type1_min_pgsize(emu), b;
    guint i;

    if (c->iommu_type != VFIO_TYPE1v2_IOMMU) {
        return -EACCES;
    }
    memcpy(&dirty, arg, minsz);
    if (dirty.argsz < minsz || dirty.flags & ~mask) {
        return -EINVAL;
    }
    /* only one flag at a time */
    if (!dirty.flags || (dirty.flags & (dirty.flags - 1))) {
        return -EINVAL;
    }
    if (dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
        c->dirty_tracking = true;
        return 0;
    }
    if (dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
        c->dirty_tracking = false;
        return 0;
    }
    if (dirty.argsz < minsz + sizeof(range)) {
        return -EINVAL;
    }
    memcpy(&range, (uint8_t *)arg + minsz, sizeof(range));
    if (!range.size || range.iova + range.size - 1 < range.iova ||
        !range.bitmap.pgsize || !range.bitmap.data ||
        range.bitmap.size < DIV_ROUND_UP(range.size / range.bitmap.pgsize,
                                         64) * 8) {
        return -EINVAL;
    }
    if (range.bitmap.pgsize != pgsize || range.iova & (pgsize - 1) ||
        range.size & (pgsize - 1)) {
        return -EINVAL;
    }
    if (!c->dirty_tracking) {
        return -EINVAL;
    }
    /* Only whole mappings, all of whose pages are dirty */
    for (i = emu_dma_lower_bound(c, range.iova); i < c->dmas->len; i++) {
        EmuDma *d = &g_array_index(c->dmas, EmuDma, i);

        if (d->iova > range.iova + range.size - 1) {
            break;
        }
        if (d->iova < range.iova ||
            d->iova + d->size > range.iova + range.size) {
            return -EINVAL;
        }
        for (b = (d->iova - range.iova) / pgsize;
             b < (d->iova + d->size - range.iova) / pgsize; b++) {
            ((uint8_t *)(uintptr_t)range.bitmap.data)[b / 8] |= 1 << (b % 8);
        }
    }
    return 0;
}

int emu_container_ioctl(VfioEmu *emu, EmuContainer *c,
                        unsigned long request, void *arg)
{
    unsigned int iarg = (uintptr_t)arg;

    switch (request) {
    case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
        switch (iarg) {
        case VFIO_TYPE1_IOMMU:
        case VFIO_TYPE1v2_IOMMU:
        case VFIO_UNMAP_ALL:
            return 1;
        case VFIO_UPDATE_VADDR:
        case VFIO_DMA_CC_IOMMU:
            /* vfio_iommu_type1_check_extension(), once the IOMMU is set */
            return c->iommu_type ? 1 : 0;
        default:
            return 0;
        }
    case VFIO_SET_IOMMU:
        if (!c->ngroups || c->iommu_type) {
            return -EINVAL;
        }
        if (iarg != VFIO_TYPE1_IOMMU && iarg != VFIO_TYPE1v2_IOMMU) {
            return -ENODEV;
        }
        c->iommu_type = iarg;
        c->dma_avail = emu->cfg->dma_entry_limit;
        emu_log(emu, "op=SET_IOMMU container=%d type=%u", c->id, iarg);
        return 0;
    }

    if (!c->iommu_type) {
        return -EINVAL;
    }
    switch (request) {
    case VFIO_IOMMU_GET_INFO:
        return emu_get_iommu_info(emu, c, arg);
    case VFIO_IOMMU_MAP_DMA:
        return emu_map_dma(emu, c, arg);
    case VFIO_IOMMU_UNMAP_DMA:
        return emu_unmap_dma(emu, c, arg);
    case VFIO_IOMMU_DIRTY_PAGES:
        return emu_dirty_pages(emu, c, arg);
    default:
        return -ENOTTY;
    }
}
