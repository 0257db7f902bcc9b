// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_zkcomp.c - the text of a ZooKeeper composition node,
 * ROOT/compositions/NAME (docs/STATE.md), as another daemon (or anyone
 * with access to the ensemble) may have left it: store_zk_comp_parse().
 * The first byte of the input picks one of a few node names (a bad one
 * among them), the rest is the node's data.
 *
 * Checks: the result is 0 or -EIO; a refused text leaves a reason and
 * was refused by store_comp_validate() or had no borrower line; an
 * accepted one gives a borrower under REASON_MAX bytes and a device list
 * that store_comp_validate() accepts, and store_zk_comp_format() of them
 * gives the text back, byte for byte (the node is read as written).
 */
#include <errno.h>

#include "engine_internal.h"
#include "fuzz.h"
#include "store_zk.h"

static const char *const names[] = { "job", "a.b-c_d", "x", "a/b", "" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char borrower[REASON_MAX], reason[REASON_MAX] = "";
	const char *name, *devices = NULL;
	char *text, *back;
	int r;

	if (size == 0)
		return 0;
	name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	text = fuzz_string(data + 1, size - 1);
	r = store_zk_comp_parse(name, text, borrower, &devices, reason);
	FUZZ_ASSERT(r == 0 || r == -EIO);
	if (r < 0) {
		FUZZ_ASSERT(reason[0] != '\0');
		free(text);
		return 0;
	}
	FUZZ_ASSERT(comp_name_valid(name));
	FUZZ_ASSERT(strlen(borrower) < REASON_MAX);
	FUZZ_ASSERT(devices >= text && devices <= text + strlen(text));
	FUZZ_ASSERT(store_comp_validate(name, devices, borrower, NULL) == 0);
	back = store_zk_comp_format(borrower, devices);
	FUZZ_ASSERT(back && !strcmp(back, text));
	free(back);
	free(text);
	return 0;
}
