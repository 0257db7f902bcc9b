// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * attr_vm.c - hosts/HOST/vms/VM/: the attribute table of one VM borrower
 * (docs/VM.md).  mkdir / rmdir of its directory are fs.c's.
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
#include <stdlib.h>

static int put(FILE *out, const char *s)
{
	return fprintf(out, "%s\n", s) < 0 ? -EIO : 0;
}

static int vm_qmp_show(const struct attr_ctx *ctx, FILE *out)
{
	return put(out, ctx->vv->qmp);
}

static int vm_qmp_store(const struct attr_ctx *ctx, struct attr_write *w)
{
	snprintf(w->what, sizeof(w->what), "attach vm %s/%s to '%s'",
		 ctx->host, ctx->vm, w->value);
	if (value_len(w->buf, w->len))
		snprintf(w->done, sizeof(w->done), "vm %s/%s attached at %s",
			 ctx->host, ctx->vm, w->value);
	else
		snprintf(w->done, sizeof(w->done), "vm %s/%s detached",
			 ctx->host, ctx->vm);
	return engine_vm_attach(ctx->engine, ctx->host, ctx->vm, w->buf, w->len,
				ctx->who, w->reason);
}

static int vm_state_show(const struct attr_ctx *ctx, FILE *out)
{
	return put(out, vm_view_state_name(ctx->vv->state));
}

/* Lines already end in '\n'; an unknown layout is an empty file. */
static int vm_memory_show(const struct attr_ctx *ctx, FILE *out)
{
	return fputs(ctx->vv->memory, out) < 0 ? -EIO : 0;
}

static int vm_last_error_show(const struct attr_ctx *ctx, FILE *out)
{
	return put(out, ctx->vv->last_error);
}

/* A vm_view holds the memory layout text: on the heap, not the stack. */
static int vm_get(struct attr_ctx *ctx)
{
	_cleanup_free_ struct vm_view *v = malloc(sizeof(*v));
	int r = v ? engine_vm_view(ctx->engine, ctx->host, ctx->vm, v) : -ENOMEM;

	if (r == 0)
		ctx->vv = take_ptr(v);
	return r;
}

static void vm_put(struct attr_ctx *ctx)
{
	free(ctx->vv);
	ctx->vv = NULL;
}

static const struct lendfs_attr vm_attr_list[] = {
	LENDFS_ATTR_RW(vm_, qmp),
	LENDFS_ATTR_RO(vm_, state),
	LENDFS_ATTR_RO(vm_, memory),
	LENDFS_ATTR_RO(vm_, last_error),
};

static const char *const vm_dirs[] = { VM_DEVICES_DIR, NULL };

const struct attr_table vm_attrs =
	ATTR_TABLE(vm_attr_list, vm_dirs, vm_get, vm_put);
