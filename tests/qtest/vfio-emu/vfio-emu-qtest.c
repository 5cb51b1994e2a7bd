/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: libqos-style helpers to run vfio-pci qtests on the emulation
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include <linux/vfio.h>

#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "standard-headers/linux/pci_regs.h"
#include "vfio-emu.h"
#include "vfio-emu-qtest.h"

/* The ICH9 ACPI PCI hotplug registers (hw/acpi/pcihp.c) */
#define ACPI_PCIHP_ADDR_ICH9    0x0cc0
#define ACPI_PCIHP_EJ           0x0008
#define ACPI_PCIHP_SEL          0x0010

#define ROOT_PORT_SLOT          0x10
#define MEM32_WINDOW_SIZE       0x1000000ULL
#define MEM64_WINDOW_SIZE       (4 * GiB)
#define BIOS_AREA_START         (4 * GiB - 16 * MiB)

VfioEmuQTest *vfio_emu_qtest_new(uint64_t ram_size)
{
    g_autoptr(GError) err = NULL;
    VfioEmuQTest *t;

    if (!g_getenv("VFIO_EMU_PRELOAD")) {
        g_test_skip("VFIO_EMU_PRELOAD is not set");
        return NULL;
    }
    t = g_new0(VfioEmuQTest, 1);
    t->dir = g_dir_make_tmp("vfio-emu-qtest-XXXXXX", &err);
    g_assert_no_error(err);
    t->state = g_build_filename(t->dir, "state", NULL);
    t->config = g_build_filename(t->dir, "config", NULL);
    g_assert_cmpint(mkdir(t->state, 0700), ==, 0);
    t->config_text = g_string_new("");
    t->ram_size = ram_size;
    /* pc_q35_init(): the RAM below 4 GiB ends at 2 GiB or 2.75 GiB */
    if (ram_size >= 0xb0000000) {
        t->below_4g = 0x80000000;
        t->above_4g = ram_size - t->below_4g;
    } else {
        t->below_4g = ram_size;
    }
    return t;
}

VfioEmuQDev *vfio_emu_qtest_add_device(VfioEmuQTest *t, int group,
                                       const char *keys)
{
    VfioEmuQDev *d;
    g_autofree char *link = NULL;
    g_autofree char *target = NULL;
    int i;

    g_assert_cmpint(t->ndevs, <, VFIO_EMU_QTEST_MAX_DEVS);
    g_assert_null(t->qts);
    d = &t->devs[t->ndevs];
    d->index = t->ndevs++;
    d->name = g_strdup_printf("0000:%02x:00.0", d->index + 1);
    d->id = g_strdup_printf("vfio%d", d->index);
    d->port = g_strdup_printf("rp%d", d->index);
    d->busnr = d->index + 1;
    d->group = group;
    d->sysfs = g_build_filename(t->dir, "sys", d->name, NULL);
    for (i = 0; i < VFIO_EMU_QTEST_NUM_BARS; i++) {
        d->bar_addr[i] = VFIO_EMU_QTEST_UNMAPPED;
    }

    g_assert_cmpint(g_mkdir_with_parents(d->sysfs, 0700), ==, 0);
    link = g_build_filename(d->sysfs, "iommu_group", NULL);
    target = g_strdup_printf("../../kernel/iommu_groups/%d", group);
    g_assert_cmpint(symlink(target, link), ==, 0);

    g_string_append_printf(t->config_text, "[device %s]\ngroup = %d\n%s\n",
                           d->name, group, keys);
    return d;
}

void vfio_emu_qtest_add_config(VfioEmuQTest *t, const char *text)
{
    g_assert_null(t->qts);
    g_string_append_printf(t->config_text, "%s\n", text);
}

bool vfio_emu_qtest_qemu_at_least(VfioEmuQTest *t, int major, int minor)
{
    QDict *resp = qtest_qmp(t->qts, "{'execute': 'query-version'}");
    QDict *v = qdict_get_qdict(qdict_get_qdict(resp, "return"), "qemu");
    int64_t ma = qdict_get_int(v, "major");
    int64_t mi = qdict_get_int(v, "minor");

    qobject_unref(resp);
    return ma > major || (ma == major && mi >= minor);
}

uint64_t vfio_emu_qtest_host_page(VfioEmuQTest *t)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *val = NULL;
    uint64_t page;

    g_assert_true(g_key_file_load_from_data(kf, t->config_text->str, -1,
                                            G_KEY_FILE_NONE, NULL));
    val = g_key_file_get_value(kf, "container", "host_page", NULL);
    if (!val) {
        return qemu_real_host_page_size();
    }
    g_assert_cmpint(qemu_strtou64(g_strstrip(val), NULL, 0, &page), ==, 0);
    return page;
}

void vfio_emu_qtest_set_device_props(VfioEmuQDev *d, const char *props)
{
    g_free(d->props);
    d->props = g_strdup(props);
}

void vfio_emu_qtest_capture_stderr(VfioEmuQTest *t)
{
    g_assert_null(t->qts);
    g_free(t->stderr_path);
    t->stderr_path = g_build_filename(t->dir, "stderr", NULL);
    t->stderr_seen = 0;
}

/*
 * A sanitizer's note rather than QEMU's output: an ASan build of QEMU says
 * once that it does not fully support coroutines (make check-asan).
 */
static bool is_sanitizer_note(const char *line)
{
    return g_str_has_prefix(line, "==") &&
           strstr(line, "ASan doesn't fully support makecontext");
}

