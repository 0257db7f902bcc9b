// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * policy.c - which local PCI devices the lender depends on (policy.h).
 *
 * Only reads sysfs and procfs.  Every walk is bounded: symlink chains by
 * POLICY_MAX_DEPTH, results by the caller's array.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "policy.h"

#define POLICY_MAX_DEPTH 8
#define RTF_UP 0x0001
#define RTF_REJECT 0x0200

const struct policy_paths policy_system_paths = {
	.sys = "/sys",
	.proc = "/proc",
	.root = "/",
};

struct collect {
	char devices[PATH_MAX]; /* realpath(sys) + "/devices" */
	struct pci_addr *out;
	unsigned max, n;
};

static bool addr_eq(const struct pci_addr *a, const struct pci_addr *b)
{
	return a->domain == b->domain && a->bus == b->bus && a->dev == b->dev &&
	       a->fn == b->fn;
}

static void collect_add(struct collect *c, const struct pci_addr *a)
{
	for (unsigned i = 0; i < c->n; i++)
		if (addr_eq(&c->out[i], a))
			return;
	if (c->n < c->max)
		c->out[c->n++] = *a;
}

static int collect_init(struct collect *c, const char *sys,
			struct pci_addr *out, unsigned max)
{
	char real[PATH_MAX];

	if (!realpath(sys, real))
		return -errno;
	if ((size_t)snprintf(c->devices, sizeof(c->devices), "%s/devices", real) >=
	    sizeof(c->devices))
		return -ENAMETOOLONG;
	c->out = out;
	c->max = max;
	c->n = 0;
	return 0;
}

/* A one-line file, without its trailing newline. */
static int read_line(const char *path, char *buf, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		return -EIO;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The name of @dir's subsystem: the last element of its `subsystem` link. */
static int subsystem_of(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	if ((size_t)snprintf(path, sizeof(path), "%s/subsystem", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	snprintf(buf, len, "%.*s", (int)len - 1, base_name(target));
	return 0;
}

/* realpath(@dir/@name) into @out. */
static int resolve(const char *dir, const char *name, char *out)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	return realpath(path, out) ? 0 : -errno;
}

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && path[n] == '/';
}

static void pci_walk_up(struct collect *c, const char *devpath, unsigned depth);

/*
 * An NVMe multipath namespace lives under the virtual nvme-subsystem
 * device; its controllers are links in that directory.
 */
static void nvme_subsystem(struct collect *c, const char *dir, unsigned depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char real[PATH_MAX], subsys[64];

		if (strncmp(de->d_name, "nvme", 4) != 0 ||
		    resolve(dir, de->d_name, real) < 0 ||
		    subsystem_of(real, subsys, sizeof(subsys)) < 0 ||
		    strcmp(subsys, "nvme") != 0)
			continue;
		pci_walk_up(c, real, depth + 1);
	}
	closedir(d);
}

/* The nearest PCI device at or above @devpath (a realpath under /sys). */
static void pci_walk_up(struct collect *c, const char *devpath, unsigned depth)
{
	char path[PATH_MAX];

	if (depth > POLICY_MAX_DEPTH)
		return;
	snprintf(path, sizeof(path), "%s", devpath);
	while (under(path, c->devices)) {
		char subsys[64];
		struct pci_addr a;

		if (subsystem_of(path, subsys, sizeof(subsys)) == 0) {
			if (!strcmp(subsys, "pci") &&
			    pci_addr_parse(base_name(path), &a) == 0) {
				collect_add(c, &a);
				return;
			}
			if (!strcmp(subsys, "nvme-subsystem")) {
				nvme_subsystem(c, path, depth);
				return;
			}
		}
		*strrchr(path, '/') = '\0';
	}
}

/*
 * Call @fn for each entry of @dir whose name starts with @prefix ("" for
 * all), resolved; returns how many there were.
 */
static unsigned foreach_link(struct collect *c, const char *dir,
			     const char *prefix, unsigned depth,
			     void (*fn)(struct collect *, const char *, unsigned))
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char real[PATH_MAX];

		if (de->d_name[0] == '.' ||
		    strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
		    resolve(dir, de->d_name, real) < 0)
			continue;
		n++;
		fn(c, real, depth + 1);
	}
	closedir(d);
	return n;
}

