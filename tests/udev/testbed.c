// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * testbed.c - own a umockdev test bed and change it on command, for the
 * udev bats tests.  Run it under umockdev-wrapper; a lendfs started with
 * the printed UMOCKDEV_DIR (also under umockdev-wrapper) sees the fake
 * devices and receives their uevents.
 *
 *   umockdev-wrapper testbed [FIXTURE.umockdev ...]
 *
 * It prints "ready UMOCKDEV_DIR" once the fixtures are loaded, then reads
 * one command per line from stdin and answers each with one line, "ok" or
 * "error: ...":
 *
 *   load FILE                    add the devices of a .umockdev file ("add" events)
 *   uevent SYSPATH ACTION        send add / change / remove / bind / unbind
 *   attr SYSPATH NAME VALUE...   set a sysfs attribute (\n in VALUE is a newline)
 *   prop SYSPATH NAME VALUE      set a udev property
 *   link SYSPATH NAME TARGET     set an attribute symlink (driver, iommu_group)
 *   remove SYSPATH               send "remove", then delete the device
 *   quit                         (or end of input) delete the test bed and exit
 *
 * Build: cc testbed.c $(pkg-config --cflags --libs umockdev-1.0) -o testbed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <umockdev.h>

static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			*o++ = '\n';
			s++;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int load(UMockdevTestbed *tb, const char *file)
{
	GError *err = NULL;

	if (umockdev_testbed_add_from_file(tb, file, &err))
		return 0;
	printf("error: %s: %s\n", file, err ? err->message : "cannot load");
	g_clear_error(&err);
	return -1;
}

static int command(UMockdevTestbed *tb, char *line)
{
	char *cmd = strtok(line, " \n");
	char *path = strtok(NULL, " \n");
	char *name = strtok(NULL, " \n");
	char *rest = strtok(NULL, "\n");

	if (!cmd)
		return 0;
	if (!strcmp(cmd, "quit"))
		return 1;
	if (!path) {
		printf("error: %s needs an argument\n", cmd);
		return 0;
	}
	if (!strcmp(cmd, "load")) {
		if (load(tb, path) < 0)
			return 0;
	} else if (!strcmp(cmd, "uevent") && name) {
		umockdev_testbed_uevent(tb, path, name);
	} else if (!strcmp(cmd, "remove")) {
		umockdev_testbed_uevent(tb, path, "remove");
		umockdev_testbed_remove_device(tb, path);
	} else if (!strcmp(cmd, "attr") && name) {
		rest = rest ? rest : "";
		unescape(rest);
		umockdev_testbed_set_attribute(tb, path, name, rest);
	} else if (!strcmp(cmd, "prop") && name) {
		umockdev_testbed_set_property(tb, path, name, rest ? rest : "");
	} else if (!strcmp(cmd, "link") && name && rest) {
		/* umockdev refuses to replace a link: remove it first */
		char *root = umockdev_testbed_get_root_dir(tb);
		char *old = g_strdup_printf("%s%s/%s", root, path, name);

		unlink(old);
		g_free(old);
		g_free(root);
		umockdev_testbed_set_attribute_link(tb, path, name, rest);
	} else {
		printf("error: bad command '%s'\n", cmd);
		return 0;
	}
	printf("ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	UMockdevTestbed *tb;
	char line[8192];

	/* not umockdev_in_mock_environment(): it wants a path in LD_PRELOAD */
	if (!getenv("LD_PRELOAD") || !strstr(getenv("LD_PRELOAD"), "libumockdev-preload")) {
		fprintf(stderr, "testbed: run me under umockdev-wrapper\n");
		return 2;
	}
	tb = umockdev_testbed_new();
	for (int i = 1; i < argc; i++)
		if (load(tb, argv[i]) < 0)
			return 1;
	printf("ready %s\n", getenv("UMOCKDEV_DIR"));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int done = command(tb, line);

		fflush(stdout);
		if (done)
			break;
	}
	g_object_unref(tb);
	return 0;
}
