// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * inventory_udev.c - the `udev` inventory back-end (inventory.h): the local
 * host's PCI devices from libudev, and a udev monitor for hot-plug.
 *
 * What is read, per device (never written: lendfs writes no sysfs file):
 *
 *   sysname                    DDDD:BB:DD.F -> id "HOST:DDDD:BB:DD.F"
 *   vendor device class subsystem_vendor subsystem_device   (sysattrs)
 *   resource                   the first 6 lines are the BARs: "start end
 *                              flags"; a memory BAR (flags & 0x200) with a
 *                              nonzero start or end has end - start + 1
 *                              bytes; I/O BARs and the ROM are not mapped
 *   driver                     the driver link (udev_device_get_driver)
 *   numa_node                  -1 when unknown
 *   iommu_group                the number the iommu_group link points to;
 *                              -1 without an IOMMU
 *   LENDFS_BORROWER            auto-lend to this borrower, only when the
 *                              device is lendable by the rules: TAG lendfs
 *                              or LENDFS_LENDABLE=1, and not LENDFS_DENY=1
 *   LENDFS_DENY, LENDFS_DENY_REASON   a udev-side refusal (EPERM)
 *
 * and deny_reason from the lender's own policy (core/policy.h), which is
 * computed again for every batch of events (a default route can move).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libudev.h>
#include <limits.h>
#include <string.h>

#include "inventory.h"

#define PCI_RES_MEM 0x200ULL /* IORESOURCE_MEM */

struct udev_inv {
	struct udev *udev;
	struct udev_monitor *mon;
	char host[HOST_NAME_MAX_LEN + 1];
	struct policy_paths paths;
	struct policy policy;
};

static int attr_u64(struct udev_device *ud, const char *name, uint64_t *out)
{
	const char *v = udev_device_get_sysattr_value(ud, name);
	char buf[32];
	size_t n;

	if (!v)
		return -ENOENT;
	v += strspn(v, " \t\n");
	n = strcspn(v, " \t\n");
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return parse_u64(buf, out);
}

static uint16_t attr_u16(struct udev_device *ud, const char *name)
{
	uint64_t v = 0;

	return attr_u64(ud, name, &v) == 0 && v <= UINT16_MAX ? (uint16_t)v : 0;
}

/* BAR sizes from the `resource` attribute. */
static void parse_resource(const char *text, uint64_t bar[PCI_NUM_BARS])
{
	const char *line = text;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		bar[i] = 0;
	for (unsigned i = 0; line && *line && i < PCI_NUM_BARS; i++) {
		unsigned long long start, end, flags;

		if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) == 3 &&
		    (start || end) && end >= start && (flags & PCI_RES_MEM) &&
		    end - start < UINT64_MAX)
			bar[i] = end - start + 1;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
}

static int link_number(struct udev_device *ud, const char *name)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	char *end;
	ssize_t n;
	long v;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", udev_device_get_syspath(ud),
			     name) >= sizeof(path))
		return -1;
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	errno = 0;
	v = strtol(base, &end, 10);
	if (errno || end == base || *end || v < 0 || v > INT32_MAX)
		return -1;
	return (int)v;
}

static bool prop_is(struct udev_device *ud, const char *key, const char *value)
{
	const char *v = udev_device_get_property_value(ud, key);

	return v && !strcmp(v, value);
}

/* Only what identifies the device (enough for a remove). */
static int fill_id(struct udev_inv *inv, struct udev_device *ud,
		   struct cfg_device *dev, char *reason)
{
	const char *sysname = udev_device_get_sysname(ud);
	char addr[16];

	memset(dev, 0, sizeof(*dev));
	dev->numa_node = -1;
	dev->iommu_group = -1;
	if (!sysname || pci_addr_parse(sysname, &dev->addr) < 0)
		return reason_set(reason, -EINVAL, "pci device '%s' has no pci address",
				  sysname ? sysname : "?");
	pci_addr_format(&dev->addr, addr, sizeof(addr));
	snprintf(dev->host, sizeof(dev->host), "%s", inv->host);
	snprintf(dev->id, sizeof(dev->id), "%s:%s", inv->host, addr);
	return 0;
}

