// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * topology.c - the fabric graph and shortest-path routing.
 *
 * Nodes are the config's hosts (indices 0 .. nhosts-1, in config order)
 * followed by its switches; links keep their config order.  Adjacency is
 * stored compactly (CSR): node i's neighbours are adj[nodes[i].adj ..
 * nodes[i + 1].adj), in link order, so a walk is deterministic.
 *
 * Routing is Dijkstra with a binary heap keyed by (latency, hops).  The
 * key grows by at least one hop on every edge, so a node's key is final
 * when it leaves the heap.  Among equal keys the lexicographically
 * smaller sequence of node names wins; equal-key candidates for a node
 * always come from nodes already settled, whose paths are final, so
 * comparing the two predecessor chains is enough.  Lookups allocate their
 * own scratch space and never write to the graph, so several may run at
 * once as long as nothing changes the graph meanwhile.
 */
#include "topology.h"

#include <errno.h>
#include <string.h>

struct topo_node {
	char name[HOST_NAME_MAX_LEN + 1];
	bool is_switch;
	bool up;
	uint64_t enter_ns; /* crossing cost (host) or switch latency */
};

struct topo_link {
	unsigned a, b;
	uint64_t latency_ns;
	uint64_t bandwidth;
	bool up;
};

struct topo_adj {
	unsigned peer;
	unsigned link;
};

struct name_ent {
	const char *name;
	unsigned node;
};

