/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * Unit tests of vfio-emu, the user-space model of the VFIO UAPI
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The model is driven directly (no LD_PRELOAD): each test makes the calls
 * QEMU makes and checks what the kernel's type1 and vfio-pci drivers would
 * answer.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/vfio.h>

#include "qemu/bswap.h"
#include "standard-headers/linux/pci_regs.h"
#include "../qtest/vfio-emu/vfio-emu.h"
#include "../qtest/vfio-emu/vfio-emu-state.h"

#define DEV "0000:01:00.0"
#define CFG_OFF VFIO_EMU_REGION_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX)

static const char *base_config =
    "[device " DEV "]\n"
    "group = 5\n"
    "bar0 = 0x4000 mem64\n"
    "bar2 = 0x100 io\n"
    "bar3 = 0x1000 mem32 prefetch\n"
    "bar4 = 0x100\n"
    "rom = 0x8000\n"
    "msix_entries = 4\n"
    "msix_table = 0:0x2000\n"
    "msix_pba = 0:0x3000\n";

typedef struct Fixture {
    char *dir;
    VfioEmu *emu;
    int container;
    int group;
    int device;
} Fixture;

static VfioEmu *new_emu(Fixture *f, const char *config)
{
    g_autofree char *errmsg = NULL;

    f->dir = g_dir_make_tmp("vfio-emu-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->emu = vfio_emu_new_from_data(config, f->dir, &errmsg);
    if (!f->emu) {
        g_error("config: %s", errmsg);
    }
    return f->emu;
}

/* Container + group 5 + TYPE1v2 (or @type) + device fd, as QEMU does */
static void setup_type(Fixture *f, const char *config, int type)
{
    struct vfio_group_status status = { .argsz = sizeof(status) };

    new_emu(f, config);
    f->group = vfio_emu_open(f->emu, "/dev/vfio/5", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(f->group, >=, 0);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->group, VFIO_GROUP_GET_STATUS,
                                   &status), ==, 0);
    g_assert_cmphex(status.flags, ==, VFIO_GROUP_FLAGS_VIABLE);
    f->container = vfio_emu_open(f->emu, "/dev/vfio/vfio", O_RDWR);
    g_assert_cmpint(f->container, >=, 0);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container,
                                   VFIO_GET_API_VERSION, NULL), ==,
                    VFIO_API_VERSION);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_CHECK_EXTENSION,
                                   (void *)VFIO_TYPE1v2_IOMMU), ==, 1);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->group, VFIO_GROUP_SET_CONTAINER,
                                   &f->container), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_SET_IOMMU,
                                   (void *)(uintptr_t)type), ==, 0);
    f->device = vfio_emu_ioctl(f->emu, f->group, VFIO_GROUP_GET_DEVICE_FD,
                               (void *)DEV);
    g_assert_cmpint(f->device, >=, 0);
}

static void setup(Fixture *f, const char *config)
{
    setup_type(f, config, VFIO_TYPE1v2_IOMMU);
}

static void teardown(Fixture *f)
{
    g_autofree char *cmd = NULL;

    vfio_emu_free(f->emu);
    cmd = g_strdup_printf("rm -rf %s", f->dir);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(f->dir);
}

/* Anonymous memory to map, @pages 4K pages, aligned to @align */
static uint64_t alloc_mem(size_t pages, size_t align)
{
    size_t len = pages * 4096 + align;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    g_assert(p != MAP_FAILED);
    return ROUND_UP((uintptr_t)p, align);
}

static int do_map(Fixture *f, uint64_t iova, uint64_t size, uint64_t vaddr,
                  uint32_t flags)
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = flags,
        .vaddr = vaddr,
        .iova = iova,
        .size = size,
    };

    return vfio_emu_ioctl(f->emu, f->container, VFIO_IOMMU_MAP_DMA, &map) ?
           -errno : 0;
}

