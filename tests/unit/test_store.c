// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_store.c - the store back-ends (memory and SQLite) and the shared
 * invariant check.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

#define DEV_A "nodeA:0000:65:00.0"
#define DEV_B "nodeA:0000:6b:00.0"
#define DEV_C "nodeC:0000:01:00.0"

struct fixture {
	char dir[64];
	char db[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/lendfs-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int make_writable(const char *path, const struct stat *st, int flag,
			 struct FTW *ftw)
{
	if (flag == FTW_D || flag == FTW_DNR)
		chmod(path, 0700);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	chmod(f->dir, 0700);
	nftw(f->dir, make_writable, 16, FTW_PHYS);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static struct window win(enum window_kind kind, const char *host, uint32_t index,
			 uint32_t count, uint64_t local, uint64_t size, uint64_t target,
			 const char *next, const char *tag)
{
	struct window w = { .kind = kind, .index = index, .count = count,
			    .local = local, .size = size, .target = target };

	snprintf(w.host, sizeof(w.host), "%s", host);
	snprintf(w.next, sizeof(w.next), "%s", next);
	snprintf(w.tag, sizeof(w.tag), "%s", tag);
	return w;
}

static struct lend_record rec(const char *dev, const char *borrower, enum rec_state st,
			      struct window *w, unsigned n)
{
	struct lend_record r = { .state = st, .since = 1700000000, .epoch = 7,
				 .windows = w, .nwindows = n };

	snprintf(r.device, sizeof(r.device), "%s", dev);
	snprintf(r.borrower, sizeof(r.borrower), "%s", borrower);
	return r;
}

/* A consistent set of three lends, used as the base of the check tests. */
static struct window wa[3], wb[3], wc[2];
static struct lend_record base[3];

static void base_init(void)
{
	wa[0] = win(WIN_LUT, "nodeB", 0, 2, 0x200000000000, 0x1000000, 0x380000000000, "nodeA",
		    "bar0");
	wa[1] = win(WIN_DMA, "nodeA", 0, 1, 0x280000000000, 0x40000000, 0x0, "nodeB", "ram0");
	wa[2] = win(WIN_IOMMU, "nodeA", 0, 1, 0x0, 0x40000000, 0x0, "nodeA", "ram0");
	wb[0] = win(WIN_LUT, "nodeC", 0, 1, 0x200000000000, 0x800000, 0x380001000000, "nodeA",
		    "bar0");
	wb[1] = win(WIN_DMA, "nodeA", 1, 1, 0x290000000000, 0x40000000, 0x0, "nodeB", "ram0");
	wb[2] = win(WIN_IOMMU, "nodeA", 0, 1, 0x40000000, 0x40000000, 0x0, "nodeA", "ram0");
	wc[0] = win(WIN_LUT, "nodeB", 2, 1, 0x200001000000, 0x100000, 0x390000000000, "nodeA",
		    "p2p:nodeA:0000:65:00.0:bar0");
	wc[1] = win(WIN_DMA, "nodeC", 0, 1, 0x280000000000, 0x20000000, 0x0,
		    "vm:nodeB/vm1", "ram0");
	base[0] = rec(DEV_A, "nodeB", REC_LENT, wa, 3);
	base[0].expires = 1796517458866315959LL; /* a lease deadline, ns */
	base[1] = rec(DEV_B, "nodeC", REC_LENT, wb, 3);
	base[2] = rec(DEV_C, "vm:nodeB/vm1", REC_LENDING, wc, 2);
}

struct collected {
	struct lend_record recs[128];
	unsigned n;
};

static int collect(void *arg, const struct lend_record *r)
{
	struct collected *c = arg;

	if (c->n >= ARRAY_SIZE(c->recs))
		return -E2BIG;
	if (lend_record_copy(&c->recs[c->n], r) < 0)
		return -ENOMEM;
	c->n++;
	return 0;
}

static void collected_release(struct collected *c)
{
	for (unsigned i = 0; i < c->n; i++)
		lend_record_release(&c->recs[i]);
	c->n = 0;
}

static void load_all(const struct store_ops *ops, void *ctx, struct collected *c)
{
	char reason[REASON_MAX] = "";

	collected_release(c);
	assert_int_equal(ops->load(ctx, collect, c, reason), 0);
}

static void assert_window_equal(const struct window *a, const struct window *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->count, b->count);
	assert_true(a->local == b->local);
	assert_true(a->size == b->size);
	assert_true(a->target == b->target);
	assert_string_equal(a->tag, b->tag);
}

static void assert_rec_equal(const struct lend_record *a, const struct lend_record *b)
{
	assert_string_equal(a->device, b->device);
	assert_string_equal(a->borrower, b->borrower);
	assert_int_equal(a->state, b->state);
	assert_true(a->since == b->since);
	assert_true(a->epoch == b->epoch);
	assert_true(a->expires == b->expires);
	assert_int_equal(a->nwindows, b->nwindows);
	for (unsigned i = 0; i < a->nwindows; i++)
		assert_window_equal(&a->windows[i], &b->windows[i]);
}

static void put_ok(const struct store_ops *ops, void *ctx, const struct lend_record *r)
{
	char reason[REASON_MAX] = "";
	int ret = ops->put(ctx, r, reason);

	if (ret != 0)
		fail_msg("put %s: %d %s", r->device, ret, reason);
}

static void *open_ok(const struct store_ops *ops, const char *where)
{
	char reason[REASON_MAX] = "";
	void *ctx = NULL;
	int r = ops->open(where, &ctx, reason);

	if (r != 0)
		fail_msg("open %s: %d %s", where ? where : "(null)", r, reason);
	assert_non_null(ctx);
	return ctx;
}

/* Open must fail with @err, a reason naming the file, and no context. */
static void open_fails(const char *path, int err, const char *needle)
{
	char reason[REASON_MAX] = "";
	void *ctx = NULL;
	int r = store_sqlite_ops.open(path, &ctx, reason);

	if (r != err)
		fail_msg("open %s: expected %d, got %d (%s)", path, err, r, reason);
	assert_null(ctx);
	assert_non_null(strstr(reason, path));
	if (needle && !strstr(reason, needle))
		fail_msg("reason '%s' lacks '%s'", reason, needle);
}

static char *file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void file_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The file must hold exactly @before, and SQLite left no side files. */
static void assert_file_is(const char *path, const char *before, size_t blen)
{
	char side[256];
	size_t len;
	char *now = file_read(path, &len);

	assert_int_equal(len, blen);
	assert_memory_equal(now, before, blen);
	free(now);
	snprintf(side, sizeof(side), "%s-wal", path);
	assert_false(exists(side));
	snprintf(side, sizeof(side), "%s-journal", path);
	assert_false(exists(side));
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("sql '%s': %s", sql, err);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* A store file with the base records, closed. */
static void make_base_db(const char *path)
{
	void *ctx = open_ok(&store_sqlite_ops, path);

	base_init();
	for (unsigned i = 0; i < ARRAY_SIZE(base); i++)
		put_ok(&store_sqlite_ops, ctx, &base[i]);
	store_sqlite_ops.close(ctx);
}

/* Run @fn in a child; its exit status (77: skipped). */
static int in_child(int (*fn)(void *arg), void *arg)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/*
 * A child skips only when the kernel or the user lacks what it needs
 * (namespaces, mounting a tmpfs, dropping to nobody): it says which and
 * why (docs/TESTING.md, "Skips").
 */
#define SKIPPED 77
static int child_skips(const char *what)
{
	fprintf(stderr, "SKIP: %s: %s\n", what, strerror(errno));
	return SKIPPED;
}
#define CHILD_ASSERT(c)                                                          \
	do {                                                                     \
		if (!(c)) {                                                      \
			fprintf(stderr, "%s:%d: in child: %s\n", __FILE__,       \
				__LINE__, #c);                                   \
			return 1;                                                \
		}                                                                \
	} while (0)

static void child_result(int status)
{
	if (status == SKIPPED)
		skip();
	assert_int_equal(status, 0);
}

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok;
}

/*
 * A private tmpfs at @dir (child only); false if not permitted.  Without
 * privileges, a user namespace makes us root enough to mount one.
 */
static bool private_tmpfs(const char *dir, const char *opts)
{
	if (unshare(CLONE_NEWNS) < 0) {
		char map[64];
		uid_t uid = geteuid();
		gid_t gid = getegid();

		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			return false;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		if (!write_file("/proc/self/uid_map", map))
			return false;
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		if (!write_file("/proc/self/gid_map", map))
			return false;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return false;
	return mount("tmpfs", dir, "tmpfs", 0, opts) == 0;
}

/* ---- shared ------------------------------------------------------------ */

static void test_rec_state_name(void **state)
{
	assert_string_equal(rec_state_name(REC_LENDING), "lending");
	assert_string_equal(rec_state_name(REC_LENT), "lent");
	assert_string_equal(rec_state_name(REC_RETURNING), "returning");
	assert_string_equal(rec_state_name((enum rec_state)17), "?");
}

static void test_record_copy_release(void **state)
{
	struct lend_record copy;

	base_init();
	assert_int_equal(lend_record_copy(&copy, &base[0]), 0);
	assert_ptr_not_equal(copy.windows, base[0].windows);
	assert_rec_equal(&copy, &base[0]);
	copy.windows[0].index = 99;
	assert_int_equal(base[0].windows[0].index, 0);
	lend_record_release(&copy);
	assert_null(copy.windows);
	assert_int_equal(copy.nwindows, 0);
	lend_record_release(&copy); /* twice is harmless */
	lend_record_release(NULL);
}

static void test_validate(void **state)
{
	char reason[REASON_MAX];
	struct lend_record r;
	struct window w[1];

	base_init();
	assert_int_equal(store_record_validate(&base[0], reason), 0);
	assert_int_equal(store_record_validate(&base[2], reason), 0);

	r = rec("nodeA", "nodeB", REC_LENT, wa, 1);
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	assert_non_null(strstr(reason, "invalid device id 'nodeA'"));
	r = rec("node A:0000:65:00.0", "nodeB", REC_LENT, wa, 1);
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	r = rec(DEV_A, "", REC_LENT, wa, 1);
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	assert_non_null(strstr(reason, "no borrower"));
	r = rec(DEV_A, "vm:nodeB", REC_LENT, wa, 1);
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	r = rec(DEV_A, "nodeB", (enum rec_state)3, wa, 1);
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	assert_non_null(strstr(reason, "unknown state 3"));

	w[0] = win(WIN_LUT, "nodeB", 0, 1, 0, 0x1000, 0, "nodeA", "two words");
	r = rec(DEV_A, "nodeB", REC_LENT, w, 1);
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	assert_non_null(strstr(reason, "window 0 of " DEV_A));
	w[0] = win(WIN_LUT, "nodeB", 0, 1, 0, 0x1000, 0, "nodeA", "-");
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	w[0] = win(WIN_LUT, "nodeB", 0, 1, 0, 0x1000, 0, "vm:nodeA", "bar0");
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	assert_non_null(strstr(reason, "next 'vm:nodeA'"));
	w[0] = win(WIN_LUT, "node:B", 0, 1, 0, 0x1000, 0, "nodeA", "bar0");
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	assert_non_null(strstr(reason, "invalid host name"));
	w[0] = win((enum window_kind)5, "nodeB", 0, 1, 0, 0x1000, 0, "nodeA", "bar0");
	assert_int_equal(store_record_validate(&r, reason), -EINVAL);
	/* An empty tag or next is fine: its text form is "-". */
	w[0] = win(WIN_LUT, "nodeB", 0, 1, 0, 0x1000, 0, "", "");
	assert_int_equal(store_record_validate(&r, reason), 0);
}

/* ---- round trips, both back-ends --------------------------------------- */

static void round_trip(const struct store_ops *ops, const char *where)
{
	struct window w1[2], w2[3], wx[1];
	struct lend_record lending, lent, other;
	struct collected c = { 0 };
	char reason[REASON_MAX];
	void *ctx = open_ok(ops, where);

	load_all(ops, ctx, &c);
	assert_int_equal(c.n, 0);

	w1[0] = win(WIN_LUT, "nodeB", 4, 2, 0x200000800000, 0x1000000, 0x380000000000, "nodeA",
		    "bar0");
	w1[1] = win(WIN_IOMMU, "nodeA", 0, 1, 0x0, 0x40000000, 0x0, "nodeA", "ram0");
	lending = rec(DEV_A, "nodeB", REC_LENDING, w1, 2);
	lending.epoch = 0xfffffffffffffff0ULL; /* above INT64_MAX */
	lending.since = -5;
	put_ok(ops, ctx, &lending);
	load_all(ops, ctx, &c);
	assert_int_equal(c.n, 1);
	assert_rec_equal(&c.recs[0], &lending);

	/* Outcome: lent, with a different set of windows that replaces the old. */
	w2[0] = win(WIN_LUT, "nodeB", 4, 2, 0x200000800000, 0x1000000, 0x380000000000, "nodeA",
		    "bar0");
	w2[1] = win(WIN_DMA, "nodeA", 3, 1, 0x2b0000000000, 0xffffffffffffffffULL,
		    0x123456789abcdef0ULL, "", "");
	w2[2] = win(WIN_IOMMU, "nodeA", 0, 1, 0x100000000, 0x7fffffff, 0x100000000, "nodeA",
		    "ram1");
	lent = rec(DEV_A, "nodeB", REC_LENT, w2, 3);
	lent.epoch = 8;
	put_ok(ops, ctx, &lent);

	wx[0] = win(WIN_LUT, "nodeA", 0, 1, 0x200000000000, 0x1000, 0x1000, "nodeA", "bar2");
	other = rec("nodeC:0000:01:00.0", "vm:nodeA/guest-1", REC_RETURNING, wx, 1);
	put_ok(ops, ctx, &other);
	/* Sorts before DEV_A. */
	snprintf(other.device, sizeof(other.device), "node0:0000:02:00.0");
	put_ok(ops, ctx, &other);

	load_all(ops, ctx, &c);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.recs[0].device, "node0:0000:02:00.0");
	assert_rec_equal(&c.recs[1], &lent);
	assert_string_equal(c.recs[2].device, "nodeC:0000:01:00.0");
	assert_string_equal(c.recs[2].borrower, "vm:nodeA/guest-1");
	assert_int_equal(c.recs[2].state, REC_RETURNING);

	/* Invalid records change nothing. */
	lending.state = (enum rec_state)9;
	assert_int_equal(ops->put(ctx, &lending, reason), -EINVAL);
	load_all(ops, ctx, &c);
	assert_rec_equal(&c.recs[1], &lent);

	assert_int_equal(ops->remove(ctx, DEV_A, NULL, reason), 0);
	load_all(ops, ctx, &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.recs[0].device, "node0:0000:02:00.0");
	assert_string_equal(c.recs[1].device, "nodeC:0000:01:00.0");
	/* Absent is not an error. */
	assert_int_equal(ops->remove(ctx, DEV_A, NULL, reason), 0);
	assert_int_equal(ops->remove(ctx, "", NULL, reason), -EINVAL);

	/* Put again after remove: no stale windows come back. */
	lending.state = REC_LENDING;
	lending.nwindows = 1;
	put_ok(ops, ctx, &lending);
	load_all(ops, ctx, &c);
	assert_int_equal(c.n, 3);
	assert_rec_equal(&c.recs[1], &lending);

	collected_release(&c);
	ops->close(ctx);
}

static void test_round_trip_memory(void **state)
{
	round_trip(&store_memory_ops, NULL);
}

static void test_round_trip_sqlite(void **state)
{
	struct fixture *f = *state;

	round_trip(&store_sqlite_ops, f->db);
	/* Our file: WAL, application_id and version. */
	assert_int_equal(raw_int(f->db, "PRAGMA application_id"), STORE_SQLITE_APPLICATION_ID);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM lends"), 3);
	/* one row per record, its windows inline, one line each */
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'windows'"),
			 0);
	assert_int_equal(raw_int(f->db, "SELECT sum(length(windows) - length(replace(windows,"
				 " char(10), '')) + (windows != '')) FROM lends"), 3);
}

struct stop_ctx {
	const struct store_ops *ops;
	void *store;
	unsigned calls;
};

/* Stops after the first record; writes to the store from the callback. */
static int stop_cb(void *arg, const struct lend_record *r)
{
	struct stop_ctx *s = arg;
	char reason[REASON_MAX];

	s->calls++;
	if (s->ops->remove(s->store, r->device, NULL, reason) < 0)
		return -EIO;
	return 42;
}

static void load_stops(const struct store_ops *ops, const char *where)
{
	struct stop_ctx s = { .ops = ops };
	struct collected c = { 0 };
	char reason[REASON_MAX];

	s.store = open_ok(ops, where);
	base_init();
	for (unsigned i = 0; i < ARRAY_SIZE(base); i++)
		put_ok(ops, s.store, &base[i]);
	assert_int_equal(ops->load(s.store, stop_cb, &s, reason), 42);
	assert_int_equal(s.calls, 1);
	load_all(ops, s.store, &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.recs[0].device, DEV_B);
	collected_release(&c);
	ops->close(s.store);
}

static void test_load_stops_memory(void **state)
{
	load_stops(&store_memory_ops, NULL);
}

static void test_load_stops_sqlite(void **state)
{
	struct fixture *f = *state;

	load_stops(&store_sqlite_ops, f->db);
}

struct host_seen {
	char names[8][HOST_NAME_MAX_LEN + 1];
	int online[8];
	unsigned n;
};

static int host_cb(void *arg, const char *host, int online)
{
	struct host_seen *h = arg;

	if (h->n >= 8)
		return -E2BIG;
	snprintf(h->names[h->n], sizeof(h->names[0]), "%s", host);
	h->online[h->n++] = online;
	return 0;
}

static void hosts(const struct store_ops *ops, const char *where, bool durable)
{
	struct host_seen h = { 0 };
	char reason[REASON_MAX];
	void *ctx = open_ok(ops, where);

	assert_int_equal(ops->host_load(ctx, host_cb, &h, reason), 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(ops->host_put(ctx, "nodeC", 0, reason), 0);
	assert_int_equal(ops->host_put(ctx, "nodeA", 1, reason), 0);
	assert_int_equal(ops->host_put(ctx, "nodeB", 0, reason), 0);
	assert_int_equal(ops->host_put(ctx, "nodeC", 5, reason), 0);
	assert_int_equal(ops->host_put(ctx, "bad host", 1, reason), -EINVAL);
	assert_non_null(strstr(reason, "bad host"));
	assert_int_equal(ops->host_put(ctx, "", 1, reason), -EINVAL);
	assert_int_equal(ops->host_load(ctx, host_cb, &h, reason), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.names[0], "nodeA");
	assert_int_equal(h.online[0], 1);
	assert_string_equal(h.names[1], "nodeB");
	assert_int_equal(h.online[1], 0);
	assert_string_equal(h.names[2], "nodeC");
	assert_int_equal(h.online[2], 1);
	ops->close(ctx);

	if (!durable)
		return;
	/* Durable too. */
	ctx = open_ok(ops, where);
	h.n = 0;
	assert_int_equal(ops->host_load(ctx, host_cb, &h, reason), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.names[1], "nodeB");
	assert_int_equal(h.online[1], 0);
	ops->close(ctx);
}

struct vm_seen {
	char names[8][HOST_NAME_MAX_LEN + VM_NAME_MAX_LEN + 2];
	char qmp[8][128];
	unsigned n;
};

static int vm_cb(void *arg, const char *host, const char *vm, const char *qmp)
{
	struct vm_seen *v = arg;

	if (v->n >= 8)
		return -E2BIG;
	snprintf(v->names[v->n], sizeof(v->names[0]), "%s/%s", host, vm);
	snprintf(v->qmp[v->n++], sizeof(v->qmp[0]), "%s", qmp);
	return 0;
}

static int vm_cb_stop(void *arg, const char *host, const char *vm, const char *qmp)
{
	(*(unsigned *)arg)++;
	return 42;
}

static void vms(const struct store_ops *ops, const char *where, bool durable)
{
	struct vm_seen v = { 0 };
	char reason[REASON_MAX], long_path[STORE_QMP_PATH_MAX + 1];
	unsigned calls = 0;
	void *ctx = open_ok(ops, where);

	assert_int_equal(ops->vm_load(ctx, vm_cb, &v, reason), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(ops->vm_put(ctx, "nodeB", "vm2", "", reason), 0);
	assert_int_equal(ops->vm_put(ctx, "nodeB", "vm1", "/run/a.qmp", reason), 0);
	assert_int_equal(ops->vm_put(ctx, "nodeA", "vm9", "/run/b.qmp", reason), 0);
	/* replace */
	assert_int_equal(ops->vm_put(ctx, "nodeB", "vm2", "/run/c.qmp", reason), 0);
	/* bad input names the problem */
	assert_int_equal(ops->vm_put(ctx, "bad host", "vm1", "", reason), -EINVAL);
	assert_non_null(strstr(reason, "bad host"));
	assert_int_equal(ops->vm_put(ctx, "nodeB", "v.m", "", reason), -EINVAL);
	assert_non_null(strstr(reason, "invalid vm name 'v.m'"));
	assert_int_equal(ops->vm_put(ctx, "nodeB", "vm3", "/a\nb", reason), -EINVAL);
	assert_non_null(strstr(reason, "control character"));
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(ops->vm_put(ctx, "nodeB", "vm3", long_path, reason), -EINVAL);
	assert_non_null(strstr(reason, "too long"));
	assert_int_equal(ops->vm_remove(ctx, "nodeB", "bad/name", reason), -EINVAL);
	/* absent is fine */
	assert_int_equal(ops->vm_remove(ctx, "nodeC", "vm1", reason), 0);

	assert_int_equal(ops->vm_load(ctx, vm_cb, &v, reason), 0);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.names[0], "nodeA/vm9");
	assert_string_equal(v.qmp[0], "/run/b.qmp");
	assert_string_equal(v.names[1], "nodeB/vm1");
	assert_string_equal(v.names[2], "nodeB/vm2");
	assert_string_equal(v.qmp[2], "/run/c.qmp");
	/* a nonzero return stops the walk */
	assert_int_equal(ops->vm_load(ctx, vm_cb_stop, &calls, reason), 42);
	assert_int_equal(calls, 1);

	assert_int_equal(ops->vm_remove(ctx, "nodeB", "vm1", reason), 0);
	v.n = 0;
	assert_int_equal(ops->vm_load(ctx, vm_cb, &v, reason), 0);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.names[1], "nodeB/vm2");
	ops->close(ctx);

	if (!durable)
		return;
	ctx = open_ok(ops, where);
	v.n = 0;
	assert_int_equal(ops->vm_load(ctx, vm_cb, &v, reason), 0);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.names[0], "nodeA/vm9");
	assert_string_equal(v.names[1], "nodeB/vm2");
	assert_string_equal(v.qmp[1], "/run/c.qmp");
	assert_int_equal(store_sqlite_ops.check(ctx, stdout), 0);
	ops->close(ctx);
}

static void test_vms_memory(void **state)
{
	vms(&store_memory_ops, "none", false);
}

static void test_vms_sqlite(void **state)
{
	struct fixture *f = *state;

	vms(&store_sqlite_ops, f->db, true);
}

static void test_hosts_memory(void **state)
{
	hosts(&store_memory_ops, "none", false);
}

static void test_hosts_sqlite(void **state)
{
	struct fixture *f = *state;

	hosts(&store_sqlite_ops, f->db, true);
}

/* ---- SQLite durability ------------------------------------------------- */

static void test_sqlite_reopen(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	void *ctx;

	make_base_db(f->db);
	ctx = open_ok(&store_sqlite_ops, f->db);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_rec_equal(&c.recs[i], &base[i]);
	assert_int_equal(store_sqlite_ops.check(ctx, stdout), 0);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
}

static int crash_child(void *arg)
{
	const char *path = arg;
	char reason[REASON_MAX];
	void *ctx = NULL;

	base_init();
	CHILD_ASSERT(store_sqlite_ops.open(path, &ctx, reason) == 0);
	CHILD_ASSERT(store_sqlite_ops.put(ctx, &base[0], reason) == 0);
	CHILD_ASSERT(store_sqlite_ops.put(ctx, &base[1], reason) == 0);
	CHILD_ASSERT(store_sqlite_ops.remove(ctx, DEV_B, NULL, reason) == 0);
	/* Die like kill -9: no close, no checkpoint, no atexit. */
	raise(SIGKILL);
	return 1;
}

static void test_sqlite_survives_crash(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	void *ctx;

	assert_int_equal(in_child(crash_child, f->db), 128 + SIGKILL);
	ctx = open_ok(&store_sqlite_ops, f->db);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	assert_rec_equal(&c.recs[0], &base[0]);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
}

struct thread_arg {
	void *ctx;
	unsigned id;
	int failures;
};

static void *thread_put(void *p)
{
	struct thread_arg *t = p;
	char reason[REASON_MAX];

	for (unsigned i = 0; i < 15; i++) {
		unsigned bus = t->id * 16 + i;
		struct window w = win(WIN_LUT, "nodeB", bus, 1, 0x200000000000, 0x1000, 0, "nodeA",
				      "bar0");
		struct lend_record r = rec("", "nodeB", REC_LENT, &w, 1);

		snprintf(r.device, sizeof(r.device), "nodeA:0000:%02x:00.0", bus);
		if (store_sqlite_ops.put(t->ctx, &r, reason) < 0)
			t->failures++;
		if (i % 3 == 0 && store_sqlite_ops.remove(t->ctx, r.device, NULL, reason) < 0)
			t->failures++;
	}
	return NULL;
}

static void test_sqlite_threads(void **state)
{
	struct fixture *f = *state;
	struct thread_arg t[4];
	pthread_t th[4];
	struct collected c = { 0 };
	void *ctx = open_ok(&store_sqlite_ops, f->db);

	for (unsigned i = 0; i < 4; i++) {
		t[i] = (struct thread_arg){ .ctx = ctx, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, thread_put, &t[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].failures, 0);
	}
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 4 * 10);
	assert_int_equal(store_sqlite_ops.check(ctx, stdout), 0);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
}

