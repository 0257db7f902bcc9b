/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * attr.h - the files of the lendfs tree, declared as attributes (configfs
 * and sysfs style).
 *
 * Every regular file of the tree is one struct lendfs_attr: its name, its
 * mode, a show() that renders the whole value into a stream, and for a
 * writable file a store() that hands one write to the engine and returns
 * 0 or -errno.  One type serves every kind of object; each kind has one
 * table, and a directory of that kind lists its table, then the
 * subdirectories the table names:
 *
 *   device_attrs   devices/ID/NAME           (attr_device.c)
 *   host_attrs     hosts/HOST/NAME           (attr_host.c)
 *   vm_attrs       hosts/HOST/vms/VM/NAME    (attr_vm.c)
 *   compo_attrs    compositions/NAME/ATTR    (attr_compo.c)
 *   cluster_attrs  MOUNT/NAME                (attr_fabric.c)
 *   fabric_attrs   fabric/NAME               (attr_fabric.c)
 *
 * An attribute is declared once, and its name comes from its functions'
 * names, as with CONFIGFS_ATTR(nvmet_, addr_traddr) or DEVICE_ATTR_RW():
 *
 *   static int host_state_show(const struct attr_ctx *ctx, FILE *out);
 *   static int host_state_store(const struct attr_ctx *ctx,
 *                               struct attr_write *w);
 *   static const struct lendfs_attr host_attr_list[] = {
 *           LENDFS_ATTR_RW(host_, state),        (the file "state", 0664)
 *   };
 *
 * The filesystem (fs.c) takes everything about a file from its table:
 * path.c finds the file with attr_find() and records the node's table;
 * getattr and open use the attribute's mode and whether it has a
 * store(); readdir lists the table; read takes the object's view with
 * the table's get() and calls show(); write(2), and the rename(2) of a
 * temp file onto `borrower`, go through one write path (attr_write() in
 * fs.c) that checks the request, names the caller (ctx->who), calls
 * store() and logs the outcome once.  Nothing here knows about FUSE, and
 * nothing here logs.
 */
#ifndef LENDFS_ATTR_H
#define LENDFS_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "engine.h"

#define ATTR_RO 0444
#define ATTR_RW 0664 /* group write: docs/PERMISSIONS.md */

#define ATTR_LOG_MAX 512       /* a store()'s words for the log line */
#define ATTR_VALUE_LOG_MAX 160 /* bytes of attr_write.value, "..." beyond */

/*
 * The object an attribute belongs to, and who is asking.  The names are
 * those of the path ("" where the path has none); the view is the
 * consistent copy show() renders from, taken by the table's get() (a
 * union: one kind of object per table).
 */
struct attr_ctx {
	struct engine *engine;
	const char *devid; /* devices/ID/ */
	const char *host;  /* hosts/HOST/ */
	const char *vm;	   /* hosts/HOST/vms/VM/ */
	const char *compo; /* compositions/NAME/ */
	const struct engine_caller *who; /* store(): the writer; NULL in show() */
	union {
		struct device_view *dv; /* device_attrs */
		struct host_view *hv;	/* host_attrs */
		struct vm_view *vv;	/* vm_attrs */
		struct compo_view *cv;	/* compo_attrs */
	};
};

/*
 * One write, as the write path hands it to store(), and store()'s words
 * for the one line the write path logs: "cannot WHAT: REASON" when
 * store() fails, DONE (unless empty) when it succeeds.
 */
struct attr_write {
	const char *buf; /* the bytes written; the engine strips the newline */
	size_t len;
	const char *value; /* a printable, bounded copy without it, for logs */
	char reason[REASON_MAX];
	char what[ATTR_LOG_MAX];
	char done[ATTR_LOG_MAX];
};

struct lendfs_attr {
	const char *name;
	mode_t mode;
	int (*show)(const struct attr_ctx *ctx, FILE *out);
	int (*store)(const struct attr_ctx *ctx, struct attr_write *w); /* RW */
	bool poll; /* poll(2) waits for a change (watch.h) */
	/*
	 * An append-only log (`events`): fs.c reads it by offset from the
	 * engine (engine_events_read()), never as a snapshot; show() renders
	 * what poll(2) watches, its last SEQ.
	 */
	bool log;
	/*
	 * The content never changes while the daemon runs (`version`): no
	 * change invalidates what the kernel caches of it (cache.c), which
	 * would cost every request a notification for nothing.
	 */
	bool constant;
};

