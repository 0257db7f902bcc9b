/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * engine.h - the lend engine: the public face of core/ for front-ends.
 *
 * An engine owns the cluster model (hosts, links, devices), the fabric
 * book-keeping and back-end, and the store.  It is the only thing that
 * changes lend state.  Every call is thread-safe: a short global lock
 * guards the model's shape, one lock per device guards its state, and no
 * lock is held while a back-end waits on something slow.
 *
 * Device states (SPEC section 3):
 *
 *   available --lend--> lending --ok--> lent --return--> returning --> available
 *                          |                                 |
 *                          +--error: rolled back to available+--error: stays lent
 *   failed:  the lend broke under the engine (route lost, device removed);
 *            writing an empty borrower clears it back to available.
 *   offline: the lender is offline.
 *
 * Requests return 0 or -errno (SPEC section 4) and fill @reason; the
 * device's last_error keeps "ERRNO: reason" of its last failed request.
 */
#ifndef LENDFS_ENGINE_H
#define LENDFS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "coord.h"
#include "fabric.h"
#include "store.h"
#include "topology.h"
#include "vm.h"
#include "window.h"

#define BORROWER_MAX 255 /* bytes in one borrower write, newline excluded */

struct engine;

/*
 * Who asked for a change: a front-end fills it for a write it serves
 * (the FUSE request's caller) and the engine hands it back, untouched,
 * to the watch callback with every change that request made.  NULL for
 * changes nobody wrote (hot-plug, recovery, the cluster, a guest).
 */
struct engine_caller {
	const void *origin; /* the front-end's own token (lendfs: the path) */
	uint32_t uid, pid;
	char comm[16]; /* the writer's command, "" when not known */
	/*
	 * The host of the mount written to, when it is not this daemon's
	 * (a write forwarded by another daemon, cluster.c); NULL: ours.
	 */
	const char *host;
};

enum dev_state {
	DEV_AVAILABLE,
	DEV_LENDING,
	DEV_LENT,
	DEV_RETURNING,
	DEV_FAILED,
	DEV_OFFLINE,
};

const char *dev_state_name(enum dev_state s);

/*
 * Events the engine reports (recovery decisions, autolend failures,
 * reroutes); the caller decides whether and where to log them.
 */
typedef void (*engine_log_cb)(void *arg, const char *msg);

struct engine_options {
	const struct cluster_config *cfg; /* the engine keeps a reference */
	const struct fabric_ops *fabric;
	const char *run_dir;		  /* sim fabric files */
	const struct store_ops *store;
	const char *store_where;	  /* file or URI for store->open */
	const struct coord_ops *coord;	  /* NULL: coord_local_ops (coord.h) */
	const char *local_host;		  /* NULL: this daemon is every host */
	engine_log_cb log;
	void *log_arg;
};

/* Create an engine, open the back-ends and recover stored lends. */
int engine_new(const struct engine_options *opt, struct engine **out,
	       char *reason);
void engine_free(struct engine *e);

/* ---- requests ---------------------------------------------------------- */

/*
 * The whole SPEC section 4 contract for one write of @len bytes to a
 * device's borrower file: one trailing newline stripped, more than
 * BORROWER_MAX bytes -EINVAL, the current value is a no-op, empty returns
 * the device, anything else lends it.  Blocks until done or timed out.
 */
int engine_write_borrower(struct engine *e, const char *devid,
			  const char *buf, size_t len,
			  const struct engine_caller *who, char *reason);

/* Lend to @borrower ("HOST" or "vm:HOST/VM"), or return (NULL / ""). */
int engine_lend(struct engine *e, const char *devid, const char *borrower,
		char *reason);
int engine_return(struct engine *e, const char *devid, char *reason);

/*
 * A plan (devices/ID/plans/HOST, docs/ABI/devices-ID-plans-HOST): what
 * engine_write_borrower() of @borrower to @devid would do now, computed
 * by the lend's own validation and planning code without changing or
 * reserving anything (core/dryrun.c).  Renders into @out "ok", or the
 * "ERRNO: reason" line the write would leave in last_error, then
 * "key value" lines (route, latency_ns, lut_entries, dma_windows,
 * iommu_mappings, lut_free); on an error only the route, when one was
 * found.  Returns 0 or that -errno, with @reason (may be NULL).
 */
int engine_plan(struct engine *e, const char *devid, const char *borrower,
		FILE *out, char *reason);

/*
 * One write of @len bytes to a device's lease file (SPEC section 9): one
 * trailing newline stripped; N (1 .. LEASE_MAX_S) makes the lend end N
 * seconds from now, 0 or empty removes its lease.  -EINVAL for a
 * malformed value (nothing but last_error changes) and for a device that
 * is not lent; -EBUSY for a member of a lent composition (its lease is
 * the composition's).  Durable when it returns; in distributed mode the
 * lender's daemon does it (the write is forwarded).
 */
