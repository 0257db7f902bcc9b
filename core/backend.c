// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * backend.c - the back-ends by name (backend.h): one table per kind,
 * looked up by the name a configuration gives.
 */
#include <string.h>

#include "backend.h"
#include "util.h"

static const struct fabric_ops *const fabrics[] = {
	&fabric_sim_ops,
	&fabric_ntb_ops,
};

static const struct inventory_ops *const inventories[] = {
	&inventory_config_ops,
	&inventory_udev_ops,
};

const struct fabric_ops *fabric_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(fabrics); i++)
		if (strcmp(fabrics[i]->name, name) == 0)
			return fabrics[i];
	return NULL;
}

const struct inventory_ops *inventory_find(const char *name)
{
	if (!name)
		return &inventory_config_ops;
	for (size_t i = 0; i < ARRAY_SIZE(inventories); i++)
		if (strcmp(inventories[i]->name, name) == 0)
			return inventories[i];
	return NULL;
}
