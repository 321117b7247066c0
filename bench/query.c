// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * query.c - the cost of one "how many inbound connections to port P from
 * this prefix" query, by method, as the number of held connections grows.
 *
 * Run inside a private network namespace (bench/run.sh enters one with
 * nsenter, which keeps /sys/fs/bpf visible). Loads the auditor at --pin-dir
 * before any connection exists, grows the held connections level by level,
 * and at each level: checks every method against the connection plan and
 * the kernel, then times them in rounds, alternating the order (A/B, B/A).
 * Prints raw lines for bench/report.awk, which takes the medians:
 *   M key question label...          a method
 *   SKIP key reason...               a method that cannot run here
 *   Q N key round ns_per_query batch one timed batch
 *   SIZE N sessions peers            map sizes of the load from level N on
 *                                    (0: the default)
 *   RELOAD N ms got want             unload + load with N held (seeding)
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "holders.h"
#include "query.h"

#define MAX_LEVELS	8
#define MAX_BATCH	1000000u
/* connaudit load's default for each of --max-peers, --max-prefixes and
 * --max-sessions (README, "Using it"). */
#define LOAD_DEFAULT_SIZE	65536u

struct opts {
	struct ca_load_opts load;	/* pin dir and map sizes */
	const char *lua_dir;
	unsigned levels[MAX_LEVELS];
	unsigned nlevels;
	unsigned rounds;
	uint64_t batch_ns;	/* aim for timed batches this long */
};

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: query --pin-dir DIR [--lua-dir DIR] [--levels N,N,...] "
		"[--rounds R] [--batch-ms MS]\n");
	exit(2);
}

static unsigned parse_uint(const char *s, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		usage();
	return (unsigned)v;
}

static void parse_levels(struct opts *o, char *list)
{
	o->nlevels = 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		if (o->nlevels == MAX_LEVELS)
			usage();
		o->levels[o->nlevels++] = parse_uint(tok, 1000000);
	}
	if (!o->nlevels)
		usage();
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "lua-dir", required_argument, NULL, 'l' },
		{ "levels", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "batch-ms", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	char levels[] = "1000,10000,50000";
	int ch;

	*o = (struct opts){ .load.quiet = true, .rounds = 7, .batch_ns = 40000000 };
	parse_levels(o, levels);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': o->load.pin_dir = optarg; break;
		case 'l': o->lua_dir = optarg; break;
		case 'n': parse_levels(o, optarg); break;
		case 'r': o->rounds = parse_uint(optarg, 1000); break;
		case 'b': o->batch_ns = parse_uint(optarg, 60000) * 1000000ull; break;
		default: usage();
		}
	}
	if (!o->load.pin_dir || optind != argc)
		usage();
}

/* ---- the auditor ------------------------------------------------------------ */

/* Load and open. Loading before any connection exists means every count
 * comes from the live programs; RELOAD then checks the seeding path. */
static uint64_t load_and_open(struct qctx *c, const struct ca_load_opts *lo)
{
	struct ca_error err;
	uint64_t t0 = bench_now_ns(), ns;

	if (ca_load(lo, &err))
		kt_fail("load: %s", err.msg);
	ns = bench_now_ns() - t0;
	if (ca_open(&c->h, lo->pin_dir, &err))
		kt_fail("open: %s", err.msg);
	return ns;
}

static void close_and_unload(struct qctx *c, const char *pin_dir)
{
	struct ca_error err;

	ca_close(c->h);
	c->h = NULL;
	if (ca_unload(pin_dir, &err))
		kt_fail("unload: %s", err.msg);
}

/* Map sizes for n held sessions: the defaults while they hold n, so that
 * the figures are a default load's; else room for n sessions and their
 * peers and a quarter more, for sessions to port 25 in other namespaces
 * (the load audits the whole host, where other tests may be running). */
static void size_maps(struct ca_load_opts *lo, unsigned n)
{
	unsigned sessions = n + n / 4, peers = holders_peers(n) + holders_peers(n) / 4;

	lo->max_sessions = sessions > LOAD_DEFAULT_SIZE ? sessions : 0;
	lo->max_peers = peers > LOAD_DEFAULT_SIZE ? peers : 0;
}

/* Before level n: a load sized for it, as a host holding n would have.
 * A load too small for n is replaced by one that is not, whose seeding
 * counts the sessions held so far. */
static void fit_level(struct qctx *c, struct ca_load_opts *lo, unsigned n,
		      const char *lua_dir)
{
	struct ca_load_opts want = *lo;

	size_maps(&want, n);
	if (c->h && want.max_sessions == lo->max_sessions && want.max_peers == lo->max_peers)
		return;
	printf("SIZE %u %u %u\n", n, want.max_sessions, want.max_peers);
	if (c->h) {
		/* The Lua module's handle would go stale across the reload. */
		query_fini(c);
		close_and_unload(c, lo->pin_dir);
	}
	*lo = want;
	load_and_open(c, lo);
	query_init(c, lua_dir);
}

/* ---- checks --------------------------------------------------------------------- */

