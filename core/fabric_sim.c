// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fabric_sim.c - the sim fabric back-end: NTB hardware kept in files.
 *
 * fabric_sim.h describes the run directory and the translation rules.
 * Register files are fixed-size binary records mapped shared.  A writer
 * (the daemon) holds an exclusive flock() on a host's file while it
 * changes registers; a reader (lendfs-dma) holds a shared one while it
 * copies them, so nobody sees a half-written entry.  The counters are
 * bumped with atomic adds and no lock.  Inside one process a mutex
 * serialises the users of one handle (the daemon calls from several
 * threads).
 *
 * Scale: a cluster may hold 100,000 devices, so attaching one costs no
 * system call.  The device records live in one table file (devices.tab)
 * that the daemon maps and fills in place, each record guarded by a
 * sequence count (odd while it changes) that readers check around their
 * copy; an index in memory finds a record by id, and the BAR overlap
 * check scans the lender's devices only when the new BARs do not all lie
 * above its others (the engine allocates them upward).  A BAR's backing
 * file is created by the first access that reaches it, not at attach.
 */
#include "bname.h"
#include "fabric_sim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "config.h"
#include "fabric.h"
#include "hashmap.h"
#include "ntb.h"
#include "util.h"
#include "window.h"

#define SIM_HW_MAGIC 0x5748534cu  /* "LSHW" */
#define SIM_DEV_MAGIC 0x5645444cu /* "LDEV" */
#define SIM_HW_VERSION 4u
#define SIM_TAB_MAGIC 0x4241544cu /* "LTAB" */
#define SIM_TAB_FILE "devices.tab"
#define SIM_DEV_MAX (1u << 22)	 /* records a table can ever hold */
#define SIM_TAB_MIN 256u	 /* records of a new table */
#define SIM_SEQ_TRIES 100000u /* a record that never settles is skipped */
#define SIM_OWNER_MAX 136 /* WINDOW_NEXT_MAX rounded up to 8 */
#define SIM_MAX_LUT_ENTRIES 65536u
#define SIM_MAX_DMA_WINDOWS 1024u
#define SIM_PATH_MAX (DEVICE_ID_MAX + SIM_OWNER_MAX + 32)

_Static_assert(SIM_OWNER_MAX >= WINDOW_NEXT_MAX, "owner field too small");

enum {
	SIM_HOST_IOMMU = 1u << 0,
	SIM_HOST_VM = 1u << 1, /* a VM's address space: RAM only */
};

/* One LUT entry or DMA window, as the adapter holds it. */
struct sim_slot {
	uint32_t valid;
	uint32_t pad;
	uint64_t target;
	uint64_t size;
	char next[SIM_OWNER_MAX];
};

/* One IOMMU mapping, in the domain of one device. */
struct sim_map {
	uint32_t valid;
	uint32_t pad;
	uint64_t iova;
	uint64_t size;
	uint64_t phys;
	char domain[WINDOW_DOMAIN_MAX];
};

/* RUN/hosts/OWNER.hw: this header, then the LUT, DMA and IOMMU tables. */
struct sim_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t file_size;
	char owner[SIM_OWNER_MAX];
	char adapter[32];
	uint32_t flags;
	uint32_t nentries;
	uint32_t ndma;
	uint32_t nmaps; /* IOMMU mapping capacity */
	uint64_t window_max;
	uint64_t window_align;
	uint64_t lut_off;
	uint64_t dma_off;
	uint64_t map_off;
	uint32_t nram;
	/*
	 * One past the highest IOMMU slot in use: the slots at and above it
	 * are empty, so a lookup scans [0, maps_top) instead of all nmaps
	 * (4096 slots of 128 bytes: half a MiB per mapping otherwise).
	 * Changed under the exclusive lock, read under the shared one.
	 */
	uint32_t maps_top;
	struct range ram[CONFIG_MAX_RAM_RANGES];
	uint64_t iommu_faults; /* atomic */
	uint64_t bad_accesses; /* atomic */
};

/* RUN/devices.tab: this header, then struct sim_dev records. */
struct sim_tab_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t rec_size;
	uint32_t pad;
};

/* One record of RUN/devices.tab; magic is SIM_DEV_MAGIC while attached. */
struct sim_dev {
	uint32_t magic;
	uint32_t seq; /* odd while the daemon changes the record */
	char devid[DEVICE_ID_MAX];
	char lender[HOST_NAME_MAX_LEN + 1];
	uint64_t bar_size[PCI_NUM_BARS];
	uint64_t bar_addr[PCI_NUM_BARS];
};

/* One mapped register file. */
struct sim_host {
	char owner[SIM_OWNER_MAX];
	uint64_t bar_end; /* above every BAR this handle attached */
	int fd;
	dev_t dev;
	ino_t ino;
	struct sim_hdr *hdr;
	size_t size;
};

struct sim_hw {
	pthread_mutex_t lock;
	int dirfd; /* the run directory */
	char run_dir[PATH_MAX];
	struct sim_host **hosts;
	unsigned nhosts;
	/* the daemon's side of devices.tab (sim_open only) */
	int tab_fd;
	struct sim_tab_hdr *tab; /* address space for SIM_DEV_MAX records */
	uint32_t tab_cap;	 /* records the file holds */
	uint32_t tab_used;	 /* records ever used (free ones below) */
	struct hashmap *tab_index; /* devid -> record + 1; keys in the map */
	uint32_t *tab_free;	 /* detached records, reused first */
	uint32_t tab_nfree;
};

/* Where an access lands: a RAM file or a BAR file, and how far. */
struct sim_target {
	bool bar;
	char name[SIM_OWNER_MAX]; /* RAM owner or device id */
	unsigned bar_index;
	uint64_t bar_size;
	uint64_t off;
	uint64_t len;
};

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_closedir_ _cleanup_(closedirp)

static void count_event(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* ---- names -------------------------------------------------------------- */

/*
 * "HOST" or "vm:HOST/VM".  Fills @host (HOST_NAME_MAX_LEN + 1 bytes) with
 * the host part when not NULL.
 */
static bool owner_parse(const char *s, char *host, bool *is_vm)
{
	struct bname b;

	if (bname_parse(s, &b) < 0)
		return false;
	if (host)
		memcpy(host, b.host, strlen(b.host) + 1);
	if (is_vm)
		*is_vm = b.vm;
	return true;
}

static bool owner_valid(const char *s)
{
	return owner_parse(s, NULL, NULL);
}

/* File name of an owner: "vm:HOST/VM" becomes "vm.HOST.VM". */
static void owner_file(const char *owner, char *buf, size_t len)
{
	size_t i;

	for (i = 0; owner[i] && i + 1 < len; i++)
		buf[i] = (owner[i] == ':' || owner[i] == '/') ? '.' : owner[i];
	buf[i] = '\0';
}

static void hw_path(const char *owner, char *buf, size_t len)
{
	char f[SIM_OWNER_MAX];

	owner_file(owner, f, sizeof(f));
	snprintf(buf, len, "hosts/%s.hw", f);
}

/* A device id is a directory name: no '/', no leading '.', printable. */
static bool devid_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n >= DEVICE_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (id[i] == '/' || (unsigned char)id[i] <= ' ' ||
		    (unsigned char)id[i] >= 127)
			return false;
	return true;
}

/* ---- register files ----------------------------------------------------- */

static size_t hw_layout(uint32_t nentries, uint32_t ndma, uint32_t nmaps,
			uint64_t *lut_off, uint64_t *dma_off, uint64_t *map_off)
{
	size_t off = sizeof(struct sim_hdr);

	*lut_off = off;
	off += (size_t)nentries * sizeof(struct sim_slot);
	*dma_off = off;
	off += (size_t)ndma * sizeof(struct sim_slot);
	*map_off = off;
	off += (size_t)nmaps * sizeof(struct sim_map);
	return off;
}

static struct sim_slot *hdr_lut(struct sim_hdr *hdr)
{
	return (struct sim_slot *)((char *)hdr + hdr->lut_off);
}

static struct sim_slot *hdr_dma(struct sim_hdr *hdr)
{
	return (struct sim_slot *)((char *)hdr + hdr->dma_off);
}

static struct sim_map *hdr_maps(struct sim_hdr *hdr)
{
	return (struct sim_map *)((char *)hdr + hdr->map_off);
}

/* Everything later code relies on, so a bad file cannot make us stray. */
static bool hdr_valid(const struct sim_hdr *hdr, size_t size,
		      const char *owner)
{
	uint64_t lut_off, dma_off, map_off;
	size_t want;

	if (hdr->magic != SIM_HW_MAGIC || hdr->version != SIM_HW_VERSION)
		return false;
	if (hdr->nentries > SIM_MAX_LUT_ENTRIES ||
	    hdr->ndma > SIM_MAX_DMA_WINDOWS || hdr->nmaps > SIM_IOMMU_MAX ||
	    hdr->maps_top > hdr->nmaps ||
	    hdr->nram > CONFIG_MAX_RAM_RANGES)
		return false;
	want = hw_layout(hdr->nentries, hdr->ndma, hdr->nmaps, &lut_off,
			 &dma_off, &map_off);
	if (hdr->file_size != size || want != size || hdr->lut_off != lut_off ||
	    hdr->dma_off != dma_off || hdr->map_off != map_off)
		return false;
	if (hdr->nentries && !is_power_of_2(hdr->window_max))
		return false;
	if (strnlen(hdr->owner, sizeof(hdr->owner)) >= sizeof(hdr->owner))
		return false;
	return strcmp(hdr->owner, owner) == 0;
}