struct topo {
	struct topo_node *nodes;
	unsigned nnodes;
	struct topo_link *links;
	unsigned nlinks;
	unsigned *adj_start; /* nnodes + 1 offsets into adj */
	struct topo_adj *adj;
	struct name_ent *by_name; /* sorted by name */
	uint64_t crossing_ns;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int name_ent_cmp(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static const char *node_kind(const struct topo *t, unsigned node)
{
	return t->nodes[node].is_switch ? "switch" : "host";
}

void topo_free(struct topo *t)
{
	if (!t)
		return;
	free(t->nodes);
	free(t->links);
	free(t->adj_start);
	free(t->adj);
	free(t->by_name);
	free(t);
}

static void topo_freep(struct topo **t)
{
	topo_free(*t);
}

static int add_node(struct topo *t, const char *name, bool is_switch,
		    uint64_t enter_ns, char *reason)
{
	struct topo_node *n = &t->nodes[t->nnodes];

	if (!name_valid(name))
		return reason_set(reason, -EINVAL, "invalid %s name '%.*s'",
				  is_switch ? "switch" : "host",
				  HOST_NAME_MAX_LEN, name);
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->is_switch = is_switch;
	n->up = true;
	n->enter_ns = enter_ns;
	t->by_name[t->nnodes] = (struct name_ent){ n->name, t->nnodes };
	t->nnodes++;
	return 0;
}

static int build_adjacency(struct topo *t)
{
	unsigned *fill _cleanup_free_ = NULL;

	t->adj_start = calloc((size_t)t->nnodes + 1, sizeof(*t->adj_start));
	t->adj = calloc((size_t)t->nlinks * 2 + 1, sizeof(*t->adj));
	fill = calloc((size_t)t->nnodes + 1, sizeof(*fill));
	if (!t->adj_start || !t->adj || !fill)
		return -ENOMEM;

	for (unsigned l = 0; l < t->nlinks; l++) {
		t->adj_start[t->links[l].a + 1]++;
		t->adj_start[t->links[l].b + 1]++;
	}
	for (unsigned i = 0; i < t->nnodes; i++)
		t->adj_start[i + 1] += t->adj_start[i];
	for (unsigned i = 0; i < t->nnodes; i++)
		fill[i] = t->adj_start[i];
	for (unsigned l = 0; l < t->nlinks; l++) {
		unsigned a = t->links[l].a, b = t->links[l].b;

		t->adj[fill[a]++] = (struct topo_adj){ b, l };
		t->adj[fill[b]++] = (struct topo_adj){ a, l };
	}
	return 0;
}

int topo_new(const struct cluster_config *cfg, uint64_t crossing_ns,
	     struct topo **out, char *reason)
{
	struct topo *t _cleanup_(topo_freep) = NULL;
	size_t total;
	int r;

	if (!cfg || !out)
		return reason_set(reason, -EINVAL, "no cluster configuration");
	if ((cfg->nhosts && !cfg->hosts) || (cfg->nswitches && !cfg->switches) ||
	    (cfg->nlinks && !cfg->links))
		return reason_set(reason, -EINVAL,
				  "cluster configuration has counts without arrays");
	total = (size_t)cfg->nhosts + cfg->nswitches;
	if (total > UINT32_MAX / 2 || cfg->nlinks > UINT32_MAX / 4)
		return reason_set(reason, -E2BIG, "fabric too large: %zu nodes, %u links",
				  total, cfg->nlinks);

	t = calloc(1, sizeof(*t));
	if (!t)
		return reason_set(reason, -ENOMEM, "out of memory building the fabric graph");
	t->crossing_ns = crossing_ns;
	t->nodes = calloc(total + 1, sizeof(*t->nodes));
	t->by_name = calloc(total + 1, sizeof(*t->by_name));
	t->links = calloc((size_t)cfg->nlinks + 1, sizeof(*t->links));
	if (!t->nodes || !t->by_name || !t->links)
		return reason_set(reason, -ENOMEM, "out of memory building the fabric graph");

	for (unsigned i = 0; i < cfg->nhosts; i++) {
		r = add_node(t, cfg->hosts[i].name, false, crossing_ns, reason);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < cfg->nswitches; i++) {
		r = add_node(t, cfg->switches[i].name, true,
			     cfg->switches[i].latency_ns, reason);
		if (r < 0)
			return r;
	}

	qsort(t->by_name, t->nnodes, sizeof(*t->by_name), name_ent_cmp);
	for (unsigned i = 1; i < t->nnodes; i++) {
		const struct name_ent *p = &t->by_name[i - 1], *q = &t->by_name[i];

		if (strcmp(p->name, q->name) == 0)
			return reason_set(reason, -EINVAL, "%s name %s is also used by a %s",
					  node_kind(t, q->node), q->name,
					  node_kind(t, p->node));
	}

	for (unsigned l = 0; l < cfg->nlinks; l++) {
		const struct cfg_link *cl = &cfg->links[l];
		int a = topo_node_find(t, cl->a);
		int b = topo_node_find(t, cl->b);

		if (a < 0)
			return reason_set(reason, -EINVAL,
					  "link %s - %s: no host or switch named %s",
					  cl->a, cl->b, cl->a);
		if (b < 0)
			return reason_set(reason, -EINVAL,
					  "link %s - %s: no host or switch named %s",
					  cl->a, cl->b, cl->b);
		if (a == b)
			return reason_set(reason, -EINVAL, "link %s - %s connects %s to itself",
					  cl->a, cl->b, cl->a);
		t->links[l] = (struct topo_link){
			.a = (unsigned)a,
			.b = (unsigned)b,
			.latency_ns = cl->latency_ns,
			.bandwidth = cl->bandwidth,
			.up = true,
		};
	}
	t->nlinks = cfg->nlinks;

	r = build_adjacency(t);
	if (r < 0)
		return reason_set(reason, r, "out of memory building the fabric graph");

	*out = take_ptr(t);
	return 0;
}

unsigned topo_node_count(const struct topo *t)
{
	return t->nnodes;
}

unsigned topo_link_count(const struct topo *t)
{
	return t->nlinks;
}

int topo_node_find(const struct topo *t, const char *name)
{
	struct name_ent key = { name, 0 };
	const struct name_ent *e;

	if (!name)
		return -ENOENT;
	e = bsearch(&key, t->by_name, t->nnodes, sizeof(*t->by_name), name_ent_cmp);
	return e ? (int)e->node : -ENOENT;
}

const char *topo_node_name(const struct topo *t, unsigned node)
{
	return node < t->nnodes ? t->nodes[node].name : NULL;
}

bool topo_node_is_switch(const struct topo *t, unsigned node)
{
	return node < t->nnodes && t->nodes[node].is_switch;
}

bool topo_node_up(const struct topo *t, unsigned node)
{
	return node < t->nnodes && t->nodes[node].up;
}

int topo_node_set_up(struct topo *t, unsigned node, bool up)
{
	if (node >= t->nnodes)
		return -EINVAL;
	t->nodes[node].up = up;
	return 0;
}

int topo_link_get(const struct topo *t, unsigned link, unsigned *a,
		  unsigned *b, uint64_t *latency_ns, uint64_t *bandwidth)
{
	const struct topo_link *l;

	if (link >= t->nlinks)
		return -EINVAL;
	l = &t->links[link];
	if (a)
		*a = l->a;
	if (b)
		*b = l->b;
	if (latency_ns)
		*latency_ns = l->latency_ns;
	if (bandwidth)
		*bandwidth = l->bandwidth;
	return 0;
}

bool topo_link_up(const struct topo *t, unsigned link)
{
	return link < t->nlinks && t->links[link].up;
}

int topo_link_set_up(struct topo *t, unsigned link, bool up)
{
	if (link >= t->nlinks)
		return -EINVAL;
	t->links[link].up = up;
	return 0;
}

int topo_link_find(const struct topo *t, const char *a, const char *b)
{
	int na = topo_node_find(t, a);
	int nb = topo_node_find(t, b);
	int best = -ENOENT;

	if (na < 0 || nb < 0)
		return -ENOENT;
	/* Lowest link index between the two, in either direction. */
	for (unsigned i = t->adj_start[na]; i < t->adj_start[na + 1]; i++) {
		const struct topo_adj *e = &t->adj[i];

		if (e->peer == (unsigned)nb && (best < 0 || e->link < (unsigned)best))
			best = (int)e->link;
	}
	return best;
}

/* ---- routing ---- */

enum { DJ_UNSEEN, DJ_QUEUED, DJ_DONE };

struct dj {
	uint64_t lat;
	unsigned hops;
	unsigned pred;	/* previous node; src for src */
	unsigned plink; /* link from pred */
	unsigned hpos;	/* position in the heap while queued */
	unsigned char state;
};

struct heap {
	unsigned *v;
	unsigned n;
	struct dj *d;
};

static bool dj_less(const struct dj *d, unsigned a, unsigned b)
{
	if (d[a].lat != d[b].lat)
		return d[a].lat < d[b].lat;
	if (d[a].hops != d[b].hops)
		return d[a].hops < d[b].hops;
	return a < b;
}

static void heap_place(struct heap *h, unsigned i, unsigned node)
{
	h->v[i] = node;
	h->d[node].hpos = i;
}

static void heap_up(struct heap *h, unsigned i)
{
	unsigned node = h->v[i];

	while (i > 0) {
		unsigned parent = (i - 1) / 2;

		if (!dj_less(h->d, node, h->v[parent]))
			break;
		heap_place(h, i, h->v[parent]);
		i = parent;
	}
	heap_place(h, i, node);
}

static void heap_down(struct heap *h, unsigned i)
{
	unsigned node = h->v[i];

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && dj_less(h->d, h->v[c + 1], h->v[c]))
			c++;
		if (!dj_less(h->d, h->v[c], node))
			break;
		heap_place(h, i, h->v[c]);
		i = c;
	}
	heap_place(h, i, node);
}

