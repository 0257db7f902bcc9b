// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_ntb.c - LUT entry and DMA window book-keeping of one NTB adapter.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ntb.h"

#define MiB (1ULL << 20)

static struct cfg_host host_cfg(uint32_t entries)
{
	struct cfg_host h = { 0 };

	snprintf(h.name, sizeof(h.name), "nodeB");
	snprintf(h.adapter, sizeof(h.adapter), "ntb0");
	h.lut_entries = entries;
	h.window_max = DEFAULT_WINDOW_MAX;
	h.window_align = DEFAULT_WINDOW_ALIGN;
	h.dma_windows = DEFAULT_DMA_WINDOWS;
	return h;
}

static void table_make(struct ntb_table *t, uint32_t entries)
{
	struct cfg_host h = host_cfg(entries);

	assert_int_equal(ntb_table_init(t, &h), 0);
}

/* Is the table's own count consistent with its slots? */
static void check_counts(const struct ntb_table *t)
{
	uint32_t used = 0, dma_used = 0;

	for (uint32_t i = 0; i < t->nentries; i++)
		used += t->lut[i].owner != 0;
	for (uint32_t i = 0; i < t->ndma; i++)
		dma_used += t->dma[i].owner != 0;
	assert_int_equal(used, t->used);
	assert_int_equal(dma_used, t->dma_used);
}

static void test_init_from_host(void **state)
{
	struct ntb_table t;

	table_make(&t, DEFAULT_LUT_ENTRIES);
	assert_string_equal(t.host, "nodeB");
	assert_string_equal(t.adapter, "ntb0");
	assert_int_equal(t.nentries, 32);
	assert_int_equal(t.window_max, 8 * MiB);
	assert_int_equal(t.align, 4096);
	assert_int_equal(t.used, 0);
	assert_int_equal(t.ndma, 8);
	assert_int_equal(t.dma_used, 0);
	assert_non_null(t.lut);
	assert_non_null(t.dma);
	for (uint32_t i = 0; i < t.nentries; i++)
		assert_int_equal(t.lut[i].owner, 0);
	ntb_table_release(&t);
	assert_null(t.lut);
	assert_null(t.dma);
	assert_int_equal(t.nentries, 0);
	ntb_table_release(&t); /* twice is harmless */
}

static void test_init_rejects_bad_geometry(void **state)
{
	struct ntb_table t;
	struct cfg_host h;

	h = host_cfg(32);
	h.window_max = 12 * MiB; /* not a power of two */
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);
	assert_null(t.lut);

	h = host_cfg(32);
	h.window_max = 0;
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);

	h = host_cfg(32);
	h.window_align = 3000;
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);

	h = host_cfg(32);
	h.window_align = 0;
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);

	h = host_cfg(32);
	h.window_align = 16 * MiB; /* bigger than a window */
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);

	/* 2^20 entries of 16 GiB would run into the DMA windows. */
	h = host_cfg(1u << 20);
	h.window_max = 1ULL << 34;
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);

	h = host_cfg(32);
	h.dma_windows = UINT32_MAX; /* past the top of the address space */
	assert_int_equal(ntb_table_init(&t, &h), -EINVAL);

	assert_int_equal(ntb_table_init(&t, NULL), -EINVAL);
	ntb_table_release(&t);

	/* Alignment equal to the window size is fine. */
	h = host_cfg(4);
	h.window_align = h.window_max;
	assert_int_equal(ntb_table_init(&t, &h), 0);
	ntb_table_release(&t);
}

