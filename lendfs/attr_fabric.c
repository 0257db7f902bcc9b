// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_fabric.c - the whole-cluster files: MOUNT/{version,lends,events,metrics}
 * and MOUNT/fabric/{links,topology.dot}.  Each is rendered by the engine
 * as one snapshot; they need no view of an object.
 */
#include "attr.h"

#include <errno.h>

#ifndef LENDFS_VERSION
#define LENDFS_VERSION "unknown"
#endif

static int cluster_version_show(const struct attr_ctx *ctx, FILE *out)
{
	return fprintf(out, "%s\n", LENDFS_VERSION) < 0 ? -EIO : 0;
}

static int cluster_lends_show(const struct attr_ctx *ctx, FILE *out)
{
	return engine_render_lends(ctx->engine, out);
}

/* What a poller of `events` watches: the last SEQ (fs.c reads the log). */
static int cluster_events_show(const struct attr_ctx *ctx, FILE *out)
{
	uint64_t begin, end, seq;

	engine_events_span(ctx->engine, &begin, &end, &seq, NULL);
	return fprintf(out, "%llu\n", (unsigned long long)seq) < 0 ? -EIO : 0;
}

static int cluster_metrics_show(const struct attr_ctx *ctx, FILE *out)
{
	return engine_render_metrics(ctx->engine, out);
}

static int fabric_links_show(const struct attr_ctx *ctx, FILE *out)
{
	return engine_render_links(ctx->engine, out);
}

static int fabric_topology_dot_show(const struct attr_ctx *ctx, FILE *out)
{
	return engine_render_topology_dot(ctx->engine, out);
}

static const struct lendfs_attr cluster_attr_list[] = {
	LENDFS_ATTR_RO_CONST(cluster_, version),
	LENDFS_ATTR_RO_POLL(cluster_, lends),
	LENDFS_ATTR_LOG(cluster_, events),
	LENDFS_ATTR_RO(cluster_, metrics),
};

static const char *const cluster_dirs[] = { "devices", "hosts", "fabric", COMPOSITIONS_DIR, NULL };

static const struct lendfs_attr fabric_attr_list[] = {
	LENDFS_ATTR_RO(fabric_, links),
	/* not a C name: spelled out */
	LENDFS_ATTR("topology.dot", ATTR_RO, fabric_topology_dot_show, NULL),
};

const struct attr_table cluster_attrs =
	ATTR_TABLE(cluster_attr_list, cluster_dirs, NULL, NULL);

const struct attr_table fabric_attrs =
	ATTR_TABLE(fabric_attr_list, NULL, NULL, NULL);
