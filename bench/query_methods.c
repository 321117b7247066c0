// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* query_methods.c - the ways to count inbound connections (see query.h). */
#include "query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include <bpf/bpf.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* ---- connaudit through the C library ----------------------------------- */

uint64_t query_connaudit(struct qctx *c, int qi)
{
	const struct question *q = &c->q[qi];
	struct ca_error err;
	uint64_t n;
	int rc = ca_count(c->h, &q->parsed, c->svc, NULL, &n, &err);

	if (rc < 0)
		kt_fail("ca_count(%s, %s): %s", q->cidr, Q_SERVICE, err.msg);
	if (rc == CA_INCOMPLETE)
		kt_fail("ca_count(%s, %s) says its count (%llu) is incomplete: see "
			"`connaudit status`", q->cidr, Q_SERVICE, (unsigned long long)n);
	return n;
}

/* ---- the Lua module ------------------------------------------------------ */

/* Built once; each call of the returned function is one timed batch. The
 * loop is Lua code so that what is timed is what a Lua policy pays per call. */
static const char lua_loop_src[] =
	"local dir = ...\n"
	"package.cpath = dir .. '/?.so;' .. package.cpath\n"
	"local audit = require('msys.audit')\n"
	"assert(type(audit.inbound_session_count) == 'function',\n"
	"       'msys.audit has no inbound_session_count')\n"
	"local function loop(count)\n"
	"  return function(n, cidr, service, want)\n"
	"    for _ = 1, n do\n"
	"      local got, err = count(cidr, service)\n"
	"      if got ~= want then return got, err end\n"
	"    end\n"
	"    return want\n"
	"  end\n"
	"end\n"
	"return loop(audit.inbound_session_count), loop\n";

/* What the floor's empty C function answers: the question's count, so that
 * the same loop checks it. */
static lua_Integer floor_answer;

/* The floor of any Lua binding: a C function taking the same arguments and
 * doing nothing with them. */
static int floor_count(lua_State *L)
{
	lua_pushinteger(L, floor_answer);
	return 1;
}

/* Run lua_loop_src in L; leaves the loop function, or the error, on top. */
static int lua_open_loop(lua_State *L, const char *lua_dir)
{
	int rc = luaL_loadstring(L, lua_loop_src);

	if (rc != LUA_OK)
		return rc;
	lua_pushstring(L, lua_dir);
	return lua_pcall(L, 1, 2, 0);
}

/* The module is built separately and may be missing or broken in a work
 * tree: then the Lua rows are skipped, with the reason, not the whole run. */
static void lua_prepare(struct qctx *c, const char *lua_dir)
{
	char so[PATH_MAX];

	c->L = NULL;
	if (!lua_dir) {
		snprintf(c->lua_note, sizeof(c->lua_note), "no Lua module directory given");
		return;
	}
	snprintf(so, sizeof(so), "%s/msys/audit.so", lua_dir);
	if (access(so, R_OK)) {
		snprintf(c->lua_note, sizeof(c->lua_note), "%.200s is absent", so);
		return;
	}
	c->L = luaL_newstate();
	if (!c->L)
		kt_fail("cannot create a Lua state");
	luaL_openlibs(c->L);
	if (lua_open_loop(c->L, lua_dir) != LUA_OK) {
		snprintf(c->lua_note, sizeof(c->lua_note), "%.200s does not load: %.250s", so,
			 lua_tostring(c->L, -1));
		lua_close(c->L);
		c->L = NULL;
		return;
	}
	/* the loop function over floor_count, from the chunk's second result */
	lua_pushcfunction(c->L, floor_count);
	if (lua_pcall(c->L, 1, 1, 0) != LUA_OK)
		kt_fail("Lua: %s", lua_tostring(c->L, -1));
	c->lua_floor = luaL_ref(c->L, LUA_REGISTRYINDEX);
	c->lua_loop = luaL_ref(c->L, LUA_REGISTRYINDEX);
}

