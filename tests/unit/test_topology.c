// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_topology.c - the fabric graph and its routes.
 *
 * Configs are built by hand (no parser): cfg_new() sizes the arrays,
 * add_host() / add_switch() / add_link() fill them, cfg_del() frees them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "topology.h"

#define XING 360 /* crossing cost used by most tests */

static struct cluster_config *cfg_new(unsigned hosts, unsigned switches,
				      unsigned links)
{
	struct cluster_config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	cfg->hosts = calloc(hosts + 1, sizeof(*cfg->hosts));
	cfg->switches = calloc(switches + 1, sizeof(*cfg->switches));
	cfg->links = calloc(links + 1, sizeof(*cfg->links));
	assert_non_null(cfg->hosts);
	assert_non_null(cfg->switches);
	assert_non_null(cfg->links);
	return cfg;
}

static void cfg_del(struct cluster_config *cfg)
{
	free(cfg->hosts);
	free(cfg->switches);
	free(cfg->links);
	free(cfg);
}

static void add_host(struct cluster_config *cfg, const char *name)
{
	struct cfg_host *h = &cfg->hosts[cfg->nhosts++];

	snprintf(h->name, sizeof(h->name), "%s", name);
	snprintf(h->adapter, sizeof(h->adapter), "ntb0");
	h->lut_entries = DEFAULT_LUT_ENTRIES;
	h->window_max = DEFAULT_WINDOW_MAX;
	h->window_align = DEFAULT_WINDOW_ALIGN;
	h->dma_windows = DEFAULT_DMA_WINDOWS;
}

static void add_switch(struct cluster_config *cfg, const char *name,
		       uint64_t latency_ns)
{
	struct cfg_switch *s = &cfg->switches[cfg->nswitches++];

	snprintf(s->name, sizeof(s->name), "%s", name);
	s->latency_ns = latency_ns;
}

static void add_link(struct cluster_config *cfg, const char *a, const char *b,
		     uint64_t latency_ns)
{
	struct cfg_link *l = &cfg->links[cfg->nlinks++];

	snprintf(l->a, sizeof(l->a), "%s", a);
	snprintf(l->b, sizeof(l->b), "%s", b);
	l->latency_ns = latency_ns;
	l->bandwidth = 8000;
}

static struct topo *topo_make(const struct cluster_config *cfg, uint64_t xing)
{
	char reason[REASON_MAX] = "";
	struct topo *t = NULL;

	assert_int_equal(topo_new(cfg, xing, &t, reason), 0);
	assert_non_null(t);
	return t;
}

static unsigned node(const struct topo *t, const char *name)
{
	int n = topo_node_find(t, name);

	assert_true(n >= 0);
	return (unsigned)n;
}

static void route_ok(const struct topo *t, const char *a, const char *b,
		     struct route *r)
{
	char reason[REASON_MAX] = "";
	int ret = topo_route(t, node(t, a), node(t, b), r, reason);

	if (ret != 0)
		fail_msg("route %s -> %s: %d %s", a, b, ret, reason);
}

/* "A B C" for a route from A to C over B. */
static const char *route_str(const struct topo *t, const struct route *r)
{
	static char buf[4096];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "%s", topo_node_name(t, r->src));
	for (unsigned i = 0; i < r->nhops && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s",
				      topo_node_name(t, r->hops[i].node));
	return buf;
}

/* Every structural property a route must have, whatever the graph. */
static void check_route_shape(const struct topo *t, const struct route *r)
{
	unsigned prev = r->src, crossings = 0;
	uint64_t sum = 0;

	for (unsigned i = 0; i < r->nhops; i++) {
		const struct route_hop *h = &r->hops[i];
		unsigned a, b;
		uint64_t lat;

		assert_int_equal(topo_link_get(t, h->link, &a, &b, &lat, NULL), 0);
		assert_true((a == prev && b == h->node) || (b == prev && a == h->node));
		assert_int_equal(h->crossing, !topo_node_is_switch(t, h->node));
		assert_true(h->latency_ns >= lat);
		sum += h->latency_ns;
		crossings += h->crossing;
		prev = h->node;
	}
	assert_int_equal(prev, r->dst);
	assert_int_equal(sum, r->latency_ns);
	assert_int_equal(crossings, r->crossings);
	assert_true(topo_route_intact(t, r));
}

/* ---- building the graph ---- */

