// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_iommu.c - a lender's IOMMU domain: mappings, translation, faults.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iommu.h"
#include "util.h"

static void check_sorted(const struct iommu_domain *d)
{
	for (unsigned i = 0; i + 1 < d->n; i++)
		assert_true(d->maps[i].iova + (d->maps[i].size - 1) < d->maps[i + 1].iova);
}

static void test_map_translate_unmap(void **state)
{
	char reason[REASON_MAX] = "";
	struct iommu_domain d;
	uint64_t phys = 0;

	iommu_domain_init(&d, true);
	assert_true(d.enabled);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.faults, 0);

	assert_int_equal(iommu_map(&d, 0x11, 0x100000, 0x10000, 0x8000000, reason), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.maps[0].owner, 0x11);

	assert_int_equal(iommu_translate(&d, 0x100000, 8, &phys), 0);
	assert_int_equal(phys, 0x8000000);
	assert_int_equal(iommu_translate(&d, 0x104321, 16, &phys), 0);
	assert_int_equal(phys, 0x8004321);
	/* The whole window in one access, and its very last byte. */
	assert_int_equal(iommu_translate(&d, 0x100000, 0x10000, &phys), 0);
	assert_int_equal(iommu_translate(&d, 0x10ffff, 1, &phys), 0);
	assert_int_equal(phys, 0x800ffff);
	assert_int_equal(iommu_translate(&d, 0x100010, 4, NULL), 0);
	assert_int_equal(d.faults, 0);

	assert_int_equal(iommu_unmap(&d, 0x100000, 0x10000), 0);
	assert_int_equal(d.n, 0);
	phys = 0x1234;
	assert_int_equal(iommu_translate(&d, 0x104321, 16, &phys), -EFAULT);
	assert_int_equal(phys, 0x1234); /* untouched on a fault */
	assert_int_equal(d.faults, 1);

	iommu_domain_release(&d);
	assert_null(d.maps);
	assert_int_equal(d.n, 0);
}

static void test_faults_counted(void **state)
{
	struct iommu_domain d;
	uint64_t phys;

	iommu_domain_init(&d, true);
	/* Two windows with a gap, then one right after the second. */
	assert_int_equal(iommu_map(&d, 1, 0x1000, 0x1000, 0xa0000, NULL), 0);
	assert_int_equal(iommu_map(&d, 1, 0x4000, 0x2000, 0xb0000, NULL), 0);
	assert_int_equal(iommu_map(&d, 2, 0x6000, 0x1000, 0xc0000, NULL), 0);

	assert_int_equal(iommu_translate(&d, 0x0, 4, &phys), -EFAULT);	   /* below */
	assert_int_equal(iommu_translate(&d, 0xfff, 1, &phys), -EFAULT);   /* byte before */
	assert_int_equal(iommu_translate(&d, 0x2000, 4, &phys), -EFAULT);  /* in the gap */
	assert_int_equal(iommu_translate(&d, 0x3fff, 1, &phys), -EFAULT);  /* gap's end */
	assert_int_equal(iommu_translate(&d, 0x7000, 4, &phys), -EFAULT);  /* above */
	assert_int_equal(iommu_translate(&d, UINT64_MAX, 1, &phys), -EFAULT);
	assert_int_equal(d.faults, 6);

	/* Across a window's end into the gap. */
	assert_int_equal(iommu_translate(&d, 0x1ff0, 0x20, &phys), -EFAULT);
	assert_int_equal(d.faults, 7);
	/* Starting in the gap and running into a window. */
	assert_int_equal(iommu_translate(&d, 0x3ff0, 0x20, &phys), -EFAULT);
	assert_int_equal(d.faults, 8);
	/*
	 * Across the seam of two adjacent windows: each byte is mapped, but
	 * not by one mapping (they go to unrelated physical pages).
	 */
	assert_int_equal(iommu_translate(&d, 0x5ff0, 0x20, &phys), -EFAULT);
	assert_int_equal(d.faults, 9);
	/* An access whose end wraps around the address space. */
	assert_int_equal(iommu_translate(&d, 0x1000, UINT64_MAX, &phys), -EFAULT);
	assert_int_equal(d.faults, 10);

	/* Accesses that fit do not count. */
	assert_int_equal(iommu_translate(&d, 0x1ff0, 0x10, &phys), 0);
	assert_int_equal(phys, 0xa0ff0);
	assert_int_equal(iommu_translate(&d, 0x5ff0, 0x10, &phys), 0);
	assert_int_equal(phys, 0xb1ff0);
	assert_int_equal(iommu_translate(&d, 0x6000, 0x10, &phys), 0);
	assert_int_equal(phys, 0xc0000);
	/* A zero-length access is checked as one byte at its address. */
	assert_int_equal(iommu_translate(&d, 0x4000, 0, &phys), 0);
	assert_int_equal(phys, 0xb0000);
	assert_int_equal(iommu_translate(&d, 0x3000, 0, &phys), -EFAULT);
	assert_int_equal(d.faults, 11);

	iommu_domain_release(&d);
}

