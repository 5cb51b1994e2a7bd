/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: the model of the VFIO UAPI (containers, type1, groups, devices)
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The checks of VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA are made in the
 * order the kernel's vfio_iommu_type1 driver makes them, so that a call gets
 * the errno it would get on a host.  See vfio-emu.h for the configuration
 * and state-directory formats.
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
#include "vfio-emu.h"

#define EMU_NUM_BARS        6
#define EMU_ROM_INDEX       VFIO_PCI_ROM_REGION_INDEX
#define EMU_CONFIG_INDEX    VFIO_PCI_CONFIG_REGION_INDEX
#define EMU_NUM_REGIONS     VFIO_PCI_NUM_REGIONS
#define EMU_CONFIG_SIZE     PCI_CFG_SPACE_SIZE
#define EMU_MSIX_CAP        0x40
#define EMU_REGION_MASK     (VFIO_EMU_REGION_OFFSET(1) - 1)
#define EMU_MAX_BAR_SIZE    VFIO_EMU_REGION_OFFSET(1)

/* The minimum argsz of the kernel's ioctl handlers */
#define offsetofend(type, field) \
    (offsetof(type, field) + sizeof_field(type, field))

typedef struct EmuRange {
    uint64_t start;
    uint64_t last;              /* inclusive */
} EmuRange;

typedef struct EmuBarCfg {
    uint64_t size;              /* 0: not implemented */
    bool io;
    bool mem64;
    bool prefetch;
    bool mmap;
} EmuBarCfg;

typedef struct EmuDeviceCfg {
    char *name;
    int group;
    uint32_t vendor_id;
    uint32_t device_id;
    uint32_t subsys_vendor_id;
    uint32_t subsys_id;
    uint32_t class_code;
    uint32_t revision;
    EmuBarCfg bar[EMU_NUM_BARS];
    uint64_t rom_size;
    uint32_t msix_entries;
    uint32_t msix_table_bar;
    uint32_t msix_table_offset;
    uint32_t msix_pba_bar;
    uint32_t msix_pba_offset;
    bool msix_mappable;
    bool intx;
    bool reset;
} EmuDeviceCfg;

enum {
    EMU_FAULT_MAP = 1,
    EMU_FAULT_UNMAP = 2,
};

typedef struct EmuFault {
    char *name;
    int ops;
    int err;
    bool has_iova;
    EmuRange iova;
    char *backing;              /* NULL: any */
    uint64_t skip;
    bool has_count;
    uint64_t count;
    uint64_t matched;
    uint64_t failed;
} EmuFault;

/* The kernel versions whose checks differ where the emulation follows them */
typedef enum EmuKernel {
    EMU_KERNEL_6_12,            /* wraps are EINVAL */
    EMU_KERNEL_7_3,             /* wraps are EOVERFLOW (since 6.19) */
} EmuKernel;

typedef struct EmuConfig {
    uint64_t pgsizes;
    bool has_ranges;
    GArray *ranges;             /* EmuRange */
    uint64_t dma_entry_limit;
    EmuKernel kernel;
    GPtrArray *devices;         /* EmuDeviceCfg */
    GPtrArray *faults;          /* EmuFault */
} EmuConfig;

typedef struct EmuDma {
    uint64_t iova;
    uint64_t size;
    uint64_t vaddr;
    uint32_t flags;
    bool vaddr_invalid;         /* VFIO_DMA_UNMAP_FLAG_VADDR */
    char *backing;
} EmuDma;

typedef struct EmuContainer {
    int id;
    bool fd_open;
    int ngroups;
    int iommu_type;             /* 0: not set */
    GArray *dmas;               /* EmuDma, sorted by iova */
    uint64_t dma_avail;
    bool dirty_tracking;        /* VFIO_IOMMU_DIRTY_PAGES_FLAG_START */
} EmuContainer;

typedef struct EmuIommufd EmuIommufd;

typedef struct EmuGroup {
    int id;
    bool fd_open;
    int device_fds;
    EmuContainer *container;
    EmuIommufd *ictx;           /* VFIO_GROUP_SET_CONTAINER with /dev/iommu */
} EmuGroup;

typedef struct EmuCdev EmuCdev;

typedef struct EmuDevice {
    EmuDeviceCfg *cfg;
    EmuGroup *group;
    int memfd;
    int fds;
    int cdev_index;             /* /dev/vfio/devices/vfioN */
    EmuCdev *cdev_bound;        /* the cdev file bound to an iommufd */
    int *msix_triggers;         /* eventfds of VFIO_DEVICE_SET_IRQS, or -1 */
    uint8_t init_config[EMU_CONFIG_SIZE];
    uint8_t wmask[EMU_CONFIG_SIZE];
} EmuDevice;

typedef struct EmuBarMmap {
    uint64_t start;
    uint64_t size;
    EmuDevice *dev;
    int bar;
    uint64_t offset;
} EmuBarMmap;

typedef enum EmuFdKind {
    EMU_FD_CONTAINER,
    EMU_FD_GROUP,
    EMU_FD_DEVICE,
    EMU_FD_IOMMUFD,
    EMU_FD_CDEV,
} EmuFdKind;

typedef struct EmuFd {
    EmuFdKind kind;
    void *obj;
    EmuCdev *compat;            /* a group's device fd bound to an iommufd */
} EmuFd;

struct VfioEmu {
    EmuConfig *cfg;
    char *state_dir;
    int events_fd;
    uint64_t seq;
    uint64_t page_size;
    int next_container_id;
    GHashTable *fds;            /* fd -> EmuFd */
    GHashTable *groups;         /* group id -> EmuGroup */
    GPtrArray *devices;         /* EmuDevice */
    GPtrArray *containers;      /* live EmuContainer */
    GPtrArray *ictxs;           /* live EmuIommufd */
    int next_ictx_id;
    GArray *bar_mmaps;          /* EmuBarMmap */
    GPtrArray *file_faults;     /* EmuFault from STATE/faults */
    bool have_faults_stat;
    struct stat faults_stat;
};

/*
 * Configuration parsing
 */

static void emu_fault_free(gpointer p)
{
    EmuFault *f = p;

    g_free(f->name);
    g_free(f->backing);
    g_free(f);
}

static void emu_device_cfg_free(gpointer p)
{
    EmuDeviceCfg *d = p;

    g_free(d->name);
    g_free(d);
}

static void emu_config_free(EmuConfig *cfg)
{
    if (!cfg) {
        return;
    }
    g_array_unref(cfg->ranges);
    g_ptr_array_unref(cfg->devices);
    g_ptr_array_unref(cfg->faults);
    g_free(cfg);
}

static EmuConfig *emu_config_new(void)
{
    EmuConfig *cfg = g_new0(EmuConfig, 1);
    EmuRange r;

    cfg->pgsizes = 0x40201000;  /* 4K | 2M | 1G */
    cfg->has_ranges = true;
    cfg->ranges = g_array_new(false, false, sizeof(EmuRange));
    r = (EmuRange) { 0, 0xfedfffffULL };
    g_array_append_val(cfg->ranges, r);
    r = (EmuRange) { 0xfef00000ULL, (1ULL << 48) - 1 };
    g_array_append_val(cfg->ranges, r);
    cfg->dma_entry_limit = 65535;
    cfg->kernel = EMU_KERNEL_7_3;
    cfg->devices = g_ptr_array_new_with_free_func(emu_device_cfg_free);
    cfg->faults = g_ptr_array_new_with_free_func(emu_fault_free);
    return cfg;
}

static bool G_GNUC_PRINTF(4, 5)
emu_key_error(char **errmsg, const char *group, const char *key,
              const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (key) {
        *errmsg = g_strdup_printf("[%s] %s: %s", group, key, msg);
    } else {
        *errmsg = g_strdup_printf("[%s]: %s", group, msg);
    }
    return false;
}

