/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * The VFIO listener's DMA mapping of RAM device sections, against vfio-emu
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * Each scenario starts q35 with emulated vfio-pci devices of a given BAR
 * and MSI-X layout on a host IOMMU with a given minimum page and usable
 * IOVA ranges, then runs a list of steps: programming BARs, memory
 * decoding on and off, the power state (D0 and D3hot, and a device the
 * kernel keeps in D3hot), BAR moves, hot-unplug and replug, MAP and UNMAP
 * faults.  The test keeps its own model of what the listener must have
 * done, computed from the layout alone: every BAR mmap, less the MSI-X
 * table that QEMU emulates over it, trimmed inward to the mapping granule
 * (the larger of the IOMMU minimum page and the host page) and split
 * against the usable IOVA ranges; a section whose host mapping is not
 * aligned like its IOVA cannot be mapped at all (QEMU's mmaps, read from
 * /proc, must be aligned like the BAR offsets they map).  After every
 * step it checks:
 *
 * - the IOMMU table of each device is exactly the model's mapped ranges,
 *   and nothing in it outlived its section;
 * - the MAP and UNMAP calls of the step: each UNMAP removed exactly one
 *   mapping of exactly its size, no MAP failed that was not meant to;
 * - x-query-vfio-dma-mappings agrees with the IOMMU table, and its
 *   skipped and failed entries with the model, reasons and errnos
 *   included; "info vfio-dma" shows the same;
 * - QEMU's stderr got exactly the warnings due: one per BAR and cause,
 *   with the device, the BAR, the guest-physical ranges, both page sizes,
 *   the consequence and the hint that fits; and the errors of failed
 *   unmaps.  Nothing else.
 *
 * The matrix (scenarios[] below): IOMMU minimum pages of 4 KiB and 64 KiB
 * with each layout that makes a difference there (MSI-X table mid-BAR in
 * the ConnectX shape, with and without MSIX_MAPPABLE, at offset 0, in its
 * own BAR, relocated by x-msix-relocation; a sub-page BAR; a 64-bit BAR
 * partly and then wholly outside the IOVA ranges), decode cycles, BAR
 * moves and hot-unplug/replug in most of them, two devices sharing the
 * container, and MAP/UNMAP faults and the DMA entry limit with 4 KiB
 * pages.  The layouts run on 4 KiB host pages with IOMMU pages of 4 KiB,
 * 16 KiB (as Apple's DART) and 64 KiB, and on 64 KiB host pages ("host64k",
 * an aarch64 or POWER host: vfio-emu presents its host_page to QEMU) with
 * IOMMU pages of 64 KiB, and of 4 KiB, which the kernel reports as 64 KiB.
 * Guest RAM is checked where it is strict: refused at startup
 * (MAP fault, RAM outside the IOVA ranges, 2 MiB IOMMU pages, which the
 * BIOS ROM can never be aligned to) and hw_error on memory hotplug.
 */

#include "qemu/osdep.h"
#include <linux/vfio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/host-utils.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qjson.h"
#include "qobject/qnum.h"
#include "vfio-emu/vfio-emu-model.h"
#include "vfio-emu/vfio-emu-qtest.h"

#define NBARS       VFIO_EMU_QTEST_NUM_BARS
#define MAX_DEVS    2
#define MAX_STEPS   24
#define MSIX_ENTRY  16

/*
 * The host page size QEMU sees in the test being run: the scenario's
 * host_page, which vfio-emu's preload presents to QEMU, else the real one
 * (this process is not under the preload)
 */
static uint64_t host_page;

/* The usable IOVA ranges vfio-emu reports by default (an x86 host) */
#define X86_IOVA    "0-0xfedfffff,0xfef00000-0xffffffffffff"

/*
 * A device: its BARs and MSI-X placement, as the emulation is told
 */
typedef struct Layout {
    uint64_t bar_size[NBARS];       /* 0: no BAR */
    uint8_t mem64;                  /* bit n: BAR n is 64-bit prefetchable */
    int msix_entries;               /* 0: no MSI-X */
    int table_bar;
    uint32_t table_off;
    bool sparse;                    /* no MSIX_MAPPABLE: sparse mmaps */
    const char *props;              /* extra vfio-pci properties */
    int relocated_to;               /* x-msix-relocation=barN in @props */
    int pm;                         /* a PM capability: PM_D3HOT, PM_STUCK */
} Layout;

enum {
    PM_D3HOT = 1,                   /* D0 and D3hot */
    PM_STUCK,                       /* ... and the device never leaves D3hot */
};

/* ConnectX: a 32 MiB BAR 0 with the MSI-X table at 0x2000 */
static const Layout connectx = {
    .bar_size = { 32 * MiB }, .mem64 = 1 << 0,
    .msix_entries = 16, .table_bar = 0, .table_off = 0x2000,
    .relocated_to = -1,
};

static const Layout connectx_sparse = {
    .bar_size = { 32 * MiB }, .mem64 = 1 << 0,
    .msix_entries = 16, .table_bar = 0, .table_off = 0x2000,
    .sparse = true, .relocated_to = -1,
};

/* What the hint about connectx on 64 KiB pages says to do */
static const Layout connectx_relocated = {
    .bar_size = { 32 * MiB }, .mem64 = 1 << 0,
    .msix_entries = 16, .table_bar = 0, .table_off = 0x2000,
    .props = "x-msix-relocation=bar2", .relocated_to = 2,
};

/* The table at offset 0 of a 1 MiB BAR, 64 vectors */
static const Layout table_at_0 = {
    .bar_size = { 1 * MiB }, .mem64 = 1 << 0,
    .msix_entries = 64, .table_bar = 0, .table_off = 0,
    .relocated_to = -1,
};

/* A NIC: 16 MiB BAR 0, the MSI-X table in a 16 KiB BAR 2 of its own */
static const Layout own_bar = {
    .bar_size = { 16 * MiB, 0, 0x4000 }, .mem64 = 1 << 0,
    .msix_entries = 16, .table_bar = 2, .table_off = 0,
    .relocated_to = -1,
};

/* A 256-byte BAR 0 and a 64 KiB BAR 2, both 32-bit, no MSI-X */
static const Layout sub_page = {
    .bar_size = { 0x100, 0, 0x10000 },
    .relocated_to = -1,
};

/* A 32 MiB 64-bit BAR 0 and a 4 KiB 32-bit BAR 2, no MSI-X */
static const Layout big_bar = {
    .bar_size = { 32 * MiB, 0, 0x1000 }, .mem64 = 1 << 0,
    .relocated_to = -1,
};

/* ConnectX with power management, and one that cannot leave D3hot */
static const Layout connectx_pm = {
    .bar_size = { 32 * MiB }, .mem64 = 1 << 0,
    .msix_entries = 16, .table_bar = 0, .table_off = 0x2000,
    .relocated_to = -1, .pm = PM_D3HOT,
};

static const Layout connectx_stuck = {
    .bar_size = { 32 * MiB }, .mem64 = 1 << 0,
    .msix_entries = 16, .table_bar = 0, .table_off = 0x2000,
    .relocated_to = -1, .pm = PM_STUCK,
};

typedef enum StepOp {
    STEP_END,
    STEP_PROGRAM,       /* program every BAR, packed in the windows */
    STEP_DECODE,        /* arg: on (1) or off (0) */
    STEP_MOVE,          /* bar, arg: by how much */
    STEP_UNPLUG,
    STEP_REPLUG,
    STEP_MAP_FAULT,     /* bar, arg: errno of every MAP of it, 0: none */
    STEP_UNMAP_FAULT,   /* bar, arg: errno of every UNMAP of it, 0: none */
    STEP_LIFE,          /* bar, arg: life_steps[] with its move */
    STEP_POWER,         /* arg: the power state written, 0 (D0) or 3 */
    STEP_MOVE_TO,       /* bar, arg: to which address */
    STEP_MSIX,          /* arg: MSIX_ENABLE and/or MSIX_MASK */
    STEP_RESET,         /* system_reset, then firmware programs the BARs */
} StepOp;

typedef struct Step {
    StepOp op;
    int dev;
    int bar;
    uint64_t arg;
} Step;

typedef struct Scenario {
    const char *name;
    uint64_t min_page;
    uint64_t host_page;             /* 0: the real one */
    const char *iova_ranges;        /* NULL: X86_IOVA */
    int dma_entry_limit;            /* 0: the default */
    int ndevs;
    const Layout *dev[MAX_DEVS];
    Step steps[MAX_STEPS];
} Scenario;

#define PROGRAM(d)          { STEP_PROGRAM, d }
#define DECODE(d, on)       { STEP_DECODE, d, 0, on }
#define MOVE(d, b, by)      { STEP_MOVE, d, b, by }
#define UNPLUG(d)           { STEP_UNPLUG, d }
#define REPLUG(d)           { STEP_REPLUG, d }
#define MAP_FAULT(d, b, e)  { STEP_MAP_FAULT, d, b, e }
#define UNMAP_FAULT(d, b, e) { STEP_UNMAP_FAULT, d, b, e }

/*
 * UNMAP_FAULT arguments beyond the errnos: UNMAPs that succeed with a
 * wrong answer (vfio-emu's "unmapped" fault key)
 */
#define UNMAPPED_NONE       0x10000     /* unmaps nothing, says 0 */
#define UNMAPPED_MORE       0x10001     /* unmaps it, says UNMAPPED_SAYS */
#define UNMAPPED_SAYS       (1ULL << 44)
#define POWER(d, state)     { STEP_POWER, d, 0, state }
#define MOVE_TO(d, b, addr) { STEP_MOVE_TO, d, b, addr }
#define MSIX_ENABLE         1
#define MSIX_MASK           2
#define MSIX(d, bits)       { STEP_MSIX, d, 0, bits }
#define RESET()             { STEP_RESET }

#define LIFE(d, b, by)      { STEP_LIFE, d, b, by }

/* The life of one device: decode cycles, a move, unplug and replug */
static const Step life_steps[] = {
    PROGRAM(0), DECODE(0, 1), DECODE(0, 0), DECODE(0, 1),
    { STEP_MOVE }, DECODE(0, 0), DECODE(0, 1), UNPLUG(0),
    REPLUG(0), PROGRAM(0), DECODE(0, 1), DECODE(0, 0),
    DECODE(0, 1),
};

