// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vm.c - VM borrowers over QMP: memory layout probe, hot-add and
 * hot-remove of ivshmem-plain devices backed by a lent BAR's file.
 */
#include "vm.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "qmp.h"

#define FOUR_G (1ULL << 32)

enum vm_machine {
	VM_MACHINE_OTHER,
	VM_MACHINE_I440FX,
	VM_MACHINE_Q35,
};

struct removal {
	char devid[DEVICE_ID_MAX];
	unsigned mask; /* BARs whose guest device is not deleted yet */
	int err;       /* the first object-del that failed */
	char why[REASON_MAX];
	bool late;   /* the waiter gave up: DEVICE_DELETED events finish it */
	bool notify; /* call on_device_deleted when it does (not for rollback) */
	uint64_t ticket; /* identifies it after the vm lock was dropped */
	struct removal *next;
};

struct vm {
	char host[HOST_NAME_MAX_LEN + 1];
	char name[VM_NAME_MAX_LEN + 1];
	char path[4096];
	struct qmp *q;
	enum vm_machine machine;
	char bridge[32]; /* QOM path of the PCI host bridge, "" if unknown */

	pthread_mutex_t op_lock; /* serialises hot-plug operations */

	pthread_mutex_t lock; /* everything below */
	struct vm_memory mem;
	struct removal *removals;
	uint64_t next_ticket;
	bool gone;
	bool gone_unreported;
	int gone_err;
	char gone_reason[REASON_MAX];
	vm_device_deleted_fn deleted_cb;
	vm_gone_fn gone_cb;
	void *cb_arg;
};

/* ---- ids and text ---- */

static int derive_id(const char *prefix, const char *devid, char *buf,
		     size_t len)
{
	size_t n = strlen(prefix), i;

	if (!devid || !*devid)
		return -EINVAL;
	if (n + strlen(devid) + 1 > len)
		return -ENAMETOOLONG;
	memcpy(buf, prefix, n);
	for (i = 0; devid[i]; i++) {
		char c = devid[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_')
			buf[n + i] = c;
		else if (c == ':' || c == '.')
			buf[n + i] = '-';
		else
			return -EINVAL;
	}
	buf[n + i] = '\0';
	return 0;
}

static int derive_bar_id(const char *prefix, const char *devid, unsigned bar,
			 char *buf, size_t len)
{
	int r = derive_id(prefix, devid, buf, len);
	size_t n;

	if (r < 0)
		return r;
	if (bar >= PCI_NUM_BARS)
		return -EINVAL;
	n = strlen(buf);
	if (n + 6 > len)
		return -ENAMETOOLONG;
	snprintf(buf + n, len - n, "-bar%u", bar);
	return 0;
}

int vm_qdev_id(const char *devid, unsigned bar, char *buf, size_t len)
{
	return derive_bar_id("lendfs-", devid, bar, buf, len);
}

int vm_memdev_id(const char *devid, unsigned bar, char *buf, size_t len)
{
	return derive_bar_id("lendfs-mem-", devid, bar, buf, len);
}

struct mem_line {
	const char *kind;
	const struct range *r;
};

int vm_memory_format(const struct vm_memory *m, char *buf, size_t len)
{
	struct mem_line lines[VM_MEM_RANGES_MAX + 2];
	unsigned n = 0;
	size_t off = 0;

	for (unsigned i = 0; i < m->nram && i < VM_MEM_RANGES_MAX; i++)
		lines[n++] = (struct mem_line){ "ram", &m->ram[i] };
	if (m->has_pci_hole)
		lines[n++] = (struct mem_line){ "pci-hole", &m->pci_hole };
	if (m->has_pci_hole64)
		lines[n++] = (struct mem_line){ "pci-hole64", &m->pci_hole64 };
	/* insertion sort by start address */
	for (unsigned i = 1; i < n; i++) {
		struct mem_line x = lines[i];
		unsigned j = i;

		for (; j > 0 && lines[j - 1].r->start > x.r->start; j--)
			lines[j] = lines[j - 1];
		lines[j] = x;
	}
	if (len)
		buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		int w = snprintf(buf + off, len > off ? len - off : 0,
				 "%s 0x%" PRIx64 "-0x%" PRIx64 "\n",
				 lines[i].kind, lines[i].r->start, lines[i].r->end);

		if (w < 0 || off + (size_t)w >= len)
			return -ENOSPC;
		off += (size_t)w;
	}
	if (m->shared || m->not_shared[0]) {
		int w = snprintf(buf + off, len > off ? len - off : 0, "%s %s\n",
				 m->shared ? "shared" : "not-shared",
				 m->shared ? m->backend_file : m->not_shared);

		if (w < 0 || off + (size_t)w >= len)
			return -ENOSPC;
		off += (size_t)w;
	}
	return (int)off;
}

static int add_ram(struct vm_memory *m, uint64_t start, uint64_t end)
{
	unsigned i;

	if (end < start)
		return 0;
	/* merge with an adjacent or overlapping range */
	for (i = 0; i < m->nram; i++) {
		struct range *r = &m->ram[i];

		if (start <= r->end + 1 && (r->start == 0 || end >= r->start - 1)) {
			r->start = MIN(r->start, start);
			r->end = MAX(r->end, end);
			return 0;
		}
	}
	if (m->nram >= VM_MEM_RANGES_MAX)
		return -E2BIG;
	for (i = m->nram; i > 0 && m->ram[i - 1].start > start; i--)
		m->ram[i] = m->ram[i - 1];
	m->ram[i] = (struct range){ start, end };
	m->nram++;
	return 0;
}

static void count_ram(struct vm_memory *m)
{
	m->below_4g = m->above_4g = 0;
	for (unsigned i = 0; i < m->nram; i++) {
		const struct range *r = &m->ram[i];

		if (r->start < FOUR_G)
			m->below_4g += MIN(r->end, FOUR_G - 1) - r->start + 1;
		if (r->end >= FOUR_G)
			m->above_4g += r->end - MAX(r->start, FOUR_G) + 1;
	}
}

int vm_memory_parse_mtree(const char *text, const char *ram_name,
			  struct vm_memory *out, char *reason)
{
	const char *p = text, *view = NULL;
	bool in_memory = false;

