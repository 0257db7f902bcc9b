// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_vm.c - VM borrowers against a real qemu-system-x86_64: memory
 * probe, hot-add of a file-backed BAR, bytes through it, hot-remove with
 * and without the guest's acknowledgement, QEMU dying, re-attach.  The
 * test plays the guest (BAR programming, ACPI eject) through its own QMP
 * socket.  Skipped, with a message, only if qemu-system-x86_64 is not
 * installed; a QEMU that does not start fails the test, with its log.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vm.h"

#include "../vm/qemu_harness.h"

#define DEV "nodeA:0000:65:00.0"
#define DEV_QDEV "lendfs-nodeA-0000-65-00-0-bar2" /* its bar2 in the guest */
#define DEV_MEMDEV "lendfs-mem-nodeA-0000-65-00-0-bar2"
#define DEV_QDEV0 "lendfs-nodeA-0000-65-00-0-bar0"
#define DEV_MEMDEV0 "lendfs-mem-nodeA-0000-65-00-0-bar0"
#define DEV2 "nodeA:0000:66:00.0"
#define MIB (1ULL << 20)

static struct qemu qm;

static void start_or_fail(const char *machine, const char *mem,
			  const char *const *extra)
{
	if (qemu_start(&qm, machine, mem, extra) < 0)
		fail_msg("qemu: %s", qm.error);
}

static int teardown(void **state)
{
	qemu_stop(&qm);
	return 0;
}

/* A BAR file of @size bytes in the QEMU directory. */
/* Hot-add @devid with one BAR, index 2, of @size bytes at @path. */
static int add1(struct vm *vm, const char *devid, const char *path,
		uint64_t size, unsigned tmo, char *reason)
{
	struct vm_bar b = { 2, size, path };

	return vm_hotplug_add(vm, devid, &b, 1, tmo, reason);
}

