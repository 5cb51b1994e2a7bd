/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: LD_PRELOAD shim that routes VFIO system calls to the model
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * Every variant of open/openat QEMU or its libraries may import is
 * interposed, for /dev/vfio/... and /dev/iommu only; ioctl, close, mmap,
 * munmap, pread and pwrite for the file descriptors the model created; the
 * stat family (stat, lstat, fstat, fstatat, their 64-bit names, statx) for
 * both; getpagesize() and sysconf(_SC_PAGESIZE) when the configuration sets
 * host_page.  Anything else goes to the next definition (dlsym(RTLD_NEXT)).
 *
 * The model is created on the first open of a /dev/vfio path, so the shell
 * that libqtest starts QEMU through, or any other program that inherits
 * LD_PRELOAD, only pays a few pointer checks (and a read of the
 * configuration for host_page, see below).
 * The interposed functions are defined under other C names with asm labels
 * so that the _FILE_OFFSET_BITS=64 redirections of the headers don't apply.
 */

#include "qemu/osdep.h"
#include <dlfcn.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "qemu/atomic.h"
#include "vfio-emu.h"

static pthread_mutex_t emu_lock;
static pthread_once_t emu_lock_once = PTHREAD_ONCE_INIT;
static VfioEmu *emu;
static bool emu_init_done;
static char *emu_init_error;

static void emu_lock_init(void)
{
    pthread_mutexattr_t attr;

    /* The model's own file I/O comes back through these wrappers */
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&emu_lock, &attr);
    pthread_mutexattr_destroy(&attr);
}

static void emu_enter(void)
{
    pthread_once(&emu_lock_once, emu_lock_init);
    pthread_mutex_lock(&emu_lock);
}

static void emu_leave(void)
{
    pthread_mutex_unlock(&emu_lock);
}

static void *emu_next(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);

    if (!fn) {
        fprintf(stderr, "vfio-emu: no next definition of %s\n", name);
        abort();
    }
    return fn;
}

#define NEXT(name, type) ({                                         \
    static type next_##name;                                        \
    if (!qatomic_read(&next_##name)) {                              \
        qatomic_set(&next_##name, (type)emu_next(#name));           \
    }                                                               \
    qatomic_read(&next_##name);                                     \
})

/* Called with the lock held */
static VfioEmu *emu_get(void)
{
    if (!emu_init_done) {
        const char *config = getenv("VFIO_EMU_CONFIG");
        const char *state = getenv("VFIO_EMU_STATE");
        char *errmsg = NULL;

        emu_init_done = true;
        if (!config) {
            emu_init_error = g_strdup("VFIO_EMU_CONFIG is not set");
        } else {
            emu = vfio_emu_new(config, state, &errmsg);
            if (!emu) {
                emu_init_error = errmsg;
            }
        }
        if (emu_init_error) {
            fprintf(stderr, "vfio-emu: %s\n", emu_init_error);
        }
    }
    return emu;
}

/* Is @fd ours?  Never initializes the model. */
static bool emu_fd(int fd)
{
    bool ours;

    if (!qatomic_read(&emu_init_done)) {
        return false;
    }
    emu_enter();
    ours = vfio_emu_owns_fd(emu, fd);
    emu_leave();
    return ours;
}

static int emu_do_open(const char *path, int flags)
{
    VfioEmu *e;
    int ret;

    emu_enter();
    e = emu_get();
    if (!e) {
        if (emu_init_error) {
            fprintf(stderr, "vfio-emu: cannot open %s: %s\n", path,
                    emu_init_error);
        }
        errno = EINVAL;
        ret = -1;
    } else {
        ret = vfio_emu_open(e, path, flags);
    }
    emu_leave();
    return ret;
}

static mode_t emu_open_mode(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

typedef int (*OpenFn)(const char *, int, ...);
typedef int (*OpenatFn)(int, const char *, int, ...);
typedef int (*Open2Fn)(const char *, int);
typedef int (*Openat2Fn)(int, const char *, int);

int emu_open(const char *path, int flags, ...) __asm__("open");
int emu_open64(const char *path, int flags, ...) __asm__("open64");
int emu_open_2(const char *path, int flags) __asm__("__open_2");
int emu_open64_2(const char *path, int flags) __asm__("__open64_2");
int emu_openat(int dirfd, const char *path, int flags, ...)
    __asm__("openat");
int emu_openat64(int dirfd, const char *path, int flags, ...)
    __asm__("openat64");
int emu_openat_2(int dirfd, const char *path, int flags)
    __asm__("__openat_2");
int emu_openat64_2(int dirfd, const char *path, int flags)
    __asm__("__openat64_2");

int emu_open(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    va_start(ap, flags);
    mode = emu_open_mode(flags, ap);
    va_end(ap);
    return NEXT(open, OpenFn)(path, flags, mode);
}

int emu_open64(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    va_start(ap, flags);
    mode = emu_open_mode(flags, ap);
    va_end(ap);
    return NEXT(open64, OpenFn)(path, flags, mode);
}

int emu_open_2(const char *path, int flags)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    return NEXT(__open_2, Open2Fn)(path, flags);
}

int emu_open64_2(const char *path, int flags)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    return NEXT(__open64_2, Open2Fn)(path, flags);
}

