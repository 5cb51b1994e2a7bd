/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: what the files of the model share (not an interface)
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#ifndef VFIO_EMU_INT_H
#define VFIO_EMU_INT_H

#include "vfio-emu.h"


#define EMU_NUM_BARS        6
#define EMU_ROM_INDEX       VFIO_PCI_ROM_REGION_INDEX
#define EMU_CONFIG_INDEX    VFIO_PCI_CONFIG_REGION_INDEX
#define EMU_NUM_REGIONS     VFIO_PCI_NUM_REGIONS
#define EMU_CONFIG_SIZE     PCI_CFG_SPACE_SIZE
#define EMU_MSIX_CAP        0x40
#define EMU_PM_CAP          0x50
#define EMU_MSI_CAP         0x60
#define EMU_REGION_MASK     (VFIO_EMU_REGION_OFFSET(1) - 1)
#define EMU_MAX_BAR_SIZE    VFIO_EMU_REGION_OFFSET(1)

/* The minimum argsz of the kernel's ioctl handlers */
#define offsetofend(type, field) \
    (offsetof(type, field) + sizeof_field(type, field))

typedef struct EmuRange {
    uint64_t start;
    uint64_t last;              /* inclusive */
} EmuRange;

typedef struct EmuBarCfg {
    uint64_t size;              /* 0: not implemented */
    bool io;
    bool mem64;
    bool prefetch;
    bool mmap;
} EmuBarCfg;

typedef struct EmuDeviceCfg {
    char *name;
    int group;
    bool has_group;
    uint32_t vendor_id;
    uint32_t device_id;
    uint32_t subsys_vendor_id;
    uint32_t subsys_id;
    uint32_t class_code;
    uint32_t revision;
    EmuBarCfg bar[EMU_NUM_BARS];
    uint64_t rom_size;
    uint32_t msix_entries;
    uint32_t msix_table_bar;
    uint32_t msix_table_offset;
    uint32_t msix_pba_bar;
    uint32_t msix_pba_offset;
    bool has_msix_pba;          /* else the PBA follows the table */
    bool msix_mappable;
    bool intx;
    bool reset;
    uint32_t msi_vectors;       /* an MSI capability with that many */
    bool pm;                    /* a power management capability */
    bool pm_stuck;              /* ... whose device never leaves D3hot */
} EmuDeviceCfg;

enum {
    EMU_FAULT_MAP = 1,
    EMU_FAULT_UNMAP = 2,
    EMU_FAULT_CHANGE_PROCESS = 4,   /* IOMMU_IOAS_CHANGE_PROCESS */
};

typedef struct EmuFault {
    char *name;
    int ops;
    int err;
    bool has_iova;
    EmuRange iova;
    char *backing;              /* NULL: any */
    uint64_t skip;
    bool has_count;
    uint64_t count;
    bool has_unmapped;          /* a wrong answer rather than an errno */
    bool unmaps_nothing;        /* unmapped = none */
    uint64_t unmapped;
    uint64_t matched;
    uint64_t failed;
} EmuFault;

/* The kernel versions whose checks differ where the emulation follows them */
typedef enum EmuKernel {
    EMU_KERNEL_6_12,            /* wraps are EINVAL */
    EMU_KERNEL_7_3,             /* wraps are EOVERFLOW (since 6.19) */
} EmuKernel;

/* A broken host: how VFIO_IOMMU_GET_INFO spoils its capability chain */
typedef enum EmuMalformed {
    EMU_MALFORMED_NONE,
    EMU_MALFORMED_CAP_LOOP,     /* the last capability points to the first */
    EMU_MALFORMED_CAP_PAST_ARGSZ, /* the first points past argsz */
    EMU_MALFORMED_NR_IOVAS,     /* the IOVA range count exceeds the answer */
    EMU_MALFORMED_RANGE_WRAP,   /* the first IOVA range ends before it starts */
    EMU_MALFORMED_NO_RANGES,    /* the IOVA range capability holds none */
    EMU_MALFORMED_RANGES_UNSORTED, /* the first two IOVA ranges swapped */
    EMU_MALFORMED_RANGES_OVERLAP, /* the first reaches into the second */
} EmuMalformed;

typedef struct EmuConfig {
    uint64_t pgsizes;
    bool has_ranges;
    GArray *ranges;             /* EmuRange */
    uint64_t dma_entry_limit;
    EmuKernel kernel;
    uint64_t host_page;         /* 0: the real page size */
    EmuMalformed malformed_info;
    bool check_mappings;        /* abort() when a BAR mapping is wrong */
    GPtrArray *devices;         /* EmuDeviceCfg */
    GPtrArray *faults;          /* EmuFault */
} EmuConfig;