static int map_rw(Fixture *f, uint64_t iova, uint64_t size, uint64_t vaddr)
{
    return do_map(f, iova, size, vaddr,
                  VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
}

/* Returns 0 or -errno; *@unmapped gets what the call left in size */
static int do_unmap(Fixture *f, uint64_t iova, uint64_t size, uint32_t flags,
                    uint64_t *unmapped)
{
    struct vfio_iommu_type1_dma_unmap unmap = {
        .argsz = sizeof(unmap),
        .flags = flags,
        .iova = iova,
        .size = size,
    };
    int ret = vfio_emu_ioctl(f->emu, f->container, VFIO_IOMMU_UNMAP_DMA,
                             &unmap) ? -errno : 0;

    *unmapped = unmap.size;
    return ret;
}

static GArray *mappings(Fixture *f)
{
    return vfio_emu_read_mappings(f->dir);
}

static void test_config_errors(void)
{
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        { "[device a]\nbar0 = 0x1000\n", "[device a] group: missing" },
        { "[device a]\ngroup = x\n", "[device a] group:" },
        { "[device a]\ngroup = 1\nbar0 = 0x3000\n",
          "[device a] bar0: size 0x3000 is not a power of two" },
        { "[device a]\ngroup = 1\nbar1 = 0x1000 mem65\n",
          "[device a] bar1: unknown token 'mem65'" },
        { "[device a]\ngroup = 1\nbar0 = 0x1000 mem64\nbar1 = 0x1000\n",
          "[device a] bar1: slot used by 64-bit bar0" },
        { "[device a]\ngroup = 1\nbar5 = 0x1000 mem64\n", "[device a] bar5:" },
        { "[device a]\ngroup = 1\nbar0 = 8\n", "[device a] bar0:" },
        { "[device a]\ngroup = 1\nrom = 0x100\n", "[device a] rom:" },
        { "[device a]\ngroup = 1\nbar0 = 0x1000\nmsix_entries = 4\n"
          "msix_table = 0:0xff8\n", "[device a] msix_table:" },
        { "[device a]\ngroup = 1\nbar0 = 0x1000\nmsix_entries = 4\n"
          "msix_pba = 1:0\n", "[device a] msix_pba:" },
        { "[device a]\ngroup = 1\nmsix_entries = 4\n",
          "[device a] msix_table:" },
        { "[device a]\ngroup = 1\nmsix_mappable = maybe\n",
          "[device a] msix_mappable:" },
        { "[device a]\ngroup = 1\nvendor = 1\n",
          "[device a] vendor: unknown key" },
        { "[container]\niova_pgsizes = 0x800\n",
          "[container] iova_pgsizes:" },
        { "[container]\niova_pgsizes = lots\n",
          "[container] iova_pgsizes:" },
        { "[container]\niova_ranges = 0x2000-0x1000\n",
          "[container] iova_ranges:" },
        { "[container]\niova_ranges = 0-0x2000,0x1000-0x3000\n",
          "[container] iova_ranges: ranges must be sorted" },
        { "[container]\ndma_entry_limit = -1\n",
          "[container] dma_entry_limit:" },
        { "[container]\nmigration_cap = yes please\n",
          "[container] migration_cap:" },
        { "[container]\npgsizes = 0x1000\n",
          "[container] pgsizes: unknown key" },
        { "[fault f]\nerrno = EFAULT\n", "[fault f] op: missing" },
        { "[fault f]\nop = map\n", "[fault f] errno: missing" },
        { "[fault f]\nop = remap\nerrno = EIO\n", "[fault f] op:" },
        { "[fault f]\nop = map\nerrno = EWHAT\n", "[fault f] errno:" },
        { "[fault f]\nop = map\nerrno = EIO\niova = 5\n", "[fault f] iova:" },
        { "[fault f]\nop = map\nerrno = EIO\ncount = many\n",
          "[fault f] count:" },
        { "[devices a]\n", "[devices a]: unknown group" },
        { "not a key file\n", "syntax:" },
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *errmsg = NULL;
        VfioEmu *emu = vfio_emu_new_from_data(cases[i].text, NULL, &errmsg);

        g_assert_null(emu);
        g_assert_nonnull(errmsg);
        if (!strstr(errmsg, cases[i].expect)) {
            g_error("case %d: '%s' does not contain '%s'", i, errmsg,
                    cases[i].expect);
        }
    }

    /* From a file: the message names the file */
    {
        g_autofree char *errmsg = NULL;
        g_autofree char *path = NULL;
        int fd = g_file_open_tmp("vfio-emu-cfg-XXXXXX", &path, NULL);

        g_assert_cmpint(fd, >=, 0);
        close(fd);
        g_assert_true(g_file_set_contents(path, "[device a]\n", -1, NULL));
        g_assert_null(vfio_emu_new(path, NULL, &errmsg));
        g_assert_nonnull(strstr(errmsg, path));
        g_assert_nonnull(strstr(errmsg, "[device a] group: missing"));
        unlink(path);
    }

    /* The runtime faults file only takes [fault NAME] */
    {
        g_autofree char *errmsg = NULL;

        g_assert_true(vfio_emu_check_faults("[fault a]\nop = any\n"
                                            "errno = 5\n", &errmsg));
        g_assert_false(vfio_emu_check_faults("[container]\n", &errmsg));
        g_assert_nonnull(strstr(errmsg, "[container]: unknown group"));
    }
}

static void test_open(void)
{
    Fixture f = { 0 };
    int fd, c;

    new_emu(&f, base_config);
    fd = vfio_emu_open(f.emu, "/dev/vfio/6", O_RDWR);
    g_assert_cmpint(fd, ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);
    fd = vfio_emu_open(f.emu, "/dev/vfio/devices/vfio0", O_RDWR);
    g_assert_cmpint(errno, ==, ENOENT);

    fd = vfio_emu_open(f.emu, "/dev/vfio/5", O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_true(vfio_emu_owns_fd(f.emu, fd));
    g_assert_cmpint(vfio_emu_open(f.emu, "/dev/vfio/5", O_RDWR), ==, -1);
    g_assert_cmpint(errno, ==, EBUSY);

    /* No device before the container has an IOMMU */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, fd, VFIO_GROUP_GET_DEVICE_FD,
                                   (void *)DEV), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);

    c = vfio_emu_open(f.emu, "/dev/vfio/vfio", O_RDWR);
    g_assert_cmpint(c, >=, 0);
    /* SET_IOMMU needs a group; IOMMU ioctls need SET_IOMMU */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_SET_IOMMU,
                                   (void *)VFIO_TYPE1v2_IOMMU), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_CHECK_EXTENSION,
                                   (void *)VFIO_SPAPR_TCE_IOMMU), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_CHECK_EXTENSION,
                                   (void *)VFIO_UPDATE_VADDR), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, fd, VFIO_GROUP_SET_CONTAINER,
                                   &fd), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, fd, VFIO_GROUP_SET_CONTAINER,
                                   &c), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, fd, VFIO_GROUP_SET_CONTAINER,
                                   &c), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_IOMMU_GET_INFO, NULL), ==,
                    -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_SET_IOMMU,
                                   (void *)VFIO_SPAPR_TCE_IOMMU), ==, -1);
    g_assert_cmpint(errno, ==, ENODEV);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_SET_IOMMU,
                                   (void *)VFIO_TYPE1v2_IOMMU), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, VFIO_SET_IOMMU,
                                   (void *)VFIO_TYPE1v2_IOMMU), ==, -1);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, fd, VFIO_GROUP_GET_DEVICE_FD,
                                   (void *)"0000:02:00.0"), ==, -1);
    g_assert_cmpint(errno, ==, ENODEV);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, c, 0x3b99, NULL), ==, -1);
    g_assert_cmpint(errno, ==, ENOTTY);

    g_assert_cmpint(vfio_emu_close(f.emu, fd), ==, 0);
    g_assert_false(vfio_emu_owns_fd(f.emu, fd));
    g_assert_cmpint(vfio_emu_close(f.emu, c), ==, 0);
    teardown(&f);
}

static struct vfio_info_cap_header *find_cap(void *info, uint32_t off,
                                             uint16_t id)
{
    while (off) {
        struct vfio_info_cap_header *hdr = info + off;

        if (hdr->id == id) {
            return hdr;
        }
        off = hdr->next;
    }
    return NULL;
}

