/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h - shared by the libFuzzer targets in tests/fuzz/.
 *
 * Every target is one LLVMFuzzerTestOneInput() that feeds the input to a
 * parser and then checks what the parser promised (round trips, bounds,
 * errno values).  A broken promise aborts, which libFuzzer reports as a
 * crash, just like a sanitizer finding.
 */
#ifndef LENDFS_FUZZ_H
#define LENDFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n",  \
				__FILE__, __LINE__, #cond);                \
			abort();                                           \
		}                                                          \
	} while (0)

/* A NUL-terminated copy of the input (the caller frees it). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Is @s, of REASON_MAX-style buffer @size, terminated? */
static inline int fuzz_terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

#endif
