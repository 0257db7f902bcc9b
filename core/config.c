// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * config.c - inih callbacks turning a config file into a validated
 * struct cluster_config.
 *
 * inih hands us key/value pairs but neither line numbers (the Debian build
 * has INI_HANDLER_LINENO off) nor section boundaries (a run of identical
 * "[link]" headers looks like one section).  Both come from our reader
 * callback, which sees every physical line first: it counts lines and
 * opens a new section object whenever a line starts with '['.
 */
#include "bname.h"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "events.h"
#include "hashmap.h"

enum section_kind {
	SEC_NONE,
	SEC_CLUSTER,
	SEC_HOST,
	SEC_SWITCH,
	SEC_LINK,
	SEC_DEVICE,
	SEC_VM,
	SEC_POLICY,
	SEC_BAD, /* header already reported; ignore its keys */
};

#define MAX_KEYS_PER_SECTION 32

struct parser {
	struct cluster_config *cfg;
	const char *file;
	/* input: a FILE or a string */
	FILE *f;
	char *rbuf; /* read ahead from @f */
	size_t rpos, rlen;
	bool eof;
	const char *text;
	size_t text_len, text_pos;
	size_t bytes; /* read so far: a pipe has no st_size to check */

	unsigned line;
	unsigned err_line;
	char err[ERRMSG_MAX];
	bool stop; /* fatal reader error (line too long) */

	enum section_kind kind;
	unsigned obj; /* index into the section's array */
	char section[512];
	const char *seen[MAX_KEYS_PER_SECTION];
	unsigned nseen;
	bool cluster_seen, policy_seen;

	struct hashmap *names;	 /* "host:NAME", "device:ID", "vm:H/N" */
	struct key_chunk *keys;	 /* where the keys of @names live */
};

#define RBUF_BYTES (64u << 10)

/*
 * The keys of the name registry, packed into chunks: one allocation per
 * 64 KiB of keys instead of one per key (100,000 devices, 100,000 keys).
 */
struct key_chunk {
	struct key_chunk *next;
	size_t used, size;
	char data[];
};

#define KEY_CHUNK_BYTES (64u << 10)

_printf_(2, 3) static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err[0])
		return 0; /* keep the first error */
	n = snprintf(p->err, sizeof(p->err), "%s:%u: ", p->file, p->line);
	va_start(ap, fmt);
	vsnprintf(p->err + n, sizeof(p->err) - n, fmt, ap);
	va_end(ap);
	/* the reason quotes the file: no control bytes to the terminal */
	for (char *c = p->err + n; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	p->err_line = p->line;
	return 0; /* inih: handler error */
}

/* ---- growable arrays ---------------------------------------------------- */

static void *grow_array(void *arr, unsigned n, size_t elem)
{
	size_t cap;

	/* capacities run 16, 32, 64, ...: full exactly when n is one of them */
	if (n != 0 && (n < 16 || (n & (n - 1)) != 0))
		return arr;
	cap = n ? (size_t)n * 2 : 16;
	return realloc(arr, cap * elem);
}

/*
 * A new zeroed element at the end.  Only that element is cleared: with
 * 100,000 devices, zeroing the spare capacity would touch megabytes for
 * nothing.
 */
#define APPEND(p, arr, count)                                              \
	({                                                                 \
		__typeof__(arr) _na = grow_array((arr), (count), sizeof(*(arr))); \
		if (_na) {                                                 \
			(arr) = _na;                                       \
			memset(&(arr)[(count)], 0, sizeof(*(arr)));        \
		}                                                          \
		_na ? &(arr)[(count)++] : NULL;                            \
	})

/* "KIND:NAME" into @buf (@len bytes); false if it does not fit. */
static bool name_key(char *buf, size_t len, const char *kind, const char *name)
{
	size_t kl = strlen(kind), nl = strlen(name);

	if (kl + 1 + nl + 1 > len)
		return false;
	memcpy(buf, kind, kl);
	buf[kl] = ':';
	memcpy(buf + kl + 1, name, nl + 1);
	return true;
}

static int name_register(struct parser *p, const char *kind, const char *name,
			 unsigned index)
{
	size_t need = strlen(kind) + 1 + strlen(name) + 1;
	struct key_chunk *k = p->keys;
	char *key;
	int r;

	if (!k || k->size - k->used < need) {
		size_t size = MAX((size_t)KEY_CHUNK_BYTES, need);

		k = malloc(sizeof(*k) + size);
		if (!k)
			return -ENOMEM;
		k->next = p->keys;
		k->used = 0;
		k->size = size;
		p->keys = k;
	}
	key = k->data + k->used;
	name_key(key, need, kind, name);
	r = hashmap_put(p->names, key, (void *)(uintptr_t)(index + 1));
	if (r < 0)
		return r; /* -EEXIST, -ENOMEM: the key's bytes are reused */
	k->used += need;
	return 0;
}

