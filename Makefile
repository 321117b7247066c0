# connaudit - build everything under build/.
#   make            build the tool, the library and the Lua module
#   make test       every test (unit, real-kernel, Lua, fuzz smoke, bench smoke)
#   make demo       build, load, open sample connections in a netns, show counts
#   make vmtest     the kernel tests inside qemu on Debian's 6.1 kernel
#   make bench      benchmarks (not tests: nothing is timed in CI)
#   make bench-cluster  cluster propagation delay, query cost, Redis traffic
#   make install    PREFIX (default /usr/local) and DESTDIR honoured; make uninstall
#   make deb        Debian packages into build/deb/ (dpkg-buildpackage on a clean copy)
#   make ops-test   install, metrics, systemd units, non-root readers, bpftool
#   make postfix-test  a real Postfix asking `connaudit policyd` (in make test)
#   make bench-policyd the policy server's answers/s and latency; Postfix with and without it
#   make cluster-test  three namespaces as nodes sharing counts through Redis
#   make stress     randomized churn against the kernel, STRESS_EVENTS (100000) each
#   make valgrind   the unit tests and the command under memcheck
#   V=1 shows full commands; SANITIZE=1 builds with ASan/UBSan.

OUTPUT      ?= build
CC          ?= cc
CLANG       ?= clang
LLVM_STRIP  ?= llvm-strip
BPFTOOL     ?= bpftool
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH        := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')

# Evaluated lazily: scripts/deps may install pkg-config and libbpf first.
LIBBPF_CFLAGS = $(shell pkg-config --cflags libbpf)
LIBBPF_LIBS   = $(shell pkg-config --libs libbpf)
LUA_CFLAGS    = $(shell pkg-config --cflags lua5.4)
MHD_CFLAGS    = $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS      = $(shell pkg-config --libs libmicrohttpd)
HIREDIS_CFLAGS = $(shell pkg-config --cflags hiredis)
HIREDIS_LIBS   = $(shell pkg-config --libs hiredis)

WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -g -O2
CFLAGS   += $(WARN) -fPIC -Iinclude -Iuser -I$(OUTPUT) -D_GNU_SOURCE -DCA_VERSION=\"$(LIB_VERSION)\" \
            $(CPPFLAGS)
LDFLAGS  ?=
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
# UBSan only prints by default, and the scenario runner shows a passing
# scenario's output to no one: make any finding a failure.
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
endif

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# The library: one file per concern. loader.o embeds the BPF object.
LIB_SRCS := user/cidr.c user/services.c user/count.c user/handle.c \
            user/monitors.c user/rates.c \
            user/cluster_maps.c user/cluster_query.c user/cluster_sync.c \
            user/loader.c user/seed.c user/sysfs.c user/errors.c user/ports.c user/iter.c \
            user/batch.c user/textfile.c user/plan.c user/table.c
LIB_OBJS := $(patsubst user/%.c,$(OUTPUT)/obj/%.o,$(LIB_SRCS))
LIB_VERSION := 1.0.0
LIB_SONAME  := libconnaudit.so.$(firstword $(subst ., ,$(LIB_VERSION)))
CLI_SRCS := user/cli.c user/cli_load.c user/cli_count.c user/cli_inspect.c user/cli_metrics.c \
            user/cli_connections.c user/cli_policyd.c user/cli_policyd_listen.c \
            user/policy_request.c user/policy_rules.c \
            user/cli_health_log.c user/cli_watch.c \
            user/cli_cluster.c user/cluster_redis.c user/cluster_publish.c user/cluster_receive.c \
            user/cluster_view.c user/keytab.c
CLI_OBJS := $(patsubst user/%.c,$(OUTPUT)/obj/%.o,$(CLI_SRCS))

UNIT_TESTS := test_cidr test_services test_count test_iter test_ports test_monitors test_rates \
              test_policy_request test_policy_rules test_health_log \
              test_cluster_sync test_keytab
FUZZERS    := fuzz_cidr fuzz_services fuzz_monitors fuzz_policy_request fuzz_policy_rules \
              fuzz_cluster_sync