static void make_bar(const char *name, uint64_t size, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", qm.dir, name);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static struct vm *attach(void)
{
	struct vm *vm = NULL;
	char reason[REASON_MAX] = "";
	int r = vm_attach("beta", "vm1", qm.sock_a, &vm, reason);

	if (r < 0)
		fail_msg("vm_attach: %s: %s", errno_name(r), reason);
	return vm;
}

/* ---- callbacks ---- */

struct events {
	pthread_mutex_t lock;
	int deleted;
	char deleted_dev[DEVICE_ID_MAX];
	int deleted_err;
	int gone;
	int gone_err;
	char gone_reason[REASON_MAX];
};

static void ev_init(struct events *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
}

static void on_deleted(struct vm *vm, const char *devid, int err,
		       const char *reason, void *arg)
{
	struct events *e = arg;

	pthread_mutex_lock(&e->lock);
	e->deleted++;
	e->deleted_err = err;
	snprintf(e->deleted_dev, sizeof(e->deleted_dev), "%s", devid);
	pthread_mutex_unlock(&e->lock);
}

static void on_gone(struct vm *vm, int err, const char *reason, void *arg)
{
	struct events *e = arg;

	pthread_mutex_lock(&e->lock);
	e->gone++;
	e->gone_err = err;
	snprintf(e->gone_reason, sizeof(e->gone_reason), "%s", reason);
	pthread_mutex_unlock(&e->lock);
}

static bool ev_wait(struct events *e, int *v, int want, unsigned ms)
{
	double end = qemu_now_ms() + ms;
	int now;

	for (;;) {
		pthread_mutex_lock(&e->lock);
		now = *v;
		pthread_mutex_unlock(&e->lock);
		if (now >= want || qemu_now_ms() > end)
			return now >= want;
		qemu_sleep_ms(5);
	}
}

/* ---- pure functions ---- */

static void test_ids(void **state)
{
	char buf[VM_QDEV_ID_MAX];

	assert_int_equal(vm_qdev_id(DEV, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, DEV_QDEV);
	assert_int_equal(vm_memdev_id(DEV, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, DEV_MEMDEV);
	assert_int_equal(vm_qdev_id("node_b-1:0000:00:1f.7", 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lendfs-node_b-1-0000-00-1f-7-bar2");
	assert_int_equal(vm_qdev_id(DEV, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, DEV_QDEV0);
	assert_int_equal(vm_qdev_id(DEV, PCI_NUM_BARS, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_qdev_id("a b", 2, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_qdev_id("a/b", 2, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_qdev_id("", 2, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vm_qdev_id(DEV, 2, buf, 10), -ENAMETOOLONG);
}

static void test_memory_format(void **state)
{
	struct vm_memory m = {
		.ram = { { 0, 0xbfffffff }, { 0x100000000ULL, 0x13fffffffULL } },
		.nram = 2,
		.has_pci_hole = true,
		.pci_hole = { 0xc0000000, 0xfebfffff },
		.has_pci_hole64 = true,
		.pci_hole64 = { 0x140000000ULL, 0x1bfffffffULL },
	};
	char buf[VM_MEMORY_TEXT_MAX];
	const char *want = "ram 0x0-0xbfffffff\n"
			   "pci-hole 0xc0000000-0xfebfffff\n"
			   "ram 0x100000000-0x13fffffff\n"
			   "pci-hole64 0x140000000-0x1bfffffff\n";

	assert_int_equal(vm_memory_format(&m, buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(vm_memory_format(&m, buf, 20), -ENOSPC);
	m.nram = 0;
	m.has_pci_hole = m.has_pci_hole64 = false;
	assert_int_equal(vm_memory_format(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

/* q35 -m 4G, as QEMU 7.2 prints it (the system view is not the first) */
static const char mtree_q35_4g[] =
	"FlatView #0\n"
	" AS \"I/O\", root: io\n"
	" Root memory region: io\n"
	"  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan\n"
	"\n"
	"FlatView #1\n"
	" AS \"mch\", root: bus master container\n"
	" Root memory region: (none)\n"
	"  No rendered FlatView\n"
	"\n"
	"FlatView #2\n"
	" AS \"memory\", root: system\n"
	" AS \"cpu-memory-0\", root: system\n"
	" Root memory region: system\n"
	"  0000000000000000-00000000000c2fff (prio 0, ram): pc.ram\n"
	"  00000000000c3000-00000000000e7fff (prio 0, rom): pc.ram @00000000000c3000\n"
	"  00000000000e8000-00000000000effff (prio 0, ram): pc.ram @00000000000e8000\n"
	"  00000000000f0000-00000000000fffff (prio 0, rom): pc.ram @00000000000f0000\n"
	"  0000000000100000-000000007fffffff (prio 0, ram): pc.ram @0000000000100000\n"
	"  00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio\n"
	"  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic\n"
	"  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n"
	"  0000000100000000-000000017fffffff (prio 0, ram): pc.ram @0000000080000000\n"
	"\n"
	"FlatView #3\n"
	" AS \"cpu-smm-0\", root: memory\n"
	" Root memory region: memory\n"
	"  0000000000000000-00000000000c2fff (prio 0, ram): pc.ram\n"
	"  0000000200000000-000000027fffffff (prio 0, ram): pc.ram @0000000080000000\n";

static void test_parse_mtree(void **state)
{
	struct vm_memory m;
	char reason[REASON_MAX] = "";

	assert_int_equal(vm_memory_parse_mtree(mtree_q35_4g, NULL, &m, reason), 0);
	assert_int_equal(m.nram, 2);
	assert_int_equal(m.ram[0].start, 0);
	assert_int_equal(m.ram[0].end, 0x7fffffff);
	assert_int_equal(m.ram[1].start, 0x100000000ULL);
	assert_int_equal(m.ram[1].end, 0x17fffffffULL);
	assert_int_equal(m.below_4g, 2ULL << 30);
	assert_int_equal(m.above_4g, 2ULL << 30);
	assert_false(m.has_pci_hole);
	assert_string_equal(m.source, "mtree");

	assert_int_equal(vm_memory_parse_mtree(mtree_q35_4g, "mem0", &m, reason),
			 -ENOENT);
	assert_non_null(strstr(reason, "no mem0 region"));
	assert_int_equal(vm_memory_parse_mtree("FlatView #0\n", NULL, &m, reason),
			 -ENOENT);
}

static void test_attach_bad_input(void **state)
{
	struct vm *vm = (void *)1;
	char reason[REASON_MAX] = "";

	assert_int_equal(vm_attach("beta", "vm1", "/nonexistent/lendfs/qmp", &vm,
				   reason), -ENOENT);
	assert_null(vm);
	assert_string_equal(reason, "vm beta/vm1: qmp /nonexistent/lendfs/qmp: "
				    "cannot connect: No such file or directory");
	assert_int_equal(vm_attach("be ta", "vm1", "/x", &vm, reason), -EINVAL);
	assert_non_null(strstr(reason, "invalid host name"));
	assert_int_equal(vm_attach("beta", "vm.1", "/x", &vm, reason), -EINVAL);
	assert_non_null(strstr(reason, "invalid vm name"));
	assert_int_equal(vm_attach("beta", "vm1", "", &vm, reason), -EINVAL);
}

/* ---- memory probe ---- */

static void probe(const char *machine, const char *mem, const char *want_text,
		  uint64_t below, uint64_t above)
{
	struct vm *vm;
	struct vm_memory m, last, mt;
	char text[VM_MEMORY_TEXT_MAX], reason[REASON_MAX] = "";
	char *mtree;

	start_or_fail(machine, mem, NULL);
	vm = attach();
	/* vm_attach() probed already */
	vm_memory_last(vm, &last);
	assert_int_equal(vm_probe_memory(vm, &m, reason), 0);
	assert_memory_equal(&m, &last, sizeof(m));
	assert_string_equal(m.source, "qom");
	assert_true(vm_memory_format(&m, text, sizeof(text)) > 0);
	assert_string_equal(text, want_text);
	assert_int_equal(m.below_4g, below);
	assert_int_equal(m.above_4g, above);
	assert_non_null(strstr(m.machine, machine[0] == 'q' ? "q35" : "i440fx"));

	/* the fall-back agrees: every RAM piece of the flat view is inside */
	mtree = qemu_b_hmp(&qm, "info mtree -f");
	assert_int_equal(vm_memory_parse_mtree(mtree, NULL, &mt, reason), 0);
	free(mtree);
	for (unsigned i = 0; i < mt.nram; i++) {
		bool inside = false;

		for (unsigned j = 0; j < m.nram; j++)
			inside |= mt.ram[i].start >= m.ram[j].start &&
				  mt.ram[i].end <= m.ram[j].end;
		assert_true(inside);
	}
	assert_int_equal(mt.ram[0].start, 0);
	assert_int_equal(mt.ram[mt.nram - 1].end, m.ram[m.nram - 1].end);
	vm_detach(vm);
}

static void test_probe_pc_512m(void **state)
{
	NEED_QEMU();
	probe("pc", "512", "ram 0x0-0x1fffffff\n"
			   "pci-hole 0x20000000-0xfebfffff\n"
			   "pci-hole64 0x100000000-0x17fffffff\n"
			   "not-shared /objects/pc.ram is memory-backend-ram, not a memory-backend-file\n",
	      512 * MIB, 0);
}

static void test_probe_pc_3g(void **state)
{
	NEED_QEMU();
	/* 3G is below the 3.5G lowmem limit: all of it stays below 4 GiB */
	probe("pc", "3G", "ram 0x0-0xbfffffff\n"
			  "pci-hole 0xc0000000-0xfebfffff\n"
			  "pci-hole64 0x100000000-0x17fffffff\n"
			  "not-shared /objects/pc.ram is memory-backend-ram, not a memory-backend-file\n",
	      3072 * MIB, 0);
}

static void test_probe_pc_4g(void **state)
{
	NEED_QEMU();
	probe("pc", "4G", "ram 0x0-0xbfffffff\n"
			  "pci-hole 0xc0000000-0xfebfffff\n"
			  "ram 0x100000000-0x13fffffff\n"
			  "pci-hole64 0x140000000-0x1bfffffff\n"
			  "not-shared /objects/pc.ram is memory-backend-ram, not a memory-backend-file\n",
	      3072 * MIB, 1024 * MIB);
}

static void test_probe_q35_4g(void **state)
{
	NEED_QEMU();
	probe("q35", "4G", "ram 0x0-0x7fffffff\n"
			   "pci-hole 0x80000000-0xfebfffff\n"
			   "ram 0x100000000-0x17fffffff\n"
			   "pci-hole64 0x180000000-0x97fffffff\n"
			   "not-shared /objects/pc.ram is memory-backend-ram, not a memory-backend-file\n",
	      2048 * MIB, 2048 * MIB);
}

/*
 * Guest RAM from a memory-backend-file (issue 20): shared only with
 * share=on and one RAM range from 0 (file offset == guest physical).
 */
static void probe_backend_case(const char *mem, const char *share, bool replace,
			       const char *want)
{
	char dir[] = "/tmp/lendfs-vmram-XXXXXX", ram[64], obj[256], text[VM_MEMORY_TEXT_MAX];
	char reason[REASON_MAX] = "", want_line[512];
	const char *extra[] = { "-object", obj, "-machine", "memory-backend=ram0", NULL };
	struct vm_memory m;
	struct vm *vm;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(ram, sizeof(ram), "%s/ram", dir);
	fd = open(ram, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(obj, sizeof(obj), "memory-backend-file,id=ram0,size=%s,mem-path=%s,share=%s",
		 mem, ram, share);
	start_or_fail("pc", mem, extra);
	vm = attach();
	if (replace) { /* another file at mem-path: not what QEMU maps */
		assert_int_equal(unlink(ram), 0);
		fd = open(ram, O_CREAT | O_RDWR, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 512 * MIB), 0);
		close(fd);
	}
	assert_int_equal(vm_probe_memory(vm, &m, reason), 0);
	assert_true(vm_memory_format(&m, text, sizeof(text)) > 0);
	snprintf(want_line, sizeof(want_line), want, ram);
	assert_non_null(strstr(text, want_line));
	assert_int_equal(m.shared, strncmp(want, "\nshared", 7) == 0);
	if (m.shared)
		assert_string_equal(m.backend_file, ram);
	vm_detach(vm);
	qemu_stop(&qm);
	unlink(ram);
	rmdir(dir);
}

static void test_probe_backend_file(void **state)
{
	NEED_QEMU();
	probe_backend_case("512M", "on", false, "\nshared %s\n");
	probe_backend_case("512M", "off", false,
			   "\nnot-shared /objects/ram0 has share=off\n");
	/* the file at mem-path must be the one QEMU maps (/proc/PID/maps) */
	probe_backend_case("512M", "on", true,
			   "\nnot-shared /objects/ram0: the qemu process at the qmp "
			   "socket does not map its mem-path shared (or cannot be seen)\n");
	/* above 4 GiB the file offset is not the guest-physical address */
	probe_backend_case("4G", "on", false,
			   "\nnot-shared /objects/ram0: guest ram in 2 "
			   "ranges, not one from 0 inside the file\n");
}

static void test_probe_isapc_fallback(void **state)
{
	struct vm *vm;
	struct vm_memory m;
	char text[VM_MEMORY_TEXT_MAX], bar[128], reason[REASON_MAX] = "";

	NEED_QEMU();
	/* no PCI host bridge: the layout comes from "info mtree -f" */
	start_or_fail("isapc", "256", NULL);
	vm = attach();
	assert_int_equal(vm_probe_memory(vm, &m, reason), 0);
	assert_string_equal(m.source, "mtree");
	assert_string_equal(m.machine, "isapc-machine");
	assert_true(vm_memory_format(&m, text, sizeof(text)) > 0);
	/* the option ROM and BIOS areas (pc.rom, pc.bios) are not RAM */
	assert_string_equal(text, "ram 0x0-0xbffff\n"
				  "ram 0x100000-0xfffffff\n"
				  "not-shared /objects/pc.ram is memory-backend-ram, "
				  "not a memory-backend-file\n");
	assert_int_equal(m.below_4g, 256 * MIB - 0x40000);
	make_bar("bar0", MIB, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 1000, reason), -ENOTSUP);
	assert_non_null(strstr(reason, "no known hot-pluggable pci bus"));
	vm_detach(vm);
}

/* ---- hot-plug ---- */

struct ejector {
	unsigned delay_ms;
	int slot;
	int bsel; /* -1: -machine pc */
};

static void *eject_main(void *arg)
{
	struct ejector *e = arg;

	qemu_sleep_ms(e->delay_ms);
	if (e->bsel < 0)
		qemu_b_acpi_eject_pc(&qm, e->slot);
	else
		qemu_b_acpi_eject_q35(&qm, e->bsel, e->slot);
	return NULL;
}

/*
 * The guest acknowledges slot @slot late: the pending removal of DEV
 * completes by itself, once, and leaves neither its device nor its
 * backend in QEMU.
 */
static void late_ack_completes(struct events *ev, struct vm *vm, int slot)
{
	qemu_b_acpi_eject_pc(&qm, slot);
	assert_true(ev_wait(ev, &ev->deleted, 1, 3000));
	assert_string_equal(ev->deleted_dev, DEV);
	assert_int_equal(ev->deleted_err, 0);
	assert_int_equal(vm_pending_removals(vm), 0);
	assert_null(qemu_b_pci_device(&qm, DEV_QDEV));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));
}

/* Read @len bytes of guest-physical memory at @addr with `xp`. */
static void guest_read(uint64_t addr, uint8_t *out, size_t len)
{
	char *text = qemu_b_hmp(&qm, "xp /%zuxb 0x%" PRIx64, len, addr);
	const char *p = text;
	size_t n = 0;

	/* "00000000e0000000: 0x48 0x45 ...\r\n" */
	while (n < len && (p = strstr(p, "0x"))) {
		unsigned v;

		if (p > text && p[-1] != ' ') { /* the address column */
			p += 2;
			continue;
		}
		assert_int_equal(sscanf(p, "0x%x", &v), 1);
		out[n++] = (uint8_t)v;
		p += 2;
	}
	if (n != len)
		fail_msg("xp 0x%" PRIx64 ": %s", addr, text);
	free(text);
}

static void test_hotplug_roundtrip(void **state)
{
	struct vm *vm;
	struct vm_pci_dev info;
	struct json_object *dev;
	char bar[128], reason[REASON_MAX] = "";
	uint8_t pattern[16], seen[16];
	int64_t addr = 0;
	bool present;
	pthread_t t;
	struct ejector ej = { .delay_ms = 200, .slot = 2, .bsel = -1 };
	double t0;
	int fd;

	NEED_QEMU();
	/*
	 * -S: the vCPU never runs, so SeaBIOS's own PCI set-up (0xcf8/0xcfc)
	 * cannot interleave with the test's config cycles below.
	 */
	start_or_fail("pc", "512", (const char *const[]){ "-S", NULL });
	vm = attach();
	make_bar("bar0", MIB, bar, sizeof(bar));

	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_false(present);
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);

	/* the guest's view, through the test's own monitor */
	dev = qemu_b_pci_device(&qm, DEV_QDEV);
	assert_non_null(dev);
	assert_int_equal(qemu_pci_int(dev, "bus"), 0);
	assert_int_equal(qemu_pci_int(dev, "slot"), 2); /* first free with -nodefaults */
	assert_int_equal(qemu_pci_bar(dev, 2, &addr), (int64_t)MIB);
	assert_int_equal(addr, -1); /* no guest OS: unassigned */
	assert_int_equal(qemu_pci_bar(dev, 0, NULL), 256); /* ivshmem registers */
	assert_int_equal(qemu_pci_bar(dev, 1, NULL), -1);
	json_object_put(dev);
	assert_true(qemu_b_has_object(&qm, DEV_MEMDEV));

	assert_int_equal(vm_device_info(vm, DEV, 2, &info, reason), 0);
	assert_int_equal(info.slot, 2);
	assert_string_equal(info.bus_id, "pci.0");
	assert_int_equal(info.bar_size[2], MIB);
	assert_int_equal(info.bar_addr[2], UINT64_MAX);
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_true(present);

	/* adding it twice is refused */
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), -EEXIST);
	assert_non_null(strstr(reason, "already in the guest"));

	/* play the BIOS: BAR2 at 0xe0000000, then bytes from the file */
	qemu_b_program_bar64(&qm, 2, 2, 0xe0000000ULL);
	assert_int_equal(vm_device_info(vm, DEV, 2, &info, reason), 0);
	assert_int_equal(info.bar_addr[2], 0xe0000000ULL);
	fd = open(bar, O_RDWR);
	assert_true(fd >= 0);
	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(0xa5 ^ (i * 7));
	assert_int_equal(pwrite(fd, pattern, sizeof(pattern), 0x1000), sizeof(pattern));
	guest_read(0xe0001000ULL, seen, sizeof(seen));
	assert_memory_equal(seen, pattern, sizeof(pattern));
	/* shared, not copied: a second write shows too, at the BAR's end */
	memcpy(pattern, "lendfs-vm-bytes!", 16);
	assert_int_equal(pwrite(fd, pattern, 16, MIB - 16), 16);
	guest_read(0xe0000000ULL + MIB - 16, seen, 16);
	assert_memory_equal(seen, pattern, 16);
	close(fd);

	/* hot-remove, the guest acknowledges 200 ms later */
	t0 = qemu_now_ms();
	assert_int_equal(pthread_create(&t, NULL, eject_main, &ej), 0);
	assert_int_equal(vm_hotplug_del(vm, DEV, 3000, reason), 0);
	assert_true(qemu_now_ms() - t0 >= 150);
	pthread_join(t, NULL);
	dev = qemu_b_pci_device(&qm, DEV_QDEV);
	assert_null(dev);
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));
	assert_int_equal(vm_pending_removals(vm), 0);
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_false(present);
	/* removing what is not there is fine */
	assert_int_equal(vm_hotplug_del(vm, DEV, 500, reason), 0);

	/* and it can be lent again */
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);
	assert_int_equal(vm_device_info(vm, DEV, 2, &info, reason), 0);
	assert_int_equal(info.slot, 2);
	vm_detach(vm);
}

static void test_hotplug_del_timeout(void **state)
{
	struct vm *vm;
	static struct events ev; /* outlives a failed test's callbacks */
	struct json_object *dev;
	char bar[128], reason[REASON_MAX] = "";
	double t0;

	NEED_QEMU();
	ev_init(&ev);
	start_or_fail("pc", "512", NULL);
	vm = attach();
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	make_bar("bar0", MIB, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);

	/* nobody acknowledges */
	t0 = qemu_now_ms();
	assert_int_equal(vm_hotplug_del(vm, DEV, 300, reason), -ETIMEDOUT);
	assert_true(qemu_now_ms() - t0 >= 290);
	assert_true(qemu_now_ms() - t0 < 2000);
	assert_string_equal(reason,
			    "vm beta/vm1: the guest did not acknowledge the removal of "
			    DEV " within 300 ms; it stays pending");
	assert_int_equal(vm_pending_removals(vm), 1);
	dev = qemu_b_pci_device(&qm, DEV_QDEV);
	assert_non_null(dev); /* still in the guest */
	json_object_put(dev);
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), -EBUSY);
	assert_non_null(strstr(reason, "still pending"));
	assert_int_equal(ev.deleted, 0);

	/* the guest acknowledges late: the removal completes by itself */
	late_ack_completes(&ev, vm, 2);

	/* a second timeout, then a retry that is acknowledged in time */
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);
	assert_int_equal(vm_hotplug_del(vm, DEV, 200, reason), -ETIMEDOUT);
	{
		struct ejector ej = { .delay_ms = 100, .slot = 2, .bsel = -1 };
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, eject_main, &ej), 0);
		assert_int_equal(vm_hotplug_del(vm, DEV, 3000, reason), 0);
		pthread_join(t, NULL);
	}
	assert_int_equal(vm_pending_removals(vm), 0);
	qemu_sleep_ms(100);
	assert_int_equal(ev.deleted, 1); /* reported synchronously, not twice */
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));
	assert_int_equal(ev.gone, 0);
	vm_detach(vm);
}

