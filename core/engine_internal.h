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
 */
#ifndef LENDFS_ENGINE_INTERNAL_H
#define LENDFS_ENGINE_INTERNAL_H

#include <pthread.h>

#include "engine.h"
#include "hashmap.h"
#include "iommu.h"
#include "metrics.h"
#include "ntb.h"

#define BAR_BASE 0x380000000000ULL /* where the sim places lender BARs */

struct lhost {
	char name[HOST_NAME_MAX_LEN + 1];
	const struct cfg_host *cfg;
	unsigned node; /* topology node index */
	bool online;
	bool iommu; /* lent devices get IOMMU domains of their own */
	struct ntb_table ntb;
	uint64_t next_bar; /* BAR address allocator */
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
	char deny_reason[128]; /* the lender depends on it (inventory) */
	char driver[32];
	int numa_node;
	int iommu_group;
	bool gone; /* removed by hot-plug while lent; listed until cleared */
	struct iommu_domain iommu; /* on the lender; fabric_lock */

	pthread_mutex_t lock;
	enum dev_state state;
	char borrower[BORROWER_MAX + 1];
	char last_error[REASON_MAX + 16];
	int64_t since;
	uint64_t generation;
	uint64_t owner; /* tag of the current lend in NTB/IOMMU tables */
	uint64_t epoch;
	bool has_route;
	struct route route;
	struct window *windows;
	unsigned nwindows;
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

	engine_watch_cb watch;
	void *watch_arg;
	engine_log_cb log;
	void *log_arg;
};

struct lhost *engine_host(struct engine *e, const char *name);
struct ldevice *engine_dev(struct engine *e, const char *id);

/*
 * A borrower as parsed from a request.  Hosts only for now; VMs carry
 * "vm:HOST/VM" and the host they run on.
 */
struct borrower {
	char value[BORROWER_MAX + 1];
	struct lhost *host; /* the host whose fabric side maps the device */
	const struct range *ram;
	unsigned nram;
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

#endif
