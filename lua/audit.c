// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * audit.c - the Lua module msys.audit (Lua 5.1/LuaJIT, 5.3, 5.4): Momentum's
 * msys.audit.inbound_session_count(cidr, servicename) answered from the
 * connaudit auditor's pinned maps, so existing policy scripts run unchanged.
 *
 *   local audit = require('msys.audit')      -- also sets global msys.audit
 *   audit.inbound_session_count(cidr, service [, peer]) -> count
 *   audit.connections(monitor [, options | cidr]) -> count   (rates)
 *   audit.set_session_peer(addr | nil)        -- the peer of "/N" CIDRs
 *   audit.configure{pin_dir = ..., config = ...}
 *   audit.close()                             -- release the maps now
 *
 * Error convention (the lua-cjson / luaposix split):
 *  - A wrong argument raises "bad argument #N to '<function>' (...)": a
 *    value that is not a string (numbers are not converted: a count of 24
 *    passed as a CIDR is a bug), an unparsable CIDR or address, an unknown
 *    or clustering-only service, a "/N" CIDR with no peer known, a "/N"
 *    that does not fit the peer's family, a bad configure option. The bad
 *    value is quoted: non-printable bytes as \xHH, long values cut with "...".
 *  - A failure of the environment (auditor not loaded, permission denied,
 *    services.conf unreadable or malformed, a map lookup failing) returns
 *    nil, message, errno: the caller decides whether to accept or defer.
 *  - When the auditor reports that some sessions could not be counted, the
 *    count is a lower bound: it returns count, "incomplete: ...", so that
 *    `local n = f(...)` still gets a number while careful callers can check.
 *  - connections: an unparsable monitor or one the auditor was not loaded
 *    with raises, as does a bad options table (unknown key, a startv past
 *    endv).
 *  - receptions and rejections raise "not supported": they count messages.
 *
 * State: one full userdata per lua_State (registry key STATE_KEY, and an
 * upvalue of every module function) holds the map handle, opened lazily by
 * the first query and released by __gc/__close or audit.close(); the
 * services table, loaded once; the session peer; and the last parsed CIDR,
 * service and peer, because policy scripts pass the same literals on every
 * connection and the query itself is a single bpf syscall.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

#include "cidr.h"
#include "connaudit.h"
#include "errors.h"
#include "msys_audit.h"

#define STATE_MT	"msys.audit.state"	/* metatable name */
#define STATE_KEY	"msys.audit.session"	/* registry slot of the state */
#define CACHE_TEXT_MAX	64	/* longer arguments are parsed on every call */
#define QUOTE_MAX	80	/* quoted bad values are cut to this */

/* The text an argument was parsed from; len 0 means nothing is cached
 * (an empty string never parses, so it never needs caching). */
struct text_key {
	size_t len;
	char text[CACHE_TEXT_MAX];
};

union parsed {
	struct ca_cidr cidr;
	struct ca_addr addr;
	const struct ca_service *service;	/* points into the state's services */
};

/* The last value of one argument, parsed. */
struct parsed_arg {
	struct text_key key;
	union parsed value;
};

struct audit_state {
	struct ca_handle *handle;	/* NULL until a query needs it */
	bool services_loaded;
	struct ca_services services;
	bool has_session_peer;
	struct ca_addr session_peer;
	char pin_dir[PATH_MAX];		/* "": $CONNAUDIT_PIN_DIR, then the default */
	char config[PATH_MAX];		/* "": $CONNAUDIT_CONFIG, then the default */
	struct parsed_arg cidr_arg, service_arg, peer_arg;
};

/* Parses the `len` bytes at `s` into *out, or fills err and returns < 0. */
typedef int (*arg_parser)(const struct audit_state *st, const char *s, size_t len,
			  union parsed *out, struct ca_error *err);

/* ---- the argument caches ----------------------------------------------- */

static bool key_matches(const struct text_key *k, const char *s, size_t len)
{
	return k->len != 0 && k->len == len && memcmp(k->text, s, len) == 0;
}

static void key_remember(struct text_key *k, const char *s, size_t len)
{
	if (len > sizeof(k->text)) {
		k->len = 0;
		return;
	}
	memcpy(k->text, s, len);
	k->len = len;
}

/* ---- raising argument errors ------------------------------------------- */

/* Push `s` quoted for a message: safe for NUL bytes and huge strings. */
static const char *push_quoted(lua_State *L, const char *s, size_t len)
{
	char q[QUOTE_MAX];

	lua_pushstring(L, ca_quote(s, len, q, sizeof(q)));
	return lua_tostring(L, -1);	/* 5.1's lua_pushstring returns nothing */
}

