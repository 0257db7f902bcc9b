/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * engine_internal.h - the engine's private model, shared by the modules
 * of core/ that make up the engine.  Nothing outside core/ includes this.
 * docs/ARCHITECTURE.md draws the layers; from the bottom:
 *
 *   model.c      hosts, devices and their lookups, pins, the
 *                notification batch (struct notes), engine_report()
 *   events.c     the event log: events of a batch, appended with the
 *                commit that completes a request, the ring `events` reads
 *   view.c       what front-ends read: device and host views, walks
 *   plan.c       which windows a lend needs, and their reservation
 *   program.c    programming and clearing windows on the fabric
 *   p2p.c        peer-to-peer links between devices of one borrower
 *   lend.c       the lend state machine: the only writer of a device's
 *                lend state once it is in the model (struct lend_req,
 *                steps, and the entry points for events)
 *   dryrun.c     plans: a lend's checks and planning, changing nothing
 *                (a device's, a composition's)
 *   replica.c    distributed mode: the mirror of other lenders' records
 *   settle.c     distributed mode: requests of ours whose outcome a lost
 *                connection hid, settled with the record once back
 *   hotplug.c    devices appearing, changing, vanishing
 *   recover.c    stored lends brought back at start
 *   lease.c      the lease timer: lends ended at their deadline
 *   engine.c     construction: back-ends, coordination, borrower kinds
 *   vmreg.c      VM borrowers (borrower_vm_ops) and the VM registry
 *   compose.c    compositions: devices lent together, through lend.c
 *   cluster.c    the ZooKeeper coordination (coord_zk_ops)
 *
 * Locking, outermost first:
 *   d->req_busy    one device's request (dev_request_begin(), a flag
 *                  under e->req_mutex, one byte a device): held across
 *                  its whole lend or return, slow waits included;
 *                  nothing else waits on it but the next request of the
 *                  same device and its hot-removal
 *   e->model_lock  (rwlock) the set of devices; held only to look a
 *                  device up (and pin it) or to walk the list, never
 *                  across a back-end call; write-held to add or unlink
 *   d->lock        (mutex) one device's lend state; held briefly, never
 *                  across a back-end call
 *   e->fabric_lock (mutex) topology, NTB tables, IOMMU domains, host
 *                  online flags; held while planning, never across a
 *                  back-end call either
 *
 * Hosts never come or go after engine_new(): engine_host() needs no lock.
 * A device found under model_lock is pinned (model_get()) so that it can
 * be used after the lock is dropped; an unlinked device is freed by its
 * last model_put().
 *
 * The VM registry (vmreg.c): e->vm_op_lock serialises its changes (held
 * across QMP connects, taken before everything else); e->vm_lock guards
 * the list and each VM's fields and nests inside model_lock and outside
 * d->lock.  Neither is held across a QMP call.
 *
 * Compositions (compose.c): e->compo_op_lock (rwlock) is write-held by
 * every change of a composition, across the lends and returns of its
 * devices, and read-held by a device's own borrower write across its
 * request (so that no composition is lent or returned between the write's
 * "part of composition" check and its request), by a device's own lease
 * write, and by the lease timer expiring a device alone
 * (compose_lease_expire(): write-held instead to expire a composition,
 * never both at once); it is taken before every lock of a request.
 * The session thread of distributed mode (compose_sync()) only ever
 * tries it (trywrlock): a write holding it may wait for that thread.
 * e->compo_lock guards the list and each composition's fields, held
 * briefly, never across a request; model_get() and d->lock are taken
 * only after it is dropped (engine_compo_view()).
 */
#ifndef LENDFS_ENGINE_INTERNAL_H
#define LENDFS_ENGINE_INTERNAL_H

#include <pthread.h>

#include "bname.h"
#include "coord.h"
#include "engine.h"
#include "events.h"
#include "hashmap.h"
#include "iommu.h"
#include "metrics.h"
#include "ntb.h"
#include "vm.h"

#define BAR_BASE 0x380000000000ULL /* where the sim places lender BARs */

struct lhost {
	char name[HOST_NAME_MAX_LEN + 1];
	const struct cfg_host *cfg;
	unsigned node; /* topology node index */
	bool online;	   /* admin && live: what the cluster sees */
	bool admin;	   /* not set offline by an admin */
	bool live;	   /* its daemon is up (distributed mode; else true) */
	bool iommu; /* lent devices get IOMMU domains of their own */
	struct ntb_table ntb;
	uint64_t next_bar; /* BAR address allocator */
};

/*
 * What a device has to say once it is lent or has failed: allocated by
 * its first lend or error, so that the 100,000 devices nobody borrows
 * cost no more than their ids and BARs (docs/PERFORMANCE.md).
 */
#define LAST_ERROR_MAX (REASON_MAX + 16) /* "ERRNO: reason" */