static void host_unmap(struct sim_host *h)
{
	if (h->hdr)
		munmap(h->hdr, h->size);
	if (h->fd >= 0)
		close(h->fd);
	h->hdr = NULL;
	h->fd = -1;
}

/*
 * The mapped register file of @owner.  Files are replaced (not rewritten)
 * by a power-on, so a cached mapping is checked against the inode.
 */
static int host_get(struct sim_hw *hw, const char *owner, struct sim_host **out,
		    char *reason)
{
	char path[SIM_PATH_MAX];
	_cleanup_close_ int fd = -1;
	struct sim_host *h = NULL;
	struct stat st;
	void *map;

	if (!owner_valid(owner))
		return reason_set(reason, -EINVAL, "invalid host name '%s'",
				  owner ? owner : "");
	if (hw->tab) {
		/*
		 * The daemon's handle powered the hardware on itself: nobody
		 * else replaces its files, and a lend saves a stat per window.
		 */
		for (unsigned i = 0; i < hw->nhosts; i++) {
			if (hw->hosts[i]->hdr && !strcmp(hw->hosts[i]->owner, owner)) {
				*out = hw->hosts[i];
				return 0;
			}
		}
	}
	hw_path(owner, path, sizeof(path));
	if (fstatat(hw->dirfd, path, &st, 0) < 0) {
		if (errno == ENOENT)
			return reason_set(reason, -ENOENT,
					  "no host %s in the sim fabric", owner);
		return reason_set(reason, -errno, "cannot stat %s/%s: %s",
				  hw->run_dir, path, strerror(errno));
	}
	for (unsigned i = 0; i < hw->nhosts; i++) {
		if (strcmp(hw->hosts[i]->owner, owner) == 0) {
			h = hw->hosts[i];
			break;
		}
	}
	if (h && h->hdr && h->dev == st.st_dev && h->ino == st.st_ino) {
		*out = h;
		return 0;
	}

	fd = openat(hw->dirfd, path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return reason_set(reason, -errno, "cannot open %s/%s: %s",
				  hw->run_dir, path, strerror(errno));
	if ((size_t)st.st_size < sizeof(struct sim_hdr))
		return reason_set(reason, -EPROTO, "%s/%s is not a register file",
				  hw->run_dir, path);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (map == MAP_FAILED)
		return reason_set(reason, -errno, "cannot map %s/%s: %s",
				  hw->run_dir, path, strerror(errno));
	if (!hdr_valid(map, (size_t)st.st_size, owner)) {
		munmap(map, (size_t)st.st_size);
		return reason_set(reason, -EPROTO,
				  "%s/%s is corrupt or of another version",
				  hw->run_dir, path);
	}
	if (!h) {
		struct sim_host **v = realloc(hw->hosts,
					      (hw->nhosts + 1) * sizeof(*v));

		if (!v || !(h = calloc(1, sizeof(*h)))) {
			if (v)
				hw->hosts = v;
			munmap(map, (size_t)st.st_size);
			return reason_set(reason, -ENOMEM, "out of memory");
		}
		hw->hosts = v;
		hw->hosts[hw->nhosts++] = h;
		snprintf(h->owner, sizeof(h->owner), "%s", owner);
		h->fd = -1;
	} else {
		host_unmap(h);
	}
	h->hdr = map;
	h->size = (size_t)st.st_size;
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	h->fd = fd;
	fd = -1;
	*out = h;
	return 0;
}

static int host_lock(struct sim_host *h, bool exclusive, char *reason)
{
	while (flock(h->fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR)
			return reason_set(reason, -errno,
					  "cannot lock the registers of %s: %s",
					  h->owner, strerror(errno));
	}
	return 0;
}

static void host_unlock(struct sim_host *h)
{
	(void)flock(h->fd, LOCK_UN);
}

/* Create a fresh register file for @owner; @ch is NULL for a VM. */
static int hw_create(struct sim_hw *hw, const char *owner,
		     const struct cfg_host *ch, char *reason)
{
	char path[SIM_PATH_MAX], tmp[SIM_PATH_MAX], f[SIM_OWNER_MAX];
	_cleanup_close_ int fd = -1;
	struct sim_hdr hdr = { 0 };
	size_t size;

	hdr.magic = SIM_HW_MAGIC;
	hdr.version = SIM_HW_VERSION;
	snprintf(hdr.owner, sizeof(hdr.owner), "%s", owner);
	if (ch) {
		snprintf(hdr.adapter, sizeof(hdr.adapter), "%s", ch->adapter);
		hdr.flags = ch->iommu ? SIM_HOST_IOMMU : 0;
		hdr.nentries = ch->lut_entries;
		hdr.ndma = ch->dma_windows;
		hdr.nmaps = SIM_IOMMU_MAX;
		hdr.window_max = ch->window_max;
		hdr.window_align = ch->window_align;
	} else {
		hdr.flags = SIM_HOST_VM;
	}
	size = hw_layout(hdr.nentries, hdr.ndma, hdr.nmaps, &hdr.lut_off,
			 &hdr.dma_off, &hdr.map_off);
	hdr.file_size = size;

	hw_path(owner, path, sizeof(path));
	owner_file(owner, f, sizeof(f));
	snprintf(tmp, sizeof(tmp), "hosts/.%s.hw.tmp", f);
	fd = openat(hw->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);
	if (fd < 0)
		return reason_set(reason, -errno, "cannot create %s/%s: %s",
				  hw->run_dir, tmp, strerror(errno));
	errno = 0;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    pwrite(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    renameat(hw->dirfd, tmp, hw->dirfd, path) < 0) {
		int r = errno ? -errno : -EIO;

		unlinkat(hw->dirfd, tmp, 0);
		return reason_set(reason, r, "cannot write %s/%s: %s",
				  hw->run_dir, path, strerror(-r));
	}
	return 0;
}

/* ---- device records ----------------------------------------------------- */

/* Copy record @src as it stands between two changes; false if unused. */
static bool rec_copy(const struct sim_dev *src, struct sim_dev *out)
{
	for (unsigned tries = 0; tries < SIM_SEQ_TRIES; tries++) {
		uint32_t s1 = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);

		if (s1 & 1)
			continue;
		memcpy(out, src, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&src->seq, __ATOMIC_RELAXED) != s1)
			continue;
		return out->magic == SIM_DEV_MAGIC &&
		       strnlen(out->devid, sizeof(out->devid)) < sizeof(out->devid) &&
		       strnlen(out->lender, sizeof(out->lender)) < sizeof(out->lender);
	}
	return false;
}

/*
 * Call @fn for every device lent by @lender (every device when NULL), as
 * devices.tab holds them now, until it returns nonzero; returns that
 * value.  Records being changed are skipped: that device is not there yet
 * (or any more).
 */
static int dev_foreach(struct sim_hw *hw, const char *lender,
		       int (*fn)(const struct sim_dev *d, void *arg), void *arg)
{
	_cleanup_close_ int fd = -1;
	const struct sim_tab_hdr *tab;
	const struct sim_dev *recs;
	struct stat st;
	size_t n;
	void *map;
	int r = 0;

	fd = openat(hw->dirfd, SIM_TAB_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size < sizeof(*tab))
		return 0; /* being created */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	tab = map;
	if (tab->magic != SIM_TAB_MAGIC || tab->version != SIM_HW_VERSION ||
	    tab->rec_size != sizeof(struct sim_dev)) {
		munmap(map, (size_t)st.st_size);
		return -EPROTO;
	}
	recs = (const struct sim_dev *)(tab + 1);
	n = ((size_t)st.st_size - sizeof(*tab)) / sizeof(*recs);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct sim_dev d;

		if (!rec_copy(&recs[i], &d))
			continue;
		if (lender && strcmp(d.lender, lender) != 0)
			continue;
		r = fn(&d, arg);
	}
	munmap(map, (size_t)st.st_size);
	return r;
}

struct dev_find {
	const char *devid;
	struct sim_dev *out;
};

static int dev_match(const struct sim_dev *d, void *arg)
{
	struct dev_find *f = arg;

	if (strcmp(d->devid, f->devid) != 0)
		return 0;
	*f->out = *d;
	return 1;
}

static int dev_read(struct sim_hw *hw, const char *devid, struct sim_dev *d,
		    char *reason)
{
	struct dev_find f = { devid, d };
	int r;

	if (!devid_valid(devid))
		return reason_set(reason, -EINVAL, "invalid device id '%s'",
				  devid ? devid : "");
	r = dev_foreach(hw, NULL, dev_match, &f);
	if (r == 0)
		return reason_set(reason, -ENOENT,
				  "no device %s in the sim fabric", devid);
	if (r < 0)
		return reason_set(reason, r, "cannot read %s/%s: %s",
				  hw->run_dir, SIM_TAB_FILE, strerror(-r));
	return 0;
}

struct bar_lookup {
	uint64_t addr;
	struct sim_target *t;
	uint64_t avail;
};

