// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_fabric_sim.c - the sim fabric: windows programmed through
 * fabric_sim_ops really move bytes between the RAM and BAR files, seen
 * through a separate sim_hw handle like lendfs-dma's.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fabric.h"
#include "fabric_sim.h"
#include "ntb.h"
#include "window.h"

#define DEV "nodeA:0000:65:00.0"
#define DEV2 "nodeA:0000:66:00.0"
#define MiB (1ULL << 20)
#define WMAX (8 * MiB)
#define BAR_A 0x380000000000ULL
#define RAM_SIZE (1ULL << 30)

struct fx {
	char dir[64];
	struct cfg_host hosts[3];
	struct cluster_config cfg;
	void *ctx;
	struct sim_hw *hw; /* the "other process" view */
	char reason[REASON_MAX];
};

static const struct fabric_ops *sim = &fabric_sim_ops;

static uint64_t ap(uint32_t entry)
{
	return NTB_APERTURE_BASE + entry * WMAX;
}

static uint64_t dma_slot(uint32_t slot)
{
	return NTB_DMA_BASE + slot * NTB_DMA_SLOT;
}

static struct window lut(const char *host, uint32_t index, uint32_t count,
			 uint64_t size, uint64_t target, const char *next)
{
	struct window w = { .kind = WIN_LUT, .index = index, .count = count };

	snprintf(w.host, sizeof(w.host), "%s", host);
	snprintf(w.next, sizeof(w.next), "%s", next);
	snprintf(w.tag, sizeof(w.tag), "bar0");
	w.local = ap(index);
	w.size = size;
	w.target = target;
	return w;
}

static struct window dmaw(const char *host, uint32_t slot, uint64_t size,
			  uint64_t target, const char *next)
{
	struct window w = { .kind = WIN_DMA, .index = slot, .count = 1 };

	snprintf(w.host, sizeof(w.host), "%s", host);
	snprintf(w.next, sizeof(w.next), "%s", next);
	w.local = dma_slot(slot);
	w.size = size;
	w.target = target;
	return w;
}

static struct window iommuw(const char *host, uint64_t iova, uint64_t size,
			    uint64_t phys)
{
	struct window w = { .kind = WIN_IOMMU, .count = 1 };

	snprintf(w.host, sizeof(w.host), "%s", host);
	snprintf(w.next, sizeof(w.next), "%s", host);
	snprintf(w.domain, sizeof(w.domain), "%s", DEV); /* DEV's domain */
	w.local = iova;
	w.size = size;
	w.target = phys;
	return w;
}

