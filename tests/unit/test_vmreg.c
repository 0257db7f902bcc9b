// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for VM borrowers in the engine (core/vmreg.c and its hooks
 * in lend.c): the registry (create, attach, remove, views, errors, the
 * store), and against a real QEMU (tests/vm/qemu_harness.h): lend ->
 * query-pci, return with the guest's acknowledgement, return timeout and
 * late completion, QEMU killed while lent, rollback of a failed hot-add
 * and of a failed commit, and a restart of the engine that finds the
 * device still in the guest.  The QEMU tests skip (with a message) only
 * when qemu-system-x86_64 is not installed; a QEMU that does not start
 * fails the test, with its log.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"

#include "../vm/qemu_harness.h"

#define GPU "a:0000:01:00.0"	/* bar0 16 MiB, bar2 1 MiB */
#define GPU_QDEV "lendfs-a-0000-01-00-0-bar0"	/* in the guest: one per BAR */
#define GPU_QDEV2 "lendfs-a-0000-01-00-0-bar2"
#define GPU_MEM "lendfs-mem-a-0000-01-00-0-bar0"
#define GPU_MEM2 "lendfs-mem-a-0000-01-00-0-bar2"
#define TINY "a:0000:02:00.0"	/* one 256-byte BAR */
#define MIB (1ULL << 20)
#define SLOTS_2_3 0xcu /* the GPU's bar0 and bar2 in the guest, pc */

static const char *cfg_text =
	"[cluster]\n"
	"timeout_ms = 5000\n"
	"vm_unplug_timeout_ms = 300\n"
	"[host a]\n"
	"iommu = on\n"
	"lut_entries = 16\n"
	"window_max = 8M\n"
	"[host b]\n"
	"lut_entries = 16\n"
	"window_max = 8M\n"
	"[link]\n"
	"a = a\n"
	"b = b\n"
	"[device a:0000:01:00.0]\n"
	"bar0 = 16M\n"
	"bar2 = 1M\n"
	"[device a:0000:02:00.0]\n"
	"bar0 = 256\n"
	"[vm b/static1]\n"
	"ram = 0x0-0xfffffff\n";

struct fixture {
	char dir[64];
	char db[96];
	bool sqlite;
	struct cluster_config *cfg;
	struct engine *e;
	pthread_mutex_t log_lock;
	char log[8192];
};

static struct qemu qm = { .fd_b = -1 };

static void log_cb(void *arg, const char *msg)
{
	struct fixture *f = arg;
	size_t n;

	pthread_mutex_lock(&f->log_lock);
	n = strlen(f->log);
	snprintf(f->log + n, sizeof(f->log) - n, "%s\n", msg);
	pthread_mutex_unlock(&f->log_lock);
}

static bool logged(struct fixture *f, const char *needle)
{
	bool r;

	pthread_mutex_lock(&f->log_lock);
	r = strstr(f->log, needle) != NULL;
	pthread_mutex_unlock(&f->log_lock);
	return r;
}

/* The log line comes after the change it reports: wait for it, bounded. */
static bool wait_logged(struct fixture *f, const char *needle, unsigned ms)
{
	double t0 = qemu_now_ms();

	while (qemu_now_ms() - t0 < ms) {
		if (logged(f, needle))
			return true;
		qemu_sleep_ms(10);
	}
	return logged(f, needle);
}

static int engine_up(struct fixture *f)
{
	struct engine_options opt = { 0 };
	char err[ERRMSG_MAX], reason[REASON_MAX] = "", run[128];
	int r;

	if (config_load_string("test.ini", cfg_text, &f->cfg, err) < 0)
		fail_msg("%s", err);
	snprintf(run, sizeof(run), "%s/run", f->dir);
	opt.cfg = f->cfg;
	opt.fabric = &fabric_sim_ops;
	opt.run_dir = run;
	opt.store = f->sqlite ? &store_sqlite_ops : &store_memory_ops;
	opt.store_where = f->sqlite ? f->db : "test";
	opt.log = log_cb;
	opt.log_arg = f;
	r = engine_new(&opt, &f->e, reason);
	if (r < 0)
		fprintf(stderr, "engine_new: %s\n", reason);
	return r;
}

static void engine_down(struct fixture *f)
{
	engine_free(f->e);
	config_free(f->cfg);
	f->e = NULL;
	f->cfg = NULL;
}