static void check(const struct qctx *c, const struct method *m, unsigned n, uint64_t got)
{
	const struct question *q = &c->q[m->question];

	if (got != q->want)
		kt_fail("%s answered %llu for %s at N=%u; %llu is right (the plan and "
			"the kernel agree)", m->key, (unsigned long long)got, q->cidr, n,
			(unsigned long long)q->want);
}

/* Hold n connections; the plan gives the right counts, the kernel must
 * confirm them, then every method must give them too. */
static void set_level(struct qctx *c, struct holders *h, unsigned n)
{
	holders_grow(h, n);
	for (int qi = 0; qi < Q_NR; qi++) {
		struct question *q = &c->q[qi];
		uint64_t kernel = query_diag_count(c, qi);

		q->want = holders_count_in(n, q->net, q->len);
		if (kernel != q->want)
			kt_fail("sock_diag sees %llu connections from %s, the plan %llu: the "
				"set-up is broken", (unsigned long long)kernel, q->cidr,
				(unsigned long long)q->want);
	}
	for (unsigned i = 0; i < query_nmethods; i++)
		if (query_usable(c, &query_methods[i]))
			check(c, &query_methods[i], n, query_run(c, &query_methods[i], 1));
}

/* ---- timing ------------------------------------------------------------------------ */

/* Enough queries to fill batch_ns, judged from one (warm) query. */
static unsigned calibrate(struct qctx *c, const struct method *m, unsigned n, uint64_t batch_ns)
{
	uint64_t t0, ns, batch;

	check(c, m, n, query_run(c, m, 1));
	t0 = bench_now_ns();
	check(c, m, n, query_run(c, m, 1));
	ns = bench_now_ns() - t0;
	batch = ns ? batch_ns / ns : MAX_BATCH;
	return batch < 1 ? 1 : batch > MAX_BATCH ? MAX_BATCH : (unsigned)batch;
}

static void time_batch(struct qctx *c, const struct method *m, unsigned n, unsigned round,
		       unsigned batch)
{
	uint64_t t0 = bench_now_ns(), got = query_run(c, m, batch);
	uint64_t ns = bench_now_ns() - t0;

	check(c, m, n, got);
	printf("Q %u %s %u %.1f %u\n", n, m->key, round, (double)ns / batch, batch);
}

static void time_level(struct qctx *c, unsigned n, const struct opts *o)
{
	unsigned batch[16], nm = query_nmethods;

	if (nm > sizeof(batch) / sizeof(batch[0]))
		kt_fail("too many methods");
	for (unsigned i = 0; i < nm; i++)
		if (query_usable(c, &query_methods[i]))
			batch[i] = calibrate(c, &query_methods[i], n, o->batch_ns);
	/* Forward on even rounds, backward on odd ones: no method always runs
	 * right after the same neighbour (or first, with cold caches). */
	for (unsigned r = 0; r < o->rounds; r++) {
		for (unsigned k = 0; k < nm; k++) {
			unsigned i = r % 2 ? nm - 1 - k : k;

			if (query_usable(c, &query_methods[i]))
				time_batch(c, &query_methods[i], n, r, batch[i]);
		}
	}
}

/* ---- main ---------------------------------------------------------------------------- */

static void describe_methods(const struct qctx *c)
{
	for (unsigned i = 0; i < query_nmethods; i++) {
		const struct method *m = &query_methods[i];

		printf("M %s %s %s\n", m->key, c->q[m->question].cidr, m->label);
		if (!query_usable(c, m))
			printf("SKIP %s %s\n", m->key, c->lua_note);
	}
}

/* Unload and load again with the connections held: the seeding iterator,
 * not the live programs, must then find every one of them. */
static void reload_check(struct qctx *c, const struct ca_load_opts *lo, unsigned n)
{
	uint64_t ns;

	close_and_unload(c, lo->pin_dir);
	ns = load_and_open(c, lo);
	for (int qi = 0; qi < Q_NR; qi++)
		printf("RELOAD %u %.1f %s %llu %llu\n", n, ns / 1e6, c->q[qi].cidr,
		       (unsigned long long)query_connaudit(c, qi),
		       (unsigned long long)c->q[qi].want);
}

int main(int argc, char **argv)
{
	struct qctx c = { .diag_fd = -1 };
	struct holders h;
	struct opts o;

	parse_opts(&o, argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The Lua module finds the maps the way its users' scripts would. */
	setenv(CA_ENV_PIN_DIR, o.load.pin_dir, 1);
	fit_level(&c, &o.load, o.levels[0], o.lua_dir);
	describe_methods(&c);
	holders_start(&h, c.port);
	for (unsigned l = 0; l < o.nlevels; l++) {
		fit_level(&c, &o.load, o.levels[l] > h.held ? o.levels[l] : h.held, o.lua_dir);
		set_level(&c, &h, o.levels[l]);
		time_level(&c, o.levels[l], &o);
	}
	/* The Lua module's handle would go stale across the reload. */
	query_fini(&c);
	reload_check(&c, &o.load, h.held);
	holders_stop(&h);
	close_and_unload(&c, o.load.pin_dir);
	return 0;
}
