/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * Unit tests of vfio-emu, the user-space model of the VFIO UAPI
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The model is driven directly (no LD_PRELOAD): each test makes the calls
 * QEMU makes and checks what the kernel's type1, iommufd and vfio-pci
 * drivers would answer.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

#include "qemu/bswap.h"
#include "standard-headers/linux/pci_regs.h"
#include "../qtest/vfio-emu/vfio-emu.h"
#include "../qtest/vfio-emu/vfio-emu-state.h"

#define DEV "0000:01:00.0"
#define offsetofend(type, field) \
    (offsetof(type, field) + sizeof_field(type, field))
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
        { "[container]\nmigration_cap = false\n",
          "[container] migration_cap: unknown key" },
        { "[container]\niova_pgsizes = none\n",
          "[container] iova_pgsizes: 'none' is not a number" },
        { "[container]\nkernel = 6.1\n",
          "[container] kernel: '6.1' is not 6.12 or 7.3" },
        { "[container]\npgsizes = 0x1000\n",
          "[container] pgsizes: unknown key" },
        { "[container]\nhost_page = 0x3000\n",
          "[container] host_page: '0x3000' is not a power of two" },
        { "[container]\nhost_page = 0x20000\n", "[container] host_page:" },
        { "[fault f]\nerrno = EFAULT\n", "[fault f] op: missing" },
        { "[fault f]\nop = map\n", "[fault f] errno: missing" },
        { "[fault f]\nop = remap\nerrno = EIO\n", "[fault f] op:" },
        { "[fault f]\nop = map\nerrno = EWHAT\n", "[fault f] errno:" },
        { "[fault f]\nop = map\nerrno = EIO\niova = 5\n", "[fault f] iova:" },
        { "[fault f]\nop = map\nerrno = EIO\ncount = many\n",
          "[fault f] count:" },
        { "[fault f]\nop = map\nunmapped = none\n",
          "[fault f] unmapped: needs op = unmap" },
        { "[fault f]\nop = unmap\nerrno = EIO\nunmapped = 0x1000\n",
          "[fault f] unmapped: excludes errno" },
        { "[fault f]\nop = unmap\nunmapped = some\n",
          "[fault f] unmapped: 'some' is neither none nor a number" },
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
    /* one cdev per device: vfio0 only */
    fd = vfio_emu_open(f.emu, "/dev/vfio/devices/vfio1", O_RDWR);
    g_assert_cmpint(fd, ==, -1);
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
    /* neither a container nor an iommufd: EBADFD */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, fd, VFIO_GROUP_SET_CONTAINER,
                                   &fd), ==, -1);
    g_assert_cmpint(errno, ==, EBADFD);
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

    /*
     * No IOVA ranges: the PGSIZES flag, migration and DMA-avail are there
     * all the same (vfio_iommu_type1_get_info()), the last cap padded
     */
    cfg = g_strconcat(base_config, "[container]\niova_ranges = none\n",
                      NULL);
    setup(&f, cfg);
    info = get_iommu_info(&f);
    g_assert_cmphex(info->flags, ==,
                    VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    g_assert_cmpint(info->argsz, ==, sizeof(*info) + 32 + 16);
    g_assert_nonnull(find_cap(info, info->cap_offset,
                              VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION));
    g_assert_nonnull(find_cap(info, info->cap_offset,
                              VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL));
    /* Then MAP has no range check */
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

    /*
     * A 64 KiB host page: the IOMMU's 4 KiB pages are hidden behind it
     * (vfio_update_pgsize_bitmap()), and MAP needs 64 KiB alignment
     */
    g_free(cfg);
    cfg = g_strconcat(base_config, "[container]\niova_pgsizes = 0x201000\n"
                      "host_page = 0x10000\n", NULL);
    setup(&f, cfg);
    g_free(info);
    info = get_iommu_info(&f);
    g_assert_cmphex(info->iova_pgsizes, ==, 0x210000);
    g_assert_cmpint(map_rw(&f, 0x1000, 0x10000, alloc_mem(16, 0x10000)), ==,
                    -EINVAL);
    g_assert_cmpint(map_rw(&f, 0x10000, 0x10000, alloc_mem(16, 0x10000)), ==,
                    0);
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
    /* wrap-around of iova and of vaddr: EOVERFLOW since 6.19 */
    g_assert_cmpint(map_rw(&f, 0xfffffffffffff000ULL, 0x2000, mem), ==,
                    -EOVERFLOW);
    g_assert_cmpint(map_rw(&f, 0, 0x2000, 0xfffffffffffff000ULL), ==,
                    -EOVERFLOW);
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
                             &unmapped), ==, -EOVERFLOW);
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

    /* IRQs: INTx, no MSI, 4 MSI-X, ERR (every device on 7.3), REQ */
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        static const int count[] = { 1, 0, 4, 1, 1 };

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

    /*
     * The areas only advise: vfio_pci_core_mmap() maps the table's page
     * too, and the whole BAR
     */
    p = vfio_emu_mmap(f.emu, NULL, 0x8000, PROT_READ | PROT_WRITE,
                      MAP_SHARED, f.device, 0);
    g_assert(p != MAP_FAILED);
    p = vfio_emu_mmap(f.emu, NULL, 0x1000, PROT_READ, MAP_SHARED, f.device,
                      0x4000);
    g_assert(p != MAP_FAILED);
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

    g_assert_null(vfio_emu_parse_mappings("{\"container\": 1, \"iova\": "
                                          "\"zz\", \"size\": 4096, "
                                          "\"backing\": \"ram\"}\n",
                                          &errmsg));
    g_assert_nonnull(strstr(errmsg, "line 1"));
    g_free(errmsg);
    errmsg = NULL;
    g_assert_null(vfio_emu_parse_events("{\"seq\": 1, \"op\": \"MAP\"}\n"
                                        "bogus\n", &errmsg));
    g_assert_nonnull(strstr(errmsg, "line 2"));
    g_free(errmsg);
    errmsg = NULL;
    g_assert_null(vfio_emu_parse_events("[1, 2]\n", &errmsg));
    g_assert_nonnull(strstr(errmsg, "line 1"));
    ok = vfio_emu_parse_events("{\"seq\": 1, \"op\": \"MAP\", \"ret\": -22,"
                               " \"newfield\": [1]}\n", &errmsg);
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

/*
 * iommufd: f->container is the /dev/iommu fd, f->device the device cdev
 */

/* ioctl on /dev/iommu; 0 or -errno */
static int iofd(Fixture *f, unsigned long request, void *arg)
{
    return vfio_emu_ioctl(f->emu, f->container, request, arg) ? -errno : 0;
}

static int cdev_ioctl(Fixture *f, unsigned long request, void *arg)
{
    return vfio_emu_ioctl(f->emu, f->device, request, arg) ? -errno : 0;
}

static int bind_iommufd(Fixture *f, int iommufd, uint32_t *devid)
{
    struct vfio_device_bind_iommufd bind = {
        .argsz = sizeof(bind),
        .iommufd = iommufd,
    };
    int ret = cdev_ioctl(f, VFIO_DEVICE_BIND_IOMMUFD, &bind);

    if (devid) {
        *devid = bind.out_devid;
    }
    return ret;
}

static int ioas_alloc(Fixture *f, uint32_t *ioas)
{
    struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
    int ret = iofd(f, IOMMU_IOAS_ALLOC, &alloc);

    *ioas = alloc.out_ioas_id;
    return ret;
}

static int hwpt_alloc(Fixture *f, uint32_t devid, uint32_t pt_id,
                      uint32_t flags, uint32_t *hwpt)
{
    struct iommu_hwpt_alloc alloc = {
        .size = sizeof(alloc),
        .flags = flags,
        .dev_id = devid,
        .pt_id = pt_id,
    };
    int ret = iofd(f, IOMMU_HWPT_ALLOC, &alloc);

    if (hwpt) {
        *hwpt = alloc.out_hwpt_id;
    }
    return ret;
}

static int attach_pt(Fixture *f, uint32_t *pt_id)
{
    struct vfio_device_attach_iommufd_pt attach = {
        .argsz = sizeof(attach),
        .pt_id = *pt_id,
    };
    int ret = cdev_ioctl(f, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);

    *pt_id = attach.pt_id;
    return ret;
}

static int detach_pt(Fixture *f)
{
    struct vfio_device_detach_iommufd_pt detach = {
        .argsz = sizeof(detach),
    };

    return cdev_ioctl(f, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
}

static int destroy_id(Fixture *f, uint32_t id)
{
    struct iommu_destroy des = { .size = sizeof(des), .id = id };

    return iofd(f, IOMMU_DESTROY, &des);
}

static int ioas_map(Fixture *f, uint32_t ioas, uint32_t flags, uint64_t iova,
                    uint64_t length, uint64_t vaddr)
{
    struct iommu_ioas_map map = {
        .size = sizeof(map),
        .flags = flags,
        .ioas_id = ioas,
        .user_va = vaddr,
        .length = length,
        .iova = iova,
    };

    return iofd(f, IOMMU_IOAS_MAP, &map);
}

#define MAP_RW  (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | \
                 IOMMU_IOAS_MAP_WRITEABLE)

/* Returns 0 or -errno; *@unmapped gets what the call left in length */
static int ioas_unmap(Fixture *f, uint32_t ioas, uint64_t iova,
                      uint64_t length, uint64_t *unmapped)
{
    struct iommu_ioas_unmap unmap = {
        .size = sizeof(unmap),
        .ioas_id = ioas,
        .iova = iova,
        .length = length,
    };
    int ret = iofd(f, IOMMU_IOAS_UNMAP, &unmap);

    if (unmapped) {
        *unmapped = unmap.length;
    }
    return ret;
}