static void file_read(const struct fx *f, const char *rel, uint64_t off,
		      void *buf, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static bool file_exists(const struct fx *f, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	return access(path, F_OK) == 0;
}

static void file_touch(const struct fx *f, const char *rel)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void stats(struct fx *f, const char *host, uint64_t *faults,
		  uint64_t *bad)
{
	assert_int_equal(sim->host_stats(f->ctx, host, faults, bad), 0);
}

static void attach_all(struct fx *f)
{
	uint64_t size[PCI_NUM_BARS] = { [0] = 16 * MiB, [2] = 4096 };
	uint64_t addr[PCI_NUM_BARS] = { [0] = BAR_A, [2] = BAR_A + 16 * MiB };
	struct range ram = { 0, RAM_SIZE - 1 };

	assert_int_equal(sim->device_attach(f->ctx, DEV, "nodeA", size, addr,
					    f->reason), 0);
	assert_int_equal(sim->ram_attach(f->ctx, "nodeA", &ram, 1, NULL, f->reason), 0);
	assert_int_equal(sim->ram_attach(f->ctx, "nodeB", &ram, 1, NULL, f->reason), 0);
}

static int fx_setup(void **state, bool iommu_a)
{
	static const char *const names[] = { "nodeA", "nodeB", "nodeC" };
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_fabric_sim.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (unsigned i = 0; i < 3; i++) {
		struct cfg_host *h = &f->hosts[i];

		snprintf(h->name, sizeof(h->name), "%s", names[i]);
		snprintf(h->adapter, sizeof(h->adapter), "ntb0");
		h->iommu = i == 0 && iommu_a;
		h->lut_entries = 32;
		h->window_max = WMAX;
		h->window_align = 4096;
		h->dma_windows = 8;
		h->ram[0] = (struct range){ 0, RAM_SIZE - 1 };
		h->nram = 1;
	}
	snprintf(f->cfg.name, sizeof(f->cfg.name), "lab");
	snprintf(f->cfg.fabric, sizeof(f->cfg.fabric), "sim");
	f->cfg.hosts = f->hosts;
	f->cfg.nhosts = 3;
	assert_int_equal(sim->open(&f->cfg, f->dir, &f->ctx, f->reason), 0);
	attach_all(f);
	assert_int_equal(sim_hw_open(f->dir, &f->hw, f->reason), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_setup(state, true);
}

static int setup_iommu_off(void **state)
{
	return fx_setup(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sim_hw_close(f->hw);
	if (f->ctx)
		sim->close(f->ctx);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void program_ok(struct fx *f, const struct window *w)
{
	int r = sim->program(f->ctx, w, f->reason);

	if (r != 0)
		fail_msg("program: %s: %s", errno_name(r), f->reason);
}

static int cpu(struct fx *f, const char *host, uint64_t addr, void *buf,
	       size_t len, bool write)
{
	f->reason[0] = '\0';
	return sim_cpu_access(f->hw, host, addr, buf, len, write, f->reason);
}

static int dma(struct fx *f, const char *dev, uint64_t addr, void *buf,
	       size_t len, bool write)
{
	f->reason[0] = '\0';
	return sim_dma_access(f->hw, dev, addr, buf, len, write, f->reason);
}

/* ---- LUT windows -------------------------------------------------------- */

static void test_lut_one_hop(void **state)
{
	struct fx *f = *state;
	struct window w = lut("nodeB", 3, 2, 16 * MiB, BAR_A, "nodeA");
	char buf[16] = { 0 };
	uint64_t faults, bad;

	program_ok(f, &w);

	/* first entry */
	assert_int_equal(cpu(f, "nodeB", ap(3) + 0x1000, "hello", 5, true), 5);
	file_read(f, "devices/" DEV "/bar0", 0x1000, buf, 5);
	assert_memory_equal(buf, "hello", 5);

	/* second entry */
	assert_int_equal(cpu(f, "nodeB", ap(4) + 0x20, "second", 6, true), 6);
	file_read(f, "devices/" DEV "/bar0", WMAX + 0x20, buf, 6);
	assert_memory_equal(buf, "second", 6);

	/* across the boundary of the two entries */
	assert_int_equal(cpu(f, "nodeB", ap(4) - 3, "abcdef", 6, true), 6);
	file_read(f, "devices/" DEV "/bar0", WMAX - 3, buf, 6);
	assert_memory_equal(buf, "abcdef", 6);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cpu(f, "nodeB", ap(4) - 3, buf, 6, false), 6);
	assert_memory_equal(buf, "abcdef", 6);

	/* the lender's own CPU sees the same BAR at its bus address */
	assert_int_equal(cpu(f, "nodeA", BAR_A + 0x1000, buf, 5, false), 5);
	assert_memory_equal(buf, "hello", 5);
	/* bar2 follows bar0: an access across both is split between them */
	assert_int_equal(cpu(f, "nodeA", BAR_A + 16 * MiB - 1, "XY", 2, true), 2);
	file_read(f, "devices/" DEV "/bar0", 16 * MiB - 1, buf, 1);
	file_read(f, "devices/" DEV "/bar2", 0, buf + 1, 1);
	assert_memory_equal(buf, "XY", 2);

	/* past the end of the window: nothing moves, a bad access on B */
	assert_int_equal(cpu(f, "nodeB", ap(5), "x", 1, true), -EFAULT);
	assert_non_null(strstr(f->reason, "unmapped address 0x200002800000"));
	assert_non_null(strstr(f->reason, "nodeB"));
	assert_int_equal(cpu(f, "nodeB", ap(5) - 2, "wxyz", 4, true), -EFAULT);
	file_read(f, "devices/" DEV "/bar0", 16 * MiB - 2, buf, 2);
	assert_memory_equal(buf, "\0X", 2); /* as before the write */
	stats(f, "nodeB", &faults, &bad);
	assert_int_equal(bad, 2);
	assert_int_equal(faults, 0);
	stats(f, "nodeA", &faults, &bad);
	assert_int_equal(bad, 0);

	/* B's own RAM still works, and C has nothing mapped */
	assert_int_equal(cpu(f, "nodeB", 0x1234, "ram", 3, true), 3);
	file_read(f, "ram/nodeB", 0x1234, buf, 3);
	assert_memory_equal(buf, "ram", 3);
	assert_int_equal(cpu(f, "nodeC", ap(3), buf, 1, false), -EFAULT);
}

/* A 12 MiB window: the second entry maps only 4 MiB. */
static void test_lut_partial_entry(void **state)
{
	struct fx *f = *state;
	struct window w = lut("nodeB", 10, 2, 12 * MiB, BAR_A, "nodeA");
	char buf[4] = { 0 };

	program_ok(f, &w);
	assert_int_equal(cpu(f, "nodeB", ap(11) + 4 * MiB - 1, "e", 1, true), 1);
	file_read(f, "devices/" DEV "/bar0", 12 * MiB - 1, buf, 1);
	assert_memory_equal(buf, "e", 1);
	assert_int_equal(cpu(f, "nodeB", ap(11) + 4 * MiB, "f", 1, true),
			 -EFAULT);
	assert_int_equal(cpu(f, "nodeB", ap(11) + 4 * MiB - 1, buf, 2, false),
			 -EFAULT);
}

static void test_lut_multi_hop(void **state)
{
	struct fx *f = *state;
	struct window wc = lut("nodeC", 0, 2, 16 * MiB, BAR_A, "nodeA");
	struct window wb = lut("nodeB", 5, 2, 16 * MiB, ap(0), "nodeC");
	char buf[16] = { 0 };
	uint64_t bad;

	program_ok(f, &wc);
	program_ok(f, &wb);

	assert_int_equal(cpu(f, "nodeB", ap(6) + 0x123, "multi", 5, true), 5);
	file_read(f, "devices/" DEV "/bar0", WMAX + 0x123, buf, 5);
	assert_memory_equal(buf, "multi", 5);
	assert_int_equal(cpu(f, "nodeC", ap(1) + 0x123, buf, 5, false), 5);
	assert_memory_equal(buf, "multi", 5);

	/* the middle hop goes away: the fault is C's, seen from B */
	assert_int_equal(sim->clear(f->ctx, &wc, f->reason), 0);
	assert_int_equal(cpu(f, "nodeB", ap(6) + 0x123, buf, 5, false), -EFAULT);
	assert_non_null(strstr(f->reason, "on host nodeC"));
	assert_non_null(strstr(f->reason, "reached from 0x200003000123 on host nodeB"));
	stats(f, "nodeC", NULL, &bad);
	assert_int_equal(bad, 1);
	stats(f, "nodeB", NULL, &bad);
	assert_int_equal(bad, 0);
}

static void test_lut_loop(void **state)
{
	struct fx *f = *state;
	struct window wb = lut("nodeB", 0, 1, WMAX, ap(0), "nodeC");
	struct window wc = lut("nodeC", 0, 1, WMAX, ap(0), "nodeB");
	char c;

	program_ok(f, &wb);
	program_ok(f, &wc);
	assert_int_equal(cpu(f, "nodeB", ap(0) + 1, &c, 1, false), -ELOOP);
	assert_non_null(strstr(f->reason, "loops"));
}

/* ---- device DMA --------------------------------------------------------- */

static void test_dma_iommu_on(void **state)
{
	struct fx *f = *state;
	struct window wd = dmaw("nodeA", 1, RAM_SIZE, 0, "nodeB");
	struct window wi = iommuw("nodeA", 0x10000000, 16 * MiB,
				  dma_slot(1) + 0x10000000);
	char buf[16] = { 0 }, zero[4] = { 0 };
	uint64_t faults, bad;

	program_ok(f, &wd);
	program_ok(f, &wi);

	assert_int_equal(dma(f, DEV, 0x10000040, "dma!", 4, true), 4);
	file_read(f, "ram/nodeB", 0x10000040, buf, 4);
	assert_memory_equal(buf, "dma!", 4);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(dma(f, DEV, 0x10000040, buf, 4, false), 4);
	assert_memory_equal(buf, "dma!", 4);
	/* the borrower's CPU sees it in its RAM */
	assert_int_equal(cpu(f, "nodeB", 0x10000040, buf, 4, false), 4);
	assert_memory_equal(buf, "dma!", 4);

	/* outside the mapping: an IOMMU fault on the lender, nothing moves */
	assert_int_equal(dma(f, DEV, 0x40, "oops", 4, true), -EFAULT);
	assert_non_null(strstr(f->reason, "iommu fault on host nodeA"));
	assert_non_null(strstr(f->reason, DEV));
	file_read(f, "ram/nodeB", 0x40, buf, 4);
	assert_memory_equal(buf, zero, 4);
	stats(f, "nodeA", &faults, &bad);
	assert_int_equal(faults, 1);
	assert_int_equal(bad, 0);

	/* straddling the end of the mapping faults too, and moves nothing */
	assert_int_equal(dma(f, DEV, 0x11000000 - 2, "abcd", 4, true), -EFAULT);
	file_read(f, "ram/nodeB", 0x11000000 - 2, buf, 2);
	assert_memory_equal(buf, zero, 2);
	stats(f, "nodeA", &faults, NULL);
	assert_int_equal(faults, 2);

	/* without the DMA window the IOVA translates but leads nowhere */
	assert_int_equal(sim->clear(f->ctx, &wd, f->reason), 0);
	assert_int_equal(dma(f, DEV, 0x10000040, buf, 4, false), -EFAULT);
	assert_non_null(strstr(f->reason, "unmapped address 0x290010000040 on host nodeA"));
	stats(f, "nodeA", &faults, &bad);
	assert_int_equal(faults, 2);
	assert_int_equal(bad, 1);
}

static void test_dma_iommu_off(void **state)
{
	struct fx *f = *state;
	struct window wd = dmaw("nodeA", 0, RAM_SIZE, 0, "nodeB");
	struct window wi = iommuw("nodeA", 0, 16 * MiB, dma_slot(0));
	char buf[8] = { 0 };
	uint64_t faults, bad;

	program_ok(f, &wd);
	assert_int_equal(sim->program(f->ctx, &wi, f->reason), -EINVAL);
	assert_non_null(strstr(f->reason, "iommu of nodeA is off"));

	/* bus addresses are the lender's physical addresses */
	assert_int_equal(dma(f, DEV, dma_slot(0) + 0x2000, "pass", 4, true), 4);
	file_read(f, "ram/nodeB", 0x2000, buf, 4);
	assert_memory_equal(buf, "pass", 4);
	/* ... including the lender's own RAM */
	assert_int_equal(dma(f, DEV, 0x3000, "self", 4, true), 4);
	file_read(f, "ram/nodeA", 0x3000, buf, 4);
	assert_memory_equal(buf, "self", 4);

	assert_int_equal(dma(f, DEV, dma_slot(1), buf, 4, false), -EFAULT);
	stats(f, "nodeA", &faults, &bad);
	assert_int_equal(faults, 0);
	assert_int_equal(bad, 1);
}

static void test_dma_to_vm(void **state)
{
	struct fx *f = *state;
	struct range ram = { 0, 256 * MiB - 1 };
	struct window wd = dmaw("nodeA", 2, 256 * MiB, 0, "vm:nodeB/vm1");
	struct window wi = iommuw("nodeA", 0, 256 * MiB, dma_slot(2));
	char buf[8] = { 0 };

	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB/vm1", &ram, 1, NULL,
					 f->reason), 0);
	program_ok(f, &wd);
	program_ok(f, &wi);
	assert_int_equal(dma(f, DEV, 0x100, "guest", 5, true), 5);
	file_read(f, "ram/vm.nodeB.vm1", 0x100, buf, 5);
	assert_memory_equal(buf, "guest", 5);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cpu(f, "vm:nodeB/vm1", 0x100, buf, 5, false), 5);
	assert_memory_equal(buf, "guest", 5);
	/* the VM's RAM is not the host's */
	assert_int_equal(cpu(f, "nodeB", 0x100, buf, 5, false), 5);
	assert_memory_not_equal(buf, "guest", 5);
	/* beyond the VM's RAM, or running off its end */
	assert_int_equal(cpu(f, "vm:nodeB/vm1", 256 * MiB, buf, 1, false),
			 -EFAULT);
	assert_int_equal(cpu(f, "vm:nodeB/vm1", 256 * MiB - 1, buf, 2, false),
			 -EFAULT);
}

