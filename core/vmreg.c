// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vmreg.c - VM borrowers in the engine: the registry behind
 * hosts/HOST/vms/VM, and the VM steps of a lend and a return
 * (docs/VM.md).
 *
 * A VM of the registry is a QEMU guest reached over QMP (vm.h).  Its
 * connection is persistent: DEVICE_DELETED and the end of QEMU arrive as
 * callbacks on the connection's dispatcher thread.
 *
 * The VM steps are borrower_vm_ops, the kind of borrower of a
 * "vm:HOST/VM" value (engine_internal.h); lend.c runs them:
 *
 *   lend    (lend.c steps)   resolve: the VM must be connected; device
 *           `lending`: re-probe the guest memory, give the RAM ranges to
 *           the fabric; plan and program the DMA windows for them; hot-add
 *           every memory BAR of the device (one ivshmem-plain each) and
 *           wait for query-pci; then the store commit.  Any failure
 *           undoes it all.
 *   return  (lend.c do_return) device `returning`: hot-remove, wait for
 *           the guest's acknowledgement of every BAR at most [cluster]
 *           vm_unplug_timeout_ms, then the windows and the record go.
 *           Without it in time the write fails with -ETIMEDOUT and the
 *           device stays `returning` ("pending"): on_device_deleted()
 *           asks lend.c (lend_guest_ack()) to finish the return when the
 *           acknowledgement comes.
 *   gone    QEMU exits or closes the socket: on_vm_gone() releases every
 *           device lent to the VM (windows freed, `available`), logged.
 *
 * Lifetime: a struct lvm lives until rmdir (engine_vm_remove) or
 * engine_free.  While any device holds the VM (its borrower is the VM's,
 * in any state) the VM cannot be removed, detached or re-attached, so a
 * request that saw the VM's connection under vm_lock may use it after
 * dropping the lock.  A re-attach marks the VM `attaching` so that no
 * lend starts on the old connection meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine_internal.h"
#include "fault.h"

#define RELEASE_POLL_MS 10

struct lvm {
	struct engine *e;
	char host[HOST_NAME_MAX_LEN + 1];
	char name[VM_NAME_MAX_LEN + 1];
	char owner[BORROWER_MAX + 1]; /* "vm:HOST/VM" */
	const struct cfg_vm *cfg;     /* [vm] section: static, no QMP */
	/* under e->vm_lock: */
	char qmp[VM_QMP_PATH_MAX];    /* the configured socket, "" none */
	struct vm *vm;		      /* the connection, NULL none */
	bool connected;
	bool attaching;		      /* engine_vm_attach() is replacing it */
	struct vm_memory mem;	      /* last probe */
	char error[REASON_MAX + 16];  /* "ERRNO: reason" */
	uint64_t generation;
	struct lvm *next;
};

static void set_error(struct lvm *v, int err, const char *why)
{
	if (err)
		snprintf(v->error, sizeof(v->error), "%s: %s", errno_name(err), why);
	else
		v->error[0] = '\0';
}

/* ---- lookups (vm_lock held) --------------------------------------------- */

static struct lvm *find(struct engine *e, const char *host, const char *name)
{
	for (struct lvm *v = e->vms; v; v = v->next)
		if (!strcmp(v->host, host) && !strcmp(v->name, name))
			return v;
	return NULL;
}

static struct lvm *find_owner(struct engine *e, const char *owner)
{
	for (struct lvm *v = e->vms; v; v = v->next)
		if (!strcmp(v->owner, owner))
			return v;
	return NULL;
}

/*
 * The first device that holds @v (its borrower is @v's, whatever its
 * state), copied into @dev; false if none.  model_lock read-held.
 */
static bool holder(struct engine *e, const struct lvm *v, char *dev, size_t len)
{
	for (unsigned i = 0; i < e->ndevs; i++) {
		struct ldevice *d = e->devs[i];
		bool held;

		pthread_mutex_lock(&d->lock);
		held = !strcmp(d->borrower, v->owner);
		pthread_mutex_unlock(&d->lock);
		if (held) {
			snprintf(dev, len, "%s", d->id);
			return true;
		}
	}
	return false;
}

static void list_append(struct engine *e, struct lvm *v)
{
	struct lvm **pp = &e->vms;

	while (*pp)
		pp = &(*pp)->next;
	*pp = v;
	e->nvms++;
}