static int raise_bad_value(lua_State *L, int arg, const struct ca_error *err)
{
	return luaL_argerror(L, arg, err->msg);
}

/* Like luaL_typeerror, but showing a number or boolean too: "got number
 * 24" tells the script author more than "got number". The number is shown
 * as tostring() shows it. */
static int raise_not_string(lua_State *L, int arg)
{
	switch (lua_type(L, arg)) {
	case LUA_TNUMBER:
		lua_pushvalue(L, arg);	/* converted, not the argument itself */
		return luaL_argerror(L, arg, lua_pushfstring(L,
			"string expected, got number %s", lua_tostring(L, -1)));
	case LUA_TBOOLEAN:
		return luaL_argerror(L, arg, lua_pushfstring(L,
			"string expected, got boolean %s",
			lua_toboolean(L, arg) ? "true" : "false"));
	default:
		return luaL_typeerror(L, arg, "string");
	}
}

/* A string argument as it is: unlike luaL_checklstring, numbers are not
 * converted. */
static const char *check_string(lua_State *L, int arg, size_t *len)
{
	if (lua_type(L, arg) != LUA_TSTRING)
		raise_not_string(L, arg);
	return lua_tolstring(L, arg, len);
}

/* ---- failures and results ---------------------------------------------- */

/* nil, message, errno: the luaposix convention for environment failures. */
static int push_failure(lua_State *L, int rc, const struct ca_error *err)
{
	lua_pushnil(L);
	lua_pushstring(L, err->msg);
	lua_pushinteger(L, -rc);
	return 3;
}

static int push_count(lua_State *L, int rc, uint64_t count, const struct ca_error *err)
{
	if (rc < 0)
		return push_failure(L, rc, err);
	lua_pushinteger(L, (lua_Integer)count);
	if (rc != CA_INCOMPLETE)
		return 1;
	/* why, from the library: the local health, or how old a cluster view is */
	lua_pushfstring(L, "incomplete: %s", err->msg);
	return 2;
}

/* ---- the state ---------------------------------------------------------- */

static struct audit_state *state_upvalue(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

static const char *path_or_default(const char *configured)
{
	return configured[0] ? configured : NULL;
}

static void close_handle(struct audit_state *st)
{
	ca_close(st->handle);
	st->handle = NULL;
}

static void forget_services(struct audit_state *st)
{
	st->services_loaded = false;
	st->service_arg.key.len = 0;
}

static int load_services(struct audit_state *st, struct ca_error *err)
{
	int rc;

	if (st->services_loaded)
		return 0;
	rc = ca_services_load(&st->services, path_or_default(st->config), err);
	st->services_loaded = rc == 0;
	return rc;
}

static int open_handle(struct audit_state *st, struct ca_error *err)
{
	if (st->handle)
		return 0;
	return ca_open(&st->handle, path_or_default(st->pin_dir), err);
}

/* __gc and __close of the state; idempotent, as both may run. */
static int state_release(lua_State *L)
{
	close_handle(luaL_checkudata(L, 1, STATE_MT));
	return 0;
}

static const luaL_Reg state_meta[] = {
	{ "__gc", state_release },
	{ "__close", state_release },
	{ NULL, NULL }
};

/* Push this lua_State's audit state, creating it on first use: the host may
 * set the session peer before any script requires the module. */
static struct audit_state *push_state(lua_State *L)
{
	struct audit_state *st;

	lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY);
	st = luaL_testudata(L, -1, STATE_MT);
	if (st)
		return st;
	lua_pop(L, 1);
	st = lua_newuserdatauv(L, sizeof(*st), 0);
	memset(st, 0, sizeof(*st));
	if (luaL_newmetatable(L, STATE_MT))
		luaL_setfuncs(L, state_meta, 0);
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
	return st;
}

static int set_session_peer(struct audit_state *st, const char *addr, size_t len,
			    struct ca_error *err)
{
	/* Cleared first: a failed update must not leave the previous
	 * session's address in place. */
	st->has_session_peer = false;
	if (!addr)
		return 0;
	if (ca_addr_parse_n(addr, len, &st->session_peer, err))
		return -EINVAL;
	st->has_session_peer = true;
	return 0;
}

int msys_audit_set_session_peer(lua_State *L, const char *addr)
{
	struct audit_state *st = push_state(L);
	struct ca_error err;

	lua_pop(L, 1);	/* the registry keeps it */
	return set_session_peer(st, addr, addr ? strlen(addr) : 0, &err);
}