static bool emu_parse_u64(const char *s, uint64_t *v)
{
    char *end;

    if (!*s || *s == '-' || *s == '+' || g_ascii_isspace(*s)) {
        return false;
    }
    errno = 0;
    *v = g_ascii_strtoull(s, &end, 0);
    return errno == 0 && end != s && *end == '\0';
}

static bool emu_parse_bool(const char *s, bool *v)
{
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on")) {
        *v = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off")) {
        *v = false;
        return true;
    }
    return false;
}

static bool emu_parse_range(const char *s, EmuRange *r)
{
    g_auto(GStrv) parts = g_strsplit(s, "-", 2);

    if (g_strv_length(parts) != 2) {
        return false;
    }
    g_strstrip(parts[0]);
    g_strstrip(parts[1]);
    return emu_parse_u64(parts[0], &r->start) &&
           emu_parse_u64(parts[1], &r->last) && r->start <= r->last;
}

static const struct {
    const char *name;
    int err;
} emu_errnos[] = {
    { "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EIO", EIO },
    { "E2BIG", E2BIG }, { "EBADF", EBADF }, { "EAGAIN", EAGAIN },
    { "ENOMEM", ENOMEM }, { "EFAULT", EFAULT }, { "EBUSY", EBUSY },
    { "EEXIST", EEXIST }, { "ENODEV", ENODEV }, { "EINVAL", EINVAL },
    { "ENOSPC", ENOSPC }, { "ERANGE", ERANGE }, { "ENOTTY", ENOTTY },
    { "EOPNOTSUPP", EOPNOTSUPP },
};

static bool emu_parse_errno(const char *s, int *err)
{
    uint64_t v;
    int i;

    for (i = 0; i < ARRAY_SIZE(emu_errnos); i++) {
        if (!strcmp(s, emu_errnos[i].name)) {
            *err = emu_errnos[i].err;
            return true;
        }
    }
    if (emu_parse_u64(s, &v) && v > 0 && v < 4096) {
        *err = v;
        return true;
    }
    return false;
}

/* BAR:OFFSET */
static bool emu_parse_bar_offset(const char *s, uint32_t *bar, uint32_t *off)
{
    g_auto(GStrv) parts = g_strsplit(s, ":", 2);
    uint64_t b, o;

    if (g_strv_length(parts) != 2 ||
        !emu_parse_u64(g_strstrip(parts[0]), &b) ||
        !emu_parse_u64(g_strstrip(parts[1]), &o) ||
        b >= EMU_NUM_BARS || o > UINT32_MAX) {
        return false;
    }
    *bar = b;
    *off = o;
    return true;
}

/* One [container] key: parse @val into @cfg, or say why not in *@why */
typedef bool (*EmuContainerKeyFn)(const char *val, EmuConfig *cfg,
                                  char **why);

static bool emu_key_pgsizes(const char *val, EmuConfig *cfg, char **why)
{
    uint64_t v;

    if (!emu_parse_u64(val, &v)) {
        *why = g_strdup_printf("'%s' is not a number", val);
        return false;
    }
    if (v & 0xfff) {
        *why = g_strdup_printf("page sizes below 4 KiB (0x%" PRIx64
                               ") are not supported", v);
        return false;
    }
    cfg->pgsizes = v;
    return true;
}

static bool emu_key_ranges(const char *val, EmuConfig *cfg, char **why)
{
    g_auto(GStrv) items = NULL;
    int j;

    g_array_set_size(cfg->ranges, 0);
    cfg->has_ranges = strcmp(val, "none") != 0;
    if (!cfg->has_ranges) {
        return true;
    }
    items = g_strsplit(val, ",", -1);
    for (j = 0; items[j]; j++) {
        EmuRange r;

        if (!emu_parse_range(g_strstrip(items[j]), &r)) {
            *why = g_strdup_printf("'%s' is not START-END", items[j]);
            return false;
        }
        if (cfg->ranges->len &&
            r.start <= g_array_index(cfg->ranges, EmuRange,
                                     cfg->ranges->len - 1).last) {
            *why = g_strdup("ranges must be sorted and disjoint");
            return false;
        }
        g_array_append_val(cfg->ranges, r);
    }
    if (!cfg->ranges->len) {
        *why = g_strdup("no range");
        return false;
    }
    return true;
}

static bool emu_key_dma_entry_limit(const char *val, EmuConfig *cfg,
                                    char **why)
{
    uint64_t v;

    if (!emu_parse_u64(val, &v) || v > UINT32_MAX) {
        *why = g_strdup_printf("'%s' is not a 32-bit number", val);
        return false;
    }
    cfg->dma_entry_limit = v;
    return true;
}

static bool emu_key_kernel(const char *val, EmuConfig *cfg, char **why)
{
    if (!strcmp(val, "6.12")) {
        cfg->kernel = EMU_KERNEL_6_12;
    } else if (!strcmp(val, "7.3")) {
        cfg->kernel = EMU_KERNEL_7_3;
    } else {
        *why = g_strdup_printf("'%s' is not 6.12 or 7.3", val);
        return false;
    }
    return true;
}

static const struct {
    const char *key;
    EmuContainerKeyFn parse;
} emu_container_keys[] = {
    { "iova_pgsizes", emu_key_pgsizes },
    { "iova_ranges", emu_key_ranges },
    { "dma_entry_limit", emu_key_dma_entry_limit },
    { "kernel", emu_key_kernel },
};

static bool emu_parse_container(GKeyFile *kf, const char *group,
                                EmuConfig *cfg, char **errmsg)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    int i, k;

    for (i = 0; keys && keys[i]; i++) {
        const char *key = keys[i];
        g_autofree char *raw = g_key_file_get_value(kf, group, key, NULL);
        g_autofree char *why = NULL;

        for (k = 0; k < ARRAY_SIZE(emu_container_keys); k++) {
            if (!strcmp(key, emu_container_keys[k].key)) {
                break;
            }
        }
        if (k == ARRAY_SIZE(emu_container_keys)) {
            return emu_key_error(errmsg, group, key, "unknown key");
        }
        if (!emu_container_keys[k].parse(g_strstrip(raw), cfg, &why)) {
            return emu_key_error(errmsg, group, key, "%s", why);
        }
    }
    return true;
}

static bool emu_parse_bar(const char *group, const char *key, const char *val,
                          EmuBarCfg *bar, char **errmsg)
{
    g_auto(GStrv) tokens = g_strsplit_set(val, " \t", -1);
    bool have_size = false;
    int i;

    *bar = (EmuBarCfg) { .mmap = true };
    for (i = 0; tokens[i]; i++) {
        const char *t = tokens[i];

        if (!*t) {
            continue;
        }
        if (!have_size) {
            if (!emu_parse_u64(t, &bar->size)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a size", t);
            }
            have_size = true;
        } else if (!strcmp(t, "mem32")) {
            bar->io = bar->mem64 = false;
        } else if (!strcmp(t, "mem64")) {
            bar->io = false;
            bar->mem64 = true;
        } else if (!strcmp(t, "io")) {
            bar->io = true;
            bar->mem64 = false;
        } else if (!strcmp(t, "prefetch")) {
            bar->prefetch = true;
        } else if (!strcmp(t, "nommap")) {
            bar->mmap = false;
        } else {
            return emu_key_error(errmsg, group, key, "unknown token '%s'", t);
        }
    }
    if (!have_size) {
        return emu_key_error(errmsg, group, key, "missing size");
    }
    if (!bar->size) {
        *bar = (EmuBarCfg) { 0 };
        return true;
    }
    if (bar->size & (bar->size - 1)) {
        return emu_key_error(errmsg, group, key,
                             "size 0x%" PRIx64 " is not a power of two",
                             bar->size);
    }
    if (bar->io && (bar->prefetch || bar->size < 4 || bar->size > 256)) {
        return emu_key_error(errmsg, group, key,
                             "an I/O BAR is 4 to 256 bytes, not prefetchable");
    }
    if (!bar->io && bar->size < 16) {
        return emu_key_error(errmsg, group, key,
                             "a memory BAR is at least 16 bytes");
    }
    if (bar->size >= EMU_MAX_BAR_SIZE ||
        (!bar->io && !bar->mem64 && bar->size > (1ULL << 31))) {
        return emu_key_error(errmsg, group, key,
                             "size 0x%" PRIx64 " is too large", bar->size);
    }
    return true;
}