static const Scenario scenarios[] = {
    {
        .name = "4k/connectx", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "4k/connectx-sparse", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &connectx_sparse },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "64k/connectx", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "64k/connectx-sparse", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx_sparse },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "64k/connectx-relocated", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx_relocated },
        /* not over the added BAR 2, right after BAR 0 */
        .steps = { LIFE(0, 0, 64 * MiB) },
    }, {
        .name = "64k/table-at-0", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &table_at_0 },
        .steps = { LIFE(0, 0, 1 * MiB) },
    }, {
        .name = "4k/own-bar", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &own_bar },
        .steps = { LIFE(0, 2, 0x10000) },
    }, {
        .name = "64k/own-bar", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &own_bar },
        .steps = { LIFE(0, 2, 0x10000) },
    }, {
        .name = "4k/sub-page", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &sub_page },
        .steps = { LIFE(0, 0, 0x100000) },
    }, {
        .name = "64k/sub-page", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &sub_page },
        .steps = { LIFE(0, 0, 0x100000) },
    }, {
        /* BAR 0 straddles the end of the IOVA ranges, then leaves them */
        .name = "64k/outside-iova", .min_page = 64 * KiB,
        .iova_ranges = "0-0xfedfffff,0xfef00000-0x40007fffff",
        .ndevs = 1, .dev = { &big_bar },
        .steps = { LIFE(0, 0, 1 * GiB) },
    }, {
        .name = "64k/two-devices", .min_page = 64 * KiB,
        .ndevs = 2, .dev = { &connectx, &own_bar },
        .steps = {
            PROGRAM(0), PROGRAM(1), DECODE(0, 1), DECODE(1, 1),
            DECODE(0, 0), DECODE(0, 1), MOVE(1, 0, 16 * MiB),
            UNPLUG(0), DECODE(1, 0), DECODE(1, 1), REPLUG(0), PROGRAM(0),
            DECODE(0, 1), UNPLUG(1), DECODE(0, 0), DECODE(0, 1),
        },
    }, {
        .name = "16k/connectx", .min_page = 16 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "16k/connectx-sparse", .min_page = 16 * KiB,
        .ndevs = 1, .dev = { &connectx_sparse },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "16k/own-bar", .min_page = 16 * KiB,
        .ndevs = 1, .dev = { &own_bar },
        .steps = { LIFE(0, 2, 0x10000) },
    }, {
        .name = "16k/sub-page", .min_page = 16 * KiB,
        .ndevs = 1, .dev = { &sub_page },
        .steps = { LIFE(0, 0, 0x100000) },
    }, {
        .name = "host64k/connectx", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "host64k/connectx-sparse", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx_sparse },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "host64k/connectx-relocated", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx_relocated },
        .steps = { LIFE(0, 0, 64 * MiB) },
    }, {
        .name = "host64k/table-at-0", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &table_at_0 },
        .steps = { LIFE(0, 0, 1 * MiB) },
    }, {
        .name = "host64k/own-bar", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &own_bar },
        .steps = { LIFE(0, 2, 0x10000) },
    }, {
        .name = "host64k/sub-page", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &sub_page },
        .steps = { LIFE(0, 0, 0x100000) },
    }, {
        /* the IOMMU's 4 KiB pages are hidden behind the host's 64 KiB */
        .name = "host64k/iommu-4k", .min_page = 4 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = { LIFE(0, 0, 32 * MiB) },
    }, {
        .name = "host64k/two-devices", .min_page = 64 * KiB,
        .host_page = 64 * KiB,
        .ndevs = 2, .dev = { &connectx, &own_bar },
        .steps = {
            PROGRAM(0), PROGRAM(1), DECODE(0, 1), DECODE(1, 1),
            DECODE(0, 0), DECODE(0, 1), MOVE(1, 0, 16 * MiB),
            UNPLUG(0), DECODE(1, 0), DECODE(1, 1), REPLUG(0), PROGRAM(0),
            DECODE(0, 1), UNPLUG(1), DECODE(0, 0), DECODE(0, 1),
        },
    }, {
        .name = "4k/map-fault", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = {
            PROGRAM(0), MAP_FAULT(0, 0, EFAULT), DECODE(0, 1),
            DECODE(0, 0), DECODE(0, 1), MAP_FAULT(0, 0, 0), DECODE(0, 0),
            DECODE(0, 1), MOVE(0, 0, 32 * MiB), UNPLUG(0), REPLUG(0),
            PROGRAM(0), MAP_FAULT(0, 0, ENOMEM), DECODE(0, 1),
        },
    }, {
        /* D3hot stops the decoding of the BARs, as decoding off does */
        .name = "64k/pm-d3hot", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx_pm },
        .steps = {
            PROGRAM(0), DECODE(0, 1), POWER(0, 3), POWER(0, 0),
            DECODE(0, 0), POWER(0, 3), DECODE(0, 1), POWER(0, 0),
            POWER(0, 3), MOVE(0, 0, 32 * MiB), POWER(0, 0), UNPLUG(0),
            REPLUG(0), PROGRAM(0), DECODE(0, 1), POWER(0, 3),
        },
    }, {
        /* The kernel keeps the device in D3hot and refuses QEMU's maps */
        .name = "4k/pm-stuck", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &connectx_stuck },
        .steps = {
            PROGRAM(0), DECODE(0, 1), POWER(0, 3), POWER(0, 0),
            DECODE(0, 0), DECODE(0, 1), MOVE(0, 0, 32 * MiB), POWER(0, 3),
            POWER(0, 0), UNPLUG(0), REPLUG(0), PROGRAM(0), DECODE(0, 1),
        },
    }, {
        /* A failed unmap leaks; decoding on again takes the mapping over */
        .name = "4k/unmap-fault", .min_page = 4 * KiB,
        .ndevs = 2, .dev = { &connectx, &big_bar },
        .steps = {
            PROGRAM(0), PROGRAM(1), DECODE(0, 1), DECODE(1, 1),
            UNMAP_FAULT(0, 0, EFAULT), DECODE(0, 0), DECODE(0, 1),
            UNMAP_FAULT(0, 0, 0), DECODE(0, 0), DECODE(0, 1),
            MOVE(0, 0, 32 * MiB), UNPLUG(0), DECODE(1, 0), DECODE(1, 1),
            UNPLUG(1),
        },
    }, {
        /* The same, where what leaks is an interior with an unaligned head */
        .name = "64k/unmap-fault", .min_page = 64 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = {
            PROGRAM(0), DECODE(0, 1), UNMAP_FAULT(0, 0, EFAULT),
            DECODE(0, 0), DECODE(0, 1), DECODE(0, 0),
            UNMAP_FAULT(0, 0, 0), DECODE(0, 1), DECODE(0, 0), DECODE(0, 1),
            MOVE(0, 0, 64 * MiB), UNPLUG(0),
        },
    }, {
        /*
         * Errnos the kernel never returns for a MAP or an UNMAP: reported
         * as they are ("Unknown error 1000"), nothing else changes
         */
        .name = "4k/odd-errnos", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = {
            PROGRAM(0), MAP_FAULT(0, 0, 1000), DECODE(0, 1), DECODE(0, 0),
            MAP_FAULT(0, 0, 0), DECODE(0, 1), UNMAP_FAULT(0, 0, 1001),
            DECODE(0, 0), UNMAP_FAULT(0, 0, 0), DECODE(0, 1), DECODE(0, 0),
            DECODE(0, 1), UNPLUG(0),
        },
    }, {
        /*
         * MSI-X enabled and masked, a BAR moved to an address, and system
         * resets (after which firmware programs the BARs again): the
         * steps tests/vfio-random prints besides the ones above
         */
        .name = "4k/reset-msix", .min_page = 4 * KiB,
        .ndevs = 2, .dev = { &connectx, &big_bar },
        .steps = {
            PROGRAM(0), PROGRAM(1), DECODE(0, 1), DECODE(1, 1),
            MSIX(0, MSIX_ENABLE), MSIX(0, MSIX_ENABLE | MSIX_MASK),
            MOVE_TO(0, 0, 0x4004000000), MSIX(0, 0), DECODE(0, 0),
            RESET(), DECODE(0, 1), MOVE_TO(0, 0, 0x4002000000),
            RESET(), DECODE(1, 1), DECODE(0, 1), UNPLUG(0), RESET(),
            DECODE(1, 0), DECODE(1, 1), UNPLUG(1),
        },
    }, {
        /*
         * UNMAPs that succeed but report another size than asked.  Said
         * to have unmapped nothing, a range counts as still mapped (the
         * same map again takes it over) until the container goes.  Said
         * to have unmapped more, the range goes, and QEMU says what else
         * may be gone.
         */
        .name = "4k/unmap-size", .min_page = 4 * KiB,
        .ndevs = 1, .dev = { &connectx },
        .steps = {
            PROGRAM(0), DECODE(0, 1), UNMAP_FAULT(0, 0, UNMAPPED_NONE),
            DECODE(0, 0), DECODE(0, 1), DECODE(0, 0), UNMAP_FAULT(0, 0, 0),
            MOVE(0, 0, 32 * MiB), DECODE(0, 1),
            UNMAP_FAULT(0, 0, UNMAPPED_MORE), DECODE(0, 0),
            UNMAP_FAULT(0, 0, 0), DECODE(0, 1), UNPLUG(0),
        },
    }, {
        /* Guest RAM takes 5 entries, BAR 0 gets 1 of its 2 */
        .name = "4k/dma-entry-limit", .min_page = 4 * KiB,
        .dma_entry_limit = 6,
        .ndevs = 1, .dev = { &connectx },
        .steps = { LIFE(0, 0, 32 * MiB) },
    },
};

/*
 * The model
 */

/*
 * Why a range is not mapped: the first two are the reasons the query
 * gives; an unaligned range is warned about with a finer cause
 */
typedef enum Cause {
    CAUSE_UNALIGNED,
    CAUSE_OUTSIDE,
    CAUSE_FAILED,
    CAUSE_EMULATED,     /* unaligned: shares a page with the MSI-X table */
    CAUSE_SMALL,        /* unaligned: the BAR is smaller than a page */
    CAUSE_PLACED,       /* unaligned: the BAR's address */
    CAUSE_VADDR,        /* unaligned: QEMU's mmap */
    CAUSE__MAX,
} Cause;

typedef enum PState {
    P_MAPPED,
    P_SKIPPED,
    P_FAILED,
} PState;

/* A range the record must hold */
typedef struct Piece {
    uint64_t first, last;           /* guest-physical, inclusive */
    PState state;
    Cause reason;                   /* P_SKIPPED */
    int err;                        /* P_FAILED */
    int dev, bar;                   /* a leaked mapping: whose it was */
    uint64_t bar_off;               /* and where in the BAR */
    bool adopted;                   /* a leaked mapping taken over */
} Piece;

typedef struct Warning {
    int dev;
    int bar;
    Cause cause;
    GArray *ranges;                 /* Piece, only first and last */
    int err;
    bool vaddr_unaligned;
} Warning;

typedef struct Ctx {
    const Scenario *sc;
    VfioEmuQTest *t;
    uint64_t granule;
    GArray *usable;                 /* Piece: the usable IOVA ranges */
    GArray *ram;                    /* guest RAM's mappings at start */
    GArray *pieces[MAX_DEVS][NBARS];
    bool warned[MAX_DEVS][NBARS][CAUSE__MAX];
    int map_fault[MAX_DEVS][NBARS];
    int unmap_fault[MAX_DEVS][NBARS];
    bool stuck_d3[MAX_DEVS];        /* the kernel has the device in D3hot */
    GArray *stale;                  /* Piece: leaked by failed unmaps */
    int entries;                    /* mappings in the IOMMU */
    int plugged;                    /* devices in the container */
    GPtrArray *want_warn;           /* Warning */
    GPtrArray *want_err;            /* char *: the text of an error line */
    int allowed[4];                 /* errnos a MAP may fail with: none */
} Ctx;

static const char *cause_reason(Cause c)
{
    return c == CAUSE_OUTSIDE ? "outside-iova-ranges" : "unaligned";
}

static void warning_free(gpointer p)
{
    Warning *w = p;

    g_array_unref(w->ranges);
    g_free(w);
}

static void add_piece(GArray *pieces, uint64_t first, uint64_t last,
                      PState state, Cause reason)
{
    Piece p = { .first = first, .last = last, .state = state,
                .reason = reason };

    g_assert_cmphex(first, <=, last);
    g_array_append_val(pieces, p);
}

/* The table's effective place: where x-msix-relocation moved it */
static int table_bar(const Layout *l)
{
    if (!l->msix_entries) {
        return -1;
    }
    return l->relocated_to >= 0 ? l->relocated_to : l->table_bar;
}

static uint64_t table_off(const Layout *l, VfioEmuQDev *d)
{
    if (l->relocated_to < 0) {
        return l->table_off;
    }
    /* vfio-pci puts it at the end of the BAR before it was extended */
    return l->bar_size[l->relocated_to] ? d->bar_size[l->relocated_to] / 2 : 0;
}

/* Is @bar a BAR of the device (mmapped), not one QEMU added? */
static bool bar_is_device(const Layout *l, int bar)
{
    return l->bar_size[bar] != 0;
}

/*
 * The pieces of the section [@first, @last] of a BAR, by the one model
 * (vfio-emu-model.c): trimmed to the granule inside each usable IOVA
 * range, the rest skipped
 */
static void classify(Ctx *c, uint64_t first, uint64_t last, GArray *out)
{
    g_autofree uint64_t *usable = g_new(uint64_t, 2 * c->usable->len);
    int max = 4 * c->usable->len + 3;
    g_autofree VfioEmuModelPiece *pieces = g_new(VfioEmuModelPiece, max);
    int i, n;

    for (i = 0; i < c->usable->len; i++) {
        Piece *u = &g_array_index(c->usable, Piece, i);

        usable[2 * i] = u->first;
        usable[2 * i + 1] = u->last;
    }
    n = vfio_emu_model_section(first, last, c->granule, usable,
                               c->usable->len, pieces, max);
    g_assert_cmpint(n, >, 0);
    for (i = 0; i < n; i++) {
        VfioEmuModelPiece *p = &pieces[i];

        if (p->kind == VFIO_EMU_MODEL_MAPPED) {
            add_piece(out, p->first, p->last, P_MAPPED, 0);
        } else {
            add_piece(out, p->first, p->last, P_SKIPPED,
                      p->kind == VFIO_EMU_MODEL_OUTSIDE ? CAUSE_OUTSIDE
                                                        : CAUSE_UNALIGNED);
        }
    }
}

/* A RAM device section of a BAR and where QEMU's mmap puts it */
typedef struct Section {
    int dev, bar;
    uint64_t first, last;           /* guest-physical */
    uint64_t vaddr;
} Section;

static gint section_cmp(gconstpointer a, gconstpointer b)
{
    const Section *sa = a, *sb = b;

    return sa->first < sb->first ? -1 : sa->first > sb->first;
}

/*
 * The sections of BAR @bar of device @dev as vfio-pci makes them: its
 * mmaps (the kernel's sparse areas leave out the MSI-X table's pages), a
 * sub-page BAR at a page-aligned address grown to a page, less the MSI-X
 * table that QEMU emulates over them.
 */
