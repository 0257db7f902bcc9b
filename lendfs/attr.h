/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * attr.h - the attribute tables of the lendfs tree, sysfs style.
 *
 * Every regular file of the tree is one entry of one table: its name, its
 * mode, a show() that renders the whole value into a stream, and for
 * writable files a store() that hands one write(2) to the engine and
 * returns 0 or -errno (filling @reason).  The filesystem (fs.c) walks the
 * tables; nothing here knows about FUSE.
 *
 *   device_attrs   devices/ID/NAME           (attr_device.c)
 *   host_attrs     hosts/HOST/NAME           (attr_host.c)
 *   vm_attrs       hosts/HOST/vms/VM/NAME    (attr_vm.c)
 *   cluster_attrs  MOUNT/NAME                (attr_fabric.c)
 *   fabric_attrs   fabric/NAME               (attr_fabric.c)
 */
#ifndef LENDFS_ATTR_H
#define LENDFS_ATTR_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "engine.h"

#define ATTR_RO 0444
#define ATTR_RW 0664 /* group write: docs/PERMISSIONS.md */

struct device_attr {
	const char *name;
	mode_t mode;
	int (*show)(struct engine *e, const struct device_view *v, FILE *out);
	int (*store)(struct engine *e, const char *devid, const char *buf,
		     size_t len, char *reason);
};

struct host_attr {
	const char *name;
	mode_t mode;
	int (*show)(struct engine *e, const struct host_view *v, FILE *out);
	int (*store)(struct engine *e, const char *host, const char *buf,
		     size_t len, char *reason);
};

struct vm_attr {
	const char *name;
	mode_t mode;
	int (*show)(struct engine *e, const struct vm_view *v, FILE *out);
	int (*store)(struct engine *e, const char *host, const char *vm,
		     const char *buf, size_t len, char *reason);
};

struct cluster_attr {
	const char *name;
	mode_t mode;
	int (*show)(struct engine *e, FILE *out);
};

/* A table: a static const array and its length. */
struct device_attr_table {
	const struct device_attr *attrs;
	size_t n;
};

struct host_attr_table {
	const struct host_attr *attrs;
	size_t n;
};

struct vm_attr_table {
	const struct vm_attr *attrs;
	size_t n;
};

struct cluster_attr_table {
	const struct cluster_attr *attrs;
	size_t n;
};

extern const struct device_attr_table device_attrs;
extern const struct host_attr_table host_attrs;
extern const struct vm_attr_table vm_attrs;
extern const struct cluster_attr_table cluster_attrs;
extern const struct cluster_attr_table fabric_attrs;

/* Lookup by name in a table; NULL if absent. */
const struct device_attr *device_attr_find(const char *name);
const struct host_attr *host_attr_find(const char *name);
const struct vm_attr *vm_attr_find(const char *name);
const struct cluster_attr *cluster_attr_find(const struct cluster_attr_table *t,
					     const char *name);

/* The writable attribute a temp file can be renamed onto. */
#define BORROWER_ATTR "borrower"

/*
 * devices/ID/peers/PEER: the P2P route from the device to @peer, or
 * -ENOENT when @peer is not a peer of the device in @v.
 */
bool device_peer_exists(const struct device_view *v, const char *peer);
int device_peer_show(struct engine *e, const struct device_view *v,
		     const char *peer, FILE *out);

/*
 * mkdir / rmdir hosts/HOST/vms/VM: create or remove a VM borrower
 * (logged); 0 or -errno (engine_vm_create / engine_vm_remove).
 */
int vm_dir_create(struct engine *e, const char *host, const char *vm);
int vm_dir_remove(struct engine *e, const char *host, const char *vm);

/* The directory of a VM's lent devices: hosts/HOST/vms/VM/devices/. */
#define VM_DEVICES_DIR "devices"

#endif
