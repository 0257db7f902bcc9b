// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_replica.c - distributed mode's mirror of other lenders' lends
 * (core/replica.c), driven with the records a real engine stored, on the
 * sim fabric, with the borrower's registers read back from the sim.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coord.h"
#include "engine_internal.h"
#include "fabric_sim.h"

static const char *cfg_text =
	"[cluster]\n"
	"timeout_ms = 2000\n"
	"[host a]\n"
	"lut_entries = 8\n"
	"[host b]\n"
	"lut_entries = 8\n"
	"[link]\n"
	"a = a\n"
	"b = b\n"
	"[device a:0000:01:00.0]\n"
	"bar0 = 4K\n"
	"[device a:0000:02:00.0]\n"
	"bar0 = 4K\n";

#define DEV1 "a:0000:01:00.0"
#define DEV2 "a:0000:02:00.0"

struct fixture {
	char dir[64];
	struct cluster_config *cfg;
};

/* The memory store with its context kept, so that records can be read. */
static void *stored_ctx;

static int spy_open(const char *where, void **ctx, char *reason)
{
	int r = store_memory_ops.open(where, ctx, reason);

	stored_ctx = r == 0 ? *ctx : NULL;
	return r;
}

static struct engine *engine_up(struct fixture *f, const char *run,
				const char *local_host)
{
	static struct store_ops spy;
	static struct coord_ops per_host; /* the mirror is per-host's */
	struct engine_options opt = { 0 };
	char reason[REASON_MAX], path[128];
	struct engine *e = NULL;

	spy = store_memory_ops;
	spy.open = spy_open;
	snprintf(path, sizeof(path), "%s/%s", f->dir, run);
	opt.cfg = f->cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = path;
	opt.store = &spy;
	opt.store_where = "test";
	if (local_host) {
		per_host = coord_local_ops;
		per_host.per_host = true;
		opt.coord = &per_host;
		opt.local_host = local_host;
	}
	if (engine_new(&opt, &e, reason) < 0)
		fail_msg("engine_new: %s", reason);
	return e;
}

static int copy_rec(void *arg, const struct lend_record *rec)
{
	return lend_record_copy(arg, rec);
}

/* Lend @devid to b on @e and copy the record it stored into @out. */
static void lend_and_read(struct engine *e, const char *devid,
			  struct lend_record *out)
{
	char reason[REASON_MAX];

	assert_int_equal(engine_lend(e, devid, "b", reason), 0);
	memset(out, 0, sizeof(*out));
	assert_int_equal(store_memory_ops.load(stored_ctx, copy_rec, out,
					       reason), 0);
	assert_string_equal(out->device, devid);
	assert_int_equal(out->state, REC_LENT);
}

struct found {
	const struct window *want;
	unsigned hits;
};

/* Is LUT register @reg one of @f->want's entries, translating as stored? */
static int count_reg(void *arg, const struct sim_reg *reg)
{
	struct found *f = arg;
	const struct window *w = f->want;

	if (reg->w.kind == WIN_LUT && reg->w.index >= w->index &&
	    reg->w.index < w->index + w->count &&
	    reg->w.target == w->target + (reg->w.index - w->index) *
						 (w->size / w->count))
		f->hits++;
	return 0;
}

/*
 * A resync reads records in name order: the record of DEV2, which now
 * owns the LUT entries DEV1's return freed, is read before DEV1's
 * removal.  Applying that removal must not clear what DEV2 programmed.
 */
static void test_stale_mirror_does_not_clear(void **state)
{
	struct fixture *f = *state;
	struct lend_record r1, r2;
	struct lend_ack ack;
	struct sim_hw *hw;
	struct found fd;
	char reason[REASON_MAX], run[128];
	bool dirty = false, overlap = false;
	struct engine *lender = engine_up(f, "lender", NULL), *b;

	lend_and_read(lender, DEV1, &r1);
	assert_int_equal(engine_return(lender, DEV1, reason), 0);
	lend_and_read(lender, DEV2, &r2);
	for (unsigned i = 0; i < r1.nwindows; i++)
		for (unsigned j = 0; j < r2.nwindows; j++)
			overlap |= window_overlap(&r1.windows[i], DEV1,
						  &r2.windows[j], DEV2);
	assert_true(overlap); /* else this test proves nothing */
	engine_free(lender);

	b = engine_up(f, "b", "b");
	lend_apply_record(b, DEV1, &r1, &ack, &dirty);
	assert_false(dirty);
	lend_apply_record(b, DEV2, &r2, &ack, &dirty);
	assert_true(dirty); /* DEV1's mirror was stale: read it again */
	lend_apply_record(b, DEV1, NULL, &ack, &dirty);

	snprintf(run, sizeof(run), "%s/b", f->dir);
	assert_int_equal(sim_hw_open(run, &hw, reason), 0);
	for (unsigned j = 0; j < r2.nwindows; j++) {
		if (r2.windows[j].kind != WIN_LUT ||
		    strcmp(r2.windows[j].host, "b"))
			continue;
		fd = (struct found){ .want = &r2.windows[j] };
		assert_int_equal(sim_hw_regs(hw, "b", count_reg, &fd, reason), 0);
		if (fd.hits != r2.windows[j].count)
			fail_msg("%s %s: %u of %u LUT entries programmed", DEV2,
				 r2.windows[j].tag, fd.hits, r2.windows[j].count);
	}
	sim_hw_close(hw);
	engine_free(b);
	lend_record_release(&r1);
	lend_record_release(&r2);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[ERRMSG_MAX];

	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (config_load_string("test.ini", cfg_text, &f->cfg, err) < 0)
		fail_msg("%s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stale_mirror_does_not_clear,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