typedef struct EmuDma {
    uint64_t iova;
    uint64_t size;
    uint64_t vaddr;
    uint32_t flags;
    bool vaddr_invalid;         /* VFIO_DMA_UNMAP_FLAG_VADDR */
    char *backing;
    int file;                   /* IOMMU_IOAS_MAP_FILE: our dup, else -1 */
    uint64_t file_start;        /* its offset in the file */
} EmuDma;

typedef struct EmuContainer {
    int id;
    bool fd_open;
    int ngroups;
    int iommu_type;             /* 0: not set */
    GArray *dmas;               /* EmuDma, sorted by iova */
    uint64_t dma_avail;
    bool dirty_tracking;        /* VFIO_IOMMU_DIRTY_PAGES_FLAG_START */
} EmuContainer;

typedef struct EmuIommufd EmuIommufd;

typedef struct EmuGroup {
    int id;
    bool fd_open;
    int device_fds;
    EmuContainer *container;
    EmuIommufd *ictx;           /* VFIO_GROUP_SET_CONTAINER with /dev/iommu */
} EmuGroup;

typedef struct EmuCdev EmuCdev;

typedef struct EmuDevice {
    EmuDeviceCfg *cfg;
    EmuGroup *group;
    int memfd;
    int fds;
    int cdev_index;             /* /dev/vfio/devices/vfioN */
    EmuCdev *cdev_bound;        /* the cdev file bound to an iommufd */
    int *msix_triggers;         /* eventfds of VFIO_DEVICE_SET_IRQS, or -1 */
    int *msi_triggers;          /* likewise for MSI */
    uint8_t init_config[EMU_CONFIG_SIZE];
    uint8_t wmask[EMU_CONFIG_SIZE];
} EmuDevice;

typedef struct EmuBarMmap {
    uint64_t start;
    uint64_t size;
    EmuDevice *dev;
    int bar;
    uint64_t offset;
} EmuBarMmap;

typedef enum EmuFdKind {
    EMU_FD_CONTAINER,
    EMU_FD_GROUP,
    EMU_FD_DEVICE,
    EMU_FD_IOMMUFD,
    EMU_FD_CDEV,
} EmuFdKind;

typedef struct EmuFd {
    EmuFdKind kind;
    void *obj;
    EmuCdev *compat;            /* a group's device fd bound to an iommufd */
} EmuFd;

struct VfioEmu {
    EmuConfig *cfg;
    char *state_dir;
    int events_fd;
    uint64_t seq;
    uint64_t page_size;
    int next_container_id;
    GHashTable *fds;            /* fd -> EmuFd */
    GHashTable *groups;         /* group id -> EmuGroup */
    GPtrArray *devices;         /* EmuDevice */
    GPtrArray *containers;      /* live EmuContainer */
    GPtrArray *ictxs;           /* live EmuIommufd */
    int next_ictx_id;
    GArray *bar_mmaps;          /* EmuBarMmap */
    GPtrArray *file_faults;     /* EmuFault from STATE/faults */
    bool have_faults_stat;
    struct stat faults_stat;
};


/*
 * Capability chains (vfio_info_cap_header), built relative to the start of
 * the chain and shifted by the size of the info struct when copied out.
 */
typedef struct EmuCaps {
    GByteArray *buf;
    size_t last;
} EmuCaps;

typedef enum EmuObjType {
    EMU_OBJ_IOAS,
    EMU_OBJ_HWPT,
    EMU_OBJ_DEVICE,
} EmuObjType;

typedef struct EmuObj EmuObj;

/* An iommufd object; its ID is its key in the context's table */
struct EmuObj {
    EmuObjType type;
    uint32_t id;
    int refs;                   /* HWPTs on an IOAS, devices on a HWPT */
    EmuContainer *ioas;         /* IOAS, HWPT: the IOAS's mapping table */
    EmuObj *parent;             /* HWPT: its IOAS */
    bool auto_domain;           /* HWPT made by attaching to an IOAS */
    bool no_large_pages;        /* IOAS: VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU) */
    EmuDevice *dev;             /* DEVICE */
};

/* An open of /dev/iommu */
typedef struct EmuIommufd {
    int id;
    bool fd_open;
    int binds;                  /* bound devices hold the context */
    int groups;                 /* so do groups set to it (VFIO compat) */
    GHashTable *objs;           /* id -> EmuObj */
    EmuObj *vfio_ioas;          /* the IOAS of the VFIO compat ioctls */
} EmuIommufd;

/* An open of /dev/vfio/devices/vfioN */
struct EmuCdev {
    EmuDevice *dev;
    EmuIommufd *ictx;           /* NULL until VFIO_DEVICE_BIND_IOMMUFD */
    EmuObj *idev;
    EmuObj *hwpt;               /* the attached paging domain, or NULL */
};