/* ---- inbound_session_count ---------------------------------------------- */

static int parse_cidr(const struct audit_state *st, const char *s, size_t len,
		      union parsed *out, struct ca_error *err)
{
	(void)st;
	return ca_cidr_parse_n(s, len, &out->cidr, err);
}

static int parse_addr(const struct audit_state *st, const char *s, size_t len,
		      union parsed *out, struct ca_error *err)
{
	(void)st;
	return ca_addr_parse_n(s, len, &out->addr, err);
}

/* The services table must be loaded. */
static int parse_service(const struct audit_state *st, const char *s, size_t len,
			 union parsed *out, struct ca_error *err)
{
	char q[QUOTE_MAX];

	/* A C string lookup would find "SMTP" in "SMTP\0junk". */
	if (strlen(s) != len)
		return ca_errf(err, -EINVAL, "service name \"%s\" contains a NUL byte",
			       ca_quote(s, len, q, sizeof(q)));
	out->service = ca_services_find(&st->services, s, err);
	return out->service ? 0 : -ENOENT;
}

/* String argument `arg`, parsed by `parse` unless it is the text parsed
 * last time; raises if it does not parse. */
static const union parsed *check_parsed(lua_State *L, struct audit_state *st, int arg,
					struct parsed_arg *last, arg_parser parse)
{
	struct ca_error err;
	union parsed fresh;
	size_t len;
	const char *s = check_string(L, arg, &len);

	if (key_matches(&last->key, s, len))
		return &last->value;
	if (parse(st, s, len, &fresh, &err))
		raise_bad_value(L, arg, &err);
	last->value = fresh;
	key_remember(&last->key, s, len);
	return &last->value;
}

/* The peer argument when given, else the session's peer, else NULL. */
static const struct ca_addr *check_peer(lua_State *L, struct audit_state *st, int arg)
{
	if (lua_isnoneornil(L, arg))
		return st->has_session_peer ? &st->session_peer : NULL;
	return &check_parsed(L, st, arg, &st->peer_arg, parse_addr)->addr;
}

/* A "/N" CIDR needs a peer of a family N fits; checked here so that the
 * mistake raises rather than coming back as an operational failure. */
static void check_peer_fits(lua_State *L, const struct ca_cidr *cidr, int cidr_arg,
			    const struct ca_addr *peer, int peer_arg)
{
	struct ca_prefix unused;
	struct ca_error err;
	size_t len;
	const char *s;

	if (cidr->kind != CA_CIDR_PEER)
		return;
	if (!peer) {
		s = lua_tolstring(L, cidr_arg, &len);
		luaL_argerror(L, peer_arg, lua_pushfstring(L,
			"no peer address for \"%s\", which counts around the connecting "
			"address: pass the peer as argument #%d or set it with "
			"msys.audit.set_session_peer()", push_quoted(L, s, len), peer_arg));
	}
	if (ca_cidr_resolve(cidr, peer, &unused, &err))
		raise_bad_value(L, cidr_arg, &err);
}

static bool handle_outdated(const struct ca_handle *h, int rc)
{
	return rc == -ESTALE || rc == -ENOENT || ca_handle_stale(h);
}

/* One query on an open handle (ca_count, ca_connections). */
typedef int (*handle_query)(struct ca_handle *h, const void *arg, uint64_t *count,
			    struct ca_error *err);

/* Query, reopening once when the maps the handle holds were retired by an
 * unload or reload since it was opened, so a long-running host follows
 * `connaudit load` without a restart. */
static int query_reopening(struct audit_state *st, handle_query query, const void *arg,
			   uint64_t *count, struct ca_error *err)
{
	bool was_open = st->handle != NULL;
	int rc = open_handle(st, err);

	if (rc)
		return rc;
	rc = query(st->handle, arg, count, err);
	if (rc >= 0 || !was_open || !handle_outdated(st->handle, rc))
		return rc;
	close_handle(st);
	rc = open_handle(st, err);
	if (rc)
		return rc;
	return query(st->handle, arg, count, err);
}

struct count_query {
	const struct ca_cidr *cidr;
	const struct ca_service *svc;
	const struct ca_addr *peer;
};

static int count_query(struct ca_handle *h, const void *arg, uint64_t *count,
		       struct ca_error *err)
{
	const struct count_query *q = arg;

	return ca_count(h, q->cidr, q->svc, q->peer, count, err);
}