static void test_entries_needed(void **state)
{
	struct ntb_table t;

	table_make(&t, 32);
	assert_int_equal(ntb_entries_needed(&t, 16 * MiB), 2);
	assert_int_equal(ntb_entries_needed(&t, 8 * MiB), 1);
	assert_int_equal(ntb_entries_needed(&t, 8 * MiB + 1), 2);
	assert_int_equal(ntb_entries_needed(&t, 1), 1);
	assert_int_equal(ntb_entries_needed(&t, 4096), 1);
	assert_int_equal(ntb_entries_needed(&t, 0), 0);
	assert_int_equal(ntb_entries_needed(&t, 256 * MiB), 32);
	assert_int_equal(ntb_entries_needed(&t, 256 * MiB + 4096), 33);
	/* Far too big saturates instead of wrapping. */
	assert_int_equal(ntb_entries_needed(&t, UINT64_MAX), UINT32_MAX);

	assert_int_equal(ntb_window_size(&t, 1), 4096);
	assert_int_equal(ntb_window_size(&t, 4096), 4096);
	assert_int_equal(ntb_window_size(&t, 4097), 8192);
	assert_int_equal(ntb_window_size(&t, 16 * MiB), 16 * MiB);
	assert_int_equal(ntb_window_size(&t, UINT64_MAX), UINT64_MAX);
	ntb_table_release(&t);

	/* A coarse alignment: 1 MiB windows aligned to 1 MiB. */
	struct cfg_host h = host_cfg(8);

	h.window_max = 1 * MiB;
	h.window_align = 1 * MiB;
	assert_int_equal(ntb_table_init(&t, &h), 0);
	assert_int_equal(ntb_entries_needed(&t, 1 * MiB + 1), 2);
	assert_int_equal(ntb_window_size(&t, 1 * MiB + 1), 2 * MiB);
	ntb_table_release(&t);
}

static void test_16m_bar_takes_two_adjacent_entries(void **state)
{
	char reason[REASON_MAX] = "";
	struct ntb_table t;
	uint32_t first = 99, n;

	table_make(&t, 32);
	n = ntb_entries_needed(&t, 16 * MiB);
	assert_int_equal(n, 2);
	assert_int_equal(ntb_lut_alloc(&t, 0xa1, n, &first, reason), 0);
	assert_int_equal(first, 0);
	assert_int_equal(t.used, 2);
	assert_int_equal(t.lut[0].owner, 0xa1);
	assert_int_equal(t.lut[1].owner, 0xa1);
	assert_int_equal(t.lut[2].owner, 0);
	/* One linear window in the aperture. */
	assert_int_equal(ntb_lut_addr(&t, 0), NTB_APERTURE_BASE);
	assert_int_equal(ntb_lut_addr(&t, 1), NTB_APERTURE_BASE + 8 * MiB);
	assert_int_equal(ntb_lut_addr(&t, 31), NTB_APERTURE_BASE + 31 * 8 * MiB);

	assert_int_equal(ntb_lut_alloc(&t, 0xa2, 2, &first, reason), 0);
	assert_int_equal(first, 2);
	assert_int_equal(ntb_lut_alloc(&t, 0xa3, 1, &first, reason), 0);
	assert_int_equal(first, 4);
	assert_int_equal(t.used, 5);
	check_counts(&t);

	ntb_lut_free(&t, 0, 2);
	assert_int_equal(t.used, 3);
	assert_int_equal(t.lut[0].owner, 0);
	assert_int_equal(t.lut[2].owner, 0xa2);
	check_counts(&t);
	ntb_table_release(&t);
}

