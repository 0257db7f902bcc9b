# lendfs - top-level Makefile.
#
#   make            build/lendfs, build/lendfs-dma, the core library
#   make deps       install the Debian packages (idempotent)
#   make run        build and mount the demo cluster at ./mnt (foreground)
#   make check      -Werror build, cmocka unit tests, bats on a real mount,
#                   then the unit and bats suites again under ASan+UBSan,
#                   then every fuzz target briefly (check-fuzz)
#   make check-vm   a real Linux guest under QEMU borrows a device
#                   (tests/guest, issue 20; in CI after check)
#   make check-slurm   the Slurm SPANK plugin against a real Slurm (part of
#                   check-bats; docs/SLURM.md)
#   make check-layers  no cycle between core/ modules, no function over 100
#                   lines (tests/tools/layers.py; part of check)
#   make check-linearize  the history checker's own tests (part of check)
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (docs/TESTING.md)
#   make tsan       unit tests and race bats under ThreadSanitizer
#   make soak       a million lend/return cycles, memory, descriptors, WAL
#                   and LUT/DMA usage checked flat (SOAK_CYCLES=N)
#   make check-powerloss  POWERLOSS_CUTS (200) power cuts under lendfs's
#                   state directory on powerfs, then one after every disk
#                   operation of a scenario (docs/TESTING.md)
#   make man        the man pages (scdoc) into $(BUILD)/man
#   make install    PREFIX=/usr/local, DESTDIR=; make uninstall (see below)
#   make check-deb  build, lintian, install, use and purge the Debian package
#
# Out-of-tree builds: BUILD=dir (default build); SANITIZE=1 adds
# AddressSanitizer and UndefinedBehaviorSanitizer.

BUILD ?= build
CC ?= cc
PREFIX ?= /usr/local
VERSION := 0.1.0

PKGS := fuse3 sqlite3 inih json-c libudev libsystemd libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -DLENDFS_VERSION='"$(VERSION)"' \
	  -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wno-unused-parameter \
	  -Werror=implicit-function-declaration -pthread -Icore $(PKG_CFLAGS)
# The ZooKeeper C client has no pkg-config file.  Without THREADED its
# synchronous calls are not declared (hence -Werror=implicit-...).
CFLAGS += -DTHREADED
LDLIBS += $(PKG_LIBS) -lzookeeper_mt -pthread -lm

ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
# SANITIZE=fuzz (clang only): ASan+UBSan and libFuzzer coverage, for make fuzz.
# Warnings are the gcc build's job: clang-only ones must not stop fuzzing.
ifeq ($(SANITIZE),fuzz)
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=all -Wno-error
endif
# SANITIZE=thread: ThreadSanitizer, for make tsan.  TSan does not model
# fences (-Wtsan): the sim fabric's seqlock readers are other processes.
ifeq ($(SANITIZE),thread)
CFLAGS += -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
LDFLAGS += -fsanitize=thread
endif

