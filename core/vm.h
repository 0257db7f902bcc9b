/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.h - VM borrowers: a running QEMU/KVM guest reached over QMP.
 *
 * A struct vm is one guest ("vm:HOST/VM") and one persistent QMP
 * connection to it (qmp.h), so that events arrive while lendfs is idle.
 * Lending a device to it means, after the engine programmed the DMA
 * windows for the guest RAM ranges (vm_probe_memory()), for each memory
 * BAR N of the device:
 *
 *   object-add memory-backend-file  id "lendfs-mem-<dev>-barN", mem-path =
 *                                   the BAR's file, size, share = true
 *   device_add ivshmem-plain        id "lendfs-<dev>-barN", memdev = the
 *                                   above, on a hot-pluggable bus
 *
 * where <dev> is the device id with ':' and '.' turned into '-'
 * ("nodeA:0000:65:00.0" bar1 -> "lendfs-nodeA-0000-65-00-0-bar1").  An
 * ivshmem-plain device carries one shared memory region, so the guest
 * sees one ivshmem-plain device (1af4:1110, class 0x0500) per lent BAR:
 * its BAR0 is the 256-byte register block, its BAR2 (64-bit,
 * prefetchable) the lent BAR's memory.  The device is in the guest when
 * all of them are, and out of it when the guest acknowledged all
 * removals.
 *
 * Buses: on -machine pc (i440fx) the root bus "pci.0" (ACPI hot-plug,
 * the first free slots, 2, 3, ... with -nodefaults).  On q35 the root bus "pcie.0"
 * cannot hot-plug: the guest must be started with spare root ports, e.g.
 * `-device pcie-root-port,id=rp0,bus=pcie.0,chassis=1`, one per BAR; each
 * BAR's device goes to slot 0 behind the first one with nothing behind it
 * (-ENOSPC when none is free).  Other machine types: -ENOTSUP.
 *
 * Returning it: device_del of each BAR's device, then the guest must
 * acknowledge each unplug (ACPI eject), QEMU emits DEVICE_DELETED for
 * each, then object-del of its backend.  Without every acknowledgement
 * vm_hotplug_del() fails with -ETIMEDOUT and the removal stays pending:
 * as each DEVICE_DELETED arrives later, vm.c does the object-del itself,
 * and calls on_device_deleted once the last one has come.
 *
 * Callbacks run on the QMP dispatcher thread of this VM, with no vm lock
 * held; they may call any vm_*() function on this VM (vm_detach() only as
 * the last thing they do).  After vm_hotplug_del() returned -ETIMEDOUT,
 * exactly one of on_device_deleted (for that device) or on_vm_gone
 * follows, possibly before vm_hotplug_del() has even returned.
 *
 * Threads: vm_* calls on one VM may come from several threads; hot-plug
 * operations on one VM are serialised.  vm_detach() must not race with
 * other calls on the same VM.
 */
#ifndef LENDFS_VM_H
#define LENDFS_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

#define VM_MEM_RANGES_MAX 16
#define VM_TIMEOUT_DEFAULT_MS 5000u /* QMP connect and commands; 0 means it */
#define VM_QDEV_ID_MAX (DEVICE_ID_MAX + 24)
#define VM_BACKEND_PATH_MAX 512
#define VM_MEMORY_TEXT_MAX 2048 /* enough for vm_memory_format() */

/* The guest-physical memory layout.  Ranges are sorted, ends inclusive. */
struct vm_memory {
	struct range ram[VM_MEM_RANGES_MAX]; /* guest RAM (DMA targets) */
	unsigned nram;
	bool has_pci_hole;
	struct range pci_hole; /* 32-bit PCI MMIO hole */
	bool has_pci_hole64;
	struct range pci_hole64; /* 64-bit PCI MMIO window */
	uint64_t below_4g;	 /* bytes of RAM below / above 4 GiB */
	uint64_t above_4g;
	char machine[64]; /* QOM type, "pc-i440fx-7.2-machine" */
	char source[8];	  /* "qom" or "mtree": how it was found */
	/*
	 * The guest RAM's backend (issue 20).  shared: a memory-backend-file
	 * with share=on whose file offset is the guest-physical address of
	 * every RAM range (one range from 0): the fabric may map that file
	 * as the guest's RAM.  Otherwise not_shared says why.
	 */
	bool shared;
	char backend_file[VM_BACKEND_PATH_MAX];
	char not_shared[320];
};

/*
 * One line per range, by address, for the `memory` file:
 *   ram 0x0-0x1fffffff
 *   pci-hole 0x20000000-0xfebfffff
 *   pci-hole64 0x100000000-0x17fffffff
 * then, for a probed VM, "shared FILE" or "not-shared REASON".
 * Returns the length (snprintf-like), or -ENOSPC if @len is too small.
 */
int vm_memory_format(const struct vm_memory *m, char *buf, size_t len);

/*
 * Fill @out->ram from the text of `info mtree -f`: the flat view of the
 * address space "memory", regions of @ram_name ("pc.ram" by default),
 * adjacent pieces merged.  No PCI holes.  -ENOENT if nothing is found.
 */
int vm_memory_parse_mtree(const char *text, const char *ram_name,
			  struct vm_memory *out, char *reason);

/*
 * The guest device of BAR @bar of @devid and its backend:
 * "lendfs-<dev>-barN" / "lendfs-mem-<dev>-barN".  -EINVAL if @devid has
 * other than [A-Za-z0-9_-:.] or is empty or @bar >= PCI_NUM_BARS,
 * -ENAMETOOLONG if it does not fit.
 */