/*
 * A VM whose RAM is a shared memory-backend-file (issue 20): ram/OWNER is
 * that file, so DMA lands in the guest's own RAM; attaching without it
 * again gives a shadow file and leaves the guest's file alone.
 */
static void test_dma_to_vm_backing(void **state)
{
	struct fx *f = *state;
	struct range ram = { 0, 16 * MiB - 1 };
	struct window wd = dmaw("nodeA", 2, 16 * MiB, 0, "vm:nodeB/vm1");
	struct window wi = iommuw("nodeA", 0, 16 * MiB, dma_slot(2));
	char guest[128], buf[8] = { 0 };
	struct stat st;
	int fd;

	snprintf(guest, sizeof(guest), "%s/guest.ram", f->dir);
	fd = open(guest, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * MiB), 0);
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB/vm1", &ram, 1, guest,
					 f->reason), 0);
	program_ok(f, &wd);
	program_ok(f, &wi);
	assert_int_equal(dma(f, DEV, 0x2000, "in guest", 8, true), 8);
	assert_int_equal(pread(fd, buf, 8, 0x2000), 8);
	assert_memory_equal(buf, "in guest", 8);
	/* the guest's own writes are what the device reads */
	assert_int_equal(pwrite(fd, "guest cpu", 9, 0x3000), 9);
	assert_int_equal(dma(f, DEV, 0x3000, buf, 8, false), 8);
	assert_memory_equal(buf, "guest cp", 8);
	/* attached again (a new probe), the same: not resized */
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB/vm1", &ram, 1, guest,
					 f->reason), 0);
	/* RAM not shared any more: a shadow file, the guest's file untouched */
	ram.end = 4 * MiB - 1;
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB/vm1", &ram, 1, NULL,
					 f->reason), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 16 * MiB);
	assert_int_equal(dma(f, DEV, 0x2000, "shadow!!", 8, true), 8);
	assert_int_equal(pread(fd, buf, 8, 0x2000), 8);
	assert_memory_equal(buf, "in guest", 8);
	file_read(f, "ram/vm.nodeB.vm1", 0x2000, buf, 8);
	assert_memory_equal(buf, "shadow!!", 8);
	/* refused: a file too small, a relative path, a host's RAM */
	ram.end = 32 * MiB - 1;
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB/vm1", &ram, 1, guest,
					 f->reason), -EINVAL);
	assert_non_null(strstr(f->reason, "is not a regular file of at least 0x2000000"));
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB/vm1", &ram, 1, "rel.ram",
					 f->reason), -EINVAL);
	assert_int_equal(sim->ram_attach(f->ctx, "nodeB", &ram, 1, guest, f->reason),
			 -EINVAL);
	assert_non_null(strstr(f->reason, "ram of nodeB cannot be backed by"));
	close(fd);
}

