/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * query.h - the ways of answering "how many established inbound connections
 * to port P come from this prefix", timed against each other by query.c.
 */
#ifndef CA_BENCH_QUERY_H
#define CA_BENCH_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "connaudit.h"
#include "netlib.h"

/* The questions, by how connaudit answers them (user/plan.c): a prefix it
 * aggregates (one map lookup), three it does not but sums from lookups (the
 * exact addresses of a /25, the /24s of a /20, the /16s of a /8: as many
 * lookups as a query may make), and one too wide for that (a scan of every
 * peer). */
enum { Q_AGG, Q_EXACT, Q_SUB, Q_CAP, Q_SCAN, Q_NR };

#define Q_SERVICE	"SMTP"
#define Q_SS_CMD_MAX	256

struct question {
	const char *cidr;		/* as every method is given it */
	struct ca_cidr parsed;
	uint32_t net;			/* host order */
	unsigned len;
	uint64_t want;			/* the true count at the current N */
	struct nlk_msg diag_req;	/* the filtered sock_diag dump */
	char ss_cmd[Q_SS_CMD_MAX];
};

struct lua_State;

struct qctx {
	uint16_t port;
	struct ca_handle *h;
	const struct ca_service *svc;
	struct ca_services services;
	struct question q[Q_NR];
	int diag_fd;
	struct lua_State *L;		/* NULL: the Lua module is not there */
	int lua_loop;			/* registry ref of the timed Lua loop */
	int lua_floor;			/* the same loop over an empty C function */
	char lua_note[512];		/* why the Lua method is skipped */
	/* the bpf() baseline: a reader that asks the kernel for the count */
	int table_fd;			/* ca_table of table_of's pin dir, or -1 */
	const struct ca_handle *table_of;
	__u32 table_slot;		/* where the configured /24's count is */
	struct ca_key table_key;
};

/* One way of answering: `one` answers once; a method whose loop must run
 * elsewhere (the Lua one: the loop is Lua code) has `batch` instead, which
 * answers n times and returns the first count that differs from the
 * question's `want`, else `want`. Failures end the program (kt_fail). */
struct method {
	const char *key;		/* name in the raw results */
	const char *label;		/* row in the table */
	int question;
	bool needs_lua;
	uint64_t (*one)(struct qctx *c, int question);
	uint64_t (*batch)(struct qctx *c, int question, unsigned n);
};

extern const struct method query_methods[];
extern const unsigned query_nmethods;

/* Set up everything the methods need (c->port is the service's port);
 * c->h is the caller's to open. lua_dir is where msys/audit.so may be
 * (NULL: skip Lua). */
void query_init(struct qctx *c, const char *lua_dir);
void query_fini(struct qctx *c);
/* Whether a method can run here (the Lua one needs the module). */
bool query_usable(const struct qctx *c, const struct method *m);
/* Answer n times (see struct method); returns the first wrong count, or
 * the question's `want`. */
uint64_t query_run(struct qctx *c, const struct method *m, unsigned n);

/* connaudit's answer through the C library, once. */
uint64_t query_connaudit(struct qctx *c, int qi);

/* One filtered sock_diag dump for question qi: the kernel's own count. */
uint64_t query_diag_count(struct qctx *c, int qi);

#endif