# The policy server's parsers: pure C, linked into the command, its unit
# tests and its fuzzers.
POLICY_OBJS := $(OUTPUT)/obj/policy_request.o $(OUTPUT)/obj/policy_rules.o

.PHONY: all lua-modules lua-modules-found deps test unit-test kernel-test cli-test lua-test ops-test postfix-test bench-policyd cluster-test bench-cluster fuzz-smoke fuzz demo demo-lua vmtest bench bench-smoke \
        install uninstall install-gen clean stress valgrind deb
.DELETE_ON_ERROR:
.SECONDARY:

all: $(OUTPUT)/connaudit $(OUTPUT)/libconnaudit.a $(OUTPUT)/libconnaudit.so lua-modules

# Installs missing Debian packages; fast and silent when nothing is missing.
# debian/rules empties DEPS_CHECK: dpkg-buildpackage checks Build-Depends.
DEPS_CHECK ?= scripts/deps test
deps:
	$(Q)$(DEPS_CHECK)

$(OUTPUT) $(OUTPUT)/obj $(OUTPUT)/tests $(OUTPUT)/lua/msys:
	$(Q)mkdir -p $@

$(OUTPUT)/vmlinux.h: | deps $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

# -mcpu=v3: the counters use compare-and-swap (kernel 5.12+).
$(OUTPUT)/connaudit.bpf.o: bpf/connaudit.bpf.c include/connaudit_abi.h $(OUTPUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
		-Iinclude -I$(OUTPUT) $(LIBBPF_CFLAGS) -Wall -Werror -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(OUTPUT)/connaudit.skel.h: $(OUTPUT)/connaudit.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name connaudit_bpf > $@

$(OUTPUT)/obj/%.o: user/%.c include/connaudit.h include/connaudit_abi.h $(wildcard user/*.h) \
		   $(OUTPUT)/connaudit.skel.h | $(OUTPUT)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LIBBPF_CFLAGS) -c $< -o $@

$(OUTPUT)/libconnaudit.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

# The shared library exports what connaudit.h declares and nothing else
# (the command and the Lua module link the static archive).
$(OUTPUT)/libconnaudit.map: include/connaudit.h | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q){ echo 'CONNAUDIT_1 {'; echo ' global:'; \
	  grep -o '\bca_[a-z0-9_]*(' $< | tr -d '(' | sort -u | sed 's/.*/  &;/'; \
	  echo ' local: *;'; echo '};'; } > $@

$(OUTPUT)/libconnaudit.so: $(LIB_OBJS) $(OUTPUT)/libconnaudit.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(LIB_SONAME) -Wl,--version-script=$(OUTPUT)/libconnaudit.map \
		$(LDFLAGS) $(LIB_OBJS) $(LIBBPF_LIBS) -o $@

# Only the command serves HTTP (metrics --listen): the library stays without it.
# Only the command talks to Redis (cluster): hiredis stays out of the library.
$(OUTPUT)/obj/cli_metrics.o: CFLAGS += $(MHD_CFLAGS)
$(OUTPUT)/obj/cli_cluster.o $(OUTPUT)/obj/cluster_redis.o $(OUTPUT)/obj/cluster_publish.o \
$(OUTPUT)/obj/cluster_receive.o: CFLAGS += $(HIREDIS_CFLAGS)
$(OUTPUT)/connaudit: $(CLI_OBJS) $(OUTPUT)/libconnaudit.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) $(MHD_LIBS) $(HIREDIS_LIBS) -o $@

# The Lua module, one build per Lua C API whose headers are installed:
# build/lua/VERSION/msys/audit.so, require('msys.audit') with
# LUA_CPATH='build/lua/VERSION/?.so;;'. 5.1 is built with LuaJIT's headers
# when present (rspamd, OpenResty), else PUC 5.1's: it loads in both. The
# pkg-config name of each version's headers, empty when not installed:
lua_pc_5.1 = $(firstword $(foreach p,luajit lua5.1,$(shell pkg-config --exists $(p) && echo $(p))))
lua_pc_5.3 = $(shell pkg-config --exists lua5.3 && echo lua5.3)
lua_pc_5.4 = lua5.4
LUA_VERSIONS = $(foreach v,5.1 5.3 5.4,$(if $(lua_pc_$(v)),$(v)))