int emu_openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    va_start(ap, flags);
    mode = emu_open_mode(flags, ap);
    va_end(ap);
    return NEXT(openat, OpenatFn)(dirfd, path, flags, mode);
}

int emu_openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    va_start(ap, flags);
    mode = emu_open_mode(flags, ap);
    va_end(ap);
    return NEXT(openat64, OpenatFn)(dirfd, path, flags, mode);
}

int emu_openat_2(int dirfd, const char *path, int flags)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    return NEXT(__openat_2, Openat2Fn)(dirfd, path, flags);
}

int emu_openat64_2(int dirfd, const char *path, int flags)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_open(path, flags);
    }
    return NEXT(__openat64_2, Openat2Fn)(dirfd, path, flags);
}

typedef int (*IoctlFn)(int, unsigned long, ...);
typedef int (*CloseFn)(int);
typedef ssize_t (*PreadFn)(int, void *, size_t, off_t);
typedef ssize_t (*PwriteFn)(int, const void *, size_t, off_t);
typedef ssize_t (*PreadChkFn)(int, void *, size_t, off_t, size_t);
typedef void *(*MmapFn)(void *, size_t, int, int, int, off_t);
typedef int (*MunmapFn)(void *, size_t);

int emu_ioctl(int fd, unsigned long request, ...) __asm__("ioctl");
int emu_close(int fd) __asm__("close");
ssize_t emu_pread(int fd, void *buf, size_t count, off_t offset)
    __asm__("pread");
ssize_t emu_pread64(int fd, void *buf, size_t count, off_t offset)
    __asm__("pread64");
ssize_t emu_pread_chk(int fd, void *buf, size_t count, off_t offset,
                      size_t buflen) __asm__("__pread_chk");
ssize_t emu_pread64_chk(int fd, void *buf, size_t count, off_t offset,
                        size_t buflen) __asm__("__pread64_chk");
ssize_t emu_pwrite(int fd, const void *buf, size_t count, off_t offset)
    __asm__("pwrite");
ssize_t emu_pwrite64(int fd, const void *buf, size_t count, off_t offset)
    __asm__("pwrite64");
void *emu_mmap(void *addr, size_t length, int prot, int flags, int fd,
               off_t offset) __asm__("mmap");
void *emu_mmap64(void *addr, size_t length, int prot, int flags, int fd,
                 off_t offset) __asm__("mmap64");
int emu_munmap(void *addr, size_t length) __asm__("munmap");

int emu_ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (!emu_fd(fd)) {
        return NEXT(ioctl, IoctlFn)(fd, request, arg);
    }
    emu_enter();
    ret = vfio_emu_ioctl(emu, fd, request, arg);
    emu_leave();
    return ret;
}

int emu_close(int fd)
{
    int ret;

    if (!emu_fd(fd)) {
        return NEXT(close, CloseFn)(fd);
    }
    emu_enter();
    ret = vfio_emu_close(emu, fd);
    emu_leave();
    return ret;
}

