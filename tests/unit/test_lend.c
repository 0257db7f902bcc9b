// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for the engine (core/lend.c, plan.c): the state machine,
 * every errno of SPEC section 4, rollback at every fault-injection point,
 * hot-plug, races, and bytes moved through the windows a lend programs.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coord.h"
#include "engine.h"
#include "fabric_sim.h"
#include "fault.h"

static const char *cfg_text =
	"[cluster]\n"
	"timeout_ms = 2000\n"
	"[host a]\n"
	"iommu = on\n"
	"lut_entries = 8\n"
	"window_max = 8M\n"
	"[host b]\n"
	"lut_entries = 8\n"
	"window_max = 8M\n"
	"ram = 0x0-0xfffffff\n"
	"[host c]\n"
	"lut_entries = 8\n"
	"ram = 0x0-0xfffffff,0x100000000-0x10fffffff\n"
	"[host d]\n"
	"lut_entries = 3\n"
	"[link]\n"
	"a = a\n"
	"b = b\n"
	"latency_ns = 10\n"
	"[link]\n"
	"a = b\n"
	"b = c\n"
	"latency_ns = 10\n"
	"[link]\n"
	"a = b\n"
	"b = d\n"
	"[device a:0000:01:00.0]\n"
	"class = 0x030200\n"
	"bar0 = 16M\n"
	"bar2 = 64K\n"
	"[device a:0000:02:00.0]\n"
	"class = 0x010802\n"
	"bar0 = 16K\n"
	"[device c:0000:03:00.0]\n"
	"class = 0x020000\n"
	"bar0 = 32M\n"
	"[device b:0000:04:00.0]\n"
	"bar0 = 4K\n"
	"[policy]\n"
	"deny = a:0000:02:00.0\n";

#define GPU "a:0000:01:00.0"
#define NVME "a:0000:02:00.0"
#define NIC "c:0000:03:00.0"
#define BDEV "b:0000:04:00.0"

struct fixture {
	char dir[64];
	struct cluster_config *cfg;
	struct engine *e;
	const struct fabric_ops *fabric; /* NULL: the sim */
	const struct store_ops *store;	 /* NULL: memory (spy_store()) */
	const struct coord_ops *coord;	 /* NULL: coord_local_ops */
};

/*
 * The memory store, with its context kept while it is open, so that a
 * test can read what is stored (assert_fabric_idle()).
 */
static void *stored_ctx;

static int spy_open(const char *where, void **ctx, char *reason)
{
	int r = store_memory_ops.open(where, ctx, reason);

	stored_ctx = r == 0 ? *ctx : NULL;
	return r;
}

static void spy_close(void *ctx)
{
	if (ctx == stored_ctx)
		stored_ctx = NULL;
	store_memory_ops.close(ctx);
}

static const struct store_ops *spy_store(void)
{
	static struct store_ops spy;

	spy = store_memory_ops;
	spy.open = spy_open;
	spy.close = spy_close;
	return &spy;
}

static int engine_up(struct fixture *f, const char *text)
{
	struct engine_options opt = { 0 };
	char err[ERRMSG_MAX], reason[REASON_MAX], run[128];

	if (config_load_string("test.ini", text, &f->cfg, err) < 0)
		fail_msg("%s", err);
	snprintf(run, sizeof(run), "%s/run", f->dir);
	opt.cfg = f->cfg;
	opt.fabric = f->fabric ? f->fabric : &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = f->store ? f->store : spy_store();
	opt.store_where = "test";
	opt.coord = f->coord;
	return engine_new(&opt, &f->e, reason);
}