/* ---- SQLite: versions and foreign data --------------------------------- */

static void test_sqlite_migrate_v1(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct lend_record want;
	struct window w[2];
	char reason[REASON_MAX];
	void *ctx;

	assert_int_equal(store_sqlite_create_v1(f->db, reason), 0);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(f->db, "PRAGMA application_id"), STORE_SQLITE_APPLICATION_ID);
	assert_int_equal(store_sqlite_create_v1(f->db, reason), -EEXIST);
	raw_exec(f->db,
		 "INSERT INTO lends VALUES('" DEV_A "', 'nodeB', 1, 1700000000);"
		 "INSERT INTO windows VALUES('" DEV_A "', 0,"
		 " 'lut nodeB 0 2 0x200000000000 0x1000000 0x380000000000 nodeA - bar0');"
		 "INSERT INTO windows VALUES('" DEV_A "', 1,"
		 " 'iommu nodeA 0 1 0x0 0x40000000 0x0 nodeA - ram0');");

	ctx = open_ok(&store_sqlite_ops, f->db);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	w[0] = win(WIN_LUT, "nodeB", 0, 2, 0x200000000000, 0x1000000, 0x380000000000, "nodeA",
		   "bar0");
	w[1] = win(WIN_IOMMU, "nodeA", 0, 1, 0, 0x40000000, 0, "nodeA", "ram0");
	want = rec(DEV_A, "nodeB", REC_LENT, w, 2);
	want.epoch = 0; /* v1 had none */
	assert_rec_equal(&c.recs[0], &want);

	/* v2 features work. */
	want.epoch = 3;
	put_ok(&store_sqlite_ops, ctx, &want);
	assert_int_equal(store_sqlite_ops.host_put(ctx, "nodeB", 0, reason), 0);
	store_sqlite_ops.close(ctx);

	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION);
	assert_int_equal(raw_int(f->db, "SELECT epoch FROM lends"), 3);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM hosts WHERE online = 0"), 1);

	/* Opening a current file again changes nothing. */
	ctx = open_ok(&store_sqlite_ops, f->db);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	assert_rec_equal(&c.recs[0], &want);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
}