/* vfio-emu-config.c */
void emu_fault_free(gpointer p);
void emu_config_free(EmuConfig *cfg);
EmuConfig *emu_config_new(void);
bool emu_parse_u64(const char *s, uint64_t *v);
bool emu_parse_config(const char *text, bool faults_only,
                      EmuConfig *cfg, char **errmsg);

/* vfio-emu-state-files.c */
void G_GNUC_PRINTF(2, 3) emu_log(VfioEmu *emu, const char *fmt, ...);
void emu_write_mappings(VfioEmu *emu);
int emu_check_faults(VfioEmu *emu, int op, uint64_t iova,
                     uint64_t size, GPtrArray *backings);
const EmuFault *emu_match_fault(VfioEmu *emu, int op, uint64_t iova,
                                uint64_t size, GPtrArray *backings);

/* vfio-emu-pci.c */
void emu_config_fixup(EmuDevice *dev, uint8_t *config);
void emu_device_build_config(EmuDevice *dev);
ssize_t emu_raw_pread(int fd, void *buf, size_t count, off_t off);
ssize_t emu_raw_pwrite(int fd, const void *buf, size_t count,
                       off_t off);
bool emu_device_reset_config(EmuDevice *dev);
void emu_pm_request(EmuDevice *dev, uint8_t *config, uint8_t state);
bool emu_device_memory_enabled(EmuDevice *dev);
void emu_region(EmuDevice *dev, uint32_t index, uint64_t *size,
                uint32_t *flags);
void *emu_caps_add(EmuCaps *caps, size_t size, uint16_t id,
                   uint16_t version);
void emu_caps_copy_out(EmuCaps *caps, void *arg, size_t info_size,
                       uint32_t *argsz, uint32_t *flags,
                       uint32_t caps_flag, uint32_t *cap_offset);
void emu_irq_triggers_free(EmuDevice *dev);
int emu_device_ioctl(VfioEmu *emu, EmuDevice *dev,
                     unsigned long request, void *arg);

/* vfio-emu-type1.c */
uint64_t emu_min_pgsize(VfioEmu *emu);
guint emu_dma_lower_bound(EmuContainer *c, uint64_t iova);
EmuDma *emu_dma_find(EmuContainer *c, uint64_t iova);
bool emu_dma_overlaps(EmuContainer *c, uint64_t iova, uint64_t last);
bool emu_iova_valid(VfioEmu *emu, uint64_t iova, uint64_t last);
EmuContainer *emu_container_new(VfioEmu *emu);
void emu_container_maybe_free(VfioEmu *emu, EmuContainer *c);
void emu_group_detach(VfioEmu *emu, EmuGroup *g);
bool emu_vaddr_pin_ok(VfioEmu *emu, uint64_t vaddr, uint64_t size,
                      bool write);
int emu_container_ioctl(VfioEmu *emu, EmuContainer *c,
                        unsigned long request, void *arg);
void emu_check_mappings(VfioEmu *emu);

/* vfio-emu-group.c */
void emu_group_unset(VfioEmu *emu, EmuGroup *g);
EmuFd *emu_fd_lookup(VfioEmu *emu, int fd);
int emu_new_fd(VfioEmu *emu, const char *name, EmuFdKind kind,
               void *obj, int oflags);
int emu_group_ioctl(VfioEmu *emu, EmuGroup *g, unsigned long request,
                    void *arg);

/* vfio-emu-iommufd.c */
void emu_iommufd_maybe_release(VfioEmu *emu, EmuIommufd *ictx);
void emu_compat_group_set(VfioEmu *emu, EmuGroup *g,
                          EmuIommufd *ictx);
void emu_compat_group_unset(VfioEmu *emu, EmuGroup *g);
int emu_compat_device_open(VfioEmu *emu, EmuGroup *g, EmuDevice *dev,
                           EmuCdev **out);
void emu_compat_device_close(VfioEmu *emu, EmuCdev *cd);
int emu_iommufd_ioctl(VfioEmu *emu, EmuIommufd *ictx,
                      unsigned long request, void *arg);
int emu_iommufd_open(VfioEmu *emu, int flags);
EmuDevice *emu_cdev_device(VfioEmu *emu, const char *name);
int emu_cdev_open(VfioEmu *emu, const char *name, int flags);
int emu_cdev_ioctl(VfioEmu *emu, EmuCdev *cd, unsigned long request,
                   void *arg);
void emu_cdev_release(VfioEmu *emu, EmuCdev *cd);
EmuDevice *emu_fd_device(EmuFd *f);
bool emu_group_cdev_bound(VfioEmu *emu, EmuGroup *g);

#endif