static int l_inbound_session_count(lua_State *L)
{
	struct audit_state *st = state_upvalue(L);
	const struct ca_cidr *cidr = &check_parsed(L, st, 1, &st->cidr_arg, parse_cidr)->cidr;
	const struct ca_service *svc;
	const struct ca_addr *peer;
	struct ca_error err;
	uint64_t count = 0;
	size_t len;
	int rc;

	check_string(L, 2, &len);	/* a type error raises even without services */
	rc = load_services(st, &err);
	if (rc)
		return push_failure(L, rc, &err);
	svc = check_parsed(L, st, 2, &st->service_arg, parse_service)->service;
	peer = check_peer(L, st, 3);
	check_peer_fits(L, cidr, 1, peer, 3);
	rc = query_reopening(st, count_query, &(struct count_query){ cidr, svc, peer }, &count,
			     &err);
	return push_count(L, rc, count, &err);
}

/* ---- connections ---------------------------------------------------------- */

/* msys.audit.connections(monitor [, options | cidr]): connections admitted
 * in windows startv..endv of a loaded monitor. Options: cidr (default: the
 * session's peer, exact), startv, endv (default 0), service (default SMTP),
 * peer (default: the session's), cluster (true: every live node's, from
 * the cluster agent's view). */
struct connections_query {
	struct ca_monitor monitor;
	struct ca_cidr cidr;
	const struct ca_service *svc;
	const struct ca_addr *peer;
	unsigned start, end;
	bool peer_given;
	struct ca_addr given_peer;	/* option peer */
	struct ca_service cluster_svc;	/* option cluster: svc on every node */
};

static int connections_query(struct ca_handle *h, const void *arg, uint64_t *count,
			     struct ca_error *err)
{
	const struct connections_query *q = arg;

	return ca_connections(h, &q->monitor, &q->cidr, q->svc, q->peer, q->start, q->end,
			      count, err);
}

static const char connections_options[] = "cidr, startv, endv, service, peer, cluster";

/* Every key of the options table must be one of connections_options. */
static void check_connections_keys(lua_State *L, int arg)
{
	static const char *const names[] = { "cidr", "startv", "endv", "service", "peer",
					     "cluster", NULL };
	const char *s;
	size_t len;
	bool known;

	lua_pushnil(L);
	while (lua_next(L, arg)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, arg, lua_pushfstring(L, "option names are strings (%s), "
				"got a %s key", connections_options, luaL_typename(L, -1)));
		s = lua_tolstring(L, -1, &len);
		known = false;
		for (const char *const *n = names; *n && !known; n++)
			known = strlen(*n) == len && memcmp(*n, s, len) == 0;
		if (!known)
			luaL_argerror(L, arg, lua_pushfstring(L, "unknown option \"%s\" (options: "
				"%s)", push_quoted(L, s, len), connections_options));
	}
}

/* Option startv or endv: a window number, 0 (the current window) and up. */
static void read_window_option(lua_State *L, int arg, const char *name, unsigned *out)
{
	lua_Integer v;

	if (lua_getfield(L, arg, name) != LUA_TNIL) {
		if (!lua_isinteger(L, -1))
			luaL_argerror(L, arg, lua_pushfstring(L, "option %s: a window number "
				"(an integer, 0 the current window) expected, got %s", name,
				luaL_typename(L, -1)));
		v = lua_tointeger(L, -1);
		if (v < 0 || v > CA_RATE_SLOTS * 1000) {
			char num[24];

			/* %I of lua_pushfstring is 5.3+ only */
			snprintf(num, sizeof(num), "%lld", (long long)v);
			luaL_argerror(L, arg, lua_pushfstring(L, "option %s: window %s is out of "
				"range (0 is the current window)", name, num));
		}
		*out = (unsigned)v;
	}
	lua_pop(L, 1);
}

/* Option `name` as a string at the top of the stack, or NULL (popped by
 * the caller) when absent. */
static const char *string_option(lua_State *L, int arg, const char *name, size_t *len)
{
	int type = lua_getfield(L, arg, name);

	if (type == LUA_TNIL)
		return NULL;
	if (type != LUA_TSTRING)
		luaL_argerror(L, arg, lua_pushfstring(L, "option %s: string expected, got %s",
						      name, luaL_typename(L, -1)));
	return lua_tolstring(L, -1, len);
}