static void heap_push(struct heap *h, unsigned node)
{
	h->n++;
	heap_place(h, h->n - 1, node);
	heap_up(h, h->n - 1);
}

static unsigned heap_pop(struct heap *h)
{
	unsigned top = h->v[0];

	h->n--;
	if (h->n > 0) {
		heap_place(h, 0, h->v[h->n]);
		heap_down(h, 0);
	}
	return top;
}

/*
 * Is the settled path to @a lexicographically smaller than the settled
 * path to @b?  Both have the same number of hops, so walk the two chains
 * back together until they meet; the last pair that differed is the
 * first position (from the source) where the sequences differ.
 */
static bool path_less(const struct topo *t, const struct dj *d, unsigned a,
		      unsigned b)
{
	unsigned fa = a, fb = b;

	while (a != b) {
		fa = a;
		fb = b;
		a = d[a].pred;
		b = d[b].pred;
	}
	return strcmp(t->nodes[fa].name, t->nodes[fb].name) < 0;
}

static void relax(const struct topo *t, struct heap *h, unsigned u,
		  const struct topo_adj *e)
{
	struct dj *d = h->d;
	unsigned v = e->peer;
	const struct topo_link *l = &t->links[e->link];
	uint64_t lat;
	unsigned hops;

	if (!l->up || !t->nodes[v].up || d[v].state == DJ_DONE)
		return;
	lat = sat_add(d[u].lat, sat_add(l->latency_ns, t->nodes[v].enter_ns));
	hops = d[u].hops + 1;

	if (d[v].state == DJ_UNSEEN) {
		d[v] = (struct dj){ lat, hops, u, e->link, 0, DJ_QUEUED };
		heap_push(h, v);
		return;
	}
	if (lat < d[v].lat || (lat == d[v].lat && hops < d[v].hops)) {
		d[v].lat = lat;
		d[v].hops = hops;
		d[v].pred = u;
		d[v].plink = e->link;
		heap_up(h, d[v].hpos);
		return;
	}
	if (lat != d[v].lat || hops != d[v].hops)
		return;
	/* A tie: same latency, same hops.  Smaller name sequence wins. */
	if (u == d[v].pred) {
		if (e->link < d[v].plink)
			d[v].plink = e->link;
	} else if (path_less(t, d, u, d[v].pred)) {
		d[v].pred = u;
		d[v].plink = e->link;
	}
}