static void engine_down(struct fixture *f)
{
	engine_free(f->e);
	config_free(f->cfg);
	f->e = NULL;
	f->cfg = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	unsetenv("LENDFS_FAULT");
	unsetenv("LENDFS_DELAY");
	assert_int_equal(engine_up(f, cfg_text), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	engine_down(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	unsetenv("LENDFS_FAULT");
	unsetenv("LENDFS_DELAY");
	return 0;
}

static enum dev_state state_of(struct engine *e, const char *id,
			       char *last_error)
{
	struct device_view v;

	assert_int_equal(engine_device_view(e, id, &v), 0);
	if (last_error)
		strcpy(last_error, v.last_error);
	device_view_release(&v);
	return v.state;
}

/* ---- the sim's hardware, read from its register files ------------------ */

#define STORED_MAX 64

/* The windows of the stored lends, and which of them are programmed. */
struct stored {
	struct window w[STORED_MAX];
	bool lent[STORED_MAX];
	bool seen[STORED_MAX];
	unsigned n;
	char bad[256];
};

static int stored_add(void *arg, const struct lend_record *rec)
{
	struct stored *s = arg;

	for (unsigned i = 0; i < rec->nwindows; i++) {
		if (s->n == STORED_MAX)
			return -ENOSPC;
		s->w[s->n] = rec->windows[i];
		s->lent[s->n++] = rec->state == REC_LENT;
	}
	return 0;
}

/* Is register @g (one LUT entry, DMA window or IOMMU mapping) part of @w? */
static bool reg_of(const struct window *g, const struct window *w)
{
	if (g->kind != w->kind || strcmp(g->host, w->host))
		return false;
	if (g->kind == WIN_LUT)
		return g->index >= w->index && g->index < w->index + w->count;
	if (g->kind == WIN_DMA)
		return g->index == w->index;
	return !strcmp(g->domain, w->domain) && g->local == w->local;
}

static int reg_owned(void *arg, const struct sim_reg *g)
{
	struct stored *s = arg;
	bool owned = false;

	for (unsigned i = 0; i < s->n; i++)
		if (reg_of(&g->w, &s->w[i]))
			owned = s->seen[i] = true;
	if (owned)
		return 0;
	if (window_format(&g->w, s->bad, sizeof(s->bad)) < 0)
		snprintf(s->bad, sizeof(s->bad), "(unprintable)");
	return 1;
}

/*
 * The hardware, not the engine's books: the sim's register files in the
 * run directory (sim_hw_regs()) hold no LUT entry, DMA window or IOMMU
 * mapping that no stored lend owns, and every window of a `lent` record
 * is programmed.  (No P2P: these tests lend one device at a time.)
 */
static void assert_registers_owned(const struct fixture *f)
{
	char run[128], reason[REASON_MAX] = "", line[256];
	struct stored *s = calloc(1, sizeof(*s));
	struct sim_hw *hw;
	int r;

	assert_non_null(s);
	assert_non_null(stored_ctx); /* the spy store, open */
	assert_int_equal(store_memory_ops.load(stored_ctx, stored_add, s, reason), 0);
	snprintf(run, sizeof(run), "%s/run", f->dir);
	if (sim_hw_open(run, &hw, reason) < 0)
		fail_msg("%s", reason);
	r = sim_hw_regs(hw, NULL, reg_owned, s, reason);
	sim_hw_close(hw);
	if (r > 0)
		fail_msg("register '%s' is programmed, but no stored lend owns it",
			 s->bad);
	if (r < 0)
		fail_msg("cannot read the registers: %s", reason);
	for (unsigned i = 0; i < s->n; i++) {
		if (!s->lent[i] || s->seen[i])
			continue;
		window_format(&s->w[i], line, sizeof(line));
		fail_msg("stored window '%s' is not programmed", line);
	}
	free(s);
}

/*
 * Every table of every host empty, in the engine's books and in the
 * sim's registers (when the store is the spy and the fabric a sim).
 */
static void assert_fabric_idle(const struct fixture *f)
{
	static const char *const hosts[] = { "a", "b", "c", "d" };

	for (size_t i = 0; i < 4; i++) {
		struct host_view h;

		assert_int_equal(engine_host_view(f->e, hosts[i], &h), 0);
		if (h.lut_used || h.dma_used || h.iommu_mappings)
			fail_msg("host %s: lut %u dma %u iommu %u still in use", hosts[i],
				 h.lut_used, h.dma_used, h.iommu_mappings);
	}
	if (stored_ctx)
		assert_registers_owned(f);
}

static int write_str(struct engine *e, const char *id, const char *s,
		     char *reason)
{
	return engine_write_borrower(e, id, s, strlen(s), NULL, reason);
}

static void test_lend_return(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX], err[REASON_MAX + 16];
	struct device_view v;
	struct host_view h;

	assert_int_equal(state_of(f->e, GPU, NULL), DEV_AVAILABLE);
	assert_int_equal(write_str(f->e, GPU, "b\n", reason), 0);
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	assert_int_equal(v.state, DEV_LENT);
	assert_string_equal(v.borrower, "b");
	assert_true(v.has_route);
	assert_int_equal(v.route.nhops, 1);
	/* one hop: link 10 + one crossing 360 */
	assert_int_equal(v.route.latency_ns, 370);
	/* bar0 16M (2 LUT) + bar2 (1 LUT) + one DMA + one IOMMU (a has it on) */
	assert_int_equal(v.nwindows, 4);
	assert_int_equal(v.windows[0].kind, WIN_LUT);
	assert_int_equal(v.windows[0].count, 2);
	assert_string_equal(v.windows[0].host, "b");
	assert_string_equal(v.windows[0].next, "a");
	assert_int_equal(v.windows[3].kind, WIN_IOMMU);
	device_view_release(&v);
	assert_int_equal(engine_host_view(f->e, "b", &h), 0);
	assert_int_equal(h.lut_used, 3);
	/* idempotent */
	assert_int_equal(write_str(f->e, GPU, "b", reason), 0);
	assert_int_equal(engine_host_view(f->e, "b", &h), 0);
	assert_int_equal(h.lut_used, 3);
	/* busy for another borrower */
	assert_int_equal(write_str(f->e, GPU, "c\n", reason), -EBUSY);
	assert_int_equal(state_of(f->e, GPU, err), DEV_LENT);
	assert_string_equal(err, "EBUSY: lent to b; return it first");
	/* return */
	assert_int_equal(write_str(f->e, GPU, "\n", reason), 0);
	assert_int_equal(state_of(f->e, GPU, NULL), DEV_AVAILABLE);
	assert_fabric_idle(f);
	/* returning what is not lent is a no-op */
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
}

/* ---- leases --------------------------------------------------------------- */

static int expires_of(void *arg, const struct lend_record *rec)
{
	if (!strcmp(rec->device, GPU))
		*(int64_t *)arg = rec->expires;
	return 0;
}

/* The deadline stored for GPU (-1: no record), and the one the view shows. */
static int64_t stored_lease(void)
{
	char reason[REASON_MAX];
	int64_t at = -1;

	assert_int_equal(store_memory_ops.load(stored_ctx, expires_of, &at, reason), 0);
	return at;
}

static int64_t view_lease(struct engine *e)
{
	struct device_view v;
	int64_t at;

	assert_int_equal(engine_device_view(e, GPU, &v), 0);
	at = v.lease;
	device_view_release(&v);
	return at;
}

static int write_lease(struct engine *e, const char *s, char *reason)
{
	return engine_write_lease(e, GPU, s, strlen(s), NULL, reason);
}

/*
 * A lease: refused on a device that is not lent and for malformed values,
 * stored with the record, rolled back when the store fails, and the
 * timer returns the device at the deadline through the return path.
 */
static void test_lease(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = { "x", "-1", "1 ", "31536001", "1\n1",
					   "00000000000000001" };
	char reason[REASON_MAX], err[REASON_MAX + 16];
	int64_t at;

	assert_int_equal(write_lease(f->e, "5", reason), -EINVAL);
	assert_non_null(strstr(reason, "is not lent"));
	assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
	assert_true(stored_lease() == 0);
	assert_int_equal(write_lease(f->e, "600\n", reason), 0);
	at = view_lease(f->e);
	assert_true(at > 0);
	assert_true(stored_lease() == at);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(engine_write_lease(f->e, GPU, bad[i], strlen(bad[i]),
						    NULL, reason), -EINVAL);
		assert_true(view_lease(f->e) == at);
	}
	assert_int_equal(engine_write_lease(f->e, GPU, "5\0", 2, NULL, reason), -EINVAL);
	assert_true(stored_lease() == at);
	assert_int_equal(write_lease(f->e, "", reason), 0);
	assert_true(view_lease(f->e) == 0 && stored_lease() == 0);

	/* the store fails: the old deadline stays, in the view and stored */
	assert_int_equal(write_lease(f->e, "600", reason), 0);
	at = view_lease(f->e);
	engine_down(f);
	setenv("LENDFS_FAULT", "store_lease:1", 1);
	assert_int_equal(engine_up(f, cfg_text), 0);
	assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
	assert_int_equal(write_lease(f->e, "600", reason), -EIO);
	assert_true(view_lease(f->e) == 0 && stored_lease() == 0);
	assert_int_equal(state_of(f->e, GPU, err), DEV_LENT);
	assert_non_null(strstr(err, "injected fault"));
	unsetenv("LENDFS_FAULT");

	/* at the deadline the timer returns it, windows and record gone */
	assert_int_equal(write_lease(f->e, "1", reason), 0);
	for (int i = 0; i < 40 && state_of(f->e, GPU, NULL) != DEV_AVAILABLE; i++)
		usleep(50000);
	assert_int_equal(state_of(f->e, GPU, err), DEV_AVAILABLE);
	assert_int_equal(strncmp(err, "ETIME: lease expired at ", 24), 0);
	assert_true(view_lease(f->e) == 0 && stored_lease() == -1);
	assert_fabric_idle(f);
}