static bool emu_parse_device(GKeyFile *kf, const char *group,
                             EmuDeviceCfg *d, char **errmsg)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    bool have_group = false, have_pba = false;
    uint64_t table_end, pba_end;
    int i;

    d->vendor_id = 0x1b36;
    d->device_id = 0x10f0;
    d->class_code = 0xff0000;
    d->revision = 1;
    d->msix_mappable = true;
    d->intx = true;
    d->reset = true;

    for (i = 0; keys && keys[i]; i++) {
        const char *key = keys[i];
        g_autofree char *raw = g_key_file_get_value(kf, group, key, NULL);
        const char *val = g_strstrip(raw);
        uint32_t *u32 = NULL;
        uint64_t max = 0xffff, v;
        bool *flag = NULL;

        if (!strcmp(key, "group")) {
            if (!emu_parse_u64(val, &v) || v > INT_MAX) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a group number", val);
            }
            d->group = v;
            have_group = true;
            continue;
        } else if (!strcmp(key, "vendor_id")) {
            u32 = &d->vendor_id;
        } else if (!strcmp(key, "device_id")) {
            u32 = &d->device_id;
        } else if (!strcmp(key, "subsystem_vendor_id")) {
            u32 = &d->subsys_vendor_id;
        } else if (!strcmp(key, "subsystem_id")) {
            u32 = &d->subsys_id;
        } else if (!strcmp(key, "class")) {
            u32 = &d->class_code;
            max = 0xffffff;
        } else if (!strcmp(key, "revision")) {
            u32 = &d->revision;
            max = 0xff;
        } else if (!strcmp(key, "msix_entries")) {
            u32 = &d->msix_entries;
            max = 2048;
        } else if (!strcmp(key, "msix_mappable")) {
            flag = &d->msix_mappable;
        } else if (!strcmp(key, "intx")) {
            flag = &d->intx;
        } else if (!strcmp(key, "reset")) {
            flag = &d->reset;
        } else if (g_str_has_prefix(key, "bar") && strlen(key) == 4 &&
                   key[3] >= '0' && key[3] < '0' + EMU_NUM_BARS) {
            if (!emu_parse_bar(group, key, val, &d->bar[key[3] - '0'],
                               errmsg)) {
                return false;
            }
            continue;
        } else if (!strcmp(key, "rom")) {
            if (!emu_parse_u64(val, &v)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a size", val);
            }
            if (v && ((v & (v - 1)) || v < 2048 || v > (1ULL << 31))) {
                return emu_key_error(errmsg, group, key,
                                     "size 0x%" PRIx64 " is not a power of "
                                     "two from 2 KiB to 2 GiB", v);
            }
            d->rom_size = v;
            continue;
        } else if (!strcmp(key, "msix_table")) {
            if (!emu_parse_bar_offset(val, &d->msix_table_bar,
                                      &d->msix_table_offset)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not BAR:OFFSET", val);
            }
            continue;
        } else if (!strcmp(key, "msix_pba")) {
            if (!emu_parse_bar_offset(val, &d->msix_pba_bar,
                                      &d->msix_pba_offset)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not BAR:OFFSET", val);
            }
            have_pba = true;
            continue;
        } else {
            return emu_key_error(errmsg, group, key, "unknown key");
        }

        if (flag) {
            if (!emu_parse_bool(val, flag)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a boolean", val);
            }
        } else {
            if (!emu_parse_u64(val, &v) || v > max) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a number up to 0x%" PRIx64,
                                     val, max);
            }
            *u32 = v;
        }
    }

    if (!have_group) {
        return emu_key_error(errmsg, group, "group", "missing");
    }
    if (d->vendor_id == 0xffff) {
        return emu_key_error(errmsg, group, "vendor_id", "0xffff is invalid");
    }
    for (i = 0; i < EMU_NUM_BARS; i++) {
        if (!d->bar[i].mem64) {
            continue;
        }
        if (i == EMU_NUM_BARS - 1) {
            return emu_key_error(errmsg, group, "bar5",
                                 "a 64-bit BAR needs the next slot");
        }
        if (d->bar[i + 1].size) {
            g_autofree char *k = g_strdup_printf("bar%d", i + 1);

            return emu_key_error(errmsg, group, k,
                                 "slot used by 64-bit bar%d", i);
        }
    }

    if (!d->msix_entries) {
        return true;
    }
    if (!have_pba) {
        d->msix_pba_bar = d->msix_table_bar;
        d->msix_pba_offset = d->msix_table_offset + d->msix_entries * 16;
    }
    table_end = (uint64_t)d->msix_table_offset + d->msix_entries * 16;
    pba_end = (uint64_t)d->msix_pba_offset +
              DIV_ROUND_UP(d->msix_entries, 64) * 8;
    if (!d->bar[d->msix_table_bar].size || d->bar[d->msix_table_bar].io ||
        table_end > d->bar[d->msix_table_bar].size ||
        d->msix_table_offset & 7) {
        return emu_key_error(errmsg, group, "msix_table",
                             "the table (0x%x bytes at 0x%x) is not 8-byte "
                             "aligned in memory bar%u",
                             d->msix_entries * 16, d->msix_table_offset,
                             d->msix_table_bar);
    }
    if (!d->bar[d->msix_pba_bar].size || d->bar[d->msix_pba_bar].io ||
        pba_end > d->bar[d->msix_pba_bar].size || d->msix_pba_offset & 7) {
        return emu_key_error(errmsg, group, "msix_pba",
                             "the PBA at 0x%x is not 8-byte aligned in "
                             "memory bar%u",
                             d->msix_pba_offset, d->msix_pba_bar);
    }
    return true;
}

static bool emu_parse_fault(GKeyFile *kf, const char *group, EmuFault *f,
                            char **errmsg)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    int i;

    for (i = 0; keys && keys[i]; i++) {
        const char *key = keys[i];
        g_autofree char *raw = g_key_file_get_value(kf, group, key, NULL);
        const char *val = g_strstrip(raw);

        if (!strcmp(key, "op")) {
            if (!strcmp(val, "map")) {
                f->ops = EMU_FAULT_MAP;
            } else if (!strcmp(val, "unmap")) {
                f->ops = EMU_FAULT_UNMAP;
            } else if (!strcmp(val, "any")) {
                f->ops = EMU_FAULT_MAP | EMU_FAULT_UNMAP;
            } else {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not map, unmap or any", val);
            }
        } else if (!strcmp(key, "errno")) {
            if (!emu_parse_errno(val, &f->err)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not an errno name or number",
                                     val);
            }
        } else if (!strcmp(key, "iova")) {
            if (!emu_parse_range(val, &f->iova)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not START-END", val);
            }
            f->has_iova = true;
        } else if (!strcmp(key, "backing")) {
            if (!*val) {
                return emu_key_error(errmsg, group, key, "empty");
            }
            g_free(f->backing);
            f->backing = strcmp(val, "any") ? g_strdup(val) : NULL;
        } else if (!strcmp(key, "skip")) {
            if (!emu_parse_u64(val, &f->skip)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a number", val);
            }
        } else if (!strcmp(key, "count")) {
            if (!emu_parse_u64(val, &f->count)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a number", val);
            }
            f->has_count = true;
        } else {
            return emu_key_error(errmsg, group, key, "unknown key");
        }
    }
    if (!f->ops) {
        return emu_key_error(errmsg, group, "op", "missing");
    }
    if (!f->err) {
        return emu_key_error(errmsg, group, "errno", "missing");
    }
    return true;
}