	memset(out, 0, sizeof(*out));
	if (!ram_name || !*ram_name)
		ram_name = "pc.ram";
	/* find the flat view whose address spaces include "memory" */
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) : strlen(p);

		if (l >= 8 && strncmp(p, "FlatView", 8) == 0) {
			in_memory = false;
			view = p;
		} else if (view && strncmp(p, " AS \"memory\",", 13) == 0) {
			in_memory = true;
		} else if (in_memory && l > 2 && p[0] == ' ' && p[1] == ' ') {
			unsigned long long s, e;
			char kind[32], name[128];
			int prio;

			if (sscanf(p, " %llx-%llx (prio %d, %31[^)]): %127s", &s, &e,
				   &prio, kind, name) == 5 &&
			    strcmp(name, ram_name) == 0 &&
			    (strcmp(kind, "ram") == 0 || strcmp(kind, "rom") == 0)) {
				if (add_ram(out, s, e) < 0)
					return reason_set(reason, -E2BIG,
							  "info mtree: more than %d ram ranges",
							  VM_MEM_RANGES_MAX);
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	if (!out->nram)
		return reason_set(reason, -ENOENT,
				  "info mtree: no %s region in address space memory",
				  ram_name);
	count_ram(out);
	snprintf(out->source, sizeof(out->source), "mtree");
	return 0;
}

/* ---- small QMP helpers ---- */

static struct json_object *jobj(void)
{
	return json_object_new_object();
}

static void jset_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static int qom_get(struct vm *vm, const char *path, const char *prop,
		   struct json_object **ret, char *reason)
{
	struct json_object *a = jobj();

	if (!a)
		return reason_set(reason, -ENOMEM, "out of memory");
	jset_str(a, "path", path);
	jset_str(a, "property", prop);
	return qmp_command(vm->q, "qom-get", a, VM_TIMEOUT_DEFAULT_MS, ret,
			   reason);
}

static int qom_get_u64(struct vm *vm, const char *path, const char *prop,
		       uint64_t *out, char *reason)
{
	struct json_object *ret = NULL;
	int r = qom_get(vm, path, prop, &ret, reason);

	if (r < 0)
		return r;
	if (!ret || !json_object_is_type(ret, json_type_int)) {
		json_object_put(ret);
		return reason_set(reason, -EPROTO, "qom-get %s %s: not a number",
				  path, prop);
	}
	*out = (uint64_t)json_object_get_int64(ret);
	if (json_object_get_int64(ret) == INT64_MAX)
		*out = json_object_get_uint64(ret);
	json_object_put(ret);
	return 0;
}

static int qom_get_str(struct vm *vm, const char *path, const char *prop,
		       char *buf, size_t len, char *reason)
{
	struct json_object *ret = NULL;
	int r = qom_get(vm, path, prop, &ret, reason);

	if (r < 0)
		return r;
	if (!ret || !json_object_is_type(ret, json_type_string)) {
		json_object_put(ret);
		return reason_set(reason, -EPROTO, "qom-get %s %s: not a string",
				  path, prop);
	}
	snprintf(buf, len, "%s", json_object_get_string(ret));
	json_object_put(ret);
	return 0;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ns();

	if (now >= deadline)
		return 0;
	return (int)MIN((deadline - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

/* ---- memory probe ---- */

static int probe_qom(struct vm *vm, struct vm_memory *m, char *reason)
{
	uint64_t hs, he, h64s, h64e, below, above, total;
	struct json_object *ret = NULL, *x;
	int r;

	if (!vm->bridge[0])
		return reason_set(reason, -ENOENT, "no known pci host bridge");
	r = qom_get_u64(vm, vm->bridge, "pci-hole-start", &hs, reason);
	if (r == 0)
		r = qom_get_u64(vm, vm->bridge, "pci-hole-end", &he, reason);
	if (r == 0)
		r = qom_get_u64(vm, vm->bridge, "pci-hole64-start", &h64s, reason);
	if (r == 0)
		r = qom_get_u64(vm, vm->bridge, "pci-hole64-end", &h64e, reason);
	if (r < 0)
		return r;

	/* q35 has below/above-4g-mem-size; on i440fx the hole starts where
	 * low RAM ends and the rest of "memory" is above 4 GiB. */
	if (qom_get_u64(vm, vm->bridge, "below-4g-mem-size", &below, NULL) < 0)
		below = hs;
	if (qom_get_u64(vm, vm->bridge, "above-4g-mem-size", &above, NULL) < 0) {
		r = qom_get(vm, "/machine", "memory", &ret, reason);
		if (r < 0)
			return r;
		if (!json_object_object_get_ex(ret, "size", &x)) {
			json_object_put(ret);
			return reason_set(reason, -EPROTO,
					  "qom-get /machine memory: no size");
		}
		total = (uint64_t)json_object_get_int64(x);
		json_object_put(ret);
		above = total > below ? total - below : 0;
	}
	if (below > FOUR_G || (above && UINT64_MAX - FOUR_G < above))
		return reason_set(reason, -EPROTO,
				  "implausible ram sizes below 0x%" PRIx64
				  " above 0x%" PRIx64, below, above);

	add_ram(m, 0, below - 1);
	if (above)
		add_ram(m, FOUR_G, FOUR_G + above - 1);
	/* hot-plugged DIMMs live in the device-memory region */
	ret = NULL;
	if (qmp_command(vm->q, "query-memory-devices", NULL, VM_TIMEOUT_DEFAULT_MS,
			&ret, NULL) == 0 && json_object_is_type(ret, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(ret); i++) {
			struct json_object *d = json_object_array_get_idx(ret, i);
			struct json_object *type, *data, *addr, *size;

			if (json_object_object_get_ex(d, "type", &type) &&
			    strcmp(json_object_get_string(type), "dimm") == 0 &&
			    json_object_object_get_ex(d, "data", &data) &&
			    json_object_object_get_ex(data, "addr", &addr) &&
			    json_object_object_get_ex(data, "size", &size)) {
				uint64_t a = (uint64_t)json_object_get_int64(addr);
				uint64_t s = (uint64_t)json_object_get_int64(size);

				if (s)
					add_ram(m, a, a + s - 1);
			}
		}
	}
	json_object_put(ret);

	if (he > hs) {
		m->has_pci_hole = true;
		m->pci_hole = (struct range){ hs, he - 1 };
	}
	if (h64e > h64s) {
		m->has_pci_hole64 = true;
		m->pci_hole64 = (struct range){ h64s, h64e - 1 };
	}
	count_ram(m);
	snprintf(m->source, sizeof(m->source), "qom");
	return 0;
}

static int probe_mtree(struct vm *vm, struct vm_memory *m, char *reason)
{
	_cleanup_free_ char *text = NULL;
	char backend[128] = "", *slash;
	const char *ram_name = "pc.ram";
	int r;

	/* the RAM region is named after the machine's memory backend */
	if (qom_get_str(vm, "/machine", "memory-backend", backend, sizeof(backend),
			NULL) == 0 && backend[0]) {
		slash = strrchr(backend, '/');
		ram_name = slash ? slash + 1 : backend;
	}
	r = qmp_hmp(vm->q, "info mtree -f", VM_TIMEOUT_DEFAULT_MS, &text, reason);
	if (r < 0)
		return r;
	return vm_memory_parse_mtree(text, ram_name, m, reason);
}

static bool qom_get_bool(struct vm *vm, const char *path, const char *prop)
{
	struct json_object *ret = NULL;
	bool v = false;

	if (qom_get(vm, path, prop, &ret, NULL) == 0 && ret &&
	    json_object_is_type(ret, json_type_boolean))
		v = json_object_get_boolean(ret);
	json_object_put(ret);
	return v;
}

/*
 * Does process @pid map the file @st shared (a "s" line of /proc/PID/maps
 * with its device and inode)?  The file QEMU names is only trusted when
 * the QEMU at the other end of the socket really maps it.
 */
static bool maps_shared(pid_t pid, const struct stat *st)
{
	_cleanup_fclose_ FILE *f = NULL;
	char path[64], line[512], perms[8];
	unsigned long long ino;
	unsigned maj, min;
	bool found = false;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*x-%*x %7s %*x %x:%x %llu", perms, &maj, &min,
			       &ino) == 4 && perms[3] == 's' && ino == st->st_ino &&
			maj == major(st->st_dev) && min == minor(st->st_dev);
	return found;
}

/*
 * Whether the fabric can use the guest RAM's backend file as the guest's
 * RAM (m->shared), else why not (m->not_shared).  The machine's backend is
 * /machine memory-backend; QEMU lays its RAM out in it low RAM first, so
 * file offset == guest physical only for one range from 0.
 */
static void probe_backend(struct vm *vm, struct vm_memory *m)
{
	char id[128] = "", be[160], type[64] = "", path[VM_BACKEND_PATH_MAX + 1] = "";
	struct stat st;

	m->shared = false;
	if (qom_get_str(vm, "/machine", "memory-backend", id, sizeof(id), NULL) < 0 ||
	    !id[0]) {
		snprintf(m->not_shared, sizeof(m->not_shared), "no memory backend");
		return;
	}
	if (id[0] == '/')
		snprintf(be, sizeof(be), "%s", id);
	else
		snprintf(be, sizeof(be), "/objects/%s", id);
	qom_get_str(vm, be, "type", type, sizeof(type), NULL);
	if (strcmp(type, "memory-backend-file") != 0) {
		snprintf(m->not_shared, sizeof(m->not_shared),
			 "%s is %s, not a memory-backend-file", be,
			 type[0] ? type : "of unknown type");
		return;
	}
	if (!qom_get_bool(vm, be, "share")) {
		snprintf(m->not_shared, sizeof(m->not_shared), "%s has share=off", be);
		return;
	}
	if (qom_get_str(vm, be, "mem-path", path, sizeof(path), NULL) < 0 ||
	    path[0] != '/' || strlen(path) >= VM_BACKEND_PATH_MAX) {
		snprintf(m->not_shared, sizeof(m->not_shared),
			 "%s: mem-path is not an absolute path of at most %d bytes",
			 be, VM_BACKEND_PATH_MAX - 1);
		return;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(m->not_shared, sizeof(m->not_shared),
			 "%s: mem-path is not a regular file (a directory or hugetlbfs)",
			 be);
		return;
	}
	if (!maps_shared(qmp_peer_pid(vm->q), &st)) {
		snprintf(m->not_shared, sizeof(m->not_shared),
			 "%s: the qemu process at the qmp socket does not map its "
			 "mem-path shared (or cannot be seen)", be);
		return;
	}
	if (m->nram != 1 || m->ram[0].start != 0 ||
	    (uint64_t)st.st_size <= m->ram[0].end) {
		snprintf(m->not_shared, sizeof(m->not_shared),
			 "%s: guest ram in %u ranges, not one from 0 inside the file",
			 be, m->nram);
		return;
	}
	m->shared = true;
	memcpy(m->backend_file, path, strlen(path) + 1); /* < VM_BACKEND_PATH_MAX */
}

int vm_probe_memory(struct vm *vm, struct vm_memory *out, char *reason)
{
	struct vm_memory m = { 0 };
	char why[REASON_MAX] = "", why2[REASON_MAX] = "";
	int r;

	if (!vm_connected(vm, why))
		return reason_set(reason, -ECONNRESET, "vm %s/%s: %s", vm->host,
				  vm->name, why);
	r = probe_qom(vm, &m, why);
	if (r < 0) {
		memset(&m, 0, sizeof(m));
		r = probe_mtree(vm, &m, why2);
		if (r < 0)
			return reason_set(reason, r,
					  "vm %s/%s: cannot probe memory: %s; %s",
					  vm->host, vm->name, why, why2);
	}
	qom_get_str(vm, "/machine", "type", m.machine, sizeof(m.machine), NULL);
	probe_backend(vm, &m);
	pthread_mutex_lock(&vm->lock);
	vm->mem = m;
	pthread_mutex_unlock(&vm->lock);
	if (out)
		*out = m;
	return 0;
}

void vm_memory_last(struct vm *vm, struct vm_memory *out)
{
	pthread_mutex_lock(&vm->lock);
	*out = vm->mem;
	pthread_mutex_unlock(&vm->lock);
}

/* ---- query-pci ---- */

struct pci_hit {
	const char *qdev; /* look for this one (its BARs in dev) */
	bool found;
	struct vm_pci_dev dev;
	const char *prefix; /* "lendfs-<dev>-bar": which BARs are there */
	unsigned mask;
	char free_port[VM_QDEV_ID_MAX]; /* first bridge with nothing behind it */
};

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

static int64_t jint(struct json_object *o, const char *k, int64_t dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return dflt;
	return json_object_get_int64(v);
}

/* "lendfs-<dev>-barN" of the device looked for: BAR N is in the guest */
static void pci_match_prefix(struct pci_hit *h, const char *id)
{
	size_t n;

	if (!h->prefix)
		return;
	n = strlen(h->prefix);
	if (strncmp(id, h->prefix, n) == 0 && id[n] >= '0' &&
	    id[n] < '0' + PCI_NUM_BARS && id[n + 1] == '\0')
		h->mask |= 1u << (id[n] - '0');
}

static void pci_walk(struct json_object *devices, const char *bus_id,
		     struct pci_hit *h)
{
	size_t n;

	if (!devices || !json_object_is_type(devices, json_type_array))
		return;
	n = json_object_array_length(devices);
	for (size_t i = 0; i < n && !h->found; i++) {
		struct json_object *d = json_object_array_get_idx(devices, i);
		struct json_object *br, *sub = NULL, *regions, *ci;
		const char *id = jstr(d, "qdev_id");

		pci_match_prefix(h, id);
		if (h->qdev && strcmp(id, h->qdev) == 0) {
			h->found = true;
			h->dev.bus = (unsigned)jint(d, "bus", 0);
			h->dev.slot = (unsigned)jint(d, "slot", 0);
			h->dev.function = (unsigned)jint(d, "function", 0);
			snprintf(h->dev.bus_id, sizeof(h->dev.bus_id), "%s", bus_id);
			for (unsigned b = 0; b < PCI_NUM_BARS; b++)
				h->dev.bar_addr[b] = UINT64_MAX;
			if (json_object_object_get_ex(d, "regions", &regions) &&
			    json_object_is_type(regions, json_type_array)) {
				for (size_t k = 0; k < json_object_array_length(regions);
				     k++) {
					struct json_object *reg =
						json_object_array_get_idx(regions, k);
					int64_t bar = jint(reg, "bar", -1);

					if (bar < 0 || bar >= PCI_NUM_BARS)
						continue;
					h->dev.bar_size[bar] =
						(uint64_t)jint(reg, "size", 0);
					h->dev.bar_addr[bar] =
						(uint64_t)jint(reg, "address", -1);
				}
			}
			return;
		}
		if (!json_object_object_get_ex(d, "pci_bridge", &br))
			continue;
		json_object_object_get_ex(br, "devices", &sub);
		if (!h->free_port[0] && *id &&
		    json_object_object_get_ex(d, "class_info", &ci) &&
		    jint(ci, "class", 0) == 0x0604 &&
		    (!sub || json_object_array_length(sub) == 0))
			snprintf(h->free_port, sizeof(h->free_port), "%s", id);
		pci_walk(sub, *id ? id : "", h);
	}
}

static int query_pci(struct vm *vm, struct pci_hit *h, char *reason)
{
	struct json_object *ret = NULL;
	const char *root = vm->machine == VM_MACHINE_Q35 ? "pcie.0" : "pci.0";
	int r;

	r = qmp_command(vm->q, "query-pci", NULL, VM_TIMEOUT_DEFAULT_MS, &ret,
			reason);
	if (r < 0)
		return r;
	if (json_object_is_type(ret, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(ret) && !h->found;
		     i++) {
			struct json_object *bus = json_object_array_get_idx(ret, i);
			struct json_object *devs = NULL;

			json_object_object_get_ex(bus, "devices", &devs);
			pci_walk(devs, root, h);
		}
	}
	json_object_put(ret);
	return 0;
}

int vm_device_info(struct vm *vm, const char *devid, unsigned bar,
		   struct vm_pci_dev *out, char *reason)
{
	char qdev[VM_QDEV_ID_MAX];
	struct pci_hit h = { .qdev = qdev };
	int r;

	r = vm_qdev_id(devid, bar, qdev, sizeof(qdev));
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: bad device id '%s' or bar %u",
				  vm->host, vm->name, devid ? devid : "", bar);
	r = query_pci(vm, &h, reason);
	if (r < 0)
		return r;
	if (!h.found)
		return reason_set(reason, -ENOENT,
				  "vm %s/%s: bar%u of %s is not in the guest",
				  vm->host, vm->name, bar, devid);
	if (out)
		*out = h.dev;
	return 0;
}

/* The BARs of @devid whose guest device query-pci lists, as a mask. */
static int pci_bars(struct vm *vm, const char *devid, unsigned *mask,
		    char *free_port, size_t len, char *reason)
{
	char prefix[VM_QDEV_ID_MAX];
	struct pci_hit h = { .prefix = prefix };
	int r;

	r = vm_qdev_id(devid, 0, prefix, sizeof(prefix));
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: bad device id '%s'", vm->host,
				  vm->name, devid ? devid : "");
	prefix[strlen(prefix) - 1] = '\0'; /* "...-bar" */
	r = query_pci(vm, &h, reason);
	if (r < 0)
		return r;
	*mask = h.mask;
	if (free_port)
		snprintf(free_port, len, "%s", h.free_port);
	return 0;
}

int vm_device_bars(struct vm *vm, const char *devid, unsigned *mask,
		   char *reason)
{
	*mask = 0;
	return pci_bars(vm, devid, mask, NULL, 0, reason);
}

int vm_has_device(struct vm *vm, const char *devid, bool *present,
		  char *reason)
{
	unsigned mask = 0;
	int r = pci_bars(vm, devid, &mask, NULL, 0, reason);

	*present = r == 0 && mask;
	return r;
}

/* ---- removals ---- */

static struct removal *removal_find(struct vm *vm, const char *devid)
{
	for (struct removal *x = vm->removals; x; x = x->next)
		if (strcmp(x->devid, devid) == 0)
			return x;
	return NULL;
}

static struct removal *removal_by_ticket(struct vm *vm, uint64_t ticket)
{
	for (struct removal *x = vm->removals; x; x = x->next)
		if (x->ticket == ticket)
			return x;
	return NULL;
}

/* Unlink removal @ticket if it is still listed and return it (now the
 * caller's); NULL if someone else took it (or the VM went away). */
static struct removal *removal_claim(struct vm *vm, uint64_t ticket)
{
	for (struct removal **pp = &vm->removals; *pp; pp = &(*pp)->next) {
		struct removal *x = *pp;

		if (x->ticket == ticket) {
			*pp = x->next;
			return x;
		}
	}
	return NULL;
}

static void removal_insert(struct vm *vm, struct removal *x)
{
	x->ticket = ++vm->next_ticket;
	x->next = vm->removals;
	vm->removals = x;
}

unsigned vm_pending_removals(struct vm *vm)
{
	unsigned n = 0;

	pthread_mutex_lock(&vm->lock);
	for (struct removal *x = vm->removals; x; x = x->next)
		n++;
	pthread_mutex_unlock(&vm->lock);
	return n;
}

static int object_del(struct vm *vm, const char *id, unsigned timeout_ms,
		      char *reason)
{
	struct json_object *a = jobj();
	char why[REASON_MAX] = "";
	int r;

	if (!a)
		return reason_set(reason, -ENOMEM, "out of memory");
	jset_str(a, "id", id);
	r = qmp_command(vm->q, "object-del", a, timeout_ms, NULL, why);
	/* already gone ("object 'x' not found") is what we want */
	if (r < 0 && strstr(why, "not found"))
		return 0;
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: %s", vm->host, vm->name, why);
	return 0;
}

static int device_del(struct vm *vm, const char *id, unsigned timeout_ms,
		      char *reason)
{
	struct json_object *a = jobj();

	if (!a)
		return reason_set(reason, -ENOMEM, "out of memory");
	jset_str(a, "id", id);
	return qmp_command(vm->q, "device_del", a, timeout_ms, NULL, reason);
}

static bool match_device(struct json_object *data, void *arg)
{
	return data && strcmp(jstr(data, "device"), (const char *)arg) == 0;
}

/* ---- QMP callbacks (dispatcher thread) ---- */

/* Which BAR of a late removal @x is guest device @qdev, or -1. */
static int removal_bar(const struct removal *x, const char *qdev)
{
	char id[VM_QDEV_ID_MAX];

	for (unsigned b = 0; b < PCI_NUM_BARS; b++)
		if ((x->mask & (1u << b)) &&
		    vm_qdev_id(x->devid, b, id, sizeof(id)) == 0 &&
		    strcmp(id, qdev) == 0)
			return (int)b;
	return -1;
}

static void removal_note_error(struct removal *x, int r, const char *why)
{
	if (r < 0 && !x->err) {
		x->err = r;
		snprintf(x->why, sizeof(x->why), "%s", why);
	}
}

/*
 * DEVICE_DELETED of one guest device of a late removal: delete its
 * backend; the last one completes the removal (on_device_deleted).
 */
static void vm_on_event(struct qmp *q, const char *event,
			struct json_object *data, void *arg)
{
	struct vm *vm = arg;
	struct removal *x, *done = NULL;
	vm_device_deleted_fn cb = NULL;
	void *cbarg = NULL;
	char why[REASON_MAX] = "", memdev[VM_QDEV_ID_MAX] = "";
	uint64_t ticket = 0;
	int r, bar = -1;

	if (strcmp(event, "DEVICE_DELETED") != 0 || !data)
		return;
	pthread_mutex_lock(&vm->lock);
	for (x = vm->removals; x; x = x->next)
		if (x->late && (bar = removal_bar(x, jstr(data, "device"))) >= 0)
			break;
	if (x) {
		x->mask &= ~(1u << bar);
		ticket = x->ticket;
		vm_memdev_id(x->devid, (unsigned)bar, memdev, sizeof(memdev));
		if (!x->mask)
			done = removal_claim(vm, ticket);
	}
	pthread_mutex_unlock(&vm->lock);
	if (!x)
		return;

	r = object_del(vm, memdev, VM_TIMEOUT_DEFAULT_MS, why);
	pthread_mutex_lock(&vm->lock);
	x = done ? done : removal_by_ticket(vm, ticket);
	if (x)
		removal_note_error(x, r, why);
	if (done && done->notify) {
		cb = vm->deleted_cb;
		cbarg = vm->cb_arg;
	}
	pthread_mutex_unlock(&vm->lock);
	/* nothing touches @vm after the callback: it may vm_detach() */
	if (cb)
		cb(vm, done->devid, done->err, done->why, cbarg);
	free(done);
}

static void vm_on_closed(struct qmp *q, int err, const char *reason, void *arg)
{
	struct vm *vm = arg;
	struct removal *x;
	vm_gone_fn cb;
	void *cbarg;
	char why[REASON_MAX];

	pthread_mutex_lock(&vm->lock);
	vm->gone = true;
	vm->gone_err = err;
	snprintf(vm->gone_reason, sizeof(vm->gone_reason), "%s", reason);
	while ((x = vm->removals)) {
		vm->removals = x->next;
		free(x);
	}
	cb = vm->gone_cb;
	cbarg = vm->cb_arg;
	vm->gone_unreported = !cb;
	reason_set(why, err, "vm %s/%s: %s", vm->host, vm->name, reason);
	pthread_mutex_unlock(&vm->lock);
	if (cb)
		cb(vm, err, why, cbarg);
}

/* ---- attach / detach ---- */

int vm_attach(const char *host, const char *name, const char *qmp_path,
	      struct vm **out, char *reason)
{
	struct vm *vm;
	char type[64] = "";
	uint64_t dummy;
	int r;

	*out = NULL;
	if (!host || !name_valid(host))
		return reason_set(reason, -EINVAL, "vm: invalid host name '%s'",
				  host ? host : "");
	if (!name || !name_valid(name))
		return reason_set(reason, -EINVAL, "vm %s: invalid vm name '%s'", host,
				  name ? name : "");
	if (!qmp_path || !*qmp_path)
		return reason_set(reason, -EINVAL, "vm %s/%s: empty qmp socket path",
				  host, name);
	if (strlen(qmp_path) >= sizeof(vm->path))
		return reason_set(reason, -ENAMETOOLONG,
				  "vm %s/%s: qmp socket path too long", host, name);
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return reason_set(reason, -ENOMEM, "vm %s/%s: out of memory", host,
				  name);
	snprintf(vm->host, sizeof(vm->host), "%s", host);
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->path, sizeof(vm->path), "%s", qmp_path);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->op_lock, NULL);

	r = qmp_connect(qmp_path, VM_TIMEOUT_DEFAULT_MS, &vm->q, reason);
	if (r < 0) {
		if (reason) {
			char why[REASON_MAX];

			snprintf(why, sizeof(why), "%s", reason);
			reason_set(reason, r, "vm %s/%s: %s", host, name, why);
		}
		vm_detach(vm);
		return r;
	}
	qmp_set_callbacks(vm->q, vm_on_event, vm_on_closed, vm);

	/* which PCI host bridge: decides the hot-plug bus and the probe */
	if (qom_get_u64(vm, "/machine/i440fx", "pci-hole-start", &dummy, NULL) == 0) {
		vm->machine = VM_MACHINE_I440FX;
		snprintf(vm->bridge, sizeof(vm->bridge), "/machine/i440fx");
	} else if (qom_get_u64(vm, "/machine/q35", "pci-hole-start", &dummy,
			       NULL) == 0) {
		vm->machine = VM_MACHINE_Q35;
		snprintf(vm->bridge, sizeof(vm->bridge), "/machine/q35");
	} else if (qom_get_str(vm, "/machine", "type", type, sizeof(type),
			       NULL) == 0 && strstr(type, "q35")) {
		vm->machine = VM_MACHINE_Q35;
	} else if (strstr(type, "i440fx")) {
		vm->machine = VM_MACHINE_I440FX;
	}

	r = vm_probe_memory(vm, NULL, reason);
	if (r < 0) {
		vm_detach(vm);
		return r;
	}
	*out = vm;
	return 0;
}