static int setup_common(void **state, bool sqlite)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-vmreg-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	f->sqlite = sqlite;
	pthread_mutex_init(&f->log_lock, NULL);
	unsetenv("LENDFS_FAULT");
	unsetenv("LENDFS_DELAY");
	assert_int_equal(engine_up(f), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, false);
}

static int setup_sqlite(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	engine_down(f);
	qemu_stop(&qm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	pthread_mutex_destroy(&f->log_lock);
	free(f);
	unsetenv("LENDFS_FAULT");
	return 0;
}

/* ---- helpers --------------------------------------------------------- */

static enum dev_state state_of(struct engine *e, const char *id, char *last_error,
			       unsigned *nwindows)
{
	struct device_view v;

	assert_int_equal(engine_device_view(e, id, &v), 0);
	if (last_error)
		strcpy(last_error, v.last_error);
	if (nwindows)
		*nwindows = v.nwindows;
	device_view_release(&v);
	return v.state;
}

static bool wait_state(struct engine *e, const char *id, enum dev_state want,
		       unsigned ms)
{
	double t0 = qemu_now_ms();

	while (qemu_now_ms() - t0 < ms) {
		if (state_of(e, id, NULL, NULL) == want)
			return true;
		qemu_sleep_ms(10);
	}
	return state_of(e, id, NULL, NULL) == want;
}

static void view_ok(struct engine *e, const char *host, const char *vm,
		    struct vm_view *v)
{
	assert_int_equal(engine_vm_view(e, host, vm, v), 0);
}

static int attach(struct engine *e, const char *host, const char *vm,
		  const char *path, char *reason)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s\n", path);
	return engine_vm_attach(e, host, vm, buf, strlen(buf), NULL, reason);
}

struct names {
	char v[8][VM_NAME_MAX_LEN + 1];
	unsigned n;
};

static int name_cb(void *arg, const char *vm)
{
	struct names *n = arg;

	if (n->n < 8)
		snprintf(n->v[n->n++], sizeof(n->v[0]), "%s", vm);
	return 0;
}

/* How often query-pci on the test's socket lists @qdev. */
static unsigned pci_count(const char *qdev)
{
	struct json_object *r = qemu_b_cmd(&qm, "{\"execute\":\"query-pci\"}");
	const char *s = r ? json_object_to_json_string(r) : "";
	unsigned n = 0;

	for (const char *p = strstr(s, qdev); p; p = strstr(p + 1, qdev))
		if (p[strlen(qdev)] == '"')
			n++;
	json_object_put(r);
	return n;
}

/* Start QEMU (pc, 512 MiB unless said) and attach it as b/vm1. */
static void guest_up(struct fixture *f, const char *machine, const char *mem)
{
	char reason[REASON_MAX] = "";
	struct vm_view *v = malloc(sizeof(*v));

	if (qemu_start(&qm, machine, mem, NULL) < 0)
		fail_msg("qemu: %s", qm.error);
	if (!engine_vm_exists(f->e, "b", "vm1"))
		assert_int_equal(engine_vm_create(f->e, "b", "vm1", reason), 0);
	if (attach(f->e, "b", "vm1", qm.sock_a, reason) < 0)
		fail_msg("attach: %s", reason);
	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_CONNECTED);
	assert_string_equal(v->qmp, qm.sock_a);
	free(v);
}

/* ---- the registry, no QEMU needed ------------------------------------ */