/* /dev/iommu, the cdev, BIND, an IOAS and (with @domain) a HWPT attached */
static void setup_iommufd(Fixture *f, const char *config, bool domain,
                          uint32_t *devid, uint32_t *ioas, uint32_t *hwpt)
{
    uint32_t pt;

    new_emu(f, config);
    f->device = vfio_emu_open(f->emu, "/dev/vfio/devices/vfio0",
                              O_RDWR | O_CLOEXEC);
    g_assert_cmpint(f->device, >=, 0);
    f->container = vfio_emu_open(f->emu, "/dev/iommu", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(f->container, >=, 0);
    g_assert_cmpint(bind_iommufd(f, f->container, devid), ==, 0);
    g_assert_cmpint(ioas_alloc(f, ioas), ==, 0);
    if (!domain) {
        return;
    }
    g_assert_cmpint(hwpt_alloc(f, *devid, *ioas, 0, hwpt), ==, 0);
    pt = *hwpt;
    g_assert_cmpint(attach_pt(f, &pt), ==, 0);
    g_assert_cmpint(pt, ==, *hwpt);
}

static void assert_chardev(const struct stat *st, unsigned int maj,
                           unsigned int min)
{
    g_assert_true(S_ISCHR(st->st_mode));
    g_assert_cmpuint(major(st->st_rdev), ==, maj);
    g_assert_cmpuint(minor(st->st_rdev), ==, min);
}

static void test_iommufd_bind(void)
{
    Fixture f = { 0 };
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
    struct stat st;
    uint32_t devid;
    uint8_t byte;
    int group, cdev2;

    new_emu(&f, base_config);
    g_assert_true(vfio_emu_is_vfio_path("/dev/iommu"));
    g_assert_false(vfio_emu_is_vfio_path("/dev/iommu0"));

    /* what QEMU's open_cdev() checks, and stat of the other paths */
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/vfio/devices/vfio0", &st), ==,
                    0);
    assert_chardev(&st, VFIO_EMU_CDEV_MAJOR, 0);
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/iommu", &st), ==, 0);
    assert_chardev(&st, VFIO_EMU_MISC_MAJOR, VFIO_EMU_IOMMU_MINOR);
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/vfio/vfio", &st), ==, 0);
    assert_chardev(&st, VFIO_EMU_MISC_MAJOR, VFIO_EMU_VFIO_MINOR);
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/vfio/5", &st), ==, 0);
    assert_chardev(&st, VFIO_EMU_GROUP_MAJOR, 5);
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/vfio/devices", &st), ==, 0);
    g_assert_true(S_ISDIR(st.st_mode));
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/vfio/devices/vfio1", &st), ==,
                    -1);
    g_assert_cmpint(errno, ==, ENOENT);
    g_assert_cmpint(vfio_emu_stat(f.emu, "/dev/vfio/6", &st), ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);
    g_assert_cmpint(vfio_emu_open(f.emu, "/dev/vfio/devices/vfio1", O_RDWR),
                    ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);
    g_assert_cmpint(vfio_emu_open(f.emu, "/dev/vfio/devices/vfio00", O_RDWR),
                    ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);

    f.device = vfio_emu_open(f.emu, "/dev/vfio/devices/vfio0", O_RDWR);
    g_assert_cmpint(f.device, >=, 0);
    g_assert_cmpint(vfio_emu_fstat(f.emu, f.device, &st), ==, 0);
    assert_chardev(&st, VFIO_EMU_CDEV_MAJOR, 0);
    f.container = vfio_emu_open(f.emu, "/dev/iommu", O_RDWR);
    g_assert_cmpint(f.container, >=, 0);
    g_assert_cmpint(vfio_emu_fstat(f.emu, f.container, &st), ==, 0);
    assert_chardev(&st, VFIO_EMU_MISC_MAJOR, VFIO_EMU_IOMMU_MINOR);

    /* no access before BIND */
    g_assert_cmpint(cdev_ioctl(&f, VFIO_DEVICE_GET_INFO, &info), ==, -EINVAL);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, &byte, 1, CFG_OFF), ==,
                    -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert(vfio_emu_mmap(f.emu, NULL, 0x1000, PROT_READ, MAP_SHARED,
                           f.device, 0) == MAP_FAILED);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(detach_pt(&f), ==, -EINVAL);

    /* vfio_df_ioctl_bind_iommufd()'s checks, in order */
    bind.argsz = offsetof(struct vfio_device_bind_iommufd, out_devid);
    bind.iommufd = f.container;
    g_assert_cmpint(cdev_ioctl(&f, VFIO_DEVICE_BIND_IOMMUFD, &bind), ==,
                    -EINVAL);
    bind.argsz = sizeof(bind);
    bind.flags = 1;
    g_assert_cmpint(cdev_ioctl(&f, VFIO_DEVICE_BIND_IOMMUFD, &bind), ==,
                    -EINVAL);
    g_assert_cmpint(bind_iommufd(&f, -1, NULL), ==, -EINVAL);
    group = vfio_emu_open(f.emu, "/dev/vfio/5", O_RDWR);
    g_assert_cmpint(group, >=, 0);
    /* the group is open: EBUSY before the fd is even looked at */
    g_assert_cmpint(bind_iommufd(&f, 1000, NULL), ==, -EBUSY);
    g_assert_cmpint(vfio_emu_close(f.emu, group), ==, 0);
    g_assert_cmpint(bind_iommufd(&f, 1000, NULL), ==, -EBADF);
    g_assert_cmpint(bind_iommufd(&f, STDIN_FILENO, NULL), ==, -EBADFD);
    g_assert_cmpint(bind_iommufd(&f, f.device, NULL), ==, -EBADFD);
    g_assert_cmpint(bind_iommufd(&f, f.container, &devid), ==, 0);
    g_assert_cmpint(devid, ==, 1);
    g_assert_cmpint(bind_iommufd(&f, f.container, NULL), ==, -EINVAL);

    /* bound: the device works, its group can't be opened */
    g_assert_cmpint(cdev_ioctl(&f, VFIO_DEVICE_GET_INFO, &info), ==, 0);
    g_assert_cmpint(info.num_regions, ==, VFIO_PCI_NUM_REGIONS);
    g_assert_cmpint(vfio_emu_pread(f.emu, f.device, &byte, 1, CFG_OFF), ==,
                    1);
    g_assert_cmpint(vfio_emu_open(f.emu, "/dev/vfio/5", O_RDWR), ==, -1);
    g_assert_cmpint(errno, ==, EBUSY);
    /* a second cdev file can't open the device again */
    cdev2 = vfio_emu_open(f.emu, "/dev/vfio/devices/vfio0", O_RDWR);
    g_assert_cmpint(cdev2, >=, 0);
    bind.flags = 0;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, cdev2, VFIO_DEVICE_BIND_IOMMUFD,
                                   &bind), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_close(f.emu, cdev2), ==, 0);

    /* unbound by close: the group opens again */
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    group = vfio_emu_open(f.emu, "/dev/vfio/5", O_RDWR);
    g_assert_cmpint(group, >=, 0);
    teardown(&f);
}

static void test_iommufd_ioctl_size(void)
{
    Fixture f = { 0 };
    struct {
        struct iommu_ioas_alloc alloc;
        uint32_t extra;
    } big = { { .size = sizeof(big) } };
    struct iommu_ioas_alloc alloc = { .size = 8 };
    uint32_t devid, ioas;

    setup_iommufd(&f, base_config, false, &devid, &ioas, NULL);
    g_assert_cmpint(ioas, ==, 2);
    /* below the minimum size */
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_ALLOC, &alloc), ==, -EINVAL);
    /* larger: the rest must be zero, and is left alone */
    big.extra = 1;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_ALLOC, &big), ==, -E2BIG);
    big.extra = 0;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_ALLOC, &big), ==, 0);
    g_assert_cmpint(big.alloc.out_ioas_id, ==, 3);
    g_assert_cmpint(big.extra, ==, 0);
    alloc.size = sizeof(alloc);
    alloc.flags = 1;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_ALLOC, &alloc), ==, -EOPNOTSUPP);
    /* not emulated; other numbers are the VFIO compat ioctls */
    g_assert_cmpint(iofd(&f, IOMMU_OPTION, &alloc), ==, -ENOTTY);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.container, VFIO_GET_API_VERSION,
                                   NULL), ==, VFIO_API_VERSION);
    g_assert_cmpint(iofd(&f, VFIO_DEVICE_GET_INFO, NULL), ==, -ENOTTY);
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_ALLOC, NULL), ==, -EFAULT);
    /* IDs are reused lowest first */
    g_assert_cmpint(destroy_id(&f, 2), ==, 0);
    g_assert_cmpint(ioas_alloc(&f, &ioas), ==, 0);
    g_assert_cmpint(ioas, ==, 2);
    teardown(&f);
}

