// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_window.c - the text form of a window (core/window.c), which the
 * SQLite store decodes from its `windows` table on every start, and the
 * store's record checks built on it (store_record_validate(),
 * store_check_records(), behind `lendfs --check`).
 *
 * The input is split into lines; each goes through window_parse().
 * Checks: a parsed window formats and parses back to the same window and
 * the same text; strings are terminated; the windows, gathered into two
 * lend records, are judged by the store's validation and invariant check
 * without crashing, and a record that validates round-trips every window.
 */
#include <errno.h>

#include "fuzz.h"
#include "store.h"
#include "window.h"

#define MAX_LINES 64

static bool same_window(const struct window *a, const struct window *b)
{
	return a->kind == b->kind && !strcmp(a->host, b->host) &&
	       a->index == b->index && a->count == b->count &&
	       a->local == b->local && a->size == b->size &&
	       a->target == b->target && !strcmp(a->next, b->next) &&
	       !strcmp(a->domain, b->domain) && !strcmp(a->tag, b->tag);
}

static void check_window(const struct window *w)
{
	char text[512], again[512];
	struct window back;
	int n;

	FUZZ_ASSERT((unsigned)w->kind <= WIN_IOMMU);
	FUZZ_ASSERT(fuzz_terminated(w->host, sizeof(w->host)));
	FUZZ_ASSERT(fuzz_terminated(w->next, sizeof(w->next)));
	FUZZ_ASSERT(fuzz_terminated(w->domain, sizeof(w->domain)));
	FUZZ_ASSERT(fuzz_terminated(w->tag, sizeof(w->tag)));
	FUZZ_ASSERT(name_valid(w->host));
	n = window_format(w, text, sizeof(text));
	FUZZ_ASSERT(n > 0 && (size_t)n == strlen(text));
	FUZZ_ASSERT(window_parse(text, &back) == 0);
	FUZZ_ASSERT(same_window(w, &back));
	FUZZ_ASSERT(window_format(&back, again, sizeof(again)) == n);
	FUZZ_ASSERT(!strcmp(text, again));
}

static void check_records(struct window *w, unsigned n)
{
	struct lend_record rec[2] = { 0 };
	struct window split[2][MAX_LINES];
	char reason[REASON_MAX];
	FILE *out = fopen("/dev/null", "w");

	FUZZ_ASSERT(out != NULL);
	for (unsigned i = 0; i < n; i++) {
		struct lend_record *r = &rec[i % 2];

		split[i % 2][r->nwindows++] = w[i];
	}
	snprintf(rec[0].device, sizeof(rec[0].device), "a:0000:01:00.0");
	snprintf(rec[1].device, sizeof(rec[1].device), "a:0000:02:00.0");
	for (unsigned k = 0; k < 2; k++) {
		snprintf(rec[k].borrower, sizeof(rec[k].borrower), "b");
		rec[k].state = REC_LENT;
		rec[k].epoch = k + 1;
		rec[k].windows = split[k];
		reason[0] = '\0';
		if (store_record_validate(&rec[k], reason) == 0) {
			for (unsigned i = 0; i < rec[k].nwindows; i++)
				check_window(&rec[k].windows[i]);
		} else {
			FUZZ_ASSERT(reason[0] != '\0');
			FUZZ_ASSERT(fuzz_terminated(reason, sizeof(reason)));
		}
	}
	FUZZ_ASSERT(store_check_records(rec, 2, out) >= 0);
	fclose(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct window w[MAX_LINES];
	unsigned n = 0;
	char *text, *save = NULL;

	if (size > 16384)
		return -1;
	text = fuzz_string(data, size);
	for (char *line = strtok_r(text, "\n", &save); line && n < MAX_LINES;
	     line = strtok_r(NULL, "\n", &save)) {
		struct window one;
		int r = window_parse(line, &one);

		FUZZ_ASSERT(r == 0 || r == -EINVAL);
		if (r == 0) {
			check_window(&one);
			w[n++] = one;
		}
	}
	check_records(w, n);
	free(text);
	return 0;
}
