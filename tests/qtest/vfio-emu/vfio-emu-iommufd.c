/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: iommufd (/dev/iommu) and the device cdevs
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "standard-headers/linux/pci_regs.h"
#include "vfio-emu-int.h"

/*
 * iommufd: /dev/iommu contexts, their objects and the device cdevs
 *
 * Each ioctl makes the checks of the kernel's iommufd (Linux 6.12 and 7.3)
 * in its order; the comments name the kernel function a group of checks stands
 * for.  An IOAS keeps its mappings in an EmuContainer, so that the state
 * files show them like a type1 container's.
 */

/* The kernel's copy of an iommufd ioctl's struct, and the caller's */
typedef struct EmuUcmd {
    void *cmd;
    void *ubuf;
    uint32_t usize;
    size_t ksize;
} EmuUcmd;

static void emu_ucmd_respond(EmuUcmd *u)
{
    memcpy(u->ubuf, u->cmd, MIN(u->usize, u->ksize));
}

/* The object @id of @type (-1: any), or NULL */
static EmuObj *emu_obj_get(EmuIommufd *ictx, uint32_t id, int type)
{
    EmuObj *o = g_hash_table_lookup(ictx->objs, GUINT_TO_POINTER(id));

    return o && (type < 0 || o->type == type) ? o : NULL;
}

/* IDs come from an xarray in the kernel: the lowest free one from 1 */
static EmuObj *emu_obj_new(EmuIommufd *ictx, EmuObjType type)
{
    EmuObj *o = g_new0(EmuObj, 1);
    uint32_t id = 1;

    while (g_hash_table_contains(ictx->objs, GUINT_TO_POINTER(id))) {
        id++;
    }
    o->type = type;
    o->id = id;
    g_hash_table_insert(ictx->objs, GUINT_TO_POINTER(id), o);
    return o;
}

static void emu_obj_remove(EmuIommufd *ictx, EmuObj *o)
{
    g_hash_table_remove(ictx->objs, GUINT_TO_POINTER(o->id));
}

static gint emu_obj_cmp(gconstpointer a, gconstpointer b)
{
    const EmuObj *oa = *(EmuObj * const *)a;
    const EmuObj *ob = *(EmuObj * const *)b;

    return oa->id < ob->id ? -1 : oa->id > ob->id;
}

/* The objects of @ictx in ID order */
static GPtrArray *emu_obj_list(EmuIommufd *ictx)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, ictx->objs);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        g_ptr_array_add(list, value);
    }
    g_ptr_array_sort(list, emu_obj_cmp);
    return list;
}

/* Has @ioas a domain (a HWPT)?  With @attached, one with a device? */
static bool emu_ioas_has_domain(EmuIommufd *ictx, EmuObj *ioas,
                                bool attached)
{
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, ictx->objs);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        EmuObj *o = value;

        if (o->type == EMU_OBJ_HWPT && o->parent == ioas &&
            (!attached || o->refs)) {
            return true;
        }
    }
    return false;
}

/* iopt->iova_alignment: the domains' smallest IOMMU page, else 1 */
static uint64_t emu_ioas_alignment(VfioEmu *emu, EmuIommufd *ictx,
                                   EmuObj *ioas)
{
    return emu_ioas_has_domain(ictx, ioas, false) ? emu_min_pgsize(emu) : 1;
}

/* The usable IOVA ranges of @ioas: the devices' while one is attached */
static GArray *emu_ioas_ranges(VfioEmu *emu, EmuIommufd *ictx, EmuObj *ioas)
{
    GArray *ranges = g_array_new(false, false, sizeof(EmuRange));
    EmuRange all = { 0, UINT64_MAX };

    if (emu->cfg->has_ranges && emu_ioas_has_domain(ictx, ioas, true)) {
        g_array_append_vals(ranges, emu->cfg->ranges->data,
                            emu->cfg->ranges->len);
    } else {
        g_array_append_val(ranges, all);
    }
    return ranges;
}

static bool emu_ioas_iova_usable(VfioEmu *emu, EmuIommufd *ictx,
                                 EmuObj *ioas, uint64_t iova, uint64_t last)
{
    return !emu_ioas_has_domain(ictx, ioas, true) ||
           emu_iova_valid(emu, iova, last);
}

/*
 * Can [vaddr, vaddr + size) be pinned?  Only mapped memory can, and not a
 * BAR mmap: the kernel's vfio-pci maps BARs as PFNMAP VMAs, which
 * pin_user_pages() refuses with EFAULT.
 */
static bool emu_vaddr_pinnable(VfioEmu *emu, uint64_t vaddr, uint64_t size,
                               bool write)
{
    uint64_t start = vaddr & ~(emu->page_size - 1);
    uint64_t end = ROUND_UP(vaddr + size, emu->page_size);
    int i;

    if (!emu_vaddr_pin_ok(emu, start, end - start, write)) {
        return false;
    }
    for (i = 0; i < emu->bar_mmaps->len; i++) {
        EmuBarMmap *r = &g_array_index(emu->bar_mmaps, EmuBarMmap, i);

        if (vaddr < r->start + r->size && r->start < vaddr + size) {
            return false;
        }
    }
    return true;
}

/*
 * Can [start, start + size) of @fd be pinned?  memfd_pin_folios() takes
 * shmem (memfd, tmpfs) and hugetlbfs files only, and nothing at or past
 * the end of the file: EINVAL.
 */
static int emu_file_pinnable(int fd, uint64_t start, uint64_t size)
{
    struct statfs sfs;
    struct stat st;

    if (fstatfs(fd, &sfs) || fstat(fd, &st)) {
        return -EBADF;
    }
    if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != HUGETLBFS_MAGIC) {
        return -EINVAL;
    }
    if (start + size - 1 >= st.st_size) {
        return -EINVAL;
    }
    return 0;
}

/* Pin what backs @d: its file pages, or its user memory */
static int emu_dma_pin(VfioEmu *emu, EmuDma *d)
{
    if (d->file >= 0) {
        return emu_file_pinnable(d->file, d->file_start, d->size);
    }
    return emu_vaddr_pinnable(emu, d->vaddr, d->size,
                              d->flags & VFIO_DMA_MAP_FLAG_WRITE) ?
           0 : -EFAULT;
}

static uint64_t emu_ioas_free_table(VfioEmu *emu, EmuContainer *c)
{
    uint64_t dropped = 0;
    int i;

    for (i = 0; i < c->dmas->len; i++) {
        dropped += g_array_index(c->dmas, EmuDma, i).size;
    }
    g_ptr_array_remove(emu->containers, c);
    g_array_unref(c->dmas);
    g_free(c);
    return dropped;
}

/* iopt_table_add_domain(): a new domain gets all mappings of the IOAS */
static int emu_ioas_add_domain(VfioEmu *emu, EmuObj *ioas)
{
    uint64_t align = emu_min_pgsize(emu);
    GArray *dmas = ioas->ioas->dmas;
    int i;

    if (align > emu->page_size) {
        return -EINVAL;
    }
    for (i = 0; i < dmas->len; i++) {
        EmuDma *d = &g_array_index(dmas, EmuDma, i);

        if ((d->iova | d->size | (d->vaddr % emu->page_size)) &
            (align - 1)) {
            return -EADDRINUSE;
        }
    }
    for (i = 0; i < dmas->len; i++) {
        EmuDma *d = &g_array_index(dmas, EmuDma, i);

        int ret = emu_dma_pin(emu, d);

        if (ret) {
            return ret;
        }
    }
    return 0;
}

