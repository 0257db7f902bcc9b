// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_host.c - hosts/HOST/: the attribute table of one host.
 *
 * In the sim fabric `state` is writable ("online" / "offline") so admins
 * and tests can take a host down; the engine decides what that does to
 * the lends through it.
 */
#include "attr.h"

#include <errno.h>
#include <stdlib.h>

static int host_state_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "%s\n", ctx->hv->online ? "online" : "offline") < 0 ?
		-EIO : 0;
}

static int host_state_store(const struct attr_ctx *ctx, struct attr_write *w)
{
	snprintf(w->what, sizeof(w->what), "set host %s %s", ctx->host,
		 w->value);
	snprintf(w->done, sizeof(w->done), "host %s is %s", ctx->host, w->value);
	return engine_write_host_state(ctx->engine, ctx->host, w->buf, w->len,
				       ctx->who, w->reason);
}

static int host_get(struct attr_ctx *ctx)
{
	_cleanup_free_ struct host_view *v = malloc(sizeof(*v));
	int r = v ? engine_host_view(ctx->engine, ctx->host, v) : -ENOMEM;

	if (r == 0)
		ctx->hv = take_ptr(v);
	return r;
}

static void host_put(struct attr_ctx *ctx)
{
	free(ctx->hv);
	ctx->hv = NULL;
}

static const struct lendfs_attr host_attr_list[] = {
	LENDFS_ATTR_RW_POLL(host_, state),
};

/* symlinks to the devices it lends and borrows; its VM borrowers */
static const char *const host_dirs[] = { "lent", "borrowed", "vms", NULL };

const struct attr_table host_attrs =
	ATTR_TABLE(host_attr_list, host_dirs, host_get, host_put);
