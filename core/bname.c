// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bname.c - borrower names: "HOST" or "vm:HOST/VM" (bname.h).
 */
#include <errno.h>
#include <string.h>

#include "bname.h"

bool bname_is_vm(const char *s)
{
	return !strncmp(s, BNAME_VM_PREFIX, sizeof(BNAME_VM_PREFIX) - 1);
}

int bname_parse(const char *s, struct bname *out)
{
	const char *p, *slash;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	if (!bname_is_vm(s)) {
		if (!name_valid(s))
			return -EINVAL;
		memcpy(out->host, s, strlen(s) + 1);
		return 0;
	}
	p = s + sizeof(BNAME_VM_PREFIX) - 1;
	slash = strchr(p, '/');
	if (!slash)
		return -EINVAL;
	hl = (size_t)(slash - p);
	if (hl == 0 || hl > HOST_NAME_MAX_LEN)
		return -EINVAL;
	memcpy(out->host, p, hl);
	out->host[hl] = '\0';
	if (!name_valid(out->host) || !name_valid(slash + 1))
		return -EINVAL;
	memcpy(out->vm_name, slash + 1, strlen(slash + 1) + 1);
	out->vm = true;
	return 0;
}

bool bname_on_host(const char *s, const char *host)
{
	struct bname b;

	if (!strcmp(s, host))
		return true; /* the borrower itself, "vm:H/VM" included */
	return bname_parse(s, &b) == 0 && !strcmp(b.host, host);
}

int bname_format_vm(char *buf, size_t len, const char *host, const char *vm)
{
	int n = snprintf(buf, len, BNAME_VM_PREFIX "%s/%s", host, vm);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
