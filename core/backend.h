/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h - the back-ends by name.
 *
 * The one module that knows every fabric and inventory back-end: a
 * configuration names them (`fabric = sim|ntb`, `inventory = config|udev`
 * in [cluster]) and the daemon asks here for the operations table.  The
 * back-ends themselves (core/fabric_sim.c, core/fabric_ntb.c,
 * core/inventory.c, core/inventory_udev.c) know nothing of one another,
 * so a new one is a new file and one line in a table of core/backend.c.
 *
 * Stores are not chosen by a name of the configuration but by the
 * daemon's options (--state FILE|none, --store for ZooKeeper), in
 * lendfs/main.c; their tables are in core/store.h and core/store_zk.h.
 */
#ifndef LENDFS_BACKEND_H
#define LENDFS_BACKEND_H

#include "fabric.h"
#include "inventory.h"

/* "sim" or "ntb"; NULL for anything else, NULL included. */
const struct fabric_ops *fabric_find(const char *name);

/* "config" (also for NULL, the default) or "udev"; NULL for anything else. */
const struct inventory_ops *inventory_find(const char *name);

#endif
