/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.h - the cluster configuration (inih format, SPEC section 7).
 *
 * config_load() parses a file with inih and validates it completely: every
 * error is reported as "FILE:LINE: reason" in the caller's buffer and the
 * function returns -EINVAL.  The result is plain data; nothing here knows
 * about the running engine.
 *
 * Sections and keys (unknown ones are errors):
 *
 *   [cluster]  name, inventory (config|udev), fabric (sim|ntb),
 *              ntb_crossing_ns, remote_read_ns, root_complex_ns,
 *              timeout_ms, group, max_requests, vm_unplug_timeout_ms,
 *              session_timeout_ms (zk store), event_retention,
 *              default_lease, metrics_listen (listen.h)
 *   [host NAME]   adapter, iommu, lut_entries, window_max, window_align,
 *                 dma_windows, ram
 *   [switch NAME] latency_ns
 *   [link]     a, b, latency_ns, bandwidth
 *   [device HOST:DDDD:BB:DD.F]  vendor, device, class, subsystem_vendor,
 *              subsystem_device, bar0 .. bar5
 *   [vm HOST/NAME] ram         (optional static VM borrower)
 *   [policy]   autolend (repeatable), deny (repeatable)
 */
#ifndef LENDFS_CONFIG_H
#define LENDFS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "listen.h"
#include "util.h"

#define CONFIG_MAX_BYTES (64u << 20) /* bigger config files are refused */
#define CONFIG_MAX_RAM_RANGES 8
#define PCI_NUM_BARS 6
#define DEVICE_ID_MAX 96	    /* "HOST:DDDD:BB:DD.F" */
#define ERRMSG_MAX (REASON_MAX + 4096 + 32) /* "FILE:LINE: reason" */

struct range {
	uint64_t start;
	uint64_t end; /* inclusive */
};

struct pci_addr {
	uint16_t domain;
	uint8_t bus;
	uint8_t dev; /* 0..31 */
	uint8_t fn;  /* 0..7 */
};

/* "0000:65:00.0" (lower or upper case hex). */
int pci_addr_parse(const char *s, struct pci_addr *out);
void pci_addr_format(const struct pci_addr *a, char *buf, size_t len);

/*
 * "HOST:DDDD:BB:DD.F".  @host must hold HOST_NAME_MAX_LEN + 1 bytes.
 * Returns -EINVAL on any malformed part.
 */
int device_id_parse(const char *id, char *host, struct pci_addr *addr);

/* "0x0-0x7fffffff,0x100000000-0x87fffffff" */
int ram_ranges_parse(const char *s, struct range *out, unsigned max,
		     unsigned *count);

struct cfg_host {
	char name[HOST_NAME_MAX_LEN + 1];
	char adapter[32];
	bool iommu;
	uint32_t lut_entries;	/* NTB translation table size */
	uint64_t window_max;	/* largest window one LUT entry maps, 2^n */
	uint64_t window_align;	/* alignment of every window, 2^n */
	uint32_t dma_windows;	/* large reverse (DMA) windows on the adapter */
	struct range ram[CONFIG_MAX_RAM_RANGES];
	unsigned nram;
	unsigned line;
};

struct cfg_switch {
	char name[HOST_NAME_MAX_LEN + 1];
	uint64_t latency_ns;
	unsigned line;
};

struct cfg_link {
	char a[HOST_NAME_MAX_LEN + 1];
	char b[HOST_NAME_MAX_LEN + 1];
	uint64_t latency_ns;
	uint64_t bandwidth; /* MB/s */
	unsigned line;
};

struct cfg_device {
	char id[DEVICE_ID_MAX];
	char host[HOST_NAME_MAX_LEN + 1];
	struct pci_addr addr;
	uint16_t vendor, device;
	uint16_t subsystem_vendor, subsystem_device;
	uint32_t class;
	uint64_t bar[PCI_NUM_BARS];
	unsigned line;
	/* filled by the udev inventory; empty/-1 for config devices */
	char driver[32];
	int numa_node;
	int iommu_group;
	char deny_reason[128]; /* non-empty: the lender depends on it (EPERM) */
	char borrower[REASON_MAX]; /* LENDFS_BORROWER: lend automatically */
};

struct cfg_vm {
	char host[HOST_NAME_MAX_LEN + 1];
	char name[VM_NAME_MAX_LEN + 1];
	struct range ram[CONFIG_MAX_RAM_RANGES];
	unsigned nram;
	unsigned line;
};

struct cfg_autolend {
	char device[DEVICE_ID_MAX];
	char borrower[REASON_MAX];
	unsigned line;
};

struct cfg_deny {
	char device[DEVICE_ID_MAX];
	unsigned line;
};

struct cluster_config {
	char path[4096];
	char name[HOST_NAME_MAX_LEN + 1];
	char inventory[16]; /* "config" | "udev" */
	char fabric[16];    /* "sim" | "ntb" */
	char group[64];	    /* group allowed to write, default "lendfs" */
	uint64_t ntb_crossing_ns;
	uint64_t remote_read_ns;
	uint64_t root_complex_ns;
	uint32_t timeout_ms;
	uint32_t max_requests;
	uint32_t vm_unplug_timeout_ms; /* a VM guest acknowledges an unplug */
	uint32_t session_timeout_ms;   /* zk store: ZooKeeper session */
	uint32_t event_retention;      /* events kept, at least (events.h) */
	uint32_t default_lease;	       /* s, 0: none; every new lend's lease */
	char metrics_listen[LISTEN_TEXT_MAX]; /* "" : no HTTP endpoint */

	struct cfg_host *hosts;
	unsigned nhosts;
	struct cfg_switch *switches;
	unsigned nswitches;
	struct cfg_link *links;
	unsigned nlinks;
	struct cfg_device *devices;
	unsigned ndevices;
	struct cfg_vm *vms;
	unsigned nvms;
	struct cfg_autolend *autolends;
	unsigned nautolends;
	struct cfg_deny *denies;
	unsigned ndenies;
};

/* Defaults of a [host] section; exported for the udev inventory and tests. */
#define DEFAULT_LUT_ENTRIES 32
#define DEFAULT_WINDOW_MAX (8ULL << 20)
#define DEFAULT_WINDOW_ALIGN (4096ULL)
#define DEFAULT_DMA_WINDOWS 8
#define DEFAULT_RAM_END ((1ULL << 30) - 1)
#define DEFAULT_NTB_CROSSING_NS 360
#define DEFAULT_REMOTE_READ_NS 200
#define DEFAULT_ROOT_COMPLEX_NS 150
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_SESSION_TIMEOUT_MS 10000
#define DEFAULT_MAX_REQUESTS 64
#define LEASE_MAX_S 31536000 /* the longest lease: 365 days (SPEC section 9) */
#define DEFAULT_VM_UNPLUG_TIMEOUT_MS 5000

/*
 * Parse and validate @path.  On error returns -EINVAL (or -errno for I/O)
 * and writes "FILE:LINE: reason" (or "FILE: reason") into @err, which
 * must hold ERRMSG_MAX bytes.
 */
int config_load(const char *path, struct cluster_config **out, char *err);

/* Same, from a string (used by tests and fuzzers); @name labels errors. */
int config_load_string(const char *name, const char *text,
		       struct cluster_config **out, char *err);

void config_free(struct cluster_config *cfg);

const struct cfg_host *config_find_host(const struct cluster_config *cfg,
					const char *name);

/* @h as a [host NAME] section with no keys makes it (zeroed first). */
void cfg_host_defaults(struct cfg_host *h, const char *name);

#endif
