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

/*
 * The sim fabric's registers in @run_dir against the stored lends: every
 * window of a `lent` record is programmed, register by register, exactly
 * as stored (place, target, size, next hop), and every programmed LUT
 * entry, DMA window and IOMMU mapping is owned by a stored window.  P2P
 * links are derived from the lends, not stored: a register no stored
 * window owns is accepted when it leads into a BAR of a lent device whose
 * borrower holds another lent device (an IOMMU mapping: in the domain of
 * such a device).  @host: only that owner's registers and the windows on
 * it (distributed mode: a daemon's run directory is its host's hardware);
 * NULL: all.  Reads only.  Returns the number of violations or -errno.
 */
int lendfs_check_regs(const struct cluster_config *cfg,
		      const struct store_ops *ops, const char *where,
		      const char *run_dir, const char *host, FILE *out,
		      char *reason);

#endif