/* v2 (lends with epochs, hosts) to v3 (vms): the data stays, vms work. */
static void test_sqlite_migrate_v2(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct host_seen h = { 0 };
	struct vm_seen v = { 0 };
	struct lend_record want;
	struct window w[1];
	char reason[REASON_MAX];
	void *ctx;

	assert_int_equal(store_sqlite_create_version(f->db, 0, reason), -EINVAL);
	assert_int_equal(store_sqlite_create_version(f->db, STORE_SQLITE_VERSION + 1,
						     reason), -EINVAL);
	assert_int_equal(store_sqlite_create_version(f->db, 2, reason), 0);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 2);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master"
				 " WHERE name = 'vms'"), 0);
	raw_exec(f->db,
		 "INSERT INTO lends VALUES('" DEV_A "', 'vm:nodeB/vm1', 1, 1700000000, 7);"
		 "INSERT INTO windows VALUES('" DEV_A "', 0,"
		 " 'lut nodeB 0 2 0x200000000000 0x1000000 0x380000000000 nodeA - bar0');"
		 "INSERT INTO hosts VALUES('nodeC', 0);");

	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION);
	/* version 5: one lends table, rows in its key's B-tree, windows inline */
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master"
				 " WHERE name = 'lends' AND sql LIKE '%windows TEXT%WITHOUT ROWID'"),
			 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master"
				 " WHERE name = 'windows'"), 0);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	w[0] = win(WIN_LUT, "nodeB", 0, 2, 0x200000000000, 0x1000000, 0x380000000000, "nodeA",
		   "bar0");
	want = rec(DEV_A, "vm:nodeB/vm1", REC_LENT, w, 1);
	want.epoch = 7;
	assert_rec_equal(&c.recs[0], &want);
	collected_release(&c);
	assert_int_equal(store_sqlite_ops.host_load(ctx, host_cb, &h, reason), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.names[0], "nodeC");
	/* the new table is there and empty, and works */
	assert_int_equal(store_sqlite_ops.vm_load(ctx, vm_cb, &v, reason), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(store_sqlite_ops.vm_put(ctx, "nodeB", "vm1", "/run/vm1.qmp", reason),
			 0);
	store_sqlite_ops.close(ctx);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM vms WHERE qmp = '/run/vm1.qmp'"),
			 1);
	/* and the migrated file passes the offline check */
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(store_sqlite_ops.check(ctx, stdout), 0);
	store_sqlite_ops.close(ctx);
}

