// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * store_sqlite.c - the embedded store: one SQLite database per daemon.
 *
 * WAL journal, synchronous=FULL: put(), remove() and host_put() return
 * after their transaction is on disk (the put() of an intent, lending or
 * returning, is only written to the WAL: see transact_intent(); so are a
 * composition's members' records (lend_txn.lazy) and its intent "!VALUE",
 * which the composition's durable commit covers).  The
 * file is recognised by its PRAGMA application_id and versioned by PRAGMA
 * user_version:
 *
 *   v1  lends(device PK, borrower, state, since)
 *       windows(device, seq, text)  PK (device, seq), text = window_format()
 *   v2  lends.epoch; hosts(host PK, online)
 *   v3  vms(host, vm, qmp) PK (host, vm): VM borrowers registered at run time
 *   v4  lends and windows WITHOUT ROWID
 *   v5  lends.windows: the record's windows, one window_format() line each,
 *       joined by newlines; the windows table is gone.  A record is one
 *       row, so storing or removing it writes one page.
 *   v6  events(seq INTEGER PRIMARY KEY, time_ns, text): the event log
 *       (core/events.h), trimmed to the last `event_retention` events.
 *   v7  lends.expires: the lease deadline (wall clock, ns since the
 *       epoch, UTC), 0 when the lend has none (SPEC section 9).
 *   v8  compositions(name PK, devices, borrower): compositions/NAME/
 *       (SPEC section 10), devices joined by newlines, borrower "" when
 *       not lent.
 *
 * Older versions are migrated forward, one transaction per step.  Anything
 * else (garbage, a corrupt file, another application's database, a newer
 * schema) is refused with -EIO and never written to: every check before the
 * first write only reads.
 *
 * One connection per store, its prepared statements cached and serialised
 * by a mutex.  Callbacks run with no lock held.
 */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define BUSY_TIMEOUT_MS 5000
#define WAL_LAP_PAGES "256"  /* pages between checkpoints: a 1 MiB WAL */
#define WAL_SLACK_FRAMES 64 /* a checkpoint runs after the commit that crosses */
#define SQLITE_MAGIC "SQLite format 3"	/* 16 bytes with its NUL */

/* migrations[v] takes a database from version v to v + 1. */
static const char *const migrations[STORE_SQLITE_VERSION] = {
	/* 0 -> 1: a new database. */
	"CREATE TABLE lends(device TEXT PRIMARY KEY NOT NULL,"
	" borrower TEXT NOT NULL, state INTEGER NOT NULL,"
	" since INTEGER NOT NULL);"
	"CREATE TABLE windows(device TEXT NOT NULL, seq INTEGER NOT NULL,"
	" text TEXT NOT NULL, PRIMARY KEY(device, seq));",
	/* 1 -> 2: the fencing epoch, and the admin state of hosts. */
	"ALTER TABLE lends ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE hosts(host TEXT PRIMARY KEY NOT NULL,"
	" online INTEGER NOT NULL);",
	/* 2 -> 3: the VM borrowers of hosts/HOST/vms/. */
	"CREATE TABLE vms(host TEXT NOT NULL, vm TEXT NOT NULL,"
	" qmp TEXT NOT NULL, PRIMARY KEY(host, vm));",
	/*
	 * 3 -> 4: lends and windows WITHOUT ROWID, the same columns: a row
	 * lives in its primary key's B-tree, so writing one touches one page
	 * where a rowid table and its key's index touched two.  A lend's
	 * intent and outcome append 3 pages to the WAL instead of 5.
	 */
	"CREATE TABLE lends4(device TEXT PRIMARY KEY NOT NULL,"
	" borrower TEXT NOT NULL, state INTEGER NOT NULL,"
	" since INTEGER NOT NULL, epoch INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"INSERT INTO lends4 SELECT device, borrower, state, since, epoch FROM lends;"
	"DROP TABLE lends;"
	"ALTER TABLE lends4 RENAME TO lends;"
	"CREATE TABLE windows4(device TEXT NOT NULL, seq INTEGER NOT NULL,"
	" text TEXT NOT NULL, PRIMARY KEY(device, seq)) WITHOUT ROWID;"
	"INSERT INTO windows4 SELECT device, seq, text FROM windows;"
	"DROP TABLE windows;"
	"ALTER TABLE windows4 RENAME TO windows;",
	/*
	 * 4 -> 5: a record's windows move into its lends row, in seq order
	 * (a chain from each device's lowest seq to the next higher one, so
	 * gaps in seq keep their order).  Window rows of no lend, which
	 * check() reported as dangling, describe nothing and go.
	 */
	"CREATE TABLE lends5(device TEXT PRIMARY KEY NOT NULL,"
	" borrower TEXT NOT NULL, state INTEGER NOT NULL,"
	" since INTEGER NOT NULL, epoch INTEGER NOT NULL DEFAULT 0,"
	" windows TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
	"INSERT INTO lends5 WITH RECURSIVE chain(device, seq, acc) AS ("
	"  SELECT w.device, w.seq, w.text FROM windows w WHERE w.seq ="
	"   (SELECT min(x.seq) FROM windows x WHERE x.device = w.device)"
	"  UNION ALL"
	"  SELECT w.device, w.seq, c.acc || char(10) || w.text"
	"   FROM chain c JOIN windows w ON w.device = c.device AND w.seq ="
	"   (SELECT min(x.seq) FROM windows x WHERE x.device = c.device AND x.seq > c.seq))"
	" SELECT l.device, l.borrower, l.state, l.since, l.epoch, coalesce(c.acc, '')"
	" FROM lends l LEFT JOIN chain c ON c.device = l.device AND NOT EXISTS"
	"  (SELECT 1 FROM windows x WHERE x.device = c.device AND x.seq > c.seq);"
	"DROP TABLE lends;"
	"DROP TABLE windows;"
	"ALTER TABLE lends5 RENAME TO lends;",
	/*
	 * 5 -> 6: the event log.  seq is the rowid: an append takes the
	 * highest + 1, and trimming never removes the newest.
	 */
	"CREATE TABLE events(seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL,"
	" text TEXT NOT NULL);",
	/* 6 -> 7: the lease deadline of a lend; older lends have none. */
	"ALTER TABLE lends ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;",
	/* 7 -> 8: compositions; none yet. */
	"CREATE TABLE compositions(name TEXT PRIMARY KEY NOT NULL,"
	" devices TEXT NOT NULL, borrower TEXT NOT NULL DEFAULT '') WITHOUT ROWID;",
};

/* The tables of each version; a database with others is not ours. */
static const char *const schema_tables[STORE_SQLITE_VERSION + 1][5] = {
	[1] = { "lends", "windows" },
	[2] = { "lends", "windows", "hosts" },
	[3] = { "lends", "windows", "hosts", "vms" },
	[4] = { "lends", "windows", "hosts", "vms" },
	[5] = { "lends", "hosts", "vms" },
	[6] = { "lends", "hosts", "vms", "events" },
	[7] = { "lends", "hosts", "vms", "events" },
	[8] = { "lends", "hosts", "vms", "events", "compositions" },
};

enum {
	ST_PUT_LEND,
	ST_DEL_LEND,
	ST_LOAD,
	ST_HOST_PUT,
	ST_HOST_LOAD,
	ST_VM_PUT,
	ST_VM_DEL,
	ST_VM_LOAD,
	ST_EV_APPEND,
	ST_EV_TRIM,
	ST_EV_LOAD,
	ST_COMP_PUT,
	ST_COMP_DEL,
	ST_COMP_LOAD,
	ST_BEGIN,
	ST_COMMIT,
	ST_COUNT,
};

static const char *const st_sql[ST_COUNT] = {
	[ST_PUT_LEND] = "INSERT OR REPLACE INTO lends(device, borrower, state, since, epoch,"
			" windows, expires) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_DEL_LEND] = "DELETE FROM lends WHERE device = ?1",
	[ST_LOAD] = "SELECT device, borrower, state, since, epoch, windows, expires FROM lends"
		    " ORDER BY device",
	[ST_HOST_PUT] = "INSERT OR REPLACE INTO hosts(host, online) VALUES(?1, ?2)",
	[ST_HOST_LOAD] = "SELECT host, online FROM hosts ORDER BY host",
	[ST_VM_PUT] = "INSERT OR REPLACE INTO vms(host, vm, qmp) VALUES(?1, ?2, ?3)",
	[ST_VM_DEL] = "DELETE FROM vms WHERE host = ?1 AND vm = ?2",
	[ST_VM_LOAD] = "SELECT host, vm, qmp FROM vms ORDER BY host, vm",
	[ST_EV_APPEND] = "INSERT INTO events(time_ns, text) VALUES(?1, ?2)",
	[ST_EV_TRIM] = "DELETE FROM events WHERE seq <= ?1",
	[ST_EV_LOAD] = "SELECT seq, time_ns, text FROM events WHERE seq > ?1"
		       " ORDER BY seq",
	[ST_COMP_PUT] = "INSERT OR REPLACE INTO compositions(name, devices, borrower)"
			" VALUES(?1, ?2, ?3)",
	[ST_COMP_DEL] = "DELETE FROM compositions WHERE name = ?1",
	[ST_COMP_LOAD] = "SELECT name, devices, borrower FROM compositions ORDER BY name",
	/* a request's record and events: prepared once, not parsed per commit */
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
};

#define EVENT_TRIM_EVERY 64 /* appends between two trims of the log */

struct sq_store {
	pthread_mutex_t lock;
	sqlite3 *db;
	char path[PATH_MAX];
	sqlite3_stmt *st[ST_COUNT];
	/*
	 * Group commit (see wal_sync()): with wal_fd open, transactions
	 * commit with synchronous=NORMAL and a durable one then waits until
	 * one fdatasync of the WAL covers it.  -1: synchronous=FULL.
	 */
	int wal_fd;
	uint64_t committed;   /* durable transactions committed (s->lock) */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	uint64_t synced;      /* ... of which the WAL is synced (sync_lock) */
	bool syncing;	      /* a thread is in fdatasync (sync_lock) */
	store_event_sink sink; /* the events appended (s->lock) */
	void *sink_arg;
	unsigned retain; /* events kept, at least (0: all) */
};

struct ev_append {
	struct event_rec *ev;
	unsigned n, retain;
};

static int ev_insert(struct sq_store *s, const struct ev_append *a,
		     const char *what, char *reason);
static int exec_sql(sqlite3 *db, const char *path, const char *sql, const char *what,
		    char *reason);

/*
 * Run statement @id (bound) and, in the same transaction, the events of
 * @txn: one commit for both (no fsync of their own).  s->lock held.
 */
static int run_with_events(struct sq_store *s, int id, struct lend_txn *txn,
			   const char *what, char *reason);

static void group_commit_start(struct sq_store *s);

/* ---- errors ------------------------------------------------------------ */

/* strerror() in lower case, as reasons are written. */
static const char *errno_text(int err, char *buf, size_t len)
{
	char tmp[128];
	const char *m = strerror_r(err, tmp, sizeof(tmp));

	snprintf(buf, len, "%s", m);
	if (buf[0])
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/* The errno of a failed SQLite call; @db may be NULL. */
static int sqlite_errno(sqlite3 *db, int rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return sys == EACCES ? -EACCES : -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		if (rc == SQLITE_IOERR_NOMEM)
			return -ENOMEM;
		switch (sys) {
		case EACCES:
		case EPERM:
		case EROFS:
		case ENOSPC:
		case EDQUOT:
		case ENOENT:
		case ENOTDIR:
		case EISDIR:
		case ENAMETOOLONG:
		case ELOOP:
		case EMFILE:
		case ENFILE:
			return -sys;
		}
		return -EIO;
	default:
		return -EIO;
	}
}

/*
 * "cannot WHAT PATH: sqlite message (system error)", returning the errno.
 * Call before the failed statement is reset.
 */
static int sql_fail(sqlite3 *db, int rc, const char *path, const char *what,
		    char *reason)
{
	int err = sqlite_errno(db, rc);
	int sys = db ? sqlite3_system_errno(db) : 0;
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	char etext[128] = "";

	if (sys && err == -sys && (rc & 0xff) != SQLITE_FULL)
		return reason_set(reason, err, "cannot %s %s: %s (%s)", what, path, msg,
				  errno_text(sys, etext, sizeof(etext)));
	return reason_set(reason, err, "cannot %s %s: %s", what, path, msg);
}

/* ---- small SQL helpers ------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *path, const char *sql, const char *what,
		    char *reason)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sql_fail(db, rc, path, what, reason);
	return 0;
}

/*
 * Run @sql (no parameters), calling @row for each result row; a nonzero
 * return from @row stops and is returned.
 */
static int query(sqlite3 *db, const char *path, const char *sql,
		 int (*row)(void *arg, sqlite3_stmt *st), void *arg,
		 const char *what, char *reason)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(db, rc, path, what, reason);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = row(arg, st);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = sql_fail(db, rc, path, what, reason);
	sqlite3_finalize(st);
	return r;
}

