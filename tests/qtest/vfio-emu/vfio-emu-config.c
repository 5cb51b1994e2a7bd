/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: the configuration file and the runtime faults file
 *
 * Copyright (c) 2026 The vfio-series authors
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
 * Configuration parsing
 */

void emu_fault_free(gpointer p)
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

void emu_config_free(EmuConfig *cfg)
{
    if (!cfg) {
        return;
    }
    g_array_unref(cfg->ranges);
    g_ptr_array_unref(cfg->devices);
    g_ptr_array_unref(cfg->faults);
    g_free(cfg);
}

EmuConfig *emu_config_new(void)
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

bool emu_parse_u64(const char *s, uint64_t *v)
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

/* A value that is one of a few names */
typedef struct EmuName {
    const char *name;
    int value;
} EmuName;

static bool emu_parse_name(const char *s, const EmuName *names, size_t n,
                           int *v)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!strcmp(s, names[i].name)) {
            *v = names[i].value;
            return true;
        }
    }
    return false;
}

static const EmuName emu_errnos[] = {
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

    if (emu_parse_name(s, emu_errnos, ARRAY_SIZE(emu_errnos), err)) {
        return true;
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

/*
 * The keys of the configuration: each group ([container], [device NAME],
 * [fault NAME]) has a table of its keys, and each key a function that
 * parses its value into the group's struct, or says why not in *@why.
 */
typedef struct EmuKey EmuKey;
typedef bool (*EmuKeyFn)(const char *val, void *obj, const EmuKey *key,
                         char **why);

struct EmuKey {
    const char *name;
    EmuKeyFn parse;
    size_t offset;              /* of the key's field in the group's struct */
    uint64_t max;               /* emu_key_u32(): the largest value */
};

#define EMU_FIELD(obj, key, type) \
    ((type *)((char *)(obj) + (key)->offset))

/* Apply the keys of @group in @kf to @obj */
static bool emu_parse_keys(GKeyFile *kf, const char *group,
                           const EmuKey *table, size_t n, void *obj,
                           char **errmsg)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    size_t i, k;

    for (i = 0; keys && keys[i]; i++) {
        const char *key = keys[i];
        g_autofree char *raw = g_key_file_get_value(kf, group, key, NULL);
        g_autofree char *why = NULL;

        for (k = 0; k < n; k++) {
            if (!strcmp(key, table[k].name)) {
                break;
            }
        }
        if (k == n) {
            return emu_key_error(errmsg, group, key, "unknown key");
        }
        if (!table[k].parse(g_strstrip(raw), obj, &table[k], &why)) {
            return emu_key_error(errmsg, group, key, "%s", why);
        }
    }
    return true;
}

/* Keys of any group */

static bool emu_key_u32(const char *val, void *obj, const EmuKey *key,
                        char **why)
{
    uint64_t v;

    if (!emu_parse_u64(val, &v) || v > key->max) {
        *why = g_strdup_printf("'%s' is not a number up to 0x%" PRIx64,
                               val, key->max);
        return false;
    }
    *EMU_FIELD(obj, key, uint32_t) = v;
    return true;
}

static bool emu_key_bool(const char *val, void *obj, const EmuKey *key,
                         char **why)
{
    if (!emu_parse_bool(val, EMU_FIELD(obj, key, bool))) {
        *why = g_strdup_printf("'%s' is not a boolean", val);
        return false;
    }
    return true;
}

/* [container] */

static bool emu_key_pgsizes(const char *val, void *obj, const EmuKey *key,
                            char **why)
{
    EmuConfig *cfg = obj;
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

static bool emu_key_ranges(const char *val, void *obj, const EmuKey *key,
                           char **why)
{
    EmuConfig *cfg = obj;
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

static bool emu_key_dma_entry_limit(const char *val, void *obj,
                                    const EmuKey *key, char **why)
{
    EmuConfig *cfg = obj;
    uint64_t v;

    if (!emu_parse_u64(val, &v) || v > UINT32_MAX) {
        *why = g_strdup_printf("'%s' is not a 32-bit number", val);
        return false;
    }
    cfg->dma_entry_limit = v;
    return true;
}

static bool emu_key_kernel(const char *val, void *obj, const EmuKey *key,
                           char **why)
{
    static const EmuName kernels[] = {
        { "6.12", EMU_KERNEL_6_12 },
        { "7.3", EMU_KERNEL_7_3 },
    };
    EmuConfig *cfg = obj;
    int v;

    if (!emu_parse_name(val, kernels, ARRAY_SIZE(kernels), &v)) {
        *why = g_strdup_printf("'%s' is not 6.12 or 7.3", val);
        return false;
    }
    cfg->kernel = v;
    return true;
}

static bool emu_key_host_page(const char *val, void *obj, const EmuKey *key,
                              char **why)
{
    EmuConfig *cfg = obj;
    uint64_t real = getauxval(AT_PAGESZ), v;

    if (!emu_parse_u64(val, &v) || v & (v - 1) || v < real || v > 0x10000) {
        *why = g_strdup_printf("'%s' is not a power of two from 0x%" PRIx64
                               " (the real page size) to 0x10000", val, real);
        return false;
    }
    cfg->host_page = v;
    return true;
}

static bool emu_key_malformed_info(const char *val, void *obj,
                                   const EmuKey *key, char **why)
{
    static const EmuName ways[] = {
        { "none", EMU_MALFORMED_NONE },
        { "cap-loop", EMU_MALFORMED_CAP_LOOP },
        { "cap-past-argsz", EMU_MALFORMED_CAP_PAST_ARGSZ },
        { "nr-iovas", EMU_MALFORMED_NR_IOVAS },
        { "range-wrap", EMU_MALFORMED_RANGE_WRAP },
        { "no-ranges", EMU_MALFORMED_NO_RANGES },
        { "ranges-unsorted", EMU_MALFORMED_RANGES_UNSORTED },
        { "ranges-overlap", EMU_MALFORMED_RANGES_OVERLAP },
    };
    EmuConfig *cfg = obj;
    int v;

    if (!emu_parse_name(val, ways, ARRAY_SIZE(ways), &v)) {
        *why = g_strdup_printf("'%s' is not none, cap-loop, cap-past-argsz,"
                               " nr-iovas, range-wrap or no-ranges", val);
        return false;
    }
    cfg->malformed_info = v;
    return true;
}

static const EmuKey emu_container_keys[] = {
    { "iova_pgsizes", emu_key_pgsizes },
    { "iova_ranges", emu_key_ranges },
    { "dma_entry_limit", emu_key_dma_entry_limit },
    { "kernel", emu_key_kernel },
    { "host_page", emu_key_host_page },
    { "malformed_info", emu_key_malformed_info },
    { "check_mappings", emu_key_bool, offsetof(EmuConfig, check_mappings) },
};

/* [device NAME] */

static bool emu_key_group(const char *val, void *obj, const EmuKey *key,
                          char **why)
{
    EmuDeviceCfg *d = obj;
    uint64_t v;

    if (!emu_parse_u64(val, &v) || v > INT_MAX) {
        *why = g_strdup_printf("'%s' is not a group number", val);
        return false;
    }
    d->group = v;
    d->has_group = true;
    return true;
}

/* barN: "SIZE [mem32|mem64|io] [prefetch] [nommap]" */
static bool emu_key_bar(const char *val, void *obj, const EmuKey *key,
                        char **why)
{
    EmuBarCfg *bar = EMU_FIELD(obj, key, EmuBarCfg);
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
                *why = g_strdup_printf("'%s' is not a size", t);
                return false;
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
            *why = g_strdup_printf("unknown token '%s'", t);
            return false;
        }
    }
    if (!have_size) {
        *why = g_strdup("missing size");
        return false;
    }
    if (!bar->size) {
        *bar = (EmuBarCfg) { 0 };
        return true;
    }
    if (bar->size & (bar->size - 1)) {
        *why = g_strdup_printf("size 0x%" PRIx64 " is not a power of two",
                               bar->size);
        return false;
    }
    if (bar->io && (bar->prefetch || bar->size < 4 || bar->size > 256)) {
        *why = g_strdup("an I/O BAR is 4 to 256 bytes, not prefetchable");
        return false;
    }
    if (!bar->io && bar->size < 16) {
        *why = g_strdup("a memory BAR is at least 16 bytes");
        return false;
    }
    if (bar->size >= EMU_MAX_BAR_SIZE ||
        (!bar->io && !bar->mem64 && bar->size > (1ULL << 31))) {
        *why = g_strdup_printf("size 0x%" PRIx64 " is too large", bar->size);
        return false;
    }
    return true;
}

static bool emu_key_rom(const char *val, void *obj, const EmuKey *key,
                        char **why)
{
    EmuDeviceCfg *d = obj;
    uint64_t v;

    if (!emu_parse_u64(val, &v)) {
        *why = g_strdup_printf("'%s' is not a size", val);
        return false;
    }
    if (v && ((v & (v - 1)) || v < 2048 || v > (1ULL << 31))) {
        *why = g_strdup_printf("size 0x%" PRIx64 " is not a power of two "
                               "from 2 KiB to 2 GiB", v);
        return false;
    }
    d->rom_size = v;
    return true;
}

static bool emu_key_msix_table(const char *val, void *obj, const EmuKey *key,
                               char **why)
{
    EmuDeviceCfg *d = obj;

    if (!emu_parse_bar_offset(val, &d->msix_table_bar,
                              &d->msix_table_offset)) {
        *why = g_strdup_printf("'%s' is not BAR:OFFSET", val);
        return false;
    }
    return true;
}

static bool emu_key_msix_pba(const char *val, void *obj, const EmuKey *key,
                             char **why)
{
    EmuDeviceCfg *d = obj;

    if (!emu_parse_bar_offset(val, &d->msix_pba_bar, &d->msix_pba_offset)) {
        *why = g_strdup_printf("'%s' is not BAR:OFFSET", val);
        return false;
    }
    d->has_msix_pba = true;
    return true;
}

#define EMU_DEVICE_KEY(name, fn, field, max) \
    { name, fn, offsetof(EmuDeviceCfg, field), max }

static const EmuKey emu_device_keys[] = {
    { "group", emu_key_group },
    EMU_DEVICE_KEY("vendor_id", emu_key_u32, vendor_id, 0xffff),
    EMU_DEVICE_KEY("device_id", emu_key_u32, device_id, 0xffff),
    EMU_DEVICE_KEY("subsystem_vendor_id", emu_key_u32, subsys_vendor_id,
                   0xffff),
    EMU_DEVICE_KEY("subsystem_id", emu_key_u32, subsys_id, 0xffff),
    EMU_DEVICE_KEY("class", emu_key_u32, class_code, 0xffffff),
    EMU_DEVICE_KEY("revision", emu_key_u32, revision, 0xff),
    EMU_DEVICE_KEY("bar0", emu_key_bar, bar[0], 0),
    EMU_DEVICE_KEY("bar1", emu_key_bar, bar[1], 0),
    EMU_DEVICE_KEY("bar2", emu_key_bar, bar[2], 0),
    EMU_DEVICE_KEY("bar3", emu_key_bar, bar[3], 0),
    EMU_DEVICE_KEY("bar4", emu_key_bar, bar[4], 0),
    EMU_DEVICE_KEY("bar5", emu_key_bar, bar[5], 0),
    { "rom", emu_key_rom },
    EMU_DEVICE_KEY("msix_entries", emu_key_u32, msix_entries, 2048),
    { "msix_table", emu_key_msix_table },
    { "msix_pba", emu_key_msix_pba },
    EMU_DEVICE_KEY("msix_mappable", emu_key_bool, msix_mappable, 0),
    EMU_DEVICE_KEY("intx", emu_key_bool, intx, 0),
    EMU_DEVICE_KEY("reset", emu_key_bool, reset, 0),
    EMU_DEVICE_KEY("msi_vectors", emu_key_u32, msi_vectors, 32),
    EMU_DEVICE_KEY("pm", emu_key_bool, pm, 0),
    EMU_DEVICE_KEY("pm_stuck", emu_key_bool, pm_stuck, 0),
};
QEMU_BUILD_BUG_ON(EMU_NUM_BARS != 6);

static bool emu_parse_device(GKeyFile *kf, const char *group,
                             EmuDeviceCfg *d, char **errmsg)
{
    uint64_t table_end, pba_end;
    int i;

    d->vendor_id = 0x1b36;
    d->device_id = 0x10f0;
    d->class_code = 0xff0000;
    d->revision = 1;
    d->msix_mappable = true;
    d->intx = true;
    d->reset = true;

    if (!emu_parse_keys(kf, group, emu_device_keys,
                        ARRAY_SIZE(emu_device_keys), d, errmsg)) {
        return false;
    }
    if (!d->has_group) {
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

    if (d->msi_vectors & (d->msi_vectors - 1)) {
        return emu_key_error(errmsg, group, "msi_vectors",
                             "%u is not a power of two", d->msi_vectors);
    }
    if (!d->msix_entries) {
        return true;
    }
    if (!d->has_msix_pba) {
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

/* [fault NAME] */

static bool emu_key_op(const char *val, void *obj, const EmuKey *key,
                       char **why)
{
    static const EmuName ops[] = {
        { "map", EMU_FAULT_MAP },
        { "unmap", EMU_FAULT_UNMAP },
        { "any", EMU_FAULT_MAP | EMU_FAULT_UNMAP },
        { "change_process", EMU_FAULT_CHANGE_PROCESS },
    };
    EmuFault *f = obj;

    if (!emu_parse_name(val, ops, ARRAY_SIZE(ops), &f->ops)) {
        *why = g_strdup_printf("'%s' is not map, unmap, any or"
                               " change_process", val);
        return false;
    }
    return true;
}

static bool emu_key_errno(const char *val, void *obj, const EmuKey *key,
                          char **why)
{
    EmuFault *f = obj;

    if (!emu_parse_errno(val, &f->err)) {
        *why = g_strdup_printf("'%s' is not an errno name or number", val);
        return false;
    }
    return true;
}

static bool emu_key_iova(const char *val, void *obj, const EmuKey *key,
                         char **why)
{
    EmuFault *f = obj;

    if (!emu_parse_range(val, &f->iova)) {
        *why = g_strdup_printf("'%s' is not START-END", val);
        return false;
    }
    f->has_iova = true;
    return true;
}

static bool emu_key_backing(const char *val, void *obj, const EmuKey *key,
                            char **why)
{
    EmuFault *f = obj;

    if (!*val) {
        *why = g_strdup("empty");
        return false;
    }
    g_free(f->backing);
    f->backing = strcmp(val, "any") ? g_strdup(val) : NULL;
    return true;
}

static bool emu_key_skip(const char *val, void *obj, const EmuKey *key,
                         char **why)
{
    EmuFault *f = obj;

    if (!emu_parse_u64(val, &f->skip)) {
        *why = g_strdup_printf("'%s' is not a number", val);
        return false;
    }
    return true;
}

static bool emu_key_count(const char *val, void *obj, const EmuKey *key,
                          char **why)
{
    EmuFault *f = obj;

    if (!emu_parse_u64(val, &f->count)) {
        *why = g_strdup_printf("'%s' is not a number", val);
        return false;
    }
    f->has_count = true;
    return true;
}

static bool emu_key_unmapped(const char *val, void *obj, const EmuKey *key,
                             char **why)
{
    EmuFault *f = obj;

    f->has_unmapped = true;
    f->unmaps_nothing = !strcmp(val, "none");
    if (!f->unmaps_nothing && !emu_parse_u64(val, &f->unmapped)) {
        *why = g_strdup_printf("'%s' is neither none nor a number", val);
        return false;
    }
    return true;
}

static const EmuKey emu_fault_keys[] = {
    { "op", emu_key_op },
    { "errno", emu_key_errno },
    { "unmapped", emu_key_unmapped },
    { "iova", emu_key_iova },
    { "backing", emu_key_backing },
    { "skip", emu_key_skip },
    { "count", emu_key_count },
};

static bool emu_parse_fault(GKeyFile *kf, const char *group, EmuFault *f,
                            char **errmsg)
{
    if (!emu_parse_keys(kf, group, emu_fault_keys,
                        ARRAY_SIZE(emu_fault_keys), f, errmsg)) {
        return false;
    }
    if (!f->ops) {
        return emu_key_error(errmsg, group, "op", "missing");
    }
    if (f->has_unmapped) {
        /* A wrong answer to a call that succeeds */
        if (f->ops != EMU_FAULT_UNMAP) {
            return emu_key_error(errmsg, group, "unmapped",
                                 "needs op = unmap");
        }
        if (f->err) {
            return emu_key_error(errmsg, group, "unmapped",
                                 "excludes errno");
        }
        return true;
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
bool emu_parse_config(const char *text, bool faults_only,
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
            if (!emu_parse_keys(kf, group, emu_container_keys,
                                ARRAY_SIZE(emu_container_keys), cfg,
                                errmsg)) {
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

uint64_t vfio_emu_config_host_page(const char *config_path)
{
    g_autofree char *text = NULL;
    g_autofree char *errmsg = NULL;
    EmuConfig *cfg;
    uint64_t page = 0;

    if (!config_path || !g_file_get_contents(config_path, &text, NULL, NULL)) {
        return 0;
    }
    cfg = emu_config_new();
    if (emu_parse_config(text, false, cfg, &errmsg)) {
        page = cfg->host_page;
    }
    emu_config_free(cfg);
    return page;
}

bool vfio_emu_check_faults(const char *text, char **errmsg)
{
    EmuConfig *cfg = emu_config_new();
    bool ok = emu_parse_config(text, true, cfg, errmsg);

    emu_config_free(cfg);
    return ok;
}
