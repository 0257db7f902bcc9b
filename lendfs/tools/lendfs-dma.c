// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lendfs-dma - move bytes through the sim fabric's translation windows,
 * as a host's CPU or as a device's DMA engine would.
 *
 *   lendfs-dma -r RUNDIR cpu-read HOST ADDR LEN
 *   lendfs-dma -r RUNDIR cpu-write HOST ADDR DATA
 *   lendfs-dma -r RUNDIR dma-read DEVID ADDR LEN
 *   lendfs-dma -r RUNDIR dma-write DEVID ADDR DATA
 *   lendfs-dma -r RUNDIR regs [HOST]
 *   lendfs-dma -r RUNDIR lose-lut HOST INDEX    (a fault, for tests)
 *
 * Exit status: 0 done, 1 the access failed, 2 usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric_sim.h"
#include "util.h"

#define PROG "lendfs-dma"

#include "tool.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " -r RUNDIR [-x] COMMAND ARGS...\n"
		"\n"
		"Move bytes through the translation windows of the sim fabric.\n"
		"\n"
		"commands:\n"
		"  cpu-read HOST ADDR LEN      read LEN bytes at ADDR as HOST's CPU\n"
		"  cpu-write HOST ADDR DATA    write DATA at ADDR as HOST's CPU\n"
		"  dma-read DEVID ADDR LEN     read LEN bytes at bus address ADDR as\n"
		"                              device DEVID's DMA\n"
		"  dma-write DEVID ADDR DATA   write DATA at bus address ADDR as\n"
		"                              device DEVID's DMA\n"
		"  regs [HOST]                 list every programmed LUT entry, DMA\n"
		"                              window and IOMMU mapping (of HOST),\n"
		"                              one window line each, then where it\n"
		"                              leads: bar DEVID, ram OWNER or none\n"
		"  lose-lut HOST INDEX         a fault for tests: LUT entry INDEX of\n"
		"                              HOST's adapter loses its translation\n"
		"                              behind lendfs's back\n"
		"\n"
		"options:\n"
		"  -r, --run-dir DIR   run directory of the sim fabric (lendfs --run-dir)\n"
		"  -x, --hex           DATA is hex digits; reads print hex, not raw bytes\n"
		"  -h, --help          show this help\n"
		"\n"
		"HOST is a host name or vm:HOST/VM.  ADDR is decimal or 0x hex.\n"
		"LEN may end in K, M or G.  Reads write the bytes to stdout.\n"
		"Exit status: 0 done, 1 the access failed, 2 usage error.\n");
}