/* Is @qdev in the guest, in @slot of bus 0, with BAR2 of @size? */
static void assert_in_guest(const char *qdev, int slot, uint64_t size)
{
	struct json_object *dev = qemu_b_pci_device(&qm, qdev);

	if (!dev)
		fail_msg("%s is not in query-pci", qdev);
	assert_int_equal(qemu_pci_int(dev, "bus"), 0);
	assert_int_equal(qemu_pci_int(dev, "slot"), slot);
	assert_int_equal(qemu_pci_bar(dev, 2, NULL), (int64_t)size);
	json_object_put(dev);
}

/*
 * A device with two memory BARs: one ivshmem-plain each, at its size; the
 * removal completes only once the guest has acknowledged both.
 */
static void test_hotplug_two_bars(void **state)
{
	static struct events ev; /* outlives a failed test's callbacks */
	struct vm *vm;
	struct vm_pci_dev info;
	char b0[128], b2[128], reason[REASON_MAX] = "";
	struct ejector ej = { .delay_ms = 100, .slot = 2, .bsel = -1 };
	bool present = false;
	pthread_t t;

	NEED_QEMU();
	ev_init(&ev);
	start_or_fail("pc", "512", NULL);
	vm = attach();
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	make_bar("bar0", MIB, b0, sizeof(b0));
	make_bar("bar2", 2 * MIB, b2, sizeof(b2));
	{
		struct vm_bar bars[] = { { 0, MIB, b0 }, { 2, 2 * MIB, b2 } };

		assert_int_equal(vm_hotplug_add(vm, DEV, bars, 2, 3000, reason), 0);
		assert_int_equal(vm_hotplug_add(vm, DEV, bars, 2, 3000, reason),
				 -EEXIST);
		bars[1].index = 0; /* the same BAR twice */
		assert_int_equal(vm_hotplug_add(vm, DEV2, bars, 2, 3000, reason),
				 -EINVAL);
		assert_int_equal(vm_hotplug_add(vm, DEV2, bars, 0, 3000, reason),
				 -EINVAL);
	}
	assert_in_guest(DEV_QDEV0, 2, MIB);
	assert_in_guest(DEV_QDEV, 3, 2 * MIB);
	assert_true(qemu_b_has_object(&qm, DEV_MEMDEV0));
	assert_true(qemu_b_has_object(&qm, DEV_MEMDEV));
	assert_int_equal(vm_device_info(vm, DEV, 0, &info, reason), 0);
	assert_int_equal(info.bar_size[2], MIB);
	assert_int_equal(vm_device_info(vm, DEV, 2, &info, reason), 0);
	assert_int_equal(info.bar_size[2], 2 * MIB);
	assert_int_equal(vm_device_info(vm, DEV, 1, &info, reason), -ENOENT);
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_true(present);

	/* the guest ejects only bar0's slot: the removal stays pending */
	assert_int_equal(pthread_create(&t, NULL, eject_main, &ej), 0);
	assert_int_equal(vm_hotplug_del(vm, DEV, 600, reason), -ETIMEDOUT);
	pthread_join(t, NULL);
	assert_int_equal(vm_pending_removals(vm), 1);
	assert_null(qemu_b_pci_device(&qm, DEV_QDEV0));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV0));
	assert_in_guest(DEV_QDEV, 3, 2 * MIB);
	assert_true(qemu_b_has_object(&qm, DEV_MEMDEV));
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_true(present);
	qemu_sleep_ms(100);
	assert_int_equal(ev.deleted, 0);

	/* the second acknowledgement completes it, once */
	late_ack_completes(&ev, vm, 3);
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_false(present);
	qemu_sleep_ms(100);
	assert_int_equal(ev.deleted, 1);
	vm_detach(vm);
}