/* VFIO_IOMMU_GET_INFO the way QEMU calls it: two passes on argsz */
static struct vfio_iommu_type1_info *get_iommu_info(Fixture *f)
{
    struct vfio_iommu_type1_info *info = g_new0(struct vfio_iommu_type1_info,
                                                1);

    info->argsz = sizeof(*info);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_IOMMU_GET_INFO,
                                   info), ==, 0);
    if (info->argsz > sizeof(*info)) {
        uint32_t argsz = info->argsz;

        /* First pass: flags say there are caps, none were copied */
        g_assert_true(info->flags & VFIO_IOMMU_INFO_CAPS);
        g_assert_cmpint(info->cap_offset, ==, 0);
        info = g_realloc(info, argsz);
        memset(info, 0, argsz);
        info->argsz = argsz;
        g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container,
                                       VFIO_IOMMU_GET_INFO, info), ==, 0);
        g_assert_cmpint(info->argsz, ==, argsz);
        g_assert_cmpint(info->cap_offset, ==, sizeof(*info));
    }
    return info;
}

static void test_iommu_info(void)
{
    Fixture f = { 0 };
    g_autofree struct vfio_iommu_type1_info *info = NULL;
    struct vfio_iommu_type1_info small = { .argsz = 8 };
    struct vfio_iommu_type1_info_cap_iova_range *ranges;
    struct vfio_iommu_type1_info_dma_avail *avail;
    struct vfio_iommu_type1_info_cap_migration *mig;

    setup(&f, base_config);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.container, VFIO_IOMMU_GET_INFO,
                                   &small), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);

    info = get_iommu_info(&f);
    g_assert_cmphex(info->flags, ==,
                    VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    g_assert_cmphex(info->iova_pgsizes, ==, 0x40201000);
    mig = (void *)find_cap(info, info->cap_offset,
                           VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
    g_assert_nonnull(mig);
    g_assert_cmphex(mig->pgsize_bitmap, ==, 0x1000);
    avail = (void *)find_cap(info, info->cap_offset,
                             VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
    g_assert_nonnull(avail);
    g_assert_cmpint(avail->avail, ==, 65535);
    ranges = (void *)find_cap(info, info->cap_offset,
                              VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
    g_assert_nonnull(ranges);
    g_assert_cmpint(ranges->nr_iovas, ==, 2);
    g_assert_cmphex(ranges->iova_ranges[0].start, ==, 0);
    g_assert_cmphex(ranges->iova_ranges[0].end, ==, 0xfedfffff);
    g_assert_cmphex(ranges->iova_ranges[1].start, ==, 0xfef00000);
    g_assert_cmphex(ranges->iova_ranges[1].end, ==, 0xffffffffffffULL);

    /* dma_avail counts down with mappings */
    g_assert_cmpint(map_rw(&f, 0, 0x1000, alloc_mem(1, 4096)), ==, 0);
    g_free(info);
    info = get_iommu_info(&f);
    avail = (void *)find_cap(info, info->cap_offset,
                             VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
    g_assert_cmpint(avail->avail, ==, 65534);
    teardown(&f);
}

static void test_iommu_info_config(void)
{
    Fixture f = { 0 };
    g_autofree struct vfio_iommu_type1_info *info = NULL;
    g_autofree char *cfg = NULL;

    /* No PGSIZES flag, no caps at all: one pass */
    cfg = g_strconcat(base_config, "[container]\niova_pgsizes = none\n"
                      "iova_ranges = none\ndma_avail_cap = false\n"
                      "migration_cap = false\n", NULL);
    setup(&f, cfg);
    info = get_iommu_info(&f);
    g_assert_cmphex(info->flags, ==, 0);
    g_assert_cmpint(info->argsz, ==, sizeof(*info));
    /* Then MAP uses 4K and has no range check */
    g_assert_cmpint(map_rw(&f, 0xfee00000, 0x1000, alloc_mem(1, 4096)), ==,
                    0);
    teardown(&f);

    /* A bitmap of 0 is reported as such */
    g_free(cfg);
    cfg = g_strconcat(base_config, "[container]\niova_pgsizes = 0\n"
                      "iova_ranges = 0x1000-0x1fffff\n", NULL);
    setup(&f, cfg);
    g_free(info);
    info = get_iommu_info(&f);
    g_assert_cmphex(info->flags & VFIO_IOMMU_INFO_PGSIZES, ==,
                    VFIO_IOMMU_INFO_PGSIZES);
    g_assert_cmphex(info->iova_pgsizes, ==, 0);
    g_assert_cmpint(map_rw(&f, 0, 0x1000, alloc_mem(1, 4096)), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0x1000, 0x1000, alloc_mem(1, 4096)), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x1ff000, 0x2000, alloc_mem(2, 4096)), ==,
                    -EINVAL);
    teardown(&f);
}

static void test_map_errors(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(16, 0x10000);
    struct vfio_iommu_type1_dma_map map = { .argsz = 8 };
    uint8_t *hole;

    setup(&f, base_config);

    /* argsz, unknown flags */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.container, VFIO_IOMMU_MAP_DMA,
                                   &map), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(do_map(&f, 0, 0x1000, mem, 0x3 | 0x8), ==, -EINVAL);
    /* no READ/WRITE */
    g_assert_cmpint(do_map(&f, 0, 0x1000, mem, 0), ==, -EINVAL);
    /* size 0, unaligned iova, size, vaddr */
    g_assert_cmpint(map_rw(&f, 0, 0, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0x800, 0x1000, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0, 0x1800, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0, 0x1000, mem + 0x10), ==, -EINVAL);
    /* wrap-around of iova and of vaddr */
    g_assert_cmpint(map_rw(&f, 0xfffffffffffff000ULL, 0x2000, mem), ==,
                    -EINVAL);
    g_assert_cmpint(map_rw(&f, 0, 0x2000, 0xfffffffffffff000ULL), ==,
                    -EINVAL);
    /* outside the IOVA ranges: the MSI window, beyond 48 bits */
    g_assert_cmpint(map_rw(&f, 0xfee00000, 0x1000, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0xfedff000, 0x2000, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 1ULL << 48, 0x1000, mem), ==, -EINVAL);
    /* a vaddr range that is not mapped, wholly or in part */
    hole = mmap(NULL, 0x3000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert(hole != MAP_FAILED);
    munmap(hole + 0x1000, 0x1000);
    g_assert_cmpint(map_rw(&f, 0, 0x1000, (uintptr_t)hole + 0x1000), ==,
                    -EFAULT);
    g_assert_cmpint(map_rw(&f, 0, 0x3000, (uintptr_t)hole), ==, -EFAULT);

    /* EEXIST for any overlap, checked before the IOVA ranges */
    g_assert_cmpint(map_rw(&f, 0x10000, 0x4000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x10000, 0x4000, mem), ==, -EEXIST);
    g_assert_cmpint(map_rw(&f, 0xf000, 0x2000, mem), ==, -EEXIST);
    g_assert_cmpint(map_rw(&f, 0x13000, 0x1000, mem), ==, -EEXIST);
    g_assert_cmpint(map_rw(&f, 0x8000, 0x10000, mem), ==, -EEXIST);
    /* adjacent is fine, also read-only */
    g_assert_cmpint(do_map(&f, 0x14000, 0x1000, mem,
                           VFIO_DMA_MAP_FLAG_READ), ==, 0);
    g_assert_cmpint(map_rw(&f, 0xf000, 0x1000, mem), ==, 0);
    teardown(&f);
}

static void test_map_limit_and_pgsize(void)
{
    Fixture f = { 0 };
    g_autofree char *cfg = NULL;
    uint64_t mem = alloc_mem(32, 0x10000), unmapped;

    cfg = g_strconcat(base_config, "[container]\ndma_entry_limit = 2\n"
                      "iova_pgsizes = 0xfffffffffff0000\n", NULL);
    setup(&f, cfg);
    /* 64K pages: 4K alignment is not enough */
    g_assert_cmpint(map_rw(&f, 0x1000, 0x10000, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0, 0x1000, mem), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0, 0x10000, mem + 0x1000), ==, -EINVAL);
    g_assert_cmpint(map_rw(&f, 0, 0x10000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x10000, 0x10000, mem), ==, 0);
    /* ENOSPC after the limit, before the IOVA range check; not EEXIST */
    g_assert_cmpint(map_rw(&f, 0x20000, 0x10000, mem), ==, -ENOSPC);
    g_assert_cmpint(map_rw(&f, 0xfee00000, 0x10000, mem), ==, -ENOSPC);
    g_assert_cmpint(map_rw(&f, 0x10000, 0x10000, mem), ==, -EEXIST);
    /* UNMAP alignment follows the bitmap too */
    g_assert_cmpint(do_unmap(&f, 0x1000, 0x10000, 0, &unmapped), ==,
                    -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0x10000, 0x1000, 0, &unmapped), ==,
                    -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0x10000, 0x10000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x10000);
    g_assert_cmpint(map_rw(&f, 0x20000, 0x10000, mem), ==, 0);
    teardown(&f);
}

