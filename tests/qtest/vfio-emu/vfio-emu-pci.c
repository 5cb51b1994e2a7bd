/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: vfio-pci devices: config space, regions, interrupts
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/vfio.h>
#include <linux/iommufd.h>

#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "standard-headers/linux/pci_regs.h"
#include "vfio-emu-int.h"

/*
 * Devices: config space and regions
 */

static uint32_t emu_bar_flags(const EmuBarCfg *bar)
{
    if (bar->io) {
        return PCI_BASE_ADDRESS_SPACE_IO;
    }
    return (bar->mem64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
           (bar->prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
}

/*
 * The kernel virtualizes BARs and the ROM BAR: what is read back is what
 * was written masked to the size, plus the type bits, so that sizing works.
 */
void emu_config_fixup(EmuDevice *dev, uint8_t *config)
{
    EmuDeviceCfg *cfg = dev->cfg;
    uint32_t v;
    int i;

    for (i = 0; i < EMU_NUM_BARS; i++) {
        uint8_t *p = config + PCI_BASE_ADDRESS_0 + 4 * i;
        const EmuBarCfg *bar = &cfg->bar[i];

        v = ldl_le_p(p);
        if (bar->size) {
            v = (v & (uint32_t)~(bar->size - 1)) | emu_bar_flags(bar);
        } else if (i > 0 && cfg->bar[i - 1].mem64) {
            v &= (uint32_t)(~(cfg->bar[i - 1].size - 1) >> 32);
        } else {
            v = 0;
        }
        stl_le_p(p, v);
    }

    v = ldl_le_p(config + PCI_ROM_ADDRESS);
    if (cfg->rom_size) {
        v &= (uint32_t)~(cfg->rom_size - 1) | PCI_ROM_ADDRESS_ENABLE;
    } else {
        v = 0;
    }
    stl_le_p(config + PCI_ROM_ADDRESS, v);
}

/* Capability @id at @off of config space @c, at the head of the list */
static uint8_t *emu_cap_add(uint8_t *c, uint8_t off, uint8_t id)
{
    uint8_t *cap = c + off;

    stw_le_p(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
    cap[PCI_CAP_LIST_ID] = id;
    cap[PCI_CAP_LIST_NEXT] = c[PCI_CAPABILITY_LIST];
    c[PCI_CAPABILITY_LIST] = off;
    return cap;
}

void emu_device_build_config(EmuDevice *dev)
{
    EmuDeviceCfg *cfg = dev->cfg;
    uint8_t *c = dev->init_config;
    uint8_t *w = dev->wmask;
    int i;

    memset(c, 0, EMU_CONFIG_SIZE);
    memset(w, 0, EMU_CONFIG_SIZE);

    stw_le_p(c + PCI_VENDOR_ID, cfg->vendor_id);
    stw_le_p(c + PCI_DEVICE_ID, cfg->device_id);
    c[PCI_REVISION_ID] = cfg->revision;
    c[PCI_CLASS_PROG] = cfg->class_code & 0xff;
    stw_le_p(c + PCI_CLASS_DEVICE, cfg->class_code >> 8);
    c[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
    for (i = 0; i < EMU_NUM_BARS; i++) {
        if (cfg->bar[i].size) {
            stl_le_p(c + PCI_BASE_ADDRESS_0 + 4 * i,
                     emu_bar_flags(&cfg->bar[i]));
            /*
             * vfio_pci_core_enable() calls pci_enable_device(), which
             * turns on decoding of the BARs' resources; vfio_config_init()
             * copies that into the virtual config space.
             */
            c[PCI_COMMAND] |= cfg->bar[i].io ? PCI_COMMAND_IO :
                                               PCI_COMMAND_MEMORY;
        }
    }
    stw_le_p(c + PCI_SUBSYSTEM_VENDOR_ID, cfg->subsys_vendor_id);
    stw_le_p(c + PCI_SUBSYSTEM_ID, cfg->subsys_id);
    c[PCI_INTERRUPT_PIN] = cfg->intx ? 1 : 0;

    if (cfg->pm) {
        uint8_t *cap = emu_cap_add(c, EMU_PM_CAP, PCI_CAP_ID_PM);

        /* D0 and D3hot only; the state is kept across D3hot -> D0 */
        stw_le_p(cap + PCI_PM_PMC, 3);      /* version 1.2 */
        stw_le_p(cap + PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET);
    }
    if (cfg->msi_vectors) {
        uint8_t *cap = emu_cap_add(c, EMU_MSI_CAP, PCI_CAP_ID_MSI);

        stw_le_p(cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT |
                 (ctz32(cfg->msi_vectors) << 1));
        /* enable, multiple message enable; the address and the data */
        stw_le_p(w + EMU_MSI_CAP + PCI_MSI_FLAGS,
                 PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
        memset(w + EMU_MSI_CAP + PCI_MSI_ADDRESS_LO, 0xff, 4);
        memset(w + EMU_MSI_CAP + PCI_MSI_ADDRESS_HI, 0xff, 4);
        memset(w + EMU_MSI_CAP + PCI_MSI_DATA_64, 0xff, 2);
    }
    if (cfg->msix_entries) {
        uint8_t *cap = emu_cap_add(c, EMU_MSIX_CAP, PCI_CAP_ID_MSIX);

        stw_le_p(cap + PCI_MSIX_FLAGS, cfg->msix_entries - 1);
        stl_le_p(cap + PCI_MSIX_TABLE,
                 cfg->msix_table_offset | cfg->msix_table_bar);
        stl_le_p(cap + PCI_MSIX_PBA, cfg->msix_pba_offset | cfg->msix_pba_bar);
        /* enable and function mask */
        w[EMU_MSIX_CAP + PCI_MSIX_FLAGS + 1] = 0xc0;
    }

    /* What the kernel lets a user write (the rest is dropped) */
    w[PCI_COMMAND] = 0xff;
    w[PCI_COMMAND + 1] = 0x07;
    w[PCI_CACHE_LINE_SIZE] = 0xff;
    w[PCI_LATENCY_TIMER] = 0xff;
    memset(w + PCI_BASE_ADDRESS_0, 0xff, 4 * EMU_NUM_BARS);
    memset(w + PCI_ROM_ADDRESS, 0xff, 4);
    w[PCI_INTERRUPT_LINE] = 0xff;
}

ssize_t emu_raw_pread(int fd, void *buf, size_t count, off_t off)
{
    return syscall(SYS_pread64, fd, buf, count, off);
}

ssize_t emu_raw_pwrite(int fd, const void *buf, size_t count,
                       off_t off)
{
    return syscall(SYS_pwrite64, fd, buf, count, off);
}

bool emu_device_reset_config(EmuDevice *dev)
{
    return emu_raw_pwrite(dev->memfd, dev->init_config, EMU_CONFIG_SIZE,
                          VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) ==
           EMU_CONFIG_SIZE;
}

/*
 * A write of the power state to PMCSR: the state bits are not written but
 * requested, as vfio_pm_config_write() -> vfio_lock_and_set_power_state()
 * does; pci_set_power_state() refuses D1 and D2, which PMC does not offer.
 */
void emu_pm_request(EmuDevice *dev, uint8_t *config, uint8_t state)
{
    uint8_t *ctrl = config + EMU_PM_CAP + PCI_PM_CTRL;

    if (!dev->cfg->pm || state == 1 || state == 2 ||
        (dev->cfg->pm_stuck && (*ctrl & PCI_PM_CTRL_STATE_MASK) == 3)) {
        return;
    }
    *ctrl = (*ctrl & ~PCI_PM_CTRL_STATE_MASK) | state;
}

/*
 * __vfio_pci_memory_enabled(): memory decoding on and the device in a
 * power state above D3hot.  While it is false, a fault on a BAR mmap is
 * SIGBUS (vfio_pci_vmf_insert_pfn()), so pinning one fails.
 */
bool emu_device_memory_enabled(EmuDevice *dev)
{
    uint8_t config[EMU_PM_CAP + PCI_PM_SIZEOF];

    if (emu_raw_pread(dev->memfd, config, sizeof(config),
                      VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX)) !=
        sizeof(config)) {
        return false;
    }
    if (dev->cfg->pm &&
        (config[EMU_PM_CAP + PCI_PM_CTRL] & PCI_PM_CTRL_STATE_MASK) == 3) {
        return false;
    }
    return lduw_le_p(config + PCI_COMMAND) & PCI_COMMAND_MEMORY;
}

/*
 * VFIO_DEVICE_RESET: vfio_pci_ioctl_reset() puts the device in D0 before
 * the function reset, whose save and restore keep the config space.
 */
static int emu_device_reset(EmuDevice *dev)
{
    uint8_t config[EMU_CONFIG_SIZE];
    uint64_t off = VFIO_EMU_REGION_OFFSET(EMU_CONFIG_INDEX);

    if (!dev->cfg->reset) {
        return -EINVAL;
    }
    if (emu_raw_pread(dev->memfd, config, sizeof(config), off) !=
        sizeof(config)) {
        return -EIO;
    }
    emu_pm_request(dev, config, 0);
    if (emu_raw_pwrite(dev->memfd, config, sizeof(config), off) !=
        sizeof(config)) {
        return -EIO;
    }
    return 0;
}

/* Region @index: size and VFIO_REGION_INFO_FLAG_* */
void emu_region(EmuDevice *dev, uint32_t index, uint64_t *size,
                uint32_t *flags)
{
    EmuDeviceCfg *cfg = dev->cfg;

    *size = 0;
    *flags = 0;
    if (index < EMU_NUM_BARS) {
        const EmuBarCfg *bar = &cfg->bar[index];

        if (bar->size) {
            *size = bar->size;
            *flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
            if (!bar->io && bar->mmap) {
                *flags |= VFIO_REGION_INFO_FLAG_MMAP;
            }
        }
    } else if (index == EMU_ROM_INDEX) {
        if (cfg->rom_size) {
            *size = cfg->rom_size;
            *flags = VFIO_REGION_INFO_FLAG_READ;
        }
    } else if (index == EMU_CONFIG_INDEX) {
        *size = EMU_CONFIG_SIZE;
        *flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    }
}

/* The host pages of the MSI-X table in its BAR: [*start, *end) */
static void emu_msix_table_pages(VfioEmu *emu, EmuDevice *dev,
                                 uint64_t *start, uint64_t *end)
{
    EmuDeviceCfg *cfg = dev->cfg;

    *start = cfg->msix_table_offset & ~(emu->page_size - 1);
    *end = ROUND_UP((uint64_t)cfg->msix_table_offset +
                    cfg->msix_entries * 16, emu->page_size);
}

void *emu_caps_add(EmuCaps *caps, size_t size, uint16_t id,
                   uint16_t version)
{
    struct vfio_info_cap_header *hdr;
    size_t off = caps->buf->len;

    /* vfio_info_cap_add(): each capability is padded to 8 bytes */
    size = ROUND_UP(size, 8);
    g_byte_array_set_size(caps->buf, off + size);
    memset(caps->buf->data + off, 0, size);
    hdr = (void *)(caps->buf->data + off);
    hdr->id = id;
    hdr->version = version;
    if (off) {
        ((struct vfio_info_cap_header *)(caps->buf->data +
                                         caps->last))->next = off;
    }
    caps->last = off;
    return hdr;
}

static void emu_caps_shift(EmuCaps *caps, uint32_t shift)
{
    struct vfio_info_cap_header *hdr;
    size_t off = 0;

    if (!caps->buf->len) {
        return;
    }
    for (;;) {
        hdr = (void *)(caps->buf->data + off);
        if (!hdr->next) {
            break;
        }
        off = hdr->next;
        hdr->next += shift;
    }
}

/*
 * Finish an info ioctl the way the kernel does: if the caps do not fit,
 * raise argsz and leave cap_offset 0, else copy them after the struct.
 */
void emu_caps_copy_out(EmuCaps *caps, void *arg, size_t info_size,
                       uint32_t *argsz, uint32_t *flags,
                       uint32_t caps_flag, uint32_t *cap_offset)
{
    if (!caps->buf->len) {
        return;
    }
    *flags |= caps_flag;
    if (*argsz < info_size + caps->buf->len) {
        *argsz = info_size + caps->buf->len;
        *cap_offset = 0;
    } else {
        emu_caps_shift(caps, info_size);
        memcpy((uint8_t *)arg + info_size, caps->buf->data, caps->buf->len);
        *cap_offset = info_size;
    }
}

static int emu_device_get_info(EmuDevice *dev, void *arg)
{
    struct vfio_device_info info;
    size_t minsz = offsetof(struct vfio_device_info, cap_offset);
    size_t capsz = offsetof(struct vfio_device_info, pad);

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz) {
        return -EINVAL;
    }
    if (info.argsz >= capsz) {
        minsz = capsz;
        info.cap_offset = 0;
    }
    info.flags = VFIO_DEVICE_FLAGS_PCI |
                 (dev->cfg->reset ? VFIO_DEVICE_FLAGS_RESET : 0);
    info.num_regions = EMU_NUM_REGIONS;
    info.num_irqs = VFIO_PCI_NUM_IRQS;
    memcpy(arg, &info, minsz);
    return 0;
}

static int emu_device_get_region_info(VfioEmu *emu, EmuDevice *dev,
                                      void *arg)
{
    struct vfio_region_info info;
    size_t minsz = offsetofend(struct vfio_region_info, offset);
    EmuDeviceCfg *cfg = dev->cfg;
    EmuCaps caps = { .buf = g_byte_array_new() };
    uint64_t size;

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz || info.index >= EMU_NUM_REGIONS) {
        g_byte_array_unref(caps.buf);
        return -EINVAL;
    }
    info.offset = VFIO_EMU_REGION_OFFSET(info.index);
    info.cap_offset = 0;
    emu_region(dev, info.index, &size, &info.flags);
    info.size = size;

    if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) && cfg->msix_entries &&
        info.index == cfg->msix_table_bar) {
        if (cfg->msix_mappable) {
            emu_caps_add(&caps, sizeof(struct vfio_info_cap_header),
                         VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
        } else {
            struct vfio_region_info_cap_sparse_mmap *sparse;
            uint64_t start, end;
            int nr = 0;

            emu_msix_table_pages(emu, dev, &start, &end);
            nr = (start && end < info.size) ? 2 : 1;
            sparse = emu_caps_add(&caps, sizeof(*sparse) +
                                  nr * sizeof(sparse->areas[0]),
                                  VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1);
            sparse->nr_areas = nr;
            nr = 0;
            if (start) {
                sparse->areas[nr].offset = 0;
                sparse->areas[nr].size = start;
                nr++;
            }
            if (end < info.size) {
                sparse->areas[nr].offset = end;
                sparse->areas[nr].size = info.size - end;
            }
        }
    }

    emu_caps_copy_out(&caps, arg, sizeof(info), &info.argsz, &info.flags,
                      VFIO_REGION_INFO_FLAG_CAPS, &info.cap_offset);
    g_byte_array_unref(caps.buf);
    memcpy(arg, &info, minsz);
    return 0;
}

/*
 * vfio_pci_get_irq_count().  The error IRQ: 7.3 has one for every device;
 * 6.12 only for PCI Express ones, which the emulation has none of.
 */
static uint32_t emu_irq_count(VfioEmu *emu, EmuDevice *dev, uint32_t index)
{
    switch (index) {
    case VFIO_PCI_ERR_IRQ_INDEX:
        return emu->cfg->kernel >= EMU_KERNEL_7_3 ? 1 : 0;
    case VFIO_PCI_INTX_IRQ_INDEX:
        return dev->cfg->intx ? 1 : 0;
    case VFIO_PCI_MSI_IRQ_INDEX:
        return dev->cfg->msi_vectors;
    case VFIO_PCI_MSIX_IRQ_INDEX:
        return dev->cfg->msix_entries;
    case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
    default:
        return 0;
    }
}

static int emu_device_get_irq_info(VfioEmu *emu, EmuDevice *dev, void *arg)
{
    struct vfio_irq_info info;
    size_t minsz = offsetofend(struct vfio_irq_info, count);

    memcpy(&info, arg, minsz);
    if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) {
        return -EINVAL;
    }
    /* The error IRQ: for PCI Express devices only, before 7.3 */
    if (info.index == VFIO_PCI_ERR_IRQ_INDEX &&
        !emu_irq_count(emu, dev, info.index)) {
        return -EINVAL;
    }
    info.flags = VFIO_IRQ_INFO_EVENTFD;
    info.count = emu_irq_count(emu, dev, info.index);
    if (info.index == VFIO_PCI_INTX_IRQ_INDEX) {
        info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    } else if (info.index != VFIO_PCI_MSIX_IRQ_INDEX) {
        info.flags |= VFIO_IRQ_INFO_NORESIZE;
    }
    memcpy(arg, &info, minsz);
    return 0;
}