int engine_write_lease(struct engine *e, const char *devid, const char *buf,
		       size_t len, const struct engine_caller *who,
		       char *reason);

/* Administrative host state ("online" / "offline"). */
int engine_write_host_state(struct engine *e, const char *host,
			    const char *buf, size_t len,
			    const struct engine_caller *who, char *reason);

/* ---- hot-plug (inventory back-ends) ----------------------------------- */

/*
 * A device appeared on its lender (udev `add`, or coldplug): it shows up
 * as available.  -EEXIST if the id is known; when it is known but gone
 * (removed while lent, still `failed`), it comes back and the failure is
 * cleared.  With a non-empty dev->borrower the device is then lent to it
 * (auto-lend); a failure of that lend is in last_error and in @reason and
 * is returned as a positive 1 (the device was added all the same).
 */
int engine_device_add(struct engine *e, const struct cfg_device *dev,
		      char *reason);

/*
 * A device vanished (udev `remove`).  Available: it disappears.  Lent: the
 * lend is torn down (windows freed), the device stays listed as `failed`
 * with last_error "ENODEV: device removed" until an empty borrower write
 * clears it, and then it disappears.
 */
int engine_device_remove(struct engine *e, const char *devid, char *reason);

/* Refresh ids, driver, NUMA node (udev `change`); BAR sizes are kept. */
int engine_device_update(struct engine *e, const struct cfg_device *dev,
			 char *reason);

/* ---- reading ----------------------------------------------------------- */

/*
 * A consistent copy of one device, taken under its lock.  Release with
 * device_view_release().
 */
struct peer_view {
	char device[DEVICE_ID_MAX];
	struct route route; /* P2P route actually used, this lender -> peer's */
	bool via_root_complex; /* this lender's IOMMU forces it through its RC */
	uint64_t latency_ns;   /* route + root complex detour */
	char error[REASON_MAX]; /* non-empty: no P2P windows ("ENOSPC: ...") */
};

struct device_view {
	char id[DEVICE_ID_MAX];
	char lender[HOST_NAME_MAX_LEN + 1];
	struct pci_addr addr;
	uint16_t vendor, device, subsystem_vendor, subsystem_device;
	uint32_t class;
	uint64_t bar_size[PCI_NUM_BARS];
	uint64_t bar_addr[PCI_NUM_BARS];
	uint64_t bar_flags[PCI_NUM_BARS];
	char driver[32];
	int numa_node;	 /* -1: unknown */
	int iommu_group; /* -1: none */
	enum dev_state state;
	char borrower[BORROWER_MAX + 1];
	char last_error[REASON_MAX + 16];
	int64_t since;
	int64_t lease; /* lent: its lease deadline, wall-clock ns; 0 none */
	uint64_t generation; /* changes whenever anything above changes */
	bool has_route;
	struct route route; /* lender -> borrower */
	struct window *windows;
	unsigned nwindows;
	struct peer_view *peers;
	unsigned npeers;
};

int engine_device_view(struct engine *e, const char *devid,
		       struct device_view *out);
void device_view_release(struct device_view *v);

/* Does the device exist?  Cheap (no copy). */
bool engine_device_exists(struct engine *e, const char *devid);

/* Call @cb for every device id, in a stable order; stops on nonzero. */
int engine_foreach_device(struct engine *e,
			  int (*cb)(void *arg, const char *devid), void *arg);
size_t engine_device_count(struct engine *e);

/*
 * The same for the devices that are not simply available (another state,
 * or a borrower): what a watcher has to know at start, without a view of
 * each of 100,000 devices.
 */
int engine_foreach_busy_device(struct engine *e,
			       int (*cb)(void *arg, const char *devid), void *arg);

struct host_view {
	char name[HOST_NAME_MAX_LEN + 1];
	bool online;
	bool iommu;
	char adapter[32];
	uint32_t lut_entries, lut_used;
	uint32_t dma_windows, dma_used;
	uint32_t iommu_mappings;
	uint64_t iommu_faults;
};

int engine_host_view(struct engine *e, const char *host, struct host_view *out);
int engine_foreach_host(struct engine *e,
			int (*cb)(void *arg, const char *host), void *arg);

/* Devices lent by / to @host (ids), for hosts/HOST/{lent,borrowed}/. */
int engine_foreach_lent_by(struct engine *e, const char *host,
			   int (*cb)(void *arg, const char *devid), void *arg);
int engine_foreach_borrowed_by(struct engine *e, const char *host,
			       int (*cb)(void *arg, const char *devid),
			       void *arg);

/*
 * Is @devid lent by @host (by_lender) or borrowed by it?  A VM borrower
 * "vm:H/VM" counts as borrowed by H.  The rule behind the two walks above.
 */
