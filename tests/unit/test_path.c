// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cmocka tests for lendfs/path.c: the pure path -> node parser of the
 * FUSE layer (existence is fs.c's business and not tested here).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "path.h"

#define GPU "nodeA:0000:65:00.0"

static int parse(const char *path, struct node *nd)
{
	return path_parse(path, nd);
}

static void test_root_and_top_level(void **state)
{
	struct node nd;

	assert_int_equal(parse("/", &nd), 0);
	assert_int_equal(nd.area, AREA_ROOT);
	assert_ptr_equal(nd.table, &cluster_attrs); /* its files */
	assert_null(nd.attr);
	assert_int_equal(parse("", &nd), 0);
	assert_int_equal(nd.area, AREA_ROOT);
	assert_int_equal(parse("//", &nd), 0);
	assert_int_equal(nd.area, AREA_ROOT);

	assert_int_equal(parse("/version", &nd), 0);
	assert_int_equal(nd.area, AREA_CLUSTER_ATTR);
	assert_string_equal(nd.attr->name, "version");
	assert_ptr_equal(nd.table, &cluster_attrs);
	assert_int_equal(parse("/lends", &nd), 0);
	assert_string_equal(nd.attr->name, "lends");
	assert_int_equal(parse("/metrics", &nd), 0);
	assert_string_equal(nd.attr->name, "metrics");

	assert_int_equal(parse("/devices", &nd), 0);
	assert_int_equal(nd.area, AREA_DEVICES);
	assert_int_equal(parse("/hosts", &nd), 0);
	assert_int_equal(nd.area, AREA_HOSTS);
	assert_int_equal(parse("/fabric", &nd), 0);
	assert_int_equal(nd.area, AREA_FABRIC);
	assert_int_equal(parse("/fabric/links", &nd), 0);
	assert_int_equal(nd.area, AREA_FABRIC_ATTR);
	assert_string_equal(nd.attr->name, "links");
	assert_ptr_equal(nd.table, &fabric_attrs);
	assert_int_equal(parse("/fabric/topology.dot", &nd), 0);
	assert_string_equal(nd.attr->name, "topology.dot");
}

static void test_unknown_names(void **state)
{
	struct node nd;

	assert_int_equal(parse("/nonexistent", &nd), -ENOENT);
	assert_int_equal(parse("/Version", &nd), -ENOENT);
	assert_int_equal(parse("/version/x", &nd), -ENOENT);
	assert_int_equal(parse("/fabric/x", &nd), -ENOENT);
	assert_int_equal(parse("/fabric/links/x", &nd), -ENOENT);
	/* cluster files live at the top only, fabric files in fabric/ only */
	assert_int_equal(parse("/links", &nd), -ENOENT);
	assert_int_equal(parse("/fabric/version", &nd), -ENOENT);
	assert_int_equal(parse(NULL, &nd), -ENOENT);
}

static void test_device_paths(void **state)
{
	struct node nd;

	assert_int_equal(parse("/devices/" GPU, &nd), 0);
	assert_int_equal(nd.area, AREA_DEVICE);
	assert_string_equal(nd.dev, GPU);
	assert_ptr_equal(nd.table, &device_attrs);
	assert_null(nd.attr);

	assert_int_equal(parse("/devices/" GPU "/borrower", &nd), 0);
	assert_int_equal(nd.area, AREA_DEVICE_ATTR);
	assert_string_equal(nd.attr->name, BORROWER_ATTR);
	assert_ptr_equal(nd.table, &device_attrs);
	assert_ptr_equal(nd.attr, attr_find(&device_attrs, BORROWER_ATTR));
	assert_int_equal(nd.attr->mode, ATTR_RW);
	assert_non_null(nd.attr->store);
	assert_int_equal(parse("/devices/" GPU "/state", &nd), 0);
	assert_int_equal(nd.attr->mode, ATTR_RO);
	assert_null(nd.attr->store);

	assert_int_equal(parse("/devices/" GPU "/peers", &nd), 0);
	assert_int_equal(nd.area, AREA_PEERS);
	assert_null(nd.table); /* listed by the engine, not a table */
	assert_int_equal(parse("/devices/" GPU "/peers/nodeB:0000:17:00.0", &nd), 0);
	assert_int_equal(nd.area, AREA_PEER);
	assert_string_equal(nd.name, "nodeB:0000:17:00.0");
	assert_string_equal(nd.dev, GPU);
	assert_int_equal(parse("/devices/" GPU "/peers/x/y", &nd), -ENOENT);
	assert_true(area_in_device(nd.area));

	/* plans/HOST: one per host, the host's name checked by fs.c */
	assert_int_equal(parse("/devices/" GPU "/plans", &nd), 0);
	assert_int_equal(nd.area, AREA_PLANS);
	assert_null(nd.table);
	assert_true(area_is_dir(nd.area));
	assert_int_equal(parse("/devices/" GPU "/plans/nodeB", &nd), 0);
	assert_int_equal(nd.area, AREA_PLAN);
	assert_false(area_is_dir(nd.area));
	assert_true(area_in_device(nd.area));
	assert_false(area_in_host(nd.area));
	assert_string_equal(nd.name, "nodeB");
	assert_string_equal(nd.dev, GPU);
	assert_null(nd.attr);
	assert_int_equal(parse("/devices/" GPU "/plans/nodeB/x", &nd), -ENOENT);

	/* anything else in a device directory is a temp file name */
	assert_int_equal(parse("/devices/" GPU "/.borrower.tmp", &nd), 0);
	assert_int_equal(nd.area, AREA_TMP);
	assert_string_equal(nd.tmpdir, GPU);
	assert_string_equal(nd.name, ".borrower.tmp");
	assert_null(nd.table);
	assert_null(nd.attr);
	assert_int_equal(parse("/devices/" GPU "/borrower/x", &nd), -ENOENT);
	assert_int_equal(parse("/devices/" GPU "/tmp/x", &nd), -ENOENT);
}

static void test_host_paths(void **state)
{
	struct node nd;

	assert_int_equal(parse("/hosts/nodeB", &nd), 0);
	assert_int_equal(nd.area, AREA_HOST);
	assert_string_equal(nd.host, "nodeB");
	assert_int_equal(parse("/hosts/nodeB/state", &nd), 0);
	assert_int_equal(nd.area, AREA_HOST_ATTR);
	assert_string_equal(nd.attr->name, "state");
	assert_ptr_equal(nd.table, &host_attrs);
	assert_non_null(nd.attr->store);
	assert_int_equal(parse("/hosts/nodeB/vms", &nd), 0);
	assert_int_equal(nd.area, AREA_VMS);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1", &nd), 0);
	assert_int_equal(nd.area, AREA_VM);
	assert_string_equal(nd.vm, "vm1");
	assert_true(area_in_vm(nd.area));
	assert_true(area_in_host(nd.area));
	/* any name parses: mkdir says which are valid, lookups which exist */
	assert_int_equal(parse("/hosts/nodeB/vms/bad.name", &nd), 0);
	assert_string_equal(nd.vm, "bad.name");
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/qmp", &nd), 0);
	assert_int_equal(nd.area, AREA_VM_ATTR);
	assert_string_equal(nd.attr->name, "qmp");
	assert_ptr_equal(nd.table, &vm_attrs);
	assert_non_null(nd.attr->store);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/state", &nd), 0);
	assert_int_equal(nd.area, AREA_VM_ATTR);
	assert_null(nd.attr->store);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/memory", &nd), 0);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/last_error", &nd), 0);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/devices", &nd), 0);
	assert_int_equal(nd.area, AREA_VM_LINKS);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/devices/" GPU, &nd), 0);
	assert_int_equal(nd.area, AREA_VM_LINK);
	assert_string_equal(nd.dev, GPU);
	assert_string_equal(nd.vm, "vm1");
	assert_string_equal(nd.host, "nodeB");
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/devices/" GPU "/x", &nd), -ENOENT);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/bogus", &nd), -ENOENT);
	assert_int_equal(parse("/hosts/nodeB/vms/vm1/qmp/x", &nd), -ENOENT);

	assert_int_equal(parse("/hosts/nodeB/lent", &nd), 0);
	assert_int_equal(nd.area, AREA_HOST_LINKS);
	assert_false(nd.borrowed);
	assert_int_equal(parse("/hosts/nodeB/borrowed/" GPU, &nd), 0);
	assert_int_equal(nd.area, AREA_HOST_LINK);
	assert_true(nd.borrowed);
	assert_string_equal(nd.dev, GPU);
	assert_int_equal(parse("/hosts/nodeB/borrowed/" GPU "/x", &nd), -ENOENT);

	assert_int_equal(parse("/hosts/nodeB/nonexistent", &nd), -ENOENT);
	assert_int_equal(parse("/hosts/nodeB/state/x", &nd), -ENOENT);
	/* the host was parsed: fs.c reports a missing host first */
	assert_true(area_in_host(nd.area));
	assert_string_equal(nd.host, "nodeB");
}

