#!/bin/bash
# install.sh BUILD_DIR - `make install` into a temporary DESTDIR: every file
# where it belongs, a C program built with pkg-config against the installed
# header and library, the Lua module where Lua looks for it, config files
# kept when they exist; then `make uninstall` leaves nothing behind.
# Needs no root and touches nothing outside its temporary directory.
set -u
. "$(dirname "$0")/lib.sh"
ops_init install "$@"

ROOT=$TMP/root
P=$ROOT/usr/local
MAKE_ARGS=(--no-print-directory -C "$OPS_ROOT" OUTPUT="$BUILD" DESTDIR="$ROOT" V=1)

# mode_of PATH: "MODE" of a file, "-> TARGET" of a symlink.
mode_of() {
	if [ -L "$1" ]; then echo "-> $(readlink "$1")"; else stat -c %a "$1" 2>&1; fi
}

check_layout() {
	local f

	check_eq "sbin/connaudit" 755 "$(mode_of "$P/sbin/connaudit")"
	check_eq "lib/libconnaudit.so.1.0.0" 755 "$(mode_of "$P/lib/libconnaudit.so.1.0.0")"
	check_eq "lib/libconnaudit.so.1" "-> libconnaudit.so.1.0.0" "$(mode_of "$P/lib/libconnaudit.so.1")"
	check_eq "lib/libconnaudit.so" "-> libconnaudit.so.1" "$(mode_of "$P/lib/libconnaudit.so")"
	check_eq "lib/libconnaudit.a" 644 "$(mode_of "$P/lib/libconnaudit.a")"
	check_eq "the library's soname" "libconnaudit.so.1" \
		"$(readelf -d "$P/lib/libconnaudit.so.1.0.0" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
	for f in include/connaudit.h include/connaudit_abi.h lib/pkgconfig/connaudit.pc \
		 share/man/man8/connaudit.8 share/doc/connaudit/services.conf.example \
		 lib/systemd/system/connaudit.service lib/systemd/system/connaudit-metrics.service \
		 lib/systemd/system/connaudit-metrics.timer share/doc/connaudit/policyd.rules.example \
		 lib/systemd/system/connaudit-policyd.socket lib/systemd/system/connaudit-policyd.service \
		 share/bash-completion/completions/connaudit; do
		check_eq "$f" 644 "$(mode_of "$P/$f")"
	done
	check_eq "/etc/connaudit/services.conf (absent before: installed)" 644 \
		"$(mode_of "$ROOT/etc/connaudit/services.conf")"
	check_eq "/etc/connaudit/policyd.rules (absent before: installed)" 644 \
		"$(mode_of "$ROOT/etc/connaudit/policyd.rules")"
	check_eq "/etc/default/connaudit" 644 "$(mode_of "$ROOT/etc/default/connaudit")"
	check_has "the unit runs the installed binary" "$P/lib/systemd/system/connaudit.service" \
		"ExecStart=/usr/local/sbin/connaudit load"
	check "the installed binary runs" "$P/sbin/connaudit" --help > /dev/null
	if ! command -v man > /dev/null || ! command -v groff > /dev/null; then
		skip "the man page: man or groff is not installed (Debian package man-db)"
		return
	fi
	check "the installed man page is clean roff" groff -man -ww -z "$P/share/man/man8/connaudit.8"
	check_eq "man finds connaudit(8) under MANPATH" "$P/share/man/man8/connaudit.8" \
		"$(MANPATH=$P/share/man man -w 8 connaudit 2>&1)"
}

# pkg-config as a build against the DESTDIR would run it.
pc() {
	PKG_CONFIG_SYSROOT_DIR=$ROOT PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config "$@"
}

# A client of the public API only: parse, look up, fail to open.
write_client() {
	cat > "$TMP/client.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <connaudit.h>

int main(int argc, char **argv)
{
	struct ca_services services;
	struct ca_handle *h = NULL;
	struct ca_error err;
	struct ca_cidr cidr;
	int rc;

	if (argc != 2 || ca_cidr_parse("/24,/64", &cidr, &err))
		return 1;
	ca_services_defaults(&services);
	if (!ca_services_find(&services, "SMTP", &err))
		return 1;
	rc = ca_open(&h, argv[1], &err);
	printf("v4 /%u v6 /%u, open: %s\n", cidr.v4_len, cidr.v6_len,
	       rc == -ENOENT ? "ENOENT" : "unexpected");
	ca_close(h);
	return rc == -ENOENT ? 0 : 1;
}
EOF
}

check_c_client() {
	local flags out

	flags=$(pc --cflags --libs connaudit)
	check_eq "pkg-config --cflags --libs connaudit" \
		"-I$P/include" "$(grep -o -- "-I$P/include" <<< "$flags")"
	check_has "pkg-config: the library" <(echo "$flags") "-L$P/lib -lconnaudit"
	check_has "pkg-config --static adds libbpf" <(pc --static --libs connaudit) "-lbpf"
	write_client
	# shellcheck disable=SC2086 # the flags are words
	check "a client builds against the installed header and library" \
		cc -Wall -Wextra -Werror "$TMP/client.c" $flags -o "$TMP/client"
	out=$(LD_LIBRARY_PATH=$P/lib "$TMP/client" /sys/fs/bpf/connaudit-ops-$$-none)
	check_eq "... and runs" "v4 /24 v6 /64, open: ENOENT" "$out"
	check_has "... with the installed libconnaudit.so.1" \
		<(LD_LIBRARY_PATH=$P/lib ldd "$TMP/client") "libconnaudit.so.1 => $P/lib/libconnaudit.so.1"
}

