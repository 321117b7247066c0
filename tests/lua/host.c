// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * host - a minimal embedding host for the tests of the module's C API, the
 * way an MTA would link it: build/lua/VERSION/msys/audit.so linked in, the
 * module installed in package.preload, msys_audit_set_session_peer() called
 * from C. Built for each Lua the module is (build/tests/lua/host-VERSION).
 *
 *   host SCRIPT
 *
 * Runs SCRIPT in a fresh Lua state with the standard libraries and these
 * globals, which exist only to drive the C side from Lua tests:
 *   c_set_session_peer(addr | nil) -> msys_audit_set_session_peer's return
 *   c_fd_count()                   -> open file descriptors of this process
 *   c_run_fresh(chunk)             -> true, chunk's first result | false, message
 *     (runs chunk in another new lua_State, then lua_close()s it)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include <lualib.h>

#include "compat.h"
#include "msys_audit.h"

static int c_set_session_peer(lua_State *L)
{
	const char *addr = luaL_optstring(L, 1, NULL);

	lua_pushinteger(L, msys_audit_set_session_peer(L, addr));
	return 1;
}

static int c_fd_count(lua_State *L)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	lua_Integer n = 0;

	if (!d)
		return luaL_error(L, "opendir /proc/self/fd failed");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	lua_pushinteger(L, n - 1);	/* not the directory's own fd */
	return 1;
}

static lua_State *new_host_state(void);

static int c_run_fresh(lua_State *L)
{
	const char *chunk = luaL_checkstring(L, 1);
	lua_State *fresh = new_host_state();
	int rc = luaL_dostring(fresh, chunk);

	lua_pushboolean(L, rc == LUA_OK);
	lua_pushstring(L, lua_tostring(fresh, -1));	/* result or message */
	lua_close(fresh);
	return 2;
}

static const luaL_Reg host_funcs[] = {
	{ "c_set_session_peer", c_set_session_peer },
	{ "c_fd_count", c_fd_count },
	{ "c_run_fresh", c_run_fresh },
	{ NULL, NULL }
};

static lua_State *new_host_state(void)
{
	lua_State *L = luaL_newstate();

	if (!L) {
		fprintf(stderr, "host: out of memory\n");
		exit(1);
	}
	luaL_openlibs(L);
	/* require('msys.audit') finds the linked-in copy, not a second one
	 * through package.cpath. */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_msys_audit);
	lua_setfield(L, -2, "msys.audit");
	lua_pop(L, 2);
	lua_pushglobaltable(L);
	luaL_setfuncs(L, host_funcs, 0);
	lua_pop(L, 1);
	return L;
}

int main(int argc, char **argv)
{
	lua_State *L;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: host SCRIPT\n");
		return 2;
	}
	L = new_host_state();
	rc = luaL_dofile(L, argv[1]);
	if (rc != LUA_OK)
		fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
	lua_close(L);
	return rc == LUA_OK ? 0 : 1;
}