static void parse_or_raise(lua_State *L, struct audit_state *st, int arg, const char *s,
			   size_t len, arg_parser parse, union parsed *out)
{
	struct ca_error err;

	if (parse(st, s, len, out, &err))
		raise_bad_value(L, arg, &err);
}

/* The options table at `arg` into q; the services must be loaded. */
static void read_connections_options(lua_State *L, struct audit_state *st, int arg,
				     struct connections_query *q)
{
	union parsed v;
	const char *s;
	size_t len;

	check_connections_keys(L, arg);
	if ((s = string_option(L, arg, "cidr", &len))) {
		parse_or_raise(L, st, arg, s, len, parse_cidr, &v);
		q->cidr = v.cidr;
	}
	lua_pop(L, 1);
	if ((s = string_option(L, arg, "service", &len))) {
		parse_or_raise(L, st, arg, s, len, parse_service, &v);
		q->svc = v.service;
	}
	lua_pop(L, 1);
	if ((s = string_option(L, arg, "peer", &len))) {
		parse_or_raise(L, st, arg, s, len, parse_addr, &v);
		q->given_peer = v.addr;
		q->peer_given = true;
	}
	lua_pop(L, 1);
	read_window_option(L, arg, "startv", &q->start);
	read_window_option(L, arg, "endv", &q->end);
	if (q->start > q->end)
		luaL_argerror(L, arg, lua_pushfstring(L, "startv %d is past endv %d: windows "
			"startv..endv are summed, 0 being the current one", (int)q->start,
			(int)q->end));
	if (lua_getfield(L, arg, "cluster") != LUA_TNIL && lua_toboolean(L, -1)) {
		q->cluster_svc = *q->svc;
		q->cluster_svc.cluster = true;
		q->svc = &q->cluster_svc;
	}
	lua_pop(L, 1);
}

static int l_connections(lua_State *L)
{
	struct audit_state *st = state_upvalue(L);
	struct connections_query q = { .start = 0 };
	struct ca_prefix unused;
	struct ca_error err;
	uint64_t count = 0;
	union parsed v;
	const char *s;
	size_t len;
	int rc;

	s = check_string(L, 1, &len);
	if (strlen(s) != len || ca_monitor_parse(s, &q.monitor, &err))
		raise_bad_value(L, 1, strlen(s) != len ? &(struct ca_error){
			"the monitor contains a NUL byte (SIZE,WINDOWS expected, e.g. 300,6)" } : &err);
	rc = load_services(st, &err);
	if (rc)
		return push_failure(L, rc, &err);
	parse_or_raise(L, st, 2, "SMTP", 4, parse_service, &v);
	q.svc = v.service;
	ca_cidr_parse("/32,/128", &q.cidr, &err);	/* the session's peer, exact */
	switch (lua_type(L, 2)) {
	case LUA_TNONE:
	case LUA_TNIL:
		break;
	case LUA_TTABLE:
		read_connections_options(L, st, 2, &q);
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, 2, &len);
		parse_or_raise(L, st, 2, s, len, parse_cidr, &v);
		q.cidr = v.cidr;
		break;
	default:
		luaL_argerror(L, 2, lua_pushfstring(L, "options table or CIDR string expected, "
			"got %s", luaL_typename(L, 2)));
	}
	q.peer = q.peer_given ? &q.given_peer : st->has_session_peer ? &st->session_peer : NULL;
	if (q.cidr.kind == CA_CIDR_PEER && !q.peer)
		luaL_argerror(L, 2, "no peer address: the CIDR (by default the peer itself) "
			      "counts around the connecting address; set it with "
			      "msys.audit.set_session_peer() or pass option peer");
	if (ca_cidr_resolve(&q.cidr, q.peer, &unused, &err))
		raise_bad_value(L, 2, &err);
	rc = query_reopening(st, connections_query, &q, &count, &err);
	if (rc == -ENOENT && st->handle &&
	    ca_monitor_find(ca_loaded_config(st->handle), &q.monitor, &err) < 0)
		raise_bad_value(L, 1, &err);
	return push_count(L, rc, count, &err);
}

/* ---- set_session_peer, configure, close -------------------------------- */

static int l_set_session_peer(lua_State *L)
{
	struct audit_state *st = state_upvalue(L);
	struct ca_error err;
	const char *s = NULL;
	size_t len = 0;

	if (!lua_isnoneornil(L, 1))
		s = check_string(L, 1, &len);
	if (set_session_peer(st, s, len, &err))
		raise_bad_value(L, 1, &err);
	return 0;
}

static const char *const option_names[] = { "pin_dir", "config", NULL };