static void test_unmap(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(16, 4096), unmapped;
    g_autoptr(GArray) m = NULL;

    setup(&f, base_config);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x104000, 0x2000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x1000, mem), ==, 0);

    /* empty space: success, size 0 */
    g_assert_cmpint(do_unmap(&f, 0x300000, 0x1000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0);
    /* unaligned, size 0, wrap */
    g_assert_cmpint(do_unmap(&f, 0x100800, 0x1000, 0, &unmapped), ==,
                    -EINVAL);
    g_assert_cmphex(unmapped, ==, 0x1000);      /* not written back */
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x800, 0, &unmapped), ==,
                    -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0, 0, &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0xfffffffffffff000ULL, 0x2000, 0,
                             &unmapped), ==, -EINVAL);
    /* v2: bisecting the start or the end of a mapping */
    g_assert_cmpint(do_unmap(&f, 0x101000, 0x3000, 0, &unmapped), ==,
                    -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x5000, 0, &unmapped), ==,
                    -EINVAL);
    g_assert_cmphex(unmapped, ==, 0x5000);
    g_assert_cmpint(do_unmap(&f, 0xff000, 0x2000, 0, &unmapped), ==,
                    -EINVAL);
    /* unknown flag, ALL with an address, ALL with GET_DIRTY_BITMAP */
    g_assert_cmpint(do_unmap(&f, 0, 0, 0x10, &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0, VFIO_DMA_UNMAP_FLAG_ALL,
                             &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0, 0x1000, VFIO_DMA_UNMAP_FLAG_ALL,
                             &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL |
                             VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
                             &unmapped), ==, -EINVAL);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 3);

    /* a range covering two whole mappings and empty space around them */
    g_assert_cmpint(do_unmap(&f, 0xf0000, 0x20000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x6000);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);
    g_assert_cmphex(g_array_index(m, VfioEmuMapping, 0).iova, ==, 0x200000);

    /* ALL */
    g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, mem), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &unmapped),
                    ==, 0);
    g_assert_cmphex(unmapped, ==, 0x2000);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 0);
    teardown(&f);
}

static void test_unmap_v1(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(16, 4096), unmapped;

    setup_type(&f, base_config, VFIO_TYPE1_IOMMU);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    /* v1: an unmap from inside a mapping succeeds and unmaps nothing */
    g_assert_cmpint(do_unmap(&f, 0x101000, 0x1000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0);
    /* covering its first page unmaps all of it */
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x1000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x4000);
    teardown(&f);
}