static void test_hotplug_bad_input(void **state)
{
	struct vm *vm;
	char bar[128], reason[REASON_MAX] = "";
	struct json_object *st;

	NEED_QEMU();
	start_or_fail("pc", "512", NULL);
	vm = attach();
	make_bar("bar3m", 3 * MIB, bar, sizeof(bar));
	/* QEMU 7.2 aborts on a BAR that is not a power of two: refused first */
	assert_int_equal(add1(vm, DEV, bar, 3 * MIB, 3000, reason), -EINVAL);
	assert_non_null(strstr(reason, "power of two"));
	assert_int_equal(add1(vm, DEV, bar, 256, 3000, reason), -EINVAL);
	assert_int_equal(add1(vm, DEV, "bar0", MIB, 3000, reason), -EINVAL);
	assert_non_null(strstr(reason, "absolute"));
	assert_int_equal(add1(vm, "bad id", bar, MIB, 3000, reason), -EINVAL);

	/* a missing file (QEMU would create it) or one of the wrong size */
	snprintf(bar, sizeof(bar), "%s/missing", qm.dir);
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), -ENOENT);
	assert_non_null(strstr(reason, "vm beta/vm1: bar file "));
	assert_non_null(strstr(reason, "No such file or directory"));
	assert_int_equal(access(bar, F_OK), -1);
	make_bar("bar2m", 2 * MIB, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), -EINVAL);
	assert_non_null(strstr(reason, "is 0x200000 bytes, not 0x100000"));
	assert_int_equal(add1(vm, DEV, qm.dir, MIB, 3000, reason), -EINVAL);
	assert_non_null(strstr(reason, "not a regular file"));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));
	assert_null(qemu_b_pci_device(&qm, DEV_QDEV));

	st = qemu_b_cmd(&qm, "{\"execute\":\"query-status\"}");
	assert_non_null(qemu_b_return(st)); /* QEMU is alive */
	json_object_put(st);
	vm_detach(vm);
}