static int bar_match(const struct sim_dev *d, void *arg)
{
	struct bar_lookup *l = arg;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (!d->bar_size[i] || l->addr < d->bar_addr[i] ||
		    l->addr - d->bar_addr[i] >= d->bar_size[i])
			continue;
		l->t->bar = true;
		snprintf(l->t->name, sizeof(l->t->name), "%s", d->devid);
		l->t->bar_index = i;
		l->t->bar_size = d->bar_size[i];
		l->t->off = l->addr - d->bar_addr[i];
		l->avail = d->bar_size[i] - l->t->off;
		return 1;
	}
	return 0;
}

/* ---- translation -------------------------------------------------------- */

/* Clamp *len to what one RAM range holds from @a; true if @a is RAM. */
static int lookup_ram(struct sim_host *h, uint64_t a, uint64_t *len,
		      char *reason)
{
	int r = host_lock(h, false, reason);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < h->hdr->nram && i < CONFIG_MAX_RAM_RANGES; i++) {
		struct range g = h->hdr->ram[i];

		if (a < g.start || a > g.end)
			continue;
		if (*len - 1 > g.end - a)
			*len = g.end - a + 1;
		r = 1;
		break;
	}
	host_unlock(h);
	return r;
}

/* The LUT entry or DMA window of @h's adapter that @a falls in. */
static int lookup_window(struct sim_host *h, uint64_t a, struct sim_slot *out,
			 uint64_t *off, char *reason)
{
	struct sim_hdr *hdr = h->hdr;
	const struct sim_slot *s = NULL;
	int r = host_lock(h, false, reason);

	if (r < 0)
		return r;
	if (hdr->nentries && a >= NTB_APERTURE_BASE &&
	    (a - NTB_APERTURE_BASE) / hdr->window_max < hdr->nentries) {
		s = &hdr_lut(hdr)[(a - NTB_APERTURE_BASE) / hdr->window_max];
		*off = (a - NTB_APERTURE_BASE) % hdr->window_max;
	} else if (hdr->ndma && a >= NTB_DMA_BASE &&
		   (a - NTB_DMA_BASE) / NTB_DMA_SLOT < hdr->ndma) {
		s = &hdr_dma(hdr)[(a - NTB_DMA_BASE) / NTB_DMA_SLOT];
		*off = (a - NTB_DMA_BASE) % NTB_DMA_SLOT;
	}
	if (s)
		*out = *s;
	host_unlock(h);
	if (!s || !out->valid || *off >= out->size ||
	    out->target > UINT64_MAX - (out->size - 1))
		return 0;
	out->next[sizeof(out->next) - 1] = '\0';
	return 1;
}

/*
 * Resolve a CPU access by @owner at @addr, hop by hop, to a file; t->len
 * is how much of @len is contiguous there.  A failure counts a bad access
 * on the host where it ended, unless @quiet (a register walk only looks).
 */
static int resolve_path(struct sim_hw *hw, const char *owner, uint64_t addr,
			uint64_t len, bool quiet, struct sim_target *t,
			char *reason)
{
	char cur[SIM_OWNER_MAX];
	uint64_t a = addr;

	if (!owner_valid(owner))
		return reason_set(reason, -ENOENT, "invalid host name '%s'",
				  owner ? owner : "");
	snprintf(cur, sizeof(cur), "%s", owner);
	for (unsigned hop = 0; hop < SIM_MAX_HOPS; hop++) {
		struct bar_lookup bl = { .addr = a, .t = t };
		struct sim_host *h;
		struct sim_slot s;
		uint64_t off = 0;
		int r;

		r = host_get(hw, cur, &h, reason);
		if (r < 0 && hop > 0)
			return reason_set(reason, -EFAULT,
					  "0x%" PRIx64 " on host %s leads to %s, "
					  "which is not in the sim fabric",
					  addr, owner, cur);
		if (r < 0)
			return r;
		r = lookup_ram(h, a, &len, reason);
		if (r < 0)
			return r;
		if (r) {
			t->bar = false;
			snprintf(t->name, sizeof(t->name), "%s", cur);
			t->off = a;
			t->len = len;
			return 0;
		}
		r = dev_foreach(hw, cur, bar_match, &bl);
		if (r < 0)
			return reason_set(reason, r,
					  "cannot list the devices of %s: %s",
					  hw->run_dir, strerror(-r));
		if (r) {
			t->len = MIN(len, bl.avail);
			return 0;
		}
		r = lookup_window(h, a, &s, &off, reason);
		if (r < 0)
			return r;
		if (r) {
			snprintf(cur, sizeof(cur), "%s", s.next);
			a = s.target + off;
			len = MIN(len, s.size - off);
			continue;
		}
		if (!quiet)
			count_event(&h->hdr->bad_accesses);
		if (hop == 0)
			return reason_set(reason, -EFAULT,
					  "unmapped address 0x%" PRIx64
					  " on host %s", a, cur);
		return reason_set(reason, -EFAULT,
				  "unmapped address 0x%" PRIx64 " on host %s "
				  "(reached from 0x%" PRIx64 " on host %s)",
				  a, cur, addr, owner);
	}
	return reason_set(reason, -ELOOP,
			  "0x%" PRIx64 " on host %s: translation loops "
			  "(more than %u hops)", addr, owner, SIM_MAX_HOPS);
}

static int resolve_cpu(struct sim_hw *hw, const char *owner, uint64_t addr,
		       uint64_t len, struct sim_target *t, char *reason)
{
	return resolve_path(hw, owner, addr, len, false, t, reason);
}

/* Device DMA: through the lender's IOMMU, then as the lender's CPU would. */
static int resolve_dma(struct sim_hw *hw, const char *devid, uint64_t addr,
		       uint64_t len, struct sim_target *t, char *reason)
{
	struct sim_dev d;
	struct sim_host *h;
	uint64_t phys = addr;
	bool found = false;
	int r;

	r = dev_read(hw, devid, &d, reason);
	if (r < 0)
		return r;
	r = host_get(hw, d.lender, &h, reason);
	if (r < 0)
		return r;
	if (h->hdr->flags & SIM_HOST_IOMMU) {
		const struct sim_map *maps = hdr_maps(h->hdr);

		r = host_lock(h, false, reason);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < h->hdr->maps_top; i++) {
			struct sim_map m = maps[i];

			if (!m.valid || addr < m.iova || addr - m.iova >= m.size ||
			    strncmp(m.domain, devid, sizeof(m.domain)) != 0)
				continue;
			phys = m.phys + (addr - m.iova);
			len = MIN(len, m.size - (addr - m.iova));
			found = true;
			break;
		}
		host_unlock(h);
		if (!found) {
			count_event(&h->hdr->iommu_faults);
			return reason_set(reason, -EFAULT,
					  "iommu fault on host %s: dma by %s to "
					  "0x%" PRIx64 " is outside its mappings",
					  d.lender, devid, addr);
		}
	}
	return resolve_cpu(hw, d.lender, phys, len, t, reason);
}

/*
 * The backing file of a BAR, created (exactly the BAR's size, zeroed) by
 * the first write that reaches it.  Returns the fd or -errno.
 */
