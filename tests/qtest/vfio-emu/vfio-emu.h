/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: a user-space model of the kernel's VFIO UAPI for qtests
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * vfio-emu plays the kernel for a QEMU that runs without a host device:
 * /dev/vfio/vfio (a legacy type1 container), /dev/vfio/<group>, /dev/iommu
 * (iommufd), the device cdevs /dev/vfio/devices/vfioN and vfio-pci
 * devices.  The model lives in vfio-emu*.c and is driven through the
 * vfio_emu_*() calls below, which take the same arguments as the system
 * calls they stand for.  vfio-emu-preload.c wraps it in an LD_PRELOAD
 * library (libvfio-emu.so) that interposes open/ioctl/close/mmap/munmap/
 * pread/pwrite and the stat family for the paths and file descriptors it
 * owns; unit tests call the model directly.
 *
 * The model does not link libqemuutil (it is loaded into QEMU, and into the
 * shell libqtest starts QEMU with), so errors are reported as strings rather
 * than through Error **.
 *
 * Selecting a device
 * ------------------
 * QEMU is started with "-device vfio-pci,sysfsdev=DIR" where DIR is a
 * directory named like the device (e.g. ".../0000:01:00.0") holding a
 * symbolic link "iommu_group" whose basename is the group number.  QEMU
 * asks for the device by that basename (VFIO_GROUP_GET_DEVICE_FD).
 *
 * With "-object iommufd,id=ID -device vfio-pci,iommufd=ID,sysfsdev=DIR",
 * QEMU instead reads DIR/vfio-dev/vfioN/dev ("MAJOR:MINOR"), opens
 * /dev/vfio/devices/vfioN and checks with fstat() that it is that
 * character device.  The [device] sections get cdev numbers in the order
 * they appear in the configuration: the first is /dev/vfio/devices/vfio0,
 * dev_t VFIO_EMU_CDEV_MAJOR:0.  The test creates the sysfs file; the
 * emulation answers stat() and fstat() of its paths and file descriptors
 * with character devices (/dev/vfio/vfio 10:196, /dev/iommu
 * 10:VFIO_EMU_IOMMU_MINOR, /dev/vfio/<group> VFIO_EMU_GROUP_MAJOR:<group>,
 * the cdevs as above).  A device fd from VFIO_GROUP_GET_DEVICE_FD stats as
 * the memfd behind it.
 *
 * Environment
 * -----------
 *   VFIO_EMU_CONFIG  path of the configuration file (required)
 *   VFIO_EMU_STATE   state directory (optional; where the emulation writes
 *                    "mappings" and "events" and reads "faults")
 *
 * Configuration file (GKeyFile syntax, numbers in C syntax: 0x1000, 4096)
 * -----------------------------------------------------------------------
 *   [container]                 applies to every container QEMU opens
 *   iova_pgsizes = 0x1000       bitmap reported by VFIO_IOMMU_GET_INFO
 *                               (always with VFIO_IOMMU_INFO_PGSIZES, as
 *                               the kernel); 0 is reported as is.
 *                               MAP/UNMAP require the lowest set bit as
 *                               alignment (4 KiB if the bitmap is 0).
 *                               Default 0x40201000 (4K|2M|1G, as x86).
 *   iova_ranges = 0-0xfedfffff,0xfef00000-0xffffffffffff
 *                               valid IOVA ranges, inclusive ends, sorted;
 *                               "none": no IOVA range capability and no
 *                               range check.  Default: the above (an x86
 *                               host: 48 bits minus the MSI window).
 *                               On iommufd, these are the device's usable
 *                               ranges: the rest is reserved in an IOAS
 *                               while a device is attached to it, and
 *                               IOMMU_IOAS_IOVA_RANGES reports them then
 *                               (0-UINT64_MAX before).
 *   dma_entry_limit = 65535     mappings allowed per container (type1 only)
 *   kernel = 7.3                the kernel whose checks are modelled where
 *                               versions differ: 7.3 (default; 6.19 and
 *                               later) or 6.12.  A MAP_DMA or UNMAP_DMA
 *                               whose iova or vaddr range wraps fails with
 *                               EOVERFLOW, checked before the flags and the
 *                               alignment, on 7.3; with EINVAL, after
 *                               them, on 6.12.
 *   malformed_info = cap-loop   a broken host, for tests of QEMU's checks:
 *                               VFIO_IOMMU_GET_INFO's first capability
 *                               points to itself (cap-loop), past argsz
 *                               (cap-past-argsz), or its IOVA range
 *                               capability claims more ranges than the
 *                               answer holds (nr-iovas), its first range
 *                               ends before it starts (range-wrap), it
 *                               holds none (no-ranges), its first two
 *                               ranges are swapped (ranges-unsorted), or
 *                               the first reaches 4 KiB into the second
 *                               (ranges-overlap).  Default none.
 *   host_page = 0x10000         the host's page size as QEMU sees it: the
 *                               preload answers getpagesize() and
 *                               sysconf(_SC_PAGESIZE) with it, and the
 *                               model uses it where the kernel uses
 *                               PAGE_SIZE (the MSI-X table's pages in the
 *                               sparse mmap areas, mmap offsets, pinning).
 *                               A power of two from the real page size to
 *                               64 KiB; default the real page size.  The
 *                               real kernel still maps 4 KiB pages, which
 *                               QEMU does not notice: it only aligns to
 *                               the page size (as on an aarch64 or POWER
 *                               host with 64 KiB pages).
 *   check_mappings = false      true: an oracle for fuzzing QEMU (no
 *                               kernel does this).  Print why on stderr
 *                               and abort() when a type1 mapping of BAR
 *                               memory is not where the device's config
 *                               space puts it: at an IOVA other than the
 *                               BAR's address plus its offset in the BAR,
 *                               past the BAR (a sub-page BAR may be mapped
 *                               as a page), over the MSI-X table or PBA,
 *                               or while the device does not decode
 *                               memory.  Every mapping is checked at each
 *                               read or write of a config space (before a
 *                               write changes it, when QEMU is done with
 *                               the last one), a new one at its MAP_DMA.
 *                               Also when a type1v2 UNMAP_DMA unmaps less
 *                               than the range it names (never mapped).
 *   VFIO_IOMMU_GET_INFO always reports the migration (dirty tracking) and
 *   DMA-avail capabilities, then the IOVA ranges, each padded to 8 bytes,
 *   and copies min(argsz, sizeof(info)) bytes of the struct.
 *
 *   [device 0000:01:00.0]       one group per device; the name is what
 *                               QEMU passes to VFIO_GROUP_GET_DEVICE_FD
 *   group = 5                   required; devices may share a group
 *   vendor_id = 0x1b36          also device_id (0x10f0),
 *                               subsystem_vendor_id, subsystem_id (0),
 *                               class (0xff0000), revision (1)
 *   bar0 = 0x4000 mem64 prefetch
 *                               SIZE (power of two) then any of: mem32
 *                               (default), mem64 (uses the next BAR slot),
 *                               io, prefetch, nommap.  Memory BARs are
 *                               mmappable unless "nommap", including
 *                               sub-page ones (as x86 hosts allow); I/O BARs
 *                               never are.  bar0 .. bar5.
 *   rom = 0x10000               option ROM size (power of two >= 2 KiB);
 *                               0 or absent: no ROM
 *   msix_entries = 16           MSI-X table size; 0 or absent: no MSI-X
 *   msix_table = 0:0x2000       BAR:OFFSET of the table (default 0:0)
 *   msix_pba = 0:0x3000         BAR:OFFSET of the PBA (default: after the
 *                               table, in the same BAR)
 *   msix_mappable = true        report VFIO_REGION_INFO_CAP_MSIX_MAPPABLE;
 *                               false: report sparse-mmap areas that exclude
 *                               the table's pages (mmaps of them still
 *                               work, as vfio_pci_core_mmap() allows)
 *   intx = true                 interrupt pin A (false: no INTx)
 *   reset = true                VFIO_DEVICE_FLAGS_RESET
 *   msi_vectors = 0             an MSI capability (64-bit, no per-vector
 *                               masking) offering that many vectors (a
 *                               power of two up to 32); 0: no MSI
 *   pm = false                  a power management capability (D0 and
 *                               D3hot; No_Soft_Reset set).  Writing the
 *                               state to PMCSR changes the power state, and
 *                               in D3hot the BARs do not decode: pinning a
 *                               BAR mmap is EFAULT, as with decoding off.
 *                               VFIO_DEVICE_RESET and opening the device
 *                               return it to D0.
 *   pm_stuck = false            true: the device never leaves D3hot once
 *                               there (PMCSR keeps reading D3hot), as a
 *                               device whose power-up fails
 *
 *   [fault NAME]                fail matching MAP/UNMAP calls (type1
 *                               MAP_DMA/UNMAP_DMA and iommufd
 *                               IOMMU_IOAS_MAP/IOMMU_IOAS_UNMAP alike)
 *   op = map                    map, unmap, any (both), or change_process
 *                               (IOMMU_IOAS_CHANGE_PROCESS; iova and
 *                               backing do not apply) (required)
 *   errno = EFAULT              name or number (required, unless unmapped)
 *   unmapped = none             op = unmap only: the call succeeds with a
 *                               wrong answer instead.  none: it unmaps
 *                               nothing and reports 0 (on iommufd: ENOENT);
 *                               a number: it unmaps what was asked and
 *                               reports that many bytes unmapped
 *   iova = 0x100000-0x1fffff    calls whose range overlaps (inclusive end);
 *                               absent: any address
 *   backing = ram               what backs the call: ram, DEVICE,
 *                               DEVICE:barN, or any (default).  For UNMAP,
 *                               the mappings the range covers.
 *   skip = 0                    let the first M matching calls through
 *   count = 1                   then fail N calls; absent: all of them
 *
 * Faults can also be given while QEMU runs: the file "faults" in the state
 * directory (same syntax, [fault NAME] groups only) is re-read before each
 * MAP/UNMAP when it changed (replace it with rename(2)); its rules start
 * with fresh counters.  An injected fault fails the call with the errno and
 * changes nothing (or, with unmapped, answers as that key says).
 *
 * A malformed configuration is reported on stderr with the file, group and
 * key, e.g. "vfio-emu: cfg.ini: [device 0000:01:00.0] bar0: size 0x3000 is
 * not a power of two", and every open of /dev/vfio/... then fails with
 * EINVAL (a malformed "faults" file makes the process exit).  Unknown
 * groups and keys are errors too.
 *
 * State directory (rewritten/appended synchronously by each call)
 * --------------------------------------------------------------
 *   Both files are JSON Lines: one JSON object a line, numbers in decimal
 *   (below, members are written KEY=VALUE for short, numbers in hex).
 *   mappings  the IOMMU mapping table of every live container, one line per
 *             mapping, sorted by container and iova, replaced atomically
 *             (write + rename) after every change:
 *               {"container": 1, "iova": 0, "size": 2147483648,
 *                "vaddr": 1397..., "flags": 3, "backing": "ram"}
 *   events    an ordered log, one line per call, e.g.
 *               seq=7 op=MAP container=1 iova=0xfe000000 size=0x4000
 *               vaddr=0x7f.. flags=0x3 ret=0 backing=0000:01:00.0:bar0+0x0
 *               seq=8 op=UNMAP container=1 iova=0xfe000000 size=0x4000
 *               flags=0x0 ret=0 unmapped=0x4000
 *             that is {"seq": 7, "op": "MAP", "container": 1, ...}.
 *             ret is 0 or -errno; "injected": 1 marks an injected fault.
 *             Other ops: CONTAINER_OPEN, SET_IOMMU, GROUP_SET_CONTAINER,
 *             GROUP_UNSET_CONTAINER, RELEASE (the last group left; unmapped=
 *             the bytes dropped), DEVICE_OPEN, DEVICE_CLOSE.
 *   backing is "ram" for anything that is not a BAR mmap this emulation
 *   served, else "DEVICE:barN+0xOFFSET" (the offset of vaddr in the BAR).
 *   tests/qtest/vfio-emu/vfio-emu-state.h reads both files (with QEMU's
 *   JSON parser); scripts read them with Python's json module.
 *
 *   An iommufd IOAS is a container too: it gets a container number from
 *   the same counter when IOMMU_IOAS_ALLOC creates it, its mappings are in
 *   "mappings" with flags in the VFIO_DMA_MAP_FLAG_READ/WRITE encoding
 *   (IOMMU_IOAS_MAP_READABLE is 0x1, WRITEABLE 0x2), and its events are
 *   (ioas= and hwpt= are iommufd object IDs, ictx= numbers the opens of
 *   /dev/iommu):
 *               seq=9 op=IOAS_MAP container=2 ioas=2 iova=0xfe000000
 *               size=0x4000 vaddr=0x7f.. flags=0x7 ret=-14
 *               backing=0000:01:00.0:bar0+0x0
 *               seq=10 op=IOAS_UNMAP container=2 ioas=2 iova=0x0
 *               size=0x80000000 ret=0 unmapped=0x80000000
 *             (flags: the call's IOMMU_IOAS_MAP_* flags; unmapped: the
 *             bytes unmapped, also when the call fails half-way), and
 *             IOMMUFD_OPEN ictx=, DEVICE_BIND device= ictx= devid=,
 *             DEVICE_UNBIND device= ictx=, IOAS_ALLOC container= ioas=,
 *             HWPT_ALLOC container= hwpt= devid=, DEVICE_ATTACH and
 *             DEVICE_DETACH device= container= hwpt=, DESTROY id= type=ioas
 *             container= unmapped= or type=hwpt container=, and RELEASE
 *             container= unmapped= for an IOAS left when its context goes.
 *
 * iommufd
 * -------
 * /dev/iommu serves the ioctls QEMU's iommufd backend uses, with the size
 * rules of the kernel's iommufd_fops_ioctl() (EINVAL below the minimum
 * size, E2BIG for non-zero bytes past the known struct, responses copied up
 * to the caller's size) and each command's checks in the order of Linux
 * 6.12 (the same in 7.3): IOMMU_DESTROY (ENOENT, EBUSY while referenced),
 * IOMMU_IOAS_ALLOC, IOMMU_IOAS_IOVA_RANGES (EMSGSIZE with the count when
 * the array is short), IOMMU_IOAS_MAP (fixed or allocated IOVA; EEXIST,
 * reserved IOVA EINVAL, and EFAULT when a domain is attached and the user
 * range is not all mapped memory or touches a BAR mmap, as pinning a PFNMAP
 * VMA fails; with no domain the map is lazy and a later IOMMU_HWPT_ALLOC
 * fails with EFAULT instead), IOMMU_IOAS_UNMAP (0..UINT64_MAX unmaps all;
 * ENOENT when nothing is unmapped or a mapping is only partly covered),
 * IOMMU_HWPT_ALLOC (paging domains on an IOAS; the IOAS's alignment becomes
 * the smallest IOMMU page size, EINVAL above the host page size) and
 * IOMMU_GET_HW_INFO (IOMMU_HW_INFO_TYPE_NONE, no capabilities),
 * IOMMU_IOAS_MAP_FILE (iommufd_ioas_map_file(), iopt_map_file_pages(): the
 * pages of a memfd or hugetlbfs file, EINVAL for any other file or a range
 * past its end, EBADF for no file; the IOMMU checks of IOAS_MAP; pinned
 * when there is a domain; the emulation holds the file while mapped) and
 * IOMMU_IOAS_CHANGE_PROCESS (iommufd_ioas_change_process(): EINVAL while
 * any mapping of the context is not of a file, else success; nothing is
 * charged).  Both are ENOTTY with [container] kernel = 6.12, which lacks
 * them.  Other iommufd ioctls (ALLOW_IOVAS, COPY, OPTION, VFIO_IOAS, dirty
 * tracking, nesting, faults, vIOMMU) fail with ENOTTY.  A device cdev
 * accepts VFIO_DEVICE_BIND_IOMMUFD (EBUSY while its group is open through
 * /dev/vfio/<group>, EINVAL when already bound or open), then
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT to a HWPT or to an IOAS (an automatic
 * domain, destroyed with its last device; EADDRINUSE when a mapping lies in
 * reserved IOVA), VFIO_DEVICE_DETACH_IOMMUFD_PT and the device ioctls,
 * reads, writes and mmaps of the group path; before BIND all of these fail
 * with EINVAL.  Closing the cdev detaches and unbinds; a bound device keeps
 * its iommufd context alive after /dev/iommu is closed.  Opening
 * /dev/vfio/<group> fails with EBUSY while a device of the group is bound.
 *
 * VFIO compatibility on /dev/iommu (vfio_compat.c): VFIO_GROUP_SET_CONTAINER
 * takes an iommufd too; the context then gets a compat IOAS (an
 * IOAS_ALLOC event), the group's device fds are bound to the context and
 * attached to it, and /dev/iommu answers VFIO_GET_API_VERSION,
 * VFIO_CHECK_EXTENSION (no VFIO_UPDATE_VADDR), VFIO_SET_IOMMU (TYPE1 lets
 * an UNMAP cut mappings), VFIO_IOMMU_GET_INFO (DMA-avail U32_MAX and the
 * IOVA ranges), VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA (an empty
 * range is success) on that IOAS; VFIO_IOMMU_DIRTY_PAGES is ENOTTY.
 *
 * Pinning (type1 MAP_DMA; iommufd IOAS_MAP with a domain): every page must
 * be mapped with the access asked for (a writable mapping of a read-only
 * vaddr is EFAULT), and a BAR mmap only while its device's memory decoding
 * is on (PCI_COMMAND_MEMORY, on when the device is opened, as
 * pci_enable_device() leaves it): else EFAULT, as vfio_pci_mmap_huge_fault()
 * gives SIGBUS.
 *
 * type1 also has VFIO_UPDATE_VADDR (UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_VADDR
 * invalidates vaddrs, MAP_DMA with VFIO_DMA_MAP_FLAG_VADDR sets new ones)
 * and VFIO_IOMMU_DIRTY_PAGES (START, STOP, GET_BITMAP: every mapped page is
 * dirty, as with no vendor driver pinning).  MSI-X eventfds set with
 * VFIO_DEVICE_SET_IRQS are signalled by DATA_NONE/DATA_BOOL triggers.
 *
 * Not emulated: MSI (only MSI-X), dma-buf MAP_FILE, D3 and runtime power
 * management, hot reset, VGA regions, PCI Express capabilities, the
 * device's own interrupts firing, PASIDs, memory accounting
 * (RLIMIT_MEMLOCK).
 */