/*
 * v4 -> v5: windows move into their lends row in seq order, whatever the
 * order of the rows and the gaps in seq; a lend without windows keeps
 * none; window rows of no lend go.
 */
static void test_sqlite_migrate_v4_windows(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	char reason[REASON_MAX];
	void *ctx;

	assert_int_equal(store_sqlite_create_version(f->db, 4, reason), 0);
	raw_exec(f->db,
		 "INSERT INTO lends VALUES('" DEV_A "', 'nodeB', 1, 1700000000, 4);"
		 "INSERT INTO lends VALUES('" DEV_B "', 'nodeC', 0, 1700000001, 5);"
		 "INSERT INTO windows VALUES('" DEV_A "', 5,"
		 " 'iommu nodeA 0 1 0x0 0x40000000 0x0 nodeA - ram0');"
		 "INSERT INTO windows VALUES('" DEV_A "', 0,"
		 " 'lut nodeB 0 2 0x200000000000 0x1000000 0x380000000000 nodeA - bar0');"
		 "INSERT INTO windows VALUES('" DEV_A "', 2,"
		 " 'dma nodeA 0 1 0x280000000000 0x40000000 0x0 nodeB - ram0');"
		 "INSERT INTO windows VALUES('nodeZ:0000:01:00.0', 0,"
		 " 'lut nodeZ 0 1 0x0 0x1000 0x0 nodeA - bar0');");
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.recs[0].device, DEV_A);
	assert_int_equal(c.recs[0].epoch, 4);
	assert_int_equal(c.recs[0].nwindows, 3);
	assert_int_equal(c.recs[0].windows[0].kind, WIN_LUT);
	assert_int_equal(c.recs[0].windows[0].count, 2);
	assert_int_equal(c.recs[0].windows[1].kind, WIN_DMA);
	assert_int_equal(c.recs[0].windows[2].kind, WIN_IOMMU);
	assert_string_equal(c.recs[1].device, DEV_B);
	assert_int_equal(c.recs[1].state, REC_LENDING);
	assert_int_equal(c.recs[1].nwindows, 0);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'windows'"),
			 0);
}