static void test_einval(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"no de", "../b", "b\n\n", "b\r\n", "zz", "a", "vm:b", "vm:b/", "vm:/x",
		"vm:b/nosuch", "b\t", " b", "b ",
	};
	char reason[REASON_MAX], err[REASON_MAX + 16], big[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (write_str(f->e, GPU, bad[i], reason) != -EINVAL)
			fail_msg("'%s' was not refused with EINVAL", bad[i]);
		assert_int_equal(state_of(f->e, GPU, err), DEV_AVAILABLE);
		assert_memory_equal(err, "EINVAL: ", 8);
	}
	assert_int_equal(write_str(f->e, GPU, "a", reason), -EINVAL);
	assert_string_equal(reason, "cannot lend a:0000:01:00.0 to its own lender a");
	assert_int_equal(write_str(f->e, GPU, "zz", reason), -EINVAL);
	assert_string_equal(reason, "unknown host 'zz'");
	assert_int_equal(engine_write_borrower(f->e, GPU, "b\0c", 3, NULL, reason), -EINVAL);
	memset(big, 'b', sizeof(big));
	assert_int_equal(engine_write_borrower(f->e, GPU, big, 256, NULL, reason), -EINVAL);
	/* 255 bytes + newline is within the limit (and then an unknown host) */
	big[255] = '\n';
	assert_int_equal(engine_write_borrower(f->e, GPU, big, 256, NULL, reason), -EINVAL);
	assert_non_null(strstr(reason, "malformed host name"));
	assert_fabric_idle(f);
}

static void test_eperm_enodev(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];

	assert_int_equal(write_str(f->e, NVME, "b", reason), -EPERM);
	assert_non_null(strstr(reason, "[policy] deny"));
	assert_int_equal(write_str(f->e, "a:0000:99:00.0", "b", reason), -ENODEV);
}

static void test_ehostdown(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX], err[REASON_MAX + 16];

	assert_int_equal(engine_write_host_state(f->e, "b", "offline\n", 8, NULL, reason), 0);
	/* borrower offline */
	assert_int_equal(write_str(f->e, GPU, "b", reason), -EHOSTDOWN);
	assert_string_equal(reason, "borrower b is offline");
	/* c is only reachable through b */
	assert_int_equal(write_str(f->e, GPU, "c", reason), -EHOSTDOWN);
	assert_int_equal(state_of(f->e, GPU, err), DEV_AVAILABLE);
	assert_memory_equal(err, "EHOSTDOWN: ", 11);
	/* lender offline: its devices are offline */
	assert_int_equal(engine_write_host_state(f->e, "a", "offline", 7, NULL, reason), 0);
	assert_int_equal(state_of(f->e, GPU, NULL), DEV_OFFLINE);
	assert_int_equal(write_str(f->e, GPU, "c", reason), -EHOSTDOWN);
	assert_string_equal(reason, "lender a is offline");
	assert_int_equal(engine_write_host_state(f->e, "a", "online", 6, NULL, reason), 0);
	assert_int_equal(engine_write_host_state(f->e, "b", "online", 6, NULL, reason), 0);
	assert_int_equal(state_of(f->e, GPU, NULL), DEV_AVAILABLE);
	assert_int_equal(engine_write_host_state(f->e, "b", "sideways", 8, NULL, reason),
			 -EINVAL);
	assert_fabric_idle(f);
}