static void dijkstra(const struct topo *t, struct heap *h, unsigned src,
		     unsigned dst)
{
	struct dj *d = h->d;

	d[src] = (struct dj){ 0, 0, src, 0, 0, DJ_QUEUED };
	heap_push(h, src);
	while (h->n > 0) {
		unsigned u = heap_pop(h);

		d[u].state = DJ_DONE;
		if (u == dst)
			return;
		for (unsigned i = t->adj_start[u]; i < t->adj_start[u + 1]; i++)
			relax(t, h, u, &t->adj[i]);
	}
}

/* Could @src reach @dst if every node and link were up?  (Reuses @h.) */
static bool connected_ignoring_state(const struct topo *t, struct heap *h,
				     unsigned src, unsigned dst)
{
	unsigned head = 0, tail = 0;

	for (unsigned i = 0; i < t->nnodes; i++)
		h->d[i].state = DJ_UNSEEN;
	h->v[tail++] = src;
	h->d[src].state = DJ_DONE;
	while (head < tail) {
		unsigned u = h->v[head++];

		if (u == dst)
			return true;
		for (unsigned i = t->adj_start[u]; i < t->adj_start[u + 1]; i++) {
			unsigned v = t->adj[i].peer;

			if (h->d[v].state == DJ_UNSEEN) {
				h->d[v].state = DJ_DONE;
				h->v[tail++] = v;
			}
		}
	}
	return false;
}

