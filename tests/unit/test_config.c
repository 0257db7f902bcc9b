// SPDX-License-Identifier: LGPL-2.1-or-later
/* cmocka tests for core/config.c: the demo config and every error kind. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config.h"

static const char *good =
	"; comment\n"
	"[cluster]\n"
	"name = lab\n"
	"ntb_crossing_ns = 350\n"
	"[host nodeA]\n"
	"adapter = ntb0\n"
	"iommu = on\n"
	"lut_entries = 4\n"
	"window_max = 8M\n"
	"ram = 0x100000000-0x1ffffffff, 0x0-0x7fffffff\n"
	"[host nodeB]\n"
	"[switch sw0]\n"
	"latency_ns = 100\n"
	"[link]\n"
	"a = nodeA\n"
	"b = nodeB\n"
	"latency_ns = 360\n"
	"[link]\n"
	"a = nodeB\n"
	"b = sw0\n"
	"[device nodeA:0000:65:00.0]\n"
	"vendor = 0x10de\n"
	"device = 0x1db6\n"
	"class = 0x030200\n"
	"bar0 = 16M\n"
	"bar2 = 0x4000\n"
	"[device nodeB:0000:AF:1f.7]\n"
	"[vm nodeB/vm1]\n"
	"ram = 0x0-0x1fffffff\n"
	"[policy]\n"
	"autolend = nodeA:0000:65:00.0 -> nodeB\n"
	"deny = nodeB:0000:af:1f.7\n";

static void test_good(void **state)
{
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX] = "";

	(void)state;
	assert_int_equal(config_load_string("good.ini", good, &c, err), 0);
	assert_string_equal(c->name, "lab");
	assert_int_equal(c->ntb_crossing_ns, 350);
	assert_int_equal(c->timeout_ms, DEFAULT_TIMEOUT_MS);
	assert_int_equal(c->vm_unplug_timeout_ms, DEFAULT_VM_UNPLUG_TIMEOUT_MS);
	assert_int_equal(c->nhosts, 2);
	assert_string_equal(c->hosts[0].name, "nodeA");
	assert_true(c->hosts[0].iommu);
	assert_int_equal(c->hosts[0].lut_entries, 4);
	assert_int_equal(c->hosts[0].window_max, 8 << 20);
	assert_int_equal(c->hosts[0].nram, 2);
	/* ranges come out sorted */
	assert_int_equal(c->hosts[0].ram[0].start, 0);
	assert_int_equal(c->hosts[0].ram[0].end, 0x7fffffff);
	assert_int_equal(c->hosts[0].ram[1].start, 0x100000000ULL);
	/* defaults of an empty host section */
	assert_false(c->hosts[1].iommu);
	assert_int_equal(c->hosts[1].lut_entries, DEFAULT_LUT_ENTRIES);
	assert_int_equal(c->hosts[1].line, 11);
	assert_int_equal(c->nswitches, 1);
	assert_int_equal(c->switches[0].latency_ns, 100);
	/* two consecutive [link] sections are two links */
	assert_int_equal(c->nlinks, 2);
	assert_int_equal(c->links[0].latency_ns, 360);
	assert_string_equal(c->links[1].b, "sw0");
	assert_int_equal(c->ndevices, 2);
	assert_string_equal(c->devices[0].id, "nodeA:0000:65:00.0");
	assert_int_equal(c->devices[0].vendor, 0x10de);
	assert_int_equal(c->devices[0].class, 0x030200);
	assert_int_equal(c->devices[0].bar[0], 16 << 20);
	assert_int_equal(c->devices[0].bar[2], 0x4000);
	assert_int_equal(c->devices[0].line, 21);
	/* ids are canonical lower case */
	assert_string_equal(c->devices[1].id, "nodeB:0000:af:1f.7");
	assert_int_equal(c->nvms, 1);
	assert_string_equal(c->vms[0].name, "vm1");
	assert_int_equal(c->nautolends, 1);
	assert_string_equal(c->autolends[0].borrower, "nodeB");
	assert_int_equal(c->ndenies, 1);
	assert_string_equal(c->denies[0].device, "nodeB:0000:af:1f.7");
	config_free(c);
}

