// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_device.c - devices/ID/: the attribute table of one device.
 *
 * Every show() renders from a device_view, a consistent copy the engine
 * took under the device lock, so one read never mixes two states.
 */
#include "attr.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fs.h"

static int show_vendor(struct engine *e, const struct device_view *v,
		       FILE *out)
{
	return fprintf(out, "0x%04x\n", v->vendor) < 0 ? -EIO : 0;
}

static int show_device(struct engine *e, const struct device_view *v,
		       FILE *out)
{
	return fprintf(out, "0x%04x\n", v->device) < 0 ? -EIO : 0;
}

static int show_class(struct engine *e, const struct device_view *v,
		      FILE *out)
{
	return fprintf(out, "0x%06x\n", v->class) < 0 ? -EIO : 0;
}

static int show_subsystem_vendor(struct engine *e, const struct device_view *v,
				 FILE *out)
{
	return fprintf(out, "0x%04x\n", v->subsystem_vendor) < 0 ? -EIO : 0;
}

static int show_subsystem_device(struct engine *e, const struct device_view *v,
				 FILE *out)
{
	return fprintf(out, "0x%04x\n", v->subsystem_device) < 0 ? -EIO : 0;
}

static int show_lender(struct engine *e, const struct device_view *v,
		       FILE *out)
{
	return fprintf(out, "%s\n", v->lender) < 0 ? -EIO : 0;
}

/*
 * Exactly the value plus one newline, or a newline alone when not lent:
 * config-management tools compare checksums of what they would write.
 */
static int show_borrower(struct engine *e, const struct device_view *v,
			 FILE *out)
{
	return fprintf(out, "%s\n", v->borrower) < 0 ? -EIO : 0;
}

static int show_state(struct engine *e, const struct device_view *v, FILE *out)
{
	return fprintf(out, "%s\n", dev_state_name(v->state)) < 0 ? -EIO : 0;
}

static int show_last_error(struct engine *e, const struct device_view *v,
			   FILE *out)
{
	return fprintf(out, "%s\n", v->last_error) < 0 ? -EIO : 0;
}

/* Like sysfs: one line per BAR, "start end flags", zeros when unused. */
static int show_resource(struct engine *e, const struct device_view *v,
			 FILE *out)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t start = 0, end = 0, flags = 0;

		if (v->bar_size[i]) {
			start = v->bar_addr[i];
			end = start + v->bar_size[i] - 1;
			flags = v->bar_flags[i];
		}
		if (fprintf(out, "0x%016" PRIx64 " 0x%016" PRIx64
			    " 0x%016" PRIx64 "\n", start, end, flags) < 0)
			return -EIO;
	}
	return 0;
}

static int show_windows(struct engine *e, const struct device_view *v,
			FILE *out)
{
	char line[WINDOW_TEXT_MAX];

	for (unsigned i = 0; i < v->nwindows; i++) {
		int r = window_format(&v->windows[i], line, sizeof(line));

		if (r < 0)
			return r;
		if (fprintf(out, "%s\n", line) < 0)
			return -EIO;
	}
	return 0;
}

/* The route lender -> borrower while the device has one; empty otherwise. */
static int show_path(struct engine *e, const struct device_view *v, FILE *out)
{
	if (v->has_route)
		engine_render_route(e, &v->route, out);
	return ferror(out) ? -EIO : 0;
}

/*
 * One write is one request.  The engine does the whole SPEC section 4
 * contract (newline, length, no-op, return, lend); a failure is logged
 * here and its -errno goes back to write(2) or rename(2).
 */
static int store_borrower(struct engine *e, const char *devid, const char *buf,
			  size_t len, char *reason)
{
	char value[80];
	int r;

	reason[0] = '\0';
	r = engine_write_borrower(e, devid, buf, len, NULL, reason);
	if (r >= 0)
		return 0;
	if (len && buf[len - 1] == '\n')
		len--;
	if (len == 0) {
		lendfs_log("cannot return %s: %s", devid, reason);
	} else {
		lendfs_log_value(buf, len, value, sizeof(value));
		lendfs_log("cannot lend %s to %s: %s", devid, value, reason);
	}
	return r;
}

static const struct device_attr device_attr_list[] = {
	{ "vendor", ATTR_RO, show_vendor, NULL },
	{ "device", ATTR_RO, show_device, NULL },
	{ "class", ATTR_RO, show_class, NULL },
	{ "subsystem_vendor", ATTR_RO, show_subsystem_vendor, NULL },
	{ "subsystem_device", ATTR_RO, show_subsystem_device, NULL },
	{ "lender", ATTR_RO, show_lender, NULL },
	{ BORROWER_ATTR, ATTR_RW, show_borrower, store_borrower },
	{ "state", ATTR_RO, show_state, NULL },
	{ "last_error", ATTR_RO, show_last_error, NULL },
	{ "resource", ATTR_RO, show_resource, NULL },
	{ "windows", ATTR_RO, show_windows, NULL },
	{ "path", ATTR_RO, show_path, NULL },
};

const struct device_attr_table device_attrs = {
	device_attr_list, ARRAY_SIZE(device_attr_list)
};

const struct device_attr *device_attr_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(device_attr_list); i++)
		if (strcmp(device_attr_list[i].name, name) == 0)
			return &device_attr_list[i];
	return NULL;
}

static const struct peer_view *peer_find(const struct device_view *v,
					 const char *peer)
{
	for (unsigned i = 0; i < v->npeers; i++)
		if (strcmp(v->peers[i].device, peer) == 0)
			return &v->peers[i];
	return NULL;
}

bool device_peer_exists(const struct device_view *v, const char *peer)
{
	return peer_find(v, peer) != NULL;
}

/*
 * The P2P route actually used between the device and one peer: through
 * the lender's root complex when its IOMMU forces it, else the shortest
 * fabric path.
 */
int device_peer_show(struct engine *e, const struct device_view *v,
		     const char *peer, FILE *out)
{
	const struct peer_view *p = peer_find(v, peer);

	if (!p)
		return -ENOENT;
	engine_render_peer(e, v->lender, p, out);
	return ferror(out) ? -EIO : 0;
}