struct ldevice_text {
	char borrower[BORROWER_MAX + 1];
	char last_error[LAST_ERROR_MAX];
};

struct ldevice {
	char id[DEVICE_ID_MAX];
	struct lhost *lender;
	struct pci_addr addr;
	uint16_t vendor, device, subsystem_vendor, subsystem_device;
	uint32_t class;
	uint64_t bar_size[PCI_NUM_BARS];
	uint64_t bar_addr[PCI_NUM_BARS];
	bool denied; /* [policy] deny */
	bool gone; /* removed by hot-plug while lent; listed until cleared */
	bool unlinked; /* out of the model: freed by the last pin */
	bool req_busy; /* its request in flight: dev_request_begin() */
	/* from the udev inventory (NULL: none), under lock: */
	char *deny_reason; /* the lender depends on it */
	char *driver;
	int numa_node;
	int iommu_group;
	int rec_state; /* distributed, another lender's device: the state of
			  its record (enum rec_state), -1 none; d->lock */
	unsigned refs;	/* pins (model_get()); atomic */
	struct iommu_domain iommu; /* on the lender; fabric_lock */

	pthread_mutex_t lock;
	enum dev_state state;
	/*
	 * Both "" until the first lend or error, then the strings of @text;
	 * set them with dev_set_borrower() and dev_set_error().
	 */
	const char *borrower;
	const char *last_error;
	struct ldevice_text *text;
	int64_t since;
	/*
	 * The lease deadline of the lend (wall clock, ns; 0: none), as in
	 * its record: set with the lend or by a lease request, cleared when
	 * the lend ends.  Written under lock by the holder of req_busy (or
	 * by the mirror, for another lender's device).
	 */
	int64_t lease;
	uint64_t generation;
	uint64_t owner; /* tag of the current lend in NTB/IOMMU tables */
	uint64_t epoch;
	bool has_route;
	struct route *route; /* allocated by the first lend: 800 bytes */
	struct window *windows;
	unsigned nwindows;
	/* returning from a VM, under lock (lend.c): */
	bool vm_pending; /* the guest has not acknowledged the unplug yet */
	/*
	 * coord_ops.settles: a request of this lender's ended without knowing
	 * what the store holds; lend_settle_all() settles it with the record
	 * (unsure_epoch: the epoch of the lend tried, whose marker it closes).
	 */
	bool unsure;
	uint64_t unsure_epoch;
	bool vm_acked;	 /* its acknowledgement came while the request ran */
};

/*
 * A peer-to-peer link between two devices lent to the same borrower: the
 * windows each needs to reach the other's BARs.  Not stored: derived from
 * the set of lends (recomputed at recovery), protected by comp_lock.
 */
struct p2p_link {
	struct ldevice *a, *b;
	struct route ab, ba; /* a's lender -> b's lender, and back */
	bool rc_a, rc_b;     /* via a's / b's root complex (IOMMU on) */
	uint64_t owner;
	struct window *w;
	unsigned nw;
	char error[REASON_MAX];
	struct p2p_link *next;
};

struct borrower_ops;

struct engine {
	const struct cluster_config *cfg;
	const struct fabric_ops *fabric;
	void *fabric_ctx;
	const struct store_ops *store;
	void *store_ctx;
	const struct coord_ops *coord;
	void *coord_ctx;
	/* the borrower kinds, chosen by bname_parse(): HOST and vm:HOST/VM */
	const struct borrower_ops *host_borrower;
	const struct borrower_ops *vm_borrower;
	char run_dir[4096];

	pthread_mutex_t req_mutex; /* the devices' req_busy flags */
	pthread_cond_t req_cond;   /* a request ended */
	pthread_rwlock_t model_lock;
	struct hashmap *devmap;
	struct ldevice **devs; /* stable order: config, then hot-plug */
	unsigned ndevs, devs_cap;
	struct ldevice *slab; /* the config's devices, one mapping */
	size_t slab_bytes;
	struct lhost *hosts;
	unsigned nhosts;
	struct hashmap *hostmap;

	pthread_mutex_t fabric_lock;
	struct topo *topo;
	uint64_t next_owner;
	uint64_t next_epoch;

	pthread_mutex_t comp_lock; /* the p2p list; taken before fabric_lock */
	struct p2p_link *p2p;

	unsigned inflight;
	unsigned unsure; /* devices marked unsure (settle.c); atomic */
	struct metrics metrics;

	/* distributed mode: the host this daemon runs on; NULL: every host */
	struct lhost *self;

	/*
	 * The front-end's callbacks (watch, event_watch): called with
	 * watch_lock read-held, set with it write-held, so that setting
	 * them to NULL waits for the calls in flight (a front-end shuts
	 * down its side only after that).
	 */
	pthread_rwlock_t watch_lock;
	engine_watch_cb watch;
	void *watch_arg;
	engine_log_cb log;
	void *log_arg;

