#!/bin/bash
# deb.sh BUILD_DIR - the Debian packages (make deb's script): built with
# dpkg-buildpackage, lintian without errors, every file where the README's
# table says it goes, the conffiles, dependencies and symbols; then
# installed on this machine with dpkg -i (purged again by the EXIT trap,
# even on failure), used from the installed files (the command, a load and
# a count, the Lua module, a C client through pkg-config, the completion),
# removed (the auditor is unloaded, conffiles stay) and purged (nothing is
# left). The package is built once per run, into the suite's temporary dir.
set -u
. "$(dirname "$0")/lib.sh"
ops_init deb "$@"

OUT=$TMP/deb
PKGS=(connaudit libconnaudit1 libconnaudit-dev lua-msys-audit)
INSTALLED=
# Another run of this suite (another checkout) installs the same packages:
# one at a time.
LOCK=/run/lock/connaudit-ops-deb.lock

suite_cleanup() {
	[ -z "$INSTALLED" ] || dpkg --purge "${PKGS[@]}" > /dev/null 2>&1
}

deb_of() {
	ls "$OUT/$1"_*.deb
}

# paths PKG: the files and links PKG holds, as absolute paths.
paths() {
	dpkg-deb -c "$(deb_of "$1")" | awk '{ print $6 }' | sed 's|^\./|/|; /\/$/d'
}

