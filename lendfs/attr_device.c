// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_device.c - devices/ID/: the attribute table of one device.
 *
 * Every show() renders from ctx->dv, a consistent copy the engine took
 * under the device lock (device_get()), so one read never mixes two
 * states.
 */
#include "attr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int device_vendor_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "0x%04x\n", ctx->dv->vendor) < 0 ? -EIO : 0;
}

static int device_device_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "0x%04x\n", ctx->dv->device) < 0 ? -EIO : 0;
}

static int device_class_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "0x%06x\n", ctx->dv->class) < 0 ? -EIO : 0;
}

static int device_subsystem_vendor_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "0x%04x\n", ctx->dv->subsystem_vendor) < 0 ? -EIO : 0;
}

static int device_subsystem_device_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "0x%04x\n", ctx->dv->subsystem_device) < 0 ? -EIO : 0;
}

static int device_lender_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "%s\n", ctx->dv->lender) < 0 ? -EIO : 0;
}

/*
 * Exactly the value plus one newline, or a newline alone when not lent:
 * config-management tools compare checksums of what they would write.
 */
static int device_borrower_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "%s\n", ctx->dv->borrower) < 0 ? -EIO : 0;
}

/*
 * One write is one request.  The engine does the whole SPEC section 4
 * contract (newline, length, no-op, return, lend); its -errno goes back
 * to write(2) or rename(2).
 */
static int device_borrower_store(const struct attr_ctx *ctx,
				 struct attr_write *w)
{
	if (value_len(w->buf, w->len) == 0)
		snprintf(w->what, sizeof(w->what), "return %s", ctx->devid);
	else
		snprintf(w->what, sizeof(w->what), "lend %s to %s", ctx->devid,
			 w->value);
	return engine_write_borrower(ctx->engine, ctx->devid, w->buf, w->len,
				     ctx->who, w->reason);
}

static int device_state_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "%s\n", dev_state_name(ctx->dv->state)) < 0 ?
		-EIO : 0;
}

static int device_last_error_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "%s\n", ctx->dv->last_error) < 0 ? -EIO : 0;
}

/*
 * The seconds the lease has left, rounded up (0 once it passed and the
 * lender has not returned the device yet); empty without a lease.
 */
static int device_lease_show(const struct attr_ctx *ctx, FILE *out)
{
	int64_t left;

	if (!ctx->dv->lease)
		return 0;
	left = ctx->dv->lease - now_wall_ns();
	left = left <= 0 ? 0 : (left + 999999999LL) / 1000000000LL;
	return fprintf(out, "%" PRId64 "\n", left) < 0 ? -EIO : 0;
}

/* N seconds from now, or 0 / empty: no lease (engine_write_lease()). */
static int device_lease_store(const struct attr_ctx *ctx, struct attr_write *w)
{
	snprintf(w->what, sizeof(w->what), "set the lease of %s", ctx->devid);
	if (value_len(w->buf, w->len) == 0 || !strcmp(w->value, "0"))
		snprintf(w->done, sizeof(w->done), "%s: lease removed", ctx->devid);
	else
		snprintf(w->done, sizeof(w->done), "%s: lease of %s s", ctx->devid,
			 w->value);
	return engine_write_lease(ctx->engine, ctx->devid, w->buf, w->len,
				  ctx->who, w->reason);
}

/* Like sysfs: one line per BAR, "start end flags", zeros when unused. */
static int device_resource_show(const struct attr_ctx *ctx, FILE *out)
{
	const struct device_view *v = ctx->dv;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t start = 0, end = 0, flags = 0;

		if (v->bar_size[i]) {
			start = v->bar_addr[i];
			end = start + v->bar_size[i] - 1;
			flags = v->bar_flags[i];
		}
		if (fprintf(out, "0x%016" PRIx64 " 0x%016" PRIx64
			    " 0x%016" PRIx64 "\n", start, end, flags) < 0)
			return -EIO;
	}
	return 0;
}

static int device_windows_show(const struct attr_ctx *ctx, FILE *out)
{
	const struct device_view *v = ctx->dv;
	char line[WINDOW_TEXT_MAX];

	for (unsigned i = 0; i < v->nwindows; i++) {
		int r = window_format(&v->windows[i], line, sizeof(line));

		if (r < 0)
			return r;
		if (fprintf(out, "%s\n", line) < 0)
			return -EIO;
	}
	return 0;
}

/* The route lender -> borrower while the device has one; empty otherwise. */
static int device_path_show(const struct attr_ctx *ctx, FILE *out)
{
	if (ctx->dv->has_route)
		engine_render_route(ctx->engine, &ctx->dv->route, out);
	return ferror(out) ? -EIO : 0;
}

static int device_get(struct attr_ctx *ctx)
{
	_cleanup_free_ struct device_view *v = malloc(sizeof(*v));
	int r = v ? engine_device_view(ctx->engine, ctx->devid, v) : -ENOMEM;

	if (r == 0)
		ctx->dv = take_ptr(v);
	return r;
}

static void device_put(struct attr_ctx *ctx)
{
	device_view_release(ctx->dv);
	free(ctx->dv);
	ctx->dv = NULL;
}

static const struct lendfs_attr device_attr_list[] = {
	LENDFS_ATTR_RO(device_, vendor),
	LENDFS_ATTR_RO(device_, device),
	LENDFS_ATTR_RO(device_, class),
	LENDFS_ATTR_RO(device_, subsystem_vendor),
	LENDFS_ATTR_RO(device_, subsystem_device),
	LENDFS_ATTR_RO(device_, lender),
	LENDFS_ATTR_RW_POLL(device_, borrower),
	LENDFS_ATTR_RO_POLL(device_, state),
	LENDFS_ATTR_RO_POLL(device_, last_error),
	LENDFS_ATTR_RW_POLL(device_, lease),
	LENDFS_ATTR_RO(device_, resource),
	LENDFS_ATTR_RO(device_, windows),
	LENDFS_ATTR_RO(device_, path),
};

static const char *const device_dirs[] = { "peers", PLANS_DIR, NULL };

const struct attr_table device_attrs =
	ATTR_TABLE(device_attr_list, device_dirs, device_get, device_put);

static const struct peer_view *peer_find(const struct device_view *v,
					 const char *peer)
{
	for (unsigned i = 0; i < v->npeers; i++)
		if (strcmp(v->peers[i].device, peer) == 0)
			return &v->peers[i];
	return NULL;
}

bool device_peer_exists(const struct device_view *v, const char *peer)
{
	return peer_find(v, peer) != NULL;
}

/*
 * The P2P route actually used between the device and one peer: through
 * the lender's root complex when its IOMMU forces it, else the shortest
 * fabric path.
 */
int device_peer_show(struct engine *e, const struct device_view *v,
		     const char *peer, FILE *out)
{
	const struct peer_view *p = peer_find(v, peer);

	if (!p)
		return -ENOENT;
	engine_render_peer(e, v->lender, p, out);
	return ferror(out) ? -EIO : 0;
}

/* Every host but the lender could borrow: each has a plan. */
bool device_plan_exists(const struct device_view *v, const char *host)
{
	return strcmp(v->lender, host) != 0;
}

/*
 * The plan of lending the device to @host, computed now: never a copy
 * kept from an earlier read (fs.c renders at offset 0, direct_io).  The
 * plan's outcome is its content; only a failed stream is an error here.
 */
int device_plan_show(struct engine *e, const char *devid, const char *host,
		     FILE *out)
{
	engine_plan(e, devid, host, out, NULL);
	return ferror(out) ? -EIO : 0;
}
