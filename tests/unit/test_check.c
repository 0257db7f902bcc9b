// SPDX-License-Identifier: LGPL-2.1-or-later
/* cmocka tests for core/check.c: every invariant of `lendfs --check`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "engine.h"

static const char *cfg_text =
	"[host a]\niommu = on\n"
	"[host b]\n"
	"[host c]\n"
	"[link]\na = a\nb = b\n"
	"[link]\na = b\nb = c\n"
	"[device a:0000:01:00.0]\nbar0 = 16M\nbar2 = 64K\n"
	"[device b:0000:02:00.0]\nbar0 = 16K\n";

struct fx {
	char dir[64];
	char db[96];
	struct cluster_config *cfg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[ERRMSG_MAX];

	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-check-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	assert_int_equal(config_load_string("t.ini", cfg_text, &f->cfg, err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A correct lend of a:0000:01:00.0 to b made by the real engine. */
static void lend_for_real(struct fx *f, const char *dev, const char *to)
{
	struct engine_options opt = { 0 };
	struct engine *e;
	char reason[REASON_MAX], run[128];

	snprintf(run, sizeof(run), "%s/run", f->dir);
	opt.cfg = f->cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = &store_sqlite_ops;
	opt.store_where = f->db;
	assert_int_equal(engine_new(&opt, &e, reason), 0);
	assert_int_equal(engine_lend(e, dev, to, reason), 0);
	engine_free(e);
}

static int run_check(struct fx *f, char **text)
{
	char reason[REASON_MAX];
	size_t len;
	FILE *out = open_memstream(text, &len);
	int r = lendfs_check(f->cfg, &store_sqlite_ops, f->db, out, reason);

	fclose(out);
	return r;
}

static void put(struct fx *f, struct lend_record *rec)
{
	void *ctx;
	char reason[REASON_MAX];

	assert_int_equal(store_sqlite_ops.open(f->db, &ctx, reason), 0);
	assert_int_equal(store_sqlite_ops.put(ctx, rec, reason), 0);
	store_sqlite_ops.close(ctx);
}

static void test_clean(void **state)
{
	struct fx *f = *state;
	char *text = NULL;

	lend_for_real(f, "a:0000:01:00.0", "b");
	lend_for_real(f, "b:0000:02:00.0", "c");
	assert_int_equal(run_check(f, &text), 0);
	assert_string_equal(text, "");
	free(text);
}

static void test_violations(void **state)
{
	struct fx *f = *state;
	struct window w = { .kind = WIN_LUT, .index = 0, .count = 1,
			    .local = 0x200000000000ULL, .size = 0x1000,
			    .target = 0x380000000000ULL };
	struct lend_record rec = { .state = REC_LENT, .windows = &w, .nwindows = 1 };
	char *text = NULL;
	int n;

	snprintf(w.host, sizeof(w.host), "c");
	snprintf(w.next, sizeof(w.next), "b");
	snprintf(w.tag, sizeof(w.tag), "bar0");
	/* a device the config does not have */
	snprintf(rec.device, sizeof(rec.device), "b:0000:09:00.0");
	snprintf(rec.borrower, sizeof(rec.borrower), "c");
	put(f, &rec);
	/* lent to an unknown host */
	snprintf(rec.device, sizeof(rec.device), "b:0000:02:00.0");
	snprintf(rec.borrower, sizeof(rec.borrower), "zz");
	put(f, &rec);
	/* left lending, and windows that do not match: a has iommu on */
	rec.state = REC_LENDING;
	snprintf(rec.device, sizeof(rec.device), "a:0000:01:00.0");
	snprintf(rec.borrower, sizeof(rec.borrower), "c");
	w.index = 5;
	put(f, &rec);
	n = run_check(f, &text);
	assert_non_null(strstr(text, "b:0000:09:00.0: device is not in the config"));
	assert_non_null(strstr(text, "b:0000:02:00.0: borrower zz is not a configured host"));
	assert_non_null(strstr(text, "a:0000:01:00.0: left lending"));
	assert_non_null(strstr(text, "bar2: expected one LUT window on borrower c, found 0"));
	assert_non_null(strstr(text, "ram0: expected one DMA window on lender a, found 0"));
	assert_non_null(strstr(text, "ram0: expected 1 IOMMU mapping(s) on a (iommu on), found 0"));
	/* the first two also share LUT entry 0 on c: the store's own check */
	assert_non_null(strstr(text, "lut entries 0..0 on c overlaps"));
	assert_int_equal(n, 7);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_violations, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
