/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * engine_internal.h - the engine's private model, shared by lend.c (the
 * state machine), plan.c (which windows a lend needs) and render.c (text
 * views).  Nothing outside core/ includes this.
 *
 * Locking, outermost first:
 *   e->model_lock  (rwlock) the set of devices and hosts; write-held only
 *                  to add or remove a device (hot-plug)
 *   d->lock        (mutex) one device's lend state; held briefly, never
 *                  across a back-end call
 *   e->fabric_lock (mutex) topology, NTB tables, IOMMU domains, host
 *                  online flags; held while planning, never across a
 *                  back-end call either
 *
 * The VM registry (vmreg.c): e->vm_op_lock serialises its changes (held
 * across QMP connects, taken before everything else); e->vm_lock guards
 * the list and each VM's fields and nests inside model_lock and outside
 * d->lock.  Neither is held across a QMP call.
 */
#ifndef LENDFS_ENGINE_INTERNAL_H
#define LENDFS_ENGINE_INTERNAL_H

#include <pthread.h>

#include "engine.h"
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
	uint64_t absent_since; /* distributed: not live since (now_ns) */
	bool iommu; /* lent devices get IOMMU domains of their own */
	struct ntb_table ntb;
	uint64_t next_bar; /* BAR address allocator */
};

/*
 * What a device has to say once it is lent or has failed: allocated by
 * its first lend or error, so that the 100,000 devices nobody borrows
 * cost no more than their ids and BARs (docs/PERFORMANCE.md).
 */
struct ldevice_text {
	char borrower[BORROWER_MAX + 1];
	char last_error[REASON_MAX + 16];
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
	/* from the udev inventory (NULL: none), under lock: */
	char *deny_reason; /* the lender depends on it */
	char *driver;
	int numa_node;
	int iommu_group;
	int rec_state; /* distributed, another lender's device: the state of
			  its record (enum rec_state), -1 none; d->lock */
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
	uint64_t generation;
	uint64_t owner; /* tag of the current lend in NTB/IOMMU tables */
	uint64_t epoch;
	bool has_route;
	struct route *route; /* allocated by the first lend: 800 bytes */
	struct window *windows;
	unsigned nwindows;
	/* returning from a VM (vmreg.c), under lock: */
	bool vm_pending; /* the guest has not acknowledged the unplug yet */
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

struct engine {
	const struct cluster_config *cfg;
	const struct fabric_ops *fabric;
	void *fabric_ctx;
	const struct store_ops *store;
	void *store_ctx;
	char run_dir[4096];

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
	struct metrics metrics;

	/* distributed mode (cluster.c): NULL when this daemon is every host */
	struct cluster *cluster;
	struct lhost *self; /* the host this daemon runs on, or NULL */

	engine_watch_cb watch;
	void *watch_arg;
	engine_log_cb log;
	void *log_arg;