static void test_iommufd_objects(void)
{
    Fixture f = { 0 };
    struct iommu_iova_range ranges[2];
    struct iommu_ioas_iova_ranges info = {
        .size = sizeof(info),
        .allowed_iovas = (uintptr_t)ranges,
    };
    uint64_t data[2] = { UINT64_MAX, UINT64_MAX };
    struct iommu_hw_info hw = {
        .size = sizeof(hw),
        .data_len = sizeof(data),
        .data_uptr = (uintptr_t)data,
    };
    struct iommu_hwpt_alloc alloc = { .size = sizeof(alloc) };
    uint32_t devid, ioas, hwpt, pt;

    setup_iommufd(&f, base_config, false, &devid, &ioas, NULL);

    /* a fresh IOAS: all of the IOVA space, no alignment */
    info.ioas_id = ioas;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_IOVA_RANGES, &info), ==, -EMSGSIZE);
    g_assert_cmpint(info.num_iovas, ==, 1);
    g_assert_cmphex(info.out_iova_alignment, ==, 1);
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_IOVA_RANGES, &info), ==, 0);
    g_assert_cmphex(ranges[0].start, ==, 0);
    g_assert_cmphex(ranges[0].last, ==, UINT64_MAX);
    info.ioas_id = devid;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_IOVA_RANGES, &info), ==, -ENOENT);

    /* IOMMU_GET_HW_INFO: no data, zeroed */
    hw.dev_id = devid;
    hw.flags = 1;
    g_assert_cmpint(iofd(&f, IOMMU_GET_HW_INFO, &hw), ==, -EOPNOTSUPP);
    hw.flags = 0;
    hw.dev_id = ioas;
    g_assert_cmpint(iofd(&f, IOMMU_GET_HW_INFO, &hw), ==, -ENOENT);
    hw.dev_id = devid;
    g_assert_cmpint(iofd(&f, IOMMU_GET_HW_INFO, &hw), ==, 0);
    g_assert_cmpint(hw.out_data_type, ==, IOMMU_HW_INFO_TYPE_NONE);
    g_assert_cmpint(hw.data_len, ==, 0);
    g_assert_cmphex(hw.out_capabilities, ==, 0);
    g_assert_cmphex(data[0] | data[1], ==, 0);

    /* IOMMU_HWPT_ALLOC's checks, in order */
    alloc.__reserved = 1;
    alloc.dev_id = 99;
    g_assert_cmpint(iofd(&f, IOMMU_HWPT_ALLOC, &alloc), ==, -EOPNOTSUPP);
    alloc.__reserved = 0;
    alloc.data_len = 8;
    g_assert_cmpint(iofd(&f, IOMMU_HWPT_ALLOC, &alloc), ==, -EINVAL);
    alloc.data_len = 0;
    alloc.data_type = IOMMU_HWPT_DATA_VTD_S1;
    g_assert_cmpint(iofd(&f, IOMMU_HWPT_ALLOC, &alloc), ==, -EINVAL);
    alloc.data_type = IOMMU_HWPT_DATA_NONE;
    g_assert_cmpint(iofd(&f, IOMMU_HWPT_ALLOC, &alloc), ==, -ENOENT);
    alloc.dev_id = devid;
    alloc.pt_id = 99;
    g_assert_cmpint(iofd(&f, IOMMU_HWPT_ALLOC, &alloc), ==, -EINVAL);
    alloc.pt_id = devid;
    g_assert_cmpint(iofd(&f, IOMMU_HWPT_ALLOC, &alloc), ==, -EINVAL);
    alloc.pt_id = ioas;
    g_assert_cmpint(hwpt_alloc(&f, devid, ioas,
                               IOMMU_HWPT_ALLOC_DIRTY_TRACKING, NULL), ==,
                    -EOPNOTSUPP);
    g_assert_cmpint(hwpt_alloc(&f, devid, ioas, IOMMU_HWPT_ALLOC_PASID,
                               NULL), ==, -EOPNOTSUPP);
    g_assert_cmpint(hwpt_alloc(&f, devid, ioas, IOMMU_HWPT_FAULT_ID_VALID,
                               NULL), ==, -ENOENT);
    g_assert_cmpint(hwpt_alloc(&f, devid, ioas, 0, &hwpt), ==, 0);
    g_assert_cmpint(hwpt, ==, 3);
    /* nesting is not supported */
    g_assert_cmpint(hwpt_alloc(&f, devid, hwpt, 0, NULL), ==, -EOPNOTSUPP);

    /* a domain sets the alignment; the ranges narrow once attached */
    info.ioas_id = ioas;
    info.num_iovas = 0;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_IOVA_RANGES, &info), ==, -EMSGSIZE);
    g_assert_cmpint(info.num_iovas, ==, 1);
    g_assert_cmphex(info.out_iova_alignment, ==, 4096);
    pt = hwpt;
    g_assert_cmpint(attach_pt(&f, &pt), ==, 0);
    info.num_iovas = 1;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_IOVA_RANGES, &info), ==, -EMSGSIZE);
    g_assert_cmpint(info.num_iovas, ==, 2);
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_IOVA_RANGES, &info), ==, 0);
    g_assert_cmphex(ranges[0].start, ==, 0);
    g_assert_cmphex(ranges[0].last, ==, 0xfedfffff);
    g_assert_cmphex(ranges[1].start, ==, 0xfef00000);
    g_assert_cmphex(ranges[1].last, ==, (1ULL << 48) - 1);

    /* IOMMU_DESTROY: referenced objects are busy */
    g_assert_cmpint(destroy_id(&f, 99), ==, -ENOENT);
    g_assert_cmpint(destroy_id(&f, ioas), ==, -EBUSY);
    g_assert_cmpint(destroy_id(&f, hwpt), ==, -EBUSY);
    g_assert_cmpint(destroy_id(&f, devid), ==, -EBUSY);
    g_assert_cmpint(detach_pt(&f), ==, 0);
    g_assert_cmpint(detach_pt(&f), ==, 0);
    g_assert_cmpint(destroy_id(&f, ioas), ==, -EBUSY);
    g_assert_cmpint(destroy_id(&f, hwpt), ==, 0);
    g_assert_cmpint(destroy_id(&f, ioas), ==, 0);
    g_assert_cmpint(destroy_id(&f, ioas), ==, -ENOENT);

    /* ATTACH to an IOAS: an automatic domain, gone with its device */
    g_assert_cmpint(ioas_alloc(&f, &ioas), ==, 0);
    pt = ioas;
    g_assert_cmpint(attach_pt(&f, &pt), ==, 0);
    g_assert_cmpint(pt, !=, ioas);
    g_assert_cmpint(destroy_id(&f, pt), ==, -EBUSY);
    hwpt = pt;
    pt = ioas;
    g_assert_cmpint(attach_pt(&f, &pt), ==, 0);
    g_assert_cmpint(pt, ==, hwpt);
    pt = devid;
    g_assert_cmpint(attach_pt(&f, &pt), ==, -EINVAL);
    pt = 99;
    g_assert_cmpint(attach_pt(&f, &pt), ==, -ENOENT);
    g_assert_cmpint(detach_pt(&f), ==, 0);
    g_assert_cmpint(destroy_id(&f, hwpt), ==, -ENOENT);
    g_assert_cmpint(destroy_id(&f, ioas), ==, 0);
    teardown(&f);
}

static int ioas_map_file(Fixture *f, uint32_t ioas, uint32_t flags,
                         uint64_t iova, uint64_t length, int fd,
                         uint64_t start)
{
    struct iommu_ioas_map_file map = {
        .size = sizeof(map),
        .flags = flags,
        .ioas_id = ioas,
        .fd = fd,
        .start = start,
        .length = length,
        .iova = iova,
    };

    return iofd(f, IOMMU_IOAS_MAP_FILE, &map);
}

static int change_process(Fixture *f)
{
    struct iommu_ioas_change_process cp = { .size = sizeof(cp) };

    return iofd(f, IOMMU_IOAS_CHANGE_PROCESS, &cp);
}

/*
 * IOMMU_IOAS_MAP_FILE (iommufd_ioas_map_file(), iopt_map_file_pages(),
 * memfd_pin_folios()) and IOMMU_IOAS_CHANGE_PROCESS
 * (iommufd_ioas_change_process()); neither exists with kernel = 6.12.
 */
static void test_iommufd_map_file(void)
{
    Fixture f = { 0 };
    g_autofree char *cfg = g_strconcat(base_config, "[container]\n"
                                       "kernel = 6.12\n", NULL);
    g_autofree char *plain = g_build_filename(g_get_tmp_dir(),
                                              "vfio-emu-map-file-XXXXXX",
                                              NULL);
    g_autofree char *tmp = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GArray) m = NULL;
    uint64_t mem = alloc_mem(4, 4096), unmapped;
    uint32_t devid, ioas, hwpt;
    int memfd, pfd;

    memfd = memfd_create("vfio-emu-test", MFD_CLOEXEC);
    g_assert_cmpint(memfd, >=, 0);
    g_assert_cmpint(ftruncate(memfd, 0x10000), ==, 0);
    pfd = g_mkstemp(plain);
    g_assert_cmpint(pfd, >=, 0);
    g_assert_cmpint(ftruncate(pfd, 0x10000), ==, 0);

    setup_iommufd(&f, base_config, true, &devid, &ioas, &hwpt);
    /* nothing mapped: the process may change */
    g_assert_cmpint(change_process(&f), ==, 0);

    /* iommufd_ioas_map_file()'s checks, then iopt_map_file_pages()'s */
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW | 0x8, 0x100000, 0x1000,
                                  memfd, 0), ==, -EOPNOTSUPP);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, UINT64_MAX, 0x1000,
                                  memfd, 0), ==, -EOVERFLOW);
    g_assert_cmpint(ioas_map_file(&f, ioas, IOMMU_IOAS_MAP_FIXED_IOVA,
                                  0x100000, 0x1000, memfd, 0), ==, -EINVAL);
    g_assert_cmpint(ioas_map_file(&f, 99, MAP_RW, 0x100000, 0x1000,
                                  memfd, 0), ==, -ENOENT);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0,
                                  memfd, 0), ==, -EINVAL);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0x1000,
                                  memfd, UINT64_MAX - 0x10), ==, -EOVERFLOW);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0x1000,
                                  999, 0), ==, -EBADF);
    /* pinning: memfd (shmem) or hugetlbfs only, nothing past the end */
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0x1000,
                                  pfd, 0), ==, -EINVAL);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0x2000,
                                  memfd, 0xf000), ==, -EINVAL);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0x2000,
                                  memfd, 0x1000), ==, 0);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x101000, 0x1000,
                                  memfd, 0), ==, -EEXIST);
    m = vfio_emu_read_mappings(f.dir);
    g_assert_cmpint(m->len, ==, 1);
    g_assert_cmphex(g_array_index(m, VfioEmuMapping, 0).iova, ==, 0x100000);
    g_assert_cmphex(g_array_index(m, VfioEmuMapping, 0).vaddr, ==, 0);

    /* only files mapped: it may change; user memory too: EINVAL */
    g_assert_cmpint(change_process(&f), ==, 0);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x200000, 0x1000, mem), ==, 0);
    g_assert_cmpint(change_process(&f), ==, -EINVAL);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x200000, 0x1000, &unmapped), ==, 0);
    g_assert_cmpint(change_process(&f), ==, 0);
    /* the fault rule */
    tmp = g_build_filename(f.dir, "faults.new", NULL);
    path = g_build_filename(f.dir, "faults", NULL);
    g_assert_true(g_file_set_contents(tmp, "[fault cp]\n"
                                      "op = change_process\n"
                                      "errno = EIO\ncount = 1\n", -1, NULL));
    g_assert_cmpint(rename(tmp, path), ==, 0);
    g_assert_cmpint(change_process(&f), ==, -EIO);
    g_assert_cmpint(change_process(&f), ==, 0);
    /* the emulation holds the file: closing it leaves the mapping */
    close(memfd);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x100000, 0x2000, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x2000);
    teardown(&f);

    /* 6.12: neither ioctl */
    memset(&f, 0, sizeof(f));
    setup_iommufd(&f, cfg, true, &devid, &ioas, &hwpt);
    g_assert_cmpint(change_process(&f), ==, -ENOTTY);
    g_assert_cmpint(ioas_map_file(&f, ioas, MAP_RW, 0x100000, 0x1000,
                                  pfd, 0), ==, -ENOTTY);
    teardown(&f);
    close(pfd);
    unlink(plain);
}

