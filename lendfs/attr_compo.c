// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_compo.c - compositions/NAME/: the attribute table of one
 * composition (SPEC section 10, core/compose.c).  mkdir / rmdir of its
 * directory are fs.c's.
 *
 *   devices     (rw) one device ID a line; a write replaces the list
 *   borrower    (rw, pollable) lend every device to it, or none; empty
 *               returns them all
 *   state       available | lending | lent | returning (pollable)
 *   last_error  "" or "ERRNO: DEVICE: reason" of the last failed write
 *   lease       (rw, pollable) seconds left of the lend of all of its
 *               devices; a write sets or renews them together
 *   plans/HOST  (not attributes) the dry run of lending it to HOST
 */
#include "attr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

static int put(FILE *out, const char *s)
{
	return fprintf(out, "%s\n", s) < 0 ? -EIO : 0;
}

/* One line per device, each ending in '\n'; none: an empty file. */
static int compo_devices_show(const struct attr_ctx *ctx, FILE *out)
{
	const char *d = ctx->cv->devices;

	return d[0] ? put(out, d) : 0;
}

static int compo_devices_store(const struct attr_ctx *ctx, struct attr_write *w)
{
	snprintf(w->what, sizeof(w->what), "set the devices of composition %s to "
		 "'%s'", ctx->compo, w->value);
	snprintf(w->done, sizeof(w->done), "composition %s: devices '%s'",
		 ctx->compo, w->value);
	return engine_compo_write_devices(ctx->engine, ctx->compo, w->buf, w->len,
					  ctx->who, w->reason);
}

static int compo_borrower_show(const struct attr_ctx *ctx, FILE *out)
{
	return put(out, ctx->cv->borrower);
}

static int compo_borrower_store(const struct attr_ctx *ctx, struct attr_write *w)
{
	snprintf(w->what, sizeof(w->what), "lend composition %s to '%s'",
		 ctx->compo, w->value);
	if (value_len(w->buf, w->len))
		snprintf(w->done, sizeof(w->done), "composition %s lent to %s",
			 ctx->compo, w->value);
	else
		snprintf(w->done, sizeof(w->done), "composition %s returned",
			 ctx->compo);
	return engine_compo_write_borrower(ctx->engine, ctx->compo, w->buf, w->len,
					   ctx->who, w->reason);
}

static int compo_state_show(const struct attr_ctx *ctx, FILE *out)
{
	return put(out, compo_state_name(ctx->cv->state));
}

static int compo_last_error_show(const struct attr_ctx *ctx, FILE *out)
{
	return put(out, ctx->cv->last_error);
}

/*
 * The seconds left, rounded up (0 once passed, until the timer returns
 * the composition), as devices/ID/lease; empty without a lease.
 */
static int compo_lease_show(const struct attr_ctx *ctx, FILE *out)
{
	int64_t left;

	if (!ctx->cv->lease)
		return 0;
	left = ctx->cv->lease - now_wall_ns();
	left = left <= 0 ? 0 : (left + 999999999LL) / 1000000000LL;
	return fprintf(out, "%" PRId64 "\n", left) < 0 ? -EIO : 0;
}

/* N seconds from now for every device, or 0 / empty: no lease. */
static int compo_lease_store(const struct attr_ctx *ctx, struct attr_write *w)
{
	snprintf(w->what, sizeof(w->what), "set the lease of composition %s",
		 ctx->compo);
	if (value_len(w->buf, w->len) == 0 || !strcmp(w->value, "0"))
		snprintf(w->done, sizeof(w->done), "composition %s: lease removed",
			 ctx->compo);
	else
		snprintf(w->done, sizeof(w->done), "composition %s: lease of %s s",
			 ctx->compo, w->value);
	return engine_compo_write_lease(ctx->engine, ctx->compo, w->buf, w->len,
					ctx->who, w->reason);
}

/* A compo_view holds the device list: on the heap, not the stack. */
static int compo_get(struct attr_ctx *ctx)
{
	_cleanup_free_ struct compo_view *v = malloc(sizeof(*v));
	int r = v ? engine_compo_view(ctx->engine, ctx->compo, v) : -ENOMEM;

	if (r == 0)
		ctx->cv = take_ptr(v);
	return r;
}

static void compo_put(struct attr_ctx *ctx)
{
	free(ctx->cv);
	ctx->cv = NULL;
}

static const struct lendfs_attr compo_attr_list[] = {
	LENDFS_ATTR_RW(compo_, devices),
	LENDFS_ATTR_RW_POLL(compo_, borrower),
	LENDFS_ATTR_RO_POLL(compo_, state),
	LENDFS_ATTR_RO_POLL(compo_, last_error),
	LENDFS_ATTR_RW_POLL(compo_, lease),
};

static const char *const compo_dirs[] = { PLANS_DIR, NULL };

const struct attr_table compo_attrs =
	ATTR_TABLE(compo_attr_list, compo_dirs, compo_get, compo_put);

/*
 * compositions/NAME/plans/HOST: the dry run of writing HOST to its
 * borrower, computed now; the plan's outcome is its content, only a
 * failed stream is an error here.
 */
int compo_plan_show(struct engine *e, const char *name, const char *host,
		    FILE *out)
{
	engine_compo_plan(e, name, host, out, NULL);
	return ferror(out) ? -EIO : 0;
}