struct del_arg {
	struct vm *vm;
	int r;
	char reason[REASON_MAX];
	double ms;
};

static void *del_main(void *arg)
{
	struct del_arg *d = arg;
	double t0 = qemu_now_ms();

	d->r = vm_hotplug_del(d->vm, DEV, 5000, d->reason);
	d->ms = qemu_now_ms() - t0;
	return NULL;
}

static void test_qemu_killed(void **state)
{
	struct vm *vm;
	static struct events ev; /* outlives a failed test's callbacks */
	struct del_arg d = { 0 };
	char bar[128], reason[REASON_MAX] = "";
	struct vm_memory m;
	bool present;
	pthread_t t;

	NEED_QEMU();
	ev_init(&ev);
	start_or_fail("pc", "512", NULL);
	vm = attach();
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	make_bar("bar0", MIB, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);
	assert_true(vm_connected(vm, NULL));

	/* QEMU dies while a removal waits for the guest */
	d.vm = vm;
	assert_int_equal(pthread_create(&t, NULL, del_main, &d), 0);
	qemu_sleep_ms(200);
	qemu_kill(&qm);
	pthread_join(t, NULL);
	assert_int_equal(d.r, -ECONNRESET);
	assert_true(d.ms < 3000);
	assert_non_null(strstr(d.reason, "qemu closed the qmp connection"));

	assert_true(ev_wait(&ev, &ev.gone, 1, 3000));
	assert_int_equal(ev.gone_err, -ECONNRESET);
	assert_non_null(strstr(ev.gone_reason, "vm beta/vm1: qemu closed the qmp "
					       "connection at"));
	assert_int_equal(ev.deleted, 0);
	assert_false(vm_connected(vm, reason));
	assert_int_equal(vm_pending_removals(vm), 0);

	assert_int_equal(add1(vm, DEV2, bar, MIB, 3000, reason), -ECONNRESET);
	assert_true(strncmp(reason, "vm beta/vm1: qemu closed the qmp connection at ",
			    47) == 0);
	assert_non_null(strstr(reason, qm.sock_a));
	assert_int_equal(vm_hotplug_del(vm, DEV, 300, reason), -ECONNRESET);
	assert_int_equal(vm_probe_memory(vm, &m, reason), -ECONNRESET);
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), -ECONNRESET);
	vm_detach(vm);
	assert_int_equal(ev.gone, 1);
}

static void test_gone_before_callbacks(void **state)
{
	struct vm *vm;
	static struct events ev; /* outlives a failed test's callbacks */

	NEED_QEMU();
	ev_init(&ev);
	start_or_fail("pc", "512", NULL);
	vm = attach();
	qemu_kill(&qm);
	qemu_sleep_ms(300);
	/* reported when the callbacks are set, not lost */
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	assert_int_equal(ev.gone, 1);
	assert_non_null(strstr(ev.gone_reason, "vm beta/vm1: "));
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	assert_int_equal(ev.gone, 1);
	vm_detach(vm);
}

static void detach_on_gone(struct vm *vm, int err, const char *reason, void *arg)
{
	on_gone(vm, err, reason, arg);
	vm_detach(vm); /* from the VM's own callback */
}

static void test_detach_from_gone_callback(void **state)
{
	static struct events ev; /* outlives a failed test's callbacks */
	struct vm *vm;

	NEED_QEMU();
	ev_init(&ev);
	start_or_fail("pc", "512", NULL);
	vm = attach();
	vm_set_callbacks(vm, on_deleted, detach_on_gone, &ev);
	qemu_kill(&qm);
	assert_true(ev_wait(&ev, &ev.gone, 1, 3000));
	qemu_sleep_ms(50); /* the dispatcher frees the connection on return */
	assert_int_equal(ev.gone, 1);
	assert_non_null(strstr(ev.gone_reason, "vm beta/vm1: qemu closed"));
}