/* n calls of the loop at registry ref `loop`. */
static uint64_t lua_loop_batch(struct qctx *c, int qi, unsigned n, int loop)
{
	const struct question *q = &c->q[qi];
	lua_State *L = c->L;
	uint64_t got;

	lua_rawgeti(L, LUA_REGISTRYINDEX, loop);
	lua_pushinteger(L, n);
	lua_pushstring(L, q->cidr);
	lua_pushstring(L, Q_SERVICE);
	lua_pushinteger(L, (lua_Integer)q->want);
	if (lua_pcall(L, 4, 2, 0))
		kt_fail("Lua: %s", lua_tostring(L, -1));
	if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 0)
		kt_fail("msys.audit.inbound_session_count('%s', '%s') returned a %s (%s)",
			q->cidr, Q_SERVICE, luaL_typename(L, -2),
			lua_isstring(L, -1) ? lua_tostring(L, -1) : "no message");
	got = (uint64_t)lua_tointeger(L, -2);
	lua_pop(L, 2);
	return got;
}

static uint64_t lua_batch(struct qctx *c, int qi, unsigned n)
{
	return lua_loop_batch(c, qi, n, c->lua_loop);
}

static uint64_t lua_floor_batch(struct qctx *c, int qi, unsigned n)
{
	floor_answer = (lua_Integer)c->q[qi].want;
	return lua_loop_batch(c, qi, n, c->lua_floor);
}

/* ---- one filtered sock_diag dump ------------------------------------------ */

#define BC_OP		sizeof(struct inet_diag_bc_op)
#define BC_COND		(BC_OP + sizeof(struct inet_diag_hostcond) + sizeof(uint32_t))
#define BC_LEN		(2 * BC_OP + BC_COND)

/*
 * "sport == port && dst in net/len" as inet_diag bytecode: the kernel runs it
 * on every socket of the dump and sends only those it accepts. An op jumps
 * `yes` bytes when its test holds, `no` bytes when not; landing exactly on
 * the end accepts, landing 4 bytes past it rejects.
 */
static void diag_bytecode(uint8_t bc[BC_LEN], uint16_t port, uint32_t net, unsigned len)
{
	struct inet_diag_bc_op sport = { INET_DIAG_BC_S_EQ, 2 * BC_OP, BC_LEN + 4 };
	struct inet_diag_bc_op sport_value = { .no = port };
	struct inet_diag_bc_op dst = { INET_DIAG_BC_D_COND, BC_COND, BC_COND + 4 };
	struct inet_diag_hostcond cond = { .family = AF_INET, .prefix_len = (uint8_t)len,
					   .port = -1 };
	uint32_t addr = htonl(net);
	uint8_t *p = bc;

	memcpy(p, &sport, BC_OP);
	memcpy(p += BC_OP, &sport_value, BC_OP);
	memcpy(p += BC_OP, &dst, BC_OP);
	memcpy(p += BC_OP, &cond, sizeof(cond));
	memcpy(p + sizeof(cond), &addr, sizeof(addr));
}

/* An IPv4 TCP dump of established sockets matching the bytecode, asking
 * for the attributes in `ext` (INET_DIAG_* bits) and no others. */
static void diag_request(struct nlk_msg *m, uint16_t port, uint32_t net, unsigned len,
			 uint8_t ext)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = AF_INET,
		.sdiag_protocol = IPPROTO_TCP,
		.idiag_ext = ext,
		.idiag_states = 1u << TCP_ESTABLISHED,
	};
	uint8_t bc[BC_LEN];

	diag_bytecode(bc, port, net, len);
	nlk_init(m, SOCK_DIAG_BY_FAMILY, 0, &req, sizeof(req));
	nlk_put(m, INET_DIAG_REQ_BYTECODE, bc, sizeof(bc));
}

static int count_record(const struct nlmsghdr *nh, void *arg)
{
	*(uint64_t *)arg += nh->nlmsg_type == SOCK_DIAG_BY_FAMILY;
	return 0;
}

