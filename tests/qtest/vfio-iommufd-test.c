/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-pci on the iommufd backend, against the vfio-emu emulation
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The VFIO memory listener serves the legacy container and iommufd alike.
 * On iommufd, IOMMU_IOAS_MAP of a BAR mmap fails with EFAULT (the kernel
 * cannot pin a PFNMAP VMA): QEMU must keep running, say so once per BAR
 * with a hint, show the BARs as failed in x-query-vfio-dma-mappings, and
 * never try to unmap what it could not map (IOMMU_IOAS_UNMAP would fail
 * with ENOENT).  Guest RAM must be mapped, and hot-unplug must leave
 * nothing behind.  Guest RAM in a memfd is mapped by its fd
 * (IOMMU_IOAS_MAP_FILE, QEMU 10.1 and later) and unmapped by the record
 * like any other.  QEMU's stderr is checked message by message: nothing
 * but those warnings.
 */

#include "qemu/osdep.h"
#include <linux/vfio.h>

#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "vfio-emu/vfio-emu-qtest.h"

#define DEV_NAME "0000:01:00.0"

/* bar0: 64-bit prefetchable with the MSI-X table and PBA; bar2: 32-bit */
#define DEV_KEYS                                \
    "bar0 = 0x4000 mem64 prefetch\n"            \
    "bar2 = 0x1000\n"                           \
    "msix_entries = 4\n"                        \
    "msix_table = 0:0x2000\n"                   \
    "msix_pba = 0:0x3000\n"

/* What QEMU tries to map of the BARs: bar0 but the MSI-X table's page */
#define BAR_MAPS_PER_DECODE 3

#define HINT "the iommufd backend cannot map device memory on this host " \
             "kernel; the legacy VFIO container can"

typedef struct Test {
    VfioEmuQTest *t;
} Test;

static bool test_start_args(Test *s, uint64_t ram_size, const char *args)
{
    s->t = vfio_emu_qtest_new(ram_size);
    if (!s->t) {
        return false;
    }
    vfio_emu_qtest_add_device(s->t, 10, DEV_KEYS);
    vfio_emu_qtest_use_iommufd(s->t);
    vfio_emu_qtest_capture_stderr(s->t);
    vfio_emu_qtest_start(s->t, args);
    return true;
}

static bool test_start(Test *s, uint64_t ram_size)
{
    return test_start_args(s, ram_size, NULL);
}

/* BAR 0 at VFIO_EMU_QTEST_MEM64(0), but its MSI-X table's page */
#define BAR0_RANGES "0x4000000000-0x4000001fff, 0x4000003000-0x4000003fff"
/* BAR 2 at VFIO_EMU_QTEST_MEM32(0) */
#define BAR2_RANGES "0xe0000000-0xe0000fff"

/*
 * Every message QEMU printed is one of the listener's warnings about the
 * device: that the map of BAR 0 and of BAR 2 failed, @n times each, with
 * the iommufd hint.  The rest of the MSI-X table's page in BAR 0 is not
 * aligned, but only the query says so.
 */
static void assert_stderr(Test *s, int n)
{
    g_auto(GStrv) msgs = vfio_emu_qtest_take_messages(s->t);
    int i, n0 = 0, n2 = 0;

    for (i = 0; msgs[i]; i++) {
        VfioEmuQWarning w;

        g_test_message("QEMU stderr: %s", msgs[i]);
        if (!vfio_emu_qtest_parse_warning(msgs[i], &w) ||
            strcmp(w.device, "vfio-pci 'vfio0' (" DEV_NAME ")") ||
            strcmp(w.cause, "the host refused to map it (Bad address)") ||
            !g_str_has_prefix(w.hint, HINT)) {
            g_error("unexpected message from QEMU: %s", msgs[i]);
        }
        if (!strcmp(w.region, "BAR 0") && !strcmp(w.ranges, BAR0_RANGES) &&
            !strcmp(w.size, "12 KiB")) {
            n0++;
        } else if (!strcmp(w.region, "BAR 2") &&
                   !strcmp(w.ranges, BAR2_RANGES) &&
                   !strcmp(w.size, "4 KiB")) {
            n2++;
        } else {
            g_error("unexpected message from QEMU: %s", msgs[i]);
        }
        vfio_emu_qtest_warning_clear(&w);
    }
    g_assert_cmpint(n0, ==, n);
    g_assert_cmpint(n2, ==, n);
}

