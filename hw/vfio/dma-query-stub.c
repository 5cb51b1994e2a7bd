/*
 * VFIO DMA mappings over QMP and HMP: stubs for builds without VFIO
 *
 * Copyright (c) 2026 The vfio-series authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vfio.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

VfioDmaContainerList *qmp_x_query_vfio_dma_mappings(const char *device,
                                                    bool has_state,
                                                    VfioDmaMappingState state,
                                                    Error **errp)
{
    error_setg(errp, "VFIO is not supported by this QEMU binary");
    return NULL;
}

void hmp_info_vfio_dma(Monitor *mon, const QDict *qdict)
{
    monitor_printf(mon, "VFIO is not supported by this QEMU binary\n");
}