static void test_route_lost(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX], err[REASON_MAX + 16];

	assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
	/* the only route a -> b -> c breaks when b goes down */
	assert_int_equal(engine_write_host_state(f->e, "b", "offline", 7, NULL, reason), 0);
	assert_int_equal(state_of(f->e, GPU, err), DEV_FAILED);
	assert_non_null(strstr(err, "EHOSTDOWN: route lost: host b went offline"));
	assert_int_equal(engine_write_host_state(f->e, "b", "online", 6, NULL, reason), 0);
	assert_fabric_idle(f);
	/* a failed device can be cleared, then lent again */
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_int_equal(state_of(f->e, GPU, NULL), DEV_AVAILABLE);
	assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_fabric_idle(f);
}

static void test_enospc(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX], err[REASON_MAX + 16];

	/* d has 3 LUT entries: the 16M bar0 takes 2, bar2 the third */
	assert_int_equal(write_str(f->e, GPU, "d", reason), 0);
	assert_int_equal(write_str(f->e, BDEV, "d", reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB translation entry on adapter d/ntb0: "
				    "need 1 contiguous, 0 free of 3");
	assert_int_equal(state_of(f->e, BDEV, err), DEV_AVAILABLE);
	assert_memory_equal(err, "ENOSPC: no free NTB", 19);
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_int_equal(write_str(f->e, BDEV, "d", reason), 0);
	assert_int_equal(write_str(f->e, BDEV, "", reason), 0);
	assert_fabric_idle(f);
}

static void test_etimedout(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];

	engine_down(f);
	setenv("LENDFS_DELAY", "ntb_map:700", 1);
	assert_int_equal(engine_up(f, cfg_text), 0);
	/* timeout_ms 2000, 4 windows at 700 ms each on a 2-hop route */
	assert_int_equal(write_str(f->e, NIC, "a", reason), -ETIMEDOUT);
	assert_non_null(strstr(reason, "engine timeout"));
	assert_int_equal(state_of(f->e, NIC, NULL), DEV_AVAILABLE);
	assert_fabric_idle(f);
}

static void test_enotsup(void **state)
{
	struct engine_options opt = { 0 };
	struct cluster_config *cfg;
	struct engine *e = NULL;
	char err[ERRMSG_MAX], reason[REASON_MAX];

	(void)state;
	assert_int_equal(config_load_string("t", "[host a]\n", &cfg, err), 0);
	opt.cfg = cfg;
	opt.fabric = &fabric_ntb_ops;
	opt.run_dir = "/nonexistent";
	opt.store = &store_memory_ops;
	opt.store_where = "x";
	assert_int_equal(engine_new(&opt, &e, reason), -ENOTSUP);
	assert_non_null(strstr(reason, "NTB"));
	assert_null(e);
	config_free(cfg);
}

/*
 * Fail every step of a lend and of a return in turn: each failure must
 * leave the device state, every table and the store as before.  @lend
 * and @ret list the points, in the order a lend and a return pass them.
 */
static void rollback_everywhere(struct fixture *f, const char *const *lend,
				size_t nlend, const char *const *ret, size_t nret)
{
	char reason[REASON_MAX], spec[64];

	for (size_t i = 0; i < nlend; i++) {
		/* count how often the lend passes this point, fail each pass */
		unsigned passes;

		engine_down(f);
		unsetenv("LENDFS_FAULT");
		assert_int_equal(engine_up(f, cfg_text), 0);
		fault_reset();
		assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
		passes = fault_count(lend[i]);
		if (passes < 1)
			fail_msg("the lend never passes %s", lend[i]);
		for (unsigned n = 1; n <= passes; n++) {
			engine_down(f);
			snprintf(spec, sizeof(spec), "%s:%u", lend[i], n);
			setenv("LENDFS_FAULT", spec, 1);
			assert_int_equal(engine_up(f, cfg_text), 0);
			if (write_str(f->e, GPU, "c", reason) != -EIO)
				fail_msg("lend with fault %s did not fail", spec);
			assert_non_null(strstr(reason, "injected fault"));
			assert_int_equal(state_of(f->e, GPU, NULL), DEV_AVAILABLE);
			assert_fabric_idle(f);
			/* and the device still lends afterwards */
			unsetenv("LENDFS_FAULT");
			assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
			assert_int_equal(write_str(f->e, GPU, "", reason), 0);
			assert_fabric_idle(f);
		}
	}
	for (size_t i = 0; i < nret; i++) {
		struct device_view before, after;

		engine_down(f);
		unsetenv("LENDFS_FAULT");
		assert_int_equal(engine_up(f, cfg_text), 0);
		fault_reset();
		assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
		/* the return's pass of the point comes after the lend's */
		snprintf(spec, sizeof(spec), "%s:%u", ret[i], fault_count(ret[i]) + 1);
		engine_down(f);
		setenv("LENDFS_FAULT", spec, 1);
		assert_int_equal(engine_up(f, cfg_text), 0);
		assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
		assert_int_equal(engine_device_view(f->e, GPU, &before), 0);
		if (write_str(f->e, GPU, "", reason) != -EIO)
			fail_msg("return with fault %s did not fail", spec);
		assert_int_equal(engine_device_view(f->e, GPU, &after), 0);
		assert_int_equal(after.state, DEV_LENT);
		assert_string_equal(after.borrower, "c");
		assert_int_equal(after.nwindows, before.nwindows);
		assert_memory_equal(after.windows, before.windows,
				    before.nwindows * sizeof(struct window));
		assert_registers_owned(f); /* programmed again, nothing else */
		device_view_release(&before);
		device_view_release(&after);
		/* the retried return works and leaves nothing */
		assert_int_equal(write_str(f->e, GPU, "", reason), 0);
		assert_fabric_idle(f);
	}
}