static void test_registry(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX], missing[160];
	struct vm_view *v = malloc(sizeof(*v));
	struct names n = { 0 };

	/* the [vm] section is listed, static, with the config's memory */
	view_ok(f->e, "b", "static1", v);
	assert_int_equal(v->state, VM_STATIC);
	assert_string_equal(vm_view_state_name(v->state), "static");
	assert_string_equal(v->memory, "ram 0x0-0xfffffff\n");
	assert_string_equal(v->qmp, "");

	assert_int_equal(engine_vm_create(f->e, "b", "vm1", reason), 0);
	assert_int_equal(engine_vm_create(f->e, "b", "vm1", reason), -EEXIST);
	assert_non_null(strstr(reason, "vm b/vm1 exists"));
	assert_int_equal(engine_vm_create(f->e, "b", "static1", reason), -EEXIST);
	assert_int_equal(engine_vm_create(f->e, "zz", "vm1", reason), -ENOENT);
	assert_non_null(strstr(reason, "no host zz"));
	assert_int_equal(engine_vm_create(f->e, "b", "bad.name", reason), -EINVAL);
	assert_non_null(strstr(reason, "malformed vm name 'bad.name'"));
	assert_int_equal(engine_vm_create(f->e, "b", "", reason), -EINVAL);
	assert_int_equal(engine_vm_create(f->e, "a", "vm2", reason), 0);
	assert_int_equal(engine_vm_create(f->e, "b", "vm0", reason), 0);

	/* creation order, config first, per host */
	assert_int_equal(engine_foreach_vm(f->e, "b", name_cb, &n), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.v[0], "static1");
	assert_string_equal(n.v[1], "vm1");
	assert_string_equal(n.v[2], "vm0");
	assert_true(engine_vm_exists(f->e, "a", "vm2"));
	assert_false(engine_vm_exists(f->e, "a", "vm1"));
	assert_int_equal(engine_vm_view(f->e, "a", "vm1", v), -ENOENT);

	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_DISCONNECTED);
	assert_string_equal(v->memory, "");
	assert_string_equal(v->last_error, "");

	/* attach: bad values */
	assert_int_equal(attach(f->e, "b", "vm1", "relative/qmp.sock", reason), -EINVAL);
	assert_non_null(strstr(reason, "is not absolute"));
	assert_int_equal(engine_vm_attach(f->e, "b", "vm1", "/x\ny\n", 5, NULL, reason), -EINVAL);
	assert_non_null(strstr(reason, "byte 0x0a"));
	assert_int_equal(attach(f->e, "b", "nosuch", "/x", reason), -ENOENT);
	assert_int_equal(attach(f->e, "b", "static1", "/x", reason), -EPERM);
	assert_non_null(strstr(reason, "defined in the config"));
	snprintf(missing, sizeof(missing), "%s/no-such.sock", f->dir);
	assert_int_equal(attach(f->e, "b", "vm1", missing, reason), -ENOENT);
	assert_non_null(strstr(reason, "no-such.sock"));
	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_DISCONNECTED);
	assert_string_equal(v->qmp, ""); /* a failed write changes nothing ... */
	assert_non_null(strstr(v->last_error, "ENOENT: ")); /* ... but says why */
	/* a plain file is not a socket */
	snprintf(missing, sizeof(missing), "%s/run", f->dir);
	assert_true(attach(f->e, "b", "vm1", missing, reason) < 0);

	/* lends to VMs that cannot take them */
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), -EHOSTDOWN);
	assert_non_null(strstr(reason, "vm b/vm1 is not connected"));
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/nosuch", reason), -EINVAL);
	assert_non_null(strstr(reason, "unknown vm 'nosuch' on host b"));
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_AVAILABLE);
	/* the static VM still works as before */
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/static1", reason), 0);
	assert_int_equal(engine_vm_remove(f->e, "b", "static1", reason), -EPERM);
	assert_int_equal(engine_return(f->e, GPU, reason), 0);

	/* remove */
	assert_int_equal(engine_vm_remove(f->e, "b", "vm1", reason), 0);
	assert_int_equal(engine_vm_remove(f->e, "b", "vm1", reason), -ENOENT);
	assert_false(engine_vm_exists(f->e, "b", "vm1"));
	assert_int_equal(engine_vm_remove(f->e, "zz", "vm1", reason), -ENOENT);
	free(v);
}

static void test_registry_persists(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	struct vm_view *v = malloc(sizeof(*v));
	struct names n = { 0 };

	assert_int_equal(engine_vm_create(f->e, "b", "vm1", reason), 0);
	assert_int_equal(engine_vm_create(f->e, "b", "vm2", reason), 0);
	assert_int_equal(engine_vm_create(f->e, "a", "gone", reason), 0);
	assert_int_equal(engine_vm_remove(f->e, "a", "gone", reason), 0);
	engine_down(f);
	assert_int_equal(engine_up(f), 0);
	assert_int_equal(engine_foreach_vm(f->e, "b", name_cb, &n), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.v[1], "vm1");
	assert_string_equal(n.v[2], "vm2");
	assert_false(engine_vm_exists(f->e, "a", "gone"));
	view_ok(f->e, "b", "vm2", v);
	assert_int_equal(v->state, VM_DISCONNECTED);
	free(v);
}

/* ---- against a real QEMU -------------------------------------------- */

struct ejector {
	unsigned delay_ms;
	unsigned want; /* the slots QEMU must be asking to eject by then */
	unsigned down; /* the slots it asked for */
};