# readme_rows: "PACKAGE PATH..." for every row of the README's table of
# packages (the paths may hold a * for the multiarch triplet).
readme_rows() {
	sed -n '/^### Debian packages/,/^### /p' "$OPS_ROOT/README.md" |
		awk -F'|' '/^\| `[a-z0-9-]+` \|/ {
			pkg = $2; gsub(/[ `]/, "", pkg); row = pkg
			n = split($4, w, "`")
			for (i = 2; i <= n; i += 2) if (w[i] ~ /^\//) row = row " " w[i]
			print row }'
}

check_build() {
	local warnings

	# Without the -dbgsym packages: a shorter build and lintian run.
	if ! DEB_BUILD_OPTIONS="noddebs ${DEB_BUILD_OPTIONS:-}" \
		"$OPS_ROOT/scripts/build-deb" "$OUT" > "$TMP/build-deb.log" 2>&1; then
		not_ok "scripts/build-deb (make deb) builds the packages"
		sed 's/^/    /' "$TMP/build-deb.log"
		return 1
	fi
	ok "scripts/build-deb (make deb) builds the packages"
	check_eq "... all four" "${#PKGS[@]}" "$(for p in "${PKGS[@]}"; do deb_of "$p"; done | wc -l)"
	check_eq "lintian: no errors" "" "$(grep '^E:' "$OUT/lintian.log")"
	warnings=$(grep -c '^W:' "$OUT/lintian.log")
	check_eq "lintian: no warnings" 0 "$warnings" || sed 's/^/    /' "$OUT/lintian.log"
	check_has "the BPF object was built against this kernel's BTF in the package build" \
		"$OUT/build.log" "btf dump file /sys/kernel/btf/vmlinux"
}

# symbol_names FILE: the names in a symbols file, sorted.
symbol_names() {
	sed -n 's/^ \([a-z_0-9]*\)@.*/\1/p' "$1" | sort
}

check_symbols() {
	local file=$OPS_ROOT/debian/libconnaudit1.symbols extra

	check_eq "debian/libconnaudit1.symbols is what debian/gen-symbols makes of connaudit.h" "" \
		"$(diff <("$OPS_ROOT/debian/gen-symbols") "$file")"
	dpkg-deb -I "$(deb_of libconnaudit1)" symbols > "$TMP/built.symbols"
	check_eq "... and the library exports every one of them" "" \
		"$(comm -23 <(symbol_names "$file") <(symbol_names "$TMP/built.symbols"))"
	extra=$(comm -13 <(symbol_names "$file") <(symbol_names "$TMP/built.symbols") | wc -l)
	if grep -q -- '--version-script' "$OPS_ROOT/Makefile"; then
		check_eq "... and nothing else (the version script)" 0 "$extra"
	else
		skip "the library exports $extra symbols beyond connaudit.h: no version script yet"
	fi
}

check_contents() {
	local pkg want have path rows=0 missing

	while read -r pkg want; do
		rows=$((rows + 1))
		have=$(paths "$pkg")
		missing=""
		for path in $want; do
			# shellcheck disable=SC2053 # the README's path is a pattern
			grep -q . <(while read -r p; do [[ $p == $path ]] && echo "$p"; done <<< "$have") ||
				missing+=" $path"
		done
		check_eq "$pkg holds what the README says ($(wc -w <<< "$want") paths)" "" "$missing"
	done < <(readme_rows)
	check_eq "the README's table has a row per package" "${#PKGS[@]}" "$rows"
	check_eq "connaudit's conffiles" \
		"/etc/connaudit/policyd.rules /etc/connaudit/services.conf /etc/default/connaudit" \
		"$(dpkg-deb -I "$(deb_of connaudit)" conffiles | sort | xargs)"
	check_eq "the command and the units are 755 and 644" "-rwxr-xr-x -rw-r--r--" \
		"$(dpkg-deb -c "$(deb_of connaudit)" | awk '$6 == "./usr/sbin/connaudit" ||
			$6 == "./lib/systemd/system/connaudit.service" { print $1 }' | sort -r | xargs)"
	check_has "connaudit depends on libbpf1 (shlibs)" \
		<(dpkg-deb -f "$(deb_of connaudit)" Depends) "libbpf1"
	check_has "libconnaudit-dev depends on the same libconnaudit1" \
		<(dpkg-deb -f "$(deb_of libconnaudit-dev)" Depends) "libconnaudit1 (= 1.0.0)"
	check_symbols
	check_eq "no unit is enabled or started by the maintainer scripts" "" \
		"$(dpkg-deb -I "$(deb_of connaudit)" postinst | grep -E 'deb-systemd-invoke (start|restart)|systemctl (enable|start)')"
}

# What a package could leave behind: every path about connaudit or msys.
traces() {
	find /etc /usr /lib /var/lib/dpkg/info /var/lib/systemd /run/connaudit \
		\( -name '*connaudit*' -o -name 'msys' \) 2>/dev/null | sort
}

dpkg_locked() {
	local _

	for _ in $(seq 60); do
		"$@" > "$TMP/dpkg.log" 2>&1 && return 0
		grep -q 'lock' "$TMP/dpkg.log" || break
		sleep 1
	done
	sed 's/^/    /' "$TMP/dpkg.log"
	return 1
}

check_install() {
	local bin=/usr/sbin/connaudit cmod loaded_before=no debs=() p

	[ -e /sys/fs/bpf/connaudit ] && loaded_before=yes
	for p in "${PKGS[@]}"; do debs+=("$(deb_of "$p")"); done
	check "dpkg -i the four packages" dpkg_locked dpkg -i "${debs[@]}" || return 1
	check_eq "connaudit is on PATH from the package" "$bin" "$(command -v connaudit)"
	if "$bin" --help | grep -q -- '--version'; then
		check_has "connaudit --version" <("$bin" --version) "1.0.0"
	else
		check_has "connaudit --help runs (this CLI has no --version yet)" <("$bin" --help) \
			"Usage: connaudit"
	fi
	check_eq "nothing enabled: no wants/ link to a connaudit unit" "" \
		"$(find /etc/systemd/system -name 'connaudit*' 2>/dev/null)"
	check_eq "nothing loaded by installing (no /sys/fs/bpf/connaudit)" "$loaded_before" \
		"$([ -e /sys/fs/bpf/connaudit ] && echo yes || echo no)"
	cmod=$(ls -d /usr/lib/*/lua/5.4)
	check_eq "lua5.4 finds msys.audit in the installed dir" "$cmod/msys/audit.so" \
		"$(lua5.4 -e "print(package.searchpath('msys.audit', package.cpath))")"
	check "lua5.4 -e \"require('msys.audit')\"" lua5.4 -e "require('msys.audit')"
	check_eq "... and it answers (no auditor there: nil, message)" "nil not loaded" \
		"$(lua_unloaded ';;')"
	printf '#include <stdio.h>\n#include <connaudit.h>\nint main(void)\n{\n\tstruct ca_services s;\n\n\tca_services_defaults(&s);\n\tprintf("%%u\\n", s.n);\n\treturn 0;\n}\n' > "$TMP/client.c"
	# shellcheck disable=SC2046 # the flags are words
	check "a C client builds with pkg-config against libconnaudit-dev" \
		cc -Wall -Werror "$TMP/client.c" $(pkg-config --cflags --libs connaudit) -o "$TMP/client"
	check_eq "... and runs with libconnaudit1" 4 "$("$TMP/client")"
	check_has "... from the multiarch dir" <(ldd "$TMP/client") \
		"/$(basename "$(dirname "$(dirname "$cmod")")")/libconnaudit.so.1"
	check_has "bash-completion loads the installed completion" <(bash -c \
		'. /usr/share/bash-completion/bash_completion; __load_completion connaudit; complete -p connaudit') \
		"complete -F _connaudit connaudit"
	if command -v man > /dev/null; then
		check_eq "man finds connaudit(8)" /usr/share/man/man8/connaudit.8.gz "$(man -w 8 connaudit)"
	fi
}

# connaudit load and count from the installed files, in the test namespace.
check_live() {
	local bin=/usr/sbin/connaudit n

	ops_live --no-load || return 1
	# shellcheck disable=SC2034 # read by live_cleanup (tests/lua/live.sh)
	LIVE_LOADED=1
	check "the installed connaudit loads (pin dir $LIVE_PIN_DIR)" \
		live_ns "$bin" load --pin-dir "$LIVE_PIN_DIR" --quiet
	check_eq "... and counts the sessions" "$OPS_SMTP" \
		"$(live_ns "$bin" count /0 SMTP --pin-dir "$LIVE_PIN_DIR" --config /dev/null)"
	n=$(live_ns lua5.4 -e "
		local audit = require('msys.audit')
		audit.configure{pin_dir = '$LIVE_PIN_DIR', config = '/dev/null'}
		print(audit.inbound_session_count('/0', 'SMTP'))")
	check_eq "... so does the installed Lua module" "$OPS_SMTP" "$n"
}

check_remove_purge() {
	local before=$1

	check "dpkg -r connaudit (auditor loaded)" \
		dpkg_locked env CONNAUDIT_PIN_DIR="$LIVE_PIN_DIR" dpkg -r connaudit
	check_fails "... unloads it (prerm): its pin dir is gone" test -e "$LIVE_PIN_DIR"
	check_fails "... removes the command" test -e /usr/sbin/connaudit
	check "... keeps the conffiles (policy)" test -e /etc/connaudit/services.conf -a \
		-e /etc/default/connaudit
	check "dpkg --purge all four" dpkg_locked dpkg --purge "${PKGS[@]}"
	INSTALLED=
	check_eq "... leaves nothing behind" "$before" "$(traces)"
	check_eq "... and dpkg knows none of them" "" \
		"$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${PKGS[@]}" 2>/dev/null | grep -v '^un')"
}

for tool in dpkg-buildpackage lintian dh; do
	if ! command -v "$tool" > /dev/null; then
		skip "Debian packages: $tool is missing (scripts/deps deb)"
		summary
		exit
	fi
done
check_build || { summary; exit; }
check_contents
need_root "installing the packages with dpkg -i"
exec 9> "$LOCK"
flock -w 600 9 || { not_ok "another deb.sh holds $LOCK"; summary; exit; }
if dpkg-query -W -f='${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null | grep -q '^i'; then
	skip "install, use, purge: connaudit's packages are installed here already (not touched)"
	summary
	exit
fi
before=$(traces)
INSTALLED=1
check_install && check_live
check_remove_purge "$before"
summary