/* A block device: its slaves (dm, md), else its own PCI ancestor. */
static void block_collect(struct collect *c, const char *devpath,
			  unsigned depth)
{
	char disk[PATH_MAX], probe[PATH_MAX + 16], slaves[PATH_MAX + 16];
	struct stat st;

	if (depth > POLICY_MAX_DEPTH)
		return;
	snprintf(disk, sizeof(disk), "%s", devpath);
	snprintf(probe, sizeof(probe), "%s/partition", devpath);
	if (stat(probe, &st) == 0 && strrchr(disk, '/') != disk)
		*strrchr(disk, '/') = '\0'; /* a partition: its disk */
	snprintf(slaves, sizeof(slaves), "%s/slaves", disk);
	if (foreach_link(c, slaves, "", depth, block_collect) > 0)
		return;
	pci_walk_up(c, devpath, depth);
}

/* The sysfs directory of block device @maj:@min. */
static int block_dir(const char *sys, unsigned maj, unsigned min, char *out)
{
	char path[PATH_MAX], want[32];
	DIR *d;
	struct dirent *de;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "%s/dev/block/%u:%u", sys, maj, min);
	if (realpath(path, out))
		return 0;
	/* no /sys/dev/block link (old kernels, test beds): search */
	snprintf(want, sizeof(want), "%u:%u", maj, min);
	snprintf(path, sizeof(path), "%s/class/block", sys);
	d = opendir(path);
	if (!d)
		return -ENOENT;
	while (r < 0 && (de = readdir(d))) {
		char file[PATH_MAX], val[32];

		if (de->d_name[0] == '.' ||
		    (size_t)snprintf(file, sizeof(file), "%s/%s/dev", path,
				     de->d_name) >= sizeof(file))
			continue;
		if (read_line(file, val, sizeof(val)) == 0 && !strcmp(val, want))
			r = resolve(path, de->d_name, out);
	}
	closedir(d);
	return r;
}

int policy_block_pci(const char *sys, unsigned maj, unsigned min,
		     struct pci_addr *out, unsigned max, char *name,
		     size_t namelen)
{
	char dir[PATH_MAX], probe[PATH_MAX + 16], dm[128];
	struct collect c;
	int r;

	r = collect_init(&c, sys, out, max);
	if (r < 0)
		return r;
	r = block_dir(sys, maj, min, dir);
	if (r < 0)
		return r;
	if (name) {
		snprintf(probe, sizeof(probe), "%s/dm/name", dir);
		if (read_line(probe, dm, sizeof(dm)) == 0 && dm[0])
			snprintf(name, namelen, "/dev/mapper/%s", dm);
		else
			snprintf(name, namelen, "/dev/%s", base_name(dir));
	}
	block_collect(&c, dir, 0);
	return (int)c.n;
}

/* A network interface: its lower devices (bridge, bond, vlan), else PCI. */
static void net_collect(struct collect *c, const char *devpath, unsigned depth)
{
	char virt[PATH_MAX + 16];

	if (depth > POLICY_MAX_DEPTH)
		return;
	snprintf(virt, sizeof(virt), "%s/virtual", c->devices);
	if (under(devpath, virt) || !under(devpath, c->devices)) {
		foreach_link(c, devpath, "lower_", depth, net_collect);
		return;
	}
	pci_walk_up(c, devpath, depth);
}

int policy_net_pci(const char *sys, const char *ifname, struct pci_addr *out,
		   unsigned max)
{
	char path[PATH_MAX], dir[PATH_MAX];
	struct collect c;
	int r;

	if (!ifname[0] || strchr(ifname, '/') || !strcmp(ifname, ".") ||
	    !strcmp(ifname, ".."))
		return -EINVAL;
	r = collect_init(&c, sys, out, max);
	if (r < 0)
		return r;
	if ((size_t)snprintf(path, sizeof(path), "%s/class/net/%s", sys, ifname) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if (!realpath(path, dir))
		return -errno;
	net_collect(&c, dir, 0);
	return (int)c.n;
}

static unsigned iface_add(char (*out)[32], unsigned n, unsigned max,
			  const char *ifname)
{
	if (!strcmp(ifname, "lo") || strlen(ifname) >= 32)
		return n;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(out[i], ifname))
			return n;
	if (n < max)
		snprintf(out[n++], 32, "%s", ifname);
	return n;
}