static void test_iommufd_map(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096);
    g_autoptr(GArray) m = NULL;
    g_autoptr(GArray) ev = NULL;
    struct iommu_ioas_map map = { .size = sizeof(map) };
    g_autofree char *faults = NULL;
    uint64_t mem16k = alloc_mem(2, 0x4000);
    uint32_t devid, ioas, hwpt, lazy;
    VfioEmuEvent *e;
    uint8_t *bar;
    void *hole;

    setup_iommufd(&f, base_config, true, &devid, &ioas, &hwpt);
    bar = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE,
                        MAP_SHARED, f.device, 0);
    g_assert(bar != MAP_FAILED);

    /* iommufd_ioas_map()'s checks, in order */
    map.flags = MAP_RW | 0x8;
    map.ioas_id = 99;
    map.iova = UINT64_MAX;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, -EOPNOTSUPP);
    map.flags = MAP_RW;
    map.__reserved = 1;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, -EOPNOTSUPP);
    map.__reserved = 0;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, -EOVERFLOW);
    map.iova = 0x100000;
    map.length = UINT64_MAX;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, -EOVERFLOW);
    map.length = 0;
    map.flags = IOMMU_IOAS_MAP_FIXED_IOVA;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, -EINVAL);
    map.flags = MAP_RW;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, -ENOENT);
    /* then iopt_alloc_user_pages(), iopt_alloc_area_pages() */
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0x2000,
                             UINT64_MAX - 0xfff), ==, -EOVERFLOW);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0, mem), ==,
                    -EINVAL);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0x800, mem), ==,
                    -EINVAL);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100800, 0x1000, mem), ==,
                    -EINVAL);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, UINT64_MAX - 0xfff, 0x2000,
                             mem), ==, -EOVERFLOW);
    /* the MSI window is reserved */
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0xfee00000, 0x1000, mem), ==,
                    -EINVAL);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0x1000, mem + 0x800),
                    ==, -EINVAL);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x103000, 0x1000, mem), ==,
                    -EEXIST);
    /* pinning: a BAR mmap (PFNMAP) or unmapped memory can't be */
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0xe0000000, 0x2000,
                             (uintptr_t)bar), ==, -EFAULT);
    hole = mmap(NULL, 0x2000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert(hole != MAP_FAILED);
    munmap(hole, 0x2000);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0xe0000000, 0x2000,
                             (uintptr_t)hole), ==, -EFAULT);
    g_assert_cmpint(ioas_map(&f, ioas, IOMMU_IOAS_MAP_FIXED_IOVA |
                             IOMMU_IOAS_MAP_READABLE, 0x200000, 0x1000,
                             mem), ==, 0);

    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 2);
    g_assert_cmpint(g_array_index(m, VfioEmuMapping, 0).container, ==, 1);
    g_assert_cmphex(g_array_index(m, VfioEmuMapping, 0).flags, ==,
                    VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    g_assert_cmphex(g_array_index(m, VfioEmuMapping, 1).flags, ==,
                    VFIO_DMA_MAP_FLAG_READ);
    ev = vfio_emu_read_events(f.dir);
    e = &g_array_index(ev, VfioEmuEvent, ev->len - 2);
    g_assert_cmpstr(e->op, ==, "IOAS_MAP");
    g_assert_cmpint(e->ret, ==, -EFAULT);
    g_assert_cmphex(e->iova, ==, 0xe0000000);
    g_assert_cmphex(e->flags, ==, MAP_RW);
    g_assert_cmpint(e->container, ==, 1);
    e = &g_array_index(ev, VfioEmuEvent, ev->len - 3);
    g_assert_cmpstr(e->backing, ==, DEV ":bar0+0x0");

    /* without FIXED_IOVA the kernel picks an aligned hole */
    map.flags = IOMMU_IOAS_MAP_READABLE;
    map.ioas_id = ioas;
    map.iova = 0;
    map.length = 0x2000;
    map.user_va = mem16k;
    g_assert_cmpint(iofd(&f, IOMMU_IOAS_MAP, &map), ==, 0);
    g_assert_cmphex(map.iova, ==, 0x2000);

    /* no domain: the map is lazy, the domain then can't be filled */
    g_assert_cmpint(ioas_alloc(&f, &lazy), ==, 0);
    g_assert_cmpint(ioas_map(&f, lazy, MAP_RW, 0x100000, 0x800,
                             (uintptr_t)bar), ==, 0);
    g_assert_cmpint(hwpt_alloc(&f, devid, lazy, 0, NULL), ==, -EADDRINUSE);
    g_assert_cmpint(ioas_unmap(&f, lazy, 0, UINT64_MAX, NULL), ==, 0);
    g_assert_cmpint(ioas_map(&f, lazy, MAP_RW, 0x100000, 0x1000,
                             (uintptr_t)bar), ==, 0);
    g_assert_cmpint(hwpt_alloc(&f, devid, lazy, 0, NULL), ==, -EFAULT);
    /* a mapping in reserved IOVA blocks the attach */
    g_assert_cmpint(ioas_unmap(&f, lazy, 0, UINT64_MAX, NULL), ==, 0);
    g_assert_cmpint(ioas_map(&f, lazy, MAP_RW, 0xfee00000, 0x1000, mem), ==,
                    0);
    g_assert_cmpint(hwpt_alloc(&f, devid, lazy, 0, &hwpt), ==, 0);
    g_assert_cmpint(attach_pt(&f, &hwpt), ==, -EADDRINUSE);

    /* fault rules apply to IOMMU_IOAS_MAP too */
    faults = g_build_filename(f.dir, "faults", NULL);
    g_assert_true(g_file_set_contents(faults, "[fault f]\nop = map\n"
                                      "errno = ENOMEM\nbacking = ram\n"
                                      "count = 1\n", -1, NULL));
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x300000, 0x1000, mem), ==,
                    -ENOMEM);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x300000, 0x1000, mem), ==, 0);
    teardown(&f);
}

static void test_iommufd_unmap(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096), unmapped;
    g_autoptr(GArray) m = NULL;
    g_autoptr(GArray) ev = NULL;
    VfioEmuEvent *e;
    uint32_t devid, ioas, hwpt;

    setup_iommufd(&f, base_config, true, &devid, &ioas, &hwpt);

    /* iommufd_ioas_unmap()'s checks, in order */
    g_assert_cmpint(ioas_unmap(&f, 99, 0x100000, 0, NULL), ==, -ENOENT);
    g_assert_cmpint(ioas_unmap(&f, ioas, UINT64_MAX, 0x1000, NULL), ==,
                    -EOVERFLOW);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x100000, 0, NULL), ==, -EINVAL);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x2000, UINT64_MAX - 0x1000, NULL),
                    ==, -EOVERFLOW);
    /* nothing mapped: ENOENT, and length is left alone */
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x100000, 0x1000, &unmapped), ==,
                    -ENOENT);
    g_assert_cmphex(unmapped, ==, 0x1000);
    /* all of nothing is fine */
    g_assert_cmpint(ioas_unmap(&f, ioas, 0, UINT64_MAX, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0);

    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0x1000, mem), ==, 0);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x102000, 0x2000, mem), ==, 0);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x200000, 0x1000, mem), ==, 0);
    /* no splitting; an unaligned superset is fine */
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x102000, 0x1000, NULL), ==,
                    -ENOENT);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x200000, 0x1800, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x1000);
    /* a range covering one whole and one partly: fails half-way */
    g_assert_cmpint(ioas_unmap(&f, ioas, 0x100000, 0x3000, NULL), ==,
                    -ENOENT);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);
    g_assert_cmphex(g_array_index(m, VfioEmuMapping, 0).iova, ==, 0x102000);
    ev = vfio_emu_read_events(f.dir);
    e = &g_array_index(ev, VfioEmuEvent, ev->len - 1);
    g_assert_cmpstr(e->op, ==, "IOAS_UNMAP");
    g_assert_cmpint(e->ret, ==, -ENOENT);
    g_assert_cmphex(e->unmapped, ==, 0x1000);

    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x300000, 0x1000, mem), ==, 0);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0, UINT64_MAX, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x3000);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 0);
    teardown(&f);
}