/* iopt_table_enforce_dev_resv_regions(): no mapping in reserved IOVA */
static int emu_ioas_enforce_resv(VfioEmu *emu, EmuObj *ioas)
{
    GArray *dmas = ioas->ioas->dmas;
    int i;

    for (i = 0; i < dmas->len; i++) {
        EmuDma *d = &g_array_index(dmas, EmuDma, i);

        if (!emu_iova_valid(emu, d->iova, d->iova + d->size - 1)) {
            return -EADDRINUSE;
        }
    }
    return 0;
}

static void emu_hwpt_destroy(EmuIommufd *ictx, EmuObj *hwpt)
{
    hwpt->parent->refs--;
    emu_obj_remove(ictx, hwpt);
}

/* iommufd_hw_pagetable_put(): an automatic domain goes with its users */
static void emu_hwpt_put(EmuIommufd *ictx, EmuObj *hwpt)
{
    hwpt->refs--;
    if (hwpt->auto_domain && !hwpt->refs) {
        emu_hwpt_destroy(ictx, hwpt);
    }
}

/* iommufd_hw_pagetable_attach() */
static int emu_hwpt_attach(VfioEmu *emu, EmuCdev *cd, EmuObj *hwpt)
{
    int i, ret;

    /* The devices of a group share its domain */
    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *d = g_ptr_array_index(emu->devices, i);

        if (d != cd->dev && d->group == cd->dev->group && d->cdev_bound &&
            d->cdev_bound->ictx == cd->ictx && d->cdev_bound->hwpt &&
            d->cdev_bound->hwpt != hwpt) {
            return -EINVAL;
        }
    }
    ret = emu_ioas_enforce_resv(emu, hwpt->parent);
    if (ret) {
        return ret;
    }
    hwpt->refs++;
    cd->hwpt = hwpt;
    return 0;
}

/* iommufd_device_do_replace(), for a device alone in its group */
static int emu_hwpt_replace(VfioEmu *emu, EmuCdev *cd, EmuObj *hwpt)
{
    EmuObj *old = cd->hwpt;
    int ret;

    if (hwpt == old) {
        return 0;
    }
    if (hwpt->parent != old->parent) {
        ret = emu_ioas_enforce_resv(emu, hwpt->parent);
        if (ret) {
            return ret;
        }
    }
    hwpt->refs++;
    cd->hwpt = hwpt;
    emu_hwpt_put(cd->ictx, old);
    return 0;
}

/*
 * iommufd_hwpt_paging_alloc(): a paging domain on @ioas, attached to @cd
 * first if given (an automatic domain).
 */
static int emu_hwpt_alloc_paging(VfioEmu *emu, EmuIommufd *ictx,
                                 EmuObj *ioas, uint32_t flags, bool data,
                                 EmuCdev *cd, EmuObj **out)
{
    uint32_t valid = IOMMU_HWPT_ALLOC_NEST_PARENT |
                     IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
                     IOMMU_HWPT_FAULT_ID_VALID;
    EmuObj *hwpt;
    int ret;

    if (flags & ~valid) {
        return -EOPNOTSUPP;
    }
    /* IOMMU_GET_HW_INFO reports no IOMMU_HW_CAP_DIRTY_TRACKING */
    if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) {
        return -EOPNOTSUPP;
    }
    hwpt = emu_obj_new(ictx, EMU_OBJ_HWPT);
    hwpt->parent = ioas;
    hwpt->ioas = ioas->ioas;
    ioas->refs++;
    /* The driver takes no driver-specific data for a paging domain */
    if (data) {
        ret = -EOPNOTSUPP;
        goto abort;
    }
    if (cd) {
        ret = emu_hwpt_attach(emu, cd, hwpt);
        if (ret) {
            goto abort;
        }
    }
    ret = emu_ioas_add_domain(emu, ioas);
    if (ret) {
        if (cd) {
            hwpt->refs--;
            cd->hwpt = NULL;
        }
        goto abort;
    }
    *out = hwpt;
    return 0;

abort:
    emu_hwpt_destroy(ictx, hwpt);
    return ret;
}

/* iommufd_device_auto_get_domain(): attach to an IOAS */
static int emu_attach_ioas(VfioEmu *emu, EmuCdev *cd, EmuObj *ioas,
                           EmuObj **out)
{
    g_autoptr(GPtrArray) objs = emu_obj_list(cd->ictx);
    EmuObj *hwpt;
    int i, ret;

    for (i = 0; i < objs->len; i++) {
        hwpt = g_ptr_array_index(objs, i);
        if (hwpt->type != EMU_OBJ_HWPT || hwpt->parent != ioas ||
            !hwpt->auto_domain) {
            continue;
        }
        ret = cd->hwpt ? emu_hwpt_replace(emu, cd, hwpt) :
                         emu_hwpt_attach(emu, cd, hwpt);
        if (ret == -EINVAL) {
            /* incompatible: try the next one */
            continue;
        }
        *out = hwpt;
        return ret;
    }

    if (!cd->hwpt) {
        ret = emu_hwpt_alloc_paging(emu, cd->ictx, ioas, 0, false, cd,
                                    &hwpt);
    } else {
        ret = emu_hwpt_alloc_paging(emu, cd->ictx, ioas, 0, false, NULL,
                                    &hwpt);
        if (!ret) {
            ret = emu_hwpt_replace(emu, cd, hwpt);
            if (ret) {
                emu_hwpt_destroy(cd->ictx, hwpt);
            }
        }
    }
    if (ret) {
        return ret;
    }
    hwpt->auto_domain = true;
    *out = hwpt;
    return 0;
}

static void emu_cdev_detach(VfioEmu *emu, EmuCdev *cd)
{
    EmuObj *hwpt = cd->hwpt;

    if (!hwpt) {
        return;
    }
    cd->hwpt = NULL;
    emu_log(emu, "op=DEVICE_DETACH device=%s container=%d hwpt=%u",
            cd->dev->cfg->name, hwpt->ioas->id, hwpt->id);
    emu_hwpt_put(cd->ictx, hwpt);
}

/* iommufd_fops_release(): the last reference to the context went away */
void emu_iommufd_maybe_release(VfioEmu *emu, EmuIommufd *ictx)
{
    g_autoptr(GPtrArray) objs = NULL;
    bool changed = false;
    int i;

    if (ictx->fd_open || ictx->binds || ictx->groups) {
        return;
    }
    objs = emu_obj_list(ictx);
    for (i = 0; i < objs->len; i++) {
        EmuObj *o = g_ptr_array_index(objs, i);

        if (o->type == EMU_OBJ_IOAS) {
            int id = o->ioas->id;
            uint64_t dropped = emu_ioas_free_table(emu, o->ioas);

            emu_log(emu, "op=RELEASE container=%d unmapped=0x%" PRIx64, id,
                    dropped);
            changed = true;
        }
    }
    g_hash_table_unref(ictx->objs);
    g_ptr_array_remove(emu->ictxs, ictx);
    g_free(ictx);
    if (changed) {
        emu_write_mappings(emu);
    }
}

