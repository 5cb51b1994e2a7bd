/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: the model of what the VFIO listener maps of a RAM device section
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * The one copy of the rule the tests expect: the qtests link it, and
 * scripts load it from libvfio-emu-model.so (Python's ctypes), so that a
 * change of policy is a change of this file.
 */

#ifndef TESTS_QTEST_VFIO_EMU_MODEL_H
#define TESTS_QTEST_VFIO_EMU_MODEL_H

typedef enum VfioEmuModelKind {
    VFIO_EMU_MODEL_MAPPED,
    VFIO_EMU_MODEL_UNALIGNED,   /* skipped: not a whole aligned page */
    VFIO_EMU_MODEL_OUTSIDE,     /* skipped: outside the usable IOVA ranges */
} VfioEmuModelKind;

typedef struct VfioEmuModelPiece {
    uint64_t first;
    uint64_t last;              /* inclusive */
    int32_t kind;               /* VfioEmuModelKind */
    int32_t pad;
} VfioEmuModelPiece;

/*
 * The pieces of the RAM device section [@first, @last], in address order.
 * Inside each of the @nusable usable IOVA ranges @usable (pairs of
 * inclusive first and last addresses, sorted and disjoint; none: every
 * IOVA is usable), the section's interior trimmed inward to @granule is
 * mapped and the rest of it skipped as unaligned; what lies outside the
 * ranges is skipped as outside.  Writes up to @max pieces to @out and
 * returns how many there are, or -1 if @max is too small: 4 * @nusable + 3
 * is always enough.
 */
int vfio_emu_model_section(uint64_t first, uint64_t last, uint64_t granule,
                           const uint64_t *usable, int nusable,
                           VfioEmuModelPiece *out, int max);

#endif
