#!/bin/bash
# rockspec.sh BUILD_DIR - the LuaRocks rockspec of msys.audit passes
# `luarocks lint`, and `luarocks --lua-version=V make` builds a module that
# loads, for each Lua V (5.1, 5.3, 5.4) whose headers and interpreter are
# installed, from a copy of the sources (luarocks compiles next to the
# sources it is given).
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

# check_make VERSION: `luarocks --lua-version=VERSION make` into a tree of
# its own, from a copy of the sources of its own; each interpreter of that
# Lua then loads the rock.
check_make() {
	local v=$1 src=$TMP/src-$1 tree=$TMP/tree lua

	mkdir -p "$src" &&
	cp -r "$OPS_ROOT/include" "$OPS_ROOT/user" "$OPS_ROOT/lua" "$OPS_ROOT/rockspecs" "$src/" ||
		return
	(cd "$src" && luarocks --lua-version="$v" --tree="$tree" make "$ROCKSPEC") \
		> "$TMP/make-$v.log" 2>&1
	check_eq "luarocks --lua-version=$v make builds and installs it in a tree" 0 $? ||
		sed 's/^/    /' "$TMP/make-$v.log"
	for lua in $(lua_interpreters "$v"); do
		check_eq "$lua: the rock's msys.audit loads; no auditor: nil, message" \
			"nil not loaded" "$(lua_unloaded "$tree/lib/lua/$v/?.so" "$lua")"
	done
}

# The Lua versions whose headers and interpreter are installed: luarocks
# needs both.
rock_versions() {
	local v

	for v in 5.1 5.3 5.4; do
		[ -e "/usr/include/lua$v/lua.h" ] && [ -n "$(lua_interpreters "$v")" ] && echo "$v"
	done
}

if ! have_luarocks; then
	skip "rockspec: luarocks is not installed (Debian package luarocks; root installs it)"
elif [ ! -e "$OPS_ROOT/lua/audit.c" ]; then
	skip "rockspec: lua/audit.c is not written yet"
else
	check_lint
	for v in $(rock_versions); do
		check_make "$v"
	done
fi
summary
