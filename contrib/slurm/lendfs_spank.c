// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lendfs_spank.c - Slurm SPANK plugin: a job borrows lendfs devices for
 * its lifetime (docs/SLURM.md).
 *
 *   sbatch --lend=ID[,ID...] --lend-composition=NAME ...
 *
 * The options are checked where the job is submitted (sbatch, salloc,
 * srun).  On each allocated node the job prolog (slurmd, as root) lends
 * them to the node's lendfs host through the mount, with a lease of the
 * job's time limit plus grace, so that a dead slurmd never strands a
 * device; a failed lend fails the prolog, and the reason goes to slurmd's
 * log and the job's AdminComment.  Each task gets LENDFS_DEVICES.  The
 * job epilog returns everything.  plugstack.conf:
 *
 *   required /usr/lib/x86_64-linux-gnu/slurm-wlm/lendfs_spank.so \
 *       mount=/lend [grace=300] [map=NODE=HOST ...] [state=/run/lendfs-spank]
 *
 * The work is in spank_lend.c; this file is the glue to Slurm.  Slurm's
 * functions (slurm_load_job, slurm_update_job, the log) come from the
 * program that loads the plugin: it links no libslurm of its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "spank_lend.h"

SPANK_PLUGIN(lendfs, 1);

#define DEVICES_ENV "LENDFS_DEVICES"

static struct sl_conf conf;

static int opt_lend(int val, const char *optarg, int remote)
{
	struct sl_request req = { 0 };
	char reason[SL_REASON_MAX];

	if (!optarg || sl_parse_ids(&req, optarg, reason) < 0) {
		slurm_error("lendfs: %s", optarg ? reason : "--lend needs ID[,ID...]");
		return -1;
	}
	return 0;
}

static int opt_composition(int val, const char *optarg, int remote)
{
	struct sl_request req = { 0 };
	char reason[SL_REASON_MAX];

	if (!optarg || sl_parse_composition(&req, optarg, reason) < 0) {
		slurm_error("lendfs: %s", optarg ? reason : "--lend-composition needs NAME");
		return -1;
	}
	return 0;
}

static struct spank_option options[] = {
	{ "lend", "ID[,ID...]",
	  "Borrow these lendfs devices on every node of the job, for its lifetime",
	  1, 0, opt_lend },
	{ "lend-composition", "NAME",
	  "Borrow this lendfs composition on every node of the job, for its lifetime",
	  1, 1, opt_composition },
	SPANK_OPTIONS_TABLE_END
};

/* The plugstack.conf arguments, which each callback gets: the job prolog
 * and epilog run in a process of their own, where init is not called. */
static int load_conf(int ac, char **av)
{
	char reason[SL_REASON_MAX];

	if (sl_conf_parse(&conf, ac, av, reason) < 0) {
		slurm_error("lendfs: plugstack.conf: %s", reason);
		return -1;
	}
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	size_t i;

	for (i = 0; options[i].name; i++)
		if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
			slurm_error("lendfs: cannot register --%s", options[i].name);
			return -1;
		}
	return load_conf(ac, av);
}

/*
 * The job's request, from its options: 1 when it asks for something, 0
 * when not, -1 (reason filled) when an option is malformed.  The values
 * are checked again here: the prolog runs as root on what the user wrote.
 */
static int job_request(spank_t sp, struct sl_request *req, char *reason)
{
	char *ids = NULL, *name = NULL;

	memset(req, 0, sizeof(*req));
	if (spank_option_getopt(sp, &options[0], &ids) == ESPANK_SUCCESS && ids &&
	    sl_parse_ids(req, ids, reason) < 0)
		return -1;
	if (spank_option_getopt(sp, &options[1], &name) == ESPANK_SUCCESS && name &&
	    sl_parse_composition(req, name, reason) < 0)
		return -1;
	return req->nids > 0 || req->composition[0];
}

/* Tell why the job cannot start: slurmd's log and the job's AdminComment. */
static void job_failed(uint32_t job, const char *reason)
{
	job_desc_msg_t desc;
	char text[SL_REASON_MAX + 16];

	snprintf(text, sizeof(text), "lendfs: %s", reason);
	slurm_error("lendfs: job %u: %s", job, reason);
	slurm_init_job_desc_msg(&desc);
	desc.job_id = job;
	desc.admin_comment = text;
	if (slurm_update_job(&desc) != SLURM_SUCCESS)
		slurm_error("lendfs: job %u: cannot set its AdminComment: %s", job,
			    slurm_strerror(slurm_get_errno()));
}