# Every build of the module in its Lua's C module dir, found there by each
# interpreter of that Lua; the C header and the examples for embedders.
check_lua_module() {
	local v cmod lua built=

	for v in 5.1 5.3 5.4; do
		[ -e "$BUILD/lua/$v/msys/audit.so" ] || continue
		built=1
		cmod=$P/lib/lua/$v
		check_eq "msys/audit.so in the Lua $v C module dir" 755 "$(mode_of "$cmod/msys/audit.so")"
		for lua in $(lua_interpreters "$v"); do
			check_has "$lua searches that dir for /usr/local" <($lua -e 'print(package.cpath)') \
				"/usr/local/lib/lua/$v/?.so"
			check_eq "$lua: require('msys.audit') from the install; no auditor: nil, message" \
				"nil not loaded" "$(lua_unloaded "$cmod/?.so" "$lua")"
		done
	done
	if [ -z "$built" ]; then
		skip "Lua module: no $BUILD/lua/VERSION/msys/audit.so is built yet (lua/audit.c)"
		return
	fi
	for f in include/msys_audit.h share/doc/connaudit/examples/connection_limit.lua \
		 share/doc/connaudit/examples/haproxy.lua; do
		check_eq "$f" 644 "$(mode_of "$P/$f")"
	done
}

# Whatever is left under ROOT but empty directories.
leftovers() {
	find "$ROOT" ! -type d
	find "$ROOT" -type d \( -name connaudit -o -name msys \)
}

check_uninstall() {
	make "${MAKE_ARGS[@]}" uninstall > "$TMP/uninstall.log" 2>&1
	check_eq "make uninstall exits 0" 0 $?
	check_eq "... and leaves nothing behind" "" "$(leftovers)"
}

# A services.conf the admin wrote survives install and uninstall.
check_config_kept() {
	mkdir -p "$ROOT/etc/connaudit"
	echo "Mine 2525" > "$ROOT/etc/connaudit/services.conf"
	make "${MAKE_ARGS[@]}" install > "$TMP/install2.log" 2>&1
	check_eq "install over an existing services.conf keeps it" "Mine 2525" \
		"$(cat "$ROOT/etc/connaudit/services.conf")"
	make "${MAKE_ARGS[@]}" uninstall > "$TMP/uninstall2.log" 2>&1
	check_eq "uninstall keeps the changed services.conf" "Mine 2525" \
		"$(cat "$ROOT/etc/connaudit/services.conf")"
	rm "$ROOT/etc/connaudit/services.conf"
	check_eq "... and removes everything else" "/$(basename "$ROOT")/etc/connaudit" \
		"$(leftovers | sed "s|^$TMP||")"
	rmdir "$ROOT/etc/connaudit"
}

# PREFIX=/usr: the paths of a package.
check_prefix_usr() {
	local cmod v

	make "${MAKE_ARGS[@]}" PREFIX=/usr install > "$TMP/install3.log" 2>&1
	check_eq "PREFIX=/usr: make install exits 0" 0 $?
	check "PREFIX=/usr: sbin/connaudit" test -x "$ROOT/usr/sbin/connaudit"
	for v in 5.1 5.3 5.4; do
		[ -e "$BUILD/lua/$v/msys/audit.so" ] || continue
		cmod=$(pkg-config --variable=INSTALL_CMOD "lua$v" 2> /dev/null ||
		       pkg-config --variable=INSTALL_CMOD luajit)
		check "PREFIX=/usr: the Lua $v module in its .pc file's INSTALL_CMOD ($cmod)" \
			test -e "$ROOT$cmod/msys/audit.so"
	done
	check_has "PREFIX=/usr: the unit runs /usr/sbin/connaudit" \
		"$ROOT/usr/lib/systemd/system/connaudit.service" "ExecStart=/usr/sbin/connaudit load"
	check_has "PREFIX=/usr: connaudit.pc says so" "$ROOT/usr/lib/pkgconfig/connaudit.pc" "prefix=/usr"
	make "${MAKE_ARGS[@]}" PREFIX=/usr uninstall > "$TMP/uninstall3.log" 2>&1
	check_eq "PREFIX=/usr: uninstall leaves nothing behind" "" "$(leftovers)"
}

if make "${MAKE_ARGS[@]}" install > "$TMP/install.log" 2>&1; then
	ok "make install DESTDIR=... exits 0"
else
	not_ok "make install DESTDIR=... exits 0"
	sed 's/^/    /' "$TMP/install.log"
fi
check_layout
check_c_client
check_lua_module
check_uninstall
check_config_kept
check_prefix_usr
summary
