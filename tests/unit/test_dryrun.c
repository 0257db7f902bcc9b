// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for plans (core/dryrun.c, plan_dry_run() of plan.c):
 * engine_plan() of every outcome says what engine_write_borrower() then
 * does (its errno, and exactly its last_error), an ok plan lists the
 * windows the lend takes, and a plan changes nothing: no generation, no
 * reservation, no pass of a fault point.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "fabric_sim.h"
#include "fault.h"

/* a -- b -- c, and b -- d with 3 LUT entries: the GPU needs 2 + 1 */
static const char *cfg_text =
	"[cluster]\ntimeout_ms = 2000\n"
	"[host a]\niommu = on\nlut_entries = 8\nwindow_max = 8M\n"
	"[host b]\nlut_entries = 8\nwindow_max = 8M\nram = 0x0-0xfffffff\n"
	"[host c]\nlut_entries = 8\n"
	"ram = 0x0-0xfffffff,0x100000000-0x10fffffff\n"
	"[host d]\nlut_entries = 3\n"
	"[link]\na = a\nb = b\nlatency_ns = 10\n"
	"[link]\na = b\nb = c\nlatency_ns = 10\n"
	"[link]\na = b\nb = d\n"
	"[device a:0000:01:00.0]\nbar0 = 16M\nbar2 = 64K\n"
	"[device a:0000:02:00.0]\nbar0 = 16K\n"
	"[device b:0000:04:00.0]\nbar0 = 4K\n"
	"[policy]\ndeny = a:0000:02:00.0\n";

#define GPU "a:0000:01:00.0"
#define NVME "a:0000:02:00.0"
#define BDEV "b:0000:04:00.0"

