/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tool.h - what the small programs of lendfs/tools/ share: a usage error
 * says what is wrong and where the help is, and exits 2.  PROG is the
 * program's name, defined before this header is included.
 */
#ifndef LENDFS_TOOL_H
#define LENDFS_TOOL_H

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

#ifndef PROG
#error "define PROG before including tool.h"
#endif

static inline int usage_error(const char *fmt, ...) _printf_(1, 2);

/* "PROG: WHAT" and the hint to --help on stderr; returns 2. */
static inline int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return 2;
}

#endif