static void test_alloc_rejects_bad_requests(void **state)
{
	char reason[REASON_MAX];
	struct ntb_table t;
	uint32_t first;

	table_make(&t, 4);
	assert_int_equal(ntb_lut_alloc(&t, 0, 1, &first, reason), -EINVAL);
	assert_non_null(strstr(reason, "nodeB/ntb0"));
	assert_int_equal(ntb_lut_alloc(&t, 7, 0, &first, reason), -EINVAL);
	assert_int_equal(t.used, 0);
	/* More than the table holds is simply no space. */
	assert_int_equal(ntb_lut_alloc(&t, 7, 5, &first, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB translation entry on adapter nodeB/ntb0: "
				    "need 5 contiguous, 4 free of 4");
	assert_int_equal(ntb_lut_alloc(&t, 7, UINT32_MAX, &first, NULL), -ENOSPC);
	/* A NULL @first is allowed. */
	assert_int_equal(ntb_lut_alloc(&t, 7, 4, NULL, NULL), 0);
	assert_int_equal(t.used, 4);
	ntb_table_release(&t);
}

static void test_exhaustion_reason(void **state)
{
	char reason[REASON_MAX] = "";
	struct ntb_table t;
	uint32_t first;

	table_make(&t, 32);
	for (uint32_t i = 0; i < 31; i++) {
		assert_int_equal(ntb_lut_alloc(&t, 100 + i, 1, &first, reason), 0);
		assert_int_equal(first, i);
	}
	assert_int_equal(ntb_lut_alloc(&t, 200, 2, &first, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB translation entry on adapter nodeB/ntb0: "
				    "need 2 contiguous, 1 free of 32");
	assert_int_equal(t.used, 31);

	assert_int_equal(ntb_lut_alloc(&t, 201, 1, &first, reason), 0);
	assert_int_equal(first, 31);
	assert_int_equal(ntb_lut_alloc(&t, 202, 1, &first, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB translation entry on adapter nodeB/ntb0: "
				    "need 1 contiguous, 0 free of 32");
	assert_int_equal(t.used, 32);
	check_counts(&t);
	ntb_table_release(&t);

	/* A host without translation entries says so, it does not crash. */
	table_make(&t, 0);
	assert_int_equal(ntb_lut_alloc(&t, 1, 1, &first, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB translation entry on adapter nodeB/ntb0: "
				    "need 1 contiguous, 0 free of 0");
	ntb_table_release(&t);
}

static void test_fragmentation(void **state)
{
	char reason[REASON_MAX] = "";
	struct ntb_table t;
	uint32_t first;

	table_make(&t, 8);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(ntb_lut_alloc(&t, 1 + i, 1, &first, NULL), 0);

	/* Holes at 1 and 3: two free entries, but not side by side. */
	ntb_lut_free(&t, 1, 1);
	ntb_lut_free(&t, 3, 1);
	assert_int_equal(t.used, 6);
	assert_int_equal(ntb_lut_alloc(&t, 50, 2, &first, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB translation entry on adapter nodeB/ntb0: "
				    "need 2 contiguous, 2 free of 8");
	assert_int_equal(t.used, 6);
	assert_int_equal(t.lut[1].owner, 0);
	assert_int_equal(t.lut[3].owner, 0);

	/* Entry 2's owner goes away: 1..3 is now a run of three. */
	ntb_lut_free(&t, 2, 1);
	assert_int_equal(ntb_lut_alloc(&t, 50, 2, &first, reason), 0);
	assert_int_equal(first, 1);
	assert_int_equal(t.lut[1].owner, 50);
	assert_int_equal(t.lut[2].owner, 50);
	assert_int_equal(t.lut[3].owner, 0);
	/* The single leftover still serves a single entry. */
	assert_int_equal(ntb_lut_alloc(&t, 51, 1, &first, reason), 0);
	assert_int_equal(first, 3);
	check_counts(&t);
	ntb_table_release(&t);

	/* First fit: the lowest hole that is big enough, not the best one. */
	table_make(&t, 16);
	assert_int_equal(ntb_lut_alloc(&t, 1, 16, &first, NULL), 0);
	ntb_lut_free(&t, 2, 2);	 /* hole of 2 at 2 */
	ntb_lut_free(&t, 6, 5);	 /* hole of 5 at 6 */
	ntb_lut_free(&t, 12, 3); /* hole of 3 at 12 */
	assert_int_equal(ntb_lut_alloc(&t, 2, 3, &first, NULL), 0);
	assert_int_equal(first, 6);
	assert_int_equal(ntb_lut_alloc(&t, 3, 2, &first, NULL), 0);
	assert_int_equal(first, 2);
	assert_int_equal(ntb_lut_alloc(&t, 4, 2, &first, NULL), 0);
	assert_int_equal(first, 9);
	assert_int_equal(ntb_lut_alloc(&t, 5, 3, &first, NULL), 0);
	assert_int_equal(first, 12);
	assert_int_equal(t.used, 16);
	check_counts(&t);
	ntb_table_release(&t);
}

static void test_claim(void **state)
{
	char reason[REASON_MAX] = "";
	struct ntb_table t;
	uint32_t first;

	table_make(&t, 32);
	assert_int_equal(ntb_lut_claim(&t, 0x7, 4, 2, reason), 0);
	assert_int_equal(t.used, 2);
	assert_int_equal(t.lut[4].owner, 0x7);
	assert_int_equal(t.lut[5].owner, 0x7);

	/* Overlapping claim: refused, and nothing of it is taken. */
	assert_int_equal(ntb_lut_claim(&t, 0x8, 5, 2, reason), -EBUSY);
	assert_string_equal(reason, "translation entry 5 on adapter nodeB/ntb0 is "
				    "already owned by 0x7");
	assert_int_equal(t.lut[6].owner, 0);
	assert_int_equal(ntb_lut_claim(&t, 0x8, 2, 4, reason), -EBUSY);
	assert_int_equal(t.lut[2].owner, 0);
	assert_int_equal(t.lut[3].owner, 0);
	/* The same owner claiming again is a conflict too (double record). */
	assert_int_equal(ntb_lut_claim(&t, 0x7, 4, 1, reason), -EBUSY);
	assert_int_equal(t.used, 2);

	/* Outside the table. */
	assert_int_equal(ntb_lut_claim(&t, 0x8, 31, 2, reason), -EINVAL);
	assert_non_null(strstr(reason, "nodeB/ntb0"));
	assert_int_equal(ntb_lut_claim(&t, 0x8, 32, 1, reason), -EINVAL);
	assert_int_equal(ntb_lut_claim(&t, 0x8, UINT32_MAX, 2, reason), -EINVAL);
	assert_int_equal(ntb_lut_claim(&t, 0x8, 0, 0, reason), -EINVAL);
	assert_int_equal(ntb_lut_claim(&t, 0, 0, 1, reason), -EINVAL);
	assert_int_equal(ntb_lut_claim(&t, 0x8, 30, 2, reason), 0);
	assert_int_equal(t.used, 4);

	/* Allocation works around claimed entries. */
	assert_int_equal(ntb_lut_alloc(&t, 0x9, 5, &first, reason), 0);
	assert_int_equal(first, 6);
	assert_int_equal(ntb_lut_alloc(&t, 0xa, 4, &first, reason), 0);
	assert_int_equal(first, 0);
	check_counts(&t);
	ntb_table_release(&t);
}

static void test_free_is_robust(void **state)
{
	struct ntb_table t;
	uint32_t first;

	table_make(&t, 8);
	assert_int_equal(ntb_lut_alloc(&t, 1, 3, &first, NULL), 0);
	ntb_lut_free(&t, 0, 3);
	ntb_lut_free(&t, 0, 3); /* double free */
	assert_int_equal(t.used, 0);
	assert_int_equal(ntb_lut_alloc(&t, 1, 8, &first, NULL), 0);
	ntb_lut_free(&t, 6, 100); /* runs off the end: clipped */
	assert_int_equal(t.used, 6);
	ntb_lut_free(&t, 8, 1);	/* past the end: ignored */
	ntb_lut_free(&t, UINT32_MAX, UINT32_MAX);
	assert_int_equal(t.used, 6);
	check_counts(&t);
	ntb_table_release(&t);
}

static uint64_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

struct live {
	uint64_t owner;
	uint32_t first, count;
};

/* Where first fit must put @count entries, or -1: an independent model. */
static int64_t model_first_fit(const bool *busy, uint32_t n, uint32_t count)
{
	for (uint32_t s = 0; s + count <= n; s++) {
		uint32_t k = 0;

		while (k < count && !busy[s + k])
			k++;
		if (k == count)
			return s;
	}
	return -1;
}

static void test_random_cycles(void **state)
{
	enum { N = 64, CYCLES = 10000 };
	struct live live[N];
	unsigned nlive = 0, nospc = 0, allocs = 0;
	bool busy[N] = { false };
	uint64_t next_owner = 1;
	char reason[REASON_MAX];
	struct ntb_table t;

	table_make(&t, N);
	rng_state = 0x2545f4914f6cdd1dULL;
	for (unsigned c = 0; c < CYCLES; c++) {
		bool do_alloc = nlive == 0 || rng() % 100 < 55;

		if (do_alloc) {
			uint32_t count = 1 + rng() % 6, first = UINT32_MAX;
			int64_t want = model_first_fit(busy, N, count);
			int r = ntb_lut_alloc(&t, next_owner, count, &first, reason);

			if (want < 0) {
				assert_int_equal(r, -ENOSPC);
				nospc++;
				continue;
			}
			assert_int_equal(r, 0);
			assert_int_equal(first, want);
			for (uint32_t i = first; i < first + count; i++) {
				assert_int_equal(t.lut[i].owner, next_owner);
				busy[i] = true;
			}
			live[nlive++] = (struct live){ next_owner++, first, count };
			allocs++;
		} else {
			unsigned k = rng() % nlive;

			ntb_lut_free(&t, live[k].first, live[k].count);
			for (uint32_t i = live[k].first; i < live[k].first + live[k].count; i++)
				busy[i] = false;
			live[k] = live[--nlive];
		}
		if (c % 97 == 0)
			check_counts(&t);
	}
	/* The run really exercised both success and exhaustion. */
	assert_true(allocs > 1000);
	assert_true(nospc > 100);
	check_counts(&t);

	while (nlive > 0) {
		nlive--;
		ntb_lut_free(&t, live[nlive].first, live[nlive].count);
	}
	assert_int_equal(t.used, 0);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(t.lut[i].owner, 0);
		assert_int_equal(t.lut[i].target, 0);
		assert_int_equal(t.lut[i].size, 0);
	}
	ntb_table_release(&t);
}

static void test_dma_slots(void **state)
{
	char reason[REASON_MAX] = "";
	struct ntb_table t;
	uint32_t slot;

	table_make(&t, 32);
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(ntb_dma_alloc(&t, 0x100 + i, &slot, reason), 0);
		assert_int_equal(slot, i);
		assert_int_equal(ntb_dma_addr(&t, slot), NTB_DMA_BASE + i * NTB_DMA_SLOT);
	}
	assert_int_equal(t.dma_used, 8);
	assert_int_equal(ntb_dma_alloc(&t, 0x200, &slot, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB DMA window on adapter nodeB/ntb0: "
				    "8 of 8 in use");

	/* DMA windows and LUT entries are separate resources. */
	assert_int_equal(t.used, 0);
	assert_int_equal(ntb_lut_alloc(&t, 0x200, 1, &slot, reason), 0);

	ntb_dma_free(&t, 3);
	ntb_dma_free(&t, 3);  /* double free */
	ntb_dma_free(&t, 99); /* out of range */
	assert_int_equal(t.dma_used, 7);
	assert_int_equal(t.dma[3].owner, 0);
	assert_int_equal(ntb_dma_alloc(&t, 0x201, &slot, reason), 0);
	assert_int_equal(slot, 3);
	assert_int_equal(t.dma[3].owner, 0x201);

	/* Claims, for recovery. */
	ntb_dma_free(&t, 5);
	assert_int_equal(ntb_dma_claim(&t, 0x300, 4, reason), -EBUSY);
	assert_string_equal(reason, "DMA window 4 on adapter nodeB/ntb0 is already "
				    "owned by 0x104");
	assert_int_equal(ntb_dma_claim(&t, 0x300, 8, reason), -EINVAL);
	assert_non_null(strstr(reason, "nodeB/ntb0"));
	assert_int_equal(ntb_dma_claim(&t, 0, 5, reason), -EINVAL);
	assert_int_equal(ntb_dma_claim(&t, 0x300, 5, reason), 0);
	assert_int_equal(t.dma[5].owner, 0x300);
	assert_int_equal(t.dma_used, 8);
	assert_int_equal(ntb_dma_alloc(&t, 0, &slot, reason), -EINVAL);
	check_counts(&t);

	for (uint32_t i = 0; i < 8; i++)
		ntb_dma_free(&t, i);
	assert_int_equal(t.dma_used, 0);
	check_counts(&t);
	ntb_table_release(&t);

	/* No DMA windows at all. */
	struct cfg_host h = host_cfg(4);

	h.dma_windows = 0;
	assert_int_equal(ntb_table_init(&t, &h), 0);
	assert_int_equal(ntb_dma_alloc(&t, 1, &slot, reason), -ENOSPC);
	assert_string_equal(reason, "no free NTB DMA window on adapter nodeB/ntb0: "
				    "0 of 0 in use");
	ntb_table_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_from_host),
		cmocka_unit_test(test_init_rejects_bad_geometry),
		cmocka_unit_test(test_entries_needed),
		cmocka_unit_test(test_16m_bar_takes_two_adjacent_entries),
		cmocka_unit_test(test_alloc_rejects_bad_requests),
		cmocka_unit_test(test_exhaustion_reason),
		cmocka_unit_test(test_fragmentation),
		cmocka_unit_test(test_claim),
		cmocka_unit_test(test_free_is_robust),
		cmocka_unit_test(test_random_cycles),
		cmocka_unit_test(test_dma_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
