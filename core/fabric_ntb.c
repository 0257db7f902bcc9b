// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fabric_ntb.c - the real NTB back-end (future work).  It is found by
 * name in core/backend.c.
 *
 * Asking for real NTB hardware never silently falls back to the
 * simulator: open() fails with -ENOTSUP and says why.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "fabric.h"
#include "util.h"

#define NTB_SYSFS_DEVICES "/sys/bus/ntb/devices"

static bool ntb_hardware_present(void)
{
	DIR *d = opendir(NTB_SYSFS_DEVICES);
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		found = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return found;
}

static int ntb_open(const struct cluster_config *cfg, const char *run_dir,
		    void **ctx, char *reason)
{
	if (!ntb_hardware_present())
		return reason_set(reason, -ENOTSUP,
				  "real NTB back-end not available: no NTB hardware "
				  "found (" NTB_SYSFS_DEVICES " is empty or absent)");
	return reason_set(reason, -ENOTSUP,
			  "real NTB back-end not implemented yet");
}

static void ntb_close(void *ctx)
{
}

static int ntb_device_attach(void *ctx, const char *devid, const char *host,
			     const uint64_t bar_size[PCI_NUM_BARS],
			     const uint64_t bar_addr[PCI_NUM_BARS], char *reason)
{
	return reason_set(reason, -ENOTSUP, "real NTB back-end not implemented yet");
}

static void ntb_device_detach(void *ctx, const char *devid)
{
}

static int ntb_ram_attach(void *ctx, const char *owner, const struct range *ram,
			  unsigned nram, const char *backing, char *reason)
{
	return reason_set(reason, -ENOTSUP, "real NTB back-end not implemented yet");
}

static int ntb_program(void *ctx, const struct window *w, char *reason)
{
	return reason_set(reason, -ENOTSUP, "real NTB back-end not implemented yet");
}

static int ntb_host_stats(void *ctx, const char *host, uint64_t *iommu_faults,
			  uint64_t *bad_accesses)
{
	return -ENOTSUP;
}

const struct fabric_ops fabric_ntb_ops = {
	.name = "ntb",
	.open = ntb_open,
	.close = ntb_close,
	.device_attach = ntb_device_attach,
	.device_detach = ntb_device_detach,
	.ram_attach = ntb_ram_attach,
	.program = ntb_program,
	.clear = ntb_program,
	.host_stats = ntb_host_stats,
};