CORE_SRCS := $(sort $(wildcard core/*.c))
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/liblendfs-core.a
DAEMON_SRCS := $(sort $(wildcard lendfs/*.c))
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_SRCS := $(sort $(wildcard lendfs/tools/*.c))
TOOLS := $(TOOL_SRCS:lendfs/tools/%.c=$(BUILD)/%)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps run check check-unit check-bats check-asan check-cluster check-vm stress clean \
	fuzz fuzz-build check-fuzz tsan check-layers check-powerloss check-linearize \
	check-slurm

all: $(BUILD)/lendfs $(TOOLS)

$(BUILD)/obj/tests/unit/%.o: CFLAGS += -DSRCDIR='"$(CURDIR)"'

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/lendfs: $(DAEMON_OBJS) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TOOLS): $(BUILD)/%: $(BUILD)/obj/lendfs/tools/%.o $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Test helpers, built with the daemon: tests/tools/racer.c (races.bats),
# tests/tools/powerfs.c (powerfs.bats, powerloss.bats: docs/TESTING.md).
TEST_TOOLS := $(BUILD)/racer $(BUILD)/powerfs
all: $(TEST_TOOLS)

include tests/zk/Makefile.inc
all: $(ZK_TOOLS)
$(TEST_TOOLS): $(BUILD)/%: $(BUILD)/obj/tests/tools/%.o $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The Slurm SPANK plugin (contrib/slurm/, docs/SLURM.md): loaded by slurmd,
# slurmstepd, sbatch, salloc and srun, which provide Slurm's functions, so
# it links no libslurm.  Never sanitized: those programs are not.
SPANK_SRCS := $(sort $(wildcard contrib/slurm/*.c))
SPANK_OBJS := $(SPANK_SRCS:%.c=$(BUILD)/obj/%.o)
SPANK_CFLAGS = $(filter-out -fsanitize%,$(CFLAGS)) -fPIC
$(SPANK_OBJS): $(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SPANK_CFLAGS) -MMD -MP -c -o $@ $<
$(BUILD)/lendfs_spank.so: $(SPANK_OBJS)
	$(CC) $(filter-out -fsanitize%,$(LDFLAGS)) -shared -o $@ $^
all: $(BUILD)/lendfs_spank.so
# ... and its pure part again, built like the rest (sanitizers, fuzzer
# coverage), for its unit test and fuzz target
$(BUILD)/obj/contrib/slurm/%.inst.o: contrib/slurm/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<
$(BUILD)/obj/tests/unit/test_spank_lend.o $(BUILD)/obj/tests/fuzz/fuzz_spank.o: \
	CFLAGS += -Icontrib/slurm
$(BUILD)/tests/test_spank_lend $(BUILD)/fuzz_spank: $(BUILD)/obj/contrib/slurm/spank_lend.inst.o

# test_inventory_udev drives a umockdev test bed (libumockdev)
UMOCKDEV_CFLAGS := $(shell pkg-config --cflags umockdev-1.0 2>/dev/null)
UMOCKDEV_LIBS := $(shell pkg-config --libs umockdev-1.0 2>/dev/null)
$(BUILD)/obj/tests/unit/test_inventory_udev.o: CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/tests/test_inventory_udev: LDLIBS += $(UMOCKDEV_LIBS)

$(UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(CORE_LIB),$^) $(CORE_LIB) \
		$(LDLIBS) -lcmocka

# Pure parts of the daemon with unit tests of their own.
DAEMON_PURE_OBJS := $(addprefix $(BUILD)/obj/lendfs/,path.o attr_device.o attr_vm.o attr_compo.o \
		      attr_host.o attr_fabric.o)
$(BUILD)/obj/tests/unit/test_path.o: CFLAGS += -Ilendfs
$(BUILD)/tests/test_path: $(DAEMON_PURE_OBJS)

# ---- fuzzing: clang libFuzzer targets of tests/fuzz/ -----------------------
#   make fuzz          build into build/fuzz/, run each for FUZZ_SECONDS
#   make check-fuzz    the same for FUZZ_CHECK_SECONDS each (part of check)
# Both first replay tests/fuzz/regressions/TARGET/* (see tests/fuzz/run.sh).
FUZZ_SECONDS ?= 20
FUZZ_CHECK_SECONDS ?= 10
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/%)

$(BUILD)/obj/tests/fuzz/%.o: CFLAGS += -Ilendfs
$(FUZZ_BINS): $(BUILD)/%: $(BUILD)/obj/tests/fuzz/%.o $(CORE_LIB)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer,address,undefined -o $@ \
		$(filter-out $(CORE_LIB),$^) $(CORE_LIB) $(LDLIBS)
$(BUILD)/fuzz_path: $(DAEMON_PURE_OBJS)

fuzz-build: $(FUZZ_BINS)

# ---- ThreadSanitizer: make tsan ---------------------------------------------
# Core, daemon and unit tests built with -fsanitize=thread in build/tsan; the
# unit tests and the race bats files run against it.  Any report fails.
# the races of one daemon, and distributed mode (three daemons, ZooKeeper)
TSAN_BATS ?= tests/bats/race.bats tests/bats/races.bats \
	tests/bats/cluster.bats tests/bats/cluster_lease.bats

tsan:
	@TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp \
		$(MAKE) --no-print-directory BUILD=build/tsan SANITIZE=thread \
		all check-unit
	@rm -rf build/tsan/logs && mkdir -p build/tsan/logs
	LENDFS_BUILD=build/tsan SANITIZE=thread \
	TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:log_path=$(CURDIR)/build/tsan/logs/tsan \
		bats --timing $(TSAN_BATS)
	@if ls build/tsan/logs/* >/dev/null 2>&1; then \
		echo "ThreadSanitizer reports:"; cat build/tsan/logs/*; exit 1; fi

fuzz check-fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang SANITIZE=fuzz \
		fuzz-build
	@tests/fuzz/run.sh build/fuzz \
		$(if $(filter fuzz,$@),$(FUZZ_SECONDS),$(FUZZ_CHECK_SECONDS))

deps:
	@contrib/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p mnt $(BUILD)/run
	@echo "lendfs: mounting the demo cluster (conf/demo.ini) at ./mnt; Ctrl-C unmounts."
	@echo "  try:  cat mnt/devices/nodeA:0000:65:00.0/state"
	@echo "        echo nodeB > mnt/devices/nodeA:0000:65:00.0/borrower"
	@echo "        cat mnt/lends; cat mnt/devices/nodeA:0000:65:00.0/path"
	$(BUILD)/lendfs -f -c conf/demo.ini --state $(BUILD)/run/state.db \
		--run-dir $(BUILD)/run/fabric mnt

check-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# Layering (docs/TESTING.md): the self-test first shows the check can fail
# (a synthetic cycle and a 101-line function), then the tree is checked.
check-layers: all
	python3 tests/tools/layers.py --self-test --cc "$(CC)"
	python3 tests/tools/layers.py --build $(BUILD)

# The linearizability checker of the history test (docs/TESTING.md):
# histories that must pass and histories that must fail; no ZooKeeper.
check-linearize:
	python3 tests/tools/test_linearize.py

check-bats: all
	LENDFS_BUILD=$(BUILD) bats --timing tests/bats

# A real guest (issue 20, docs/VM.md): a static helper and an initramfs
# of busybox-static for Debian's kernel, then tests/guest/*.bats.
GUEST_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static
$(BUILD)/guest/guestmem: tests/guest/guestmem.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(GUEST_CFLAGS) -o $@ $<
$(BUILD)/guest/initramfs.gz: $(BUILD)/guest/guestmem tests/guest/init \
		tests/guest/mkinitramfs.sh
	sh tests/guest/mkinitramfs.sh $@ $(BUILD)/guest/guestmem

check-vm: all $(BUILD)/guest/initramfs.gz
	LENDFS_BUILD=$(BUILD) bats --timing tests/guest

# The Slurm SPANK plugin against a real munged, slurmctld and slurmd
# (tests/bats/slurm.bats, docs/SLURM.md; part of check-bats too)
check-slurm: all
	LENDFS_BUILD=$(BUILD) bats --timing tests/bats/slurm.bats

check-asan:
	$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 all check-unit
	@rm -rf build/asan/logs && mkdir -p build/asan/logs
	LENDFS_BUILD=build/asan LENDFS_CRASH_ITERATIONS=15 SANITIZE=1 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:log_path=$(CURDIR)/build/asan/logs/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/build/asan/logs/ubsan \
		bats tests/bats
	@if ls build/asan/logs/* >/dev/null 2>&1; then \
		echo "sanitizer reports:"; cat build/asan/logs/*; exit 1; fi

check: deps
	@$(MAKE) --no-print-directory all check-unit
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory check-linearize
	@$(MAKE) --no-print-directory check-bats
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-fuzz

# Distributed mode beyond tests/bats/cluster.bats (issue 7): a 3-node
# ZooKeeper ensemble whose leader is killed during a stream of lends,
# partitions and the history check (issue 17: network namespaces, root),
# and a short run of the cluster benchmark (its full run: make bench-cluster).
check-cluster: all $(BUILD)/bench/clusterbench
	LENDFS_BUILD=$(BUILD) bats --timing tests/cluster
	CLUSTER_BENCH_LENDS=200 CLUSTER_BENCH_VISIBLE=50 CLUSTER_BENCH_DOC=none \
		tests/bench/cluster.sh $(BUILD)

# A million lends (issue 17): SOAK_CYCLES lend/return cycles through a real
# mount; memory, descriptors, WAL and LUT/DMA usage sampled and checked
# flat (tests/stress/soak.sh, docs/PERFORMANCE.md "Soak").  Not in check.
SOAK_CYCLES ?= 1000000
$(BUILD)/stress/soak: $(BUILD)/obj/tests/stress/soak.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
all: $(BUILD)/stress/soak # built (and so compiled with -Werror) with the rest

.PHONY: soak
soak: all $(BUILD)/stress/soak
	SOAK_CYCLES=$(SOAK_CYCLES) tests/stress/soak.sh $(BUILD)

# Power cuts under the state directory (issue 17, docs/TESTING.md "Power
# loss (powerfs)"): POWERLOSS_CUTS cuts during concurrent lends and returns,
# then a cut after every disk operation of a fixed scenario.  make check
# runs a short count of both (tests/bats/powerloss.bats).
POWERLOSS_CUTS ?= 200
check-powerloss: all
	python3 tests/tools/powercut.py --build $(BUILD) --cuts $(POWERLOSS_CUTS)
	python3 tests/tools/powercut.py --build $(BUILD) --steps

# kill -9 the daemon at random moments while lends run (issue 5)
STRESS_ITERATIONS ?= 1000
stress: all
	LENDFS_BUILD=$(BUILD) tests/stress/crash-loop.sh $(STRESS_ITERATIONS)

# ---- installation (docs/ADMIN.md) -------------------------------------
#
#   make install [PREFIX=/usr/local] [DESTDIR=]    make uninstall
#
# The daemon goes to $(SBINDIR), lendctl, lendfs-dma and lendfs-wait to $(BINDIR).
# Paths the system looks in whatever the prefix is (Debian practice) do not
# follow PREFIX; each can be overridden: SYSCONFDIR (/etc), UDEVDIR and
# UDEVRULESDIR (/usr/lib/udev), SYSTEMDUNITDIR (/usr/lib/systemd/system).
# An existing $(SYSCONFDIR)/lendfs/lendfs.conf is never overwritten, and
# uninstall removes it only when it is still the shipped example.

INSTALL ?= install
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/lendfs
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
SYSCONFDIR ?= /etc
UDEVDIR ?= /usr/lib/udev
UDEVRULESDIR ?= $(UDEVDIR)/rules.d
SYSTEMDUNITDIR ?= /usr/lib/systemd/system
# Slurm's PluginDir on Debian (lendfs_spank.so; docs/SLURM.md)
SLURMPLUGINDIR ?= $(PREFIX)/lib/$(shell $(CC) -print-multiarch)/slurm-wlm

MAN_SRCS := $(sort $(wildcard docs/man/*.scd))
MANS := $(MAN_SRCS:docs/man/%.scd=$(BUILD)/man/%)
UDEV_RULES := $(sort $(wildcard udev-rules/*.rules))
UDEV_HELPER := $(wildcard udev-rules/lendfs-udev-helper)
CONF_EXAMPLE := conf/lendfs.conf.example
ABI_DOCS := $(sort $(wildcard docs/ABI/*))

.PHONY: man install uninstall

man: $(MANS)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	scdoc <$< >$@.tmp && mv $@.tmp $@

install: all man
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0755 $(BUILD)/lendfs $(DESTDIR)$(SBINDIR)/lendfs
	$(INSTALL) -m 0755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0755 contrib/lendctl $(DESTDIR)$(BINDIR)/lendctl
	$(INSTALL) -d $(DESTDIR)$(SLURMPLUGINDIR)
	$(INSTALL) -m 0644 $(BUILD)/lendfs_spank.so $(DESTDIR)$(SLURMPLUGINDIR)/
	$(INSTALL) -d $(DESTDIR)$(UDEVRULESDIR)
	$(if $(UDEV_RULES),$(INSTALL) -m 0644 $(UDEV_RULES) $(DESTDIR)$(UDEVRULESDIR)/)
	$(if $(UDEV_HELPER),$(INSTALL) -m 0755 $(UDEV_HELPER) $(DESTDIR)$(UDEVDIR)/)
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's#/usr/sbin/lendfs#$(SBINDIR)/lendfs#' \
	    -e 's#/etc/lendfs/#$(SYSCONFDIR)/lendfs/#g' contrib/lendfs.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/lendfs.service.tmp
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/lendfs.service.tmp
	mv $(DESTDIR)$(SYSTEMDUNITDIR)/lendfs.service.tmp \
		$(DESTDIR)$(SYSTEMDUNITDIR)/lendfs.service
	$(INSTALL) -d $(DESTDIR)$(SYSCONFDIR)/lendfs
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf ]; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf"; \
	else \
		echo "$(INSTALL) -m 0644 $(CONF_EXAMPLE) $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf"; \
		$(INSTALL) -m 0644 $(CONF_EXAMPLE) $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf; \
	fi
	@set -e; for m in $(MANS); do \
		s=$${m##*.}; \
		echo "$(INSTALL) -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/"; \
		$(INSTALL) -d $(DESTDIR)$(MANDIR)/man$$s; \
		$(INSTALL) -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; \
	done
	$(INSTALL) -d $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0644 contrib/completion/lendfs contrib/completion/lendctl \
		$(DESTDIR)$(BASHCOMPDIR)/
	$(INSTALL) -d $(DESTDIR)$(DOCDIR)/ABI $(DESTDIR)$(DOCDIR)/examples/ansible
	$(INSTALL) -m 0644 $(ABI_DOCS) $(DESTDIR)$(DOCDIR)/ABI/
	$(INSTALL) -m 0644 conf/demo.ini $(CONF_EXAMPLE) \
		$(wildcard udev-rules/*.example contrib/lendfs-udev.conf) \
		$(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 contrib/ansible/lend.yml contrib/ansible/inventory \
		contrib/ansible/README.md $(DESTDIR)$(DOCDIR)/examples/ansible/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/lendfs $(DESTDIR)$(BINDIR)/lendctl \
		$(TOOLS:$(BUILD)/%=$(DESTDIR)$(BINDIR)/%) \
		$(UDEV_RULES:udev-rules/%=$(DESTDIR)$(UDEVRULESDIR)/%) \
		$(UDEV_HELPER:udev-rules/%=$(DESTDIR)$(UDEVDIR)/%) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/lendfs.service \
		$(DESTDIR)$(SLURMPLUGINDIR)/lendfs_spank.so \
		$(MAN_SRCS:docs/man/%.scd=$(DESTDIR)$(MANDIR)/man*/%) \
		$(DESTDIR)$(BASHCOMPDIR)/lendfs $(DESTDIR)$(BASHCOMPDIR)/lendctl
	rm -rf $(DESTDIR)$(DOCDIR)
	@if cmp -s $(CONF_EXAMPLE) $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf; then \
		echo "rm -f $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf"; \
		rm -f $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/lendfs 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf ]; then \
		echo "uninstall: keeping $(DESTDIR)$(SYSCONFDIR)/lendfs/lendfs.conf (changed)"; \
	fi