/*
 * Parse @text into @cfg.  With @faults_only, only [fault NAME] groups are
 * accepted (the runtime "faults" file).
 */
static bool emu_parse_config(const char *text, bool faults_only,
                             EmuConfig *cfg, char **errmsg)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) gerr = NULL;
    g_auto(GStrv) groups = NULL;
    int i;

    if (!g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, &gerr)) {
        *errmsg = g_strdup_printf("syntax: %s", gerr->message);
        return false;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (i = 0; groups[i]; i++) {
        const char *group = groups[i];

        if (!faults_only && !strcmp(group, "container")) {
            if (!emu_parse_container(kf, group, cfg, errmsg)) {
                return false;
            }
        } else if (!faults_only && g_str_has_prefix(group, "device ") &&
                   group[7]) {
            EmuDeviceCfg *d = g_new0(EmuDeviceCfg, 1);
            int j;

            d->name = g_strdup(group + 7);
            g_ptr_array_add(cfg->devices, d);
            for (j = 0; j < cfg->devices->len - 1; j++) {
                EmuDeviceCfg *o = g_ptr_array_index(cfg->devices, j);

                if (!strcmp(o->name, d->name)) {
                    return emu_key_error(errmsg, group, NULL,
                                         "duplicate device");
                }
            }
            if (strchr(d->name, ' ') || strchr(d->name, '/')) {
                return emu_key_error(errmsg, group, NULL,
                                     "a device name has no spaces or '/'");
            }
            if (!emu_parse_device(kf, group, d, errmsg)) {
                return false;
            }
        } else if (g_str_has_prefix(group, "fault ") && group[6]) {
            EmuFault *f = g_new0(EmuFault, 1);

            f->name = g_strdup(group + 6);
            g_ptr_array_add(cfg->faults, f);
            if (!emu_parse_fault(kf, group, f, errmsg)) {
                return false;
            }
        } else {
            return emu_key_error(errmsg, group, NULL,
                                 faults_only ?
                                 "unknown group (expected [fault NAME])" :
                                 "unknown group (expected [container], "
                                 "[device NAME] or [fault NAME])");
        }
    }
    return true;
}

bool vfio_emu_check_faults(const char *text, char **errmsg)
{
    EmuConfig *cfg = emu_config_new();
    bool ok = emu_parse_config(text, true, cfg, errmsg);

    emu_config_free(cfg);
    return ok;
}

/*
 * State directory
 */

static void G_GNUC_PRINTF(2, 3) emu_log(VfioEmu *emu, const char *fmt, ...)
{
    g_autofree char *body = NULL;
    g_autofree char *line = NULL;
    va_list ap;
    size_t len, done = 0;

    emu->seq++;
    if (emu->events_fd < 0) {
        return;
    }
    va_start(ap, fmt);
    body = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf("seq=%" PRIu64 " %s\n", emu->seq, body);
    len = strlen(line);
    while (done < len) {
        ssize_t n = write(emu->events_fd, line + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "vfio-emu: cannot write the event log: %s\n",
                    strerror(errno));
            return;
        }
        done += n;
    }
}

static gint emu_container_cmp(gconstpointer a, gconstpointer b)
{
    const EmuContainer *ca = *(EmuContainer * const *)a;
    const EmuContainer *cb = *(EmuContainer * const *)b;

    return ca->id - cb->id;
}

static void emu_write_mappings(VfioEmu *emu)
{
    g_autoptr(GString) s = g_string_new("");
    g_autofree char *path = NULL;
    g_autofree char *tmp = NULL;
    int i, j, fd;
    size_t done = 0;

    if (!emu->state_dir) {
        return;
    }
    g_ptr_array_sort(emu->containers, emu_container_cmp);
    for (i = 0; i < emu->containers->len; i++) {
        EmuContainer *c = g_ptr_array_index(emu->containers, i);

        for (j = 0; j < c->dmas->len; j++) {
            EmuDma *d = &g_array_index(c->dmas, EmuDma, j);

            g_string_append_printf(s, "container=%d iova=0x%" PRIx64
                                   " size=0x%" PRIx64 " vaddr=0x%" PRIx64
                                   " flags=0x%x backing=%s\n",
                                   c->id, d->iova, d->size, d->vaddr,
                                   d->flags, d->backing);
        }
    }

    path = g_build_filename(emu->state_dir, "mappings", NULL);
    tmp = g_strconcat(path, ".tmp", NULL);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "vfio-emu: cannot write %s: %s\n", tmp,
                strerror(errno));
        return;
    }
    while (done < s->len) {
        ssize_t n = write(fd, s->str + done, s->len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "vfio-emu: cannot write %s: %s\n", tmp,
                    strerror(errno));
            close(fd);
            return;
        }
        done += n;
    }
    close(fd);
    if (rename(tmp, path)) {
        fprintf(stderr, "vfio-emu: cannot rename %s: %s\n", tmp,
                strerror(errno));
    }
}

/*
 * Re-read STATE/faults when it changed.  A malformed file ends the process:
 * the test that wrote it has a bug, and running on would hide it.
 */
static void emu_reload_faults(VfioEmu *emu)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;
    g_autofree char *errmsg = NULL;
    g_autoptr(GError) gerr = NULL;
    EmuConfig *cfg;
    struct stat st;

    if (!emu->state_dir) {
        return;
    }
    path = g_build_filename(emu->state_dir, "faults", NULL);
    if (stat(path, &st)) {
        if (emu->have_faults_stat) {
            g_ptr_array_set_size(emu->file_faults, 0);
            emu->have_faults_stat = false;
        }
        return;
    }
    if (emu->have_faults_stat && st.st_ino == emu->faults_stat.st_ino &&
        st.st_dev == emu->faults_stat.st_dev &&
        st.st_size == emu->faults_stat.st_size &&
        st.st_mtim.tv_sec == emu->faults_stat.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == emu->faults_stat.st_mtim.tv_nsec) {
        return;
    }
    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        fprintf(stderr, "vfio-emu: %s\n", gerr->message);
        exit(1);
    }
    cfg = emu_config_new();
    if (!emu_parse_config(text, true, cfg, &errmsg)) {
        fprintf(stderr, "vfio-emu: %s: %s\n", path, errmsg);
        exit(1);
    }
    g_ptr_array_unref(emu->file_faults);
    emu->file_faults = g_steal_pointer(&cfg->faults);
    cfg->faults = g_ptr_array_new();
    emu_config_free(cfg);
    emu->faults_stat = st;
    emu->have_faults_stat = true;
}

static bool emu_backing_matches(const char *rule, const char *backing)
{
    const char *plus = strrchr(backing, '+');
    g_autofree char *devbar = NULL;
    const char *bar;

    if (!rule) {
        return true;
    }
    if (!plus) {
        return !strcmp(rule, backing);
    }
    /* "DEV" or "DEV:barN" matches "DEV:barN+0xOFF" */
    devbar = g_strndup(backing, plus - backing);
    if (!strcmp(rule, devbar)) {
        return true;
    }
    bar = g_strrstr(devbar, ":bar");
    return bar && strlen(rule) == bar - devbar &&
           !strncmp(rule, devbar, bar - devbar);
}

/*
 * Does a fault rule fail this call?  @backings are what backs the range
 * (for UNMAP, of every mapping it covers).
 */