static void bar_sections(Ctx *c, int dev, int bar, GArray *out)
{
    const Layout *l = c->sc->dev[dev];
    VfioEmuQDev *d = &c->t->devs[dev];
    uint64_t addr = d->bar_addr[bar];
    uint64_t size = l->bar_size[bar];
    g_autoptr(GArray) mmaps = vfio_emu_qtest_bar_mmaps(c->t, d, bar);
    uint64_t tfirst = 0, tend = 0;
    int i, n = 0;

    if (table_bar(l) == bar) {
        tfirst = table_off(l, d);
        tend = tfirst + l->msix_entries * MSIX_ENTRY;
    }
    if (size < host_page && !(addr & (host_page - 1))) {
        size = host_page;
    }
    for (i = 0; i < mmaps->len; i++) {
        VfioEmuQMmap *m = &g_array_index(mmaps, VfioEmuQMmap, i);
        uint64_t start = m->offset, end = m->offset + MIN(m->size, size);

        /* the kernel's areas: everything but the table's host pages */
        if (l->sparse && table_bar(l) == bar) {
            uint64_t pfirst = QEMU_ALIGN_DOWN(tfirst, host_page);
            uint64_t pend = ROUND_UP(tend, host_page);

            g_assert_true(end <= pfirst || start >= pend);
        } else {
            g_assert_cmphex(start, ==, 0);
            g_assert_cmphex(m->size, ==, ROUND_UP(l->bar_size[bar],
                                                  host_page));
        }
        /* aligned like the BAR's offset (capped at 1 GiB), so like IOVAs */
        g_assert_cmphex((m->vaddr - m->offset) &
                        (MIN(l->bar_size[bar], 1 * GiB) - 1), ==, 0);
        n++;
        /* less the table */
        if (tend > start && tfirst < end) {
            if (start < tfirst) {
                Section s = { dev, bar, addr + start, addr + tfirst - 1,
                              m->vaddr };

                g_array_append_val(out, s);
            }
            if (tend < end) {
                Section s = { dev, bar, addr + tend, addr + end - 1,
                              m->vaddr + (tend - start) };

                g_array_append_val(out, s);
            }
        } else {
            Section s = { dev, bar, addr + start, addr + end - 1, m->vaddr };

            g_array_append_val(out, s);
        }
    }
    if (l->sparse && table_bar(l) == bar) {
        bool head = QEMU_ALIGN_DOWN(tfirst, host_page) != 0;
        bool tail = ROUND_UP(tend, host_page) < size;

        g_assert_cmpint(n, ==, head && tail ? 2 : 1);
    } else {
        g_assert_cmpint(n, ==, 1);
    }
}

static bool overlaps_stale(Ctx *c, uint64_t first, uint64_t last)
{
    int i;

    for (i = 0; i < c->stale->len; i++) {
        Piece *s = &g_array_index(c->stale, Piece, i);

        if (first <= s->last && s->first <= last) {
            return true;
        }
    }
    return false;
}

/*
 * A piece to map overlaps what failed unmaps left in the IOMMU: the
 * listener takes an identical mapping over without a call (@p->adopted),
 * and unmaps any other first.  False if such an unmap fails (its fault is
 * still on).
 */
static bool take_stale(Ctx *c, int dev, int bar, Piece *p)
{
    VfioEmuQDev *d = &c->t->devs[dev];
    int i = 0;

    while (i < c->stale->len) {
        Piece *s = &g_array_index(c->stale, Piece, i);

        if (s->last < p->first || p->last < s->first) {
            i++;
            continue;
        }
        if (s->first == p->first && s->last == p->last && s->dev == dev &&
            s->bar == bar && s->bar_off == p->first - d->bar_addr[bar]) {
            p->adopted = true;
        } else if (c->unmap_fault[s->dev][s->bar] &&
                   c->unmap_fault[s->dev][s->bar] != UNMAPPED_MORE) {
            /* failed, or said to have unmapped nothing: it stays */
            return false;
        } else {
            c->entries--;
        }
        vfio_emu_qtest_forget_stale(c->t, s->first, s->last - s->first + 1);
        g_array_remove_index(c->stale, i);
    }
    return true;
}

static Warning *want_warning(Ctx *c, int dev, int bar, Cause cause)
{
    Warning *w;
    int i;

    for (i = 0; i < c->want_warn->len; i++) {
        w = g_ptr_array_index(c->want_warn, i);
        if (w->dev == dev && w->bar == bar && w->cause == cause) {
            return w;
        }
    }
    w = g_new0(Warning, 1);
    w->dev = dev;
    w->bar = bar;
    w->cause = cause;
    w->ranges = g_array_new(false, false, sizeof(Piece));
    g_ptr_array_add(c->want_warn, w);
    return w;
}

/*
 * Why the unaligned piece @p of BAR @bar is not mapped, as the warning
 * says; CAUSE__MAX for the rest of the MSI-X table's host page, which
 * only the query shows
 */
static Cause unaligned_cause(Ctx *c, int dev, int bar, const Piece *p,
                             bool vaddr_unaligned)
{
    const Layout *l = c->sc->dev[dev];
    VfioEmuQDev *d = &c->t->devs[dev];
    uint64_t table, table_end;

    if (l->bar_size[bar] < c->granule) {
        return CAUSE_SMALL;
    }
    if (vaddr_unaligned) {
        return CAUSE_VADDR;
    }
    if (table_bar(l) == bar) {
        table = d->bar_addr[bar] + table_off(l, d);
        table_end = table + l->msix_entries * MSIX_ENTRY;
        if (p->first >= QEMU_ALIGN_DOWN(table, host_page) &&
            p->last < ROUND_UP(table_end, host_page)) {
            return CAUSE__MAX;
        }
        if (p->first < ROUND_UP(table_end, c->granule) &&
            p->last >= QEMU_ALIGN_DOWN(table, c->granule)) {
            return CAUSE_EMULATED;
        }
    }
    return CAUSE_PLACED;
}

/* A range is not mapped: the listener warns once per BAR and cause */
static void report(Ctx *c, int dev, int bar, Cause cause, uint64_t first,
                   uint64_t last, int err, bool vaddr_unaligned)
{
    Warning *w;

    if (c->warned[dev][bar][cause]) {
        return;
    }
    w = want_warning(c, dev, bar, cause);
    add_piece(w->ranges, first, last, 0, 0);
    w->err = w->err ?: err;
    w->vaddr_unaligned |= vaddr_unaligned;
}

/* BARs appear (in one memory transaction): what the listener must do */
static void bars_added(Ctx *c, int dev, int only_bar)
{
    const Layout *l = c->sc->dev[dev];
    g_autoptr(GArray) sections = g_array_new(false, false, sizeof(Section));
    int b, i, j;

    for (b = 0; b < NBARS; b++) {
        if ((only_bar < 0 || b == only_bar) && bar_is_device(l, b) &&
            c->t->devs[dev].bar_addr[b] != VFIO_EMU_QTEST_UNMAPPED) {
            g_assert_cmpint(c->pieces[dev][b]->len, ==, 0);
            bar_sections(c, dev, b, sections);
        }
    }
    /* the listener sees them in address order */
    g_array_sort(sections, section_cmp);
    for (i = 0; i < sections->len; i++) {
        Section *s = &g_array_index(sections, Section, i);
        g_autoptr(GArray) pieces = g_array_new(false, false, sizeof(Piece));
        bool unaligned = (s->first ^ s->vaddr) & (c->granule - 1);

        if (unaligned) {
            /* no IOVA of it has a host address aligned like it */
            g_test_message("%s BAR %d: the mmap of 0x%" PRIx64 "-0x%" PRIx64
                           " is not aligned like its IOVA", c->t->devs[dev].id,
                           s->bar, s->first, s->last);
            add_piece(pieces, s->first, s->last, P_SKIPPED,
                      CAUSE_UNALIGNED);
        } else {
            classify(c, s->first, s->last, pieces);
        }
        for (j = 0; j < pieces->len; j++) {
            Piece *p = &g_array_index(pieces, Piece, j);

            if (p->state == P_SKIPPED) {
                Cause why = p->reason == CAUSE_OUTSIDE ? CAUSE_OUTSIDE :
                            unaligned_cause(c, dev, s->bar, p, unaligned);

                if (why != CAUSE__MAX) {
                    report(c, dev, s->bar, why, p->first, p->last, 0,
                           unaligned);
                }
            } else if (c->map_fault[dev][s->bar]) {
                p->state = P_FAILED;
                p->err = c->map_fault[dev][s->bar];
            } else if (c->stuck_d3[dev]) {
                /* vfio_pci_mmap_huge_fault(): SIGBUS, the pin fails */
                p->state = P_FAILED;
                p->err = EFAULT;
            } else if (overlaps_stale(c, p->first, p->last) &&
                       !take_stale(c, dev, s->bar, p)) {
                /* what the IOMMU kept cannot be unmapped: not mapped */
                p->state = P_FAILED;
                p->err = EEXIST;
            } else if (p->state == P_MAPPED && p->adopted) {
                /* taken over as it was: no call, no new entry */
            } else if (c->sc->dma_entry_limit &&
                       c->entries >= c->sc->dma_entry_limit) {
                /* recorded failed without a call: none may fail */
                p->state = P_FAILED;
                p->err = ENOSPC;
            } else {
                c->entries++;
            }
            if (p->state == P_FAILED) {
                report(c, dev, s->bar, CAUSE_FAILED, p->first, p->last,
                       p->err, false);
            }
            g_array_append_val(c->pieces[dev][s->bar], *p);
        }
    }
    for (b = 0; b < NBARS; b++) {
        for (i = 0; i < c->want_warn->len; i++) {
            Warning *w = g_ptr_array_index(c->want_warn, i);

            if (w->dev == dev && w->bar == b) {
                c->warned[dev][b][w->cause] = true;
            }
        }
    }
}

/* What QEMU adds to a report of an UNMAP that unmapped another size */
static const char unmap_size_hint[] =
    "The host's DMA mappings are not what QEMU mapped: a bug of the host"
    " kernel or of QEMU. 'info vfio-dma' shows what QEMU mapped.";

/* A BAR disappears: its mapped pieces are unmapped, or leak */
static void bar_removed(Ctx *c, int dev, int bar)
{
    VfioEmuQDev *d = &c->t->devs[dev];
    GArray *pieces = c->pieces[dev][bar];
    int fault = c->unmap_fault[dev][bar];
    int i;

    for (i = 0; i < pieces->len; i++) {
        Piece *p = &g_array_index(pieces, Piece, i);

        if (p->state != P_MAPPED) {
            continue;
        }
        if (!fault || fault == UNMAPPED_MORE) {
            c->entries--;
            if (fault) {
                g_ptr_array_add(c->want_err, g_strdup_printf(
                    "vfio: the host IOMMU unmapped 0x%llx bytes where QEMU"
                    " unmapped the 0x%" PRIx64 " bytes at guest-physical"
                    " 0x%" PRIx64 "-0x%" PRIx64 " (vfio-pci '%s' (%s) BAR"
                    " %d): mappings next to that range may be gone, and DMA"
                    " to them fails\n%s", UNMAPPED_SAYS,
                    p->last - p->first + 1, p->first, p->last, d->id,
                    d->name, bar, unmap_size_hint));
            }
            continue;
        }
        p->dev = dev;
        p->bar = bar;
        p->bar_off = p->first - d->bar_addr[bar];
        g_array_append_val(c->stale, *p);
        vfio_emu_qtest_expect_stale(c->t, p->first, p->last - p->first + 1);
        if (fault == UNMAPPED_NONE) {
            g_ptr_array_add(c->want_err, g_strdup_printf(
                "vfio: the host IOMMU unmapped only 0x0 of the 0x%" PRIx64
                " bytes mapped at guest-physical 0x%" PRIx64 "-0x%" PRIx64
                " (vfio-pci '%s' (%s) BAR %d); QEMU counts the range as"
                " still mapped until it is mapped again or the container"
                " goes away\n%s", p->last - p->first + 1, p->first, p->last,
                d->id, d->name, bar, unmap_size_hint));
            continue;
        }
        g_ptr_array_add(c->want_err, g_strdup_printf(
            "vfio: failed to unmap guest-physical 0x%" PRIx64 "-0x%" PRIx64
            " (vfio-pci '%s' (%s) BAR %d) from the host IOMMU: %s; the IOMMU"
            " keeps it until the range is mapped again or the container goes"
            " away", p->first, p->last,
            d->id, d->name, bar, strerror(fault)));
    }
    g_array_set_size(pieces, 0);
}

static void bars_removed(Ctx *c, int dev)
{
    int b;

    for (b = 0; b < NBARS; b++) {
        bar_removed(c, dev, b);
    }
}

/*
 * Checks
 */

static uint64_t dict_u64(QDict *d, const char *key)
{
    uint64_t v;

    g_assert_true(qnum_get_try_uint(qobject_to(QNum, qdict_get(d, key)),
                                    &v));
    return v;
}

static gint piece_cmp(gconstpointer a, gconstpointer b)
{
    const Piece *pa = a, *pb = b;

    return pa->first < pb->first ? -1 : pa->first > pb->first;
}

