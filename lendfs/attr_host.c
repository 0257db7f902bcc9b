// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_host.c - hosts/HOST/: the attribute table of one host.
 *
 * In the sim fabric `state` is writable ("online" / "offline") so admins
 * and tests can take a host down; the engine decides what that does to
 * the lends through it.
 */
#include "attr.h"

#include <errno.h>
#include <string.h>

#include "fs.h"

static int show_state(struct engine *e, const struct host_view *v, FILE *out)
{
	return fprintf(out, "%s\n", v->online ? "online" : "offline") < 0 ?
		-EIO : 0;
}

static int store_state(struct engine *e, const char *host, const char *buf,
		       size_t len, char *reason)
{
	char value[80];
	int r;

	reason[0] = '\0';
	r = engine_write_host_state(e, host, buf, len, NULL, reason);
	if (len && buf[len - 1] == '\n')
		len--;
	lendfs_log_value(buf, len, value, sizeof(value));
	if (r < 0) {
		lendfs_log("cannot set host %s %s: %s", host, value, reason);
		return r;
	}
	lendfs_log("host %s is %s", host, value);
	return 0;
}

static const struct host_attr host_attr_list[] = {
	{ "state", ATTR_RW, show_state, store_state },
};

const struct host_attr_table host_attrs = {
	host_attr_list, ARRAY_SIZE(host_attr_list)
};

const struct host_attr *host_attr_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(host_attr_list); i++)
		if (strcmp(host_attr_list[i].name, name) == 0)
			return &host_attr_list[i];
	return NULL;
}