static void test_teardown(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096);
    g_autoptr(GArray) m = NULL;
    g_autoptr(GArray) ev = NULL;
    VfioEmuEvent *last;

    setup(&f, base_config);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x1000, mem), ==, 0);

    /* Devices are open: the group cannot leave */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_UNSET_CONTAINER,
                                   NULL), ==, -1);
    g_assert_cmpint(errno, ==, EBUSY);

    /* Hot-unplug: device fd, then UNSET and the container fd */
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 2);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_UNSET_CONTAINER,
                                   NULL), ==, 0);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 0);
    ev = vfio_emu_read_events(f.dir);
    last = &g_array_index(ev, VfioEmuEvent, ev->len - 1);
    g_assert_cmpstr(last->op, ==, "RELEASE");
    g_assert_cmphex(last->unmapped, ==, 0x5000);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_UNSET_CONTAINER,
                                   NULL), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    /* The container must be set up again */
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, -EINVAL);
    g_assert_cmpint(vfio_emu_close(f.emu, f.container), ==, 0);
    g_assert_cmpint(vfio_emu_close(f.emu, f.group), ==, 0);
    teardown(&f);

    /* Closing the group fd (device closed) detaches it too */
    setup(&f, base_config);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(vfio_emu_close(f.emu, f.group), ==, 0);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);     /* the device fd holds the group */
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 0);
    teardown(&f);
}

static void test_two_groups(void)
{
    static const char *cfg =
        "[device " DEV "]\ngroup = 5\nbar0 = 0x1000\n"
        "[device 0000:02:00.0]\ngroup = 6\nbar0 = 0x1000\n";
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096);
    g_autoptr(GArray) m = NULL;
    int g6, d6;

    setup(&f, cfg);
    g6 = vfio_emu_open(f.emu, "/dev/vfio/6", O_RDWR);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, g6, VFIO_GROUP_SET_CONTAINER,
                                   &f.container), ==, 0);
    /* the second group cannot ask for the other group's device */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, g6, VFIO_GROUP_GET_DEVICE_FD,
                                   (void *)DEV), ==, -1);
    g_assert_cmpint(errno, ==, ENODEV);
    d6 = vfio_emu_ioctl(f.emu, g6, VFIO_GROUP_GET_DEVICE_FD,
                        (void *)"0000:02:00.0");
    g_assert_cmpint(d6, >=, 0);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);

    /* One group leaves: the mappings stay for the other */
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    g_assert_cmpint(vfio_emu_close(f.emu, f.group), ==, 0);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);
    g_assert_cmpint(vfio_emu_close(f.emu, d6), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, g6, VFIO_GROUP_UNSET_CONTAINER,
                                   NULL), ==, 0);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 0);
    teardown(&f);
}

static struct vfio_region_info *get_region_info(Fixture *f, uint32_t index)
{
    struct vfio_region_info *info = g_new0(struct vfio_region_info, 1);

    info->argsz = sizeof(*info);
    info->index = index;
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->device,
                                   VFIO_DEVICE_GET_REGION_INFO, info), ==, 0);
    if (info->argsz > sizeof(*info)) {
        uint32_t argsz = info->argsz;

        g_assert_true(info->flags & VFIO_REGION_INFO_FLAG_CAPS);
        g_assert_cmpint(info->cap_offset, ==, 0);
        info = g_realloc(info, argsz);
        info->argsz = argsz;
        g_assert_cmpint(vfio_emu_ioctl(f->emu, f->device,
                                       VFIO_DEVICE_GET_REGION_INFO, info), ==,
                        0);
        g_assert_cmpint(info->cap_offset, ==, sizeof(*info));
    }
    g_assert_cmphex(info->offset, ==, VFIO_EMU_REGION_OFFSET(index));
    return info;
}

static void test_device_info(void)
{
    Fixture f = { 0 };
    struct vfio_device_info dinfo = { .argsz = sizeof(dinfo) };
    struct vfio_irq_info irq = { .argsz = sizeof(irq) };
    struct vfio_region_info *info;
    int i;

    setup(&f, base_config);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_GET_INFO,
                                   &dinfo), ==, 0);
    g_assert_cmphex(dinfo.flags, ==,
                    VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    g_assert_cmpint(dinfo.num_regions, ==, VFIO_PCI_NUM_REGIONS);
    g_assert_cmpint(dinfo.num_irqs, ==, VFIO_PCI_NUM_IRQS);

    /* bar0: mmappable, MSI-X table inside, MSIX_MAPPABLE */
    info = get_region_info(&f, 0);
    g_assert_cmphex(info->size, ==, 0x4000);
    g_assert_cmphex(info->flags, ==, VFIO_REGION_INFO_FLAG_READ |
                    VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP |
                    VFIO_REGION_INFO_FLAG_CAPS);
    g_assert_nonnull(find_cap(info, info->cap_offset,
                              VFIO_REGION_INFO_CAP_MSIX_MAPPABLE));
    g_free(info);
    /* bar1: upper half of bar0 */
    info = get_region_info(&f, 1);
    g_assert_cmphex(info->size, ==, 0);
    g_assert_cmphex(info->flags, ==, 0);
    g_free(info);
    /* bar2: I/O, never mmappable */
    info = get_region_info(&f, 2);
    g_assert_cmphex(info->size, ==, 0x100);
    g_assert_cmphex(info->flags, ==, VFIO_REGION_INFO_FLAG_READ |
                    VFIO_REGION_INFO_FLAG_WRITE);
    g_free(info);
    /* bar4: sub-page, mmappable */
    info = get_region_info(&f, 4);
    g_assert_cmphex(info->size, ==, 0x100);
    g_assert_true(info->flags & VFIO_REGION_INFO_FLAG_MMAP);
    g_free(info);
    /* ROM: read only */
    info = get_region_info(&f, VFIO_PCI_ROM_REGION_INDEX);
    g_assert_cmphex(info->size, ==, 0x8000);
    g_assert_cmphex(info->flags, ==, VFIO_REGION_INFO_FLAG_READ);
    g_free(info);
    info = get_region_info(&f, VFIO_PCI_CONFIG_REGION_INDEX);
    g_assert_cmphex(info->size, ==, 256);
    g_free(info);
    info = g_new0(struct vfio_region_info, 1);
    info->argsz = sizeof(*info);
    info->index = VFIO_PCI_NUM_REGIONS;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device,
                                   VFIO_DEVICE_GET_REGION_INFO, info), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_free(info);

    /* IRQs: INTx, no MSI, 4 MSI-X, no ERR (not PCIe), REQ */
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        static const int count[] = { 1, 0, 4, -1, 1 };

        irq.index = i;
        if (count[i] < 0) {
            g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device,
                                           VFIO_DEVICE_GET_IRQ_INFO, &irq),
                            ==, -1);
            continue;
        }
        g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device,
                                       VFIO_DEVICE_GET_IRQ_INFO, &irq), ==, 0);
        g_assert_cmpint(irq.count, ==, count[i]);
    }
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_RESET, NULL),
                    ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_FEATURE,
                                   NULL), ==, -1);
    g_assert_cmpint(errno, ==, ENOTTY);
    teardown(&f);
}