void vm_detach(struct vm *vm)
{
	struct removal *x;

	if (!vm)
		return;
	/* no new callback from here; one already running is waited for */
	pthread_mutex_lock(&vm->lock);
	vm->deleted_cb = NULL;
	vm->gone_cb = NULL;
	pthread_mutex_unlock(&vm->lock);
	qmp_close(vm->q); /* joins the dispatcher (unless we run on it) */
	while ((x = vm->removals)) {
		vm->removals = x->next;
		free(x);
	}
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->op_lock);
	free(vm);
}

void vm_set_callbacks(struct vm *vm, vm_device_deleted_fn deleted,
		      vm_gone_fn gone, void *arg)
{
	bool report = false;
	char why[REASON_MAX];
	int err;

	pthread_mutex_lock(&vm->lock);
	vm->deleted_cb = deleted;
	vm->gone_cb = gone;
	vm->cb_arg = arg;
	if (vm->gone_unreported && gone) {
		vm->gone_unreported = false;
		report = true;
		err = vm->gone_err;
		reason_set(why, err, "vm %s/%s: %s", vm->host, vm->name,
			   vm->gone_reason);
	}
	pthread_mutex_unlock(&vm->lock);
	if (report)
		gone(vm, err, why, arg);
}

const char *vm_host(const struct vm *vm)
{
	return vm->host;
}

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