/*
 * The sim resets at open: a lend to a host stores no intent, its only
 * write is the outcome; a return removes the record before it clears.
 */
static void test_rollback_everywhere(void **state)
{
	static const char *const lend_points[] = {
		"route", "ntb_alloc", "iommu_alloc", "ntb_map", "iommu_map",
		"lend_commit", "store_commit",
	};
	static const char *const return_points[] = {
		"store_commit", "ntb_unmap", "iommu_unmap",
	};

	rollback_everywhere(*state, lend_points, ARRAY_SIZE(lend_points),
			    return_points, ARRAY_SIZE(return_points));
}

/* Hardware that keeps its registers over a restart: intents first. */
static void test_rollback_everywhere_with_intents(void **state)
{
	static const char *const lend_points[] = {
		"route", "ntb_alloc", "iommu_alloc", "store_intent", "ntb_map",
		"iommu_map", "lend_commit", "store_commit",
	};
	static const char *const return_points[] = {
		"store_intent", "ntb_unmap", "iommu_unmap", "store_commit",
	};
	static struct fabric_ops keeping;
	struct fixture *f = *state;

	keeping = fabric_sim_ops;
	keeping.resets_at_open = false;
	f->fabric = &keeping;
	rollback_everywhere(f, lend_points, ARRAY_SIZE(lend_points), return_points,
			    ARRAY_SIZE(return_points));
}

/* The memory store, counting what the engine writes. */
static unsigned puts_by_state[REC_RETURNING + 1], removes;

static int counting_put(void *ctx, const struct lend_record *rec, char *reason)
{
	if ((unsigned)rec->state <= REC_RETURNING)
		puts_by_state[rec->state]++;
	return store_memory_ops.put(ctx, rec, reason);
}

static int counting_remove(void *ctx, const char *device, struct lend_txn *txn,
			   char *reason)
{
	removes++;
	return store_memory_ops.remove(ctx, device, txn, reason);
}

static void count_writes(struct fixture *f, const char *borrower, unsigned want_lending,
			 unsigned want_returning)
{
	char reason[REASON_MAX];

	memset(puts_by_state, 0, sizeof(puts_by_state));
	removes = 0;
	assert_int_equal(write_str(f->e, GPU, borrower, reason), 0);
	assert_int_equal(puts_by_state[REC_LENDING], want_lending);
	assert_int_equal(puts_by_state[REC_LENT], 1);
	assert_int_equal(removes, 0);
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_int_equal(puts_by_state[REC_RETURNING], want_returning);
	assert_int_equal(puts_by_state[REC_LENT], 1);
	assert_int_equal(removes, 1);
	assert_fabric_idle(f);
}

/*
 * One durable write per request where nothing outlives a restart (the
 * sim resets at open, the borrower is a host); an intent before each
 * where the hardware keeps its registers.
 */
static void test_intent_only_where_needed(void **state)
{
	static struct store_ops counting;
	static struct fabric_ops keeping;
	struct fixture *f = *state;

	counting = *spy_store();
	counting.put = counting_put;
	counting.remove = counting_remove;
	f->store = &counting;
	engine_down(f);
	assert_int_equal(engine_up(f, cfg_text), 0);
	count_writes(f, "c", 0, 0);

	keeping = fabric_sim_ops;
	keeping.resets_at_open = false;
	f->fabric = &keeping;
	engine_down(f);
	assert_int_equal(engine_up(f, cfg_text), 0);
	count_writes(f, "c", 1, 1);
}

/*
 * A peer that committed the lend before the lender's step failed, as a
 * borrower's daemon does in distributed mode (docs/STATE.md "A lend",
 * step 5): asked by the undo of the intent, it turns the stored `lending`
 * record into `lent` (its commit) and says so.
 */
static unsigned aborts;

static int commit_stored(void *arg, const struct lend_record *rec)
{
	struct lend_record lent = *rec;

	if (strcmp(rec->device, GPU) || rec->state != REC_LENDING)
		return 0;
	lent.state = REC_LENT;
	lent.txn = NULL;
	return store_memory_ops.put(stored_ctx, &lent, arg);
}

static int peer_committed(void *ctx, const char *devid, uint64_t epoch,
			  char *reason)
{
	aborts++;
	assert_string_equal(devid, GPU);
	assert_int_equal(store_memory_ops.load(stored_ctx, commit_stored, reason,
					       reason), 0);
	return 1;
}

/*
 * A lend the peer committed is never undone: whichever step after the
 * intent fails, the lender finishes it (its steps after the intent run
 * again), the write succeeds, the record is `lent` and its windows are
 * programmed; and it returns as any lend.
 */
