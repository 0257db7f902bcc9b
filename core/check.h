/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check.h - offline consistency check of a store against a config
 * (`lendfs --check`).
 *
 * Runs the store's own invariants (store_ops.check: one record per device,
 * no two lends owning one LUT entry, DMA slot or IOMMU range, no dangling
 * rows) and then, against the config:
 *   - every record names a configured device (unless the inventory is
 *     udev, whose devices the config does not list) and a known borrower;
 *   - a lent device is not lent to its own lender;
 *   - its windows match its lend: for every BAR a LUT window on the
 *     borrower's host, for every borrower RAM range a DMA window on the
 *     lender, and IOMMU windows exactly when the lender's IOMMU is on;
 *   - no record is left `lending` or `returning` (a daemon that stopped
 *     cleanly never leaves one; the next start resolves them).
 * Prints one line per violation; returns their number or -errno.
 */
#ifndef LENDFS_CHECK_H
#define LENDFS_CHECK_H

#include <stdio.h>

#include "config.h"
#include "store.h"

int lendfs_check(const struct cluster_config *cfg, const struct store_ops *ops,
		 const char *where, FILE *out, char *reason);

#endif