/* The guest's OS: after a while, eject every slot with a pending removal. */
static void *eject_later(void *arg)
{
	struct ejector *j = arg;
	double end = qemu_now_ms() + 3000;

	qemu_sleep_ms(j->delay_ms);
	do {
		j->down |= qemu_b_acpi_eject_pending_pc(&qm);
		if ((j->down & j->want) != j->want)
			qemu_sleep_ms(20);
	} while ((j->down & j->want) != j->want && qemu_now_ms() < end);
	return NULL;
}

static void test_lend_return(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "", last[REASON_MAX + 16];
	struct vm_view *v = malloc(sizeof(*v));
	struct json_object *dev;
	struct ejector j = { 100, SLOTS_2_3, 0 };
	struct names n = { 0 };
	pthread_t th;
	unsigned nw;

	NEED_QEMU();
	guest_up(f, "pc", "512");
	view_ok(f->e, "b", "vm1", v);
	assert_string_equal(v->memory, "ram 0x0-0x1fffffff\n"
				       "pci-hole 0x20000000-0xfebfffff\n"
				       "pci-hole64 0x100000000-0x17fffffff\n"
				       "not-shared /objects/pc.ram is memory-backend-ram, "
				       "not a memory-backend-file\n");

	/* a BAR below a page cannot be an ivshmem BAR */
	assert_int_equal(engine_lend(f->e, TINY, "vm:b/vm1", reason), -ENOTSUP);
	assert_non_null(strstr(reason, "bar0 of " TINY " is 0x100 bytes"));
	assert_int_equal(state_of(f->e, TINY, NULL, NULL), DEV_AVAILABLE);

	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	assert_int_equal(state_of(f->e, GPU, NULL, &nw), DEV_LENT);
	assert_true(nw >= 2);
	/* every memory BAR, each an ivshmem-plain of its size */
	dev = qemu_b_pci_device(&qm, GPU_QDEV);
	assert_non_null(dev);
	assert_int_equal(qemu_pci_int(dev, "slot"), 2);
	assert_int_equal(qemu_pci_bar(dev, 2, NULL), 16 * MIB); /* its bar0 */
	json_object_put(dev);
	dev = qemu_b_pci_device(&qm, GPU_QDEV2);
	assert_non_null(dev);
	assert_int_equal(qemu_pci_int(dev, "slot"), 3);
	assert_int_equal(qemu_pci_bar(dev, 2, NULL), 1 * MIB); /* its bar2 */
	json_object_put(dev);
	assert_int_equal(pci_count(GPU_QDEV), 1);
	assert_int_equal(pci_count(GPU_QDEV2), 1);
	/* idempotent: the same value again adds nothing */
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	assert_int_equal(pci_count(GPU_QDEV), 1);
	assert_true(engine_device_lent_to_or_by(f->e, GPU, "vm:b/vm1", false));
	assert_true(engine_device_lent_to_or_by(f->e, GPU, "b", false));

	/* busy while it holds a device */
	assert_int_equal(engine_vm_remove(f->e, "b", "vm1", reason), -EBUSY);
	assert_non_null(strstr(reason, GPU " is lent to vm b/vm1"));
	assert_int_equal(engine_vm_attach(f->e, "b", "vm1", "", 0, NULL, reason), -EBUSY);
	/* the current path again is a no-op, even while busy */
	assert_int_equal(attach(f->e, "b", "vm1", qm.sock_a, reason), 0);

	/* return: the "guest" acknowledges after 100 ms */
	assert_int_equal(pthread_create(&th, NULL, eject_later, &j), 0);
	assert_int_equal(engine_return(f->e, GPU, reason), 0);
	pthread_join(th, NULL);
	assert_int_equal(state_of(f->e, GPU, last, &nw), DEV_AVAILABLE);
	assert_int_equal(nw, 0);
	assert_int_equal(j.down, SLOTS_2_3);
	assert_int_equal(pci_count(GPU_QDEV), 0);
	assert_int_equal(pci_count(GPU_QDEV2), 0);
	assert_false(qemu_b_has_object(&qm, GPU_MEM));
	assert_false(qemu_b_has_object(&qm, GPU_MEM2));

	/* now it can be detached and removed */
	assert_int_equal(engine_vm_attach(f->e, "b", "vm1", "\n", 1, NULL, reason), 0);
	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_DISCONNECTED);
	assert_string_equal(v->qmp, "");
	assert_int_equal(engine_vm_remove(f->e, "b", "vm1", reason), 0);
	assert_int_equal(engine_foreach_vm(f->e, "b", name_cb, &n), 0);
	assert_int_equal(n.n, 1);
	free(v);
}