/*
 * A lend lendfs refused (a busy or unknown device, no free window...): the
 * job's request is at fault, not the node, so the job is cancelled before
 * it starts rather than failing the prolog, which would drain the node
 * and hold the job.  A node whose mount does not answer fails the prolog.
 */
static int job_refused(uint32_t job, const char *reason)
{
	char version[SL_PATH_MAX + 16];

	job_failed(job, reason);
	snprintf(version, sizeof(version), "%s/version", conf.mount);
	if (access(version, R_OK) < 0)
		return -1;
	if (slurm_kill_job(job, SIGKILL, 0) != SLURM_SUCCESS) {
		slurm_error("lendfs: job %u: cannot cancel it: %s", job,
			    slurm_strerror(slurm_get_errno()));
		return -1;
	}
	return 0;
}

/* The job's time limit in minutes, from slurmctld. */
static int job_time_limit(uint32_t job, uint32_t *minutes, char *reason)
{
	job_info_msg_t *msg = NULL;

	if (slurm_load_job(&msg, job, SHOW_ALL) != SLURM_SUCCESS || !msg ||
	    msg->record_count < 1) {
		snprintf(reason, SL_REASON_MAX, "cannot read the time limit of job %u: %s",
			 job, slurm_strerror(slurm_get_errno()));
		if (msg)
			slurm_free_job_info_msg(msg);
		return -1;
	}
	*minutes = msg->job_array[0].time_limit;
	slurm_free_job_info_msg(msg);
	return 0;
}

/* Which lendfs host this node is (SLURMD_NODENAME, through map=). */
static int node_host(char *host, size_t size, char *reason)
{
	const char *node = getenv("SLURMD_NODENAME");

	if (!node || !node[0]) {
		snprintf(reason, SL_REASON_MAX, "SLURMD_NODENAME is not set");
		return -1;
	}
	return sl_host_of(&conf, node, host, size, reason) < 0 ? -1 : 0;
}

int slurm_spank_job_prolog(spank_t sp, int ac, char **av)
{
	struct sl_request req;
	char reason[SL_REASON_MAX] = "", host[SL_HOST_MAX + 1];
	uint32_t job = 0, minutes = 0;
	unsigned lease;
	int asks;

	if (load_conf(ac, av) < 0)
		return -1;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS) {
		slurm_error("lendfs: prolog: no job ID");
		return -1;
	}
	asks = job_request(sp, &req, reason);
	if (asks == 0)
		return 0;
	if (asks < 0)	/* the option's value, set behind sbatch's back */
		return job_refused(job, reason);
	if (node_host(host, sizeof(host), reason) < 0 ||
	    job_time_limit(job, &minutes, reason) < 0) {
		job_failed(job, reason);
		return -1;
	}
	lease = sl_lease_seconds(&conf, minutes);
	if (sl_lend_job(&conf, job, host, &req, lease, reason) < 0)
		return job_refused(job, reason);
	slurm_info("lendfs: job %u: lent to %s, lease %us", job, host, lease);
	return 0;
}

int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	char reason[SL_REASON_MAX] = "";
	uint32_t job = 0;

	if (load_conf(ac, av) < 0)
		return -1;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS) {
		slurm_error("lendfs: epilog: no job ID");
		return -1;
	}
	if (sl_return_job(&conf, job, reason) < 0) {
		slurm_error("lendfs: job %u: %s", job, reason);
		return -1;
	}
	return 0;
}

/*
 * Each task, still privileged (the record is root's): LENDFS_DEVICES, what
 * the job holds on this node, for every step of the job (an srun inside
 * salloc or sbatch too, whose own options do not say it).
 */
int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	char reason[SL_REASON_MAX] = "", held[16384];
	uint32_t job = 0;

	if (load_conf(ac, av) < 0)
		return -1;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    sl_held_devices(&conf, job, held, sizeof(held), reason) < 0) {
		slurm_error("lendfs: job %u: %s", job, reason[0] ? reason : "no job ID");
		return -1;
	}
	if (!held[0])
		return 0;
	if (spank_setenv(sp, DEVICES_ENV, held, 1) != ESPANK_SUCCESS) {
		slurm_error("lendfs: job %u: cannot set " DEVICES_ENV, job);
		return -1;
	}
	return 0;
}
