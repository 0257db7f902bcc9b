// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for core/inventory.c: back-end lookup, the local host
 * name, the config back-end, coldplug merging into a configuration (with
 * a fake back-end through the same operations table), and how hot-plug
 * events reach a real engine.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "inventory.h"

static const char *cfg_text =
	"[cluster]\n"
	"inventory = udev\n"
	"timeout_ms = 2000\n"
	"[host a]\n"
	"lut_entries = 16\n"
	"[host b]\n"
	"lut_entries = 16\n"
	"[host c]\n"
	"[link]\n"
	"a = a\n"
	"b = b\n"
	"[link]\n"
	"a = a\n"
	"b = c\n"
	"[device a:0000:01:00.0]\n"
	"class = 0x030200\n"
	"bar0 = 1M\n"
	"[device b:0000:09:00.0]\n"
	"bar0 = 4K\n"
	"[policy]\n"
	"autolend = a:0000:02:00.0 -> c\n";

/* ---- a fake back-end ------------------------------------------------------- */

static struct cfg_device fake_devs[4];
static unsigned fake_n;

static void fake_dev(const char *id, uint32_t class, uint64_t bar0,
		     const char *borrower)
{
	struct cfg_device *d = &fake_devs[fake_n++];

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	assert_int_equal(device_id_parse(id, d->host, &d->addr), 0);
	d->class = class;
	d->bar[0] = bar0;
	d->numa_node = 0;
	d->iommu_group = 7;
	snprintf(d->driver, sizeof(d->driver), "drv%u", fake_n);
	snprintf(d->borrower, sizeof(d->borrower), "%s", borrower);
}

static int fake_open(const struct inventory_args *a, void **ctx, char *reason)
{
	*ctx = NULL;
	return 0;
}

static int fake_enumerate(void *ctx, inventory_device_cb cb, void *arg,
			  char *reason)
{
	for (unsigned i = 0; i < fake_n; i++) {
		int r = cb(arg, &fake_devs[i]);

		if (r)
			return r < 0 ? r : 0;
	}
	return 0;
}

static int fake_fd(void *ctx)
{
	return -1;
}

static int fake_dispatch(void *ctx, inventory_event_cb cb, void *arg,
			 char *reason)
{
	return 0;
}

static void fake_close(void *ctx)
{
}

static const struct inventory_ops fake_ops = {
	"fake", fake_open, fake_enumerate, fake_fd, fake_dispatch, fake_close,
};

struct fixture {
	char dir[64];
	struct cluster_config *cfg;
	struct engine *e;
	char log[4096];
};