static void emu_trigger_clear(int *triggers, uint32_t i)
{
    if (triggers[i] >= 0) {
        syscall(SYS_close, triggers[i]);
        triggers[i] = -1;
    }
}

static void emu_triggers_free(int **triggers, uint32_t n)
{
    uint32_t i;

    if (*triggers) {
        for (i = 0; i < n; i++) {
            emu_trigger_clear(*triggers, i);
        }
        g_clear_pointer(triggers, g_free);
    }
}

void emu_irq_triggers_free(EmuDevice *dev)
{
    emu_triggers_free(&dev->msix_triggers, dev->cfg->msix_entries);
    emu_triggers_free(&dev->msi_triggers, dev->cfg->msi_vectors);
}

/*
 * vfio_pci_set_msi_trigger(), vfio_msi_set_block() for MSI and MSI-X:
 * eventfds become the vectors' triggers (-1 clears one) and the first
 * enables the index; count 0 with DATA_NONE disables it; DATA_NONE and
 * DATA_BOOL fire triggers, of an enabled index only.  Interrupts of the
 * device itself never fire.  *@triggers holds @n vectors while enabled.
 */
static int emu_msi_set_block(int **triggers, uint32_t n,
                             struct vfio_irq_set *hdr, const uint8_t *data)
{
    uint32_t type = hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint64_t one = 1;
    uint32_t i;