static int row_int64(void *arg, sqlite3_stmt *st)
{
	*(int64_t *)arg = sqlite3_column_int64(st, 0);
	return 0;
}

static int pragma_int(sqlite3 *db, const char *path, const char *sql, int64_t *out,
		      char *reason)
{
	*out = 0;
	return query(db, path, sql, row_int64, out, "read state database", reason);
}

/* Column text, never NULL. */
static const char *col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? (const char *)t : "";
}

/* ---- opening: recognise, refuse or migrate ------------------------------- */

/* Read-only look at the file before SQLite touches it. */
static int precheck(const char *path, bool create_only, char *reason)
{
	char dir[PATH_MAX], etext[128];
	struct stat st;
	char *slash;

	if (stat(path, &st) == 0) {
		_cleanup_close_ int fd = -1;
		char magic[16];
		ssize_t n;

		if (S_ISDIR(st.st_mode))
			return reason_set(reason, -EISDIR,
					  "cannot open state database %s: it is a directory",
					  path);
		if (!S_ISREG(st.st_mode))
			return reason_set(reason, -EIO,
					  "cannot open state database %s: not a regular file",
					  path);
		if (create_only && st.st_size > 0)
			return reason_set(reason, -EEXIST,
					  "cannot create state database %s: file exists", path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return reason_set(reason, -errno, "cannot open state database %s: %s",
					  path, errno_text(errno, etext, sizeof(etext)));
		n = read(fd, magic, sizeof(magic));
		if (n < 0)
			return reason_set(reason, -EIO, "cannot read state database %s: %s",
					  path, errno_text(errno, etext, sizeof(etext)));
		if (n > 0 && (n < (ssize_t)sizeof(magic) ||
			      memcmp(magic, SQLITE_MAGIC, sizeof(magic)) != 0))
			return reason_set(reason, -EIO,
					  "state database %s is not an SQLite database "
					  "(bad header); refusing to touch it", path);
		if (access(path, R_OK | W_OK) < 0)
			return reason_set(reason, -errno,
					  "state database %s is not writable: %s", path,
					  errno_text(errno, etext, sizeof(etext)));
	} else if (errno != ENOENT) {
		return reason_set(reason, -errno, "cannot open state database %s: %s", path,
				  errno_text(errno, etext, sizeof(etext)));
	}

	/* The journal (and the WAL index) live beside the database. */
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (access(dir, W_OK | X_OK) < 0) {
		int err = errno;

		if (err == ENOENT)
			return reason_set(reason, -ENOENT,
					  "cannot open state database %s: directory %s "
					  "does not exist", path, dir);
		return reason_set(reason, -err,
				  "cannot open state database %s: directory %s is not "
				  "writable (%s)", path, dir,
				  errno_text(err, etext, sizeof(etext)));
	}
	return 0;
}

static int open_db(const char *path, sqlite3 **out, char *reason)
{
	const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
	char etext[128];
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		int r = sql_fail(db, rc, path, "open state database", reason);

		sqlite3_close_v2(db);
		return r;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if (sqlite3_db_readonly(db, "main") == 1) {
		int err = access(path, W_OK) < 0 ? errno : EROFS;

		sqlite3_close_v2(db);
		return reason_set(reason, -err, "state database %s is read-only (%s)", path,
				  errno_text(err, etext, sizeof(etext)));
	}
	*out = db;
	return 0;
}

struct quick_check {
	const char *path;
	char *reason;
	int err;
};

static int row_quick_check(void *arg, sqlite3_stmt *st)
{
	struct quick_check *qc = arg;
	const char *msg = col_text(st, 0);

	if (strcmp(msg, "ok") == 0)
		return 0;
	qc->err = reason_set(qc->reason, -EIO,
			     "state database %s is corrupt (%s); refusing to touch it",
			     qc->path, msg);
	return 1;
}

static int quick_check(sqlite3 *db, const char *path, char *reason)
{
	struct quick_check qc = { .path = path, .reason = reason };
	int r;

	r = query(db, path, "PRAGMA quick_check(1)", row_quick_check, &qc,
		  "check state database", reason);
	if (r > 0)
		return qc.err;
	if (r == -EIO && ((sqlite3_errcode(db) & 0xff) == SQLITE_NOTADB ||
			  (sqlite3_errcode(db) & 0xff) == SQLITE_CORRUPT))
		return reason_set(reason, -EIO,
				  "state database %s is corrupt or not a database (%s); "
				  "refusing to touch it", path, sqlite3_errmsg(db));
	return r;
}

struct schema_scan {
	int version;
	unsigned seen;		/* bit i: schema_tables[version][i] */
	unsigned nobjects;
	char unknown_type[16];
	char unknown[128];
};

static int row_schema(void *arg, sqlite3_stmt *st)
{
	struct schema_scan *sc = arg;
	const char *type = col_text(st, 0), *name = col_text(st, 1);

	sc->nobjects++;
	if (strncmp(name, "sqlite_", 7) == 0)
		return 0; /* SQLite's own: autoindexes, sequences, statistics */
	if (sc->version >= 1 && sc->version <= STORE_SQLITE_VERSION &&
	    strcmp(type, "table") == 0) {
		const char *const *t = schema_tables[sc->version];

		for (unsigned i = 0; i < ARRAY_SIZE(schema_tables[0]) && t[i]; i++) {
			if (strcmp(name, t[i]) == 0) {
				sc->seen |= 1u << i;
				return 0;
			}
		}
	}
	if (!sc->unknown[0]) {
		snprintf(sc->unknown_type, sizeof(sc->unknown_type), "%s", type);
		snprintf(sc->unknown, sizeof(sc->unknown), "%s", name);
	}
	return 0;
}

/*
 * The schema version of an open database: 0 for a new, empty one.  -EIO for
 * anything that is not a lendfs database this program understands.
 */
static int classify(sqlite3 *db, const char *path, int *version, char *reason)
{
	struct schema_scan sc = { 0 };
	int64_t app, ver;
	int r;

	r = pragma_int(db, path, "PRAGMA application_id", &app, reason);
	if (r < 0)
		return r;
	r = pragma_int(db, path, "PRAGMA user_version", &ver, reason);
	if (r < 0)
		return r;
	sc.version = ver >= 1 && ver <= STORE_SQLITE_VERSION ? (int)ver : -1;
	r = query(db, path, "SELECT type, name FROM sqlite_master ORDER BY type, name",
		  row_schema, &sc, "read the schema of state database", reason);
	if (r < 0)
		return r;

	if (app == 0 && ver == 0 && sc.nobjects == 0) {
		*version = 0;
		return 0;
	}
	if ((uint32_t)app != STORE_SQLITE_APPLICATION_ID) {
		if (app != 0)
			return reason_set(reason, -EIO,
					  "%s is not a lendfs state database (application_id "
					  "0x%08" PRIx32 ", lendfs uses 0x%08x); refusing to "
					  "touch it", path, (uint32_t)app,
					  STORE_SQLITE_APPLICATION_ID);
		if (sc.unknown[0])
			return reason_set(reason, -EIO,
					  "%s is not a lendfs state database (no lendfs "
					  "application_id, has %s '%s'); refusing to touch it",
					  path, sc.unknown_type, sc.unknown);
		return reason_set(reason, -EIO,
				  "%s is not a lendfs state database (no lendfs "
				  "application_id, user_version %" PRId64 "); refusing to "
				  "touch it", path, ver);
	}
	if (ver > STORE_SQLITE_VERSION)
		return reason_set(reason, -EIO,
				  "state database %s has schema version %" PRId64 ", newer "
				  "than this lendfs knows (%d); refusing to touch it", path,
				  ver, STORE_SQLITE_VERSION);
	if (ver < 1)
		return reason_set(reason, -EIO,
				  "state database %s has an invalid schema version %" PRId64
				  "; refusing to touch it", path, ver);
	if (sc.unknown[0])
		return reason_set(reason, -EIO,
				  "state database %s has an unknown %s '%s' (not in schema "
				  "version %d); refusing to touch it", path, sc.unknown_type,
				  sc.unknown, sc.version);
	for (unsigned i = 0; i < ARRAY_SIZE(schema_tables[0]); i++) {
		const char *t = schema_tables[sc.version][i];

		if (t && !(sc.seen & (1u << i)))
			return reason_set(reason, -EIO,
					  "state database %s lacks table '%s' of schema "
					  "version %d; refusing to touch it", path, t,
					  sc.version);
	}
	*version = sc.version;
	return 0;
}

/*
 * One forward step, in one transaction: re-read the version under the
 * write lock (another process may have migrated meanwhile) and apply
 * migrations[v].  *@version is the version afterwards.
 */
static int migrate_step(sqlite3 *db, const char *path, int target, int *version,
			char *reason)
{
	char sql[160], what[64];
	int v, r;

	r = exec_sql(db, path, "BEGIN IMMEDIATE", "lock state database", reason);
	if (r < 0)
		return r;
	r = classify(db, path, &v, reason);
	if (r == 0 && v < target) {
		snprintf(what, sizeof(what), "migrate to schema version %d the state database",
			 v + 1);
		r = exec_sql(db, path, migrations[v], what, reason);
		if (r == 0 && v == 0) {
			snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
				 (int32_t)STORE_SQLITE_APPLICATION_ID);
			r = exec_sql(db, path, sql, what, reason);
		}
		if (r == 0) {
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
			r = exec_sql(db, path, sql, what, reason);
		}
		if (r == 0)
			v++;
	}
	if (r == 0)
		r = exec_sql(db, path, "COMMIT", "commit to state database", reason);
	if (r < 0) {
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	*version = v;
	return 0;
}

static int migrate(sqlite3 *db, const char *path, int from, int target, char *reason)
{
	int v = from, r;

	while (v < target) {
		r = migrate_step(db, path, target, &v, reason);
		if (r < 0)
			return r;
		/*
		 * Each step rebuilds tables: move its pages into the database
		 * and empty the WAL before the next, so that the WAL never
		 * holds more than one step (a nearly full disk has room for
		 * the database, not for every version of it).
		 */
		sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	return 0;
}

static int row_journal_mode(void *arg, sqlite3_stmt *st)
{
	snprintf(arg, 16, "%s", col_text(st, 0));
	return 0;
}

static int set_durability(sqlite3 *db, const char *path, char *reason)
{
	char mode[16] = "";
	int r;

	r = query(db, path, "PRAGMA journal_mode = WAL", row_journal_mode, mode,
		  "enable write-ahead logging on state database", reason);
	if (r < 0)
		return r;
	if (strcasecmp(mode, "wal") != 0)
		return reason_set(reason, -EIO,
				  "cannot enable write-ahead logging on state database %s "
				  "(journal mode stays '%s')", path, mode);
	return exec_sql(db, path, "PRAGMA synchronous = FULL",
			"set synchronous commits on state database", reason);
}

/* Make a new file's directory entry durable. */
static int sync_dir(const char *path, char *reason)
{
	char dir[PATH_MAX], etext[128];
	_cleanup_close_ int fd = -1;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return reason_set(reason, -errno, "cannot sync directory %s of %s: %s", dir,
				  path, errno_text(errno, etext, sizeof(etext)));
	return 0;
}

static void sq_close(void *ctx)
{
	struct sq_store *s = ctx;

	if (!s)
		return;
	for (unsigned i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close_v2(s->db);
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->sync_lock);
	pthread_cond_destroy(&s->sync_cond);
	free(s);
}

static int sq_open(const char *where, void **ctx, char *reason)
{
	struct sq_store *s;
	bool existed;
	struct stat st;
	int v = 0, r;

	if (!where || !where[0])
		return reason_set(reason, -EINVAL, "no state database file given");
	if (strlen(where) >= PATH_MAX)
		return reason_set(reason, -ENAMETOOLONG, "state database path is too long");
	r = precheck(where, false, reason);
	if (r < 0)
		return r;
	existed = stat(where, &st) == 0 && st.st_size > 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return reason_set(reason, -ENOMEM, "cannot open state database %s: %s",
				  where, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->sync_lock, NULL);
	pthread_cond_init(&s->sync_cond, NULL);
	s->wal_fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", where);

	r = open_db(where, &s->db, reason);
	if (r == 0)
		r = quick_check(s->db, where, reason);
	if (r == 0)
		r = classify(s->db, where, &v, reason);
	/* Nothing has been written so far; from here on the file is ours. */
	if (r == 0)
		r = set_durability(s->db, where, reason);
	if (r == 0)
		r = migrate(s->db, where, v, STORE_SQLITE_VERSION, reason);
	/* a new database: drop the pages the migration chain left free */
	if (r == 0 && v == 0)
		r = exec_sql(s->db, where, "VACUUM", "compact new state database", reason);
	for (unsigned i = 0; r == 0 && i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &s->st[i], NULL);

		if (rc != SQLITE_OK)
			r = sql_fail(s->db, rc, where,
				     "prepare statements (unexpected schema?) on state database",
				     reason);
	}
	if (r == 0 && !existed)
		r = sync_dir(where, reason);
	if (r == 0)
		group_commit_start(s);
	if (r < 0) {
		sq_close(s);
		return r;
	}
	*ctx = s;
	return 0;
}

int store_sqlite_create_v1(const char *path, char *reason)
{
	return store_sqlite_create_version(path, 1, reason);
}

int store_sqlite_create_version(const char *path, int version, char *reason)
{
	sqlite3 *db = NULL;
	int v, r;

	if (!path || !path[0] || strlen(path) >= PATH_MAX)
		return reason_set(reason, -EINVAL, "invalid state database path");
	if (version < 1 || version > STORE_SQLITE_VERSION)
		return reason_set(reason, -EINVAL, "no schema version %d (1 to %d)",
				  version, STORE_SQLITE_VERSION);
	r = precheck(path, true, reason);
	if (r == 0)
		r = open_db(path, &db, reason);
	if (r == 0)
		r = classify(db, path, &v, reason);
	if (r == 0 && v != 0)
		r = reason_set(reason, -EEXIST, "cannot create state database %s: not empty",
			       path);
	if (r == 0)
		r = migrate(db, path, 0, version, reason);
	sqlite3_close_v2(db);
	return r;
}

/* ---- statements -------------------------------------------------------- */

/* Step a cached statement to its end (or first row), then reset it. */
static int run(struct sq_store *s, int id, const char *what, char *reason)
{
	sqlite3_stmt *st = s->st[id];
	int rc = sqlite3_step(st), r = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = sql_fail(s->db, rc, s->path, what, reason);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/*
 * A change of the store: binds and runs one statement (schema 5 keeps a
 * record in one row), which is a transaction of its own (autocommit): no
 * BEGIN and COMMIT around it, and nothing to roll back when it fails.
 * Called with s->lock held.
 */
typedef int (*statements_fn)(struct sq_store *s, const void *arg, const char *what,
			     char *reason);

/*
 * Wait until the WAL is synced up to durable transaction @seq, syncing it
 * if nobody is: one fdatasync covers every transaction committed before
 * it started, so concurrent lends share their syncs (group commit).  The
 * WAL is written in order; what one sync covers stays covered.
 */
static int wal_sync(struct sq_store *s, uint64_t seq, const char *what,
		    char *reason)
{
	int r = 0;

	pthread_mutex_lock(&s->sync_lock);
	while (r == 0 && s->synced < seq) {
		uint64_t target;

		if (s->syncing) {
			pthread_cond_wait(&s->sync_cond, &s->sync_lock);
			continue;
		}
		s->syncing = true;
		target = __atomic_load_n(&s->committed, __ATOMIC_ACQUIRE);
		pthread_mutex_unlock(&s->sync_lock);
		r = fdatasync(s->wal_fd) < 0 ? -errno : 0;
		pthread_mutex_lock(&s->sync_lock);
		s->syncing = false;
		if (r == 0 && target > s->synced)
			s->synced = target;
		pthread_cond_broadcast(&s->sync_cond);
	}
	pthread_mutex_unlock(&s->sync_lock);
	if (r < 0)
		return reason_set(reason, r, "cannot %s %s: cannot sync its journal: %s",
				  what, s->path, strerror(-r));
	return 0;
}

/*
 * The WAL is written in a circle: frames are appended until a checkpoint
 * (every WAL_LAP_PAGES pages) has copied them into the database, and the
 * next transaction starts again at its head.  Appending to a file and
 * syncing it makes the filesystem commit the new size and blocks as well
 * (an ext4 journal commit: about twice the cost of a sync that overwrites
 * blocks in place, docs/PERFORMANCE.md), and SQLite deletes the WAL when
 * the store closes, so every start would pay that for a whole lap.  So
 * the WAL is grown once, at open, to the size the circle reaches, with
 * real zero blocks (not fallocate(), whose unwritten extents cost the
 * same journal commit when first written).  The zeros are not frames:
 * their salts never match the WAL header's, so SQLite's recovery stops at
 * them, as it stops at the stale frames of a previous lap.  Best effort:
 * on a full disk the WAL stays as it is.
 */
static void wal_presize(struct sq_store *s)
{
	static const char zeros[64 * 1024];
	int64_t page = 0, pages = 0;
	off_t size, target, off;
	struct stat st;

	/*
	 * What a previous run (or the migrations just now) left in the WAL
	 * goes into the database first, and the WAL is emptied: the room it
	 * takes is the database's on a nearly full disk.
	 */
	sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	if (pragma_int(s->db, s->path, "PRAGMA page_size", &page, NULL) < 0 ||
	    pragma_int(s->db, s->path, "PRAGMA wal_autocheckpoint", &pages, NULL) < 0 ||
	    page <= 0 || pages <= 0 || fstat(s->wal_fd, &st) < 0)
		return;
	/* header, then the frames (24-byte header each) of a lap and a bit */
	target = 32 + (pages + WAL_SLACK_FRAMES) * (24 + page);
	size = st.st_size;
	if (size >= target)
		return;
	for (off = size; off < target; off += (off_t)sizeof(zeros))
		if (pwrite(s->wal_fd, zeros, sizeof(zeros), off) != (ssize_t)sizeof(zeros))
			break;
	if (off < target || fdatasync(s->wal_fd) < 0) {
		/* no room: give the space back (zeros past the end are harmless) */
		int r = ftruncate(s->wal_fd, size);

		(void)r;
	}
}

/*
 * Group commit needs the WAL's file: open it (it exists once the database
 * is in WAL mode and was read) and let transactions commit unsynced.  If
 * it cannot be opened, every commit stays synchronous=FULL.
 */
static void group_commit_start(struct sq_store *s)
{
	char wal[PATH_MAX + 8];

	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	s->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
	if (s->wal_fd < 0)
		return;
	if (sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = "
			 WAL_LAP_PAGES, NULL, NULL, NULL) != SQLITE_OK) {
		close(s->wal_fd);
		s->wal_fd = -1;
		return;
	}
	wal_presize(s);
}

/* Run @fn durably: its commit, then a sync of the WAL (shared, wal_sync()). */
static int transact(struct sq_store *s, statements_fn fn, const void *arg,
		    const char *what, char *reason)
{
	uint64_t seq = 0;
	int r;

	pthread_mutex_lock(&s->lock);
	r = fn(s, arg, what, reason);
	if (r == 0 && s->wal_fd >= 0)
		seq = __atomic_add_fetch(&s->committed, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&s->lock);
	return seq ? wal_sync(s, seq, what, reason) : r;
}

/*
 * The same for an intent (lending, returning): committed to the WAL but
 * not synced (synchronous=NORMAL for this one transaction).  It survives
 * a crash of the daemon, which is what recovery needs (an unacknowledged
 * lend is rolled back, an interrupted return finished); after a power
 * failure it may be missing, which recovery treats the same as a crash
 * just before it.  The outcome that follows (lent, or the record removed)
 * is a durable commit, and its sync covers this frame too, as the WAL is
 * written in order.  One fsync per lend instead of two.
 */
static int transact_intent(struct sq_store *s, statements_fn fn, const void *arg,
			   const char *what, char *reason)
{
	bool lazy;
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->wal_fd >= 0) { /* group commit: nothing waits for a sync */
		r = fn(s, arg, what, reason);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	lazy = sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL,
			    NULL) == SQLITE_OK; /* else durable, as any other */
	r = fn(s, arg, what, reason);
	if (lazy && sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL,
				 NULL) != SQLITE_OK && r == 0)
		r = sql_fail(s->db, SQLITE_ERROR, s->path,
			     "restore synchronous commits on", reason);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int bind_text(struct sq_store *s, int id, int col, const char *text)
{
	return sqlite3_bind_text(s->st[id], col, text, -1, SQLITE_STATIC);
}

