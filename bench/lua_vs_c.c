// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * lua_vs_c - calls per second of msys.audit.inbound_session_count(cidr,
 * service, peer) from Lua against the same query made through the C library
 * (ca_count on a CIDR, service and peer parsed once), in one process,
 * alternating C and Lua rounds so that drifts of the machine hit both.
 * Prints each round and the median ratio of per-call times, Lua / C.
 *
 *   lua_vs_c [--pin-dir DIR] [--rounds N] [--calls N] [--peer ADDR]
 *            [--cidr CIDR] [--service NAME] [--script PATH]
 *
 * Needs a loaded auditor (the pin dir, else $CONNAUDIT_PIN_DIR, else the
 * default). A benchmark, not a test: it fails only when it cannot run.
 * The module is compiled in (lua/audit.c) and installed in package.preload.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "connaudit.h"
#include "msys_audit.h"

#define MIN_ROUNDS	5

struct opts {
	const char *pin_dir, *cidr, *service, *peer, *script;
	unsigned rounds;
	long calls;
};

/* The query, parsed once, for the C side. */
struct c_query {
	struct ca_handle *h;
	struct ca_services services;
	const struct ca_service *svc;
	struct ca_cidr cidr;
	struct ca_addr peer;
};

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "lua_vs_c: %s: %s\n", what, msg);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(void)
{
	fprintf(stderr, "usage: lua_vs_c [--pin-dir DIR] [--rounds N (>= %d)] [--calls N] "
		"[--peer ADDR] [--cidr CIDR] [--service NAME] [--script PATH]\n", MIN_ROUNDS);
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "calls", required_argument, NULL, 'n' },
		{ "peer", required_argument, NULL, 'p' },
		{ "cidr", required_argument, NULL, 'c' },
		{ "service", required_argument, NULL, 's' },
		{ "script", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 }
	};
	int opt;

	*o = (struct opts){ .cidr = "/24", .service = "SMTP", .peer = "127.0.0.2",
			    .script = "bench/lua_vs_c.lua", .rounds = 7, .calls = 200000 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': o->pin_dir = optarg; break;
		case 'r': o->rounds = (unsigned)atoi(optarg); break;
		case 'n': o->calls = atol(optarg); break;
		case 'p': o->peer = optarg; break;
		case 'c': o->cidr = optarg; break;
		case 's': o->service = optarg; break;
		case 'l': o->script = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || o->rounds < MIN_ROUNDS || o->calls <= 0)
		usage();
}

static void c_query_open(struct c_query *q, const struct opts *o)
{
	struct ca_error err;

	if (ca_open(&q->h, o->pin_dir, &err) || ca_services_load(&q->services, NULL, &err) ||
	    ca_cidr_parse(o->cidr, &q->cidr, &err) || ca_addr_parse(o->peer, &q->peer, &err))
		die("C setup", err.msg);
	q->svc = ca_services_find(&q->services, o->service, &err);
	if (!q->svc)
		die("C setup", err.msg);
}

/* Seconds for `calls` queries; *last gets the last count. */
static double c_round(struct c_query *q, long calls, uint64_t *last)
{
	struct ca_error err;
	double t0 = now_s();

	for (long i = 0; i < calls; i++)
		if (ca_count(q->h, &q->cidr, q->svc, &q->peer, last, &err) < 0)
			die("ca_count", err.msg);
	return now_s() - t0;
}

/* A Lua state with the module, configured like the C side; leaves the
 * script's loop function at stack index 1. */
static lua_State *lua_open_bench(const struct opts *o)
{
	lua_State *L = luaL_newstate();

	if (!L)
		die("lua", "out of memory");
	luaL_openlibs(L);
	luaL_requiref(L, "msys.audit", luaopen_msys_audit, 0);
	lua_getfield(L, -1, "configure");
	lua_newtable(L);
	if (o->pin_dir) {
		lua_pushstring(L, o->pin_dir);
		lua_setfield(L, -2, "pin_dir");
	}
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		die("msys.audit.configure", lua_tostring(L, -1));
	lua_pop(L, 1);
	if (luaL_dofile(L, o->script) != LUA_OK)
		die(o->script, lua_tostring(L, -1));
	if (!lua_isfunction(L, 1))
		die(o->script, "does not return a function");
	return L;
}

/* Seconds for `calls` queries from Lua; *last gets the last count. */
static double lua_round(lua_State *L, const struct opts *o, long calls, uint64_t *last)
{
	double t0, t;

	lua_pushvalue(L, 1);
	lua_pushinteger(L, calls);
	lua_pushstring(L, o->cidr);
	lua_pushstring(L, o->service);
	lua_pushstring(L, o->peer);
	t0 = now_s();
	if (lua_pcall(L, 4, 1, 0) != LUA_OK)
		die("Lua loop", lua_tostring(L, -1));
	t = now_s() - t0;
	if (!lua_isinteger(L, -1))
		die("Lua loop", "inbound_session_count returned no count (auditor gone?)");
	*last = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	return t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	struct c_query q;
	struct opts o;
	lua_State *L;
	double *ratios;
	uint64_t c_last = 0, lua_last = 0;

	parse_opts(argc, argv, &o);
	c_query_open(&q, &o);
	L = lua_open_bench(&o);
	ratios = calloc(o.rounds, sizeof(*ratios));
	if (!ratios)
		die("calloc", strerror(errno));

	printf("query: inbound_session_count('%s', '%s', '%s'), %ld calls a round\n",
	       o.cidr, o.service, o.peer, o.calls);
	c_round(&q, o.calls / 10, &c_last);	/* warm caches and the handle */
	lua_round(L, &o, o.calls / 10, &lua_last);
	for (unsigned r = 0; r < o.rounds; r++) {
		double tc = c_round(&q, o.calls, &c_last);
		double tl = lua_round(L, &o, o.calls, &lua_last);

		if (c_last != lua_last)
			fprintf(stderr, "lua_vs_c: round %u: C counted %llu, Lua %llu (sessions "
				"changed during the round?)\n", r + 1,
				(unsigned long long)c_last, (unsigned long long)lua_last);
		ratios[r] = tl / tc;
		printf("round %u: C %9.0f calls/s (%.2f us)  Lua %9.0f calls/s (%.2f us)  "
		       "Lua/C %.3f\n", r + 1, (double)o.calls / tc, tc * 1e6 / (double)o.calls,
		       (double)o.calls / tl, tl * 1e6 / (double)o.calls, ratios[r]);
	}
	printf("count %llu; median Lua/C time ratio over %u rounds: %.3f (target <= 1.5)\n",
	       (unsigned long long)lua_last, o.rounds, median(ratios, o.rounds));
	free(ratios);
	lua_close(L);
	ca_close(q.h);
	return 0;
}
