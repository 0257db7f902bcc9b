// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_vm.c - hosts/HOST/vms/VM/: the attribute table of one VM borrower
 * (docs/VM.md), and mkdir / rmdir of its directory.
 *
 *   qmp         (rw) the QMP socket path; writing one attaches the VM,
 *               writing an empty value detaches it
 *   state       connected | disconnected | static (a [vm] config section)
 *   memory      the guest-physical memory layout, one range a line
 *   last_error  "" or "ERRNO: reason" of the last failed attach, or why
 *               the VM is disconnected
 *   devices/    symlinks to the devices lent to it (fs.c)
 */
#include "attr.h"

#include <errno.h>
#include <string.h>

#include "fs.h"

static int put(FILE *out, const char *s)
{
	return fprintf(out, "%s\n", s) < 0 ? -EIO : 0;
}

static int show_qmp(struct engine *e, const struct vm_view *v, FILE *out)
{
	return put(out, v->qmp);
}

static int store_qmp(struct engine *e, const char *host, const char *vm,
		     const char *buf, size_t len, char *reason)
{
	char value[160];
	int r;

	reason[0] = '\0';
	r = engine_vm_attach(e, host, vm, buf, len, NULL, reason);
	if (len && buf[len - 1] == '\n')
		len--;
	lendfs_log_value(buf, len, value, sizeof(value));
	if (r < 0)
		lendfs_log("cannot attach vm %s/%s to '%s': %s", host, vm, value,
			   reason);
	else if (len)
		lendfs_log("vm %s/%s attached at %s", host, vm, value);
	else
		lendfs_log("vm %s/%s detached", host, vm);
	return r;
}

static int show_state(struct engine *e, const struct vm_view *v, FILE *out)
{
	return put(out, vm_view_state_name(v->state));
}

/* Lines already end in '\n'; an unknown layout is an empty file. */
static int show_memory(struct engine *e, const struct vm_view *v, FILE *out)
{
	return fputs(v->memory, out) < 0 ? -EIO : 0;
}

static int show_last_error(struct engine *e, const struct vm_view *v, FILE *out)
{
	return put(out, v->last_error);
}

static const struct vm_attr vm_attr_list[] = {
	{ "qmp", ATTR_RW, show_qmp, store_qmp },
	{ "state", ATTR_RO, show_state, NULL },
	{ "memory", ATTR_RO, show_memory, NULL },
	{ "last_error", ATTR_RO, show_last_error, NULL },
};

const struct vm_attr_table vm_attrs = {
	vm_attr_list, ARRAY_SIZE(vm_attr_list)
};

const struct vm_attr *vm_attr_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(vm_attr_list); i++)
		if (strcmp(vm_attr_list[i].name, name) == 0)
			return &vm_attr_list[i];
	return NULL;
}

int vm_dir_create(struct engine *e, const char *host, const char *vm)
{
	char reason[REASON_MAX] = "", value[80];
	int r = engine_vm_create(e, host, vm, reason);

	lendfs_log_value(vm, strlen(vm), value, sizeof(value));
	if (r < 0)
		lendfs_log("cannot create vm %s/%s: %s", host, value, reason);
	else
		lendfs_log("vm %s/%s created", host, vm);
	return r;
}

int vm_dir_remove(struct engine *e, const char *host, const char *vm)
{
	char reason[REASON_MAX] = "";
	int r = engine_vm_remove(e, host, vm, reason);

	if (r < 0)
		lendfs_log("cannot remove vm %s/%s: %s", host, vm, reason);
	else
		lendfs_log("vm %s/%s removed", host, vm);
	return r;
}