#define LENDFS_ATTR(_name, _mode, _show, _store) \
	{ .name = (_name), .mode = (_mode), .show = (_show), .store = (_store) }

/* PREFIX##NAME##_show (and _store) serve the file "NAME". */
#define LENDFS_ATTR_RO(_prefix, _name) \
	LENDFS_ATTR(#_name, ATTR_RO, _prefix##_name##_show, NULL)
#define LENDFS_ATTR_RW(_prefix, _name) \
	LENDFS_ATTR(#_name, ATTR_RW, _prefix##_name##_show, _prefix##_name##_store)
/* The same, for a file whose content is fixed for the daemon's life. */
#define LENDFS_ATTR_RO_CONST(_prefix, _name)                                \
	{ .name = #_name, .mode = ATTR_RO, .show = _prefix##_name##_show,   \
	  .constant = true }
/* The same, for a file whose changes poll(2) can wait for (watch.h). */
#define LENDFS_ATTR_RO_POLL(_prefix, _name)                                 \
	{ .name = #_name, .mode = ATTR_RO, .show = _prefix##_name##_show,   \
	  .poll = true }
#define LENDFS_ATTR_RW_POLL(_prefix, _name)                                 \
	{ .name = #_name, .mode = ATTR_RW, .show = _prefix##_name##_show,   \
	  .store = _prefix##_name##_store, .poll = true }

/* The append-only log "NAME" (0444), polled for appends. */
#define LENDFS_ATTR_LOG(_prefix, _name)                                     \
	{ .name = #_name, .mode = ATTR_RO, .show = _prefix##_name##_show,   \
	  .poll = true, .log = true }

/*
 * The attributes of one kind of directory, the subdirectories it always
 * has (NULL-terminated, may be NULL), and how to take and release the view
 * its show()s read (NULL: they need none).
 */
struct attr_table {
	const struct lendfs_attr *attrs;
	size_t n;
	const char *const *dirs;
	int (*get)(struct attr_ctx *ctx);
	void (*put)(struct attr_ctx *ctx);
};

#define ATTR_TABLE(_list, _dirs, _get, _put) \
	{ (_list), ARRAY_SIZE(_list), (_dirs), (_get), (_put) }

extern const struct attr_table device_attrs;
extern const struct attr_table host_attrs;
extern const struct attr_table vm_attrs;
extern const struct attr_table compo_attrs;
extern const struct attr_table cluster_attrs;
extern const struct attr_table fabric_attrs;

/*
 * The attribute @name of table @t, or NULL: the one lookup by name
 * (inline: a table is a dozen entries, and path.c is linked alone into
 * the unit test and the fuzzer).
 */
static inline const struct lendfs_attr *attr_find(const struct attr_table *t,
						  const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->attrs[i].name, name) == 0)
			return &t->attrs[i];
	return NULL;
}

/*
 * The writable attributes a temp file can be renamed onto: `borrower` of
 * a device or composition, a composition's `devices`.
 */
#define BORROWER_ATTR "borrower"
#define COMPO_DEVICES_ATTR "devices"

/*
 * devices/ID/peers/PEER, files that are not attributes: the P2P route
 * from the device to @peer, or -ENOENT when @peer is not a peer of the
 * device in @v.
 */
bool device_peer_exists(const struct device_view *v, const char *peer);
int device_peer_show(struct engine *e, const struct device_view *v,
		     const char *peer, FILE *out);

/*
 * devices/ID/plans/HOST, files that are not attributes either: the dry
 * run of writing HOST to the device's borrower (engine_plan()), one per
 * host other than the device's lender.
 */
#define PLANS_DIR "plans"
bool device_plan_exists(const struct device_view *v, const char *host); /* a known host */
int device_plan_show(struct engine *e, const char *devid, const char *host,
		     FILE *out);

/* The directory of the compositions (SPEC section 10), at the root. */
#define COMPOSITIONS_DIR "compositions"

/*
 * compositions/NAME/plans/HOST: the dry run of writing HOST to the
 * composition's borrower (engine_compo_plan()), one per host.
 */
int compo_plan_show(struct engine *e, const char *name, const char *host,
		    FILE *out);

/* The directory of a VM's lent devices: hosts/HOST/vms/VM/devices/. */
#define VM_DEVICES_DIR "devices"

#endif