	pthread_mutex_t vm_op_lock; /* VM registry changes (vmreg.c) */
	pthread_mutex_t vm_lock;    /* the VM list and each VM's fields */
	struct lvm *vms;
	unsigned nvms;
};

/*
 * An event for the daemon's log (recovery decisions, take-backs, the
 * ZooKeeper session): through the engine's log callback, if any.
 */
_printf_(2, 3) void engine_report(struct engine *e, const char *fmt, ...);

struct lhost *engine_host(struct engine *e, const char *name);
struct ldevice *engine_dev(struct engine *e, const char *id);

/*
 * A borrower as parsed from a request.  VMs carry "vm:HOST/VM" and the
 * host they run on; a VM of the registry (vmreg.c) also its RAM as last
 * probed, and what the lend gives its guest.
 */
struct borrower {
	char value[BORROWER_MAX + 1];
	struct lhost *host; /* the host whose fabric side maps the device */
	const struct range *ram;
	unsigned nram;
	bool vmreg;		/* a VM of the registry, not of the config */
	struct range ram_buf[CONFIG_MAX_RAM_RANGES];
	struct lvm *vm;		/* set by vmreg_prepare() */
	struct vm *qmp;		/* its connection, stable while the device holds it */
	unsigned bar;		/* the BAR the guest gets (the largest) */
	uint64_t bar_size;
	bool plugged;		/* vmreg_plug() hot-added the device */
};

/*
 * plan.c: under fabric_lock, find the route and reserve every LUT entry,
 * DMA window and IOMMU mapping a lend of @d to @b needs, tagging them with
 * @owner.  On failure nothing stays reserved.
 */
int plan_lend(struct engine *e, struct ldevice *d, const struct borrower *b,
	      uint64_t owner, struct route *route, struct window **windows,
	      unsigned *nwindows, char *reason);

/* Reserve exactly these windows again (recovery); -EBUSY on conflict. */
int plan_claim(struct engine *e, uint64_t owner, const struct window *w,
	       unsigned n, char *reason);

/* Release the reservations of @n windows (fabric_lock held). */
void plan_release(struct engine *e, const struct window *w, unsigned n);

/*
 * Under fabric_lock: routes and windows letting @l->a and @l->b reach
 * each other's BARs.  Same lender: direct, or identity IOMMU mappings.
 */
int plan_p2p(struct engine *e, struct p2p_link *l, char *reason);

/*
 * lend.c, for vmreg.c.  lend_return_finish(): @d is `returning` and owned
 * by the caller; with @r 0 tear its lend down (store, windows) and make it
 * available, else (or if that fails) it is lent again.  Call with
 * model_lock read-held.  Notifications are queued (lend_notify) and
 * delivered by lend_notify_flush() once no engine lock is held.
 */
int lend_return_finish(struct engine *e, struct ldevice *d, int r,
		       char *reason);
void lend_notify(struct engine *e, const char *devid);
void lend_notify_flush(struct engine *e, const struct engine_caller *who);

/*
 * Distributed mode (docs/STATE.md): lend.c's side of cluster.c.
 *
 *   lend_remote            is @d another daemon's device?
 *   lend_window_here       is @w programmed by this daemon?
 *   lend_apply_record      the store's record of another lender's device
 *                          changed (@rec NULL: none): mirror it, reserve
 *                          its windows, (un)program the ones on this host.
 *                          Fills @ack when this host must acknowledge.
 *   lend_host_state        a host's daemon came or went (@live), or its
 *                          admin state changed; @act: take the actions
 *                          the lender takes (reroute, fail)
 *   lend_take_back         forced return of this daemon's devices lent
 *                          to @host, whose session expired; how many
 *                          were tried, and in @failed how many stay lent
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

bool lend_remote(const struct engine *e, const struct ldevice *d);
bool lend_window_here(const struct engine *e, const struct window *w);
void lend_apply_record(struct engine *e, const char *devid,
		       const struct lend_record *rec, struct lend_ack *ack,
		       bool *dirty);
void lend_host_state(struct engine *e, const char *host, bool live,
		     bool admin, bool act);
int lend_take_back(struct engine *e, const char *host, uint64_t fence,
		   unsigned *failed);
int lend_recover_own(struct engine *e, char *reason);
void lend_autolend_own(struct engine *e);

/*
 * vmreg.c: the VM registry and the VM steps of a lend (docs/VM.md).
 *
 *   vmreg_init / vmreg_free    engine construction; vmreg_free() first
 *   vmreg_load                 config VMs, then stored VMs re-attached
 *                              (before the lends are recovered)
 *   vmreg_start                QMP callbacks on (after recovery)
 *   vmreg_resolve              borrower_resolve() of a registry VM
 *   vmreg_prepare              lend, device `lending`: re-probe the guest
 *                              memory, RAM to the fabric
 *   vmreg_plug                 lend, windows programmed: hot-add
 *   vmreg_unplug_rollback      lend failed after vmreg_plug()
 *   vmreg_unplug               return, device `returning`: hot-remove;
 *                              -ETIMEDOUT leaves it pending (the guest's
 *                              acknowledgement finishes the return)
 *   vmreg_recover              recovery of one record: > 0 releases it
 */
void vmreg_init(struct engine *e);
void vmreg_free(struct engine *e);
int vmreg_load(struct engine *e, char *reason);
void vmreg_start(struct engine *e);
int vmreg_resolve(struct engine *e, const struct ldevice *d, struct lhost *h,
		  const char *vm, struct borrower *b, char *reason);
int vmreg_prepare(struct engine *e, struct ldevice *d, struct borrower *b,
		  char *reason);
int vmreg_plug(struct engine *e, struct ldevice *d, struct borrower *b,
	       uint64_t deadline, char *reason);
void vmreg_unplug_rollback(struct engine *e, struct ldevice *d,
			   struct borrower *b);
int vmreg_unplug(struct engine *e, struct ldevice *d, char *reason);
int vmreg_recover(struct engine *e, struct ldevice *d,
		  const struct lend_record *rec, char *reason);

#endif
