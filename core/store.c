// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * store.c - what every store back-end shares: record helpers, validation
 * of a record before it is written, and the invariants check() verifies
 * over a set of records.
 */
#include "bname.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

static const char *const rec_state_names[] = {
	[REC_LENDING] = "lending",
	[REC_LENT] = "lent",
	[REC_RETURNING] = "returning",
};

const char *rec_state_name(enum rec_state s)
{
	if ((unsigned)s >= ARRAY_SIZE(rec_state_names))
		return "?";
	return rec_state_names[s];
}

void lend_record_release(struct lend_record *rec)
{
	if (!rec)
		return;
	free(rec->windows);
	rec->windows = NULL;
	rec->nwindows = 0;
}

int lend_record_copy(struct lend_record *dst, const struct lend_record *src)
{
	struct window *w = NULL;

	if (src->nwindows) {
		w = calloc(src->nwindows, sizeof(*w));
		if (!w)
			return -ENOMEM;
		memcpy(w, src->windows, src->nwindows * sizeof(*w));
	}
	*dst = *src;
	dst->windows = w;
	dst->txn = NULL; /* a copy is no request of its own */
	return 0;
}

/* ---- validation -------------------------------------------------------- */

static bool str_fits(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

/* "DDDD:BB:DD.F" in hex, either case. */
static bool pci_part_valid(const char *s)
{
	static const char pattern[] = "xxxx:xx:xx.x";

	if (strlen(s) != sizeof(pattern) - 1)
		return false;
	for (size_t i = 0; pattern[i]; i++) {
		if (pattern[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != pattern[i])
			return false;
	}
	return true;
}

/*
 * The lender of a device id is the part before the first ':'.  Returns
 * false (and an empty @lender) when the id is not "HOST:DDDD:BB:DD.F".
 */
static bool device_lender(const char *dev, char lender[HOST_NAME_MAX_LEN + 1])
{
	const char *colon = strchr(dev, ':');
	size_t len;

	lender[0] = '\0';
	if (!colon)
		return false;
	len = (size_t)(colon - dev);
	if (len == 0 || len > HOST_NAME_MAX_LEN)
		return false;
	memcpy(lender, dev, len);
	lender[len] = '\0';
	return name_valid(lender) && pci_part_valid(colon + 1);
}

/* "HOST" or "vm:HOST/VM"; @host receives HOST. */
static bool borrower_valid(const char *b, char host[HOST_NAME_MAX_LEN + 1])
{
	struct bname bn;
	bool ok = bname_parse(b, &bn) == 0;

	memcpy(host, bn.host, sizeof(bn.host));
	return ok;
}

static int window_validate(const char *dev, unsigned i, const struct window *w,
			   char *reason)
{
	char line[WINDOW_TEXT_MAX];
	struct window back;

	if (!str_fits(w->host, sizeof(w->host)) || !str_fits(w->next, sizeof(w->next)) ||
	    !str_fits(w->tag, sizeof(w->tag)))
		return reason_set(reason, -EINVAL,
				  "window %u of %s has an unterminated string", i, dev);
	if ((unsigned)w->kind > WIN_IOMMU)
		return reason_set(reason, -EINVAL, "window %u of %s has unknown kind %d",
				  i, dev, (int)w->kind);
	if (!name_valid(w->host))
		return reason_set(reason, -EINVAL,
				  "window %u of %s has invalid host name '%s'", i, dev,
				  w->host);
	if (window_format(w, line, sizeof(line)) < 0 || window_parse(line, &back) < 0 ||
	    !window_equal(w, &back))
		return reason_set(reason, -EINVAL,
				  "window %u of %s cannot be stored: next '%s' must be "
				  "HOST or vm:HOST/VM, tag '%s' without spaces and not '-'",
				  i, dev, w->next, w->tag);
	return 0;
}

int store_record_validate(const struct lend_record *rec, char *reason)
{
	char lender[HOST_NAME_MAX_LEN + 1], bhost[HOST_NAME_MAX_LEN + 1];

	if (!str_fits(rec->device, sizeof(rec->device)) || !rec->device[0])
		return reason_set(reason, -EINVAL, "record without a device id");
	if (!device_lender(rec->device, lender))
		return reason_set(reason, -EINVAL,
				  "invalid device id '%s': expected HOST:DDDD:BB:DD.F",
				  rec->device);
	if (!str_fits(rec->borrower, sizeof(rec->borrower)))
		return reason_set(reason, -EINVAL, "borrower of %s is too long",
				  rec->device);
	if (!rec->borrower[0])
		return reason_set(reason, -EINVAL, "record of %s has no borrower",
				  rec->device);
	if (!borrower_valid(rec->borrower, bhost))
		return reason_set(reason, -EINVAL,
				  "invalid borrower '%s' of %s: expected HOST or vm:HOST/VM",
				  rec->borrower, rec->device);
	if ((unsigned)rec->state > REC_RETURNING)
		return reason_set(reason, -EINVAL, "record of %s has unknown state %d",
				  rec->device, (int)rec->state);
	if (rec->nwindows && !rec->windows)
		return reason_set(reason, -EINVAL, "record of %s lacks its %u windows",
				  rec->device, rec->nwindows);
	for (unsigned i = 0; i < rec->nwindows; i++) {
		int r = window_validate(rec->device, i, &rec->windows[i], reason);

		if (r < 0)
			return r;
	}
	return 0;
}

int store_vm_validate(const char *host, const char *vm, const char *qmp,
		      char *reason)
{
	if (!host || !name_valid(host))
		return reason_set(reason, -EINVAL, "invalid host name '%s'",
				  host ? host : "");
	if (!vm || !name_valid(vm))
		return reason_set(reason, -EINVAL, "invalid vm name '%s' on host %s",
				  vm ? vm : "", host);
	if (!qmp || !str_fits(qmp, STORE_QMP_PATH_MAX))
		return reason_set(reason, -EINVAL, "qmp socket path of vm %s/%s is too long",
				  host, vm);
	for (const char *c = qmp; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			return reason_set(reason, -EINVAL,
					  "qmp socket path of vm %s/%s has a control character",
					  host, vm);
	return 0;
}

bool comp_lists(const char *devices, const char *id, size_t len)
{
	for (const char *p = devices; *p;) {
		const char *nl = strchrnul(p, '\n');

		if ((size_t)(nl - p) == len && !memcmp(p, id, len))
			return true;
		p = *nl ? nl + 1 : nl;
	}
	return false;
}

bool comp_name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > COMP_NAME_MAX_LEN || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

int store_comp_validate(const char *name, const char *devices,
			const char *borrower, char *reason)
{
	unsigned n = 0;

	if (!comp_name_valid(name))
		return reason_set(reason, -EINVAL, "invalid composition name '%s'",
				  name ? name : "");
	if (!devices || !borrower || !str_fits(borrower, REASON_MAX))
		return reason_set(reason, -EINVAL, "composition %s: bad borrower", name);
	for (const char *c = borrower; *c; c++)
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
			return reason_set(reason, -EINVAL,
					  "composition %s: malformed borrower", name);
	for (const char *p = devices; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (++n > COMP_DEVICES_MAX || len == 0 || len >= DEVICE_ID_MAX ||
		    !memchr(p, ':', len))
			return reason_set(reason, -EINVAL,
					  "composition %s: malformed device list", name);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
				return reason_set(reason, -EINVAL,
						  "composition %s: malformed device list",
						  name);
		p += len;
		if (nl && !*++p)
			return reason_set(reason, -EINVAL,
					  "composition %s: malformed device list", name);
	}
	return 0;
}

/* ---- invariants -------------------------------------------------------- */

static int cmp_device_ci(const void *pa, const void *pb)
{
	const struct lend_record *a = *(const struct lend_record *const *)pa;
	const struct lend_record *b = *(const struct lend_record *const *)pb;
	int r = strcasecmp(a->device, b->device);

	return r ? r : strcmp(a->device, b->device);
}

static unsigned check_duplicates(const struct lend_record *recs, unsigned n,
				 const struct lend_record **sorted, FILE *out)
{
	unsigned bad = 0;

	if (n == 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		sorted[i] = &recs[i];
	qsort(sorted, n, sizeof(*sorted), cmp_device_ci);
	for (unsigned i = 1; i < n; i++) {
		const char *a = sorted[i - 1]->device, *b = sorted[i]->device;

		if (strcasecmp(a, b) != 0)
			continue;
		if (strcmp(a, b) == 0)
			fprintf(out, "%s: device has more than one record\n", b);
		else
			fprintf(out, "%s: same device as %s (ids differ only in case)\n",
				b, a);
		bad++;
	}
	return bad;
}

static unsigned check_record(const struct lend_record *rec, FILE *out)
{
	char lender[HOST_NAME_MAX_LEN + 1], bhost[HOST_NAME_MAX_LEN + 1];
	unsigned bad = 0;

	if (!device_lender(rec->device, lender)) {
		fprintf(out, "%s: malformed device id, expected HOST:DDDD:BB:DD.F\n",
			rec->device);
		bad++;
	}
	if ((unsigned)rec->state > REC_RETURNING) {
		fprintf(out, "%s: state %d is out of range (0..%d)\n", rec->device,
			(int)rec->state, REC_RETURNING);
		bad++;
	} else if (rec->nwindows == 0) {
		fprintf(out, "%s: %s without any window\n", rec->device,
			rec_state_name(rec->state));
		bad++;
	}
	if (!rec->borrower[0]) {
		fprintf(out, "%s: empty borrower\n", rec->device);
		bad++;
	} else if (lender[0] && strcmp(rec->borrower, lender) == 0) {
		fprintf(out, "%s: borrower %s is the lender itself\n", rec->device,
			rec->borrower);
		bad++;
	} else if (!borrower_valid(rec->borrower, bhost)) {
		fprintf(out, "%s: malformed borrower '%s'\n", rec->device, rec->borrower);
		bad++;
	}
	for (unsigned i = 0; i < rec->nwindows; i++) {
		const struct window *w = &rec->windows[i];

		if ((unsigned)w->kind > WIN_IOMMU) {
			fprintf(out, "%s: window %u has unknown kind %d\n", rec->device,
				i, (int)w->kind);
			bad++;
		} else if (w->kind == WIN_LUT && w->count == 0) {
			fprintf(out, "%s: lut window %u on %s owns no entry\n",
				rec->device, i, w->host);
			bad++;
		}
	}
	return bad;
}

/* One window seen as a half-open range of a resource of one host. */
struct claim {
	const struct lend_record *rec;
	const struct window *w;
	unsigned rec_idx, win_idx; /* a stable order for equal starts */
	uint64_t start, end;
};

/* IOMMU ranges only clash inside one device's domain. */
static const char *claim_domain(const struct claim *c)
{
	if (c->w->kind != WIN_IOMMU)
		return "";
	return c->w->domain[0] ? c->w->domain : c->rec->device;
}

static int cmp_claim(const void *pa, const void *pb)
{
	const struct claim *a = pa, *b = pb;
	int r;

	if (a->w->kind != b->w->kind)
		return a->w->kind < b->w->kind ? -1 : 1;
	r = strcmp(a->w->host, b->w->host);
	if (r)
		return r;
	r = strcmp(claim_domain(a), claim_domain(b));
	if (r)
		return r;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->rec_idx != b->rec_idx)
		return a->rec_idx < b->rec_idx ? -1 : 1;
	return a->win_idx < b->win_idx ? -1 : a->win_idx > b->win_idx;
}

static void claim_describe(const struct claim *c, char *buf, size_t len)
{
	switch (c->w->kind) {
	case WIN_LUT:
		snprintf(buf, len, "lut entries %" PRIu64 "..%" PRIu64, c->start,
			 c->end - 1);
		break;
	case WIN_DMA:
		snprintf(buf, len, "dma slot %" PRIu64, c->start);
		break;
	default:
		snprintf(buf, len, "iommu range 0x%" PRIx64 "-0x%" PRIx64, c->start,
			 c->end - 1);
		break;
	}
}

static unsigned check_overlaps(const struct lend_record *recs, unsigned n, FILE *out,
			       int *err)
{
	_cleanup_free_ struct claim *claims = NULL;
	size_t m = 0, total = 0;
	unsigned bad = 0;

	for (unsigned i = 0; i < n; i++)
		total += recs[i].nwindows;
	if (!total)
		return 0;
	claims = calloc(total, sizeof(*claims));
	if (!claims) {
		*err = -ENOMEM;
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < recs[i].nwindows; j++) {
			const struct window *w = &recs[i].windows[j];
			struct claim c = { .rec = &recs[i], .w = w, .rec_idx = i,
					   .win_idx = j };

			if (window_span(w, &c.start, &c.end))
				claims[m++] = c;
		}
	}
	if (m > 1)
		qsort(claims, m, sizeof(*claims), cmp_claim);
	for (size_t i = 0; i < m; i++) {
		for (size_t j = i + 1; j < m; j++) {
			const struct claim *a = &claims[i], *b = &claims[j];
			char da[80], db[80];

			if (a->w->kind != b->w->kind || strcmp(a->w->host, b->w->host) ||
			    strcmp(claim_domain(a), claim_domain(b)) || b->start >= a->end)
				break;
			claim_describe(a, da, sizeof(da));
			claim_describe(b, db, sizeof(db));
			if (a->rec == b->rec)
				fprintf(out, "%s: two windows overlap on %s: %s and %s\n",
					a->rec->device, a->w->host, da, db);
			else
				fprintf(out, "%s: %s on %s overlaps %s of %s\n",
					b->rec->device, db, b->w->host, da,
					a->rec->device);
			bad++;
		}
	}
	return bad;
}

int store_check_records(const struct lend_record *recs, unsigned n, FILE *out)
{
	_cleanup_free_ const struct lend_record **sorted = NULL;
	unsigned bad = 0;
	int err = 0;

	if (n) {
		sorted = calloc(n, sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
	}
	bad += check_duplicates(recs, n, sorted, out);
	for (unsigned i = 0; i < n; i++)
		bad += check_record(sorted[i], out);
	bad += check_overlaps(recs, n, out, &err);
	if (err < 0)
		return err;
	return (int)bad;
}