const char *vm_qmp_path(const struct vm *vm)
{
	return vm->path;
}

bool vm_connected(struct vm *vm, char *reason)
{
	bool gone;

	pthread_mutex_lock(&vm->lock);
	gone = vm->gone;
	if (gone)
		reason_set(reason, vm->gone_err, "%s", vm->gone_reason);
	pthread_mutex_unlock(&vm->lock);
	if (!gone)
		return qmp_alive(vm->q, reason);
	return false;
}

/* ---- hot-plug ---- */

static int object_add_file(struct vm *vm, const char *memdev, const char *path,
			   uint64_t size, unsigned timeout_ms, char *reason)
{
	struct json_object *a = jobj();

	if (!a)
		return reason_set(reason, -ENOMEM, "out of memory");
	jset_str(a, "qom-type", "memory-backend-file");
	jset_str(a, "id", memdev);
	jset_str(a, "mem-path", path);
	json_object_object_add(a, "size", json_object_new_uint64(size));
	json_object_object_add(a, "share", json_object_new_boolean(1));
	return qmp_command(vm->q, "object-add", a, timeout_ms, NULL, reason);
}

/* Wait for the DEVICE_DELETED of @qdev since @seq, at most @ms. */
static int wait_deleted(struct vm *vm, uint64_t seq, const char *qdev, int ms,
			char *why)
{
	return qmp_wait_event(vm->q, seq, "DEVICE_DELETED", match_device,
			      (void *)qdev, (unsigned)MAX(ms, 0), NULL, why);
}

