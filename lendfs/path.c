// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * path.c - a path of the lendfs tree to the node it names, by syntax
 * alone (see path.h).
 *
 *   /                                 AREA_ROOT
 *   /{version,lends,metrics}          AREA_CLUSTER_ATTR
 *   /devices[/ID[/ATTR|/TMP|/peers[/PEER]|/plans[/HOST]]]
 *   /hosts[/HOST[/ATTR|/{lent,borrowed}[/ID]|/vms[/VM[/ATTR|/devices[/ID]]]]]
 *   /fabric[/{links,topology.dot}]
 *   /compositions[/NAME[/ATTR|/TMP|/plans[/HOST]]]
 */
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static int copy_name(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		return -ENOENT;
	memcpy(dst, src, len + 1);
	return 0;
}

static int parse_device(char **c, unsigned n, struct node *nd)
{
	bool plans;

	if (copy_name(nd->dev, sizeof(nd->dev), c[1]) < 0)
		return -ENOENT;
	nd->area = AREA_DEVICE;
	memcpy(nd->tmpdir, nd->dev, sizeof(nd->tmpdir));
	if (n == 2)
		return 0;
	plans = strcmp(c[2], PLANS_DIR) == 0;
	if (plans || strcmp(c[2], "peers") == 0) {
		nd->area = plans ? AREA_PLANS : AREA_PEERS;
		if (n == 3)
			return 0;
		if (n > 4 || copy_name(nd->name, sizeof(nd->name), c[3]) < 0)
			return -ENOENT;
		nd->area = plans ? AREA_PLAN : AREA_PEER;
		return 0;
	}
	if (n > 3)
		return -ENOENT;
	nd->attr = attr_find(&device_attrs, c[2]);
	if (nd->attr) {
		nd->area = AREA_DEVICE_ATTR;
		return 0;
	}
	if (copy_name(nd->name, sizeof(nd->name), c[2]) < 0)
		return -ENAMETOOLONG;
	nd->area = AREA_TMP;
	return 0;
}

/* hosts/HOST/vms/VM[/ATTR|/devices[/ID]] */
static int parse_vm(char **c, unsigned n, struct node *nd)
{
	if (copy_name(nd->vm, sizeof(nd->vm), c[3]) < 0)
		return -ENOENT;
	nd->area = AREA_VM;
	if (n == 4)
		return 0;
	if (strcmp(c[4], VM_DEVICES_DIR) == 0) {
		nd->area = AREA_VM_LINKS;
		if (n == 5)
			return 0;
		if (copy_name(nd->dev, sizeof(nd->dev), c[5]) < 0)
			return -ENOENT;
		nd->area = AREA_VM_LINK;
		return 0;
	}
	nd->attr = attr_find(&vm_attrs, c[4]);
	if (!nd->attr || n > 5)
		return -ENOENT;
	nd->area = AREA_VM_ATTR;
	return 0;
}

static int parse_host(char **c, unsigned n, struct node *nd)
{
	if (copy_name(nd->host, sizeof(nd->host), c[1]) < 0)
		return -ENOENT;
	nd->area = AREA_HOST;
	if (n == 2)
		return 0;
	if (strcmp(c[2], "lent") == 0 || strcmp(c[2], "borrowed") == 0) {
		nd->borrowed = c[2][0] == 'b';
		nd->area = AREA_HOST_LINKS;
		if (n == 3)
			return 0;
		if (n > 4 || copy_name(nd->dev, sizeof(nd->dev), c[3]) < 0)
			return -ENOENT;
		nd->area = AREA_HOST_LINK;
		return 0;
	}
	if (strcmp(c[2], "vms") == 0) {
		nd->area = AREA_VMS;
		return n == 3 ? 0 : parse_vm(c, n, nd);
	}
	nd->attr = attr_find(&host_attrs, c[2]);
	if (!nd->attr || n > 3)
		return -ENOENT;
	nd->area = AREA_HOST_ATTR;
	return 0;
}

/* compositions/NAME[/ATTR|/plans[/HOST]] */
static int parse_compo(char **c, unsigned n, struct node *nd)
{
	if (copy_name(nd->comp, sizeof(nd->comp), c[1]) < 0)
		return -ENOENT;
	nd->area = AREA_COMPO;
	if (strlen(nd->comp) < sizeof(nd->tmpdir) - 1) { /* longer: no composition */
		nd->tmpdir[0] = '/';
		memcpy(nd->tmpdir + 1, nd->comp, strlen(nd->comp) + 1);
	}
	if (n == 2)
		return 0;
	if (strcmp(c[2], PLANS_DIR) == 0) {
		nd->area = n == 3 ? AREA_COMPO_PLANS : AREA_COMPO_PLAN;
		if (n == 3)
			return 0;
		return n == 4 && copy_name(nd->name, sizeof(nd->name), c[3]) == 0 ?
			0 : -ENOENT;
	}
	nd->attr = attr_find(&compo_attrs, c[2]);
	nd->area = AREA_COMPO_ATTR; /* not AREA_COMPO: mkdir NAME/X is no mkdir NAME */
	if (n > 3)
		return -ENOENT;
	if (nd->attr)
		return 0;
	if (!nd->tmpdir[0]) /* a name no composition can have */
		return -ENOENT;
	if (copy_name(nd->name, sizeof(nd->name), c[2]) < 0)
		return -ENAMETOOLONG;
	nd->area = AREA_COMPO_TMP;
	return 0;
}