static int emu_check_faults_in(GPtrArray *faults, int op, uint64_t iova,
                               uint64_t size, GPtrArray *backings)
{
    int i, j;

    for (i = 0; i < faults->len; i++) {
        EmuFault *f = g_ptr_array_index(faults, i);
        uint64_t last = size ? iova + size - 1 : iova;
        bool match = false;

        if (!(f->ops & op)) {
            continue;
        }
        if (f->has_iova && (last < f->iova.start || iova > f->iova.last)) {
            continue;
        }
        for (j = 0; j < backings->len; j++) {
            if (emu_backing_matches(f->backing,
                                    g_ptr_array_index(backings, j))) {
                match = true;
                break;
            }
        }
        if (!match && !(f->backing == NULL && backings->len == 0)) {
            continue;
        }
        f->matched++;
        if (f->matched <= f->skip) {
            continue;
        }
        if (f->has_count && f->failed >= f->count) {
            continue;
        }
        f->failed++;
        return f->err;
    }
    return 0;
}

static int emu_check_faults(VfioEmu *emu, int op, uint64_t iova,
                            uint64_t size, GPtrArray *backings)
{
    int err;

    emu_reload_faults(emu);
    err = emu_check_faults_in(emu->cfg->faults, op, iova, size, backings);
    if (!err) {
        err = emu_check_faults_in(emu->file_faults, op, iova, size,
                                  backings);
    }
    return err;
}

/*
 * Devices: config space and regions
 */

static uint32_t emu_bar_flags(const EmuBarCfg *bar)
{
    if (bar->io) {
        return PCI_BASE_ADDRESS_SPACE_IO;
    }
    return (bar->mem64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
           (bar->prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
}

/*
 * The kernel virtualizes BARs and the ROM BAR: what is read back is what
 * was written masked to the size, plus the type bits, so that sizing works.
 */
static void emu_config_fixup(EmuDevice *dev, uint8_t *config)
{
    EmuDeviceCfg *cfg = dev->cfg;
    uint32_t v;
    int i;

    for (i = 0; i < EMU_NUM_BARS; i++) {
        uint8_t *p = config + PCI_BASE_ADDRESS_0 + 4 * i;
        const EmuBarCfg *bar = &cfg->bar[i];

        v = ldl_le_p(p);
        if (bar->size) {
            v = (v & (uint32_t)~(bar->size - 1)) | emu_bar_flags(bar);
        } else if (i > 0 && cfg->bar[i - 1].mem64) {
            v &= (uint32_t)(~(cfg->bar[i - 1].size - 1) >> 32);
        } else {
            v = 0;
        }
        stl_le_p(p, v);
    }

    v = ldl_le_p(config + PCI_ROM_ADDRESS);
    if (cfg->rom_size) {
        v &= (uint32_t)~(cfg->rom_size - 1) | PCI_ROM_ADDRESS_ENABLE;
    } else {
        v = 0;
    }
    stl_le_p(config + PCI_ROM_ADDRESS, v);
}

static void emu_device_build_config(EmuDevice *dev)
{
    EmuDeviceCfg *cfg = dev->cfg;
    uint8_t *c = dev->init_config;
    uint8_t *w = dev->wmask;
    int i;

    memset(c, 0, EMU_CONFIG_SIZE);
    memset(w, 0, EMU_CONFIG_SIZE);

    stw_le_p(c + PCI_VENDOR_ID, cfg->vendor_id);
    stw_le_p(c + PCI_DEVICE_ID, cfg->device_id);
    c[PCI_REVISION_ID] = cfg->revision;
    c[PCI_CLASS_PROG] = cfg->class_code & 0xff;
    stw_le_p(c + PCI_CLASS_DEVICE, cfg->class_code >> 8);
    c[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
    for (i = 0; i < EMU_NUM_BARS; i++) {
        if (cfg->bar[i].size) {
            stl_le_p(c + PCI_BASE_ADDRESS_0 + 4 * i,
                     emu_bar_flags(&cfg->bar[i]));
            /*
             * vfio_pci_core_enable() calls pci_enable_device(), which
             * turns on decoding of the BARs' resources; vfio_config_init()
             * copies that into the virtual config space.
             */
            c[PCI_COMMAND] |= cfg->bar[i].io ? PCI_COMMAND_IO :
                                               PCI_COMMAND_MEMORY;
        }
    }
    stw_le_p(c + PCI_SUBSYSTEM_VENDOR_ID, cfg->subsys_vendor_id);
    stw_le_p(c + PCI_SUBSYSTEM_ID, cfg->subsys_id);
    c[PCI_INTERRUPT_PIN] = cfg->intx ? 1 : 0;

    if (cfg->msix_entries) {
        uint8_t *cap = c + EMU_MSIX_CAP;

        stw_le_p(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
        c[PCI_CAPABILITY_LIST] = EMU_MSIX_CAP;
        cap[PCI_CAP_LIST_ID] = PCI_CAP_ID_MSIX;
        cap[PCI_CAP_LIST_NEXT] = 0;
        stw_le_p(cap + PCI_MSIX_FLAGS, cfg->msix_entries - 1);
        stl_le_p(cap + PCI_MSIX_TABLE,
                 cfg->msix_table_offset | cfg->msix_table_bar);
        stl_le_p(cap + PCI_MSIX_PBA, cfg->msix_pba_offset | cfg->msix_pba_bar);
        /* enable and function mask */
        w[EMU_MSIX_CAP + PCI_MSIX_FLAGS + 1] = 0xc0;
    }

    /* What the kernel lets a user write (the rest is dropped) */
    w[PCI_COMMAND] = 0xff;
    w[PCI_COMMAND + 1] = 0x07;
    w[PCI_CACHE_LINE_SIZE] = 0xff;
    w[PCI_LATENCY_TIMER] = 0xff;
    memset(w + PCI_BASE_ADDRESS_0, 0xff, 4 * EMU_NUM_BARS);
    memset(w + PCI_ROM_ADDRESS, 0xff, 4);
    w[PCI_INTERRUPT_LINE] = 0xff;
}

static ssize_t emu_raw_pread(int fd, void *buf, size_t count, off_t off)
{
    return syscall(SYS_pread64, fd, buf, count, off);
}

static ssize_t emu_raw_pwrite(int fd, const void *buf, size_t count,
                              off_t off)
{
    return syscall(SYS_pwrite64, fd, buf, count, off);
}

static bool emu_device_reset_config(EmuDevice *dev)
{
    return emu_raw_pwrite(dev->memfd, dev->init_config, EMU_CONFIG_SIZE,
                          VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) ==
           EMU_CONFIG_SIZE;
}

/* Region @index: size and VFIO_REGION_INFO_FLAG_* */
static void emu_region(EmuDevice *dev, uint32_t index, uint64_t *size,
                       uint32_t *flags)
{
    EmuDeviceCfg *cfg = dev->cfg;

    *size = 0;
    *flags = 0;
    if (index < EMU_NUM_BARS) {
        const EmuBarCfg *bar = &cfg->bar[index];

        if (bar->size) {
            *size = bar->size;
            *flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
            if (!bar->io && bar->mmap) {
                *flags |= VFIO_REGION_INFO_FLAG_MMAP;
            }
        }
    } else if (index == EMU_ROM_INDEX) {
        if (cfg->rom_size) {
            *size = cfg->rom_size;
            *flags = VFIO_REGION_INFO_FLAG_READ;
        }
    } else if (index == EMU_CONFIG_INDEX) {
        *size = EMU_CONFIG_SIZE;
        *flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    }
}

/* The host pages of the MSI-X table in its BAR: [*start, *end) */
static void emu_msix_table_pages(VfioEmu *emu, EmuDevice *dev,
                                 uint64_t *start, uint64_t *end)
{
    EmuDeviceCfg *cfg = dev->cfg;

    *start = cfg->msix_table_offset & ~(emu->page_size - 1);
    *end = ROUND_UP((uint64_t)cfg->msix_table_offset +
                    cfg->msix_entries * 16, emu->page_size);
}

/*
 * Capability chains (vfio_info_cap_header), built relative to the start of
 * the chain and shifted by the size of the info struct when copied out.
 */
typedef struct EmuCaps {
    GByteArray *buf;
    size_t last;
} EmuCaps;

static void *emu_caps_add(EmuCaps *caps, size_t size, uint16_t id,
                          uint16_t version)
{
    struct vfio_info_cap_header *hdr;
    size_t off = caps->buf->len;

    /* vfio_info_cap_add(): each capability is padded to 8 bytes */
    size = ROUND_UP(size, 8);
    g_byte_array_set_size(caps->buf, off + size);
    memset(caps->buf->data + off, 0, size);
    hdr = (void *)(caps->buf->data + off);
    hdr->id = id;
    hdr->version = version;
    if (off) {
        ((struct vfio_info_cap_header *)(caps->buf->data +
                                         caps->last))->next = off;
    }
    caps->last = off;
    return hdr;
}

static void emu_caps_shift(EmuCaps *caps, uint32_t shift)
{
    struct vfio_info_cap_header *hdr;
    size_t off = 0;

    if (!caps->buf->len) {
        return;
    }
    for (;;) {
        hdr = (void *)(caps->buf->data + off);
        if (!hdr->next) {
            break;
        }
        off = hdr->next;
        hdr->next += shift;
    }
}

/*
 * Finish an info ioctl the way the kernel does: if the caps do not fit,
 * raise argsz and leave cap_offset 0, else copy them after the struct.
 */
static void emu_caps_copy_out(EmuCaps *caps, void *arg, size_t info_size,
                              uint32_t *argsz, uint32_t *flags,
                              uint32_t caps_flag, uint32_t *cap_offset)
{
    if (!caps->buf->len) {
        return;
    }
    *flags |= caps_flag;
    if (*argsz < info_size + caps->buf->len) {
        *argsz = info_size + caps->buf->len;
        *cap_offset = 0;
    } else {
        emu_caps_shift(caps, info_size);
        memcpy((uint8_t *)arg + info_size, caps->buf->data, caps->buf->len);
        *cap_offset = info_size;
    }
}

static int emu_device_get_info(EmuDevice *dev, void *arg)
{
    struct vfio_device_info info;
    size_t minsz = offsetof(struct vfio_device_info, cap_offset);
    size_t capsz = offsetof(struct vfio_device_info, pad);

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz) {
        return -EINVAL;
    }
    if (info.argsz >= capsz) {
        minsz = capsz;
        info.cap_offset = 0;
    }
    info.flags = VFIO_DEVICE_FLAGS_PCI |
                 (dev->cfg->reset ? VFIO_DEVICE_FLAGS_RESET : 0);
    info.num_regions = EMU_NUM_REGIONS;
    info.num_irqs = VFIO_PCI_NUM_IRQS;
    memcpy(arg, &info, minsz);
    return 0;
}

static int emu_device_get_region_info(VfioEmu *emu, EmuDevice *dev,
                                      void *arg)
{
    struct vfio_region_info info;
    size_t minsz = offsetofend(struct vfio_region_info, offset);
    EmuDeviceCfg *cfg = dev->cfg;
    EmuCaps caps = { .buf = g_byte_array_new() };
    uint64_t size;

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz || info.index >= EMU_NUM_REGIONS) {
        g_byte_array_unref(caps.buf);
        return -EINVAL;
    }
    info.offset = VFIO_EMU_REGION_OFFSET(info.index);
    info.cap_offset = 0;
    emu_region(dev, info.index, &size, &info.flags);
    info.size = size;

    if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) && cfg->msix_entries &&
        info.index == cfg->msix_table_bar) {
        if (cfg->msix_mappable) {
            emu_caps_add(&caps, sizeof(struct vfio_info_cap_header),
                         VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
        } else {
            struct vfio_region_info_cap_sparse_mmap *sparse;
            uint64_t start, end;
            int nr = 0;

            emu_msix_table_pages(emu, dev, &start, &end);
            nr = (start && end < info.size) ? 2 : 1;
            sparse = emu_caps_add(&caps, sizeof(*sparse) +
                                  nr * sizeof(sparse->areas[0]),
                                  VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1);
            sparse->nr_areas = nr;
            nr = 0;
            if (start) {
                sparse->areas[nr].offset = 0;
                sparse->areas[nr].size = start;
                nr++;
            }
            if (end < info.size) {
                sparse->areas[nr].offset = end;
                sparse->areas[nr].size = info.size - end;
            }
        }
    }

    emu_caps_copy_out(&caps, arg, sizeof(info), &info.argsz, &info.flags,
                      VFIO_REGION_INFO_FLAG_CAPS, &info.cap_offset);
    g_byte_array_unref(caps.buf);
    memcpy(arg, &info, minsz);
    return 0;
}

static uint32_t emu_irq_count(EmuDevice *dev, uint32_t index)
{
    switch (index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
        return dev->cfg->intx ? 1 : 0;
    case VFIO_PCI_MSIX_IRQ_INDEX:
        return dev->cfg->msix_entries;
    case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
    default:
        return 0;
    }
}

static int emu_device_get_irq_info(EmuDevice *dev, void *arg)
{
    struct vfio_irq_info info;
    size_t minsz = offsetofend(struct vfio_irq_info, count);

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) {
        return -EINVAL;
    }
    /* The error IRQ is for PCI Express devices only */
    if (info.index == VFIO_PCI_ERR_IRQ_INDEX) {
        return -EINVAL;
    }
    info.flags = VFIO_IRQ_INFO_EVENTFD;
    info.count = emu_irq_count(dev, info.index);
    if (info.index == VFIO_PCI_INTX_IRQ_INDEX) {
        info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    } else if (info.index != VFIO_PCI_MSIX_IRQ_INDEX) {
        info.flags |= VFIO_IRQ_INFO_NORESIZE;
    }
    memcpy(arg, &info, minsz);
    return 0;
}