static void test_reattach_keeps_device(void **state)
{
	struct vm *vm;
	char bar[128], reason[REASON_MAX] = "";
	struct ejector ej = { .delay_ms = 100, .slot = 2, .bsel = -1 };
	bool present;
	pthread_t t;

	NEED_QEMU();
	start_or_fail("pc", "512", NULL);
	vm = attach();
	make_bar("bar0", MIB, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);
	vm_detach(vm); /* the daemon goes away; the guest keeps the device */

	vm = attach();
	assert_int_equal(vm_has_device(vm, DEV, &present, reason), 0);
	assert_true(present);
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), -EEXIST);
	{
		struct json_object *dev = qemu_b_pci_device(&qm, DEV_QDEV);

		assert_non_null(dev);
		json_object_put(dev);
	}
	assert_int_equal(pthread_create(&t, NULL, eject_main, &ej), 0);
	assert_int_equal(vm_hotplug_del(vm, DEV, 3000, reason), 0);
	pthread_join(t, NULL);
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));
	vm_detach(vm);
}

static void test_q35_root_port(void **state)
{
	static const char *const ports[] = {
		"-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1", NULL
	};
	struct vm *vm;
	struct vm_pci_dev info;
	struct json_object *r, *dev;
	char bar[128], bar2[128], reason[REASON_MAX] = "";
	struct ejector ej = { .delay_ms = 100, .slot = 0 };
	pthread_t t;

	NEED_QEMU();
	start_or_fail("q35", "512", ports);
	vm = attach();
	make_bar("bar0", MIB, bar, sizeof(bar));
	make_bar("bar1", 2 * MIB, bar2, sizeof(bar2));
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), 0);
	assert_int_equal(vm_device_info(vm, DEV, 2, &info, reason), 0);
	assert_string_equal(info.bus_id, "rp0");
	assert_int_equal(info.bus, 1);
	assert_int_equal(info.slot, 0);
	assert_int_equal(info.bar_size[2], MIB);
	dev = qemu_b_pci_device(&qm, DEV_QDEV);
	assert_non_null(dev);
	assert_int_equal(qemu_pci_bar(dev, 2, NULL), (int64_t)MIB);
	json_object_put(dev);

	/* the only root port is taken */
	assert_int_equal(add1(vm, DEV2, bar2, 2 * MIB, 3000, reason), -ENOSPC);
	assert_non_null(strstr(reason, "no free pcie-root-port"));

	/* ACPI eject behind the root port: select its bus (bsel), slot 0 */
	r = qemu_b_cmd(&qm, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":"
			    "\"/machine/peripheral/rp0/rp0\",\"property\":"
			    "\"acpi-pcihp-bsel\"}}");
	assert_non_null(qemu_b_return(r));
	ej.bsel = json_object_get_int(qemu_b_return(r));
	json_object_put(r);
	assert_int_equal(pthread_create(&t, NULL, eject_main, &ej), 0);
	assert_int_equal(vm_hotplug_del(vm, DEV, 3000, reason), 0);
	pthread_join(t, NULL);
	assert_null(qemu_b_pci_device(&qm, DEV_QDEV));

	/* the port is free again */
	assert_int_equal(add1(vm, DEV2, bar2, 2 * MIB, 3000, reason), 0);
	vm_detach(vm);
}

static void test_q35_no_root_port(void **state)
{
	struct vm *vm;
	char bar[128], reason[REASON_MAX] = "";

	NEED_QEMU();
	start_or_fail("q35", "512", NULL);
	vm = attach();
	make_bar("bar0", MIB, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 3000, reason), -ENOSPC);
	assert_non_null(strstr(reason, "start qemu with -device pcie-root-port"));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));
	vm_detach(vm);
}

/*
 * Two BARs, one free root port: the second BAR finds no slot (-ENOSPC)
 * and the first, already in the guest, is unplugged again; without the
 * guest's acknowledgement that finishes in the background.
 */
static void test_q35_bars_partial(void **state)
{
	static const char *const ports[] = {
		"-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1", NULL
	};
	static struct events ev;
	struct vm *vm;
	struct json_object *r;
	char b0[128], b2[128], reason[REASON_MAX] = "";
	struct ejector ej = { .delay_ms = 100, .slot = 0 };
	pthread_t t;

	NEED_QEMU();
	ev_init(&ev);
	start_or_fail("q35", "512", ports);
	vm = attach();
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	make_bar("bar0", MIB, b0, sizeof(b0));
	make_bar("bar2", 2 * MIB, b2, sizeof(b2));
	r = qemu_b_cmd(&qm, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":"
			    "\"/machine/peripheral/rp0/rp0\",\"property\":"
			    "\"acpi-pcihp-bsel\"}}");
	assert_non_null(qemu_b_return(r));
	ej.bsel = json_object_get_int(qemu_b_return(r));
	json_object_put(r);
	struct vm_bar bars[] = { { 0, MIB, b0 }, { 2, 2 * MIB, b2 } };

	/* the guest acknowledges the rollback of bar0 */
	assert_int_equal(pthread_create(&t, NULL, eject_main, &ej), 0);
	assert_int_equal(vm_hotplug_add(vm, DEV, bars, 2, 3000, reason), -ENOSPC);
	pthread_join(t, NULL);
	assert_non_null(strstr(reason, "no free pcie-root-port to hot-plug bar2"));
	assert_int_equal(vm_pending_removals(vm), 0);
	assert_null(qemu_b_pci_device(&qm, DEV_QDEV0));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV0));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV));

	/* it does not (within 1 s): pending, finished when it does */
	assert_int_equal(vm_hotplug_add(vm, DEV, bars, 2, 3000, reason), -ENOSPC);
	assert_int_equal(vm_pending_removals(vm), 1);
	assert_true(qemu_b_has_object(&qm, DEV_MEMDEV0));
	assert_int_equal(vm_hotplug_add(vm, DEV, bars, 2, 3000, reason), -EBUSY);
	qemu_b_acpi_eject_q35(&qm, ej.bsel, 0);
	{
		double end = qemu_now_ms() + 3000;

		while (vm_pending_removals(vm) && qemu_now_ms() < end)
			qemu_sleep_ms(10);
	}
	assert_int_equal(vm_pending_removals(vm), 0);
	qemu_sleep_ms(100);
	assert_null(qemu_b_pci_device(&qm, DEV_QDEV0));
	assert_false(qemu_b_has_object(&qm, DEV_MEMDEV0));
	assert_int_equal(ev.deleted, 0); /* a rollback is not a return */

	/* one BAR fits */
	assert_int_equal(vm_hotplug_add(vm, DEV, bars + 1, 1, 3000, reason), 0);
	vm_detach(vm);
}