/* ---- clear, sharing, power-on ------------------------------------------ */

static void test_clear(void **state)
{
	struct fx *f = *state;
	struct window wl = lut("nodeB", 0, 2, 16 * MiB, BAR_A, "nodeA");
	struct window wd = dmaw("nodeA", 0, RAM_SIZE, 0, "nodeB");
	struct window wi = iommuw("nodeA", 0, RAM_SIZE, dma_slot(0));
	char buf[4];

	program_ok(f, &wl);
	program_ok(f, &wd);
	program_ok(f, &wi);
	assert_int_equal(cpu(f, "nodeB", ap(1), "lut", 3, true), 3);
	assert_int_equal(dma(f, DEV, 0x10, "dma", 3, true), 3);

	assert_int_equal(sim->clear(f->ctx, &wl, f->reason), 0);
	assert_int_equal(cpu(f, "nodeB", ap(1), buf, 3, false), -EFAULT);
	assert_non_null(strstr(f->reason, "unmapped address"));
	assert_int_equal(sim->clear(f->ctx, &wl, f->reason), -ENOENT);
	assert_non_null(strstr(f->reason, "lut entry 0 on adapter ntb0 of nodeB"));

	assert_int_equal(sim->clear(f->ctx, &wi, f->reason), 0);
	assert_int_equal(dma(f, DEV, 0x10, buf, 3, false), -EFAULT);
	assert_non_null(strstr(f->reason, "iommu fault"));
	assert_int_equal(sim->clear(f->ctx, &wi, f->reason), -ENOENT);

	assert_int_equal(sim->clear(f->ctx, &wd, f->reason), 0);
	assert_int_equal(sim->clear(f->ctx, &wd, f->reason), -ENOENT);
	assert_non_null(strstr(f->reason, "dma window 0"));

	/* reprogramming brings the same bytes back */
	program_ok(f, &wl);
	assert_int_equal(cpu(f, "nodeB", ap(1), buf, 3, false), 3);
	assert_memory_equal(buf, "lut", 3);
}