#ifndef TESTS_QTEST_VFIO_EMU_H
#define TESTS_QTEST_VFIO_EMU_H

#include <sys/types.h>
#include <sys/stat.h>

typedef struct VfioEmu VfioEmu;

/*
 * Create a model from the configuration file @config_path (may be NULL for
 * "no devices") and the optional @state_dir.  Returns NULL and sets
 * *@errmsg (g_free it) if the configuration is malformed.
 */
VfioEmu *vfio_emu_new(const char *config_path, const char *state_dir,
                      char **errmsg);
/*
 * The host_page of the configuration file @config_path, or 0 if it sets
 * none or cannot be read (vfio_emu_new() reports that).  Has no side
 * effects: the preload calls it from getpagesize().
 */
uint64_t vfio_emu_config_host_page(const char *config_path);
/* Same, from configuration text. */
VfioEmu *vfio_emu_new_from_data(const char *config_text, const char *state_dir,
                                char **errmsg);
void vfio_emu_free(VfioEmu *emu);

/*
 * Check fault rules given as text (what the "faults" file holds); returns
 * false and sets *@errmsg if they are malformed.
 */
bool vfio_emu_check_faults(const char *text, char **errmsg);

/* Is @path one of ours (/dev/vfio/... or /dev/iommu)? */
bool vfio_emu_is_vfio_path(const char *path);