static int name_lookup(const struct parser *p, const char *kind,
		       const char *name)
{
	char key[REASON_MAX + 32];
	uintptr_t v;

	if (!name_key(key, sizeof(key), kind, name))
		return -ENOENT;
	v = (uintptr_t)hashmap_get(p->names, key);
	return v ? (int)(v - 1) : -ENOENT;
}

/* ---- value parsers ------------------------------------------------------ */

int pci_addr_parse(const char *s, struct pci_addr *out)
{
	unsigned dom, bus, dev, fn;
	int n = 0;

	/* exactly DDDD:BB:DD.F, hex digits only */
	if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.')
		return -EINVAL;
	for (int i = 0; i < 12; i++) {
		if (i == 4 || i == 7 || i == 10)
			continue;
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
	}
	if (sscanf(s, "%4x:%2x:%2x.%1x%n", &dom, &bus, &dev, &fn, &n) != 4 ||
	    n != 12)
		return -EINVAL;
	if (dev > 31 || fn > 7)
		return -EINVAL;
	out->domain = dom;
	out->bus = bus;
	out->dev = dev;
	out->fn = fn;
	return 0;
}

void pci_addr_format(const struct pci_addr *a, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%02x:%02x.%x", a->domain, a->bus, a->dev,
		 a->fn);
}

int device_id_parse(const char *id, char *host, struct pci_addr *addr)
{
	const char *colon = strchr(id, ':');
	size_t hl;

	if (!colon)
		return -EINVAL;
	hl = colon - id;
	if (hl == 0 || hl > HOST_NAME_MAX_LEN)
		return -EINVAL;
	memcpy(host, id, hl);
	host[hl] = '\0';
	if (!name_valid(host))
		return -EINVAL;
	return pci_addr_parse(colon + 1, addr);
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int ram_ranges_parse(const char *s, struct range *out, unsigned max,
		     unsigned *count)
{
	char buf[1024];
	char *save = NULL;
	unsigned n = 0;

	if (strlen(s) >= sizeof(buf) || !*s)
		return -EINVAL;
	strcpy(buf, s);
	for (char *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *dash;
		struct range r;

		while (*tok == ' ')
			tok++;
		for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';)
			*--e = '\0';
		dash = strchr(tok, '-');
		if (!dash || n >= max)
			return n >= max ? -E2BIG : -EINVAL;
		*dash = '\0';
		if (parse_u64(tok, &r.start) < 0 || parse_u64(dash + 1, &r.end) < 0)
			return -EINVAL;
		if (r.end < r.start)
			return -EINVAL;
		out[n++] = r;
	}
	if (n == 0)
		return -EINVAL;
	qsort(out, n, sizeof(*out), cmp_range);
	for (unsigned i = 1; i < n; i++)
		if (out[i].start <= out[i - 1].end)
			return -ERANGE;
	*count = n;
	return 0;
}

/* ---- sections ----------------------------------------------------------- */

/* [link]: a new link, its keys follow. */
static int section_link(struct parser *p)
{
	struct cluster_config *c = p->cfg;
	struct cfg_link *l = APPEND(p, c->links, c->nlinks);

	if (!l)
		return perr(p, "out of memory");
	l->line = p->line;
	l->bandwidth = 0;
	p->obj = c->nlinks - 1;
	p->kind = SEC_LINK;
	return 1;
}

/* [cluster] and [policy]: once each. */
static int section_once(struct parser *p, bool *seen, const char *name,
			enum section_kind kind)
{
	if (*seen)
		return perr(p, "duplicate section [%s]", name);
	*seen = true;
	p->kind = kind;
	return 1;
}

void cfg_host_defaults(struct cfg_host *h, const char *name)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	snprintf(h->adapter, sizeof(h->adapter), "ntb0");
	h->iommu = false;
	h->lut_entries = DEFAULT_LUT_ENTRIES;
	h->window_max = DEFAULT_WINDOW_MAX;
	h->window_align = DEFAULT_WINDOW_ALIGN;
	h->dma_windows = DEFAULT_DMA_WINDOWS;
	h->ram[0] = (struct range){ 0, DEFAULT_RAM_END };
	h->nram = 1;
}

static int section_host(struct parser *p, const char *arg)
{
	struct cluster_config *c = p->cfg;
	struct cfg_host *h = APPEND(p, c->hosts, c->nhosts);

	if (!h)
		return perr(p, "out of memory");
	cfg_host_defaults(h, arg);
	h->line = p->line;
	p->obj = c->nhosts - 1;
	p->kind = SEC_HOST;
	return 1;
}

static int section_switch(struct parser *p, const char *arg)
{
	struct cluster_config *c = p->cfg;
	struct cfg_switch *s = APPEND(p, c->switches, c->nswitches);

	if (!s)
		return perr(p, "out of memory");
	snprintf(s->name, sizeof(s->name), "%s", arg);
	s->line = p->line;
	p->obj = c->nswitches - 1;
	p->kind = SEC_SWITCH;
	return 1;
}

