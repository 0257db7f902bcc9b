// SPDX-License-Identifier: LGPL-2.1-or-later
#include "bname.h"
#include "window.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const char *const kind_names[] = {
	[WIN_LUT] = "lut",
	[WIN_DMA] = "dma",
	[WIN_IOMMU] = "iommu",
};

const char *window_kind_name(enum window_kind k)
{
	if ((unsigned)k >= ARRAY_SIZE(kind_names))
		return "?";
	return kind_names[k];
}

int window_kind_parse(const char *s, enum window_kind *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum window_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* "HOST" or "vm:HOST/VM": the owner of an address space. */
static bool next_valid(const char *s)
{
	struct bname b;

	return bname_parse(s, &b) == 0;
}

int window_format(const struct window *w, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "%s %s %" PRIu32 " %" PRIu32 " 0x%" PRIx64 " 0x%" PRIx64
			 " 0x%" PRIx64 " %s %s %s",
			 window_kind_name(w->kind), w->host, w->index, w->count,
			 w->local, w->size, w->target,
			 w->next[0] ? w->next : "-",
			 w->domain[0] ? w->domain : "-",
			 w->tag[0] ? w->tag : "-");

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

_Static_assert(WINDOW_NEXT_MAX == 131, "update the %131s width in window_parse()");
_Static_assert(WINDOW_DOMAIN_MAX == 96, "update the %96s width in window_parse()");

int window_parse(const char *line, struct window *out)
{
	char kind[16], host[HOST_NAME_MAX_LEN + 2], tag[WINDOW_TAG_MAX + 1];
	char local[24], size[24], target[24], next[WINDOW_NEXT_MAX + 1];
	char domain[WINDOW_DOMAIN_MAX + 1];
	unsigned idx, count;
	struct window w = { 0 };
	int consumed = 0;

	if (sscanf(line, "%15s %64s %u %u %23s %23s %23s %131s %96s %112s%n", kind,
		   host, &idx, &count, local, size, target, next, domain, tag,
		   &consumed) != 10)
		return -EINVAL;
	if (line[consumed] != '\0' && line[consumed] != '\n')
		return -EINVAL;
	if (window_kind_parse(kind, &w.kind) < 0 || !name_valid(host))
		return -EINVAL;
	if (parse_u64(local, &w.local) < 0 || parse_u64(size, &w.size) < 0 ||
	    parse_u64(target, &w.target) < 0)
		return -EINVAL;
	if (strlen(tag) >= sizeof(w.tag))
		return -EINVAL;
	if (strcmp(next, "-") != 0 && !next_valid(next))
		return -EINVAL;
	if (strlen(domain) >= sizeof(w.domain))
		return -EINVAL;
	if (strcmp(domain, "-") != 0)
		memcpy(w.domain, domain, strlen(domain) + 1);
	/* Lengths are checked above: name_valid() bounds host and next. */
	memcpy(w.host, host, strlen(host) + 1);
	if (strcmp(next, "-") != 0)
		memcpy(w.next, next, strlen(next) + 1);
	if (strcmp(tag, "-") != 0)
		memcpy(w.tag, tag, strlen(tag) + 1);
	w.index = idx;
	w.count = count;
	*out = w;
	return 0;
}

bool window_equal(const struct window *a, const struct window *b)
{
	return a->kind == b->kind && strcmp(a->host, b->host) == 0 &&
	       a->index == b->index && a->count == b->count &&
	       a->local == b->local && a->size == b->size &&
	       a->target == b->target && strcmp(a->next, b->next) == 0 &&
	       strcmp(a->domain, b->domain) == 0 && strcmp(a->tag, b->tag) == 0;
}

bool window_span(const struct window *w, uint64_t *start, uint64_t *end)
{
	switch (w->kind) {
	case WIN_LUT:
		*start = w->index;
		*end = (uint64_t)w->index + w->count;
		break;
	case WIN_DMA:
		*start = w->index;
		*end = (uint64_t)w->index + 1;
		break;
	case WIN_IOMMU:
		*start = w->local;
		*end = w->local + w->size < w->local ? UINT64_MAX
						     : w->local + w->size;
		break;
	default:
		return false;
	}
	return *end > *start;
}

bool window_overlap(const struct window *a, const char *a_dom,
		    const struct window *b, const char *b_dom)
{
	uint64_t as, ae, bs, be;

	if (a->kind != b->kind || strcmp(a->host, b->host) != 0)
		return false;
	if (a->kind == WIN_IOMMU && strcmp(a_dom, b_dom) != 0)
		return false;
	if (!window_span(a, &as, &ae) || !window_span(b, &bs, &be))
		return false;
	return as < be && bs < ae;
}