static struct lvm *lvm_new(struct engine *e, const char *host, const char *name)
{
	struct lvm *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->e = e;
	snprintf(v->host, sizeof(v->host), "%s", host);
	snprintf(v->name, sizeof(v->name), "%s", name);
	bname_format_vm(v->owner, sizeof(v->owner), host, name);
	return v;
}

/* ---- memory --------------------------------------------------------------- */

/* The guest RAM of a probe as fabric ranges. */
static int ram_from_memory(const struct lvm *v, const struct vm_memory *m,
			   struct range *out, unsigned *n, char *reason)
{
	if (m->nram == 0)
		return reason_set(reason, -EIO, "vm %s/%s shows no guest ram", v->host,
				  v->name);
	if (m->nram > CONFIG_MAX_RAM_RANGES)
		return reason_set(reason, -ENOTSUP,
				  "vm %s/%s has %u guest ram ranges; at most %d can get "
				  "dma windows", v->host, v->name, m->nram,
				  CONFIG_MAX_RAM_RANGES);
	memcpy(out, m->ram, m->nram * sizeof(*out));
	*n = m->nram;
	return 0;
}

/* Give the fabric the guest RAM of @m (the sim then has a RAM file). */
static int ram_attach(struct engine *e, const struct lvm *v,
		      const struct vm_memory *m, char *reason)
{
	struct range ram[CONFIG_MAX_RAM_RANGES];
	unsigned n;
	int r = ram_from_memory(v, m, ram, &n, reason);

	if (r == 0)
		r = e->fabric->ram_attach(e->fabric_ctx, v->owner, ram, n,
					  m->shared ? m->backend_file : NULL, reason);
	return r;
}

/*
 * Connect to @path, probe, hand the RAM to the fabric.  No lock held; the
 * callbacks are not set yet.
 */
static int connect_vm(struct engine *e, struct lvm *v, const char *path,
		      struct vm **out, struct vm_memory *mem, char *reason)
{
	struct vm *vm;
	int r;

	r = vm_attach(v->host, v->name, path, &vm, reason);
	if (r < 0)
		return r;
	vm_memory_last(vm, mem);
	r = ram_attach(e, v, mem, reason);
	if (r < 0) {
		vm_detach(vm);
		return r;
	}
	*out = vm;
	return 0;
}

/* ---- the device's BAR in the guest ---------------------------------------- */

/*
 * Every memory BAR of @d goes to the guest (one ivshmem-plain each, vm.h):
 * their mask, or -ENOTSUP if one of them cannot be an ivshmem-plain BAR.
 */
static int pick_bars(struct engine *e, const struct ldevice *d,
		     const char *owner, unsigned *bars, char *reason)
{
	long page = sysconf(_SC_PAGESIZE);

	*bars = 0;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t size = d->bar_size[i];

		if (!size)
			continue;
		if (!is_power_of_2(size) || size < (uint64_t)page)
			return reason_set(reason, -ENOTSUP,
					  "bar%u of %s is 0x%" PRIx64 " bytes; a vm guest gets "
					  "each bar as an ivshmem-plain bar, which needs a "
					  "power of two of at least %ld bytes", i, d->id, size,
					  page);
		*bars |= 1u << i;
	}
	if (!*bars)
		return reason_set(reason, -ENOTSUP,
				  "%s has no memory bar to give to %s", d->id, owner);
	if (strcmp(e->fabric->name, "sim") != 0)
		return reason_set(reason, -ENOTSUP,
				  "lending to a vm needs the sim fabric's bar files "
				  "(fabric is %s)", e->fabric->name);
	return 0;
}

/*
 * RUN/devices/DEVID/barN (fabric_sim.h), created now if no write reached
 * it yet: QEMU maps it, and the sim then moves bytes through the same file.
 */
static int bar_file(struct engine *e, const struct ldevice *d, unsigned bar,
		    uint64_t size, char *buf, size_t len, char *reason)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	snprintf(buf, len, "%s/devices/%s", e->run_dir, d->id);
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return reason_set(reason, -errno, "cannot create %s: %s", buf,
				  strerror(errno));
	snprintf(buf, len, "%s/devices/%s/bar%u", e->run_dir, d->id, bar);
	fd = open(buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || fstat(fd, &st) < 0 ||
	    ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size) < 0))
		return reason_set(reason, -errno, "cannot create the bar file %s: %s",
				  buf, strerror(errno));
	return 0;
}