/*
 * BAR @bar of removal @ticket is out of the guest: take it off the mask
 * (unless the dispatcher did) and delete its backend.
 */
static void unplug_bar_done(struct vm *vm, uint64_t ticket, const char *devid,
			    unsigned bar)
{
	char memdev[VM_QDEV_ID_MAX], why[REASON_MAX] = "";
	struct removal *x;
	bool mine = false;
	int r;

	pthread_mutex_lock(&vm->lock);
	x = removal_by_ticket(vm, ticket);
	if (x && (x->mask & (1u << bar))) {
		x->mask &= ~(1u << bar);
		mine = true;
	}
	pthread_mutex_unlock(&vm->lock);
	if (!mine || vm_memdev_id(devid, bar, memdev, sizeof(memdev)) < 0)
		return;
	r = object_del(vm, memdev, VM_TIMEOUT_DEFAULT_MS, why);
	pthread_mutex_lock(&vm->lock);
	x = removal_by_ticket(vm, ticket);
	if (x)
		removal_note_error(x, r, why);
	pthread_mutex_unlock(&vm->lock);
}

/* List (or find) the removal of @devid, add @mask, and wait for it now. */
static int unplug_start(struct vm *vm, const char *devid, unsigned mask,
			bool notify, uint64_t *ticket, unsigned *all)
{
	struct removal *x;

	pthread_mutex_lock(&vm->lock);
	x = removal_find(vm, devid);
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x) {
			pthread_mutex_unlock(&vm->lock);
			return -ENOMEM;
		}
		snprintf(x->devid, sizeof(x->devid), "%s", devid);
		removal_insert(vm, x);
	}
	x->mask |= mask;
	x->late = false; /* we wait for it now */
	x->notify = notify;
	*ticket = x->ticket;
	*all = x->mask;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