static void emu_msix_trigger_clear(EmuDevice *dev, uint32_t i)
{
    if (dev->msix_triggers[i] >= 0) {
        syscall(SYS_close, dev->msix_triggers[i]);
        dev->msix_triggers[i] = -1;
    }
}

/*
 * vfio_pci_set_msi_trigger(), vfio_msi_set_block(): eventfds become the
 * vectors' triggers (-1 clears one; count 0 with DATA_NONE disables all),
 * DATA_NONE and DATA_BOOL fire them.  Interrupts of the device itself
 * never fire.
 */
static void emu_msix_set_block(EmuDevice *dev, struct vfio_irq_set *hdr,
                               const uint8_t *data)
{
    uint32_t type = hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint64_t one = 1;
    uint32_t i;

    if (!dev->msix_triggers) {
        dev->msix_triggers = g_new(int, dev->cfg->msix_entries);
        for (i = 0; i < dev->cfg->msix_entries; i++) {
            dev->msix_triggers[i] = -1;
        }
    }
    if (type == VFIO_IRQ_SET_DATA_NONE && !hdr->count) {
        for (i = 0; i < dev->cfg->msix_entries; i++) {
            emu_msix_trigger_clear(dev, i);
        }
        return;
    }
    for (i = hdr->start; i < hdr->start + hdr->count; i++) {
        if (type == VFIO_IRQ_SET_DATA_EVENTFD) {
            int32_t efd = ldl_he_p(data + 4 * (i - hdr->start));

            emu_msix_trigger_clear(dev, i);
            if (efd >= 0) {
                dev->msix_triggers[i] = fcntl(efd, F_DUPFD_CLOEXEC, 0);
            }
        } else if (dev->msix_triggers[i] >= 0 &&
                   (type == VFIO_IRQ_SET_DATA_NONE || data[i - hdr->start])) {
            if (syscall(SYS_write, dev->msix_triggers[i], &one,
                        sizeof(one)) != sizeof(one)) {
                /* a full eventfd counter: the interrupt is pending anyway */
            }
        }
    }
}

