/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * compat.h - the part of the Lua 5.4 C API that lua/audit.c and
 * tests/lua/host.c use, provided on Lua 5.1 (PUC and LuaJIT 2.1) and 5.3,
 * so that one source builds for every Lua host and behaves the same in each,
 * argument-error messages included.
 *
 * Under the 5.1 API only functions that PUC Lua 5.1 exports are called, never
 * LuaJIT's own extensions (its luaL_setfuncs, luaL_testudata): one build,
 * made with either set of headers, then loads in both lua5.1 and luajit.
 *
 * What stays different is what the languages themselves show: a float 24.0
 * is "24.0" in 5.3+ and "24" in 5.1; LuaJIT really tail-calls `return f()`,
 * so an error raised in f is reported as if f had been called from C (its
 * package.loaded name, no caller's line). Nor is lua_pushstring's result
 * provided: 5.1's returns nothing.
 */
#ifndef MSYS_AUDIT_COMPAT_H
#define MSYS_AUDIT_COMPAT_H

#include <stddef.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM < 502

#define LUA_OK 0

#define lua_pushglobaltable(L) lua_pushvalue((L), LUA_GLOBALSINDEX)

/* lua_getfield (and through it lua_getglobal) returning the type, as 5.3+. */
static inline int compat_getfield(lua_State *L, int idx, const char *k)
{
	lua_getfield(L, idx, k);
	return lua_type(L, -1);
}
#define lua_getfield compat_getfield

#undef luaL_newlibtable
#define luaL_newlibtable(L, l) lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)

/* Each function of l as a closure over the nup values on top, which are
 * popped. */
static inline void compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
	for (; l->name; l++) {
		for (int i = 0; i < nup; i++)
			lua_pushvalue(L, -nup);
		lua_pushcclosure(L, l->func, nup);
		lua_setfield(L, -(nup + 2), l->name);
	}
	lua_pop(L, nup);
}
#define luaL_setfuncs compat_setfuncs

static inline void *compat_testudata(lua_State *L, int idx, const char *tname)
{
	void *p = lua_touserdata(L, idx);
	int same;

	if (!p || !lua_getmetatable(L, idx))
		return NULL;
	luaL_getmetatable(L, tname);
	same = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return same ? p : NULL;
}
#define luaL_testudata compat_testudata

/* Push the name 5.3+ give a function that was called from C (pcall, a
 * host): "module.field" where package.loaded[module][field] is it. Returns
 * 1 with the name pushed, or 0 with nothing pushed. */
static inline int compat_push_loaded_name(lua_State *L, lua_Debug *ar)
{
	int top = lua_gettop(L);

	lua_getinfo(L, "f", ar);			/* top + 1: the function */
	lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
	lua_pushnil(L);
	while (lua_next(L, top + 2)) {			/* top + 3: module name */
		if (lua_type(L, top + 3) == LUA_TSTRING && lua_istable(L, top + 4)) {
			lua_pushnil(L);
			while (lua_next(L, top + 4)) {	/* top + 5: field name */
				if (lua_type(L, top + 5) == LUA_TSTRING &&
				    lua_rawequal(L, top + 6, top + 1)) {
					const char *mod = lua_tostring(L, top + 3);

					lua_pushfstring(L, "%s%s%s",
						strcmp(mod, "_G") ? mod : "",
						strcmp(mod, "_G") ? "." : "",
						lua_tostring(L, top + 5));
					lua_replace(L, top + 1);
					lua_settop(L, top + 1);
					return 1;
				}
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	lua_settop(L, top);
	return 0;
}

/* luaL_argerror naming the function as 5.3+ do; 5.1's says '?' for a
 * function called through pcall. */
static inline int compat_argerror(lua_State *L, int arg, const char *extramsg)
{
	lua_Debug ar;

	if (!lua_getstack(L, 0, &ar))
		return luaL_error(L, "bad argument #%d (%s)", arg, extramsg);
	lua_getinfo(L, "n", &ar);
	if (ar.namewhat && strcmp(ar.namewhat, "method") == 0 && --arg == 0)
		return luaL_error(L, "calling '%s' on bad self (%s)", ar.name, extramsg);
	if (!ar.name)
		ar.name = compat_push_loaded_name(L, &ar) ? lua_tostring(L, -1) : "?";
	return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, ar.name, extramsg);
}
#define luaL_argerror compat_argerror

/* Push the name 5.3+ find in a value's __name: luaL_newmetatable sets that
 * field there, and registers the metatable under the same name in the
 * registry in every version, which is where 5.1 can find it. Returns 1
 * with the name pushed, or 0 with nothing pushed. */
static inline int compat_push_metatable_name(lua_State *L, int arg)
{
	int mt;

	if (!lua_getmetatable(L, arg))
		return 0;
	mt = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, LUA_REGISTRYINDEX)) {
		if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, mt)) {
			lua_pop(L, 1);
			lua_replace(L, mt);	/* the key in place of the metatable */
			return 1;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

#endif /* LUA_VERSION_NUM < 502 */

#if LUA_VERSION_NUM < 504

static inline void *compat_newuserdatauv(lua_State *L, size_t size, int nuvalue)
{
	(void)nuvalue;	/* only 5.4 has more than one user value */
	return lua_newuserdata(L, size);
}
#define lua_newuserdatauv compat_newuserdatauv

/* "T expected, got U", U from the value's __name when it has one. */
static inline int compat_typeerror(lua_State *L, int arg, const char *expected)
{
	const char *actual;

	if (luaL_getmetafield(L, arg, "__name") && lua_type(L, -1) == LUA_TSTRING)
		actual = lua_tostring(L, -1);
#if LUA_VERSION_NUM < 502
	else if (compat_push_metatable_name(L, arg))
		actual = lua_tostring(L, -1);
#endif
	else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
		actual = "light userdata";
	else
		actual = luaL_typename(L, arg);
	return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s",
						     expected, actual));
}
#define luaL_typeerror compat_typeerror

#endif /* LUA_VERSION_NUM < 504 */

#if LUA_VERSION_NUM < 502
/* 5.1's own raises through its luaL_argerror, not the one above. */
static inline void compat_checktype(lua_State *L, int arg, int type)
{
	if (lua_type(L, arg) != type)
		luaL_typeerror(L, arg, lua_typename(L, type));
}
#define luaL_checktype compat_checktype
#endif

#if LUA_VERSION_NUM < 503
/* 5.1 has only floats: an integer is a number with no fractional part. */
static inline int compat_isinteger(lua_State *L, int idx)
{
	lua_Number n;

	if (lua_type(L, idx) != LUA_TNUMBER)
		return 0;
	n = lua_tonumber(L, idx);
	return n == (lua_Number)(lua_Integer)n;
}
#define lua_isinteger compat_isinteger
#endif

#endif /* MSYS_AUDIT_COMPAT_H */