	/* the event log (events.c) */
	struct evlog events;
	unsigned event_retain;
	uint64_t event_counts[EV_COUNT]; /* appended by this daemon; atomic */
	engine_event_cb event_watch;
	void *event_watch_arg;

	/*
	 * The lease timer (lease.c): a thread that sleeps until the earliest
	 * deadline it knows of (lease_next, 0: none) or a kick.  lease_lock
	 * is a leaf: nothing else is taken while it is held.
	 */
	pthread_mutex_t lease_lock;
	pthread_cond_t lease_cond;
	pthread_t lease_thread;
	bool lease_running, lease_stop, lease_kicked;
	int64_t lease_next;

	pthread_mutex_t vm_op_lock; /* VM registry changes (vmreg.c) */
	pthread_mutex_t vm_lock;    /* the VM list and each VM's fields */
	struct lvm *vms;
	unsigned nvms;

	pthread_rwlock_t compo_op_lock; /* composition changes (compose.c) */
	pthread_mutex_t compo_lock;    /* the list and their fields */
	struct lcompo *compos;
	unsigned ncompos;
};

/* ---- model.c ------------------------------------------------------------ */

/*
 * An event for the daemon's log (recovery decisions, take-backs, the
 * ZooKeeper session): through the engine's log callback, if any.
 */
_printf_(2, 3) void engine_report(struct engine *e, const char *fmt, ...);

/* Hosts are fixed at engine_new(): no lock. */
struct lhost *engine_host(struct engine *e, const char *name);
/* model_lock held (read or write). */
struct ldevice *engine_dev(struct engine *e, const char *id);

/* Look @id up and pin it (NULL: none); model_put() when done. */
struct ldevice *model_get(struct engine *e, const char *id);
void model_pin(struct ldevice *d); /* model_lock held */
void model_put(struct engine *e, struct ldevice *d);

/*
 * One request of @d at a time, held across its slow waits (a device's
 * request lock, without a mutex in each of 100,000 devices).
 */
void dev_request_begin(struct engine *e, struct ldevice *d);
/* The same without waiting: false if a request runs (nothing taken). */
bool dev_request_try(struct engine *e, struct ldevice *d);
void dev_request_end(struct engine *e, struct ldevice *d);

/* Every device, pinned, in model order; model_put_all() when done. */
int model_pin_all(struct engine *e, struct ldevice ***out, unsigned *n);
void model_put_all(struct engine *e, struct ldevice **devs, unsigned n);

/*
 * Model write lock held (or the engine not yet shared).  @slot: where the
 * record goes (zeroed), or NULL to allocate one (hot-plug).
 */
int model_add(struct engine *e, const struct cfg_device *c,
	      struct ldevice *slot, char *reason);
/* Model write lock held: out of the map and the list; freed when unpinned. */
void model_unlink(struct engine *e, struct ldevice *d);
/* Refresh ids, driver, NUMA node of @d (d->lock held); -ENOMEM. */
int model_fill(struct ldevice *d, const struct cfg_device *c);
/* The config's @n devices in one mapping (e->slab); engine_free(): all. */
int model_slab_new(struct engine *e, size_t n);
void model_free_all(struct engine *e);

/*
 * The changes one request or event makes, delivered once no engine lock
 * is held (a watcher may call back into the engine): device ids, and
 * @all when the set of devices or hosts changed.
 */
struct note_event {
	enum event_kind kind;
	int64_t time_ns;
	bool stored; /* appended with a commit already (evlog_attach()) */
	char text[EVENT_TEXT_MAX]; /* "SUBJECT EVENT details" */
};

struct notes {
	char (*ids)[DEVICE_ID_MAX];
	unsigned n, cap;
	bool all;
	bool compos; /* compositions changed (engine_watch_cb, "") */
	struct note_event *evs; /* events.h: appended by notes_flush() */
	unsigned nev, evcap;
	const struct engine_caller *who; /* the writer its events name */
	const char *host;		 /* this daemon's host (distributed) */
};

void notes_add(struct notes *nt, const char *devid); /* NULL: all */
void notes_flush(struct engine *e, struct notes *nt,
		 const struct engine_caller *who);

/*
 * events.c: add an event about @subject to @nt, with details given as
 * key, value pairs (const char *, escaped by event_kv()), ending in NULL.
 * notes_flush() appends them (evlog_commit(): the caller's details, the
 * store, the ring, the counters, the event watch).
 */
void notes_event(struct notes *nt, enum event_kind k, const char *subject, ...)
	__attribute__((sentinel));
/* The writer the events of @nt name (host=, uid=, pid=, comm=); call first. */
void notes_caller(struct notes *nt, struct engine *e,
		  const struct engine_caller *who);