static void test_committed_lend_stands(void **state)
{
	static const char *const points[] = {
		"ntb_map", "iommu_map", "lend_commit", "store_commit",
	};
	static struct coord_ops committing;
	struct fixture *f = *state;
	char reason[REASON_MAX], spec[64];

	committing = coord_local_ops;
	committing.intent_always = true; /* the intent is stored, as with zk */
	committing.intent_abort = peer_committed;
	f->coord = &committing;
	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		engine_down(f);
		snprintf(spec, sizeof(spec), "%s:1", points[i]);
		setenv("LENDFS_FAULT", spec, 1);
		assert_int_equal(engine_up(f, cfg_text), 0);
		aborts = 0;
		if (write_str(f->e, GPU, "c", reason) != 0)
			fail_msg("with %s, a lend the peer committed failed: %s", spec,
				 reason);
		assert_int_equal(aborts, 1);
		assert_int_equal(fault_count("lend.program"), 2); /* finished */
		assert_int_equal(state_of(f->e, GPU, NULL), DEV_LENT);
		assert_registers_owned(f);
		assert_int_equal(write_str(f->e, GPU, "", reason), 0);
		assert_fabric_idle(f);
	}
	unsetenv("LENDFS_FAULT");
}

/*
 * The return side (docs/STATE.md "A return"): a peer that removed the
 * returned record before the lender's step failed (@did_remove), as a
 * borrower's daemon does in distributed mode, or one that did not and is
 * fenced off by the abort.
 */
static bool did_remove;

static int peer_removed(void *ctx, const char *devid, uint64_t epoch,
			char *reason)
{
	aborts++;
	assert_string_equal(devid, GPU);
	if (!did_remove)
		return 0;
	assert_int_equal(store_memory_ops.remove(stored_ctx, GPU, NULL, reason), 0);
	return 1;
}

static int count_gpu(void *arg, const struct lend_record *rec)
{
	if (!strcmp(rec->device, GPU))
		++*(unsigned *)arg;
	return 0;
}

static unsigned gpu_records(void)
{
	char reason[REASON_MAX];
	unsigned n = 0;

	assert_int_equal(store_memory_ops.load(stored_ctx, count_gpu, &n, reason), 0);
	return n;
}

/*
 * A return the peer completed is never undone: whichever lender step
 * after the `returning` intent fails, the write succeeds, the device is
 * available, no record, every window cleared.  A peer that had not
 * removed it: the return fails and the device stays lent, as before.
 */
static void test_removed_return_stands(void **state)
{
	static const char *const points[] = {
		"ntb_unmap:1", "iommu_unmap:1", "store_commit:2",
	};
	static struct coord_ops removing;
	struct fixture *f = *state;
	char reason[REASON_MAX];

	removing = coord_local_ops;
	removing.intent_always = true; /* the intent is stored, as with zk */
	removing.return_abort = peer_removed;
	f->coord = &removing;
	for (size_t i = 0; i < 2 * ARRAY_SIZE(points); i++) {
		did_remove = i < ARRAY_SIZE(points);
		engine_down(f);
		setenv("LENDFS_FAULT", points[i % ARRAY_SIZE(points)], 1);
		assert_int_equal(engine_up(f, cfg_text), 0);
		assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
		aborts = 0;
		if ((write_str(f->e, GPU, "", reason) == 0) != did_remove)
			fail_msg("with %s, a peer that %s the record: the return said %s",
				 points[i % ARRAY_SIZE(points)],
				 did_remove ? "removed" : "did not remove",
				 did_remove ? reason : "0");
		assert_int_equal(aborts, 1);
		assert_int_equal(state_of(f->e, GPU, NULL),
				 did_remove ? DEV_AVAILABLE : DEV_LENT);
		assert_int_equal(gpu_records(), did_remove ? 0 : 1);
		assert_registers_owned(f);
		if (!did_remove)
			assert_int_equal(write_str(f->e, GPU, "", reason), 0);
		assert_fabric_idle(f);
	}
	unsetenv("LENDFS_FAULT");
}

struct slow_lend {
	struct engine *e;
	int result;
};

static void *slow_lend(void *arg)
{
	struct slow_lend *l = arg;
	char reason[REASON_MAX];

	l->result = write_str(l->e, GPU, "c", reason);
	return NULL;
}

/*
 * A return does not wait for the other requests in flight: it used to
 * take the model's write lock after every success (to drop a removed
 * device), which waited out every lend in flight and held off new ones.
 * The lend of GPU is held in flight at lend_commit while NIC returns.
 */
static void test_return_does_not_wait(void **state)
{
	struct fixture *f = *state;
	struct slow_lend l;
	char reason[REASON_MAX];
	pthread_t t;

	engine_down(f);
	setenv("LENDFS_DELAY", "lend_commit:1500", 1); /* timeout_ms is 2000 */
	assert_int_equal(engine_up(f, cfg_text), 0);
	assert_int_equal(write_str(f->e, NIC, "a", reason), 0);
	l = (struct slow_lend){ f->e, 1 };
	pthread_create(&t, NULL, slow_lend, &l);
	while (state_of(f->e, GPU, NULL) != DEV_LENDING)
		usleep(1000);
	assert_int_equal(write_str(f->e, NIC, "", reason), 0);
	assert_int_equal(state_of(f->e, NIC, NULL), DEV_AVAILABLE);
	assert_int_equal(state_of(f->e, GPU, NULL), DEV_LENDING); /* still in flight */
	pthread_join(t, NULL);
	assert_int_equal(l.result, 0);
	assert_int_equal(state_of(f->e, GPU, NULL), DEV_LENT);
}

