// SPDX-License-Identifier: LGPL-2.1-or-later
/* cmocka tests for core/backend.c: every back-end is found by its name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "backend.h"

static void test_fabric_find(void **state)
{
	assert_ptr_equal(fabric_find("sim"), &fabric_sim_ops);
	assert_ptr_equal(fabric_find("ntb"), &fabric_ntb_ops);
	assert_string_equal(fabric_sim_ops.name, "sim");
	assert_string_equal(fabric_ntb_ops.name, "ntb");
	assert_null(fabric_find("fpga"));
	assert_null(fabric_find("Sim"));
	assert_null(fabric_find(""));
	assert_null(fabric_find(NULL));
}

static void test_inventory_find(void **state)
{
	assert_ptr_equal(inventory_find("config"), &inventory_config_ops);
	assert_ptr_equal(inventory_find(NULL), &inventory_config_ops);
	assert_ptr_equal(inventory_find("udev"), &inventory_udev_ops);
	assert_string_equal(inventory_config_ops.name, "config");
	assert_string_equal(inventory_udev_ops.name, "udev");
	assert_null(inventory_find("ldap"));
	assert_null(inventory_find(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fabric_find),
		cmocka_unit_test(test_inventory_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