int vm_qdev_id(const char *devid, unsigned bar, char *buf, size_t len);
int vm_memdev_id(const char *devid, unsigned bar, char *buf, size_t len);

/* One memory BAR of a lent device: its index and its file (see below). */
struct vm_bar {
	unsigned index;
	uint64_t size;
	const char *path;
};

struct vm;

/* A pending removal completed late; @err/@reason tell how object-del went. */
typedef void (*vm_device_deleted_fn)(struct vm *vm, const char *devid, int err,
				     const char *reason, void *arg);
/* QEMU exited or closed the QMP socket; every device in it is gone. */
typedef void (*vm_gone_fn)(struct vm *vm, int err, const char *reason,
			   void *arg);

/*
 * Connect to the guest's QMP socket @qmp_path and probe its memory
 * layout.  @host and @name must be name_valid().  Errors: as qmp_connect()
 * (-ENOENT, -ECONNREFUSED, -ETIMEDOUT, ...), or the probe's.
 */
int vm_attach(const char *host, const char *name, const char *qmp_path,
	      struct vm **out, char *reason);

/*
 * Close the connection (devices stay in the guest) and free @vm.  No
 * callback starts once it is called; one that is running is waited for,
 * so do not hold a lock your callbacks take.  It may be called from a
 * callback of this VM (as the last thing the callback does).
 */
void vm_detach(struct vm *vm);

/*
 * Set the callbacks (any may be NULL).  If QEMU has already gone and that
 * was not reported yet, @gone is called before this returns.
 */
void vm_set_callbacks(struct vm *vm, vm_device_deleted_fn deleted,
		      vm_gone_fn gone, void *arg);

const char *vm_host(const struct vm *vm);
const char *vm_name(const struct vm *vm);
const char *vm_qmp_path(const struct vm *vm);

/* False once QEMU has gone; @reason (may be NULL) then says why. */
bool vm_connected(struct vm *vm, char *reason);

/*
 * Query the guest's memory layout now (qom-get on the PCI host bridge,
 * "info mtree -f" as a fall-back); also remembered for vm_memory_last().
 */
int vm_probe_memory(struct vm *vm, struct vm_memory *out, char *reason);

/* The layout found by the last successful probe (vm_attach() does one). */
void vm_memory_last(struct vm *vm, struct vm_memory *out);

/*
 * Hot-add device @devid: one ivshmem-plain per BAR of @bars (1 to
 * PCI_NUM_BARS of them, distinct indices), each backed by its file (an
 * absolute path to an existing regular file of exactly @size bytes: QEMU
 * would silently create a missing one; @size a power of two, at least a
 * page: ivshmem-plain needs it, QEMU 7.2 aborts on other sizes), in the
 * order given.  -ENOENT / -EINVAL when a file is missing or its size
 * differs (checked here, as lendfs and QEMU share the host).  Returns
 * when every device is in the guest's query-pci with BAR2 of its BAR's
 * size, within @timeout_ms (0: VM_TIMEOUT_DEFAULT_MS).  On failure every
 * device added is removed again (a removal the guest does not acknowledge
 * within 1 s is finished in the background, without callback).
 * -EEXIST: one of @bars is already in the guest (other BARs of the
 * device may be: a restart adds the ones missing).  -EBUSY: a removal of
 * the device is still pending, or QEMU has not yet freed the memory of a
 * backend of the same name deleted just before (each BAR waits for that
 * within @timeout_ms: QEMU 7.2 aborts on a device_add meanwhile).  -ENOSPC: no free hot-plug slot for one of
 * the BARs (q35 root port).
 */
int vm_hotplug_add(struct vm *vm, const char *devid, const struct vm_bar *bars,
		   unsigned nbars, unsigned timeout_ms, char *reason);

/*
 * Hot-remove @devid: device_del of every BAR's device in the guest
 * (query-pci) and of those whose removal is pending, wait for the
 * guest's acknowledgement of all of them (DEVICE_DELETED) at most
 * @timeout_ms (0: VM_TIMEOUT_DEFAULT_MS), deleting each backend as its
 * device goes, then the backends left over.  A device that is not in the
 * guest is not an error (its memory backends are still deleted).
 * -ETIMEDOUT: not all acknowledged in time; the removal stays pending and
 * completes by itself when the last one is (see above).
 */
int vm_hotplug_del(struct vm *vm, const char *devid, unsigned timeout_ms,
		   char *reason);

/* Is any BAR of @devid in the guest (query-pci)?  After a daemon restart. */
int vm_has_device(struct vm *vm, const char *devid, bool *present,
		  char *reason);

/* Which BARs of @devid are in the guest (query-pci), as a mask. */
int vm_device_bars(struct vm *vm, const char *devid, unsigned *mask,
		   char *reason);

/* Where the guest has BAR @bar of @devid (query-pci); -ENOENT if not there. */
struct vm_pci_dev {
	unsigned bus, slot, function;
	char bus_id[VM_QDEV_ID_MAX]; /* "pci.0" or the root port's id */
	uint64_t bar_size[PCI_NUM_BARS]; /* 0: no such BAR */
	uint64_t bar_addr[PCI_NUM_BARS]; /* UINT64_MAX: not assigned yet */
};
int vm_device_info(struct vm *vm, const char *devid, unsigned bar,
		   struct vm_pci_dev *out, char *reason);

/* Removals waiting for the guest's acknowledgement. */
unsigned vm_pending_removals(struct vm *vm);

#endif