/*
 * The system calls.  Each returns what the call returns, or -1 with errno
 * set, exactly as the kernel would.  Only fds the model created (returned by
 * vfio_emu_open or VFIO_GROUP_GET_DEVICE_FD) are accepted.
 */
bool vfio_emu_owns_fd(VfioEmu *emu, int fd);
int vfio_emu_open(VfioEmu *emu, const char *path, int flags);
int vfio_emu_ioctl(VfioEmu *emu, int fd, unsigned long request, void *arg);
int vfio_emu_close(VfioEmu *emu, int fd);
ssize_t vfio_emu_pread(VfioEmu *emu, int fd, void *buf, size_t count,
                       off_t offset);
ssize_t vfio_emu_pwrite(VfioEmu *emu, int fd, const void *buf, size_t count,
                        off_t offset);
void *vfio_emu_mmap(VfioEmu *emu, void *addr, size_t length, int prot,
                    int flags, int fd, off_t offset);

/*
 * stat() of one of our paths, fstat() of one of our fds: character devices
 * as described above.  Return 0, or -1 with errno set.
 */
int vfio_emu_stat(VfioEmu *emu, const char *path, struct stat *st);
int vfio_emu_fstat(VfioEmu *emu, int fd, struct stat *st);

/*
 * Tell the model that [addr, addr + length) no longer holds what it held
 * (munmap, or a MAP_FIXED mmap over it) so it forgets the BAR mmaps there.
 */
void vfio_emu_forget_range(VfioEmu *emu, void *addr, size_t length);

/*
 * What backs @vaddr: "ram" or "DEVICE:barN+0xOFFSET".  Returns a new
 * string.
 */
char *vfio_emu_describe_vaddr(VfioEmu *emu, uint64_t vaddr);

/* Region layout of the device fd, as vfio-pci lays it out. */
/* Device numbers of the character devices (see "Selecting a device") */
#define VFIO_EMU_MISC_MAJOR     10
#define VFIO_EMU_VFIO_MINOR     196
#define VFIO_EMU_IOMMU_MINOR    123
#define VFIO_EMU_GROUP_MAJOR    242
#define VFIO_EMU_CDEV_MAJOR     511

#define VFIO_EMU_REGION_SHIFT 40
#define VFIO_EMU_REGION_OFFSET(index) ((uint64_t)(index) << \
                                       VFIO_EMU_REGION_SHIFT)

#endif /* TESTS_QTEST_VFIO_EMU_H */