# Which versions to build is decided after deps has run (a fresh machine
# gets the headers from it), so by a second make, which alone builds them.
lua-modules: $(OUTPUT)/libconnaudit.a | deps
	$(Q)$(MAKE) --no-print-directory lua-modules-found
lua-modules-found: $(foreach v,$(LUA_VERSIONS),$(OUTPUT)/lua/$(v)/msys/audit.so) \
		   $(OUTPUT)/lua/msys/audit.so

# --exclude-libs: export only the module's own symbols, not libconnaudit's.
$(OUTPUT)/lua/%/msys/audit.so: lua/audit.c lua/compat.h lua/msys_audit.h $(OUTPUT)/libconnaudit.a
	$(call msg,LUA,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Ilua $(shell pkg-config --cflags $(lua_pc_$*)) $(LIBBPF_CFLAGS) -shared \
		$(LDFLAGS) -Wl,--exclude-libs,ALL $< $(OUTPUT)/libconnaudit.a $(LIBBPF_LIBS) -o $@

# The 5.4 module where it has always been: LUA_CPATH='build/lua/?.so;;'.
$(OUTPUT)/lua/msys/audit.so: $(OUTPUT)/lua/5.4/msys/audit.so | $(OUTPUT)/lua/msys
	$(call msg,CP,$@)
	$(Q)cp $< $@

# ---- tests ----------------------------------------------------------------

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(OUTPUT)/libconnaudit.a $(wildcard tests/unit/*.h) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(filter %.o,$^) $(OUTPUT)/libconnaudit.a $(LDFLAGS) \
		-lcmocka $(LIBBPF_LIBS) -o $@
$(OUTPUT)/tests/test_policy_request $(OUTPUT)/tests/test_policy_rules: $(POLICY_OBJS)

# The health log belongs to the command, not the library: linked in on its own.
$(OUTPUT)/tests/test_health_log: tests/unit/test_health_log.c $(OUTPUT)/obj/cli_health_log.o \
				 $(OUTPUT)/libconnaudit.a | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(OUTPUT)/obj/cli_health_log.o $(OUTPUT)/libconnaudit.a $(LDFLAGS) \
		-lcmocka $(LIBBPF_LIBS) -o $@

# The cluster agent's table is the command's, not the library's.
$(OUTPUT)/tests/test_keytab: tests/unit/test_keytab.c user/keytab.c user/keytab.h | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< user/keytab.c $(LDFLAGS) -lcmocka -o $@

# The real-kernel scenarios; linked statically so the same binary runs in the VM.
KTEST_SRCS := tests/kernel/scenarios.c tests/kernel/netlib.c tests/kernel/truth.c \
              tests/kernel/churn.c tests/kernel/restarts.c tests/kernel/limits.c \
              tests/kernel/attacks.c tests/kernel/rates.c tests/kernel/table.c
$(OUTPUT)/tests/kernel_test: $(KTEST_SRCS) $(wildcard tests/kernel/*.h) $(LIB_SRCS) \
			     $(OUTPUT)/connaudit.skel.h | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/kernel $(LIBBPF_CFLAGS) $(KTEST_SRCS) $(LIB_SRCS) \
		$(LDFLAGS) $(if $(SANITIZE),$(LIBBPF_LIBS),-static -lbpf -lelf -lz) -o $@

# The churn scenarios of kernel_test at length: each prints its seed, events,
# wall time and mismatches (CONNAUDIT_SEED=N replays a run).
STRESS_EVENTS ?= 100000
stress: $(OUTPUT)/tests/kernel_test
	$(Q)CONNAUDIT_EVENTS=$(STRESS_EVENTS) CONNAUDIT_SCENARIO_SECONDS=3600 \
		$(OUTPUT)/tests/kernel_test churn/random churn/small-maps

valgrind: $(addprefix $(OUTPUT)/tests/,$(UNIT_TESTS)) $(OUTPUT)/tests/holdconns $(OUTPUT)/connaudit
	$(Q)tests/valgrind/run.sh $(OUTPUT)

# Holds listeners and connections open for the shell-level tests and demos.
$(OUTPUT)/tests/holdconns: tests/kernel/holdconns.c tests/kernel/netlib.c tests/kernel/netlib.h | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/kernel tests/kernel/holdconns.c tests/kernel/netlib.c $(LDFLAGS) -o $@

unit-test: $(addprefix $(OUTPUT)/tests/,$(UNIT_TESTS)) $(OUTPUT)/libconnaudit.so
	$(Q)for t in $(addprefix $(OUTPUT)/tests/,$(UNIT_TESTS)); do echo "== $$t"; $$t || exit 1; done
	$(Q)tests/unit/exports.sh $(OUTPUT)/libconnaudit.so include/connaudit.h

kernel-test: $(OUTPUT)/tests/kernel_test $(OUTPUT)/tests/holdconns $(OUTPUT)/connaudit
	$(Q)tests/kernel/run.sh $(OUTPUT)

# The command line: options per command, messages, --netns, JSON (root).
cli-test: $(OUTPUT)/connaudit
	$(Q)tests/cli/run.sh $(OUTPUT)

# SANITIZE=1: the Lua interpreters, haproxy and the programs the scripts
# compile must load the ASan runtime first (tests/sanitize/wrap says how):
# for lua-test, ops-test and bench-smoke.
SANITIZE_PATH = $(if $(filter 1,$(SANITIZE)),PATH="$(CURDIR)/tests/sanitize:$$PATH" \
		LUAROCKS_CONFIG="$(CURDIR)/tests/sanitize/luarocks.lua")
# tests/lua/host.c, the embedding host of test_host.lua, for each Lua the
# module is built for, linking that build.
$(OUTPUT)/tests/lua/host-%: tests/lua/host.c lua/compat.h lua/msys_audit.h $(OUTPUT)/lua/%/msys/audit.so
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Ilua $(shell pkg-config --cflags $(lua_pc_$*)) $< \
		-L$(OUTPUT)/lua/$*/msys -l:audit.so -Wl,-rpath,$(abspath $(OUTPUT)/lua/$*/msys) \
		$(LDFLAGS) $(shell pkg-config --libs $(lua_pc_$*)) -o $@

# One client session from a chosen address, for tests/lua/haproxy.sh.
$(OUTPUT)/tests/smtpclient: tests/lua/smtpclient.c tests/kernel/netlib.c tests/kernel/netlib.h | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/kernel tests/lua/smtpclient.c tests/kernel/netlib.c $(LDFLAGS) -o $@

lua-test: $(OUTPUT)/lua/msys/audit.so $(OUTPUT)/connaudit $(OUTPUT)/tests/holdconns \
	  $(foreach v,$(LUA_VERSIONS),$(OUTPUT)/tests/lua/host-$(v)) $(OUTPUT)/tests/smtpclient
	$(Q)$(SANITIZE_PATH) tests/lua/run.sh $(OUTPUT)
	$(Q)$(SANITIZE_PATH) tests/lua/haproxy.sh $(OUTPUT)

# Three namespaces as three nodes, a real redis-server on a UNIX socket.
cluster-test: $(OUTPUT)/connaudit $(OUTPUT)/tests/holdconns $(OUTPUT)/lua/msys/audit.so
	$(Q)$(SANITIZE_PATH) tests/cluster/run.sh $(OUTPUT)

# Needs root for most of it; what cannot run here says "skip".
ops-test: all $(OUTPUT)/tests/holdconns
	$(Q)$(SANITIZE_PATH) tests/ops/run.sh $(OUTPUT)

# A real Postfix in a namespace, asking `connaudit policyd` at connect time.
$(OUTPUT)/tests/smtpsession: tests/postfix/smtpsession.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -o $@

postfix-test: $(OUTPUT)/connaudit $(OUTPUT)/tests/smtpsession $(OUTPUT)/bench/policyd
	$(Q)tests/postfix/run.sh $(OUTPUT)

FUZZ_SRCS := user/cidr.c user/services.c user/textfile.c user/monitors.c user/errors.c user/policy_request.c \
             user/policy_rules.c user/cluster_sync.c user/plan.c
$(OUTPUT)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(FUZZ_SRCS) $(LIB_SRCS) $(OUTPUT)/connaudit.skel.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iuser -I$(OUTPUT) \
		-D_GNU_SOURCE $(LIBBPF_CFLAGS) $< $(FUZZ_SRCS) -o $@

# A short bounded run for `make test`; `make fuzz` runs each for 10M executions.
FUZZ_RUNS ?= 10000000
fuzz-smoke: $(addprefix $(OUTPUT)/fuzz/,$(FUZZERS))
	$(Q)for f in $(FUZZERS); do tests/fuzz/run.sh $(OUTPUT)/fuzz/$$f 200000 || exit 1; done
fuzz: $(addprefix $(OUTPUT)/fuzz/,$(FUZZERS))
	$(Q)for f in $(FUZZERS); do tests/fuzz/run.sh $(OUTPUT)/fuzz/$$f $(FUZZ_RUNS) || exit 1; done

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory unit-test
	$(Q)$(MAKE) --no-print-directory kernel-test
	$(Q)$(MAKE) --no-print-directory cli-test
	$(Q)$(MAKE) --no-print-directory lua-test
	$(Q)$(MAKE) --no-print-directory cluster-test
	$(Q)$(MAKE) --no-print-directory ops-test
	$(Q)$(MAKE) --no-print-directory postfix-test
	$(Q)$(MAKE) --no-print-directory fuzz-smoke
	$(Q)$(MAKE) --no-print-directory bench-smoke
	@echo "make test: all suites passed"

# ---- demo, VM, benchmarks --------------------------------------------------

demo: all $(OUTPUT)/tests/holdconns
	$(Q)scripts/demo $(OUTPUT)

vmtest: deps
	$(Q)scripts/deps vm
	$(Q)$(MAKE) --no-print-directory $(OUTPUT)/tests/kernel_test $(OUTPUT)/connaudit.bpf.o
	$(Q)scripts/vmtest $(OUTPUT)

# The churn benchmark's floor: empty programs on the same tracepoint.
$(OUTPUT)/bench/floor.bpf.o: bench/floor.bpf.c $(OUTPUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUTPUT) $(LIBBPF_CFLAGS) \
		-Wall -Werror -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(OUTPUT)/bench/floor.skel.h: $(OUTPUT)/bench/floor.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name floor_bpf > $@

$(OUTPUT)/bench/floor: bench/floor.c $(OUTPUT)/bench/floor.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -I$(OUTPUT)/bench $(LIBBPF_CFLAGS) $< $(LDFLAGS) $(LIBBPF_LIBS) -o $@

$(OUTPUT)/bench/lua_vs_c: bench/lua_vs_c.c lua/audit.c lua/compat.h lua/msys_audit.h $(OUTPUT)/libconnaudit.a
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Ilua $(LUA_CFLAGS) $(LIBBPF_CFLAGS) bench/lua_vs_c.c lua/audit.c \
		$(OUTPUT)/libconnaudit.a $(LDFLAGS) $(shell pkg-config --libs lua5.4) $(LIBBPF_LIBS) -o $@

# The policy server under load: answers/s and latency over 1 and 32 connections.
$(OUTPUT)/bench/policyd: bench/policyd.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -lpthread -o $@

bench-policyd: all $(OUTPUT)/bench/policyd
	$(Q)bench/policyd.sh $(OUTPUT)
	$(Q)bench/postfix.sh $(OUTPUT)

# The cluster benchmark (bench/cluster.sh): propagation delay, query cost,
# Redis traffic and agent CPU; BENCH_QUICK=1 for a smoke run.
$(OUTPUT)/bench/cluster: bench/cluster.c bench/bench.h tests/kernel/netlib.c tests/kernel/netlib.h \
			 $(OUTPUT)/libconnaudit.a
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Ibench -Itests/kernel $(LIBBPF_CFLAGS) bench/cluster.c tests/kernel/netlib.c \
		$(OUTPUT)/libconnaudit.a $(LDFLAGS) $(LIBBPF_LIBS) -o $@

bench-cluster: all $(OUTPUT)/bench/cluster
	$(Q)bench/cluster.sh $(OUTPUT)

demo-lua: all $(OUTPUT)/tests/holdconns
	$(Q)scripts/lua-policy-demo $(OUTPUT)

# Checks that the harness works; times nothing that any test asserts on.
bench-smoke: all $(OUTPUT)/bench/lua_vs_c $(OUTPUT)/bench/floor $(OUTPUT)/bench/policyd
	$(Q)scripts/deps bench
	$(Q)BENCH_QUICK=1 bench/policyd.sh $(OUTPUT) > $(OUTPUT)/bench-policyd-smoke.log 2>&1 || \
		{ cat $(OUTPUT)/bench-policyd-smoke.log; exit 1; }
	$(Q)$(SANITIZE_PATH) BENCH_QUICK=1 bench/run.sh $(OUTPUT) > $(OUTPUT)/bench-smoke.log 2>&1 || \
		{ tail -30 $(OUTPUT)/bench-smoke.log; exit 1; }
	@echo "bench-smoke: the benchmark harness ran in quick mode (log: $(OUTPUT)/bench-smoke.log)"

bench: all $(OUTPUT)/bench/lua_vs_c $(OUTPUT)/bench/floor $(OUTPUT)/bench/policyd
	$(Q)scripts/deps bench
	$(Q)bench/run.sh $(OUTPUT)
	$(Q)bench/policyd.sh $(OUTPUT)
	$(Q)bench/postfix.sh $(OUTPUT)

# ---- install ----------------------------------------------------------------

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/connaudit
UNITDIR    ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSCONFDIR ?= /etc
LDCONFIG   ?= ldconfig
# Each build of the Lua module goes where its Lua looks. Debian's
# interpreters search /usr/local/lib/lua/VERSION but not the multiarch
# /usr/local/lib/x86_64-linux-gnu/lua/VERSION; packages (PREFIX=/usr) go to
# the .pc file's INSTALL_CMOD, /usr/lib/x86_64-linux-gnu/lua/VERSION.
# LUA_CMODDIR_5.1, LUA_CMODDIR_5.3 and LUA_CMODDIR_5.4 override them
# (LUA_CMODDIR, its name from when only 5.4 was built, still sets 5.4's).
LUA_CMODDIR_5.4 ?= $(LUA_CMODDIR)
lua_cmoddir = $(or $(LUA_CMODDIR_$(1)),$(if $(filter /usr,$(PREFIX)),$(shell \
	pkg-config --variable=INSTALL_CMOD $(lua_pc_$(1))),$(PREFIX)/lib/lua/$(1)))
UNITS := connaudit.service connaudit-metrics.service connaudit-metrics.timer \
         connaudit-policyd.socket connaudit-policyd.service connaudit-cluster.service
LUA_EXAMPLES := connection_limit.lua haproxy.lua
comma := ,

# Installed as they are (or as install-gen made them): SOURCE,DESTINATION,MODE.
INSTALL_COPIES := \
	$(OUTPUT)/connaudit,$(SBINDIR)/connaudit,755 \
	$(OUTPUT)/libconnaudit.a,$(LIBDIR)/libconnaudit.a,644 \
	$(OUTPUT)/libconnaudit.so,$(LIBDIR)/libconnaudit.so.$(LIB_VERSION),755 \
	include/connaudit.h,$(INCLUDEDIR)/connaudit.h,644 \
	include/connaudit_abi.h,$(INCLUDEDIR)/connaudit_abi.h,644 \
	$(OUTPUT)/gen/connaudit.pc,$(LIBDIR)/pkgconfig/connaudit.pc,644 \
	$(foreach v,$(LUA_VERSIONS),$(OUTPUT)/lua/$(v)/msys/audit.so$(comma)$(call \
		lua_cmoddir,$(v))/msys/audit.so$(comma)755) \
	lua/msys_audit.h,$(INCLUDEDIR)/msys_audit.h,644 \
	$(foreach e,$(LUA_EXAMPLES),lua/examples/$(e)$(comma)$(DOCDIR)/examples/$(e)$(comma)644) \
	man/connaudit.8,$(MANDIR)/man8/connaudit.8,644 \
	completion/connaudit,$(BASHCOMPDIR)/connaudit,644 \
	etc/services.conf.example,$(DOCDIR)/services.conf.example,644 \
	etc/default/connaudit,$(DOCDIR)/default.example,644 \
	etc/policyd.rules.example,$(DOCDIR)/policyd.rules.example,644 \
	$(foreach u,$(UNITS),$(OUTPUT)/gen/$(u)$(comma)$(UNITDIR)/$(u)$(comma)644)
# Config files: installed where none exists, removed only while unchanged.
INSTALL_CONFIGS := \
	etc/services.conf.example,$(SYSCONFDIR)/connaudit/services.conf \
	etc/policyd.rules.example,$(SYSCONFDIR)/connaudit/policyd.rules \
	etc/default/connaudit,$(SYSCONFDIR)/default/connaudit
# Library symlinks: TARGET,LINK.
INSTALL_LINKS := libconnaudit.so.$(LIB_VERSION),$(LIBDIR)/$(LIB_SONAME) \
	$(LIB_SONAME),$(LIBDIR)/libconnaudit.so

# The pkg-config file and the units name install paths: made for every install.
install-gen: | $(OUTPUT)
	$(Q)mkdir -p $(OUTPUT)/gen
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(LIB_VERSION)|g' \
		-e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
		-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
		connaudit.pc.in > $(OUTPUT)/gen/connaudit.pc
	$(Q)for u in $(UNITS); do \
		sed 's|/usr/local/sbin/connaudit|$(SBINDIR)/connaudit|g' systemd/$$u > $(OUTPUT)/gen/$$u || exit 1; \
	done

install: all install-gen
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)set -e; for f in $(INSTALL_COPIES); do \
		(IFS=,; set -- $$f; install -D -m "$$3" "$$1" "$(DESTDIR)$$2"); \
	done; \
	for f in $(INSTALL_LINKS); do (IFS=,; set -- $$f; ln -sfn "$$1" "$(DESTDIR)$$2"); done; \
	for f in $(INSTALL_CONFIGS); do \
		(IFS=,; set -- $$f; [ -e "$(DESTDIR)$$2" ] || install -D -m 644 "$$1" "$(DESTDIR)$$2"); \
	done
	$(Q)$(if $(DESTDIR),,$(LDCONFIG))

uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)for f in $(INSTALL_COPIES) $(INSTALL_LINKS); do \
		(IFS=,; set -- $$f; rm -f "$(DESTDIR)$$2"); \
	done; \
	for f in $(INSTALL_CONFIGS); do \
		(IFS=,; set -- $$f; ! cmp -s "$$1" "$(DESTDIR)$$2" || rm -f "$(DESTDIR)$$2"); \
	done; \
	rmdir "$(DESTDIR)$(DOCDIR)/examples" "$(DESTDIR)$(DOCDIR)" \
		$(foreach v,$(LUA_VERSIONS),"$(DESTDIR)$(call lua_cmoddir,$(v))/msys") \
		"$(DESTDIR)$(SYSCONFDIR)/connaudit" 2>/dev/null; true
	$(Q)$(if $(DESTDIR),,$(LDCONFIG))

# The packages of debian/, built from a copy of the source without build/.
deb:
	$(Q)scripts/deps deb
	$(Q)scripts/build-deb $(OUTPUT)/deb

clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)