static bool is_option_name(const char *s, size_t len)
{
	for (const char *const *n = option_names; *n; n++)
		if (strlen(*n) == len && memcmp(*n, s, len) == 0)
			return true;
	return false;
}

/* Every key of the options table must be known: a misspelt "pindir" would
 * otherwise silently count on the default auditor. */
static void check_option_names(lua_State *L, int arg)
{
	const char *s;
	size_t len;

	lua_pushnil(L);
	while (lua_next(L, arg)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, arg, lua_pushfstring(L,
				"option names are strings (pin_dir, config), got a %s key",
				luaL_typename(L, -1)));
		s = lua_tolstring(L, -1, &len);
		if (!is_option_name(s, len))
			luaL_argerror(L, arg, lua_pushfstring(L,
				"unknown option \"%s\" (options: pin_dir, config)",
				push_quoted(L, s, len)));
	}
}

/* Option `name` of the table at `arg` into buf: a path, or "" when absent. */
static void read_path_option(lua_State *L, int arg, const char *name, char buf[PATH_MAX])
{
	const char *s;
	size_t len;

	buf[0] = '\0';
	switch (lua_getfield(L, arg, name)) {
	case LUA_TNIL:
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, -1, &len);
		if (len == 0 || len >= PATH_MAX || strlen(s) != len)
			luaL_argerror(L, arg, lua_pushfstring(L,
				"option %s: \"%s\" is not a path (empty, NUL bytes or "
				"longer than %d bytes)", name, push_quoted(L, s, len),
				PATH_MAX - 1));
		memcpy(buf, s, len + 1);
		break;
	default:
		luaL_argerror(L, arg, lua_pushfstring(L, "option %s: string expected, got %s",
						      name, luaL_typename(L, -1)));
	}
	lua_pop(L, 1);
}

/* configure{pin_dir=, config=}: an absent option means the library's
 * default (environment, then built-in path). Takes effect at the next
 * query: an open handle and the loaded services are dropped. */
static int l_configure(lua_State *L)
{
	struct audit_state *st = state_upvalue(L);
	char pin_dir[PATH_MAX], config[PATH_MAX];

	luaL_checktype(L, 1, LUA_TTABLE);
	check_option_names(L, 1);
	read_path_option(L, 1, "pin_dir", pin_dir);
	read_path_option(L, 1, "config", config);
	memcpy(st->pin_dir, pin_dir, sizeof(pin_dir));
	memcpy(st->config, config, sizeof(config));
	close_handle(st);
	forget_services(st);
	return 0;
}

static int l_close(lua_State *L)
{
	close_handle(state_upvalue(L));
	return 0;
}

/* ---- Momentum's other counters ----------------------------------------- */

static int l_unsupported(lua_State *L)
{
	return luaL_error(L, "msys.audit.%s is not supported by connaudit: it counts "
			  "messages, which only the MTA sees; connaudit counts sessions and "
			  "connections in the kernel (inbound_session_count, connections)",
			  lua_tostring(L, lua_upvalueindex(1)));
}

static void add_unsupported(lua_State *L)
{
	static const char *const names[] = { "receptions", "rejections", NULL };

	for (const char *const *n = names; *n; n++) {
		lua_pushstring(L, *n);
		lua_pushcclosure(L, l_unsupported, 1);
		lua_setfield(L, -2, *n);
	}
}

/* ---- the module ---------------------------------------------------------- */

static const luaL_Reg module_funcs[] = {
	{ "inbound_session_count", l_inbound_session_count },
	{ "connections", l_connections },
	{ "set_session_peer", l_set_session_peer },
	{ "configure", l_configure },
	{ "close", l_close },
	{ NULL, NULL }
};

/* msys.audit = the table on top, creating global msys as Momentum has it. */
static void publish_global(lua_State *L)
{
	switch (lua_getglobal(L, "msys")) {
	case LUA_TTABLE:
		break;
	case LUA_TNIL:
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setglobal(L, "msys");
		break;
	default:
		luaL_error(L, "cannot set msys.audit: global msys is a %s, not a table",
			   luaL_typename(L, -1));
	}
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "audit");
	lua_pop(L, 1);
}

int luaopen_msys_audit(lua_State *L)
{
	push_state(L);
	luaL_newlibtable(L, module_funcs);
	lua_pushvalue(L, -2);
	luaL_setfuncs(L, module_funcs, 1);	/* every function gets the state */
	add_unsupported(L);
	lua_remove(L, -2);
	publish_global(L);
	return 1;
}