unsigned policy_default_route_ifaces(const char *proc, char (*out)[32],
				     unsigned max)
{
	char path[PATH_MAX], line[512];
	unsigned n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/net/route", proc);
	f = fopen(path, "re");
	if (f) {
		/* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
		while (fgets(line, sizeof(line), f)) {
			char ifname[32];
			unsigned long dest, gw, mask;
			unsigned flags;

			if (sscanf(line, "%31s %lx %lx %x %*d %*d %*d %lx", ifname,
				   &dest, &gw, &flags, &mask) != 5)
				continue; /* the header */
			if (dest == 0 && mask == 0 && (flags & RTF_UP) &&
			    !(flags & RTF_REJECT))
				n = iface_add(out, n, max, ifname);
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/net/ipv6_route", proc);
	f = fopen(path, "re");
	if (f) {
		/* dest plen src plen nexthop metric refcnt use flags iface */
		while (fgets(line, sizeof(line), f)) {
			char dest[40], ifname[32];
			unsigned plen, flags;

			if (sscanf(line, "%39s %x %*s %*x %*s %*x %*x %*x %x %31s", dest,
				   &plen, &flags, ifname) != 4)
				continue;
			if (strspn(dest, "0") == 32 && plen == 0 && (flags & RTF_UP) &&
			    !(flags & RTF_REJECT))
				n = iface_add(out, n, max, ifname);
		}
		fclose(f);
	}
	return n;
}

/* The mount source of @root in mountinfo (the last, topmost, mount). */
static int mount_source(const struct policy_paths *p, char *src, size_t len)
{
	char path[PATH_MAX], line[4096];
	_cleanup_fclose_ FILE *f = NULL;
	int r = -ENODEV;

	snprintf(path, sizeof(path), "%s/self/mountinfo", p->proc);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* id parent maj:min root mountpoint options [optional...] - type source super */
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], source[PATH_MAX];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*u %*u %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%*s %4095s", source) != 1)
			continue;
		if (!strcmp(mnt, p->root)) {
			snprintf(src, len, "%s", source);
			r = 0;
		}
	}
	return r;
}

int policy_root_dev(const struct policy_paths *p, unsigned *maj,
		    unsigned *min)
{
	char src[PATH_MAX], path[PATH_MAX + 32], val[32];
	struct stat st;
	int r;

	if (stat(p->root, &st) < 0)
		return -errno;
	if (major(st.st_dev) != 0) {
		*maj = major(st.st_dev);
		*min = minor(st.st_dev);
		return 0;
	}
	/* an anonymous device (btrfs, overlayfs, ...): ask mountinfo */
	r = mount_source(p, src, sizeof(src));
	if (r < 0)
		return r;
	if (strncmp(src, "/dev/", 5) != 0)
		return -ENODEV;
	snprintf(path, sizeof(path), "%s/class/block/%s/dev", p->sys, base_name(src));
	if (read_line(path, val, sizeof(val)) == 0 &&
	    sscanf(val, "%u:%u", maj, min) == 2)
		return 0;
	if (stat(src, &st) == 0 && S_ISBLK(st.st_mode)) {
		*maj = major(st.st_rdev);
		*min = minor(st.st_rdev);
		return 0;
	}
	return -ENODEV;
}

static void entry_add(struct policy *out, const struct pci_addr *a,
		      const char *reason)
{
	for (unsigned i = 0; i < out->n; i++)
		if (addr_eq(&out->entries[i].addr, a))
			return; /* the first reason wins */
	if (out->n == POLICY_MAX_ENTRIES)
		return;
	out->entries[out->n].addr = *a;
	snprintf(out->entries[out->n].reason, POLICY_REASON_MAX, "%s", reason);
	out->n++;
}

void policy_scan(const struct policy_paths *p, struct policy *out)
{
	struct pci_addr addrs[POLICY_MAX_ENTRIES];
	char ifaces[8][32];
	char name[96], reason[POLICY_REASON_MAX];
	unsigned maj, min, nif;
	int n;

	out->n = 0;
	if (policy_root_dev(p, &maj, &min) == 0) {
		n = policy_block_pci(p->sys, maj, min, addrs, ARRAY_SIZE(addrs), name,
				     sizeof(name));
		snprintf(reason, sizeof(reason), "holds the root file system (%.90s)",
			 name);
		for (int i = 0; i < n; i++)
			entry_add(out, &addrs[i], reason);
	}
	nif = policy_default_route_ifaces(p->proc, ifaces, ARRAY_SIZE(ifaces));
	for (unsigned j = 0; j < nif; j++) {
		n = policy_net_pci(p->sys, ifaces[j], addrs, ARRAY_SIZE(addrs));
		snprintf(reason, sizeof(reason), "carries the default route (%.31s)",
			 ifaces[j]);
		for (int i = 0; i < n; i++)
			entry_add(out, &addrs[i], reason);
	}
}

void policy_apply(const struct policy *p, struct cfg_device *dev)
{
	for (unsigned i = 0; p && i < p->n; i++) {
		if (addr_eq(&p->entries[i].addr, &dev->addr)) {
			snprintf(dev->deny_reason, sizeof(dev->deny_reason), "%s",
				 p->entries[i].reason);
			return;
		}
	}
	if ((dev->class >> 16) == 0x06)
		snprintf(dev->deny_reason, sizeof(dev->deny_reason),
			 "is a bridge (class 0x%06x)", dev->class);
}
