# lendfs - top-level Makefile.
#
#   make            build/lendfs, build/lendfs-dma, the core library
#   make deps       install the Debian packages (idempotent)
#   make run        build and mount the demo cluster at ./mnt (foreground)
#   make check      -Werror build, cmocka unit tests, bats on a real mount,
#                   then the unit and bats suites again under ASan+UBSan
#
# Out-of-tree builds: BUILD=dir (default build); SANITIZE=1 adds
# AddressSanitizer and UndefinedBehaviorSanitizer.

BUILD ?= build
CC ?= cc
PREFIX ?= /usr/local
VERSION := 0.1.0

PKGS := fuse3 sqlite3 inih json-c libudev libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -DLENDFS_VERSION='"$(VERSION)"' \
	  -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wno-unused-parameter \
	  -Werror=implicit-function-declaration -pthread -Icore $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -pthread -lm

ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
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

.PHONY: all deps run check check-unit check-bats check-asan stress clean

all: $(BUILD)/lendfs $(TOOLS)

$(BUILD)/obj/tests/unit/%.o: CFLAGS += -DSRCDIR='"$(CURDIR)"'

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/lendfs: $(DAEMON_OBJS) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TOOLS): $(BUILD)/%: $(BUILD)/obj/lendfs/tools/%.o $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

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

check-bats: all
	LENDFS_BUILD=$(BUILD) bats --timing tests/bats

check-asan:
	$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 all check-unit
	@rm -rf build/asan/logs && mkdir -p build/asan/logs
	LENDFS_BUILD=build/asan \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:log_path=$(CURDIR)/build/asan/logs/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/build/asan/logs/ubsan \
		bats tests/bats
	@if ls build/asan/logs/* >/dev/null 2>&1; then \
		echo "sanitizer reports:"; cat build/asan/logs/*; exit 1; fi

check: deps
	@$(MAKE) --no-print-directory all check-unit
	@$(MAKE) --no-print-directory check-bats
	@$(MAKE) --no-print-directory check-asan

# kill -9 the daemon at random moments while lends run (issue 5)
STRESS_ITERATIONS ?= 1000
stress: all
	LENDFS_BUILD=$(BUILD) tests/stress/crash-loop.sh $(STRESS_ITERATIONS)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
