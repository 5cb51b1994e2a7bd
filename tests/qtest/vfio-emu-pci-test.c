/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-pci DMA mapping behaviour, against the vfio-emu emulation
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * These tests pin what the VFIO memory listener maps into the IOMMU and
 * when: guest RAM at startup, BARs once memory decoding is on (with 4 KiB
 * IOMMU pages), their removal when decoding goes off, a BAR move, hot-unplug
 * and plug, and two devices sharing a container.  After every step the
 * mapping table must agree with what the test programmed.
 */

#include "qemu/osdep.h"
#include <linux/vfio.h>

#include "qemu/units.h"
#include "standard-headers/linux/pci_regs.h"
#include "vfio-emu/vfio-emu-qtest.h"

#define RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/* bar0: 64-bit prefetchable with the MSI-X table and PBA; bar2: 32-bit */
#define DEV_KEYS                                \
    "bar0 = 0x4000 mem64 prefetch\n"            \
    "bar2 = 0x1000\n"                           \
    "msix_entries = 4\n"                        \
    "msix_table = 0:0x2000\n"                   \
    "msix_pba = 0:0x3000\n"

static void assert_no_failed_calls(GArray *ev)
{
    int i;

    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "MAP") || !strcmp(e->op, "UNMAP")) {
            g_assert_cmpint(e->ret, ==, 0);
        }
    }
}

static int count_ops(GArray *ev, const char *op)
{
    int i, n = 0;

    for (i = 0; i < ev->len; i++) {
        n += !strcmp(g_array_index(ev, VfioEmuEvent, i).op, op);
    }
    return n;
}

/* Assert the mappings of @bar of @d are exactly the [start, end) pairs */
static void assert_bar_mapped(VfioEmuQTest *t, VfioEmuQDev *d, int bar,
                              const uint64_t (*ranges)[2], int n)
{
    g_autoptr(GArray) m = vfio_emu_qtest_mappings_of(t, d, bar);
    int i;

    g_assert_cmpint(m->len, ==, n);
    for (i = 0; i < n; i++) {
        VfioEmuMapping *e = &g_array_index(m, VfioEmuMapping, i);
        g_autofree char *want = g_strdup_printf("%s:bar%d+0x%" PRIx64,
                                                d->name, bar, ranges[i][0]);

        g_assert_cmphex(e->iova, ==, d->bar_addr[bar] + ranges[i][0]);
        g_assert_cmphex(e->size, ==, ranges[i][1] - ranges[i][0]);
        g_assert_cmpstr(e->backing, ==, want);
        g_assert_cmphex(e->flags, ==, RW);
        /* 4 KiB IOMMU pages: page-aligned iova and size */
        g_assert_cmphex(e->iova & 0xfff, ==, 0);
        g_assert_cmphex(e->size & 0xfff, ==, 0);
    }
}

static void assert_unmapped(VfioEmuQTest *t, VfioEmuQDev *d)
{
    g_autoptr(GArray) m = vfio_emu_qtest_mappings_of(t, d, -1);

    g_assert_cmpint(m->len, ==, 0);
}

/* bar0 minus the MSI-X table's page (QEMU emulates it), bar2 whole */
static const uint64_t bar0_ranges[][2] = { { 0, 0x2000 }, { 0x3000, 0x4000 } };
static const uint64_t bar2_ranges[][2] = { { 0, 0x1000 } };

static void program_bars(VfioEmuQTest *t, VfioEmuQDev *d)
{
    vfio_emu_qtest_set_bar(t, d, 0, VFIO_EMU_QTEST_MEM64(d->index));
    vfio_emu_qtest_set_bar(t, d, 2, VFIO_EMU_QTEST_MEM32(d->index));
}

static void assert_bars_mapped(VfioEmuQTest *t, VfioEmuQDev *d)
{
    assert_bar_mapped(t, d, 0, bar0_ranges, ARRAY_SIZE(bar0_ranges));
    assert_bar_mapped(t, d, 2, bar2_ranges, ARRAY_SIZE(bar2_ranges));
}