static void test_overlap_refused(void **state)
{
	char reason[REASON_MAX] = "";
	struct iommu_domain d;

	iommu_domain_init(&d, true);
	assert_int_equal(iommu_map(&d, 0xaa, 0x10000, 0x10000, 0x100000, reason), 0);

	/* Overlapping from the left, from the right, inside, around, same. */
	assert_int_equal(iommu_map(&d, 0xbb, 0xf000, 0x2000, 0, reason), -EEXIST);
	assert_string_equal(reason, "iova 0xf000-0x10fff overlaps the mapping "
				    "0x10000-0x1ffff of owner 0xaa");
	assert_int_equal(iommu_map(&d, 0xbb, 0x1ffff, 0x10, 0, reason), -EEXIST);
	assert_int_equal(iommu_map(&d, 0xbb, 0x14000, 0x1000, 0, reason), -EEXIST);
	assert_int_equal(iommu_map(&d, 0xbb, 0x0, 0x100000, 0, reason), -EEXIST);
	assert_int_equal(iommu_map(&d, 0xbb, 0x10000, 0x10000, 0, reason), -EEXIST);
	assert_int_equal(iommu_map(&d, 0xbb, 0x10000, 1, 0, reason), -EEXIST);
	assert_int_equal(d.n, 1);

	/* Touching either end is fine. */
	assert_int_equal(iommu_map(&d, 0xbb, 0xf000, 0x1000, 0x200000, reason), 0);
	assert_int_equal(iommu_map(&d, 0xcc, 0x20000, 0x1000, 0x300000, reason), 0);
	assert_int_equal(d.n, 3);
	check_sorted(&d);

	/* A range covering several mappings names the first it hits. */
	assert_int_equal(iommu_map(&d, 0xdd, 0x0, 0x30000, 0, reason), -EEXIST);
	assert_non_null(strstr(reason, "owner 0xbb"));
	/* Straddling two neighbours names the lower one. */
	assert_int_equal(iommu_map(&d, 0xdd, 0x1f000, 0x2000, 0, reason), -EEXIST);
	assert_non_null(strstr(reason, "0x10000-0x1ffff"));
	assert_int_equal(d.n, 3);

	/* Bad ranges. */
	assert_int_equal(iommu_map(&d, 0xdd, 0x90000, 0, 0, reason), -EINVAL);
	assert_int_equal(iommu_map(&d, 0xdd, UINT64_MAX - 0xfff, 0x2000, 0, reason),
			 -EINVAL);
	assert_int_equal(iommu_map(&d, 0xdd, 0x90000, 0x2000, UINT64_MAX - 0xfff, reason),
			 -EINVAL);
	/* ...but a mapping may end on the very last byte. */
	assert_int_equal(iommu_map(&d, 0xdd, UINT64_MAX - 0xfff, 0x1000, 0x5000, reason), 0);
	uint64_t phys;

	assert_int_equal(iommu_translate(&d, UINT64_MAX, 1, &phys), 0);
	assert_int_equal(phys, 0x5fff);
	assert_int_equal(iommu_map(&d, 0xdd, UINT64_MAX, 1, 0, reason), -EEXIST);
	check_sorted(&d);
	iommu_domain_release(&d);
}

