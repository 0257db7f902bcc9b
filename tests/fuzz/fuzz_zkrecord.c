// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_zkrecord.c - the text of a ZooKeeper lend record, ROOT/lends/DEVID
 * (docs/STATE.md), as another daemon (or anyone with access to the
 * ensemble) may have left it, with the `event TIME_NS TEXT` lines of an
 * intent that a peer's commit carries (issue 22): store_zk_parse() and
 * zks_carried_split(), which the committing peer runs on it.
 *
 * Checks: parsing gives 0 or -EIO (with a reason); the split gives 0, or
 * -EINVAL when an event line is malformed or there are more than a
 * commit carries (ZK_CARRY_MAX); a split's events are well-formed texts
 * (event_text_valid()) with a time >= 0, the rest has no event line left,
 * and the rest parses exactly as the whole did (the events are not part
 * of the record: same state, borrower, epoch, lease and windows; refused
 * both, or accepted both).
 */
#include <errno.h>

#include "engine_internal.h"
#include "fuzz.h"
#include "store_zk.h"

#define DEV "nodeA:0000:65:00.0"

/* Lines of @text that start with "event " (after strtok's rules). */
static unsigned event_lines(const char *text)
{
	unsigned n = 0;

	for (const char *p = text; *p; p++)
		if ((p == text || p[-1] == '\n') && !strncmp(p, "event ", 6))
			n++;
	return n;
}

static void same_record(const struct lend_record *a, const struct lend_record *b)
{
	FUZZ_ASSERT(a->state == b->state && a->epoch == b->epoch &&
		    a->expires == b->expires && a->since == b->since);
	FUZZ_ASSERT(!strcmp(a->borrower, b->borrower));
	FUZZ_ASSERT(a->nwindows == b->nwindows);
	FUZZ_ASSERT(!a->nwindows ||
		    !memcmp(a->windows, b->windows, a->nwindows * sizeof(*a->windows)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reason[REASON_MAX] = "", *text = fuzz_string(data, size);
	char *rest = NULL, *strings = NULL;
	struct lend_record whole, part;
	struct event_rec ev[ZK_CARRY_MAX];
	unsigned n = 99;
	int r, rs, rp;

	r = store_zk_parse(DEV, text, &whole, reason);
	FUZZ_ASSERT(r == 0 || r == -EIO);
	FUZZ_ASSERT(r == 0 || reason[0] != '\0');
	rs = zks_carried_split(text, &rest, &strings, ev, ZK_CARRY_MAX, &n);
	FUZZ_ASSERT(rs == 0 || rs == -EINVAL);
	if (rs < 0) {
		FUZZ_ASSERT(n == 0);
		/* a malformed event line fails the parse too */
		FUZZ_ASSERT(r < 0 || event_lines(text) > ZK_CARRY_MAX);
		if (r == 0)
			lend_record_release(&whole);
		free(text);
		return 0;
	}
	FUZZ_ASSERT(n <= ZK_CARRY_MAX && n == event_lines(text));
	for (unsigned i = 0; i < n; i++)
		FUZZ_ASSERT(ev[i].time_ns >= 0 && event_text_valid(ev[i].text));
	FUZZ_ASSERT(event_lines(rest) == 0);
	rp = store_zk_parse(DEV, rest, &part, NULL);
	FUZZ_ASSERT((rp == 0) == (r == 0));
	if (r == 0) {
		same_record(&whole, &part);
		lend_record_release(&whole);
		lend_record_release(&part);
	}
	free(rest);
	free(strings);
	free(text);
	return 0;
}