/* The BAR files of @bars of @d into the guest of @vm (vm_hotplug_add()). */
static int plug_bars(struct engine *e, const struct ldevice *d, unsigned bars,
		     struct vm *vm, unsigned tmo, char *reason)
{
	char paths[PCI_NUM_BARS][4096 + DEVICE_ID_MAX + 32];
	struct vm_bar vb[PCI_NUM_BARS];
	unsigned n = 0;
	int r;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (!(bars & (1u << i)))
			continue;
		r = bar_file(e, d, i, d->bar_size[i], paths[n], sizeof(paths[n]),
			     reason);
		if (r < 0)
			return r;
		vb[n] = (struct vm_bar){ i, d->bar_size[i], paths[n] };
		n++;
	}
	return vm_hotplug_add(vm, d->id, vb, n, tmo, reason);
}

/* ---- callbacks (QMP dispatcher thread) ------------------------------------ */

/*
 * Release every device @v holds: lent ones and pending returns now; a
 * request in flight fails by itself (the connection is dead), so wait for
 * it, bounded.  No model lock is held while waiting: the devices are
 * pinned.
 */
static void release_all(struct engine *e, struct lvm *v, const char *why,
			struct notes *nt)
{
	uint64_t deadline = now_ns() +
			    ((uint64_t)e->cfg->timeout_ms + 1000) * 1000000ULL;
	struct timespec ts = { 0, RELEASE_POLL_MS * 1000000L };
	struct ldevice **devs;
	unsigned n;
	bool busy;

	if (model_pin_all(e, &devs, &n) < 0)
		return;
	do {
		busy = false;
		for (unsigned i = 0; i < n; i++) {
			char reason[REASON_MAX] = "";
			int r = lend_guest_gone(e, devs[i], v->owner, nt, reason);

			if (r == -EBUSY)
				busy = true;
			else if (r < 0)
				engine_report(e, "%s stays lent to %s, which is gone: %s",
					      devs[i]->id, v->owner, reason);
			else if (r > 0)
				engine_report(e, "%s released: %s", devs[i]->id, why);
		}
		if (busy)
			nanosleep(&ts, NULL);
	} while (busy && now_ns() < deadline);
	model_put_all(e, devs, n);
	if (busy)
		engine_report(e, "vm %s/%s: a request on it did not finish in time", v->host,
			  v->name);
}

static void on_vm_gone(struct vm *vm, int err, const char *why, void *arg)
{
	struct lvm *v = arg;
	struct engine *e = v->e;
	struct notes nt = { 0 };
	bool mine;

	pthread_mutex_lock(&e->vm_lock);
	mine = v->vm == vm;
	if (mine) {
		v->connected = false;
		set_error(v, err, why);
		v->generation++;
	}
	pthread_mutex_unlock(&e->vm_lock);
	if (!mine)
		return;
	engine_report(e, "%s; its devices are released", why);
	release_all(e, v, why, &nt);
	notes_add(&nt, NULL);
	notes_flush(e, &nt, NULL);
}

static void on_device_deleted(struct vm *vm, const char *devid, int err,
			      const char *why, void *arg)
{
	struct lvm *v = arg;
	struct engine *e = v->e;
	char reason[REASON_MAX] = "";
	struct notes nt = { 0 };
	int r;

	r = lend_guest_ack(e, devid, v->owner, &nt, reason);
	if (r != 0 && err < 0) /* the removal it finished came with an error */
		engine_report(e, "vm %s/%s: %s", v->host, v->name, why);
	if (r < 0)
		engine_report(e, "%s: the guest of vm %s/%s acknowledged the removal, "
			  "but the return failed: %s", devid, v->host, v->name,
			  reason);
	else if (r > 0)
		engine_report(e, "%s returned from %s: the guest acknowledged the "
			  "removal late", devid, v->owner);
	notes_flush(e, &nt, NULL);
}

/* ---- construction --------------------------------------------------------- */

void vmreg_init(struct engine *e)
{
	pthread_mutex_init(&e->vm_op_lock, NULL);
	pthread_mutex_init(&e->vm_lock, NULL);
}

void vmreg_free(struct engine *e)
{
	/* connections first: their callbacks use the engine */
	for (struct lvm *v = e->vms; v; v = v->next) {
		vm_detach(v->vm);
		v->vm = NULL;
	}
	while (e->vms) {
		struct lvm *v = e->vms;

		e->vms = v->next;
		free(v);
	}
	e->nvms = 0;
	pthread_mutex_destroy(&e->vm_lock);
	pthread_mutex_destroy(&e->vm_op_lock);
}

