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

/* Append @str as a JSON string */
static void emu_json_string(GString *out, const char *str)
{
    g_string_append_c(out, '"');
    for (; *str; str++) {
        unsigned char ch = *str;

        if (ch == '"' || ch == '\\') {
            g_string_append_c(out, '\\');
            g_string_append_c(out, ch);
        } else if (ch < 0x20) {
            g_string_append_printf(out, "\\u%04x", ch);
        } else {
            g_string_append_c(out, ch);
        }
    }
    g_string_append_c(out, '"');
}

/*
 * Append the words "KEY=VALUE ..." of @body as the members of a JSON
 * object: a VALUE that is a whole number (decimal, 0x hexadecimal, or a
 * negative decimal) as a number, anything else as a string.
 */
static void emu_json_members(GString *out, const char *body)
{
    g_auto(GStrv) words = g_strsplit(body, " ", -1);
    int i;

    for (i = 0; words[i]; i++) {
        char *eq = strchr(words[i], '='), *end;
        uint64_t u;
        int64_t n;

        if (!eq) {
            continue;
        }
        *eq++ = '\0';
        g_string_append(out, ", ");
        emu_json_string(out, words[i]);
        g_string_append(out, ": ");
        errno = 0;
        if (g_ascii_isdigit(*eq)) {
            u = g_ascii_strtoull(eq, &end, 0);
            if (!errno && !*end) {
                g_string_append_printf(out, "%" PRIu64, u);
                continue;
            }
        } else if (*eq == '-' && g_ascii_isdigit(eq[1])) {
            n = g_ascii_strtoll(eq, &end, 10);
            if (!errno && !*end) {
                g_string_append_printf(out, "%" PRId64, n);
                continue;
            }
        }
        emu_json_string(out, eq);
    }
}

/* Append one JSON object to STATE/events: {"seq": N, KEY: VALUE, ...} */
void G_GNUC_PRINTF(2, 3) emu_log(VfioEmu *emu, const char *fmt, ...)
{
    g_autofree char *body = NULL;
    g_autoptr(GString) line = NULL;
    va_list ap;
    size_t done = 0;

    emu->seq++;
    if (emu->events_fd < 0) {
        return;
    }
    va_start(ap, fmt);
    body = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_string_new(NULL);
    g_string_append_printf(line, "{\"seq\": %" PRIu64, emu->seq);
    emu_json_members(line, body);
    g_string_append(line, "}\n");
    while (done < line->len) {
        ssize_t n = write(emu->events_fd, line->str + done, line->len - done);

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
 * Write the JSON member "KEY": VALUE at @p, after a comma unless @p is
 * @start; returns the end.  The file is written after every MAP and
 * UNMAP, and printf made that as dear as all the rest of QEMU's work for
 * them.
 */
static char *emu_put_num(char *p, const char *start, const char *key,
                         uint64_t val)
{
    char digits[20];
    int n = 0;

    if (p != start) {
        *p++ = ',';
        *p++ = ' ';
    }
    *p++ = '"';
    while (*key) {
        *p++ = *key++;
    }
    *p++ = '"';
    *p++ = ':';
    *p++ = ' ';
    do {
        digits[n++] = '0' + val % 10;
        val /= 10;
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

            /* 5 members of at most 35 characters: ', "container": ' + 20 */
            char line[192], *p = line;

            p = emu_put_num(p, line, "container", c->id);
            p = emu_put_num(p, line, "iova", d->iova);
            p = emu_put_num(p, line, "size", d->size);
            p = emu_put_num(p, line, "vaddr", d->vaddr);
            p = emu_put_num(p, line, "flags", d->flags);
            g_string_append_c(s, '{');
            g_string_append_len(s, line, p - line);
            g_string_append(s, ", \"backing\": ");
            emu_json_string(s, d->backing);
            g_string_append(s, "}\n");
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
static const EmuFault *emu_match_fault_in(GPtrArray *faults, int op,
                                          uint64_t iova, uint64_t size,
                                          GPtrArray *backings)
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
        return f;
    }
    return NULL;
}

/* The fault that applies to this call, if any (it counts as applied) */
const EmuFault *emu_match_fault(VfioEmu *emu, int op, uint64_t iova,
                                uint64_t size, GPtrArray *backings)
{
    const EmuFault *f;

    emu_reload_faults(emu);
    f = emu_match_fault_in(emu->cfg->faults, op, iova, size, backings);
    if (!f) {
        f = emu_match_fault_in(emu->file_faults, op, iova, size, backings);
    }
    return f;
}

/* The errno to fail this call with, or 0 */
int emu_check_faults(VfioEmu *emu, int op, uint64_t iova,
                     uint64_t size, GPtrArray *backings)
{
    const EmuFault *f = emu_match_fault(emu, op, iova, size, backings);

    return f ? f->err : 0;
}
