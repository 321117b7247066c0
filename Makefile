# connaudit - build everything under build/.
#   make            build the tool, the library and the Lua module
#   make test       every test (unit, real-kernel, Lua, fuzz smoke, bench smoke)
#   make demo       build, load, open sample connections in a netns, show counts
#   make vmtest     the kernel tests inside qemu on Debian's 6.1 kernel
#   make bench      benchmarks (not tests: nothing is timed in CI)
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

WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -g -O2
CFLAGS   += $(WARN) -fPIC -Iinclude -Iuser -I$(OUTPUT) -D_GNU_SOURCE
LDFLAGS  ?=
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
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
            user/loader.c user/seed.c user/sysfs.c user/errors.c
LIB_OBJS := $(patsubst user/%.c,$(OUTPUT)/obj/%.o,$(LIB_SRCS))
CLI_SRCS := user/cli.c user/cli_inspect.c
CLI_OBJS := $(patsubst user/%.c,$(OUTPUT)/obj/%.o,$(CLI_SRCS))

UNIT_TESTS := test_cidr test_services test_count
FUZZERS    := fuzz_cidr fuzz_services

.PHONY: all deps test unit-test kernel-test lua-test fuzz-smoke fuzz demo vmtest bench clean
.DELETE_ON_ERROR:
.SECONDARY:

all: $(OUTPUT)/connaudit $(OUTPUT)/libconnaudit.a $(OUTPUT)/libconnaudit.so \
     $(OUTPUT)/lua/msys/audit.so

# Installs missing Debian packages; fast and silent when nothing is missing.
deps:
	$(Q)scripts/deps test

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

$(OUTPUT)/libconnaudit.so: $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,libconnaudit.so.1 $(LDFLAGS) $^ $(LIBBPF_LIBS) -o $@

$(OUTPUT)/connaudit: $(CLI_OBJS) $(OUTPUT)/libconnaudit.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) -o $@

# Lua 5.4 module: require('msys.audit') with LUA_CPATH='build/lua/?.so;;'
$(OUTPUT)/lua/msys/audit.so: lua/audit.c $(OUTPUT)/libconnaudit.a | $(OUTPUT)/lua/msys
	$(call msg,LUA,$@)
	$(Q)$(CC) $(CFLAGS) $(LUA_CFLAGS) $(LIBBPF_CFLAGS) -shared $(LDFLAGS) \
		$< $(OUTPUT)/libconnaudit.a $(LIBBPF_LIBS) -o $@

# ---- tests ----------------------------------------------------------------

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(OUTPUT)/libconnaudit.a $(wildcard tests/unit/*.h) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(OUTPUT)/libconnaudit.a $(LDFLAGS) \
		-lcmocka $(LIBBPF_LIBS) -o $@

# The real-kernel scenarios; linked statically so the same binary runs in the VM.
KTEST_SRCS := tests/kernel/scenarios.c tests/kernel/netlib.c tests/kernel/truth.c
$(OUTPUT)/tests/kernel_test: $(KTEST_SRCS) $(wildcard tests/kernel/*.h) $(LIB_SRCS) \
			     $(OUTPUT)/connaudit.skel.h | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/kernel $(LIBBPF_CFLAGS) $(KTEST_SRCS) $(LIB_SRCS) \
		$(LDFLAGS) $(if $(SANITIZE),$(LIBBPF_LIBS),-static -lbpf -lelf -lz) -o $@

unit-test: $(addprefix $(OUTPUT)/tests/,$(UNIT_TESTS))
	$(Q)for t in $^; do echo "== $$t"; $$t || exit 1; done

kernel-test: $(OUTPUT)/tests/kernel_test $(OUTPUT)/connaudit
	$(Q)tests/kernel/run.sh $(OUTPUT)

lua-test: $(OUTPUT)/lua/msys/audit.so $(OUTPUT)/connaudit
	$(Q)tests/lua/run.sh $(OUTPUT)

$(OUTPUT)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(LIB_SRCS) $(OUTPUT)/connaudit.skel.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iuser -I$(OUTPUT) \
		-D_GNU_SOURCE $(LIBBPF_CFLAGS) $< user/cidr.c user/services.c user/errors.c -o $@

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
	$(Q)$(MAKE) --no-print-directory lua-test
	$(Q)$(MAKE) --no-print-directory fuzz-smoke
	@echo "make test: all suites passed"

# ---- demo, VM, benchmarks --------------------------------------------------

demo: all
	$(Q)scripts/demo $(OUTPUT)

vmtest: deps
	$(Q)scripts/deps vm
	$(Q)$(MAKE) --no-print-directory $(OUTPUT)/tests/kernel_test $(OUTPUT)/connaudit.bpf.o
	$(Q)scripts/vmtest $(OUTPUT)

bench: all
	$(Q)scripts/deps bench
	$(Q)bench/run.sh $(OUTPUT)

clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)