static int load_one(void *arg, const char *host, const char *name,
		    const char *qmp)
{
	struct engine *e = arg;
	char why[REASON_MAX] = "";
	struct vm_memory mem;
	struct lvm *v;
	int r;

	if (!engine_host(e, host)) {
		engine_report(e, "vm %s/%s dropped: host %s is no longer in the config", host,
			  name, host);
		e->store->vm_remove(e->store_ctx, host, name, NULL);
		return 0;
	}
	if (find(e, host, name)) {
		engine_report(e, "stored vm %s/%s ignored: a [vm] section of the config "
			  "defines it", host, name);
		return 0;
	}
	if (e->nvms >= VM_REGISTRY_MAX) {
		engine_report(e, "stored vm %s/%s ignored: more than %d vms", host, name,
			  VM_REGISTRY_MAX);
		return 0;
	}
	v = lvm_new(e, host, name);
	if (!v)
		return -ENOMEM;
	snprintf(v->qmp, sizeof(v->qmp), "%s", qmp);
	list_append(e, v);
	if (!qmp[0])
		return 0;
	r = connect_vm(e, v, qmp, &v->vm, &mem, why);
	if (r < 0) {
		set_error(v, r, why);
		engine_report(e, "vm %s/%s stays disconnected: %s", host, name, why);
		return 0;
	}
	v->connected = true;
	v->mem = mem;
	engine_report(e, "vm %s/%s re-attached at %s", host, name, qmp);
	return 0;
}

int vmreg_load(struct engine *e, char *reason)
{
	int r;

	for (unsigned i = 0; i < e->cfg->nvms; i++) {
		const struct cfg_vm *c = &e->cfg->vms[i];
		struct lvm *v = lvm_new(e, c->host, c->name);

		if (!v)
			return reason_set(reason, -ENOMEM, "out of memory");
		v->cfg = c;
		list_append(e, v);
	}
	if (e->self)
		return 0; /* registry VMs need the embedded store (docs/VM.md) */
	r = e->store->vm_load(e->store_ctx, load_one, e, reason);
	if (r == -ENOMEM)
		reason_set(reason, r, "out of memory");
	return r;
}

void vmreg_start(struct engine *e)
{
	/* nothing else runs yet: the list is stable without the lock */
	for (struct lvm *v = e->vms; v; v = v->next)
		if (v->vm)
			vm_set_callbacks(v->vm, on_device_deleted, on_vm_gone, v);
}

/* ---- the lend and return steps -------------------------------------------- */

static int vm_resolve(struct engine *e, const struct ldevice *d,
		      const struct bname *n, struct borrower *b, char *reason)
{
	struct lhost *h = engine_host(e, n->host);
	const char *name = n->vm_name;
	struct lvm *v;
	int r = 0;

	if (!h)
		return reason_set(reason, -EINVAL, "unknown host '%s'", n->host);
	b->host = h;
	pthread_mutex_lock(&e->vm_lock);
	v = find(e, h->name, name);
	if (v && v->cfg) { /* a [vm] section: its RAM, no QMP */
		b->ram = v->cfg->ram;
		b->nram = v->cfg->nram;
		pthread_mutex_unlock(&e->vm_lock);
		return 0;
	}
	if (!v)
		r = reason_set(reason, -EINVAL,
			       "unknown vm '%s' on host %s (mkdir hosts/%s/vms/%s)", name,
			       h->name, h->name, name);
	else if (!v->connected)
		r = reason_set(reason, -EHOSTDOWN,
			       "vm %s/%s is not connected (write its qmp socket path to "
			       "hosts/%s/vms/%s/qmp)%s%s", h->name, name, h->name, name,
			       v->error[0] ? ": " : "", v->error);
	else
		r = ram_from_memory(v, &v->mem, b->ram_buf, &b->nram, reason);
	pthread_mutex_unlock(&e->vm_lock);
	if (r < 0)
		return r;
	b->ram = b->ram_buf;
	b->vmreg = true;
	return pick_bars(e, d, b->value, &b->bars, reason);
}