/* Quit QEMU, then check all it printed (see assert_stderr()) */
static void test_end(Test *s, int warnings)
{
    qtest_quit(s->t->qts);
    s->t->qts = NULL;
    assert_stderr(s, warnings);
    vfio_emu_qtest_free(s->t);
}

static int count_ops(GArray *ev, const char *op)
{
    int i, n = 0;

    for (i = 0; i < ev->len; i++) {
        n += !strcmp(g_array_index(ev, VfioEmuEvent, i).op, op);
    }
    return n;
}

/* IOAS_MAPs of @d's BARs; all must have failed with EFAULT */
static int count_failed_bar_maps(GArray *ev, VfioEmuQDev *d)
{
    int i, n = 0;

    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);
        g_autofree char *dev = NULL;
        uint64_t off;
        int bar;

        if (strcmp(e->op, "IOAS_MAP") ||
            !vfio_emu_backing_bar(e->backing, &dev, &bar, &off)) {
            continue;
        }
        g_assert_cmpstr(dev, ==, d->name);
        g_assert_cmpint(e->ret, ==, -EFAULT);
        g_assert_false(e->injected);
        g_assert_cmphex(e->iova, ==, d->bar_addr[bar] + off);
        n++;
    }
    return n;
}

/* Guest RAM maps and every unmap succeed */
static void assert_ram_calls_ok(GArray *ev)
{
    int i;

    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "IOAS_UNMAP") ||
            (!strcmp(e->op, "IOAS_MAP") && !strcmp(e->backing, "ram"))) {
            g_assert_cmpint(e->ret, ==, 0);
        }
    }
}

/* No IOMMU_IOAS_UNMAP touched the BAR windows @addr[] of @size[] */
static void assert_no_bar_unmap(GArray *ev, const uint64_t *addr,
                                const uint64_t *size)
{
    int i, bar;

    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (strcmp(e->op, "IOAS_UNMAP")) {
            continue;
        }
        g_assert_cmpint(e->ret, !=, -ENOENT);
        for (bar = 0; bar < VFIO_EMU_QTEST_NUM_BARS; bar++) {
            if (addr[bar] != VFIO_EMU_QTEST_UNMAPPED) {
                g_assert_true(e->iova + e->size <= addr[bar] ||
                              e->iova >= addr[bar] + size[bar]);
            }
        }
    }
}

/* The BAR of @d that @iova is in */
static int bar_of(VfioEmuQDev *d, uint64_t iova)
{
    int bar;

    for (bar = 0; bar < VFIO_EMU_QTEST_NUM_BARS; bar++) {
        if (d->bar_addr[bar] != VFIO_EMU_QTEST_UNMAPPED &&
            iova >= d->bar_addr[bar] &&
            iova - d->bar_addr[bar] < d->bar_size[bar]) {
            return bar;
        }
    }
    g_error("iova 0x%" PRIx64 " is in no BAR of %s", iova, d->name);
}

static void program_bars(VfioEmuQTest *t, VfioEmuQDev *d)
{
    vfio_emu_qtest_set_bar(t, d, 0, VFIO_EMU_QTEST_MEM64(d->index));
    vfio_emu_qtest_set_bar(t, d, 2, VFIO_EMU_QTEST_MEM32(d->index));
}

/* x-query-vfio-dma-mappings: the one container; unref it */
static QDict *query_container(VfioEmuQTest *t)
{
    QDict *resp = qtest_qmp(t->qts, "{'execute': "
                            "'x-query-vfio-dma-mappings'}");
    QList *list = qdict_get_qlist(resp, "return");
    QDict *c;

    g_assert_nonnull(list);
    g_assert_cmpint(qlist_size(list), ==, 1);
    c = qobject_to(QDict, qlist_peek(list));
    qobject_ref(c);
    qobject_unref(resp);
    g_assert_cmpstr(qdict_get_str(c, "backend"), ==, "iommufd");
    return c;
}