static ssize_t emu_do_pread(int fd, void *buf, size_t count, off_t offset)
{
    ssize_t ret;

    emu_enter();
    ret = vfio_emu_pread(emu, fd, buf, count, offset);
    emu_leave();
    return ret;
}

static ssize_t emu_do_pwrite(int fd, const void *buf, size_t count,
                             off_t offset)
{
    ssize_t ret;

    emu_enter();
    ret = vfio_emu_pwrite(emu, fd, buf, count, offset);
    emu_leave();
    return ret;
}

ssize_t emu_pread(int fd, void *buf, size_t count, off_t offset)
{
    if (!emu_fd(fd)) {
        return NEXT(pread, PreadFn)(fd, buf, count, offset);
    }
    return emu_do_pread(fd, buf, count, offset);
}

ssize_t emu_pread64(int fd, void *buf, size_t count, off_t offset)
{
    if (!emu_fd(fd)) {
        return NEXT(pread64, PreadFn)(fd, buf, count, offset);
    }
    return emu_do_pread(fd, buf, count, offset);
}

ssize_t emu_pread_chk(int fd, void *buf, size_t count, off_t offset,
                      size_t buflen)
{
    if (!emu_fd(fd) || count > buflen) {
        return NEXT(__pread_chk, PreadChkFn)(fd, buf, count, offset, buflen);
    }
    return emu_do_pread(fd, buf, count, offset);
}

ssize_t emu_pread64_chk(int fd, void *buf, size_t count, off_t offset,
                        size_t buflen)
{
    if (!emu_fd(fd) || count > buflen) {
        return NEXT(__pread64_chk, PreadChkFn)(fd, buf, count, offset,
                                               buflen);
    }
    return emu_do_pread(fd, buf, count, offset);
}

ssize_t emu_pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    if (!emu_fd(fd)) {
        return NEXT(pwrite, PwriteFn)(fd, buf, count, offset);
    }
    return emu_do_pwrite(fd, buf, count, offset);
}

ssize_t emu_pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
    if (!emu_fd(fd)) {
        return NEXT(pwrite64, PwriteFn)(fd, buf, count, offset);
    }
    return emu_do_pwrite(fd, buf, count, offset);
}

/*
 * The page size: [container] host_page, if set, for getpagesize() and
 * sysconf(_SC_PAGESIZE); QEMU's qemu_real_host_page_size() is
 * getpagesize().  A constructor reads it from the configuration (without
 * creating the model, which is still created on the first open), after
 * the libraries this one needs are initialized and before QEMU's own
 * constructors run.  Until then, and in glibc's own uses of the page size
 * (malloc, its mmap of files), the real page size is used.  The
 * interposers never call into GLib: its slice allocator asks for the page
 * size with a lock held.
 */

typedef long (*SysconfFn)(int);

int emu_getpagesize(void) __asm__("getpagesize");
long emu_sysconf(int name) __asm__("sysconf");

static uint64_t emu_page;               /* 0: the real page size */

static void __attribute__((constructor)) emu_page_init(void)
{
    const char *config = getenv("VFIO_EMU_CONFIG");

    if (config) {
        qatomic_set(&emu_page, vfio_emu_config_host_page(config));
    }
}

/* The real page size, read once: QEMU asks for the page size often */
static uint64_t emu_real_page_size(void)
{
    static uint64_t real;

    if (!qatomic_read(&real)) {
        qatomic_set(&real, getauxval(AT_PAGESZ));
    }
    return qatomic_read(&real);
}

static uint64_t emu_page_size(void)
{
    return qatomic_read(&emu_page) ?: emu_real_page_size();
}


/*
 * With a host_page larger than the real page, mmap and munmap as a kernel
 * with that PAGE_SIZE: lengths are rounded up to it, fixed addresses and
 * offsets must be aligned to it, and a new mapping is placed at an
 * address aligned to it (@addr is only a hint then).
 */