static int vm_prepare(struct engine *e, struct ldevice *d, struct borrower *b,
		      struct notes *nt, char *reason)
{
	char why[REASON_MAX] = "";
	struct vm_memory mem;
	struct lvm *v;
	bool changed;
	int r = 0;

	if (!b->vmreg)
		return 0;
	/* again: the device holds the VM only from now on */
	pthread_mutex_lock(&e->vm_lock);
	v = find_owner(e, b->value);
	if (!v)
		r = reason_set(reason, -EINVAL, "%s was removed", b->value);
	else if (v->attaching)
		r = reason_set(reason, -EBUSY, "vm %s/%s is being attached", v->host,
			       v->name);
	else if (!v->connected || !v->vm)
		r = reason_set(reason, -EHOSTDOWN, "vm %s/%s is not connected%s%s",
			       v->host, v->name, v->error[0] ? ": " : "", v->error);
	if (r == 0) {
		b->vm = v;
		b->qmp = v->vm;
	}
	pthread_mutex_unlock(&e->vm_lock);
	if (r < 0)
		return r;

	/* the layout may have changed (memory hot-plug, a new QEMU) */
	r = vm_probe_memory(b->qmp, &mem, why);
	if (r < 0)
		return reason_set(reason, r, "cannot probe the memory of vm %s/%s: %s",
				  v->host, v->name, why);
	r = ram_from_memory(v, &mem, b->ram_buf, &b->nram, reason);
	if (r == 0)
		r = e->fabric->ram_attach(e->fabric_ctx, v->owner, b->ram_buf, b->nram,
					  mem.shared ? mem.backend_file : NULL, reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->vm_lock);
	changed = memcmp(&v->mem, &mem, sizeof(mem)) != 0;
	if (changed) {
		v->mem = mem;
		v->generation++;
	}
	pthread_mutex_unlock(&e->vm_lock);
	if (changed)
		notes_add(nt, NULL); /* its memory file */
	return 0;
}

static unsigned remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 1 : (unsigned)MAX((deadline - now) / 1000000ULL, 1);
}

static int vm_plug(struct engine *e, struct ldevice *d, struct borrower *b,
		   uint64_t deadline, char *reason)
{
	int r;

	if (!b->vm)
		return 0;
	r = fault_check("vm_plug", reason);
	if (r == 0)
		r = plug_bars(e, d, b->bars, b->qmp, remaining_ms(deadline), reason);
	if (r == 0) {
		b->plugged = true;
		fault_pass("vm.plug.done"); /* in the guest, the intent says lending */
	}
	return r;
}

static void vm_unplug_rollback(struct engine *e, struct ldevice *d,
			       struct borrower *b)
{
	char why[REASON_MAX] = "";
	int r;

	if (!b->plugged)
		return;
	r = vm_hotplug_del(b->qmp, d->id, e->cfg->vm_unplug_timeout_ms, why);
	if (r < 0 && r != -ECONNRESET)
		engine_report(e, "rolling back the lend of %s to %s: %s", d->id, b->value,
			  why);
	b->plugged = false;
}

/*
 * Hot-remove from the guest and wait for its acknowledgement, at most
 * vm_unplug_timeout_ms: -ETIMEDOUT then (lend.c keeps the return pending).
 */
static int vm_unplug(struct engine *e, struct ldevice *d, const char *owner,
		     char *reason)
{
	struct lvm *v;
	struct vm *vm = NULL;
	int r;

	pthread_mutex_lock(&e->vm_lock);
	v = find_owner(e, owner);
	if (v && !v->cfg && v->connected)
		vm = v->vm;
	pthread_mutex_unlock(&e->vm_lock);
	if (!vm)
		return 0; /* a config VM, or gone: nothing is in a guest */
	fault_pass("vm.unplug");
	r = vm_hotplug_del(vm, d->id, e->cfg->vm_unplug_timeout_ms, reason);
	if (r == -ECONNRESET || r == -EPIPE)
		return 0; /* QEMU went away, and the device with it */
	if (r == 0)
		fault_pass("vm.unplug.done"); /* acknowledged, still `lent` */
	return r;
}

/* Is the guest of @owner still connected, to acknowledge? */
static bool vm_attached(struct engine *e, const char *owner)
{
	struct lvm *v;
	bool connected;

	pthread_mutex_lock(&e->vm_lock);
	v = find_owner(e, owner);
	connected = v && !v->cfg && v->connected;
	pthread_mutex_unlock(&e->vm_lock);
	return connected;
}