/*
 * The container's RAM device ranges: @failed ranges of @d's BARs whose map
 * failed with EFAULT, @skipped unaligned ones of BAR 0's MSI-X table page.
 */
static void assert_bar_entries(QDict *c, VfioEmuQDev *d, int failed,
                               int skipped)
{
    QList *maps = qdict_get_qlist(c, "mappings");
    QListEntry *entry;
    int nfailed = 0, nskipped = 0;

    QLIST_FOREACH_ENTRY(maps, entry) {
        QDict *m = qobject_to(QDict, qlist_entry_obj(entry));
        uint64_t iova = qdict_get_int(m, "iova");
        const char *state = qdict_get_str(m, "state");
        g_autofree char *backing = NULL;
        int bar;

        if (!qdict_get_bool(m, "ram-device")) {
            g_assert_cmpstr(state, ==, "mapped");
            continue;
        }
        bar = bar_of(d, iova);
        backing = g_strdup_printf("vfio-pci '%s' (%s) BAR %d", d->id,
                                  d->name, bar);
        g_assert_cmpstr(qdict_get_str(m, "backing"), ==, backing);
        if (!strcmp(state, "skipped")) {
            g_assert_cmpstr(qdict_get_str(m, "reason"), ==, "unaligned");
            g_assert_cmpint(bar, ==, 0);
            g_assert_cmphex(iova & ~0xfffULL, ==, d->bar_addr[0] + 0x2000);
            nskipped++;
            continue;
        }
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpint(qdict_get_int(m, "errno"), ==, EFAULT);
        g_assert_cmpstr(qdict_get_str(m, "error"), ==, strerror(EFAULT));
        nfailed++;
    }
    g_assert_cmpint(nfailed, ==, failed);
    g_assert_cmpint(nskipped, ==, skipped);
}