/* Drop the last event of @nt (its change did not happen after all). */
void notes_event_drop(struct notes *nt);

#define EVLOG_ATTACH_MAX 8
/*
 * A commit is about to run with @txn: the events of @nt not stored yet
 * (at most EVLOG_ATTACH_MAX, in @buf) ride in its transaction where the
 * store can (store.h, lend_txn.events).  evlog_attached() after it.
 */
void evlog_attach(struct notes *nt, struct lend_txn *txn, struct event_rec *buf);
void evlog_attached(struct notes *nt, struct lend_txn *txn);
/*
 * An intent (distributed mode: its commit may be written by a peer): the
 * events of @nt not stored yet and @next (NULL: none), the event the
 * commit will make, become the events the commit carries
 * (lend_txn.carry, at most EVLOG_ATTACH_MAX in @buf).  evlog_carried():
 * a peer's commit carried those @n (with @next: the last of them is the
 * commit's own, noted in @nt since, last).
 */
void evlog_carry(struct notes *nt, const struct note_event *next,
		 struct lend_txn *txn, struct event_rec *buf);
void evlog_carried(struct notes *nt, unsigned n, bool next);
/* store_event_sink of the engine: stored events into the ring. */
void evlog_sink(void *arg, const struct event_rec *ev, unsigned n);
void evlog_commit(struct engine *e, struct note_event *evs, unsigned n,
		  const struct engine_caller *who);
/* The store's events after the ring's last into the ring (start, zk watch). */
int evlog_load(struct engine *e, char *reason);
/*
 * Distributed mode (cluster.c): at each new session, and when ROOT/events
 * changed, read what the other daemons appended; the event watch is told.
 */
void evlog_follow(struct engine *e);
void evlog_render_metrics(struct engine *e, FILE *out);

/* d->lock held: the text buffers, allocated by the first lend or error. */
int dev_text(struct ldevice *d);
void dev_clear_borrower(struct ldevice *d);
_printf_(2, 3) void dev_set_error(struct ldevice *d, const char *fmt, ...);
void dev_set_last_error(struct ldevice *d, int err, const char *reason);
/*
 * "ERRNO: reason" as last_error keeps it, into @buf of @size bytes
 * (LAST_ERROR_MAX: last_error's own size, so the same truncation).
 */
void last_error_format(char *buf, size_t size, int err, const char *reason);
static inline void dev_touch(struct ldevice *d)
{
	d->generation++;
}

/* A host's liveness (distributed) and admin flag, under fabric_lock. */
void model_host_flags(struct engine *e, const struct lhost *h, bool *live,
		      bool *admin);
/* Is host @name live?  false for a name that is no host. */
bool model_host_live(struct engine *e, const char *name);

/* Is the lender of @d online?  (fabric_lock nests inside d->lock) */
bool lender_online(struct engine *e, const struct ldevice *d);

/*
 * Distributed mode: what another lender's device shows, its record's
 * state or offline (d->lock held); is @d another daemon's device, is @w
 * on this host?
 */
enum dev_state replica_state(struct engine *e, const struct ldevice *d);
bool lend_remote(const struct engine *e, const struct ldevice *d);
bool lend_window_here(const struct engine *e, const struct window *w);

/* ---- borrowers ------------------------------------------------------------ */

/*
 * A borrower as resolved for one request.  VMs carry "vm:HOST/VM" and the
 * host they run on; a VM of the registry (vmreg.c) also its RAM as last
 * probed, and what the lend gives its guest.
 */
struct borrower {
	const struct borrower_ops *ops;
	char value[BORROWER_MAX + 1];
	struct lhost *host; /* the host whose fabric side maps the device */
	const struct range *ram;
	unsigned nram;
	bool vmreg;		/* a VM of the registry, not of the config */
	struct range ram_buf[CONFIG_MAX_RAM_RANGES];
	struct lvm *vm;		/* set by prepare() */
	struct vm *qmp;		/* its connection, stable while the device holds it */
	unsigned bars;		/* the BARs the guest gets (mask: all memory BARs) */
	bool plugged;		/* plug() hot-added the device */
};

/*
 * A kind of borrower (host: borrower_host_ops, lend.c; VM:
 * borrower_vm_ops, vmreg.c), chosen by the value's form.
 *
 *   intent_always  something outside the daemon keeps state across a
 *                  crash (a guest keeps a hot-added device): every
 *                  request writes its intent first
 *   resolve        parsed value -> struct borrower, or -errno
 *   prepare        lend, device `lending`: e.g. re-probe guest memory
 *   plug           lend, windows programmed: e.g. hot-add to the guest
 *   unplug_rollback  undo plug() of a lend that failed after it
 *   unplug         return, device `returning`: 0, or -ETIMEDOUT when the
 *                  guest has not acknowledged in time (lend.c then leaves
 *                  the return pending; the guest's late acknowledgement
 *                  finishes it through lend_guest_ack())
 *   attached       is the borrower @owner still there to acknowledge?
 *   recover        a stored record at start: > 0 releases it
 */