/* The windows column of @rec: one window_format() line each, joined by '\n'. */
static int windows_text(const struct lend_record *rec, char **out, char *reason)
{
	_cleanup_free_ char *text = NULL;
	size_t cap = (size_t)rec->nwindows * WINDOW_TEXT_MAX + 1, len = 0;

	text = malloc(cap);
	if (!text)
		return reason_set(reason, -ENOMEM, "out of memory");
	text[0] = '\0';
	for (unsigned i = 0; i < rec->nwindows; i++) {
		int n;

		if (i)
			text[len++] = '\n';
		n = window_format(&rec->windows[i], text + len, cap - len);
		if (n < 0 || (size_t)n >= cap - len)
			return reason_set(reason, -EINVAL, "window %u of %s is too long", i,
					  rec->device);
		len += (size_t)n;
	}
	*out = take_ptr(text);
	return 0;
}

static int put_statements(struct sq_store *s, const void *arg, const char *what,
			  char *reason)
{
	const struct lend_record *rec = arg;
	_cleanup_free_ char *windows = NULL;
	int r;

	r = windows_text(rec, &windows, reason);
	if (r < 0)
		return r;
	bind_text(s, ST_PUT_LEND, 1, rec->device);
	bind_text(s, ST_PUT_LEND, 2, rec->borrower);
	sqlite3_bind_int(s->st[ST_PUT_LEND], 3, (int)rec->state);
	sqlite3_bind_int64(s->st[ST_PUT_LEND], 4, rec->since);
	sqlite3_bind_int64(s->st[ST_PUT_LEND], 5, (int64_t)rec->epoch);
	bind_text(s, ST_PUT_LEND, 6, windows);
	sqlite3_bind_int64(s->st[ST_PUT_LEND], 7, rec->expires);
	return run_with_events(s, ST_PUT_LEND, rec->txn, what, reason);
}