/* Sort and merge adjacent pieces of the same state, reason and errno */
static void merge(GArray *pieces)
{
    int i = 1;

    g_array_sort(pieces, piece_cmp);
    while (i < pieces->len) {
        Piece *a = &g_array_index(pieces, Piece, i - 1);
        Piece *b = &g_array_index(pieces, Piece, i);

        if (a->last + 1 == b->first && a->state == b->state &&
            a->reason == b->reason && a->err == b->err &&
            a->state != P_MAPPED) {
            a->last = b->last;
            g_array_remove_index(pieces, i);
        } else {
            i++;
        }
    }
}

static char *pieces_str(GArray *pieces)
{
    GString *s = g_string_new("");
    int i;

    for (i = 0; i < pieces->len; i++) {
        Piece *p = &g_array_index(pieces, Piece, i);

        g_string_append_printf(s, " [0x%" PRIx64 "-0x%" PRIx64 " %s %d]",
                               p->first, p->last,
                               p->state == P_MAPPED ? "mapped" :
                               p->state == P_FAILED ? "failed" :
                               cause_reason(p->reason), p->err);
    }
    return g_string_free(s, false);
}

static void assert_pieces_equal(GArray *got, GArray *want, const char *what)
{
    g_autofree char *sgot = NULL;
    g_autofree char *swant = NULL;

    merge(got);
    merge(want);
    sgot = pieces_str(got);
    swant = pieces_str(want);
    if (strcmp(sgot, swant)) {
        g_error("%s: got%s, want%s", what, sgot, swant);
    }
}

static void add_want(GArray *want, VfioEmuQDev *d, int bar, Piece *p,
                     uint64_t bar_off)
{
    VfioEmuMapping m = {
        .iova = p->first,
        .size = p->last - p->first + 1,
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .backing = g_strdup_printf("%s:bar%d+0x%" PRIx64, d->name, bar,
                                   bar_off),
    };

    g_array_append_val(want, m);
}

static gint mapping_iova_cmp(gconstpointer a, gconstpointer b)
{
    const VfioEmuMapping *ma = a, *mb = b;

    return ma->iova < mb->iova ? -1 : ma->iova > mb->iova;
}

static void mapping_clear(gpointer p)
{
    g_free(((VfioEmuMapping *)p)->backing);
}

/* The IOMMU holds exactly guest RAM and the mapped pieces of each device */
static void check_table(Ctx *c)
{
    g_autoptr(GArray) ram = vfio_emu_qtest_mappings_of(c->t, NULL, -1);
    int dev, b, i;

    g_assert_cmpint(ram->len, ==, c->plugged ? c->ram->len : 0);
    for (i = 0; i < ram->len; i++) {
        VfioEmuMapping *got = &g_array_index(ram, VfioEmuMapping, i);
        VfioEmuMapping *want = &g_array_index(c->ram, VfioEmuMapping, i);

        g_assert_cmphex(got->iova, ==, want->iova);
        g_assert_cmphex(got->size, ==, want->size);
        g_assert_cmphex(got->flags, ==, want->flags);
    }

    for (dev = 0; dev < c->sc->ndevs; dev++) {
        VfioEmuQDev *d = &c->t->devs[dev];
        g_autoptr(GArray) got = vfio_emu_qtest_mappings_of(c->t, d, -1);
        g_autoptr(GArray) want = g_array_new(false, false,
                                             sizeof(VfioEmuMapping));

        g_array_set_clear_func(want, mapping_clear);
        for (b = 0; b < NBARS; b++) {
            GArray *pieces = c->pieces[dev][b];

            for (i = 0; i < pieces->len; i++) {
                Piece *p = &g_array_index(pieces, Piece, i);

                if (p->state == P_MAPPED) {
                    add_want(want, d, b, p, p->first - d->bar_addr[b]);
                }
            }
        }
        for (i = 0; i < c->stale->len; i++) {
            Piece *p = &g_array_index(c->stale, Piece, i);

            if (p->dev == dev) {
                add_want(want, d, p->bar, p, p->bar_off);
            }
        }
        g_array_sort(want, mapping_iova_cmp);
        for (i = 0; i < MAX(got->len, want->len); i++) {
            VfioEmuMapping *g = i < got->len ?
                &g_array_index(got, VfioEmuMapping, i) : NULL;
            VfioEmuMapping *w = i < want->len ?
                &g_array_index(want, VfioEmuMapping, i) : NULL;

            if (!g || !w || g->iova != w->iova || g->size != w->size ||
                strcmp(g->backing, w->backing) || g->flags != w->flags) {
                g_error("%s: the IOMMU holds iova=0x%" PRIx64 " size=0x%"
                        PRIx64 " %s, want iova=0x%" PRIx64 " size=0x%"
                        PRIx64 " %s", d->id, g ? g->iova : 0,
                        g ? g->size : 0, g ? g->backing : "nothing",
                        w ? w->iova : 0, w ? w->size : 0,
                        w ? w->backing : "nothing");
            }
        }
    }
}

/* x-query-vfio-dma-mappings and info vfio-dma agree with the model */
static void check_query(Ctx *c)
{
    QList *list = vfio_emu_qtest_check_qmp(c->t);
    g_autoptr(GArray) stale = g_array_new(false, false, sizeof(Piece));
    g_autoptr(GArray) want_stale = g_array_copy(c->stale);
    QListEntry *e;
    int dev, b;

    for (dev = 0; dev < c->sc->ndevs; dev++) {
        VfioEmuQDev *d = &c->t->devs[dev];
        g_autofree char *path = g_strdup_printf("/machine/peripheral/%s",
                                                d->id);

        for (b = 0; b < NBARS; b++) {
            g_autoptr(GArray) got = g_array_new(false, false, sizeof(Piece));
            g_autoptr(GArray) want = g_array_copy(c->pieces[dev][b]);
            g_autofree char *bar = g_strdup_printf("(%s) BAR %d", d->name,
                                                   b);
            g_autofree char *what = g_strdup_printf("%s BAR %d in "
                                                    "x-query-vfio-dma-mappings",
                                                    d->id, b);

            QLIST_FOREACH_ENTRY(list, e) {
                QDict *m = qobject_to(QDict, qlist_entry_obj(e));
                const char *state = qdict_get_str(m, "state");
                uint64_t iova = dict_u64(m, "iova");
                Piece p = {
                    .first = iova,
                    .last = iova + dict_u64(m, "size") - 1,
                };

                if (g_strcmp0(qdict_get_try_str(m, "device"), path) ||
                    !g_str_has_suffix(qdict_get_str(m, "backing"), bar)) {
                    continue;
                }
                g_assert_false(qdict_get_bool(m, "read-only"));
                g_assert_true(qdict_get_bool(m, "ram-device"));
                if (!strcmp(state, "skipped")) {
                    const char *reason = qdict_get_str(m, "reason");

                    p.state = P_SKIPPED;
                    p.reason = !strcmp(reason, "unaligned") ?
                               CAUSE_UNALIGNED : CAUSE_OUTSIDE;
                    g_assert_cmpstr(reason, ==, cause_reason(p.reason));
                } else if (!strcmp(state, "failed")) {
                    p.state = P_FAILED;
                    p.err = qdict_get_int(m, "errno");
                }
                g_array_append_val(got, p);
            }
            assert_pieces_equal(got, want, what);
        }
    }
    /* what failed unmaps left is still mapped, without its device */
    QLIST_FOREACH_ENTRY(list, e) {
        QDict *m = qobject_to(QDict, qlist_entry_obj(e));
        uint64_t iova = dict_u64(m, "iova");
        Piece p = { .first = iova, .last = iova + dict_u64(m, "size") - 1 };

        if (qdict_get_bool(m, "ram-device") && !qdict_haskey(m, "device")) {
            g_assert_cmpstr(qdict_get_str(m, "state"), ==, "mapped");
            g_array_append_val(stale, p);
        }
    }
    assert_pieces_equal(stale, want_stale, "leaked mappings");

    vfio_emu_qtest_check_hmp(c->t, list);
    qobject_unref(list);
}

static char *ranges_str(GArray *ranges, uint64_t *total)
{
    GString *s = g_string_new("");
    int i;

    *total = 0;
    for (i = 0; i < ranges->len; i++) {
        Piece *p = &g_array_index(ranges, Piece, i);

        g_string_append_printf(s, "%s0x%" PRIx64 "-0x%" PRIx64,
                               i ? ", " : "", p->first, p->last);
        *total += p->last - p->first + 1;
    }
    return g_string_free(s, false);
}

/* The BAR x-msix-relocation can take the table to: a free one, if any */
static int relocation_bar(VfioEmuQDev *d, const Layout *l)
{
    int i;

    for (i = 0; i < NBARS; i++) {
        if (!d->bar_size[i] && !(i && d->bar_mem64[i - 1])) {
            return i;
        }
    }
    return table_bar(l);
}

/* The number of address bits the usable IOVA ranges end at */
static int usable_bits(Ctx *c)
{
    Piece *last = &g_array_index(c->usable, Piece, c->usable->len - 1);

    return 64 - clz64(last->last);
}

/* Does the cause of @got, after "not DMA-mapped: ", read as @w's? */
static bool cause_is(Ctx *c, const VfioEmuQWarning *got, const Warning *w)
{
    g_autofree char *granule = size_to_str(c->granule);
    g_autofree char *want = NULL;

    switch (w->cause) {
    case CAUSE_EMULATED:
        want = g_strdup_printf("shares a %s page with memory QEMU emulates",
                               granule);
        break;
    case CAUSE_SMALL:
        want = g_strdup_printf("smaller than a %s page", granule);
        break;
    case CAUSE_PLACED:
        want = g_strdup_printf("not aligned to %s pages", granule);
        break;
    case CAUSE_VADDR:
        want = g_strdup_printf("QEMU's mapping is not aligned to %s",
                               granule);
        break;
    case CAUSE_OUTSIDE:
        want = g_strdup_printf("above the host IOMMU's %d-bit address limit",
                               usable_bits(c));
        break;
    case CAUSE_FAILED:
        want = g_strdup_printf("the host refused to map it (%s)",
                               strerror(w->err));
        break;
    default:
        g_assert_not_reached();
    }
    return !strcmp(got->cause, want);
}

/* A warning, by its parts, against what the model wants */
static void check_warning(Ctx *c, const VfioEmuQWarning *got, Warning *w)
{
    VfioEmuQDev *d = &c->t->devs[w->dev];
    const Layout *l = c->sc->dev[w->dev];
    g_autofree char *ranges = NULL;
    g_autofree char *size = NULL;
    g_autofree char *granule = size_to_str(c->granule);
    g_autofree char *host = size_to_str(host_page);
    g_autofree char *want = NULL;
    g_autofree char *want2 = NULL;
    uint64_t total;

    g_array_sort(w->ranges, piece_cmp);
    ranges = ranges_str(w->ranges, &total);
    size = size_to_str(total);
    g_assert_cmpstr(got->size, ==, size);
    g_assert_cmpstr(got->ranges, ==, ranges);
    g_assert_cmpstr(got->iommu_page, ==, granule);
    g_assert_cmpstr(got->host_page, ==, host);

    switch (w->cause) {
    case CAUSE_EMULATED:
        want = g_strdup_printf("x-msix-relocation=bar%d",
                               relocation_bar(d, l));
        g_assert_nonnull(strstr(got->hint, "MSI-X"));
        g_assert_nonnull(strstr(got->hint, want));
        break;
    case CAUSE_SMALL:
        g_assert_nonnull(strstr(got->hint, "no setting"));
        break;
    case CAUSE_PLACED:
        want = g_strdup_printf("0x%" PRIx64 ", which is not a multiple of %s",
                               d->bar_addr[w->bar], granule);
        g_assert_nonnull(strstr(got->hint, want));
        break;
    case CAUSE_VADDR:
        g_assert_nonnull(strstr(got->hint, "QEMU bug"));
        break;
    case CAUSE_OUTSIDE:
        g_assert_nonnull(got->iova_ranges);
        want = g_strdup_printf("phys-bits=%d", usable_bits(c));
        want2 = g_strdup_printf("<maxphysaddr mode='passthrough'"
                                " limit='%d'/>", usable_bits(c));
        g_assert_nonnull(strstr(got->hint, want));
        g_assert_nonnull(strstr(got->hint, want2));
        break;
    case CAUSE_FAILED:
        g_assert_nonnull(strstr(got->hint, w->err == ENOSPC ?
                                "dma_entry_limit" : "kernel log"));
        break;
    default:
        g_assert_not_reached();
    }
}

static const char *const cause_why[] = {
    [CAUSE_EMULATED] = "shares a page with the MSI-X table",
    [CAUSE_SMALL] = "smaller than a page",
    [CAUSE_PLACED] = "placed at an unaligned address",
    [CAUSE_VADDR] = "QEMU's mmap not aligned",
    [CAUSE_OUTSIDE] = "outside the IOVA ranges",
    [CAUSE_FAILED] = "the map failed",
};

/* An expected error line, removed from the list when found */
static bool match_error(Ctx *c, const char *line)
{
    int j;

    for (j = 0; j < c->want_err->len; j++) {
        const char *want = g_ptr_array_index(c->want_err, j);

        if (g_str_has_suffix(line, want) && !strstr(line, "warning:")) {
            g_ptr_array_remove_index(c->want_err, j);
            return true;
        }
    }
    return false;
}