struct bad {
	const char *text;
	const char *expect; /* substring of the error, after "t.ini:LINE: " */
	unsigned line;
};

static const struct bad bads[] = {
	{ "[host a]\nbogus = 1\n", "unknown key 'bogus' in [host a]", 2 },
	{ "[host a]\n[frobnicate]\nx = 1\n", "unknown section [frobnicate]", 2 },
	{ "[host a]\nlut_entries = 12x\n", "lut_entries: not a number: '12x'", 2 },
	{ "[host a]\nlut_entries = -1\n", "lut_entries: not a number", 2 },
	{ "[host a]\nlut_entries = 99999999999999999999999\n",
	  "lut_entries: number out of range", 2 },
	{ "[host a]\nlut_entries = 0\n", "lut_entries: 0 out of range", 2 },
	{ "[host a]\nwindow_max = 12M\n", "window_max: 12M is not a power of two", 2 },
	{ "[host a]\nwindow_max = 8M\nwindow_align = 16M\n",
	  "window_align 16777216 is larger than window_max", 1 },
	{ "[host a]\niommu = maybe\n", "iommu: 'maybe' is not on or off", 2 },
	{ "[host a]\nram = 0x0-0x1000,0x800-0x2000\n", "ram: ranges overlap", 2 },
	{ "[host a]\nram = 10-5\n", "ram: malformed ranges", 2 },
	{ "[host a]\n[host a]\n", "duplicate host 'a'", 2 },
	{ "[host a]\nadapter = x\nadapter = y\n", "duplicate key 'adapter' in [host a]", 3 },
	{ "[host a]\n[device a:0000:65:00.0]\n[device a:0000:65:00.0]\n",
	  "duplicate device 'a:0000:65:00.0'", 3 },
	{ "[host a]\n[device a:0000:65:00.0]\n\n[device a:0000:65:00.00]\n",
	  "malformed device id 'a:0000:65:00.00'", 4 },
	{ "[host a]\n[device a:0000:65:20.0]\n", "malformed device id", 2 },
	{ "[host a]\n[device a:0000:65:00.8]\n", "malformed device id", 2 },
	{ "[host a]\n[device a-0000:65:00.0]\n", "malformed device id", 2 },
	{ "[host a]\n[device nosuch:0000:65:00.0]\n",
	  "[device nosuch:0000:65:00.0]: unknown host 'nosuch'", 2 },
	{ "[host a]\n[device a:0000:65:00.0]\nbar0 = 3000\n",
	  "bar0: 3000 is not a power of two", 3 },
	{ "[host a]\n[device a:0000:65:00.0]\nbar6 = 4K\n", "unknown key 'bar6'", 3 },
	{ "[host a]\n[device a:0000:65:00.0]\nvendor = 0x10000\n",
	  "vendor: 0x10000 out of range", 3 },
	{ "[host a]\n[link]\na = a\nb = ghost\n", "[link]: unknown host or switch 'ghost'", 2 },
	{ "[host a]\n[link]\na = a\n", "[link] needs both 'a' and 'b'", 2 },
	{ "[host a]\n[link]\na = a\nb = a\n", "links 'a' to itself", 2 },
	{ "[host a]\n[host b]\n[link]\na = a\nb = b\n[link]\na = b\nb = a\n",
	  "duplicate link b - a (first at line 3)", 6 },
	{ "[host a]\nthis is not ini\n", "syntax error", 2 },
	{ "[host a\n", "unterminated section header", 1 },
	{ "x = 1\n[host a]\n", "key 'x' outside of any section", 1 },
	{ "[cluster]\nname = lab\n", "no [host] section", 2 },
	{ "[cluster]\n[cluster]\n[host a]\n", "duplicate section [cluster]", 2 },
	{ "[cluster]\ninventory = magic\n[host a]\n", "inventory: 'magic' is not one of", 2 },
	{ "[cluster]\nfabric = fpga\n[host a]\n", "fabric: 'fpga' is not one of", 2 },
	{ "[cluster]\nvm_unplug_timeout_ms = 0\n[host a]\n",
	  "vm_unplug_timeout_ms: 0 out of range", 2 },
	{ "[host a]\n[policy]\ndeny = a:0000:01:00.0\n", "deny: unknown device", 3 },
	{ "[host a]\n[device a:0000:01:00.0]\n[policy]\nautolend = a:0000:01:00.0 nodeB\n",
	  "autolend: expected 'DEVICE -> BORROWER'", 4 },
	{ "[host a]\n[device a:0000:01:00.0]\n[policy]\nautolend = a:0000:01:00.0 -> zz\n",
	  "autolend: unknown borrower host 'zz'", 4 },
	{ "[host bad.name]\n", "invalid host name 'bad.name'", 1 },
	{ "[host a]\n[vm a]\n", "malformed vm 'a'", 2 },
	{ "[host a]\n[vm a/v]\n", "[vm a/v]: needs 'ram'", 2 },
	{ "[host a]\n[switch s]\nlatency_ns = 1\nbogus = 2\n", "unknown key 'bogus' in [switch s]", 4 },
	{ "[host a]\nadapter =\n", "adapter: empty value", 2 },
	{ "[link x]\n", "section [link] takes no name", 1 },
	{ "[host a] junk\n", "unexpected text after the section header: 'junk'", 1 },
	{ "[host a]\nadapter = ntb\x01\x1b[0m\n", "adapter: invalid name 'ntb??[0m'", 2 },
	{ "[host a]\rlut_entries = 4\n", "unexpected text after the section header", 1 },
	{ "[host a]\n[device a:0000:01:00.0]x\n", "unexpected text after the section header: 'x'",
	  2 },
};

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct cluster_config *c = NULL;
		char err[ERRMSG_MAX] = "", prefix[64];

		snprintf(prefix, sizeof(prefix), "t.ini:%u: ", bads[i].line);
		assert_int_equal(config_load_string("t.ini", bads[i].text, &c, err),
				 -EINVAL);
		assert_null(c);
		if (strncmp(err, prefix, strlen(prefix)) != 0 ||
		    !strstr(err, bads[i].expect))
			fail_msg("case %zu: got '%s', want '%s...%s'", i, err, prefix,
				 bads[i].expect);
	}
}