/* Guest RAM below and above 4 GiB, as q35 lays it out, at startup */
static void test_ram_layout(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(4 * GiB);
    g_autoptr(GArray) ram = NULL;
    g_autoptr(GArray) ev = NULL;
    const VfioEmuMapping *low, *high, *above;
    int i;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_device(t, 10, DEV_KEYS);
    vfio_emu_qtest_start(t, NULL);

    ram = vfio_emu_qtest_mappings_of(t, NULL, -1);
    low = vfio_emu_find_mapping(ram, 0, 0x9ffff);
    high = vfio_emu_find_mapping(ram, 1 * MiB, 2 * GiB - 1);
    above = vfio_emu_find_mapping(ram, 4 * GiB, 6 * GiB - 1);
    g_assert_nonnull(low);
    g_assert_nonnull(high);
    g_assert_nonnull(above);
    g_assert_cmphex(low->flags, ==, RW);
    g_assert_cmphex(high->flags, ==, RW);
    g_assert_cmphex(above->flags, ==, RW);
    /* nothing writable in the PCI hole or beyond the end of RAM */
    for (i = 0; i < ram->len; i++) {
        VfioEmuMapping *m = &g_array_index(ram, VfioEmuMapping, i);

        if (m->flags == RW) {
            g_assert_true(m->iova + m->size <= 2 * GiB ||
                          (m->iova >= 4 * GiB &&
                           m->iova + m->size <= 6 * GiB));
        }
    }
    /* no BAR is mapped before the guest programs it */
    assert_unmapped(t, &t->devs[0]);

    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "CONTAINER_OPEN"), ==, 1);
    g_assert_cmpint(count_ops(ev, "DEVICE_OPEN"), ==, 1);
    vfio_emu_qtest_check_invariants(t);
    vfio_emu_qtest_free(t);
}

static void do_test_decoding(const char *keys)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autoptr(GArray) ram_before = NULL;
    g_autoptr(GArray) ram_after = NULL;
    g_autoptr(GArray) ev = NULL;
    VfioEmuQDev *d;
    int i;

    if (!t) {
        return;
    }
    d = vfio_emu_qtest_add_device(t, 10, keys);
    vfio_emu_qtest_start(t, NULL);
    g_assert_cmphex(d->bar_size[0], ==, 0x4000);
    g_assert_true(d->bar_mem64[0]);
    g_assert_cmphex(d->bar_size[2], ==, 0x1000);
    ram_before = vfio_emu_qtest_mappings_of(t, NULL, -1);

    /* Programmed but not decoding: nothing mapped */
    program_bars(t, d);
    assert_unmapped(t, d);
    vfio_emu_qtest_check_invariants(t);
    g_array_unref(vfio_emu_qtest_take_events(t));

    /* Decoding on: both BARs mapped, only MAPs */
    vfio_emu_qtest_set_decoding(t, d, true);
    assert_bars_mapped(t, d);
    vfio_emu_qtest_check_invariants(t);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "MAP"), ==, 3);
    g_assert_cmpint(count_ops(ev, "UNMAP"), ==, 0);

    /* Decoding off: all unmapped, each mapping in one call; RAM stays */
    vfio_emu_qtest_set_decoding(t, d, false);
    assert_unmapped(t, d);
    vfio_emu_qtest_check_invariants(t);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "MAP"), ==, 0);
    g_assert_cmpint(count_ops(ev, "UNMAP"), ==, 3);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "UNMAP")) {
            g_assert_cmphex(e->unmapped, ==, e->size);
        }
    }
    ram_after = vfio_emu_qtest_mappings_of(t, NULL, -1);
    g_assert_cmpint(ram_after->len, ==, ram_before->len);
    for (i = 0; i < ram_after->len; i++) {
        g_assert_cmphex(g_array_index(ram_after, VfioEmuMapping, i).iova, ==,
                        g_array_index(ram_before, VfioEmuMapping, i).iova);
        g_assert_cmphex(g_array_index(ram_after, VfioEmuMapping, i).size, ==,
                        g_array_index(ram_before, VfioEmuMapping, i).size);
    }

    /* And on again */
    vfio_emu_qtest_set_decoding(t, d, true);
    assert_bars_mapped(t, d);
    vfio_emu_qtest_check_invariants(t);
    vfio_emu_qtest_free(t);
}

static void test_decoding(void)
{
    do_test_decoding(DEV_KEYS);
}

/* Without MSIX_MAPPABLE the kernel's sparse areas leave out the table */
static void test_decoding_sparse(void)
{
    do_test_decoding(DEV_KEYS "msix_mappable = false\n");
}

static void test_bar_move(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autoptr(GArray) ev = NULL;
    VfioEmuQDev *d;
    uint64_t old2, old0;
    int i;

    if (!t) {
        return;
    }
    d = vfio_emu_qtest_add_device(t, 10, DEV_KEYS);
    vfio_emu_qtest_start(t, NULL);
    program_bars(t, d);
    vfio_emu_qtest_set_decoding(t, d, true);
    assert_bars_mapped(t, d);
    g_array_unref(vfio_emu_qtest_take_events(t));

    /* Move the 32-bit BAR while decoding: old unmapped, new mapped */
    old2 = d->bar_addr[2];
    vfio_emu_qtest_set_bar(t, d, 2, old2 + 0x100000);
    assert_bars_mapped(t, d);
    vfio_emu_qtest_check_invariants(t);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "UNMAP"), ==, 1);
    g_assert_cmpint(count_ops(ev, "MAP"), ==, 1);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "UNMAP")) {
            g_assert_cmphex(e->iova, ==, old2);
            g_assert_cmphex(e->unmapped, ==, 0x1000);
        } else if (!strcmp(e->op, "MAP")) {
            g_assert_cmphex(e->iova, ==, old2 + 0x100000);
        }
    }

    /* Move the 64-bit BAR within its window (same upper half) */
    old0 = d->bar_addr[0];
    vfio_emu_qtest_set_bar(t, d, 0, old0 + 0x10000);
    assert_bars_mapped(t, d);
    vfio_emu_qtest_check_invariants(t);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "UNMAP"), ==, 2);
    g_assert_cmpint(count_ops(ev, "MAP"), ==, 2);
    vfio_emu_qtest_free(t);
}