/* An expected warning, checked and removed from the list when found */
static bool match_warning(Ctx *c, const char *msg)
{
    VfioEmuQWarning got;
    int j;

    if (!vfio_emu_qtest_parse_warning(msg, &got)) {
        return false;
    }
    for (j = 0; j < c->want_warn->len; j++) {
        Warning *w = g_ptr_array_index(c->want_warn, j);
        VfioEmuQDev *d = &c->t->devs[w->dev];
        g_autofree char *dev = g_strdup_printf("vfio-pci '%s' (%s)", d->id,
                                               d->name);
        g_autofree char *bar = g_strdup_printf("BAR %d", w->bar);

        if (!strcmp(got.device, dev) && !strcmp(got.region, bar) &&
            cause_is(c, &got, w)) {
            check_warning(c, &got, w);
            g_ptr_array_remove_index(c->want_warn, j);
            vfio_emu_qtest_warning_clear(&got);
            return true;
        }
    }
    vfio_emu_qtest_warning_clear(&got);
    return false;
}

/* QEMU's stderr got the warnings and errors due, and nothing else */
static void check_stderr(Ctx *c)
{
    g_auto(GStrv) lines = vfio_emu_qtest_take_messages(c->t);
    int i, j;

    for (i = 0; lines[i]; i++) {
        if (!match_error(c, lines[i]) && !match_warning(c, lines[i])) {
            g_error("unexpected on QEMU's stderr: %s", lines[i]);
        }
    }
    for (j = 0; j < c->want_warn->len; j++) {
        Warning *w = g_ptr_array_index(c->want_warn, j);
        g_autofree char *ranges = NULL;
        uint64_t total;

        g_array_sort(w->ranges, piece_cmp);
        ranges = ranges_str(w->ranges, &total);
        g_error("no warning about %s BAR %d (%s): %s",
                c->t->devs[w->dev].id, w->bar, cause_why[w->cause], ranges);
    }
    for (j = 0; j < c->want_err->len; j++) {
        g_error("no error \"%s\"", (char *)g_ptr_array_index(c->want_err, j));
    }
}

static void check_step(Ctx *c)
{
    check_table(c);
    vfio_emu_qtest_check_invariants(c->t);
    g_array_unref(vfio_emu_qtest_check_calls(c->t, c->allowed));
    check_query(c);
    check_stderr(c);
    memset(c->allowed, 0, sizeof(c->allowed));
}

/*
 * Running a scenario
 */

static void parse_usable(Ctx *c, const char *text)
{
    g_auto(GStrv) ranges = g_strsplit(text, ",", -1);
    int i;

    for (i = 0; ranges[i]; i++) {
        Piece p = { 0 };

        g_assert_cmpint(sscanf(ranges[i], "%" SCNx64 "-%" SCNx64, &p.first,
                               &p.last), ==, 2);
        g_array_append_val(c->usable, p);
    }
}

static void set_faults(Ctx *c)
{
    g_autoptr(GString) text = g_string_new("");
    int dev, b;

    for (dev = 0; dev < c->sc->ndevs; dev++) {
        for (b = 0; b < NBARS; b++) {
            const char *name = c->t->devs[dev].name;

            if (c->map_fault[dev][b]) {
                g_string_append_printf(text, "[fault map%d_%d]\nop = map\n"
                                       "errno = %d\nbacking = %s:bar%d\n",
                                       dev, b, c->map_fault[dev][b], name,
                                       b);
            }
            if (c->unmap_fault[dev][b]) {
                int f = c->unmap_fault[dev][b];

                g_string_append_printf(text, "[fault unmap%d_%d]\n"
                                       "op = unmap\nbacking = %s:bar%d\n",
                                       dev, b, name, b);
                if (f == UNMAPPED_NONE) {
                    g_string_append(text, "unmapped = none\n");
                } else if (f == UNMAPPED_MORE) {
                    g_string_append_printf(text, "unmapped = 0x%llx\n",
                                           UNMAPPED_SAYS);
                } else {
                    g_string_append_printf(text, "errno = %d\n", f);
                }
            }
        }
    }
    vfio_emu_qtest_set_faults(c->t, text->str);
}

/* Program the BARs like firmware: packed, naturally aligned */
static void program(Ctx *c, int dev)
{
    VfioEmuQDev *d = &c->t->devs[dev];
    uint64_t next32 = VFIO_EMU_QTEST_MEM32(dev);
    uint64_t next64 = VFIO_EMU_QTEST_MEM64(dev);
    int b;

    for (b = 0; b < NBARS; b++) {
        uint64_t size = d->bar_size[b], align = MAX(size, host_page);
        uint64_t *next = d->bar_mem64[b] ? &next64 : &next32;

        if (!size || d->bar_io[b]) {
            continue;
        }
        *next = ROUND_UP(*next, align);
        vfio_emu_qtest_set_bar(c->t, d, b, *next);
        *next += size;
    }
}

static void run_step(Ctx *c, const Step *s)
{
    VfioEmuQDev *d = &c->t->devs[s->dev];
    uint64_t addr;
    int b, i;

    switch (s->op) {
    case STEP_PROGRAM:
        /* with decoding off, no section changes */
        g_assert_false(d->decoding);
        program(c, s->dev);
        break;
    case STEP_DECODE:
        if (s->arg) {
            vfio_emu_qtest_set_decoding(c->t, d, true);
            if (!d->power) {
                c->allowed[0] = c->stuck_d3[s->dev] ? EFAULT : 0;
                bars_added(c, s->dev, -1);
            }
        } else {
            vfio_emu_qtest_set_decoding(c->t, d, false);
            bars_removed(c, s->dev);
        }
        break;
    case STEP_POWER:
        /*
         * QEMU decodes BARs in D0 only.  The stuck device stays in D3hot
         * whatever is written: the guest reads that back, but QEMU maps
         * its BARs, and the kernel refuses the pins (EFAULT).
         */
        g_assert_true(s->arg == 0 || s->arg == 3);
        g_assert_cmpint(c->sc->dev[s->dev]->pm, !=, 0);
        if (s->arg && d->decoding && !d->power) {
            bars_removed(c, s->dev);
        }
        c->stuck_d3[s->dev] |= s->arg && c->sc->dev[s->dev]->pm == PM_STUCK;
        g_assert_cmpint(vfio_emu_qtest_set_power(c->t, d, s->arg), ==,
                        c->stuck_d3[s->dev] ? 3 : s->arg);
        if (!s->arg && d->decoding) {
            c->allowed[0] = c->stuck_d3[s->dev] ? EFAULT : 0;
            bars_added(c, s->dev, -1);
        }
        break;
    case STEP_MOVE:
    case STEP_MOVE_TO:
        addr = s->op == STEP_MOVE ? d->bar_addr[s->bar] + s->arg : s->arg;
        /* one dword of the BAR changes */
        g_assert_cmphex(addr >> 32, ==, d->bar_addr[s->bar] >> 32);
        vfio_emu_qtest_set_bar(c->t, d, s->bar, addr);
        if (d->decoding && !d->power) {
            c->allowed[0] = c->stuck_d3[s->dev] ? EFAULT : 0;
            bar_removed(c, s->dev, s->bar);
            bars_added(c, s->dev, s->bar);
        }
        break;
    case STEP_UNPLUG:
        vfio_emu_qtest_unplug(c->t, d);
        bars_removed(c, s->dev);
        c->stuck_d3[s->dev] = false;
        /* a device plugged later is warned about afresh */
        memset(c->warned[s->dev], 0, sizeof(c->warned[s->dev]));
        if (!--c->plugged) {
            /* the container goes, and what leaked with it */
            c->entries = 0;
            g_array_set_size(c->stale, 0);
        }
        break;
    case STEP_REPLUG:
        vfio_emu_qtest_replug(c->t, d);
        if (!c->plugged++) {
            c->entries = c->ram->len;
        }
        break;
    case STEP_MSIX:
        /* the table stays trapped: nothing DMA-mapped changes */
        vfio_emu_qtest_set_msix(c->t, d, s->arg & MSIX_ENABLE,
                                s->arg & MSIX_MASK);
        break;
    case STEP_RESET:
        for (i = 0; i < c->sc->ndevs; i++) {
            VfioEmuQDev *di = &c->t->devs[i];

            if (di->pdev && di->decoding && !di->power) {
                bars_removed(c, i);
            }
            g_assert_false(c->stuck_d3[i]);
        }
        vfio_emu_qtest_system_reset(c->t);
        for (i = 0; i < c->sc->ndevs; i++) {
            if (c->t->devs[i].pdev) {
                program(c, i);
            }
        }
        break;
    case STEP_MAP_FAULT:
        c->map_fault[s->dev][s->bar] = s->arg;
        set_faults(c);
        break;
    case STEP_UNMAP_FAULT:
        c->unmap_fault[s->dev][s->bar] = s->arg;
        set_faults(c);
        break;
    default:
        g_assert_not_reached();
    }
    for (b = 0; b < NBARS; b++) {
        g_assert_true((d->decoding && !d->power) ||
                      !c->pieces[s->dev][b]->len);
    }
}

static void test_scenario(const void *opaque)
{
    const Scenario *sc = opaque;
    g_autofree char *container = NULL;
    Ctx c = { .sc = sc };
    int dev, b, i;
    uint64_t cover;

    c.t = vfio_emu_qtest_new(512 * MiB);
    if (!c.t) {
        return;
    }
    host_page = sc->host_page ?: qemu_real_host_page_size();
    c.granule = MAX(sc->min_page, host_page);
    c.usable = g_array_new(false, false, sizeof(Piece));
    c.stale = g_array_new(false, false, sizeof(Piece));
    c.want_warn = g_ptr_array_new_with_free_func(warning_free);
    c.want_err = g_ptr_array_new_with_free_func(g_free);
    parse_usable(&c, sc->iova_ranges ?: X86_IOVA);

    container = g_strdup_printf("[container]\niova_pgsizes = 0x%" PRIx64
                                "\niova_ranges = %s\ndma_entry_limit = %d\n",
                                sc->min_page | 2 * MiB,
                                sc->iova_ranges ?: X86_IOVA,
                                sc->dma_entry_limit ?: 65535);
    vfio_emu_qtest_add_config(c.t, container);
    if (sc->host_page) {
        g_autofree char *page = g_strdup_printf("host_page = 0x%" PRIx64,
                                                sc->host_page);

        vfio_emu_qtest_add_config(c.t, page);
    }
    g_assert_cmphex(vfio_emu_qtest_host_page(c.t), ==, host_page);
    for (dev = 0; dev < sc->ndevs; dev++) {
        const Layout *l = sc->dev[dev];
        g_autoptr(GString) keys = g_string_new("");
        VfioEmuQDev *d;

        for (b = 0; b < NBARS; b++) {
            if (l->bar_size[b]) {
                g_string_append_printf(keys, "bar%d = 0x%" PRIx64 "%s\n", b,
                                       l->bar_size[b], l->mem64 & (1 << b) ?
                                       " mem64 prefetch" : "");
            }
            c.pieces[dev][b] = g_array_new(false, false, sizeof(Piece));
        }
        if (l->msix_entries) {
            g_string_append_printf(keys, "msix_entries = %d\n"
                                   "msix_table = %d:0x%x\n"
                                   "msix_mappable = %s\n", l->msix_entries,
                                   l->table_bar, l->table_off,
                                   l->sparse ? "false" : "true");
        }
        if (l->pm) {
            g_string_append_printf(keys, "pm = true\npm_stuck = %s\n",
                                   l->pm == PM_STUCK ? "true" : "false");
        }
        d = vfio_emu_qtest_add_device(c.t, 10 + dev, keys->str);
        if (l->props) {
            vfio_emu_qtest_set_device_props(d, l->props);
        }
    }
    vfio_emu_qtest_capture_stderr(c.t);
    vfio_emu_qtest_start(c.t, NULL);

    /* what QEMU sees: the layout's BARs, and one added for the table */
    for (dev = 0; dev < sc->ndevs; dev++) {
        const Layout *l = sc->dev[dev];

        for (b = 0; b < NBARS; b++) {
            if (l->bar_size[b]) {
                g_assert_cmphex(c.t->devs[dev].bar_size[b], ==,
                                l->bar_size[b]);
            } else if (b != l->relocated_to) {
                g_assert_true(!c.t->devs[dev].bar_size[b] ||
                              (b && c.t->devs[dev].bar_mem64[b - 1]));
            }
        }
    }

    /* guest RAM, mapped at startup, stays as it is */
    c.ram = vfio_emu_qtest_mappings_of(c.t, NULL, -1);
    cover = 0;
    for (i = 0; i < c.ram->len; i++) {
        cover += g_array_index(c.ram, VfioEmuMapping, i).size;
    }
    g_assert_cmphex(cover, >=, 512 * MiB);
    c.entries = c.ram->len;
    c.plugged = sc->ndevs;
    if (sc->dma_entry_limit) {
        /* the scenario is built on this */
        g_assert_cmpint(c.entries, ==, sc->dma_entry_limit - 1);
    }
    check_step(&c);

    for (i = 0; i < MAX_STEPS && sc->steps[i].op != STEP_END; i++) {
        const Step *s = &sc->steps[i];
        int n = s->op == STEP_LIFE ? ARRAY_SIZE(life_steps) : 1;
        int j;

        for (j = 0; j < n; j++) {
            Step step = *s;

            if (s->op == STEP_LIFE) {
                step = life_steps[j];
                step.dev = s->dev;
                if (step.op == STEP_MOVE) {
                    step.bar = s->bar;
                    step.arg = s->arg;
                }
            }
            g_test_message("step %d.%d: op %d dev %d bar %d arg 0x%" PRIx64,
                           i, j, step.op, step.dev, step.bar, step.arg);
            run_step(&c, &step);
            check_step(&c);
        }
    }

    for (dev = 0; dev < sc->ndevs; dev++) {
        for (b = 0; b < NBARS; b++) {
            g_array_unref(c.pieces[dev][b]);
        }
    }
    g_array_unref(c.usable);
    g_array_unref(c.stale);
    g_array_unref(c.ram);
    g_ptr_array_unref(c.want_warn);
    g_ptr_array_unref(c.want_err);
    vfio_emu_qtest_free(c.t);
}