static void test_second_handle(void **state)
{
	struct fx *f = *state;
	struct window w1 = lut("nodeB", 0, 1, WMAX, BAR_A, "nodeA");
	struct window w2 = lut("nodeC", 7, 1, 4096, BAR_A + 16 * MiB, "nodeA");
	struct sim_hw *other = NULL;
	char buf[8] = { 0 };

	program_ok(f, &w1);
	assert_int_equal(sim_hw_open(f->dir, &other, f->reason), 0);
	assert_int_equal(cpu(f, "nodeB", ap(0) + 8, "shared", 6, true), 6);
	assert_int_equal(sim_cpu_access(other, "nodeB", ap(0) + 8, buf, 6, false,
					f->reason), 6);
	assert_memory_equal(buf, "shared", 6);

	/* programmed after the other handle mapped the registers */
	program_ok(f, &w2);
	assert_int_equal(sim_cpu_access(other, "nodeC", ap(7) + 16, "bar2", 4,
					true, f->reason), 4);
	file_read(f, "devices/" DEV "/bar2", 16, buf, 4);
	assert_memory_equal(buf, "bar2", 4);
	/* a BAR is exactly its size: bar2 is 4 KiB */
	assert_int_equal(sim_cpu_access(other, "nodeC", ap(7) + 4096, buf, 1,
					false, f->reason), -EFAULT);
	sim_hw_close(other);

	assert_int_equal(sim_hw_open("/nonexistent/run", &other, f->reason),
			 -ENOENT);
	assert_non_null(strstr(f->reason, "/nonexistent/run"));
}