static void diag_dump(struct qctx *c, struct nlk_msg *m,
		      int (*fn)(const struct nlmsghdr *nh, void *arg), void *arg)
{
	int rc = nlk_dump(c->diag_fd, m, fn, arg);

	if (rc)
		kt_fail("sock_diag dump: %s", strerror(rc < 0 ? -rc : rc));
}

uint64_t query_diag_count(struct qctx *c, int qi)
{
	uint64_t n = 0;

	diag_dump(c, &c->q[qi].diag_req, count_record, &n);
	return n;
}

/* ---- ss, as a shell user would run it -------------------------------------- */

static uint64_t ss_one(struct qctx *c, int qi)
{
	const char *cmd = c->q[qi].ss_cmd;
	unsigned long long n = 0;
	FILE *f = popen(cmd, "r");
	int parsed;

	if (!f)
		kt_fail("popen: %m");
	parsed = fscanf(f, "%llu", &n) == 1;
	if (pclose(f) != 0 || !parsed)
		kt_fail("`%s` failed", cmd);
	return n;
}

/* ---- one bpf() lookup: the floor of a reader that asks the kernel --------- */

/* Find the configured /24's slot in ca_table through bpf() lookups, as a
 * reader without the mapping would, and remember it. */
static void bpf_resolve(struct qctx *c, int qi)
{
	const struct ca_config *cfg = ca_loaded_config(c->h);
	char path[PATH_MAX];
	struct ca_slot s;

	if (c->table_of != c->h) {
		if (c->table_fd >= 0)
			close(c->table_fd);
		snprintf(path, sizeof(path), "%s/%s", ca_pin_dir(c->h), CA_PIN_TABLE);
		c->table_fd = bpf_obj_get(path);
		if (c->table_fd < 0)
			kt_fail("cannot open %s: %m", path);
		c->table_of = c->h;
	}
	memset(&c->table_key, 0, sizeof(c->table_key));
	c->table_key.netns = ca_netns(c->h);
	c->table_key.port = c->port;
	c->table_key.family = CA_AF_INET;
	c->table_key.prefixlen = (uint8_t)c->q[qi].len;
	memcpy(c->table_key.addr, c->q[qi].parsed.fixed.bytes, 4);
	struct ca_probe seq;

	ca_probe_start(&seq, &c->table_key, cfg->table_seed, cfg->table_slots);
	for (__u32 p = 0; p < CA_TABLE_PROBES; p++) {
		c->table_slot = ca_probe_slot(&seq, p);
		if (bpf_map_lookup_elem(c->table_fd, &c->table_slot, &s) == 0 &&
		    CA_SLOT_STATE(s.version) == CA_SLOT_LIVE &&
		    memcmp(&s.key, &c->table_key, sizeof(s.key)) == 0)
			return;
	}
	kt_fail("%s holds no slot for %s", CA_PIN_TABLE, c->q[qi].cidr);
}

static uint64_t bpf_one(struct qctx *c, int qi)
{
	struct ca_slot s;

	if (c->table_of != c->h ||
	    bpf_map_lookup_elem(c->table_fd, &c->table_slot, &s) ||
	    memcmp(&s.key, &c->table_key, sizeof(s.key)) != 0) {
		bpf_resolve(c, qi);
		if (bpf_map_lookup_elem(c->table_fd, &c->table_slot, &s))
			kt_fail("bpf() lookup in %s: %m", CA_PIN_TABLE);
	}
	return s.count;
}

/* ---- the table of methods ------------------------------------------------- */

static uint64_t diag_one(struct qctx *c, int qi)
{
	return query_diag_count(c, qi);
}