static void assert_running(VfioEmuQTest *t)
{
    QDict *resp = qtest_qmp(t->qts, "{'execute': 'query-status'}");

    g_assert_true(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* Startup: the IOAS holds guest RAM, nothing of the BARs, no message */
static void test_ram(void)
{
    Test s = { 0 };
    g_autoptr(GArray) ram = NULL;
    g_autoptr(GArray) bars = NULL;
    g_autoptr(GArray) ev = NULL;
    QDict *c;

    if (!test_start(&s, 512 * MiB)) {
        return;
    }
    ev = vfio_emu_qtest_take_events(s.t);
    g_assert_cmpint(count_ops(ev, "IOMMUFD_OPEN"), ==, 1);
    g_assert_cmpint(count_ops(ev, "DEVICE_BIND"), ==, 1);
    g_assert_cmpint(count_ops(ev, "IOAS_ALLOC"), ==, 1);
    g_assert_cmpint(count_ops(ev, "HWPT_ALLOC"), ==, 1);
    g_assert_cmpint(count_ops(ev, "DEVICE_ATTACH"), ==, 1);
    g_assert_cmpint(count_ops(ev, "CONTAINER_OPEN"), ==, 0);
    g_assert_cmpint(count_ops(ev, "MAP"), ==, 0);
    assert_ram_calls_ok(ev);

    ram = vfio_emu_qtest_mappings_of(s.t, NULL, -1);
    g_assert_nonnull(vfio_emu_find_mapping(ram, 0, 0x9ffff));
    g_assert_nonnull(vfio_emu_find_mapping(ram, 1 * MiB, 512 * MiB - 1));
    bars = vfio_emu_qtest_mappings_of(s.t, &s.t->devs[0], -1);
    g_assert_cmpint(bars->len, ==, 0);
    vfio_emu_qtest_check_invariants(s.t);

    qobject_unref(vfio_emu_qtest_check_qmp(s.t));
    c = query_container(s.t);
    assert_bar_entries(c, &s.t->devs[0], 0, 0);
    g_assert_cmpint(qdict_get_int(c, "min-page-size"), ==, 4096);
    qobject_unref(c);

    test_end(&s, 0);
}

/*
 * Decoding on: each BAR map fails with EFAULT, QEMU runs on and warns once
 * per BAR; off and on again: no unmap of what failed, no new warning.
 */
static void test_bar_efault(void)
{
    Test s = { 0 };
    g_autoptr(GArray) ram = NULL;
    g_autoptr(GArray) ram_after = NULL;
    VfioEmuQDev *d;
    QDict *c;
    int cycle;

    if (!test_start(&s, 512 * MiB)) {
        return;
    }
    d = &s.t->devs[0];
    program_bars(s.t, d);
    ram = vfio_emu_qtest_mappings_of(s.t, NULL, -1);
    g_array_unref(vfio_emu_qtest_take_events(s.t));

    for (cycle = 0; cycle < 3; cycle++) {
        g_autoptr(GArray) ev = NULL;
        g_autoptr(GArray) bars = NULL;

        vfio_emu_qtest_set_decoding(s.t, d, true);
        ev = vfio_emu_qtest_take_events(s.t);
        g_assert_cmpint(count_failed_bar_maps(ev, d), ==,
                        BAR_MAPS_PER_DECODE);
        assert_ram_calls_ok(ev);
        bars = vfio_emu_qtest_mappings_of(s.t, d, -1);
        g_assert_cmpint(bars->len, ==, 0);
        assert_running(s.t);
        qobject_unref(vfio_emu_qtest_check_qmp(s.t));
        c = query_container(s.t);
        assert_bar_entries(c, d, BAR_MAPS_PER_DECODE, 1);
        qobject_unref(c);

        vfio_emu_qtest_set_decoding(s.t, d, false);
        g_array_unref(ev);
        ev = vfio_emu_qtest_take_events(s.t);
        assert_no_bar_unmap(ev, d->bar_addr, d->bar_size);
        g_assert_cmpint(count_ops(ev, "IOAS_UNMAP"), ==, 0);
        g_assert_cmpint(count_ops(ev, "IOAS_MAP"), ==, 0);
        c = query_container(s.t);
        assert_bar_entries(c, d, 0, 0);
        qobject_unref(c);
        vfio_emu_qtest_check_invariants(s.t);
    }

    /* Guest RAM is as it was */
    ram_after = vfio_emu_qtest_mappings_of(s.t, NULL, -1);
    g_assert_cmpint(ram_after->len, ==, ram->len);
    test_end(&s, 1);
}

/*
 * Hot-unplug while the BARs decode: the IOAS is emptied by successful
 * unmaps of guest RAM only, then destroyed, and the device unbound;
 * plugged back, the device works as before and warns again.
 */
static void test_unplug(void)
{
    Test s = { 0 };
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) m = NULL;
    uint64_t addr[VFIO_EMU_QTEST_NUM_BARS];
    VfioEmuQDev *d;

    if (!test_start(&s, 512 * MiB)) {
        return;
    }
    d = &s.t->devs[0];
    program_bars(s.t, d);
    vfio_emu_qtest_set_decoding(s.t, d, true);
    g_array_unref(vfio_emu_qtest_take_events(s.t));

    memcpy(addr, d->bar_addr, sizeof(addr));
    vfio_emu_qtest_unplug(s.t, d);
    ev = vfio_emu_qtest_take_events(s.t);
    assert_ram_calls_ok(ev);
    assert_no_bar_unmap(ev, addr, d->bar_size);
    g_assert_cmpint(count_ops(ev, "IOAS_UNMAP"), >, 0);
    g_assert_cmpint(count_ops(ev, "DEVICE_DETACH"), ==, 1);
    g_assert_cmpint(count_ops(ev, "DESTROY"), ==, 2);
    g_assert_cmpint(count_ops(ev, "DEVICE_UNBIND"), ==, 1);
    /* QEMU unmapped all it had mapped itself */
    g_assert_cmpint(count_ops(ev, "RELEASE"), ==, 0);
    m = vfio_emu_qtest_mappings(s.t);
    g_assert_cmpint(m->len, ==, 0);
    assert_running(s.t);

    vfio_emu_qtest_replug(s.t, d);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(s.t);
    g_assert_cmpint(count_ops(ev, "DEVICE_BIND"), ==, 1);
    g_assert_cmpint(count_ops(ev, "IOAS_ALLOC"), ==, 1);
    assert_ram_calls_ok(ev);
    program_bars(s.t, d);
    vfio_emu_qtest_set_decoding(s.t, d, true);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(s.t);
    g_assert_cmpint(count_failed_bar_maps(ev, d), ==, BAR_MAPS_PER_DECODE);
    vfio_emu_qtest_check_invariants(s.t);

    memcpy(addr, d->bar_addr, sizeof(addr));
    vfio_emu_qtest_unplug(s.t, d);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(s.t);
    assert_ram_calls_ok(ev);
    assert_no_bar_unmap(ev, addr, d->bar_size);
    g_array_unref(m);
    m = vfio_emu_qtest_mappings(s.t);
    g_assert_cmpint(m->len, ==, 0);
    /* a new device is warned about anew */
    test_end(&s, 2);
}

/*
 * Hot-unplug where the host says it unmapped nothing of guest RAM (its
 * IOMMU_IOAS_UNMAP fails with ENOENT, which the backend takes as 0 bytes
 * unmapped): each recorded range is reported, with its range and region,
 * and kept until the container goes, which it does; QEMU keeps running.
 */
static void test_unplug_unmapped_none(void)
{
    Test s = { 0 };
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) ram = NULL;
    g_auto(GStrv) msgs = NULL;
    VfioEmuQDev *d;
    int i, j;

    if (!test_start(&s, 512 * MiB)) {
        return;
    }
    d = &s.t->devs[0];
    ram = vfio_emu_qtest_mappings(s.t);
    g_assert_cmpint(ram->len, >, 0);
    g_array_unref(vfio_emu_qtest_take_events(s.t));
    vfio_emu_qtest_set_faults(s.t, "[fault none]\nop = unmap\n"
                              "backing = ram\nunmapped = none\n");
    vfio_emu_qtest_unplug(s.t, d);
    ev = vfio_emu_qtest_take_events(s.t);
    /* Nothing was unmapped; the IOAS went with what it held */
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "IOAS_UNMAP")) {
            g_assert_cmpint(e->ret, ==, -ENOENT);
            g_assert_true(e->injected);
        }
    }
    g_assert_cmpint(count_ops(ev, "IOAS_UNMAP"), ==, ram->len);
    g_assert_cmpint(count_ops(ev, "DESTROY"), ==, 2);
    assert_running(s.t);

    msgs = vfio_emu_qtest_take_messages(s.t);
    g_assert_cmpint(g_strv_length(msgs), ==, ram->len);
    for (i = 0; i < ram->len; i++) {
        VfioEmuMapping *m = &g_array_index(ram, VfioEmuMapping, i);
        g_autofree char *want = g_strdup_printf(
            "vfio: the host IOMMU unmapped only 0x0 of the 0x%" PRIx64
            " bytes mapped at guest-physical 0x%" PRIx64 "-0x%" PRIx64 " (",
            m->size, m->iova, m->iova + m->size - 1);

        for (j = 0; msgs[j]; j++) {
            if (strstr(msgs[j], want)) {
                break;
            }
        }
        if (!msgs[j]) {
            g_error("no message \"%s...\"", want);
        }
        g_assert_nonnull(strstr(msgs[j], "); QEMU counts the range as still"
                                " mapped until it is mapped again or the"
                                " container goes away\nThe host's DMA"
                                " mappings are not what QEMU mapped"));
    }
    vfio_emu_qtest_free(s.t);
}

