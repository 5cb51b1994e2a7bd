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
    uint8_t power;              /* the PMCSR power state last written */
    uint64_t bar_size[VFIO_EMU_QTEST_NUM_BARS];
    bool bar_mem64[VFIO_EMU_QTEST_NUM_BARS];
    bool bar_io[VFIO_EMU_QTEST_NUM_BARS];
    uint64_t bar_addr[VFIO_EMU_QTEST_NUM_BARS];   /* or ..._UNMAPPED */
    char *props;                /* extra vfio-pci properties, "k=v,..." */
    uint64_t mem32_first;       /* the root port's 32-bit window, if moved */
    uint64_t mem32_last;
} VfioEmuQDev;

/* A host mapping (mmap) of part of a BAR in QEMU */
typedef struct VfioEmuQMmap {
    uint64_t offset;            /* in the BAR */
    uint64_t size;
    uint64_t vaddr;
} VfioEmuQMmap;

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
    char *stderr_path;          /* QEMU's stderr, if captured */
    size_t stderr_seen;
    GArray *calls_model;        /* the table, by the calls seen */
    GArray *stale;              /* VfioEmuMapping: may outlive a section */
    int ndevs;
    VfioEmuQDev devs[VFIO_EMU_QTEST_MAX_DEVS];
    bool iommufd;               /* see vfio_emu_qtest_use_iommufd() */
    char *early_args;           /* before the devices, e.g. a vIOMMU */
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
 * The host page size QEMU sees: [container] host_page of the configuration
 * so far, else the real one
 */
uint64_t vfio_emu_qtest_host_page(VfioEmuQTest *t);

/*
 * Is the running QEMU version @major.@minor or later (query-version)?  For
 * the few tests whose expectations follow upstream changes: the qtests run
 * on QEMU 10.0 and 10.2.
 */
bool vfio_emu_qtest_qemu_at_least(VfioEmuQTest *t, int major, int minor);

/*
 * Give @d extra vfio-pci properties, "key=value,...", used from the next
 * start or replug on.
 */
void vfio_emu_qtest_set_device_props(VfioEmuQDev *d, const char *props);

/*
 * Send QEMU's stderr to a file (the command line ends with " 2>FILE"; the
 * harness starts QEMU through sh -c) for vfio_emu_qtest_take_stderr().
 * Call before vfio_emu_qtest_start().  With QTEST_LOG set, the file also
 * gets the qtest log, and vfio_emu_qtest_free() prints it.
 */
void vfio_emu_qtest_capture_stderr(VfioEmuQTest *t);

/* The lines QEMU wrote to stderr since the previous call; g_strfreev() */
char **vfio_emu_qtest_take_stderr(VfioEmuQTest *t);

/*
 * The messages QEMU wrote to stderr since the previous call, one string
 * each: a line that starts with the program's name, and the lines that
 * continue it (hints), joined with "\n".  The qtest log is left out.
 */
char **vfio_emu_qtest_take_messages(VfioEmuQTest *t);

/*
 * The parts of a warning about device memory that is not DMA-mapped:
 * "DEVICE REGION: SIZE not DMA-mapped: CAUSE", then the guest-physical
 * RANGES with the IOMMU and host page sizes, and a HINT.  This is the
 * one place that knows the wording.
 */
typedef struct VfioEmuQWarning {
    char *device;       /* "vfio-pci 'vfio0' (0000:01:00.0)" */
    char *region;       /* "BAR 0" */
    char *size;         /* "60 KiB" */
    char *cause;        /* "not aligned to 64 KiB pages" */
    char *ranges;       /* "0x4000000000-0x4000001fff, ..." */
    char *iommu_page;   /* "64 KiB" */
    char *host_page;    /* "4 KiB" */
    char *iova_ranges;  /* the usable IOVA ranges, if the message says */
    char *hint;         /* without "Hint: " */
} VfioEmuQWarning;

/* Parse @msg into @w; false if it is not such a warning */
bool vfio_emu_qtest_parse_warning(const char *msg, VfioEmuQWarning *w);
void vfio_emu_qtest_warning_clear(VfioEmuQWarning *w);

/*
 * Run QEMU with the devices and @extra_args as vfio_emu_qtest_start()
 * would, but expecting it to fail: it runs to its exit (if it starts, a
 * QMP "quit" on its stdin ends it).  Returns its exit status (128 + N if a
 * signal N killed it) and sets *@err to what it wrote to stderr.
 */
int vfio_emu_qtest_run_to_exit(VfioEmuQTest *t, const char *extra_args,
                               char **err);

/*
 * Replace the emulation's runtime fault rules ("faults" in the state
 * directory, [fault NAME] groups; "" for none) while QEMU runs.
 */
void vfio_emu_qtest_set_faults(VfioEmuQTest *t, const char *text);

/*
 * QEMU's host mappings of @d's @bar, from /proc/PID/maps, in offset
 * order: what the listener's vaddr alignment depends on.
 */
GArray *vfio_emu_qtest_bar_mmaps(VfioEmuQTest *t, VfioEmuQDev *d, int bar);