static int emu_iommufd_destroy(VfioEmu *emu, EmuIommufd *ictx, EmuUcmd *u)
{
    struct iommu_destroy *cmd = u->cmd;
    EmuObj *o = emu_obj_get(ictx, cmd->id, -1);
    uint64_t dropped;
    int id;

    if (!o) {
        return -ENOENT;
    }
    /* A bound device is used by its cdev until that is closed */
    if (o->refs) {
        return -EBUSY;
    }
    switch (o->type) {
    case EMU_OBJ_IOAS:
        if (ictx->vfio_ioas == o) {
            ictx->vfio_ioas = NULL;
        }
        id = o->ioas->id;
        dropped = emu_ioas_free_table(emu, o->ioas);
        emu_obj_remove(ictx, o);
        emu_log(emu, "op=DESTROY id=%u type=ioas container=%d unmapped=0x%"
                PRIx64, cmd->id, id, dropped);
        emu_write_mappings(emu);
        break;
    case EMU_OBJ_HWPT:
        emu_log(emu, "op=DESTROY id=%u type=hwpt container=%d", cmd->id,
                o->ioas->id);
        emu_hwpt_destroy(ictx, o);
        break;
    case EMU_OBJ_DEVICE:
        g_assert_not_reached();
    }
    return 0;
}

static int emu_iommufd_get_hw_info(VfioEmu *emu, EmuIommufd *ictx,
                                   EmuUcmd *u)
{
    struct iommu_hw_info *cmd = u->cmd;
    void *data = (void *)(uintptr_t)cmd->data_uptr;
    /* __u32 in older headers; __u8[3] once in_data_type took a byte */
    static const uint8_t zero[sizeof(cmd->__reserved)];

    if (cmd->flags || memcmp(&cmd->__reserved, zero, sizeof(zero))) {
        return -EOPNOTSUPP;
    }
    if (!emu_obj_get(ictx, cmd->dev_id, EMU_OBJ_DEVICE)) {
        return -ENOENT;
    }
    /* An IOMMU driver without hw_info: no data, trailing bytes zeroed */
    cmd->out_data_type = IOMMU_HW_INFO_TYPE_NONE;
    if (cmd->data_len) {
        if (!data) {
            return -EFAULT;
        }
        memset(data, 0, cmd->data_len);
    }
    cmd->data_len = 0;
    cmd->out_capabilities = 0;
    emu_ucmd_respond(u);
    return 0;
}

static int emu_iommufd_hwpt_alloc(VfioEmu *emu, EmuIommufd *ictx,
                                  EmuUcmd *u)
{
    struct iommu_hwpt_alloc *cmd = u->cmd;
    EmuObj *idev, *pt, *hwpt;
    int ret;

    if (cmd->__reserved) {
        return -EOPNOTSUPP;
    }
    if ((cmd->data_type == IOMMU_HWPT_DATA_NONE && cmd->data_len) ||
        (cmd->data_type != IOMMU_HWPT_DATA_NONE && !cmd->data_len)) {
        return -EINVAL;
    }
    idev = emu_obj_get(ictx, cmd->dev_id, EMU_OBJ_DEVICE);
    if (!idev) {
        return -ENOENT;
    }
    pt = emu_obj_get(ictx, cmd->pt_id, -1);
    if (!pt) {
        return -EINVAL;
    }
    if (pt->type == EMU_OBJ_HWPT) {
        /* nested domains are not emulated, as on an IOMMU without them */
        return -EOPNOTSUPP;
    }
    if (pt->type != EMU_OBJ_IOAS) {
        return -EINVAL;
    }
    ret = emu_hwpt_alloc_paging(emu, ictx, pt, cmd->flags, cmd->data_len,
                                NULL, &hwpt);
    if (ret) {
        return ret;
    }
    if (cmd->flags & IOMMU_HWPT_FAULT_ID_VALID) {
        /* no fault object exists here */
        emu_hwpt_destroy(ictx, hwpt);
        return -ENOENT;
    }
    cmd->out_hwpt_id = hwpt->id;
    emu_ucmd_respond(u);
    emu_log(emu, "op=HWPT_ALLOC container=%d hwpt=%u devid=%u",
            hwpt->ioas->id, hwpt->id, idev->id);
    return 0;
}

static int emu_iommufd_ioas_alloc(VfioEmu *emu, EmuIommufd *ictx,
                                  EmuUcmd *u)
{
    struct iommu_ioas_alloc *cmd = u->cmd;
    EmuObj *ioas;

    if (cmd->flags) {
        return -EOPNOTSUPP;
    }
    ioas = emu_obj_new(ictx, EMU_OBJ_IOAS);
    ioas->ioas = emu_container_new(emu);
    ioas->ioas->fd_open = false;
    cmd->out_ioas_id = ioas->id;
    emu_ucmd_respond(u);
    emu_log(emu, "op=IOAS_ALLOC ictx=%d container=%d ioas=%u", ictx->id,
            ioas->ioas->id, ioas->id);
    return 0;
}

static int emu_iommufd_iova_ranges(VfioEmu *emu, EmuIommufd *ictx,
                                   EmuUcmd *u)
{
    struct iommu_ioas_iova_ranges *cmd = u->cmd;
    struct iommu_iova_range *out = (void *)(uintptr_t)cmd->allowed_iovas;
    g_autoptr(GArray) ranges = NULL;
    uint32_t max = cmd->num_iovas;
    EmuObj *ioas;
    int i;

    if (cmd->__reserved) {
        return -EOPNOTSUPP;
    }
    ioas = emu_obj_get(ictx, cmd->ioas_id, EMU_OBJ_IOAS);
    if (!ioas) {
        return -ENOENT;
    }
    ranges = emu_ioas_ranges(emu, ictx, ioas);
    cmd->num_iovas = 0;
    cmd->out_iova_alignment = emu_ioas_alignment(emu, ictx, ioas);
    for (i = 0; i < ranges->len; i++) {
        EmuRange *r = &g_array_index(ranges, EmuRange, i);

        if (cmd->num_iovas < max) {
            if (!out) {
                return -EFAULT;
            }
            out[cmd->num_iovas].start = r->start;
            out[cmd->num_iovas].last = r->last;
        }
        cmd->num_iovas++;
    }
    emu_ucmd_respond(u);
    return cmd->num_iovas > max ? -EMSGSIZE : 0;
}

/* iopt_alloc_iova(): the lowest fitting hole, aligned as the kernel does */
static int emu_ioas_alloc_iova(VfioEmu *emu, EmuIommufd *ictx, EmuObj *ioas,
                               uint64_t uptr, uint64_t length,
                               uint64_t *iova)
{
    g_autoptr(GArray) ranges = emu_ioas_ranges(emu, ictx, ioas);
    uint64_t page_offset = uptr % emu->page_size;
    GArray *dmas = ioas->ioas->dmas;
    uint64_t align;
    int i;

    if (!length || length >= UINT64_MAX / 2) {
        return -EOVERFLOW;
    }
    align = pow2ceil(length);
    if (uptr) {
        align = MIN(align, 1ULL << ctz64(uptr));
    }
    if (align < emu_ioas_alignment(emu, ictx, ioas)) {
        return -EINVAL;
    }
    for (i = 0; i < ranges->len; i++) {
        EmuRange *r = &g_array_index(ranges, EmuRange, i);
        uint64_t start = MAX(r->start, emu->page_size);
        uint64_t last = MIN(r->last, UINT64_MAX - emu->page_size);
        guint j = emu_dma_lower_bound(ioas->ioas, start);

        while (start <= last) {
            EmuDma *d = j < dmas->len ? &g_array_index(dmas, EmuDma, j) :
                                        NULL;
            uint64_t hole_last = last, s;

            if (d && d->iova > last) {
                d = NULL;
            }
            if (d) {
                hole_last = d->iova > start ? d->iova - 1 : start;
            }
            s = ROUND_UP(start, align) | page_offset;
            if ((!d || d->iova > start) && s >= start && s <= hole_last &&
                hole_last - s >= length - 1) {
                *iova = s;
                return 0;
            }
            if (!d || d->iova + d->size - 1 >= last) {
                break;
            }
            start = d->iova + d->size;
            j++;
        }
    }
    return -ENOSPC;
}