static void test_sparse_mmap(void)
{
    Fixture f = { 0 };
    g_autofree char *cfg = NULL;
    struct vfio_region_info *info;
    struct vfio_region_info_cap_sparse_mmap *sparse;
    void *p;

    cfg = g_strdup("[device " DEV "]\ngroup = 5\nbar0 = 0x8000\n"
                   "msix_entries = 4\nmsix_table = 0:0x4000\n"
                   "msix_mappable = false\n");
    setup(&f, cfg);
    info = get_region_info(&f, 0);
    g_assert_null(find_cap(info, info->cap_offset,
                           VFIO_REGION_INFO_CAP_MSIX_MAPPABLE));
    sparse = (void *)find_cap(info, info->cap_offset,
                              VFIO_REGION_INFO_CAP_SPARSE_MMAP);
    g_assert_nonnull(sparse);
    g_assert_cmpint(sparse->nr_areas, ==, 2);
    g_assert_cmphex(sparse->areas[0].offset, ==, 0);
    g_assert_cmphex(sparse->areas[0].size, ==, 0x4000);
    g_assert_cmphex(sparse->areas[1].offset, ==, 0x5000);
    g_assert_cmphex(sparse->areas[1].size, ==, 0x3000);
    g_free(info);

    /* The table's page cannot be mmapped; the rest can */
    p = vfio_emu_mmap(f.emu, NULL, 0x8000, PROT_READ | PROT_WRITE,
                      MAP_SHARED, f.device, 0);
    g_assert(p == MAP_FAILED);
    g_assert_cmpint(errno, ==, EINVAL);
    p = vfio_emu_mmap(f.emu, NULL, 0x1000, PROT_READ, MAP_SHARED, f.device,
                      0x4000);
    g_assert(p == MAP_FAILED);
    p = vfio_emu_mmap(f.emu, NULL, 0x3000, PROT_READ | PROT_WRITE,
                      MAP_SHARED, f.device, 0x5000);
    g_assert(p != MAP_FAILED);
    teardown(&f);
}

static uint32_t cfg_read32(Fixture *f, uint32_t off)
{
    uint32_t v;

    g_assert_cmpint(vfio_emu_pread(f->emu, f->device, &v, 4, CFG_OFF + off),
                    ==, 4);
    return le32_to_cpu(v);
}

static void cfg_write32(Fixture *f, uint32_t off, uint32_t v)
{
    v = cpu_to_le32(v);
    g_assert_cmpint(vfio_emu_pwrite(f->emu, f->device, &v, 4, CFG_OFF + off),
                    ==, 4);
}

static void test_config_space(void)
{
    Fixture f = { 0 };
    uint8_t config[256];
    uint32_t orig;
    uint8_t b;

    setup(&f, base_config);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, config, 256, CFG_OFF),
                    ==, 256);
    g_assert_cmphex(lduw_le_p(config + PCI_VENDOR_ID), ==, 0x1b36);
    g_assert_cmphex(config[PCI_CAPABILITY_LIST], ==, 0x40);
    g_assert_cmphex(config[0x40], ==, PCI_CAP_ID_MSIX);
    g_assert_cmphex(lduw_le_p(config + 0x42), ==, 3);
    g_assert_cmphex(ldl_le_p(config + 0x44), ==, 0x2000);
    g_assert_cmphex(ldl_le_p(config + 0x48), ==, 0x3000);
    g_assert_cmphex(config[PCI_INTERRUPT_PIN], ==, 1);

    /* BAR types */
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_0), ==, 0x4);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_2), ==, 0x1);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_3), ==, 0x8);

    /* Sizing reads back the size mask with the type bits */
    cfg_write32(&f, PCI_BASE_ADDRESS_0, 0xffffffff);
    cfg_write32(&f, PCI_BASE_ADDRESS_1, 0xffffffff);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_0), ==, 0xffffc004);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_1), ==, 0xffffffff);
    cfg_write32(&f, PCI_BASE_ADDRESS_2, 0xffffffff);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_2), ==, 0xffffff01);
    cfg_write32(&f, PCI_BASE_ADDRESS_4, 0xffffffff);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_4), ==, 0xffffff00);
    cfg_write32(&f, PCI_BASE_ADDRESS_5, 0xffffffff);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_5), ==, 0);
    cfg_write32(&f, PCI_BASE_ADDRESS_0, 0xfe001234);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_0), ==, 0xfe000004);

    /* The ROM, as vfio_pci_size_rom() sizes it */
    orig = cfg_read32(&f, PCI_ROM_ADDRESS);
    cfg_write32(&f, PCI_ROM_ADDRESS, PCI_ROM_ADDRESS_MASK);
    g_assert_cmphex(cfg_read32(&f, PCI_ROM_ADDRESS), ==, 0xffff8000);
    cfg_write32(&f, PCI_ROM_ADDRESS, orig);
    g_assert_cmphex(cfg_read32(&f, PCI_ROM_ADDRESS), ==, orig);

    /* Read-only fields drop writes; the command register takes them */
    cfg_write32(&f, PCI_VENDOR_ID, 0x12345678);
    g_assert_cmphex(cfg_read32(&f, PCI_VENDOR_ID), ==, 0x10f01b36);
    b = PCI_COMMAND_MEMORY;
    g_assert_cmpint(vfio_emu_pwrite(f.emu, f.device, &b, 1,
                                    CFG_OFF + PCI_COMMAND), ==, 1);
    g_assert_cmphex(cfg_read32(&f, PCI_COMMAND) & 0xffff, ==,
                    PCI_COMMAND_MEMORY);

    /* Bounds: beyond config space, no region, ROM writes */
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, config, 4,
                                   CFG_OFF + 256), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, config, 8,
                                   CFG_OFF + 252), ==, 4);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, config, 4,
                                   VFIO_EMU_REGION_OFFSET(1)), ==, -1);
    g_assert_cmpint(vfio_emu_pwrite(f.emu, f.device, config, 4,
                                    VFIO_EMU_REGION_OFFSET(6)), ==, -1);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, config, 4,
                                   VFIO_EMU_REGION_OFFSET(6)), ==, 4);

    /* A BAR region is memory: what is written is read back */
    orig = 0xdeadbeef;
    g_assert_cmpint(vfio_emu_pwrite(f.emu, f.device, &orig, 4, 0x10), ==, 4);
    orig = 0;
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, &orig, 4, 0x10), ==, 4);
    g_assert_cmphex(orig, ==, 0xdeadbeef);

    /* A closed and re-opened device has a fresh config space */
    cfg_write32(&f, PCI_BASE_ADDRESS_0, 0xffffffff);
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    f.device = vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_GET_DEVICE_FD,
                              (void *)DEV);
    g_assert_cmphex(cfg_read32(&f, PCI_BASE_ADDRESS_0), ==, 0x4);
    teardown(&f);
}

