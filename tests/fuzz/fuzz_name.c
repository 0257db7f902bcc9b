// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_name.c - the small parsers every user-supplied name and number
 * goes through: name_valid(), pci_addr_parse(), device_id_parse(),
 * ram_ranges_parse(), parse_size(), parse_u64(), parse_bool() and
 * errno_from_name().
 *
 * Each is checked against what util.h / config.h promise: name_valid()
 * against an independent statement of the rule, the parsers by round
 * trips through their formatters, ram ranges sorted and disjoint.
 */
#include <errno.h>
#include <inttypes.h>

#include "config.h"
#include "fuzz.h"

/* util.h: 1..63 of [A-Za-z0-9_-], starting with a letter or digit. */
static bool name_rule(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > HOST_NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '-' && c != '_')))
			return false;
	}
	return true;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void check_pci(const char *s)
{
	struct pci_addr a, b;
	char buf[32], low[32];

	if (pci_addr_parse(s, &a) < 0)
		return;
	FUZZ_ASSERT(a.dev <= 31 && a.fn <= 7);
	pci_addr_format(&a, buf, sizeof(buf));
	FUZZ_ASSERT(strlen(s) == 12);
	snprintf(low, sizeof(low), "%s", s);
	lower(low);
	FUZZ_ASSERT(!strcmp(buf, low));
	FUZZ_ASSERT(pci_addr_parse(buf, &b) == 0);
	FUZZ_ASSERT(a.domain == b.domain && a.bus == b.bus && a.dev == b.dev &&
		    a.fn == b.fn);
}

static void check_device_id(const char *s)
{
	char host[HOST_NAME_MAX_LEN + 1], addr[16], back[DEVICE_ID_MAX + 16];
	struct pci_addr a;

	if (device_id_parse(s, host, &a) < 0)
		return;
	FUZZ_ASSERT(name_valid(host));
	pci_addr_format(&a, addr, sizeof(addr));
	snprintf(back, sizeof(back), "%s:%s", host, addr);
	FUZZ_ASSERT(strlen(back) == strlen(s));
	FUZZ_ASSERT(strlen(back) < DEVICE_ID_MAX);
	FUZZ_ASSERT(!strncmp(back, s, strlen(host) + 1));
}

static void check_ram(const char *s)
{
	struct range r[CONFIG_MAX_RAM_RANGES + 1];
	unsigned n = 12345;
	int ret;

	/* the guard entry past max must never be written */
	memset(r, 0xa5, sizeof(r));
	ret = ram_ranges_parse(s, r, CONFIG_MAX_RAM_RANGES, &n);
	FUZZ_ASSERT(r[CONFIG_MAX_RAM_RANGES].start == 0xa5a5a5a5a5a5a5a5ULL);
	if (ret < 0) {
		FUZZ_ASSERT(ret == -EINVAL || ret == -E2BIG || ret == -ERANGE);
		FUZZ_ASSERT(n == 12345);
		return;
	}
	FUZZ_ASSERT(n >= 1 && n <= CONFIG_MAX_RAM_RANGES);
	for (unsigned i = 0; i < n; i++) {
		FUZZ_ASSERT(r[i].start <= r[i].end);
		if (i)
			FUZZ_ASSERT(r[i].start > r[i - 1].end);
	}
}

static void check_numbers(const char *s)
{
	uint64_t x, y;
	char buf[48];
	bool bv;
	int r;

	r = parse_u64(s, &x);
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ERANGE);
	if (r == 0) {
		/* digits only (after an optional 0x): no sign, no space */
		FUZZ_ASSERT(s[0] >= '0' && s[0] <= '9');
		FUZZ_ASSERT(!strpbrk(s, " \t\n+-"));
		snprintf(buf, sizeof(buf), "%" PRIu64, x);
		FUZZ_ASSERT(parse_u64(buf, &y) == 0 && x == y);
		snprintf(buf, sizeof(buf), "0x%" PRIx64, x);
		FUZZ_ASSERT(parse_u64(buf, &y) == 0 && x == y);
	}
	r = parse_size(s, &x);
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ERANGE);
	if (r == 0) {
		format_size(x, buf, sizeof(buf));
		FUZZ_ASSERT(parse_size(buf, &y) == 0 && x == y);
	}
	r = parse_bool(s, &bv);
	FUZZ_ASSERT(r == 0 || r == -EINVAL);
	r = errno_from_name(s);
	if (r)
		FUZZ_ASSERT(!strcmp(errno_name(r), s) && !strcmp(errno_name(-r), s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 2048)
		return -1;
	s = fuzz_string(data, size);
	FUZZ_ASSERT(name_valid(s) == name_rule(s));
	check_pci(s);
	check_device_id(s);
	check_ram(s);
	check_numbers(s);
	free(s);
	return 0;
}