static int hex_value(int c)
{
	if (isdigit(c))
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "48656c6c6f" or "0x48656c6c6f" into a new buffer. */
static int hex_decode(const char *s, char **out, size_t *len)
{
	size_t n;
	char *buf;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	n = strlen(s);
	if (n == 0 || n % 2)
		return -EINVAL;
	buf = malloc(n / 2);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value((unsigned char)s[2 * i]);
		int lo = hex_value((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(buf);
			return -EINVAL;
		}
		buf[i] = (char)(hi << 4 | lo);
	}
	*out = buf;
	*len = n / 2;
	return 0;
}

static int print_bytes(const char *buf, size_t len, bool hex)
{
	if (hex) {
		for (size_t i = 0; i < len; i++)
			printf("%02x", (unsigned char)buf[i]);
		putchar('\n');
	} else if (len && fwrite(buf, 1, len, stdout) != len) {
		return -EIO;
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EIO;
}

static int print_reg(void *arg, const struct sim_reg *g)
{
	char line[WINDOW_TEXT_MAX];

	(void)arg;
	if (window_format(&g->w, line, sizeof(line)) < 0)
		return -EINVAL;
	printf("%s %s %s\n", line,
	       g->dest_err ? "none" : g->dest_bar ? "bar" : "ram",
	       g->dest_err ? "-" : g->dest);
	return 0;
}

/* lose-lut HOST INDEX: a fault for tests, an entry lost behind lendfs. */
static int run_lose(const char *run_dir, int argc, char **argv)
{
	char reason[REASON_MAX] = "";
	struct sim_hw *hw = NULL;
	uint64_t index;
	int r;

	if (argc != 2)
		return usage_error("lose-lut takes 2 arguments");
	if (parse_u64(argv[1], &index) < 0 || index > UINT32_MAX)
		return usage_error("invalid LUT entry '%s'", argv[1]);
	r = sim_hw_open(run_dir, &hw, reason);
	if (r == 0)
		r = sim_hw_lose_lut(hw, argv[0], (uint32_t)index, reason);
	sim_hw_close(hw);
	if (r < 0) {
		fprintf(stderr, PROG ": lose-lut: %s\n",
			reason[0] ? reason : strerror(-r));
		return 1;
	}
	return 0;
}

/* regs [HOST]: the register files as the hardware holds them. */
static int run_regs(const char *run_dir, int argc, char **argv)
{
	char reason[REASON_MAX] = "";
	struct sim_hw *hw = NULL;
	int r;

	if (argc > 1)
		return usage_error("regs takes at most one argument");
	r = sim_hw_open(run_dir, &hw, reason);
	if (r == 0) {
		r = sim_hw_regs(hw, argc ? argv[0] : NULL, print_reg, NULL,
				reason);
		sim_hw_close(hw);
	}
	if (r == 0 && fflush(stdout) != 0)
		r = reason_set(reason, -errno, "cannot write to stdout: %s",
			       strerror(errno));
	if (r < 0) {
		fprintf(stderr, PROG ": regs: %s\n",
			reason[0] ? reason : strerror(-r));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "run-dir", required_argument, NULL, 'r' },
		{ "hex", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char reason[REASON_MAX] = "";
	const char *run_dir = NULL, *cmd, *who, *arg;
	_cleanup_free_ char *buf = NULL;
	struct sim_hw *hw = NULL;
	bool hex = false, write, dma;
	uint64_t addr, len64;
	size_t len;
	int c, r;

	while ((c = getopt_long(argc, argv, "r:xh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			run_dir = optarg;
			break;
		case 'x':
			hex = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try '" PROG " --help' for more information.\n");
			return 2;
		}
	}
	if (!run_dir)
		return usage_error("no run directory given (-r RUNDIR)");
	if (argc - optind == 0)
		return usage_error("no command given");
	cmd = argv[optind];
	if (strcmp(cmd, "regs") == 0)
		return run_regs(run_dir, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "lose-lut") == 0)
		return run_lose(run_dir, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "cpu-read") == 0 || strcmp(cmd, "cpu-write") == 0 ||
	    strcmp(cmd, "dma-read") == 0 || strcmp(cmd, "dma-write") == 0) {
		dma = cmd[0] == 'd';
		write = strstr(cmd, "write") != NULL;
	} else {
		return usage_error("unknown command '%s'", cmd);
	}
	if (argc - optind != 4)
		return usage_error("%s takes 3 arguments", cmd);
	who = argv[optind + 1];
	arg = argv[optind + 3];
	if (parse_u64(argv[optind + 2], &addr) < 0)
		return usage_error("invalid address '%s'", argv[optind + 2]);

	if (write && hex) {
		if (hex_decode(arg, &buf, &len) < 0)
			return usage_error("invalid hex data '%s'", arg);
	} else if (write) {
		len = strlen(arg);
		if (len == 0)
			return usage_error("nothing to write");
		buf = strdup(arg);
	} else {
		if (parse_size(arg, &len64) < 0 || len64 == 0)
			return usage_error("invalid length '%s'", arg);
		if (len64 > SIM_ACCESS_MAX)
			return usage_error("length %s is too large (at most 1G)",
					   arg);
		len = (size_t)len64;
		buf = calloc(1, len);
	}
	if (!buf) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}

	r = sim_hw_open(run_dir, &hw, reason);
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", reason[0] ? reason : strerror(-r));
		return 1;
	}
	if (dma)
		r = sim_dma_access(hw, who, addr, buf, len, write, reason);
	else
		r = sim_cpu_access(hw, who, addr, buf, len, write, reason);
	sim_hw_close(hw);
	if (r < 0) {
		fprintf(stderr, PROG ": %s %s 0x%" PRIx64 ": %s\n", cmd, who, addr,
			reason[0] ? reason : strerror(-r));
		return 1;
	}
	if (!write && print_bytes(buf, len, hex) < 0) {
		fprintf(stderr, PROG ": cannot write to stdout: %s\n",
			strerror(errno ? errno : EIO));
		return 1;
	}
	return 0;
}