/* [host NAME] and [switch NAME]: nodes of the fabric, one name space. */
static int section_node(struct parser *p, const char *arg, bool host)
{
	int r;

	if (!name_valid(arg))
		return perr(p, "invalid %s name '%s' (1-63 of A-Z a-z 0-9 _ -)",
			    host ? "host" : "switch", arg);
	if (name_lookup(p, "node", arg) >= 0)
		return perr(p, "duplicate %s '%s' (a host or switch of that name exists)",
			    host ? "host" : "switch", arg);
	r = host ? section_host(p, arg) : section_switch(p, arg);
	if (r != 1)
		return r;
	if (name_register(p, "node", arg, p->obj) < 0)
		return perr(p, "out of memory");
	if (host && name_register(p, "host", arg, p->obj) < 0)
		return perr(p, "out of memory");
	return 1;
}

/* [device HOST:DDDD:BB:DD.F] */
static int section_device(struct parser *p, const char *arg)
{
	struct cluster_config *c = p->cfg;
	struct cfg_device *d, tmp = { 0 };
	char addr[16];

	if (strlen(arg) >= DEVICE_ID_MAX ||
	    device_id_parse(arg, tmp.host, &tmp.addr) < 0)
		return perr(p, "malformed device id '%s' (expected HOST:DDDD:BB:DD.F)",
			    arg);
	pci_addr_format(&tmp.addr, addr, sizeof(addr));
	snprintf(tmp.id, sizeof(tmp.id), "%s:%s", tmp.host, addr);
	if (name_lookup(p, "device", tmp.id) >= 0)
		return perr(p, "duplicate device '%s'", tmp.id);
	d = APPEND(p, c->devices, c->ndevices);
	if (!d)
		return perr(p, "out of memory");
	*d = tmp;
	d->line = p->line;
	d->numa_node = -1;
	d->iommu_group = -1;
	p->obj = c->ndevices - 1;
	p->kind = SEC_DEVICE;
	if (name_register(p, "device", d->id, p->obj) < 0)
		return perr(p, "out of memory");
	return 1;
}

/* [vm HOST/NAME] */
static int section_vm(struct parser *p, const char *arg)
{
	struct cluster_config *c = p->cfg;
	const char *slash = strchr(arg, '/');
	struct cfg_vm *v, tmp = { 0 };

	if (!slash || (size_t)(slash - arg) > HOST_NAME_MAX_LEN)
		return perr(p, "malformed vm '%s' (expected HOST/NAME)", arg);
	memcpy(tmp.host, arg, slash - arg);
	if (!name_valid(tmp.host) || !name_valid(slash + 1))
		return perr(p, "malformed vm '%s' (expected HOST/NAME)", arg);
	snprintf(tmp.name, sizeof(tmp.name), "%s", slash + 1);
	if (name_lookup(p, "vm", arg) >= 0)
		return perr(p, "duplicate vm '%s'", arg);
	v = APPEND(p, c->vms, c->nvms);
	if (!v)
		return perr(p, "out of memory");
	*v = tmp;
	v->line = p->line;
	p->obj = c->nvms - 1;
	p->kind = SEC_VM;
	if (name_register(p, "vm", arg, p->obj) < 0)
		return perr(p, "out of memory");
	return 1;
}

static int section_begin(struct parser *p, const char *hdr)
{
	const char *arg;
	size_t kl;

	p->nseen = 0;
	p->kind = SEC_BAD;
	snprintf(p->section, sizeof(p->section), "%s", hdr);

	arg = strchr(hdr, ' ');
	kl = arg ? (size_t)(arg - hdr) : strlen(hdr);
	if (arg)
		while (*arg == ' ')
			arg++;

#define IS(word) (kl == strlen(word) && strncmp(hdr, word, kl) == 0)
	if (IS("cluster") || IS("policy") || IS("link")) {
		if (arg && *arg)
			return perr(p, "section [%.*s] takes no name", (int)kl, hdr);
		if (IS("link"))
			return section_link(p);
		if (IS("cluster"))
			return section_once(p, &p->cluster_seen, "cluster",
					    SEC_CLUSTER);
		return section_once(p, &p->policy_seen, "policy", SEC_POLICY);
	}
	if (!IS("host") && !IS("switch") && !IS("device") && !IS("vm"))
		return perr(p, "unknown section [%s]", hdr);
	if (!arg || !*arg)
		return perr(p, "section [%.*s] needs a name", (int)kl, hdr);
	if (IS("host") || IS("switch"))
		return section_node(p, arg, IS("host"));
	if (IS("device"))
		return section_device(p, arg);
	return section_vm(p, arg); /* vm HOST/NAME */
#undef IS
}

/* ---- keys --------------------------------------------------------------- */

static int want_u64(struct parser *p, const char *key, const char *v,
		    uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t x;
	int r = parse_u64(v, &x);

	if (r == -ERANGE)
		return perr(p, "%s: number out of range: '%s'", key, v);
	if (r < 0)
		return perr(p, "%s: not a number: '%s'", key, v);
	if (x < min || x > max)
		return perr(p, "%s: %s out of range [%llu, %llu]", key, v,
			    (unsigned long long)min, (unsigned long long)max);
	*out = x;
	return 1;
}

