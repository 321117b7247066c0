/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * msys_audit.h - the C side of the Lua module msys.audit, for host programs
 * that embed Lua (5.1 or LuaJIT, 5.3, 5.4) and run per-session policy
 * scripts. Link the module built for the host's Lua:
 * build/lua/VERSION/msys/audit.so, installed in that Lua's C module dir.
 *
 * A host that links the module directly should install it with
 * luaL_requiref(L, "msys.audit", luaopen_msys_audit, 0) (5.3, 5.4) or as
 * package.preload["msys.audit"] (every version), so that require finds it
 * instead of loading a second copy through package.cpath.
 */
#ifndef MSYS_AUDIT_H
#define MSYS_AUDIT_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open the module: returns 1 (the module table, also set as global
 * msys.audit). Raises a Lua error if global `msys` is not a table. */
int luaopen_msys_audit(lua_State *L);

/* Set the connecting address of the session L serves: the peer that "/N"
 * CIDRs are relative to when inbound_session_count gets no third argument.
 * addr is IPv4, IPv6 or [IPv6] (::ffff:a.b.c.d counts as IPv4); NULL
 * clears it. Usable before the module is required. Returns 0, or -EINVAL
 * for an unparsable address (the previous peer is then cleared, so a
 * failed update never leaves another session's address in place).
 * Raises nothing, except on memory exhaustion. */
int msys_audit_set_session_peer(lua_State *L, const char *addr);

#ifdef __cplusplus
}
#endif

#endif /* MSYS_AUDIT_H */