/*
 * The lender's device is hot-removed while lent to a VM (issue 20): the
 * failed lend unplugs it from the guest (acknowledged after 100 ms) and
 * deletes its backend.  (Without an acknowledgement: vm.bats, "a failed
 * lend whose guest acknowledges late".)
 */
static void test_device_removed(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "";
	struct ejector j = { 100, SLOTS_2_3, 0 };
	pthread_t th;

	NEED_QEMU();
	guest_up(f, "pc", "512");
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	assert_int_equal(pci_count(GPU_QDEV), 1);
	assert_int_equal(pthread_create(&th, NULL, eject_later, &j), 0);
	assert_int_equal(engine_device_remove(f->e, GPU, reason), 0);
	pthread_join(th, NULL);
	assert_int_equal(pci_count(GPU_QDEV), 0);
	assert_false(qemu_b_has_object(&qm, GPU_MEM));
	assert_false(logged(f, "still being unplugged"));
}

static void test_return_timeout(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "", last[REASON_MAX + 16];
	double t0;

	NEED_QEMU();
	guest_up(f, "pc", "512");
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);

	t0 = qemu_now_ms();
	assert_int_equal(engine_return(f->e, GPU, reason), -ETIMEDOUT);
	assert_true(qemu_now_ms() - t0 < 2000); /* vm_unplug_timeout_ms = 300 */
	assert_non_null(strstr(reason, "did not acknowledge the removal"));
	assert_int_equal(state_of(f->e, GPU, last, NULL), DEV_RETURNING);
	assert_non_null(strstr(last, "ETIMEDOUT: "));
	assert_int_equal(engine_vm_remove(f->e, "b", "vm1", reason), -EBUSY);
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), -EBUSY);

	/* the guest lets go of bar0 only: still returning */
	qemu_b_acpi_eject_pc(&qm, 2);
	qemu_sleep_ms(300);
	assert_int_equal(pci_count(GPU_QDEV), 0);
	assert_int_equal(pci_count(GPU_QDEV2), 1);
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_RETURNING);
	assert_false(logged(f, "acknowledged the removal late"));
	/* the last acknowledgement comes late: the return finishes by itself */
	assert_int_equal(qemu_b_acpi_eject_pending_pc(&qm), 1u << 3);
	assert_true(wait_state(f->e, GPU, DEV_AVAILABLE, 3000));
	assert_int_equal(pci_count(GPU_QDEV2), 0);
	assert_false(qemu_b_has_object(&qm, GPU_MEM2));
	assert_int_equal(pci_count(GPU_QDEV), 0);
	assert_true(wait_logged(f, "acknowledged the removal late", 3000));

	/* again, and this time a second return asks the guest again */
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	assert_int_equal(engine_return(f->e, GPU, reason), -ETIMEDOUT);
	{
		struct ejector j = { 100, SLOTS_2_3, 0 };
		pthread_t th;

		assert_int_equal(pthread_create(&th, NULL, eject_later, &j), 0);
		assert_int_equal(engine_return(f->e, GPU, reason), 0);
		pthread_join(th, NULL);
	}
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_AVAILABLE);
	assert_int_equal(pci_count(GPU_QDEV), 0);
}

static void test_vm_gone(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "";
	struct vm_view *v = malloc(sizeof(*v));
	struct host_view hv;

	NEED_QEMU();
	guest_up(f, "pc", "512");
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	qemu_kill(&qm);
	assert_true(wait_state(f->e, GPU, DEV_AVAILABLE, 3000));
	assert_int_equal(engine_host_view(f->e, "b", &hv), 0);
	assert_int_equal(hv.lut_used, 0);
	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_DISCONNECTED);
	assert_non_null(strstr(v->last_error, "ECONNRESET: "));
	assert_string_equal(v->memory, "");
	assert_true(wait_logged(f, GPU " released: ", 3000));
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), -EHOSTDOWN);
	/* a VM that went away holds nothing: it can be removed */
	assert_int_equal(engine_vm_remove(f->e, "b", "vm1", reason), 0);
	free(v);
}