/*
 * Guest RAM: strict
 */

/* QEMU refuses to start; its stderr has all of @want */
static void expect_refusal(VfioEmuQTest *t, const char *args,
                           const char *const *want)
{
    g_autofree char *err = NULL;
    int status = vfio_emu_qtest_run_to_exit(t, args, &err);

    g_test_message("QEMU said: %s", err);
    g_assert_cmpint(status, ==, 1);
    for (; *want; want++) {
        if (!strstr(err, *want)) {
            g_error("QEMU's error \"%s\" lacks \"%s\"", err, *want);
        }
    }
}

static void test_ram_map_fault(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    static const char *const want[] = {
        "vfio 0000:01:00.0: failed to setup container for group 10",
        "memory listener initialization failed: Region pc.ram",
        "vfio_container_dma_map(", "= -14 (Bad address)", NULL
    };

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_config(t, "[fault ram]\nop = map\nerrno = EFAULT\n"
                              "backing = ram\n");
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    expect_refusal(t, NULL, want);
    vfio_emu_qtest_free(t);
}

/* RAM above 4 GiB on a host whose IOMMU stops at 4 GiB */
static void test_ram_outside_iova(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(3 * GiB);
    static const char *const want[] = {
        "vfio 0000:01:00.0: failed to setup container for group 10",
        "vfio_container_dma_map(", ", 0x100000000, 0x40000000, ",
        "= -22 (Invalid argument)",
        "Guest RAM at 0x100000000 lies outside the host IOMMU's usable IOVA"
        " ranges (0x0-0xfedfffff, 0xfef00000-0xffffffff)",
        "less memory", NULL
    };

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_config(t, "[container]\niova_ranges = "
                              "0-0xfedfffff,0xfef00000-0xffffffff\n");
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    expect_refusal(t, NULL, want);
    vfio_emu_qtest_free(t);
}

/* Hosts whose answers leave guest RAM unmappable: refused at realize */
typedef struct Refusal {
    const char *name;
    const char *container;          /* the [container] keys */
    const char *want[6];            /* what QEMU's error must hold */
} Refusal;

static const Refusal refusals[] = {
    {
        /* 2 MiB IOMMU pages: the BIOS ROM (256 KiB) can never be mapped */
        "2m-pages", "iova_pgsizes = 0x40200000", {
            "vfio 0000:01:00.0: failed to setup container for group 10",
            "Region pc.bios: vfio_container_dma_map(",
            "0xfffc0000, 0x40000, ", "= -22 (Invalid argument)",
            "Guest memory 'pc.bios' at 0xfffc0000 is not aligned to the host"
            " IOMMU's minimum page, 2 MiB: the host cannot map it for DMA.",
        },
    }, {
        /* 1 GiB: not even guest RAM at 0 */
        "1g-pages", "iova_pgsizes = 0x40000000", {
            "vfio 0000:01:00.0: failed to setup container for group 10",
            "Region pc.ram: vfio_container_dma_map(",
            "= -22 (Invalid argument)",
            "Guest memory 'pc.ram' at 0x0 is not aligned to the host IOMMU's"
            " minimum page, 1 GiB: the host cannot map it for DMA.",
        },
    }, {
        /* a host that allows no DMA mapping (DMA_AVAIL of 0) */
        "no-dma-entries", "dma_entry_limit = 0", {
            "vfio 0000:01:00.0: failed to setup container for group 10",
            "Region pc.ram: vfio_container_dma_map(",
            "= -28 (No space left on device)",
            "The host allows no more DMA mappings: it limits them per"
            " container (vfio_iommu_type1's dma_entry_limit module"
            " parameter).",
        },
    },
};

static void test_ram_refused(gconstpointer data)
{
    const Refusal *r = data;
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autofree char *cfg = NULL;

    if (!t) {
        return;
    }
    cfg = g_strdup_printf("[container]\n%s\n", r->container);
    vfio_emu_qtest_add_config(t, cfg);
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    expect_refusal(t, NULL, r->want);
    vfio_emu_qtest_free(t);
}

/* At runtime a guest RAM map that fails is a hardware error */
static void test_ram_hotplug_fault(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    struct rlimit no_core = { 0, 0 };
    g_autofree char *err = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GArray) before = NULL;
    g_autoptr(GArray) after = NULL;
    g_autoptr(GArray) ev = NULL;
    int status, i, failed = 0;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    vfio_emu_qtest_capture_stderr(t);
    vfio_emu_qtest_start(t, "-m 512M,slots=1,maxmem=1G "
                         "-object memory-backend-ram,id=mem1,size=256M");
    g_strfreev(vfio_emu_qtest_take_stderr(t));
    before = vfio_emu_qtest_mappings(t);
    g_array_unref(vfio_emu_qtest_check_calls(t, NULL));

    /* no core dump of the abort() */
    g_assert_cmpint(setrlimit(RLIMIT_CORE, &no_core), ==, 0);
    vfio_emu_qtest_set_faults(t, "[fault ram]\nop = map\nerrno = EFAULT\n"
                              "backing = ram\n");
    qtest_qmp_send(t->qts, "{'execute': 'device_add', 'arguments': {"
                   "'driver': 'pc-dimm', 'id': 'dimm1', 'memdev': 'mem1'}}");
    g_assert_cmpint(waitpid(qtest_pid(t->qts), &status, 0), ==,
                    qtest_pid(t->qts));
    g_assert_true(WIFSIGNALED(status));
    g_assert_cmpint(WTERMSIG(status), ==, SIGABRT);
    /* libqtest: the process is gone */
    g_assert_false(qtest_probe_child(t->qts));

    path = g_build_filename(t->dir, "stderr", NULL);
    g_assert_true(g_file_get_contents(path, &err, NULL, NULL));
    g_assert_nonnull(strstr(err, "vfio_container_dma_map("));
    g_assert_nonnull(strstr(err, "= -14 (Bad address)"));
    g_assert_nonnull(strstr(err, "hardware error: vfio: DMA mapping failed,"
                            " unable to continue"));

    /* one MAP of the DIMM was tried, and nothing else changed */
    ev = vfio_emu_qtest_take_events(t);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "MAP")) {
            g_assert_true(e->injected);
            g_assert_cmphex(e->size, ==, 256 * MiB);
            failed++;
        }
        g_assert_cmpstr(e->op, !=, "UNMAP");
    }
    g_assert_cmpint(failed, ==, 1);
    after = vfio_emu_qtest_mappings(t);
    g_assert_cmpint(after->len, ==, before->len);
    vfio_emu_qtest_free(t);
}

/*
 * QMP arguments
 */

static QDict *query_raw(QTestState *qts, const char *args)
{
    QObject *obj = qobject_from_json(args, &error_abort);

    return qtest_qmp(qts, "{'execute': 'x-query-vfio-dma-mappings',"
                     " 'arguments': %p}", obj);
}

static void assert_qmp_error(QTestState *qts, const char *args,
                             const char *desc)
{
    QDict *resp = query_raw(qts, args);
    QDict *error = qdict_get_qdict(resp, "error");

    g_assert_nonnull(error);
    g_assert_cmpstr(qdict_get_str(error, "class"), ==, "GenericError");
    g_assert_cmpstr(qdict_get_str(error, "desc"), ==, desc);
    qobject_unref(resp);
}

static QList *query(QTestState *qts, const char *args)
{
    QDict *resp = query_raw(qts, args);
    QList *list = qdict_get_qlist(resp, "return");

    g_assert_nonnull(list);
    qobject_ref(list);
    qobject_unref(resp);
    return list;
}

static void test_qmp_arguments(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    QList *all, *one, *by_path, *skipped;
    QDict *c;
    QListEntry *e;
    int n_all, n_skipped = 0;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_config(t, "[container]\niova_pgsizes = 0x10000\n");
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x2000000 mem64 prefetch\n"
                              "msix_entries = 16\nmsix_table = 0:0x2000\n");
    vfio_emu_qtest_capture_stderr(t);
    vfio_emu_qtest_start(t, NULL);
    vfio_emu_qtest_set_bar(t, &t->devs[0], 0, VFIO_EMU_QTEST_MEM64(0));
    vfio_emu_qtest_set_decoding(t, &t->devs[0], true);

    assert_qmp_error(t->qts, "{'device': 'nosuch'}",
                     "Device 'nosuch' not found");
    assert_qmp_error(t->qts, "{'device': 'rp0'}",
                     "Device 'rp0' is not a VFIO device");
    assert_qmp_error(t->qts, "{'state': 'bogus'}",
                     "Parameter 'state' does not accept value 'bogus'");
    assert_qmp_error(t->qts, "{'device': 42}",
                     "Invalid parameter type for 'device', expected: string");

    /* the device by id and by QOM path selects its container */
    all = query(t->qts, "{}");
    one = query(t->qts, "{'device': 'vfio0'}");
    by_path = query(t->qts, "{'device': '/machine/peripheral/vfio0'}");
    g_assert_cmpint(qlist_size(all), ==, 1);
    g_assert_true(qobject_is_equal(QOBJECT(all), QOBJECT(one)));
    g_assert_true(qobject_is_equal(QOBJECT(all), QOBJECT(by_path)));
    c = qobject_to(QDict, qlist_peek(all));
    g_assert_cmpstr(qdict_get_str(c, "backend"), ==, "legacy");
    g_assert_cmpuint(dict_u64(c, "page-sizes"), ==, 0x10000);
    g_assert_cmpuint(dict_u64(c, "min-page-size"), ==, 0x10000);
    g_assert_cmpuint(dict_u64(c, "dma-limit"), ==, 65535);
    n_all = qlist_size(qdict_get_qlist(c, "mappings"));

    /* state selects the entries */
    skipped = query(t->qts, "{'state': 'skipped'}");
    c = qobject_to(QDict, qlist_peek(skipped));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(c, "mappings"), e) {
        QDict *m = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpstr(qdict_get_str(m, "state"), ==, "skipped");
        n_skipped++;
    }
    /* the table's head [0, 0x2000) and [0x2100, 0x10000) */
    g_assert_cmpint(n_skipped, ==, 2);
    g_assert_cmpint(n_all, >, n_skipped);

    qobject_unref(all);
    qobject_unref(one);
    qobject_unref(by_path);
    qobject_unref(skipped);
    vfio_emu_qtest_free(t);
}

/* The entry of x-query-vfio-dma-mappings at @iova; qobject_unref() it */
static QDict *query_entry(VfioEmuQTest *t, uint64_t iova)
{
    QDict *resp = qtest_qmp(t->qts,
                            "{'execute': 'x-query-vfio-dma-mappings'}");
    QDict *found = NULL;
    QListEntry *ce, *me;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), ce) {
        QDict *c = qobject_to(QDict, qlist_entry_obj(ce));

        QLIST_FOREACH_ENTRY(qdict_get_qlist(c, "mappings"), me) {
            QDict *m = qobject_to(QDict, qlist_entry_obj(me));

            if (qdict_get_int(m, "iova") == iova) {
                found = m;
            }
        }
    }
    g_assert_nonnull(found);
    qobject_ref(found);
    qobject_unref(resp);
    return found;
}

/*
 * A guest puts a 16 KiB BAR over the BIOS ROM at the top of 4 GiB, on a
 * host whose page and IOMMU page are 64 KiB (aarch64, POWER).  vfio-pci
 * grows the sub-page BAR to a host page, which hides the ROM's last 64
 * KiB, and the rest of the ROM stays aligned: nothing unaligned reaches
 * guest RAM's strict policy (a failed map is fatal), and QEMU keeps
 * running.  BARs are naturally aligned, so on such a host no BAR leaves
 * an unaligned piece of ROM.  (With 4 KiB host pages and 64 KiB IOMMU
 * pages the ROM keeps an unaligned 48 KiB, which the host refuses, and
 * the VM dies: tests/vfio-fuzz/known/bar-over-bios-64k.)
 */