static int fill_device(struct udev_inv *inv, struct udev_device *ud,
		       struct cfg_device *dev, char *reason)
{
	const char *v;
	uint64_t cls = 0;
	bool lendable;
	int r;

	r = fill_id(inv, ud, dev, reason);
	if (r < 0)
		return r;
	dev->vendor = attr_u16(ud, "vendor");
	dev->device = attr_u16(ud, "device");
	dev->subsystem_vendor = attr_u16(ud, "subsystem_vendor");
	dev->subsystem_device = attr_u16(ud, "subsystem_device");
	if (attr_u64(ud, "class", &cls) == 0 && cls <= 0xffffff)
		dev->class = (uint32_t)cls;
	v = udev_device_get_sysattr_value(ud, "resource");
	if (v)
		parse_resource(v, dev->bar);
	v = udev_device_get_driver(ud);
	if (v)
		snprintf(dev->driver, sizeof(dev->driver), "%.*s",
			 (int)sizeof(dev->driver) - 1, v);
	v = udev_device_get_sysattr_value(ud, "numa_node");
	if (v) {
		char *end;
		long n = strtol(v, &end, 10);

		if (end != v && n >= 0 && n <= INT32_MAX)
			dev->numa_node = (int)n;
	}
	dev->iommu_group = link_number(ud, "iommu_group");

	policy_apply(&inv->policy, dev);
	if (!dev->deny_reason[0] && prop_is(ud, "LENDFS_DENY", "1")) {
		v = udev_device_get_property_value(ud, "LENDFS_DENY_REASON");
		snprintf(dev->deny_reason, sizeof(dev->deny_reason),
			 "is excluded by udev rules (%.80s)", v && *v ? v : "LENDFS_DENY=1");
	}
	lendable = (udev_device_has_tag(ud, "lendfs") > 0 ||
		    prop_is(ud, "LENDFS_LENDABLE", "1")) &&
		   !prop_is(ud, "LENDFS_DENY", "1");
	v = udev_device_get_property_value(ud, "LENDFS_BORROWER");
	if (lendable && v)
		snprintf(dev->borrower, sizeof(dev->borrower), "%.*s",
			 (int)sizeof(dev->borrower) - 1, v);
	return 0;
}

static void udev_inv_close(void *ctx)
{
	struct udev_inv *inv = ctx;

	if (!inv)
		return;
	udev_monitor_unref(inv->mon);
	udev_unref(inv->udev);
	free(inv);
}

static int udev_inv_open(const struct inventory_args *args, void **ctx,
			 char *reason)
{
	struct udev_inv *inv = calloc(1, sizeof(*inv));
	int r, fl;

	*ctx = NULL;
	if (!inv)
		return reason_set(reason, -ENOMEM, "out of memory");
	r = inventory_local_host(args->local_host, inv->host, sizeof(inv->host), reason);
	if (r < 0)
		goto fail;
	inv->paths = args->paths ? *args->paths : policy_system_paths;
	inv->udev = udev_new();
	if (!inv->udev) {
		r = reason_set(reason, -ENOMEM, "cannot create a udev context");
		goto fail;
	}
	/* listen before anyone enumerates, so that no event falls between */
	inv->mon = udev_monitor_new_from_netlink(inv->udev, "udev");
	if (!inv->mon) {
		r = reason_set(reason, errno ? -errno : -EIO,
			       "cannot listen to udev events: %s", strerror(errno ? errno : EIO));
		goto fail;
	}
	r = udev_monitor_filter_add_match_subsystem_devtype(inv->mon, "pci", NULL);
	if (r >= 0)
		r = udev_monitor_enable_receiving(inv->mon);
	if (r < 0) {
		r = reason_set(reason, r, "cannot listen to udev events: %s", strerror(-r));
		goto fail;
	}
	/* dispatch must never block, whatever the socket was created with */
	fl = fcntl(udev_monitor_get_fd(inv->mon), F_GETFL);
	if (fl >= 0)
		fcntl(udev_monitor_get_fd(inv->mon), F_SETFL, fl | O_NONBLOCK);
	*ctx = inv;
	return 0;
fail:
	udev_inv_close(inv);
	return r;
}

