// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * zkctl.c - a tiny ZooKeeper client for tests.
 *
 *   zkctl CONNECT get PATH       the node's data, as stored (no newline added)
 *   zkctl CONNECT ls PATH        its children, sorted, one per line
 *   zkctl CONNECT exists PATH    exit 0 if it exists, 1 if not
 *   zkctl CONNECT create PATH DATA  a new node holding DATA, as another
 *                                mount's daemon would create it (a request
 *                                node); an existing one is an error
 *   zkctl CONNECT stat PATH      "czxid mzxid version pzxid" (decimal):
 *                                the transactions that created it, last
 *                                changed it and last added or removed a
 *                                child (each write is one zxid)
 *   zkctl CONNECT rmr PATH       delete it and everything under it; a missing
 *                                node is not an error.  Without a chroot,
 *                                "rmr /" empties the tree but for /zookeeper;
 *                                with one, it deletes the chroot node too
 *   zkctl CONNECT wait-session   exit 0 once a session is established
 *
 * CONNECT is "host:port,host:port[/chroot]".  Every command waits up to
 * 20 s for a session.  Errors go to stderr with zerror()'s text; exit 2.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zkclient.h"

#define SESSION_MS 10000
#define CONNECT_WAIT_MS 20000
#define RMR_RETRIES 5

static int fail(const char *what, const char *path, int rc)
{
	fprintf(stderr, "zkctl: cannot %s %s: %s\n", what, path, zerror(rc));
	return 2;
}

static int cmd_get(zhandle_t *zh, const char *path)
{
	_cleanup_free_ char *buf = NULL;
	struct Stat st;
	int len, rc;

	/* Size the buffer from a stat; a node that grew meanwhile goes round. */
	for (;;) {
		rc = zoo_exists(zh, path, 0, &st);
		if (rc != ZOK)
			return fail("read", path, rc);
		free(buf);
		buf = malloc(st.dataLength > 0 ? (size_t)st.dataLength : 1);
		if (!buf)
			return fail("read", path, ZSYSTEMERROR);
		len = st.dataLength > 0 ? st.dataLength : 0;
		rc = zoo_get(zh, path, 0, buf, &len, &st);
		if (rc != ZOK)
			return fail("read", path, rc);
		if (st.dataLength <= len || st.dataLength <= 0)
			break;
	}
	if (len > 0 && fwrite(buf, 1, (size_t)len, stdout) != (size_t)len) {
		perror("zkctl: cannot write");
		return 2;
	}
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_ls(zhandle_t *zh, const char *path)
{
	struct String_vector v;
	int rc, i;

	rc = zoo_get_children(zh, path, 0, &v);
	if (rc != ZOK)
		return fail("list", path, rc);
	if (v.count > 0)
		qsort(v.data, (size_t)v.count, sizeof(*v.data), compare_names);
	for (i = 0; i < v.count; i++)
		printf("%s\n", v.data[i]);
	deallocate_String_vector(&v);
	return 0;
}

static int cmd_create(zhandle_t *zh, const char *path, const char *data)
{
	int rc = zoo_create(zh, path, data, (int)strlen(data), &ZOO_OPEN_ACL_UNSAFE,
			    0, NULL, 0);

	return rc == ZOK ? 0 : fail("create", path, rc);
}

static int cmd_exists(zhandle_t *zh, const char *path)
{
	struct Stat st;
	int rc;

	rc = zoo_exists(zh, path, 0, &st);
	if (rc == ZOK)
		return 0;
	if (rc == ZNONODE)
		return 1;
	return fail("stat", path, rc);
}

static int cmd_stat(zhandle_t *zh, const char *path)
{
	struct Stat st;
	int rc;

	rc = zoo_exists(zh, path, 0, &st);
	if (rc != ZOK)
		return fail("stat", path, rc);
	printf("%lld %lld %d %lld\n", (long long)st.czxid, (long long)st.mzxid,
	       (int)st.version, (long long)st.pzxid);
	return 0;
}

/*
 * rmr_tree - delete PATH's children, depth first, then PATH.  Without a
 * chroot, "/" and "/zookeeper" are the server's own and stay.  Returns ZOK
 * or the first error, already reported.
 */
static int rmr_tree(zhandle_t *zh, const char *path, bool chroot)
{
	struct String_vector v;
	int rc, i, tries;

	for (tries = 0; tries < RMR_RETRIES; tries++) {
		rc = zoo_get_children(zh, path, 0, &v);
		if (rc == ZNONODE)
			return ZOK;
		if (rc != ZOK) {
			fail("list", path, rc);
			return rc;
		}
		for (i = 0; i < v.count && rc == ZOK; i++) {
			_cleanup_free_ char *child = NULL;

			if (asprintf(&child, "%s/%s", strcmp(path, "/") ?
				     path : "", v.data[i]) < 0) {
				rc = ZSYSTEMERROR;
				fail("delete", path, rc);
				break;
			}
			if (!chroot && !strcmp(child, "/zookeeper"))
				continue;
			rc = rmr_tree(zh, child, chroot);
		}
		deallocate_String_vector(&v);
		if (rc != ZOK)
			return rc;
		if (!chroot && !strcmp(path, "/"))
			return ZOK;
		rc = zoo_delete(zh, path, -1);
		if (rc == ZOK || rc == ZNONODE)
			return ZOK;
		if (rc != ZNOTEMPTY)	/* else a child appeared: again */
			break;
	}
	fail("delete", path, rc);
	return rc;
}

static void usage(void)
{
	fputs("usage: zkctl CONNECT get|ls|exists|stat|rmr PATH\n"
	      "       zkctl CONNECT create PATH DATA\n"
	      "       zkctl CONNECT wait-session\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *connect, *cmd, *path = NULL;
	struct zk_session session;
	zhandle_t *zh;
	int rc, ret;

	if (argc < 3)
		usage();
	connect = argv[1];
	cmd = argv[2];
	if (!strcmp(cmd, "wait-session")) {
		if (argc != 3)
			usage();
	} else if (!strcmp(cmd, "get") || !strcmp(cmd, "ls") ||
		   !strcmp(cmd, "exists") || !strcmp(cmd, "stat") ||
		   !strcmp(cmd, "rmr")) {
		if (argc != 4)
			usage();
		path = argv[3];
		if (path[0] != '/') {
			fprintf(stderr, "zkctl: bad path '%s': not absolute\n",
				path);
			return 2;
		}
	} else if (!strcmp(cmd, "create")) {
		if (argc != 5 || argv[3][0] != '/')
			usage();
		path = argv[3];
	} else {
		usage();
	}

	rc = zk_connect(&session, connect, SESSION_MS, CONNECT_WAIT_MS, &zh);
	if (rc != ZOK) {
		fprintf(stderr, "zkctl: no session with %s: %s\n", connect,
			zk_strerror(rc, errno));
		return 2;
	}

	if (!strcmp(cmd, "get"))
		ret = cmd_get(zh, path);
	else if (!strcmp(cmd, "ls"))
		ret = cmd_ls(zh, path);
	else if (!strcmp(cmd, "exists"))
		ret = cmd_exists(zh, path);
	else if (!strcmp(cmd, "create"))
		ret = cmd_create(zh, path, argv[4]);
	else if (!strcmp(cmd, "stat"))
		ret = cmd_stat(zh, path);
	else if (!strcmp(cmd, "rmr"))
		ret = rmr_tree(zh, path, strchr(connect, '/')) == ZOK ? 0 : 2;
	else
		ret = 0;

	zookeeper_close(zh);
	if (fflush(stdout) == EOF) {
		perror("zkctl: cannot write");
		return 2;
	}
	return ret;
}