char **vfio_emu_qtest_take_stderr(VfioEmuQTest *t)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GPtrArray) out = g_ptr_array_new();
    size_t len, end;
    int i;

    g_assert_nonnull(t->stderr_path);
    g_file_get_contents(t->stderr_path, &text, &len, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(len, >=, t->stderr_seen);
    /* only whole lines */
    for (end = len; end > t->stderr_seen && text[end - 1] != '\n'; end--) {
        continue;
    }
    text[end] = '\0';
    len = t->stderr_seen;
    t->stderr_seen = end;
    if (end == len) {
        return g_new0(char *, 1);
    }
    text[end - 1] = '\0';
    lines = g_strsplit(text + len, "\n", -1);
    for (i = 0; lines[i]; i++) {
        if (!is_sanitizer_note(lines[i])) {
            g_ptr_array_add(out, g_strdup(lines[i]));
        }
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&out), false);
}

char **vfio_emu_qtest_take_messages(VfioEmuQTest *t)
{
    g_auto(GStrv) lines = vfio_emu_qtest_take_stderr(t);
    g_autoptr(GPtrArray) out = g_ptr_array_new();
    GString *msg = NULL;
    int i;

    for (i = 0; lines[i]; i++) {
        if (g_regex_match_simple("^\\[[RSI] \\+", lines[i], 0, 0)) {
            continue;       /* the qtest log */
        }
        if (msg && !g_str_has_prefix(lines[i], "qemu-system-")) {
            g_string_append_printf(msg, "\n%s", lines[i]);
            continue;
        }
        if (msg) {
            g_ptr_array_add(out, g_string_free(msg, false));
        }
        msg = g_string_new(lines[i]);
    }
    if (msg) {
        g_ptr_array_add(out, g_string_free(msg, false));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&out), false);
}

void vfio_emu_qtest_warning_clear(VfioEmuQWarning *w)
{
    g_free(w->device);
    g_free(w->region);
    g_free(w->size);
    g_free(w->cause);
    g_free(w->ranges);
    g_free(w->iommu_page);
    g_free(w->host_page);
    g_free(w->iova_ranges);
    g_free(w->hint);
    memset(w, 0, sizeof(*w));
}

bool vfio_emu_qtest_parse_warning(const char *msg, VfioEmuQWarning *w)
{
    g_autoptr(GRegex) head = g_regex_new(
        "^qemu-system-[^:]*: warning: (.*) ((BAR [0-5])|region [^:]*): "
        "([0-9.]+ [KMGTPE]?i?B) not DMA-mapped: (.*)$", 0, 0, NULL);
    g_autoptr(GRegex) where = g_regex_new(
        "^Guest-physical (.*), IOMMU page ([0-9.]+ [KMGTPE]?i?B), host page "
        "([0-9.]+ [KMGTPE]?i?B)\\.$", 0, 0, NULL);
    g_auto(GStrv) lines = g_strsplit(msg, "\n", -1);
    g_autoptr(GMatchInfo) m = NULL;
    int i;

    memset(w, 0, sizeof(*w));
    if (!g_regex_match(head, lines[0], 0, &m)) {
        return false;
    }
    w->device = g_match_info_fetch(m, 1);
    w->region = g_match_info_fetch(m, 2);
    w->size = g_match_info_fetch(m, 4);
    w->cause = g_match_info_fetch(m, 5);
    for (i = 1; lines[i]; i++) {
        g_autoptr(GMatchInfo) mw = NULL;

        if (g_regex_match(where, lines[i], 0, &mw)) {
            w->ranges = g_match_info_fetch(mw, 1);
            w->iommu_page = g_match_info_fetch(mw, 2);
            w->host_page = g_match_info_fetch(mw, 3);
        } else if (g_str_has_prefix(lines[i], "Usable IOVA ranges: ")) {
            w->iova_ranges = g_strndup(lines[i] + 20, strlen(lines[i]) - 21);
        } else if (g_str_has_prefix(lines[i], "Hint: ")) {
            w->hint = g_strdup(lines[i] + 6);
        }
    }
    if (!w->ranges || !w->hint) {
        vfio_emu_qtest_warning_clear(w);
        return false;
    }
    return true;
}

void vfio_emu_qtest_set_mem32_window(VfioEmuQTest *t, VfioEmuQDev *d,
                                     uint64_t base, uint64_t last)
{
    g_autofree QPCIDevice *rp = NULL;

    rp = qpci_device_find(t->bus, QPCI_DEVFN(ROOT_PORT_SLOT + d->index, 0));
    g_assert_nonnull(rp);
    qpci_config_writew(rp, PCI_MEMORY_BASE, (base >> 16) & 0xfff0);
    qpci_config_writew(rp, PCI_MEMORY_LIMIT, (last >> 16) & 0xfff0);
    d->mem32_first = base;
    d->mem32_last = last;
}