static int udev_inv_enumerate(void *ctx, inventory_device_cb cb, void *arg,
			      char *reason)
{
	struct udev_inv *inv = ctx;
	struct udev_enumerate *en = udev_enumerate_new(inv->udev);
	struct udev_list_entry *entry;
	int r;

	if (!en)
		return reason_set(reason, -ENOMEM, "cannot enumerate pci devices: out of memory");
	policy_scan(&inv->paths, &inv->policy);
	r = udev_enumerate_add_match_subsystem(en, "pci");
	if (r >= 0)
		r = udev_enumerate_scan_devices(en);
	if (r < 0) {
		udev_enumerate_unref(en);
		return reason_set(reason, r, "cannot enumerate pci devices: %s", strerror(-r));
	}
	r = 0;
	udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(en)) {
		struct udev_device *ud;
		struct cfg_device dev;

		ud = udev_device_new_from_syspath(inv->udev, udev_list_entry_get_name(entry));
		if (!ud)
			continue; /* gone in between: its remove event follows */
		if (fill_device(inv, ud, &dev, NULL) == 0)
			r = cb(arg, &dev);
		udev_device_unref(ud);
		if (r)
			break;
	}
	udev_enumerate_unref(en);
	return r < 0 ? r : 0;
}

static int udev_inv_monitor_fd(void *ctx)
{
	struct udev_inv *inv = ctx;

	return udev_monitor_get_fd(inv->mon);
}

/* The event kind of a udev action; -1 for the ones we ignore (move, ...). */
static int action_of(const char *action)
{
	if (!action)
		return -1;
	if (!strcmp(action, "add"))
		return INVENTORY_ADD;
	if (!strcmp(action, "remove"))
		return INVENTORY_REMOVE;
	if (!strcmp(action, "change") || !strcmp(action, "bind") ||
	    !strcmp(action, "unbind"))
		return INVENTORY_CHANGE;
	return -1;
}

static int udev_inv_dispatch(void *ctx, inventory_event_cb cb, void *arg,
			     char *reason)
{
	struct udev_inv *inv = ctx;
	bool scanned = false;
	int n = 0;

	for (;;) {
		struct udev_device *ud;
		struct inventory_event ev;
		const char *action, *subsys;
		int r;

		errno = 0;
		ud = udev_monitor_receive_device(inv->mon);
		if (!ud) {
			if (errno && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return reason_set(reason, -errno, "udev monitor: %s",
						  errno == ENOBUFS ?
						  "events were lost (receive buffer full)" :
						  strerror(errno));
			return n;
		}
		action = udev_device_get_action(ud);
		subsys = udev_device_get_subsystem(ud);
		r = subsys && !strcmp(subsys, "pci") ? action_of(action) : -1;
		if (r >= 0) {
			ev.action = (enum inventory_action)r;
			if (ev.action == INVENTORY_REMOVE) {
				r = fill_id(inv, ud, &ev.dev, NULL);
			} else {
				if (!scanned)
					policy_scan(&inv->paths, &inv->policy);
				scanned = true;
				r = fill_device(inv, ud, &ev.dev, NULL);
			}
			if (r == 0) {
				n++;
				cb(arg, &ev);
			}
		}
		udev_device_unref(ud);
	}
}

const struct inventory_ops inventory_udev_ops = {
	.name = "udev",
	.open = udev_inv_open,
	.enumerate = udev_inv_enumerate,
	.monitor_fd = udev_inv_monitor_fd,
	.dispatch = udev_inv_dispatch,
	.close = udev_inv_close,
};
