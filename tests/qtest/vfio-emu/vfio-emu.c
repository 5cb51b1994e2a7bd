/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: the entry points of the model (the vfio_emu_*() calls of
 * vfio-emu.h): open, ioctl, close, stat, pread/pwrite and mmap of its paths
 * and file descriptors
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The model is one file per part of the UAPI, sharing vfio-emu-int.h:
 * vfio-emu-config.c (the configuration), vfio-emu-state-files.c (the state
 * directory), vfio-emu-pci.c (vfio-pci devices), vfio-emu-type1.c
 * (containers and the type1 IOMMU), vfio-emu-group.c (groups) and
 * vfio-emu-iommufd.c (/dev/iommu and the device cdevs).  See vfio-emu.h for
 * the configuration and state-directory formats.
 */

#include "qemu/osdep.h"
#include <sys/auxv.h>
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
 * stat
 */

/* What stat() says of one of our paths: 0 or -errno */
static int emu_path_stat(VfioEmu *emu, const char *path, struct stat *st)
{
    const char *rest = path + strlen("/dev/vfio/");
    mode_t mode = S_IFCHR | 0600;
    dev_t rdev;
    uint64_t id;

    if (!strcmp(path, "/dev/iommu")) {
        mode = S_IFCHR | 0660;
        rdev = makedev(VFIO_EMU_MISC_MAJOR, VFIO_EMU_IOMMU_MINOR);
    } else if (!strcmp(rest, "vfio")) {
        mode = S_IFCHR | 0666;
        rdev = makedev(VFIO_EMU_MISC_MAJOR, VFIO_EMU_VFIO_MINOR);
    } else if (!strcmp(rest, "devices")) {
        mode = S_IFDIR | 0755;
        rdev = 0;
    } else if (g_str_has_prefix(rest, "devices/")) {
        EmuDevice *dev = emu_cdev_device(emu, rest + strlen("devices/"));

        if (!dev) {
            return -ENOENT;
        }
        rdev = makedev(VFIO_EMU_CDEV_MAJOR, dev->cdev_index);
    } else if (emu_parse_u64(rest, &id) && g_ascii_isdigit(*rest) &&
               id <= INT_MAX &&
               g_hash_table_contains(emu->groups, GINT_TO_POINTER(id))) {
        rdev = makedev(VFIO_EMU_GROUP_MAJOR, id);
    } else {
        return -ENOENT;
    }

    memset(st, 0, sizeof(*st));
    st->st_dev = makedev(0, 5);             /* devtmpfs */
    st->st_ino = rdev + 2;
    st->st_mode = mode;
    st->st_nlink = S_ISDIR(mode) ? 2 : 1;
    st->st_rdev = rdev;
    st->st_blksize = 4096;
    return 0;
}

/*
 * Public entry points
 */

bool vfio_emu_is_vfio_path(const char *path)
{
    return path && (g_str_has_prefix(path, "/dev/vfio/") ||
                    !strcmp(path, "/dev/iommu"));
}

bool vfio_emu_owns_fd(VfioEmu *emu, int fd)
{
    return emu && emu_fd_lookup(emu, fd);
}