static int no_route(const struct topo *t, struct heap *h, unsigned src,
		    unsigned dst, char *reason)
{
	const char *what = "an offline host or link";

	if (!connected_ignoring_state(t, h, src, dst))
		return reason_set(reason, -EHOSTDOWN,
				  "no route from %s to %s: no links connect them",
				  t->nodes[src].name, t->nodes[dst].name);
	for (unsigned i = 0; i < t->nnodes; i++) {
		if (t->nodes[i].is_switch && !t->nodes[i].up) {
			what = "an offline host, switch or link";
			break;
		}
	}
	return reason_set(reason, -EHOSTDOWN, "no route from %s to %s: every path crosses %s",
			  t->nodes[src].name, t->nodes[dst].name, what);
}

int topo_route(const struct topo *t, unsigned src, unsigned dst,
	       struct route *out, char *reason)
{
	struct dj *d _cleanup_free_ = NULL;
	unsigned *hv _cleanup_free_ = NULL;
	struct heap h;
	unsigned nhops, v;

	if (!t || !out)
		return reason_set(reason, -EINVAL, "no fabric graph");
	if (src >= t->nnodes || dst >= t->nnodes)
		return reason_set(reason, -EINVAL, "no fabric node with index %u",
				  src >= t->nnodes ? src : dst);
	if (!t->nodes[src].up)
		return reason_set(reason, -EHOSTDOWN, "%s %s is offline",
				  node_kind(t, src), t->nodes[src].name);
	if (!t->nodes[dst].up)
		return reason_set(reason, -EHOSTDOWN, "%s %s is offline",
				  node_kind(t, dst), t->nodes[dst].name);

	memset(out, 0, sizeof(*out));
	out->src = src;
	out->dst = dst;
	if (src == dst)
		return 0;

	d = calloc(t->nnodes, sizeof(*d));
	hv = calloc(t->nnodes, sizeof(*hv));
	if (!d || !hv)
		return reason_set(reason, -ENOMEM, "out of memory routing %s to %s",
				  t->nodes[src].name, t->nodes[dst].name);
	h = (struct heap){ hv, 0, d };

	dijkstra(t, &h, src, dst);
	if (d[dst].state != DJ_DONE)
		return no_route(t, &h, src, dst, reason);

	nhops = d[dst].hops;
	if (nhops > ROUTE_MAX_HOPS)
		return reason_set(reason, -E2BIG,
				  "route from %s to %s needs %u hops, more than %u",
				  t->nodes[src].name, t->nodes[dst].name, nhops,
				  ROUTE_MAX_HOPS);

	v = dst;
	for (unsigned i = nhops; i-- > 0;) {
		const struct topo_node *n = &t->nodes[v];
		struct route_hop *hop = &out->hops[i];

		hop->node = v;
		hop->link = d[v].plink;
		hop->crossing = !n->is_switch;
		hop->latency_ns = sat_add(t->links[d[v].plink].latency_ns, n->enter_ns);
		v = d[v].pred;
	}
	out->nhops = nhops;
	for (unsigned i = 0; i < nhops; i++) {
		out->latency_ns = sat_add(out->latency_ns, out->hops[i].latency_ns);
		out->crossings += out->hops[i].crossing;
	}
	return 0;
}

bool topo_route_intact(const struct topo *t, const struct route *r)
{
	unsigned prev;

	if (!t || !r || r->src >= t->nnodes || r->dst >= t->nnodes ||
	    r->nhops > ROUTE_MAX_HOPS)
		return false;
	if (!t->nodes[r->src].up)
		return false;
	prev = r->src;
	for (unsigned i = 0; i < r->nhops; i++) {
		const struct route_hop *hop = &r->hops[i];
		const struct topo_link *l;

		if (hop->node >= t->nnodes || hop->link >= t->nlinks)
			return false;
		l = &t->links[hop->link];
		if (!((l->a == prev && l->b == hop->node) ||
		      (l->b == prev && l->a == hop->node)))
			return false;
		if (!l->up || !t->nodes[hop->node].up)
			return false;
		prev = hop->node;
	}
	return prev == r->dst;
}
