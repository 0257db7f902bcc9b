// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_fabric.c - the whole-cluster files: MOUNT/{version,lends,metrics}
 * and MOUNT/fabric/{links,topology.dot}.  Each is rendered by the engine
 * as one snapshot.
 */
#include "attr.h"

#include <errno.h>
#include <string.h>

#ifndef LENDFS_VERSION
#define LENDFS_VERSION "unknown"
#endif

static int show_version(struct engine *e, FILE *out)
{
	return fprintf(out, "%s\n", LENDFS_VERSION) < 0 ? -EIO : 0;
}

static int show_lends(struct engine *e, FILE *out)
{
	return engine_render_lends(e, out);
}

static int show_metrics(struct engine *e, FILE *out)
{
	return engine_render_metrics(e, out);
}

static int show_links(struct engine *e, FILE *out)
{
	return engine_render_links(e, out);
}

static int show_topology_dot(struct engine *e, FILE *out)
{
	return engine_render_topology_dot(e, out);
}

static const struct cluster_attr cluster_attr_list[] = {
	{ "version", ATTR_RO, show_version },
	{ "lends", ATTR_RO, show_lends },
	{ "metrics", ATTR_RO, show_metrics },
};

static const struct cluster_attr fabric_attr_list[] = {
	{ "links", ATTR_RO, show_links },
	{ "topology.dot", ATTR_RO, show_topology_dot },
};

const struct cluster_attr_table cluster_attrs = {
	cluster_attr_list, ARRAY_SIZE(cluster_attr_list)
};

const struct cluster_attr_table fabric_attrs = {
	fabric_attr_list, ARRAY_SIZE(fabric_attr_list)
};

const struct cluster_attr *cluster_attr_find(const struct cluster_attr_table *t,
					     const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->attrs[i].name, name) == 0)
			return &t->attrs[i];
	return NULL;
}
