/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * scenarios.h - the runner's world, shared by the scenario files.
 *
 * scenarios.c owns the runner and the three-view comparison; churn.c,
 * restarts.c and limits.c add scenarios of their own through the *_register
 * hooks and reuse everything declared here rather than keeping copies.
 * Every function ends the scenario with kt_fail() when a step fails.
 */
#ifndef KT_SCENARIOS_H
#define KT_SCENARIOS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "connaudit.h"
#include "netlib.h"
#include "truth.h"

/* Ports of the built-in services (ca_services_defaults). */
#define SMTP		25
#define CONTROL		2025
#define ECSTREAM	1825
#define ECCLUSTER	4802

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum { NS_A, NS_B };	/* our namespace, and a second one when asked for */

struct env {
	char pin_dir[PATH_MAX];
	char cgroup[PATH_MAX];		/* a test cgroup, "" without cgroup2 */
	struct ca_handle *h;
	struct ca_services services;
	struct netns ns[2];
	struct truth_src truth[2];
	struct truth_filter filter;	/* which kernel sessions should count */
	uint64_t peers_full;		/* refused inserts the scenario caused */
	uint64_t prefixes_full;		/* (sticky counters of ca_health) */
	uint64_t marks_full;
};

extern struct env E;
extern struct ca_error ERR;

/* For calls that take &ERR: fail with the library's message. */
#define CA_CHECK(call) ca_check((call), #call)
void ca_check(int r, const char *call);

#define EXPECT_EQ(actual, expected) \
	expect_eq((uint64_t)(actual), (uint64_t)(expected), #actual, __FILE__, __LINE__)
void expect_eq(uint64_t got, uint64_t want, const char *expr, const char *file, int line);

/* ---- loading ---------------------------------------------------------------- */

/* (Re)open E.h on the scenario's pin dir. */
void open_handle(void);
/* ca_load(o), or ca_unload(pin_dir) when o is NULL, retried while another
 * load or unload under /sys/fs/bpf holds the lock. */
int admin_patiently(const struct ca_load_opts *o, const char *pin_dir, struct ca_error *err);
/* Load into E.pin_dir with whatever else o asks for, then open_handle(). */
void load_opts(struct ca_load_opts *o);
void load_scoped(const char *cgroup);
void load(void);
/* Make E.ns[NS_B] and its sock_diag source; stay in NS_A. */
void second_namespace(void);

/* Close both ends of c, the server's first. */
void conn_close(struct conn *c);

/* ---- comparing ---------------------------------------------------------------- */

/* Wait at most KT_WAIT_MS until the kernel shows `expect` sessions in
 * namespace ns and connaudit agrees per peer and in every aggregate; false
 * (with the differences printed under `step`) when it never does. */
bool views_settle(int ns, uint64_t expect, const char *step);
/* The health record is clean but for E.peers_full, prefixes_full, marks_full. */
void check_health(const char *step);
/* views_settle() and check_health(), failing the scenario otherwise. */
void compare_ns(int ns, uint64_t expect, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define compare(expect, ...) compare_ns(NS_A, expect, __VA_ARGS__)

/* Wait at most KT_WAIT_MS for ca_health.incomplete to read `want`. */
void wait_incomplete(int64_t want);
/* The same for ca_health.uncounted (sessions that found ca_marks full). */
void wait_uncounted(int64_t want);
/* ca_count_str(cidr, "SMTP", peer) must return want_rc with count want. */
void expect_count(const char *cidr, const char *peer, int want_rc, uint64_t want);

/* ---- cgroup scope -------------------------------------------------------------- */

/* The test cgroup and its child "sub", both audited in cgroup mode. */
struct test_cgroup {
	char home[PATH_MAX];		/* where this process was */
	char sub[PATH_MAX + 8];
	uint64_t ids[2];
};

/* Make the test cgroups (skip without cgroup2) and count only their sockets
 * in the truth from now on. */
void test_cgroup_setup(struct test_cgroup *cg);

/* ---- churn workers ------------------------------------------------------------- */

/* Two processes churning connections from 127.0.1.1 to port 25 (on
 * 127.0.0.1 and 127.0.0.2), 8 open each once settled. */
#define CHURN_RING	8
struct churn {
	pid_t worker[2];
	int report;		/* one byte per worker that has settled */
	int stop;		/* closing it asks the workers to settle */
};

void churn_start(struct churn *ch, unsigned rounds);
/* Ask the workers to settle and wait until both did: 2 * CHURN_RING open. */
void churn_settle(struct churn *ch);
/* Kill the workers: their connections end with them. */
void churn_end(struct churn *ch);

/* ---- queries about one peer (churn.c) --------------------------------------------- */

enum peer_query_kind { RELATIVE, FIXED, ALL };

/* A ca_count_str query about a peer, and the prefix it sums over. */
struct peer_query {
	enum peer_query_kind kind;
	const char *cidr;	/* RELATIVE: as given ("/24,/64"); FIXED: "peer/len" */
	unsigned len[2];	/* for an IPv4 peer, for an IPv6 peer */
};

/* /32, /24, /24,/64, /16,/48, /25,/56 (a scan), peer/24|64, peer/32|128, /0. */
extern const struct peer_query peer_queries[];
extern const size_t npeer_queries;

struct answer {
	char cidr[80];		/* as asked */
	int rc;			/* ca_count_str's return */
	uint64_t got, want;	/* connaudit's count, the sum over the kernel's view */
};

/* Ask q about peer for service in E.h's namespace, and work out the right
 * answer from truth (the per-peer tally of that namespace). */
void ask_peer_query(const struct peer_query *q, const char *peer, const char *service,
		    const struct tally *truth, struct answer *a);
void print_answer(const struct answer *a, const char *service, const char *peer);

/* ---- randomness ------------------------------------------------------------------ */

#define KT_ENV_SEED	"CONNAUDIT_SEED"

/* splitmix64: tiny, and the same sequence for a seed on every machine. */
struct kt_rng {
	uint64_t s;
};

static inline uint64_t kt_rand(struct kt_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for test choices; 0 when n is 0. */
static inline uint32_t kt_below(struct kt_rng *r, uint32_t n)
{
	return n ? (uint32_t)(kt_rand(r) % n) : 0;
}

/* $CONNAUDIT_SEED, else one from the clock; printed as a "# " note, which
 * the runner shows even when the scenario passes, so any run replays. */
uint64_t kt_seed(const char *scenario);

/* ---- registration ---------------------------------------------------------------- */

typedef void kt_add_fn(const char *name, void (*run)(const void *a, const void *b),
		       const void *a, const void *b);

void churn_register(kt_add_fn *add);
void restarts_register(kt_add_fn *add);
void table_register(kt_add_fn *add);
void limits_register(kt_add_fn *add);
void attacks_register(kt_add_fn *add);
void rates_register(kt_add_fn *add);

#endif
