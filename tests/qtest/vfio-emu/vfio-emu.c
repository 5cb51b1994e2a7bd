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
#include <linux/vfio.h>

#include "qemu/bswap.h"
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

typedef struct EmuConfig {
    bool has_pgsizes;
    uint64_t pgsizes;
    bool has_ranges;
    GArray *ranges;             /* EmuRange */
    uint64_t dma_entry_limit;
    bool dma_avail_cap;
    bool migration_cap;
    GPtrArray *devices;         /* EmuDeviceCfg */
    GPtrArray *faults;          /* EmuFault */
} EmuConfig;

typedef struct EmuDma {
    uint64_t iova;
    uint64_t size;
    uint64_t vaddr;
    uint32_t flags;
    char *backing;
} EmuDma;

typedef struct EmuContainer {
    int id;
    bool fd_open;
    int ngroups;
    int iommu_type;             /* 0: not set */
    GArray *dmas;               /* EmuDma, sorted by iova */
    uint64_t dma_avail;
} EmuContainer;

typedef struct EmuGroup {
    int id;
    bool fd_open;
    int device_fds;
    EmuContainer *container;
} EmuGroup;

typedef struct EmuDevice {
    EmuDeviceCfg *cfg;
    EmuGroup *group;
    int memfd;
    int fds;
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
} EmuFdKind;