/*
 * IOMMU_IOAS_MAP of user memory at cmd->user_va, or, with @file >= 0,
 * IOMMU_IOAS_MAP_FILE of @file from @start (iopt_map_file_pages(): the
 * pages are the file's, cmd->user_va is not used).
 */
static int emu_ioas_do_map(VfioEmu *emu, EmuIommufd *ictx, EmuObj *ioas,
                           struct iommu_ioas_map *cmd, const char *backing,
                           int file, uint64_t start)
{
    uint64_t length = cmd->length, iova = cmd->iova;
    uint64_t uptr = file >= 0 ? start : cmd->user_va;
    uint64_t align = emu_ioas_alignment(emu, ictx, ioas);
    EmuDma dma;
    int ret;

    if (file >= 0) {
        /* iopt_map_file_pages() */
        if (!length) {
            return -EINVAL;
        }
        if (start + (length - 1) < start) {
            return -EOVERFLOW;
        }
        if (fcntl(file, F_GETFD) < 0) {
            return -EBADF;
        }
    } else {
        /* iopt_alloc_user_pages() */
        if (uptr + length < uptr) {
            return -EOVERFLOW;
        }
        if (!length || length > SIZE_MAX - emu->page_size) {
            return -EINVAL;
        }
    }
    /* iopt_alloc_area_pages() */
    if (length & (align - 1)) {
        return -EINVAL;
    }
    if (!(cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA)) {
        ret = emu_ioas_alloc_iova(emu, ictx, ioas, uptr, length, &iova);
        if (ret) {
            return ret;
        }
    } else {
        /* iopt_check_iova() */
        if (iova & (align - 1)) {
            return -EINVAL;
        }
        if (iova + length - 1 < iova) {
            return -EOVERFLOW;
        }
        if (!emu_ioas_iova_usable(emu, ictx, ioas, iova, iova + length - 1)) {
            return -EINVAL;
        }
        if (emu_dma_overlaps(ioas->ioas, iova, iova + length - 1)) {
            return -EEXIST;
        }
    }
    /* iopt_insert_area() */
    if ((uptr % emu->page_size) & (align - 1)) {
        return -EINVAL;
    }
    dma = (EmuDma) {
        .iova = iova,
        .size = length,
        .vaddr = file >= 0 ? 0 : uptr,
        .flags = (cmd->flags & IOMMU_IOAS_MAP_READABLE ?
                  VFIO_DMA_MAP_FLAG_READ : 0) |
                 (cmd->flags & IOMMU_IOAS_MAP_WRITEABLE ?
                  VFIO_DMA_MAP_FLAG_WRITE : 0),
        .file = file,
        .file_start = start,
    };
    /* iopt_fill_domains_pages(): pinning, only when there is a domain */
    if (emu_ioas_has_domain(ictx, ioas, false)) {
        ret = emu_dma_pin(emu, &dma);
        if (ret) {
            return ret;
        }
    }
    /* the kernel holds the file (get_file()) until the area goes */
    if (file >= 0) {
        dma.file = fcntl(file, F_DUPFD_CLOEXEC, 0);
        if (dma.file < 0) {
            return -EMFILE;
        }
    }
    dma.backing = g_strdup(backing);
    g_array_insert_val(ioas->ioas->dmas,
                       emu_dma_lower_bound(ioas->ioas, iova), dma);
    cmd->iova = iova;
    return 0;
}

static int emu_iommufd_ioas_map(VfioEmu *emu, EmuIommufd *ictx, EmuUcmd *u)
{
    struct iommu_ioas_map *cmd = u->cmd;
    uint32_t known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
                     IOMMU_IOAS_MAP_READABLE;
    g_autoptr(GPtrArray) backings = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *where = NULL;
    uint32_t flags = cmd->flags;
    const char *backing;
    EmuObj *ioas = NULL;
    int ret, injected = 0;

    g_ptr_array_add(backings, vfio_emu_describe_vaddr(emu, cmd->user_va));
    backing = g_ptr_array_index(backings, 0);

    /* iommufd_ioas_map() */
    if ((cmd->flags & ~known) || cmd->__reserved) {
        ret = -EOPNOTSUPP;
    } else if (cmd->iova >= UINT64_MAX || cmd->length >= UINT64_MAX) {
        ret = -EOVERFLOW;
    } else if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE |
                               IOMMU_IOAS_MAP_READABLE))) {
        ret = -EINVAL;
    } else {
        ioas = emu_obj_get(ictx, cmd->ioas_id, EMU_OBJ_IOAS);
        ret = ioas ? 0 : -ENOENT;
    }
    if (!ret) {
        injected = emu_check_faults(emu, EMU_FAULT_MAP, cmd->iova,
                                    cmd->length, backings);
        ret = injected ? -injected :
              emu_ioas_do_map(emu, ictx, ioas, cmd, backing, -1, 0);
    }

    where = ioas ? g_strdup_printf(" container=%d", ioas->ioas->id) :
                   g_strdup("");
    emu_log(emu, "op=IOAS_MAP%s ioas=%u iova=0x%" PRIx64 " size=0x%" PRIx64
            " vaddr=0x%" PRIx64 " flags=0x%x ret=%d backing=%s%s", where,
            cmd->ioas_id, (uint64_t)cmd->iova, (uint64_t)cmd->length,
            (uint64_t)cmd->user_va, flags, ret, backing,
            injected ? " injected=1" : "");
    if (ret) {
        return ret;
    }
    emu_write_mappings(emu);
    emu_ucmd_respond(u);
    return 0;
}

/* iommufd_ioas_map_file(): the pages of a file (memfd, hugetlbfs) */
static int emu_iommufd_ioas_map_file(VfioEmu *emu, EmuIommufd *ictx,
                                     EmuUcmd *u)
{
    struct iommu_ioas_map_file *cmd = u->cmd;
    uint32_t known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
                     IOMMU_IOAS_MAP_READABLE;
    g_autoptr(GPtrArray) backings = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *where = NULL;
    struct iommu_ioas_map map;
    EmuObj *ioas = NULL;
    int ret, injected = 0;

    /* guest RAM either way, for the fault rules and the state files */
    g_ptr_array_add(backings, g_strdup("ram"));

    if (cmd->flags & ~known) {
        ret = -EOPNOTSUPP;
    } else if (cmd->iova >= UINT64_MAX || cmd->length >= UINT64_MAX) {
        ret = -EOVERFLOW;
    } else if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE |
                               IOMMU_IOAS_MAP_READABLE))) {
        ret = -EINVAL;
    } else {
        ioas = emu_obj_get(ictx, cmd->ioas_id, EMU_OBJ_IOAS);
        ret = ioas ? 0 : -ENOENT;
    }
    if (!ret) {
        map = (struct iommu_ioas_map) {
            .size = sizeof(map),
            .flags = cmd->flags,
            .ioas_id = cmd->ioas_id,
            .length = cmd->length,
            .iova = cmd->iova,
        };
        injected = emu_check_faults(emu, EMU_FAULT_MAP, cmd->iova,
                                    cmd->length, backings);
        ret = injected ? -injected :
              emu_ioas_do_map(emu, ictx, ioas, &map, "ram", cmd->fd,
                              cmd->start);
        if (!ret) {
            cmd->iova = map.iova;
        }
    }

    where = ioas ? g_strdup_printf(" container=%d", ioas->ioas->id) :
                   g_strdup("");
    emu_log(emu, "op=IOAS_MAP_FILE%s ioas=%u iova=0x%" PRIx64 " size=0x%"
            PRIx64 " fd=%d start=0x%" PRIx64 " flags=0x%x ret=%d"
            " backing=ram%s", where, cmd->ioas_id, (uint64_t)cmd->iova,
            (uint64_t)cmd->length, cmd->fd, (uint64_t)cmd->start, cmd->flags,
            ret, injected ? " injected=1" : "");
    if (ret) {
        return ret;
    }
    emu_write_mappings(emu);
    emu_ucmd_respond(u);
    return 0;
}