    if (*triggers && !hdr->count && type == VFIO_IRQ_SET_DATA_NONE) {
        emu_triggers_free(triggers, n);
        return 0;
    }
    if (type == VFIO_IRQ_SET_DATA_EVENTFD && !*triggers) {
        *triggers = g_new(int, n);
        for (i = 0; i < n; i++) {
            (*triggers)[i] = -1;
        }
    } else if (!*triggers) {
        return -EINVAL;
    }
    for (i = hdr->start; i < hdr->start + hdr->count; i++) {
        if (type == VFIO_IRQ_SET_DATA_EVENTFD) {
            int32_t efd = ldl_he_p(data + 4 * (i - hdr->start));

            emu_trigger_clear(*triggers, i);
            if (efd >= 0) {
                (*triggers)[i] = fcntl(efd, F_DUPFD_CLOEXEC, 0);
            }
        } else if ((*triggers)[i] >= 0 &&
                   (type == VFIO_IRQ_SET_DATA_NONE || data[i - hdr->start])) {
            if (syscall(SYS_write, (*triggers)[i], &one,
                        sizeof(one)) != sizeof(one)) {
                /* a full eventfd counter: the interrupt is pending anyway */
            }
        }
    }
    return 0;
}

static int emu_device_set_irqs(VfioEmu *emu, EmuDevice *dev, void *arg)
{
    struct vfio_irq_set hdr;
    size_t minsz = offsetofend(struct vfio_irq_set, count);
    uint32_t max, action;
    size_t size;

    memcpy(&hdr, arg, minsz);
    if (hdr.argsz < minsz || hdr.index >= VFIO_PCI_NUM_IRQS ||
        hdr.count >= UINT32_MAX - hdr.start ||
        hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK |
                      VFIO_IRQ_SET_ACTION_TYPE_MASK)) {
        return -EINVAL;
    }
    max = emu_irq_count(emu, dev, hdr.index);
    if (hdr.start >= max || hdr.start + hdr.count > max) {
        return -EINVAL;
    }
    switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
        size = 0;
        break;
    case VFIO_IRQ_SET_DATA_BOOL:
        size = sizeof(uint8_t);
        break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
        size = sizeof(int32_t);
        break;
    default:
        return -EINVAL;
    }
    if (size && hdr.argsz - minsz < hdr.count * size) {
        return -EINVAL;
    }
    action = hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (hdr.index != VFIO_PCI_INTX_IRQ_INDEX &&
        action != VFIO_IRQ_SET_ACTION_TRIGGER) {
        return -ENOTTY;
    }
    /*
     * vfio_pci_set_irqs_ioctl(): MSI and MSI-X are one at a time (the
     * kernel's irq_type), until a count of 0 disables the one in use.
     */
    if ((hdr.index == VFIO_PCI_MSI_IRQ_INDEX && dev->msix_triggers) ||
        (hdr.index == VFIO_PCI_MSIX_IRQ_INDEX && dev->msi_triggers)) {
        return -EINVAL;
    }
    if (hdr.index == VFIO_PCI_MSIX_IRQ_INDEX) {
        return emu_msi_set_block(&dev->msix_triggers, dev->cfg->msix_entries,
                                 &hdr, (uint8_t *)arg + minsz);
    } else if (hdr.index == VFIO_PCI_MSI_IRQ_INDEX) {
        return emu_msi_set_block(&dev->msi_triggers, dev->cfg->msi_vectors,
                                 &hdr, (uint8_t *)arg + minsz);
    }
    return 0;
}

int emu_device_ioctl(VfioEmu *emu, EmuDevice *dev,
                     unsigned long request, void *arg)
{
    switch (request) {
    case VFIO_DEVICE_GET_INFO:
        return emu_device_get_info(dev, arg);
    case VFIO_DEVICE_GET_REGION_INFO:
        return emu_device_get_region_info(emu, dev, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
        return emu_device_get_irq_info(emu, dev, arg);
    case VFIO_DEVICE_SET_IRQS:
        return emu_device_set_irqs(emu, dev, arg);
    case VFIO_DEVICE_RESET:
        return emu_device_reset(dev);
    case VFIO_DEVICE_BIND_IOMMUFD:
        /* only on cdev fds */
        return -EINVAL;
    default:
        /* VFIO_DEVICE_FEATURE (no migration), hot reset, ... */
        return -ENOTTY;
    }
}