const struct method query_methods[] = {
	{ "c_agg", "connaudit, C library, configured /24 (one lookup)", Q_AGG, false,
	  query_connaudit, NULL },
	{ "c_exact", "connaudit, C library, unconfigured /25 (128 exact-address lookups)",
	  Q_EXACT, false, query_connaudit, NULL },
	{ "c_sub", "connaudit, C library, unconfigured /20 (16 lookups of its /24s)", Q_SUB,
	  false, query_connaudit, NULL },
	{ "c_cap", "connaudit, C library, unconfigured /8 (256 lookups of its /16s, the most "
	  "a query makes)", Q_CAP, false, query_connaudit, NULL },
	{ "c_scan", "connaudit, C library, unconfigured /2 (too wide to sum: batched scan)",
	  Q_SCAN, false, query_connaudit, NULL },
	{ "lua", "connaudit, Lua module, configured /24", Q_AGG, true, NULL, lua_batch },
	{ "lua_floor", "the same Lua loop calling an empty C function (the floor of any Lua "
	  "binding)", Q_AGG, true, NULL, lua_floor_batch },
	{ "bpf", "one bpf() map lookup of the configured /24's count (the floor of a reader "
	  "that asks the kernel)", Q_AGG, false, bpf_one, NULL },
	{ "diag", "sock_diag dump with bytecode filter", Q_AGG, false, diag_one, NULL },
	{ "ss", "ss -Htn state established '( sport and dst )' | wc -l", Q_AGG, false,
	  ss_one, NULL },
};
const unsigned query_nmethods = sizeof(query_methods) / sizeof(query_methods[0]);

bool query_usable(const struct qctx *c, const struct method *m)
{
	return !m->needs_lua || c->L;
}

uint64_t query_run(struct qctx *c, const struct method *m, unsigned n)
{
	uint64_t want = c->q[m->question].want, got = want;

	if (m->batch)
		return m->batch(c, m->question, n);
	for (unsigned i = 0; i < n && got == want; i++)
		got = m->one(c, m->question);
	return got;
}

/* ---- set-up ------------------------------------------------------------------ */

static void question_init(struct qctx *c, int qi, const char *cidr)
{
	struct question *q = &c->q[qi];
	struct ca_error err;

	q->cidr = cidr;
	if (ca_cidr_parse(cidr, &q->parsed, &err))
		kt_fail("%s", err.msg);
	if (q->parsed.kind != CA_CIDR_FIXED || q->parsed.fixed.family != CA_AF_INET)
		kt_fail("question %s is not a fixed IPv4 prefix", cidr);
	memcpy(&q->net, q->parsed.fixed.bytes, sizeof(q->net));
	q->net = ntohl(q->net);
	q->len = q->parsed.fixed.len;
	q->want = 0;
	diag_request(&q->diag_req, c->port, q->net, q->len, 0);
	snprintf(q->ss_cmd, sizeof(q->ss_cmd),
		 "ss -Htn state established '( sport = :%u and dst %s )' | wc -l",
		 c->port, cidr);
}

void query_init(struct qctx *c, const char *lua_dir)
{
	static const char *const cidrs[Q_NR] = {
		"127.0.5.0/24", "127.0.5.0/25", "127.0.0.0/20", "127.0.0.0/8", "64.0.0.0/2" };
	struct ca_error err;

	ca_services_defaults(&c->services);
	c->svc = ca_services_find(&c->services, Q_SERVICE, &err);
	if (!c->svc)
		kt_fail("%s", err.msg);
	/* Every method must answer the same question, so the service must be
	 * exactly one port, the one the sock_diag and ss filters name. */
	if (c->svc->nports != 1)
		kt_fail("service %s has %u ports, not one", Q_SERVICE, c->svc->nports);
	c->port = c->svc->ports[0];
	c->diag_fd = nlk_open(NETLINK_SOCK_DIAG);
	c->table_fd = -1;
	c->table_of = NULL;
	for (int qi = 0; qi < Q_NR; qi++)
		question_init(c, qi, cidrs[qi]);
	lua_prepare(c, lua_dir);
}

void query_fini(struct qctx *c)
{
	if (c->L)
		lua_close(c->L);
	c->L = NULL;
	if (c->diag_fd >= 0)
		close(c->diag_fd);
	c->diag_fd = -1;
	if (c->table_fd >= 0)
		close(c->table_fd);
	c->table_fd = -1;
}