static int want_u32(struct parser *p, const char *key, const char *v,
		    uint64_t min, uint64_t max, uint32_t *out)
{
	uint64_t x = 0;

	if (!want_u64(p, key, v, min, max, &x))
		return 0;
	*out = (uint32_t)x;
	return 1;
}

static int want_u16(struct parser *p, const char *key, const char *v,
		    uint16_t *out)
{
	uint64_t x;

	if (!want_u64(p, key, v, 0, 0xffff, &x))
		return 0;
	*out = (uint16_t)x;
	return 1;
}

static int want_size(struct parser *p, const char *key, const char *v,
		     bool pow2, uint64_t min, uint64_t *out)
{
	uint64_t x;
	int r = parse_size(v, &x);

	if (r == -ERANGE)
		return perr(p, "%s: size out of range: '%s'", key, v);
	if (r < 0)
		return perr(p, "%s: not a size: '%s' (e.g. 4096, 64K, 16M, 0x1000)",
			    key, v);
	if (x > (1ULL << 50))
		return perr(p, "%s: size too large: '%s' (max 1024T)", key, v);
	if (pow2 && x && !is_power_of_2(x))
		return perr(p, "%s: %s is not a power of two", key, v);
	if (x < min)
		return perr(p, "%s: %s is below the minimum of %llu", key, v,
			    (unsigned long long)min);
	*out = x;
	return 1;
}

static int want_name(struct parser *p, const char *key, const char *v,
		     char *out, size_t len)
{
	if (!name_valid(v) || strlen(v) >= len)
		return perr(p, "%s: invalid name '%s' (1-%zu of A-Z a-z 0-9 _ -)",
			    key, v, len - 1);
	snprintf(out, len, "%s", v);
	return 1;
}

static int want_ram(struct parser *p, const char *key, const char *v,
		    struct range *out, unsigned *n)
{
	int r = ram_ranges_parse(v, out, CONFIG_MAX_RAM_RANGES, n);

	if (r == -E2BIG)
		return perr(p, "%s: more than %d ranges", key, CONFIG_MAX_RAM_RANGES);
	if (r == -ERANGE)
		return perr(p, "%s: ranges overlap: '%s'", key, v);
	if (r < 0)
		return perr(p, "%s: malformed ranges '%s' (expected START-END[,START-END...])",
			    key, v);
	return 1;
}

/* ADDR:PORT (listen.h), checked now; bound at start-up. */
static int want_listen(struct parser *p, const char *key, const char *v,
		       char out[LISTEN_TEXT_MAX])
{
	char why[REASON_MAX];
	struct listen_addr a;

	if (listen_parse(v, &a, why) < 0)
		return perr(p, "%s: %s", key, why);
	snprintf(out, LISTEN_TEXT_MAX, "%s", v);
	return 1;
}

static int key_cluster(struct parser *p, const char *k, const char *v)
{
	struct cluster_config *c = p->cfg;

	if (!strcmp(k, "name"))
		return want_name(p, k, v, c->name, sizeof(c->name));
	if (!strcmp(k, "inventory")) {
		if (strcmp(v, "config") && strcmp(v, "udev"))
			return perr(p, "inventory: '%s' is not one of config, udev", v);
		snprintf(c->inventory, sizeof(c->inventory), "%s", v);
		return 1;
	}
	if (!strcmp(k, "fabric")) {
		if (strcmp(v, "sim") && strcmp(v, "ntb"))
			return perr(p, "fabric: '%s' is not one of sim, ntb", v);
		snprintf(c->fabric, sizeof(c->fabric), "%s", v);
		return 1;
	}
	if (!strcmp(k, "group"))
		return want_name(p, k, v, c->group, sizeof(c->group));
	if (!strcmp(k, "ntb_crossing_ns"))
		return want_u64(p, k, v, 0, 1000000000, &c->ntb_crossing_ns);
	if (!strcmp(k, "remote_read_ns"))
		return want_u64(p, k, v, 0, 1000000000, &c->remote_read_ns);
	if (!strcmp(k, "root_complex_ns"))
		return want_u64(p, k, v, 0, 1000000000, &c->root_complex_ns);
	if (!strcmp(k, "timeout_ms"))
		return want_u32(p, k, v, 1, 600000, &c->timeout_ms);
	if (!strcmp(k, "max_requests"))
		return want_u32(p, k, v, 1, 4096, &c->max_requests);
	if (!strcmp(k, "vm_unplug_timeout_ms"))
		return want_u32(p, k, v, 1, 600000, &c->vm_unplug_timeout_ms);
	if (!strcmp(k, "event_retention"))
		return want_u32(p, k, v, EVENT_RETAIN_MIN, EVENT_RETAIN_MAX,
				&c->event_retention);
	if (!strcmp(k, "default_lease"))
		return want_u32(p, k, v, 0, LEASE_MAX_S, &c->default_lease);
	if (!strcmp(k, "session_timeout_ms"))
		return want_u32(p, k, v, 1000, 600000, &c->session_timeout_ms);
	if (!strcmp(k, "metrics_listen"))
		return want_listen(p, k, v, c->metrics_listen);
	return perr(p, "unknown key '%s' in [cluster]", k);
}