static int sq_put(void *ctx, const struct lend_record *rec, char *reason)
{
	char what[DEVICE_ID_MAX + 64];
	int r;

	r = store_record_validate(rec, reason);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "store the lend of %s in", rec->device);
	if (rec->state == REC_LENDING || rec->state == REC_RETURNING ||
	    (rec->txn && rec->txn->lazy))
		return transact_intent(ctx, put_statements, rec, what, reason);
	return transact(ctx, put_statements, rec, what, reason);
}

struct remove_args {
	const char *device;
	struct lend_txn *txn;
};

static int remove_statements(struct sq_store *s, const void *arg, const char *what,
			     char *reason)
{
	const struct remove_args *a = arg;

	bind_text(s, ST_DEL_LEND, 1, a->device);
	return run_with_events(s, ST_DEL_LEND, a->txn, what, reason);
}

static int sq_remove(void *ctx, const char *device, struct lend_txn *txn,
		     char *reason)
{
	char what[DEVICE_ID_MAX + 64];

	if (!device || !device[0])
		return reason_set(reason, -EINVAL, "no device id to remove");
	snprintf(what, sizeof(what), "remove the lend of %.*s from", DEVICE_ID_MAX, device);
	return (txn && txn->lazy ? transact_intent : transact)(ctx, remove_statements,
			&(struct remove_args){ .device = device, .txn = txn }, what,
			reason);
}

