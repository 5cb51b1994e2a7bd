/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * vfio-emu: the model of what the VFIO listener maps of a RAM device section
 *
 * Copyright (c) 2026 The vfio-series authors
 */

#include "qemu/osdep.h"
#include "vfio-emu-model.h"

static bool model_add(VfioEmuModelPiece *out, int max, int *n,
                      uint64_t first, uint64_t last, VfioEmuModelKind kind)
{
    if (*n >= max) {
        return false;
    }
    out[(*n)++] = (VfioEmuModelPiece) {
        .first = first, .last = last, .kind = kind,
    };
    return true;
}

/* [@first, @last], within one usable range: its interior and the rest */
static bool model_trim(VfioEmuModelPiece *out, int max, int *n,
                       uint64_t first, uint64_t last, uint64_t granule)
{
    uint64_t lo = ROUND_UP(first, granule);     /* < @first if it wraps */
    uint64_t hi = last == UINT64_MAX ? 0 : QEMU_ALIGN_DOWN(last + 1, granule);
    /* the interior's last byte (the end of 2^64 is aligned to any page) */
    uint64_t hi_last = hi - 1;

    if (lo < first || (last != UINT64_MAX && hi <= lo) || hi_last < lo) {
        return model_add(out, max, n, first, last, VFIO_EMU_MODEL_UNALIGNED);
    }
    return (lo == first ||
            model_add(out, max, n, first, lo - 1,
                      VFIO_EMU_MODEL_UNALIGNED)) &&
           model_add(out, max, n, lo, hi_last, VFIO_EMU_MODEL_MAPPED) &&
           (hi_last == last ||
            model_add(out, max, n, hi_last + 1, last,
                      VFIO_EMU_MODEL_UNALIGNED));
}

int vfio_emu_model_section(uint64_t first, uint64_t last, uint64_t granule,
                           const uint64_t *usable, int nusable,
                           VfioEmuModelPiece *out, int max)
{
    uint64_t pos = first;
    int i, n = 0;

    if (!nusable) {
        return model_trim(out, max, &n, first, last, granule) ? n : -1;
    }
    for (i = 0; i < nusable && pos <= last; i++) {
        uint64_t ufirst = usable[2 * i], ulast = usable[2 * i + 1];
        uint64_t plast;

        if (ulast < pos) {
            continue;
        }
        if (ufirst > last) {
            break;
        }
        if (ufirst > pos) {
            if (!model_add(out, max, &n, pos, ufirst - 1,
                           VFIO_EMU_MODEL_OUTSIDE)) {
                return -1;
            }
            pos = ufirst;
        }
        plast = MIN(ulast, last);
        if (!model_trim(out, max, &n, pos, plast, granule)) {
            return -1;
        }
        if (plast == UINT64_MAX) {
            return n;
        }
        pos = plast + 1;
    }
    if (pos <= last &&
        !model_add(out, max, &n, pos, last, VFIO_EMU_MODEL_OUTSIDE)) {
        return -1;
    }
    return n;
}