static void test_random_cycles(void **state)
{
	struct fixture *f = *state;
	static const char *const devs[] = { GPU, NIC, BDEV };
	static const char *const hosts[] = { "", "a", "b", "c", "d" };
	char reason[REASON_MAX];
	unsigned seed = 12345;

	for (unsigned i = 0; i < 10000; i++) {
		const char *dev = devs[rand_r(&seed) % 3];
		const char *host = hosts[rand_r(&seed) % 5];
		int r = write_str(f->e, dev, host, reason);

		if (r != 0 && r != -EBUSY && r != -EINVAL && r != -ENOSPC)
			fail_msg("cycle %u: %s -> %s: %d %s", i, dev, host, r, reason);
	}
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(write_str(f->e, devs[i], "", reason), 0);
	assert_fabric_idle(f);
}

struct racer {
	struct engine *e;
	const char *host;
	int result;
	pthread_barrier_t *start;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char reason[REASON_MAX];

	pthread_barrier_wait(r->start);
	r->result = write_str(r->e, GPU, r->host, reason);
	return NULL;
}

static void test_race(void **state)
{
	struct fixture *f = *state;
	pthread_t t[32];
	struct racer r[32];
	pthread_barrier_t start;
	struct device_view v;

	pthread_barrier_init(&start, NULL, 32);
	for (int i = 0; i < 32; i++) {
		r[i] = (struct racer){ f->e, i % 2 ? "b" : "c", 1, &start };
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 32; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	assert_int_equal(v.state, DEV_LENT);
	for (int i = 0; i < 32; i++) {
		if (strcmp(r[i].host, v.borrower) != 0)
			assert_int_equal(r[i].result, -EBUSY);
		else
			assert_true(r[i].result == 0 || r[i].result == -EBUSY);
	}
	device_view_release(&v);
}

static void test_hotplug(void **state)
{
	struct fixture *f = *state;
	struct cfg_device dev = {
		.id = "b:0000:05:00.0",
		.host = "b",
		.addr = { 0, 5, 0, 0 },
		.vendor = 0x10de,
		.class = 0x030200,
		.bar = { 1 << 20 },
		.numa_node = 1,
		.iommu_group = 7,
	};
	char reason[REASON_MAX], err[REASON_MAX + 16];
	struct device_view v;

	assert_int_equal(engine_device_add(f->e, &dev, reason), 0);
	assert_int_equal(engine_device_add(f->e, &dev, reason), -EEXIST);
	assert_int_equal(engine_device_view(f->e, dev.id, &v), 0);
	assert_int_equal(v.numa_node, 1);
	assert_int_equal(v.iommu_group, 7);
	device_view_release(&v);
	/* removal while available: gone */
	assert_int_equal(engine_device_remove(f->e, dev.id, reason), 0);
	assert_false(engine_device_exists(f->e, dev.id));
	/* auto-lend on add, removal while lent tears down */
	snprintf(dev.borrower, sizeof(dev.borrower), "c");
	assert_int_equal(engine_device_add(f->e, &dev, reason), 0);
	assert_int_equal(state_of(f->e, dev.id, NULL), DEV_LENT);
	assert_int_equal(engine_device_remove(f->e, dev.id, reason), 0);
	assert_int_equal(state_of(f->e, dev.id, err), DEV_FAILED);
	assert_string_equal(err, "ENODEV: device removed");
	assert_int_equal(write_str(f->e, dev.id, "c", reason), -ENODEV);
	assert_fabric_idle(f);
	/* clearing the failure makes it disappear */
	assert_int_equal(write_str(f->e, dev.id, "", reason), 0);
	assert_false(engine_device_exists(f->e, dev.id));
	/* a device the lender depends on */
	dev.borrower[0] = '\0';
	snprintf(dev.deny_reason, sizeof(dev.deny_reason),
		 "holds the root file system (/dev/vda1)");
	assert_int_equal(engine_device_add(f->e, &dev, reason), 0);
	assert_int_equal(write_str(f->e, dev.id, "c", reason), -EPERM);
	assert_non_null(strstr(reason, "holds the root file system"));
	/* unknown lender */
	snprintf(dev.id, sizeof(dev.id), "zz:0000:05:00.0");
	snprintf(dev.host, sizeof(dev.host), "zz");
	assert_int_equal(engine_device_add(f->e, &dev, reason), -EINVAL);
}

/* Bytes written by the borrower's CPU land in the lender's BAR file. */
static void test_bytes_move(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX], run[128], buf[16] = "";
	struct device_view v;
	struct sim_hw *hw;
	uint64_t bar0 = 0, ram_view = 0;

	/* two hops: c -> b -> a */
	assert_int_equal(write_str(f->e, GPU, "c", reason), 0);
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	for (unsigned i = 0; i < v.nwindows; i++) {
		if (v.windows[i].kind == WIN_LUT && !strcmp(v.windows[i].host, "c") &&
		    !strcmp(v.windows[i].tag, "bar0"))
			bar0 = v.windows[i].local;
		if (v.windows[i].kind == WIN_IOMMU && !strcmp(v.windows[i].tag, "ram1"))
			ram_view = v.windows[i].local;
	}
	device_view_release(&v);
	assert_true(bar0 != 0);
	assert_int_equal(ram_view, 0x100000000ULL);
	snprintf(run, sizeof(run), "%s/run", f->dir);
	assert_int_equal(sim_hw_open(run, &hw, reason), 0);
	/* CPU of c writes into the second 8M entry of bar0 */
	assert_int_equal(sim_cpu_access(hw, "c", bar0 + (8 << 20) + 16, "hello", 5,
					true, reason), 5);
	/* the device reads it at that BAR offset from its lender's view */
	assert_int_equal(sim_cpu_access(hw, "a", 0x380000000000ULL + (8 << 20) + 16,
					buf, 5, false, reason), 5);
	assert_memory_equal(buf, "hello", 5);
	/* device DMA into c's RAM range 1, through a's IOMMU */
	assert_int_equal(sim_dma_access(hw, GPU, 0x100000040ULL, "dma!", 4, true,
					reason), 4);
	assert_int_equal(sim_cpu_access(hw, "c", 0x100000040ULL, buf, 4, false,
					reason), 4);
	assert_memory_equal(buf, "dma!", 4);
	/* outside the IOMMU windows: a fault */
	assert_true(sim_dma_access(hw, GPU, 0x20000000ULL, "x", 1, true, reason) < 0);
	/* after the return nothing is mapped any more */
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_true(sim_cpu_access(hw, "c", bar0 + 16, buf, 5, false, reason) < 0);
	sim_hw_close(hw);
}