struct host_row {
	const char *host;
	int online;
};

static int host_put_statements(struct sq_store *s, const void *arg, const char *what,
			       char *reason)
{
	const struct host_row *h = arg;

	bind_text(s, ST_HOST_PUT, 1, h->host);
	sqlite3_bind_int(s->st[ST_HOST_PUT], 2, h->online);
	return run(s, ST_HOST_PUT, what, reason);
}

static int sq_host_put(void *ctx, const char *host, int online, char *reason)
{
	struct host_row h = { .host = host, .online = online ? 1 : 0 };
	char what[HOST_NAME_MAX_LEN + 64];

	if (!host || !name_valid(host))
		return reason_set(reason, -EINVAL, "invalid host name '%s'",
				  host ? host : "");
	snprintf(what, sizeof(what), "store the state of host %s in", host);
	return transact(ctx, host_put_statements, &h, what, reason);
}

struct vm_row {
	const char *host, *vm, *qmp;
};

static int vm_put_statements(struct sq_store *s, const void *arg, const char *what,
			     char *reason)
{
	const struct vm_row *v = arg;

	bind_text(s, ST_VM_PUT, 1, v->host);
	bind_text(s, ST_VM_PUT, 2, v->vm);
	bind_text(s, ST_VM_PUT, 3, v->qmp);
	return run(s, ST_VM_PUT, what, reason);
}

