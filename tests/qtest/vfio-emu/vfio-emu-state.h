/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: parse the emulation's state directory for tests
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The files are described in vfio-emu.h.  The emulation rewrites them
 * synchronously inside each call, so after a qtest operation returns they
 * describe the state QEMU left.
 */

#ifndef TESTS_QTEST_VFIO_EMU_STATE_H
#define TESTS_QTEST_VFIO_EMU_STATE_H

/* One line of STATE/mappings */
typedef struct VfioEmuMapping {
    int container;
    uint64_t iova;
    uint64_t size;
    uint64_t vaddr;
    uint32_t flags;             /* VFIO_DMA_MAP_FLAG_* */
    char *backing;              /* "ram" or "DEVICE:barN+0xOFFSET" */
} VfioEmuMapping;

/* One line of STATE/events; fields an op does not have are 0 or NULL */
typedef struct VfioEmuEvent {
    uint64_t seq;
    char *op;                   /* "MAP", "UNMAP", "RELEASE", ... */
    int container;
    int group;
    char *device;
    uint64_t iova;
    uint64_t size;
    uint64_t vaddr;
    uint32_t flags;
    int ret;                    /* 0 or -errno */
    uint64_t unmapped;          /* UNMAP, RELEASE: bytes unmapped */
    char *backing;              /* MAP */
    bool injected;              /* the call failed by a fault rule */
} VfioEmuEvent;

/*
 * Parse the text of a mappings or events file into a GArray of
 * VfioEmuMapping or VfioEmuEvent (the array frees the strings).  On a
 * malformed line, return NULL and set *@errmsg (g_free it).
 */
GArray *vfio_emu_parse_mappings(const char *text, char **errmsg);
GArray *vfio_emu_parse_events(const char *text, char **errmsg);

/*
 * Read STATE/mappings or STATE/events; a missing file is an empty list,
 * a malformed one fails the test.
 */
GArray *vfio_emu_read_mappings(const char *state_dir);
GArray *vfio_emu_read_events(const char *state_dir);

/*
 * Parse the backing "DEVICE:barN+0xOFFSET" of a mapping.  Returns false for
 * "ram".  *@device is a new string.
 */
bool vfio_emu_backing_bar(const char *backing, char **device, int *bar,
                          uint64_t *offset);

/*
 * The mapping of @mappings (from vfio_emu_read_mappings()) that contains
 * all of [@iova, @last], or NULL.
 */
const VfioEmuMapping *vfio_emu_find_mapping(GArray *mappings, uint64_t iova,
                                            uint64_t last);

#endif /* TESTS_QTEST_VFIO_EMU_STATE_H */