static void test_bar_over_bios(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autoptr(GArray) all = NULL;
    g_auto(GStrv) msgs = NULL;
    VfioEmuQDev *d;
    QDict *resp;
    int i;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_config(t, "[container]\niova_pgsizes = 0x10000\n"
                              "host_page = 0x10000\n");
    d = vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000\n");
    vfio_emu_qtest_capture_stderr(t);
    vfio_emu_qtest_start(t, NULL);
    vfio_emu_qtest_set_mem32_window(t, d, 0xfff00000, 0xffffffff);
    vfio_emu_qtest_set_bar(t, d, 0, 0xffff0000);
    vfio_emu_qtest_set_decoding(t, d, true);

    /* From the BAR up, the BAR's page is all that is mapped */
    all = vfio_emu_qtest_mappings(t);
    for (i = 0; i < all->len; i++) {
        VfioEmuMapping *m = &g_array_index(all, VfioEmuMapping, i);

        if (m->iova + m->size - 1 >= 0xffff0000) {
            g_assert_cmphex(m->iova, ==, 0xffff0000);
            g_assert_cmphex(m->size, ==, 0x10000);
            g_assert_cmpstr(m->backing, ==, "0000:01:00.0:bar0+0x0");
        }
    }
    vfio_emu_qtest_check_invariants(t);
    resp = qtest_qmp(t->qts, "{'execute': 'query-status'}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"), "status"),
                    ==, "running");
    qobject_unref(resp);

    /* The BAR goes away: the whole ROM is mapped again */
    vfio_emu_qtest_set_decoding(t, d, false);
    g_array_unref(all);
    all = vfio_emu_qtest_mappings(t);
    for (i = 0; i < all->len; i++) {
        VfioEmuMapping *m = &g_array_index(all, VfioEmuMapping, i);

        if (m->iova + m->size - 1 == 0xffffffff) {
            break;
        }
    }
    g_assert_cmpint(i, <, all->len);
    vfio_emu_qtest_check_invariants(t);
    msgs = vfio_emu_qtest_take_messages(t);
    g_assert_cmpstr(msgs[0], ==, NULL);
    vfio_emu_qtest_free(t);
}

/*
 * A host IOMMU that reports an empty page-size bitmap: one warning per
 * container, and BARs are mapped with the host page as the granule.  The
 * rest of the MSI-X table's page is not warned about, but the query
 * shows it.
 */
static void test_no_page_size(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    VfioEmuQDev *d;
    uint64_t base = VFIO_EMU_QTEST_MEM64(0);
    g_autoptr(GArray) maps = NULL;
    g_auto(GStrv) lines = NULL;
    int cycle, i;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_config(t, "[container]\niova_pgsizes = 0\n");
    d = vfio_emu_qtest_add_device(t, 10, "bar0 = 0x2000000 mem64 prefetch\n"
                                  "msix_entries = 64\n"
                                  "msix_table = 0:0x2000\n");
    vfio_emu_qtest_capture_stderr(t);
    vfio_emu_qtest_start(t, NULL);
    vfio_emu_qtest_set_bar(t, d, 0, base);

    for (cycle = 0; cycle < 2; cycle++) {
        vfio_emu_qtest_set_decoding(t, d, true);
        maps = vfio_emu_qtest_mappings_of(t, d, 0);
        /* the BAR less the MSI-X table's page, in 4 KiB granules */
        g_assert_cmpuint(maps->len, ==, 2);
        g_assert_cmphex(g_array_index(maps, VfioEmuMapping, 0).iova, ==,
                        base);
        g_assert_cmphex(g_array_index(maps, VfioEmuMapping, 0).size, ==,
                        0x2000);
        g_assert_cmphex(g_array_index(maps, VfioEmuMapping, 1).iova, ==,
                        base + 0x3000);
        g_assert_cmphex(g_array_index(maps, VfioEmuMapping, 1).size, ==,
                        0x2000000 - 0x3000);
        g_clear_pointer(&maps, g_array_unref);
        vfio_emu_qtest_check_invariants(t);

        lines = vfio_emu_qtest_take_messages(t);
        if (cycle == 0) {
            QDict *skipped = query_entry(t, base + 0x2400);

            /* the bitmap's warning (at startup), once */
            g_assert_cmpuint(g_strv_length(lines), ==, 1);
            g_assert_nonnull(strstr(lines[0], "warning: vfio: the host IOMMU"
                                    " reports no supported page size;"
                                    " assuming the host page size, 4 KiB"));
            g_assert_cmphex(qdict_get_int(skipped, "size"), ==, 0xc00);
            g_assert_cmpstr(qdict_get_str(skipped, "reason"), ==,
                            "unaligned");
            qobject_unref(skipped);
        } else {
            for (i = 0; lines[i]; i++) {
                g_error("decode cycle repeated a warning: %s", lines[i]);
            }
        }
        g_clear_pointer(&lines, g_strfreev);

        vfio_emu_qtest_set_decoding(t, d, false);
        maps = vfio_emu_qtest_mappings_of(t, d, 0);
        g_assert_cmpuint(maps->len, ==, 0);
        g_clear_pointer(&maps, g_array_unref);
    }
    /* guest RAM is still mapped */
    maps = vfio_emu_qtest_mappings_of(t, NULL, -1);
    g_assert_cmpuint(maps->len, >, 0);
    vfio_emu_qtest_free(t);
}

/*
 * A BAR placed where platform hardware covers part of it: q35's HPET
 * (0xfed00000-0xfed003ff) takes the first 1 KiB of a 16 KiB BAR at
 * 0xfed00000.  The rest of that page is not mapped, and the warning
 * names the HPET as the cause, not the BAR's address, which is aligned.
 */
static void test_covered_by_hpet(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    VfioEmuQDev *d;
    g_autoptr(GArray) maps = NULL;
    g_auto(GStrv) msgs = NULL;
    VfioEmuQWarning w;
    QDict *skipped;

    if (!t) {
        return;
    }
    d = vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000\n");
    vfio_emu_qtest_capture_stderr(t);
    vfio_emu_qtest_start(t, NULL);
    vfio_emu_qtest_set_mem32_window(t, d, 0xfed00000, 0xfedfffff);
    vfio_emu_qtest_set_bar(t, d, 0, 0xfed00000);
    vfio_emu_qtest_set_decoding(t, d, true);

    maps = vfio_emu_qtest_mappings_of(t, d, 0);
    g_assert_cmpuint(maps->len, ==, 1);
    g_assert_cmphex(g_array_index(maps, VfioEmuMapping, 0).iova, ==,
                    0xfed01000);
    g_assert_cmphex(g_array_index(maps, VfioEmuMapping, 0).size, ==, 0x3000);
    vfio_emu_qtest_check_invariants(t);
    skipped = query_entry(t, 0xfed00400);
    g_assert_cmpstr(qdict_get_str(skipped, "reason"), ==, "unaligned");
    g_assert_cmphex(qdict_get_int(skipped, "size"), ==, 0xc00);
    qobject_unref(skipped);

    msgs = vfio_emu_qtest_take_messages(t);
    g_assert_cmpuint(g_strv_length(msgs), ==, 1);
    g_assert_true(vfio_emu_qtest_parse_warning(msgs[0], &w));
    g_assert_cmpstr(w.device, ==, "vfio-pci 'vfio0' (0000:01:00.0)");
    g_assert_cmpstr(w.region, ==, "BAR 0");
    g_assert_cmpstr(w.size, ==, "3 KiB");
    g_assert_cmpstr(w.ranges, ==, "0xfed00400-0xfed00fff");
    g_assert_cmpstr(w.cause, ==, "partly covered by 'hpet', the rest is not"
                    " aligned to 4 KiB pages");
    g_assert_nonnull(strstr(w.hint, "'hpet' covers part of BAR 0"));
    g_assert_null(strstr(w.hint, "multiple of"));
    vfio_emu_qtest_warning_clear(&w);
    vfio_emu_qtest_free(t);
}

/* This QEMU's version, major * 100 + minor, from a machine of its own */
static int qemu_version(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(128 * MiB);
    QDict *resp, *v;
    int version;

    g_assert_nonnull(t);
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    vfio_emu_qtest_start(t, NULL);
    resp = qtest_qmp(t->qts, "{'execute': 'query-version'}");
    v = qdict_get_qdict(qdict_get_qdict(resp, "return"), "qemu");
    version = qdict_get_int(v, "major") * 100 + qdict_get_int(v, "minor");
    qobject_unref(resp);
    vfio_emu_qtest_free(t);
    return version;
}

/*
 * Guest RAM that a RamDiscardManager populates block by block (virtio-mem)
 * may need more DMA mappings than the host allows: the listener's
 * estimate at registration (every block one mapping, plus one per
 * possible memslot) says so.  QEMU 10.1 and later make it fatal: the
 * device is refused at realize, as for any guest RAM it cannot map; 10.0
 * only warns.  The series keeps each base's policy for guest RAM, and
 * never fails for RAM device sections (see the dma-entry-limit
 * scenario): here the 1 GiB of virtio-mem in 2 MiB blocks, 512 mappings,
 * against a limit of 600.
 */
static void test_ram_discard_limit(void)
{
    int version;
    VfioEmuQTest *t;
    g_autofree char *err = NULL;
    const char *msg = "possibly running out of DMA mappings";
    int status;

    if (!g_getenv("VFIO_EMU_PRELOAD")) {
        return;
    }
    version = qemu_version();
    t = vfio_emu_qtest_new(512 * MiB);
    vfio_emu_qtest_add_config(t, "[container]\ndma_entry_limit = 600\n");
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    vfio_emu_qtest_set_early_args(t, "-m 512M,maxmem=2G "
                                  "-object memory-backend-ram,id=vmem0,"
                                  "size=1G "
                                  "-device virtio-mem-pci,id=vmem,"
                                  "memdev=vmem0,block-size=2M");
    status = vfio_emu_qtest_run_to_exit(t, NULL, &err);
    g_test_message("QEMU %d.%d said: %s", version / 100, version % 100, err);
    g_assert_nonnull(strstr(err, msg));
    if (version >= 1001) {
        g_assert_cmpint(status, ==, 1);
        g_assert_nonnull(strstr(err, "vfio 0000:01:00.0: "));
    } else {
        g_assert_cmpint(status, ==, 0);
        g_assert_nonnull(strstr(err, "warning: "));
    }
    vfio_emu_qtest_free(t);
}

/* Does this QEMU unmap the whole IOVA space in one call (10.1 and later)? */
/*
 * Behind a vIOMMU (virtio-iommu, which translates from the start with
 * boot-bypass=off), the container's address space is one IOMMU section
 * over all 64 bits: nothing of guest RAM is mapped by the listener, and
 * removing the section (hot-unplug) unmaps everything.  QEMU 10.1 and
 * later ask for that with one VFIO_DMA_UNMAP_FLAG_ALL call (the host has
 * VFIO_UNMAP_ALL); 10.0 with two calls of 2^63 bytes, as the ioctl takes
 * no size of 2^64.  The record holds nothing of it.  (intel-iommu's
 * interrupt window splits its section in two: no unmap-all there.)
 */
static void test_viommu_unmap_all(void)
{
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) maps = NULL;
    QListEntry *qe;
    QDict *resp;
    QList *q;
    int i, all = 0, halves = 0;

    if (!t) {
        return;
    }
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    vfio_emu_qtest_set_early_args(t, "-device virtio-iommu-pci,"
                                  "boot-bypass=off");
    vfio_emu_qtest_start(t, NULL);
    maps = vfio_emu_qtest_mappings(t);
    g_assert_cmpint(maps->len, ==, 0);
    ev = vfio_emu_qtest_take_events(t);
    for (i = 0; i < ev->len; i++) {
        g_assert_cmpstr(g_array_index(ev, VfioEmuEvent, i).op, !=, "MAP");
    }

    /* the record has nothing mapped either */
    resp = qtest_qmp(t->qts, "{'execute': 'x-query-vfio-dma-mappings'}");
    q = qdict_get_qlist(resp, "return");
    g_assert_cmpint(qlist_size(q), ==, 1);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(qobject_to(QDict, qlist_peek(q)),
                                        "mappings"), qe) {
        QDict *m = qobject_to(QDict, qlist_entry_obj(qe));

        g_assert_cmpstr(qdict_get_str(m, "state"), !=, "mapped");
    }
    qobject_unref(resp);

    vfio_emu_qtest_unplug(t, &t->devs[0]);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (strcmp(e->op, "UNMAP")) {
            continue;
        }
        g_assert_cmpint(e->ret, ==, 0);
        if (e->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
            g_assert_cmphex(e->iova, ==, 0);
            g_assert_cmphex(e->size, ==, 0);
            all++;
        } else if (e->size == 1ULL << 63 &&
                   (e->iova == 0 || e->iova == 1ULL << 63)) {
            halves++;
        } else {
            g_error("unexpected UNMAP 0x%" PRIx64 "+0x%" PRIx64, e->iova,
                    e->size);
        }
    }
    if (vfio_emu_qtest_qemu_at_least(t, 10, 1)) {
        g_assert_cmpint(all, ==, 1);
        g_assert_cmpint(halves, ==, 0);
    } else {
        g_assert_cmpint(all, ==, 0);
        g_assert_cmpint(halves, ==, 2);
    }
    vfio_emu_qtest_free(t);
}