/* ---- the event log ---------------------------------------------------- */

struct ev_seen {
	uint64_t seq[64];
	char text[64][64];
	unsigned n;
};

static int ev_cb(void *arg, const struct event_rec *ev)
{
	struct ev_seen *v = arg;

	assert_true(v->n < 64);
	v->seq[v->n] = ev->seq;
	snprintf(v->text[v->n++], 64, "%s", ev->text);
	return 0;
}

/*
 * Appends get increasing SEQs in order, a load from SEQ S gives those
 * above it, retention keeps at least the newest @retain, malformed text
 * is refused; with @durable, the log survives a reopen.
 */
static void events(const struct store_ops *ops, const char *where, bool durable)
{
	char reason[REASON_MAX], text[2][32];
	struct event_rec ev[2];
	struct ev_seen v = { 0 };
	void *ctx = open_ok(ops, where);

	for (unsigned i = 0; i < 100; i++) {
		snprintf(text[0], sizeof(text[0]), "dev%u lending", i);
		snprintf(text[1], sizeof(text[1]), "dev%u lent x=1", i);
		ev[0] = (struct event_rec){ .time_ns = 1000 + i, .text = text[0] };
		ev[1] = (struct event_rec){ .time_ns = 1001 + i, .text = text[1] };
		assert_int_equal(ops->event_append(ctx, ev, 2, 20, reason), 0);
		assert_int_equal(ev[0].seq, 2 * i + 1);
		assert_int_equal(ev[1].seq, 2 * i + 2);
	}
	ev[0] = (struct event_rec){ .time_ns = 1, .text = "bad\nline" };
	assert_int_equal(ops->event_append(ctx, ev, 1, 20, reason), -EINVAL);
	assert_int_equal(ops->event_load(ctx, 190, ev_cb, &v, reason), 0);
	assert_int_equal(v.n, 10);
	assert_int_equal(v.seq[0], 191);
	assert_string_equal(v.text[9], "dev99 lent x=1");
	v.n = 0;
	assert_int_equal(ops->event_load(ctx, 0, ev_cb, &v, reason), 0);
	assert_true(v.n >= 20 && v.n <= 20 + 64); /* trimmed, the newest kept */
	assert_int_equal(v.seq[v.n - 1], 200);
	ops->close(ctx);
	if (!durable)
		return;
	ctx = open_ok(ops, where);
	v.n = 0;
	assert_int_equal(ops->event_load(ctx, 195, ev_cb, &v, reason), 0);
	assert_int_equal(v.n, 5);
	assert_int_equal(v.seq[4], 200);
	ev[0] = (struct event_rec){ .time_ns = 5, .text = "dev0 returned" };
	assert_int_equal(ops->event_append(ctx, ev, 1, 20, reason), 0);
	assert_int_equal(ev[0].seq, 201);
	ops->close(ctx);
}

static void test_events_memory(void **state)
{
	events(&store_memory_ops, "none", false);
}

static void test_events_sqlite(void **state)
{
	struct fixture *f = *state;

	events(&store_sqlite_ops, f->db, true);
}

/* v5 -> v6: the events table appears, empty, and takes appends. */
static void test_sqlite_migrate_v5_events(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	struct event_rec ev = { .time_ns = 7, .text = "nodeA:0000:65:00.0 lent" };
	void *ctx;

	assert_int_equal(store_sqlite_create_version(f->db, 5, reason), 0);
	raw_exec(f->db, "INSERT INTO lends VALUES('" DEV_A "', 'nodeB', 1, 1700000000, 4, '');");
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM events"), 0);
	assert_int_equal(store_sqlite_ops.event_append(ctx, &ev, 1, 10, reason), 0);
	assert_int_equal(ev.seq, 1);
	store_sqlite_ops.close(ctx);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM lends"), 1);
}

/*
 * v6 -> v7: lends.expires appears, 0 (no lease) for the rows there; a
 * lease deadline stored after it comes back, and survives a reopen.
 */
static void test_sqlite_migrate_v6_lease(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	struct collected c = { .n = 0 };
	struct lend_record r;
	void *ctx;

	assert_int_equal(store_sqlite_create_version(f->db, 6, reason), 0);
	raw_exec(f->db, "INSERT INTO lends VALUES('" DEV_A "', 'nodeB', 1, 1700000000, 4, '"
		 "lut nodeB 0 2 0x200000000000 0x1000000 0x380000000000 nodeA - bar0');");
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	assert_true(c.recs[0].expires == 0);
	assert_int_equal(c.recs[0].epoch, 4);
	r = c.recs[0];
	r.expires = 1796517458866315959LL;
	put_ok(&store_sqlite_ops, ctx, &r);
	store_sqlite_ops.close(ctx);
	assert_true(raw_int(f->db, "SELECT expires FROM lends") == 1796517458866315959LL);
	ctx = open_ok(&store_sqlite_ops, f->db);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	assert_true(c.recs[0].expires == 1796517458866315959LL);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
}

/* ---- compositions (v8) ------------------------------------------------- */

struct comp_seen {
	unsigned n;
	char line[8][256];
};

static int comp_cb(void *arg, const char *name, const char *devices,
		   const char *borrower)
{
	struct comp_seen *c = arg;

	if (c->n < 8)
		snprintf(c->line[c->n++], sizeof(c->line[0]), "%s|%s|%s", name, devices,
			 borrower);
	return 0;
}

static void comps(const struct store_ops *ops, const char *where, bool durable)
{
	struct comp_seen c = { 0 };
	char reason[REASON_MAX], many[COMP_DEVICES_TEXT_MAX * 2] = "";
	void *ctx = open_ok(ops, where);

	assert_int_equal(ops->comp_load(ctx, comp_cb, &c, reason), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(ops->comp_put(ctx, "job", "", "", reason), 0);
	assert_int_equal(ops->comp_put(ctx, "a.b-c_1", DEV_A "\n" DEV_B, "!nodeB",
				       reason), 0);
	assert_int_equal(ops->comp_put(ctx, "job", DEV_B, "nodeC", reason), 0);
	/* bad input */
	assert_int_equal(ops->comp_put(ctx, "a b", "", "", reason), -EINVAL);
	assert_int_equal(ops->comp_put(ctx, "..", "", "", reason), -EINVAL);
	assert_int_equal(ops->comp_put(ctx, "j", DEV_A "\n", "", reason), -EINVAL);
	assert_int_equal(ops->comp_put(ctx, "j", DEV_A "\n\n" DEV_B, "", reason),
			 -EINVAL);
	assert_int_equal(ops->comp_put(ctx, "j", "nocolon", "", reason), -EINVAL);
	assert_int_equal(ops->comp_put(ctx, "j", DEV_A, "node B", reason), -EINVAL);
	for (unsigned i = 0; i <= COMP_DEVICES_MAX; i++)
		strcat(strcat(many, i ? "\n" : ""), "h:0000:00:00.0");
	assert_int_equal(ops->comp_put(ctx, "j", many, "", reason), -EINVAL);
	assert_int_equal(ops->comp_remove(ctx, "a/b", reason), -EINVAL);
	assert_int_equal(ops->comp_remove(ctx, "absent", reason), 0);
	assert_int_equal(ops->comp_load(ctx, comp_cb, &c, reason), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.line[0], "a.b-c_1|" DEV_A "\n" DEV_B "|!nodeB");
	assert_string_equal(c.line[1], "job|" DEV_B "|nodeC");
	assert_int_equal(ops->comp_remove(ctx, "a.b-c_1", reason), 0);
	ops->close(ctx);
	if (!durable)
		return;
	ctx = open_ok(ops, where);
	c.n = 0;
	assert_int_equal(ops->comp_load(ctx, comp_cb, &c, reason), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.line[0], "job|" DEV_B "|nodeC");
	ops->close(ctx);
}

static void test_comps_memory(void **state)
{
	comps(&store_memory_ops, "none", false);
}

static void test_comps_sqlite(void **state)
{
	struct fixture *f = *state;

	comps(&store_sqlite_ops, f->db, true);
}

/* v7 -> v8: the compositions table appears, empty; the lends stay. */
static void test_sqlite_migrate_v7_compositions(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	struct collected c = { .n = 0 };
	struct comp_seen cs = { 0 };
	void *ctx;

	assert_int_equal(store_sqlite_create_version(f->db, 7, reason), 0);
	raw_exec(f->db, "INSERT INTO lends VALUES('" DEV_A "', 'nodeB', 1, 1700000000, 4, '"
		 "lut nodeB 0 2 0x200000000000 0x1000000 0x380000000000 nodeA - bar0', 0);");
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 8);
	load_all(&store_sqlite_ops, ctx, &c);
	assert_int_equal(c.n, 1);
	assert_int_equal(store_sqlite_ops.comp_load(ctx, comp_cb, &cs, reason), 0);
	assert_int_equal(cs.n, 0);
	assert_int_equal(store_sqlite_ops.comp_put(ctx, "job", DEV_A, "", reason), 0);
	assert_int_equal(store_sqlite_ops.check(ctx, stdout), 0);
	collected_release(&c);
	store_sqlite_ops.close(ctx);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM compositions"), 1);
	/* --check reports a row the store would refuse; load() refuses it */
	raw_exec(f->db, "INSERT INTO compositions VALUES('a b', '', '');");
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(store_sqlite_ops.check(ctx, stdout), 1);
	assert_int_equal(store_sqlite_ops.comp_load(ctx, comp_cb, &cs, reason), -EIO);
	store_sqlite_ops.close(ctx);
}

