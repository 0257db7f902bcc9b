// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * coord_local.c - the coordination of a daemon that is every host
 * (coord.h): recovery once at start, nothing to wait for or forward.
 */
#include <errno.h>

#include "coord.h"
#include "engine_internal.h"

static int local_open(struct engine *e, void *store_ctx, void **ctx,
		      char *reason)
{
	*ctx = e;
	return 0;
}

static int local_start(void *ctx, char *reason)
{
	return engine_recover(ctx, reason);
}

static void local_close(void *ctx)
{
}

static uint64_t local_epoch_floor(void *ctx)
{
	return 0;
}

static int local_resync(void *ctx, char *reason)
{
	return 0;
}

static int local_wait_peers(void *ctx, const char *devid, uint64_t epoch,
			    const struct window *w, unsigned n, bool mapped,
			    const struct lend_txn *txn, uint64_t deadline,
			    char *reason)
{
	return 0; /* this daemon programs every window itself */
}

static void local_intent_close(void *ctx, const char *devid, uint64_t epoch)
{
}

static int local_intent_abort(void *ctx, const char *devid, uint64_t epoch,
			      char *reason)
{
	return 0; /* nobody but this daemon commits */
}

static int local_return_abort(void *ctx, const char *devid, uint64_t epoch,
			       char *reason)
{
	return 0; /* nobody but this daemon removes a record */
}

static int local_forward(void *ctx, const char *devid, const char *lender,
			 const char *value, const char *compo,
			 const struct engine_caller *who, char *reason)
{
	return reason_set(reason, -EINVAL, "%s is not lent by this daemon", devid);
}

const struct coord_ops coord_local_ops = {
	.name = "local",
	.intent_always = false,
	.p2p = true,
	.takes_back = false,
	.settles = false, /* a local store's answer is the outcome */
	.per_host = false,
	.open = local_open,
	.start = local_start,
	.close = local_close,
	.epoch_floor = local_epoch_floor,
	.resync = local_resync,
	.wait_peers = local_wait_peers,
	.intent_close = local_intent_close,
	.intent_abort = local_intent_abort,
	.return_abort = local_return_abort,
	.forward = local_forward,
};