static int emu_device_set_irqs(EmuDevice *dev, void *arg)
{
    struct vfio_irq_set hdr;
    size_t minsz = offsetofend(struct vfio_irq_set, count);
    uint32_t max, action;
    size_t size;

    memcpy(&hdr, arg, minsz);
    if (hdr.argsz < minsz || hdr.index >= VFIO_PCI_NUM_IRQS ||
        hdr.count >= UINT32_MAX - hdr.start ||
        hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK |
                      VFIO_IRQ_SET_ACTION_TYPE_MASK)) {
        return -EINVAL;
    }
    max = emu_irq_count(dev, hdr.index);
    if (hdr.start >= max || hdr.start + hdr.count > max) {
        return -EINVAL;
    }
    switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
        size = 0;
        break;
    case VFIO_IRQ_SET_DATA_BOOL:
        size = sizeof(uint8_t);
        break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
        size = sizeof(int32_t);
        break;
    default:
        return -EINVAL;
    }
    if (size && hdr.argsz - minsz < hdr.count * size) {
        return -EINVAL;
    }
    action = hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (hdr.index != VFIO_PCI_INTX_IRQ_INDEX &&
        action != VFIO_IRQ_SET_ACTION_TRIGGER) {
        return -ENOTTY;
    }
    if (hdr.index == VFIO_PCI_MSIX_IRQ_INDEX) {
        emu_msix_set_block(dev, &hdr, (uint8_t *)arg + minsz);
    }
    return 0;
}

static int emu_device_ioctl(VfioEmu *emu, EmuDevice *dev,
                            unsigned long request, void *arg)
{
    switch (request) {
    case VFIO_DEVICE_GET_INFO:
        return emu_device_get_info(dev, arg);
    case VFIO_DEVICE_GET_REGION_INFO:
        return emu_device_get_region_info(emu, dev, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
        return emu_device_get_irq_info(dev, arg);
    case VFIO_DEVICE_SET_IRQS:
        return emu_device_set_irqs(dev, arg);
    case VFIO_DEVICE_RESET:
        /* The virtual config space survives a function reset */
        return dev->cfg->reset ? 0 : -EINVAL;
    case VFIO_DEVICE_BIND_IOMMUFD:
        /* only on cdev fds */
        return -EINVAL;
    default:
        /* VFIO_DEVICE_FEATURE (no migration), hot reset, ... */
        return -ENOTTY;
    }
}

/*
 * Containers: the type1 IOMMU
 */

static uint64_t emu_min_pgsize(VfioEmu *emu)
{
    uint64_t bitmap = emu->cfg->pgsizes;

    return bitmap ? bitmap & -bitmap : 4096;
}

/* Index of the first mapping that ends at or after @iova */
static guint emu_dma_lower_bound(EmuContainer *c, uint64_t iova)
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
static EmuDma *emu_dma_find(EmuContainer *c, uint64_t iova)
{
    guint i = emu_dma_lower_bound(c, iova);
    EmuDma *d;

    if (i == c->dmas->len) {
        return NULL;
    }
    d = &g_array_index(c->dmas, EmuDma, i);
    return d->iova <= iova ? d : NULL;
}

static bool emu_dma_overlaps(EmuContainer *c, uint64_t iova, uint64_t last)
{
    guint i = emu_dma_lower_bound(c, iova);

    return i < c->dmas->len && g_array_index(c->dmas, EmuDma, i).iova <= last;
}

static bool emu_iova_valid(VfioEmu *emu, uint64_t iova, uint64_t last)
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
}

static EmuContainer *emu_container_new(VfioEmu *emu)
{
    EmuContainer *c = g_new0(EmuContainer, 1);

    c->id = ++emu->next_container_id;
    c->fd_open = true;
    c->dmas = g_array_new(false, false, sizeof(EmuDma));
    g_array_set_clear_func(c->dmas, emu_dma_clear);
    g_ptr_array_add(emu->containers, c);
    return c;
}

static void emu_container_maybe_free(VfioEmu *emu, EmuContainer *c)
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

static void emu_group_detach(VfioEmu *emu, EmuGroup *g)
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
    info.iova_pgsizes = cfg->pgsizes;

    /* vfio_iommu_migration_build_caps(), then the DMA-avail capability */
    mig = emu_caps_add(&caps, sizeof(*mig),
                       VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
    mig->flags = 0;
    mig->pgsize_bitmap = emu_min_pgsize(emu);
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
    return 0;
}

/*
 * Would pin_user_pages() (or, for a BAR mmap, follow_fault_pfn()) accept
 * [vaddr, vaddr + size)?  Every page must be in a VMA that allows the
 * access (VM_WRITE for a writable mapping, else VM_READ); a BAR mmap must
 * have its device's memory decoding on, as vfio_pci_mmap_huge_fault()
 * gives SIGBUS otherwise.
 */
static bool emu_vaddr_pin_ok(VfioEmu *emu, uint64_t vaddr, uint64_t size,
                             bool write)
{
    g_autofree char *maps = NULL;
    g_auto(GStrv) lines = NULL;
    uint64_t pos = vaddr, end = vaddr + size;
    int i;

    if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL)) {
        return emu_vaddr_mapped(vaddr, size);
    }
    lines = g_strsplit(maps, "\n", -1);
    for (i = 0; lines[i] && pos < end; i++) {
        unsigned long long lo, hi;
        char perms[5];

        if (sscanf(lines[i], "%llx-%llx %4s", &lo, &hi, perms) != 3 ||
            hi <= pos) {
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
        uint16_t cmd = 0;

        if (vaddr >= r->start + r->size || r->start >= end) {
            continue;
        }
        if (emu_raw_pread(r->dev->memfd, &cmd, sizeof(cmd),
                          VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX) +
                          PCI_COMMAND) != sizeof(cmd) ||
            !(le16_to_cpu(cmd) & PCI_COMMAND_MEMORY)) {
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
    uint64_t pgsize = emu_min_pgsize(emu);
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
    };
    g_array_insert_val(c->dmas, emu_dma_lower_bound(c, iova), dma);
    c->dma_avail--;
    return 0;
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
    uint64_t pgsize = emu_min_pgsize(emu);
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
        injected = emu_check_faults(emu, EMU_FAULT_UNMAP, unmap.iova,
                                    unmap.size, backings);
        ret = injected ? -injected :
              emu_do_unmap(emu, c, &unmap, &bitmap, &unmapped);
    }

    emu_log(emu, "op=UNMAP container=%d iova=0x%" PRIx64 " size=0x%" PRIx64
            " flags=0x%x ret=%d unmapped=0x%" PRIx64 "%s",
            c->id, (uint64_t)unmap.iova, (uint64_t)unmap.size, unmap.flags,
            ret, unmapped, injected ? " injected=1" : "");
    if (ret) {
        return ret;
    }
    if (unmapped) {
        emu_write_mappings(emu);
    }
    /* Report how much was unmapped (only on success, like the kernel) */
    unmap.size = unmapped;
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
    uint64_t pgsize = emu_min_pgsize(emu), b;
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

