/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: libqos-style helpers to run vfio-pci qtests on the emulation
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include <linux/vfio.h>

#include "qemu/units.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/pci_regs.h"
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

static void program_root_port(VfioEmuQTest *t, VfioEmuQDev *d)
{
    g_autofree QPCIDevice *rp = NULL;
    uint64_t m32 = VFIO_EMU_QTEST_MEM32(d->index);
    uint64_t m64 = VFIO_EMU_QTEST_MEM64(d->index);
    uint64_t m32_last = m32 + MEM32_WINDOW_SIZE - 1;
    uint64_t m64_last = m64 + MEM64_WINDOW_SIZE - 1;

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
    size_bars(t, d);
}

void vfio_emu_qtest_start(VfioEmuQTest *t, const char *extra_args)
{
    const char *preload = g_getenv("VFIO_EMU_PRELOAD");
    g_autoptr(GString) args = g_string_new("");
    int i;

    g_assert_true(g_file_set_contents(t->config, t->config_text->str, -1,
                                      NULL));
    g_string_append_printf(args, "-machine q35 -m %" PRIu64 "M -nodefaults",
                           t->ram_size / MiB);
    for (i = 0; i < t->ndevs; i++) {
        VfioEmuQDev *d = &t->devs[i];

        g_string_append_printf(args, " -device pcie-root-port,id=%s,"
                               "chassis=%d,addr=%x.0 -device vfio-pci,"
                               "sysfsdev=%s,bus=%s,addr=0.0,id=%s",
                               d->port, i + 1, ROOT_PORT_SLOT + i, d->sysfs,
                               d->port, d->id);
    }
    if (extra_args) {
        g_string_append_printf(args, " %s", extra_args);
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
    for (i = 0; i < VFIO_EMU_QTEST_NUM_BARS; i++) {
        d->bar_addr[i] = VFIO_EMU_QTEST_UNMAPPED;
    }
}

void vfio_emu_qtest_replug(VfioEmuQTest *t, VfioEmuQDev *d)
{
    g_assert_null(d->pdev);
    qtest_qmp_device_add(t->qts, "vfio-pci", d->id,
                         "{'sysfsdev': %s, 'bus': %s, 'addr': '0.0'}",
                         d->sysfs, d->port);
    find_device(t, d);
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
        d = find_qdev(t, name);
        g_assert_nonnull(d);
        if (!d->pdev || !d->decoding ||
            d->bar_addr[bar] == VFIO_EMU_QTEST_UNMAPPED) {
            g_error("mapping iova=0x%" PRIx64 " of %s outlived its section",
                    m->iova, m->backing);
        }
        /* a sub-page BAR may be mapped as a whole page */
        bar_size = MAX(d->bar_size[bar], qemu_real_host_page_size());
        g_assert_cmphex(m->iova, ==, d->bar_addr[bar] + off);
        g_assert_cmphex(off + m->size, <=, bar_size);
    }
}
