/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bname.h - borrower names, parsed in one place.
 *
 * A borrower (and the owner of an address space in the fabric) is either
 * a host, "HOST", or a VM guest running on a host, "vm:HOST/VM".  HOST
 * and VM are name_valid() names.  Every module that needs the parts of
 * such a value asks bname_parse(); nothing else looks for "vm:".
 */
#ifndef LENDFS_BNAME_H
#define LENDFS_BNAME_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define BNAME_VM_PREFIX "vm:"

struct bname {
	bool vm;			  /* "vm:HOST/VM" */
	char host[HOST_NAME_MAX_LEN + 1]; /* HOST: whose fabric side maps it */
	char vm_name[VM_NAME_MAX_LEN + 1]; /* VM, "" for a host */
};

/* 0, or -EINVAL when @s is neither "HOST" nor "vm:HOST/VM". */
int bname_parse(const char *s, struct bname *out);

/* Does @s look like a VM borrower ("vm:" prefix), well-formed or not? */
bool bname_is_vm(const char *s);

/* Is @s the borrower @host itself, or a VM running on host @host? */
bool bname_on_host(const char *s, const char *host);

/* "vm:HOST/VM" into @buf; -ENAMETOOLONG if it does not fit. */
int bname_format_vm(char *buf, size_t len, const char *host, const char *vm);

#endif