static int key_host(struct parser *p, const char *k, const char *v)
{
	struct cfg_host *h = &p->cfg->hosts[p->obj];
	uint64_t x;

	if (!strcmp(k, "adapter"))
		return want_name(p, k, v, h->adapter, sizeof(h->adapter));
	if (!strcmp(k, "iommu")) {
		if (parse_bool(v, &h->iommu) < 0)
			return perr(p, "iommu: '%s' is not on or off", v);
		return 1;
	}
	if (!strcmp(k, "lut_entries") || !strcmp(k, "ntb_lut_entries"))
		return want_u32(p, k, v, 1, 65536, &h->lut_entries);
	if (!strcmp(k, "dma_windows"))
		return want_u32(p, k, v, 1, 1024, &h->dma_windows);
	if (!strcmp(k, "window_max")) {
		if (!want_size(p, k, v, true, 4096, &x))
			return 0;
		h->window_max = x;
		return 1;
	}
	if (!strcmp(k, "window_align")) {
		if (!want_size(p, k, v, true, 1, &x))
			return 0;
		h->window_align = x;
		return 1;
	}
	if (!strcmp(k, "ram"))
		return want_ram(p, k, v, h->ram, &h->nram);
	return perr(p, "unknown key '%s' in [host %s]", k, h->name);
}

static int key_switch(struct parser *p, const char *k, const char *v)
{
	struct cfg_switch *s = &p->cfg->switches[p->obj];

	if (!strcmp(k, "latency_ns"))
		return want_u64(p, k, v, 0, 1000000000, &s->latency_ns);
	return perr(p, "unknown key '%s' in [switch %s]", k, s->name);
}

static int key_link(struct parser *p, const char *k, const char *v)
{
	struct cfg_link *l = &p->cfg->links[p->obj];

	if (!strcmp(k, "a"))
		return want_name(p, k, v, l->a, sizeof(l->a));
	if (!strcmp(k, "b"))
		return want_name(p, k, v, l->b, sizeof(l->b));
	if (!strcmp(k, "latency_ns"))
		return want_u64(p, k, v, 0, 1000000000, &l->latency_ns);
	if (!strcmp(k, "bandwidth"))
		return want_u64(p, k, v, 1, 100000000, &l->bandwidth);
	return perr(p, "unknown key '%s' in [link]", k);
}

static int key_device(struct parser *p, const char *k, const char *v)
{
	struct cfg_device *d = &p->cfg->devices[p->obj];
	uint64_t x;

	if (!strcmp(k, "vendor"))
		return want_u16(p, k, v, &d->vendor);
	if (!strcmp(k, "device"))
		return want_u16(p, k, v, &d->device);
	if (!strcmp(k, "subsystem_vendor"))
		return want_u16(p, k, v, &d->subsystem_vendor);
	if (!strcmp(k, "subsystem_device"))
		return want_u16(p, k, v, &d->subsystem_device);
	if (!strcmp(k, "class")) {
		if (!want_u64(p, k, v, 0, 0xffffff, &x))
			return 0;
		d->class = (uint32_t)x;
		return 1;
	}
	if (strncmp(k, "bar", 3) == 0 && k[3] >= '0' && k[3] <= '5' && !k[4]) {
		if (!want_size(p, k, v, true, 0, &x))
			return 0;
		if (x && x < 16)
			return perr(p, "%s: %s is below the minimum BAR size of 16", k, v);
		d->bar[k[3] - '0'] = x;
		return 1;
	}
	return perr(p, "unknown key '%s' in [device %s]", k, d->id);
}

static int key_vm(struct parser *p, const char *k, const char *v)
{
	struct cfg_vm *vm = &p->cfg->vms[p->obj];

	if (!strcmp(k, "ram"))
		return want_ram(p, k, v, vm->ram, &vm->nram);
	return perr(p, "unknown key '%s' in [vm %s/%s]", k, vm->host, vm->name);
}

static int policy_device(struct parser *p, const char *k, const char *v,
			 char *out)
{
	char host[HOST_NAME_MAX_LEN + 1], addr[16];
	struct pci_addr a;

	if (strlen(v) >= DEVICE_ID_MAX || device_id_parse(v, host, &a) < 0)
		return perr(p, "%s: malformed device id '%s' (expected HOST:DDDD:BB:DD.F)",
			    k, v);
	pci_addr_format(&a, addr, sizeof(addr));
	snprintf(out, DEVICE_ID_MAX, "%s:%s", host, addr);
	return 1;
}