typedef struct EmuFd {
    EmuFdKind kind;
    void *obj;
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

    cfg->has_pgsizes = true;
    cfg->pgsizes = 0x40201000;  /* 4K | 2M | 1G */
    cfg->has_ranges = true;
    cfg->ranges = g_array_new(false, false, sizeof(EmuRange));
    r = (EmuRange) { 0, 0xfedfffffULL };
    g_array_append_val(cfg->ranges, r);
    r = (EmuRange) { 0xfef00000ULL, (1ULL << 48) - 1 };
    g_array_append_val(cfg->ranges, r);
    cfg->dma_entry_limit = 65535;
    cfg->dma_avail_cap = true;
    cfg->migration_cap = true;
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

static bool emu_parse_container(GKeyFile *kf, const char *group,
                                EmuConfig *cfg, char **errmsg)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    int i;

    for (i = 0; keys && keys[i]; i++) {
        const char *key = keys[i];
        g_autofree char *raw = g_key_file_get_value(kf, group, key, NULL);
        const char *val = g_strstrip(raw);
        uint64_t v;

        if (!strcmp(key, "iova_pgsizes")) {
            if (!strcmp(val, "none")) {
                cfg->has_pgsizes = false;
                cfg->pgsizes = 0;
            } else if (!emu_parse_u64(val, &v)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a number or \"none\"", val);
            } else if (v & 0xfff) {
                return emu_key_error(errmsg, group, key,
                                     "page sizes below 4 KiB (0x%" PRIx64
                                     ") are not supported", v);
            } else {
                cfg->has_pgsizes = true;
                cfg->pgsizes = v;
            }
        } else if (!strcmp(key, "iova_ranges")) {
            g_array_set_size(cfg->ranges, 0);
            if (!strcmp(val, "none")) {
                cfg->has_ranges = false;
            } else {
                g_auto(GStrv) items = g_strsplit(val, ",", -1);
                int j;

                cfg->has_ranges = true;
                for (j = 0; items[j]; j++) {
                    EmuRange r;

                    if (!emu_parse_range(g_strstrip(items[j]), &r)) {
                        return emu_key_error(errmsg, group, key,
                                             "'%s' is not START-END",
                                             items[j]);
                    }
                    if (cfg->ranges->len &&
                        r.start <= g_array_index(cfg->ranges, EmuRange,
                                                 cfg->ranges->len - 1).last) {
                        return emu_key_error(errmsg, group, key,
                                             "ranges must be sorted and "
                                             "disjoint");
                    }
                    g_array_append_val(cfg->ranges, r);
                }
                if (!cfg->ranges->len) {
                    return emu_key_error(errmsg, group, key, "no range");
                }
            }
        } else if (!strcmp(key, "dma_entry_limit")) {
            if (!emu_parse_u64(val, &v) || v > UINT32_MAX) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a 32-bit number", val);
            }
            cfg->dma_entry_limit = v;
        } else if (!strcmp(key, "dma_avail_cap")) {
            if (!emu_parse_bool(val, &cfg->dma_avail_cap)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a boolean", val);
            }
        } else if (!strcmp(key, "migration_cap")) {
            if (!emu_parse_bool(val, &cfg->migration_cap)) {
                return emu_key_error(errmsg, group, key,
                                     "'%s' is not a boolean", val);
            }
        } else {
            return emu_key_error(errmsg, group, key, "unknown key");
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
    size_t off = ROUND_UP(caps->buf->len, 8);

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
    /* Interrupts never fire; nothing to record. */
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
    uint64_t bitmap = emu->cfg->has_pgsizes ? emu->cfg->pgsizes : 0;

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
    struct vfio_iommu_type1_info info;
    size_t minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
    size_t capsz = offsetofend(struct vfio_iommu_type1_info, cap_offset);
    EmuConfig *cfg = emu->cfg;
    EmuCaps caps = { .buf = g_byte_array_new() };

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz) {
        g_byte_array_unref(caps.buf);
        return -EINVAL;
    }
    if (info.argsz >= capsz) {
        minsz = capsz;
        info.cap_offset = 0;
    }
    info.flags = cfg->has_pgsizes ? VFIO_IOMMU_INFO_PGSIZES : 0;
    info.iova_pgsizes = cfg->has_pgsizes ? cfg->pgsizes : 0;

    if (cfg->migration_cap) {
        struct vfio_iommu_type1_info_cap_migration *mig;

        mig = emu_caps_add(&caps, sizeof(*mig),
                           VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
        mig->flags = 0;
        mig->pgsize_bitmap = emu_min_pgsize(emu);
        mig->max_dirty_bitmap_size = ROUND_UP((uint64_t)INT_MAX, 64) / 8;
    }
    if (cfg->dma_avail_cap) {
        struct vfio_iommu_type1_info_dma_avail *avail;

        avail = emu_caps_add(&caps, sizeof(*avail),
                             VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1);
        avail->avail = c->dma_avail;
    }
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

static int emu_do_map(VfioEmu *emu, EmuContainer *c,
                      struct vfio_iommu_type1_dma_map *map,
                      const char *backing)
{
    uint64_t iova = map->iova, vaddr = map->vaddr, size = map->size;
    uint64_t pgsize = emu_min_pgsize(emu);
    bool set_vaddr = map->flags & VFIO_DMA_MAP_FLAG_VADDR;
    bool prot = map->flags &
                (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    EmuDma dma;

    /* The same checks, in the same order, as vfio_dma_do_map() */
    if ((prot && set_vaddr) || (!prot && !set_vaddr)) {
        return -EINVAL;
    }
    if (!size || (size | iova | vaddr) & (pgsize - 1)) {
        return -EINVAL;
    }
    if (iova + size - 1 < iova || vaddr + size - 1 < vaddr) {
        return -EINVAL;
    }
    if (set_vaddr) {
        /* VFIO_UPDATE_VADDR is not emulated (and reported absent) */
        return emu_dma_overlaps(c, iova, iova + size - 1) ? -EINVAL : -ENOENT;
    }
    if (emu_dma_overlaps(c, iova, iova + size - 1)) {
        return -EEXIST;
    }
    if (!c->dma_avail) {
        return -ENOSPC;
    }
    if (!emu_iova_valid(emu, iova, iova + size - 1)) {
        return -EINVAL;
    }
    /* Pinning fails for a range that is not (all) mapped */
    if (!emu_vaddr_mapped(vaddr, size)) {
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
                        uint64_t *unmapped)
{
    uint64_t pgsize = emu_min_pgsize(emu);
    uint64_t iova = unmap->iova, size = unmap->size, end;
    bool unmap_all = unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL;
    bool v2 = c->iommu_type == VFIO_TYPE1v2_IOMMU;
    EmuDma *d;
    guint i;

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
    } else if (!size || size & (pgsize - 1) || iova + size - 1 < iova) {
        return -EINVAL;
    }
    if (unmap->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
        /* dirty tracking is never started here */
        return -EINVAL;
    }
    if (unmap->flags & VFIO_DMA_UNMAP_FLAG_VADDR) {
        /* VFIO_UPDATE_VADDR is not emulated (and reported absent) */
        return -EINVAL;
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

    i = emu_dma_lower_bound(c, iova);
    while (i < c->dmas->len) {
        d = &g_array_index(c->dmas, EmuDma, i);
        if (d->iova > iova + size - 1) {
            break;
        }
        if (!v2 && iova > d->iova) {
            break;
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
    uint64_t unmapped = 0;
    int ret, injected = 0;

    memcpy(&unmap, arg, minsz);
    if (unmap.argsz < minsz || unmap.flags & ~mask ||
        ((unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) &&
         (unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL |
                         VFIO_DMA_UNMAP_FLAG_VADDR)))) {
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
        ret = injected ? -injected : emu_do_unmap(emu, c, &unmap, &unmapped);
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
        case VFIO_DMA_CC_IOMMU:
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
        return c->iommu_type == VFIO_TYPE1v2_IOMMU ? -EINVAL : -EACCES;
    default:
        return -ENOTTY;
    }
}

/*
 * Groups
 */

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
    EmuFd *f;
    int i, fd;

    if (!g->container || !g->container->iommu_type) {
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
    f = g_new0(EmuFd, 1);
    f->kind = EMU_FD_DEVICE;
    f->obj = dev;
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
                       (g->container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
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
        if (f->kind != EMU_FD_CONTAINER || g->container) {
            return -EINVAL;
        }
        g->container = f->obj;
        g->container->ngroups++;
        emu_log(emu, "op=GROUP_SET_CONTAINER group=%d container=%d", g->id,
                g->container->id);
        return 0;
    }
    case VFIO_GROUP_UNSET_CONTAINER:
        if (!g->container) {
            return -EINVAL;
        }
        if (g->device_fds) {
            return -EBUSY;
        }
        emu_group_detach(emu, g);
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
 * Public entry points
 */

bool vfio_emu_is_vfio_path(const char *path)
{
    return path && g_str_has_prefix(path, "/dev/vfio/");
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
        syscall(SYS_close, GPOINTER_TO_INT(key));
    }
    g_hash_table_unref(emu->fds);
    for (i = 0; i < emu->devices->len; i++) {
        EmuDevice *dev = g_ptr_array_index(emu->devices, i);

        if (dev->memfd >= 0) {
            syscall(SYS_close, dev->memfd);
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
    if (g->fd_open) {
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
    }
    g_assert_not_reached();
}

int vfio_emu_close(VfioEmu *emu, int fd)
{
    EmuFd *f = emu_fd_lookup(emu, fd);
    EmuFdKind kind;
    void *obj;

    if (!f) {
        return emu_set_errno(-EBADF);
    }
    kind = f->kind;
    obj = f->obj;
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
        if (!g->device_fds && g->container) {
            emu_group_detach(emu, g);
        }
        break;
    }
    case EMU_FD_DEVICE: {
        EmuDevice *dev = obj;
        EmuGroup *g = dev->group;

        dev->fds--;
        g->device_fds--;
        emu_log(emu, "op=DEVICE_CLOSE device=%s group=%d", dev->cfg->name,
                g->id);
        if (!g->device_fds && !g->fd_open && g->container) {
            emu_group_detach(emu, g);
        }
        break;
    }
    }
    return 0;
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
    if (f->kind != EMU_FD_DEVICE) {
        return emu_set_errno(-EINVAL);
    }
    n = emu_device_access(f->obj, count, offset, false, &index);
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
    if (f->kind != EMU_FD_DEVICE) {
        return emu_set_errno(-EINVAL);
    }
    dev = f->obj;
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

    if (!f || f->kind != EMU_FD_DEVICE) {
        errno = f ? ENODEV : EBADF;
        return MAP_FAILED;
    }
    dev = f->obj;
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
    if (dev->cfg->msix_entries && !dev->cfg->msix_mappable &&
        index == dev->cfg->msix_table_bar) {
        uint64_t start, end;

        emu_msix_table_pages(emu, dev, &start, &end);
        if (pos < end && pos + length > start) {
            errno = EINVAL;
            return MAP_FAILED;
        }
    }

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