static VfioEmu *emu_new(EmuConfig *cfg, const char *state_dir,
                        char **errmsg)
{
    VfioEmu *emu = g_new0(VfioEmu, 1);
    int i;

    emu->cfg = cfg;
    emu->events_fd = -1;
    emu->page_size = cfg->host_page ?: getauxval(AT_PAGESZ);
    emu->fds = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    emu->groups = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    emu->devices = g_ptr_array_new();
    emu->containers = g_ptr_array_new();
    emu->ictxs = g_ptr_array_new();
    emu->bar_mmaps = g_array_new(false, false, sizeof(EmuBarMmap));
    emu->file_faults = g_ptr_array_new_with_free_func(emu_fault_free);

    for (i = 0; i < cfg->devices->len; i++) {
        EmuDeviceCfg *dc = g_ptr_array_index(cfg->devices, i);
        EmuDevice *dev = g_new0(EmuDevice, 1);
        EmuGroup *g = g_hash_table_lookup(emu->groups,
                                          GINT_TO_POINTER(dc->group));
        g_autofree char *name = g_strdup_printf("vfio-emu %s", dc->name);

        if (!g) {
            g = g_new0(EmuGroup, 1);
            g->id = dc->group;
            g_hash_table_insert(emu->groups, GINT_TO_POINTER(g->id), g);
        }
        dev->cfg = dc;
        dev->group = g;
        dev->cdev_index = i;
        g_ptr_array_add(emu->devices, dev);
        emu_device_build_config(dev);
        dev->memfd = memfd_create(name, MFD_CLOEXEC);
        if (dev->memfd < 0 ||
            ftruncate(dev->memfd, VFIO_EMU_REGION_OFFSET(EMU_NUM_REGIONS)) ||
            !emu_device_reset_config(dev)) {
            *errmsg = g_strdup_printf("cannot create the device file of %s: "
                                      "%s", dc->name, strerror(errno));
            vfio_emu_free(emu);
            return NULL;
        }
    }

    if (state_dir) {
        g_autofree char *path = g_build_filename(state_dir, "events", NULL);

        emu->state_dir = g_strdup(state_dir);
        emu->events_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
                              O_CLOEXEC, 0644);
        if (emu->events_fd < 0) {
            *errmsg = g_strdup_printf("cannot create %s: %s", path,
                                      strerror(errno));
            vfio_emu_free(emu);
            return NULL;
        }
        emu_write_mappings(emu);
    }
    return emu;
}

VfioEmu *vfio_emu_new_from_data(const char *config_text, const char *state_dir,
                                char **errmsg)
{
    EmuConfig *cfg = emu_config_new();

    if (config_text && !emu_parse_config(config_text, false, cfg, errmsg)) {
        emu_config_free(cfg);
        return NULL;
    }
    return emu_new(cfg, state_dir, errmsg);
}

VfioEmu *vfio_emu_new(const char *config_path, const char *state_dir,
                      char **errmsg)
{
    g_autofree char *text = NULL;
    g_autofree char *msg = NULL;
    g_autoptr(GError) gerr = NULL;
    VfioEmu *emu;

    if (config_path &&
        !g_file_get_contents(config_path, &text, NULL, &gerr)) {
        *errmsg = g_strdup(gerr->message);
        return NULL;
    }
    emu = vfio_emu_new_from_data(text, state_dir, &msg);
    if (!emu) {
        *errmsg = g_strdup_printf("%s: %s", config_path ?: "(no file)", msg);
    }
    return emu;
}

void vfio_emu_free(VfioEmu *emu)
{
    GHashTableIter iter;
    gpointer key, value;
    int i;

    if (!emu) {
        return;
    }
    g_hash_table_iter_init(&iter, emu->fds);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        EmuFd *f = value;

        syscall(SYS_close, GPOINTER_TO_INT(key));
        if (f->kind == EMU_FD_CDEV) {
            g_free(f->obj);
        }
        g_free(f->compat);
    }
    g_hash_table_unref(emu->fds);
    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *dev = g_ptr_array_index(emu->devices, i);

        if (dev->memfd >= 0) {
            syscall(SYS_close, dev->memfd);
        }
        emu_irq_triggers_free(dev);
        g_free(dev);
    }
    g_ptr_array_unref(emu->devices);
    for (i = 0; i < emu->containers->len; i++) {
        EmuContainer *c = g_ptr_array_index(emu->containers, i);

        g_array_unref(c->dmas);
        g_free(c);
    }
    g_ptr_array_unref(emu->containers);
    for (i = 0; i < emu->ictxs->len; i++) {
        EmuIommufd *ictx = g_ptr_array_index(emu->ictxs, i);

        g_hash_table_unref(ictx->objs);
        g_free(ictx);
    }
    g_ptr_array_unref(emu->ictxs);
    g_hash_table_unref(emu->groups);
    g_array_unref(emu->bar_mmaps);
    g_ptr_array_unref(emu->file_faults);
    if (emu->events_fd >= 0) {
        close(emu->events_fd);
    }
    g_free(emu->state_dir);
    emu_config_free(emu->cfg);
    g_free(emu);
}

static int emu_set_errno(int ret)
{
    if (ret < 0) {
        errno = -ret;
        return -1;
    }
    return ret;
}