bool engine_device_lent_to_or_by(struct engine *e, const char *devid,
				 const char *host, bool by_lender);

/* Multi-line renderings of whole-cluster files. */
int engine_render_lends(struct engine *e, FILE *out);
int engine_render_links(struct engine *e, FILE *out);
int engine_render_topology_dot(struct engine *e, FILE *out);
int engine_render_metrics(struct engine *e, FILE *out);

/* Path of a route, one hop per line, then "latency_ns N". */
void engine_render_route(struct engine *e, const struct route *r, FILE *out);

/*
 * A P2P route as devices/X/peers/Y shows it: "error ..." when the link has
 * no windows, "via root-complex LENDER" (IOMMU on) or "via pcie-switch
 * LENDER" (same lender), the hops, "root_complex_ns N" for the detour,
 * "hops N" and the total "latency_ns N".
 */
void engine_render_peer(struct engine *e, const char *lender,
			const struct peer_view *p, FILE *out);

/* ---- change notification ---------------------------------------------- */

/*
 * Called (from the thread that made the change, with no engine lock held)
 * after a device's visible state changed, with @devid NULL when the set
 * of devices or hosts changed, and with @devid "" when only compositions
 * changed (compositions/NAME/: one made or removed, its list, state,
 * borrower or last_error; its members' own changes come with their IDs);
 * @who is the caller of the request that made the change, NULL if none.
 * Front-ends invalidate caches here.
 */
typedef void (*engine_watch_cb)(void *arg, const char *devid,
				const struct engine_caller *who);
/* Once it returns, no call of the callback set before runs any more. */
void engine_set_watch(struct engine *e, engine_watch_cb cb, void *arg);

/* ---- the event log (events.h, docs/ABI/events) ------------------------ */

/*
 * Called after events were appended to the log (by this daemon, or in
 * distributed mode by another, seen through the store), with no engine
 * lock held.
 */
typedef void (*engine_event_cb)(void *arg);
/* Once it returns, no call of the callback set before runs any more. */
void engine_set_event_watch(struct engine *e, engine_event_cb cb, void *arg);

/*
 * The log as a byte stream of lines "SEQ TIME_NS SUBJECT EVENT k=v...":
 * its extent [*begin, *end) (byte offsets that never change; lines before
 * *begin were trimmed), its last SEQ and the time of its last event.
 */
void engine_events_span(struct engine *e, uint64_t *begin, uint64_t *end,
			uint64_t *last_seq, int64_t *last_time);

/*
 * Up to @size bytes from offset *@pos (moved to *begin first if below):
 * how many; 0 at the end.
 */
size_t engine_events_read(struct engine *e, uint64_t *pos, char *buf,
			  size_t size);

/* ---- VM borrowers ------------------------------------------------------ */

/*
 * The VM registry (docs/VM.md, core/vmreg.c): hosts/HOST/vms/VM.  A VM
 * borrower "vm:HOST/VM" is a QEMU guest on HOST reached over QMP; its
 * name, host and QMP socket path are stored.  VMs of [vm HOST/NAME]
 * config sections are listed too, as static (config RAM, no QMP, they
 * cannot be attached or removed).  A VM is busy while a device holds it
 * (lent, lending, returning to it): then it cannot be removed, detached or
 * attached elsewhere (-EBUSY).
 */
#define VM_QMP_PATH_MAX STORE_QMP_PATH_MAX /* bytes, NUL included */
#define VM_REGISTRY_MAX 1024		   /* VMs in one engine */

/*
 * mkdir hosts/HOST/vms/VM: a new, disconnected VM.  -ENOENT unknown
 * host, -EINVAL malformed name, -EEXIST already there (config VMs too),
 * -ENOSPC more than VM_REGISTRY_MAX.
 */
int engine_vm_create(struct engine *e, const char *host, const char *vm,
		     char *reason);

/*
 * One write of @len bytes to hosts/HOST/vms/VM/qmp: one trailing newline
 * stripped; an absolute socket path attaches (connect, capabilities,
 * memory probe) and keeps one QMP connection; the current path of a
 * connected VM is a no-op; empty detaches.  Errors: -EINVAL (relative or
 * malformed path), -EBUSY (devices are lent to it), -EPERM (config VM),
 * -ENOENT / -ECONNREFUSED / -ETIMEDOUT ... from the connection.  A failed
 * attach leaves the VM disconnected with the reason in its last_error.
 */
int engine_vm_attach(struct engine *e, const char *host, const char *vm,
		     const char *buf, size_t len,
		     const struct engine_caller *who, char *reason);

/* rmdir hosts/HOST/vms/VM: detach and forget.  -EBUSY, -EPERM, -ENOENT. */
int engine_vm_remove(struct engine *e, const char *host, const char *vm,
		     char *reason);