static int key_policy(struct parser *p, const char *k, const char *v)
{
	struct cluster_config *c = p->cfg;

	if (!strcmp(k, "deny")) {
		char buf[1024], *save = NULL;

		if (strlen(v) >= sizeof(buf))
			return perr(p, "deny: value too long");
		strcpy(buf, v);
		for (char *t = strtok_r(buf, ", ", &save); t;
		     t = strtok_r(NULL, ", ", &save)) {
			struct cfg_deny *d = APPEND(p, c->denies, c->ndenies);

			if (!d)
				return perr(p, "out of memory");
			d->line = p->line;
			if (!policy_device(p, k, t, d->device))
				return 0;
		}
		return 1;
	}
	if (!strcmp(k, "autolend")) {
		const char *arrow = strstr(v, "->");
		char dev[DEVICE_ID_MAX + 8];
		const char *b;
		struct cfg_autolend *a;
		size_t n;

		if (!arrow)
			return perr(p, "autolend: expected 'DEVICE -> BORROWER', got '%s'", v);
		n = arrow - v;
		while (n && v[n - 1] == ' ')
			n--;
		if (n >= sizeof(dev))
			return perr(p, "autolend: malformed device id");
		memcpy(dev, v, n);
		dev[n] = '\0';
		b = arrow + 2;
		while (*b == ' ')
			b++;
		a = APPEND(p, c->autolends, c->nautolends);
		if (!a)
			return perr(p, "out of memory");
		a->line = p->line;
		if (!policy_device(p, k, dev, a->device))
			return 0;
		if (!*b || strlen(b) >= sizeof(a->borrower))
			return perr(p, "autolend: missing or overlong borrower");
		snprintf(a->borrower, sizeof(a->borrower), "%s", b);
		return 1;
	}
	return perr(p, "unknown key '%s' in [policy]", k);
}

static bool repeatable(enum section_kind kind, const char *key)
{
	return kind == SEC_POLICY &&
	       (!strcmp(key, "deny") || !strcmp(key, "autolend"));
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parser *p = user;

	(void)section; /* inih truncates long names; we track our own */
	if (p->kind == SEC_BAD)
		return 1; /* the header's error was reported already */
	if (p->kind == SEC_NONE)
		return perr(p, "key '%s' outside of any section", name);
	if (!*value)
		return perr(p, "%s: empty value", name);
	if (!repeatable(p->kind, name)) {
		for (unsigned i = 0; i < p->nseen; i++)
			if (!strcmp(p->seen[i], name))
				return perr(p, "duplicate key '%s' in [%s]", name,
					    p->section);
		if (p->nseen == MAX_KEYS_PER_SECTION)
			return perr(p, "too many keys in [%s]", p->section);
		p->seen[p->nseen] = strdup(name);
		if (!p->seen[p->nseen])
			return perr(p, "out of memory");
		p->nseen++;
	}
	switch (p->kind) {
	case SEC_CLUSTER:
		return key_cluster(p, name, value);
	case SEC_HOST:
		return key_host(p, name, value);
	case SEC_SWITCH:
		return key_switch(p, name, value);
	case SEC_LINK:
		return key_link(p, name, value);
	case SEC_DEVICE:
		return key_device(p, name, value);
	case SEC_VM:
		return key_vm(p, name, value);
	case SEC_POLICY:
		return key_policy(p, name, value);
	default:
		return 1;
	}
}

static void seen_clear(struct parser *p)
{
	for (unsigned i = 0; i < p->nseen; i++)
		free((void *)p->seen[i]);
	p->nseen = 0;
}

/* Bytes to read in p->rbuf?  Reads more when it is used up. */
static bool refill(struct parser *p)
{
	if (p->rpos < p->rlen)
		return true;
	if (p->eof)
		return false;
	p->rpos = 0;
	p->rlen = fread(p->rbuf, 1, RBUF_BYTES, p->f);
	if (p->rlen == 0)
		p->eof = true;
	return p->rlen > 0;
}

/*
 * One line of p->f into @str, up to its newline, from a read-ahead
 * buffer.  Not fgets(): a NUL byte must not hide the rest of the line.
 * Returns its length, 0 at the end, -E2BIG when it does not fit in @num
 * bytes, -EFBIG past CONFIG_MAX_BYTES (reported here).
 */
static ssize_t read_file_line(struct parser *p, char *str, int num)
{
	size_t n = 0;
	bool nl = false;

	while (n + 1 < (size_t)num && refill(p)) {
		size_t take = MIN(p->rlen - p->rpos, (size_t)num - 1 - n);
		const char *from = p->rbuf + p->rpos;
		const char *end = memchr(from, '\n', take);

		if (end)
			take = (size_t)(end - from) + 1;
		memcpy(str + n, from, take);
		n += take;
		p->rpos += take;
		if (end) {
			nl = true;
			break;
		}
	}
	if (n == 0)
		return 0;
	if (!nl && refill(p))
		return -E2BIG; /* the buffer is full and more follows */
	str[n] = '\0';
	p->bytes += n;
	if (p->bytes > CONFIG_MAX_BYTES) {
		p->line++;
		perr(p, "file too large (more than %u bytes)",
		     CONFIG_MAX_BYTES);
		p->stop = true;
		return -EFBIG;
	}
	return (ssize_t)n;
}