int vfio_emu_open(VfioEmu *emu, const char *path, int flags)
{
    const char *rest = path + strlen("/dev/vfio/");
    uint64_t id;
    EmuGroup *g;
    int fd;

    if (!strcmp(path, "/dev/iommu")) {
        return emu_set_errno(emu_iommufd_open(emu, flags));
    }
    if (g_str_has_prefix(rest, "devices/")) {
        return emu_set_errno(emu_cdev_open(emu, rest + strlen("devices/"),
                                           flags));
    }
    if (!strcmp(rest, "vfio")) {
        EmuContainer *c = emu_container_new(emu);

        fd = emu_new_fd(emu, "vfio-emu container", EMU_FD_CONTAINER, c,
                        flags);
        if (fd < 0) {
            c->fd_open = false;
            emu_container_maybe_free(emu, c);
            return emu_set_errno(fd);
        }
        emu_log(emu, "op=CONTAINER_OPEN container=%d", c->id);
        return fd;
    }
    if (!emu_parse_u64(rest, &id) || !g_ascii_isdigit(*rest) ||
        id > INT_MAX) {
        return emu_set_errno(-ENOENT);
    }
    g = g_hash_table_lookup(emu->groups, GINT_TO_POINTER((int)id));
    if (!g) {
        return emu_set_errno(-ENOENT);
    }
    if (g->fd_open || emu_group_cdev_bound(emu, g)) {
        return emu_set_errno(-EBUSY);
    }
    fd = emu_new_fd(emu, "vfio-emu group", EMU_FD_GROUP, g, flags);
    if (fd < 0) {
        return emu_set_errno(fd);
    }
    g->fd_open = true;
    return fd;
}

int vfio_emu_ioctl(VfioEmu *emu, int fd, unsigned long request, void *arg)
{
    EmuFd *f = emu_fd_lookup(emu, fd);

    if (!f) {
        return emu_set_errno(-EBADF);
    }
    switch (f->kind) {
    case EMU_FD_CONTAINER:
        return emu_set_errno(emu_container_ioctl(emu, f->obj, request, arg));
    case EMU_FD_GROUP:
        return emu_set_errno(emu_group_ioctl(emu, f->obj, request, arg));
    case EMU_FD_DEVICE:
        return emu_set_errno(emu_device_ioctl(emu, f->obj, request, arg));
    case EMU_FD_IOMMUFD:
        return emu_set_errno(emu_iommufd_ioctl(emu, f->obj, request, arg));
    case EMU_FD_CDEV:
        return emu_set_errno(emu_cdev_ioctl(emu, f->obj, request, arg));
    }
    g_assert_not_reached();
}

int vfio_emu_close(VfioEmu *emu, int fd)
{
    EmuFd *f = emu_fd_lookup(emu, fd);
    EmuCdev *compat;
    EmuFdKind kind;
    void *obj;

    if (!f) {
        return emu_set_errno(-EBADF);
    }
    kind = f->kind;
    obj = f->obj;
    compat = f->compat;
    g_hash_table_remove(emu->fds, GINT_TO_POINTER(fd));
    syscall(SYS_close, fd);

    switch (kind) {
    case EMU_FD_CONTAINER: {
        EmuContainer *c = obj;

        c->fd_open = false;
        emu_container_maybe_free(emu, c);
        break;
    }
    case EMU_FD_GROUP: {
        EmuGroup *g = obj;

        /* Device fds hold the group: it is released with the last one */
        g->fd_open = false;
        if (!g->device_fds) {
            emu_group_unset(emu, g);
        }
        break;
    }
    case EMU_FD_DEVICE: {
        EmuDevice *dev = obj;
        EmuGroup *g = dev->group;

        if (compat) {
            emu_compat_device_close(emu, compat);
        }
        dev->fds--;
        g->device_fds--;
        emu_log(emu, "op=DEVICE_CLOSE device=%s group=%d", dev->cfg->name,
                g->id);
        if (!g->device_fds && !g->fd_open) {
            emu_group_unset(emu, g);
        }
        break;
    }
    case EMU_FD_IOMMUFD: {
        EmuIommufd *ictx = obj;

        ictx->fd_open = false;
        emu_iommufd_maybe_release(emu, ictx);
        break;
    }
    case EMU_FD_CDEV:
        emu_cdev_release(emu, obj);
        break;
    }
    return 0;
}