static void test_unmap(void **state)
{
	struct iommu_domain d;
	uint64_t phys;

	iommu_domain_init(&d, true);
	assert_int_equal(iommu_unmap(&d, 0x1000, 0x1000), -ENOENT);
	assert_int_equal(iommu_map(&d, 1, 0x1000, 0x1000, 0x10000, NULL), 0);
	assert_int_equal(iommu_map(&d, 2, 0x3000, 0x1000, 0x20000, NULL), 0);
	assert_int_equal(iommu_map(&d, 3, 0x5000, 0x1000, 0x30000, NULL), 0);

	assert_int_equal(iommu_unmap(&d, 0x3000, 0x2000), -ENOENT); /* wrong size */
	assert_int_equal(iommu_unmap(&d, 0x3800, 0x800), -ENOENT);  /* not its start */
	assert_int_equal(iommu_unmap(&d, 0x0, 0x1000), -ENOENT);
	assert_int_equal(iommu_unmap(&d, 0x9000, 0x1000), -ENOENT);
	assert_int_equal(d.n, 3);

	assert_int_equal(iommu_unmap(&d, 0x3000, 0x1000), 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(iommu_translate(&d, 0x3000, 1, &phys), -EFAULT);
	assert_int_equal(iommu_translate(&d, 0x1000, 1, &phys), 0);
	assert_int_equal(phys, 0x10000);
	assert_int_equal(iommu_translate(&d, 0x5000, 1, &phys), 0);
	assert_int_equal(phys, 0x30000);
	assert_int_equal(iommu_unmap(&d, 0x3000, 0x1000), -ENOENT); /* twice */

	/* The space is free again. */
	assert_int_equal(iommu_map(&d, 4, 0x2000, 0x3000, 0x40000, NULL), 0);
	assert_int_equal(iommu_translate(&d, 0x3000, 1, &phys), 0);
	assert_int_equal(phys, 0x41000);
	check_sorted(&d);
	iommu_domain_release(&d);
}

static uint64_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void test_many_mappings_stay_sorted(void **state)
{
	enum { SLOTS = 512 };
	static bool mapped[SLOTS];
	struct iommu_domain d;
	unsigned n = 0;
	uint64_t phys, faults;

	/*
	 * Slot i is iova [i * 0x10000, + 0x8000), phys 0x1000000000 + i * 0x1000
	 * (so a wrong mapping gives a wrong answer).  Map, unmap and
	 * translate in random order and compare with the model.
	 */
	iommu_domain_init(&d, true);
	memset(mapped, 0, sizeof(mapped));
	rng_state = 7;
	for (unsigned c = 0; c < 20000; c++) {
		unsigned i = rng() % SLOTS;
		uint64_t iova = (uint64_t)i * 0x10000;
		unsigned op = rng() % 3;

		if (op == 0) {
			int r = iommu_map(&d, i + 1, iova, 0x8000, 0x1000000000ULL + i * 0x1000,
					  NULL);

			assert_int_equal(r, mapped[i] ? -EEXIST : 0);
			n += !mapped[i];
			mapped[i] = true;
		} else if (op == 1) {
			assert_int_equal(iommu_unmap(&d, iova, 0x8000), mapped[i] ? 0 : -ENOENT);
			n -= mapped[i];
			mapped[i] = false;
		} else {
			uint64_t off = rng() % 0x10000;

			faults = d.faults;
			if (mapped[i] && off < 0x8000) {
				assert_int_equal(iommu_translate(&d, iova + off, 1, &phys), 0);
				assert_int_equal(phys, 0x1000000000ULL + i * 0x1000 + off);
				assert_int_equal(d.faults, faults);
			} else {
				assert_int_equal(iommu_translate(&d, iova + off, 1, &phys),
						 -EFAULT);
				assert_int_equal(d.faults, faults + 1);
			}
		}
		assert_int_equal(d.n, n);
	}
	assert_true(d.cap >= d.n);
	assert_true(n > 8); /* grew past the first allocation */
	check_sorted(&d);
	iommu_domain_release(&d);
}

static void test_disabled_passes_through(void **state)
{
	struct iommu_domain d;
	uint64_t phys = 0;

	iommu_domain_init(&d, false);
	assert_false(d.enabled);
	assert_int_equal(iommu_translate(&d, 0x123456789, 64, &phys), 0);
	assert_int_equal(phys, 0x123456789);
	assert_int_equal(iommu_translate(&d, UINT64_MAX, UINT64_MAX, &phys), 0);
	assert_int_equal(phys, UINT64_MAX);

	/* Mappings are still book-kept, but do not translate. */
	assert_int_equal(iommu_map(&d, 1, 0x1000, 0x1000, 0x90000, NULL), 0);
	assert_int_equal(iommu_translate(&d, 0x1800, 8, &phys), 0);
	assert_int_equal(phys, 0x1800);
	assert_int_equal(d.faults, 0);
	iommu_domain_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_translate_unmap),
		cmocka_unit_test(test_faults_counted),
		cmocka_unit_test(test_overlap_refused),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_many_mappings_stay_sorted),
		cmocka_unit_test(test_disabled_passes_through),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
