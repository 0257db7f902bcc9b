// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * soak.c - the load of make soak (tests/stress/soak.sh): lend/return
 * cycles through a real mount, many devices, several writers.
 *
 *   soak -n CYCLES [-w WRITERS] [-m MARKS] -p PID -s STATE -r RUNDIR MNT
 *        DEVICE=BORROWER[,BORROWER...]...
 *
 * A cycle is one lend and its return, each an open+write(2)+close of
 * MNT/devices/DEVICE/borrower ("BORROWER\n", then "\n"): a write returns
 * when its request is done.  Writer k owns the devices k, k + WRITERS,
 * k + 2 WRITERS, ... of the list and takes them in turn; each device
 * takes its borrowers in turn, so that every route is used.  Writers
 * claim cycles from one counter until CYCLES are claimed.
 *
 * At MARKS equal steps of completed cycles (and once before the first),
 * the watching thread samples the daemon PID while the writers go on,
 * and prints one line on stdout:
 *
 *   sample CYCLES SECONDS RSS_KIB FDS WAL_BYTES LUT DMA LENDS RLUT RDMA RIOMMU
 *
 * CYCLES completed when the sample began; the daemon's VmRSS
 * (/proc/PID/status) and open descriptors (/proc/PID/fd); the size of
 * STATE-wal; the LUT entries, DMA windows and lends in use by the mount's
 * metrics file (summed over hosts); the LUT entries, DMA windows and IOMMU
 * mappings programmed in the sim's register files of RUNDIR
 * (sim_hw_regs(), as lendfs-dma regs).  The last sample is taken after
 * every writer has stopped: nothing is lent any more.  WRITERS defaults
 * to 8, MARKS to 50.
 *
 * Exit 1 on the first failed write (with the device, the value and the
 * errno) or a failed sample, 2 on a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fabric_sim.h"
#include "util.h"

#define MAX_BORROWERS 16

struct target {
	char *path;			/* MNT/devices/DEVICE/borrower */
	char *value[MAX_BORROWERS];	/* "BORROWER\n" */
	unsigned nvalues, next;
};

struct writer {
	pthread_t thread;
	struct target **targets;
	unsigned ntargets;
};

static long cycles;
static atomic_long claimed, done;
static atomic_int failed;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One request: 0 or -errno. */
static int request(const char *path, const char *value)
{
	size_t len = strlen(value);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n != (ssize_t)len)
		err = n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

static void *run(void *arg)
{
	struct writer *w = arg;
	unsigned i = 0;

	while (!atomic_load(&failed) && atomic_fetch_add(&claimed, 1) < cycles) {
		struct target *t = w->targets[i++ % w->ntargets];
		const char *v = t->value[t->next++ % t->nvalues];
		int r = request(t->path, v);

		if (r == 0) {
			v = "\n";
			r = request(t->path, v);
		}
		if (r < 0) {
			fprintf(stderr, "soak: %s: writing '%.*s': %s\n", t->path,
				(int)strcspn(v, "\n"), v, strerror(-r));
			atomic_store(&failed, 1);
			break;
		}
		atomic_fetch_add(&done, 1);
	}
	return NULL;
}

/* DEVICE=B1,B2,... -> a target. */
static struct target *target_parse(const char *mnt, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct target *t = calloc(1, sizeof(*t));
	char *list, *save = NULL;

	if (!eq || !t || asprintf(&t->path, "%s/devices/%.*s/borrower", mnt,
				  (int)(eq - arg), arg) < 0)
		return NULL;
	list = strdup(eq + 1);
	for (char *b = strtok_r(list, ",", &save); b && t->nvalues < MAX_BORROWERS;
	     b = strtok_r(NULL, ",", &save))
		if (asprintf(&t->value[t->nvalues++], "%s\n", b) < 0)
			return NULL;
	free(list);
	return t->nvalues ? t : NULL;
}

/* What soak samples: the daemon, the store, the metrics, the registers. */
struct probe {
	const char *mnt;
	char status[64], fd_dir[64], wal[4096], metrics[4096];
	struct sim_hw *hw;
	double t0;
};