static void test_iommufd_teardown(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(4, 4096);
    g_autoptr(GArray) m = NULL;
    g_autoptr(GArray) ev = NULL;
    uint32_t devid, ioas, hwpt;
    int i, n;

    setup_iommufd(&f, base_config, true, &devid, &ioas, &hwpt);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, 0x100000, 0x4000, mem), ==, 0);

    /* the bound device keeps the context: the mapping stays */
    g_assert_cmpint(vfio_emu_close(f.emu, f.container), ==, 0);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);
    /* closing the cdev unbinds and releases the context */
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 0);

    ev = vfio_emu_read_events(f.dir);
    {
        static const char *const ops[] = {
            "IOMMUFD_OPEN", "DEVICE_BIND", "IOAS_ALLOC", "HWPT_ALLOC",
            "DEVICE_ATTACH", "IOAS_MAP", "DEVICE_DETACH", "DEVICE_UNBIND",
            "RELEASE",
        };

        g_assert_cmpint(ev->len, ==, ARRAY_SIZE(ops));
        for (i = 0; i < ev->len; i++) {
            g_assert_cmpstr(g_array_index(ev, VfioEmuEvent, i).op, ==,
                            ops[i]);
        }
    }
    n = ev->len;
    g_assert_cmphex(g_array_index(ev, VfioEmuEvent, n - 1).unmapped, ==,
                    0x4000);
    g_assert_cmpint(g_array_index(ev, VfioEmuEvent, n - 1).container, ==, 1);
    g_assert_cmpstr(g_array_index(ev, VfioEmuEvent, 1).device, ==, DEV);
    teardown(&f);
}

/*
 * Kernel semantics pinned against the kernel's sources (Linux 7.3):
 * each test names the function it mirrors.
 */

static void set_command(Fixture *f, uint16_t cmd)
{
    cmd = cpu_to_le16(cmd);
    g_assert_cmpint(vfio_emu_pwrite(f->emu, f->device, &cmd, 2,
                                    CFG_OFF + PCI_COMMAND), ==, 2);
}

/* vfio_pci_mmap_huge_fault(): no decoding, SIGBUS, and the pin fails */
static void test_map_decode_off(void)
{
    Fixture f = { 0 };
    void *bar;

    setup(&f, base_config);
    /* pci_enable_device() turned decoding on when the device was opened */
    g_assert_cmphex(cfg_read32(&f, PCI_COMMAND) & 0xffff, ==,
                    PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    bar = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE,
                        MAP_SHARED, f.device, 0);
    g_assert(bar != MAP_FAILED);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, (uintptr_t)bar), ==, 0);
    set_command(&f, PCI_COMMAND_IO);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x4000, (uintptr_t)bar), ==,
                    -EFAULT);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x1000, (uintptr_t)bar + 0x3000),
                    ==, -EFAULT);
    /* RAM is not affected */
    g_assert_cmpint(map_rw(&f, 0x300000, 0x1000, alloc_mem(1, 4096)), ==, 0);
    set_command(&f, PCI_COMMAND_MEMORY);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x4000, (uintptr_t)bar), ==, 0);
    teardown(&f);
}

/*
 * [container] check_mappings: BAR0 (16K, 64-bit, the MSI-X table at
 * 0x2000) at 0xe0000000, decoding on, its first 8K mapped where it
 * belongs; then @how spoils it, and the next config access (or the MAP,
 * or the UNMAP) aborts with the reason.
 */
typedef enum CheckCase {
    CHECK_OK,
    CHECK_WRONG_IOVA,
    CHECK_MOVED,
    CHECK_DECODE_OFF,
    CHECK_MSIX_TABLE,
    CHECK_PAST_BAR,
    CHECK_UNMAP_HOLE,
} CheckCase;

static const char *check_stderr[] = {
    [CHECK_WRONG_IOVA] = "*bar0+0x0 is mapped at 0xe0100000, but bar0 is "
                         "at 0xe0000000: it belongs at 0xe0000000*",
    [CHECK_MOVED] = "*bar0+0x0 is mapped at 0xe0000000, but bar0 is at "
                    "0xe0200000*",
    [CHECK_DECODE_OFF] = "*is mapped while " DEV " does not decode memory*",
    [CHECK_MSIX_TABLE] = "*the mapping covers the MSI-X table (bar0+0x2000*",
    [CHECK_PAST_BAR] = "*the mapping ends past bar0*",
    [CHECK_UNMAP_HOLE] = "*UNMAP_DMA unmapped only 0x2000 bytes*",
};

static void check_mappings_case(CheckCase how)
{
    g_autofree char *config = g_strconcat("[container]\n"
                                          "check_mappings = true\n",
                                          base_config, NULL);
    Fixture f = { 0 };
    uint64_t unmapped;
    void *bar;

    setup(&f, config);
    cfg_write32(&f, PCI_BASE_ADDRESS_0, 0xe0000000);
    cfg_write32(&f, PCI_BASE_ADDRESS_1, 0);
    bar = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE,
                        MAP_SHARED, f.device, 0);
    g_assert(bar != MAP_FAILED);
    switch (how) {
    case CHECK_WRONG_IOVA:
        map_rw(&f, 0xe0100000, 0x2000, (uintptr_t)bar);
        break;
    case CHECK_MSIX_TABLE:
        map_rw(&f, 0xe0000000, 0x4000, (uintptr_t)bar);
        break;
    case CHECK_PAST_BAR:
        map_rw(&f, 0xe0003000, 0x2000, (uintptr_t)bar + 0x3000);
        break;
    default:
        g_assert_cmpint(map_rw(&f, 0xe0000000, 0x2000, (uintptr_t)bar), ==,
                        0);
        break;
    }
    /* a write is checked before it changes the config space */
    if (how == CHECK_MOVED) {
        cfg_write32(&f, PCI_BASE_ADDRESS_0, 0xe0200000);
    } else if (how == CHECK_DECODE_OFF) {
        set_command(&f, PCI_COMMAND_IO);
    } else if (how == CHECK_UNMAP_HOLE) {
        do_unmap(&f, 0xe0000000, 0x4000, 0, &unmapped);
    }
    cfg_read32(&f, PCI_COMMAND);
    g_assert_cmpint(do_unmap(&f, 0xe0000000, 0x2000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x2000);
    teardown(&f);
}

static void test_check_mappings(gconstpointer data)
{
    CheckCase how = GPOINTER_TO_INT(data);

    if (g_test_subprocess()) {
        check_mappings_case(how);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    if (how == CHECK_OK) {
        g_test_trap_assert_passed();
        return;
    }
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr(check_stderr[how]);
}

/* Write PMCSR's power state; return what PMCSR reads back */
static uint8_t set_power(Fixture *f, uint8_t state)
{
    uint16_t v = cpu_to_le16(PCI_PM_CTRL_NO_SOFT_RESET | state);

    g_assert_cmpint(vfio_emu_pwrite(f->emu, f->device, &v, 2,
                                    CFG_OFF + 0x50 + PCI_PM_CTRL), ==, 2);
    return cfg_read32(f, 0x50 + PCI_PM_CTRL) & PCI_PM_CTRL_STATE_MASK;
}

/*
 * __vfio_pci_memory_enabled(): in D3hot a BAR does not decode, and the pin
 * of its mmap fails as with decoding off; D1 and D2 are refused (the PM
 * capability offers neither); VFIO_DEVICE_RESET returns to D0, except for
 * a device that cannot leave D3hot.
 */
static void test_map_d3hot(void)
{
    static const char *pm_keys[] = { "pm = true\n",
                                     "pm = true\npm_stuck = true\n" };
    int stuck;

    for (stuck = 0; stuck < 2; stuck++) {
        g_autofree char *cfg = g_strconcat(base_config, pm_keys[stuck], NULL);
        Fixture f = { 0 };
        uint64_t unmapped;
        uint32_t cap;
        void *bar;

        setup(&f, cfg);
        /* The chain: MSI-X at 0x40, then PM at 0x50 */
        g_assert_cmphex(cfg_read32(&f, PCI_CAPABILITY_LIST) & 0xff, ==, 0x40);
        g_assert_cmphex(cfg_read32(&f, 0x40) & 0xffff, ==,
                        0x5000 | PCI_CAP_ID_MSIX);
        cap = cfg_read32(&f, 0x50);
        g_assert_cmphex(cap & 0xffff, ==, PCI_CAP_ID_PM);
        g_assert_cmphex(cfg_read32(&f, 0x50 + PCI_PM_CTRL) & 0xffff, ==,
                        PCI_PM_CTRL_NO_SOFT_RESET);
        bar = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE,
                            MAP_SHARED, f.device, 0);
        g_assert(bar != MAP_FAILED);
        g_assert_cmpint(map_rw(&f, 0x100000, 0x1000, (uintptr_t)bar), ==, 0);

        g_assert_cmpint(set_power(&f, 1), ==, 0);   /* D1: refused */
        g_assert_cmpint(set_power(&f, 3), ==, 3);
        g_assert_cmpint(map_rw(&f, 0x200000, 0x1000, (uintptr_t)bar), ==,
                        -EFAULT);
        /* Decoding is still on in the command register */
        g_assert_cmphex(cfg_read32(&f, PCI_COMMAND) & PCI_COMMAND_MEMORY,
                        ==, PCI_COMMAND_MEMORY);
        /* What was mapped stays mapped (type1 does not revoke it) */
        g_assert_cmpint(do_unmap(&f, 0x100000, 0x1000, 0, &unmapped), ==, 0);
        g_assert_cmphex(unmapped, ==, 0x1000);
        /* RAM is not affected */
        g_assert_cmpint(map_rw(&f, 0x300000, 0x1000, alloc_mem(1, 4096)),
                        ==, 0);
        g_assert_cmpint(set_power(&f, 2), ==, 3);   /* D2: refused */

        g_assert_cmpint(set_power(&f, 0), ==, stuck ? 3 : 0);
        g_assert_cmpint(map_rw(&f, 0x200000, 0x1000, (uintptr_t)bar), ==,
                        stuck ? -EFAULT : 0);
        if (!stuck) {
            g_assert_cmpint(set_power(&f, 3), ==, 3);
        }
        g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_RESET,
                                       NULL), ==, 0);
        g_assert_cmphex(cfg_read32(&f, 0x50 + PCI_PM_CTRL) &
                        PCI_PM_CTRL_STATE_MASK, ==, stuck ? 3 : 0);
        g_assert_cmpint(map_rw(&f, 0x400000, 0x1000, (uintptr_t)bar + 0x1000),
                        ==, stuck ? -EFAULT : 0);
        teardown(&f);
    }
}

