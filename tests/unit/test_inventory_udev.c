// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for core/inventory_udev.c with a real libudev reading a
 * umockdev test bed: what enumeration reads from sysfs and udev
 * properties, the monitor's add / change / bind / remove events, the
 * lender's policy (a fake root disk and default-route NIC), and the whole
 * chain into a running engine: coldplug auto-lend, hot-add auto-lend,
 * hot-remove of a lent device, policy refusal, no double lend after a
 * restart.
 *
 * libudev only sees the test bed under the umockdev preload library, so
 * the test re-executes itself under umockdev-wrapper when it is not
 * already running under it (with ASan told that the preload comes first).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "engine.h"
#include "inventory.h"

/* after ours: glib redefines MIN and MAX (the same way) */
#include <umockdev.h>

#define GPU_SYS "/sys/devices/0000:65:00.0"
#define NVME_SYS "/sys/devices/0000:b3:00.0"
#define NIC_SYS "/sys/devices/0000:17:00.0"
#define GPU "nodeA:0000:65:00.0"
#define NVME "nodeA:0000:b3:00.0"
#define NIC "nodeA:0000:17:00.0"
#define WAIT_MS 1000

/* BAR0 16M, BAR1 64M 64-bit (BAR2 its upper half), an I/O BAR4, a ROM. */
#define GPU_RESOURCE                                                        \
	"0x00000000de000000 0x00000000deffffff 0x0000000000040200\n"         \
	"0x0000038000000000 0x0000038003ffffff 0x000000000014220c\n"         \
	"0x0000000000000000 0x0000000000000000 0x0000000000000000\n"         \
	"0x0000000000000000 0x0000000000000000 0x0000000000000000\n"         \
	"0x000000000000e000 0x000000000000e07f 0x0000000000040101\n"         \
	"0x0000000000000000 0x0000000000000000 0x0000000000000000\n"         \
	"0x00000000df000000 0x00000000df07ffff 0x0000000000046200\n"

static const char *cfg_text =
	"[cluster]\n"
	"name = t\n"
	"inventory = udev\n"
	"timeout_ms = 2000\n"
	"[host nodeA]\n"
	"lut_entries = 32\n"
	"[host nodeB]\n"
	"lut_entries = 32\n"
	"[host nodeC]\n"
	"lut_entries = 32\n"
	"[link]\n"
	"a = nodeA\n"
	"b = nodeB\n"
	"[link]\n"
	"a = nodeA\n"
	"b = nodeC\n";