int vfio_emu_stat(VfioEmu *emu, const char *path, struct stat *st)
{
    return emu_set_errno(emu_path_stat(emu, path, st));
}

int vfio_emu_fstat(VfioEmu *emu, int fd, struct stat *st)
{
    EmuFd *f = emu_fd_lookup(emu, fd);
    g_autofree char *path = NULL;

    if (!f) {
        return emu_set_errno(-EBADF);
    }
    switch (f->kind) {
    case EMU_FD_CONTAINER:
        path = g_strdup("/dev/vfio/vfio");
        break;
    case EMU_FD_GROUP:
        path = g_strdup_printf("/dev/vfio/%d", ((EmuGroup *)f->obj)->id);
        break;
    case EMU_FD_IOMMUFD:
        path = g_strdup("/dev/iommu");
        break;
    case EMU_FD_CDEV:
        path = g_strdup_printf("/dev/vfio/devices/vfio%d",
                               ((EmuCdev *)f->obj)->dev->cdev_index);
        break;
    case EMU_FD_DEVICE:
        /* an anonymous inode on a host; here the memfd */
        return syscall(SYS_fstat, fd, st);
    }
    return emu_set_errno(emu_path_stat(emu, path, st));
}

/* Bounds of a device access; returns the count to transfer or -errno */
static ssize_t emu_device_access(EmuDevice *dev, size_t count, off_t offset,
                                 bool write, uint32_t *index)
{
    uint64_t pos = offset & EMU_REGION_MASK;
    uint64_t size;
    uint32_t flags;

    if (offset < 0) {
        return -EINVAL;
    }
    *index = (uint64_t)offset >> VFIO_EMU_REGION_SHIFT;
    if (*index >= EMU_NUM_REGIONS) {
        return -EINVAL;
    }
    emu_region(dev, *index, &size, &flags);
    if (!(flags & (write ? VFIO_REGION_INFO_FLAG_WRITE :
                   VFIO_REGION_INFO_FLAG_READ)) || pos >= size) {
        return -EINVAL;
    }
    return MIN(count, size - pos);
}

ssize_t vfio_emu_pread(VfioEmu *emu, int fd, void *buf, size_t count,
                       off_t offset)
{
    EmuFd *f = emu_fd_lookup(emu, fd);
    uint32_t index;
    ssize_t n;

    if (!f) {
        return emu_set_errno(-EBADF);
    }
    if (!emu_fd_device(f)) {
        return emu_set_errno(-EINVAL);
    }
    n = emu_device_access(emu_fd_device(f), count, offset, false, &index);
    if (n < 0) {
        return emu_set_errno(n);
    }
    if (index == EMU_CONFIG_INDEX) {
        emu_check_mappings(emu);
    }
    return emu_raw_pread(fd, buf, n, offset);
}

ssize_t vfio_emu_pwrite(VfioEmu *emu, int fd, const void *buf, size_t count,
                        off_t offset)
{
    EmuFd *f = emu_fd_lookup(emu, fd);
    uint8_t config[EMU_CONFIG_SIZE];
    const uint8_t *src = buf;
    EmuDevice *dev;
    uint32_t index;
    uint64_t pos;
    ssize_t n, i;

    if (!f) {
        return emu_set_errno(-EBADF);
    }
    dev = emu_fd_device(f);
    if (!dev) {
        return emu_set_errno(-EINVAL);
    }
    n = emu_device_access(dev, count, offset, true, &index);
    if (n < 0) {
        return emu_set_errno(n);
    }
    if (index != EMU_CONFIG_INDEX) {
        return emu_raw_pwrite(fd, buf, n, offset);
    }

    /* Config space: keep what is writable, then virtualize the BARs */
    emu_check_mappings(emu);
    pos = offset & EMU_REGION_MASK;
    if (emu_raw_pread(fd, config, sizeof(config),
                      VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) !=
        sizeof(config)) {
        return emu_set_errno(-EIO);
    }
    for (i = 0; i < n; i++) {
        uint8_t w = dev->wmask[pos + i];

        config[pos + i] = (config[pos + i] & ~w) | (src[i] & w);
        if (pos + i == EMU_PM_CAP + PCI_PM_CTRL) {
            emu_pm_request(dev, config, src[i] & PCI_PM_CTRL_STATE_MASK);
        }
    }
    emu_config_fixup(dev, config);
    if (emu_raw_pwrite(fd, config, sizeof(config),
                       VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) !=
        sizeof(config)) {
        return emu_set_errno(-EIO);
    }
    return n;
}