/* vfio_pin_pages_remote(): FOLL_WRITE for a writable mapping */
static void test_map_readonly_vaddr(void)
{
    Fixture f = { 0 };
    uint8_t *ro, *none;

    setup(&f, base_config);
    ro = mmap(NULL, 0x2000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    none = mmap(NULL, 0x1000, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert(ro != MAP_FAILED && none != MAP_FAILED);
    g_assert_cmpint(map_rw(&f, 0, 0x2000, (uintptr_t)ro), ==, -EFAULT);
    g_assert_cmpint(do_map(&f, 0, 0x2000, (uintptr_t)ro,
                           VFIO_DMA_MAP_FLAG_WRITE), ==, -EFAULT);
    g_assert_cmpint(do_map(&f, 0, 0x2000, (uintptr_t)ro,
                           VFIO_DMA_MAP_FLAG_READ), ==, 0);
    g_assert_cmpint(do_map(&f, 0x10000, 0x1000, (uintptr_t)none,
                           VFIO_DMA_MAP_FLAG_READ), ==, -EFAULT);
    teardown(&f);
}

/* vfio_dma_do_map(), vfio_dma_do_unmap(): wraps, by kernel version */
static void test_map_wrap_versions(void)
{
    static const struct {
        const char *kernel;
        int wrap;
    } cases[] = {
        { "", -EOVERFLOW },
        { "kernel = 7.3\n", -EOVERFLOW },
        { "kernel = 6.12\n", -EINVAL },
    };
    uint64_t top = 0xfffffffffffff000ULL, unmapped;
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        Fixture f = { 0 };
        g_autofree char *cfg = g_strconcat(base_config, "[container]\n",
                                           cases[i].kernel, NULL);
        uint64_t mem = alloc_mem(2, 4096);

        setup(&f, cfg);
        g_assert_cmpint(map_rw(&f, top, 0x2000, mem), ==, cases[i].wrap);
        g_assert_cmpint(map_rw(&f, 0, 0x2000, top), ==, cases[i].wrap);
        /* 6.19+ checks the wrap before the alignment; 6.12 after */
        g_assert_cmpint(map_rw(&f, top, 0x2000, mem + 1), ==,
                        cases[i].wrap);
        g_assert_cmpint(map_rw(&f, top, 0, mem), ==, -EINVAL);
        g_assert_cmpint(do_unmap(&f, top, 0x2000, 0, &unmapped), ==,
                        cases[i].wrap);
        g_assert_cmpint(do_unmap(&f, top + 1, 0x2000, 0, &unmapped), ==,
                        -EINVAL);
        teardown(&f);
    }
}

/* vfio_dma_do_map() with VFIO_DMA_MAP_FLAG_VADDR, and the unmap side */
static void test_update_vaddr(void)
{
    Fixture f = { 0 };
    uint64_t a = alloc_mem(4, 4096), b = alloc_mem(4, 4096), unmapped;
    g_autoptr(GArray) m = NULL;

    setup(&f, base_config);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.container, VFIO_CHECK_EXTENSION,
                                   (void *)VFIO_UPDATE_VADDR), ==, 1);
    g_assert_cmpint(map_rw(&f, 0x10000, 0x2000, a), ==, 0);
    g_assert_cmpint(map_rw(&f, 0x12000, 0x2000, a + 0x2000), ==, 0);
    /* a valid vaddr cannot be replaced */
    g_assert_cmpint(do_map(&f, 0x10000, 0x2000, b, VFIO_DMA_MAP_FLAG_VADDR),
                    ==, -EINVAL);
    /* invalidate both; the mappings stay */
    g_assert_cmpint(do_unmap(&f, 0x10000, 0x4000, VFIO_DMA_UNMAP_FLAG_VADDR,
                             &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x4000);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 2);
    /* twice: EINVAL, nothing changes */
    g_assert_cmpint(do_unmap(&f, 0x10000, 0x4000, VFIO_DMA_UNMAP_FLAG_VADDR,
                             &unmapped), ==, -EINVAL);
    g_assert_cmphex(unmapped, ==, 0x4000);      /* not written back */
    /* new vaddrs: whole mappings only; none there is ENOENT */
    g_assert_cmpint(do_map(&f, 0x20000, 0x1000, b, VFIO_DMA_MAP_FLAG_VADDR),
                    ==, -ENOENT);
    g_assert_cmpint(do_map(&f, 0x10000, 0x1000, b, VFIO_DMA_MAP_FLAG_VADDR),
                    ==, -EINVAL);
    g_assert_cmpint(do_map(&f, 0x10000, 0x2000, b,
                           VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ),
                    ==, -EINVAL);
    g_assert_cmpint(do_map(&f, 0x10000, 0x2000, b, VFIO_DMA_MAP_FLAG_VADDR),
                    ==, 0);
    g_assert_cmpint(do_map(&f, 0x10000, 0x2000, b, VFIO_DMA_MAP_FLAG_VADDR),
                    ==, -EINVAL);
    /* the first is valid again: invalidating both fails and undoes */
    g_assert_cmpint(do_unmap(&f, 0x10000, 0x4000, VFIO_DMA_UNMAP_FLAG_VADDR,
                             &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_map(&f, 0x10000, 0x2000, a, VFIO_DMA_MAP_FLAG_VADDR),
                    ==, -EINVAL);
    /* an invalid mapping unmaps normally */
    g_assert_cmpint(do_unmap(&f, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &unmapped),
                    ==, 0);
    g_assert_cmphex(unmapped, ==, 0x4000);
    teardown(&f);
}

static int dirty_pages(Fixture *f, uint32_t flags, uint64_t iova,
                       uint64_t size, uint64_t pgsize, uint64_t *bitmap)
{
    struct {
        struct vfio_iommu_type1_dirty_bitmap hdr;
        struct vfio_iommu_type1_dirty_bitmap_get get;
    } d = {
        .hdr = { .argsz = sizeof(d), .flags = flags },
        .get = {
            .iova = iova, .size = size,
            .bitmap = { .pgsize = pgsize, .size = 8,
                        .data = (void *)bitmap },
        },
    };

    return vfio_emu_ioctl(f->emu, f->container, VFIO_IOMMU_DIRTY_PAGES, &d) ?
           -errno : 0;
}

/* vfio_iommu_type1_dirty_pages() */
static void test_dirty_pages(void)
{
    Fixture f = { 0 };
    uint64_t bitmap = 0;

    setup(&f, base_config);
    g_assert_cmpint(map_rw(&f, 0x10000, 0x2000, alloc_mem(2, 4096)), ==, 0);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
                                0x10000, 0x4000, 0x1000, &bitmap), ==,
                    -EINVAL);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
                                VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, 0, 0, 0,
                                NULL), ==, -EINVAL);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START, 0, 0,
                                0, NULL), ==, 0);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START, 0, 0,
                                0, NULL), ==, 0);
    /* the bitmap's page is the IOMMU's smallest */
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
                                0x10000, 0x4000, 0x2000, &bitmap), ==,
                    -EINVAL);
    /* with no vendor driver pinning, every mapped page is dirty */
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
                                0x10000, 0x4000, 0x1000, &bitmap), ==, 0);
    g_assert_cmphex(bitmap, ==, 0x3);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, 0, 0,
                                0, NULL), ==, 0);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
                                0x10000, 0x4000, 0x1000, &bitmap), ==,
                    -EINVAL);
    teardown(&f);

    /* type1 (v1): EACCES */
    setup_type(&f, base_config, VFIO_TYPE1_IOMMU);
    g_assert_cmpint(dirty_pages(&f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START, 0, 0,
                                0, NULL), ==, -EACCES);
    teardown(&f);
}

/*
 * GET_INFO with every argsz from the minimum to the whole chain, as the
 * iommufd selftest's vfio_compat get_info does: the flags are always
 * there, min(argsz, sizeof(info)) bytes are written, and the caps only
 * when all of them fit.  @fd is a type1 container or /dev/iommu.
 */