static int parse(const char *path, struct node *nd)
{
	char buf[PATH_MAX], *c[PATH_MAX_DEPTH], *save = NULL, *tok;
	unsigned n = 0;
	size_t len;

	memset(nd, 0, sizeof(*nd));
	nd->area = AREA_ROOT;
	if (!path)
		return -ENOENT;
	len = strlen(path);
	if (len >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, path, len + 1);
	for (tok = strtok_r(buf, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (n == PATH_MAX_DEPTH)
			return -ENOENT;
		c[n++] = tok;
	}

	if (n == 0)
		return 0;
	if (strcmp(c[0], "devices") == 0) {
		nd->area = AREA_DEVICES;
		return n == 1 ? 0 : parse_device(c, n, nd);
	}
	if (strcmp(c[0], "hosts") == 0) {
		nd->area = AREA_HOSTS;
		return n == 1 ? 0 : parse_host(c, n, nd);
	}
	if (strcmp(c[0], COMPOSITIONS_DIR) == 0) {
		nd->area = AREA_COMPOS;
		return n == 1 ? 0 : parse_compo(c, n, nd);
	}
	if (strcmp(c[0], "fabric") == 0) {
		nd->area = AREA_FABRIC;
		if (n == 1)
			return 0;
		nd->attr = attr_find(&fabric_attrs, c[1]);
		nd->area = AREA_FABRIC_ATTR;
		return nd->attr && n == 2 ? 0 : -ENOENT;
	}
	nd->attr = attr_find(&cluster_attrs, c[0]);
	nd->area = AREA_CLUSTER_ATTR;
	return nd->attr && n == 1 ? 0 : -ENOENT;
}

/* The table of a directory, or of the directory an attribute is in. */
static const struct attr_table *area_table(enum area a)
{
	switch (a) {
	case AREA_ROOT:
	case AREA_CLUSTER_ATTR:
		return &cluster_attrs;
	case AREA_DEVICE:
	case AREA_DEVICE_ATTR:
		return &device_attrs;
	case AREA_HOST:
	case AREA_HOST_ATTR:
		return &host_attrs;
	case AREA_VM:
	case AREA_VM_ATTR:
		return &vm_attrs;
	case AREA_FABRIC:
	case AREA_FABRIC_ATTR:
		return &fabric_attrs;
	case AREA_COMPO:
	case AREA_COMPO_ATTR:
		return &compo_attrs;
	default:
		return NULL;
	}
}

int path_parse(const char *path, struct node *nd)
{
	int r = parse(path, nd);

	nd->table = area_table(nd->area);
	return r;
}

bool area_is_dir(enum area a)
{
	switch (a) {
	case AREA_ROOT:
	case AREA_DEVICES:
	case AREA_DEVICE:
	case AREA_PEERS:
	case AREA_PLANS:
	case AREA_HOSTS:
	case AREA_HOST:
	case AREA_HOST_LINKS:
	case AREA_VMS:
	case AREA_VM:
	case AREA_VM_LINKS:
	case AREA_FABRIC:
	case AREA_COMPOS:
	case AREA_COMPO:
	case AREA_COMPO_PLANS:
		return true;
	default:
		return false;
	}
}

bool area_in_device(enum area a)
{
	switch (a) {
	case AREA_DEVICE:
	case AREA_DEVICE_ATTR:
	case AREA_PEERS:
	case AREA_PEER:
	case AREA_PLANS:
	case AREA_PLAN:
	case AREA_TMP:
		return true;
	default:
		return false;
	}
}

bool area_in_host(enum area a)
{
	switch (a) {
	case AREA_HOST:
	case AREA_HOST_ATTR:
	case AREA_HOST_LINKS:
	case AREA_HOST_LINK:
	case AREA_VMS:
	case AREA_VM:
	case AREA_VM_ATTR:
	case AREA_VM_LINKS:
	case AREA_VM_LINK:
		return true;
	default:
		return false;
	}
}

bool area_in_vm(enum area a)
{
	switch (a) {
	case AREA_VM:
	case AREA_VM_ATTR:
	case AREA_VM_LINKS:
	case AREA_VM_LINK:
		return true;
	default:
		return false;
	}
}

bool area_in_compo(enum area a)
{
	return a == AREA_COMPO || a == AREA_COMPO_ATTR || a == AREA_COMPO_PLANS ||
	       a == AREA_COMPO_PLAN || a == AREA_COMPO_TMP;
}

bool area_is_tmp(enum area a)
{
	return a == AREA_TMP || a == AREA_COMPO_TMP;
}

bool area_has_tmp(enum area a)
{
	return a == AREA_DEVICE || a == AREA_COMPO;
}