struct fixture {
	char dir[64];
	struct cluster_config *cfg;
	struct engine *e;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct engine_options opt = { 0 };
	char err[ERRMSG_MAX], reason[REASON_MAX], run[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	unsetenv("LENDFS_FAULT");
	unsetenv("LENDFS_DELAY");
	if (config_load_string("test.ini", cfg_text, &f->cfg, err) < 0)
		fail_msg("%s", err);
	snprintf(run, sizeof(run), "%s/run", f->dir);
	opt.cfg = f->cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = &store_memory_ops;
	opt.store_where = "test";
	assert_int_equal(engine_new(&opt, &f->e, reason), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	engine_free(f->e);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Every adapter's LUT and DMA use, for "nothing reserved" checks. */
static void usage(struct engine *e, unsigned *out)
{
	static const char *const hosts[] = { "a", "b", "c", "d" };

	for (unsigned i = 0; i < 4; i++) {
		struct host_view hv;

		assert_int_equal(engine_host_view(e, hosts[i], &hv), 0);
		out[2 * i] = hv.lut_used;
		out[2 * i + 1] = hv.dma_used;
	}
}

/*
 * The plan of @host for @dev into @text: nothing about the device (its
 * generation, last_error) nor any adapter changes, and no fault point is
 * passed.  Returns the plan's outcome.
 */
static int plan(struct engine *e, const char *dev, const char *host,
		char *text, size_t cap)
{
	static const char *const points[] = { "route", "ntb_alloc", "iommu_alloc" };
	unsigned before[8], after[8], passes[3];
	struct device_view v0, v1;
	FILE *out = fmemopen(text, cap, "w");
	char reason[REASON_MAX];
	int r, have = engine_device_view(e, dev, &v0) == 0;

	assert_non_null(out);
	usage(e, before);
	for (unsigned i = 0; i < 3; i++)
		passes[i] = fault_count(points[i]);
	r = engine_plan(e, dev, host, out, reason);
	assert_int_equal(fclose(out), 0);
	usage(e, after);
	assert_memory_equal(before, after, sizeof(before));
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(fault_count(points[i]), passes[i]);
	if (have) {
		assert_int_equal(engine_device_view(e, dev, &v1), 0);
		assert_int_equal(v0.generation, v1.generation);
		assert_string_equal(v0.last_error, v1.last_error);
		device_view_release(&v0);
		device_view_release(&v1);
	}
	return r;
}

/* The plan fails with @err, and so does the write, leaving its first line. */
static void plan_is_write(struct engine *e, const char *dev, const char *host,
			  int err)
{
	char text[4096], reason[REASON_MAX];
	struct device_view v;

	assert_int_equal(plan(e, dev, host, text, sizeof(text)), err);
	assert_int_equal(engine_write_borrower(e, dev, host, strlen(host), NULL,
					       reason), err);
	if (engine_device_view(e, dev, &v) < 0) {
		assert_int_equal(err, -ENODEV);
		assert_string_equal(text, "ENODEV: no device nosuch:0000:00:00.0\n");
		return;
	}
	*strchr(text, '\n') = '\0';
	assert_string_equal(text, v.last_error);
	device_view_release(&v);
}

static void test_ok_plan_is_the_lend(void **state)
{
	struct fixture *f = *state;
	char text[4096], reason[REASON_MAX];
	struct device_view v;
	unsigned lut_b = 0, dma = 0, iommu = 0;

	assert_int_equal(plan(f->e, GPU, "c", text, sizeof(text)), 0);
	assert_string_equal(text,
			    "ok\n"
			    "route a -> b -> c\n"
			    "latency_ns 740\n"
			    "lut_entries a/ntb0 0\n"
			    "lut_entries b/ntb0 3\n"
			    "lut_entries c/ntb0 3\n"
			    "dma_windows 4\n"
			    "iommu_mappings 2\n"
			    "lut_free a/ntb0 8\n"
			    "lut_free b/ntb0 5\n"
			    "lut_free c/ntb0 5\n");
	assert_int_equal(engine_lend(f->e, GPU, "c", reason), 0);
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	for (unsigned i = 0; i < v.nwindows; i++) {
		if (v.windows[i].kind == WIN_LUT && !strcmp(v.windows[i].host, "b"))
			lut_b += v.windows[i].count;
		dma += v.windows[i].kind == WIN_DMA;
		iommu += v.windows[i].kind == WIN_IOMMU;
	}
	assert_int_equal(lut_b, 3);
	assert_int_equal(dma, 4);
	assert_int_equal(iommu, 2);
	assert_int_equal(v.route.latency_ns, 740);
	device_view_release(&v);
	/* the same value again: a no-op, and the plan shows the lend it keeps */
	assert_int_equal(plan(f->e, GPU, "c", text, sizeof(text)), 0);
	assert_non_null(strstr(text, "ok\nnoop already lent to c\nroute a -> b -> c\n"));
	assert_non_null(strstr(text, "lut_free c/ntb0 5\n"));
}

static void test_errors_are_the_writes(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];

	plan_is_write(f->e, GPU, "zz", -EINVAL);	/* unknown host */
	plan_is_write(f->e, GPU, "a", -EINVAL);	/* its own lender */
	plan_is_write(f->e, GPU, "vm:b", -EINVAL);	/* malformed vm */
	plan_is_write(f->e, NVME, "b", -EPERM);	/* [policy] deny */
	plan_is_write(f->e, "nosuch:0000:00:00.0", "b", -ENODEV);
	/* d has 3 entries, the GPU needs 3 on b and 3 on d: fits */
	assert_int_equal(engine_lend(f->e, BDEV, "d", reason), 0); /* 1 on d */
	plan_is_write(f->e, GPU, "d", -ENOSPC);
	plan_is_write(f->e, BDEV, "c", -EBUSY);	/* lent to d */
	assert_int_equal(engine_write_host_state(f->e, "c", "offline", 7, NULL,
						 reason), 0);
	plan_is_write(f->e, GPU, "c", -EHOSTDOWN);	/* the borrower */
	assert_int_equal(engine_write_host_state(f->e, "a", "offline", 7, NULL,
						 reason), 0);
	plan_is_write(f->e, GPU, "b", -EHOSTDOWN);	/* the lender */
}

/* An ENOSPC plan keeps its route; other errors print nothing more. */
static void test_error_plan_shows_route(void **state)
{
	struct fixture *f = *state;
	char text[4096], reason[REASON_MAX];

	assert_int_equal(engine_lend(f->e, BDEV, "d", reason), 0);
	assert_int_equal(plan(f->e, GPU, "d", text, sizeof(text)), -ENOSPC);
	assert_non_null(strstr(text, "\nroute a -> b -> d\nlatency_ns "));
	assert_null(strstr(text, "lut_free"));
	assert_int_equal(plan(f->e, NVME, "b", text, sizeof(text)), -EPERM);
	assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text));
}

