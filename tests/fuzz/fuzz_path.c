// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_path.c - the path lookup of the FUSE layer (lendfs/path.c), the
 * first thing every FUSE request from any local user goes through.
 *
 * Checks: the result is 0, -ENOENT or -ENAMETOOLONG; every name copied
 * into the node is terminated, non-empty, slash-free and bounded; the
 * area matches the pointers and flags set; and a well-formed path,
 * rebuilt in canonical form from its node, parses back to the same node.
 */
#include <errno.h>
#include <limits.h>

#include "fuzz.h"
#include "path.h"

static void check_name(const char *s, size_t size, bool set)
{
	FUZZ_ASSERT(fuzz_terminated(s, size));
	FUZZ_ASSERT(!strchr(s, '/'));
	if (set)
		FUZZ_ASSERT(s[0] != '\0');
}

static void canonical(const struct node *nd, char *buf, size_t len)
{
	const char *dev = nd->dev, *host = nd->host, *name = nd->name;
	const char *vm = nd->vm;
	const char *links = nd->borrowed ? "borrowed" : "lent";

	switch (nd->area) {
	case AREA_ROOT:
		snprintf(buf, len, "/");
		break;
	case AREA_CLUSTER_ATTR:
		snprintf(buf, len, "/%s", nd->attr->name);
		break;
	case AREA_DEVICES:
		snprintf(buf, len, "/devices");
		break;
	case AREA_DEVICE:
		snprintf(buf, len, "/devices/%s", dev);
		break;
	case AREA_DEVICE_ATTR:
		snprintf(buf, len, "/devices/%s/%s", dev, nd->attr->name);
		break;
	case AREA_PEERS:
		snprintf(buf, len, "/devices/%s/peers", dev);
		break;
	case AREA_PEER:
		snprintf(buf, len, "/devices/%s/peers/%s", dev, name);
		break;
	case AREA_PLANS:
		snprintf(buf, len, "/devices/%s/" PLANS_DIR, dev);
		break;
	case AREA_PLAN:
		snprintf(buf, len, "/devices/%s/" PLANS_DIR "/%s", dev, name);
		break;
	case AREA_TMP:
		snprintf(buf, len, "/devices/%s/%s", dev, name);
		break;
	case AREA_HOSTS:
		snprintf(buf, len, "/hosts");
		break;
	case AREA_HOST:
		snprintf(buf, len, "/hosts/%s", host);
		break;
	case AREA_HOST_ATTR:
		snprintf(buf, len, "/hosts/%s/%s", host, nd->attr->name);
		break;
	case AREA_HOST_LINKS:
		snprintf(buf, len, "/hosts/%s/%s", host, links);
		break;
	case AREA_HOST_LINK:
		snprintf(buf, len, "/hosts/%s/%s/%s", host, links, dev);
		break;
	case AREA_VMS:
		snprintf(buf, len, "/hosts/%s/vms", host);
		break;
	case AREA_VM:
		snprintf(buf, len, "/hosts/%s/vms/%s", host, vm);
		break;
	case AREA_VM_ATTR:
		snprintf(buf, len, "/hosts/%s/vms/%s/%s", host, vm,
			 nd->attr->name);
		break;
	case AREA_VM_LINKS:
		snprintf(buf, len, "/hosts/%s/vms/%s/%s", host, vm,
			 VM_DEVICES_DIR);
		break;
	case AREA_VM_LINK:
		snprintf(buf, len, "/hosts/%s/vms/%s/%s/%s", host, vm,
			 VM_DEVICES_DIR, dev);
		break;
	case AREA_FABRIC:
		snprintf(buf, len, "/fabric");
		break;
	case AREA_FABRIC_ATTR:
		snprintf(buf, len, "/fabric/%s", nd->attr->name);
		break;
	case AREA_COMPOS:
		snprintf(buf, len, "/" COMPOSITIONS_DIR);
		break;
	case AREA_COMPO:
		snprintf(buf, len, "/" COMPOSITIONS_DIR "/%s", nd->comp);
		break;
	case AREA_COMPO_ATTR:
		snprintf(buf, len, "/" COMPOSITIONS_DIR "/%s/%s", nd->comp,
			 nd->attr->name);
		break;
	case AREA_COMPO_TMP:
		snprintf(buf, len, "/" COMPOSITIONS_DIR "/%s/%s", nd->comp, nd->name);
		break;
	case AREA_COMPO_PLANS:
		snprintf(buf, len, "/" COMPOSITIONS_DIR "/%s/" PLANS_DIR, nd->comp);
		break;
	case AREA_COMPO_PLAN:
		snprintf(buf, len, "/" COMPOSITIONS_DIR "/%s/" PLANS_DIR "/%s",
			 nd->comp, nd->name);
		break;
	default:
		FUZZ_ASSERT(!"unknown area");
	}
}

