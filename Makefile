# portshare build. `make` builds everything into build/; `make test` runs every test
# (plain build, then once more under AddressSanitizer + UndefinedBehaviorSanitizer);
# `make run` starts the daemon with two demo apps. SAN=1 BUILD=build-asan builds the
# sanitizer variant. `make fuzz` builds the libFuzzer targets of fuzz/ into build-fuzz/
# (clang, FUZZ=1) and runs each for FUZZ_SECONDS.

BUILD ?= build
CC ?= cc
LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -g -fPIC -Iinclude -Isrc/common -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1
WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
ifeq ($(FUZZ),1)
CC := clang
OPT := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-DPS_SANITIZE=1
LDSAN := -fsanitize=fuzzer,address,undefined
else ifeq ($(SAN),1)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DPS_SANITIZE=1
LDSAN := -fsanitize=address,undefined
else
OPT := -O2
LDSAN :=
endif
CFLAGS := $(CFLAGS_COMMON) $(OPT) $(WARN) $(EXTRA_CFLAGS)
LDFLAGS := $(LDSAN) $(EXTRA_LDFLAGS)

COMMON_SRC := $(wildcard src/common/*.c)
# What the common objects link against: the TLS record layer (src/common/tls_record.c) is
# built on GnuTLS's crypto API. Every program that links them, or libportshare.a, adds it.
COMMON_LIBS := -lgnutls
LIB_SRC := $(wildcard src/lib/*.c)
DAEMON_SRC := $(wildcard src/daemon/*.c)
CTL_SRC := $(wildcard src/ctl/*.c)
# src/proxy/: the adapters for unmodified apps, three programs over the same objects
PROXY_MAINS := src/proxy/proxy_main.c src/proxy/run_main.c src/proxy/apps_main.c
# portshare-apps' own objects: its app definitions, the apps' processes, libportshare apps
APPS_SRC := src/proxy/apps_def.c src/proxy/apps_proc.c src/proxy/apps_native.c
# and what it takes from portsharectl for libportshare apps: commands (grant) and the status
APPS_CTL_SRC := src/ctl/ctl.c src/ctl/json.c
PROXY_SRC := $(filter-out $(PROXY_MAINS) $(APPS_SRC),$(wildcard src/proxy/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
LLHTTP_C := llhttp.c api.c http.c

OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LLHTTP_OBJ := $(patsubst %.c,$(BUILD)/obj/llhttp/%.o,$(LLHTTP_C))
COMMON_OBJ := $(call OBJ,$(COMMON_SRC)) $(LLHTTP_OBJ)
LIB_OBJ := $(call OBJ,$(LIB_SRC))

BINS := $(BUILD)/bin/portshared $(BUILD)/bin/portsharectl $(BUILD)/bin/portshare-hello \
	$(BUILD)/bin/portshare-static $(BUILD)/bin/portshare-upload-echo $(BUILD)/bin/portshare-proxy $(BUILD)/bin/portshare-apps \
	$(BUILD)/bin/portshare-run
LIBS := $(BUILD)/lib/libportshare.a $(BUILD)/lib/libportshare.so $(BUILD)/lib/pkgconfig/portshare.pc
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TEST_BINS := $(BUILD)/tests/testworker $(BUILD)/tests/controller $(BUILD)/tests/loadclient
FUZZ_BUILD := build-fuzz
FUZZ_TARGETS := fuzz_head fuzz_protocol fuzz_body fuzz_tls_record fuzz_log_record
FUZZ_SECONDS ?= 300

.PHONY: all deps run test test-asan unit clean format fuzz fuzz-build fuzz-seeds install uninstall \
	deps-package deb package-test
all: $(BINS) $(LIBS) $(UNIT_BINS) $(TEST_BINS)

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(OPT) -w -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The static library is one relocatable object in which only the public API (ps_*, as
# scripts/libportshare.map exports from the .so) stays global: our internal names and
# llhttp's are made local, so they cannot clash with an application's own (one that
# links llhttp itself, say). Undefined symbols (libc, the sanitizers' __asan_*) stay.
$(BUILD)/obj/libportshare.o: $(LIB_OBJ) $(COMMON_OBJ)
	$(CC) -r -nostdlib -o $@.r $^
	objcopy --wildcard --keep-global-symbol='ps_*' $@.r $@
	rm -f $@.r

$(BUILD)/lib/libportshare.a: $(BUILD)/obj/libportshare.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $<

$(BUILD)/lib/libportshare.so.1: $(LIB_OBJ) $(COMMON_OBJ) scripts/libportshare.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libportshare.so.1 -Wl,--version-script=scripts/libportshare.map \
		-o $@ $(LIB_OBJ) $(COMMON_OBJ) $(LDFLAGS) $(COMMON_LIBS)

$(BUILD)/lib/libportshare.so: $(BUILD)/lib/libportshare.so.1
	ln -sf libportshare.so.1 $@

$(BUILD)/lib/pkgconfig/portshare.pc: scripts/portshare.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(abspath $(BUILD))|' -e 's|@LIBDIR@|$(abspath $(BUILD))/lib|' \
		-e 's|@INCLUDEDIR@|$(abspath include)|' $< > $@

$(BUILD)/bin/portshared: $(call OBJ,$(DAEMON_SRC)) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS) -lseccomp -pthread

$(BUILD)/bin/portsharectl: $(call OBJ,$(CTL_SRC)) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

$(BUILD)/bin/portshare-hello: $(call OBJ,examples/hello.c) $(BUILD)/lib/libportshare.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

$(BUILD)/bin/portshare-static: $(call OBJ,examples/static.c) $(BUILD)/lib/libportshare.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

$(BUILD)/bin/portshare-upload-echo: $(call OBJ,examples/upload_echo.c) $(BUILD)/lib/libportshare.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

# The proxy's objects use llhttp (reply.c) from the common objects, and libportshare's
# public API only, from the static library whose internal names are hidden.
$(BUILD)/bin/portshare-proxy: $(call OBJ,src/proxy/proxy_main.c $(PROXY_SRC)) $(BUILD)/lib/libportshare.a $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS) -pthread

$(BUILD)/bin/portshare-run: $(call OBJ,src/proxy/run_main.c $(PROXY_SRC)) $(BUILD)/lib/libportshare.a $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS) -pthread

$(BUILD)/bin/portshare-apps: $(call OBJ,src/proxy/apps_main.c $(APPS_SRC) $(PROXY_SRC) $(APPS_CTL_SRC)) $(COMMON_OBJ) $(BUILD)/lib/libportshare.a $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS) -pthread

# the stories' own libportshare programs: a worker with test behaviours, a demand-start controller
$(BUILD)/tests/testworker $(BUILD)/tests/controller: $(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o \
		$(BUILD)/lib/libportshare.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

$(BUILD)/tests/loadclient: $(call OBJ,tests/soak/loadclient.c)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS)

# Unit tests may #include the .c they test; they link the common objects and cmocka,
# and go through the failing allocator of tests/unit/failalloc.c (failalloc.h).
FAILALLOC_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=strdup,--wrap=strndup \
	-Wl,--wrap=fopen,--wrap=fclose
$(BUILD)/tests/test_%: $(call OBJ,tests/unit/test_%.c) $(call OBJ,tests/unit/failalloc.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(FAILALLOC_WRAP) -lcmocka $(COMMON_LIBS)
# test_store also fails the settings file's system calls one at a time (open, write, fsync,
# close, rename: tests/unit/test_store.c), and links config.c for config_parse_addr.
$(BUILD)/tests/test_store: FAILALLOC_WRAP += -Wl,--wrap=open,--wrap=write,--wrap=fsync,--wrap=close,--wrap=rename
$(BUILD)/tests/test_store: $(call OBJ,src/daemon/config.c)
# test_certs includes certs.c and links the atomic file writes of store.c (and config.c,
# which store.c's endpoints need).
$(BUILD)/tests/test_certs: $(call OBJ,src/daemon/store.c src/daemon/config.c)

# libFuzzer targets: the target's own object and the common code, no main of ours.
$(BUILD)/fuzz/fuzz_%: $(call OBJ,fuzz/fuzz_%.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

$(BUILD)/fuzz/seed_protocol: $(call OBJ,fuzz/seed_protocol.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(COMMON_LIBS)

fuzz-build: deps
	@$(MAKE) --no-print-directory FUZZ=1 BUILD=$(FUZZ_BUILD) $(addprefix $(FUZZ_BUILD)/fuzz/,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS on its seeds; new inputs go to build-fuzz/corpus/, never
# into fuzz/seeds/; crashes to build-fuzz/crashes/TARGET/.
fuzz: fuzz-build
	@failed=0; for t in $(FUZZ_TARGETS); do \
		sh fuzz/run.sh $(FUZZ_BUILD) $$t $(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus/$$t || failed=1; \
	done; exit $$failed

# Rewrites fuzz/seeds/fuzz_protocol/ from the encoders (after a protocol change).
fuzz-seeds: deps
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD)/plain $(FUZZ_BUILD)/plain/fuzz/seed_protocol
	$(FUZZ_BUILD)/plain/fuzz/seed_protocol fuzz/seeds/fuzz_protocol

run: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(BUILD)

# The whole suite, plain then sanitized, then each fuzz target for a while; the last
# line is the total of all.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory all BUILD=build-asan SAN=1
	@$(MAKE) --no-print-directory fuzz-build
	@sh tests/run.sh build build-asan $(FUZZ_BUILD)

unit: all
	@sh tests/run.sh --unit-only $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# make install [PREFIX=/usr/local] [DESTDIR=]: the daemon and portshare-apps in sbin/, portsharectl, the
# examples, portshare-proxy and portshare-run in bin/, the libraries and a portshare.pc
# with the installed paths in lib/, the header, the man pages, the systemd units (in SYSTEMD_UNIT_DIR) and, when there is none
# yet, the config file (SYSCONFDIR/portshare/portshare.conf); the unit names the installed
# daemon and config. make uninstall removes exactly those files (INSTALLED lists them), the
# config only when it is still the one install wrote. The Debian package sets
# PREFIX=/usr LIBDIR=/usr/lib/<multiarch> SYSCONFDIR=/etc SYSTEMD_UNIT_DIR=/lib/systemd/system
# (debian/rules).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
SYSCONFDIR ?= $(PREFIX)/etc
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
INST := $(DESTDIR)$(PREFIX)
LIB := $(DESTDIR)$(LIBDIR)
UNIT := $(DESTDIR)$(SYSTEMD_UNIT_DIR)/portshared.service
APPS_UNIT := $(DESTDIR)$(SYSTEMD_UNIT_DIR)/portshare-apps.service
CONF := $(DESTDIR)$(SYSCONFDIR)/portshare/portshare.conf
LOGROTATE := $(DESTDIR)$(SYSCONFDIR)/logrotate.d/portshare
# contrib/ names the Debian paths; an install elsewhere gets its own
INSTALL_PATHS := sed -e 's|/usr/sbin/|$(PREFIX)/sbin/|g' -e 's|/etc/portshare/|$(SYSCONFDIR)/portshare/|g'
INSTALLED := sbin/portshared sbin/portshare-apps bin/portsharectl bin/portshare-hello bin/portshare-static \
	bin/portshare-upload-echo bin/portshare-proxy bin/portshare-run include/portshare.h share/man/man8/portshared.8 \
	share/man/man8/portsharectl.8 share/man/man8/portshare-apps.8 share/man/man5/portshare.conf.5 share/man/man3/libportshare.3 \
	share/man/man1/portshare-hello.1 share/man/man1/portshare-static.1 \
	share/man/man1/portshare-upload-echo.1 share/man/man1/portshare-proxy.1 share/man/man1/portshare-run.1

LIB_INSTALLED := libportshare.so.1 libportshare.so libportshare.a pkgconfig/portshare.pc

install: $(BINS) $(LIBS)
	install -d $(INST)/sbin $(INST)/bin $(LIB)/pkgconfig $(INST)/include \
		$(INST)/share/man/man1 $(INST)/share/man/man3 $(INST)/share/man/man5 $(INST)/share/man/man8
	install -m 755 $(BUILD)/bin/portshared $(BUILD)/bin/portshare-apps $(INST)/sbin/
	install -m 755 $(BUILD)/bin/portsharectl $(BUILD)/bin/portshare-hello $(BUILD)/bin/portshare-static \
		$(BUILD)/bin/portshare-upload-echo $(BUILD)/bin/portshare-proxy $(BUILD)/bin/portshare-run $(INST)/bin/
	install -m 644 $(BUILD)/lib/libportshare.so.1 $(BUILD)/lib/libportshare.a $(LIB)/
	ln -sf libportshare.so.1 $(LIB)/libportshare.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(PREFIX)/include|' \
		scripts/portshare.pc.in > $(LIB)/pkgconfig/portshare.pc
	install -m 644 include/portshare.h $(INST)/include/
	install -m 644 man/portshare-hello.1 man/portshare-static.1 man/portshare-upload-echo.1 \
		man/portshare-proxy.1 man/portshare-run.1 $(INST)/share/man/man1/
	install -m 644 man/libportshare.3 $(INST)/share/man/man3/
	install -m 644 man/portshare.conf.5 $(INST)/share/man/man5/
	install -m 644 man/portshared.8 man/portsharectl.8 man/portshare-apps.8 $(INST)/share/man/man8/
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSCONFDIR)/portshare $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 644 contrib/portshare.logrotate $(LOGROTATE)
	$(INSTALL_PATHS) contrib/portshared.service > $(UNIT) && chmod 644 $(UNIT)
	$(INSTALL_PATHS) contrib/portshare-apps.service > $(APPS_UNIT) && chmod 644 $(APPS_UNIT)
	[ -e $(CONF) ] || { $(INSTALL_PATHS) contrib/portshare.conf > $(CONF) && chmod 644 $(CONF); }

uninstall:
	rm -f $(addprefix $(INST)/,$(INSTALLED)) $(addprefix $(LIB)/,$(LIB_INSTALLED)) $(UNIT) $(APPS_UNIT) $(LOGROTATE)
	if $(INSTALL_PATHS) contrib/portshare.conf | cmp -s - $(CONF); then rm -f $(CONF); \
	elif [ -e $(CONF) ]; then echo "make uninstall: $(CONF) was changed; it stays"; fi
	-rmdir -p $(LIB)/pkgconfig $(INST)/share/man/man1 $(INST)/share/man/man3 $(INST)/share/man/man5 \
		$(INST)/share/man/man8 $(INST)/sbin $(INST)/bin $(INST)/include \
		$(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSCONFDIR)/portshare $(DESTDIR)$(SYSCONFDIR)/logrotate.d \
		2>/dev/null

# The Debian packages (debian/), built from a copy of the work tree into build-deb/, then
# lintian (an error fails); package-test installs them into a throwaway Debian 12 root
# (cached in build-deb/root-cache/), checks the unit, the user, the conffile, a served
# request and a binary upgrade, then removes and purges them (docs/PACKAGING.md). Neither
# is part of make test.
deps-package:
	@sh scripts/deps.sh package

deb: deps-package
	@sh scripts/deb.sh build-deb

package-test: deb
	@sh tests/package-test.sh build-deb

clean:
	rm -rf build build-asan $(FUZZ_BUILD) build-deb

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