static void get_info_sweep(Fixture *f, int fd, bool migration)
{
    struct vfio_iommu_type1_info first = { .argsz = sizeof(first) };
    g_autofree uint8_t *buf = NULL;
    uint32_t caplen, argsz;

    g_assert_cmpint(vfio_emu_ioctl(f->emu, fd, VFIO_IOMMU_GET_INFO, &first),
                    ==, 0);
    g_assert_cmphex(first.flags, ==,
                    VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    g_assert_cmpint(first.cap_offset, ==, 0);
    caplen = first.argsz;
    g_assert_cmpint(caplen, >, sizeof(first));
    g_assert_cmpint(caplen % 8, ==, 0);
    buf = g_malloc(caplen + 8);

    for (argsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
         argsz <= caplen; argsz++) {
        struct vfio_iommu_type1_info *info = (void *)buf;
        uint32_t off, n = 0;
        size_t i;

        memset(buf, 0xaa, caplen + 8);
        info->argsz = argsz;
        info->flags = 0;
        g_assert_cmpint(vfio_emu_ioctl(f->emu, fd, VFIO_IOMMU_GET_INFO,
                                       info), ==, 0);
        g_assert_cmphex(info->flags, ==,
                        VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
        g_assert_cmpint(info->argsz, ==, caplen);
        g_assert_cmphex(info->iova_pgsizes, !=, 0);
        /* nothing is written past min(argsz, sizeof(*info)) */
        for (i = MIN(argsz, sizeof(*info)); i < sizeof(*info); i++) {
            g_assert_cmphex(buf[i], ==, 0xaa);
        }
        if (argsz >= sizeof(*info)) {
            g_assert_cmphex(info->pad, ==, 0);
        }
        if (argsz < caplen) {
            if (argsz >= offsetofend(struct vfio_iommu_type1_info,
                                     cap_offset)) {
                g_assert_cmpint(info->cap_offset, ==, 0);
            }
            continue;
        }
        /* a chain of 8-byte aligned caps inside the buffer */
        for (off = info->cap_offset; off; n++) {
            struct vfio_info_cap_header *hdr = (void *)(buf + off);

            g_assert_cmpint(off % 8, ==, 0);
            g_assert_cmpint(off + sizeof(*hdr), <=, caplen);
            g_assert_cmpint(hdr->next == 0 || hdr->next > off, ==, true);
            off = hdr->next;
        }
        g_assert_cmpint(n, ==, migration ? 3 : 2);
    }
}

static void test_iommu_info_argsz(void)
{
    Fixture f = { 0 };

    setup(&f, base_config);
    get_info_sweep(&f, f.container, true);
    teardown(&f);
}

/* Group, container and device through /dev/iommu's VFIO compat ioctls */
static void setup_compat(Fixture *f, const char *config, int type)
{
    new_emu(f, config);
    f->group = vfio_emu_open(f->emu, "/dev/vfio/5", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(f->group, >=, 0);
    f->container = vfio_emu_open(f->emu, "/dev/iommu", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(f->container, >=, 0);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container,
                                   VFIO_GET_API_VERSION, NULL), ==,
                    VFIO_API_VERSION);
    /* VFIO fails SET_IOMMU without a group: no compat IOAS yet */
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_SET_IOMMU,
                                   (void *)(uintptr_t)type), ==, -1);
    g_assert_cmpint(errno, ==, ENODEV);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->group, VFIO_GROUP_SET_CONTAINER,
                                   &f->container), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_CHECK_EXTENSION,
                                   (void *)(uintptr_t)type), ==, 1);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_SET_IOMMU,
                                   (void *)VFIO_SPAPR_TCE_IOMMU), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_ioctl(f->emu, f->container, VFIO_SET_IOMMU,
                                   (void *)(uintptr_t)type), ==, 0);
    f->device = vfio_emu_ioctl(f->emu, f->group, VFIO_GROUP_GET_DEVICE_FD,
                               (void *)DEV);
    g_assert_cmpint(f->device, >=, 0);
}

/* drivers/iommu/iommufd/vfio_compat.c */
static void test_iommufd_compat(void)
{
    Fixture f = { 0 };
    uint64_t mem = alloc_mem(16, 4096), unmapped;
    g_autoptr(GArray) m = NULL;
    struct vfio_group_status status = { .argsz = sizeof(status) };
    void *bar;

    setup_compat(&f, base_config, VFIO_TYPE1v2_IOMMU);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_GET_STATUS,
                                   &status), ==, 0);
    g_assert_cmphex(status.flags, ==, VFIO_GROUP_FLAGS_VIABLE |
                    VFIO_GROUP_FLAGS_CONTAINER_SET);
    /* no CPR and no dirty tracking through iommufd */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.container, VFIO_CHECK_EXTENSION,
                                   (void *)VFIO_UPDATE_VADDR), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.container,
                                   VFIO_IOMMU_DIRTY_PAGES, NULL), ==, -1);
    g_assert_cmpint(errno, ==, ENOTTY);
    get_info_sweep(&f, f.container, false);

    /* the iommufd selftest's vfio_compat map */
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x4000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x4000);
    /* unmap of empty is success */
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x4000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0);
    /* UNMAP_FLAG_ALL requires 0 iova/size */
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x4000, VFIO_DMA_UNMAP_FLAG_ALL,
                             &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_unmap(&f, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &unmapped),
                    ==, 0);
    g_assert_cmphex(unmapped, ==, 0x4000);
    /* type1v2: a range inside a mapping is ENOENT (not type1's EINVAL) */
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0x101000, 0x1000, 0, &unmapped), ==,
                    -ENOENT);
    /* flags the compat layer does not know */
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x4000, VFIO_DMA_UNMAP_FLAG_VADDR,
                             &unmapped), ==, -EINVAL);
    g_assert_cmpint(do_map(&f, 0x200000, 0x1000, mem,
                           VFIO_DMA_MAP_FLAG_VADDR), ==, -EINVAL);
    /* wraps: EOVERFLOW, in any kernel with iommufd */
    g_assert_cmpint(map_rw(&f, 0xfffffffffffff000ULL, 0x2000, mem), ==,
                    -EOVERFLOW);
    g_assert_cmpint(do_unmap(&f, 0xfffffffffffff000ULL, 0x2000, 0,
                             &unmapped), ==, -EOVERFLOW);
    /* a BAR mmap cannot be pinned by iommufd */
    bar = vfio_emu_mmap(f.emu, NULL, 0x4000, PROT_READ | PROT_WRITE,
                        MAP_SHARED, f.device, 0);
    g_assert(bar != MAP_FAILED);
    g_assert_cmpint(map_rw(&f, 0x200000, 0x4000, (uintptr_t)bar), ==,
                    -EFAULT);
    /* the device holds the group: UNSET is EBUSY until it is closed */
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_UNSET_CONTAINER,
                                   NULL), ==, -1);
    g_assert_cmpint(errno, ==, EBUSY);
    g_assert_cmpint(vfio_emu_close(f.emu, f.device), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.group, VFIO_GROUP_UNSET_CONTAINER,
                                   NULL), ==, 0);
    teardown(&f);

    /* type1: iopt_cut_iova() lets any page range go (huge_map) */
    setup_compat(&f, base_config, VFIO_TYPE1_IOMMU);
    g_assert_cmpint(map_rw(&f, 0x100000, 0x4000, mem), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0x101000, 0x1000, 0, &unmapped), ==, 0);
    g_assert_cmphex(unmapped, ==, 0x1000);
    g_assert_cmpint(do_unmap(&f, 0x103000, 0x1000, 0, &unmapped), ==, 0);
    g_assert_cmpint(do_unmap(&f, 0x100000, 0x1000, 0, &unmapped), ==, 0);
    g_array_unref(m);
    m = mappings(&f);
    g_assert_cmpint(m->len, ==, 1);
    teardown(&f);
}

/* The iommufd selftest's iommufd_ioas area and unmap_fully_contained_areas */
static void test_iommufd_area(void)
{
    Fixture f = { 0 };
    uint64_t buf = alloc_mem(8, 4096), base = 0x100000, len;
    uint32_t devid, ioas, hwpt;
    int i;

    setup_iommufd(&f, base_config, true, &devid, &ioas, &hwpt);
    /* unmap fails if nothing is mapped */
    for (i = 0; i != 10; i++) {
        g_assert_cmpint(ioas_unmap(&f, ioas, i * 4096, 4096, NULL), ==,
                        -ENOENT);
    }
    for (i = 0; i != 10; i++) {
        g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + i * 4096, 4096,
                                 buf), ==, 0);
    }
    for (i = 0; i != 10; i++) {
        g_assert_cmpint(ioas_unmap(&f, ioas, base + i * 4096, 4096, NULL),
                        ==, 0);
    }
    /* split fails */
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + 16 * 4096, 2 * 4096,
                             buf), ==, 0);
    g_assert_cmpint(ioas_unmap(&f, ioas, base + 16 * 4096, 4096, NULL), ==,
                    -ENOENT);
    g_assert_cmpint(ioas_unmap(&f, ioas, base + 17 * 4096, 4096, NULL), ==,
                    -ENOENT);
    /* over map fails */
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + 16 * 4096, 2 * 4096,
                             buf), ==, -EEXIST);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + 16 * 4096, 4096, buf),
                    ==, -EEXIST);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + 17 * 4096, 4096, buf),
                    ==, -EEXIST);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + 15 * 4096, 2 * 4096,
                             buf), ==, -EEXIST);
    g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + 15 * 4096, 3 * 4096,
                             buf), ==, -EEXIST);
    /* unmap all works, also on an empty IOAS */
    g_assert_cmpint(ioas_unmap(&f, ioas, 0, UINT64_MAX, NULL), ==, 0);
    g_assert_cmpint(ioas_unmap(&f, ioas, 0, UINT64_MAX, NULL), ==, 0);

    /* unmap_fully_contained_areas */
    base += 4 * 4096;
    for (i = 0; i != 4; i++) {
        g_assert_cmpint(ioas_map(&f, ioas, MAP_RW, base + i * 16 * 4096,
                                 8 * 4096, buf), ==, 0);
    }
    g_assert_cmpint(ioas_unmap(&f, ioas, base - 4 * 4096, 8 * 4096, NULL),
                    ==, -ENOENT);
    g_assert_cmpint(ioas_unmap(&f, ioas, base + 3 * 16 * 4096 + 4 * 4096,
                               8 * 4096, NULL), ==, -ENOENT);
    g_assert_cmpint(ioas_unmap(&f, ioas, base - 4 * 4096,
                               3 * 16 * 4096 + 8 * 4096 + 4 * 4096, &len),
                    ==, 0);
    g_assert_cmphex(len, ==, 32 * 4096);
    teardown(&f);
}

