/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * Smoke test of vfio-pci against the vfio-emu emulation of the VFIO UAPI
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * QEMU runs with libvfio-emu.so preloaded (its path comes from the
 * VFIO_EMU_PRELOAD environment variable that meson sets), which plays the
 * kernel for one emulated vfio-pci device.  The device must realize and
 * the container's memory listener must map guest RAM.
 */

#include "qemu/osdep.h"
#include <linux/vfio.h>

#include "qemu/units.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "standard-headers/linux/pci_regs.h"
#include "vfio-emu/vfio-emu-state.h"

#define DEV "0000:01:00.0"

static char *make_tmp_dir(void)
{
    g_autoptr(GError) err = NULL;
    char *dir = g_dir_make_tmp("vfio-emu-test-XXXXXX", &err);

    g_assert_no_error(err);
    return dir;
}

static void test_smoke(void)
{
    const char *preload = g_getenv("VFIO_EMU_PRELOAD");
    g_autofree char *dir = make_tmp_dir();
    g_autofree char *state = g_build_filename(dir, "state", NULL);
    g_autofree char *config = g_build_filename(dir, "config", NULL);
    g_autofree char *sysfs = g_build_filename(dir, "sys", DEV, NULL);
    g_autofree char *link = g_build_filename(sysfs, "iommu_group", NULL);
    g_autofree char *cmd = NULL;
    g_autoptr(GArray) m = NULL;
    g_autoptr(GArray) ev = NULL;
    const VfioEmuMapping *low, *high;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    bool opened = false;
    int i, maps = 0;

    if (!preload) {
        g_test_skip("VFIO_EMU_PRELOAD is not set");
        return;
    }
    g_assert_cmpint(g_mkdir_with_parents(state, 0700), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(sysfs, 0700), ==, 0);
    g_assert_cmpint(symlink("../../kernel/iommu_groups/7", link), ==, 0);
    g_assert_true(g_file_set_contents(config,
                                      "[device " DEV "]\n"
                                      "group = 7\n"
                                      "vendor_id = 0x1b36\n"
                                      "device_id = 0x10f0\n"
                                      "bar0 = 0x4000 mem64\n"
                                      "msix_entries = 4\n"
                                      "msix_table = 0:0x2000\n", -1, NULL));

    g_setenv("VFIO_EMU_CONFIG", config, true);
    g_setenv("VFIO_EMU_STATE", state, true);
    g_setenv("LD_PRELOAD", preload, true);
    qts = qtest_initf("-machine q35 -m 512M -nodefaults "
                      "-device vfio-pci,sysfsdev=%s,addr=04.0,id=vfio0",
                      sysfs);
    g_unsetenv("LD_PRELOAD");

    /* The device realized: the guest sees its IDs and its BAR */
    bus = qpci_new_pc(qts, NULL);
    dev = qpci_device_find(bus, QPCI_DEVFN(4, 0));
    g_assert_nonnull(dev);
    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==, 0x1b36);
    g_assert_cmphex(qpci_config_readw(dev, PCI_DEVICE_ID), ==, 0x10f0);
    g_assert_cmphex(qpci_config_readl(dev, PCI_BASE_ADDRESS_0), ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_64);

    /* Guest RAM is mapped, below the legacy VGA hole and above 1 MiB */
    m = vfio_emu_read_mappings(state);
    low = vfio_emu_find_mapping(m, 0, 0x9ffff);
    g_assert_nonnull(low);
    g_assert_cmpstr(low->backing, ==, "ram");
    g_assert_cmphex(low->flags, ==,
                    VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    high = vfio_emu_find_mapping(m, 0x100000, 512 * MiB - 1);
    g_assert_nonnull(high);
    g_assert_cmpstr(high->backing, ==, "ram");
    g_assert_cmpint(high->container, ==, 1);
    /* the same guest RAM block backs both */
    g_assert_cmphex(high->vaddr - high->iova, ==, low->vaddr - low->iova);

    ev = vfio_emu_read_events(state);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "MAP")) {
            g_assert_cmpint(e->ret, ==, 0);
            maps++;
        } else if (!strcmp(e->op, "DEVICE_OPEN")) {
            g_assert_cmpstr(e->device, ==, DEV);
            opened = true;
        }
    }
    g_assert_cmpint(maps, >=, m->len);
    g_assert_true(opened);

    g_free(dev);
    qpci_free_pc(bus);
    qtest_quit(qts);

    cmd = g_strdup_printf("rm -rf '%s'", dir);
    g_assert_cmpint(system(cmd), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/vfio-emu/smoke", test_smoke);

    return g_test_run();
}