enum vm_view_state {
	VM_DISCONNECTED,
	VM_CONNECTED,
	VM_STATIC, /* a [vm] config section */
};

const char *vm_view_state_name(enum vm_view_state s);

struct vm_view {
	char host[HOST_NAME_MAX_LEN + 1];
	char name[VM_NAME_MAX_LEN + 1];
	char qmp[VM_QMP_PATH_MAX]; /* the configured socket, "" none */
	enum vm_view_state state;
	char memory[VM_MEMORY_TEXT_MAX]; /* vm_memory_format(), "" unknown */
	char last_error[REASON_MAX + 16]; /* "ERRNO: reason", or "" */
	uint64_t generation;	   /* changes whenever anything above does */
};

/* -ENOENT if there is no such VM. */
int engine_vm_view(struct engine *e, const char *host, const char *vm,
		   struct vm_view *out);
bool engine_vm_exists(struct engine *e, const char *host, const char *vm);

/* Every VM of @host, in creation order (config first); stops on nonzero. */
int engine_foreach_vm(struct engine *e, const char *host,
		      int (*cb)(void *arg, const char *vm), void *arg);

/* ---- compositions ------------------------------------------------------ */

/*
 * Compositions (SPEC section 10, core/compose.c): compositions/NAME/, a
 * list of devices lent to one borrower together or not at all.  Stored
 * (store.h comp_*); one-daemon mode only for now: in distributed mode
 * every call is -ENOTSUP.
 */
#define COMPOSITIONS_MAX 1024 /* compositions in one engine */

enum compo_state {
	COMPO_AVAILABLE,
	COMPO_LENDING,
	COMPO_LENT,
	COMPO_RETURNING,
};

const char *compo_state_name(enum compo_state s);

struct compo_view {
	char name[COMP_NAME_MAX_LEN + 1];
	char devices[COMP_DEVICES_TEXT_MAX + COMP_DEVICES_MAX]; /* a line each */
	char borrower[BORROWER_MAX + 1];
	enum compo_state state;
	char last_error[REASON_MAX + DEVICE_ID_MAX + 32];
	int64_t lease; /* lent: the earliest lease deadline of its devices, 0 none */
	uint64_t generation;
};

/* mkdir: -EINVAL malformed name, -EEXIST, -ENOSPC, -ENOTSUP distributed. */
int engine_compo_create(struct engine *e, const char *name, char *reason);
/* rmdir: -ENOENT, -EBUSY while not available. */
int engine_compo_remove(struct engine *e, const char *name, char *reason);
/*
 * One write to compositions/NAME/devices: the whole new list, one ID a
 * line.  -EINVAL malformed, too long or an unknown ID (named), -EBUSY a
 * device in another composition (named) or the composition not available.
 */
int engine_compo_write_devices(struct engine *e, const char *name,
			       const char *buf, size_t len,
			       const struct engine_caller *who, char *reason);
/*
 * One write to compositions/NAME/borrower: lend every device to it, or
 * none (the failing device's errno; last_error "ERRNO: DEVICE: reason");
 * empty returns them all.
 */
int engine_compo_write_borrower(struct engine *e, const char *name,
				const char *buf, size_t len,
				const struct engine_caller *who, char *reason);
/*
 * One write to compositions/NAME/lease: N (1 .. LEASE_MAX_S) sets or
 * renews the lease of every device of the lent composition to one
 * deadline N seconds from now, 0 or empty removes it, all or none (the
 * failing device's errno).  -EINVAL malformed, or not lent.  When it runs
 * out, the whole composition is returned (compositions/NAME/lease).
 */
int engine_compo_write_lease(struct engine *e, const char *name,
			     const char *buf, size_t len,
			     const struct engine_caller *who, char *reason);
/*
 * compositions/NAME/plans/HOST (core/dryrun.c): what a write of @host to
 * the composition's borrower would do now, changing and reserving
 * nothing.  First line "ok" or exactly the last_error the write would
 * leave ("ERRNO: ID: reason" naming the member that would fail, or
 * "ERRNO: reason" of the composition's own check); then per member
 * "device ID" and its plan lines (as engine_plan()), "p2p A B ..." for
 * each peer-to-peer link between members, and "lut_free ADAPTER N" for
 * each adapter a member's route crosses, with all of it taken.
 */
int engine_compo_plan(struct engine *e, const char *name, const char *host,
		      FILE *out, char *reason);
int engine_compo_view(struct engine *e, const char *name,
		      struct compo_view *out);
bool engine_compo_exists(struct engine *e, const char *name);
int engine_foreach_compo(struct engine *e,
			 int (*cb)(void *arg, const char *name), void *arg);

#endif