static int vm_recover(struct engine *e, struct ldevice *d,
		      const struct lend_record *rec, char *reason)
{
	char why[REASON_MAX] = "";
	struct vm *vm = NULL;
	struct lvm *v;
	bool present = false, connected = false;
	unsigned bars = 0, there = 0;
	int r;

	v = find_owner(e, rec->borrower); /* single-threaded still */
	if (!v || v->cfg)
		return 0; /* borrower_resolve() says what is wrong */
	connected = v->connected;
	vm = v->vm;

	if (rec->state != REC_LENT || !d) {
		/* never acknowledged, or finished: not in the guest any more */
		if (!connected || vm_has_device(vm, rec->device, &present, NULL) < 0 ||
		    !present)
			return 0;
		r = vm_hotplug_del(vm, rec->device, e->cfg->vm_unplug_timeout_ms, why);
		engine_report(e, "%s removed from %s after an interrupted %s%s%s",
			  rec->device, rec->borrower, rec_state_name(rec->state),
			  r < 0 ? ": " : "", r < 0 ? why : "");
		return 0;
	}
	if (!connected) {
		engine_report(e, "lend of %s to %s released: the vm is not connected (%s)",
			  rec->device, rec->borrower, v->error);
		return 1;
	}
	r = pick_bars(e, d, rec->borrower, &bars, reason);
	if (r < 0)
		return r;
	r = vm_device_bars(vm, d->id, &there, why);
	if (r < 0)
		return reason_set(reason, r, "cannot ask vm %s/%s about %s: %s", v->host,
				  v->name, d->id, why);
	if ((there & bars) == bars) {
		engine_report(e, "lend of %s to %s restored: the device is still in the guest",
			  d->id, rec->borrower);
		return 0;
	}
	/*
	 * a new QEMU on the same socket, or someone removed it (or some of
	 * its BARs): add what is missing again
	 */
	r = plug_bars(e, d, bars & ~there, vm, e->cfg->timeout_ms, why);
	if (r < 0)
		return reason_set(reason, r, "%s is no longer in the guest and cannot be "
				  "added again: %s", d->id, why);
	if (there & bars)
		engine_report(e, "lend of %s to %s restored: %u of its %u bars were not in "
			  "the guest any more and were added again", d->id, rec->borrower,
			  (unsigned)__builtin_popcount(bars & ~there),
			  (unsigned)__builtin_popcount(bars));
	else
		engine_report(e, "lend of %s to %s restored: the device was not in the "
			  "guest any more and was added again", d->id, rec->borrower);
	return 0;
}

/* A VM guest (QEMU over QMP, or a [vm] section): lend.c's steps for it. */
const struct borrower_ops borrower_vm_ops = {
	.name = "vm",
	.intent_always = true, /* QEMU keeps a hot-added device over a crash */
	.resolve = vm_resolve,
	.prepare = vm_prepare,
	.plug = vm_plug,
	.unplug_rollback = vm_unplug_rollback,
	.unplug = vm_unplug,
	.attached = vm_attached,
	.recover = vm_recover,
};

/* ---- the registry API (engine.h) ------------------------------------------ */

static const char *const view_state_names[] = {
	[VM_DISCONNECTED] = "disconnected",
	[VM_CONNECTED] = "connected",
	[VM_STATIC] = "static",
};

const char *vm_view_state_name(enum vm_view_state s)
{
	if ((unsigned)s >= ARRAY_SIZE(view_state_names))
		return "?";
	return view_state_names[s];
}

static int check_names(struct engine *e, const char *host, const char *name,
		       char *reason)
{
	if (!host || !engine_host(e, host))
		return reason_set(reason, -ENOENT, "no host %s", host ? host : "");
	if (!name || !name_valid(name))
		return reason_set(reason, -EINVAL,
				  "malformed vm name '%s' (1-63 of A-Z a-z 0-9 _ -)",
				  name ? name : "");
	return 0;
}