static void program_root_port(VfioEmuQTest *t, VfioEmuQDev *d)
{
    g_autofree QPCIDevice *rp = NULL;
    uint64_t m32 = VFIO_EMU_QTEST_MEM32(d->index);
    uint64_t m64 = VFIO_EMU_QTEST_MEM64(d->index);
    uint64_t m32_last = m32 + MEM32_WINDOW_SIZE - 1;
    uint64_t m64_last = m64 + MEM64_WINDOW_SIZE - 1;

    if (d->mem32_last) {
        m32 = d->mem32_first;
        m32_last = d->mem32_last;
    }
    rp = qpci_device_find(t->bus, QPCI_DEVFN(ROOT_PORT_SLOT + d->index, 0));
    g_assert_nonnull(rp);
    qpci_config_writeb(rp, PCI_PRIMARY_BUS, 0);
    qpci_config_writeb(rp, PCI_SECONDARY_BUS, d->busnr);
    qpci_config_writeb(rp, PCI_SUBORDINATE_BUS, d->busnr);
    /* no I/O window */
    qpci_config_writeb(rp, PCI_IO_BASE, 0xf0);
    qpci_config_writeb(rp, PCI_IO_LIMIT, 0);
    qpci_config_writew(rp, PCI_MEMORY_BASE, (m32 >> 16) & 0xfff0);
    qpci_config_writew(rp, PCI_MEMORY_LIMIT, (m32_last >> 16) & 0xfff0);
    qpci_config_writew(rp, PCI_PREF_MEMORY_BASE,
                       ((m64 >> 16) & 0xfff0) | PCI_PREF_RANGE_TYPE_64);
    qpci_config_writew(rp, PCI_PREF_MEMORY_LIMIT,
                       ((m64_last >> 16) & 0xfff0) | PCI_PREF_RANGE_TYPE_64);
    qpci_config_writel(rp, PCI_PREF_BASE_UPPER32, m64 >> 32);
    qpci_config_writel(rp, PCI_PREF_LIMIT_UPPER32, m64_last >> 32);
    qpci_config_writew(rp, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* Size the BARs the way a guest does, through config cycles */
static void size_bars(VfioEmuQTest *t, VfioEmuQDev *d)
{
    int i;

    for (i = 0; i < VFIO_EMU_QTEST_NUM_BARS; i++) {
        uint8_t off = PCI_BASE_ADDRESS_0 + 4 * i;
        uint32_t orig = qpci_config_readl(d->pdev, off), lo;
        uint64_t mask;

        d->bar_size[i] = 0;
        d->bar_addr[i] = VFIO_EMU_QTEST_UNMAPPED;
        d->bar_io[i] = orig & PCI_BASE_ADDRESS_SPACE_IO;
        d->bar_mem64[i] = !d->bar_io[i] &&
                          (orig & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
                          PCI_BASE_ADDRESS_MEM_TYPE_64;
        qpci_config_writel(d->pdev, off, 0xffffffff);
        lo = qpci_config_readl(d->pdev, off);
        qpci_config_writel(d->pdev, off, orig);
        if (d->bar_io[i]) {
            mask = 0xffffffff00000000ULL | (lo & PCI_BASE_ADDRESS_IO_MASK);
        } else {
            mask = 0xffffffff00000000ULL | (lo & PCI_BASE_ADDRESS_MEM_MASK);
        }
        if (d->bar_mem64[i]) {
            uint32_t orig_hi = qpci_config_readl(d->pdev, off + 4);

            qpci_config_writel(d->pdev, off + 4, 0xffffffff);
            mask = ((uint64_t)qpci_config_readl(d->pdev, off + 4) << 32) |
                   (uint32_t)mask;
            qpci_config_writel(d->pdev, off + 4, orig_hi);
        }
        if ((uint32_t)mask) {
            d->bar_size[i] = ~mask + 1;
        }
        if (d->bar_mem64[i]) {
            i++;
        }
    }
}

static void find_device(VfioEmuQTest *t, VfioEmuQDev *d)
{
    /* pci-pc encodes devfn into 0xcf8 at bit 8: put the bus above it */
    d->pdev = qpci_device_find(t->bus, (d->busnr << 8) | QPCI_DEVFN(0, 0));
    g_assert_nonnull(d->pdev);
    d->decoding = false;
    d->power = 0;
    size_bars(t, d);
}

void vfio_emu_qtest_use_iommufd(VfioEmuQTest *t)
{
    g_assert_null(t->qts);
    t->iommufd = true;
}

/* DIR/vfio-dev/vfioN/dev, "MAJOR:MINOR" of the cdev, and the options */
static void add_iommufd_args(VfioEmuQTest *t, GString *args)
{
    int i;

    for (i = 0; i < t->ndevs; i++) {
        VfioEmuQDev *d = &t->devs[i];
        g_autofree char *dir = g_strdup_printf("%s/vfio-dev/vfio%d",
                                               d->sysfs, d->index);
        g_autofree char *dev = g_build_filename(dir, "dev", NULL);
        g_autofree char *devt = g_strdup_printf("%d:%d\n",
                                                VFIO_EMU_CDEV_MAJOR,
                                                d->index);

        g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
        g_assert_true(g_file_set_contents(dev, devt, -1, NULL));
    }
    /* else a device may still be given iommufd=... of its own */
    if (t->iommufd) {
        g_string_append(args, " -object iommufd,id=iommufd0"
                        " -global vfio-pci.iommufd=iommufd0");
    }
}

void vfio_emu_qtest_set_early_args(VfioEmuQTest *t, const char *args)
{
    g_free(t->early_args);
    t->early_args = g_strdup(args);
}

/* The command line of QEMU with the devices and @extra_args */
static GString *qemu_args(VfioEmuQTest *t, const char *extra_args)
{
    GString *args = g_string_new("");
    int i;

    g_assert_true(g_file_set_contents(t->config, t->config_text->str, -1,
                                      NULL));
    g_string_append_printf(args, "-machine q35 -m %" PRIu64 "M -nodefaults",
                           t->ram_size / MiB);
    if (t->early_args) {
        g_string_append_printf(args, " %s", t->early_args);
    }
    for (i = 0; i < t->ndevs; i++) {
        VfioEmuQDev *d = &t->devs[i];

        g_string_append_printf(args, " -device pcie-root-port,id=%s,"
                               "chassis=%d,addr=%x.0 -device vfio-pci,"
                               "sysfsdev=%s,bus=%s,addr=0.0,id=%s%s%s",
                               d->port, i + 1, ROOT_PORT_SLOT + i, d->sysfs,
                               d->port, d->id, d->props ? "," : "",
                               d->props ?: "");
    }
    add_iommufd_args(t, args);
    if (extra_args) {
        g_string_append_printf(args, " %s", extra_args);
    }
    return args;
}

void vfio_emu_qtest_start(VfioEmuQTest *t, const char *extra_args)
{
    const char *preload = g_getenv("VFIO_EMU_PRELOAD");
    g_autoptr(GString) args = qemu_args(t, extra_args);
    int i;

    if (t->stderr_path) {
        /* libqtest runs the command line with sh -c */
        g_string_append_printf(args, " 2>'%s'", t->stderr_path);
    }
    g_setenv("VFIO_EMU_CONFIG", t->config, true);
    g_setenv("VFIO_EMU_STATE", t->state, true);
    g_setenv("LD_PRELOAD", preload, true);
    t->qts = qtest_init(args->str);
    g_unsetenv("LD_PRELOAD");

    t->bus = qpci_new_pc(t->qts, NULL);
    for (i = 0; i < t->ndevs; i++) {
        program_root_port(t, &t->devs[i]);
        find_device(t, &t->devs[i]);
    }
}

int vfio_emu_qtest_run_to_exit(VfioEmuQTest *t, const char *extra_args,
                               char **err)
{
    g_autoptr(GString) args = qemu_args(t, extra_args);
    g_autofree char *qmp = g_build_filename(t->dir, "quit.qmp", NULL);
    g_autofree char *errfile = g_build_filename(t->dir, "exit-stderr",
                                                NULL);
    g_autofree char *cmd = NULL;
    g_autoptr(GError) gerr = NULL;
    const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
    int status;

    g_assert_null(t->qts);
    g_assert_true(g_file_set_contents(qmp, "{'execute': 'qmp_capabilities'}\n"
                                      "{'execute': 'quit'}\n", -1, NULL));
    cmd = g_strdup_printf("VFIO_EMU_CONFIG='%s' VFIO_EMU_STATE='%s' "
                          "LD_PRELOAD='%s' exec %s %s -accel qtest "
                          "-display none -qmp stdio <'%s' >/dev/null "
                          "2>'%s'", t->config, t->state,
                          g_getenv("VFIO_EMU_PRELOAD"),
                          g_getenv("QTEST_QEMU_BINARY"),
                          args->str, qmp, errfile);
    argv[2] = cmd;
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                 NULL, NULL, &status, &gerr);
    g_assert_no_error(gerr);
    g_assert_true(g_file_get_contents(errfile, err, NULL, NULL));
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

void vfio_emu_qtest_set_faults(VfioEmuQTest *t, const char *text)
{
    g_autofree char *tmp = g_build_filename(t->state, "faults.tmp", NULL);
    g_autofree char *path = g_build_filename(t->state, "faults", NULL);

    g_assert_true(g_file_set_contents(tmp, text, -1, NULL));
    g_assert_cmpint(rename(tmp, path), ==, 0);
}

GArray *vfio_emu_qtest_bar_mmaps(VfioEmuQTest *t, VfioEmuQDev *d, int bar)
{
    g_autofree char *maps = g_strdup_printf("/proc/%d/maps",
                                            (int)qtest_pid(t->qts));
    g_autofree char *file = g_strdup_printf("/memfd:vfio-emu %s (deleted)",
                                            d->name);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GArray *res = g_array_new(false, false, sizeof(VfioEmuQMmap));
    int i;

    g_assert_true(g_file_get_contents(maps, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        uint64_t start, end, offset;
        int path = 0;
        VfioEmuQMmap m;

        if (sscanf(lines[i], "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64
                   " %*s %*s %n", &start, &end, &offset, &path) != 3 ||
            !path || strcmp(lines[i] + path, file) ||
            offset >> VFIO_EMU_REGION_SHIFT != bar) {
            continue;
        }
        m.offset = offset & (VFIO_EMU_REGION_OFFSET(1) - 1);
        m.size = end - start;
        m.vaddr = start;
        g_array_append_val(res, m);
    }
    return res;
}

void vfio_emu_qtest_expect_stale(VfioEmuQTest *t, uint64_t iova,
                                 uint64_t size)
{
    VfioEmuMapping m = { .iova = iova, .size = size };

    if (!t->stale) {
        t->stale = g_array_new(false, false, sizeof(VfioEmuMapping));
    }
    g_array_append_val(t->stale, m);
}

void vfio_emu_qtest_forget_stale(VfioEmuQTest *t, uint64_t iova,
                                 uint64_t size)
{
    int i;

    for (i = 0; t->stale && i < t->stale->len; i++) {
        VfioEmuMapping *m = &g_array_index(t->stale, VfioEmuMapping, i);

        if (m->iova == iova && m->size == size) {
            g_array_remove_index(t->stale, i);
            return;
        }
    }
    g_assert_not_reached();
}

void vfio_emu_qtest_free(VfioEmuQTest *t)
{
    g_autofree char *cmd = NULL;
    int i;

    if (!t) {
        return;
    }
    for (i = 0; i < t->ndevs; i++) {
        VfioEmuQDev *d = &t->devs[i];

        g_free(d->pdev);
        g_free(d->props);
        g_free(d->name);
        g_free(d->id);
        g_free(d->port);
        g_free(d->sysfs);
    }
    if (t->bus) {
        qpci_free_pc(t->bus);
    }
    if (t->qts) {
        qtest_quit(t->qts);
    }
    if (t->stderr_path && g_getenv("QTEST_LOG")) {
        g_autofree char *text = NULL;

        if (g_file_get_contents(t->stderr_path, &text, NULL, NULL)) {
            fprintf(stderr, "%s", text);
        }
    }
    g_free(t->stderr_path);
    g_free(t->early_args);
    if (t->calls_model) {
        g_array_unref(t->calls_model);
    }
    if (t->stale) {
        g_array_unref(t->stale);
    }
    cmd = g_strdup_printf("rm -rf '%s'", t->dir);
    g_assert_cmpint(system(cmd), ==, 0);
    g_string_free(t->config_text, true);
    g_free(t->dir);
    g_free(t->state);
    g_free(t->config);
    g_free(t);
}

void vfio_emu_qtest_set_bar(VfioEmuQTest *t, VfioEmuQDev *d, int bar,
                            uint64_t addr)
{
    uint8_t off = PCI_BASE_ADDRESS_0 + 4 * bar;
    uint64_t m32 = VFIO_EMU_QTEST_MEM32(d->index);
    uint64_t m64 = VFIO_EMU_QTEST_MEM64(d->index);
    uint64_t size = d->bar_size[bar];

    g_assert_nonnull(d->pdev);
    g_assert_cmphex(size, !=, 0);
    g_assert_false(d->bar_io[bar]);
    g_assert_cmphex(addr & (size - 1), ==, 0);
    /* it must be routed by the root port */
    if (addr >= m64 && addr + size <= m64 + MEM64_WINDOW_SIZE) {
        g_assert_true(d->bar_mem64[bar]);
    } else if (d->mem32_last) {
        g_assert_cmphex(addr, >=, d->mem32_first);
        g_assert_cmphex(addr + size - 1, <=, d->mem32_last);
    } else {
        g_assert_cmphex(addr, >=, m32);
        g_assert_cmphex(addr + size, <=, m32 + MEM32_WINDOW_SIZE);
    }

    qpci_config_writel(d->pdev, off, (uint32_t)addr);
    if (d->bar_mem64[bar]) {
        qpci_config_writel(d->pdev, off + 4, addr >> 32);
    }
    d->bar_addr[bar] = addr;
}

void vfio_emu_qtest_set_decoding(VfioEmuQTest *t, VfioEmuQDev *d, bool on)
{
    uint16_t cmd;

    g_assert_nonnull(d->pdev);
    cmd = qpci_config_readw(d->pdev, PCI_COMMAND);
    cmd = on ? cmd | PCI_COMMAND_MEMORY : cmd & ~PCI_COMMAND_MEMORY;
    qpci_config_writew(d->pdev, PCI_COMMAND, cmd);
    d->decoding = on;
}

uint8_t vfio_emu_qtest_set_power(VfioEmuQTest *t, VfioEmuQDev *d,
                                 uint8_t state)
{
    uint8_t pm;
    uint16_t csr;

    g_assert_nonnull(d->pdev);
    pm = qpci_find_capability(d->pdev, PCI_CAP_ID_PM, 0);
    g_assert_cmpint(pm, !=, 0);
    csr = qpci_config_readw(d->pdev, pm + PCI_PM_CTRL);
    csr = (csr & ~PCI_PM_CTRL_STATE_MASK) | state;
    qpci_config_writew(d->pdev, pm + PCI_PM_CTRL, csr);
    d->power = state;
    return qpci_config_readw(d->pdev, pm + PCI_PM_CTRL) &
           PCI_PM_CTRL_STATE_MASK;
}

static void wait_device_deleted(QTestState *qts, const char *id)
{
    for (;;) {
        QDict *resp = qtest_qmp_eventwait_ref(qts, "DEVICE_DELETED");
        QDict *data = qdict_get_qdict(resp, "data");
        bool done = data && qdict_haskey(data, "device") &&
                    !strcmp(qdict_get_str(data, "device"), id);

        qobject_unref(resp);
        if (done) {
            return;
        }
    }
}

void vfio_emu_qtest_unplug(VfioEmuQTest *t, VfioEmuQDev *d)
{
    g_autofree char *bus = g_strdup_printf("/machine/peripheral/%s/%s",
                                           d->port, d->port);
    QDict *resp;
    int64_t bsel;
    int i;

    g_assert_nonnull(d->pdev);
    qtest_qmp_device_del_send(t->qts, d->id);

    /* The guest's _EJ0: select the root port's bus, eject slot 0 */
    resp = qtest_qmp(t->qts, "{'execute': 'qom-get', 'arguments': "
                     "{'path': %s, 'property': 'acpi-pcihp-bsel'}}", bus);
    g_assert_true(qdict_haskey(resp, "return"));
    bsel = qdict_get_int(resp, "return");
    qobject_unref(resp);
    qtest_outl(t->qts, ACPI_PCIHP_ADDR_ICH9 + ACPI_PCIHP_SEL, bsel);
    qtest_outl(t->qts, ACPI_PCIHP_ADDR_ICH9 + ACPI_PCIHP_EJ, 1);
    wait_device_deleted(t->qts, d->id);

    g_free(d->pdev);
    d->pdev = NULL;
    d->decoding = false;
    d->power = 0;
    for (i = 0; i < VFIO_EMU_QTEST_NUM_BARS; i++) {
        d->bar_addr[i] = VFIO_EMU_QTEST_UNMAPPED;
    }
}

void vfio_emu_qtest_replug(VfioEmuQTest *t, VfioEmuQDev *d)
{
    g_autoptr(QDict) args = qdict_new();
    g_auto(GStrv) props = g_strsplit(d->props ?: "", ",", -1);
    int i;

    g_assert_null(d->pdev);
    qdict_put_str(args, "id", d->id);
    qdict_put_str(args, "sysfsdev", d->sysfs);
    qdict_put_str(args, "bus", d->port);
    qdict_put_str(args, "addr", "0.0");
    for (i = 0; props[i]; i++) {
        char *eq = strchr(props[i], '=');

        g_assert_nonnull(eq);
        *eq = '\0';
        qdict_put_str(args, props[i], eq + 1);
    }
    qtest_qmp_device_add_qdict(t->qts, "vfio-pci", args);
    find_device(t, d);
}

void vfio_emu_qtest_set_msix(VfioEmuQTest *t, VfioEmuQDev *d, bool enable,
                             bool mask)
{
    uint8_t cap;
    uint16_t ctrl;

    g_assert_nonnull(d->pdev);
    cap = qpci_find_capability(d->pdev, PCI_CAP_ID_MSIX, 0);
    g_assert_cmpint(cap, !=, 0);
    ctrl = qpci_config_readw(d->pdev, cap + PCI_MSIX_FLAGS);
    ctrl &= ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    ctrl |= (enable ? PCI_MSIX_FLAGS_ENABLE : 0) |
            (mask ? PCI_MSIX_FLAGS_MASKALL : 0);
    qpci_config_writew(d->pdev, cap + PCI_MSIX_FLAGS, ctrl);
}

void vfio_emu_qtest_system_reset(VfioEmuQTest *t)
{
    int i, b;

    qtest_qmp_assert_success(t->qts, "{'execute': 'system_reset'}");
    qtest_qmp_eventwait(t->qts, "RESET");
    for (i = 0; i < t->ndevs; i++) {
        VfioEmuQDev *d = &t->devs[i];

        program_root_port(t, d);
        d->decoding = false;
        d->power = 0;
        for (b = 0; b < VFIO_EMU_QTEST_NUM_BARS; b++) {
            if (d->bar_addr[b] != VFIO_EMU_QTEST_UNMAPPED) {
                d->bar_addr[b] = 0;
            }
        }
    }
}

GArray *vfio_emu_qtest_mappings(VfioEmuQTest *t)
{
    return vfio_emu_read_mappings(t->state);
}

GArray *vfio_emu_qtest_take_events(VfioEmuQTest *t)
{
    GArray *ev = vfio_emu_read_events(t->state);
    guint seen = t->events_seen;

    g_assert_cmpuint(ev->len, >=, seen);
    t->events_seen = ev->len;
    g_array_remove_range(ev, 0, seen);
    return ev;
}

static void mapping_copy_clear(gpointer p)
{
    VfioEmuMapping *m = p;

    g_free(m->backing);
}

GArray *vfio_emu_qtest_mappings_of(VfioEmuQTest *t, VfioEmuQDev *d, int bar)
{
    g_autoptr(GArray) all = vfio_emu_qtest_mappings(t);
    GArray *res = g_array_new(false, false, sizeof(VfioEmuMapping));
    int i;

    g_array_set_clear_func(res, mapping_copy_clear);
    for (i = 0; i < all->len; i++) {
        VfioEmuMapping m = g_array_index(all, VfioEmuMapping, i);
        g_autofree char *dev = NULL;
        uint64_t off;
        int b;

        if (!vfio_emu_backing_bar(m.backing, &dev, &b, &off)) {
            if (d) {
                continue;
            }
        } else if (!d || strcmp(dev, d->name) || (bar >= 0 && b != bar)) {
            continue;
        }
        m.backing = g_strdup(m.backing);
        g_array_append_val(res, m);
    }
    return res;
}

static VfioEmuQDev *find_qdev(VfioEmuQTest *t, const char *name)
{
    int i;

    for (i = 0; i < t->ndevs; i++) {
        if (!strcmp(t->devs[i].name, name)) {
            return &t->devs[i];
        }
    }
    return NULL;
}

static void check_ram_mapping(VfioEmuQTest *t, VfioEmuMapping *m,
                              uint64_t ram_vaddr)
{
    uint64_t end = m->iova + m->size;

    if (m->flags == VFIO_DMA_MAP_FLAG_READ) {
        /* pc.rom, isa-bios and pc.bios */
        g_assert_true((m->iova >= 0xc0000 && end <= 0x100000) ||
                      (m->iova >= BIOS_AREA_START && end <= 4 * GiB));
        return;
    }
    g_assert_cmphex(m->flags, ==,
                    VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    if (end <= t->below_4g) {
        g_assert_cmphex(m->vaddr, ==, ram_vaddr + m->iova);
    } else {
        g_assert_cmphex(m->iova, >=, 4 * GiB);
        g_assert_cmphex(end, <=, 4 * GiB + t->above_4g);
        g_assert_cmphex(m->vaddr, ==,
                        ram_vaddr + t->below_4g + (m->iova - 4 * GiB));
    }
}

static bool is_stale(VfioEmuQTest *t, const VfioEmuMapping *m)
{
    int i;

    for (i = 0; t->stale && i < t->stale->len; i++) {
        VfioEmuMapping *s = &g_array_index(t->stale, VfioEmuMapping, i);

        if (s->iova == m->iova && s->size == m->size) {
            return true;
        }
    }
    return false;
}

void vfio_emu_qtest_check_invariants(VfioEmuQTest *t)
{
    g_autoptr(GArray) all = vfio_emu_qtest_mappings(t);
    uint64_t ram_vaddr = 0;
    bool have_ram = false;
    int i;

    /* Guest RAM is one block; its mapping at 1 MiB gives its vaddr */
    for (i = 0; i < all->len; i++) {
        VfioEmuMapping *m = &g_array_index(all, VfioEmuMapping, i);

        if (!strcmp(m->backing, "ram") && m->iova <= 1 * MiB &&
            1 * MiB < m->iova + m->size) {
            ram_vaddr = m->vaddr - m->iova;
            have_ram = true;
        }
    }

    for (i = 0; i < all->len; i++) {
        VfioEmuMapping *m = &g_array_index(all, VfioEmuMapping, i);
        g_autofree char *name = NULL;
        VfioEmuQDev *d;
        uint64_t off, bar_size;
        int bar;

        if (i) {
            VfioEmuMapping *prev = &g_array_index(all, VfioEmuMapping, i - 1);

            g_assert_true(prev->container != m->container ||
                          prev->iova + prev->size <= m->iova);
        }
        if (!vfio_emu_backing_bar(m->backing, &name, &bar, &off)) {
            g_assert_cmpstr(m->backing, ==, "ram");
            g_assert_true(have_ram);
            check_ram_mapping(t, m, ram_vaddr);
            continue;
        }
        if (is_stale(t, m)) {
            continue;
        }
        d = find_qdev(t, name);
        g_assert_nonnull(d);
        if (!d->pdev || !d->decoding || d->power ||
            d->bar_addr[bar] == VFIO_EMU_QTEST_UNMAPPED) {
            g_error("mapping iova=0x%" PRIx64 " of %s outlived its section",
                    m->iova, m->backing);
        }
        /* a sub-page BAR may be mapped as a whole page */
        bar_size = MAX(d->bar_size[bar], vfio_emu_qtest_host_page(t));
        g_assert_cmphex(m->iova, ==, d->bar_addr[bar] + off);
        g_assert_cmphex(off + m->size, <=, bar_size);
    }
}

static bool errno_allowed(const int *allowed, int err)
{
    for (; allowed && *allowed; allowed++) {
        if (*allowed == err) {
            return true;
        }
    }
    return false;
}

static gint mapping_cmp(gconstpointer a, gconstpointer b)
{
    const VfioEmuMapping *ma = a, *mb = b;

    if (ma->container != mb->container) {
        return ma->container < mb->container ? -1 : 1;
    }
    return ma->iova < mb->iova ? -1 : ma->iova > mb->iova;
}

GArray *vfio_emu_qtest_check_calls(VfioEmuQTest *t, const int *allowed)
{
    GArray *ev = vfio_emu_qtest_take_events(t);
    g_autoptr(GArray) table = vfio_emu_qtest_mappings(t);
    GArray *model;
    int i, j;

    if (!t->calls_model) {
        t->calls_model = g_array_new(false, false, sizeof(VfioEmuMapping));
    }
    model = t->calls_model;
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);
        bool map = !strcmp(e->op, "MAP");
        uint64_t released = 0;

        if (!map && strcmp(e->op, "UNMAP") && strcmp(e->op, "RELEASE")) {
            continue;
        }
        if (e->ret) {
            if (!e->injected && !errno_allowed(allowed, -e->ret)) {
                g_error("%s iova=0x%" PRIx64 " size=0x%" PRIx64 " failed "
                        "with %d, and no fault was injected", e->op,
                        e->iova, e->size, e->ret);
            }
            continue;
        }
        if (map) {
            VfioEmuMapping m = {
                .container = e->container, .iova = e->iova,
                .size = e->size, .vaddr = e->vaddr, .flags = e->flags,
            };

            g_array_append_val(model, m);
            continue;
        }
        if (e->injected && !e->unmapped) {
            continue;       /* a wrong answer: it unmapped nothing */
        }
        for (j = model->len - 1; j >= 0; j--) {
            VfioEmuMapping *m = &g_array_index(model, VfioEmuMapping, j);

            if (m->container != e->container) {
                continue;
            }
            if (!strcmp(e->op, "RELEASE")) {
                released += m->size;
                g_array_remove_index(model, j);
            } else if (m->iova == e->iova && m->size == e->size) {
                break;
            }
        }
        if (!strcmp(e->op, "RELEASE")) {
            g_assert_cmphex(e->unmapped, ==, released);
            continue;
        }
        if (j < 0) {
            g_error("UNMAP iova=0x%" PRIx64 " size=0x%" PRIx64 " (seq %"
                    PRIu64 ") is not exactly one mapping", e->iova, e->size,
                    e->seq);
        }
        g_assert_cmphex(e->unmapped, ==, e->size);
        g_array_remove_index(model, j);
    }

    g_array_sort(model, mapping_cmp);
    g_assert_cmpint(model->len, ==, table->len);
    for (i = 0; i < table->len; i++) {
        VfioEmuMapping *a = &g_array_index(model, VfioEmuMapping, i);
        VfioEmuMapping *b = &g_array_index(table, VfioEmuMapping, i);

        g_assert_cmpint(a->container, ==, b->container);
        g_assert_cmphex(a->iova, ==, b->iova);
        g_assert_cmphex(a->size, ==, b->size);
        g_assert_cmphex(a->vaddr, ==, b->vaddr);
        g_assert_cmphex(a->flags, ==, b->flags);
    }
    return ev;
}

static uint64_t qdict_get_u64(QDict *d, const char *key)
{
    QNum *n = qobject_to(QNum, qdict_get(d, key));
    uint64_t v;

    g_assert_nonnull(n);
    g_assert_true(qnum_get_try_uint(n, &v));
    return v;
}

/* The mapping of @table in @container at @iova, or -1 */
static int table_find(GArray *table, int container, uint64_t iova)
{
    int i;

    for (i = 0; i < table->len; i++) {
        VfioEmuMapping *m = &g_array_index(table, VfioEmuMapping, i);

        if (m->container == container && m->iova == iova) {
            return i;
        }
    }
    return -1;
}

/* Check one entry of the answer in state "mapped" against @m */
static void check_qmp_mapped(VfioEmuQTest *t, QDict *e, VfioEmuMapping *m)
{
    bool ro = qdict_get_bool(e, "read-only");
    const char *backing = qdict_get_str(e, "backing");
    const char *device = qdict_get_try_str(e, "device");
    g_autofree char *name = NULL;
    int bar;
    uint64_t off;

    g_assert_cmphex(qdict_get_u64(e, "size"), ==, m->size);
    g_assert_cmphex(m->flags, ==, ro ? VFIO_DMA_MAP_FLAG_READ :
                    VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    if (!vfio_emu_backing_bar(m->backing, &name, &bar, &off)) {
        g_assert_false(qdict_get_bool(e, "ram-device"));
        g_assert_true(g_str_has_prefix(backing, "guest RAM ("));
        g_assert_null(device);
    } else {
        VfioEmuQDev *d = find_qdev(t, name);
        g_autofree char *what = g_strdup_printf("(%s) BAR %d", name, bar);

        g_assert_nonnull(d);
        g_assert_true(qdict_get_bool(e, "ram-device"));
        g_assert_true(g_str_has_suffix(backing, what));
        if (device) {
            g_autofree char *path = g_strdup_printf("/machine/peripheral/%s",
                                                    d->id);

            g_assert_cmpstr(device, ==, path);
        } else {
            /* detached from its section by a failed unmap */
            g_assert_true(is_stale(t, m));
        }
    }
}

QList *vfio_emu_qtest_check_qmp(VfioEmuQTest *t)
{
    g_autoptr(GArray) table = vfio_emu_qtest_mappings(t);
    g_autofree bool *seen = g_new0(bool, table->len + 1);
    g_autofree bool *dev_seen = g_new0(bool, t->ndevs + 1);
    QDict *resp = qtest_qmp(t->qts, "{'execute': "
                            "'x-query-vfio-dma-mappings'}");
    QList *all = qlist_new();
    QListEntry *ce, *me, *de;
    int container = 0, i;

    g_assert_true(qdict_haskey(resp, "return"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), ce) {
        QDict *c = qobject_to(QDict, qlist_entry_obj(ce));
        uint64_t n_mapped = 0;

        /* The next container of the table: the answer is in that order */
        for (i = 0; i < table->len; i++) {
            int id = g_array_index(table, VfioEmuMapping, i).container;

            if (id > container) {
                container = id;
                break;
            }
        }
        g_assert_cmpint(i, <, table->len);

        QLIST_FOREACH_ENTRY(qdict_get_qlist(c, "devices"), de) {
            const char *path = qstring_get_str(
                qobject_to(QString, qlist_entry_obj(de)));

            for (i = 0; i < t->ndevs; i++) {
                g_autofree char *p = g_strdup_printf("/machine/peripheral/%s",
                                                     t->devs[i].id);

                if (!strcmp(p, path)) {
                    break;
                }
            }
            g_assert_cmpint(i, <, t->ndevs);
            g_assert_nonnull(t->devs[i].pdev);
            g_assert_false(dev_seen[i]);
            dev_seen[i] = true;
        }

        QLIST_FOREACH_ENTRY(qdict_get_qlist(c, "mappings"), me) {
            QDict *e = qobject_to(QDict, qlist_entry_obj(me));
            const char *state = qdict_get_str(e, "state");
            uint64_t iova = qdict_get_u64(e, "iova");

            qlist_append(all, qobject_ref(e));
            if (!strcmp(state, "skipped")) {
                g_assert_true(qdict_haskey(e, "reason"));
                g_assert_false(qdict_haskey(e, "errno"));
                continue;
            }
            g_assert_false(qdict_haskey(e, "reason"));
            if (!strcmp(state, "failed")) {
                g_assert_cmpstr(qdict_get_str(e, "error"), ==,
                                strerror(qdict_get_int(e, "errno")));
                continue;
            }
            g_assert_cmpstr(state, ==, "mapped");
            g_assert_false(qdict_haskey(e, "errno"));
            i = table_find(table, container, iova);
            if (i < 0) {
                g_error("x-query-vfio-dma-mappings: 0x%" PRIx64 " is mapped,"
                        " but not in the IOMMU", iova);
            }
            g_assert_false(seen[i]);
            seen[i] = true;
            n_mapped++;
            check_qmp_mapped(t, e, &g_array_index(table, VfioEmuMapping, i));
        }
        g_assert_cmpuint(qdict_get_u64(c, "dma-entries"), ==, n_mapped);
    }
    for (i = 0; i < table->len; i++) {
        VfioEmuMapping *m = &g_array_index(table, VfioEmuMapping, i);

        if (!seen[i]) {
            g_error("IOMMU mapping container=%d iova=0x%" PRIx64 " size=0x%"
                    PRIx64 " is missing from x-query-vfio-dma-mappings",
                    m->container, m->iova, m->size);
        }
    }
    for (i = 0; i < t->ndevs; i++) {
        g_assert_true(dev_seen[i] == !!t->devs[i].pdev);
    }
    qobject_unref(resp);
    return all;
}

void vfio_emu_qtest_check_hmp(VfioEmuQTest *t, QList *mappings)
{
    g_autofree char *out = qtest_hmp(t->qts, "info vfio-dma");
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    g_autofree bool *used = g_new0(bool, g_strv_length(lines) + 1);
    QListEntry *me;
    int i, rows = 0;

    for (i = 0; lines[i]; i++) {
        g_strchomp(lines[i]);           /* the monitor ends lines with \r\n */
        rows += g_str_has_prefix(lines[i], "  0x");
    }
    g_assert_cmpint(rows, ==, qlist_size(mappings));

    QLIST_FOREACH_ENTRY(mappings, me) {
        QDict *e = qobject_to(QDict, qlist_entry_obj(me));
        uint64_t iova = qdict_get_u64(e, "iova");
        uint64_t size = qdict_get_u64(e, "size");
        g_autofree char *hsize = size_to_str(size);
        g_autofree char *state = NULL;
        g_autofree char *want = NULL;

        if (qdict_haskey(e, "reason")) {
            state = g_strdup_printf("skipped: %s",
                                    strcmp(qdict_get_str(e, "reason"),
                                           "unaligned") ? "outside IOVA"
                                                        : "unaligned");
        } else if (qdict_haskey(e, "errno")) {
            state = g_strdup_printf("failed: %s", qdict_get_str(e, "error"));
        } else {
            state = g_strdup(qdict_get_str(e, "state"));
        }
        want = g_strdup_printf("  0x%012" PRIx64 " %8s %-2s %-25s %s",
                               iova, hsize, qdict_get_bool(e, "read-only") ?
                               "r" : "rw", state,
                               qdict_get_str(e, "backing"));
        /* it fits in 100 columns, unless names are long */
        g_assert_cmpint(strlen(want), <=, 100);
        for (i = 0; lines[i]; i++) {
            if (!used[i] && !strcmp(lines[i], want)) {
                used[i] = true;
                break;
            }
        }
        if (!lines[i]) {
            g_error("info vfio-dma lacks the line \"%s\"; it shows:\n%s",
                    want, out);
        }
    }
}
