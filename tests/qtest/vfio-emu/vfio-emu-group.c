/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: VFIO groups (/dev/vfio/<group>)
 *
 * Copyright (c) 2026 The vfio-series authors
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
 * Groups
 */

/* The group leaves its container or iommufd context */
void emu_group_unset(VfioEmu *emu, EmuGroup *g)
{
    if (g->container) {
        emu_group_detach(emu, g);
    } else if (g->ictx) {
        emu_compat_group_unset(emu, g);
    }
}

EmuFd *emu_fd_lookup(VfioEmu *emu, int fd)
{
    return g_hash_table_lookup(emu->fds, GINT_TO_POINTER(fd));
}

int emu_new_fd(VfioEmu *emu, const char *name, EmuFdKind kind,
               void *obj, int oflags)
{
    EmuFd *f;
    int fd;

    fd = memfd_create(name, (oflags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd < 0) {
        return -errno;
    }
    f = g_new0(EmuFd, 1);
    f->kind = kind;
    f->obj = obj;
    g_hash_table_insert(emu->fds, GINT_TO_POINTER(fd), f);
    return fd;
}

static int emu_group_get_device_fd(VfioEmu *emu, EmuGroup *g,
                                   const char *name)
{
    EmuDevice *dev = NULL;
    EmuCdev *compat = NULL;
    EmuFd *f;
    int i, fd, ret;

    /* vfio_group_has_iommu(); a container needs its IOMMU driver set */
    if (!g->ictx && (!g->container || !g->container->iommu_type)) {
        return -EINVAL;
    }
    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *d = g_ptr_array_index(emu->devices, i);

        if (d->group == g && !strcmp(d->cfg->name, name)) {
            dev = d;
            break;
        }
    }
    if (!dev) {
        return -ENODEV;
    }
    fd = fcntl(dev->memfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (!dev->fds && !emu_device_reset_config(dev)) {
        close(fd);
        return -EIO;
    }
    if (g->ictx) {
        ret = emu_compat_device_open(emu, g, dev, &compat);
        if (ret) {
            close(fd);
            return ret;
        }
    }
    f = g_new0(EmuFd, 1);
    f->kind = EMU_FD_DEVICE;
    f->obj = dev;
    f->compat = compat;
    g_hash_table_insert(emu->fds, GINT_TO_POINTER(fd), f);
    dev->fds++;
    g->device_fds++;
    emu_log(emu, "op=DEVICE_OPEN device=%s group=%d", dev->cfg->name, g->id);
    return fd;
}

int emu_group_ioctl(VfioEmu *emu, EmuGroup *g, unsigned long request,
                    void *arg)
{
    switch (request) {
    case VFIO_GROUP_GET_STATUS: {
        struct vfio_group_status status;
        size_t minsz = offsetofend(struct vfio_group_status, flags);

        memcpy(&status, arg, minsz);
        if (status.argsz < minsz) {
            return -EINVAL;
        }
        status.flags = VFIO_GROUP_FLAGS_VIABLE |
                       (g->container || g->ictx ?
                        VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
        memcpy(arg, &status, minsz);
        return 0;
    }
    case VFIO_GROUP_SET_CONTAINER: {
        int cfd;
        EmuFd *f;

        memcpy(&cfd, arg, sizeof(cfd));
        f = emu_fd_lookup(emu, cfd);
        if (!f) {
            return fcntl(cfd, F_GETFD) < 0 ? -EBADF : -EINVAL;
        }
        if (g->container || g->ictx) {
            return -EINVAL;
        }
        /* iommufd_ctx_from_file(): the VFIO compat ioctls of /dev/iommu */
        if (f->kind == EMU_FD_IOMMUFD) {
            emu_compat_group_set(emu, g, f->obj);
            return 0;
        }
        if (f->kind != EMU_FD_CONTAINER) {
            return -EBADFD;
        }
        g->container = f->obj;
        g->container->ngroups++;
        emu_log(emu, "op=GROUP_SET_CONTAINER group=%d container=%d", g->id,
                g->container->id);
        return 0;
    }
    case VFIO_GROUP_UNSET_CONTAINER:
        if (!g->container && !g->ictx) {
            return -EINVAL;
        }
        if (g->device_fds) {
            return -EBUSY;
        }
        emu_group_unset(emu, g);
        return 0;
    case VFIO_GROUP_GET_DEVICE_FD: {
        char name[256];

        g_strlcpy(name, arg, sizeof(name));
        return emu_group_get_device_fd(emu, g, name);
    }
    default:
        return -ENOTTY;
    }
}