struct borrower_ops {
	const char *name;
	bool intent_always;
	int (*resolve)(struct engine *e, const struct ldevice *d,
		       const struct bname *n, struct borrower *b, char *reason);
	int (*prepare)(struct engine *e, struct ldevice *d, struct borrower *b,
		       struct notes *nt, char *reason);
	int (*plug)(struct engine *e, struct ldevice *d, struct borrower *b,
		    uint64_t deadline, char *reason);
	void (*unplug_rollback)(struct engine *e, struct ldevice *d,
				struct borrower *b);
	int (*unplug)(struct engine *e, struct ldevice *d, const char *owner,
		      char *reason);
	bool (*attached)(struct engine *e, const char *owner);
	int (*recover)(struct engine *e, struct ldevice *d,
		       const struct lend_record *rec, char *reason);
};

extern const struct borrower_ops borrower_host_ops;
extern const struct borrower_ops borrower_vm_ops;

/* The kind of a borrower value: vm:HOST/VM or a host. */
const struct borrower_ops *borrower_kind(struct engine *e, const char *value);

/* "HOST" or "vm:HOST/VM" of a request for @d: its kind resolves it. */
int borrower_resolve(struct engine *e, const struct ldevice *d,
		     const char *value, struct borrower *b, char *reason);

/* ---- plan.c --------------------------------------------------------------- */

/*
 * Under fabric_lock, find the route and reserve every LUT entry, DMA
 * window and IOMMU mapping a lend of @d to @b needs, tagging them with
 * @owner.  On failure nothing stays reserved.
 */
int plan_lend(struct engine *e, struct ldevice *d, const struct borrower *b,
	      uint64_t owner, struct route *route, struct window **windows,
	      unsigned *nwindows, char *reason);

/*
 * What a lend would take, as a plan shows it (dryrun.c): the route (no
 * hops: none found), per host on it from the lender on, its adapter's
 * LUT entries the lend takes and those left free with them taken, and
 * the DMA windows and IOMMU mappings.
 */
struct plan_adapter {
	char host[HOST_NAME_MAX_LEN + 1];
	char adapter[32];
	uint32_t lut_entries;
	uint32_t lut_free;
};

struct plan_summary {
	struct route route;
	struct plan_adapter ad[ROUTE_MAX_HOPS + 1];
	unsigned nad;
	unsigned dma_windows, iommu_mappings;
};

/*
 * The dry run of plan_lend() (fabric_lock taken here): the same code
 * finds the route and makes every reservation, @s counts them while they
 * are held, and they are released before the lock is dropped.  No fault
 * point is passed.  The error plan_lend() would return, with @s->route
 * kept when the route was found.
 */
int plan_dry_run(struct engine *e, struct ldevice *d, const struct borrower *b,
		 struct plan_summary *s, char *reason);

/*
 * A composition's plan (dryrun.c): each member (@d NULL: nothing to
 * plan, it is lent to the borrower already) and its borrower, what
 * planning it took (@w, freed by the caller) and counted; each P2P link
 * planned between two members @a and @b (indices): its route a -> b and
 * windows, or the error that leaves the link without them (the lend
 * stands, as p2p_compose() keeps such a link).
 */
struct plan_member {
	struct ldevice *d;
	struct borrower b;
	struct plan_summary s; /* lut_free: with all of the plan taken */
	struct window *w;
	unsigned nw;
	bool planned;
};

struct plan_pair {
	unsigned a, b;
	struct route route;
	uint32_t lut_entries;
	unsigned iommu_mappings;
	int err;
	char error[REASON_MAX];
};

/*
 * The dry run of a composition's lend, under one hold of fabric_lock:
 * member i planned as plan_lend() plans it, with every reservation of
 * the members before it and of their P2P links still held (as the
 * lend's requests leave them), then its P2P link with each of them
 * (@pairs: room for n * (n - 1) / 2).  Everything is released before the
 * lock is dropped.  0, or the -errno of the first member whose planning
 * failed (@*at: its index).
 */
int plan_dry_run_members(struct engine *e, struct plan_member *m, unsigned n,
			 struct plan_pair *pairs, unsigned *npairs,
			 unsigned *at, char *reason);

/* @s for the windows @w of a lend over @r, as the tables are now (fabric_lock held). */
void plan_summarize(struct engine *e, const struct route *r,
		    const struct window *w, unsigned n, struct plan_summary *s);

