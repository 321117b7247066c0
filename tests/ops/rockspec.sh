#!/bin/bash
# rockspec.sh BUILD_DIR - the LuaRocks rockspec of msys.audit passes
# `luarocks lint`, and `luarocks make` builds a module that loads, from a
# copy of the sources (luarocks compiles next to the sources it is given).
# Skips when luarocks is missing (`scripts/deps test` installs it).
set -u
. "$(dirname "$0")/lib.sh"
ops_init rockspec "$@"

ROCKSPEC=rockspecs/connaudit-msys-audit-scm-1.rockspec
export HOME=$TMP	# luarocks keeps a cache in $HOME

have_luarocks() {
	command -v luarocks > /dev/null
}

luarocks54() {
	luarocks --lua-version=5.4 "$@"
}

check_lint() {
	check "luarocks lint $ROCKSPEC" luarocks54 lint "$OPS_ROOT/$ROCKSPEC"
	sed '/^package = /d' "$OPS_ROOT/$ROCKSPEC" > "$TMP/broken.rockspec"
	check_fails "... and lint does reject a rockspec without a package name" \
		luarocks54 lint "$TMP/broken.rockspec" 2> /dev/null
}

check_make() {
	local src=$TMP/src tree=$TMP/tree

	mkdir -p "$src" &&
	cp -r "$OPS_ROOT/include" "$OPS_ROOT/user" "$OPS_ROOT/lua" "$OPS_ROOT/rockspecs" "$src/" ||
		return
	(cd "$src" && luarocks54 --tree="$tree" make "$ROCKSPEC") > "$TMP/make.log" 2>&1
	check_eq "luarocks make builds and installs it in a tree" 0 $? || sed 's/^/    /' "$TMP/make.log"
	check_eq "the rock's msys.audit loads; no auditor: nil, message" "nil not loaded" \
		"$(lua_unloaded "$tree/lib/lua/5.4/?.so")"
}

if ! have_luarocks; then
	skip "rockspec: luarocks is not installed (Debian package luarocks; root installs it)"
elif [ ! -e "$OPS_ROOT/lua/audit.c" ]; then
	skip "rockspec: lua/audit.c is not written yet"
else
	check_lint
	check_make
fi
summary