/*
 * iommufd_ioas_change_process(): every mapping of the context must be of
 * a file (IOMMU_IOAS_MAP_FILE), else EINVAL; the pages are charged to
 * the caller, which the emulation needs not model.  With no mapping, or
 * none but files, it succeeds: QEMU asks it to learn that it exists.
 */
static int emu_iommufd_change_process(VfioEmu *emu, EmuIommufd *ictx,
                                      EmuUcmd *u)
{
    struct iommu_ioas_change_process *cmd = u->cmd;
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    GHashTableIter iter;
    EmuObj *o;
    int i, ret = 0;

    if (cmd->__reserved) {
        return -EOPNOTSUPP;
    }
    ret = -emu_check_faults(emu, EMU_FAULT_CHANGE_PROCESS, 0, 0, none);
    if (ret) {
        emu_log(emu, "op=IOAS_CHANGE_PROCESS ictx=%d ret=%d injected=1",
                ictx->id, ret);
        return ret;
    }
    g_hash_table_iter_init(&iter, ictx->objs);
    while (!ret && g_hash_table_iter_next(&iter, NULL, (gpointer *)&o)) {
        if (o->type != EMU_OBJ_IOAS) {
            continue;
        }
        for (i = 0; i < o->ioas->dmas->len; i++) {
            if (g_array_index(o->ioas->dmas, EmuDma, i).file < 0) {
                ret = -EINVAL;
                break;
            }
        }
    }
    emu_log(emu, "op=IOAS_CHANGE_PROCESS ictx=%d ret=%d", ictx->id, ret);
    return ret;
}

/* iopt_unmap_iova_range(): whole mappings only, lowest first */
static int emu_ioas_do_unmap(EmuContainer *c, uint64_t start, uint64_t last,
                             uint64_t *unmapped)
{
    guint i = emu_dma_lower_bound(c, start);

    while (i < c->dmas->len) {
        EmuDma *d = &g_array_index(c->dmas, EmuDma, i);

        if (d->iova > last) {
            break;
        }
        if (d->iova < start || d->iova + d->size - 1 > last) {
            return -ENOENT;
        }
        *unmapped += d->size;
        g_array_remove_index(c->dmas, i);
    }
    /* nothing to unmap is success here; IOMMU_IOAS_UNMAP says ENOENT */
    return 0;
}

/* iopt_cut_iova(): split the mapping holding @last so that it ends there */
static int emu_ioas_cut(VfioEmu *emu, EmuContainer *c, uint64_t last)
{
    EmuDma *d = emu_dma_find(c, last), tail;
    uint64_t head;

    if (!d || d->iova + d->size - 1 == last) {
        return 0;
    }
    head = last + 1 - d->iova;
    if (head % emu->page_size) {
        return -EINVAL;
    }
    tail = *d;
    tail.iova += head;
    tail.vaddr += head;
    tail.size -= head;
    if (d->file >= 0) {
        tail.vaddr = 0;
        tail.file_start += head;
        tail.file = fcntl(d->file, F_DUPFD_CLOEXEC, 0);
        if (tail.file < 0) {
            return -ENOMEM;
        }
        tail.backing = g_strdup(d->backing);
    } else {
        tail.backing = vfio_emu_describe_vaddr(emu, tail.vaddr);
    }
    d->size = head;
    g_array_insert_val(c->dmas, emu_dma_lower_bound(c, tail.iova), tail);
    return 0;
}

static int emu_iommufd_ioas_unmap(VfioEmu *emu, EmuIommufd *ictx,
                                  EmuUcmd *u)
{
    struct iommu_ioas_unmap *cmd = u->cmd;
    EmuObj *ioas = emu_obj_get(ictx, cmd->ioas_id, EMU_OBJ_IOAS);
    bool all = cmd->iova == 0 && cmd->length == UINT64_MAX;
    g_autoptr(GPtrArray) backings = g_ptr_array_new();
    g_autofree char *where = NULL;
    const EmuFault *f = NULL;
    uint64_t unmapped = 0;
    int ret, injected = 0;

    /* iommufd_ioas_unmap(), iopt_unmap_iova() */
    if (!ioas) {
        ret = -ENOENT;
    } else if (!all && (cmd->iova >= UINT64_MAX ||
                        cmd->length >= UINT64_MAX)) {
        ret = -EOVERFLOW;
    } else if (!all && !cmd->length) {
        ret = -EINVAL;
    } else if (!all && cmd->iova + cmd->length - 1 < cmd->iova) {
        ret = -EOVERFLOW;
    } else {
        uint64_t last = all ? UINT64_MAX : cmd->iova + cmd->length - 1;
        EmuContainer *c = ioas->ioas;
        guint i;

        for (i = emu_dma_lower_bound(c, cmd->iova); i < c->dmas->len; i++) {
            EmuDma *d = &g_array_index(c->dmas, EmuDma, i);

            if (d->iova > last) {
                break;
            }
            g_ptr_array_add(backings, d->backing);
        }
        f = emu_match_fault(emu, EMU_FAULT_UNMAP, cmd->iova, cmd->length,
                            backings);
        injected = f ? f->err : 0;
        if (injected) {
            ret = -injected;
        } else {
            ret = f && f->unmaps_nothing ? 0 :
                  emu_ioas_do_unmap(c, cmd->iova, last, &unmapped);
            /* iommufd_ioas_unmap(): unless all, nothing is ENOENT */
            if (!all && !ret && !unmapped) {
                ret = -ENOENT;
            }
        }
    }

    where = ioas ? g_strdup_printf(" container=%d", ioas->ioas->id) :
                   g_strdup("");
    emu_log(emu, "op=IOAS_UNMAP%s ioas=%u iova=0x%" PRIx64 " size=0x%" PRIx64
            " ret=%d unmapped=0x%" PRIx64 "%s", where, cmd->ioas_id,
            (uint64_t)cmd->iova, (uint64_t)cmd->length, ret, unmapped,
            f ? " injected=1" : "");
    if (unmapped) {
        emu_write_mappings(emu);
    }
    if (ret) {
        return ret;
    }
    cmd->length = f && f->has_unmapped ? f->unmapped : unmapped;
    emu_ucmd_respond(u);
    return 0;
}

typedef int (*EmuIommufdFn)(VfioEmu *emu, EmuIommufd *ictx, EmuUcmd *u);

typedef struct EmuIommufdOp {
    unsigned long request;
    size_t ksize;
    size_t minsz;
    EmuIommufdFn fn;
} EmuIommufdOp;

#define EMU_IOMMUFD_OP(req, fn, type, last)                    \
    [_IOC_NR(req) - IOMMUFD_CMD_BASE] = {                      \
        req, sizeof(type), offsetofend(type, last), fn         \
    }

