// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bname.h"
#include "check.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

struct check_ctx {
	const struct cluster_config *cfg;
	FILE *out;
	unsigned bad;
};

static const struct cfg_device *find_device(const struct cluster_config *cfg,
					    const char *id)
{
	for (unsigned i = 0; i < cfg->ndevices; i++)
		if (!strcmp(cfg->devices[i].id, id))
			return &cfg->devices[i];
	return NULL;
}

static const struct cfg_vm *find_vm(const struct cluster_config *cfg,
				    const char *borrower)
{
	for (unsigned i = 0; i < cfg->nvms; i++) {
		char name[REASON_MAX];

		snprintf(name, sizeof(name), "vm:%s/%s", cfg->vms[i].host,
			 cfg->vms[i].name);
		if (!strcmp(name, borrower))
			return &cfg->vms[i];
	}
	return NULL;
}

static unsigned count_windows(const struct lend_record *rec,
			      enum window_kind kind, const char *host,
			      const char *tag)
{
	unsigned n = 0;

	for (unsigned i = 0; i < rec->nwindows; i++) {
		const struct window *w = &rec->windows[i];

		if (w->kind == kind && (!host || !strcmp(w->host, host)) &&
		    !strcmp(w->tag, tag))
			n++;
	}
	return n;
}

_printf_(3, 4) static void violation(struct check_ctx *c,
				     const struct lend_record *rec,
				     const char *fmt, ...)
{
	va_list ap;

	fprintf(c->out, "%s: ", rec->device);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	c->bad++;
}

static int check_record(void *arg, const struct lend_record *rec)
{
	struct check_ctx *c = arg;
	const struct cluster_config *cfg = c->cfg;
	const struct cfg_device *d = find_device(cfg, rec->device);
	const struct cfg_host *lender = NULL, *bhost = NULL;
	unsigned nram = 0;
	char lname[HOST_NAME_MAX_LEN + 1];
	struct pci_addr addr;

	if (rec->state != REC_LENT)
		violation(c, rec, "left %s by a daemon that did not finish",
			  rec_state_name(rec->state));
	if (device_id_parse(rec->device, lname, &addr) == 0)
		lender = config_find_host(cfg, lname);
	if (!lender) {
		violation(c, rec, "lender host %s is not in the config", lname);
		return 0;
	}
	if (!d && strcmp(cfg->inventory, "udev") != 0) {
		violation(c, rec, "device is not in the config (dangling record)");
		return 0;
	}
	if (bname_is_vm(rec->borrower)) {
		const struct cfg_vm *vm = find_vm(cfg, rec->borrower);

		if (vm) {
			bhost = config_find_host(cfg, vm->host);
			nram = vm->nram;
		}
		/* VMs registered at run time are not in the config */
	} else {
		bhost = config_find_host(cfg, rec->borrower);
		if (!bhost) {
			violation(c, rec, "borrower %s is not a configured host",
				  rec->borrower);
			return 0;
		}
		if (bhost == lender)
			violation(c, rec, "lent to its own lender %s", lender->name);
		nram = bhost->nram;
	}
	if (!d || !bhost)
		return 0;
	for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "bar%u", bar);
		if (d->bar[bar] && count_windows(rec, WIN_LUT, bhost->name, tag) != 1)
			violation(c, rec, "%s: expected one LUT window on borrower %s, found %u",
				  tag, bhost->name,
				  count_windows(rec, WIN_LUT, bhost->name, tag));
		if (!d->bar[bar] && count_windows(rec, WIN_LUT, NULL, tag))
			violation(c, rec, "%s: LUT windows for a BAR the device does not have",
				  tag);
	}
	for (unsigned j = 0; j < nram; j++) {
		char tag[16];
		unsigned want = lender->iommu ? 1 : 0;
		unsigned got;

		snprintf(tag, sizeof(tag), "ram%u", j);
		if (count_windows(rec, WIN_DMA, lender->name, tag) != 1)
			violation(c, rec, "%s: expected one DMA window on lender %s, found %u",
				  tag, lender->name,
				  count_windows(rec, WIN_DMA, lender->name, tag));
		got = count_windows(rec, WIN_IOMMU, lender->name, tag);
		if (got != want)
			violation(c, rec, "%s: expected %u IOMMU mapping(s) on %s (iommu %s), found %u",
				  tag, want, lender->name, lender->iommu ? "on" : "off", got);
	}
	return 0;
}

int lendfs_check(const struct cluster_config *cfg, const struct store_ops *ops,
		 const char *where, FILE *out, char *reason)
{
	struct check_ctx c = { .cfg = cfg, .out = out };
	void *ctx = NULL;
	int r;

	r = ops->open(where, &ctx, reason);
	if (r < 0)
		return r;
	r = ops->check(ctx, out);
	if (r >= 0) {
		c.bad = (unsigned)r;
		r = ops->load(ctx, check_record, &c, reason);
	}
	ops->close(ctx);
	if (r < 0)
		return r;
	return (int)c.bad;
}