/* A v2 file that already has a table named like v3's is not ours. */
static void test_sqlite_v2_with_vms_table(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	size_t len;
	char *before;

	assert_int_equal(store_sqlite_create_version(f->db, 2, reason), 0);
	raw_exec(f->db, "CREATE TABLE vms(x)");
	before = file_read(f->db, &len);
	open_fails(f->db, -EIO, "unknown table 'vms'");
	assert_file_is(f->db, before, len);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 2);
	free(before);
}

static void test_sqlite_v1_with_unknown_table(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_MAX];
	size_t len;
	char *before;

	/* A v1 file with a table v1 did not have must not be "migrated". */
	assert_int_equal(store_sqlite_create_v1(f->db, reason), 0);
	raw_exec(f->db, "CREATE TABLE hosts(x)");
	before = file_read(f->db, &len);
	open_fails(f->db, -EIO, "unknown table 'hosts'");
	assert_file_is(f->db, before, len);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 1);
	free(before);
}

static void test_sqlite_newer_refused(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *before;

	char sql[64];

	make_base_db(f->db);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SQLITE_VERSION + 1);
	raw_exec(f->db, sql);
	before = file_read(f->db, &len);
	open_fails(f->db, -EIO, "newer");
	assert_file_is(f->db, before, len);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), STORE_SQLITE_VERSION + 1);
	free(before);
}

static void test_sqlite_garbage_refused(void **state)
{
	struct fixture *f = *state;
	char garbage[8192];

	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 2654435761u >> 13);
	file_write(f->db, garbage, sizeof(garbage));
	open_fails(f->db, -EIO, "not an SQLite database");
	assert_file_is(f->db, garbage, sizeof(garbage));

	/* The right magic, then garbage: SQLite itself must refuse it. */
	memcpy(garbage, "SQLite format 3", 16);
	file_write(f->db, garbage, sizeof(garbage));
	open_fails(f->db, -EIO, "refusing to touch it");
	assert_file_is(f->db, garbage, sizeof(garbage));

	/* A short file is no database either. */
	file_write(f->db, "hello\n", 6);
	open_fails(f->db, -EIO, NULL);
	assert_file_is(f->db, "hello\n", 6);
}

static void test_sqlite_corrupt_refused(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *data;

	make_base_db(f->db);
	data = file_read(f->db, &len);
	assert_true(len >= 3 * 4096);
	/* Clobber page 2 (the root of a table). */
	memset(data + 4096, 0xa5, 4096);
	file_write(f->db, data, len);
	open_fails(f->db, -EIO, "corrupt");
	assert_file_is(f->db, data, len);
	free(data);
}

static void foreign_refused(const char *path, const char *sql, const char *needle)
{
	size_t len;
	char *before;

	raw_exec(path, sql);
	before = file_read(path, &len);
	open_fails(path, -EIO, needle);
	assert_file_is(path, before, len);
	free(before);
}

static void test_sqlite_foreign_refused(void **state)
{
	struct fixture *f = *state;
	char path[160];

	foreign_refused(f->db, "CREATE TABLE users(id INTEGER, name TEXT);"
			"INSERT INTO users VALUES(1, 'root');",
			"(no lendfs application_id, has table 'users')");
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM users"), 1);

	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	foreign_refused(path, "PRAGMA application_id = 305419896;"
			"CREATE TABLE lends(x);", "application_id 0x12345678");

	/* Another application's empty database. */
	snprintf(path, sizeof(path), "%s/empty-other.db", f->dir);
	foreign_refused(path, "PRAGMA user_version = 12", "user_version 12");

	/* Ours, but with a table we do not know, or one missing. */
	snprintf(path, sizeof(path), "%s/extra.db", f->dir);
	make_base_db(path);
	foreign_refused(path, "CREATE TABLE extra(x)", "unknown table 'extra'");
	snprintf(path, sizeof(path), "%s/view.db", f->dir);
	make_base_db(path);
	foreign_refused(path, "CREATE VIEW v AS SELECT 1", "unknown view 'v'");
	snprintf(path, sizeof(path), "%s/missing.db", f->dir);
	make_base_db(path);
	foreign_refused(path, "DROP TABLE hosts", "lacks table 'hosts'");
}

static void test_sqlite_bad_paths(void **state)
{
	struct fixture *f = *state;
	char path[160], reason[REASON_MAX];
	void *ctx = NULL;

	/* The caller makes directories; the store does not. */
	snprintf(path, sizeof(path), "%s/no/such/state.db", f->dir);
	open_fails(path, -ENOENT, "does not exist");
	snprintf(path, sizeof(path), "%s/no", f->dir);
	assert_false(exists(path));

	open_fails(f->dir, -EISDIR, "directory");
	assert_int_equal(store_sqlite_ops.open("", &ctx, reason), -EINVAL);
	assert_int_equal(store_sqlite_ops.open(NULL, &ctx, reason), -EINVAL);
	assert_null(ctx);
}

/* ---- SQLite: permissions, read-only and full file systems --------------- */

static int readonly_child(void *arg)
{
	struct fixture *f = arg;
	char reason[REASON_MAX] = "", fresh[160];
	void *ctx = NULL;
	int r;

	if (geteuid() == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			return child_skips("root cannot drop to uid 65534");
	}
	/* An existing file we may not write. */
	r = store_sqlite_ops.open(f->db, &ctx, reason);
	fprintf(stderr, "read-only file: %d %s\n", r, reason);
	CHILD_ASSERT(r == -EACCES);
	CHILD_ASSERT(ctx == NULL);
	CHILD_ASSERT(strstr(reason, f->db));
	/* A new file in a directory we may not write. */
	snprintf(fresh, sizeof(fresh), "%s/fresh.db", f->dir);
	r = store_sqlite_ops.open(fresh, &ctx, reason);
	fprintf(stderr, "read-only directory: %d %s\n", r, reason);
	CHILD_ASSERT(r == -EACCES);
	CHILD_ASSERT(strstr(reason, fresh));
	CHILD_ASSERT(strstr(reason, "not writable"));
	CHILD_ASSERT(access(fresh, F_OK) < 0);
	return 0;
}

static void test_sqlite_readonly(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *before;

	make_base_db(f->db);
	before = file_read(f->db, &len);
	/* Non-root: the mode bits say no.  Root: a child drops to nobody. */
	assert_int_equal(chmod(f->db, 0444), 0);
	assert_int_equal(chmod(f->dir, 0555), 0);
	child_result(in_child(readonly_child, f));
	assert_file_is(f->db, before, len);
	free(before);
}