static void test_no_rom(void)
{
    Fixture f = { 0 };

    setup(&f, "[device " DEV "]\ngroup = 5\nbar0 = 0x1000\n");
    cfg_write32(&f, PCI_ROM_ADDRESS, PCI_ROM_ADDRESS_MASK);
    g_assert_cmphex(cfg_read32(&f, PCI_ROM_ADDRESS), ==, 0);
    teardown(&f);
}

static void test_bar_mmap_backing(void)
{
    Fixture f = { 0 };
    g_autoptr(GArray) m = NULL;
    g_autoptr(GArray) ev = NULL;
    g_autofree char *dev = NULL;
    g_autofree char *what = NULL;
    uint64_t off;
    uint8_t *p;
    int bar;

    setup(&f, base_config);
    /* private, beyond the BAR, the ROM, an I/O BAR: refused */
    g_assert(vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ, MAP_PRIVATE,
                           f.device, 0) == MAP_FAILED);
    g_assert(vfio_emu_mmap(f.emu, NULL, 0x5000, PROT_READ, MAP_SHARED,
                           f.device, 0) == MAP_FAILED);
    g_assert(vfio_emu_mmap(f.emu, NULL, 0x1000, PROT_READ, MAP_SHARED,
                           f.device, VFIO_EMU_REGION_OFFSET(6)) ==
             MAP_FAILED);
    g_assert(vfio_emu_mmap(f.emu, NULL, 0x1000, PROT_READ, MAP_SHARED,
                           f.device, VFIO_EMU_REGION_OFFSET(2)) ==
             MAP_FAILED);
    /* the sub-page BAR can be mapped as a whole page */
    g_assert(vfio_emu_mmap(f.emu, NULL, 0x1000, PROT_READ, MAP_SHARED,
                           f.device, VFIO_EMU_REGION_OFFSET(4)) !=
             MAP_FAILED);

    p = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED,
                      f.device, 0);
    g_assert(p != MAP_FAILED);
    /* the mmap sees what pwrite wrote */
    stl_le_p(p + 0x100, 0x11223344);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, &off, 4, 0x100), ==, 4);
    g_assert_cmphex((uint32_t)off, ==, 0x11223344);

    g_assert_cmpint(map_rw(&f, 0xfe001000, 0x2000, (uintptr_t)p + 0x1000),
                    ==, 0);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, alloc_mem(1, 4096)), ==, 0);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 2);
    g_assert_cmpstr(g_array_index(m, VfioEmuMapping, 0).backing, ==, "ram");
    g_assert_cmpstr(g_array_index(m, VfioEmuMapping, 1).backing, ==,
                    DEV ":bar0+0x1000");
    g_assert_true(vfio_emu_backing_bar(g_array_index(m, VfioEmuMapping,
                                                     1).backing,
                                       &dev, &bar, &off));
    g_assert_cmpstr(dev, ==, DEV);
    g_assert_cmpint(bar, ==, 0);
    g_assert_cmphex(off, ==, 0x1000);
    ev = vfio_emu_read_events(f.dir);
    g_assert_cmpstr(g_array_index(ev, VfioEmuEvent, ev->len - 2).backing, ==,
                    DEV ":bar0+0x1000");

    /* After munmap, the model forgets the BAR (the page is RAM again) */
    munmap(p, 0x4000);
    vfio_emu_forget_range(f.emu, p, 0x4000);
    what = vfio_emu_describe_vaddr(f.emu, (uintptr_t)p);
    g_assert_cmpstr(what, ==, "ram");
    teardown(&f);
}

static void test_events(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096), unmapped;
    g_autoptr(GArray) ev = NULL;
    VfioEmuEvent *e;
    int i, maps = 0;

    setup(&f, base_config);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, -EEXIST);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x4000, 0, &unmapped), ==, 0);
    ev = vfio_emu_read_events(f.dir);
    for (i = 0; i < ev->len; i++) {
        e = &g_array_index(ev, VfioEmuEvent, i);
        g_assert_cmpint(e->seq, ==, i + 1);
        if (!strcmp(e->op, "MAP")) {
            g_assert_cmpint(e->container, ==, 1);
            g_assert_cmphex(e->iova, ==, 0x100000);
            g_assert_cmphex(e->size, ==, 0x4000);
            g_assert_cmphex(e->vaddr, ==, mem);
            g_assert_cmphex(e->flags, ==, 3);
            g_assert_cmpint(e->ret, ==, maps++ ? -EEXIST : 0);
            g_assert_cmpstr(e->backing, ==, "ram");
        }
    }
    g_assert_cmpint(maps, ==, 2);
    e = &g_array_index(ev, VfioEmuEvent, ev->len - 1);
    g_assert_cmpstr(e->op, ==, "UNMAP");
    g_assert_cmphex(e->unmapped, ==, 0x4000);
    g_assert_cmpint(e->ret, ==, 0);
    e = &g_array_index(ev, VfioEmuEvent, 0);
    g_assert_cmpstr(e->op, ==, "CONTAINER_OPEN");
    teardown(&f);
}