static void check_node(const struct node *nd)
{
	enum area a = nd->area;
	bool is_attr = a == AREA_CLUSTER_ATTR || a == AREA_DEVICE_ATTR ||
		       a == AREA_HOST_ATTR || a == AREA_VM_ATTR ||
		       a == AREA_FABRIC_ATTR || a == AREA_COMPO_ATTR;
	bool has_table = is_attr || a == AREA_ROOT || a == AREA_DEVICE ||
			 a == AREA_HOST || a == AREA_VM || a == AREA_FABRIC ||
			 a == AREA_COMPO;

	check_name(nd->dev, sizeof(nd->dev), area_in_device(a) ||
		   a == AREA_HOST_LINK || a == AREA_VM_LINK);
	check_name(nd->host, sizeof(nd->host), area_in_host(a));
	check_name(nd->vm, sizeof(nd->vm), area_in_vm(a));
	check_name(nd->comp, sizeof(nd->comp), area_in_compo(a));
	check_name(nd->name, sizeof(nd->name),
		   a == AREA_PEER || a == AREA_PLAN || area_is_tmp(a) ||
		   a == AREA_COMPO_PLAN);
	/* a temp file's directory: the device, or "/NAME" */
	if (area_is_tmp(a))
		FUZZ_ASSERT(nd->tmpdir[0] && fuzz_terminated(nd->tmpdir,
							     sizeof(nd->tmpdir)));
	if (a == AREA_COMPO_TMP)
		FUZZ_ASSERT(nd->tmpdir[0] == '/' && !strcmp(nd->tmpdir + 1, nd->comp));
	FUZZ_ASSERT(is_attr == (nd->attr != NULL));
	FUZZ_ASSERT(has_table == (nd->table != NULL));
	/* the attribute is one of its directory's table */
	if (nd->attr)
		FUZZ_ASSERT(attr_find(nd->table, nd->attr->name) == nd->attr);
	if (area_in_vm(a))
		FUZZ_ASSERT(area_in_host(a));
	if (nd->borrowed)
		FUZZ_ASSERT(a == AREA_HOST_LINKS || a == AREA_HOST_LINK);
	/* an attribute name is never a temp file name */
	if (a == AREA_TMP) {
		FUZZ_ASSERT(!attr_find(&device_attrs, nd->name));
		FUZZ_ASSERT(strcmp(nd->name, "peers") != 0);
		FUZZ_ASSERT(strcmp(nd->name, PLANS_DIR) != 0);
	}
	if (a == AREA_COMPO_TMP) {
		FUZZ_ASSERT(!attr_find(&compo_attrs, nd->name));
		FUZZ_ASSERT(strcmp(nd->name, PLANS_DIR) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char canon[PATH_MAX + 512];
	struct node nd, back;
	char *path;
	int r;

	if (size > PATH_MAX + 64)
		return -1;
	path = fuzz_string(data, size);
	r = path_parse(path, &nd);
	FUZZ_ASSERT(r == 0 || r == -ENOENT || r == -ENAMETOOLONG);
	if (r == -ENAMETOOLONG) /* a temp file's name */
		FUZZ_ASSERT((nd.area == AREA_DEVICE && nd.dev[0]) ||
			    (nd.area == AREA_COMPO_ATTR && nd.comp[0]));
	if (r == 0) {
		check_node(&nd);
		canonical(&nd, canon, sizeof(canon));
		FUZZ_ASSERT(path_parse(canon, &back) == 0);
		FUZZ_ASSERT(!memcmp(&nd, &back, sizeof(nd)));
	} else {
		/* what was parsed before the error is still bounded */
		FUZZ_ASSERT(fuzz_terminated(nd.dev, sizeof(nd.dev)));
		FUZZ_ASSERT(fuzz_terminated(nd.host, sizeof(nd.host)));
		FUZZ_ASSERT(fuzz_terminated(nd.vm, sizeof(nd.vm)));
		FUZZ_ASSERT(fuzz_terminated(nd.name, sizeof(nd.name)));
		FUZZ_ASSERT(fuzz_terminated(nd.comp, sizeof(nd.comp)));
	}
	free(path);
	return 0;
}