# ---- the Debian package (debian/, docs/ADMIN.md "The Debian package") ----
#   make check-deb   as root: dpkg-buildpackage of a copy of the tree,
#                    lintian, apt-get install of the .deb into this machine,
#                    a mount with the installed daemon and config, apt-get
#                    purge (tests/pkg/deb.bats).  Not part of check.
.PHONY: check-deb
check-deb:
	bats --timing tests/pkg/deb.bats

# ---- benchmarks (tests/bench/, docs/PERFORMANCE.md) -------------------------
#   make bench     every figure next to its floor, measured in the same run;
#                  prints the table and regenerates docs/PERFORMANCE.md
#                  (BENCH_ONLY="read tree lend" by default: a subset runs
#                  only those rows and keeps the others of the file;
#                  tests/bench/run.sh has the knobs)
BENCH_TOOLS := $(addprefix $(BUILD)/bench/,readloop lendloop mounttime floorfs clusterbench pollbench compoloop)

$(BUILD)/bench/floorfs: tests/bench/floorfs.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c tests/bench/clock.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -pthread

.PHONY: bench bench-cluster bench-compo
bench: all $(BENCH_TOOLS)
	tests/bench/run.sh $(BUILD)

# the composition rows of make bench alone (tests/bench/compo.sh)
bench-compo: all $(BUILD)/bench/compoloop $(BUILD)/bench/mounttime
	tests/bench/compo.sh $(BUILD)

# distributed mode: lend latency and visibility against a zoo_multi floor
bench-cluster: all $(BENCH_TOOLS)
	tests/bench/cluster.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