static int sq_vm_put(void *ctx, const char *host, const char *vm, const char *qmp,
		     char *reason)
{
	struct vm_row v = { host, vm, qmp };
	char what[HOST_NAME_MAX_LEN + VM_NAME_MAX_LEN + 64];
	int r;

	r = store_vm_validate(host, vm, qmp, reason);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "store vm %s/%s in", host, vm);
	return transact(ctx, vm_put_statements, &v, what, reason);
}

static int vm_del_statements(struct sq_store *s, const void *arg, const char *what,
			     char *reason)
{
	const struct vm_row *v = arg;

	bind_text(s, ST_VM_DEL, 1, v->host);
	bind_text(s, ST_VM_DEL, 2, v->vm);
	return run(s, ST_VM_DEL, what, reason);
}

static int sq_vm_remove(void *ctx, const char *host, const char *vm, char *reason)
{
	struct vm_row v = { host, vm, "" };
	char what[HOST_NAME_MAX_LEN + VM_NAME_MAX_LEN + 64];
	int r;

	r = store_vm_validate(host, vm, "", reason);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "remove vm %s/%s from", host, vm);
	return transact(ctx, vm_del_statements, &v, what, reason);
}

/* ---- compositions ------------------------------------------------------ */

struct comp_row {
	const char *name, *devices, *borrower;
};

static int comp_put_statements(struct sq_store *s, const void *arg,
			       const char *what, char *reason)
{
	const struct comp_row *c = arg;

	bind_text(s, ST_COMP_PUT, 1, c->name);
	bind_text(s, ST_COMP_PUT, 2, c->devices);
	bind_text(s, ST_COMP_PUT, 3, c->borrower);
	return run(s, ST_COMP_PUT, what, reason);
}

static int sq_comp_put(void *ctx, const char *name, const char *devices,
		       const char *borrower, char *reason)
{
	struct comp_row c = { name, devices, borrower };
	char what[COMP_NAME_MAX_LEN + 64];
	int r = store_comp_validate(name, devices, borrower, reason);

	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "store composition %s in", name);
	/* the intent of its lend: the commit of its first member covers it */
	if (borrower[0] == '!' || borrower[0] == '~') /* compose.c's marks */
		return transact_intent(ctx, comp_put_statements, &c, what, reason);
	return transact(ctx, comp_put_statements, &c, what, reason);
}

static int comp_del_statements(struct sq_store *s, const void *arg,
			       const char *what, char *reason)
{
	bind_text(s, ST_COMP_DEL, 1, arg);
	return run(s, ST_COMP_DEL, what, reason);
}

static int sq_comp_remove(void *ctx, const char *name, char *reason)
{
	char what[COMP_NAME_MAX_LEN + 64];

	if (!comp_name_valid(name))
		return reason_set(reason, -EINVAL, "invalid composition name");
	snprintf(what, sizeof(what), "remove composition %s from", name);
	return transact(ctx, comp_del_statements, name, what, reason);
}

struct comp_entry {
	char name[COMP_NAME_MAX_LEN + 1];
	char *devices, *borrower;
};

/* The rows, copied under the lock; validated. */
static int comp_rows(struct sq_store *s, struct comp_entry **out, unsigned *nout,
		     char *reason)
{
	sqlite3_stmt *st = s->st[ST_COMP_LOAD];
	struct comp_entry *v = NULL;
	unsigned n = 0;
	int rc, r = 0;

	pthread_mutex_lock(&s->lock);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = col_text(st, 0), *devs = col_text(st, 1);
		const char *b = col_text(st, 2);
		struct comp_entry *p;

		if (store_comp_validate(name, devs, b, NULL) < 0) {
			r = reason_set(reason, -EIO, "state database %s: invalid "
				       "composition row '%s'", s->path, name);
			break;
		}
		p = realloc(v, (n + 1) * sizeof(*p));
		if (!p) {
			r = reason_set(reason, -ENOMEM, "out of memory");
			break;
		}
		v = p;
		snprintf(v[n].name, sizeof(v[n].name), "%s", name);
		v[n].devices = strdup(devs);
		v[n].borrower = strdup(b);
		n++;
		if (!v[n - 1].devices || !v[n - 1].borrower) {
			r = reason_set(reason, -ENOMEM, "out of memory");
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_fail(s->db, rc, s->path, "read compositions from state database",
			     reason);
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	*out = v;
	*nout = n;
	return r;
}

static int sq_comp_load(void *ctx,
			int (*cb)(void *arg, const char *name, const char *devices,
				  const char *borrower),
			void *arg, char *reason)
{
	struct comp_entry *v;
	unsigned n;
	int r = comp_rows(ctx, &v, &n, reason);

	for (unsigned i = 0; r == 0 && i < n; i++)
		r = cb(arg, v[i].name, v[i].devices, v[i].borrower);
	for (unsigned i = 0; i < n; i++) {
		free(v[i].devices);
		free(v[i].borrower);
	}
	free(v);
	return r;
}

/* ---- reading records --------------------------------------------------- */

struct rec_set {
	struct lend_record *v;
	unsigned n, cap;
	unsigned wcap;	   /* capacity of v[n - 1].windows */
	FILE *report;	   /* check(): report bad rows here instead of failing */
	unsigned bad;
	const char *path;
	char *reason;
};

static void rec_set_release(struct rec_set *set)
{
	for (unsigned i = 0; i < set->n; i++)
		lend_record_release(&set->v[i]);
	free(set->v);
	set->v = NULL;
	set->n = set->cap = 0;
}

/* A bad row: a violation for check(), an error for load(). */
_printf_(3, 4) static int bad_row(struct rec_set *set, const char *device,
				  const char *fmt, ...)
{
	char msg[REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (set->report) {
		fprintf(set->report, "%s: %s\n", device, msg);
		set->bad++;
		return 0;
	}
	return reason_set(set->reason, -EIO, "state database %s: record of %s: %s",
			  set->path, device, msg);
}

static int new_record(struct rec_set *set, sqlite3_stmt *st)
{
	const char *device = col_text(st, 0), *borrower = col_text(st, 1);
	struct lend_record *rec;
	int r;

	if (set->n == set->cap) {
		unsigned cap = set->cap ? 2 * set->cap : 16;
		struct lend_record *p = realloc(set->v, cap * sizeof(*p));

		if (!p)
			return reason_set(set->reason, -ENOMEM, "cannot load %s: out of memory",
					  set->path);
		set->v = p;
		set->cap = cap;
	}
	rec = &set->v[set->n++];
	memset(rec, 0, sizeof(*rec));
	set->wcap = 0;

	if (strlen(device) >= sizeof(rec->device)) {
		r = bad_row(set, device, "device id is too long");
		if (r < 0)
			return r;
	}
	snprintf(rec->device, sizeof(rec->device), "%s", device);
	if (strlen(borrower) >= sizeof(rec->borrower)) {
		r = bad_row(set, device, "borrower is too long");
		if (r < 0)
			return r;
	}
	snprintf(rec->borrower, sizeof(rec->borrower), "%s", borrower);
	if (sqlite3_column_type(st, 2) != SQLITE_INTEGER) {
		rec->state = (enum rec_state)-1;
		r = bad_row(set, device, "state '%s' is not a number", col_text(st, 2));
		if (r < 0)
			return r;
	} else {
		int64_t v = sqlite3_column_int64(st, 2);

		rec->state = (enum rec_state)(v < 0 || v > INT_MAX ? -1 : (int)v);
		if (!set->report && (v < 0 || v > REC_RETURNING))
			return bad_row(set, device, "unknown state %" PRId64, v);
	}
	rec->since = sqlite3_column_int64(st, 3);
	rec->epoch = (uint64_t)sqlite3_column_int64(st, 4);
	rec->expires = sqlite3_column_int64(st, 6);
	if (rec->expires < 0)
		return bad_row(set, device, "negative lease deadline %" PRId64,
			       rec->expires);
	return 0;
}

static int add_window(struct rec_set *set, unsigned line, const char *text,
		      size_t len)
{
	struct lend_record *rec = &set->v[set->n - 1];
	char buf[WINDOW_TEXT_MAX];
	struct window w;

	snprintf(buf, sizeof(buf), "%.*s", (int)MIN(len, sizeof(buf) - 1), text);
	if (len >= sizeof(buf) || window_parse(buf, &w) < 0)
		return bad_row(set, rec->device, "window line %u cannot be parsed: '%s'",
			       line, buf);
	if (rec->nwindows == set->wcap) {
		unsigned cap = set->wcap ? 2 * set->wcap : 4;
		struct window *p = realloc(rec->windows, cap * sizeof(*p));

		if (!p)
			return reason_set(set->reason, -ENOMEM, "cannot load %s: out of memory",
					  set->path);
		rec->windows = p;
		set->wcap = cap;
	}
	rec->windows[rec->nwindows++] = w;
	return 0;
}

/* One lends row: the record, then each line of its windows column. */
static int row_record(struct rec_set *set, sqlite3_stmt *st)
{
	const char *text = col_text(st, 5);
	unsigned line = 0;
	int r;

	r = new_record(set, st);
	if (r < 0 || !*text)
		return r; /* a record without windows */
	for (;;) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);

		r = add_window(set, line++, text, len);
		if (r < 0 || !nl)
			return r;
		text = nl + 1;
	}
}