/* ---- rollback paths, against a scripted fake QEMU ---- */

enum fake_mode {
	FAKE_ADD_FAILS,	     /* device_add returns an error */
	FAKE_NEVER_LISTED,   /* device_add works, query-pci never shows it */
	FAKE_WRONG_BAR,	     /* query-pci shows it with a 2 MiB BAR2 */
	FAKE_NO_ACK,	     /* like NEVER_LISTED, and device_del is not acked */
};

struct vmfake {
	char dir[64];
	char path[96];
	int lfd, cfd;
	pthread_t th;
	enum fake_mode mode;
	pthread_mutex_t lock;
	char log[2048]; /* "object-add lendfs-mem-...,device_add ...," */
	bool added;
	bool send_late_event; /* set by the test: emit DEVICE_DELETED now */
};

static void vf_send(struct vmfake *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void vf_send(struct vmfake *f, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(f->cfd, buf, (size_t)n) != n)
		return;
}

static const char *vf_arg(struct json_object *req, const char *key)
{
	struct json_object *a, *v;

	if (json_object_object_get_ex(req, "arguments", &a) &&
	    json_object_object_get_ex(a, key, &v))
		return json_object_get_string(v);
	return "";
}

#define FAKE_DEV_JSON(barsize)                                                  \
	"{\"bus\": 0, \"slot\": 3, \"function\": 0, \"qdev_id\": \"" DEV_QDEV     \
	"\", \"class_info\": {\"class\": 1280}, \"regions\": [{\"bar\": 0, "      \
	"\"size\": 256, \"address\": -1, \"type\": \"memory\"}, {\"bar\": 2, "    \
	"\"size\": " barsize ", \"address\": -1, \"type\": \"memory\"}]}"

static void vf_reply(struct vmfake *f, struct json_object *req)
{
	struct json_object *x;
	const char *cmd = "", *prop = vf_arg(req, "property");
	const char *path = vf_arg(req, "path");
	int64_t id = -1;

	if (json_object_object_get_ex(req, "execute", &x))
		cmd = json_object_get_string(x);
	if (json_object_object_get_ex(req, "id", &x))
		id = json_object_get_int64(x);

	pthread_mutex_lock(&f->lock);
	if (strcmp(cmd, "object-add") == 0 || strcmp(cmd, "object-del") == 0 ||
	    strcmp(cmd, "device_add") == 0 || strcmp(cmd, "device_del") == 0) {
		size_t n = strlen(f->log);

		snprintf(f->log + n, sizeof(f->log) - n, "%s %s,", cmd,
			 vf_arg(req, "id"));
	}
	pthread_mutex_unlock(&f->lock);

	if (strcmp(cmd, "qom-get") == 0) {
		uint64_t v = 0;
		bool known = true;

		if (strcmp(path, "/machine/i440fx") != 0 &&
		    strcmp(path, "/machine") != 0)
			known = false;
		else if (strcmp(prop, "pci-hole-start") == 0)
			v = 0x20000000;
		else if (strcmp(prop, "pci-hole-end") == 0)
			v = 0xfec00000;
		else if (strcmp(prop, "pci-hole64-start") == 0)
			v = 0x100000000ULL;
		else if (strcmp(prop, "pci-hole64-end") == 0)
			v = 0x180000000ULL;
		else if (strcmp(prop, "memory") == 0) {
			vf_send(f, "{\"return\": {\"size\": 536870912}, \"id\": %" PRId64
				   "}\r\n", id);
			return;
		} else if (strcmp(prop, "type") == 0) {
			vf_send(f, "{\"return\": \"pc-i440fx-fake\", \"id\": %" PRId64
				   "}\r\n", id);
			return;
		} else
			known = false;
		if (known)
			vf_send(f, "{\"return\": %" PRIu64 ", \"id\": %" PRId64 "}\r\n",
				v, id);
		else
			vf_send(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
				   "\"Property '%s' not found\"}, \"id\": %" PRId64 "}\r\n",
				prop, id);
	} else if (strcmp(cmd, "query-pci") == 0) {
		bool show = f->added && f->mode == FAKE_WRONG_BAR;

		vf_send(f, "{\"return\": [{\"bus\": 0, \"devices\": [%s]}], \"id\": %"
			   PRId64 "}\r\n", show ? FAKE_DEV_JSON("2097152") : "", id);
	} else if (strcmp(cmd, "device_add") == 0 && f->mode == FAKE_ADD_FAILS) {
		vf_send(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
			   "\"PCI: no slot/function available for ivshmem-plain, all "
			   "in use or reserved\"}, \"id\": %" PRId64 "}\r\n", id);
	} else if (strcmp(cmd, "device_add") == 0) {
		f->added = true;
		vf_send(f, "{\"return\": {}, \"id\": %" PRId64 "}\r\n", id);
	} else if (strcmp(cmd, "device_del") == 0) {
		vf_send(f, "{\"return\": {}, \"id\": %" PRId64 "}\r\n", id);
		if (f->mode != FAKE_NO_ACK) {
			f->added = false;
			vf_send(f, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": "
				   "\"%s\", \"path\": \"/machine/peripheral/%s\"}}\r\n",
				vf_arg(req, "id"), vf_arg(req, "id"));
		}
	} else {
		vf_send(f, "{\"return\": {}, \"id\": %" PRId64 "}\r\n", id);
	}
}

static void *vf_main(void *arg)
{
	struct vmfake *f = arg;
	char buf[8192];
	size_t len = 0;

	f->cfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (f->cfd < 0)
		return NULL;
	vf_send(f, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
		   "\"major\": 7}}, \"capabilities\": []}}\r\n");
	for (;;) {
		struct pollfd pfd = { .fd = f->cfd, .events = POLLIN };
		ssize_t n;
		char *nl;

		if (poll(&pfd, 1, 20) == 0) {
			bool late;

			pthread_mutex_lock(&f->lock);
			late = f->send_late_event;
			f->send_late_event = false;
			pthread_mutex_unlock(&f->lock);
			if (late)
				vf_send(f, "{\"event\": \"DEVICE_DELETED\", \"data\": "
					   "{\"device\": \"" DEV_QDEV "\"}}\r\n");
			continue;
		}
		n = read(f->cfd, buf + len, sizeof(buf) - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			struct json_object *req;

			*nl = '\0';
			req = json_tokener_parse(buf);
			if (req)
				vf_reply(f, req);
			json_object_put(req);
			memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
			len -= (size_t)(nl + 1 - buf);
		}
	}
	return NULL;
}

static void vf_start(struct vmfake *f, enum fake_mode mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->cfd = -1;
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-vmfake-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	assert_int_equal(pthread_create(&f->th, NULL, vf_main, f), 0);
}