static void test_build_and_lookup(void **state)
{
	struct cluster_config *cfg = cfg_new(3, 1, 3);
	struct topo *t;
	unsigned a, b;
	uint64_t lat, bw;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_host(cfg, "nodeC");
	add_switch(cfg, "sw0", 50);
	add_link(cfg, "nodeA", "nodeB", 100);
	add_link(cfg, "nodeB", "sw0", 200);
	add_link(cfg, "sw0", "nodeC", 300);
	t = topo_make(cfg, XING);

	assert_int_equal(topo_node_count(t), 4);
	assert_int_equal(topo_link_count(t), 3);
	/* Hosts first in config order, then switches. */
	assert_int_equal(topo_node_find(t, "nodeA"), 0);
	assert_int_equal(topo_node_find(t, "nodeC"), 2);
	assert_int_equal(topo_node_find(t, "sw0"), 3);
	assert_int_equal(topo_node_find(t, "nodeD"), -ENOENT);
	assert_int_equal(topo_node_find(t, ""), -ENOENT);
	assert_string_equal(topo_node_name(t, 1), "nodeB");
	assert_null(topo_node_name(t, 4));
	assert_true(topo_node_is_switch(t, 3));
	assert_false(topo_node_is_switch(t, 0));
	assert_true(topo_node_up(t, 0));
	assert_false(topo_node_up(t, 99));

	assert_int_equal(topo_link_find(t, "nodeA", "nodeB"), 0);
	assert_int_equal(topo_link_find(t, "nodeB", "nodeA"), 0);
	assert_int_equal(topo_link_find(t, "nodeC", "sw0"), 2);
	assert_int_equal(topo_link_find(t, "nodeA", "nodeC"), -ENOENT);
	assert_int_equal(topo_link_find(t, "nodeA", "nope"), -ENOENT);

	assert_int_equal(topo_link_get(t, 1, &a, &b, &lat, &bw), 0);
	assert_int_equal(a, 1);
	assert_int_equal(b, 3);
	assert_int_equal(lat, 200);
	assert_int_equal(bw, 8000);
	assert_int_equal(topo_link_get(t, 1, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(topo_link_get(t, 3, &a, &b, &lat, &bw), -EINVAL);

	assert_true(topo_link_up(t, 2));
	assert_false(topo_link_up(t, 3));
	assert_int_equal(topo_link_set_up(t, 2, false), 0);
	assert_false(topo_link_up(t, 2));
	assert_int_equal(topo_link_set_up(t, 3, false), -EINVAL);
	assert_int_equal(topo_node_set_up(t, 1, false), 0);
	assert_false(topo_node_up(t, 1));
	assert_int_equal(topo_node_set_up(t, 4, false), -EINVAL);

	topo_free(t);
	cfg_del(cfg);
}

static void test_build_errors(void **state)
{
	char reason[REASON_MAX];
	struct cluster_config *cfg;
	struct topo *t = NULL;

	/* A link to a node nobody declared. */
	cfg = cfg_new(2, 0, 1);
	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_link(cfg, "nodeA", "nodeX", 100);
	assert_int_equal(topo_new(cfg, XING, &t, reason), -EINVAL);
	assert_string_equal(reason, "link nodeA - nodeX: no host or switch named nodeX");
	assert_null(t);
	cfg_del(cfg);

	/* A switch with a host's name. */
	cfg = cfg_new(2, 1, 0);
	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_switch(cfg, "nodeB", 10);
	assert_int_equal(topo_new(cfg, XING, &t, reason), -EINVAL);
	assert_non_null(strstr(reason, "nodeB"));
	assert_non_null(strstr(reason, "also used"));
	assert_null(t);
	cfg_del(cfg);

	/* A link from a node to itself. */
	cfg = cfg_new(1, 0, 1);
	add_host(cfg, "nodeA");
	add_link(cfg, "nodeA", "nodeA", 100);
	assert_int_equal(topo_new(cfg, XING, &t, reason), -EINVAL);
	assert_string_equal(reason, "link nodeA - nodeA connects nodeA to itself");
	cfg_del(cfg);

	/* A name the rest of the tree could not carry. */
	cfg = cfg_new(1, 0, 0);
	add_host(cfg, "node.A");
	assert_int_equal(topo_new(cfg, XING, &t, reason), -EINVAL);
	assert_non_null(strstr(reason, "invalid host name"));
	cfg_del(cfg);

	assert_int_equal(topo_new(NULL, XING, &t, NULL), -EINVAL);

	/* An empty cluster is a valid (if useless) graph. */
	cfg = cfg_new(0, 0, 0);
	t = topo_make(cfg, XING);
	assert_int_equal(topo_node_count(t), 0);
	assert_int_equal(topo_route(t, 0, 0, &(struct route){ 0 }, reason), -EINVAL);
	topo_free(t);
	cfg_del(cfg);
	topo_free(NULL);
}

/* ---- routes ---- */

static void test_line(void **state)
{
	struct cluster_config *cfg = cfg_new(3, 0, 2);
	struct route r, back;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_host(cfg, "nodeC");
	add_link(cfg, "nodeA", "nodeB", 100);
	add_link(cfg, "nodeB", "nodeC", 200);
	t = topo_make(cfg, XING);

	route_ok(t, "nodeA", "nodeC", &r);
	assert_int_equal(r.src, 0);
	assert_int_equal(r.dst, 2);
	assert_int_equal(r.nhops, 2);
	assert_int_equal(r.hops[0].node, 1);
	assert_int_equal(r.hops[0].link, 0);
	assert_int_equal(r.hops[0].latency_ns, 100 + XING);
	assert_true(r.hops[0].crossing);
	assert_int_equal(r.hops[1].node, 2);
	assert_int_equal(r.hops[1].link, 1);
	assert_int_equal(r.hops[1].latency_ns, 200 + XING);
	assert_true(r.hops[1].crossing);
	assert_int_equal(r.latency_ns, 300 + 2 * XING);
	assert_int_equal(r.crossings, 2);
	check_route_shape(t, &r);

	/* The way back is the mirror image with the same cost. */
	route_ok(t, "nodeC", "nodeA", &back);
	assert_string_equal(route_str(t, &back), "nodeC nodeB nodeA");
	assert_int_equal(back.latency_ns, r.latency_ns);
	check_route_shape(t, &back);

	/* One hop: one link, one crossing. */
	route_ok(t, "nodeA", "nodeB", &r);
	assert_int_equal(r.nhops, 1);
	assert_int_equal(r.latency_ns, 100 + XING);
	assert_int_equal(r.crossings, 1);

	topo_free(t);
	cfg_del(cfg);
}

static void test_ring_crossing_cost_decides(void **state)
{
	struct cluster_config *cfg = cfg_new(4, 0, 4);
	struct route r;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_host(cfg, "nodeC");
	add_host(cfg, "nodeD");
	add_link(cfg, "nodeA", "nodeB", 100);
	add_link(cfg, "nodeB", "nodeC", 100);
	add_link(cfg, "nodeC", "nodeD", 100);
	add_link(cfg, "nodeD", "nodeA", 500);

	/* With crossings costing 360 ns the slow direct link wins... */
	t = topo_make(cfg, XING);
	route_ok(t, "nodeA", "nodeD", &r);
	assert_string_equal(route_str(t, &r), "nodeA nodeD");
	assert_int_equal(r.latency_ns, 500 + XING);
	assert_int_equal(r.hops[0].link, 3);
	/* ...and the other way round the ring both ways for B -> D. */
	route_ok(t, "nodeB", "nodeD", &r);
	assert_string_equal(route_str(t, &r), "nodeB nodeC nodeD");
	assert_int_equal(r.latency_ns, 200 + 2 * XING);
	topo_free(t);

	/* ...but free crossings make three fast links cheaper. */
	t = topo_make(cfg, 0);
	route_ok(t, "nodeA", "nodeD", &r);
	assert_string_equal(route_str(t, &r), "nodeA nodeB nodeC nodeD");
	assert_int_equal(r.latency_ns, 300);
	assert_int_equal(r.crossings, 3);
	check_route_shape(t, &r);
	topo_free(t);

	cfg_del(cfg);
}

static void test_star_through_switch(void **state)
{
	struct cluster_config *cfg = cfg_new(3, 1, 3);
	struct route r;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_host(cfg, "nodeC");
	add_switch(cfg, "sw0", 50);
	add_link(cfg, "nodeA", "sw0", 100);
	add_link(cfg, "nodeB", "sw0", 110);
	add_link(cfg, "nodeC", "sw0", 120);
	t = topo_make(cfg, XING);

	route_ok(t, "nodeA", "nodeC", &r);
	assert_string_equal(route_str(t, &r), "nodeA sw0 nodeC");
	/* Entering the switch costs link + switch latency, no crossing. */
	assert_false(r.hops[0].crossing);
	assert_int_equal(r.hops[0].latency_ns, 100 + 50);
	assert_true(r.hops[1].crossing);
	assert_int_equal(r.hops[1].latency_ns, 120 + XING);
	assert_int_equal(r.latency_ns, 100 + 50 + 120 + XING);
	assert_int_equal(r.crossings, 1);
	check_route_shape(t, &r);

	/* A host can route to the switch itself. */
	route_ok(t, "nodeB", "sw0", &r);
	assert_int_equal(r.nhops, 1);
	assert_int_equal(r.latency_ns, 110 + 50);
	assert_int_equal(r.crossings, 0);

	/* A switch that is down cuts every host off from the others. */
	char reason[REASON_MAX];

	assert_int_equal(topo_node_set_up(t, node(t, "sw0"), false), 0);
	assert_int_equal(topo_route(t, 0, 2, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "no route from nodeA to nodeC: every path crosses "
				    "an offline host, switch or link");
	assert_int_equal(topo_route(t, 0, node(t, "sw0"), &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "switch sw0 is offline");

	topo_free(t);
	cfg_del(cfg);
}

static void test_switch_latency_vs_intermediate_host(void **state)
{
	/*
	 * nodeA - nodeB - nodeC (100 + 100 ns links, two crossings)
	 * nodeA - sw0 - nodeC   (100 + 100 ns links, one crossing + switch)
	 */
	struct cluster_config *cfg = cfg_new(3, 1, 4);
	struct route r;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_host(cfg, "nodeC");
	add_switch(cfg, "sw0", 1000);
	add_link(cfg, "nodeA", "nodeB", 100);
	add_link(cfg, "nodeB", "nodeC", 100);
	add_link(cfg, "nodeA", "sw0", 100);
	add_link(cfg, "sw0", "nodeC", 100);

	/* A slow switch (1000 ns) loses to an extra NTB crossing (360). */
	t = topo_make(cfg, XING);
	route_ok(t, "nodeA", "nodeC", &r);
	assert_string_equal(route_str(t, &r), "nodeA nodeB nodeC");
	assert_int_equal(r.latency_ns, 200 + 2 * XING);
	assert_int_equal(r.crossings, 2);
	check_route_shape(t, &r);
	topo_free(t);

	/* A fast one (50 ns) wins. */
	cfg->switches[0].latency_ns = 50;
	t = topo_make(cfg, XING);
	route_ok(t, "nodeA", "nodeC", &r);
	assert_string_equal(route_str(t, &r), "nodeA sw0 nodeC");
	assert_int_equal(r.latency_ns, 200 + 50 + XING);
	assert_int_equal(r.crossings, 1);
	check_route_shape(t, &r);
	topo_free(t);

	cfg_del(cfg);
}

static void test_route_to_self(void **state)
{
	struct cluster_config *cfg = cfg_new(2, 0, 1);
	char reason[REASON_MAX];
	struct route r;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_link(cfg, "nodeA", "nodeB", 100);
	t = topo_make(cfg, XING);

	memset(&r, 0xff, sizeof(r));
	route_ok(t, "nodeB", "nodeB", &r);
	assert_int_equal(r.src, 1);
	assert_int_equal(r.dst, 1);
	assert_int_equal(r.nhops, 0);
	assert_int_equal(r.latency_ns, 0);
	assert_int_equal(r.crossings, 0);
	assert_true(topo_route_intact(t, &r));

	assert_int_equal(topo_node_set_up(t, 1, false), 0);
	assert_false(topo_route_intact(t, &r));
	assert_int_equal(topo_route(t, 1, 1, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "host nodeB is offline");

	topo_free(t);
	cfg_del(cfg);
}

/* Two equal diamonds; config order puts the lexically larger name first. */
static struct cluster_config *diamond_cfg(void)
{
	struct cluster_config *cfg = cfg_new(4, 0, 4);

	add_host(cfg, "src");
	add_host(cfg, "zeta");
	add_host(cfg, "alpha");
	add_host(cfg, "dst");
	add_link(cfg, "src", "zeta", 100);
	add_link(cfg, "zeta", "dst", 100);
	add_link(cfg, "src", "alpha", 100);
	add_link(cfg, "alpha", "dst", 100);
	return cfg;
}

static void test_tie_smaller_names(void **state)
{
	struct cluster_config *cfg = diamond_cfg();
	struct route r1, r2;
	struct topo *t = topo_make(cfg, XING);

	route_ok(t, "src", "dst", &r1);
	assert_string_equal(route_str(t, &r1), "src alpha dst");
	route_ok(t, "src", "dst", &r2);
	assert_memory_equal(&r1, &r2, sizeof(r1));
	/* The reverse direction picks alpha too: same names, same rule. */
	route_ok(t, "dst", "src", &r2);
	assert_string_equal(route_str(t, &r2), "dst alpha src");
	topo_free(t);

	/* Reversing the config's order does not change the choice. */
	struct cfg_link tmp = cfg->links[0];

	cfg->links[0] = cfg->links[3];
	cfg->links[3] = tmp;
	tmp = cfg->links[1];
	cfg->links[1] = cfg->links[2];
	cfg->links[2] = tmp;
	struct cfg_host th = cfg->hosts[1];

	cfg->hosts[1] = cfg->hosts[2];
	cfg->hosts[2] = th;
	t = topo_make(cfg, XING);
	route_ok(t, "src", "dst", &r1);
	assert_string_equal(route_str(t, &r1), "src alpha dst");
	topo_free(t);
	cfg_del(cfg);
}

static void test_tie_fewer_hops(void **state)
{
	/*
	 * With free crossings, src-a-dst (100 + 100) and src-dst (200) cost
	 * the same: the single hop wins even though "a" < "dst".
	 */
	struct cluster_config *cfg = cfg_new(3, 0, 3);
	struct route r;
	struct topo *t;

	add_host(cfg, "src");
	add_host(cfg, "a");
	add_host(cfg, "dst");
	add_link(cfg, "src", "a", 100);
	add_link(cfg, "a", "dst", 100);
	add_link(cfg, "src", "dst", 200);
	t = topo_make(cfg, 0);
	route_ok(t, "src", "dst", &r);
	assert_string_equal(route_str(t, &r), "src dst");
	assert_int_equal(r.latency_ns, 200);
	topo_free(t);
	cfg_del(cfg);

	/*
	 * The same when the longer route reaches dst first: src-a-b-dst
	 * (10 + 10 + 180) is found before src-c-dst (150 + 50).
	 */
	cfg = cfg_new(5, 0, 5);
	add_host(cfg, "src");
	add_host(cfg, "a");
	add_host(cfg, "b");
	add_host(cfg, "c");
	add_host(cfg, "dst");
	add_link(cfg, "src", "a", 10);
	add_link(cfg, "a", "b", 10);
	add_link(cfg, "b", "dst", 180);
	add_link(cfg, "src", "c", 150);
	add_link(cfg, "c", "dst", 50);
	t = topo_make(cfg, 0);
	route_ok(t, "src", "dst", &r);
	assert_string_equal(route_str(t, &r), "src c dst");
	assert_int_equal(r.latency_ns, 200);
	topo_free(t);
	cfg_del(cfg);
}

static void test_zero_cost_links(void **state)
{
	/*
	 * Everything free: only the hop count and names decide.  dst is
	 * declared early so a heap that ignored hops would settle it over the
	 * three-hop src-x-y-dst before seeing src-z-dst.
	 */
	struct cluster_config *cfg = cfg_new(5, 0, 5);
	struct route r;
	struct topo *t;

	add_host(cfg, "src");
	add_host(cfg, "dst");
	add_host(cfg, "x");
	add_host(cfg, "y");
	add_host(cfg, "z");
	add_link(cfg, "src", "x", 0);
	add_link(cfg, "x", "y", 0);
	add_link(cfg, "y", "dst", 0);
	add_link(cfg, "src", "z", 0);
	add_link(cfg, "z", "dst", 0);
	t = topo_make(cfg, 0);
	route_ok(t, "src", "dst", &r);
	assert_string_equal(route_str(t, &r), "src z dst");
	assert_int_equal(r.latency_ns, 0);
	assert_int_equal(r.crossings, 2);
	topo_free(t);
	cfg_del(cfg);
}

static void test_tie_first_difference_decides(void **state)
{
	/*
	 * src-m-z-dst and src-n-a-dst cost the same.  The sequences first
	 * differ at m/n, so the m route wins although its later "z" is larger
	 * than "a".
	 */
	struct cluster_config *cfg = cfg_new(6, 0, 6);
	struct route r;
	struct topo *t;

	add_host(cfg, "src");
	add_host(cfg, "n");
	add_host(cfg, "a");
	add_host(cfg, "m");
	add_host(cfg, "z");
	add_host(cfg, "dst");
	add_link(cfg, "src", "n", 10);
	add_link(cfg, "n", "a", 10);
	add_link(cfg, "a", "dst", 10);
	add_link(cfg, "src", "m", 10);
	add_link(cfg, "m", "z", 10);
	add_link(cfg, "z", "dst", 10);
	t = topo_make(cfg, XING);
	route_ok(t, "src", "dst", &r);
	assert_string_equal(route_str(t, &r), "src m z dst");
	route_ok(t, "dst", "src", &r);
	assert_string_equal(route_str(t, &r), "dst a n src");
	topo_free(t);
	cfg_del(cfg);
}

static void test_parallel_links(void **state)
{
	struct cluster_config *cfg = cfg_new(2, 0, 3);
	struct route r;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_link(cfg, "nodeA", "nodeB", 300);
	add_link(cfg, "nodeB", "nodeA", 100);
	add_link(cfg, "nodeA", "nodeB", 100);
	t = topo_make(cfg, XING);

	/* The faster link; between equal ones, the first declared. */
	route_ok(t, "nodeA", "nodeB", &r);
	assert_int_equal(r.hops[0].link, 1);
	assert_int_equal(r.latency_ns, 100 + XING);
	assert_int_equal(topo_link_find(t, "nodeA", "nodeB"), 0);

	assert_int_equal(topo_link_set_up(t, 1, false), 0);
	assert_false(topo_route_intact(t, &r));
	route_ok(t, "nodeA", "nodeB", &r);
	assert_int_equal(r.hops[0].link, 2);
	assert_int_equal(topo_link_set_up(t, 2, false), 0);
	route_ok(t, "nodeA", "nodeB", &r);
	assert_int_equal(r.hops[0].link, 0);
	assert_int_equal(r.latency_ns, 300 + XING);
	topo_free(t);
	cfg_del(cfg);
}

static void test_host_down_reroutes(void **state)
{
	struct cluster_config *cfg = diamond_cfg();
	struct topo *t = topo_make(cfg, XING);
	unsigned alpha = node(t, "alpha");
	struct route r, old;

	route_ok(t, "src", "dst", &old);
	assert_string_equal(route_str(t, &old), "src alpha dst");
	assert_true(topo_route_intact(t, &old));

	assert_int_equal(topo_node_set_up(t, alpha, false), 0);
	assert_false(topo_route_intact(t, &old));
	route_ok(t, "src", "dst", &r);
	assert_string_equal(route_str(t, &r), "src zeta dst");
	assert_int_equal(r.latency_ns, old.latency_ns);
	check_route_shape(t, &r);

	/* Back up: the old route is whole again and preferred again. */
	assert_int_equal(topo_node_set_up(t, alpha, true), 0);
	assert_true(topo_route_intact(t, &old));
	route_ok(t, "src", "dst", &r);
	assert_memory_equal(&r, &old, sizeof(r));

	/* A link down reroutes the same way. */
	assert_int_equal(topo_link_set_up(t, topo_link_find(t, "alpha", "dst"), false), 0);
	assert_false(topo_route_intact(t, &old));
	route_ok(t, "src", "dst", &r);
	assert_string_equal(route_str(t, &r), "src zeta dst");

	topo_free(t);
	cfg_del(cfg);
}

static void test_no_route(void **state)
{
	struct cluster_config *cfg = cfg_new(5, 0, 3);
	char reason[REASON_MAX];
	struct route r;
	struct topo *t;

	add_host(cfg, "nodeA");
	add_host(cfg, "nodeB");
	add_host(cfg, "nodeC");
	add_host(cfg, "nodeD");
	add_host(cfg, "nodeE"); /* no links at all */
	add_link(cfg, "nodeA", "nodeB", 100);
	add_link(cfg, "nodeB", "nodeC", 100);
	add_link(cfg, "nodeC", "nodeD", 100);
	t = topo_make(cfg, XING);

	assert_int_equal(topo_node_set_up(t, node(t, "nodeC"), false), 0);
	assert_int_equal(topo_route(t, 0, 3, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "no route from nodeA to nodeD: every path crosses "
				    "an offline host or link");
	assert_int_equal(topo_route(t, 0, 2, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "host nodeC is offline");
	assert_int_equal(topo_route(t, 2, 0, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "host nodeC is offline");
	/* The part still connected keeps working. */
	route_ok(t, "nodeA", "nodeB", &r);

	assert_int_equal(topo_node_set_up(t, node(t, "nodeC"), true), 0);
	route_ok(t, "nodeA", "nodeD", &r);
	assert_int_equal(topo_link_set_up(t, 1, false), 0);
	assert_int_equal(topo_route(t, 0, 3, &r, NULL), -EHOSTDOWN);
	assert_int_equal(topo_route(t, 3, 0, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "no route from nodeD to nodeA: every path crosses "
				    "an offline host or link");

	assert_int_equal(topo_route(t, 0, 4, &r, reason), -EHOSTDOWN);
	assert_string_equal(reason, "no route from nodeA to nodeE: no links connect them");

	assert_int_equal(topo_route(t, 0, 5, &r, reason), -EINVAL);
	assert_int_equal(topo_route(t, 7, 0, &r, reason), -EINVAL);
	topo_free(t);
	cfg_del(cfg);
}

static void test_route_intact_rejects_nonsense(void **state)
{
	struct cluster_config *cfg = diamond_cfg();
	struct topo *t = topo_make(cfg, XING);
	struct route r, bad;

	route_ok(t, "src", "dst", &r);
	assert_true(topo_route_intact(t, &r));

	bad = r;
	bad.hops[0].link = topo_link_find(t, "zeta", "dst"); /* not at src */
	assert_false(topo_route_intact(t, &bad));
	bad = r;
	bad.dst = node(t, "zeta");
	assert_false(topo_route_intact(t, &bad));
	bad = r;
	bad.hops[1].node = 99;
	assert_false(topo_route_intact(t, &bad));
	bad = r;
	bad.nhops = ROUTE_MAX_HOPS + 1;
	assert_false(topo_route_intact(t, &bad));
	assert_false(topo_route_intact(t, NULL));
	topo_free(t);
	cfg_del(cfg);
}

/* ---- scale ---- */

static struct cluster_config *chain_cfg(unsigned n)
{
	struct cluster_config *cfg = cfg_new(n, 0, n);
	char a[32], b[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "n%04u", i);
		add_host(cfg, a);
	}
	for (unsigned i = 0; i + 1 < n; i++) {
		snprintf(a, sizeof(a), "n%04u", i);
		snprintf(b, sizeof(b), "n%04u", i + 1);
		add_link(cfg, a, b, 10 + i % 7);
	}
	return cfg;
}

static void test_chain_1000(void **state)
{
	struct cluster_config *cfg = chain_cfg(1000);
	char reason[REASON_MAX];
	struct topo *t = topo_make(cfg, XING);
	struct route r;
	uint64_t want = 0;

	assert_int_equal(topo_node_count(t), 1000);
	assert_int_equal(topo_node_find(t, "n0777"), 777);

	/* Every route along the chain up to the hop limit, from both ends. */
	for (unsigned d = 1; d <= ROUTE_MAX_HOPS; d++) {
		want += 10 + (d - 1) % 7 + XING;
		assert_int_equal(topo_route(t, 0, d, &r, reason), 0);
		assert_int_equal(r.nhops, d);
		assert_int_equal(r.latency_ns, want);
		assert_int_equal(r.crossings, d);
		check_route_shape(t, &r);
		assert_int_equal(topo_route(t, 999, 999 - d, &r, reason), 0);
		assert_int_equal(r.nhops, d);
		check_route_shape(t, &r);
	}
	assert_int_equal(topo_route(t, 0, ROUTE_MAX_HOPS + 1, &r, reason), -E2BIG);
	assert_string_equal(reason, "route from n0000 to n0033 needs 33 hops, more than 32");
	assert_int_equal(topo_route(t, 0, 999, &r, reason), -E2BIG);
	assert_string_equal(reason, "route from n0000 to n0999 needs 999 hops, more than 32");

	/* A break in the middle of a long chain is found, not looped on. */
	assert_int_equal(topo_node_set_up(t, 500, false), 0);
	assert_int_equal(topo_route(t, 0, 999, &r, reason), -EHOSTDOWN);
	assert_int_equal(topo_route(t, 480, 510, &r, reason), -EHOSTDOWN);
	assert_int_equal(topo_route(t, 501, 520, &r, reason), 0);

	topo_free(t);
	cfg_del(cfg);
}

static uint64_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/*
 * 1200 hosts and 32 switches, every host on a switch, plus random
 * host-host links.  Routes are checked against a plain O(V^2) Dijkstra
 * over (latency, hops).
 */
static void reference_dijkstra(const struct topo *t, unsigned src,
			       uint64_t *lat, unsigned *hops, uint64_t xing)
{
	unsigned n = topo_node_count(t), m = topo_link_count(t);
	bool *done = calloc(n, sizeof(*done));

	assert_non_null(done);
	for (unsigned i = 0; i < n; i++) {
		lat[i] = UINT64_MAX;
		hops[i] = UINT32_MAX;
	}
	lat[src] = 0;
	hops[src] = 0;
	for (;;) {
		unsigned u = n;

		for (unsigned i = 0; i < n; i++) {
			if (done[i] || lat[i] == UINT64_MAX)
				continue;
			if (u == n || lat[i] < lat[u] || (lat[i] == lat[u] && hops[i] < hops[u]))
				u = i;
		}
		if (u == n)
			break;
		done[u] = true;
		for (unsigned l = 0; l < m; l++) {
			unsigned a, b, v;
			uint64_t ll, nl;

			assert_int_equal(topo_link_get(t, l, &a, &b, &ll, NULL), 0);
			if (!topo_link_up(t, l) || (a != u && b != u))
				continue;
			v = a == u ? b : a;
			if (!topo_node_up(t, v))
				continue;
			nl = lat[u] + ll + (topo_node_is_switch(t, v) ? 0 : xing);
			if (topo_node_is_switch(t, v))
				nl += 7; /* switch latency below */
			if (nl < lat[v] || (nl == lat[v] && hops[u] + 1 < hops[v])) {
				lat[v] = nl;
				hops[v] = hops[u] + 1;
			}
		}
	}
	free(done);
}

static void test_large_random_matches_reference(void **state)
{
	const unsigned nh = 1200, ns = 32, extra = 1500;
	struct cluster_config *cfg;
	char a[32], b[32], reason[REASON_MAX];
	uint64_t *lat = calloc(nh + ns, sizeof(*lat));
	unsigned *hops = calloc(nh + ns, sizeof(*hops));
	struct topo *t;
	struct route r;

	assert_non_null(lat);
	assert_non_null(hops);
	cfg = cfg_new(nh, ns, nh + extra + ns);
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (unsigned i = 0; i < nh; i++) {
		snprintf(a, sizeof(a), "h%u", i);
		add_host(cfg, a);
	}
	for (unsigned i = 0; i < ns; i++) {
		snprintf(a, sizeof(a), "sw%u", i);
		add_switch(cfg, a, 7);
	}
	for (unsigned i = 0; i < nh; i++) {
		snprintf(a, sizeof(a), "h%u", i);
		snprintf(b, sizeof(b), "sw%u", i % ns);
		add_link(cfg, a, b, 50 + rng() % 50);
	}
	for (unsigned i = 0; i < extra; i++) {
		unsigned x = rng() % nh, y = rng() % nh;

		if (x == y)
			y = (y + 1) % nh;
		snprintf(a, sizeof(a), "h%u", x);
		snprintf(b, sizeof(b), "h%u", y);
		add_link(cfg, a, b, 20 + rng() % 400);
	}
	for (unsigned i = 0; i < ns; i++) {
		snprintf(a, sizeof(a), "sw%u", i);
		snprintf(b, sizeof(b), "sw%u", (i + 1) % ns);
		add_link(cfg, a, b, 30);
	}
	t = topo_make(cfg, XING);

	/* Knock out a few hosts and links so routes must go around them. */
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(topo_node_set_up(t, 5 + rng() % (nh - 5), false), 0);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(topo_link_set_up(t, rng() % topo_link_count(t), false), 0);

	for (unsigned src = 0; src < 5; src++) {
		reference_dijkstra(t, src, lat, hops, XING);
		for (unsigned dst = 0; dst < nh + ns; dst++) {
			int ret = topo_route(t, src, dst, &r, reason);

			if (!topo_node_up(t, dst) || lat[dst] == UINT64_MAX) {
				assert_int_equal(ret, -EHOSTDOWN);
				continue;
			}
			if (hops[dst] > ROUTE_MAX_HOPS) {
				assert_int_equal(ret, -E2BIG);
				continue;
			}
			assert_int_equal(ret, 0);
			assert_int_equal(r.latency_ns, lat[dst]);
			assert_int_equal(r.nhops, hops[dst]);
			check_route_shape(t, &r);
		}
	}

	free(lat);
	free(hops);
	topo_free(t);
	cfg_del(cfg);
}

/*
 * Small graphs with many equal costs: compare every route with the best of
 * all simple paths by (latency, hops, name sequence), found by brute force.
 */
struct brute {
	const struct topo *t;
	unsigned dst;
	unsigned path[16], links[16], n;
	bool on[16];
	uint64_t lat;
	unsigned best[16], best_links[16], best_n;
	uint64_t best_lat;
	bool found;
	uint64_t xing, sw_ns;
};

static int seq_cmp(const struct topo *t, const unsigned *x, const unsigned *y,
		   unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int c = strcmp(topo_node_name(t, x[i]), topo_node_name(t, y[i]));

		if (c)
			return c;
	}
	return 0;
}

static void brute_walk(struct brute *b, unsigned u)
{
	unsigned m = topo_link_count(b->t);

	if (u == b->dst) {
		bool better = !b->found || b->lat < b->best_lat ||
			      (b->lat == b->best_lat && b->n < b->best_n) ||
			      (b->lat == b->best_lat && b->n == b->best_n &&
			       seq_cmp(b->t, b->path, b->best, b->n + 1) < 0);

		if (better) {
			b->found = true;
			b->best_lat = b->lat;
			b->best_n = b->n;
			memcpy(b->best, b->path, sizeof(b->best));
			memcpy(b->best_links, b->links, sizeof(b->best_links));
		}
		return;
	}
	for (unsigned l = 0; l < m; l++) {
		unsigned x, y, v;
		uint64_t ll, cost;

		topo_link_get(b->t, l, &x, &y, &ll, NULL);
		if (x != u && y != u)
			continue;
		v = x == u ? y : x;
		if (b->on[v])
			continue;
		cost = ll + (topo_node_is_switch(b->t, v) ? b->sw_ns : b->xing);
		b->on[v] = true;
		b->n++;
		b->path[b->n] = v;
		b->links[b->n] = l;
		b->lat += cost;
		brute_walk(b, v);
		b->lat -= cost;
		b->n--;
		b->on[v] = false;
	}
}

static void ties_vs_brute_force(uint64_t xing, uint64_t sw_ns, uint64_t max_link)
{
	static const char *const names[] = { "q", "b", "x", "d", "m", "a", "k", "e" };
	const unsigned nn = ARRAY_SIZE(names);

	for (unsigned round = 0; round < 60; round++) {
		struct cluster_config *cfg = cfg_new(nn, nn, 16);
		struct topo *t;

		/* The last two names are switches. */
		for (unsigned i = 0; i < nn - 2; i++)
			add_host(cfg, names[i]);
		add_switch(cfg, names[nn - 2], sw_ns);
		add_switch(cfg, names[nn - 1], sw_ns);
		for (unsigned i = 0; i < 12; i++) {
			unsigned x = rng() % nn, y = rng() % nn;

			if (x == y)
				continue;
			add_link(cfg, names[x], names[y], rng() % (max_link + 1));
		}
		t = topo_make(cfg, xing);

		for (unsigned s = 0; s < nn; s++) {
			for (unsigned d = 0; d < nn; d++) {
				struct brute b = { .t = t, .dst = d, .xing = xing, .sw_ns = sw_ns };
				struct route r;
				int ret;

				if (s == d)
					continue;
				b.path[0] = s;
				b.on[s] = true;
				brute_walk(&b, s);
				ret = topo_route(t, s, d, &r, NULL);
				if (!b.found) {
					assert_int_equal(ret, -EHOSTDOWN);
					continue;
				}
				assert_int_equal(ret, 0);
				assert_int_equal(r.latency_ns, b.best_lat);
				assert_int_equal(r.nhops, b.best_n);
				for (unsigned i = 0; i < r.nhops; i++) {
					assert_int_equal(r.hops[i].node, b.best[i + 1]);
					assert_int_equal(r.hops[i].link, b.best_links[i + 1]);
				}
				check_route_shape(t, &r);
			}
		}
		topo_free(t);
		cfg_del(cfg);
	}
}

static void test_ties_match_brute_force(void **state)
{
	rng_state = 42;
	ties_vs_brute_force(2, 1, 3);	/* small costs, many ties */
	ties_vs_brute_force(0, 0, 1);	/* zero-cost hops */
	ties_vs_brute_force(360, 50, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_and_lookup),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_ring_crossing_cost_decides),
		cmocka_unit_test(test_star_through_switch),
		cmocka_unit_test(test_switch_latency_vs_intermediate_host),
		cmocka_unit_test(test_route_to_self),
		cmocka_unit_test(test_tie_smaller_names),
		cmocka_unit_test(test_tie_fewer_hops),
		cmocka_unit_test(test_zero_cost_links),
		cmocka_unit_test(test_tie_first_difference_decides),
		cmocka_unit_test(test_parallel_links),
		cmocka_unit_test(test_host_down_reroutes),
		cmocka_unit_test(test_no_route),
		cmocka_unit_test(test_route_intact_rejects_nonsense),
		cmocka_unit_test(test_chain_1000),
		cmocka_unit_test(test_large_random_matches_reference),
		cmocka_unit_test(test_ties_match_brute_force),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