/* The same from p->text: its length, 0 at the end, or -E2BIG. */
static ssize_t read_text_line(struct parser *p, char *str, int num)
{
	const char *from = p->text + p->text_pos, *end;
	bool nl = false;
	size_t n;

	if (p->text_pos >= p->text_len)
		return 0;
	n = MIN(p->text_len - p->text_pos, (size_t)num - 1);
	end = memchr(from, '\n', n);
	if (end) {
		n = (size_t)(end - from) + 1;
		nl = true;
	}
	if (!nl && p->text_pos + n < p->text_len)
		return -E2BIG;
	memcpy(str, p->text + p->text_pos, n);
	str[n] = '\0';
	p->text_pos += n;
	return (ssize_t)n;
}

/* A line "[...]" (@s at its '['): checks the header, opens the section. */
static void section_line(struct parser *p, const char *s)
{
	const char *end = strchr(s, ']'), *rest;
	char hdr[512];
	size_t hl;

	seen_clear(p);
	if (!end) {
		p->kind = SEC_BAD;
		perr(p, "unterminated section header");
		return;
	}
	/* inih ignores what follows ']': only a comment may */
	rest = end + 1 + strspn(end + 1, " \t\r\n");
	if (*rest && *rest != ';') {
		p->kind = SEC_BAD;
		perr(p, "unexpected text after the section header: '%.*s'",
		     (int)MIN(strcspn(rest, "\r\n"), 64), rest);
		return;
	}
	s++;
	while (*s == ' ')
		s++;
	hl = end - s;
	while (hl && s[hl - 1] == ' ')
		hl--;
	if (hl >= sizeof(hdr)) {
		p->kind = SEC_BAD;
		perr(p, "section header too long");
		return;
	}
	memcpy(hdr, s, hl);
	hdr[hl] = '\0';
	section_begin(p, hdr);
}

/*
 * Reader: one physical line per call.  Counts lines and opens sections
 * (see the comment at the top).  A line longer than inih's buffer is an
 * error rather than being split silently.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *s;
	ssize_t n;

	if (p->stop)
		return NULL;
	n = p->f ? read_file_line(p, str, num) : read_text_line(p, str, num);
	if (n == -E2BIG) {
		p->line++;
		perr(p, "line too long (more than %d bytes)", num - 2);
		p->stop = true;
		return NULL;
	}
	if (n <= 0)
		return NULL;
	p->line++;
	if (memchr(str, '\0', n) != NULL && strlen(str) != (size_t)n) {
		perr(p, "NUL byte in line");
		p->stop = true;
		return NULL;
	}

	s = str;
	if (p->line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3; /* a UTF-8 byte order mark, skipped by inih too */
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '[')
		section_line(p, s);
	return str;
}

/* ---- whole-file validation ---------------------------------------------- */

static int validate(struct parser *p)
{
	struct cluster_config *c = p->cfg;

	if (c->nhosts == 0) {
		p->line = p->line ? p->line : 1;
		return perr(p, "no [host] section: a cluster needs at least one host");
	}
	for (unsigned i = 0; i < c->nhosts; i++) {
		struct cfg_host *h = &c->hosts[i];

		p->line = h->line;
		if (h->window_align > h->window_max)
			return perr(p, "[host %s]: window_align %llu is larger than window_max %llu",
				    h->name, (unsigned long long)h->window_align,
				    (unsigned long long)h->window_max);
	}
	for (unsigned i = 0; i < c->nlinks; i++) {
		struct cfg_link *l = &c->links[i];

		p->line = l->line;
		if (!l->a[0] || !l->b[0])
			return perr(p, "[link] needs both 'a' and 'b'");
		if (name_lookup(p, "node", l->a) < 0)
			return perr(p, "[link]: unknown host or switch '%s'", l->a);
		if (name_lookup(p, "node", l->b) < 0)
			return perr(p, "[link]: unknown host or switch '%s'", l->b);
		if (!strcmp(l->a, l->b))
			return perr(p, "[link]: links '%s' to itself", l->a);
		for (unsigned j = 0; j < i; j++) {
			struct cfg_link *o = &c->links[j];

			if ((!strcmp(o->a, l->a) && !strcmp(o->b, l->b)) ||
			    (!strcmp(o->a, l->b) && !strcmp(o->b, l->a)))
				return perr(p, "[link]: duplicate link %s - %s (first at line %u)",
					    l->a, l->b, o->line);
		}
		if (!l->bandwidth)
			l->bandwidth = 12000;
	}
	for (unsigned i = 0; i < c->ndevices; i++) {
		struct cfg_device *d = &c->devices[i];

		p->line = d->line;
		if (name_lookup(p, "host", d->host) < 0)
			return perr(p, "[device %s]: unknown host '%s'", d->id, d->host);
	}
	for (unsigned i = 0; i < c->nvms; i++) {
		struct cfg_vm *v = &c->vms[i];

		p->line = v->line;
		if (name_lookup(p, "host", v->host) < 0)
			return perr(p, "[vm %s/%s]: unknown host '%s'", v->host, v->name,
				    v->host);
		if (!v->nram)
			return perr(p, "[vm %s/%s]: needs 'ram'", v->host, v->name);
	}
	for (unsigned i = 0; i < c->ndenies; i++) {
		p->line = c->denies[i].line;
		if (name_lookup(p, "device", c->denies[i].device) < 0 &&
		    strcmp(c->inventory, "udev") != 0)
			return perr(p, "deny: unknown device '%s'", c->denies[i].device);
	}
	for (unsigned i = 0; i < c->nautolends; i++) {
		struct cfg_autolend *a = &c->autolends[i];

		p->line = a->line;
		if (name_lookup(p, "device", a->device) < 0 &&
		    strcmp(c->inventory, "udev") != 0)
			return perr(p, "autolend: unknown device '%s'", a->device);
		if (!bname_is_vm(a->borrower) &&
		    name_lookup(p, "host", a->borrower) < 0)
			return perr(p, "autolend: unknown borrower host '%s'", a->borrower);
	}
	return 1;
}