/*
 * Allow a mapping to outlive its section in
 * vfio_emu_qtest_check_invariants(): one that a failed UNMAP left behind.
 */
void vfio_emu_qtest_expect_stale(VfioEmuQTest *t, uint64_t iova,
                                 uint64_t size);

/* The listener took over (or unmapped) a mapping it had left behind */
void vfio_emu_qtest_forget_stale(VfioEmuQTest *t, uint64_t iova,
                                 uint64_t size);

/*
 * Put the devices on the iommufd backend: "-object iommufd,id=iommufd0"
 * and vfio-pci's iommufd=iommufd0 (a -global, so that devices plugged back
 * get it too), with the sysfs entries QEMU reads to find each device's
 * cdev (device i is /dev/vfio/devices/vfio<i>: add devices with
 * vfio_emu_qtest_add_device() only).  Call before vfio_emu_qtest_start().
 * The IOAS is "container" N in the emulation's state files.
 */
void vfio_emu_qtest_use_iommufd(VfioEmuQTest *t);

/*
 * Put @args on QEMU's command line before the devices: what they attach
 * to (an IOMMU device, which must be created first).
 */
void vfio_emu_qtest_set_early_args(VfioEmuQTest *t, const char *args);

/*
 * Start QEMU (q35, -accel qtest, -nodefaults) with the devices and
 * @extra_args (may be NULL), program the root ports and size the devices'
 * BARs.
 */
void vfio_emu_qtest_start(VfioEmuQTest *t, const char *extra_args);

/* Quit QEMU and remove the temporary files */
void vfio_emu_qtest_free(VfioEmuQTest *t);

/*
 * Move the 32-bit memory window of @d's root port to [@base, @last]
 * (1 MiB granular), for a BAR placed outside VFIO_EMU_QTEST_MEM32()
 */
void vfio_emu_qtest_set_mem32_window(VfioEmuQTest *t, VfioEmuQDev *d,
                                     uint64_t base, uint64_t last);

/* Program BAR @bar at guest address @addr (config cycles only) */
void vfio_emu_qtest_set_bar(VfioEmuQTest *t, VfioEmuQDev *d, int bar,
                            uint64_t addr);

/* Set or clear memory decoding (PCI_COMMAND_MEMORY) */
void vfio_emu_qtest_set_decoding(VfioEmuQTest *t, VfioEmuQDev *d, bool on);

/*
 * Write power state @state (0: D0, 3: D3hot) to the PM capability's PMCSR,
 * as a guest driver would; returns the state the guest reads back.  QEMU
 * decodes a device's BARs only in D0.
 */
uint8_t vfio_emu_qtest_set_power(VfioEmuQTest *t, VfioEmuQDev *d,
                                 uint8_t state);

/*
 * Hot-unplug: device_del, then eject through the ACPI PCI hotplug
 * registers as a guest would, and wait for DEVICE_DELETED.
 */
void vfio_emu_qtest_unplug(VfioEmuQTest *t, VfioEmuQDev *d);

/* Plug the device back (device_add) in the same slot and size its BARs */
void vfio_emu_qtest_replug(VfioEmuQTest *t, VfioEmuQDev *d);

/* Write @d's MSI-X Enable and Function Mask bits (it must have MSI-X) */
void vfio_emu_qtest_set_msix(VfioEmuQTest *t, VfioEmuQDev *d, bool enable,
                             bool mask);

/*
 * system_reset: every device's BARs are cleared and stop decoding, in
 * D0; the root ports are programmed again as at start
 */
void vfio_emu_qtest_system_reset(VfioEmuQTest *t);

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

/*
 * Take the events since the previous look (as vfio_emu_qtest_take_events(),
 * which it replaces for the test that calls it) and replay their MAP,
 * UNMAP and RELEASE calls on the table as the previous call left it:
 * every successful UNMAP must remove exactly one mapping, of exactly its
 * iova and size, and report that size unmapped (so nothing never mapped
 * is unmapped, and nothing twice); a failed MAP or UNMAP must be an
 * injected fault or fail with an errno of @allowed (0-terminated, may be
 * NULL); the result must be the table the emulation now holds.  Returns
 * the events.
 */
GArray *vfio_emu_qtest_check_calls(VfioEmuQTest *t, const int *allowed);

/*
 * Check that x-query-vfio-dma-mappings agrees with the emulation's table:
 * the containers in order, each with its live devices, and every entry in
 * state "mapped" is exactly one mapping of the table (iova, size,
 * read-only, guest RAM or the device and BAR that backs it), and each
 * mapping is one such entry.  Returns the answer's mappings of every
 * container, in order (a QList of QDict; qobject_unref() it).
 */
QList *vfio_emu_qtest_check_qmp(VfioEmuQTest *t);

/*
 * Check that "info vfio-dma" shows each entry of @mappings (from
 * vfio_emu_qtest_check_qmp()): one line per entry with its first and last
 * IOVA, size, access, state and backing.
 */
void vfio_emu_qtest_check_hmp(VfioEmuQTest *t, QList *mappings);

#endif /* TESTS_QTEST_VFIO_EMU_QTEST_H */