/* iommufd_ioctl_ops[], the commands emulated */
static const EmuIommufdOp emu_iommufd_ops[] = {
    EMU_IOMMUFD_OP(IOMMU_DESTROY, emu_iommufd_destroy, struct iommu_destroy,
                   id),
    EMU_IOMMUFD_OP(IOMMU_GET_HW_INFO, emu_iommufd_get_hw_info,
                   struct iommu_hw_info, __reserved),
    EMU_IOMMUFD_OP(IOMMU_HWPT_ALLOC, emu_iommufd_hwpt_alloc,
                   struct iommu_hwpt_alloc, __reserved),
    EMU_IOMMUFD_OP(IOMMU_IOAS_ALLOC, emu_iommufd_ioas_alloc,
                   struct iommu_ioas_alloc, out_ioas_id),
    EMU_IOMMUFD_OP(IOMMU_IOAS_IOVA_RANGES, emu_iommufd_iova_ranges,
                   struct iommu_ioas_iova_ranges, out_iova_alignment),
    EMU_IOMMUFD_OP(IOMMU_IOAS_MAP, emu_iommufd_ioas_map,
                   struct iommu_ioas_map, iova),
    EMU_IOMMUFD_OP(IOMMU_IOAS_UNMAP, emu_iommufd_ioas_unmap,
                   struct iommu_ioas_unmap, length),
    /* since Linux 6.13 and 6.15: ENOTTY with [container] kernel = 6.12 */
    EMU_IOMMUFD_OP(IOMMU_IOAS_MAP_FILE, emu_iommufd_ioas_map_file,
                   struct iommu_ioas_map_file, iova),
    EMU_IOMMUFD_OP(IOMMU_IOAS_CHANGE_PROCESS, emu_iommufd_change_process,
                   struct iommu_ioas_change_process, __reserved),
};

/*
 * The VFIO compatibility ioctls of /dev/iommu (drivers/iommu/iommufd/
 * vfio_compat.c): a type1 container over the context's compat IOAS.
 */

/* iommufd_vfio_compat_ioas_create(): when a group is set to the context */
static void emu_compat_ioas_create(VfioEmu *emu, EmuIommufd *ictx)
{
    EmuObj *ioas;

    if (ictx->vfio_ioas) {
        return;
    }
    ioas = emu_obj_new(ictx, EMU_OBJ_IOAS);
    ioas->ioas = emu_container_new(emu);
    ioas->ioas->fd_open = false;
    ictx->vfio_ioas = ioas;
    emu_log(emu, "op=IOAS_ALLOC ictx=%d container=%d ioas=%u", ictx->id,
            ioas->ioas->id, ioas->id);
}

/* iommufd_get_pagesizes() */
static uint64_t emu_compat_pgsizes(VfioEmu *emu, EmuIommufd *ictx,
                                   EmuObj *ioas)
{
    uint64_t bitmap = emu_ioas_has_domain(ictx, ioas, false) ?
                      emu->cfg->pgsizes : UINT64_MAX;

    if (bitmap & (emu->page_size - 1)) {
        bitmap &= ~(emu->page_size - 1);
        bitmap |= emu->page_size;
    }
    return MAX(bitmap, emu_ioas_alignment(emu, ictx, ioas));
}

/* iommufd_vfio_iommu_get_info() */
static int emu_compat_get_info(VfioEmu *emu, EmuIommufd *ictx, void *arg)
{
    struct vfio_iommu_type1_info info = { 0 };
    size_t minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
    EmuCaps caps = { .buf = g_byte_array_new() };
    struct vfio_iommu_type1_info_dma_avail *avail;
    struct vfio_iommu_type1_info_cap_iova_range *cap;
    g_autoptr(GArray) ranges = NULL;
    EmuObj *ioas = ictx->vfio_ioas;
    int i;

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz) {
        g_byte_array_unref(caps.buf);
        return -EINVAL;
    }
    minsz = MIN(info.argsz, sizeof(info));
    if (!ioas) {
        g_byte_array_unref(caps.buf);
        return -ENODEV;
    }
    info.flags = VFIO_IOMMU_INFO_PGSIZES;
    info.iova_pgsizes = emu_compat_pgsizes(emu, ictx, ioas);
    info.cap_offset = 0;

    /* iommufd_fill_cap_dma_avail(): the cgroup limit, said as U32_MAX */
    avail = emu_caps_add(&caps, sizeof(*avail),
                         VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1);
    avail->avail = UINT32_MAX;
    /* iommufd_fill_cap_iova(): the holes of the reserved ranges */
    ranges = emu_ioas_ranges(emu, ictx, ioas);
    cap = emu_caps_add(&caps, sizeof(*cap) +
                       ranges->len * sizeof(cap->iova_ranges[0]),
                       VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1);
    cap->nr_iovas = ranges->len;
    for (i = 0; i < ranges->len; i++) {
        cap->iova_ranges[i].start = g_array_index(ranges, EmuRange, i).start;
        cap->iova_ranges[i].end = g_array_index(ranges, EmuRange, i).last;
    }
    emu_caps_copy_out(&caps, arg, sizeof(info), &info.argsz, &info.flags,
                      VFIO_IOMMU_INFO_CAPS, &info.cap_offset);
    g_byte_array_unref(caps.buf);
    memcpy(arg, &info, minsz);
    return 0;
}

/* iommufd_vfio_map_dma(): an IOMMU_IOAS_MAP at a fixed IOVA */
static int emu_compat_map_dma(VfioEmu *emu, EmuIommufd *ictx, void *arg)
{
    struct vfio_iommu_type1_dma_map map;
    size_t minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
    uint32_t supported = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    struct iommu_ioas_map cmd = { .size = sizeof(cmd) }, out;
    EmuUcmd u = {
        .cmd = &cmd, .ubuf = &out, .usize = sizeof(cmd),
        .ksize = sizeof(cmd),
    };

    memcpy(&map, arg, minsz);
    if (map.argsz < minsz || map.flags & ~supported) {
        return -EINVAL;
    }
    if (!ictx->vfio_ioas) {
        return -ENODEV;
    }
    cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
                (map.flags & VFIO_DMA_MAP_FLAG_READ ?
                 IOMMU_IOAS_MAP_READABLE : 0) |
                (map.flags & VFIO_DMA_MAP_FLAG_WRITE ?
                 IOMMU_IOAS_MAP_WRITEABLE : 0);
    cmd.ioas_id = ictx->vfio_ioas->id;
    cmd.user_va = map.vaddr;
    cmd.length = map.size;
    cmd.iova = map.iova;
    return emu_iommufd_ioas_map(emu, ictx, &u);
}

/* iommufd_vfio_unmap_dma() */
static int emu_compat_unmap_dma(VfioEmu *emu, EmuIommufd *ictx, void *arg)
{
    struct vfio_iommu_type1_dma_unmap unmap;
    size_t minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
    EmuObj *ioas = ictx->vfio_ioas;
    uint64_t unmapped = 0;
    int ret;

    memcpy(&unmap, arg, minsz);
    if (unmap.argsz < minsz || unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) {
        return -EINVAL;
    }
    if (!ioas) {
        return -ENODEV;
    }
    if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
        if (unmap.iova || unmap.size) {
            return -EINVAL;
        }
        ret = emu_ioas_do_unmap(ioas->ioas, 0, UINT64_MAX, &unmapped);
    } else {
        ret = 0;
        /* type1: cut at both ends, so that any range can be unmapped */
        if (ioas->no_large_pages) {
            ret = emu_ioas_cut(emu, ioas->ioas, unmap.iova + unmap.size - 1);
            if (!ret && unmap.iova) {
                ret = emu_ioas_cut(emu, ioas->ioas, unmap.iova - 1);
            }
        }
        /* iopt_unmap_iova() */
        if (ret) {
            /* the cut failed */
        } else if (!unmap.size) {
            ret = -EINVAL;
        } else if (unmap.iova + unmap.size - 1 < unmap.iova) {
            ret = -EOVERFLOW;
        } else {
            ret = emu_ioas_do_unmap(ioas->ioas, unmap.iova,
                                    unmap.iova + unmap.size - 1, &unmapped);
        }
    }
    emu_log(emu, "op=IOAS_UNMAP container=%d ioas=%u iova=0x%" PRIx64
            " size=0x%" PRIx64 " ret=%d unmapped=0x%" PRIx64,
            ioas->ioas->id, ioas->id, (uint64_t)unmap.iova,
            (uint64_t)unmap.size, ret, unmapped);
    if (unmapped) {
        emu_write_mappings(emu);
    }
    unmap.size = unmapped;
    memcpy(arg, &unmap, minsz);
    return ret;
}