/* A hot-add that fails after the windows were programmed rolls back. */
static void test_plug_fails(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "", lends[64] = "";
	struct host_view hv;
	unsigned nw;
	FILE *out;

	NEED_QEMU();
	guest_up(f, "q35", "512"); /* no pcie-root-port: nowhere to plug */
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), -ENOSPC);
	assert_non_null(strstr(reason, "no free pcie-root-port"));
	assert_int_equal(state_of(f->e, GPU, NULL, &nw), DEV_AVAILABLE);
	assert_int_equal(nw, 0);
	assert_int_equal(engine_host_view(f->e, "b", &hv), 0);
	assert_int_equal(hv.lut_used, 0);
	assert_int_equal(engine_host_view(f->e, "a", &hv), 0);
	assert_int_equal(hv.dma_used, 0);
	assert_int_equal(hv.iommu_mappings, 0);
	out = fmemopen(lends, sizeof(lends), "w");
	engine_render_lends(f->e, out);
	fclose(out);
	assert_string_equal(lends, "");
	assert_false(qemu_b_has_object(&qm, GPU_MEM));
}

/* A commit that fails after the hot-add takes the device out again. */
static void test_commit_fails(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "";
	double t0;

	NEED_QEMU();
	engine_down(f);
	setenv("LENDFS_FAULT", "store_commit:1", 1);
	assert_int_equal(engine_up(f), 0);
	guest_up(f, "pc", "512");
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), -EIO);
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_AVAILABLE);
	/* its removal waits for the guest, which acknowledges now */
	assert_int_equal(qemu_b_acpi_eject_pending_pc(&qm), SLOTS_2_3);
	t0 = qemu_now_ms();
	while (pci_count(GPU_QDEV) && qemu_now_ms() - t0 < 3000)
		qemu_sleep_ms(20);
	assert_int_equal(pci_count(GPU_QDEV), 0);
	t0 = qemu_now_ms();
	while (qemu_b_has_object(&qm, GPU_MEM) &&
	       qemu_now_ms() - t0 < 3000)
		qemu_sleep_ms(20);
	/* and the next lend works */
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	assert_int_equal(pci_count(GPU_QDEV), 1);
}

/* The engine restarts (sqlite store): the VM is attached again, the lend
 * restored, the device not added twice; with QEMU gone, it is released. */
static void test_restart(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX] = "";
	struct vm_view *v = malloc(sizeof(*v));

	NEED_QEMU();
	guest_up(f, "pc", "512");
	assert_int_equal(engine_lend(f->e, GPU, "vm:b/vm1", reason), 0);
	engine_down(f);
	assert_int_equal(pci_count(GPU_QDEV), 1); /* stays in the guest */
	assert_int_equal(engine_up(f), 0);
	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_CONNECTED);
	assert_string_equal(v->qmp, qm.sock_a);
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_LENT);
	assert_int_equal(pci_count(GPU_QDEV), 1);
	assert_int_equal(pci_count(GPU_QDEV2), 1);
	assert_true(logged(f, "still in the guest"));

	/* one of its BARs is taken out of the guest while the engine is
	 * down: the restart adds that one again, not the other */
	engine_down(f);
	json_object_put(qemu_b_cmd(&qm, "{\"execute\":\"device_del\",\"arguments\":"
				       "{\"id\":\"" GPU_QDEV2 "\"}}"));
	assert_int_equal(qemu_b_acpi_eject_pending_pc(&qm), 1u << 3);
	{
		double t0 = qemu_now_ms();

		while (pci_count(GPU_QDEV2) && qemu_now_ms() - t0 < 3000)
			qemu_sleep_ms(20);
	}
	assert_int_equal(pci_count(GPU_QDEV2), 0);
	json_object_put(qemu_b_cmd(&qm, "{\"execute\":\"object-del\",\"arguments\":"
				       "{\"id\":\"" GPU_MEM2 "\"}}"));
	assert_int_equal(engine_up(f), 0);
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_LENT);
	assert_int_equal(pci_count(GPU_QDEV), 1);
	assert_int_equal(pci_count(GPU_QDEV2), 1);
	assert_true(logged(f, "1 of its 2 bars were not in the guest any more"));

	/* QEMU dies while the engine is down: the lend is released */
	engine_down(f);
	qemu_kill(&qm);
	assert_int_equal(engine_up(f), 0);
	view_ok(f->e, "b", "vm1", v);
	assert_int_equal(v->state, VM_DISCONNECTED);
	assert_non_null(strstr(v->last_error, "ECONNREFUSED"));
	assert_int_equal(state_of(f->e, GPU, NULL, NULL), DEV_AVAILABLE);
	assert_true(logged(f, "the vm is not connected"));
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry_persists, setup_sqlite,
						teardown),
		cmocka_unit_test_setup_teardown(test_lend_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_return_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plug_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup_sqlite, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