/* Every record, with its windows, into @set.  Call with the lock held. */
static int read_records(struct sq_store *s, struct rec_set *set)
{
	sqlite3_stmt *st = s->st[ST_LOAD];
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = row_record(set, st);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_fail(s->db, rc, s->path, "read lends from state database", set->reason);
	sqlite3_reset(st);
	return r;
}

static int sq_load(void *ctx, store_load_cb cb, void *arg, char *reason)
{
	struct sq_store *s = ctx;
	struct rec_set set = { .path = s->path, .reason = reason };
	int r;

	pthread_mutex_lock(&s->lock);
	r = read_records(s, &set);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; r == 0 && i < set.n; i++)
		r = cb(arg, &set.v[i]);
	rec_set_release(&set);
	return r;
}

struct host_entry {
	char name[HOST_NAME_MAX_LEN + 1];
	int online;
};

struct host_set {
	struct host_entry *v;
	unsigned n, cap;
};

static int host_set_add(struct host_set *hs, const char *name, int online)
{
	if (hs->n == hs->cap) {
		unsigned cap = hs->cap ? 2 * hs->cap : 16;
		struct host_entry *v = realloc(hs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		hs->v = v;
		hs->cap = cap;
	}
	snprintf(hs->v[hs->n].name, sizeof(hs->v[0].name), "%s", name);
	hs->v[hs->n].online = online;
	hs->n++;
	return 0;
}

static int sq_host_load(void *ctx, int (*cb)(void *arg, const char *host, int online),
			void *arg, char *reason)
{
	struct sq_store *s = ctx;
	sqlite3_stmt *st = s->st[ST_HOST_LOAD];
	struct host_set hs = { 0 };
	int rc, r = 0;

	pthread_mutex_lock(&s->lock);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = col_text(st, 0);
		int64_t online = sqlite3_column_int64(st, 1);

		if (!name_valid(name) || (online != 0 && online != 1)) {
			r = reason_set(reason, -EIO,
				       "state database %s: invalid host row '%s' %" PRId64,
				       s->path, name, online);
			break;
		}
		r = host_set_add(&hs, name, (int)online);
		if (r < 0) {
			reason_set(reason, r, "cannot load %s: out of memory", s->path);
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_fail(s->db, rc, s->path, "read hosts from state database", reason);
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);

	for (unsigned i = 0; r == 0 && i < hs.n; i++)
		r = cb(arg, hs.v[i].name, hs.v[i].online);
	free(hs.v);
	return r;
}

struct vm_entry {
	char host[HOST_NAME_MAX_LEN + 1];
	char vm[VM_NAME_MAX_LEN + 1];
	char *qmp;
};

static int sq_vm_load(void *ctx,
		      int (*cb)(void *arg, const char *host, const char *vm,
				const char *qmp),
		      void *arg, char *reason)
{
	struct sq_store *s = ctx;
	sqlite3_stmt *st = s->st[ST_VM_LOAD];
	struct vm_entry *v = NULL;
	unsigned n = 0, cap = 0;
	int rc, r = 0;

	pthread_mutex_lock(&s->lock);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *host = col_text(st, 0), *vm = col_text(st, 1);
		const char *qmp = col_text(st, 2);

		r = store_vm_validate(host, vm, qmp, NULL);
		if (r < 0) {
			r = reason_set(reason, -EIO,
				       "state database %s: invalid vm row '%s' '%s'",
				       s->path, host, vm);
			break;
		}
		if (n == cap) {
			unsigned ncap = cap ? 2 * cap : 8;
			struct vm_entry *p = realloc(v, ncap * sizeof(*p));

			if (!p) {
				r = reason_set(reason, -ENOMEM, "cannot load %s: out of memory",
					       s->path);
				break;
			}
			v = p;
			cap = ncap;
		}
		snprintf(v[n].host, sizeof(v[n].host), "%s", host);
		snprintf(v[n].vm, sizeof(v[n].vm), "%s", vm);
		v[n].qmp = strdup(qmp);
		if (!v[n].qmp) {
			r = reason_set(reason, -ENOMEM, "cannot load %s: out of memory",
				       s->path);
			break;
		}
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_fail(s->db, rc, s->path, "read vms from state database", reason);
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);

	for (unsigned i = 0; r == 0 && i < n; i++)
		r = cb(arg, v[i].host, v[i].vm, v[i].qmp);
	for (unsigned i = 0; i < n; i++)
		free(v[i].qmp);
	free(v);
	return r;
}

/* ---- check ------------------------------------------------------------- */

struct check_ctx {
	FILE *out;
	unsigned bad;
};

static int row_integrity(void *arg, sqlite3_stmt *st)
{
	struct check_ctx *c = arg;
	const char *msg = col_text(st, 0);

	if (strcmp(msg, "ok") != 0) {
		fprintf(c->out, "integrity: %s\n", msg);
		c->bad++;
	}
	return 0;
}

static int row_host_check(void *arg, sqlite3_stmt *st)
{
	struct check_ctx *c = arg;
	const char *name = col_text(st, 0);

	if (!name_valid(name)) {
		fprintf(c->out, "host '%s': invalid host name\n", name);
		c->bad++;
	}
	if (sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
	    (sqlite3_column_int64(st, 1) != 0 && sqlite3_column_int64(st, 1) != 1)) {
		fprintf(c->out, "host %s: online is '%s', not 0 or 1\n", name,
			col_text(st, 1));
		c->bad++;
	}
	return 0;
}

static int row_vm_check(void *arg, sqlite3_stmt *st)
{
	struct check_ctx *c = arg;
	char why[REASON_MAX];

	if (store_vm_validate(col_text(st, 0), col_text(st, 1), col_text(st, 2),
			      why) < 0) {
		fprintf(c->out, "vm '%s/%s': %s\n", col_text(st, 0), col_text(st, 1), why);
		c->bad++;
	}
	return 0;
}

static int row_comp_check(void *arg, sqlite3_stmt *st)
{
	struct check_ctx *c = arg;
	char why[REASON_MAX];

	if (store_comp_validate(col_text(st, 0), col_text(st, 1), col_text(st, 2),
				why) < 0) {
		fprintf(c->out, "composition '%s': %s\n", col_text(st, 0), why);
		c->bad++;
	}
	return 0;
}