static void test_composition(void **state)
{
	struct fixture *f = *state;
	static const char *big =
		"[host a]\niommu = on\nlut_entries = 64\n"
		"[host b]\nlut_entries = 64\n"
		"[host c]\nlut_entries = 64\n"
		"[link]\na = a\nb = b\nlatency_ns = 10\n"
		"[link]\na = b\nb = c\nlatency_ns = 10\n"
		"[device a:0000:01:00.0]\nbar0 = 16M\n"
		"[device a:0000:02:00.0]\nbar0 = 16K\n"
		"[device c:0000:03:00.0]\nbar0 = 32M\n";
	char reason[REASON_MAX];
	struct device_view v;

	engine_down(f);
	assert_int_equal(engine_up(f, big), 0);
	assert_int_equal(write_str(f->e, GPU, "b", reason), 0);
	assert_int_equal(write_str(f->e, NIC, "b", reason), 0);
	assert_int_equal(write_str(f->e, NVME, "b", reason), 0);

	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	assert_int_equal(v.npeers, 2);
	for (unsigned i = 0; i < v.npeers; i++) {
		struct peer_view *p = &v.peers[i];

		assert_string_equal(p->error, "");
		/* a's IOMMU is on: P2P from a goes through its root complex */
		assert_true(p->via_root_complex);
		if (!strcmp(p->device, NIC)) {
			assert_int_equal(p->route.nhops, 2); /* a -> b -> c */
			assert_int_equal(p->route.latency_ns, 2 * 370);
			assert_int_equal(p->latency_ns, 2 * 370 + DEFAULT_ROOT_COMPLEX_NS);
		} else {
			assert_string_equal(p->device, NVME);
			assert_int_equal(p->route.nhops, 0); /* same lender */
		}
	}
	device_view_release(&v);

	assert_int_equal(engine_device_view(f->e, NIC, &v), 0);
	assert_int_equal(v.npeers, 2);
	/* c's IOMMU is off: direct over the shortest path */
	assert_false(v.peers[0].via_root_complex);
	assert_int_equal(v.peers[0].latency_ns, v.peers[0].route.latency_ns);
	device_view_release(&v);

	/* the P2P windows are real: a reaches c's BAR through them */
	{
		struct host_view h;

		assert_int_equal(engine_host_view(f->e, "a", &h), 0);
		assert_true(h.lut_used >= 4); /* 32M of NIC BAR in 8M entries */
		assert_true(h.iommu_mappings > 0);
	}
	/* returning one member releases its links; the rest stay */
	assert_int_equal(write_str(f->e, NIC, "", reason), 0);
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	assert_int_equal(v.npeers, 1);
	assert_string_equal(v.peers[0].device, NVME);
	device_view_release(&v);
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_int_equal(write_str(f->e, NVME, "", reason), 0);
	{
		static const char *const hosts[] = { "a", "b", "c" };

		for (int i = 0; i < 3; i++) {
			struct host_view h;

			assert_int_equal(engine_host_view(f->e, hosts[i], &h), 0);
			assert_int_equal(h.lut_used + h.dma_used + h.iommu_mappings, 0);
		}
	}
}

/* A composition whose P2P windows do not fit keeps its lends. */
static void test_composition_enospc(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	struct device_view v;

	/* b has 8 entries: GPU takes 3, NIC 4; GPU -> NIC needs 4 more on b */
	assert_int_equal(write_str(f->e, GPU, "b", reason), 0);
	assert_int_equal(write_str(f->e, NIC, "b", reason), 0);
	assert_int_equal(engine_device_view(f->e, NIC, &v), 0);
	assert_int_equal(v.state, DEV_LENT);
	assert_int_equal(v.npeers, 1);
	assert_non_null(strstr(v.peers[0].error, "ENOSPC: no free NTB translation entry"));
	device_view_release(&v);
	assert_int_equal(write_str(f->e, NIC, "", reason), 0);
	assert_int_equal(write_str(f->e, GPU, "", reason), 0);
	assert_fabric_idle(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lend_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eperm_enodev, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ehostdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etimedout, setup, teardown),
		cmocka_unit_test(test_enotsup),
		cmocka_unit_test_setup_teardown(test_rollback_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_everywhere_with_intents, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intent_only_where_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_committed_lend_stands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_return_stands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_return_does_not_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_cycles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hotplug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bytes_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_composition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_composition_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