/* A listening unix socket at @path */
static int cpr_listen(const char *path)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(un.sun_path, path, sizeof(un.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&un, sizeof(un)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    return fd;
}

/* Accept on @lfd and read what comes until the peer closes */
static void cpr_drain(int lfd)
{
    char buf[65536];
    int fd = accept(lfd, NULL, NULL);

    g_assert_cmpint(fd, >=, 0);
    while (read(fd, buf, sizeof(buf)) > 0) {
        continue;
    }
    close(fd);
}

/* Every container's query entries, as "CONTAINER IOVA SIZE STATE" lines */
static char *cpr_query(VfioEmuQTest *t)
{
    QDict *resp = qtest_qmp(t->qts, "{'execute': "
                            "'x-query-vfio-dma-mappings'}");
    QList *list = qdict_get_qlist(resp, "return");
    GString *out = g_string_new("");
    QListEntry *ce, *me;
    int i = 0;

    QLIST_FOREACH_ENTRY(list, ce) {
        QDict *c = qobject_to(QDict, qlist_entry_obj(ce));

        QLIST_FOREACH_ENTRY(qdict_get_qlist(c, "mappings"), me) {
            QDict *m = qobject_to(QDict, qlist_entry_obj(me));

            g_string_append_printf(out, "%d 0x%" PRIx64 " 0x%" PRIx64 " %s\n",
                                   i, qdict_get_int(m, "iova"),
                                   qdict_get_int(m, "size"),
                                   qdict_get_str(m, "state"));
        }
        i++;
    }
    qobject_unref(resp);
    return g_string_free(out, false);
}

/*
 * CPR (cpr-transfer) that fails after the old process invalidated its
 * mappings' host addresses: the legacy container's fail notifier maps
 * every section again (vfio_container_region_add(..., cpr_remap)), with
 * VFIO_DMA_MAP_FLAG_VADDR.  The record must stay as it was: the same
 * ranges, once each; hot-unplug then unmaps each mapped range exactly
 * once.  Two containers (a vIOMMU, virtio-iommu in bypass, gives each
 * device an address space of its own); the emulation fails the second
 * one's VFIO_DMA_UNMAP_FLAG_VADDR, which fails the migration after the
 * first one's succeeded.  (A device on iommufd beside a legacy container
 * would do too, but QEMU 10.2.2 aborts at realize in that setup.)  CPR
 * of VFIO devices exists since QEMU 10.1: skipped before.
 */
static void test_cpr_remap(void)
{
    VfioEmuQTest *t;
    g_autofree char *main_path = NULL;
    g_autofree char *cpr_path = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    g_autoptr(GArray) ev = NULL;
    g_autoptr(GArray) maps = NULL;
    int count[8] = { 0 }, remapped[8] = { 0 }, unmapped[8] = { 0 };
    int main_fd, cpr_fd, i, c, nremapped = 0;
    const char *status;
    QDict *resp;

    t = vfio_emu_qtest_new(512 * MiB);
    if (!t) {
        return;
    }
    /*
     * No INTx: under TCG, QEMU 10.2.2's CPR notifier passes INTx to KVM's
     * irqfd calls with no KVM, and crashes.
     */
    vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\nintx = false\n");
    vfio_emu_qtest_add_device(t, 11, "bar0 = 0x4000 mem64\nintx = false\n");
    vfio_emu_qtest_set_early_args(t, "-device virtio-iommu-pci");
    vfio_emu_qtest_start(t, "-object memory-backend-memfd,id=ram0,size=512M"
                         " -machine memory-backend=ram0,aux-ram-share=on");
    if (!vfio_emu_qtest_qemu_at_least(t, 10, 1)) {
        g_test_skip("no CPR of VFIO devices before QEMU 10.1");
        vfio_emu_qtest_free(t);
        return;
    }
    vfio_emu_qtest_set_bar(t, &t->devs[0], 0, VFIO_EMU_QTEST_MEM64(0));
    vfio_emu_qtest_set_decoding(t, &t->devs[0], true);
    maps = vfio_emu_qtest_mappings(t);
    for (i = 0; i < maps->len; i++) {
        c = g_array_index(maps, VfioEmuMapping, i).container;
        g_assert_cmpint(c, <, ARRAY_SIZE(count));
        count[c]++;
    }
    before = cpr_query(t);
    g_array_unref(vfio_emu_qtest_take_events(t));

    main_path = g_build_filename(t->dir, "main.sock", NULL);
    cpr_path = g_build_filename(t->dir, "cpr.sock", NULL);
    main_fd = cpr_listen(main_path);
    cpr_fd = cpr_listen(cpr_path);
    vfio_emu_qtest_set_faults(t, "[fault cpr]\nop = unmap\nerrno = EIO\n"
                              "skip = 1\ncount = 1\n");
    resp = qtest_qmp(t->qts, "{'execute': 'migrate-set-parameters',"
                     " 'arguments': {'mode': 'cpr-transfer'}}");
    g_assert_true(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    resp = qtest_qmp(t->qts, "{'execute': 'migrate', 'arguments': {"
                     "'channels': ["
                     "{'channel-type': 'main', 'addr': {"
                     "'transport': 'socket', 'type': 'unix', 'path': %s}},"
                     "{'channel-type': 'cpr', 'addr': {"
                     "'transport': 'socket', 'type': 'unix', 'path': %s}}"
                     "]}}", main_path, cpr_path);
    if (!qdict_haskey(resp, "return")) {
        g_error("migrate: %s", qdict_get_str(qdict_get_qdict(resp, "error"),
                                             "desc"));
    }
    qobject_unref(resp);
    /* the new process: takes the CPR state and hangs up, then the stream */
    cpr_drain(cpr_fd);
    cpr_drain(main_fd);
    do {
        resp = qtest_qmp(t->qts, "{'execute': 'query-migrate'}");
        status = qdict_get_try_str(qdict_get_qdict(resp, "return"),
                                   "status");
        g_assert_nonnull(status);
        if (!strcmp(status, "failed")) {
            qobject_unref(resp);
            break;
        }
        g_assert_cmpstr(status, !=, "completed");
        qobject_unref(resp);
        g_usleep(10000);
    } while (true);
    close(main_fd);
    close(cpr_fd);

    /* one container's mappings got their address back, each once */
    ev = vfio_emu_qtest_take_events(t);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "MAP")) {
            g_assert_cmpint(e->ret, ==, 0);
            g_assert_true(e->flags & VFIO_DMA_MAP_FLAG_VADDR);
            remapped[e->container]++;
        }
    }
    for (c = 0; c < ARRAY_SIZE(count); c++) {
        g_assert_true(remapped[c] == 0 || remapped[c] == count[c]);
        nremapped += !!remapped[c];
    }
    g_assert_cmpint(nremapped, ==, 1);
    /* and the record is as it was */
    after = cpr_query(t);
    g_assert_cmpstr(after, ==, before);

    vfio_emu_qtest_unplug(t, &t->devs[0]);
    vfio_emu_qtest_unplug(t, &t->devs[1]);
    g_array_unref(ev);
    ev = vfio_emu_qtest_take_events(t);
    for (i = 0; i < ev->len; i++) {
        VfioEmuEvent *e = &g_array_index(ev, VfioEmuEvent, i);

        if (!strcmp(e->op, "UNMAP")) {
            g_assert_cmpint(e->ret, ==, 0);
            g_assert_cmphex(e->unmapped, ==, e->size);
            unmapped[e->container]++;
        }
    }
    for (c = 0; c < ARRAY_SIZE(count); c++) {
        g_assert_cmpint(unmapped[c], ==, count[c]);
    }
    vfio_emu_qtest_free(t);
}

/*
 * A host whose VFIO_IOMMU_GET_INFO answer is malformed: QEMU says so, once,
 * ignores what it cannot read, and runs (guest RAM and the BAR mapped)
 */
typedef struct Malformed {
    const char *how;            /* vfio-emu's [container] malformed_info */
    const char *says;           /* in the warning */
} Malformed;

static const Malformed malformed[] = {
    { "cap-loop", "capability chain goes back from offset" },
    { "cap-past-argsz", "capability chain leaves the" },
    { "nr-iovas", "IOVA range capability claims 268435456 ranges" },
    { "range-wrap", "IOVA range 0xfedfffff-0x0 ends before it starts" },
    { "no-ranges", "IOVA range capability holds no usable range" },
    { "ranges-unsorted", "IOVA ranges are not in ascending order and"
      " disjoint: 0x0-0xfedfffff follows 0xfef00000-0xffffffffffff; QEMU"
      " uses their union" },
    { "ranges-overlap", "IOVA ranges are not in ascending order and"
      " disjoint: 0xfef00000-0xffffffffffff follows 0x0-0xfef00fff; QEMU"
      " uses their union" },
};

static void test_malformed_info(gconstpointer data)
{
    const Malformed *m = data;
    VfioEmuQTest *t = vfio_emu_qtest_new(512 * MiB);
    g_autofree char *cfg = NULL;
    g_autoptr(GArray) maps = NULL;
    g_auto(GStrv) msgs = NULL;
    VfioEmuQDev *d;

    if (!t) {
        return;
    }
    cfg = g_strdup_printf("[container]\nmalformed_info = %s\n", m->how);
    vfio_emu_qtest_add_config(t, cfg);
    d = vfio_emu_qtest_add_device(t, 10, "bar0 = 0x4000 mem64\n");
    vfio_emu_qtest_capture_stderr(t);
    vfio_emu_qtest_start(t, NULL);
    vfio_emu_qtest_set_bar(t, d, 0, VFIO_EMU_QTEST_MEM64(0));
    vfio_emu_qtest_set_decoding(t, d, true);

    msgs = vfio_emu_qtest_take_messages(t);
    g_assert_cmpuint(g_strv_length(msgs), ==, 1);
    g_assert_nonnull(strstr(msgs[0], "warning: vfio: the host's"));
    g_assert_nonnull(strstr(msgs[0], m->says));
    maps = vfio_emu_qtest_mappings_of(t, NULL, -1);
    g_assert_cmpuint(maps->len, >, 0);
    g_clear_pointer(&maps, g_array_unref);
    maps = vfio_emu_qtest_mappings_of(t, d, 0);
    g_assert_cmpuint(maps->len, ==, 1);
    vfio_emu_qtest_check_invariants(t);
    vfio_emu_qtest_free(t);
}

int main(int argc, char **argv)
{
    int i;

    g_test_init(&argc, &argv, NULL);
    host_page = qemu_real_host_page_size();

    for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
        g_autofree char *path = g_strdup_printf("/vfio-dma-listener/%s",
                                                scenarios[i].name);

        qtest_add_data_func(path, &scenarios[i], test_scenario);
    }
    qtest_add_func("/vfio-dma-listener/ram/map-fault", test_ram_map_fault);
    qtest_add_func("/vfio-dma-listener/ram/outside-iova",
                   test_ram_outside_iova);
    for (i = 0; i < ARRAY_SIZE(refusals); i++) {
        g_autofree char *path = g_strdup_printf("/vfio-dma-listener/ram/%s",
                                                refusals[i].name);

        qtest_add_data_func(path, &refusals[i], test_ram_refused);
    }
    qtest_add_func("/vfio-dma-listener/ram/hotplug-fault",
                   test_ram_hotplug_fault);
    qtest_add_func("/vfio-dma-listener/qmp/arguments", test_qmp_arguments);
    qtest_add_func("/vfio-dma-listener/no-page-size", test_no_page_size);
    qtest_add_func("/vfio-dma-listener/covered-by-hpet", test_covered_by_hpet);
    qtest_add_func("/vfio-dma-listener/64k-host/bar-over-bios",
                   test_bar_over_bios);
    qtest_add_func("/vfio-dma-listener/viommu-unmap-all",
                   test_viommu_unmap_all);
    qtest_add_func("/vfio-dma-listener/cpr-remap", test_cpr_remap);
    qtest_add_func("/vfio-dma-listener/ram/discard-limit",
                   test_ram_discard_limit);
    for (i = 0; i < ARRAY_SIZE(malformed); i++) {
        g_autofree char *path = g_strdup_printf(
            "/vfio-dma-listener/malformed-info/%s", malformed[i].how);

        qtest_add_data_func(path, &malformed[i], test_malformed_info);
    }

    return g_test_run();
}
