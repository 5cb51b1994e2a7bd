/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: parse the emulation's state directory for tests
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
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

/* The number @v as a uint64_t, or an int */
static bool json_u64(QObject *v, uint64_t *out)
{
    QNum *n = qobject_to(QNum, v);

    return n && qnum_get_try_uint(n, out);
}

static bool json_int(QObject *v, int *out)
{
    QNum *n = qobject_to(QNum, v);
    int64_t i;

    if (!n || !qnum_get_try_int(n, &i) || i < INT_MIN || i > INT_MAX) {
        return false;
    }
    *out = i;
    return true;
}

static bool json_u32(QObject *v, uint32_t *out)
{
    uint64_t u;

    if (!json_u64(v, &u) || u > UINT32_MAX) {
        return false;
    }
    *out = u;
    return true;
}

static bool json_str(QObject *v, char **out)
{
    QString *str = qobject_to(QString, v);

    if (!str) {
        return false;
    }
    g_free(*out);
    *out = g_strdup(qstring_get_str(str));
    return true;
}

static bool mapping_field(void *obj, const char *k, QObject *v)
{
    VfioEmuMapping *m = obj;

    if (!strcmp(k, "container")) {
        return json_int(v, &m->container);
    } else if (!strcmp(k, "iova")) {
        return json_u64(v, &m->iova);
    } else if (!strcmp(k, "size")) {
        return json_u64(v, &m->size);
    } else if (!strcmp(k, "vaddr")) {
        return json_u64(v, &m->vaddr);
    } else if (!strcmp(k, "flags")) {
        return json_u32(v, &m->flags);
    } else if (!strcmp(k, "backing")) {
        return json_str(v, &m->backing);
    }
    return true;    /* members added later are ignored */
}

static bool event_field(void *obj, const char *k, QObject *v)
{
    VfioEmuEvent *e = obj;
    int injected;

    if (!strcmp(k, "seq")) {
        return json_u64(v, &e->seq);
    } else if (!strcmp(k, "op")) {
        return json_str(v, &e->op);
    } else if (!strcmp(k, "container")) {
        return json_int(v, &e->container);
    } else if (!strcmp(k, "group")) {
        return json_int(v, &e->group);
    } else if (!strcmp(k, "device")) {
        return json_str(v, &e->device);
    } else if (!strcmp(k, "iova")) {
        return json_u64(v, &e->iova);
    } else if (!strcmp(k, "size")) {
        return json_u64(v, &e->size);
    } else if (!strcmp(k, "vaddr")) {
        return json_u64(v, &e->vaddr);
    } else if (!strcmp(k, "flags")) {
        return json_u32(v, &e->flags);
    } else if (!strcmp(k, "ret")) {
        return json_int(v, &e->ret);
    } else if (!strcmp(k, "unmapped")) {
        return json_u64(v, &e->unmapped);
    } else if (!strcmp(k, "backing")) {
        return json_str(v, &e->backing);
    } else if (!strcmp(k, "injected")) {
        if (!json_int(v, &injected)) {
            return false;
        }
        e->injected = injected;
    }
    return true;    /* members added later are ignored */
}

/* One JSON object a line ("JSON Lines"), each member passed to @field */
static GArray *parse_lines(const char *text, size_t elem_size,
                           GDestroyNotify clear,
                           bool (*field)(void *, const char *, QObject *),
                           bool (*valid)(void *), char **errmsg)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GArray *arr = g_array_new(false, true, elem_size);
    int i;

    g_array_set_clear_func(arr, clear);
    for (i = 0; lines[i]; i++) {
        QObject *obj;
        Error *err = NULL;
        const QDictEntry *ent;
        QDict *dict;
        void *elem;
        bool ok;

        if (!*lines[i]) {
            continue;
        }
        obj = qobject_from_json(lines[i], &err);
        dict = qobject_to(QDict, obj);
        if (!dict) {
            *errmsg = g_strdup_printf("line %d: %s: '%s'", i + 1,
                                      err ? error_get_pretty(err) :
                                      "not a JSON object", lines[i]);
            error_free(err);
            qobject_unref(obj);
            g_array_unref(arr);
            return NULL;
        }
        g_array_set_size(arr, arr->len + 1);
        elem = arr->data + (arr->len - 1) * elem_size;
        ok = true;
        for (ent = qdict_first(dict); ent && ok;
             ent = qdict_next(dict, ent)) {
            ok = field(elem, qdict_entry_key(ent), qdict_entry_value(ent));
        }
        qobject_unref(obj);
        if (!ok || !valid(elem)) {
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