static int rofs_child(void *arg)
{
	struct fixture *f = arg;
	char reason[REASON_MAX] = "", fresh[160];
	void *ctx = NULL;
	size_t len, len2;
	char *before, *after;
	FILE *fp;
	int r;

	if (!private_tmpfs(f->dir, "size=1m"))
		return child_skips("no private mount namespace with a tmpfs");
	base_init();
	CHILD_ASSERT(store_sqlite_ops.open(f->db, &ctx, reason) == 0);
	CHILD_ASSERT(store_sqlite_ops.put(ctx, &base[0], reason) == 0);
	store_sqlite_ops.close(ctx);
	ctx = NULL;
	CHILD_ASSERT(mount("tmpfs", f->dir, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL) == 0);

	fp = fopen(f->db, "rb");
	CHILD_ASSERT(fp);
	before = malloc(1 << 20);
	len = fread(before, 1, 1 << 20, fp);
	fclose(fp);

	r = store_sqlite_ops.open(f->db, &ctx, reason);
	fprintf(stderr, "read-only fs: %d %s\n", r, reason);
	CHILD_ASSERT(r == -EROFS);
	CHILD_ASSERT(strstr(reason, f->db));
	snprintf(fresh, sizeof(fresh), "%s/fresh.db", f->dir);
	r = store_sqlite_ops.open(fresh, &ctx, reason);
	CHILD_ASSERT(r == -EROFS);
	CHILD_ASSERT(strstr(reason, fresh));

	fp = fopen(f->db, "rb");
	CHILD_ASSERT(fp);
	after = malloc(1 << 20);
	len2 = fread(after, 1, 1 << 20, fp);
	fclose(fp);
	CHILD_ASSERT(len == len2 && memcmp(before, after, len) == 0);
	free(before);
	free(after);
	return 0;
}

static void test_sqlite_readonly_fs(void **state)
{
	child_result(in_child(rofs_child, *state));
}

static int full_child(void *arg)
{
	struct fixture *f = arg;
	char reason[REASON_MAX] = "", fresh[160];
	struct window w[24];
	struct collected c = { 0 };
	void *ctx = NULL;
	unsigned ok = 0;
	int r = 0;

	if (!private_tmpfs(f->dir, "size=160k"))
		return child_skips("no private mount namespace with a tmpfs");
	CHILD_ASSERT(store_sqlite_ops.open(f->db, &ctx, reason) == 0);
	for (unsigned i = 0; i < ARRAY_SIZE(w); i++)
		w[i] = win(WIN_LUT, "nodeB", i, 1, 0x200000000000 + i * 0x1000, 0x1000,
			   0x380000000000, "nodeA",
			   "a-rather-long-tag-to-fill-the-disk-quickly-0123456789");
	for (unsigned i = 0; i < 4096; i++) {
		struct lend_record rr = rec("", "nodeB", REC_LENT, w, ARRAY_SIZE(w));

		snprintf(rr.device, sizeof(rr.device), "nodeA:%04x:01:00.0", i);
		r = store_sqlite_ops.put(ctx, &rr, reason);
		if (r < 0)
			break;
		ok++;
	}
	fprintf(stderr, "disk full after %u puts: %d %s\n", ok, r, reason);
	CHILD_ASSERT(r == -ENOSPC);
	CHILD_ASSERT(ok > 0);
	CHILD_ASSERT(strstr(reason, f->db));
	/* What was acknowledged is still there, intact. */
	CHILD_ASSERT(store_sqlite_ops.load(ctx, collect, &c, reason) == 0);
	CHILD_ASSERT(c.n == ok);
	CHILD_ASSERT(c.recs[ok - 1].nwindows == ARRAY_SIZE(w));
	collected_release(&c);
	store_sqlite_ops.close(ctx);

	ctx = NULL;
	r = store_sqlite_ops.open(f->db, &ctx, reason);
	fprintf(stderr, "reopen on a full disk: %d %s\n", r, reason);
	CHILD_ASSERT(r == 0 || r == -ENOSPC);
	if (r == 0) {
		CHILD_ASSERT(store_sqlite_ops.load(ctx, collect, &c, reason) == 0);
		CHILD_ASSERT(c.n == ok);
		collected_release(&c);
		store_sqlite_ops.close(ctx);
	}

	/* No room for a new database either: a clear error, no context. */
	snprintf(fresh, sizeof(fresh), "%s/fresh.db", f->dir);
	ctx = NULL;
	r = store_sqlite_ops.open(fresh, &ctx, reason);
	fprintf(stderr, "new database on a full disk: %d %s\n", r, reason);
	CHILD_ASSERT(r == -ENOSPC);
	CHILD_ASSERT(ctx == NULL);
	CHILD_ASSERT(strstr(reason, fresh));
	return 0;
}

static void test_sqlite_disk_full(void **state)
{
	child_result(in_child(full_child, *state));
}

/* ---- check() ----------------------------------------------------------- */

static int check_capture(const struct store_ops *ops, void *ctx, char **text)
{
	size_t len = 0;
	FILE *out = open_memstream(text, &len);
	int n;

	assert_non_null(out);
	n = ops->check(ctx, out);
	fclose(out);
	return n;
}

struct bad_case {
	const char *name;
	const char *sql;
	int violations;
	const char *needle;
};

/* Append a window line to DEV's windows column. */
#define ADD_WINDOW(dev, line) \
	"UPDATE lends SET windows = windows || char(10) || '" line "' WHERE device = '" dev "'"
/* Replace the first window line of DEV. */
#define SET_FIRST_WINDOW(dev, line)                                                \
	"UPDATE lends SET windows = '" line "' || substr(windows, instr(windows, char(10)))" \
	" WHERE device = '" dev "'"

static const struct bad_case bad_cases[] = {
	{ "case-duplicate",
	  "INSERT INTO lends VALUES('nodeA:0000:6B:00.0', 'nodeD', 1, 0, 0,"
	  " 'lut nodeD 0 1 0x0 0x1000 0x0 nodeA - bar0', 0);",
	  1, "differ only in case" },
	{ "state", "UPDATE lends SET state = 7 WHERE device = '" DEV_A "'", 1,
	  DEV_A ": state 7 is out of range" },
	{ "no-window", "UPDATE lends SET windows = '' WHERE device = '" DEV_B "'", 1,
	  DEV_B ": lent without any window" },
	{ "lut-overlap", ADD_WINDOW(DEV_C, "lut nodeB 1 1 0x0 0x1000 0x0 nodeA - bar2"), 1,
	  "lut entries 1..1 on nodeB overlaps lut entries 0..1 of " DEV_A },
	{ "dma-slot", ADD_WINDOW(DEV_B, "dma nodeA 0 1 0x0 0x1000 0x0 nodeB - ram1"), 1,
	  "dma slot 0 on nodeA" },
	{ "iommu-overlap",
	  ADD_WINDOW(DEV_C, "iommu nodeA 0 1 0x3fff0000 0x1000 0x0 nodeA " DEV_A " ram1"), 1,
	  "iommu range 0x3fff0000-0x3fff0fff on nodeA overlaps" },
	{ "iommu-two",
	  ADD_WINDOW(DEV_C, "iommu nodeA 0 1 0x3fff0000 0x20000 0x0 nodeA " DEV_A " ram1"), 1,
	  "iommu range 0x3fff0000-0x4000ffff on nodeA overlaps" },
	/* the same IOVAs in two devices' own domains are fine */
	{ "iommu-other-domain",
	  ADD_WINDOW(DEV_C, "iommu nodeA 0 1 0x3fff0000 0x1000 0x0 nodeA - ram1"), 0, NULL },
	{ "same-record-overlap",
	  ADD_WINDOW(DEV_C, "dma nodeC 0 1 0x0 0x1000 0x0 nodeB - ram1"), 1,
	  DEV_C ": two windows overlap on nodeC" },
	{ "blank-window-line",
	  "UPDATE lends SET windows = windows || char(10) WHERE device = '" DEV_A "'", 1,
	  DEV_A ": window line 3 cannot be parsed: ''" },
	{ "empty-borrower", "UPDATE lends SET borrower = '' WHERE device = '" DEV_A "'", 1,
	  DEV_A ": empty borrower" },
	{ "borrower-lender", "UPDATE lends SET borrower = 'nodeA' WHERE device = '" DEV_B "'",
	  1, DEV_B ": borrower nodeA is the lender itself" },
	{ "vm-bad-name", "INSERT INTO vms VALUES('nodeB', 'v.1', '/run/v.qmp')", 1,
	  "vm 'nodeB/v.1': invalid vm name 'v.1' on host nodeB" },
	{ "vm-fine", "INSERT INTO vms VALUES('nodeB', 'v1', '/run/v.qmp')", 0, NULL },
	{ "borrower-malformed",
	  "UPDATE lends SET borrower = 'vm:nodeB' WHERE device = '" DEV_B "'", 1,
	  "malformed borrower 'vm:nodeB'" },
	{ "device-malformed",
	  "INSERT INTO lends VALUES('junk', 'nodeD', 1, 0, 0,"
	  " 'lut nodeD 0 1 0x0 0x1000 0x0 nodeA - bar0', 0);",
	  1, "junk: malformed device id" },
	{ "window-text", SET_FIRST_WINDOW(DEV_A, "lut nodeB zero"), 1,
	  "window line 0 cannot be parsed: 'lut nodeB zero'" },
	{ "lut-no-entry", SET_FIRST_WINDOW(DEV_A, "lut nodeB 0 0 0x0 0x1000 0x0 nodeA - bar0"), 1,
	  "owns no entry" },
	{ "host-row", "INSERT INTO hosts VALUES('nodeQ', 5)", 1,
	  "host nodeQ: online is '5'" },
	{ "lease-negative", "UPDATE lends SET expires = -5 WHERE device = '" DEV_A "'", 1,
	  DEV_A ": negative lease deadline -5" },
};