/* The checks only SQL can see, then the records into @set.  Lock held. */
static int check_rows(struct sq_store *s, struct check_ctx *c, struct rec_set *set,
		      char *reason)
{
	int r;

	r = query(s->db, s->path, "PRAGMA integrity_check(100)", row_integrity, c,
		  "check integrity of state database", reason);
	if (r < 0)
		return r;
	r = query(s->db, s->path, "SELECT host, online FROM hosts ORDER BY host",
		  row_host_check, c, "check hosts of state database", reason);
	if (r < 0)
		return r;
	r = query(s->db, s->path, "SELECT host, vm, qmp FROM vms ORDER BY host, vm",
		  row_vm_check, c, "check vms of state database", reason);
	if (r == 0)
		r = query(s->db, s->path, "SELECT name, devices, borrower FROM compositions"
			  " ORDER BY name", row_comp_check, c,
			  "check compositions of state database", reason);
	if (r < 0)
		return r;
	r = read_records(s, set);
	c->bad += set->bad;
	return r;
}

static int sq_check(void *ctx, FILE *out)
{
	struct sq_store *s = ctx;
	char reason[REASON_MAX] = "";
	struct check_ctx c = { .out = out };
	struct rec_set set = { .path = s->path, .reason = reason, .report = out };
	int r;

	pthread_mutex_lock(&s->lock);
	r = exec_sql(s->db, s->path, "BEGIN", "read state database", reason);
	if (r == 0) {
		r = check_rows(s, &c, &set, reason);
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		r = store_check_records(set.v, set.n, out);
	rec_set_release(&set);
	if (r < 0) {
		fprintf(out, "error: %s\n", reason[0] ? reason : "out of memory");
		return r;
	}
	return (int)c.bad + r;
}

/* ---- the event log ------------------------------------------------------- */

/* Insert each event (s->lock held, inside a transaction); trim now and then. */
static int ev_insert(struct sq_store *s, const struct ev_append *a,
		     const char *what, char *reason)
{
	sqlite3_stmt *st = s->st[ST_EV_APPEND];
	int r = 0;

	for (unsigned i = 0; i < a->n && r == 0; i++) {
		sqlite3_bind_int64(st, 1, a->ev[i].time_ns);
		bind_text(s, ST_EV_APPEND, 2, a->ev[i].text);
		r = run(s, ST_EV_APPEND, what, reason);
		a->ev[i].seq = (uint64_t)sqlite3_last_insert_rowid(s->db);
		if (r == 0 && a->retain && a->ev[i].seq > a->retain &&
		    a->ev[i].seq % EVENT_TRIM_EVERY == 0) {
			sqlite3_bind_int64(s->st[ST_EV_TRIM], 1,
					   (int64_t)(a->ev[i].seq - a->retain));
			r = run(s, ST_EV_TRIM, what, reason);
		}
	}
	return r;
}

/* All of them in one transaction, or none; then to the sink, in order. */
static int ev_statements(struct sq_store *s, const void *arg, const char *what,
			 char *reason)
{
	const struct ev_append *a = arg;
	int r = run(s, ST_BEGIN, what, reason);

	if (r < 0)
		return r;
	r = ev_insert(s, a, what, reason);
	if (r == 0)
		r = run(s, ST_COMMIT, what, reason);
	if (r < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	else if (s->sink)
		s->sink(s->sink_arg, a->ev, a->n);
	return r;
}

static int run_with_events(struct sq_store *s, int id, struct lend_txn *txn,
			   const char *what, char *reason)
{
	struct ev_append a;
	int r;

	if (!txn || !txn->nevents)
		return run(s, id, what, reason);
	for (unsigned i = 0; i < txn->nevents; i++)
		if (!event_text_valid(txn->events[i].text))
			return run(s, id, what, reason); /* they go on their own */
	r = run(s, ST_BEGIN, what, reason);
	if (r < 0)
		return r;
	a = (struct ev_append){ .ev = txn->events, .n = txn->nevents,
				.retain = s->retain };
	r = run(s, id, what, reason);
	if (r == 0)
		r = ev_insert(s, &a, what, reason);
	if (r == 0)
		r = run(s, ST_COMMIT, what, reason);
	if (r < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	txn->events_stored = true;
	if (s->sink)
		s->sink(s->sink_arg, a.ev, a.n);
	return 0;
}

static void sq_event_sink_set(void *ctx, store_event_sink sink, void *arg,
			      unsigned retain)
{
	struct sq_store *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->sink = sink;
	s->sink_arg = arg;
	s->retain = retain;
	pthread_mutex_unlock(&s->lock);
}

/*
 * Written to the WAL without waiting for a sync, as an intent is: the
 * next durable commit (the lend's outcome, usually the request that made
 * these events) syncs it too.  No fsync of its own (docs/STATE.md).
 */
static int sq_event_append(void *ctx, struct event_rec *ev, unsigned n,
			   unsigned retain, char *reason)
{
	struct ev_append a = { .ev = ev, .n = n, .retain = retain };

	for (unsigned i = 0; i < n; i++)
		if (!event_text_valid(ev[i].text))
			return reason_set(reason, -EINVAL, "malformed event %u", i);
	return transact_intent(ctx, ev_statements, &a, "append events to", reason);
}

struct ev_set {
	struct event_rec *v;
	unsigned n, cap;
};

static void ev_set_release(struct ev_set *set)
{
	for (unsigned i = 0; i < set->n; i++)
		free((char *)set->v[i].text);
	free(set->v);
}

static int ev_row(struct ev_set *set, sqlite3_stmt *st)
{
	const char *text = col_text(st, 2);

	if (set->n == set->cap) {
		unsigned cap = set->cap ? set->cap * 2 : 256;
		void *v = realloc(set->v, cap * sizeof(*set->v));

		if (!v)
			return -ENOMEM;
		set->v = v;
		set->cap = cap;
	}
	if (!event_text_valid(text))
		return 0; /* not written by us: not shown */
	set->v[set->n] = (struct event_rec){
		.seq = (uint64_t)sqlite3_column_int64(st, 0),
		.time_ns = sqlite3_column_int64(st, 1),
		.text = strdup(text),
	};
	return set->v[set->n++].text ? 0 : -ENOMEM;
}

static int sq_event_load(void *ctx, uint64_t since,
			 int (*cb)(void *arg, const struct event_rec *ev),
			 void *arg, char *reason)
{
	struct sq_store *s = ctx;
	sqlite3_stmt *st = s->st[ST_EV_LOAD];
	struct ev_set set = { 0 };
	int rc, r = 0;

	pthread_mutex_lock(&s->lock);
	sqlite3_bind_int64(st, 1, (int64_t)since);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = ev_row(&set, st);
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_fail(s->db, rc, s->path, "read events of", reason);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&s->lock);
	if (r == -ENOMEM)
		reason_set(reason, r, "out of memory");
	for (unsigned i = 0; i < set.n && r == 0; i++)
		r = cb(arg, &set.v[i]);
	ev_set_release(&set);
	return r;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.load = sq_load,
	.put = sq_put,
	.remove = sq_remove,
	.host_put = sq_host_put,
	.host_load = sq_host_load,
	.vm_put = sq_vm_put,
	.vm_remove = sq_vm_remove,
	.vm_load = sq_vm_load,
	.comp_put = sq_comp_put,
	.comp_remove = sq_comp_remove,
	.comp_load = sq_comp_load,
	.check = sq_check,
	.event_append = sq_event_append,
	.event_load = sq_event_load,
	.event_sink_set = sq_event_sink_set,
};