/*
 * Gave up waiting: the removal stays listed and DEVICE_DELETED events
 * finish it (vm_on_event); those that came meanwhile are done here.
 * 1: still pending, 0: it completed after all.
 */
static int unplug_late(struct vm *vm, const char *devid, uint64_t ticket,
		       uint64_t seq)
{
	char qdev[VM_QDEV_ID_MAX];
	struct removal *x;
	unsigned mask = 0;

	pthread_mutex_lock(&vm->lock);
	x = removal_by_ticket(vm, ticket);
	if (x) {
		x->late = true;
		mask = x->mask;
	}
	pthread_mutex_unlock(&vm->lock);
	for (unsigned b = 0; b < PCI_NUM_BARS; b++)
		if ((mask & (1u << b)) &&
		    vm_qdev_id(devid, b, qdev, sizeof(qdev)) == 0 &&
		    wait_deleted(vm, seq, qdev, 0, NULL) == 0)
			unplug_bar_done(vm, ticket, devid, b);
	pthread_mutex_lock(&vm->lock);
	x = removal_by_ticket(vm, ticket);
	mask = x ? x->mask : 1;
	pthread_mutex_unlock(&vm->lock);
	return mask ? 1 : 0;
}

/* Take removal @ticket back: its result, or -ENOENT if someone took it. */
static int unplug_finish(struct vm *vm, uint64_t ticket, char *why)
{
	struct removal *x;
	int r;

	pthread_mutex_lock(&vm->lock);
	x = removal_claim(vm, ticket);
	pthread_mutex_unlock(&vm->lock);
	if (!x)
		return -ENOENT;
	r = x->err;
	if (r < 0 && why)
		snprintf(why, REASON_MAX, "%s", x->why);
	free(x);
	return r;
}

/*
 * Remove the guest devices of the BARs in @mask of @devid (plus any whose
 * removal is pending): device_del each, then wait for every
 * DEVICE_DELETED (each deletes its BAR's backend) at most @tmo ms.
 * -ETIMEDOUT: some are not acknowledged; the removal stays pending and
 * vm_on_event() finishes it (on_device_deleted if @notify).
 * -ECANCELED: the dispatcher completed it meanwhile (and reports it).
 */
static int unplug(struct vm *vm, const char *devid, unsigned mask,
		  unsigned tmo, bool notify, char *why)
{
	uint64_t deadline = now_ns() + (uint64_t)tmo * 1000000ULL, ticket, seq;
	char qdev[VM_QDEV_ID_MAX];
	unsigned all, b;
	int r = 0, w;

	seq = qmp_event_seq(vm->q);
	if (unplug_start(vm, devid, mask, notify, &ticket, &all) < 0)
		return reason_set(why, -ENOMEM, "out of memory");
	for (b = 0; b < PCI_NUM_BARS && r == 0; b++) {
		if (!(all & (1u << b)) || vm_qdev_id(devid, b, qdev, sizeof(qdev)) < 0)
			continue;
		r = device_del(vm, qdev, tmo, why);
		if (r == -ENODEV) /* not in the guest (any more) */
			unplug_bar_done(vm, ticket, devid, b);
		r = r == -ENODEV ? 0 : r;
	}
	for (b = 0; b < PCI_NUM_BARS && r == 0; b++) {
		if (!(all & (1u << b)) || vm_qdev_id(devid, b, qdev, sizeof(qdev)) < 0)
			continue;
		w = wait_deleted(vm, seq, qdev, remaining_ms(deadline), why);
		if (w == 0)
			unplug_bar_done(vm, ticket, devid, b);
		else
			r = w;
	}
	if (r == -ETIMEDOUT && unplug_late(vm, devid, ticket, seq) == 1)
		return -ETIMEDOUT;
	if (r < 0 && r != -ETIMEDOUT) {
		unplug_finish(vm, ticket, NULL);
		return r;
	}
	r = unplug_finish(vm, ticket, why);
	return r == -ENOENT ? -ECANCELED : r;
}

/* Delete the backends of @devid's BARs that are left (qom-list /objects). */
static int drop_backends(struct vm *vm, const char *devid, unsigned tmo,
			 char *why)
{
	struct json_object *a = jobj(), *ret = NULL;
	char memdev[VM_QDEV_ID_MAX];
	int r, err = 0;

	if (!a)
		return reason_set(why, -ENOMEM, "out of memory");
	jset_str(a, "path", "/objects");
	r = qmp_command(vm->q, "qom-list", a, tmo, &ret, why);
	if (r < 0)
		return r;
	for (size_t i = 0; json_object_is_type(ret, json_type_array) &&
			   i < json_object_array_length(ret); i++) {
		const char *name = jstr(json_object_array_get_idx(ret, i), "name");

		for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
			if (vm_memdev_id(devid, b, memdev, sizeof(memdev)) < 0 ||
			    strcmp(name, memdev) != 0)
				continue;
			r = object_del(vm, memdev, tmo, err ? NULL : why);
			err = err ? err : MIN(r, 0);
		}
	}
	json_object_put(ret);
	return err;
}

/* One hot-add in progress: what hotplug_add() and its steps share. */
struct hotplug {
	struct vm *vm;
	const char *devid;
	const struct vm_bar *bars;
	unsigned nbars;
	unsigned tmo;
	uint64_t deadline;
	unsigned given; /* BARs of @bars */
	unsigned added; /* BARs whose device_add was sent */
	/* the BAR being added */
	char qdev[VM_QDEV_ID_MAX];
	char memdev[VM_QDEV_ID_MAX];
	char bus[VM_QDEV_ID_MAX];
};

/* What is left of the hot-add's time, at least 1 ms: a QMP timeout. */
static unsigned hotplug_left_ms(const struct hotplug *hp)
{
	return (unsigned)MAX(remaining_ms(hp->deadline), 1);
}

/*
 * Undo the device_adds of a failed hot-add: ask for the removals and wait
 * a little; what the guest does not acknowledge finishes in the
 * background, without a callback.
 */
static void hotplug_rollback(struct hotplug *hp)
{
	char why[REASON_MAX];

	if (hp->added &&
	    unplug(hp->vm, hp->devid, hp->added, 1000, false, why) != 0)
		return;
	drop_backends(hp->vm, hp->devid, VM_TIMEOUT_DEFAULT_MS, why);
}