/* "Key:   N kB" of /proc/PID/status. */
static long status_kib(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static long count_fds(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* @n[i]: the sum of metric @names[i] over its labels. */
static int metrics_sum(const char *path, const char *const *names, long *n, int count)
{
	FILE *f = fopen(path, "r");
	char line[512];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		for (int i = 0; i < count; i++) {
			size_t len = strlen(names[i]);

			if (strncmp(line, names[i], len) == 0 &&
			    (line[len] == ' ' || line[len] == '{'))
				n[i] += strtol(strrchr(line, ' ') + 1, NULL, 10);
		}
	fclose(f);
	return 0;
}

static int count_reg(void *arg, const struct sim_reg *g)
{
	long *n = arg;

	if (g->w.kind <= WIN_IOMMU)
		n[g->w.kind]++;
	return 0;
}

/* One sample line; -1 if something could not be read. */
static int sample(struct probe *p)
{
	static const char *const names[] = { "lendfs_lut_entries_used",
		"lendfs_dma_windows_used", "lendfs_active_lends" };
	long cycles_done = atomic_load(&done), m[3] = { 0 }, regs[3] = { 0 };
	double t = now_s() - p->t0;
	char reason[REASON_MAX] = "";
	long rss = status_kib(p->status, "VmRSS:"), fds = count_fds(p->fd_dir);
	struct stat st;

	if (rss < 0 || fds < 0 || stat(p->wal, &st) < 0 ||
	    metrics_sum(p->metrics, names, m, 3) < 0) {
		fprintf(stderr, "soak: cannot sample the daemon: %s\n", strerror(errno));
		return -1;
	}
	if (sim_hw_regs(p->hw, NULL, count_reg, regs, reason) < 0) {
		fprintf(stderr, "soak: cannot read the registers: %s\n", reason);
		return -1;
	}
	printf("sample %ld %.3f %ld %ld %lld %ld %ld %ld %ld %ld %ld\n", cycles_done, t,
	       rss, fds, (long long)st.st_size, m[0], m[1], m[2], regs[WIN_LUT],
	       regs[WIN_DMA], regs[WIN_IOMMU]);
	return fflush(stdout) == 0 ? 0 : -1;
}

/* Sample each time the completed cycles cross the next step. */
static int watch(struct probe *p, long marks)
{
	long next = 1;

	while (next < marks && !atomic_load(&failed)) {
		if (atomic_load(&done) >= cycles * next / marks) {
			if (sample(p) < 0)
				return -1;
			next++;
			continue;
		}
		usleep(1000);
	}
	return 0;
}

static int probe_open(struct probe *p, long pid, const char *state,
		      const char *run_dir)
{
	char reason[REASON_MAX] = "";

	snprintf(p->status, sizeof(p->status), "/proc/%ld/status", pid);
	snprintf(p->fd_dir, sizeof(p->fd_dir), "/proc/%ld/fd", pid);
	snprintf(p->wal, sizeof(p->wal), "%s-wal", state);
	snprintf(p->metrics, sizeof(p->metrics), "%s/metrics", p->mnt);
	if (sim_hw_open(run_dir, &p->hw, reason) < 0) {
		fprintf(stderr, "soak: %s: %s\n", run_dir, reason);
		return -1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	const char *state = NULL, *run_dir = NULL;
	long nwriters = 8, marks = 50, pid = 0;
	struct probe p = { 0 };
	struct writer *w;
	int c, ntargets, r;

	while ((c = getopt(argc, argv, "n:w:m:p:s:r:")) != -1) {
		switch (c) {
		case 'n':
			cycles = strtol(optarg, NULL, 10);
			break;
		case 'w':
			nwriters = strtol(optarg, NULL, 10);
			break;
		case 'm':
			marks = strtol(optarg, NULL, 10);
			break;
		case 'p':
			pid = strtol(optarg, NULL, 10);
			break;
		case 's':
			state = optarg;
			break;
		case 'r':
			run_dir = optarg;
			break;
		default:
			goto usage;
		}
	}
	ntargets = argc - optind - 1;
	if (cycles < 1 || nwriters < 1 || marks < 1 || ntargets < nwriters ||
	    pid <= 0 || !state || !run_dir)
		goto usage;
	p.mnt = argv[optind];
	w = calloc((size_t)nwriters, sizeof(*w));
	for (long k = 0; w && k < nwriters; k++)
		w[k].targets = calloc((size_t)ntargets, sizeof(*w[k].targets));
	for (int i = 0; i < ntargets; i++) {
		struct writer *wk = &w[i % nwriters];

		if (!(wk->targets[wk->ntargets++] = target_parse(p.mnt, argv[optind + 1 + i])))
			goto usage;
	}
	if (probe_open(&p, pid, state, run_dir) < 0)
		return 1;
	p.t0 = now_s();
	if (sample(&p) < 0)
		return 1;
	for (long k = 0; k < nwriters; k++)
		pthread_create(&w[k].thread, NULL, run, &w[k]);
	r = watch(&p, marks);
	if (r < 0)
		atomic_store(&failed, 1);
	for (long k = 0; k < nwriters; k++)
		pthread_join(w[k].thread, NULL);
	/* every writer stopped: nothing is lent */
	if (r == 0 && !atomic_load(&failed))
		r = sample(&p);
	sim_hw_close(p.hw);
	return r < 0 || atomic_load(&failed) ? 1 : 0;

usage:
	fprintf(stderr, "usage: soak -n CYCLES [-w WRITERS] [-m MARKS] -p PID -s STATE "
		"-r RUNDIR MNT DEVICE=BORROWER[,BORROWER...]... (at least WRITERS devices)\n");
	return 2;
}