static int emu_container_ioctl(VfioEmu *emu, EmuContainer *c,
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

/*
 * Groups
 */

/* A group set to an iommufd context: in the iommufd section below */
static void emu_compat_group_set(VfioEmu *emu, EmuGroup *g,
                                 EmuIommufd *ictx);
static void emu_compat_group_unset(VfioEmu *emu, EmuGroup *g);
static int emu_compat_device_open(VfioEmu *emu, EmuGroup *g, EmuDevice *dev,
                                  EmuCdev **out);
static void emu_compat_device_close(VfioEmu *emu, EmuCdev *cd);

/* The group leaves its container or iommufd context */
static void emu_group_unset(VfioEmu *emu, EmuGroup *g)
{
    if (g->container) {
        emu_group_detach(emu, g);
    } else if (g->ictx) {
        emu_compat_group_unset(emu, g);
    }
}

static EmuFd *emu_fd_lookup(VfioEmu *emu, int fd)
{
    return g_hash_table_lookup(emu->fds, GINT_TO_POINTER(fd));
}

static int emu_new_fd(VfioEmu *emu, const char *name, EmuFdKind kind,
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

static int emu_group_ioctl(VfioEmu *emu, EmuGroup *g, unsigned long request,
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

/*
 * iommufd: /dev/iommu contexts, their objects and the device cdevs
 *
 * Each ioctl makes the checks of the kernel's iommufd (Linux 6.12 and 7.3)
 * in its order; the comments name the kernel function a group of checks stands
 * for.  An IOAS keeps its mappings in an EmuContainer, so that the state
 * files show them like a type1 container's.
 */

typedef enum EmuObjType {
    EMU_OBJ_IOAS,
    EMU_OBJ_HWPT,
    EMU_OBJ_DEVICE,
} EmuObjType;

typedef struct EmuObj EmuObj;

/* An iommufd object; its ID is its key in the context's table */
struct EmuObj {
    EmuObjType type;
    uint32_t id;
    int refs;                   /* HWPTs on an IOAS, devices on a HWPT */
    EmuContainer *ioas;         /* IOAS, HWPT: the IOAS's mapping table */
    EmuObj *parent;             /* HWPT: its IOAS */
    bool auto_domain;           /* HWPT made by attaching to an IOAS */
    bool no_large_pages;        /* IOAS: VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU) */
    EmuDevice *dev;             /* DEVICE */
};

/* An open of /dev/iommu */
typedef struct EmuIommufd {
    int id;
    bool fd_open;
    int binds;                  /* bound devices hold the context */
    int groups;                 /* so do groups set to it (VFIO compat) */
    GHashTable *objs;           /* id -> EmuObj */
    EmuObj *vfio_ioas;          /* the IOAS of the VFIO compat ioctls */
} EmuIommufd;

/* An open of /dev/vfio/devices/vfioN */
struct EmuCdev {
    EmuDevice *dev;
    EmuIommufd *ictx;           /* NULL until VFIO_DEVICE_BIND_IOMMUFD */
    EmuObj *idev;
    EmuObj *hwpt;               /* the attached paging domain, or NULL */
};

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

        if (!emu_vaddr_pinnable(emu, d->vaddr, d->size,
                                d->flags & VFIO_DMA_MAP_FLAG_WRITE)) {
            return -EFAULT;
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
static void emu_iommufd_maybe_release(VfioEmu *emu, EmuIommufd *ictx)
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

    if (cmd->flags || cmd->__reserved) {
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

static int emu_ioas_do_map(VfioEmu *emu, EmuIommufd *ictx, EmuObj *ioas,
                           struct iommu_ioas_map *cmd, const char *backing)
{
    uint64_t length = cmd->length, uptr = cmd->user_va, iova = cmd->iova;
    uint64_t align = emu_ioas_alignment(emu, ictx, ioas);
    EmuDma dma;
    int ret;

    /* iopt_alloc_user_pages() */
    if (uptr + length < uptr) {
        return -EOVERFLOW;
    }
    if (!length || length > SIZE_MAX - emu->page_size) {
        return -EINVAL;
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
    /* iopt_fill_domains_pages(): pinning, only when there is a domain */
    if (emu_ioas_has_domain(ictx, ioas, false) &&
        !emu_vaddr_pinnable(emu, uptr, length,
                            cmd->flags & IOMMU_IOAS_MAP_WRITEABLE)) {
        return -EFAULT;
    }

    dma = (EmuDma) {
        .iova = iova,
        .size = length,
        .vaddr = uptr,
        .flags = (cmd->flags & IOMMU_IOAS_MAP_READABLE ?
                  VFIO_DMA_MAP_FLAG_READ : 0) |
                 (cmd->flags & IOMMU_IOAS_MAP_WRITEABLE ?
                  VFIO_DMA_MAP_FLAG_WRITE : 0),
        .backing = g_strdup(backing),
    };
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
              emu_ioas_do_map(emu, ictx, ioas, cmd, backing);
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
    tail.backing = vfio_emu_describe_vaddr(emu, tail.vaddr);
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
        injected = emu_check_faults(emu, EMU_FAULT_UNMAP, cmd->iova,
                                    cmd->length, backings);
        if (injected) {
            ret = -injected;
        } else {
            ret = emu_ioas_do_unmap(c, cmd->iova, last, &unmapped);
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
            injected ? " injected=1" : "");
    if (unmapped) {
        emu_write_mappings(emu);
    }
    if (ret) {
        return ret;
    }
    cmd->length = unmapped;
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
static void emu_compat_group_set(VfioEmu *emu, EmuGroup *g,
                                 EmuIommufd *ictx)
{
    emu_compat_ioas_create(emu, ictx);
    g->ictx = ictx;
    ictx->groups++;
    emu_log(emu, "op=GROUP_SET_CONTAINER group=%d ictx=%d container=%d",
            g->id, ictx->id, ictx->vfio_ioas->ioas->id);
}

static void emu_compat_group_unset(VfioEmu *emu, EmuGroup *g)
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
static int emu_compat_device_open(VfioEmu *emu, EmuGroup *g, EmuDevice *dev,
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

static void emu_compat_device_close(VfioEmu *emu, EmuCdev *cd)
{
    EmuIommufd *ictx = cd->ictx;

    emu_cdev_detach(emu, cd);
    emu_obj_remove(ictx, cd->idev);
    ictx->binds--;
    g_free(cd);
    emu_iommufd_maybe_release(emu, ictx);
}

/* iommufd_fops_ioctl(): the size protocol common to all commands */
static int emu_iommufd_ioctl(VfioEmu *emu, EmuIommufd *ictx,
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

static int emu_iommufd_open(VfioEmu *emu, int flags)
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
static EmuDevice *emu_cdev_device(VfioEmu *emu, const char *name)
{
    uint64_t n;

    if (!g_str_has_prefix(name, "vfio") || !g_ascii_isdigit(name[4]) ||
        (name[4] == '0' && name[5]) || !emu_parse_u64(name + 4, &n) ||
        n >= emu->devices->len) {
        return NULL;
    }
    return g_ptr_array_index(emu->devices, n);
}

static int emu_cdev_open(VfioEmu *emu, const char *name, int flags)
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

static int emu_cdev_ioctl(VfioEmu *emu, EmuCdev *cd, unsigned long request,
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
static void emu_cdev_release(VfioEmu *emu, EmuCdev *cd)
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
static EmuDevice *emu_fd_device(EmuFd *f)
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

static bool emu_group_cdev_bound(VfioEmu *emu, EmuGroup *g)
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
    emu->page_size = qemu_real_host_page_size();
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
        if (dev->msix_triggers) {
            int j;

            for (j = 0; j < dev->cfg->msix_entries; j++) {
                emu_msix_trigger_clear(dev, j);
            }
            g_free(dev->msix_triggers);
        }
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
    pos = offset & EMU_REGION_MASK;
    if (emu_raw_pread(fd, config, sizeof(config),
                      VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) !=
        sizeof(config)) {
        return emu_set_errno(-EIO);
    }
    for (i = 0; i < n; i++) {
        uint8_t w = dev->wmask[pos + i];

        config[pos + i] = (config[pos + i] & ~w) | (src[i] & w);
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