void *vfio_emu_mmap(VfioEmu *emu, void *addr, size_t length, int prot,
                    int flags, int fd, off_t offset)
{
    EmuFd *f = emu_fd_lookup(emu, fd);
    EmuDevice *dev;
    EmuBarMmap rec;
    uint64_t index, pos, size;
    uint32_t rflags;
    void *p;

    if (!f || !emu_fd_device(f)) {
        /* a cdev before BIND: EINVAL; no mmap on the other fds */
        errno = !f ? EBADF : f->kind == EMU_FD_CDEV ? EINVAL : ENODEV;
        return MAP_FAILED;
    }
    dev = emu_fd_device(f);
    /* The checks of vfio_pci_core_mmap() */
    index = (uint64_t)offset >> VFIO_EMU_REGION_SHIFT;
    pos = offset & EMU_REGION_MASK;
    if (offset < 0 || !(flags & MAP_SHARED) || index >= EMU_ROM_INDEX) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    emu_region(dev, index, &size, &rflags);
    length = ROUND_UP(length, emu->page_size);  /* the VMA's */
    if (!(rflags & VFIO_REGION_INFO_FLAG_MMAP) || pos & (emu->page_size - 1) ||
        pos + length > ROUND_UP(size, emu->page_size)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    /*
     * The MSI-X table's pages may be mapped too: vfio_pci_core_mmap() does
     * not check them (the sparse-mmap capability only advises).
     */

    p = (void *)syscall(SYS_mmap, addr, length, prot, flags, fd, offset);
    if (p == MAP_FAILED) {
        return p;
    }
    vfio_emu_forget_range(emu, p, length);
    rec = (EmuBarMmap) {
        .start = (uintptr_t)p,
        .size = length,
        .dev = dev,
        .bar = index,
        .offset = pos,
    };
    g_array_append_val(emu->bar_mmaps, rec);
    return p;
}

void vfio_emu_forget_range(VfioEmu *emu, void *addr, size_t length)
{
    uint64_t start = (uintptr_t)addr, end = start + length;
    guint i = 0;

    while (i < emu->bar_mmaps->len) {
        EmuBarMmap *r = &g_array_index(emu->bar_mmaps, EmuBarMmap, i);
        uint64_t rend = r->start + r->size;

        if (rend <= start || r->start >= end) {
            i++;
            continue;
        }
        if (r->start < start && rend > end) {
            /* split: keep the head here, append the tail */
            EmuBarMmap tail = *r;

            tail.start = end;
            tail.size = rend - end;
            tail.offset += end - r->start;
            r->size = start - r->start;
            g_array_append_val(emu->bar_mmaps, tail);
            i++;
        } else if (r->start < start) {
            r->size = start - r->start;
            i++;
        } else if (rend > end) {
            r->offset += end - r->start;
            r->size = rend - end;
            r->start = end;
            i++;
        } else {
            g_array_remove_index_fast(emu->bar_mmaps, i);
        }
    }
}

char *vfio_emu_describe_vaddr(VfioEmu *emu, uint64_t vaddr)
{
    int i;

    for (i = 0; i < emu->bar_mmaps->len; i++) {
        EmuBarMmap *r = &g_array_index(emu->bar_mmaps, EmuBarMmap, i);

        if (vaddr >= r->start && vaddr - r->start < r->size) {
            return g_strdup_printf("%s:bar%d+0x%" PRIx64, r->dev->cfg->name,
                                   r->bar, r->offset + (vaddr - r->start));
        }
    }
    return g_strdup("ram");
}