static bool emu_page_mmap(MmapFn next, void **addr, size_t *length,
                          int *flags, off_t offset)
{
    uint64_t page = emu_page_size();
    uint8_t *r, *a;
    size_t len;

    if (page == emu_real_page_size()) {
        return true;
    }
    if (!*length || (offset & (page - 1)) ||
        ((*flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) &&
         ((uintptr_t)*addr & (page - 1)))) {
        errno = EINVAL;
        return false;
    }
    len = ROUND_UP(*length, page);
    *length = len;
    if (*flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        return true;
    }
    r = next(NULL, len + page, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) {
        return false;
    }
    a = (uint8_t *)ROUND_UP((uintptr_t)r, page);
    if (a > r) {
        NEXT(munmap, MunmapFn)(r, a - r);
    }
    NEXT(munmap, MunmapFn)(a + len, r + len + page - (a + len));
    *addr = a;
    *flags |= MAP_FIXED;
    return true;
}

static void *emu_do_mmap(MmapFn next, void *addr, size_t length, int prot,
                         int flags, int fd, off_t offset)
{
    void *p;

    if (!emu_page_mmap(next, &addr, &length, &flags, offset)) {
        return MAP_FAILED;
    }
    if (emu_fd(fd)) {
        emu_enter();
        p = vfio_emu_mmap(emu, addr, length, prot, flags, fd, offset);
        emu_leave();
        return p;
    }
    p = next(addr, length, prot, flags, fd, offset);
    if (p != MAP_FAILED && (flags & MAP_FIXED) &&
        qatomic_read(&emu_init_done)) {
        /* A mapping replaced whatever BAR mmap was there */
        emu_enter();
        if (emu) {
            vfio_emu_forget_range(emu, p, length);
        }
        emu_leave();
    }
    return p;
}

void *emu_mmap(void *addr, size_t length, int prot, int flags, int fd,
               off_t offset)
{
    return emu_do_mmap(NEXT(mmap, MmapFn), addr, length, prot, flags, fd,
                       offset);
}

void *emu_mmap64(void *addr, size_t length, int prot, int flags, int fd,
                 off_t offset)
{
    return emu_do_mmap(NEXT(mmap64, MmapFn), addr, length, prot, flags, fd,
                       offset);
}

int emu_munmap(void *addr, size_t length)
{
    uint64_t page = emu_page_size();
    int ret;

    if (page != emu_real_page_size()) {
        /* do_vmi_munmap() with this PAGE_SIZE */
        if ((uintptr_t)addr & (page - 1) || !length) {
            errno = EINVAL;
            return -1;
        }
        length = ROUND_UP(length, page);
    }
    ret = NEXT(munmap, MunmapFn)(addr, length);

    if (!ret && qatomic_read(&emu_init_done)) {
        emu_enter();
        if (emu) {
            vfio_emu_forget_range(emu, addr, length);
        }
        emu_leave();
    }
    return ret;
}

/*
 * The stat family: QEMU checks with fstat() that the device cdev it opened
 * is the character device sysfs names.
 */

typedef int (*StatFn)(const char *, struct stat *);
typedef int (*FstatFn)(int, struct stat *);
typedef int (*FstatatFn)(int, const char *, struct stat *, int);
typedef int (*StatxFn)(int, const char *, int, unsigned int, struct statx *);

int emu_stat(const char *path, struct stat *st) __asm__("stat");
int emu_stat64(const char *path, struct stat *st) __asm__("stat64");
int emu_lstat(const char *path, struct stat *st) __asm__("lstat");
int emu_lstat64(const char *path, struct stat *st) __asm__("lstat64");
int emu_fstat(int fd, struct stat *st) __asm__("fstat");
int emu_fstat64(int fd, struct stat *st) __asm__("fstat64");
int emu_fstatat(int dirfd, const char *path, struct stat *st, int flags)
    __asm__("fstatat");
int emu_fstatat64(int dirfd, const char *path, struct stat *st, int flags)
    __asm__("fstatat64");
int emu_statx(int dirfd, const char *path, int flags, unsigned int mask,
              struct statx *stx) __asm__("statx");

static int emu_do_stat(const char *path, struct stat *st)
{
    VfioEmu *e;
    int ret;

    emu_enter();
    e = emu_get();
    if (e) {
        ret = vfio_emu_stat(e, path, st);
    } else {
        errno = ENOENT;
        ret = -1;
    }
    emu_leave();
    return ret;
}