int engine_vm_create(struct engine *e, const char *host, const char *name,
		     char *reason)
{
	struct lvm *v;
	int r;

	r = check_names(e, host, name, reason);
	if (r < 0)
		return r;
	if (e->self)
		return reason_set(reason, -ENOTSUP,
				  "VM borrowers registered at run time need the embedded store; declare [vm %s/%s] in the config",
				  host, name);
	pthread_mutex_lock(&e->vm_op_lock);
	pthread_mutex_lock(&e->vm_lock);
	if (find(e, host, name))
		r = reason_set(reason, -EEXIST, "vm %s/%s exists", host, name);
	else if (e->nvms >= VM_REGISTRY_MAX)
		r = reason_set(reason, -ENOSPC, "too many vms (max %d)", VM_REGISTRY_MAX);
	pthread_mutex_unlock(&e->vm_lock);
	v = r == 0 ? lvm_new(e, host, name) : NULL;
	if (r == 0 && !v)
		r = reason_set(reason, -ENOMEM, "out of memory");
	if (r == 0)
		r = e->store->vm_put(e->store_ctx, host, name, "", reason);
	if (r == 0) {
		set_error(v, 0, NULL);
		pthread_mutex_lock(&e->vm_lock);
		list_append(e, v);
		pthread_mutex_unlock(&e->vm_lock);
		v = NULL;
	}
	pthread_mutex_unlock(&e->vm_op_lock);
	free(v);
	if (r == 0) {
		notes_flush(e, &(struct notes){ .all = true }, NULL);
	}
	return r;
}

/* One write: strip one newline, bound it, refuse control bytes. */
static int parse_qmp_path(const char *buf, size_t len, char *out,
			  const char *host, const char *name, char *reason)
{
	len = value_len(buf, len);
	if (len >= VM_QMP_PATH_MAX)
		return reason_set(reason, -ENAMETOOLONG,
				  "qmp socket path of vm %s/%s too long (%zu bytes)", host,
				  name, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] == 0x7f)
			return reason_set(reason, -EINVAL,
					  "malformed qmp socket path: byte 0x%02x at offset %zu",
					  (unsigned char)buf[i], i);
	memcpy(out, buf, len);
	out[len] = '\0';
	if (len && out[0] != '/')
		return reason_set(reason, -EINVAL,
				  "qmp socket path '%s' of vm %s/%s is not absolute", out,
				  host, name);
	return 0;
}

int engine_vm_attach(struct engine *e, const char *host, const char *name,
		     const char *buf, size_t len,
		     const struct engine_caller *who, char *reason)
{
	_cleanup_free_ char *path = malloc(VM_QMP_PATH_MAX);
	char why[REASON_MAX] = "", dev[DEVICE_ID_MAX];
	struct vm *vm = NULL, *old = NULL;
	struct vm_memory mem = { 0 };
	struct lvm *v;
	int r;

	if (!path)
		return reason_set(reason, -ENOMEM, "out of memory");
	r = check_names(e, host, name, reason);
	if (r == 0)
		r = parse_qmp_path(buf, len, path, host, name, reason);
	if (r < 0)
		return r;

	pthread_mutex_lock(&e->vm_op_lock);
	pthread_rwlock_rdlock(&e->model_lock);
	pthread_mutex_lock(&e->vm_lock);
	v = find(e, host, name);
	if (!v)
		r = reason_set(reason, -ENOENT, "no vm %s/%s", host, name);
	else if (v->cfg)
		r = reason_set(reason, -EPERM,
			       "vm %s/%s is defined in the config (static memory, no qmp)",
			       host, name);
	else if (path[0] && v->connected && !strcmp(v->qmp, path))
		r = 1; /* the current value: nothing to do */
	else if (holder(e, v, dev, sizeof(dev)))
		r = reason_set(reason, -EBUSY, "%s is lent to vm %s/%s; return it first",
			       dev, host, name);
	else
		v->attaching = true;
	pthread_mutex_unlock(&e->vm_lock);
	pthread_rwlock_unlock(&e->model_lock);
	if (r != 0) {
		pthread_mutex_unlock(&e->vm_op_lock);
		return r > 0 ? 0 : r;
	}

	if (path[0])
		r = connect_vm(e, v, path, &vm, &mem, why);
	if (r == 0)
		r = e->store->vm_put(e->store_ctx, host, name, path, why);
	if (r < 0) {
		vm_detach(vm);
		vm = NULL;
	}

	pthread_mutex_lock(&e->vm_lock);
	if (r == 0) {
		old = v->vm;
		v->vm = vm;
		v->connected = vm != NULL;
		v->mem = mem;
		snprintf(v->qmp, sizeof(v->qmp), "%s", path);
		set_error(v, 0, NULL);
	} else {
		set_error(v, r, why);
	}
	v->attaching = false;
	v->generation++;
	pthread_mutex_unlock(&e->vm_lock);

	vm_detach(old);
	if (vm)
		vm_set_callbacks(vm, on_device_deleted, on_vm_gone, v);
	pthread_mutex_unlock(&e->vm_op_lock);
	if (r < 0)
		reason_set(reason, r, "%s", why);
	notes_flush(e, &(struct notes){ .all = true }, who);
	return r;
}