static void config_defaults(struct cluster_config *c)
{
	snprintf(c->name, sizeof(c->name), "lendfs");
	snprintf(c->inventory, sizeof(c->inventory), "config");
	snprintf(c->fabric, sizeof(c->fabric), "sim");
	snprintf(c->group, sizeof(c->group), "lendfs");
	c->ntb_crossing_ns = DEFAULT_NTB_CROSSING_NS;
	c->remote_read_ns = DEFAULT_REMOTE_READ_NS;
	c->root_complex_ns = DEFAULT_ROOT_COMPLEX_NS;
	c->timeout_ms = DEFAULT_TIMEOUT_MS;
	c->session_timeout_ms = DEFAULT_SESSION_TIMEOUT_MS;
	c->max_requests = DEFAULT_MAX_REQUESTS;
	c->event_retention = EVENT_RETAIN_DEFAULT;
	c->vm_unplug_timeout_ms = DEFAULT_VM_UNPLUG_TIMEOUT_MS;
}

static int parse(struct parser *p, struct cluster_config **out, char *err)
{
	struct cluster_config *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	snprintf(c->path, sizeof(c->path), "%s", p->file);
	config_defaults(c);
	p->cfg = c;
	p->names = hashmap_new(64);
	if (!p->names) {
		free(c);
		return -ENOMEM;
	}
	r = ini_parse_stream(reader, p, handler, p);
	seen_clear(p);
	if (r > 0 && (!p->err[0] || (unsigned)r < p->err_line)) {
		p->err[0] = '\0';
		p->line = (unsigned)r;
		perr(p, "syntax error (expected '[section]', 'key = value' or a ; comment)");
	} else if (r < 0 && !p->err[0]) {
		snprintf(p->err, sizeof(p->err), "%s: out of memory", p->file);
	}
	if (!p->err[0])
		validate(p);

	hashmap_free(p->names);
	while (p->keys) {
		struct key_chunk *k = p->keys;

		p->keys = k->next;
		free(k);
	}

	if (p->err[0]) {
		snprintf(err, ERRMSG_MAX, "%s", p->err);
		config_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}

int config_load(const char *path, struct cluster_config **out, char *err)
{
	struct parser p = { .file = path };
	_cleanup_fclose_ FILE *f = NULL;
	struct stat st;
	int r;

	f = fopen(path, "re");
	if (!f) {
		int e = errno;

		snprintf(err, ERRMSG_MAX, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fileno(f), &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			snprintf(err, ERRMSG_MAX, "%s: is a directory", path);
			return -EISDIR;
		}
		if (st.st_size > (off_t)CONFIG_MAX_BYTES) {
			snprintf(err, ERRMSG_MAX, "%s: file too large (%lld bytes, max %u)",
				 path, (long long)st.st_size, CONFIG_MAX_BYTES);
			return -EFBIG;
		}
	}
	p.f = f;
	p.rbuf = malloc(RBUF_BYTES);
	if (!p.rbuf) {
		snprintf(err, ERRMSG_MAX, "%s: out of memory", path);
		return -ENOMEM;
	}
	r = parse(&p, out, err);
	free(p.rbuf);
	return r;
}

int config_load_string(const char *name, const char *text,
		       struct cluster_config **out, char *err)
{
	struct parser p = { .file = name, .text = text };

	p.text_len = strlen(text);
	if (p.text_len > CONFIG_MAX_BYTES) {
		snprintf(err, ERRMSG_MAX, "%s: too large", name);
		return -EFBIG;
	}
	return parse(&p, out, err);
}

void config_free(struct cluster_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->hosts);
	free(cfg->switches);
	free(cfg->links);
	free(cfg->devices);
	free(cfg->vms);
	free(cfg->autolends);
	free(cfg->denies);
	free(cfg);
}

const struct cfg_host *config_find_host(const struct cluster_config *cfg,
					const char *name)
{
	for (unsigned i = 0; i < cfg->nhosts; i++)
		if (!strcmp(cfg->hosts[i].name, name))
			return &cfg->hosts[i];
	return NULL;
}