static int emu_do_fstat(int fd, struct stat *st)
{
    int ret;

    emu_enter();
    ret = vfio_emu_fstat(emu, fd, st);
    emu_leave();
    return ret;
}

/* Ours: 1 and the result in *@ret, else 0 */
static int emu_stat_at(int dirfd, const char *path, int flags,
                       struct stat *st, int *ret)
{
    if (path && !*path && (flags & AT_EMPTY_PATH) && emu_fd(dirfd)) {
        *ret = emu_do_fstat(dirfd, st);
        return 1;
    }
    if (vfio_emu_is_vfio_path(path)) {
        *ret = emu_do_stat(path, st);
        return 1;
    }
    return 0;
}

int emu_stat(const char *path, struct stat *st)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_stat(path, st);
    }
    return NEXT(stat, StatFn)(path, st);
}

int emu_stat64(const char *path, struct stat *st)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_stat(path, st);
    }
    return NEXT(stat64, StatFn)(path, st);
}

int emu_lstat(const char *path, struct stat *st)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_stat(path, st);
    }
    return NEXT(lstat, StatFn)(path, st);
}

int emu_lstat64(const char *path, struct stat *st)
{
    if (vfio_emu_is_vfio_path(path)) {
        return emu_do_stat(path, st);
    }
    return NEXT(lstat64, StatFn)(path, st);
}

int emu_fstat(int fd, struct stat *st)
{
    if (emu_fd(fd)) {
        return emu_do_fstat(fd, st);
    }
    return NEXT(fstat, FstatFn)(fd, st);
}

int emu_fstat64(int fd, struct stat *st)
{
    if (emu_fd(fd)) {
        return emu_do_fstat(fd, st);
    }
    return NEXT(fstat64, FstatFn)(fd, st);
}

int emu_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    int ret;

    if (emu_stat_at(dirfd, path, flags, st, &ret)) {
        return ret;
    }
    return NEXT(fstatat, FstatatFn)(dirfd, path, st, flags);
}

int emu_fstatat64(int dirfd, const char *path, struct stat *st, int flags)
{
    int ret;

    if (emu_stat_at(dirfd, path, flags, st, &ret)) {
        return ret;
    }
    return NEXT(fstatat64, FstatatFn)(dirfd, path, st, flags);
}

int emu_statx(int dirfd, const char *path, int flags, unsigned int mask,
              struct statx *stx)
{
    struct stat st;
    int ret;

    if (!emu_stat_at(dirfd, path, flags, &st, &ret)) {
        return NEXT(statx, StatxFn)(dirfd, path, flags, mask, stx);
    }
    if (ret) {
        return ret;
    }
    memset(stx, 0, sizeof(*stx));
    stx->stx_mask = STATX_BASIC_STATS;
    stx->stx_blksize = st.st_blksize;
    stx->stx_nlink = st.st_nlink;
    stx->stx_uid = st.st_uid;
    stx->stx_gid = st.st_gid;
    stx->stx_mode = st.st_mode;
    stx->stx_ino = st.st_ino;
    stx->stx_size = st.st_size;
    stx->stx_blocks = st.st_blocks;
    stx->stx_atime.tv_sec = st.st_atim.tv_sec;
    stx->stx_atime.tv_nsec = st.st_atim.tv_nsec;
    stx->stx_ctime.tv_sec = st.st_ctim.tv_sec;
    stx->stx_ctime.tv_nsec = st.st_ctim.tv_nsec;
    stx->stx_mtime.tv_sec = st.st_mtim.tv_sec;
    stx->stx_mtime.tv_nsec = st.st_mtim.tv_nsec;
    stx->stx_rdev_major = major(st.st_rdev);
    stx->stx_rdev_minor = minor(st.st_rdev);
    stx->stx_dev_major = major(st.st_dev);
    stx->stx_dev_minor = minor(st.st_dev);
    return 0;
}

int emu_getpagesize(void)
{
    return emu_page_size();
}

long emu_sysconf(int name)
{
    if (name == _SC_PAGESIZE) {
        return emu_page_size();
    }
    return NEXT(sysconf, SysconfFn)(name);
}
