/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: libqos-style helpers to run vfio-pci qtests on the emulation
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * A VfioEmuQTest starts a q35 machine (-accel qtest) with libvfio-emu.so
 * preloaded and N emulated vfio-pci devices, each behind its own
 * pcie-root-port so that it can be hot-unplugged.  The helpers program the
 * root ports like firmware would and the devices' BARs through PCI config
 * cycles, hot-unplug (device_del plus the ACPI eject register) and plug
 * devices back, and check the IOMMU mappings against what the test did.
 *
 * Address windows: device i (0-based) sits behind root port i, whose
 * 32-bit memory window is VFIO_EMU_QTEST_MEM32(i) (16 MiB) and whose 64-bit
 * prefetchable window is VFIO_EMU_QTEST_MEM64(i) (4 GiB).  Memory BARs are
 * programmed inside these (32-bit and non-prefetchable BARs in the first,
 * 64-bit prefetchable BARs in either).
 */

#ifndef TESTS_QTEST_VFIO_EMU_QTEST_H
#define TESTS_QTEST_VFIO_EMU_QTEST_H

#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "vfio-emu-state.h"

#define VFIO_EMU_QTEST_MAX_DEVS  4
#define VFIO_EMU_QTEST_NUM_BARS  6
#define VFIO_EMU_QTEST_MEM32(i)  (0xe0000000ULL + (uint64_t)(i) * 0x1000000)
#define VFIO_EMU_QTEST_MEM64(i)  (0x4000000000ULL + ((uint64_t)(i) << 32))
#define VFIO_EMU_QTEST_UNMAPPED  UINT64_MAX

typedef struct VfioEmuQDev {
    int index;
    char *name;                 /* "0000:0N:00.0": the emulation's name */
    char *id;                   /* qdev id, "vfioN" */
    char *port;                 /* its root port's id, "rpN" */
    char *sysfs;                /* the sysfsdev directory */
    int group;
    int busnr;                  /* secondary bus of the root port */
    QPCIDevice *pdev;           /* NULL while unplugged */
    bool decoding;              /* PCI_COMMAND_MEMORY as last written */
    uint64_t bar_size[VFIO_EMU_QTEST_NUM_BARS];
    bool bar_mem64[VFIO_EMU_QTEST_NUM_BARS];
    bool bar_io[VFIO_EMU_QTEST_NUM_BARS];
    uint64_t bar_addr[VFIO_EMU_QTEST_NUM_BARS];   /* or ..._UNMAPPED */
} VfioEmuQDev;

typedef struct VfioEmuQTest {
    char *dir;
    char *state;                /* the emulation's state directory */
    char *config;               /* its configuration file */
    GString *config_text;
    QTestState *qts;
    QPCIBus *bus;
    uint64_t ram_size;
    uint64_t below_4g;
    uint64_t above_4g;
    guint events_seen;
    int ndevs;
    VfioEmuQDev devs[VFIO_EMU_QTEST_MAX_DEVS];
} VfioEmuQTest;

/*
 * A new harness for a machine with @ram_size bytes of RAM; NULL (and the
 * test is skipped) if the preload library is not available.
 */
VfioEmuQTest *vfio_emu_qtest_new(uint64_t ram_size);

/*
 * Add an emulated device in @group; @keys are the lines of its
 * [device NAME] section besides "group" (see vfio-emu.h), e.g.
 * "bar0 = 0x4000 mem64\n".
 */
VfioEmuQDev *vfio_emu_qtest_add_device(VfioEmuQTest *t, int group,
                                       const char *keys);

/* Append raw configuration text, e.g. a [container] section */
void vfio_emu_qtest_add_config(VfioEmuQTest *t, const char *text);

/*
 * Start QEMU (q35, -accel qtest, -nodefaults) with the devices and
 * @extra_args (may be NULL), program the root ports and size the devices'
 * BARs.
 */
void vfio_emu_qtest_start(VfioEmuQTest *t, const char *extra_args);

/* Quit QEMU and remove the temporary files */
void vfio_emu_qtest_free(VfioEmuQTest *t);

/* Program BAR @bar at guest address @addr (config cycles only) */
void vfio_emu_qtest_set_bar(VfioEmuQTest *t, VfioEmuQDev *d, int bar,
                            uint64_t addr);

/* Set or clear memory decoding (PCI_COMMAND_MEMORY) */
void vfio_emu_qtest_set_decoding(VfioEmuQTest *t, VfioEmuQDev *d, bool on);

/*
 * Hot-unplug: device_del, then eject through the ACPI PCI hotplug
 * registers as a guest would, and wait for DEVICE_DELETED.
 */
void vfio_emu_qtest_unplug(VfioEmuQTest *t, VfioEmuQDev *d);

/* Plug the device back (device_add) in the same slot and size its BARs */
void vfio_emu_qtest_replug(VfioEmuQTest *t, VfioEmuQDev *d);

/* The current mapping table */
GArray *vfio_emu_qtest_mappings(VfioEmuQTest *t);

/* The events logged since the previous call (or since start) */
GArray *vfio_emu_qtest_take_events(VfioEmuQTest *t);

/*
 * Mappings of @d's @bar (-1: any BAR), or of guest RAM if @d is NULL, in
 * iova order.  The array holds copies (freed with it).
 */
GArray *vfio_emu_qtest_mappings_of(VfioEmuQTest *t, VfioEmuQDev *d, int bar);

/*
 * Check that every mapping lies inside a current section of what backs
 * it: guest RAM where q35 puts it (at the vaddr that matches its iova),
 * the read-only BIOS ranges, or the BAR of a plugged device with decoding
 * on, at the address the test programmed, with the vaddr's offset in the
 * BAR equal to the iova's.  A mapping that outlived its section fails.
 */
void vfio_emu_qtest_check_invariants(VfioEmuQTest *t);

#endif /* TESTS_QTEST_VFIO_EMU_QTEST_H */
