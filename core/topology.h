/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * topology.h - the fabric graph and shortest-path routing.
 *
 * Nodes are hosts (each with one NTB adapter) and switches; edges are the
 * configured links.  Routes are shortest by latency (Dijkstra), where a
 * route's latency is the sum of its link latencies, plus the switch
 * latencies it passes, plus one NTB crossing cost for every host adapter
 * that has to translate (every host on the route except the source).
 * Ties are broken deterministically: fewer hops first, then the
 * lexicographically smaller sequence of node names.
 *
 * A node or a link that is down is skipped.  A source or destination
 * that is down gives -EHOSTDOWN; no route at all gives -EHOSTDOWN too
 * (the borrower cannot be reached), with the reason saying which.
 *
 * Not thread-safe: the engine serialises changes (node/link up/down)
 * against route lookups.
 */
#ifndef LENDFS_TOPOLOGY_H
#define LENDFS_TOPOLOGY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define ROUTE_MAX_HOPS 32

struct topo;

struct route_hop {
	unsigned node;	     /* node index entered by this hop */
	unsigned link;	     /* link index used to enter it */
	uint64_t latency_ns; /* link latency + switch latency + crossing */
	bool crossing;	     /* entering a host adapter: one NTB crossing */
};

struct route {
	unsigned src, dst;
	unsigned nhops;	/* 0 when src == dst */
	struct route_hop hops[ROUTE_MAX_HOPS];
	uint64_t latency_ns; /* sum over hops */
	unsigned crossings;
};

int topo_new(const struct cluster_config *cfg, uint64_t crossing_ns,
	     struct topo **out, char *reason);
void topo_free(struct topo *t);

unsigned topo_node_count(const struct topo *t);
unsigned topo_link_count(const struct topo *t);

/* Index of a host or switch, or -ENOENT. */
int topo_node_find(const struct topo *t, const char *name);
const char *topo_node_name(const struct topo *t, unsigned node);
bool topo_node_is_switch(const struct topo *t, unsigned node);
bool topo_node_up(const struct topo *t, unsigned node);
int topo_node_set_up(struct topo *t, unsigned node, bool up);

/* Link endpoints and figures. */
int topo_link_get(const struct topo *t, unsigned link, unsigned *a,
		  unsigned *b, uint64_t *latency_ns, uint64_t *bandwidth);
bool topo_link_up(const struct topo *t, unsigned link);
int topo_link_set_up(struct topo *t, unsigned link, bool up);
/* Link between two named nodes, or -ENOENT. */
int topo_link_find(const struct topo *t, const char *a, const char *b);

/*
 * Shortest route from @src to @dst.  -EHOSTDOWN (with reason) when either
 * end is down or no path of up nodes and links exists.
 */
int topo_route(const struct topo *t, unsigned src, unsigned dst,
	       struct route *out, char *reason);

/* Does @r still run only over nodes and links that are up? */
bool topo_route_intact(const struct topo *t, const struct route *r);

#endif