static int bar_create(struct sim_hw *hw, const struct sim_target *t,
		      const char *path, char *reason)
{
	char dir[SIM_PATH_MAX];
	struct stat st;
	int fd;

	snprintf(dir, sizeof(dir), "devices/%s", t->name);
	if (mkdirat(hw->dirfd, dir, 0755) < 0 && errno != EEXIST)
		return reason_set(reason, -errno, "cannot create %s/%s: %s",
				  hw->run_dir, dir, strerror(errno));
	fd = openat(hw->dirfd, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return reason_set(reason, -errno, "cannot open %s/%s: %s",
				  hw->run_dir, path, strerror(errno));
	if (fstat(fd, &st) < 0 ||
	    ((uint64_t)st.st_size < t->bar_size &&
	     ftruncate(fd, (off_t)t->bar_size) < 0)) {
		int r = -errno;

		close(fd);
		return reason_set(reason, r, "cannot size %s/%s to 0x%" PRIx64
				  " bytes: %s", hw->run_dir, path, t->bar_size,
				  strerror(-r));
	}
	return fd;
}

static int target_io(struct sim_hw *hw, const struct sim_target *t, char *buf,
		     bool write, char *reason)
{
	char path[SIM_PATH_MAX], f[SIM_OWNER_MAX];
	_cleanup_close_ int fd = -1;
	uint64_t done = 0;

	if (t->bar) {
		snprintf(path, sizeof(path), "devices/%s/bar%u", t->name,
			 t->bar_index);
	} else {
		owner_file(t->name, f, sizeof(f));
		snprintf(path, sizeof(path), "ram/%s", f);
	}
	if (t->off > (uint64_t)INT64_MAX - t->len)
		return reason_set(reason, -EFBIG, "offset 0x%" PRIx64
				  " of %s/%s is too large", t->off,
				  hw->run_dir, path);
	if (t->bar && write) {
		fd = bar_create(hw, t, path, reason);
		if (fd < 0)
			return fd;
	} else {
		fd = openat(hw->dirfd, path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd < 0 && t->bar && errno == ENOENT) {
			memset(buf, 0, t->len); /* never written: zeros */
			return 0;
		}
		if (fd < 0)
			return reason_set(reason, -errno, "cannot open %s/%s: %s",
					  hw->run_dir, path, strerror(errno));
	}
	while (done < t->len) {
		off_t pos = (off_t)(t->off + done);
		ssize_t n = write ? pwrite(fd, buf + done, t->len - done, pos)
				  : pread(fd, buf + done, t->len - done, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return reason_set(reason, -errno, "cannot %s %s/%s: %s",
					  write ? "write" : "read", hw->run_dir,
					  path, strerror(errno));
		if (n == 0 && write)
			return reason_set(reason, -EIO, "cannot write %s/%s",
					  hw->run_dir, path);
		if (n == 0) { /* beyond the end of a shrunk file: zeros */
			memset(buf + done, 0, t->len - done);
			break;
		}
		done += (uint64_t)n;
	}
	return 0;
}

typedef int (*resolve_fn)(struct sim_hw *hw, const char *who, uint64_t addr,
			  uint64_t len, struct sim_target *t, char *reason);

/* Resolve the whole access first, then move the bytes. */
static int access_locked(struct sim_hw *hw, resolve_fn resolve, const char *who,
			 uint64_t addr, char *buf, size_t len, bool write,
			 char *reason)
{
	for (int pass = 0; pass < 2; pass++) {
		struct sim_target t;

		for (size_t done = 0; done < len; done += t.len) {
			int r = resolve(hw, who, addr + done, len - done, &t,
					reason);

			if (r < 0)
				return r;
			if (pass == 1) {
				r = target_io(hw, &t, buf + done, write, reason);
				if (r < 0)
					return r;
			}
		}
	}
	return (int)len;
}

static int access_run(struct sim_hw *hw, resolve_fn resolve, const char *who,
		      uint64_t addr, void *buf, size_t len, bool write,
		      char *reason)
{
	int r;

	if (!hw || !who || (!buf && len))
		return reason_set(reason, -EINVAL, "invalid access");
	if (len > SIM_ACCESS_MAX)
		return reason_set(reason, -EINVAL,
				  "access of %zu bytes is too large (at most %u)",
				  len, SIM_ACCESS_MAX);
	if (len && addr > UINT64_MAX - (len - 1))
		return reason_set(reason, -EFAULT,
				  "access of %zu bytes at 0x%" PRIx64
				  " wraps around the address space", len, addr);
	pthread_mutex_lock(&hw->lock);
	r = access_locked(hw, resolve, who, addr, buf, len, write, reason);
	pthread_mutex_unlock(&hw->lock);
	return r;
}

int sim_cpu_access(struct sim_hw *hw, const char *host, uint64_t addr,
		   void *buf, size_t len, bool write, char *reason)
{
	return access_run(hw, resolve_cpu, host, addr, buf, len, write, reason);
}

int sim_dma_access(struct sim_hw *hw, const char *devid, uint64_t addr,
		   void *buf, size_t len, bool write, char *reason)
{
	return access_run(hw, resolve_dma, devid, addr, buf, len, write, reason);
}

/* ---- the daemon's device table ----------------------------------------- */

static size_t tab_bytes(uint32_t records)
{
	return sizeof(struct sim_tab_hdr) + (size_t)records * sizeof(struct sim_dev);
}

static struct sim_dev *tab_rec(struct sim_hw *hw, uint32_t i)
{
	return (struct sim_dev *)(hw->tab + 1) + i;
}

static void tab_close(struct sim_hw *hw)
{
	if (hw->tab)
		munmap(hw->tab, tab_bytes(SIM_DEV_MAX));
	if (hw->tab_fd >= 0)
		close(hw->tab_fd);
	hashmap_free(hw->tab_index);
	free(hw->tab_free);
	hw->tab = NULL;
	hw->tab_fd = -1;
	hw->tab_index = NULL;
	hw->tab_free = NULL;
}

/* Power-on: a new, empty devices.tab, mapped for writing. */
static int tab_create(struct sim_hw *hw, char *reason)
{
	struct sim_tab_hdr hdr = { SIM_TAB_MAGIC, SIM_HW_VERSION,
				   sizeof(struct sim_dev), 0 };
	void *p;

	hw->tab_index = hashmap_new(SIM_TAB_MIN);
	if (!hw->tab_index)
		return reason_set(reason, -ENOMEM, "out of memory");
	/* a new file: a reader may still map the old one */
	if (unlinkat(hw->dirfd, SIM_TAB_FILE, 0) < 0 && errno != ENOENT)
		return reason_set(reason, -errno, "cannot remove %s/%s: %s",
				  hw->run_dir, SIM_TAB_FILE, strerror(errno));
	errno = 0;
	hw->tab_fd = openat(hw->dirfd, SIM_TAB_FILE,
			    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (hw->tab_fd < 0 || ftruncate(hw->tab_fd, (off_t)tab_bytes(SIM_TAB_MIN)) < 0 ||
	    pwrite(hw->tab_fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return reason_set(reason, errno ? -errno : -EIO,
				  "cannot create %s/%s: %s", hw->run_dir,
				  SIM_TAB_FILE, strerror(errno ? errno : EIO));
	/*
	 * Mapped once for the most records it can ever hold: growing the
	 * file does not move (or re-fault) the map, and the index keeps
	 * pointers into it.  Only records below tab_cap (inside the file)
	 * are ever touched.
	 */
	p = mmap(NULL, tab_bytes(SIM_DEV_MAX), PROT_READ | PROT_WRITE, MAP_SHARED,
		 hw->tab_fd, 0);
	if (p == MAP_FAILED)
		return reason_set(reason, -errno, "cannot map %s/%s: %s",
				  hw->run_dir, SIM_TAB_FILE, strerror(errno));
	hw->tab = p;
	hw->tab_cap = SIM_TAB_MIN;
	return 0;
}

/* A record for a new device: a free one, or one more (growing the file). */
static int tab_alloc(struct sim_hw *hw, uint32_t *out, char *reason)
{
	uint32_t cap = hw->tab_cap;

	if (hw->tab_nfree) {
		*out = hw->tab_free[--hw->tab_nfree];
		return 0;
	}
	if (hw->tab_used == SIM_DEV_MAX)
		return reason_set(reason, -ENOSPC,
				  "the sim fabric holds at most %u devices",
				  SIM_DEV_MAX);
	if (hw->tab_used == cap) {
		cap = MIN(2 * cap, SIM_DEV_MAX);
		if (ftruncate(hw->tab_fd, (off_t)tab_bytes(cap)) < 0)
			return reason_set(reason, -errno, "cannot grow %s/%s: %s",
					  hw->run_dir, SIM_TAB_FILE,
					  strerror(errno));
		hw->tab_cap = cap;
	}
	*out = hw->tab_used++;
	return 0;
}

/* Change a record under its sequence count (readers retry meanwhile). */
static void tab_write(struct sim_dev *slot, const struct sim_dev *rec)
{
	uint32_t seq = slot->seq;

	__atomic_store_n(&slot->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	slot->magic = rec->magic;
	memcpy(slot->devid, rec->devid, sizeof(slot->devid));
	memcpy(slot->lender, rec->lender, sizeof(slot->lender));
	memcpy(slot->bar_size, rec->bar_size, sizeof(slot->bar_size));
	memcpy(slot->bar_addr, rec->bar_addr, sizeof(slot->bar_addr));
	__atomic_store_n(&slot->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Clear the record of @devid and keep it for the next device. */
static void tab_forget(struct sim_hw *hw, const char *devid)
{
	uintptr_t known = (uintptr_t)hashmap_get(hw->tab_index, devid);
	struct sim_dev none = { 0 };
	uint32_t slot;

	if (!known)
		return;
	slot = (uint32_t)(known - 1);
	hashmap_remove(hw->tab_index, devid); /* its key is in the record */
	tab_write(tab_rec(hw, slot), &none);
	if ((hw->tab_nfree & (hw->tab_nfree + 1)) == 0) {
		/* 0, 1, 3, 7, ...: full, double it */
		uint32_t *n = realloc(hw->tab_free,
				      2 * ((size_t)hw->tab_nfree + 1) * sizeof(*n));

		if (!n)
			return; /* the record is lost, not reused */
		hw->tab_free = n;
	}
	hw->tab_free[hw->tab_nfree++] = slot;
}

/* ---- handle ------------------------------------------------------------- */

static int hw_new(const char *run_dir, struct sim_hw **out, char *reason)
{
	_cleanup_free_ struct sim_hw *hw = NULL;

	if (!run_dir || !*run_dir)
		return reason_set(reason, -EINVAL, "no run directory given");
	if (strlen(run_dir) >= sizeof(hw->run_dir))
		return reason_set(reason, -ENAMETOOLONG,
				  "run directory name is too long");
	hw = calloc(1, sizeof(*hw));
	if (!hw)
		return reason_set(reason, -ENOMEM, "out of memory");
	hw->dirfd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (hw->dirfd < 0)
		return reason_set(reason, -errno, "cannot open run directory %s: %s",
				  run_dir, strerror(errno));
	snprintf(hw->run_dir, sizeof(hw->run_dir), "%s", run_dir);
	hw->tab_fd = -1;
	pthread_mutex_init(&hw->lock, NULL);
	*out = take_ptr(hw);
	return 0;
}

int sim_hw_open(const char *run_dir, struct sim_hw **out, char *reason)
{
	struct sim_hw *hw;
	struct stat st;
	int r;

	r = hw_new(run_dir, &hw, reason);
	if (r < 0)
		return r;
	if (fstatat(hw->dirfd, "hosts", &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
		sim_hw_close(hw);
		return reason_set(reason, -ENOENT,
				  "%s is not the run directory of a sim fabric "
				  "(no hosts/)", run_dir);
	}
	*out = hw;
	return 0;
}

void sim_hw_close(struct sim_hw *hw)
{
	if (!hw)
		return;
	for (unsigned i = 0; i < hw->nhosts; i++) {
		host_unmap(hw->hosts[i]);
		free(hw->hosts[i]);
	}
	free(hw->hosts);
	tab_close(hw);
	if (hw->dirfd >= 0)
		close(hw->dirfd);
	pthread_mutex_destroy(&hw->lock);
	free(hw);
}

/* ---- register walk ------------------------------------------------------ */

struct reg_vec {
	struct sim_reg *v;
	unsigned n, cap;
};

static int regs_push(struct reg_vec *c, enum window_kind kind,
		     const char *owner, uint32_t index, uint64_t local,
		     uint64_t size, uint64_t target, const char *next,
		     const char *domain)
{
	struct sim_reg *g;

	if (c->n == c->cap) {
		unsigned cap = c->cap ? 2 * c->cap : 16;
		struct sim_reg *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	g = &c->v[c->n++];
	memset(g, 0, sizeof(*g));
	g->w.kind = kind;
	snprintf(g->w.host, sizeof(g->w.host), "%s", owner);
	g->w.index = index;
	g->w.count = 1;
	g->w.local = local;
	g->w.size = size;
	g->w.target = target;
	snprintf(g->w.next, sizeof(g->w.next), "%.*s",
		 (int)sizeof(g->w.next) - 1, next);
	snprintf(g->w.domain, sizeof(g->w.domain), "%.*s",
		 (int)sizeof(g->w.domain) - 1, domain);
	return 0;
}

/* Copy the valid registers of @h, under its shared lock. */
static int regs_copy(struct sim_host *h, struct reg_vec *c, char *reason)
{
	const struct sim_hdr *hdr = h->hdr;
	const struct sim_slot *lut = hdr_lut(h->hdr), *dma = hdr_dma(h->hdr);
	const struct sim_map *maps = hdr_maps(h->hdr);
	int r = host_lock(h, false, reason);

	for (uint32_t i = 0; r == 0 && i < hdr->nentries; i++)
		if (lut[i].valid)
			r = regs_push(c, WIN_LUT, h->owner, i,
				      NTB_APERTURE_BASE + i * hdr->window_max,
				      lut[i].size, lut[i].target, lut[i].next, "");
	for (uint32_t i = 0; r == 0 && i < hdr->ndma; i++)
		if (dma[i].valid)
			r = regs_push(c, WIN_DMA, h->owner, i,
				      NTB_DMA_BASE + i * NTB_DMA_SLOT,
				      dma[i].size, dma[i].target, dma[i].next, "");
	for (uint32_t i = 0; r == 0 && i < hdr->maps_top && i < hdr->nmaps; i++)
		if (maps[i].valid)
			r = regs_push(c, WIN_IOMMU, h->owner, i, maps[i].iova,
				      maps[i].size, maps[i].phys, h->owner,
				      maps[i].domain);
	if (r == -ENOMEM)
		reason_set(reason, r, "out of memory");
	host_unlock(h);
	return r;
}

/* Where the first byte of @g's target ends up; never counts a bad access. */
static void regs_resolve(struct sim_hw *hw, struct sim_reg *g)
{
	const char *from = g->w.kind == WIN_IOMMU ? g->w.host : g->w.next;
	char why[REASON_MAX];
	struct sim_target t;

	g->dest_err = resolve_path(hw, from, g->w.target, 1, true, &t, why);
	if (g->dest_err == 0) {
		g->dest_bar = t.bar;
		snprintf(g->dest, sizeof(g->dest), "%.*s", SIM_OWNER_MAX - 1,
			 t.name);
	}
}

static int host_regs(struct sim_hw *hw, const char *owner, sim_reg_fn fn,
		     void *arg, char *reason)
{
	struct reg_vec c = { 0 };
	struct sim_host *h;
	int r;

	pthread_mutex_lock(&hw->lock);
	r = host_get(hw, owner, &h, reason);
	if (r == 0)
		r = regs_copy(h, &c, reason);
	for (unsigned i = 0; r == 0 && i < c.n; i++)
		regs_resolve(hw, &c.v[i]);
	pthread_mutex_unlock(&hw->lock);
	for (unsigned i = 0; r == 0 && i < c.n; i++)
		r = fn(arg, &c.v[i]);
	free(c.v);
	return r;
}

/* The owner named in the header of the register file @name, or false. */
static bool hw_file_owner(int dirfd, const char *name, char *owner, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct sim_hdr hdr;
	size_t n = strlen(name);

	if (name[0] == '.' || n < 4 || strcmp(name + n - 3, ".hw") != 0 ||
	    fd < 0 || pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    hdr.magic != SIM_HW_MAGIC ||
	    strnlen(hdr.owner, sizeof(hdr.owner)) >= sizeof(hdr.owner))
		return false;
	snprintf(owner, len, "%s", hdr.owner);
	return true;
}

int sim_hw_regs(struct sim_hw *hw, const char *host, sim_reg_fn fn, void *arg,
		char *reason)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd, r = 0;

	if (!hw || !fn)
		return reason_set(reason, -EINVAL, "invalid register walk");
	if (host)
		return host_regs(hw, host, fn, arg, reason);
	fd = openat(hw->dirfd, "hosts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return reason_set(reason, r, "cannot list %s/hosts: %s",
				  hw->run_dir, strerror(-r));
	}
	while (r == 0 && (de = readdir(dir))) {
		char owner[SIM_OWNER_MAX];

		if (hw_file_owner(dirfd(dir), de->d_name, owner, sizeof(owner)))
			r = host_regs(hw, owner, fn, arg, reason);
	}
	return r;
}

static int clear_slots(struct sim_host *h, struct sim_slot *slots,
		       uint32_t first, uint32_t count, const char *what,
		       char *reason);

int sim_hw_lose_lut(struct sim_hw *hw, const char *host, uint32_t index,
		    char *reason)
{
	struct sim_host *h;
	int r;

	if (!hw || !host)
		return reason_set(reason, -EINVAL, "invalid register");
	pthread_mutex_lock(&hw->lock);
	r = host_get(hw, host, &h, reason);
	if (r == 0 && index >= h->hdr->nentries)
		r = reason_set(reason, -ERANGE, "%s has %" PRIu32 " LUT entries",
			       host, h->hdr->nentries);
	if (r == 0)
		r = clear_slots(h, hdr_lut(h->hdr), index, 1, "LUT entry", reason);
	pthread_mutex_unlock(&hw->lock);
	return r;
}

/* ---- fabric_ops --------------------------------------------------------- */

/* Remove @name under @at: a file, or a directory and (depth) what it holds. */
static int remove_tree(int at, const char *name, unsigned depth)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd, r = 0;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if (depth == 0)
		return -ENOTEMPTY;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(dir))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = remove_tree(dirfd(dir), de->d_name, depth - 1);
	}
	if (r == 0 && unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

static int host_cfg_check(const struct cluster_config *cfg, unsigned i,
			  char *reason)
{
	const struct cfg_host *h = &cfg->hosts[i];

	if (!name_valid(h->name))
		return reason_set(reason, -EINVAL, "invalid host name '%s'",
				  h->name);
	for (unsigned j = 0; j < i; j++)
		if (strcmp(cfg->hosts[j].name, h->name) == 0)
			return reason_set(reason, -EINVAL,
					  "host %s is configured twice", h->name);
	if (h->lut_entries > SIM_MAX_LUT_ENTRIES)
		return reason_set(reason, -EINVAL,
				  "host %s: %" PRIu32 " lut entries are too many "
				  "for the sim fabric (at most %u)", h->name,
				  h->lut_entries, SIM_MAX_LUT_ENTRIES);
	if (h->dma_windows > SIM_MAX_DMA_WINDOWS)
		return reason_set(reason, -EINVAL,
				  "host %s: %" PRIu32 " dma windows are too many "
				  "for the sim fabric (at most %u)", h->name,
				  h->dma_windows, SIM_MAX_DMA_WINDOWS);
	if (!is_power_of_2(h->window_align))
		return reason_set(reason, -EINVAL,
				  "host %s: window_align 0x%" PRIx64
				  " is not a power of two", h->name,
				  h->window_align);
	if (!h->lut_entries)
		return 0;
	if (!is_power_of_2(h->window_max) || h->window_max < h->window_align)
		return reason_set(reason, -EINVAL,
				  "host %s: window_max 0x%" PRIx64 " is not a power "
				  "of two of at least window_align", h->name,
				  h->window_max);
	if (h->window_max > (NTB_DMA_BASE - NTB_APERTURE_BASE) / h->lut_entries)
		return reason_set(reason, -EINVAL,
				  "host %s: %" PRIu32 " lut entries of 0x%" PRIx64
				  " do not fit in the ntb aperture", h->name,
				  h->lut_entries, h->window_max);
	return 0;
}

/*
 * Power-on: the registers (hosts/) start empty, the hosts are created.
 * Memory is kept (issue 20): BAR files (devices/, checked at each device's
 * first attach, bars_keep()) and RAM files (ram/, re-attached by
 * ram_attach()) keep their bytes and their inodes, so a guest that maps a
 * BAR file across a daemon restart keeps seeing the fabric's writes.
 */
static int power_on(struct sim_hw *hw, const struct cluster_config *cfg,
		    char *reason)
{
	static const struct {
		const char *name;
		bool keep;
	} dirs[] = { { "devices", true }, { "hosts", false }, { "ram", true } };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		r = dirs[i].keep ? 0 : remove_tree(hw->dirfd, dirs[i].name, 1);
		if (r < 0)
			return reason_set(reason, r, "cannot clear %s/%s: %s",
					  hw->run_dir, dirs[i].name,
					  strerror(-r));
		if (mkdirat(hw->dirfd, dirs[i].name, 0755) < 0 &&
		    !(dirs[i].keep && errno == EEXIST))
			return reason_set(reason, -errno,
					  "cannot create %s/%s: %s", hw->run_dir,
					  dirs[i].name, strerror(errno));
	}
	for (unsigned i = 0; i < cfg->nhosts; i++) {
		r = hw_create(hw, cfg->hosts[i].name, &cfg->hosts[i], reason);
		if (r < 0)
			return r;
	}
	return 0;
}

static int sim_open(const struct cluster_config *cfg, const char *run_dir,
		    void **ctx, char *reason)
{
	struct sim_hw *hw;
	int r;

	if (!cfg || !run_dir || !*run_dir)
		return reason_set(reason, -EINVAL,
				  "the sim fabric needs a config and a run directory");
	for (unsigned i = 0; i < cfg->nhosts; i++) {
		r = host_cfg_check(cfg, i, reason);
		if (r < 0)
			return r;
	}
	r = mkdir_p(run_dir, 0755);
	if (r < 0)
		return reason_set(reason, r, "cannot create run directory %s: %s",
				  run_dir, strerror(-r));
	r = hw_new(run_dir, &hw, reason);
	if (r < 0)
		return r;
	r = power_on(hw, cfg, reason);
	if (r == 0)
		r = tab_create(hw, reason);
	if (r < 0) {
		sim_hw_close(hw);
		return r;
	}
	*ctx = hw;
	return 0;
}

static void sim_close(void *ctx)
{
	sim_hw_close(ctx);
}

/* A configured host (not a VM): lender of devices, owner of adapters. */
static int real_host_get(struct sim_hw *hw, const char *host,
			 struct sim_host **out, char *reason)
{
	int r;

	if (!host || !name_valid(host))
		return reason_set(reason, -EINVAL, "invalid host name '%s'",
				  host ? host : "");
	r = host_get(hw, host, out, reason);
	if (r == -ENOENT)
		return reason_set(reason, -EINVAL,
				  "no host %s in the sim fabric", host);
	return r;
}

struct overlap_check {
	const char *devid;
	const uint64_t *size;
	const uint64_t *addr;
	char *reason;
};

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int bar_overlap(const struct sim_dev *d, void *arg)
{
	struct overlap_check *c = arg;

	if (strcmp(d->devid, c->devid) == 0)
		return 0;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		for (unsigned j = 0; j < PCI_NUM_BARS; j++) {
			if (!c->size[i] || !d->bar_size[j] ||
			    !ranges_overlap(c->addr[i], c->size[i],
					    d->bar_addr[j], d->bar_size[j]))
				continue;
			return reason_set(c->reason, -EEXIST,
					  "bar%u of %s at 0x%" PRIx64
					  " overlaps bar%u of %s", i, c->devid,
					  c->addr[i], j, d->devid);
		}
	}
	return 0;
}

/* Remove the BAR files of @devid (a re-attached device starts zeroed). */
static void device_remove(struct sim_hw *hw, const char *devid)
{
	char path[SIM_PATH_MAX];

	snprintf(path, sizeof(path), "devices/%s", devid);
	remove_tree(hw->dirfd, path, 1);
}

/*
 * The first attach of @devid since power-on: BAR files a previous run left
 * are kept (a guest may map them, their bytes stay), unless the BAR's
 * size changed or it is gone: then the file goes and the BAR is fresh.
 */
static void bars_keep(struct sim_hw *hw, const char *devid, const uint64_t *size)
{
	char path[SIM_PATH_MAX];
	struct stat st;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		snprintf(path, sizeof(path), "devices/%s/bar%u", devid, i);
		if (fstatat(hw->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size[i]))
			unlinkat(hw->dirfd, path, 0);
	}
}

/* Does any BAR in @size/@addr overlap a BAR of another device of @host? */
static int overlap_check(struct sim_hw *hw, struct sim_host *h,
			 const char *devid, const uint64_t *size,
			 const uint64_t *addr, char *reason)
{
	struct overlap_check oc = { devid, size, addr, reason };
	bool above = true;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (size[i] && addr[i] < h->bar_end)
			above = false;
	if (above)
		return 0; /* the usual case: the engine allocates upward */
	for (uint32_t i = 0; i < hw->tab_used; i++) {
		const struct sim_dev *d = tab_rec(hw, i);
		int r;

		if (d->magic != SIM_DEV_MAGIC || strcmp(d->lender, h->owner) != 0)
			continue;
		r = bar_overlap(d, &oc);
		if (r < 0)
			return r;
	}
	return 0;
}

static int device_attach_locked(struct sim_hw *hw, const char *devid,
				const char *host, const uint64_t *size,
				const uint64_t *addr, char *reason)
{
	struct sim_dev rec = { 0 };
	struct sim_host *h;
	uintptr_t known;
	uint32_t slot = 0;
	int r;

	if (!devid_valid(devid))
		return reason_set(reason, -EINVAL, "invalid device id '%s'",
				  devid ? devid : "");
	if (!hw->tab)
		return reason_set(reason, -EINVAL,
				  "devices attach through the daemon's handle only");
	r = real_host_get(hw, host, &h, reason);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (!size[i])
			continue;
		if (addr[i] > UINT64_MAX - (size[i] - 1))
			return reason_set(reason, -ERANGE,
					  "bar%u of %s at 0x%" PRIx64
					  " wraps around the address space",
					  i, devid, addr[i]);
		if (size[i] > (uint64_t)INT64_MAX)
			return reason_set(reason, -EFBIG, "bar%u of %s is too "
					  "large", i, devid);
		for (unsigned j = 0; j < i; j++)
			if (size[j] && ranges_overlap(addr[i], size[i], addr[j],
						      size[j]))
				return reason_set(reason, -EINVAL,
						  "bar%u and bar%u of %s overlap",
						  j, i, devid);
	}
	r = overlap_check(hw, h, devid, size, addr, reason);
	if (r < 0)
		return r;

	rec.magic = SIM_DEV_MAGIC;
	snprintf(rec.devid, sizeof(rec.devid), "%s", devid);
	snprintf(rec.lender, sizeof(rec.lender), "%s", host);
	memcpy(rec.bar_size, size, sizeof(rec.bar_size));
	memcpy(rec.bar_addr, addr, sizeof(rec.bar_addr));

	known = (uintptr_t)hashmap_get(hw->tab_index, devid);
	if (known) {
		/* attached again: its record is rewritten, its BARs fresh */
		slot = (uint32_t)(known - 1);
		tab_write(tab_rec(hw, slot), &rec);
		device_remove(hw, devid);
	} else {
		bool reused = hw->tab_nfree > 0;

		bars_keep(hw, devid, size);
		r = tab_alloc(hw, &slot, reason);
		if (r < 0)
			return r;
		tab_write(tab_rec(hw, slot), &rec);
		r = hashmap_put(hw->tab_index, tab_rec(hw, slot)->devid,
				(void *)(uintptr_t)(slot + 1));
		if (r < 0) {
			memset(&rec, 0, sizeof(rec));
			tab_write(tab_rec(hw, slot), &rec);
			if (reused)
				hw->tab_nfree++; /* back on the free list */
			else
				hw->tab_used--;
			return reason_set(reason, r, "out of memory");
		}
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (size[i])
			h->bar_end = MAX(h->bar_end, addr[i] + size[i]);
	return 0;
}

static int sim_device_attach(void *ctx, const char *devid, const char *host,
			     const uint64_t bar_size[PCI_NUM_BARS],
			     const uint64_t bar_addr[PCI_NUM_BARS], char *reason)
{
	struct sim_hw *hw = ctx;
	int r;

	pthread_mutex_lock(&hw->lock);
	r = device_attach_locked(hw, devid, host, bar_size, bar_addr, reason);
	pthread_mutex_unlock(&hw->lock);
	return r;
}

static void sim_device_detach(void *ctx, const char *devid)
{
	struct sim_hw *hw = ctx;

	if (!devid_valid(devid))
		return;
	pthread_mutex_lock(&hw->lock);
	if (hw->tab)
		tab_forget(hw, devid);
	device_remove(hw, devid);
	pthread_mutex_unlock(&hw->lock);
}

static int ram_check(const char *owner, const struct sim_hdr *hdr,
		     const struct range *ram, unsigned nram, uint64_t *top,
		     char *reason)
{
	uint64_t ap_end = NTB_DMA_BASE + (uint64_t)hdr->ndma * NTB_DMA_SLOT;

	if (!ram || nram == 0 || nram > CONFIG_MAX_RAM_RANGES)
		return reason_set(reason, -EINVAL,
				  "ram of %s: %u ranges (1 to %u allowed)", owner,
				  nram, CONFIG_MAX_RAM_RANGES);
	*top = 0;
	for (unsigned i = 0; i < nram; i++) {
		const struct range *g = &ram[i];

		if (g->start > g->end || g->end >= (uint64_t)INT64_MAX)
			return reason_set(reason, -ERANGE,
					  "ram range 0x%" PRIx64 "-0x%" PRIx64
					  " of %s is invalid", g->start, g->end,
					  owner);
		for (unsigned j = 0; j < i; j++)
			if (g->start <= ram[j].end && ram[j].start <= g->end)
				return reason_set(reason, -EINVAL,
						  "ram ranges %u and %u of %s overlap",
						  j, i, owner);
		if ((hdr->nentries || hdr->ndma) && g->start < ap_end &&
		    NTB_APERTURE_BASE <= g->end)
			return reason_set(reason, -EINVAL,
					  "ram range 0x%" PRIx64 "-0x%" PRIx64
					  " of %s overlaps the ntb aperture",
					  g->start, g->end, owner);
		*top = MAX(*top, g->end + 1);
	}
	return 0;
}

/*
 * RUN/ram/OWNER: a symlink to @backing (the guest's own RAM file, which
 * must cover @top bytes; never resized), else a sparse shadow file of
 * @top bytes (a symlink left from an earlier attach is replaced, so the
 * guest's file is never truncated).
 */
static int ram_file(struct sim_hw *hw, const char *path, const char *backing,
		    uint64_t top, char *reason)
{
	char old[SIM_PATH_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd;

	n = readlinkat(hw->dirfd, path, old, sizeof(old) - 1);
	if (n >= 0) {
		old[n] = '\0';
		if (backing && strcmp(old, backing) == 0)
			goto check;
		if (unlinkat(hw->dirfd, path, 0) < 0)
			return reason_set(reason, -errno, "cannot remove %s/%s: %s",
					  hw->run_dir, path, strerror(errno));
	}
	if (backing) {
		unlinkat(hw->dirfd, path, 0); /* a shadow file of before */
		if (symlinkat(backing, hw->dirfd, path) < 0)
			return reason_set(reason, -errno, "cannot link %s/%s to %s: %s",
					  hw->run_dir, path, backing, strerror(errno));
check:
		if (stat(backing, &st) < 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size < top)
			return reason_set(reason, -EINVAL,
					  "guest ram file %s is not a regular file of at "
					  "least 0x%" PRIx64 " bytes", backing, top);
		return 0;
	}
	fd = openat(hw->dirfd, path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)top) < 0) {
		int r = -errno;

		if (fd >= 0)
			close(fd);
		return reason_set(reason, r,
				  "cannot size %s/%s to 0x%" PRIx64 " bytes: %s",
				  hw->run_dir, path, top, strerror(-r));
	}
	close(fd);
	return 0;
}

static int ram_attach_locked(struct sim_hw *hw, const char *owner,
			     const struct range *ram, unsigned nram,
			     const char *backing, char *reason)
{
	char host[HOST_NAME_MAX_LEN + 1], path[SIM_PATH_MAX], f[SIM_OWNER_MAX];
	struct sim_host *h;
	uint64_t top = 0;
	bool is_vm;
	int r;

	if (!owner_parse(owner, host, &is_vm))
		return reason_set(reason, -EINVAL, "invalid ram owner '%s'",
				  owner ? owner : "");
	r = real_host_get(hw, host, &h, reason);
	if (r < 0)
		return r;
	if (is_vm) { /* a VM's space appears with its RAM */
		r = host_get(hw, owner, &h, reason);
		if (r == -ENOENT) {
			r = hw_create(hw, owner, NULL, reason);
			if (r == 0)
				r = host_get(hw, owner, &h, reason);
		}
		if (r < 0)
			return r;
	}
	r = ram_check(owner, h->hdr, ram, nram, &top, reason);
	if (r < 0)
		return r;

	if (backing && (!is_vm || backing[0] != '/'))
		return reason_set(reason, -EINVAL, "ram of %s cannot be backed by '%s'",
				  owner, backing);
	owner_file(owner, f, sizeof(f));
	snprintf(path, sizeof(path), "ram/%s", f);
	r = ram_file(hw, path, backing, top, reason);
	if (r < 0)
		return r;

	r = host_lock(h, true, reason);
	if (r < 0)
		return r;
	memset(h->hdr->ram, 0, sizeof(h->hdr->ram));
	memcpy(h->hdr->ram, ram, nram * sizeof(*ram));
	h->hdr->nram = nram;
	host_unlock(h);
	return 0;
}

static int sim_ram_attach(void *ctx, const char *owner, const struct range *ram,
			  unsigned nram, const char *backing, char *reason)
{
	struct sim_hw *hw = ctx;
	int r;

	pthread_mutex_lock(&hw->lock);
	r = ram_attach_locked(hw, owner, ram, nram, backing, reason);
	pthread_mutex_unlock(&hw->lock);
	return r;
}

static const char *adapter_name(const struct sim_hdr *hdr)
{
	return hdr->adapter[0] ? hdr->adapter : "ntb";
}

/* Index, count and local address of a LUT window on @h's adapter. */
static int lut_check(const struct sim_hdr *hdr, const struct window *w,
		     char *reason)
{
	if (!hdr->nentries)
		return reason_set(reason, -EINVAL, "host %s has no ntb lut",
				  w->host);
	if (w->count == 0)
		return reason_set(reason, -EINVAL,
				  "lut window on %s has no entries", w->host);
	if (w->index >= hdr->nentries || w->count > hdr->nentries - w->index)
		return reason_set(reason, -ERANGE,
				  "lut entries %" PRIu32 "..%" PRIu64 " out of range "
				  "on adapter %s of %s (%" PRIu32 " entries)",
				  w->index, (uint64_t)w->index + w->count - 1,
				  adapter_name(hdr), w->host, hdr->nentries);
	if (w->local != NTB_APERTURE_BASE + w->index * hdr->window_max)
		return reason_set(reason, -EINVAL,
				  "lut window at 0x%" PRIx64 " on %s is not the "
				  "address of entry %" PRIu32 " (0x%" PRIx64 ")",
				  w->local, w->host, w->index,
				  (uint64_t)(NTB_APERTURE_BASE +
					     w->index * hdr->window_max));
	return 0;
}

static int dma_check(const struct sim_hdr *hdr, const struct window *w,
		     char *reason)
{
	if (!hdr->ndma)
		return reason_set(reason, -EINVAL, "host %s has no dma windows",
				  w->host);
	if (w->index >= hdr->ndma)
		return reason_set(reason, -ERANGE,
				  "dma window %" PRIu32 " out of range on adapter "
				  "%s of %s (%" PRIu32 " windows)", w->index,
				  adapter_name(hdr), w->host, hdr->ndma);
	if (w->count > 1)
		return reason_set(reason, -EINVAL,
				  "dma window %" PRIu32 " on %s has a count of %"
				  PRIu32 " (must be 1)", w->index, w->host,
				  w->count);
	if (w->local != NTB_DMA_BASE + w->index * NTB_DMA_SLOT)
		return reason_set(reason, -EINVAL,
				  "dma window at 0x%" PRIx64 " on %s is not the "
				  "address of slot %" PRIu32 " (0x%" PRIx64 ")",
				  w->local, w->host, w->index,
				  (uint64_t)(NTB_DMA_BASE +
					     w->index * NTB_DMA_SLOT));
	return 0;
}

static int iommu_check(const struct sim_hdr *hdr, const struct window *w,
		       char *reason)
{
	if (!(hdr->flags & SIM_HOST_IOMMU) || !hdr->nmaps)
		return reason_set(reason, -EINVAL, "the iommu of %s is off",
				  w->host);
	if (w->next[0] && strcmp(w->next, w->host) != 0)
		return reason_set(reason, -EINVAL,
				  "iommu mapping on %s points into %s, not %s",
				  w->host, w->next, w->host);
	if (!w->domain[0])
		return reason_set(reason, -EINVAL,
				  "iommu mapping on %s names no device domain", w->host);
	return 0;
}

/* Size, alignment and next hop of a window that will be programmed. */
static int target_check(struct sim_hw *hw, const struct window *w,
			uint64_t align, char *reason)
{
	char host[HOST_NAME_MAX_LEN + 1];
	struct sim_host *n;
	const char *kind = window_kind_name(w->kind);

	if (w->size == 0)
		return reason_set(reason, -EINVAL, "%s window on %s has size 0",
				  kind, w->host);
	if (w->size % align || w->target % align || w->local % align)
		return reason_set(reason, -EINVAL,
				  "%s window 0x%" PRIx64 "+0x%" PRIx64 " -> 0x%"
				  PRIx64 " on %s is not aligned to 0x%" PRIx64,
				  kind, w->local, w->size, w->target, w->host,
				  align);
	if (w->target > UINT64_MAX - (w->size - 1))
		return reason_set(reason, -ERANGE,
				  "%s window target 0x%" PRIx64 "+0x%" PRIx64
				  " on %s wraps around", kind, w->target,
				  w->size, w->host);
	if (w->kind == WIN_IOMMU)
		return 0;
	if (!w->next[0])
		return reason_set(reason, -EINVAL,
				  "%s window on %s has no next hop", kind,
				  w->host);
	if (!owner_parse(w->next, host, NULL))
		return reason_set(reason, -EINVAL,
				  "%s window on %s: invalid next hop '%s'", kind,
				  w->host, w->next);
	if (strcmp(w->next, w->host) == 0)
		return reason_set(reason, -EINVAL,
				  "%s window on %s points back into %s", kind,
				  w->host, w->host);
	if (real_host_get(hw, host, &n, reason) < 0)
		return reason_set(reason, -EINVAL,
				  "%s window on %s: next hop %s is not in the "
				  "sim fabric", kind, w->host, w->next);
	return 0;
}

static void slot_set(struct sim_slot *s, uint64_t target, uint64_t size,
		     const char *next)
{
	memset(s, 0, sizeof(*s));
	s->target = target;
	s->size = size;
	snprintf(s->next, sizeof(s->next), "%s", next);
	s->valid = 1;
}

static int program_lut(struct sim_hw *hw, struct sim_host *h,
		       const struct window *w, char *reason)
{
	struct sim_hdr *hdr = h->hdr;
	uint64_t wm = hdr->window_max;
	int r;

	r = lut_check(hdr, w, reason);
	if (r < 0)
		return r;
	if (w->size > w->count * wm || w->size <= (w->count - 1) * wm)
		return reason_set(reason, -EINVAL,
				  "lut window of 0x%" PRIx64 " bytes on %s needs "
				  "%" PRIu64 " entries of 0x%" PRIx64 ", not %"
				  PRIu32, w->size, w->host,
				  (w->size + wm - 1) / wm, wm, w->count);
	r = target_check(hw, w, hdr->window_align, reason);
	if (r < 0)
		return r;
	r = host_lock(h, true, reason);
	if (r < 0)
		return r;
	for (uint32_t k = 0; k < w->count; k++)
		slot_set(&hdr_lut(hdr)[w->index + k], w->target + k * wm,
			 MIN(wm, w->size - k * wm), w->next);
	host_unlock(h);
	return 0;
}

static int program_dma(struct sim_hw *hw, struct sim_host *h,
		       const struct window *w, char *reason)
{
	struct sim_hdr *hdr = h->hdr;
	int r;

	r = dma_check(hdr, w, reason);
	if (r < 0)
		return r;
	if (w->size > NTB_DMA_SLOT)
		return reason_set(reason, -EINVAL,
				  "dma window of 0x%" PRIx64 " bytes on %s is "
				  "larger than a slot (0x%llx)", w->size,
				  w->host, NTB_DMA_SLOT);
	r = target_check(hw, w, hdr->window_align, reason);
	if (r < 0)
		return r;
	r = host_lock(h, true, reason);
	if (r < 0)
		return r;
	slot_set(&hdr_dma(hdr)[w->index], w->target, w->size, w->next);
	host_unlock(h);
	return 0;
}

static int program_iommu(struct sim_hw *hw, struct sim_host *h,
			 const struct window *w, char *reason)
{
	struct sim_hdr *hdr = h->hdr;
	struct sim_map *maps = hdr_maps(hdr), *free_map = NULL;
	int r;

	r = iommu_check(hdr, w, reason);
	if (r < 0)
		return r;
	r = target_check(hw, w, SIM_IOMMU_PAGE, reason);
	if (r < 0)
		return r;
	if (w->local > UINT64_MAX - (w->size - 1))
		return reason_set(reason, -ERANGE,
				  "iommu mapping 0x%" PRIx64 "+0x%" PRIx64
				  " on %s wraps around", w->local, w->size,
				  w->host);
	r = host_lock(h, true, reason);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < hdr->maps_top; i++) {
		struct sim_map *m = &maps[i];

		if (!m->valid) {
			if (!free_map)
				free_map = m;
			continue;
		}
		if (strncmp(m->domain, w->domain, sizeof(m->domain)) != 0)
			continue; /* another device's domain */
		if (m->iova == w->local && m->size == w->size &&
		    m->phys == w->target) {
			free_map = NULL; /* programmed already */
			r = 1;
			break;
		}
		if (ranges_overlap(m->iova, m->size, w->local, w->size)) {
			r = reason_set(reason, -EEXIST,
				       "iommu mapping 0x%" PRIx64 "+0x%" PRIx64
				       " on %s overlaps 0x%" PRIx64 "+0x%" PRIx64,
				       w->local, w->size, w->host, m->iova,
				       m->size);
			break;
		}
	}
	if (r == 0 && !free_map && hdr->maps_top < hdr->nmaps)
		free_map = &maps[hdr->maps_top++];
	if (r == 0 && !free_map)
		r = reason_set(reason, -ENOSPC,
			       "the iommu of %s is full (%" PRIu32 " mappings)",
			       w->host, hdr->nmaps);
	if (r == 0 && free_map) {
		free_map->iova = w->local;
		free_map->size = w->size;
		free_map->phys = w->target;
		memcpy(free_map->domain, w->domain, sizeof(free_map->domain));
		free_map->valid = 1;
	}
	host_unlock(h);
	return r < 0 ? r : 0;
}

static int clear_slots(struct sim_host *h, struct sim_slot *slots,
		       uint32_t first, uint32_t count, const char *what,
		       char *reason)
{
	int r = host_lock(h, true, reason);

	if (r < 0)
		return r;
	for (uint32_t k = 0; k < count; k++) {
		if (!slots[first + k].valid) {
			host_unlock(h);
			return reason_set(reason, -ENOENT,
					  "%s %" PRIu32 " on adapter %s of %s is "
					  "not programmed", what, first + k,
					  adapter_name(h->hdr), h->owner);
		}
	}
	for (uint32_t k = 0; k < count; k++)
		memset(&slots[first + k], 0, sizeof(slots[first + k]));
	host_unlock(h);
	return 0;
}

static int clear_iommu(struct sim_host *h, const struct window *w, char *reason)
{
	struct sim_map *maps = hdr_maps(h->hdr);
	int r;

	r = iommu_check(h->hdr, w, reason);
	if (r < 0)
		return r;
	r = host_lock(h, true, reason);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (unsigned i = 0; i < h->hdr->maps_top; i++) {
		if (maps[i].valid && maps[i].iova == w->local &&
		    maps[i].size == w->size &&
		    !strncmp(maps[i].domain, w->domain, sizeof(maps[i].domain))) {
			memset(&maps[i], 0, sizeof(maps[i]));
			r = 0;
			break;
		}
	}
	while (h->hdr->maps_top > 0 && !maps[h->hdr->maps_top - 1].valid)
		h->hdr->maps_top--;
	host_unlock(h);
	if (r < 0)
		reason_set(reason, r, "no iommu mapping 0x%" PRIx64 "+0x%" PRIx64 " on %s",
			   w->local, w->size, w->host);
	return r;
}

static int window_locked(struct sim_hw *hw, const struct window *w, bool set,
			 char *reason)
{
	struct sim_host *h;
	int r;

	if (!w)
		return reason_set(reason, -EINVAL, "no window");
	r = real_host_get(hw, w->host, &h, reason);
	if (r < 0)
		return r;
	switch (w->kind) {
	case WIN_LUT:
		if (set)
			return program_lut(hw, h, w, reason);
		r = lut_check(h->hdr, w, reason);
		return r < 0 ? r
			     : clear_slots(h, hdr_lut(h->hdr), w->index,
					   w->count, "lut entry", reason);
	case WIN_DMA:
		if (set)
			return program_dma(hw, h, w, reason);
		r = dma_check(h->hdr, w, reason);
		return r < 0 ? r
			     : clear_slots(h, hdr_dma(h->hdr), w->index, 1,
					   "dma window", reason);
	case WIN_IOMMU:
		return set ? program_iommu(hw, h, w, reason)
			   : clear_iommu(h, w, reason);
	}
	return reason_set(reason, -EINVAL, "unknown window kind %d on %s",
			  (int)w->kind, w->host);
}

static int sim_program(void *ctx, const struct window *w, char *reason)
{
	struct sim_hw *hw = ctx;
	int r;

	pthread_mutex_lock(&hw->lock);
	r = window_locked(hw, w, true, reason);
	pthread_mutex_unlock(&hw->lock);
	return r;
}

static int sim_clear(void *ctx, const struct window *w, char *reason)
{
	struct sim_hw *hw = ctx;
	int r;

	pthread_mutex_lock(&hw->lock);
	r = window_locked(hw, w, false, reason);
	pthread_mutex_unlock(&hw->lock);
	return r;
}

static int sim_host_stats(void *ctx, const char *host, uint64_t *iommu_faults,
			  uint64_t *bad_accesses)
{
	struct sim_hw *hw = ctx;
	struct sim_host *h;
	int r;

	pthread_mutex_lock(&hw->lock);
	r = host_get(hw, host, &h, NULL);
	if (r == 0) {
		if (iommu_faults)
			*iommu_faults = __atomic_load_n(&h->hdr->iommu_faults,
							__ATOMIC_RELAXED);
		if (bad_accesses)
			*bad_accesses = __atomic_load_n(&h->hdr->bad_accesses,
							__ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&hw->lock);
	return r;
}

const struct fabric_ops fabric_sim_ops = {
	.name = "sim",
	.resets_at_open = true, /* sim_open() powers the tables on empty */
	.open = sim_open,
	.close = sim_close,
	.device_attach = sim_device_attach,
	.device_detach = sim_device_detach,
	.ram_attach = sim_ram_attach,
	.program = sim_program,
	.clear = sim_clear,
	.host_stats = sim_host_stats,
};