static void test_composition_paths(void **state)
{
	struct node nd;

	assert_int_equal(parse("/compositions", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPOS);
	assert_null(nd.table);
	assert_int_equal(parse("/compositions/job.1", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPO);
	assert_string_equal(nd.comp, "job.1");
	assert_ptr_equal(nd.table, &compo_attrs);
	assert_true(area_in_compo(nd.area));
	/* any name parses: mkdir says which are valid */
	assert_int_equal(parse("/compositions/a b", &nd), 0);
	assert_string_equal(nd.comp, "a b");
	assert_int_equal(parse("/compositions/job/devices", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPO_ATTR);
	assert_string_equal(nd.attr->name, "devices");
	assert_non_null(nd.attr->store);
	assert_int_equal(parse("/compositions/job/borrower", &nd), 0);
	assert_non_null(nd.attr->store);
	assert_true(nd.attr->poll);
	assert_int_equal(parse("/compositions/job/state", &nd), 0);
	assert_null(nd.attr->store);
	assert_int_equal(parse("/compositions/job/last_error", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPO_ATTR);
	/*
	 * any other name is a temp file's (the rename way), as in a device
	 * directory: no mkdir of NAME through NAME/X, not the area of NAME
	 */
	assert_int_equal(parse("/compositions/job/.bogus", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPO_TMP);
	assert_true(area_is_tmp(nd.area) && area_in_compo(nd.area));
	assert_string_equal(nd.tmpdir, "/job");
	assert_string_equal(nd.name, ".bogus");
	assert_true(area_has_tmp(AREA_COMPO) && area_has_tmp(AREA_DEVICE));
	assert_false(area_has_tmp(AREA_COMPO_ATTR));
	assert_int_equal(parse("/compositions/job/state/x", &nd), -ENOENT);
	assert_int_equal(nd.area, AREA_COMPO_ATTR);
	/* lease: writable and pollable; plans/HOST: a directory of files */
	assert_int_equal(parse("/compositions/job/lease", &nd), 0);
	assert_non_null(nd.attr->store);
	assert_true(nd.attr->poll);
	assert_int_equal(parse("/compositions/job/plans", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPO_PLANS);
	assert_true(area_is_dir(nd.area) && area_in_compo(nd.area));
	assert_null(nd.attr);
	assert_null(nd.table);
	assert_int_equal(parse("/compositions/job/plans/nodeB", &nd), 0);
	assert_int_equal(nd.area, AREA_COMPO_PLAN);
	assert_false(area_is_dir(nd.area));
	assert_true(area_in_compo(nd.area));
	assert_string_equal(nd.comp, "job");
	assert_string_equal(nd.name, "nodeB");
	assert_int_equal(parse("/compositions/job/plans/nodeB/x", &nd), -ENOENT);
}

static void test_slashes_collapse(void **state)
{
	struct node a, b;

	assert_int_equal(parse("/devices/" GPU "/state", &a), 0);
	assert_int_equal(parse("devices//" GPU "///state/", &b), 0);
	assert_int_equal(a.area, b.area);
	assert_string_equal(a.dev, b.dev);
	assert_ptr_equal(a.attr, b.attr);
	assert_ptr_equal(a.table, b.table);
}

static void test_bounds(void **state)
{
	char path[PATH_MAX + 16], name[FS_NAME_MAX + 2];
	struct node nd;

	/* deeper than hosts/H/vms/VM/devices/ID: ENOENT without looking further */
	assert_int_equal(parse("/a/b/c/d/e/f/g", &nd), -ENOENT);
	assert_int_equal(nd.area, AREA_ROOT);
	assert_int_equal(parse("/devices/" GPU "/peers/x/y/z", &nd), -ENOENT);

	/* a device id longer than DEVICE_ID_MAX - 1 cannot exist */
	memset(name, 'a', DEVICE_ID_MAX);
	name[DEVICE_ID_MAX] = '\0';
	snprintf(path, sizeof(path), "/devices/%s/state", name);
	assert_int_equal(parse(path, &nd), -ENOENT);
	assert_false(area_in_device(nd.area));
	name[DEVICE_ID_MAX - 1] = '\0';
	snprintf(path, sizeof(path), "/devices/%s", name);
	assert_int_equal(parse(path, &nd), 0);
	assert_int_equal(strlen(nd.dev), DEVICE_ID_MAX - 1);

	/* a host name longer than 63 cannot exist */
	memset(name, 'h', HOST_NAME_MAX_LEN + 1);
	name[HOST_NAME_MAX_LEN + 1] = '\0';
	snprintf(path, sizeof(path), "/hosts/%s", name);
	assert_int_equal(parse(path, &nd), -ENOENT);
	name[HOST_NAME_MAX_LEN] = '\0';
	snprintf(path, sizeof(path), "/hosts/%s", name);
	assert_int_equal(parse(path, &nd), 0);

	/* temp file names: up to FS_NAME_MAX, then ENAMETOOLONG */
	memset(name, 't', FS_NAME_MAX);
	name[FS_NAME_MAX] = '\0';
	snprintf(path, sizeof(path), "/devices/" GPU "/%s", name);
	assert_int_equal(parse(path, &nd), 0);
	assert_int_equal(nd.area, AREA_TMP);
	memset(name, 't', FS_NAME_MAX + 1);
	name[FS_NAME_MAX + 1] = '\0';
	snprintf(path, sizeof(path), "/devices/" GPU "/%s", name);
	assert_int_equal(parse(path, &nd), -ENAMETOOLONG);
	assert_int_equal(nd.area, AREA_DEVICE);
	assert_string_equal(nd.dev, GPU);

	/* a path of PATH_MAX bytes or more */
	memset(path, '/', PATH_MAX);
	path[PATH_MAX] = '\0';
	assert_int_equal(parse(path, &nd), -ENOENT);
	path[PATH_MAX - 1] = '\0';
	assert_int_equal(parse(path, &nd), 0);
	assert_int_equal(nd.area, AREA_ROOT);
}

static void test_area_classes(void **state)
{
	assert_true(area_is_dir(AREA_ROOT));
	assert_true(area_is_dir(AREA_DEVICE));
	assert_true(area_is_dir(AREA_VMS));
	assert_true(area_is_dir(AREA_VM));
	assert_true(area_is_dir(AREA_VM_LINKS));
	assert_true(area_is_dir(AREA_COMPOS));
	assert_true(area_is_dir(AREA_COMPO));
	assert_false(area_is_dir(AREA_COMPO_ATTR));
	assert_false(area_in_compo(AREA_COMPOS));
	assert_false(area_is_dir(AREA_VM_ATTR));
	assert_false(area_is_dir(AREA_VM_LINK));
	assert_true(area_in_vm(AREA_VM_LINK));
	assert_false(area_in_vm(AREA_VMS));
	assert_false(area_is_dir(AREA_DEVICE_ATTR));
	assert_false(area_is_dir(AREA_TMP));
	assert_false(area_is_dir(AREA_HOST_LINK));
	assert_true(area_in_device(AREA_TMP));
	assert_false(area_in_device(AREA_DEVICES));
	assert_false(area_in_device(AREA_HOST_LINK));
	assert_true(area_in_host(AREA_HOST_LINK));
	assert_false(area_in_host(AREA_HOSTS));
}

/*
 * Every table: names unique and found by attr_find(), a store() exactly
 * for the writable ones, subdirectories that are no attribute, and a
 * view to take exactly where show() reads one.
 */
static void test_tables(void **state)
{
	const struct attr_table *tables[] = {
		&cluster_attrs, &device_attrs, &host_attrs, &vm_attrs,
		&fabric_attrs, &compo_attrs,
	};

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		const struct attr_table *tb = tables[t];

		assert_true(tb->n > 0);
		assert_true(!tb->get == !tb->put);
		for (size_t i = 0; i < tb->n; i++) {
			const struct lendfs_attr *a = &tb->attrs[i];

			assert_ptr_equal(attr_find(tb, a->name), a);
			assert_non_null(a->show);
			assert_int_equal(a->mode, a->store ? ATTR_RW : ATTR_RO);
		}
		for (const char *const *d = tb->dirs; d && *d; d++)
			assert_null(attr_find(tb, *d));
		assert_null(attr_find(tb, ""));
		assert_null(attr_find(tb, "nonexistent"));
	}
	assert_null(cluster_attrs.get); /* rendered by the engine whole */
	assert_non_null(device_attrs.get);
	assert_string_equal(device_attrs.dirs[0], "peers");
	assert_string_equal(device_attrs.dirs[1], PLANS_DIR);
	assert_null(device_attrs.dirs[2]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_and_top_level),
		cmocka_unit_test(test_unknown_names),
		cmocka_unit_test(test_device_paths),
		cmocka_unit_test(test_host_paths),
		cmocka_unit_test(test_composition_paths),
		cmocka_unit_test(test_slashes_collapse),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_area_classes),
		cmocka_unit_test(test_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
