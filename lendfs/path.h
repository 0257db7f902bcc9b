/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * path.h - the pure part of path lookup: a path of the lendfs tree to the
 * node it names, by syntax alone.
 *
 * path_parse() never asks the engine anything: it splits the path, finds
 * attribute names in the tables of attr.h (attr_find()), records the
 * node's table and copies the device, host, peer and temp file names
 * into the node, bounded.  Whether the device,
 * host, peer or symlink it names exists is the caller's question (fs.c),
 * asked only for names the parser accepted.  Being pure, it is unit-tested
 * and fuzzed on its own (tests/unit/test_path.c, tests/fuzz/fuzz_path.c).
 */
#ifndef LENDFS_PATH_H
#define LENDFS_PATH_H

#include <stdbool.h>

#include "attr.h"
#include "config.h"

#define FS_NAME_MAX 255 /* longest name of one path component */
#define PATH_MAX_DEPTH 6 /* hosts/H/vms/VM/devices/ID is the deepest */

enum area {
	AREA_ROOT,
	AREA_CLUSTER_ATTR, /* MOUNT/version ... */
	AREA_DEVICES,
	AREA_DEVICE,
	AREA_DEVICE_ATTR,
	AREA_PEERS,
	AREA_PEER,
	AREA_PLANS,	  /* devices/ID/plans/ */
	AREA_PLAN,	  /* devices/ID/plans/HOST: nd->name is HOST */
	AREA_TMP,
	AREA_HOSTS,
	AREA_HOST,
	AREA_HOST_ATTR,
	AREA_HOST_LINKS, /* hosts/H/lent/ or hosts/H/borrowed/ */
	AREA_HOST_LINK,
	AREA_VMS,
	AREA_VM,	  /* hosts/H/vms/VM/ */
	AREA_VM_ATTR,
	AREA_VM_LINKS,	  /* hosts/H/vms/VM/devices/ */
	AREA_VM_LINK,
	AREA_FABRIC,
	AREA_FABRIC_ATTR,
	AREA_COMPOS,	  /* compositions/ */
	AREA_COMPO,	  /* compositions/NAME/ */
	AREA_COMPO_ATTR,
	AREA_COMPO_TMP,	  /* compositions/NAME/TMP: a temp file's name */
	AREA_COMPO_PLANS, /* compositions/NAME/plans/ */
	AREA_COMPO_PLAN,  /* compositions/NAME/plans/HOST: nd->name is HOST */
};

struct node {
	enum area area;
	char dev[DEVICE_ID_MAX];
	char host[HOST_NAME_MAX_LEN + 1];
	char vm[FS_NAME_MAX + 1]; /* any name: mkdir says which are valid */
	char name[FS_NAME_MAX + 1]; /* peer, plan's host, temp file or link name */
	char comp[FS_NAME_MAX + 1]; /* compositions/NAME: any name, as vm */
	/*
	 * The temp files' directory (tmpfile.c) of a device or composition
	 * directory and what is in it: the device ID, or "/NAME" (no ID
	 * has a '/').  "" elsewhere.
	 */
	char tmpdir[DEVICE_ID_MAX];
	bool borrowed;		    /* borrowed/ rather than lent/ */
	/*
	 * The table of a directory that has one (ROOT, DEVICE, HOST, VM,
	 * FABRIC), or of the directory of an attribute (the *_ATTR areas),
	 * and that attribute; NULL elsewhere.
	 */
	const struct attr_table *table;
	const struct lendfs_attr *attr;
};

/*
 * Fill @nd for @path ("/devices/ID/borrower", slashes may repeat).
 * Returns 0 when the path is well-formed, -ENOENT when it cannot name
 * anything, and -ENAMETOOLONG for a temp file name longer than
 * FS_NAME_MAX.  On error @nd->area is the deepest area reached, with
 * @nd->dev / @nd->host filled as far as they parsed, so the caller can
 * report a missing device or host first.  AREA_TMP is any name in a device
 * directory that is not an attribute or peers/, AREA_COMPO_TMP any name
 * in a composition directory that is not an attribute or plans/.
 */
int path_parse(const char *path, struct node *nd);

/* Directories of the tree. */
bool area_is_dir(enum area a);

/* Areas below devices/ID/ (nd->dev names that device). */
bool area_in_device(enum area a);

/* Areas below hosts/HOST/ (nd->host names that host). */
bool area_in_host(enum area a);

/* Areas below hosts/HOST/vms/VM/ (nd->vm names that VM). */
bool area_in_vm(enum area a);

/* Areas below compositions/NAME/ (nd->comp names it). */
bool area_in_compo(enum area a);

/* A temp file's name (nd->tmpdir its directory, nd->name the file). */
bool area_is_tmp(enum area a);
/* A directory that takes temp files (config tools' rename way). */
bool area_has_tmp(enum area a);

#endif