static void test_long_line(void **state)
{
	char text[1024] = "[host a]\nadapter = ";
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX];

	(void)state;
	memset(text + strlen(text), 'x', 600);
	strcat(text, "\n");
	assert_int_equal(config_load_string("t.ini", text, &c, err), -EINVAL);
	assert_non_null(strstr(err, "t.ini:2: line too long"));
}

/* Write @len bytes of @text to a new file under /tmp; returns its path. */
static char *write_tmp(const char *text, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/lendfs-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* What inih accepts around headers: a BOM on line 1, CR LF, a comment. */
static void test_header_forms(void **state)
{
	static const char *const ok[] = {
		"\xef\xbb\xbf[host a]\nlut_entries = 4\n",
		"[host a]\r\nlut_entries = 4\r\n",
		"[host a] ; the first host\nlut_entries = 4\n",
		"  [ host a ]\t\nlut_entries = 4\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cluster_config *c = NULL;
		char err[ERRMSG_MAX] = "";

		if (config_load_string("t.ini", ok[i], &c, err) < 0)
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(c->nhosts, 1);
		assert_int_equal(c->hosts[0].lut_entries, 4);
		config_free(c);
	}
}

/* A NUL byte is refused wherever it is, never cuts a line short. */
static void test_nul_in_file(void **state)
{
	static const char last[] = "[host a]\nram = 0x0-0x1\0garbage";
	static const char mid[] = "[host a]\nram = 0x0\0-0x1\n";
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX], want[128];
	char *path;

	(void)state;
	path = write_tmp(last, sizeof(last) - 1);
	assert_int_equal(config_load(path, &c, err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
	assert_string_equal(err, want);
	unlink(path);
	path = write_tmp(mid, sizeof(mid) - 1);
	assert_int_equal(config_load(path, &c, err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
	assert_string_equal(err, want);
	assert_null(c);
	unlink(path);
}

/* The longest line fits inih's buffer; one more byte is refused, in both readers. */
static void test_line_limit_file(void **state)
{
	char text[512] = "[host a]\n;";
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX];
	size_t base = strlen(text);
	char *path;

	(void)state;
	memset(text + base, 'x', 197); /* ';' + 197 = 198 bytes */
	strcpy(text + base + 197, "\n");
	path = write_tmp(text, strlen(text));
	assert_int_equal(config_load(path, &c, err), 0);
	config_free(c);
	unlink(path);
	assert_int_equal(config_load_string("t.ini", text, &c, err), 0);
	config_free(c);
	strcpy(text + base + 197, "x\n");
	path = write_tmp(text, strlen(text));
	assert_int_equal(config_load(path, &c, err), -EINVAL);
	assert_non_null(strstr(err, ":2: line too long"));
	unlink(path);
	assert_int_equal(config_load_string("t.ini", text, &c, err), -EINVAL);
	assert_non_null(strstr(err, "t.ini:2: line too long"));
}

/* A pipe has no size to check up front: the reader counts. */
static void test_size_limit_pipe(void **state)
{
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX], path[64];
	int p[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char line[] =
			"; 64 bytes of comment, over and over, in a very big config.....\n";
		static char chunk[64 << 10];

		_Static_assert(sizeof(line) == 65, "64 bytes and a NUL");
		close(p[0]);
		for (size_t i = 0; i < sizeof(chunk); i += 64)
			memcpy(chunk + i, line, 64);
		for (size_t n = 0; n <= CONFIG_MAX_BYTES; n += sizeof(chunk))
			if (write(p[1], chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
				_exit(0);
		_exit(0);
	}
	close(p[1]);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
	assert_int_equal(config_load(path, &c, err), -EINVAL);
	assert_non_null(strstr(err, "file too large (more than 67108864 bytes)"));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_vm_unplug_timeout(void **state)
{
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX] = "";

	(void)state;
	assert_int_equal(config_load_string("t.ini",
					    "[cluster]\nvm_unplug_timeout_ms = 250\n[host a]\n",
					    &c, err), 0);
	assert_int_equal(c->vm_unplug_timeout_ms, 250);
	config_free(c);
}

static void test_missing_file(void **state)
{
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX];

	(void)state;
	assert_int_equal(config_load("/nonexistent/x.ini", &c, err), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x.ini: cannot open"));
}

static void test_demo(void **state)
{
	struct cluster_config *c = NULL;
	char err[ERRMSG_MAX] = "";

	(void)state;
	if (config_load(SRCDIR "/conf/demo.ini", &c, err) < 0)
		fail_msg("%s", err);
	assert_true(c->nhosts >= 3);
	assert_true(c->ndevices >= 6);
	assert_true(c->nlinks >= 2);
	config_free(c);
}

static void test_parsers(void **state)
{
	struct pci_addr a;
	char host[HOST_NAME_MAX_LEN + 1], buf[32];
	uint64_t v;

	(void)state;
	assert_int_equal(device_id_parse("n1:0000:65:00.0", host, &a), 0);
	assert_string_equal(host, "n1");
	assert_int_equal(a.bus, 0x65);
	pci_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "0000:65:00.0");
	assert_int_equal(device_id_parse(":0000:65:00.0", host, &a), -EINVAL);
	assert_int_equal(device_id_parse("n1:0000:65:00", host, &a), -EINVAL);
	assert_int_equal(device_id_parse("n1:0000:65:00.0 ", host, &a), -EINVAL);
	assert_int_equal(parse_size("16M", &v), 0);
	assert_int_equal(v, 16 << 20);
	assert_int_equal(parse_size("0x1000", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size("16Q", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999T", &v), -ERANGE);
	assert_int_equal(parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_u64("0x", &v), -EINVAL);
	assert_int_equal(parse_u64(" 1", &v), -EINVAL);
	assert_true(name_valid("nodeA"));
	assert_true(name_valid("n-1_b"));
	assert_false(name_valid(""));
	assert_false(name_valid("-x"));
	assert_false(name_valid("a b"));
	assert_false(name_valid("a/b"));
	assert_false(name_valid("a:b"));
	memset(buf, 'a', 31);
	buf[31] = 0;
	assert_true(name_valid(buf));
	{
		char big[80];

		memset(big, 'a', 64);
		big[64] = 0;
		assert_false(name_valid(big));
		big[63] = 0;
		assert_true(name_valid(big));
	}
}

/* listen.h: the address and port parsed, and each refusal's errno. */
static void test_listen(void **state)
{
	static const struct {
		const char *text;
		int err;
	} bad[] = {
		{ "", -EINVAL },		{ "127.0.0.1", -EINVAL },
		{ "127.0.0.1:", -EINVAL },	{ ":80", -EINVAL },
		{ "1.2.3:80", -EINVAL },	{ "1.2.3.4.5:80", -EINVAL },
		{ "::1:80", -EINVAL },		{ "[::1]", -EINVAL },
		{ "[::1]:", -EINVAL },		{ "[::1]x80", -EINVAL },
		{ "[]:80", -EINVAL },		{ "[1.2.3.4]:80", -EINVAL },
		{ "host:80", -EINVAL },		{ "127.0.0.1:+80", -EINVAL },
		{ "127.0.0.1:80 ", -EINVAL },	{ "127.0.0.1:0x50", -EINVAL },
		{ "127.0.0.1:0", -ERANGE },	{ "127.0.0.1:65536", -ERANGE },
		{ "127.0.0.1:000000", -ERANGE }, { "localhost:99999999999999999999", -ERANGE },
		{ "11111111111111111111111111111111111111111111111111111111111111:1", -ENAMETOOLONG },
		{ "[0:0:0:0:0:0:0:0:0]:1", -EINVAL },
	};
	struct listen_addr a;
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a.ss;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a.ss;
	char why[REASON_MAX], txt[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(listen_parse("10.1.2.3:9477", &a, why), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(v4->sin_port), 9477);
	assert_int_equal(ntohl(v4->sin_addr.s_addr), 0x0a010203);
	assert_int_equal(listen_parse("localhost:1", &a, why), 0);
	assert_int_equal(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(v4->sin_port), 1);
	assert_int_equal(listen_parse("[::1]:65535", &a, why), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(v6->sin6_port), 65535);
	inet_ntop(AF_INET6, &v6->sin6_addr, txt, sizeof(txt));
	assert_string_equal(txt, "::1");
	assert_int_equal(listen_parse("[fd00::5:7]:80", &a, why), 0);
	assert_int_equal(listen_parse("[0000:0000:0000:0000:0000:0000:0000:0001]:1", &a, why), 0);
	assert_int_equal(listen_parse("255.255.255.255:65535", &a, why), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		a.family = 99;
		if (listen_parse(bad[i].text, &a, why) != bad[i].err)
			fail_msg("'%s' not refused with %d", bad[i].text, bad[i].err);
		assert_true(why[0] != '\0');
		assert_int_equal(a.family, 0); /* cleared on failure */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),	    cmocka_unit_test(test_bad),
		cmocka_unit_test(test_long_line),   cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_vm_unplug_timeout),
		cmocka_unit_test(test_demo),	    cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_nul_in_file), cmocka_unit_test(test_line_limit_file),
		cmocka_unit_test(test_size_limit_pipe), cmocka_unit_test(test_header_forms),
		cmocka_unit_test(test_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