static void test_two_devices(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) all = NULL;
    int i;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_device(t, 10, DEV_KEYS);
    vfio_emu_qtest_add_device(t, 11, DEV_KEYS);
    vfio_emu_qtest_start(t, NULL);

    /* One container for both groups */
    ev = vfio_emu_qtest_take_events(t);
    g_assert_cmpint(count_ops(ev, "CONTAINER_OPEN"), ==, 1);
    g_assert_cmpint(count_ops(ev, "GROUP_SET_CONTAINER"), ==, 2);
    g_assert_cmpint(count_ops(ev, "SET_IOMMU"), ==, 1);

    for (i = 0; i < 2; i++) {
        program_bars(t, &t->devs[i]);
        vfio_emu_qtest_set_decoding(t, &t->devs[i], true);
    }
    for (i = 0; i < 2; i++) {
        assert_bars_mapped(t, &t->devs[i]);
    }
    vfio_emu_qtest_check_invariants(t);
    all = vfio_emu_qtest_mappings(t);
    for (i = 0; i < all->len; i++) {
        g_assert_cmpint(g_array_index(all, VfioEmuMapping, i).container, ==,
                        1);
    }
    vfio_emu_qtest_free(t);
}

static void test_hotplug(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) m = NULL;
    VfioEmuQDev *a, *b;

    if (!t) {
        return;
    }
    a = vfio_emu_qtest_add_device(t, 10, DEV_KEYS);
    b = vfio_emu_qtest_add_device(t, 11, DEV_KEYS);
    vfio_emu_qtest_start(t, NULL);
    program_bars(t, a);
    program_bars(t, b);
    vfio_emu_qtest_set_decoding(t, a, true);
    vfio_emu_qtest_set_decoding(t, b, true);
    assert_bars_mapped(t, a);
    assert_bars_mapped(t, b);
    g_array_unref(vfio_emu_qtest_take_events(t));

    /* Unplug a while it decodes: nothing of it is left mapped */
    vfio_emu_qtest_unplug(t, a);
    assert_unmapped(t, a);
    assert_bars_mapped(t, b);
    vfio_emu_qtest_check_invariants(t);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "DEVICE_CLOSE"), ==, 1);
    g_assert_cmpint(count_ops(ev, "GROUP_UNSET_CONTAINER"), ==, 1);
    g_assert_cmpint(count_ops(ev, "RELEASE"), ==, 0);

    /* Plug it back: it joins the container, BARs unprogrammed */
    vfio_emu_qtest_replug(t, a);
    assert_unmapped(t, a);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    g_assert_cmpint(count_ops(ev, "DEVICE_OPEN"), ==, 1);
    g_assert_cmpint(count_ops(ev, "GROUP_SET_CONTAINER"), ==, 1);
    g_assert_cmpint(count_ops(ev, "CONTAINER_OPEN"), ==, 0);
    program_bars(t, a);
    vfio_emu_qtest_set_decoding(t, a, true);
    assert_bars_mapped(t, a);
    vfio_emu_qtest_check_invariants(t);

    /* Unplug both: the last group leaves and the container goes away */
    vfio_emu_qtest_unplug(t, a);
    vfio_emu_qtest_unplug(t, b);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "RELEASE"), ==, 1);
    m = vfio_emu_qtest_mappings(t);
    g_assert_cmpint(m->len, ==, 0);

    /* A plug into an empty machine sets a container up again */
    vfio_emu_qtest_replug(t, b);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    assert_no_failed_calls(ev);
    g_assert_cmpint(count_ops(ev, "CONTAINER_OPEN"), ==, 1);
    g_assert_cmpint(count_ops(ev, "MAP"), >, 0);
    program_bars(t, b);
    vfio_emu_qtest_set_decoding(t, b, true);
    assert_bars_mapped(t, b);
    vfio_emu_qtest_check_invariants(t);
    vfio_emu_qtest_free(t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/vfio-emu/pci/ram-layout", test_ram_layout);
    qtest_add_func("/vfio-emu/pci/decoding", test_decoding);
    qtest_add_func("/vfio-emu/pci/decoding-sparse", test_decoding_sparse);
    qtest_add_func("/vfio-emu/pci/bar-move", test_bar_move);
    qtest_add_func("/vfio-emu/pci/two-devices", test_two_devices);
    qtest_add_func("/vfio-emu/pci/hotplug", test_hotplug);

    return g_test_run();
}