static void test_reader_errors(void)
{
    g_autofree char *errmsg = NULL;
    g_autoptr(GArray) ok = NULL;

    g_assert_null(vfio_emu_parse_mappings("container=1 iova=zz size=0x1000 "
                                          "backing=ram\n", &errmsg));
    g_assert_nonnull(strstr(errmsg, "line 1"));
    g_free(errmsg);
    errmsg = NULL;
    g_assert_null(vfio_emu_parse_events("seq=1 op=MAP\nbogus\n", &errmsg));
    g_assert_nonnull(strstr(errmsg, "line 2"));
    ok = vfio_emu_parse_events("seq=1 op=MAP ret=-22 newfield=1\n", &errmsg);
    g_assert_cmpint(ok->len, ==, 1);
    g_assert_cmpint(g_array_index(ok, VfioEmuEvent, 0).ret, ==, -EINVAL);
}

static void test_faults_config(void)
{
    Fixture f = { 0 };
    g_autofree char *cfg = NULL;
    uint64_t mem = alloc_mem(8, 4096), unmapped;
    g_autoptr(GArray) ev = NULL;
    void *bar;

    cfg = g_strconcat(base_config,
                      "[fault first-two]\nop = map\nerrno = ENOMEM\n"
                      "iova = 0x100000-0x1fffff\ncount = 2\n"
                      "[fault skip-one]\nop = map\nerrno = EIO\n"
                      "iova = 0x400000-0x4fffff\nskip = 1\ncount = 1\n"
                      "[fault bar]\nop = map\nerrno = EFAULT\n"
                      "backing = " DEV ":bar0\n"
                      "[fault unmap]\nop = unmap\nerrno = EBUSY\n"
                      "backing = ram\niova = 0x800000-0x8fffff\n", NULL);
    setup(&f, cfg);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, mem), ==, -ENOMEM);
    g_assert_cmpint(map_rw(&f, 0x1ff000, 0x2000, mem), ==, -ENOMEM);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x300000, 0x1000, mem), ==, 0);

    g_assert_cmpint(map_rw(&f, 0x400000, 0x1000, mem), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x401000, 0x1000, mem), ==, -EIO);
    g_assert_cmpint(map_rw(&f, 0x401000, 0x1000, mem), ==, 0);

    bar = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE,
                        MAP_SHARED, f.device, 0);
    g_assert(bar != MAP_FAILED);
    g_assert_cmpint(map_rw(&f, 0xfe000000, 0x4000, (uintptr_t)bar), ==,
                    -EFAULT);
    g_assert_cmpint(map_rw(&f, 0xfe000000, 0x4000, (uintptr_t)bar), ==,
                    -EFAULT);

    /* UNMAP: the backing is that of the mappings in the range */
    g_assert_cmpint(map_rw(&f, 0x800000, 0x1000, mem), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0x800000, 0x1000, 0, &unmapped), ==,
                    -EBUSY);
    g_assert_cmpint(do_unmap(&f, 0x880000, 0x1000, 0, &unmapped), ==, 0);

    ev = vfio_emu_read_events(f.dir);
    g_assert_true(g_array_index(ev, VfioEmuEvent, ev->len - 2).injected);
    g_assert_false(g_array_index(ev, VfioEmuEvent, ev->len - 1).injected);
    teardown(&f);
}

static void test_faults_file(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096), unmapped;
    g_autofree char *path = NULL;
    g_autofree char *tmp = NULL;

    setup(&f, base_config);
    path = g_build_filename(f.dir, "faults", NULL);
    tmp = g_build_filename(f.dir, "faults.new", NULL);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, mem), ==, 0);

    g_assert_true(g_file_set_contents(tmp, "[fault f]\nop = any\n"
                                      "errno = E2BIG\ncount = 1\n", -1,
                                      NULL));
    g_assert_cmpint(rename(tmp, path), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x1000, 0, &unmapped), ==,
                    -E2BIG);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x1000, 0, &unmapped), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, mem), ==, 0);

    /* a new file: fresh counters */
    g_assert_true(g_file_set_contents(tmp, "[fault g]\nop = map\n"
                                      "errno = 28\n", -1, NULL));
    g_assert_cmpint(rename(tmp, path), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x1000, mem), ==, -ENOSPC);
    g_assert_cmpint(map_rw(&f, 0x300000, 0x1000, mem), ==, -ENOSPC);
    unlink(path);
    g_assert_cmpint(map_rw(&f, 0x300000, 0x1000, mem), ==, 0);
    teardown(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/vfio-emu/config-errors", test_config_errors);
    g_test_add_func("/vfio-emu/open", test_open);
    g_test_add_func("/vfio-emu/iommu-info", test_iommu_info);
    g_test_add_func("/vfio-emu/iommu-info-config", test_iommu_info_config);
    g_test_add_func("/vfio-emu/map-errors", test_map_errors);
    g_test_add_func("/vfio-emu/map-limit-pgsize", test_map_limit_and_pgsize);
    g_test_add_func("/vfio-emu/unmap", test_unmap);
    g_test_add_func("/vfio-emu/unmap-v1", test_unmap_v1);
    g_test_add_func("/vfio-emu/teardown", test_teardown);
    g_test_add_func("/vfio-emu/two-groups", test_two_groups);
    g_test_add_func("/vfio-emu/device-info", test_device_info);
    g_test_add_func("/vfio-emu/sparse-mmap", test_sparse_mmap);
    g_test_add_func("/vfio-emu/config-space", test_config_space);
    g_test_add_func("/vfio-emu/no-rom", test_no_rom);
    g_test_add_func("/vfio-emu/bar-mmap-backing", test_bar_mmap_backing);
    g_test_add_func("/vfio-emu/events", test_events);
    g_test_add_func("/vfio-emu/reader-errors", test_reader_errors);
    g_test_add_func("/vfio-emu/faults-config", test_faults_config);
    g_test_add_func("/vfio-emu/faults-file", test_faults_file);

    return g_test_run();
}
