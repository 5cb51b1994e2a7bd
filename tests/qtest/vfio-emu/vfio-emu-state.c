/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: parse the emulation's state directory for tests
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "vfio-emu-state.h"

static void mapping_clear(gpointer p)
{
    VfioEmuMapping *m = p;

    g_free(m->backing);
}

static void event_clear(gpointer p)
{
    VfioEmuEvent *e = p;

    g_free(e->op);
    g_free(e->device);
    g_free(e->backing);
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;

    if (!g_ascii_isdigit(*s)) {
        return false;
    }
    errno = 0;
    *v = g_ascii_strtoull(s, &end, 0);
    return !errno && *end == '\0';
}

static bool parse_int(const char *s, int *v)
{
    char *end;
    gint64 n;

    errno = 0;
    n = g_ascii_strtoll(s, &end, 10);
    if (errno || end == s || *end || n < INT_MIN || n > INT_MAX) {
        return false;
    }
    *v = n;
    return true;
}

/* Split "k=v k=v ..." and call @field for each pair */
static bool parse_line(const char *line, void *obj,
                       bool (*field)(void *obj, const char *k, const char *v))
{
    g_auto(GStrv) words = g_strsplit(line, " ", -1);
    int i;

    for (i = 0; words[i]; i++) {
        char *eq = strchr(words[i], '=');

        if (!*words[i]) {
            continue;
        }
        if (!eq) {
            return false;
        }
        *eq = '\0';
        if (!field(obj, words[i], eq + 1)) {
            return false;
        }
    }
    return true;
}

static bool mapping_field(void *obj, const char *k, const char *v)
{
    VfioEmuMapping *m = obj;
    uint64_t flags;

    if (!strcmp(k, "container")) {
        return parse_int(v, &m->container);
    } else if (!strcmp(k, "iova")) {
        return parse_u64(v, &m->iova);
    } else if (!strcmp(k, "size")) {
        return parse_u64(v, &m->size);
    } else if (!strcmp(k, "vaddr")) {
        return parse_u64(v, &m->vaddr);
    } else if (!strcmp(k, "flags")) {
        if (!parse_u64(v, &flags) || flags > UINT32_MAX) {
            return false;
        }
        m->flags = flags;
        return true;
    } else if (!strcmp(k, "backing")) {
        g_free(m->backing);
        m->backing = g_strdup(v);
        return true;
    }
    return true;    /* fields added later are ignored */
}

static bool event_field(void *obj, const char *k, const char *v)
{
    VfioEmuEvent *e = obj;
    uint64_t flags;

    if (!strcmp(k, "seq")) {
        return parse_u64(v, &e->seq);
    } else if (!strcmp(k, "op")) {
        g_free(e->op);
        e->op = g_strdup(v);
        return true;
    } else if (!strcmp(k, "container")) {
        return parse_int(v, &e->container);
    } else if (!strcmp(k, "group")) {
        return parse_int(v, &e->group);
    } else if (!strcmp(k, "device")) {
        g_free(e->device);
        e->device = g_strdup(v);
        return true;
    } else if (!strcmp(k, "iova")) {
        return parse_u64(v, &e->iova);
    } else if (!strcmp(k, "size")) {
        return parse_u64(v, &e->size);
    } else if (!strcmp(k, "vaddr")) {
        return parse_u64(v, &e->vaddr);
    } else if (!strcmp(k, "flags")) {
        if (!parse_u64(v, &flags) || flags > UINT32_MAX) {
            return false;
        }
        e->flags = flags;
        return true;
    } else if (!strcmp(k, "ret")) {
        return parse_int(v, &e->ret);
    } else if (!strcmp(k, "unmapped")) {
        return parse_u64(v, &e->unmapped);
    } else if (!strcmp(k, "backing")) {
        g_free(e->backing);
        e->backing = g_strdup(v);
        return true;
    } else if (!strcmp(k, "injected")) {
        e->injected = !strcmp(v, "1");
        return true;
    }
    return true;    /* fields added later are ignored */
}

static GArray *parse_lines(const char *text, size_t elem_size,
                           GDestroyNotify clear,
                           bool (*field)(void *, const char *, const char *),
                           bool (*valid)(void *), char **errmsg)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GArray *arr = g_array_new(false, true, elem_size);
    int i;

    g_array_set_clear_func(arr, clear);
    for (i = 0; lines[i]; i++) {
        void *elem;

        if (!*lines[i]) {
            continue;
        }
        g_array_set_size(arr, arr->len + 1);
        elem = arr->data + (arr->len - 1) * elem_size;
        if (!parse_line(lines[i], elem, field) || !valid(elem)) {
            *errmsg = g_strdup_printf("line %d: malformed: '%s'", i + 1,
                                      lines[i]);
            g_array_unref(arr);
            return NULL;
        }
    }
    return arr;
}

static bool mapping_valid(void *obj)
{
    VfioEmuMapping *m = obj;

    return m->container > 0 && m->size && m->backing;
}

static bool event_valid(void *obj)
{
    VfioEmuEvent *e = obj;

    return e->seq && e->op;
}

GArray *vfio_emu_parse_mappings(const char *text, char **errmsg)
{
    return parse_lines(text, sizeof(VfioEmuMapping), mapping_clear,
                       mapping_field, mapping_valid, errmsg);
}

GArray *vfio_emu_parse_events(const char *text, char **errmsg)
{
    return parse_lines(text, sizeof(VfioEmuEvent), event_clear,
                       event_field, event_valid, errmsg);
}

static GArray *read_file(const char *state_dir, const char *name,
                         GArray *(*parse)(const char *, char **))
{
    g_autofree char *path = g_build_filename(state_dir, name, NULL);
    g_autofree char *text = NULL;
    g_autofree char *errmsg = NULL;
    g_autoptr(GError) gerr = NULL;
    GArray *arr;

    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        g_assert_true(g_error_matches(gerr, G_FILE_ERROR,
                                      G_FILE_ERROR_NOENT));
        text = g_strdup("");
    }
    arr = parse(text, &errmsg);
    if (!arr) {
        g_error("%s: %s", path, errmsg);
    }
    return arr;
}

GArray *vfio_emu_read_mappings(const char *state_dir)
{
    return read_file(state_dir, "mappings", vfio_emu_parse_mappings);
}

GArray *vfio_emu_read_events(const char *state_dir)
{
    return read_file(state_dir, "events", vfio_emu_parse_events);
}

bool vfio_emu_backing_bar(const char *backing, char **device, int *bar,
                          uint64_t *offset)
{
    const char *plus = strrchr(backing, '+');
    const char *b;
    g_autofree char *devbar = NULL;

    if (!plus) {
        return false;
    }
    devbar = g_strndup(backing, plus - backing);
    b = g_strrstr(devbar, ":bar");
    if (!b || !g_ascii_isdigit(b[4])) {
        return false;
    }
    if (qemu_strtoi(b + 4, NULL, 10, bar) || !parse_u64(plus + 1, offset)) {
        return false;
    }
    *device = g_strndup(devbar, b - devbar);
    return true;
}

const VfioEmuMapping *vfio_emu_find_mapping(GArray *mappings, uint64_t iova,
                                            uint64_t last)
{
    guint i;

    for (i = 0; i < mappings->len; i++) {
        VfioEmuMapping *e = &g_array_index(mappings, VfioEmuMapping, i);

        if (e->iova <= iova && last <= e->iova + e->size - 1) {
            return e;
        }
    }
    return NULL;
}