/* iommufd_vfio_ioctl() */
static int emu_iommufd_vfio_ioctl(VfioEmu *emu, EmuIommufd *ictx,
                                  unsigned long request, void *arg)
{
    unsigned long iarg = (uintptr_t)arg;

    switch (request) {
    case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
        switch (iarg) {
        case VFIO_TYPE1_IOMMU:
        case VFIO_TYPE1v2_IOMMU:
        case VFIO_UNMAP_ALL:
            return 1;
        case VFIO_DMA_CC_IOMMU:
            /* iommufd_vfio_cc_iommu(): the domains enforce coherency */
            return ictx->vfio_ioas ? 1 : -ENODEV;
        default:
            /* VFIO_UPDATE_VADDR among them */
            return 0;
        }
    case VFIO_SET_IOMMU:
        if (iarg != VFIO_TYPE1_IOMMU && iarg != VFIO_TYPE1v2_IOMMU) {
            return -EINVAL;
        }
        if (!ictx->vfio_ioas) {
            return -ENODEV;
        }
        /* iopt_disable_large_pages(): TYPE1 may unmap inside a mapping */
        if (iarg == VFIO_TYPE1_IOMMU) {
            ictx->vfio_ioas->no_large_pages = true;
        }
        return 0;
    case VFIO_IOMMU_GET_INFO:
        return emu_compat_get_info(emu, ictx, arg);
    case VFIO_IOMMU_MAP_DMA:
        return emu_compat_map_dma(emu, ictx, arg);
    case VFIO_IOMMU_UNMAP_DMA:
        return emu_compat_unmap_dma(emu, ictx, arg);
    default:
        /* VFIO_IOMMU_DIRTY_PAGES too */
        return -ENOTTY;
    }
}

/* vfio_group_ioctl_set_container() with an iommufd */
void emu_compat_group_set(VfioEmu *emu, EmuGroup *g,
                          EmuIommufd *ictx)
{
    emu_compat_ioas_create(emu, ictx);
    g->ictx = ictx;
    ictx->groups++;
    emu_log(emu, "op=GROUP_SET_CONTAINER group=%d ictx=%d container=%d",
            g->id, ictx->id, ictx->vfio_ioas->ioas->id);
}

void emu_compat_group_unset(VfioEmu *emu, EmuGroup *g)
{
    EmuIommufd *ictx = g->ictx;

    g->ictx = NULL;
    ictx->groups--;
    emu_log(emu, "op=GROUP_UNSET_CONTAINER group=%d ictx=%d", g->id,
            ictx->id);
    emu_iommufd_maybe_release(emu, ictx);
}

/*
 * vfio_df_group_open() of a group set to an iommufd: the device is bound
 * to the context (vfio_df_iommufd_bind()) and attached to its compat IOAS
 * (vfio_iommufd_compat_attach_ioas()).
 */
int emu_compat_device_open(VfioEmu *emu, EmuGroup *g, EmuDevice *dev,
                           EmuCdev **out)
{
    EmuIommufd *ictx = g->ictx;
    EmuCdev *cd;
    EmuObj *hwpt;
    int ret;

    if (!ictx->vfio_ioas) {
        return -ENODEV;
    }
    cd = g_new0(EmuCdev, 1);
    cd->dev = dev;
    cd->ictx = ictx;
    cd->idev = emu_obj_new(ictx, EMU_OBJ_DEVICE);
    cd->idev->dev = dev;
    cd->idev->refs = 1;
    ictx->binds++;
    ret = emu_attach_ioas(emu, cd, ictx->vfio_ioas, &hwpt);
    if (ret) {
        emu_obj_remove(ictx, cd->idev);
        ictx->binds--;
        g_free(cd);
        return ret;
    }
    emu_log(emu, "op=DEVICE_ATTACH device=%s container=%d hwpt=%u",
            dev->cfg->name, hwpt->ioas->id, hwpt->id);
    *out = cd;
    return 0;
}

void emu_compat_device_close(VfioEmu *emu, EmuCdev *cd)
{
    EmuIommufd *ictx = cd->ictx;

    emu_cdev_detach(emu, cd);
    emu_obj_remove(ictx, cd->idev);
    ictx->binds--;
    g_free(cd);
    emu_iommufd_maybe_release(emu, ictx);
}

/* iommufd_fops_ioctl(): the size protocol common to all commands */
int emu_iommufd_ioctl(VfioEmu *emu, EmuIommufd *ictx,
                      unsigned long request, void *arg)
{
    union {
        struct iommu_destroy destroy;
        struct iommu_hw_info info;
        struct iommu_hwpt_alloc hwpt;
        struct iommu_ioas_alloc alloc;
        struct iommu_ioas_iova_ranges ranges;
        struct iommu_ioas_map map;
        struct iommu_ioas_unmap unmap;
        struct iommu_ioas_map_file map_file;
        struct iommu_ioas_change_process change_process;
    } buf;
    unsigned int nr = _IOC_NR(request);
    const EmuIommufdOp *op;
    EmuUcmd u;
    size_t i;

    /* Other numbers: the VFIO compatibility ioctls */
    if (nr < IOMMUFD_CMD_BASE ||
        nr - IOMMUFD_CMD_BASE >= ARRAY_SIZE(emu_iommufd_ops)) {
        return emu_iommufd_vfio_ioctl(emu, ictx, request, arg);
    }
    op = &emu_iommufd_ops[nr - IOMMUFD_CMD_BASE];
    if (!op->fn || op->request != request) {
        return -ENOTTY;
    }
    if (emu->cfg->kernel < EMU_KERNEL_7_3 &&
        (request == IOMMU_IOAS_MAP_FILE ||
         request == IOMMU_IOAS_CHANGE_PROCESS)) {
        return -ENOTTY;
    }
    if (!arg) {
        return -EFAULT;
    }
    memcpy(&u.usize, arg, sizeof(u.usize));
    if (u.usize < op->minsz) {
        return -EINVAL;
    }
    /* copy_struct_from_user() */
    memset(&buf, 0, sizeof(buf));
    memcpy(&buf, arg, MIN(u.usize, op->ksize));
    for (i = op->ksize; i < u.usize; i++) {
        if (((uint8_t *)arg)[i]) {
            return -E2BIG;
        }
    }
    u.cmd = &buf;
    u.ubuf = arg;
    u.ksize = op->ksize;
    return op->fn(emu, ictx, &u);
}

int emu_iommufd_open(VfioEmu *emu, int flags)
{
    EmuIommufd *ictx = g_new0(EmuIommufd, 1);
    int fd;

    ictx->objs = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    fd = emu_new_fd(emu, "vfio-emu iommufd", EMU_FD_IOMMUFD, ictx, flags);
    if (fd < 0) {
        g_hash_table_unref(ictx->objs);
        g_free(ictx);
        return fd;
    }
    ictx->id = ++emu->next_ictx_id;
    ictx->fd_open = true;
    g_ptr_array_add(emu->ictxs, ictx);
    emu_log(emu, "op=IOMMUFD_OPEN ictx=%d", ictx->id);
    return fd;
}

