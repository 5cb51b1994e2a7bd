/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: the state directory (events, mappings, faults)
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
 * State directory
 */

void G_GNUC_PRINTF(2, 3) emu_log(VfioEmu *emu, const char *fmt, ...)
{
    g_autofree char *body = NULL;
    g_autofree char *line = NULL;
    va_list ap;
    size_t len, done = 0;

    emu->seq++;
    if (emu->events_fd < 0) {
        return;
    }
    va_start(ap, fmt);
    body = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf("seq=%" PRIu64 " %s\n", emu->seq, body);
    len = strlen(line);
    while (done < len) {
        ssize_t n = write(emu->events_fd, line + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "vfio-emu: cannot write the event log: %s\n",
                    strerror(errno));
            return;
        }
        done += n;
    }
}

static gint emu_container_cmp(gconstpointer a, gconstpointer b)
{
    const EmuContainer *ca = *(EmuContainer * const *)a;
    const EmuContainer *cb = *(EmuContainer * const *)b;

    return ca->id - cb->id;
}

/*
 * Write " KEY=VALUE" (no space at @start) at @p, VALUE in decimal or, with
 * @hex, as printf's "0x%x" prints it; returns the end.  The file is
 * written after every MAP and UNMAP, and printf made that as dear as all
 * the rest of QEMU's work for them.
 */
static char *emu_put_num(char *p, const char *start, const char *key,
                         uint64_t val, bool hex)
{
    char digits[20];
    int n = 0;

    if (p != start) {
        *p++ = ' ';
    }
    while (*key) {
        *p++ = *key++;
    }
    *p++ = '=';
    if (hex) {
        *p++ = '0';
        *p++ = 'x';
    }
    do {
        digits[n++] = "0123456789abcdef"[hex ? val & 0xf : val % 10];
        val = hex ? val >> 4 : val / 10;
    } while (val);
    while (n) {
        *p++ = digits[--n];
    }
    return p;
}

void emu_write_mappings(VfioEmu *emu)
{
    g_autoptr(GString) s = g_string_new("");
    g_autofree char *path = NULL;
    g_autofree char *tmp = NULL;
    int i, j, fd;
    size_t done = 0;

    if (!emu->state_dir) {
        return;
    }
    g_ptr_array_sort(emu->containers, emu_container_cmp);
    for (i = 0; i < emu->containers->len; i++) {
        EmuContainer *c = g_ptr_array_index(emu->containers, i);

        for (j = 0; j < c->dmas->len; j++) {
            EmuDma *d = &g_array_index(c->dmas, EmuDma, j);

            /* at most 21 + 4 * 25 characters: " vaddr=0x" and 16 digits */
            char line[128], *p = line;

            p = emu_put_num(p, line, "container", c->id, false);
            p = emu_put_num(p, line, "iova", d->iova, true);
            p = emu_put_num(p, line, "size", d->size, true);
            p = emu_put_num(p, line, "vaddr", d->vaddr, true);
            p = emu_put_num(p, line, "flags", d->flags, true);
            g_string_append_len(s, line, p - line);
            g_string_append(s, " backing=");
            g_string_append(s, d->backing);
            g_string_append_c(s, '\n');
        }
    }

    path = g_build_filename(emu->state_dir, "mappings", NULL);
    tmp = g_strconcat(path, ".tmp", NULL);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "vfio-emu: cannot write %s: %s\n", tmp,
                strerror(errno));
        return;
    }
    while (done < s->len) {
        ssize_t n = write(fd, s->str + done, s->len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "vfio-emu: cannot write %s: %s\n", tmp,
                    strerror(errno));
            close(fd);
            return;
        }
        done += n;
    }
    close(fd);
    if (rename(tmp, path)) {
        fprintf(stderr, "vfio-emu: cannot rename %s: %s\n", tmp,
                strerror(errno));
    }
}

/*
 * Re-read STATE/faults when it changed.  A malformed file ends the process:
 * the test that wrote it has a bug, and running on would hide it.
 */
static void emu_reload_faults(VfioEmu *emu)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;
    g_autofree char *errmsg = NULL;
    g_autoptr(GError) gerr = NULL;
    EmuConfig *cfg;
    struct stat st;

    if (!emu->state_dir) {
        return;
    }
    path = g_build_filename(emu->state_dir, "faults", NULL);
    if (stat(path, &st)) {
        if (emu->have_faults_stat) {
            g_ptr_array_set_size(emu->file_faults, 0);
            emu->have_faults_stat = false;
        }
        return;
    }
    if (emu->have_faults_stat && st.st_ino == emu->faults_stat.st_ino &&
        st.st_dev == emu->faults_stat.st_dev &&
        st.st_size == emu->faults_stat.st_size &&
        st.st_mtim.tv_sec == emu->faults_stat.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == emu->faults_stat.st_mtim.tv_nsec) {
        return;
    }
    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        fprintf(stderr, "vfio-emu: %s\n", gerr->message);
        exit(1);
    }
    cfg = emu_config_new();
    if (!emu_parse_config(text, true, cfg, &errmsg)) {
        fprintf(stderr, "vfio-emu: %s: %s\n", path, errmsg);
        exit(1);
    }
    g_ptr_array_unref(emu->file_faults);
    emu->file_faults = g_steal_pointer(&cfg->faults);
    cfg->faults = g_ptr_array_new();
    emu_config_free(cfg);
    emu->faults_stat = st;
    emu->have_faults_stat = true;
}

static bool emu_backing_matches(const char *rule, const char *backing)
{
    const char *plus = strrchr(backing, '+');
    g_autofree char *devbar = NULL;
    const char *bar;

    if (!rule) {
        return true;
    }
    if (!plus) {
        return !strcmp(rule, backing);
    }
    /* "DEV" or "DEV:barN" matches "DEV:barN+0xOFF" */
    devbar = g_strndup(backing, plus - backing);
    if (!strcmp(rule, devbar)) {
        return true;
    }
    bar = g_strrstr(devbar, ":bar");
    return bar && strlen(rule) == bar - devbar &&
           !strncmp(rule, devbar, bar - devbar);
}

/*
 * Does a fault rule fail this call?  @backings are what backs the range
 * (for UNMAP, of every mapping it covers).
 */
static int emu_check_faults_in(GPtrArray *faults, int op, uint64_t iova,
                               uint64_t size, GPtrArray *backings)
{
    int i, j;

    for (i = 0; i < faults->len; i++) {
        EmuFault *f = g_ptr_array_index(faults, i);
        uint64_t last = size ? iova + size - 1 : iova;
        bool match = false;

        if (!(f->ops & op)) {
            continue;
        }
        if (f->has_iova && (last < f->iova.start || iova > f->iova.last)) {
            continue;
        }
        for (j = 0; j < backings->len; j++) {
            if (emu_backing_matches(f->backing,
                                    g_ptr_array_index(backings, j))) {
                match = true;
                break;
            }
        }
        if (!match && !(f->backing == NULL && backings->len == 0)) {
            continue;
        }
        f->matched++;
        if (f->matched <= f->skip) {
            continue;
        }
        if (f->has_count && f->failed >= f->count) {
            continue;
        }
        f->failed++;
        return f->err;
    }
    return 0;
}

int emu_check_faults(VfioEmu *emu, int op, uint64_t iova,
                     uint64_t size, GPtrArray *backings)
{
    int err;

    emu_reload_faults(emu);
    err = emu_check_faults_in(emu->cfg->faults, op, iova, size, backings);
    if (!err) {
        err = emu_check_faults_in(emu->file_faults, op, iova, size,
                                  backings);
    }
    return err;
}