/* Reserve exactly these windows again (recovery); -EBUSY on conflict. */
int plan_claim(struct engine *e, uint64_t owner, const struct window *w,
	       unsigned n, char *reason);

/* Release the reservations of @n windows (fabric_lock held). */
void plan_release(struct engine *e, const struct window *w, unsigned n);
/* The same, taking fabric_lock. */
void plan_release_locked(struct engine *e, const struct window *w, unsigned n);

/*
 * Under fabric_lock: routes and windows letting @l->a and @l->b reach
 * each other's BARs.  Same lender: direct, or identity IOMMU mappings.
 */
int plan_p2p(struct engine *e, struct p2p_link *l, char *reason);

/* ---- program.c ------------------------------------------------------------ */

/*
 * Program @n windows (in distributed mode only this host's: the others'
 * daemons program theirs); on failure what went in is cleared again.
 * -ETIMEDOUT past @deadline.  windows_clear() clears in reverse and, on
 * failure, programs again what it cleared.
 */
int windows_program(struct engine *e, const struct window *w, unsigned n,
		    uint64_t deadline, char *reason);
int windows_clear(struct engine *e, const struct window *w, unsigned n,
		  char *reason);

/*
 * Clear every one of @n windows that is on this host, going on past one
 * that fails (an entry not programmed any more is just skipped): what a
 * mirror does when a lend is gone, where nothing can be put back and a
 * window left programmed would reach a device that is not lent.
 */
void windows_clear_all(struct engine *e, const struct window *w, unsigned n);

/* ---- p2p.c ---------------------------------------------------------------- */

/* @d just became lent: link it with every device lent to its borrower. */
void p2p_compose(struct engine *e, struct ldevice *d, struct notes *nt);
/* @d leaves its composition: every link with it goes, windows freed. */
void p2p_decompose(struct engine *e, struct ldevice *d, struct notes *nt);
/* The peers of @d into @v (engine_device_view()). */
int p2p_view(struct engine *e, struct ldevice *d, struct device_view *v);
void p2p_free_all(struct engine *e);

/* ---- lend.c: the state machine --------------------------------------------- */

/*
 * A request from a front-end, an autolend, a forwarded write (cluster.c,
 * with @txn naming its request node) or a take-back.  0, 1 (a no-op) or
 * -errno with @reason; last_error, metrics and notifications done.
 */
int lend_request(struct engine *e, const char *devid, const char *value,
		 const struct engine_caller *who, struct lend_txn *txn,
		 char *reason);

/*
 * The checks of a lend's validate step, changing nothing (dryrun.c):
 * @value resolves into @b, and @d can be lent to it now (lend_check(),
 * a free request slot).  0, 1 (already lent to @value: the write would
 * be a no-op) or the -errno and reason the write would fail with.
 */
int lend_admit(struct engine *e, struct ldevice *d, const char *value,
	       struct borrower *b, char *reason);

/*
 * One write's value (the SPEC section 4 rules): one trailing newline
 * stripped, at most BORROWER_MAX bytes, printable without spaces; into
 * @out (BORROWER_MAX + 1 bytes).  -EINVAL with reason.
 */
int lend_parse_value(const char *buf, size_t len, char *out, char *reason);

/* A write refused before any request: @devid's last_error, an event. */
int lend_write_refused(struct engine *e, const char *devid, int r,
		       const char *buf, size_t len,
		       const struct engine_caller *who, const char *reason);

/* An autolend of the config or udev; the outcome goes to the log. */
int lend_autolend(struct engine *e, const char *devid, const char *borrower,
		  char *why);

/*
 * The guest of @owner acknowledged the removal of @devid: a pending return
 * is finished (1), a return still waiting is told (0).  < 0: the return
 * failed, the device stays lent.
 */
int lend_guest_ack(struct engine *e, const char *devid, const char *owner,
		   struct notes *nt, char *reason);

/*
 * The guest of @owner is gone (QEMU exited): @d, if lent to it or
 * pending, is released (1); -EBUSY while a request on it runs; 0 if @d is
 * not the guest's.
 */
int lend_guest_gone(struct engine *e, struct ldevice *d, const char *owner,
		    struct notes *nt, char *reason);

/*
 * Recovery (recover.c): the stored lend @rec of @d is programmed again
 * with @owner over @route, and the device is `lent`; or it cannot be
 * (@err, @why), and the device is `failed`.
 */
int lend_restored(struct engine *e, struct ldevice *d,
		  const struct lend_record *rec, uint64_t owner,
		  const struct route *route, char *reason);
void lend_restore_failed(struct engine *e, struct ldevice *d,
			 const char *borrower, int err, const char *why);

/*
 * Distributed mode (replica.c): another lender's @d shows its record @rec
 * now (NULL: none), with windows @nw (taken), @owner, @route (NULL: none);
 * d->lock held, its old windows are the caller's.  *@dirty: read again.
 */