/*
 * A power-on (the daemon restarts) empties the registers but keeps memory
 * (issue 20): BAR and RAM files keep their bytes and inodes; a BAR whose
 * size changed starts fresh.
 */
static void test_power_on_reset(void **state)
{
	struct fx *f = *state;
	struct window w = lut("nodeB", 0, 2, 16 * MiB, BAR_A, "nodeA");
	struct window wd = dmaw("nodeA", 0, RAM_SIZE, 0, "nodeB");
	struct window wi = iommuw("nodeA", 0, RAM_SIZE, dma_slot(0));
	uint64_t size[PCI_NUM_BARS] = { [0] = 16 * MiB, [2] = 8192 };
	uint64_t addr[PCI_NUM_BARS] = { [0] = BAR_A, [2] = BAR_A + 16 * MiB };
	struct range ram = { 0, RAM_SIZE - 1 };
	char buf[4] = { 0 }, path[256];
	struct stat before, after;
	uint64_t bad;
	int fd;

	program_ok(f, &w);
	program_ok(f, &wd);
	program_ok(f, &wi);
	assert_int_equal(cpu(f, "nodeB", ap(0), "old", 3, true), 3);
	snprintf(path, sizeof(path), "%s/devices/" DEV "/bar2", f->dir);
	fd = open(path, O_CREAT | O_RDWR, 0644); /* bar2 as the sim makes it */
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	close(fd);
	assert_int_equal(dma(f, DEV, 0x40, "ram", 3, true), 3);
	assert_int_equal(cpu(f, "nodeB", ap(2), buf, 1, false), -EFAULT);
	snprintf(path, sizeof(path), "%s/devices/" DEV "/bar0", f->dir);
	assert_int_equal(stat(path, &before), 0);
	sim->close(f->ctx);
	f->ctx = NULL;

	/* leftovers of a previous run */
	file_touch(f, "hosts/ghost.hw");
	file_touch(f, "keep-me");

	assert_int_equal(sim->open(&f->cfg, f->dir, &f->ctx, f->reason), 0);
	assert_false(file_exists(f, "hosts/ghost.hw"));
	assert_true(file_exists(f, "hosts/nodeA.hw"));
	assert_true(file_exists(f, "keep-me")); /* not ours to remove */
	stats(f, "nodeB", NULL, &bad);
	assert_int_equal(bad, 0);

	/* the handle opened before the reset sees the new hardware: no
	 * windows, the device not attached yet */
	assert_int_equal(cpu(f, "nodeB", ap(0), buf, 3, false), -EFAULT);
	assert_int_equal(dma(f, DEV, 0, buf, 1, false), -ENOENT);

	/* re-attached (bar2 now 8 KiB): bar0's file is the same file, with
	 * its bytes; bar2 is fresh; the RAM keeps its bytes */
	assert_int_equal(sim->device_attach(f->ctx, DEV, "nodeA", size, addr,
					    f->reason), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_false(file_exists(f, "devices/" DEV "/bar2"));
	program_ok(f, &w);
	assert_int_equal(cpu(f, "nodeB", ap(0), buf, 3, false), 3);
	assert_memory_equal(buf, "old", 3);
	assert_int_equal(sim->ram_attach(f->ctx, "nodeB", &ram, 1, NULL, f->reason), 0);
	assert_int_equal(cpu(f, "nodeB", 0x40, buf, 3, false), 3);
	assert_memory_equal(buf, "ram", 3);
}

/* ---- validation --------------------------------------------------------- */

static void expect_program(struct fx *f, struct window w, int err,
			   const char *needle)
{
	f->reason[0] = '\0';
	assert_int_equal(sim->program(f->ctx, &w, f->reason), err);
	if (!strstr(f->reason, needle))
		fail_msg("reason '%s' lacks '%s'", f->reason, needle);
}

static void test_program_validation(void **state)
{
	struct fx *f = *state;
	struct window w;
	char c;

	expect_program(f, lut("nodeB", 31, 2, 16 * MiB, BAR_A, "nodeA"), -ERANGE,
		       "lut entries 31..32 out of range on adapter ntb0 of nodeB");
	expect_program(f, lut("nodeB", 32, 1, WMAX, BAR_A, "nodeA"), -ERANGE,
		       "(32 entries)");
	expect_program(f, lut("nodeB", 0, 0, WMAX, BAR_A, "nodeA"), -EINVAL,
		       "no entries");
	w = lut("nodeB", 1, 1, WMAX, BAR_A, "nodeA");
	w.local = ap(2);
	expect_program(f, w, -EINVAL, "not the address of entry 1");
	expect_program(f, lut("nodeB", 0, 1, 16 * MiB, BAR_A, "nodeA"), -EINVAL,
		       "needs 2 entries");
	expect_program(f, lut("nodeB", 0, 3, 16 * MiB, BAR_A, "nodeA"), -EINVAL,
		       "not 3");
	expect_program(f, lut("nodeB", 0, 1, WMAX, BAR_A + 0x10, "nodeA"),
		       -EINVAL, "not aligned to 0x1000");
	expect_program(f, lut("nodeB", 0, 1, 0x800, BAR_A, "nodeA"), -EINVAL,
		       "not aligned");
	expect_program(f, lut("nodeX", 0, 1, WMAX, BAR_A, "nodeA"), -EINVAL,
		       "no host nodeX");
	expect_program(f, lut("nodeB", 0, 1, WMAX, BAR_A, "nodeX"), -EINVAL,
		       "next hop nodeX");
	expect_program(f, lut("nodeB", 0, 1, WMAX, BAR_A, ""), -EINVAL,
		       "no next hop");
	expect_program(f, lut("nodeB", 0, 1, WMAX, BAR_A, "nodeB"), -EINVAL,
		       "points back");
	expect_program(f, dmaw("nodeA", 8, WMAX, 0, "nodeB"), -ERANGE,
		       "dma window 8 out of range");
	expect_program(f, dmaw("nodeA", 0, NTB_DMA_SLOT * 2, 0, "nodeB"),
		       -EINVAL, "larger than a slot");
	w = dmaw("nodeA", 0, WMAX, 0, "nodeB");
	w.local += 4096;
	expect_program(f, w, -EINVAL, "not the address of slot 0");
	expect_program(f, iommuw("nodeA", 0x800, 4096, 0), -EINVAL,
		       "not aligned");
	expect_program(f, iommuw("nodeB", 0, 4096, 0), -EINVAL,
		       "iommu of nodeB is off");
	w = iommuw("nodeA", 0, 4096, 0);
	snprintf(w.next, sizeof(w.next), "nodeB");
	expect_program(f, w, -EINVAL, "points into nodeB");

	/* failed programs left nothing behind */
	assert_int_equal(cpu(f, "nodeB", ap(0), &c, 1, false), -EFAULT);
	assert_int_equal(cpu(f, "nodeB", ap(31), &c, 1, false), -EFAULT);
}

static void test_iommu_table(void **state)
{
	struct fx *f = *state;
	struct window w = iommuw("nodeA", 0x100000, 0x10000, 0x200000);
	unsigned n;

	program_ok(f, &w);
	program_ok(f, &w); /* the same mapping again is a no-op */
	expect_program(f, iommuw("nodeA", 0x108000, 0x10000, 0), -EEXIST,
		       "overlaps 0x100000+0x10000");
	assert_int_equal(sim->clear(f->ctx, &w, f->reason), 0);
	assert_int_equal(sim->clear(f->ctx, &w, f->reason), -ENOENT);

	for (n = 0; n < SIM_IOMMU_MAX; n++) {
		w = iommuw("nodeA", (uint64_t)n * 4096, 4096, 0);
		program_ok(f, &w);
	}
	expect_program(f, iommuw("nodeA", (uint64_t)n * 4096, 4096, 0), -ENOSPC,
		       "iommu of nodeA is full (4096 mappings)");
	w = iommuw("nodeA", 0, 4096, 0);
	assert_int_equal(sim->clear(f->ctx, &w, f->reason), 0);
	w = iommuw("nodeA", (uint64_t)n * 4096, 4096, 0);
	program_ok(f, &w);
}

/*
 * The IOMMU table is scanned up to its highest slot in use: mappings
 * above a hole are still found, a hole is reused, and clearing the top
 * slots lowers the mark so that nothing stale is found above it.
 */
static void test_iommu_holes(void **state)
{
	struct fx *f = *state;
	struct window wd = dmaw("nodeA", 1, RAM_SIZE, 0, "nodeB");
	struct window wi[3];
	char buf[4];

	program_ok(f, &wd);
	for (unsigned i = 0; i < 3; i++) {
		wi[i] = iommuw("nodeA", 0x10000000 + i * MiB, MiB, dma_slot(1) + i * MiB);
		program_ok(f, &wi[i]);
	}
	/* a hole at slot 0: slot 2 still translates */
	assert_int_equal(sim->clear(f->ctx, &wi[0], f->reason), 0);
	assert_int_equal(dma(f, DEV, 0x10000000 + 2 * MiB, "top!", 4, true), 4);
	assert_int_equal(dma(f, DEV, 0x10000000, "hole", 4, true), -EFAULT);
	/* the top goes, then the middle: nothing is left to translate */
	assert_int_equal(sim->clear(f->ctx, &wi[2], f->reason), 0);
	assert_int_equal(dma(f, DEV, 0x10000000 + 2 * MiB, buf, 4, false), -EFAULT);
	assert_int_equal(dma(f, DEV, 0x10000000 + MiB, "mid!", 4, true), 4);
	assert_int_equal(sim->clear(f->ctx, &wi[1], f->reason), 0);
	assert_int_equal(dma(f, DEV, 0x10000000 + MiB, buf, 4, false), -EFAULT);
	assert_int_equal(sim->clear(f->ctx, &wi[1], f->reason), -ENOENT);
	assert_non_null(strstr(f->reason, "no iommu mapping 0x10100000+0x100000 on nodeA"));
	/* and the table fills from the bottom again */
	program_ok(f, &wi[2]);
	assert_int_equal(dma(f, DEV, 0x10000000 + 2 * MiB, buf, 4, false), 4);
	assert_memory_equal(buf, "top!", 4);
}

static void test_attach_validation(void **state)
{
	struct fx *f = *state;
	uint64_t size[PCI_NUM_BARS] = { [0] = 4096 };
	uint64_t addr[PCI_NUM_BARS] = { [0] = BAR_A + 4096 };
	struct range bad_ram[2] = { { 0, 0xfff }, { 0x800, 0x1fff } };
	struct range ap_ram = { NTB_APERTURE_BASE, NTB_APERTURE_BASE + 4095 };
	char buf[4];

	assert_int_equal(sim->device_attach(f->ctx, DEV2, "nodeA", size, addr,
					    f->reason), -EEXIST);
	assert_non_null(strstr(f->reason, "overlaps bar0 of " DEV));
	assert_false(file_exists(f, "devices/" DEV2));
	assert_int_equal(sim->device_attach(f->ctx, DEV2, "nodeX", size, addr,
					    f->reason), -EINVAL);
	assert_int_equal(sim->device_attach(f->ctx, "a/b", "nodeA", size, addr,
					    f->reason), -EINVAL);
	/* the same address on another lender is fine */
	assert_int_equal(sim->device_attach(f->ctx, DEV2, "nodeC", size, addr,
					    f->reason), 0);
	assert_int_equal(cpu(f, "nodeC", BAR_A + 4096, "c", 1, true), 1);
	file_read(f, "devices/" DEV2 "/bar0", 0, buf, 1);
	assert_memory_equal(buf, "c", 1);
	sim->device_detach(f->ctx, DEV2);
	assert_false(file_exists(f, "devices/" DEV2));
	assert_int_equal(cpu(f, "nodeC", BAR_A + 4096, buf, 1, false), -EFAULT);
	assert_int_equal(dma(f, DEV2, 0, buf, 1, false), -ENOENT);
	assert_non_null(strstr(f->reason, "no device " DEV2));

	assert_int_equal(sim->ram_attach(f->ctx, "nodeC", bad_ram, 2, NULL, f->reason),
			 -EINVAL);
	assert_int_equal(sim->ram_attach(f->ctx, "nodeC", &ap_ram, 1, NULL, f->reason),
			 -EINVAL);
	assert_non_null(strstr(f->reason, "overlaps the ntb aperture"));
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeX/vm1", bad_ram, 1, NULL,
					 f->reason), -EINVAL);
	assert_int_equal(sim->ram_attach(f->ctx, "vm:nodeB", bad_ram, 1, NULL,
					 f->reason), -EINVAL);

	assert_int_equal(cpu(f, "nodeX", 0, buf, 1, false), -ENOENT);
	assert_non_null(strstr(f->reason, "no host nodeX"));
	assert_int_equal(cpu(f, "nodeB", UINT64_MAX, buf, 2, false), -EFAULT);
}

/* ---- the real back-end (found by name: test_backend.c) ----------------- */

static void test_ntb_backend(void **state)
{
	char reason[REASON_MAX] = "";
	void *ctx = NULL;
	struct stat st;

	assert_int_equal(fabric_ntb_ops.open(NULL, "/tmp", &ctx, reason),
			 -ENOTSUP);
	assert_null(ctx);
	assert_true(strncmp(reason, "real NTB back-end not", 21) == 0);
	if (stat("/sys/bus/ntb/devices", &st) < 0)
		assert_string_equal(reason,
				    "real NTB back-end not available: no NTB "
				    "hardware found (/sys/bus/ntb/devices is "
				    "empty or absent)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lut_one_hop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lut_partial_entry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lut_multi_hop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lut_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_iommu_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_iommu_off, setup_iommu_off,
						teardown),
		cmocka_unit_test_setup_teardown(test_dma_to_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_to_vm_backing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_on_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_validation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_iommu_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iommu_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_validation, setup,
						teardown),
		cmocka_unit_test(test_ntb_backend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