/* vfio_msi_set_block(): eventfds as triggers, DATA_NONE fires them */
static void test_msix_trigger(void)
{
    Fixture f = { 0 };
    struct {
        struct vfio_irq_set hdr;
        int32_t fds[2];
    } set = {
        .hdr = {
            .argsz = sizeof(set),
            .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            .index = VFIO_PCI_MSIX_IRQ_INDEX,
            .start = 0,
            .count = 2,
        },
    };
    struct vfio_irq_set fire = {
        .argsz = sizeof(fire),
        .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = VFIO_PCI_MSIX_IRQ_INDEX,
        .start = 1,
        .count = 1,
    };
    uint64_t v;

    setup(&f, base_config);
    set.fds[0] = eventfd(0, EFD_NONBLOCK);
    set.fds[1] = eventfd(0, EFD_NONBLOCK);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &set), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &fire), ==, 0);
    g_assert_cmpint(read(set.fds[0], &v, 8), ==, -1);
    g_assert_cmpint(read(set.fds[1], &v, 8), ==, 8);
    g_assert_cmpint(v, ==, 1);
    /* count 0: disabled; then nothing fires, and firing is EINVAL */
    fire.count = 0;
    fire.start = 0;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &fire), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &fire), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    fire.count = 1;
    fire.start = 1;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &fire), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(read(set.fds[1], &v, 8), ==, -1);
    close(set.fds[0]);
    close(set.fds[1]);
    teardown(&f);
}

/* The error IRQ: every device has one on 7.3, only PCI Express on 6.12 */
static void test_err_irq_versions(void)
{
    int k;

    for (k = 0; k < 2; k++) {
        g_autofree char *cfg = g_strconcat(base_config, "[container]\n",
                                           k ? "kernel = 6.12\n" : "", NULL);
        struct vfio_irq_info info = {
            .argsz = sizeof(info), .index = VFIO_PCI_ERR_IRQ_INDEX,
        };
        struct {
            struct vfio_irq_set hdr;
            int32_t fd;
        } set = {
            .hdr = {
                .argsz = sizeof(set),
                .flags = VFIO_IRQ_SET_DATA_EVENTFD |
                         VFIO_IRQ_SET_ACTION_TRIGGER,
                .index = VFIO_PCI_ERR_IRQ_INDEX,
                .count = 1,
            },
            .fd = -1,
        };
        Fixture f = { 0 };
        int ret;

        setup(&f, cfg);
        ret = vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_GET_IRQ_INFO,
                             &info);
        if (k) {
            g_assert_cmpint(ret, ==, -1);
            g_assert_cmpint(errno, ==, EINVAL);
        } else {
            g_assert_cmpint(ret, ==, 0);
            g_assert_cmpint(info.count, ==, 1);
            g_assert_cmphex(info.flags, ==,
                            VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);
        }
        g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                       &set), ==, k ? -1 : 0);
        teardown(&f);
    }
}

/*
 * MSI: the capability offers msi_vectors (the kernel's
 * vfio_pci_get_irq_count() reads it from there), its vectors are
 * triggered like MSI-X's, and the two are one at a time
 * (vfio_pci_set_msi_trigger(): EINVAL while the other is enabled).
 */
static void test_msi_trigger(void)
{
    g_autofree char *cfg = g_strconcat(base_config, "msi_vectors = 4\n",
                                       NULL);
    Fixture f = { 0 };
    struct {
        struct vfio_irq_set hdr;
        int32_t fds[1];
    } set = {
        .hdr = {
            .argsz = sizeof(set),
            .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            .index = VFIO_PCI_MSI_IRQ_INDEX,
            .start = 2,
            .count = 1,
        },
    };
    struct vfio_irq_set off = {
        .argsz = sizeof(off),
        .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = VFIO_PCI_MSIX_IRQ_INDEX,
    };
    struct vfio_irq_info info = {
        .argsz = sizeof(info), .index = VFIO_PCI_MSI_IRQ_INDEX,
    };
    uint8_t bools[1] = { 1 };
    struct {
        struct vfio_irq_set hdr;
        uint8_t b[1];
    } fire = {
        .hdr = {
            .argsz = sizeof(fire),
            .flags = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER,
            .index = VFIO_PCI_MSI_IRQ_INDEX,
            .start = 2,
            .count = 1,
        },
    };
    uint32_t cap;
    uint64_t v;

    setup(&f, cfg);
    /* MSI at 0x60 first in the chain, then MSI-X; 4 vectors, 64-bit */
    g_assert_cmphex(cfg_read32(&f, PCI_CAPABILITY_LIST) & 0xff, ==, 0x40);
    g_assert_cmphex(cfg_read32(&f, 0x40) & 0xffff, ==,
                    0x6000 | PCI_CAP_ID_MSIX);
    cap = cfg_read32(&f, 0x60);
    g_assert_cmphex(cap & 0xff, ==, PCI_CAP_ID_MSI);
    g_assert_cmphex((cap >> 16) & (PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_QMASK),
                    ==, PCI_MSI_FLAGS_64BIT | (2 << 1));
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_GET_IRQ_INFO,
                                   &info), ==, 0);
    g_assert_cmpint(info.count, ==, 4);

    /* MSI-X enabled (one vector, no eventfd): MSI is refused */
    set.hdr.index = VFIO_PCI_MSIX_IRQ_INDEX;
    set.fds[0] = -1;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &set), ==, 0);
    set.hdr.index = VFIO_PCI_MSI_IRQ_INDEX;
    set.fds[0] = eventfd(0, EFD_NONBLOCK);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &set), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &off), ==, 0);
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &set), ==, 0);

    memcpy(fire.b, bools, sizeof(bools));
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &fire), ==, 0);
    g_assert_cmpint(read(set.fds[0], &v, 8), ==, 8);
    g_assert_cmpint(v, ==, 1);
    /* now MSI-X is refused; past the 4 vectors too */
    off.count = 1;
    off.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &off), ==, -1);
    g_assert_cmpint(errno, ==, EINVAL);
    fire.hdr.start = 4;
    g_assert_cmpint(vfio_emu_ioctl(f.emu, f.device, VFIO_DEVICE_SET_IRQS,
                                   &fire), ==, -1);
    close(set.fds[0]);
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
    g_test_add_func("/vfio-emu/iommufd/bind", test_iommufd_bind);
    g_test_add_func("/vfio-emu/iommufd/ioctl-size", test_iommufd_ioctl_size);
    g_test_add_func("/vfio-emu/iommufd/objects", test_iommufd_objects);
    g_test_add_func("/vfio-emu/iommufd/map", test_iommufd_map);
    g_test_add_func("/vfio-emu/iommufd/map-file", test_iommufd_map_file);
    g_test_add_func("/vfio-emu/iommufd/unmap", test_iommufd_unmap);
    g_test_add_func("/vfio-emu/iommufd/teardown", test_iommufd_teardown);
    g_test_add_func("/vfio-emu/kernel/map-decode-off", test_map_decode_off);
    g_test_add_data_func("/vfio-emu/check-mappings/ok",
                         GINT_TO_POINTER(CHECK_OK), test_check_mappings);
    g_test_add_data_func("/vfio-emu/check-mappings/wrong-iova",
                         GINT_TO_POINTER(CHECK_WRONG_IOVA),
                         test_check_mappings);
    g_test_add_data_func("/vfio-emu/check-mappings/moved",
                         GINT_TO_POINTER(CHECK_MOVED), test_check_mappings);
    g_test_add_data_func("/vfio-emu/check-mappings/decode-off",
                         GINT_TO_POINTER(CHECK_DECODE_OFF),
                         test_check_mappings);
    g_test_add_data_func("/vfio-emu/check-mappings/msix-table",
                         GINT_TO_POINTER(CHECK_MSIX_TABLE),
                         test_check_mappings);
    g_test_add_data_func("/vfio-emu/check-mappings/past-bar",
                         GINT_TO_POINTER(CHECK_PAST_BAR),
                         test_check_mappings);
    g_test_add_data_func("/vfio-emu/check-mappings/unmap-hole",
                         GINT_TO_POINTER(CHECK_UNMAP_HOLE),
                         test_check_mappings);
    g_test_add_func("/vfio-emu/kernel/map-d3hot", test_map_d3hot);
    g_test_add_func("/vfio-emu/kernel/map-readonly-vaddr",
                    test_map_readonly_vaddr);
    g_test_add_func("/vfio-emu/kernel/map-wrap-versions",
                    test_map_wrap_versions);
    g_test_add_func("/vfio-emu/kernel/update-vaddr", test_update_vaddr);
    g_test_add_func("/vfio-emu/kernel/dirty-pages", test_dirty_pages);
    g_test_add_func("/vfio-emu/kernel/iommu-info-argsz",
                    test_iommu_info_argsz);
    g_test_add_func("/vfio-emu/kernel/iommufd-compat", test_iommufd_compat);
    g_test_add_func("/vfio-emu/kernel/iommufd-area", test_iommufd_area);
    g_test_add_func("/vfio-emu/kernel/msix-trigger", test_msix_trigger);
    g_test_add_func("/vfio-emu/kernel/msi-trigger", test_msi_trigger);
    g_test_add_func("/vfio-emu/kernel/err-irq-versions",
                    test_err_irq_versions);

    return g_test_run();
}