void lend_mirror(struct engine *e, struct ldevice *d,
		 const struct lend_record *rec, struct window *nw,
		 unsigned nnew, uint64_t owner, const struct route *route,
		 bool *dirty);

/* A device removed while lent is back (hot-plug add): `available`. */
int lend_device_back(struct engine *e, struct ldevice *d,
		     const struct cfg_device *c, char *reason);

/* Hot-removal of a lent @d: torn down, `failed`, listed until cleared. */
void lend_device_gone(struct engine *e, struct ldevice *d, struct notes *nt);

/*
 * A host's liveness (distributed) or admin state changed: its devices
 * follow, and with @act this daemon's lends whose route broke are
 * rerouted or failed.
 */
void lend_host_refresh(struct engine *e, struct lhost *h, bool act,
		       struct notes *nt);

/*
 * Distributed mode: forced return of this daemon's devices lent to
 * @host, whose session expired.  How many were tried; in @failed how many
 * stay lent.
 */
int lend_take_back(struct engine *e, const char *host, uint64_t fence,
		   unsigned *failed);

/* ---- settle.c (lend_mark_unsure: lend.c) --------------------------------- */

/*
 *   lend_mark_unsure   a request on this lender's @d failed, and the store
 *                      may hold its write all the same (coord_ops.settles)
 *   lend_settle_all    connected again: for each unsure device, @close the
 *                      marker of the lend tried (so that no peer commits
 *                      it any more; 0 or -errno), read the record and
 *                      settle the books with it as recovery would: a lent
 *                      record restored, a `lending` one rolled back, none
 *                      while the books say lent: returned.  Takes each
 *                      device's request lock; the session thread calls it.
 */
void lend_mark_unsure(struct engine *e, struct ldevice *d, uint64_t epoch);

/* d->lock held: its lend's windows, route and lease are gone (lend.c). */
void lend_forget_windows(struct ldevice *d);
void lend_settle_all(struct engine *e,
		     int (*close)(void *arg, const char *devid, uint64_t epoch),
		     void *arg);

/* ---- leases: lend.c (the requests) and lease.c (the timer) ------------------- */

#define LEASE_TEXT_MAX 16     /* bytes of a lease write, newline excluded */
#define LEASE_TIME_MAX 32     /* "2026-12-06T01:02:03Z" and its NUL */
#define LEASE_REQUEST_PREFIX "lease " /* a forwarded lease request's value */

/*
 * Set (@seconds > 0) or remove the lease of lent @devid; 0 or -errno.
 * @at: the deadline itself (wall ns; a composition's, the same for each
 * member), 0: @seconds from now.  @compo: the composition whose lease it
 * sets (forwarded with it: lend_txn.compo), NULL: the device's own.
 */
int lend_lease_request(struct engine *e, const char *devid, uint32_t seconds,
		       int64_t at, const char *compo,
		       const struct engine_caller *who, char *reason);

/*
 * A request node's value from another mount (cluster.c): "lease N" is a
 * lease request, anything else a borrower write (lend_request()).
 */
int lend_forwarded(struct engine *e, const char *devid, const char *value,
		   const struct engine_caller *who, struct lend_txn *txn,
		   char *reason);

/*
 * @d's lease passed: returned as an empty borrower write returns it, with
 * an `expired` event (cause=@cause).  0 not due, 1 returned, -errno.
 * @compo (NULL: none): the composition whose lease @at passed, which @d
 * leaves with (compose.c), whatever @d's own deadline.
 */
int lend_lease_expire(struct engine *e, struct ldevice *d, const char *cause,
		      const char *compo, int64_t at);

/*
 * lend.c:
 *   lease_parse      a lease write: seconds 0 .. LEASE_MAX_S (bounded,
 *                    NUL-safe, one newline stripped; empty is 0)
 *   lease_time_text  wall-clock ns as ISO 8601 UTC ("" for 0)
 *   lease_kick       a lend now has deadline @deadline: wake the timer
 *                    if it is the earliest (no lock held, or only
 *                    the device's request lock)
 * lease.c:
 *   lease_expire_due return this daemon's devices whose lease passed;
 *                    the next deadline (0 none).  Recovery calls it with
 *                    cause "recovery", the timer with "lease".
 */
int lease_parse(const char *buf, size_t len, uint32_t *seconds, char *reason);
void lease_time_text(int64_t ns, char *buf, size_t size);
void lease_kick(struct engine *e, int64_t deadline);
/* lease.c, the timer (engine.c: init at allocation, start after recovery, stop first) */
int64_t lease_expire_due(struct engine *e, const char *cause);
void lease_init(struct engine *e);
int lease_start(struct engine *e, char *reason);
void lease_stop(struct engine *e);
void lease_free(struct engine *e);