/* A BAR's file: absolute, already there, regular, of the BAR's size. */
static int hotplug_check_bar(const struct hotplug *hp, const struct vm_bar *b,
			     char *reason)
{
	struct vm *vm = hp->vm;
	struct stat st;

	if (b->index >= PCI_NUM_BARS)
		return reason_set(reason, -EINVAL, "vm %s/%s: %s has no bar%u",
				  vm->host, vm->name, hp->devid, b->index);
	if (!b->path || b->path[0] != '/')
		return reason_set(reason, -EINVAL,
				  "vm %s/%s: bar%u file of %s must be an absolute path",
				  vm->host, vm->name, b->index, hp->devid);
	if (!is_power_of_2(b->size) || b->size < (uint64_t)sysconf(_SC_PAGESIZE))
		return reason_set(reason, -EINVAL,
				  "vm %s/%s: bar%u of %s is 0x%" PRIx64
				  " bytes, ivshmem-plain needs a power of two of at least a page",
				  vm->host, vm->name, b->index, hp->devid, b->size);
	/* QEMU would create a missing file: the BAR must already be there */
	if (stat(b->path, &st) < 0)
		return reason_set(reason, -errno, "vm %s/%s: bar file %s of %s: %s",
				  vm->host, vm->name, b->path, hp->devid,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return reason_set(reason, -EINVAL,
				  "vm %s/%s: bar file %s of %s is not a regular file",
				  vm->host, vm->name, b->path, hp->devid);
	if ((uint64_t)st.st_size != b->size)
		return reason_set(reason, -EINVAL,
				  "vm %s/%s: bar file %s of %s is 0x%" PRIx64
				  " bytes, not 0x%" PRIx64,
				  vm->host, vm->name, b->path, hp->devid,
				  (uint64_t)st.st_size, b->size);
	return 0;
}

/* Refuses a bad id or BAR, a lost VM, a pending removal. */
static int hotplug_check(struct hotplug *hp, char *reason)
{
	struct vm *vm = hp->vm;
	char why[REASON_MAX];
	unsigned seen = 0;
	bool busy;
	int r;

	if (vm_qdev_id(hp->devid, 0, hp->qdev, sizeof(hp->qdev)) < 0 ||
	    vm_memdev_id(hp->devid, 0, hp->memdev, sizeof(hp->memdev)) < 0)
		return reason_set(reason, -EINVAL,
				  "vm %s/%s: bad device id '%s'", vm->host,
				  vm->name, hp->devid ? hp->devid : "");
	if (!hp->bars || hp->nbars < 1 || hp->nbars > PCI_NUM_BARS)
		return reason_set(reason, -EINVAL, "vm %s/%s: %u bars for %s",
				  vm->host, vm->name, hp->nbars, hp->devid);
	for (unsigned i = 0; i < hp->nbars; i++) {
		r = hotplug_check_bar(hp, &hp->bars[i], reason);
		if (r < 0)
			return r;
		if (seen & (1u << hp->bars[i].index))
			return reason_set(reason, -EINVAL, "vm %s/%s: bar%u of %s twice",
					  vm->host, vm->name, hp->bars[i].index,
					  hp->devid);
		seen |= 1u << hp->bars[i].index;
	}
	hp->given = seen;
	if (!vm_connected(vm, why))
		return reason_set(reason, -ECONNRESET, "vm %s/%s: %s", vm->host,
				  vm->name, why);
	pthread_mutex_lock(&vm->lock);
	busy = removal_find(vm, hp->devid) != NULL;
	pthread_mutex_unlock(&vm->lock);
	if (busy)
		return reason_set(reason, -EBUSY,
				  "vm %s/%s: the removal of %s is still pending "
				  "(the guest has not acknowledged it)",
				  vm->host, vm->name, hp->devid);
	return 0;
}

/*
 * Where does BAR @b go?  pci.0 on pc, the first free pcie-root-port on
 * q35.  None of the BARs given may be in the guest already.
 */
static int hotplug_bus(struct hotplug *hp, const struct vm_bar *b,
		       char *reason)
{
	struct vm *vm = hp->vm;
	char why[REASON_MAX], port[VM_QDEV_ID_MAX];
	unsigned there = 0;
	int r;

	if (vm->machine != VM_MACHINE_I440FX && vm->machine != VM_MACHINE_Q35)
		return reason_set(reason, -ENOTSUP,
				  "vm %s/%s: machine type has no known hot-pluggable "
				  "pci bus (use pc or q35)",
				  vm->host, vm->name);
	r = pci_bars(vm, hp->devid, &there, port, sizeof(port), why);
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: %s", vm->host, vm->name,
				  why);
	if (there & hp->given & ~hp->added)
		return reason_set(reason, -EEXIST,
				  "vm %s/%s: %s is already in the guest",
				  vm->host, vm->name, hp->devid);
	if (vm->machine == VM_MACHINE_I440FX) {
		snprintf(hp->bus, sizeof(hp->bus), "pci.0");
		return 0;
	}
	if (!port[0])
		return reason_set(reason, -ENOSPC,
				  "vm %s/%s: no free pcie-root-port to hot-plug bar%u "
				  "of %s into (start qemu with -device pcie-root-port,..., "
				  "one per bar)",
				  vm->host, vm->name, b->index, hp->devid);
	snprintf(hp->bus, sizeof(hp->bus), "%s", port);
	return 0;
}

/*
 * QEMU frees the RAM block of a deleted backend a little after object-del
 * (RCU: about 40 ms seen), and a device_add meanwhile that registers the
 * same name ("0000:00:03.0/lendfs-mem-...") aborts QEMU ("RAMBlock ...
 * already registered, abort!"): a lend right after a return of the same
 * device waits until `info ramblock` no longer lists the backend.
 */
static int hotplug_ramblock_gone(struct hotplug *hp, const struct vm_bar *b,
				 char *reason)
{
	struct vm *vm = hp->vm;
	char needle[VM_QDEV_ID_MAX + 2];

	snprintf(needle, sizeof(needle), "/%s ", hp->memdev);
	for (;;) {
		_cleanup_free_ char *text = NULL;
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		/* a QEMU without HMP or ramblocks has nothing to wait for */
		if (qmp_hmp(vm->q, "info ramblock", hotplug_left_ms(hp), &text,
			    NULL) < 0 || !text || !strstr(text, needle))
			return 0;
		if (remaining_ms(hp->deadline) == 0)
			return reason_set(reason, -EBUSY,
					  "vm %s/%s: cannot add bar%u of %s: qemu still "
					  "holds the memory of its previous backend %s",
					  vm->host, vm->name, b->index, hp->devid,
					  hp->memdev);
		nanosleep(&ts, NULL);
	}
}

/* The memory backend over BAR @b's file. */
static int hotplug_memdev(struct hotplug *hp, const struct vm_bar *b,
			  char *reason)
{
	struct vm *vm = hp->vm;
	char why[REASON_MAX];
	int r;

	r = hotplug_ramblock_gone(hp, b, reason);
	if (r < 0)
		return r;
	r = object_add_file(vm, hp->memdev, b->path, b->size, hotplug_left_ms(hp),
			    why);
	/* a backend left over by an interrupted lend, no device uses it */
	if (r == -EEXIST &&
	    object_del(vm, hp->memdev, VM_TIMEOUT_DEFAULT_MS, NULL) == 0)
		r = object_add_file(vm, hp->memdev, b->path, b->size,
				    hotplug_left_ms(hp), why);
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: cannot add bar%u of %s: %s",
				  vm->host, vm->name, b->index, hp->devid, why);
	return 0;
}

