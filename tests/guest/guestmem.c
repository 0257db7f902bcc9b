// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * guestmem - the test guest's hands on a lent device (tests/guest/).
 * Built -static with the tests and put into the guest's initramfs.
 *
 *   guestmem read FILE OFF LEN     print LEN bytes at OFF of FILE, mapped
 *                                  (a sysfs resourceN), as hex
 *   guestmem write FILE OFF TEXT   store TEXT at OFF of FILE, mapped
 *   guestmem buffer LEN SECONDS    allocate and lock LEN zeroed bytes, print
 *                                  "phys 0xADDR" (its guest physical
 *                                  address, from /proc/self/pagemap), then
 *                                  wait up to SECONDS for a nonzero byte
 *                                  and print "got HEX..." or "timeout";
 *                                  the page stays locked (and what came
 *                                  in it readable from the host) until
 *                                  SECONDS are over or it is killed
 *
 * Exit status 0, or 1 with the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "guestmem: %s %s: %s\n", what, arg, strerror(errno));
	return 1;
}

static int parse(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end || *out > max) {
		fprintf(stderr, "guestmem: bad number '%s'\n", s);
		return -1;
	}
	return 0;
}

/* Map [off, off + len) of path; *base is the page-aligned mapping. */
static volatile uint8_t *map(const char *path, unsigned long long off, size_t len,
			     void **base, size_t *maplen)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long start = off & ~(unsigned long long)(page - 1);
	int fd = open(path, O_RDWR | O_SYNC);

	if (fd < 0)
		return NULL;
	*maplen = off - start + len;
	*base = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	close(fd);
	if (*base == MAP_FAILED)
		return NULL;
	return (volatile uint8_t *)*base + (off - start);
}

static int do_rw(int argc, char **argv)
{
	unsigned long long off, len;
	volatile uint8_t *p;
	void *base;
	size_t maplen, i;
	int rd = !strcmp(argv[1], "read");

	if (argc != 5 || parse(argv[3], 1ULL << 40, &off))
		return 2;
	if (rd) {
		if (parse(argv[4], 1 << 20, &len) || !len)
			return 2;
	} else {
		len = strlen(argv[4]);
	}
	p = map(argv[2], off, len, &base, &maplen);
	if (!p)
		return fail("map", argv[2]);
	for (i = 0; i < len; i++) {
		if (rd)
			printf("%02x%s", p[i], i + 1 < len ? " " : "\n");
		else
			p[i] = (uint8_t)argv[4][i];
	}
	munmap(base, maplen);
	return 0;
}

static int phys_of(const void *va, unsigned long long *pa)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t ent;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t at = (off_t)((uintptr_t)va / page * sizeof(ent));

	if (fd < 0)
		return -1;
	if (pread(fd, &ent, sizeof(ent), at) != sizeof(ent)) {
		close(fd);
		return -1;
	}
	close(fd);
	if (!(ent & (1ULL << 63)) || !(ent & ((1ULL << 55) - 1))) {
		errno = ENXIO;	/* not present, or no PFN (not root) */
		return -1;
	}
	*pa = (ent & ((1ULL << 55) - 1)) * page + (uintptr_t)va % page;
	return 0;
}

static int do_buffer(int argc, char **argv)
{
	unsigned long long len, secs, pa;
	volatile uint8_t *buf;
	size_t i, n;
	time_t until;

	if (argc != 4 || parse(argv[2], 4096, &len) || !len ||
	    parse(argv[3], 3600, &secs))
		return 2;
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || mlock((void *)buf, 4096))
		return fail("mlock", argv[2]);
	memset((void *)buf, 0, 4096);
	if (phys_of((const void *)buf, &pa))
		return fail("pagemap", "/proc/self/pagemap");
	printf("phys 0x%llx\n", pa);
	fflush(stdout);
	until = time(NULL) + (time_t)secs;
	while (time(NULL) <= until) {
		for (n = 0; n < len && buf[n]; n++)
			;
		if (n) {
			usleep(100000);	/* let the whole write land */
			printf("got");
			for (i = 0; i < len && buf[i]; i++)
				printf(" %02x", buf[i]);
			printf("\n");
			fflush(stdout);
			while (time(NULL) <= until)
				sleep(1);
			return 0;
		}
		usleep(20000);
	}
	printf("timeout\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "read") || !strcmp(argv[1], "write")))
		return do_rw(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "buffer"))
		return do_buffer(argc, argv);
	fprintf(stderr, "usage: guestmem read FILE OFF LEN | write FILE OFF TEXT | "
		"buffer LEN SECONDS\n");
	return 2;
}