/* ---- recover.c ------------------------------------------------------------ */

/*
 * Bring stored lends back (coord_local_ops start): host states, records,
 * P2P links, then the config's autolends.
 */
int engine_recover(struct engine *e, char *reason);

/* One stored record (also replica.c, for this host's own records). */
int recover_record(struct engine *e, const struct lend_record *rec,
		   char *reason);

/* ---- replica.c: distributed mode ------------------------------------------ */

/*
 *   lend_apply_record      the store's record of another lender's device
 *                          changed (@rec NULL: none): mirror it, reserve
 *                          its windows, (un)program the ones on this host.
 *                          Fills @ack when this host must acknowledge.
 *   lend_host_state        a host's daemon came or went (@live), or its
 *                          admin state changed; @act: take the actions
 *                          the lender takes (reroute, fail)
 *   lend_recover_own       first connection: recover this host's records
 *   lend_autolend_own      then the config's autolends of this host
 */
struct lend_ack {
	bool needed;
	bool mapped; /* else unmapped */
	bool commit; /* this host is the only one besides the lender: it
			commits (or removes) the record instead of acking */
	uint64_t epoch;
};

/*
 * Is @host the only host besides @lender that holds one of @w?  Then it
 * commits the lend (and removes the record of a return) itself, and the
 * lender waits for that instead of an acknowledgement: one ZooKeeper
 * write fewer (docs/STATE.md).
 */
bool lend_sole_peer(const char *lender, const struct window *w, unsigned n,
		    const char *host);

void lend_apply_record(struct engine *e, const char *devid,
		       const struct lend_record *rec, struct lend_ack *ack,
		       bool *dirty);
void lend_host_state(struct engine *e, const char *host, bool live,
		     bool admin, bool act);
int lend_recover_own(struct engine *e, char *reason);
void lend_autolend_own(struct engine *e);

/* ---- vmreg.c -------------------------------------------------------------- */

/*
 *   vmreg_init / vmreg_free    engine construction; vmreg_free() first
 *   vmreg_load                 config VMs, then stored VMs re-attached
 *                              (before the lends are recovered)
 *   vmreg_start                QMP callbacks on (after recovery)
 */
void vmreg_init(struct engine *e);
void vmreg_free(struct engine *e);
int vmreg_load(struct engine *e, char *reason);
void vmreg_start(struct engine *e);

/* ---- compose.c ------------------------------------------------------------ */

/*
 *   compose_init / compose_free  engine construction
 *   compose_load                 stored compositions, after the lends are
 *                                recovered and before the leases that
 *                                passed are expired (recover.c): an
 *                                unfinished lend is rolled back, an
 *                                unfinished return finished
 *
 * A device's own borrower write (engine_write_borrower()) is compose.c's
 * too: a member of a composition that is not available refuses it.
 */
void compose_init(struct engine *e);
void compose_free(struct engine *e);
int compose_load(struct engine *e, char *reason);

/*
 * Distributed mode: read the stored compositions (and watch them again)
 * into the list, as cluster.c's session thread does on each of their
 * watches and on each new session.  Never waits for compo_op_lock:
 * -EAGAIN while a composition write holds it (try again later).  0 in
 * one-daemon mode (the list is the store's already).
 */
int compose_sync(struct engine *e, char *reason);
/*
 * compose_sync() returns 1 when it found a composition whose lend or
 * return no daemon will finish (its daemon stopped: the marker names this
 * daemon, or one that is not live), or one stored as lent some of whose
 * members were taken back (its borrower went away: lend_take_back()).
 * compose_settle() then rolls such a lend back and finishes such a
 * return, as compose_load() does at start in one-daemon mode, and
 * returns the rest of a lend that lost members (event
 * composition-returned, cause=take-back); cluster.c runs it on a
 * thread of its own (it waits for the lenders' daemons).
 */
int compose_settle(struct engine *e, char *reason);

/*
 * A request of another mount (cluster.c), before lend_forwarded(): one
 * for a member of a composition that is not available is refused (EBUSY,
 * read again from the store), unless it is a step of that composition's
 * own lend, return or lease (@compo, its name: lend_txn.compo) that is
 * still in progress.
 */
int compose_forwarded(struct engine *e, const char *devid, const char *value,
		      const char *compo, const struct engine_caller *who,
		      struct lend_txn *txn, char *reason);

/*
 * The lease timer found @d's deadline passed (lease.c): a member of a
 * lent composition takes the whole composition with it (every member
 * returned, as an empty write to its borrower would, once the earliest
 * deadline of its members passed); any other device goes alone
 * (lend_lease_expire()).  0 not due, 1 returned, -errno.
 */
int compose_lease_expire(struct engine *e, struct ldevice *d,
			 const char *cause);

#endif