static void test_check_sqlite_clean(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	void *ctx;

	make_base_db(f->db);
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(check_capture(&store_sqlite_ops, ctx, &text), 0);
	assert_string_equal(text, "");
	free(text);
	store_sqlite_ops.close(ctx);
}

static void test_check_sqlite_bad(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *bc = &bad_cases[i];
		char path[160], *text = NULL;
		void *ctx;
		int n;

		snprintf(path, sizeof(path), "%s/%s.db", f->dir, bc->name);
		make_base_db(path);
		ctx = open_ok(&store_sqlite_ops, path);
		/* Tamper behind the store's back, as a bug or an admin would. */
		raw_exec(path, bc->sql);
		n = check_capture(&store_sqlite_ops, ctx, &text);
		if (n != bc->violations || (bc->needle && !strstr(text, bc->needle)))
			fail_msg("case %s: %d violations (want %d):\n%s", bc->name, n,
				 bc->violations, text);
		/* One line per violation. */
		{
			int lines = 0;

			for (const char *p = text; *p; p++)
				lines += *p == '\n';
			assert_int_equal(lines, n);
		}
		free(text);
		store_sqlite_ops.close(ctx);
	}
}

static void test_check_sqlite_load_refuses_bad(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	char reason[REASON_MAX] = "";
	void *ctx;

	make_base_db(f->db);
	raw_exec(f->db, "UPDATE lends SET state = 9 WHERE device = '" DEV_B "'");
	ctx = open_ok(&store_sqlite_ops, f->db);
	assert_int_equal(store_sqlite_ops.load(ctx, collect, &c, reason), -EIO);
	assert_non_null(strstr(reason, DEV_B));
	assert_non_null(strstr(reason, "unknown state 9"));
	assert_non_null(strstr(reason, f->db));
	collected_release(&c);
	raw_exec(f->db, "UPDATE lends SET state = 1, windows = 'x'");
	assert_int_equal(store_sqlite_ops.load(ctx, collect, &c, reason), -EIO);
	assert_non_null(strstr(reason, "cannot be parsed"));
	collected_release(&c);
	store_sqlite_ops.close(ctx);
}

static void test_check_memory(void **state)
{
	struct window extra[2];
	struct lend_record r;
	char *text = NULL;
	void *ctx = open_ok(&store_memory_ops, NULL);

	base_init();
	for (unsigned i = 0; i < ARRAY_SIZE(base); i++)
		put_ok(&store_memory_ops, ctx, &base[i]);
	assert_int_equal(check_capture(&store_memory_ops, ctx, &text), 0);
	assert_string_equal(text, "");
	free(text);

	/* Representable, but owning another lend's LUT entry and DMA slot. */
	extra[0] = win(WIN_LUT, "nodeB", 1, 3, 0, 0x3000, 0, "nodeA", "bar0");
	extra[1] = win(WIN_DMA, "nodeC", 0, 1, 0, 0x1000, 0, "nodeB", "ram0");
	r = rec("nodeD:0000:02:00.0", "nodeE", REC_LENT, extra, 2);
	put_ok(&store_memory_ops, ctx, &r);
	/* Lent to its lender, without windows. */
	r = rec("nodeE:0000:03:00.0", "nodeE", REC_RETURNING, NULL, 0);
	put_ok(&store_memory_ops, ctx, &r);
	/* Same device in other case. */
	r = rec("nodeD:0000:0A:00.0", "nodeB", REC_LENT, &extra[1], 1);
	put_ok(&store_memory_ops, ctx, &r);
	snprintf(r.device, sizeof(r.device), "nodeD:0000:0a:00.0");
	put_ok(&store_memory_ops, ctx, &r);

	/*
	 * lut nodeB 1..3 overlaps DEV_A (0..1) and DEV_C (2); dma slot 0 of
	 * nodeC has four owners (six pairs).
	 */
	{
		int n = check_capture(&store_memory_ops, ctx, &text);

		assert_non_null(strstr(text, "nodeD:0000:02:00.0: lut entries 1..3 on nodeB "
					     "overlaps lut entries 0..1 of " DEV_A));
		assert_non_null(strstr(text, DEV_C ": lut entries 2..2 on nodeB overlaps "
					     "lut entries 1..3 of nodeD:0000:02:00.0"));
		assert_non_null(strstr(text, "nodeE:0000:03:00.0: returning without any "
					     "window"));
		assert_non_null(strstr(text, "nodeE:0000:03:00.0: borrower nodeE is the "
					     "lender itself"));
		assert_non_null(strstr(text, "differ only in case"));
		/* 2 lut + 6 dma pairs (4 owners of slot 0) + 2 + 1 case dup. */
		assert_int_equal(n, 2 + 6 + 2 + 1);
	}
	free(text);
	store_memory_ops.close(ctx);
}

static void test_check_records_direct(void **state)
{
	struct lend_record r[3];
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	/* What no back-end lets in: exact duplicates and bad states. */
	base_init();
	r[0] = base[0];
	r[1] = base[0];
	r[2] = base[1];
	r[1].windows = NULL;
	r[1].nwindows = 0;
	r[2].state = (enum rec_state)5;
	out = open_memstream(&text, &len);
	assert_int_equal(store_check_records(r, 3, out), 3);
	fclose(out);
	assert_non_null(strstr(text, DEV_A ": device has more than one record"));
	assert_non_null(strstr(text, DEV_A ": lent without any window"));
	assert_non_null(strstr(text, DEV_B ": state 5 is out of range"));
	free(text);

	text = NULL;
	out = open_memstream(&text, &len);
	assert_int_equal(store_check_records(NULL, 0, out), 0);
	fclose(out);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rec_state_name),
		cmocka_unit_test(test_record_copy_release),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_round_trip_memory),
		cmocka_unit_test_setup_teardown(test_round_trip_sqlite, setup, teardown),
		cmocka_unit_test(test_load_stops_memory),
		cmocka_unit_test_setup_teardown(test_load_stops_sqlite, setup, teardown),
		cmocka_unit_test(test_hosts_memory),
		cmocka_unit_test_setup_teardown(test_hosts_sqlite, setup, teardown),
		cmocka_unit_test(test_vms_memory),
		cmocka_unit_test_setup_teardown(test_vms_sqlite, setup, teardown),
		cmocka_unit_test(test_events_memory),
		cmocka_unit_test_setup_teardown(test_events_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_migrate_v5_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_migrate_v6_lease, setup, teardown),
		cmocka_unit_test(test_comps_memory),
		cmocka_unit_test_setup_teardown(test_comps_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_migrate_v7_compositions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_survives_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_migrate_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_v1_with_unknown_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_migrate_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_migrate_v4_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_v2_with_vms_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_garbage_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_corrupt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_foreign_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_readonly_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_sqlite_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_sqlite_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_sqlite_load_refuses_bad, setup,
						teardown),
		cmocka_unit_test(test_check_memory),
		cmocka_unit_test(test_check_records_direct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