int engine_vm_remove(struct engine *e, const char *host, const char *name,
		     char *reason)
{
	char dev[DEVICE_ID_MAX];
	struct lvm *v, **pp;
	int r;

	r = check_names(e, host, name, reason);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->vm_op_lock);
	pthread_rwlock_rdlock(&e->model_lock);
	pthread_mutex_lock(&e->vm_lock);
	v = find(e, host, name);
	if (!v)
		r = reason_set(reason, -ENOENT, "no vm %s/%s", host, name);
	else if (v->cfg)
		r = reason_set(reason, -EPERM,
			       "vm %s/%s is defined in the config; edit the config", host,
			       name);
	else if (holder(e, v, dev, sizeof(dev)))
		r = reason_set(reason, -EBUSY, "%s is lent to vm %s/%s; return it first",
			       dev, host, name);
	if (r == 0)
		r = e->store->vm_remove(e->store_ctx, host, name, reason);
	if (r == 0) {
		for (pp = &e->vms; *pp != v; pp = &(*pp)->next)
			;
		*pp = v->next;
		e->nvms--;
	}
	pthread_mutex_unlock(&e->vm_lock);
	pthread_rwlock_unlock(&e->model_lock);
	if (r == 0) {
		vm_detach(v->vm); /* waits for a callback that is running */
		free(v);
	}
	pthread_mutex_unlock(&e->vm_op_lock);
	if (r == 0) {
		notes_flush(e, &(struct notes){ .all = true }, NULL);
	}
	return r;
}

static void config_memory(const struct cfg_vm *c, struct vm_memory *m)
{
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < c->nram && i < VM_MEM_RANGES_MAX; i++)
		m->ram[m->nram++] = c->ram[i];
}

int engine_vm_view(struct engine *e, const char *host, const char *name,
		   struct vm_view *out)
{
	struct vm_memory m;
	struct lvm *v;
	bool show = false;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->vm_lock);
	v = host && name ? find(e, host, name) : NULL;
	if (!v) {
		pthread_mutex_unlock(&e->vm_lock);
		return -ENOENT;
	}
	snprintf(out->host, sizeof(out->host), "%s", v->host);
	snprintf(out->name, sizeof(out->name), "%s", v->name);
	snprintf(out->qmp, sizeof(out->qmp), "%s", v->qmp);
	snprintf(out->last_error, sizeof(out->last_error), "%s", v->error);
	out->generation = v->generation;
	if (v->cfg) {
		out->state = VM_STATIC;
		config_memory(v->cfg, &m);
		show = true;
	} else if (v->connected) {
		out->state = VM_CONNECTED;
		m = v->mem;
		show = true;
	} else {
		out->state = VM_DISCONNECTED;
	}
	pthread_mutex_unlock(&e->vm_lock);
	if (show && vm_memory_format(&m, out->memory, sizeof(out->memory)) < 0)
		out->memory[0] = '\0';
	return 0;
}

bool engine_vm_exists(struct engine *e, const char *host, const char *name)
{
	bool r;

	if (!host || !name)
		return false;
	pthread_mutex_lock(&e->vm_lock);
	r = find(e, host, name) != NULL;
	pthread_mutex_unlock(&e->vm_lock);
	return r;
}

int engine_foreach_vm(struct engine *e, const char *host,
		      int (*cb)(void *arg, const char *vm), void *arg)
{
	char (*names)[VM_NAME_MAX_LEN + 1] = NULL;
	unsigned n = 0, total;
	int r = 0;

	pthread_mutex_lock(&e->vm_lock);
	total = e->nvms;
	if (total)
		names = calloc(total, sizeof(*names));
	for (struct lvm *v = e->vms; names && v; v = v->next)
		if (!strcmp(v->host, host))
			snprintf(names[n++], sizeof(names[0]), "%s", v->name);
	pthread_mutex_unlock(&e->vm_lock);
	if (total && !names)
		return -ENOMEM;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = cb(arg, names[i]);
	free(names);
	return r;
}
