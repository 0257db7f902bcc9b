/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spank_lend.h - what the lendfs SPANK plugin does, without Slurm: its
 * plugstack.conf arguments, the checks of --lend and --lend-composition,
 * lending and returning a job's devices through a lendfs mount, and the
 * record of what a job holds (docs/SLURM.md).
 *
 * Every function returns 0 or -errno and, where a human should read why,
 * fills a reason buffer of SL_REASON_MAX bytes; nothing here logs.
 */
#ifndef LENDFS_SPANK_LEND_H
#define LENDFS_SPANK_LEND_H

#include <stddef.h>
#include <stdint.h>

#define SL_REASON_MAX 512
#define SL_PATH_MAX 1024
#define SL_ID_MAX 255		/* a device ID is one file name */
#define SL_NAME_MAX 64		/* a composition name (SPEC section 10) */
#define SL_IDS_MAX 32		/* devices of one --lend */
#define SL_OPT_MAX 4096		/* bytes of one --lend value */
#define SL_MAPS_MAX 64		/* map= arguments */
#define SL_HOST_MAX 255
#define SL_GRACE_DEFAULT 300
#define SL_GRACE_MAX 86400
#define SL_LEASE_MAX 31536000	/* devices/ID/lease's bound */
#define SL_STATE_DEFAULT "/run/lendfs-spank"

struct sl_map {
	char node[SL_HOST_MAX + 1];
	char host[SL_HOST_MAX + 1];
};

struct sl_conf {
	char mount[SL_PATH_MAX];
	char state_dir[SL_PATH_MAX];
	unsigned grace;
	int nmaps;
	struct sl_map maps[SL_MAPS_MAX];
};

/* What one job asks for: --lend's devices and --lend-composition's name. */
struct sl_request {
	int nids;
	char ids[SL_IDS_MAX][SL_ID_MAX + 1];
	char composition[SL_NAME_MAX + 1];
};

/* plugstack.conf arguments: mount=PATH (required), grace=SECONDS,
 * map=NODE=HOST (repeatable), state=DIR. */
int sl_conf_parse(struct sl_conf *conf, int argc, char **argv, char *reason);

/* --lend=ID[,ID...] into req->ids (appends nothing on failure). */
int sl_parse_ids(struct sl_request *req, const char *value, char *reason);

/* --lend-composition=NAME into req->composition. */
int sl_parse_composition(struct sl_request *req, const char *value, char *reason);

/* The lendfs host of Slurm node @node: its map= entry, or the name itself. */
int sl_host_of(const struct sl_conf *conf, const char *node, char *host,
	       size_t size, char *reason);

/* The lease for a job of @limit_min minutes (UINT32_MAX or 0xfffffffe:
 * none, 0 returned): limit + grace seconds, at most SL_LEASE_MAX. */
unsigned sl_lease_seconds(const struct sl_conf *conf, uint32_t limit_min);

/*
 * Lend what @req asks for to @host for job @job, with a lease of @lease
 * seconds (0: none), all or nothing: on failure everything this call lent
 * is returned and the reason names the device ("ID: ERRNO: reason").  What
 * is lent is recorded in the state directory, for sl_return_job() and
 * sl_held_devices().
 */
int sl_lend_job(const struct sl_conf *conf, uint32_t job, const char *host,
		const struct sl_request *req, unsigned lease, char *reason);

/* Return everything job @job holds (its record), then drop the record.
 * Returns the first error; every device is tried. */
int sl_return_job(const struct sl_conf *conf, uint32_t job, char *reason);

/* The devices job @job holds, comma separated (LENDFS_DEVICES), "" none. */
int sl_held_devices(const struct sl_conf *conf, uint32_t job, char *buf,
		    size_t size, char *reason);

#endif