/* The ivshmem-plain device on that backend; undoes the backend on failure. */
static int hotplug_device(struct hotplug *hp, const struct vm_bar *b,
			  char *reason)
{
	struct vm *vm = hp->vm;
	struct json_object *a = jobj();
	char why[REASON_MAX];
	int r;

	if (!a) {
		object_del(vm, hp->memdev, VM_TIMEOUT_DEFAULT_MS, NULL);
		return reason_set(reason, -ENOMEM, "vm %s/%s: out of memory",
				  vm->host, vm->name);
	}
	jset_str(a, "driver", "ivshmem-plain");
	jset_str(a, "id", hp->qdev);
	jset_str(a, "memdev", hp->memdev);
	jset_str(a, "bus", hp->bus);
	r = qmp_command(vm->q, "device_add", a, hotplug_left_ms(hp), NULL, why);
	if (r == -ETIMEDOUT) /* it may be there: remove it like the others */
		hp->added |= 1u << b->index;
	else if (r < 0)
		object_del(vm, hp->memdev, VM_TIMEOUT_DEFAULT_MS, NULL);
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: cannot add bar%u of %s: %s",
				  vm->host, vm->name, b->index, hp->devid, why);
	hp->added |= 1u << b->index;
	return 0;
}

/* Are all the BARs added so far in query-pci, each with BAR2 of its size? */
static int hotplug_check_pci(struct hotplug *hp, bool *all, char *why)
{
	for (unsigned i = 0; i < hp->nbars; i++) {
		const struct vm_bar *b = &hp->bars[i];
		struct pci_hit h = { .qdev = hp->qdev };
		int r;

		if (!(hp->added & (1u << b->index)))
			continue;
		vm_qdev_id(hp->devid, b->index, hp->qdev, sizeof(hp->qdev));
		r = query_pci(hp->vm, &h, why);
		if (r < 0 || !h.found) {
			*all = false;
			return r;
		}
		if (h.dev.bar_size[2] != b->size)
			return reason_set(why, -EIO,
					  "guest shows bar2 of 0x%" PRIx64
					  " bytes, not 0x%" PRIx64 " (the device of bar%u)",
					  h.dev.bar_size[2], b->size, b->index);
	}
	*all = true;
	return 0;
}

/*
 * Wait until the guest's query-pci shows the device of every BAR added so
 * far with its size (a device behind a q35 root port shows up a little
 * after device_add, and the next BAR must see its port taken); the
 * devices are rolled back when they do not in time.
 */
static int hotplug_wait(struct hotplug *hp, char *reason)
{
	struct vm *vm = hp->vm;
	char why[REASON_MAX] = "";
	int r;

	for (;;) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		bool all = false;

		r = hotplug_check_pci(hp, &all, why);
		if (r == 0 && all)
			return 0;
		if (r == -ECONNRESET || r == -EPIPE)
			return reason_set(reason, r, "vm %s/%s: cannot add %s: %s",
					  vm->host, vm->name, hp->devid, why);
		if (r == -EIO)
			break;
		if (remaining_ms(hp->deadline) == 0) {
			if (r == 0) {
				r = -ETIMEDOUT;
				snprintf(why, sizeof(why),
					 "not in query-pci within %u ms", hp->tmo);
			}
			break;
		}
		nanosleep(&ts, NULL);
	}
	hotplug_rollback(hp);
	return reason_set(reason, r, "vm %s/%s: cannot add %s: %s", vm->host,
			  vm->name, hp->devid, why);
}

static int hotplug_add(struct vm *vm, const char *devid,
		       const struct vm_bar *bars, unsigned nbars, unsigned tmo,
		       char *reason)
{
	struct hotplug hp = {
		.vm = vm,
		.devid = devid,
		.bars = bars,
		.nbars = nbars,
		.tmo = tmo,
		.deadline = now_ns() + (uint64_t)tmo * 1000000ULL,
	};
	int r;

	r = hotplug_check(&hp, reason);
	for (unsigned i = 0; r == 0 && i < nbars; i++) {
		const struct vm_bar *b = &bars[i];

		vm_qdev_id(devid, b->index, hp.qdev, sizeof(hp.qdev));
		vm_memdev_id(devid, b->index, hp.memdev, sizeof(hp.memdev));
		r = hotplug_bus(&hp, b, reason);
		if (r == 0)
			r = hotplug_memdev(&hp, b, reason);
		if (r == 0)
			r = hotplug_device(&hp, b, reason);
		if (r < 0)
			hotplug_rollback(&hp); /* the BARs added before */
		else
			r = hotplug_wait(&hp, reason); /* rolls back itself */
	}
	return r;
}

int vm_hotplug_add(struct vm *vm, const char *devid, const struct vm_bar *bars,
		   unsigned nbars, unsigned timeout_ms, char *reason)
{
	int r;

	pthread_mutex_lock(&vm->op_lock);
	r = hotplug_add(vm, devid, bars, nbars,
			timeout_ms ? timeout_ms : VM_TIMEOUT_DEFAULT_MS, reason);
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

static int hotplug_del(struct vm *vm, const char *devid, unsigned tmo,
		       char *reason)
{
	char why[REASON_MAX] = "";
	unsigned mask = 0;
	int r;

	if (!vm_connected(vm, why))
		return reason_set(reason, -ECONNRESET, "vm %s/%s: %s", vm->host,
				  vm->name, why);
	r = pci_bars(vm, devid, &mask, NULL, 0, why);
	if (r == -EINVAL || r == -ENAMETOOLONG)
		return reason_set(reason, -EINVAL, "vm %s/%s: bad device id '%s'",
				  vm->host, vm->name, devid);
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: cannot remove %s: %s",
				  vm->host, vm->name, devid, why);
	r = unplug(vm, devid, mask, tmo, true, why);
	if (r == -ETIMEDOUT || r == -ECANCELED) {
		if (!vm_connected(vm, why))
			return reason_set(reason, -ECONNRESET, "vm %s/%s: %s",
					  vm->host, vm->name, why);
		/* pending, or the dispatcher took it and reports it */
		return reason_set(reason, -ETIMEDOUT,
				  "vm %s/%s: the guest did not acknowledge the "
				  "removal of %s within %u ms; it stays pending",
				  vm->host, vm->name, devid, tmo);
	}
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: cannot remove %s: %s",
				  vm->host, vm->name, devid, why);
	/* deleted now, or was not in the guest at all: drop its backends */
	r = drop_backends(vm, devid, tmo, why);
	if (r < 0)
		return reason_set(reason, r, "vm %s/%s: removed %s but %s", vm->host,
				  vm->name, devid, why);
	return 0;
}

int vm_hotplug_del(struct vm *vm, const char *devid, unsigned timeout_ms,
		   char *reason)
{
	int r;

	if (!devid || !*devid)
		return reason_set(reason, -EINVAL, "vm %s/%s: empty device id",
				  vm->host, vm->name);
	pthread_mutex_lock(&vm->op_lock);
	r = hotplug_del(vm, devid, timeout_ms ? timeout_ms : VM_TIMEOUT_DEFAULT_MS,
			reason);
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}