/* The device of "vfioN", or NULL */
EmuDevice *emu_cdev_device(VfioEmu *emu, const char *name)
{
    uint64_t n;

    if (!g_str_has_prefix(name, "vfio") || !g_ascii_isdigit(name[4]) ||
        (name[4] == '0' && name[5]) || !emu_parse_u64(name + 4, &n) ||
        n >= emu->devices->len) {
        return NULL;
    }
    return g_ptr_array_index(emu->devices, n);
}

int emu_cdev_open(VfioEmu *emu, const char *name, int flags)
{
    EmuDevice *dev = emu_cdev_device(emu, name);
    EmuCdev *cd;
    EmuFd *f;
    int fd;

    if (!dev) {
        return -ENOENT;
    }
    /* the device's memfd: pread, pwrite and mmap work natively */
    fd = fcntl(dev->memfd, (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD,
               0);
    if (fd < 0) {
        return -errno;
    }
    cd = g_new0(EmuCdev, 1);
    cd->dev = dev;
    f = g_new0(EmuFd, 1);
    f->kind = EMU_FD_CDEV;
    f->obj = cd;
    g_hash_table_insert(emu->fds, GINT_TO_POINTER(fd), f);
    return fd;
}

/* vfio_df_ioctl_bind_iommufd() */
static int emu_cdev_bind(VfioEmu *emu, EmuCdev *cd, void *arg)
{
    struct vfio_device_bind_iommufd bind;
    size_t minsz = offsetofend(struct vfio_device_bind_iommufd, out_devid);
    EmuDevice *dev = cd->dev;
    EmuIommufd *ictx;
    EmuFd *f;
    int i;

    memcpy(&bind, arg, minsz);
    if (bind.argsz < minsz || bind.flags || bind.iommufd < 0) {
        return -EINVAL;
    }
    /* vfio_device_block_group() */
    if (dev->group->fd_open) {
        return -EBUSY;
    }
    if (cd->ictx) {
        return -EINVAL;
    }
    /* iommufd_ctx_from_fd() */
    f = emu_fd_lookup(emu, bind.iommufd);
    if (!f) {
        return fcntl(bind.iommufd, F_GETFD) < 0 ? -EBADF : -EBADFD;
    }
    if (f->kind != EMU_FD_IOMMUFD) {
        return -EBADFD;
    }
    ictx = f->obj;
    /* vfio_df_open(): only the group path opens a device twice */
    if (dev->fds) {
        return -EINVAL;
    }
    /* iommu_device_claim_dma_owner(): one owner per group */
    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *d = g_ptr_array_index(emu->devices, i);

        if (d->group == dev->group && d->cdev_bound &&
            d->cdev_bound->ictx != ictx) {
            return -EBUSY;
        }
    }
    if (!emu_device_reset_config(dev)) {
        return -EIO;
    }
    cd->ictx = ictx;
    ictx->binds++;
    cd->idev = emu_obj_new(ictx, EMU_OBJ_DEVICE);
    cd->idev->dev = dev;
    cd->idev->refs = 1;
    dev->fds++;
    dev->cdev_bound = cd;
    bind.out_devid = cd->idev->id;
    memcpy(arg, &bind, minsz);
    emu_log(emu, "op=DEVICE_BIND device=%s ictx=%d devid=%u", dev->cfg->name,
            ictx->id, cd->idev->id);
    return 0;
}

/* vfio_df_ioctl_attach_pt(), vfio_iommufd_physical_attach_ioas() */
static int emu_cdev_attach(VfioEmu *emu, EmuCdev *cd, void *arg)
{
    struct vfio_device_attach_iommufd_pt attach;
    size_t minsz = offsetofend(struct vfio_device_attach_iommufd_pt, pt_id);
    EmuObj *pt, *hwpt = NULL;
    int ret;

    memcpy(&attach, arg, minsz);
    /* flags: a PASID attach is not emulated */
    if (attach.argsz < minsz || attach.flags) {
        return -EINVAL;
    }
    pt = emu_obj_get(cd->ictx, attach.pt_id, -1);
    if (!pt) {
        return -ENOENT;
    }
    switch (pt->type) {
    case EMU_OBJ_HWPT:
        hwpt = pt;
        ret = cd->hwpt ? emu_hwpt_replace(emu, cd, hwpt) :
                         emu_hwpt_attach(emu, cd, hwpt);
        break;
    case EMU_OBJ_IOAS:
        ret = emu_attach_ioas(emu, cd, pt, &hwpt);
        break;
    default:
        ret = -EINVAL;
        break;
    }
    if (ret) {
        return ret;
    }
    attach.pt_id = hwpt->id;
    memcpy(arg, &attach, minsz);
    emu_log(emu, "op=DEVICE_ATTACH device=%s container=%d hwpt=%u",
            cd->dev->cfg->name, hwpt->ioas->id, hwpt->id);
    return 0;
}

/* vfio_df_ioctl_detach_pt() */
static int emu_cdev_detach_ioctl(VfioEmu *emu, EmuCdev *cd, void *arg)
{
    struct vfio_device_detach_iommufd_pt detach;
    size_t minsz = offsetofend(struct vfio_device_detach_iommufd_pt, flags);

    memcpy(&detach, arg, minsz);
    if (detach.argsz < minsz || detach.flags) {
        return -EINVAL;
    }
    emu_cdev_detach(emu, cd);
    return 0;
}

int emu_cdev_ioctl(VfioEmu *emu, EmuCdev *cd, unsigned long request,
                   void *arg)
{
    if (request == VFIO_DEVICE_BIND_IOMMUFD) {
        return emu_cdev_bind(emu, cd, arg);
    }
    /* no access before BIND */
    if (!cd->ictx) {
        return -EINVAL;
    }
    switch (request) {
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
        return emu_cdev_attach(emu, cd, arg);
    case VFIO_DEVICE_DETACH_IOMMUFD_PT:
        return emu_cdev_detach_ioctl(emu, cd, arg);
    default:
        return emu_device_ioctl(emu, cd->dev, request, arg);
    }
}

/* vfio_df_unbind_iommufd(), when the cdev is closed */
void emu_cdev_release(VfioEmu *emu, EmuCdev *cd)
{
    EmuIommufd *ictx = cd->ictx;

    if (ictx) {
        emu_cdev_detach(emu, cd);
        emu_obj_remove(ictx, cd->idev);
        cd->dev->fds--;
        cd->dev->cdev_bound = NULL;
        emu_log(emu, "op=DEVICE_UNBIND device=%s ictx=%d", cd->dev->cfg->name,
                ictx->id);
        ictx->binds--;
        emu_iommufd_maybe_release(emu, ictx);
    }
    g_free(cd);
}

/* The device behind a device fd or a bound cdev, else NULL */
EmuDevice *emu_fd_device(EmuFd *f)
{
    EmuCdev *cd;

    if (f->kind == EMU_FD_DEVICE) {
        return f->obj;
    }
    if (f->kind != EMU_FD_CDEV) {
        return NULL;
    }
    cd = f->obj;
    return cd->ictx ? cd->dev : NULL;
}

bool emu_group_cdev_bound(VfioEmu *emu, EmuGroup *g)
{
    int i;

    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *d = g_ptr_array_index(emu->devices, i);

        if (d->group == g && d->cdev_bound) {
            return true;
        }
    }
    return false;
}