static void log_cb(void *arg, const char *msg)
{
	struct fixture *f = arg;
	size_t n = strlen(f->log);

	snprintf(f->log + n, sizeof(f->log) - n, "%s\n", msg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[ERRMSG_MAX];

	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-inv-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(config_load_string("t.ini", cfg_text, &f->cfg, err), 0);
	fake_n = 0;
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

static void engine_up(struct fixture *f)
{
	struct engine_options opt = { 0 };
	char reason[REASON_MAX] = "", run[128];

	snprintf(run, sizeof(run), "%s/run", f->dir);
	opt.cfg = f->cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = &store_memory_ops;
	opt.store_where = "t";
	opt.log = log_cb;
	opt.log_arg = f;
	if (engine_new(&opt, &f->e, reason) < 0)
		fail_msg("engine: %s", reason);
}

static enum dev_state state_of(struct fixture *f, const char *id, char *borrower)
{
	struct device_view v;

	assert_int_equal(engine_device_view(f->e, id, &v), 0);
	if (borrower)
		strcpy(borrower, v.borrower);
	device_view_release(&v);
	return v.state;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_local_host(void **state)
{
	char host[HOST_NAME_MAX_LEN + 1], sys[256], reason[REASON_MAX] = "";
	int r;

	assert_int_equal(inventory_local_host("nodeA", host, sizeof(host), reason), 0);
	assert_string_equal(host, "nodeA");
	assert_int_equal(inventory_local_host("node.A", host, sizeof(host), reason),
			 -EINVAL);
	assert_non_null(strstr(reason, "'node.A'"));
	/* the machine's name, up to the first dot */
	assert_int_equal(gethostname(sys, sizeof(sys)), 0);
	sys[strcspn(sys, ".")] = '\0';
	r = inventory_local_host(NULL, host, sizeof(host), reason);
	if (name_valid(sys)) {
		assert_int_equal(r, 0);
		assert_string_equal(host, sys);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_non_null(strstr(reason, "--host"));
	}
}

struct count {
	unsigned n;
	char ids[8][DEVICE_ID_MAX];
};

static int count_cb(void *arg, const struct cfg_device *d)
{
	struct count *c = arg;

	snprintf(c->ids[c->n++], DEVICE_ID_MAX, "%s", d->id);
	return 0;
}

static void test_config_backend(void **state)
{
	struct fixture *f = *state;
	struct inventory_args args = { "a", f->cfg, NULL };
	struct inventory_thread *t = (void *)1;
	struct count c = { 0 };
	void *ctx;

	assert_int_equal(inventory_config_ops.open(&args, &ctx, NULL), 0);
	assert_int_equal(inventory_config_ops.enumerate(ctx, count_cb, &c, NULL), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.ids[0], "a:0000:01:00.0");
	assert_int_equal(inventory_config_ops.monitor_fd(ctx), -1);
	/* coldplug of the config into itself changes nothing */
	assert_int_equal(inventory_coldplug(f->cfg, "a", &inventory_config_ops, ctx,
					    log_cb, f, NULL), 1);
	assert_int_equal(f->cfg->ndevices, 2);
	assert_int_equal(f->cfg->nautolends, 1);
	engine_up(f);
	/* no monitor: no thread */
	assert_int_equal(inventory_thread_start(f->e, &inventory_config_ops, ctx, NULL,
						NULL, &t, NULL), 0);
	assert_null(t);
	inventory_thread_stop(t);
	inventory_config_ops.close(ctx);

	args.local_host = NULL; /* every host */
	assert_int_equal(inventory_config_ops.open(&args, &ctx, NULL), 0);
	c.n = 0;
	assert_int_equal(inventory_config_ops.enumerate(ctx, count_cb, &c, NULL), 0);
	assert_int_equal(c.n, 2);
	inventory_config_ops.close(ctx);
}

static void test_coldplug_merge(void **state)
{
	struct fixture *f = *state;
	char borrower[BORROWER_MAX + 1], reason[REASON_MAX] = "";
	const struct cfg_device *d;

	fake_dev("a:0000:01:00.0", 0x030000, 2 << 20, "");  /* replaces the config's */
	fake_dev("a:0000:02:00.0", 0x010802, 16 << 10, "b"); /* [policy] autolend -> c wins */
	fake_dev("a:0000:03:00.0", 0x020000, 1 << 20, "b");  /* auto-lent to b */
	assert_int_equal(inventory_coldplug(f->cfg, "a", &fake_ops, NULL, log_cb, f, reason), 3);

	assert_int_equal(f->cfg->nhosts, 3); /* a was there */
	assert_int_equal(f->cfg->ndevices, 4);
	d = &f->cfg->devices[0];
	assert_string_equal(d->id, "a:0000:01:00.0");
	assert_int_equal(d->class, 0x030000);
	assert_int_equal(d->bar[0], 2 << 20);
	assert_string_equal(d->driver, "drv1");
	assert_int_equal(d->line, 15); /* still points at the config */
	assert_string_equal(f->cfg->devices[1].id, "b:0000:09:00.0");
	assert_int_equal(f->cfg->nautolends, 2);
	assert_string_equal(f->cfg->autolends[0].borrower, "c");
	assert_string_equal(f->cfg->autolends[1].device, "a:0000:03:00.0");
	assert_string_equal(f->cfg->autolends[1].borrower, "b");
	assert_non_null(strstr(f->log, "a:0000:01:00.0 (t.ini:15) is replaced by the real device"));
	assert_non_null(strstr(f->log, "[policy] autolend -> c overrides LENDFS_BORROWER=b"));

	engine_up(f);
	assert_int_equal(state_of(f, "a:0000:02:00.0", borrower), DEV_LENT);
	assert_string_equal(borrower, "c");
	assert_int_equal(state_of(f, "a:0000:03:00.0", borrower), DEV_LENT);
	assert_string_equal(borrower, "b");
	assert_int_equal(state_of(f, "a:0000:01:00.0", NULL), DEV_AVAILABLE);
}

static void test_coldplug_new_host(void **state)
{
	struct fixture *f = *state;
	struct host_view h;

	fake_dev("vm1:0000:00:02.0", 0x010000, 4096, "");
	assert_int_equal(inventory_coldplug(f->cfg, "vm1", &fake_ops, NULL, log_cb, f, NULL), 1);
	assert_int_equal(f->cfg->nhosts, 4);
	assert_non_null(config_find_host(f->cfg, "vm1"));
	assert_non_null(strstr(f->log, "host vm1 is not in the config"));
	engine_up(f);
	assert_int_equal(engine_host_view(f->e, "vm1", &h), 0);
	assert_int_equal(h.lut_entries, DEFAULT_LUT_ENTRIES);
	assert_true(engine_device_exists(f->e, "vm1:0000:00:02.0"));
}

static void test_apply_event(void **state)
{
	struct fixture *f = *state;
	struct inventory_event ev = { .action = INVENTORY_ADD };
	char borrower[BORROWER_MAX + 1];
	struct device_view v;

	engine_up(f);
	/* add of a known device: a refresh */
	fake_dev("a:0000:01:00.0", 0x030200, 1 << 20, "b");
	ev.dev = fake_devs[0];
	snprintf(ev.dev.driver, sizeof(ev.dev.driver), "vfio-pci");
	assert_int_equal(inventory_apply_event(f->e, &ev, log_cb, f), 0);
	assert_int_equal(engine_device_view(f->e, "a:0000:01:00.0", &v), 0);
	assert_string_equal(v.driver, "vfio-pci");
	device_view_release(&v);
	assert_int_equal(state_of(f, "a:0000:01:00.0", NULL), DEV_AVAILABLE);

	/* remove of an unknown device: ignored */
	ev.action = INVENTORY_REMOVE;
	snprintf(ev.dev.id, sizeof(ev.dev.id), "a:0000:77:00.0");
	assert_int_equal(inventory_apply_event(f->e, &ev, log_cb, f), 0);

	/* change of an unknown device: added, but not auto-lent */
	fake_dev("a:0000:05:00.0", 0x020000, 1 << 20, "b");
	ev.action = INVENTORY_CHANGE;
	ev.dev = fake_devs[1];
	assert_int_equal(inventory_apply_event(f->e, &ev, log_cb, f), 0);
	assert_int_equal(state_of(f, "a:0000:05:00.0", NULL), DEV_AVAILABLE);

	/* add with a borrower: auto-lent; the engine reports it */
	fake_dev("a:0000:06:00.0", 0x020000, 1 << 20, "b");
	ev.action = INVENTORY_ADD;
	ev.dev = fake_devs[2];
	assert_int_equal(inventory_apply_event(f->e, &ev, log_cb, f), 0);
	assert_int_equal(state_of(f, "a:0000:06:00.0", borrower), DEV_LENT);
	assert_string_equal(borrower, "b");
	assert_non_null(strstr(f->log, "hot-plug: added a:0000:06:00.0 (0000:0000 class "
				       "0x020000; LENDFS_BORROWER=b)"));

	/* a device of a host nobody knows: refused, logged */
	fake_dev("x:0000:01:00.0", 0x020000, 4096, "");
	ev.dev = fake_devs[3];
	assert_true(inventory_apply_event(f->e, &ev, log_cb, f) < 0);
	assert_non_null(strstr(f->log, "hot-plug: cannot add x:0000:01:00.0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_host),
		cmocka_unit_test_setup_teardown(test_config_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coldplug_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coldplug_new_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_event, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
