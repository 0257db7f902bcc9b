/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * inventory.h - where a daemon's local devices come from (SPEC section 2).
 *
 * An inventory back-end is an operations table, chosen at start by
 * `inventory = config|udev` in [cluster] or `--inventory`:
 *
 *   config  the devices declared in the configuration; no hot-plug.
 *   udev    the local host's real PCI devices, enumerated with libudev and
 *           followed with a udev monitor (add / remove / change / bind /
 *           unbind).  Only ever reads sysfs and the udev database: no
 *           sysfs file is written, the host's own devices (its virtio
 *           disk and NIC included) are listed read-only.
 *
 * Start-up order in the daemon (docs/UDEV.md):
 *
 *   config_load -> inventory_local_host -> ops->open (the monitor starts
 *   listening here, so nothing is lost) -> inventory_coldplug (merge the
 *   enumerated devices into the config, with their LENDFS_BORROWER as
 *   autolends) -> engine_new (recovers stored lends of those devices,
 *   then auto-lends the rest) -> inventory_thread_start (hot-plug) ...
 *   inventory_thread_stop -> engine_free -> ops->close.
 *
 * Devices are delivered as struct cfg_device: id "HOST:DDDD:BB:DD.F",
 * ids, class, BAR sizes, driver, numa_node, iommu_group, deny_reason (the
 * lender's own safety policy, core/policy.h) and borrower (the udev
 * property LENDFS_BORROWER of a device the rules tagged lendable).
 */
#ifndef LENDFS_INVENTORY_H
#define LENDFS_INVENTORY_H

#include "config.h"
#include "engine.h"
#include "policy.h"

struct inventory_args {
	const char *local_host;		      /* devices are HOST:... */
	const struct cluster_config *cfg;     /* config back-end: the devices */
	const struct policy_paths *paths;     /* NULL: the running system */
};

enum inventory_action {
	INVENTORY_ADD,
	INVENTORY_REMOVE, /* only dev.id, dev.host and dev.addr are set */
	INVENTORY_CHANGE, /* attributes or driver changed (change, bind, unbind) */
};

struct inventory_event {
	enum inventory_action action;
	struct cfg_device dev;
};

typedef int (*inventory_device_cb)(void *arg, const struct cfg_device *dev);
typedef int (*inventory_event_cb)(void *arg, const struct inventory_event *ev);

struct inventory_ops {
	const char *name;
	/* Start; for udev the monitor is listening when this returns. */
	int (*open)(const struct inventory_args *args, void **ctx, char *reason);
	/* Every present device, in a stable order; stops on a nonzero @cb. */
	int (*enumerate)(void *ctx, inventory_device_cb cb, void *arg,
			 char *reason);
	/* The descriptor to poll for events; -1 when there is no hot-plug. */
	int (*monitor_fd)(void *ctx);
	/*
	 * Read every pending event without blocking, calling @cb for each;
	 * returns the number of events or -errno.
	 */
	int (*dispatch)(void *ctx, inventory_event_cb cb, void *arg,
			char *reason);
	void (*close)(void *ctx);
};

extern const struct inventory_ops inventory_config_ops;
extern const struct inventory_ops inventory_udev_ops;
/* By name: inventory_find() of core/backend.h. */

/*
 * The local host name: @opt when given, else the machine's host name up
 * to its first dot.  -EINVAL with a reason when it is not a valid lendfs
 * name (use --host).
 */
int inventory_local_host(const char *opt, char *buf, size_t len,
			 char *reason);

/*
 * Coldplug, before engine_new(): enumerate and merge into @cfg.
 *   - a device the config already declares is replaced by the real one;
 *   - @host is added with the [host] defaults when the config lacks it;
 *   - a device with a borrower becomes an autolend, unless [policy]
 *     autolend names it already (the config wins; logged).
 * engine_new() then recovers stored lends of these devices and auto-lends
 * only those that are still available, so nothing is lent twice.
 * Returns the number of devices enumerated or -errno.
 */
int inventory_coldplug(struct cluster_config *cfg, const char *host,
		       const struct inventory_ops *ops, void *ctx,
		       engine_log_cb log, void *log_arg, char *reason);

/*
 * Hot-plug: a thread that polls ops->monitor_fd(ctx) and turns events
 * into engine_device_add / _remove / _update, logging what it does
 * through @log.  Not started (0, *out NULL) when the back-end has no
 * monitor.  Stop it before engine_free() and ops->close().
 */
struct inventory_thread;

int inventory_thread_start(struct engine *e, const struct inventory_ops *ops,
			   void *ctx, engine_log_cb log, void *log_arg,
			   struct inventory_thread **out, char *reason);
void inventory_thread_stop(struct inventory_thread *t);

/* Apply one event to @e (what the thread does; exported for tests). */
int inventory_apply_event(struct engine *e, const struct inventory_event *ev,
			  engine_log_cb log, void *log_arg);

#endif