/* Does this QEMU map fd-backed RAM by its fd (IOMMU_IOAS_MAP_FILE)? */
/*
 * Guest RAM in a memfd: QEMU maps it with IOMMU_IOAS_MAP_FILE, which the
 * record covers like any map: every range of guest RAM is mapped once
 * (the table of the IOAS and the query agree), and hot-unplug unmaps
 * exactly those ranges.  IOMMU_IOAS_CHANGE_PROCESS, which QEMU asks at
 * connect time, succeeds while nothing but files is mapped.
 */
static void test_map_file(void)
{
    Test s = { 0 };
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) ram = NULL;
    g_autoptr(GArray) m = NULL;
    QList *mappings;
    QDict *c;
    bool files;
    int i, nfile = 0, nram = 0;

    if (!test_start_args(&s, 512 * MiB,
                         "-object memory-backend-memfd,id=ram0,size=512M "
                         "-machine memory-backend=ram0")) {
        return;
    }
    /* vfio_container_dma_map() takes the MemoryRegion since QEMU 10.1 */
    files = vfio_emu_qtest_qemu_at_least(s.t, 10, 1);
    ev = vfio_emu_qtest_take_events(s.t);
    /*
     * The memfd's ranges (below the VGA window, and from 1 MiB) by their
     * fd; the ROMs (isa-bios, pc.rom, pc.bios) are anonymous RAM.
     */
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);
        bool in_memfd = e->iova < 0xa0000 ||
                        (e->iova >= 1 * MiB && e->iova < 512 * MiB);

        if (!strcmp(e->op, "IOAS_MAP_FILE")) {
            g_assert_cmpint(e->ret, ==, 0);
            g_assert_true(in_memfd);
            nfile++;
        } else if (!strcmp(e->op, "IOAS_MAP") &&
                   !strcmp(e->backing, "ram") && e->ret == 0) {
            g_assert_true(!files || !in_memfd);
            nram++;
        }
    }
    g_assert_cmpint(count_ops(ev, "IOAS_CHANGE_PROCESS"), <=, 1);
    if (files) {
        g_assert_cmpint(nfile, >=, 2);
    } else {
        g_assert_cmpint(nfile, ==, 0);
    }
    assert_ram_calls_ok(ev);

    ram = vfio_emu_qtest_mappings_of(s.t, NULL, -1);
    g_assert_nonnull(vfio_emu_find_mapping(ram, 0, 0x9ffff));
    g_assert_nonnull(vfio_emu_find_mapping(ram, 1 * MiB, 512 * MiB - 1));
    for (i = 0; i < ram->len; i++) {
        const VfioEmuMapping *r = &g_array_index(ram, VfioEmuMapping, i);

        /* the memfd's pages are the file's: no user address */
        if (files && r->iova >= 1 * MiB && r->iova < 512 * MiB) {
            g_assert_cmphex(r->vaddr, ==, 0);
        }
    }
    mappings = vfio_emu_qtest_check_qmp(s.t);
    g_assert_cmpint(qlist_size(mappings), ==, ram->len);
    vfio_emu_qtest_check_hmp(s.t, mappings);
    qobject_unref(mappings);
    c = query_container(s.t);
    assert_bar_entries(c, &s.t->devs[0], 0, 0);
    qobject_unref(c);

    /* unmapped by the record: every range, each with one IOAS_UNMAP */
    vfio_emu_qtest_unplug(s.t, &s.t->devs[0]);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(s.t);
    assert_ram_calls_ok(ev);
    g_assert_cmpint(count_ops(ev, "IOAS_UNMAP"), ==, ram->len);
    g_assert_cmpint(count_ops(ev, "RELEASE"), ==, 0);
    m = vfio_emu_qtest_mappings(s.t);
    g_assert_cmpint(m->len, ==, 0);
    test_end(&s, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/vfio-iommufd/ram", test_ram);
    qtest_add_func("/vfio-iommufd/bar-efault", test_bar_efault);
    qtest_add_func("/vfio-iommufd/unplug", test_unplug);
    qtest_add_func("/vfio-iommufd/unplug-unmapped-none",
                   test_unplug_unmapped_none);
    qtest_add_func("/vfio-iommufd/map-file", test_map_file);

    return g_test_run();
}