static void vf_stop(struct vmfake *f)
{
	shutdown(f->lfd, SHUT_RDWR);
	if (f->cfd >= 0)
		shutdown(f->cfd, SHUT_RDWR);
	pthread_join(f->th, NULL);
	if (f->cfd >= 0)
		close(f->cfd);
	close(f->lfd);
	pthread_mutex_destroy(&f->lock);
	assert_int_equal(qemu_rm_dir(f->dir), 0);
}

static struct vm *vf_attach(struct vmfake *f, char *bar, size_t len)
{
	struct vm *vm = NULL;
	char reason[REASON_MAX] = "";
	int fd;

	assert_int_equal(vm_attach("beta", "vm1", f->path, &vm, reason), 0);
	snprintf(bar, len, "%s/bar0", f->dir);
	fd = open(bar, O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, (off_t)MIB), 0);
	close(fd);
	return vm;
}

static void test_rollback_device_add_fails(void **state)
{
	struct vmfake f;
	struct vm *vm;
	struct vm_memory m;
	char bar[128], reason[REASON_MAX] = "";

	vf_start(&f, FAKE_ADD_FAILS);
	vm = vf_attach(&f, bar, sizeof(bar));
	/* i440fx without below/above-4g-mem-size: from the hole and "memory" */
	vm_memory_last(vm, &m);
	assert_int_equal(m.nram, 1);
	assert_int_equal(m.ram[0].end, 0x1fffffff);
	assert_int_equal(m.pci_hole.start, 0x20000000);
	assert_int_equal(m.pci_hole.end, 0xfebfffff);
	assert_string_equal(m.machine, "pc-i440fx-fake");

	assert_int_equal(add1(vm, DEV, bar, MIB, 2000, reason), -ENOSPC);
	assert_string_equal(reason, "vm beta/vm1: cannot add bar2 of " DEV ": qmp device_add: "
				    "PCI: no slot/function available for ivshmem-plain, "
				    "all in use or reserved");
	assert_string_equal(f.log, "object-add " DEV_MEMDEV ",device_add " DEV_QDEV
			    ",object-del " DEV_MEMDEV ",");
	vm_detach(vm);
	vf_stop(&f);
}

static void test_rollback_never_listed(void **state)
{
	struct vmfake f;
	struct vm *vm;
	char bar[128], reason[REASON_MAX] = "";

	vf_start(&f, FAKE_NEVER_LISTED);
	vm = vf_attach(&f, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 300, reason), -ETIMEDOUT);
	assert_non_null(strstr(reason, "not in query-pci within 300 ms"));
	assert_string_equal(f.log, "object-add " DEV_MEMDEV ",device_add " DEV_QDEV
			    ",device_del " DEV_QDEV ",object-del " DEV_MEMDEV ",");
	assert_int_equal(vm_pending_removals(vm), 0);
	vm_detach(vm);
	vf_stop(&f);
}

static void test_rollback_wrong_bar(void **state)
{
	struct vmfake f;
	struct vm *vm;
	char bar[128], reason[REASON_MAX] = "";

	vf_start(&f, FAKE_WRONG_BAR);
	vm = vf_attach(&f, bar, sizeof(bar));
	assert_int_equal(add1(vm, DEV, bar, MIB, 2000, reason), -EIO);
	assert_non_null(strstr(reason, "guest shows bar2 of 0x200000 bytes, not 0x100000"));
	assert_string_equal(f.log, "object-add " DEV_MEMDEV ",device_add " DEV_QDEV
			    ",device_del " DEV_QDEV ",object-del " DEV_MEMDEV ",");
	vm_detach(vm);
	vf_stop(&f);
}

static void test_rollback_unacknowledged(void **state)
{
	struct vmfake f;
	struct vm *vm;
	static struct events ev; /* outlives a failed test's callbacks */
	char bar[128], reason[REASON_MAX] = "";
	double end;

	ev_init(&ev);
	vf_start(&f, FAKE_NO_ACK);
	vm = vf_attach(&f, bar, sizeof(bar));
	vm_set_callbacks(vm, on_deleted, on_gone, &ev);
	assert_int_equal(add1(vm, DEV, bar, MIB, 200, reason), -ETIMEDOUT);
	/* the guest did not let go: the backend stays until it does */
	assert_string_equal(f.log, "object-add " DEV_MEMDEV ",device_add " DEV_QDEV
			    ",device_del " DEV_QDEV ",");
	assert_int_equal(vm_pending_removals(vm), 1);
	assert_int_equal(add1(vm, DEV, bar, MIB, 200, reason), -EBUSY);
	pthread_mutex_lock(&f.lock);
	f.send_late_event = true;
	pthread_mutex_unlock(&f.lock);
	end = qemu_now_ms() + 3000;
	while (vm_pending_removals(vm) && qemu_now_ms() < end)
		qemu_sleep_ms(10);
	assert_int_equal(vm_pending_removals(vm), 0);
	qemu_sleep_ms(50);
	pthread_mutex_lock(&f.lock);
	assert_non_null(strstr(f.log, ",object-del " DEV_MEMDEV ","));
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(ev.deleted, 0); /* a rollback is not a return */
	vm_detach(vm);
	vf_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_memory_format),
		cmocka_unit_test(test_parse_mtree),
		cmocka_unit_test(test_attach_bad_input),
		cmocka_unit_test(test_rollback_device_add_fails),
		cmocka_unit_test(test_rollback_never_listed),
		cmocka_unit_test(test_rollback_wrong_bar),
		cmocka_unit_test(test_rollback_unacknowledged),
		cmocka_unit_test_teardown(test_probe_pc_512m, teardown),
		cmocka_unit_test_teardown(test_probe_pc_3g, teardown),
		cmocka_unit_test_teardown(test_probe_pc_4g, teardown),
		cmocka_unit_test_teardown(test_probe_q35_4g, teardown),
		cmocka_unit_test_teardown(test_probe_backend_file, teardown),
		cmocka_unit_test_teardown(test_probe_isapc_fallback, teardown),
		cmocka_unit_test_teardown(test_hotplug_roundtrip, teardown),
		cmocka_unit_test_teardown(test_hotplug_del_timeout, teardown),
		cmocka_unit_test_teardown(test_hotplug_two_bars, teardown),
		cmocka_unit_test_teardown(test_hotplug_bad_input, teardown),
		cmocka_unit_test_teardown(test_qemu_killed, teardown),
		cmocka_unit_test_teardown(test_gone_before_callbacks, teardown),
		cmocka_unit_test_teardown(test_detach_from_gone_callback, teardown),
		cmocka_unit_test_teardown(test_reattach_keeps_device, teardown),
		cmocka_unit_test_teardown(test_q35_root_port, teardown),
		cmocka_unit_test_teardown(test_q35_no_root_port, teardown),
		cmocka_unit_test_teardown(test_q35_bars_partial, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