struct fixture {
	UMockdevTestbed *tb;
	char dir[64];
	char proc[96];
	struct policy_paths paths;
	const struct inventory_ops *ops;
	void *inv;
	struct cluster_config *cfg;
	struct engine *e;
	struct inventory_thread *thread;
	char log[8192];
};

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[160];

	f->tb = umockdev_testbed_new();
	assert_non_null(f->tb);
	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-udev-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/*
	 * A fake /proc: the default route goes through eth0, and "the root
	 * file system" is /proc (always an anonymous device, so its source
	 * in mountinfo is used): /dev/nvme0n1 of the test bed.
	 */
	snprintf(f->proc, sizeof(f->proc), "%s/proc", f->dir);
	snprintf(path, sizeof(path), "%s/net", f->proc);
	assert_int_equal(mkdir_p(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/self", f->proc);
	assert_int_equal(mkdir_p(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/net/route", f->proc);
	put(path, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
		  "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n");
	snprintf(path, sizeof(path), "%s/self/mountinfo", f->proc);
	put(path, "22 1 0:5 / /proc rw - ext4 /dev/nvme0n1 rw\n");
	f->paths = (struct policy_paths){ "/sys", f->proc, "/proc" };
	f->ops = &inventory_udev_ops;
	*state = f;
	return 0;
}

/* The engine logs from the inventory thread: the log is shared. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_cb(void *arg, const char *msg)
{
	struct fixture *f = arg;
	size_t n;

	pthread_mutex_lock(&log_lock);
	n = strlen(f->log);
	snprintf(f->log + n, sizeof(f->log) - n, "%s\n", msg);
	pthread_mutex_unlock(&log_lock);
}

static bool log_has(struct fixture *f, const char *text)
{
	bool yes;

	pthread_mutex_lock(&log_lock);
	yes = strstr(f->log, text) != NULL;
	pthread_mutex_unlock(&log_lock);
	return yes;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	inventory_thread_stop(f->thread);
	engine_free(f->e);
	if (f->inv)
		f->ops->close(f->inv);
	config_free(f->cfg);
	g_object_unref(f->tb);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Set (or replace: umockdev refuses an existing link) an attribute link. */
static void relink(struct fixture *f, const char *syspath, const char *name,
		   const char *target)
{
	char *root = umockdev_testbed_get_root_dir(f->tb);
	char path[512];

	snprintf(path, sizeof(path), "%s%s/%s", root, syspath, name);
	unlink(path);
	g_free(root);
	umockdev_testbed_set_attribute_link(f->tb, syspath, name, target);
}

static char *add_gpu(struct fixture *f)
{
	char *p = umockdev_testbed_add_device(
		f->tb, "pci", "0000:65:00.0", NULL,
		"vendor", "0x10de", "device", "0x1db6", "class", "0x030200",
		"subsystem_vendor", "0x10de", "subsystem_device", "0x124a",
		"numa_node", "1", "resource", GPU_RESOURCE, NULL,
		"LENDFS_LENDABLE", "1", "LENDFS_BORROWER", "nodeB", NULL);

	umockdev_testbed_set_attribute_link(f->tb, p, "driver",
					    "../../bus/pci/drivers/nvidia");
	umockdev_testbed_set_attribute_link(f->tb, p, "iommu_group",
					    "../../kernel/iommu_groups/42");
	return p;
}

/* The root disk (see setup) and the default-route NIC, and more. */
static void add_others(struct fixture *f)
{
	char *p;

	p = umockdev_testbed_add_device(f->tb, "pci", "0000:b3:00.0", NULL,
					"vendor", "0x144d", "device", "0xa80a",
					"class", "0x010802", "resource",
					"0x00000000fe000000 0x00000000fe003fff "
					"0x0000000000140204\n",
					NULL, "LENDFS_LENDABLE", "1", NULL);
	g_free(umockdev_testbed_add_device(f->tb, "block", "nvme0n1", p, "dev", "259:0",
					   NULL, "DEVTYPE", "disk", NULL));
	g_free(p);
	p = umockdev_testbed_add_device(f->tb, "pci", "0000:17:00.0", NULL,
					"vendor", "0x15b3", "device", "0x1017",
					"class", "0x020000", NULL,
					/* a borrower without the lendfs tag: ignored */
					"LENDFS_BORROWER", "nodeC", NULL);
	g_free(umockdev_testbed_add_device(f->tb, "net", "eth0", p, "ifindex", "2", NULL,
					   "INTERFACE", "eth0", NULL));
	g_free(p);
	g_free(umockdev_testbed_add_device(f->tb, "pci", "0000:18:00.0", NULL,
					   "vendor", "0x8086", "device", "0x1592",
					   "class", "0x020000", NULL,
					   "LENDFS_LENDABLE", "1", "LENDFS_DENY", "1",
					   "LENDFS_DENY_REASON", "site policy",
					   "LENDFS_BORROWER", "nodeB", NULL));
	g_free(umockdev_testbed_add_device(f->tb, "pci", "0000:00:1d.0", NULL,
					   "vendor", "0x8086", "device", "0xa330",
					   "class", "0x060400", NULL, NULL));
}

static void inv_open(struct fixture *f, const char *host)
{
	struct inventory_args args = { host, NULL, &f->paths };
	char reason[REASON_MAX] = "";

	if (f->ops->open(&args, &f->inv, reason) < 0)
		fail_msg("open: %s", reason);
}

struct list {
	struct cfg_device dev[16];
	unsigned n;
};

static int list_cb(void *arg, const struct cfg_device *dev)
{
	struct list *l = arg;

	assert_true(l->n < ARRAY_SIZE(l->dev));
	l->dev[l->n++] = *dev;
	return 0;
}

static const struct cfg_device *find(const struct list *l, const char *id)
{
	for (unsigned i = 0; i < l->n; i++)
		if (!strcmp(l->dev[i].id, id))
			return &l->dev[i];
	fail_msg("no device %s", id);
	return NULL;
}

static void test_enumerate(void **state)
{
	struct fixture *f = *state;
	const struct cfg_device *d;
	struct list l = { .n = 0 };

	g_free(add_gpu(f));
	add_others(f);
	inv_open(f, "nodeA");
	assert_int_equal(f->ops->enumerate(f->inv, list_cb, &l, NULL), 0);
	/* the pci devices only, not their block / net children */
	assert_int_equal(l.n, 5);

	d = find(&l, GPU);
	assert_string_equal(d->host, "nodeA");
	assert_int_equal(d->addr.bus, 0x65);
	assert_int_equal(d->vendor, 0x10de);
	assert_int_equal(d->device, 0x1db6);
	assert_int_equal(d->class, 0x030200);
	assert_int_equal(d->subsystem_vendor, 0x10de);
	assert_int_equal(d->subsystem_device, 0x124a);
	assert_int_equal(d->bar[0], 16u << 20);
	assert_int_equal(d->bar[1], 64u << 20);
	assert_int_equal(d->bar[2], 0); /* upper half of BAR1 */
	assert_int_equal(d->bar[4], 0); /* I/O */
	assert_int_equal(d->bar[5], 0); /* the ROM line is not a BAR */
	assert_string_equal(d->driver, "nvidia");
	assert_int_equal(d->numa_node, 1);
	assert_int_equal(d->iommu_group, 42);
	assert_string_equal(d->borrower, "nodeB");
	assert_string_equal(d->deny_reason, "");

	d = find(&l, NVME);
	assert_int_equal(d->bar[0], 16u << 10);
	assert_string_equal(d->driver, "");
	assert_int_equal(d->numa_node, -1);
	assert_int_equal(d->iommu_group, -1);
	assert_string_equal(d->deny_reason, "holds the root file system (/dev/nvme0n1)");

	d = find(&l, NIC);
	assert_string_equal(d->deny_reason, "carries the default route (eth0)");
	assert_string_equal(d->borrower, ""); /* not tagged lendable */

	d = find(&l, "nodeA:0000:18:00.0");
	assert_string_equal(d->deny_reason, "is excluded by udev rules (site policy)");
	assert_string_equal(d->borrower, "");

	d = find(&l, "nodeA:0000:00:1d.0");
	assert_string_equal(d->deny_reason, "is a bridge (class 0x060400)");
}

static void test_open_bad_host(void **state)
{
	struct fixture *f = *state;
	struct inventory_args args = { "node.A", NULL, &f->paths };
	char reason[REASON_MAX] = "";

	assert_int_equal(f->ops->open(&args, &f->inv, reason), -EINVAL);
	assert_null(f->inv);
	assert_non_null(strstr(reason, "node.A"));
}

struct events {
	struct inventory_event ev[16];
	unsigned n;
};

static int event_cb(void *arg, const struct inventory_event *ev)
{
	struct events *e = arg;

	assert_true(e->n < ARRAY_SIZE(e->ev));
	e->ev[e->n++] = *ev;
	return 0;
}

/* Dispatch until @want events arrived, for at most WAIT_MS. */
static void wait_events(struct fixture *f, struct events *ev, unsigned want)
{
	struct pollfd p = { .fd = f->ops->monitor_fd(f->inv), .events = POLLIN };
	uint64_t end = now_ns() + WAIT_MS * 1000000ULL;

	assert_true(p.fd >= 0);
	while (ev->n < want && now_ns() < end) {
		if (poll(&p, 1, 50) > 0)
			assert_true(f->ops->dispatch(f->inv, event_cb, ev, NULL) >= 0);
	}
	assert_int_equal(ev->n, want);
}

static void test_monitor(void **state)
{
	struct fixture *f = *state;
	struct events ev = { .n = 0 };
	char *p;

	inv_open(f, "nodeA");
	/* nothing pending: dispatch returns at once */
	assert_int_equal(f->ops->dispatch(f->inv, event_cb, &ev, NULL), 0);

	p = add_gpu(f); /* umockdev sends "add" */
	g_free(umockdev_testbed_add_device(f->tb, "usb", "1-1", NULL, "idVendor", "1d6b",
					   NULL, NULL));
	wait_events(f, &ev, 1);
	assert_int_equal(ev.ev[0].action, INVENTORY_ADD);
	assert_string_equal(ev.ev[0].dev.id, GPU);
	assert_int_equal(ev.ev[0].dev.vendor, 0x10de);
	assert_string_equal(ev.ev[0].dev.borrower, "nodeB");

	relink(f, p, "driver", "../../bus/pci/drivers/vfio-pci");
	umockdev_testbed_uevent(f->tb, p, "bind");
	wait_events(f, &ev, 2);
	assert_int_equal(ev.ev[1].action, INVENTORY_CHANGE);
	assert_string_equal(ev.ev[1].dev.driver, "vfio-pci");

	umockdev_testbed_set_attribute(f->tb, p, "numa_node", "3");
	umockdev_testbed_uevent(f->tb, p, "change");
	wait_events(f, &ev, 3);
	assert_int_equal(ev.ev[2].action, INVENTORY_CHANGE);
	assert_int_equal(ev.ev[2].dev.numa_node, 3);

	umockdev_testbed_uevent(f->tb, p, "remove");
	umockdev_testbed_remove_device(f->tb, p);
	wait_events(f, &ev, 4);
	assert_int_equal(ev.ev[3].action, INVENTORY_REMOVE);
	assert_string_equal(ev.ev[3].dev.id, GPU);
	g_free(p);
}

/* ---- with an engine -------------------------------------------------------- */

static void engine_start(struct fixture *f, const char *store_where)
{
	struct engine_options opt = { 0 };
	char err[ERRMSG_MAX], reason[REASON_MAX] = "", run[128];

	if (config_load_string("test.ini", cfg_text, &f->cfg, err) < 0)
		fail_msg("%s", err);
	inv_open(f, "nodeA");
	if (inventory_coldplug(f->cfg, "nodeA", f->ops, f->inv, log_cb, f, reason) < 0)
		fail_msg("coldplug: %s", reason);
	snprintf(run, sizeof(run), "%s/run", f->dir);
	opt.cfg = f->cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = store_where ? &store_sqlite_ops : &store_memory_ops;
	opt.store_where = store_where ? store_where : "test";
	opt.log = log_cb;
	opt.log_arg = f;
	if (engine_new(&opt, &f->e, reason) < 0)
		fail_msg("engine: %s", reason);
}

static void engine_stop(struct fixture *f)
{
	inventory_thread_stop(f->thread);
	f->thread = NULL;
	engine_free(f->e);
	f->e = NULL;
	f->ops->close(f->inv);
	f->inv = NULL;
	config_free(f->cfg);
	f->cfg = NULL;
}

static enum dev_state state_of(struct fixture *f, const char *id, char *borrower,
			       char *last_error)
{
	struct device_view v;

	assert_int_equal(engine_device_view(f->e, id, &v), 0);
	if (borrower)
		strcpy(borrower, v.borrower);
	if (last_error)
		strcpy(last_error, v.last_error);
	device_view_release(&v);
	return v.state;
}

/* Wait (at most WAIT_MS) until @id's state is @want; false on timeout. */
static bool wait_state(struct fixture *f, const char *id, int want)
{
	uint64_t end = now_ns() + WAIT_MS * 1000000ULL;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	while (now_ns() < end) {
		if (want < 0 ? !engine_device_exists(f->e, id) :
			       engine_device_exists(f->e, id) &&
				       (int)state_of(f, id, NULL, NULL) == want)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static void test_engine_coldplug(void **state)
{
	struct fixture *f = *state;
	char borrower[BORROWER_MAX + 1], err[REASON_MAX + 16], reason[REASON_MAX] = "";
	struct device_view v;

	g_free(add_gpu(f));
	add_others(f);
	engine_start(f, NULL);

	/* coldplug auto-lend of the tagged GPU to its LENDFS_BORROWER */
	assert_int_equal(state_of(f, GPU, borrower, err), DEV_LENT);
	assert_string_equal(borrower, "nodeB");
	assert_string_equal(err, "");
	assert_true(log_has(f, "coldplug: " GPU " has LENDFS_BORROWER=nodeB"));
	assert_true(log_has(f, "coldplug: 5 devices on nodeA from the udev inventory"));
	/* what the udev inventory read is what the engine shows */
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	assert_string_equal(v.driver, "nvidia");
	assert_int_equal(v.numa_node, 1);
	assert_int_equal(v.iommu_group, 42);
	assert_int_equal(v.bar_size[1], 64u << 20);
	device_view_release(&v);

	/* the untagged NIC was not lent; the policy refuses it and the disk */
	assert_int_equal(state_of(f, NIC, NULL, NULL), DEV_AVAILABLE);
	assert_int_equal(engine_lend(f->e, NVME, "nodeB", reason), -EPERM);
	assert_non_null(strstr(reason, "holds the root file system (/dev/nvme0n1)"));
	assert_int_equal(state_of(f, NVME, NULL, err), DEV_AVAILABLE);
	assert_true(strncmp(err, "EPERM: ", 7) == 0);
	assert_int_equal(engine_lend(f->e, NIC, "nodeB", reason), -EPERM);
	assert_non_null(strstr(reason, "carries the default route (eth0)"));
	assert_int_equal(engine_lend(f->e, "nodeA:0000:18:00.0", "nodeB", reason), -EPERM);
	assert_non_null(strstr(reason, "site policy"));
}

static void test_engine_hotplug(void **state)
{
	struct fixture *f = *state;
	char borrower[BORROWER_MAX + 1], err[REASON_MAX + 16], reason[REASON_MAX] = "";
	struct device_view v;
	char *p, *q;

	add_others(f);
	engine_start(f, NULL);
	assert_false(engine_device_exists(f->e, GPU));
	assert_int_equal(inventory_thread_start(f->e, f->ops, f->inv, log_cb, f,
						&f->thread, reason), 0);
	assert_non_null(f->thread);

	/* hot-add: listed and auto-lent within a second */
	p = add_gpu(f);
	assert_true(wait_state(f, GPU, DEV_LENT));
	assert_int_equal(state_of(f, GPU, borrower, NULL), DEV_LENT);
	assert_string_equal(borrower, "nodeB");

	/* a device without a borrower just appears */
	q = umockdev_testbed_add_device(f->tb, "pci", "0000:66:00.0", NULL, "vendor", "0x1002",
					"class", "0x038000", NULL, NULL);
	assert_true(wait_state(f, "nodeA:0000:66:00.0", DEV_AVAILABLE));

	/* change: the driver is refreshed */
	umockdev_testbed_set_attribute_link(f->tb, q, "driver", "../../bus/pci/drivers/amdgpu");
	umockdev_testbed_uevent(f->tb, q, "bind");
	for (int i = 0; i < 200; i++) {
		assert_int_equal(engine_device_view(f->e, "nodeA:0000:66:00.0", &v), 0);
		device_view_release(&v);
		if (!strcmp(v.driver, "amdgpu"))
			break;
		usleep(5000);
	}
	assert_string_equal(v.driver, "amdgpu");

	/* hot-remove of an available device: it disappears */
	umockdev_testbed_uevent(f->tb, q, "remove");
	umockdev_testbed_remove_device(f->tb, q);
	assert_true(wait_state(f, "nodeA:0000:66:00.0", -1));

	/* hot-remove of the lent GPU: torn down, failed, kept until cleared */
	umockdev_testbed_uevent(f->tb, p, "remove");
	umockdev_testbed_remove_device(f->tb, p);
	assert_true(wait_state(f, GPU, DEV_FAILED));
	state_of(f, GPU, NULL, err);
	assert_string_equal(err, "ENODEV: device removed");
	assert_int_equal(engine_device_view(f->e, GPU, &v), 0);
	assert_int_equal(v.nwindows, 0);
	device_view_release(&v);
	assert_int_equal(engine_lend(f->e, GPU, "nodeC", reason), -ENODEV);
	assert_int_equal(engine_return(f->e, GPU, reason), 0);
	assert_false(engine_device_exists(f->e, GPU));
	assert_true(log_has(f, "hot-plug: added " GPU));
	assert_true(log_has(f, "hot-plug: removed " GPU));
	g_free(p);
	g_free(q);
}

static void test_engine_no_double_lend(void **state)
{
	struct fixture *f = *state;
	char db[128], borrower[BORROWER_MAX + 1], err[REASON_MAX + 16];
	char reason[REASON_MAX] = "";

	snprintf(db, sizeof(db), "%s/state.db", f->dir);
	g_free(add_gpu(f));
	engine_start(f, db);
	assert_int_equal(state_of(f, GPU, borrower, NULL), DEV_LENT);
	assert_string_equal(borrower, "nodeB");
	/* the admin moves it to nodeC; that is what the store keeps */
	assert_int_equal(engine_return(f->e, GPU, reason), 0);
	assert_int_equal(engine_lend(f->e, GPU, "nodeC", reason), 0);
	engine_stop(f);

	/* restart: recovered as lent to nodeC, LENDFS_BORROWER=nodeB not tried */
	pthread_mutex_lock(&log_lock);
	f->log[0] = '\0';
	pthread_mutex_unlock(&log_lock);
	engine_start(f, db);
	assert_int_equal(state_of(f, GPU, borrower, err), DEV_LENT);
	assert_string_equal(borrower, "nodeC");
	assert_string_equal(err, "");
	assert_false(log_has(f, "failed"));
}

/* Run under the umockdev preload library, or re-execute so. */
static void under_umockdev(char **argv)
{
	const char *pre = getenv("LD_PRELOAD");
	const char *asan = getenv("ASAN_OPTIONS");
	char self[4096], opts[4096];
	ssize_t n;

	if (pre && strstr(pre, "libumockdev-preload"))
		return;
	if (getenv("LENDFS_UMOCKDEV_REEXEC")) {
		fprintf(stderr, "test_inventory_udev: the umockdev preload did not load\n");
		exit(1);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		perror("test_inventory_udev: /proc/self/exe");
		exit(1);
	}
	self[n] = '\0';
	setenv("LENDFS_UMOCKDEV_REEXEC", "1", 1);
	/*
	 * The preload comes before the ASan runtime, which is fine here; but
	 * ASan's log_path crashes at start under the preload: drop it (a
	 * report then goes to stderr and fails the test all the same).
	 */
	opts[0] = '\0';
	if (asan) {
		char copy[4096], *save = NULL;

		snprintf(copy, sizeof(copy), "%s", asan);
		for (char *o = strtok_r(copy, ":", &save); o; o = strtok_r(NULL, ":", &save))
			if (strncmp(o, "log_path=", 9) != 0)
				snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
					 "%s:", o);
	}
	snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "verify_asan_link_order=0");
	setenv("ASAN_OPTIONS", opts, 1);
	argv[0] = self;
	execvp("umockdev-wrapper", (char *[]){ "umockdev-wrapper", self, NULL });
	perror("test_inventory_udev: cannot run umockdev-wrapper (package umockdev)");
	exit(1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enumerate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_coldplug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_hotplug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_no_double_lend, setup, teardown),
	};

	under_umockdev(argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