/* The composition plan of @host for @name: as plan(), nothing changes. */
static int compo_plan(struct engine *e, const char *name, const char *host,
		      char *text, size_t cap)
{
	static const char *const points[] = { "route", "ntb_alloc", "iommu_alloc",
					      "p2p_alloc" };
	unsigned before[8], after[8], passes[4];
	FILE *out = fmemopen(text, cap, "w");
	char reason[REASON_MAX];
	int r;

	assert_non_null(out);
	usage(e, before);
	for (unsigned i = 0; i < 4; i++)
		passes[i] = fault_count(points[i]);
	r = engine_compo_plan(e, name, host, out, reason);
	assert_int_equal(fclose(out), 0);
	usage(e, after);
	assert_memory_equal(before, after, sizeof(before));
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(fault_count(points[i]), passes[i]);
	return r;
}

/* The composition's write of @host fails as its plan said: @err, its line. */
static void compo_plan_is_write(struct engine *e, const char *host, int err,
				const char *prefix)
{
	char text[8192], reason[REASON_MAX];
	struct compo_view *v = malloc(sizeof(*v));

	assert_non_null(v);
	assert_int_equal(compo_plan(e, "job", host, text, sizeof(text)), err);
	assert_int_equal(engine_compo_write_borrower(e, "job", host, strlen(host),
						     NULL, reason), err);
	assert_int_equal(engine_compo_view(e, "job", v), 0);
	*strchr(text, '\n') = '\0';
	assert_string_equal(text, v->last_error);
	assert_memory_equal(text, prefix, strlen(prefix));
	free(v);
}

/*
 * A composition is planned member after member with the reservations of
 * those before it held, as its lend makes them: two devices that each fit
 * on d's 3 LUT entries alone do not fit together, and the plan says the
 * ENOSPC of the second, as the write does.
 */
static void test_compo_plan_is_the_write(void **state)
{
	struct fixture *f = *state;
	char text[8192], reason[REASON_MAX];
	static const char list[] = BDEV "\n" GPU "\n";

	assert_int_equal(engine_compo_create(f->e, "job", reason), 0);
	assert_int_equal(engine_compo_write_devices(f->e, "job", list,
						    strlen(list), NULL, reason), 0);
	assert_int_equal(plan(f->e, BDEV, "d", text, sizeof(text)), 0);
	assert_int_equal(plan(f->e, GPU, "d", text, sizeof(text)), 0);
	assert_int_equal(compo_plan(f->e, "job", "d", text, sizeof(text)), -ENOSPC);
	assert_non_null(strstr(text, "\ndevice " BDEV "\nroute b -> d\n"));
	assert_non_null(strstr(text, "\ndevice " GPU "\nroute a -> b -> d\n"));
	assert_null(strstr(text, "lut_free"));
	compo_plan_is_write(f->e, "d", -ENOSPC, "ENOSPC: " GPU ": ");
	compo_plan_is_write(f->e, "a", -EINVAL, "EINVAL: " GPU ": ");
	/* to c both fit: ok, with the P2P link between them, then lent */
	assert_int_equal(compo_plan(f->e, "job", "c", text, sizeof(text)), 0);
	assert_memory_equal(text, "ok\ndevice " BDEV "\n", 3 + 7 + strlen(BDEV) + 1);
	assert_non_null(strstr(text, "\np2p " GPU " " BDEV " "));
	assert_non_null(strstr(text, "\nlut_free c/ntb0 "));
	assert_int_equal(engine_compo_write_borrower(f->e, "job", "c", 1, NULL,
						     reason), 0);
	assert_int_equal(compo_plan(f->e, "job", "c", text, sizeof(text)), 0);
	assert_string_equal(text, "ok\nnoop already lent to c\n");
	compo_plan_is_write(f->e, "b", -EBUSY,
			    "EBUSY: composition job is lent to c; return it first");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_plan_is_the_lend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_are_the_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_plan_shows_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compo_plan_is_the_write, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
