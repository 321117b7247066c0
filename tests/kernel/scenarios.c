// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * scenarios.c - connaudit against the real kernel.
 *
 * Usage: kernel_test [--list] [SUBSTRING...]
 *
 * Each scenario runs in a fork of this runner, in a fresh network namespace,
 * with a pin dir of its own under /sys/fs/bpf. After every step it waits (at
 * most KT_WAIT_MS) until three views agree: what the scenario expects, what
 * the kernel shows through sock_diag (truth.c), and what connaudit counts,
 * per peer and in every aggregate, with a clean health record. The runner
 * prints "ok N - name" / "not ok N - name" with the diff, and last
 * "N passed, N failed"; it removes pins, cgroups and processes whatever
 * happened to the scenario.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <bpf/bpf.h>

#include "scenarios.h"

/* How long one scenario may run; CONNAUDIT_SCENARIO_SECONDS raises it for
 * long runs (make stress). */
#define SCENARIO_SECONDS	120

static int scenario_seconds(void)
{
	const char *s = getenv("CONNAUDIT_SCENARIO_SECONDS");
	int n = s ? atoi(s) : 0;

	return n > 0 ? n : SCENARIO_SECONDS;
}

/* ---- the scenario's world (struct env: scenarios.h) ----------------------- */

struct env E;
struct ca_error ERR;

void ca_check(int r, const char *call)
{
	if (r < 0)
		kt_fail("%s: %s (%s)", call, strerror(-r), ERR.msg);
}

void expect_eq(uint64_t got, uint64_t want, const char *expr, const char *file, int line)
{
	if (got != want)
		kt_fail("%s:%d: %s: expected %llu, got %llu", file, line, expr,
			(unsigned long long)want, (unsigned long long)got);
}

void open_handle(void)
{
	ca_close(E.h);
	E.h = NULL;
	CA_CHECK(ca_open(&E.h, E.pin_dir, &ERR));
}

/* The library refuses (-EBUSY) while any other load or unload runs under
 * /sys/fs/bpf, ours or not: wait that out, for a while. */
#define BUSY_RETRY_MS	10000

/* ca_load(o), or ca_unload(pin_dir) when o is NULL. */
int admin_patiently(const struct ca_load_opts *o, const char *pin_dir, struct ca_error *err)
{
	int64_t deadline = kt_now_ms() + BUSY_RETRY_MS;
	int r;

	while ((r = o ? ca_load(o, err) : ca_unload(pin_dir, err)) == -EBUSY &&
	       kt_now_ms() < deadline)
		usleep(10000);
	return r;
}

/* Load into the scenario's pin dir with whatever else o asks for. */
void load_opts(struct ca_load_opts *o)
{
	o->pin_dir = E.pin_dir;
	o->quiet = true;
	CA_CHECK(admin_patiently(o, NULL, &ERR));
	open_handle();
}

void load_scoped(const char *cgroup)
{
	struct ca_load_opts o = { .cgroup = cgroup };

	load_opts(&o);
}

void load(void)
{
	load_scoped(NULL);
}

void second_namespace(void)
{
	ns_spawn(&E.ns[NS_B]);
	ns_switch(&E.ns[NS_B]);
	truth_open(&E.truth[NS_B]);
	ns_switch(&E.ns[NS_A]);
}

/* ---- comparing the three views --------------------------------------------- */

struct view {
	struct tally truth, auditor;		/* per peer */
	struct tally truth_agg, auditor_agg;	/* prefixes and per-port totals */
	uint64_t marks;				/* ca_marks entries of the namespace */
};

struct collect_arg {
	uint32_t netns;
	struct tally *out;
};

static int collect(const struct ca_key *k, uint64_t count, void *arg)
{
	struct collect_arg *c = arg;

	if (k->netns == c->netns)
		tally_add(c->out, k, count);
	return 0;
}

static void auditor_tally(bool prefixes, uint32_t netns, struct tally *out)
{
	struct collect_arg c = { netns, out };

	CA_CHECK(ca_foreach(E.h, prefixes, collect, &c, &ERR));
	tally_finish(out);
}

/* Entries of the pinned ca_marks for namespace inode. Every counted session
 * holds one and nothing else may: a mark left behind by a closed socket
 * would be a leak. */
static uint64_t marks_in(uint32_t inode)
{
	static uint64_t keys[256];
	static struct ca_mark marks[256];
	char path[PATH_MAX];
	uint64_t n = 0, batch_in, batch_out;	/* a bucket index for hash maps */
	bool first = true;
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s/%s", E.pin_dir, CA_PIN_MARKS) >= (int)sizeof(path))
		kt_fail("pin dir too long: %s", E.pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		kt_fail("cannot open %s: %s", path, strerror(errno));
	do {
		__u32 got = NELEMS(keys);

		rc = bpf_map_lookup_batch(fd, first ? NULL : &batch_in, &batch_out, keys, marks,
					  &got, NULL);
		if (rc && rc != -ENOENT)
			kt_fail("batched lookup in %s: %s", path, strerror(-rc));
		for (__u32 i = 0; i < got; i++)
			n += marks[i].key.netns == inode;
		batch_in = batch_out;
		first = false;
	} while (!rc);
	close(fd);
	return n;
}

static void view_gather(struct view *v, int ns)
{
	*v = (struct view){ 0 };
	truth_peers(&E.truth[ns], &E.filter, &v->truth);
	auditor_tally(false, E.ns[ns].inode, &v->auditor);
	tally_aggregate(&v->truth, ca_loaded_config(E.h), &v->truth_agg);
	auditor_tally(true, E.ns[ns].inode, &v->auditor_agg);
	v->marks = marks_in(E.ns[ns].inode);
}

static void view_free(struct view *v)
{
	tally_free(&v->truth);
	tally_free(&v->auditor);
	tally_free(&v->truth_agg);
	tally_free(&v->auditor_agg);
}

static bool view_agrees(const struct view *v, uint64_t expect)
{
	return tally_total(&v->truth) == expect && v->marks == expect &&
	       !tally_diff(&v->truth, &v->auditor, NULL) &&
	       !tally_diff(&v->truth_agg, &v->auditor_agg, NULL);
}

static void view_report(const struct view *v, uint64_t expect, const char *step, int ns)
{
	printf("%s (netns %u): the scenario expects %llu sessions, the kernel shows %llu, "
	       "ca_marks holds %llu\n", step, E.ns[ns].inode, (unsigned long long)expect,
	       (unsigned long long)tally_total(&v->truth), (unsigned long long)v->marks);
	printf("  per peer:\n");
	if (!tally_diff(&v->truth, &v->auditor, stdout))
		printf("    (agree)\n");
	printf("  aggregates:\n");
	if (!tally_diff(&v->truth_agg, &v->auditor_agg, stdout))
		printf("    (agree)\n");
}

void check_health(const char *step)
{
	struct ca_health hl;

	CA_CHECK(ca_read_health(E.h, &hl, &ERR));
	if (hl.incomplete || hl.uncounted || hl.peers_full != E.peers_full ||
	    hl.prefixes_full != E.prefixes_full || hl.contention || hl.marks_full != E.marks_full ||
	    hl.underflow || hl.retired)
		kt_fail("%s: health: incomplete %lld, uncounted %lld, peers_full %llu (expected %llu), "
			"prefixes_full %llu (expected %llu), contention %llu, marks_full %llu "
			"(expected %llu), "
			"underflow %llu, retired %llu", step, (long long)hl.incomplete, (long long)hl.uncounted,
			(unsigned long long)hl.peers_full, (unsigned long long)E.peers_full,
			(unsigned long long)hl.prefixes_full, (unsigned long long)E.prefixes_full,
			(unsigned long long)hl.contention, (unsigned long long)hl.marks_full,
			(unsigned long long)E.marks_full,
			(unsigned long long)hl.underflow, (unsigned long long)hl.retired);
}

bool views_settle(int ns, uint64_t expect, const char *step)
{
	int64_t deadline = kt_now_ms() + KT_WAIT_MS;
	struct view v;
	bool agree;

	for (;;) {
		view_gather(&v, ns);
		agree = view_agrees(&v, expect);
		/* Loopback handshakes and FINs finish in softirq context, a
		 * moment after the call that started them returned. */
		if (agree || kt_now_ms() > deadline)
			break;
		view_free(&v);
		usleep(5000);
	}
	if (!agree)
		view_report(&v, expect, step, ns);
	view_free(&v);
	return agree;
}

/* The check after every step: `expect` sessions in namespace ns, and
 * connaudit agreeing with the kernel about each of them. */
void compare_ns(int ns, uint64_t expect, const char *fmt, ...)
{
	char step[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(step, sizeof(step), fmt, ap);
	va_end(ap);
	if (!views_settle(ns, expect, step))
		kt_fail("%s: connaudit and the kernel disagree", step);
	check_health(step);
}

/* ---- connections ------------------------------------------------------------- */

/* How a service is offered and who connects to it. */
struct family_case {
	const char *name;
	const char *listen;	/* listener address */
	bool v6only;
	const char *src[3];	/* client sources, round robin */
};

static const struct family_case fam_v4 = {
	"v4", "127.0.0.1", false, { "127.0.1.1", "127.0.1.2", "127.0.2.1" } };
static const struct family_case fam_v6 = {
	"v6", "fd00:ca::1", true, { "fd00:ca::2", "fd00:ca::3", "fd00:ca:0:1::4" } };
/* IPv4 clients of a dual-stack [::] listener: peers are ::ffff:a.b.c.d. */
static const struct family_case fam_mapped = {
	"mapped", "::", false, { "127.0.1.1", "127.0.1.2", "127.0.2.1" } };
static const struct family_case fam_dual = {
	"dual", "::", false, { "127.0.1.1", "fd00:ca::2", "127.0.2.1" } };
static const struct family_case fam_v6any = {
	"v6only-any", "::", true, { "fd00:ca::2", "fd00:ca:0:2::5", "fd00:ca::3" } };

static const char *dst_for(const char *src)
{
	return strchr(src, ':') ? "fd00:ca::1" : "127.0.0.1";
}

static int listen_on(const struct family_case *fc, uint16_t port)
{
	return net_listen(fc->listen, port, fc->v6only);
}

static struct conn open_conn(int lfd, const struct family_case *fc, unsigned i, uint16_t port)
{
	const char *src = fc->src[i % 3];

	return net_conn_open(lfd, src, dst_for(src), port);
}

/* Open n connections to lfd, checking after each one. */
static void open_counted(int lfd, const struct family_case *fc, uint16_t port,
			 struct conn *c, unsigned n, uint64_t before)
{
	for (unsigned i = 0; i < n; i++) {
		c[i] = open_conn(lfd, fc, i, port);
		compare(before + i + 1, "%s: opened connection %u to port %u", fc->name, i + 1, port);
	}
}

void conn_close(struct conn *c)
{
	net_close(&c->srv);
	net_close(&c->cli);
}

/* Close n connections, server side first, checking after each one. */
static void close_counted(struct conn *c, unsigned n, uint64_t before)
{
	for (unsigned i = 0; i < n; i++) {
		conn_close(&c[i]);
		compare(before - i - 1, "closed connection %u", i + 1);
	}
}

static void destroy(int fd)
{
	int r = truth_destroy(&E.truth[NS_A], net_cookie(fd));

	if (r == -EOPNOTSUPP)
		kt_skip("SOCK_DESTROY: kernel built without CONFIG_INET_DIAG_DESTROY");
	if (r)
		kt_fail("SOCK_DESTROY: %s", strerror(-r));
}

/* ---- scenarios: one family, many peers ------------------------------------------ */

static void sc_sessions(const void *a, const void *b)
{
	const struct family_case *fc = a;
	struct conn c[6];

	(void)b;
	load();
	int lfd = listen_on(fc, SMTP);

	compare(0, "loaded, listener open");
	open_counted(lfd, fc, SMTP, c, 6, 0);
	close_counted(c, 6, 6);
}

/* ---- scenarios: the ways one connection ends ------------------------------------ */

enum side { CLIENT, SERVER };
enum ending_how { FIN, HALF_CLOSE, RST, DESTROY, DISCONNECT, REUSE };

struct step {
	enum side side;
	enum ending_how how;
	uint64_t left;		/* of the 3 connections, how many still count */
	const char *what;	/* NULL: no such step */
};

/* The disconnected accepted socket dials the listener it came from: an
 * outbound connection now, whose new server side counts and it does not. */
static void reuse_as_client(struct conn *c, int lfd, const struct family_case *fc)
{
	net_close(&c->cli);
	net_connect_fd(c->srv, dst_for(fc->src[1]), SMTP);
	c->cli = c->srv;
	c->srv = net_accept_of(lfd, c->cli);
}

static void act(const struct step *st, struct conn *c, int lfd, const struct family_case *fc)
{
	int *fd = st->side == CLIENT ? &c->cli : &c->srv;

	switch (st->how) {
	case FIN:
		net_close(fd);
		break;
	case HALF_CLOSE:
		net_shutdown_wr(*fd);
		break;
	case RST:
		net_close_rst(fd);
		break;
	case DESTROY:
		destroy(*fd);
		break;
	case DISCONNECT:
		net_disconnect(*fd);
		break;
	case REUSE:
		reuse_as_client(c, lfd, fc);
		break;
	}
}

static const struct ending {
	const char *name;
	struct step steps[2];
} endings[] = {
	{ "client-close", { { CLIENT, FIN, 3, "client closed: server in CLOSE_WAIT" },
			    { SERVER, FIN, 2, "server closed from CLOSE_WAIT" } } },
	{ "client-halfclose", { { CLIENT, HALF_CLOSE, 3, "client shut down writing: CLOSE_WAIT" },
				{ SERVER, RST, 2, "server reset from CLOSE_WAIT" } } },
	{ "closewait-destroy", { { CLIENT, HALF_CLOSE, 3, "client shut down writing: CLOSE_WAIT" },
				 { SERVER, DESTROY, 2, "server destroyed in CLOSE_WAIT" } } },
	{ "server-close", { { SERVER, FIN, 2, "server closed" } } },
	{ "client-rst", { { CLIENT, RST, 2, "client reset" } } },
	{ "server-rst", { { SERVER, RST, 2, "server reset" } } },
	{ "server-destroy", { { SERVER, DESTROY, 2, "server destroyed (ss -K)" } } },
	{ "client-destroy", { { CLIENT, DESTROY, 2, "client destroyed (ss -K): server reset" } } },
	{ "disconnect-reuse", { { SERVER, DISCONNECT, 2, "connect(AF_UNSPEC) on the accepted socket" },
				{ SERVER, REUSE, 3, "the same socket reconnected as a client" } } },
};

static void sc_ending(const void *a, const void *b)
{
	const struct family_case *fc = a;
	const struct ending *en = b;
	struct conn c[3];

	load();
	int lfd = listen_on(fc, SMTP);

	open_counted(lfd, fc, SMTP, c, 3, 0);
	for (unsigned i = 0; i < 2 && en->steps[i].what; i++) {
		act(&en->steps[i], &c[1], lfd, fc);
		compare(en->steps[i].left, "%s", en->steps[i].what);
	}
	for (unsigned i = 0; i < 3; i++)
		conn_close(&c[i]);
	compare(0, "everything closed");
}

/* ---- scenarios: the accept queue ------------------------------------------------- */

static void sc_accept_queue(const void *a, const void *b)
{
	int cli[4], srv[2];

	(void)a, (void)b;
	load();
	int lfd = net_listen("127.0.0.1", SMTP, false);

	for (unsigned i = 0; i < 4; i++) {
		cli[i] = net_connect(fam_v4.src[i % 3], "127.0.0.1", SMTP);
		compare(i + 1, "connection %u completed, not accepted", i + 1);
	}
	for (unsigned i = 0; i < 2; i++) {
		srv[i] = net_accept_of(lfd, cli[i]);
		compare(4, "connection %u accepted", i + 1);
	}
	net_close(&srv[0]);
	compare(3, "an accepted connection closed by the server");
	net_close(&cli[2]);
	compare(3, "a queued connection closed by its client: CLOSE_WAIT in the queue");
	net_close_rst(&cli[3]);
	compare(2, "a queued connection reset by its client");
	net_close(&srv[1]);
	compare(1, "the other accepted connection closed");
	net_close(&lfd);
	compare(0, "listener closed: the queued CLOSE_WAIT child is dropped");
	net_close(&cli[0]);
	net_close(&cli[1]);
}

/* ---- scenarios: service ports and queries ------------------------------------------ */

/* A ca_count_str query and the right answer, worked out by hand. */
struct query {
	const char *cidr, *service, *peer;
	uint16_t port;			/* the service's port */
	const char *match;		/* the prefix the answer sums over */
	unsigned len;			/* (match NULL: every peer) */
	uint64_t want[2];		/* before and after the closes */
};

static void check_query(const struct query *q, const struct tally *truth, unsigned round)
{
	struct kt_prefix p = kt_prefix(q->match, q->len);
	uint64_t n = ~0ull;
	int r = ca_count_str(E.h, &E.services, q->cidr, q->service, q->peer, &n, &ERR);

	if (r)
		kt_fail("count %s %s peer %s: returned %d (%s)", q->cidr, q->service,
			q->peer ? q->peer : "-", r, ERR.msg);
	/* Both checks: the table against the kernel, connaudit against both. */
	if (tally_sum(truth, q->port, &p) != q->want[round] || n != q->want[round])
		kt_fail("count %s %s peer %s: expected %llu, the kernel shows %llu, connaudit says %llu",
			q->cidr, q->service, q->peer ? q->peer : "-",
			(unsigned long long)q->want[round],
			(unsigned long long)tally_sum(truth, q->port, &p), (unsigned long long)n);
}

static void check_queries(const struct query *q, size_t n, unsigned round)
{
	struct tally truth = { 0 };

	truth_peers(&E.truth[NS_A], &E.filter, &truth);
	for (size_t i = 0; i < n; i++)
		check_query(&q[i], &truth, round);
	tally_free(&truth);
}

void expect_count(const char *cidr, const char *peer, int want_rc, uint64_t want)
{
	uint64_t n = ~0ull;
	int r = ca_count_str(E.h, &E.services, cidr, "SMTP", peer, &n, &ERR);

	if (r != want_rc || n != want)
		kt_fail("count %s SMTP peer %s: expected %llu (return %d), got %llu (return %d: %s)",
			cidr, peer ? peer : "-", (unsigned long long)want, want_rc,
			(unsigned long long)n, r, r < 0 ? ERR.msg : "");
}

/* Peers of the query scenario: port 25, 10 sessions; port 2025, 2. */
static const struct peer_load {
	const char *src;
	uint16_t port;
	unsigned n;
	bool closed_later;	/* server closes these before the second round */
} query_peers[] = {
	{ "127.0.1.1", SMTP, 2, false },	{ "127.0.1.2", SMTP, 1, false },
	{ "127.0.2.1", SMTP, 1, false },	{ "127.1.0.1", SMTP, 1, false },
	{ "fd00:ca::2", SMTP, 1, false },	{ "fd00:ca::3", SMTP, 2, true },
	{ "fd00:ca:0:1::4", SMTP, 1, false },	{ "fd00:ca:0:2::5", SMTP, 1, false },
	{ "127.0.1.1", CONTROL, 1, false },
	{ "fd00:ca::2", CONTROL, 1, false },
};

static const struct query queries[] = {
	{ "/32", "SMTP", "127.0.1.1", SMTP, "127.0.1.1", 32, { 2, 2 } },
	{ "/32", "SMTP", "::ffff:127.0.1.1", SMTP, "127.0.1.1", 32, { 2, 2 } },
	{ "/24", "SMTP", "127.0.1.200", SMTP, "127.0.1.0", 24, { 3, 3 } },
	{ "/16", "SMTP", "127.0.9.9", SMTP, "127.0.0.0", 16, { 4, 4 } },
	{ "/8", "SMTP", "127.0.9.9", SMTP, "127.0.0.0", 8, { 5, 5 } },
	{ "/24,/64", "SMTP", "fd00:ca::99", SMTP, "fd00:ca::", 64, { 3, 1 } },
	{ "/24,/64", "SMTP", "127.0.2.7", SMTP, "127.0.2.0", 24, { 1, 1 } },
	{ "/48", "SMTP", "fd00:ca:0:5::1", SMTP, "fd00:ca::", 48, { 5, 3 } },
	{ "/128", "SMTP", "fd00:ca::3", SMTP, "fd00:ca::3", 128, { 2, 0 } },
	{ "/0", "SMTP", NULL, SMTP, NULL, 0, { 10, 8 } },
	{ "127.0.1.0/24", "SMTP", NULL, SMTP, "127.0.1.0", 24, { 3, 3 } },
	{ "127.0.1.2", "SMTP", NULL, SMTP, "127.0.1.2", 32, { 1, 1 } },
	{ "[fd00:ca::3]", "SMTP", NULL, SMTP, "fd00:ca::3", 128, { 2, 0 } },
	{ "[fd00:ca::]/48", "SMTP", NULL, SMTP, "fd00:ca::", 48, { 5, 3 } },
	{ "[fd00:ca::]/63", "SMTP", NULL, SMTP, "fd00:ca::", 63, { 4, 2 } },
	/* Not aggregated: sums of the addresses or of the configured prefixes
	 * inside (user/plan.c), or too wide for that, a scan. */
	{ "/25", "SMTP", "127.0.1.9", SMTP, "127.0.1.0", 25, { 3, 3 } },
	{ "127.0.1.0/30", "SMTP", NULL, SMTP, "127.0.1.0", 30, { 3, 3 } },
	{ "::ffff:127.0.1.0/121", "SMTP", NULL, SMTP, "127.0.1.0", 25, { 3, 3 } },
	{ "/20", "SMTP", "127.0.9.9", SMTP, "127.0.0.0", 20, { 4, 4 } },
	{ "/12", "SMTP", "127.0.9.9", SMTP, "127.0.0.0", 12, { 5, 5 } },
	{ "0.0.0.0/1", "SMTP", NULL, SMTP, "0.0.0.0", 1, { 5, 5 } },
	{ "/56", "SMTP", "fd00:ca::9", SMTP, "fd00:ca::", 56, { 5, 3 } },
	{ "[fd00:ca::]/120", "SMTP", NULL, SMTP, "fd00:ca::", 120, { 3, 1 } },
	{ "[fd00:ca::]/32", "SMTP", NULL, SMTP, "fd00:ca::", 32, { 5, 3 } },
	{ "[::]/0", "SMTP", NULL, SMTP, "::", 0, { 5, 3 } },
	{ "/32", "Control", "127.0.1.1", CONTROL, "127.0.1.1", 32, { 1, 1 } },
	{ "/0", "Control", NULL, CONTROL, NULL, 0, { 2, 2 } },
	{ "/0", "ECStream", NULL, ECSTREAM, NULL, 0, { 0, 0 } },
};

static void sc_queries(const void *a, const void *b)
{
	struct conn c[16];
	unsigned n = 0;

	(void)a, (void)b;
	load();
	int lsmtp = net_listen("::", SMTP, false);
	int lctl = net_listen("::", CONTROL, false);

	for (size_t i = 0; i < NELEMS(query_peers); i++) {
		const struct peer_load *p = &query_peers[i];

		for (unsigned j = 0; j < p->n; j++, n++)
			c[n] = net_conn_open(p->port == SMTP ? lsmtp : lctl, p->src,
					     dst_for(p->src), p->port);
		compare(n, "%u sessions from %s to port %u", p->n, p->src, p->port);
	}
	check_queries(queries, NELEMS(queries), 0);
	unsigned k = 0, closed = 0;

	for (size_t i = 0; i < NELEMS(query_peers); i++)
		for (unsigned j = 0; j < query_peers[i].n; j++, k++)
			if (query_peers[i].closed_later) {
				net_close(&c[k].srv);
				closed++;
			}
	compare(n - closed, "the sessions marked closed_later closed");
	check_queries(queries, NELEMS(queries), 1);
}

/* Each built-in service on a listener of another kind. */
static const struct service_case {
	const char *service;
	uint16_t port;
	const struct family_case *fc;
	unsigned n;
} service_cases[] = {
	{ "SMTP", SMTP, &fam_dual, 3 },
	{ "Control", CONTROL, &fam_v4, 2 },
	{ "ECStream", ECSTREAM, &fam_v6, 1 },
	{ "ECCluster", ECCLUSTER, &fam_mapped, 4 },
};

static void sc_services(const void *a, const void *b)
{
	struct conn c[NELEMS(service_cases)][4];
	struct query q[NELEMS(service_cases)];
	uint64_t total = 0;

	(void)a, (void)b;
	load();
	for (size_t i = 0; i < NELEMS(service_cases); i++) {
		const struct service_case *s = &service_cases[i];

		open_counted(listen_on(s->fc, s->port), s->fc, s->port, c[i], s->n, total);
		total += s->n;
		q[i] = (struct query){ "/0", s->service, NULL, s->port, NULL, 0, { s->n, 0 } };
	}
	check_queries(q, NELEMS(q), 0);
	for (size_t i = 0; i < NELEMS(service_cases); i++) {
		close_counted(c[i], service_cases[i].n, total);
		total -= service_cases[i].n;
	}
	check_queries(q, NELEMS(q), 1);
}

/* ---- scenarios: what is never counted --------------------------------------------- */

/* A veth pair between our namespace (fd00:ca:1::1) and the second one
 * (fd00:ca:1::2): unique-local addresses that exist nowhere else. */
static void link_namespaces(void)
{
	second_namespace();
	net_veth_add("ca0", "ca1", &E.ns[NS_B]);
	net_link_up("ca0");
	net_addr_add("ca0", "fd00:ca:1::1/64");
	ns_switch(&E.ns[NS_B]);
	net_link_up("ca1");
	net_addr_add("ca1", "fd00:ca:1::2/64");
	ns_switch(&E.ns[NS_A]);
}

/* A socket connected to itself makes a simultaneous open: it passes
 * SYN_RECV -> ESTABLISHED as an accepted child does (and sock_ops calls it
 * passive-established), but it is outbound. `expect` sessions meanwhile. */
static void self_connect(uint64_t expect)
{
	int self = net_socket_bound("127.0.0.1", ECCLUSTER);

	net_connect_fd(self, "127.0.0.1", ECCLUSTER);
	compare(expect, "a socket connected to itself (simultaneous open)");
	net_close(&self);
	compare(expect, "the self-connected socket closed");
}

static void sc_outbound(const void *a, const void *b)
{
	uint64_t outbound[1];

	(void)a, (void)b;
	load();
	link_namespaces();
	ns_switch(&E.ns[NS_B]);
	int lb = net_listen("::", ECCLUSTER, false);
	ns_switch(&E.ns[NS_A]);

	struct conn ab = net_conn_open(lb, "fd00:ca:1::1", "fd00:ca:1::2", ECCLUSTER);

	compare_ns(NS_A, 0, "A dialled B: the client end in A is not counted");
	compare_ns(NS_B, 1, "A dialled B: B counts it");

	int la = net_listen("::", SMTP, false);

	ns_switch(&E.ns[NS_B]);
	struct conn ba = { .cli = net_connect("fd00:ca:1::2", "fd00:ca:1::1", SMTP) };
	ns_switch(&E.ns[NS_A]);
	ba.srv = net_accept_of(la, ba.cli);
	compare_ns(NS_A, 1, "B dialled A: A counts it");
	compare_ns(NS_B, 1, "B dialled A: the client end in B is not counted");

	/* A client holding a listening port (on another address): sock_diag's
	 * rule would call it inbound, connaudit must not. */
	int lc = net_listen("127.0.0.1", CONTROL, false);
	struct conn bound = { .cli = net_socket_bound("127.0.1.5", CONTROL) };

	net_connect_fd(bound.cli, "127.0.0.1", SMTP);
	bound.srv = net_accept_of(la, bound.cli);
	outbound[0] = net_cookie(bound.cli);
	E.filter = (struct truth_filter){ .outbound = outbound, .noutbound = 1 };
	compare(2, "a client bound to listening port %u dialled port %u", CONTROL, SMTP);
	self_connect(2);
	conn_close(&bound);
	conn_close(&ba);
	conn_close(&ab);
	compare_ns(NS_A, 0, "all closed");
	compare_ns(NS_B, 0, "all closed");
	net_close(&lc);
}

/* ---- scenarios: namespaces ---------------------------------------------------------- */

static void sc_netns_same_port(const void *a, const void *b)
{
	struct conn ca[2], cb[3];
	uint64_t n;

	(void)a, (void)b;
	load();
	second_namespace();
	int la = listen_on(&fam_v4, SMTP);

	ns_switch(&E.ns[NS_B]);
	int lb = listen_on(&fam_v4, SMTP);

	for (unsigned i = 0; i < 3; i++)
		cb[i] = net_conn_open(lb, "127.0.1.1", "127.0.0.1", SMTP);
	ns_switch(&E.ns[NS_A]);
	for (unsigned i = 0; i < 2; i++)
		ca[i] = net_conn_open(la, "127.0.1.1", "127.0.0.1", SMTP);
	compare_ns(NS_A, 2, "same peer and port in two namespaces");
	compare_ns(NS_B, 3, "same peer and port in two namespaces");
	conn_close(&ca[0]);
	compare_ns(NS_A, 1, "one closed in A");
	compare_ns(NS_B, 3, "one closed in A");

	CA_CHECK(ca_count_str(E.h, &E.services, "/32", "SMTP", "127.0.1.1", &n, &ERR));
	EXPECT_EQ(n, 1);
	ca_set_netns(E.h, E.ns[NS_B].inode);
	CA_CHECK(ca_count_str(E.h, &E.services, "/32", "SMTP", "127.0.1.1", &n, &ERR));
	EXPECT_EQ(n, 3);
	ca_set_netns(E.h, 0);
	for (unsigned i = 0; i < 3; i++)
		conn_close(&cb[i]);
	conn_close(&ca[1]);
	compare_ns(NS_A, 0, "all closed");
	compare_ns(NS_B, 0, "all closed");
}

/* Inbound means accepted by a listener, not "a listener holds the port":
 * sessions outlive their listener (though `ss` users would miss them). */
static void sc_listener_closed(const void *a, const void *b)
{
	struct conn c[2];

	(void)a, (void)b;
	load();
	int lfd = listen_on(&fam_v4, SMTP);

	open_counted(lfd, &fam_v4, SMTP, c, 2, 0);
	net_close(&lfd);
	expect_count("/0", NULL, 0, 2);
	expect_count("/32", fam_v4.src[1], 0, 1);
	conn_close(&c[0]);
	conn_close(&c[1]);
	compare(0, "the sessions of a closed listener closed");
}

/* MPTCP: the connection-level socket is not TCP; its subflows are, and
 * `ss` and connaudit count each of those once. */
static void sc_mptcp(const void *a, const void *b)
{
	struct conn c[2];

	(void)a, (void)b;
	load();
	int lfd = net_listen_proto("127.0.0.1", SMTP, false, IPPROTO_MPTCP);

	for (unsigned i = 0; i < 2; i++) {
		c[i].cli = net_socket_bound_proto(fam_v4.src[i], 0, IPPROTO_MPTCP);
		net_connect_fd(c[i].cli, "127.0.0.1", SMTP);
		c[i].srv = net_accept_of(lfd, c[i].cli);
		compare(i + 1, "MPTCP connection %u", i + 1);
	}
	net_close(&c[0].cli);
	compare(2, "an MPTCP client closed: its subflow in CLOSE_WAIT");
	close_counted(c, 2, 2);
}

/* ---- scenarios: sessions older than the auditor ---------------------------------------- */

/* A mix of states in one namespace before load: 7 counted sessions. */
struct preexisting {
	struct conn c[8];
	int queued;		/* client of a connection left in the accept queue */
	unsigned n;
	int lfd[3];
};

static void open_preexisting(struct preexisting *p)
{
	p->lfd[0] = listen_on(&fam_dual, SMTP);
	p->lfd[1] = listen_on(&fam_v4, CONTROL);
	p->lfd[2] = listen_on(&fam_v6, ECSTREAM);
	p->n = 0;
	for (unsigned i = 0; i < 3; i++)
		p->c[p->n++] = open_conn(p->lfd[0], &fam_dual, i, SMTP);
	for (unsigned i = 0; i < 2; i++)
		p->c[p->n++] = open_conn(p->lfd[1], &fam_v4, i, CONTROL);
	for (unsigned i = 0; i < 2; i++)
		p->c[p->n++] = open_conn(p->lfd[2], &fam_v6, i, ECSTREAM);
	net_shutdown_wr(p->c[3].cli);	/* CLOSE_WAIT: counted */
	net_close(&p->c[6].srv);	/* FIN_WAIT2: not counted */
	p->queued = net_connect("127.0.2.2", "127.0.0.1", CONTROL);
}

static void close_preexisting(struct preexisting *p, int ns, uint64_t before)
{
	for (unsigned i = 0; i < p->n; i++) {
		bool counted = p->c[i].srv >= 0;

		conn_close(&p->c[i]);
		before -= counted;
		compare_ns(ns, before, "pre-existing connection %u closed", i + 1);
	}
	net_close_rst(&p->queued);
	compare_ns(ns, before - 1, "queued pre-existing connection reset");
}

/* A namespace that no process is in and no /run/netns file names, kept
 * alive by its sockets alone (made by setns and left): its sessions exist
 * and count all the same. */
static void sc_seeding_socket_only_netns(const void *a, const void *b)
{
	struct conn c[2];

	(void)a, (void)b;
	second_namespace();
	ns_switch(&E.ns[NS_B]);
	int lfd = listen_on(&fam_v4, SMTP);

	c[0] = open_conn(lfd, &fam_v4, 0, SMTP);
	c[1] = open_conn(lfd, &fam_v4, 1, SMTP);
	ns_switch(&E.ns[NS_A]);
	kill(E.ns[NS_B].holder, SIGKILL);
	waitpid(E.ns[NS_B].holder, NULL, 0);
	E.ns[NS_B].holder = 0;
	load();
	compare_ns(NS_B, 2, "loaded: the namespace is held by our sockets only");
	conn_close(&c[0]);
	conn_close(&c[1]);
	compare_ns(NS_B, 0, "closed");
}

static void sc_seeding(const void *a, const void *b)
{
	struct preexisting pa, pb;

	(void)a, (void)b;
	second_namespace();
	open_preexisting(&pa);
	ns_switch(&E.ns[NS_B]);
	open_preexisting(&pb);
	ns_switch(&E.ns[NS_A]);
	load();
	compare_ns(NS_A, 7, "loaded after connections opened");
	compare_ns(NS_B, 7, "loaded after connections opened (second namespace)");
	close_preexisting(&pa, NS_A, 7);
	close_preexisting(&pb, NS_B, 7);
}

/* ---- scenarios: the auditor's own life -------------------------------------------------- */

static void sc_loader_exit(const void *a, const void *b)
{
	struct conn c[4];
	int status;

	(void)a, (void)b;
	int lfd = listen_on(&fam_dual, SMTP);

	c[0] = open_conn(lfd, &fam_dual, 0, SMTP);
	c[1] = open_conn(lfd, &fam_dual, 1, SMTP);
	fflush(stdout);
	pid_t pid = fork();

	if (pid == 0) {
		struct ca_load_opts o = { .pin_dir = E.pin_dir, .quiet = true };
		int r = admin_patiently(&o, NULL, &ERR);

		if (r)
			printf("loader child: %s\n", ERR.msg);
		fflush(stdout);
		_exit(r ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		kt_fail("fork/wait for the loader: %m");
	EXPECT_EQ(WIFEXITED(status) && WEXITSTATUS(status) == 0, 1);
	open_handle();
	compare(2, "the loader exited");
	open_counted(lfd, &fam_dual, SMTP, c + 2, 2, 2);
	close_counted(c, 4, 4);
}

static void sc_reload(const void *a, const void *b)
{
	struct conn c[5];
	struct ca_handle *h;

	(void)a, (void)b;
	load();
	int lfd = listen_on(&fam_dual, SMTP);

	open_counted(lfd, &fam_dual, SMTP, c, 3, 0);
	CA_CHECK(admin_patiently(NULL, E.pin_dir, &ERR));
	EXPECT_EQ(ca_handle_stale(E.h), true);
	uint64_t n;

	/* A handle on unloaded maps must not answer with their frozen counts. */
	EXPECT_EQ(ca_count_str(E.h, &E.services, "/0", "SMTP", NULL, &n, &ERR) < 0, true);
	ca_close(E.h);
	E.h = NULL;
	EXPECT_EQ(ca_open(&h, E.pin_dir, &ERR), -ENOENT);

	/* Changes while nothing watches: one ends, one waits in CLOSE_WAIT,
	 * two more open. */
	net_close_rst(&c[0].srv);
	net_shutdown_wr(c[1].cli);
	c[3] = open_conn(lfd, &fam_dual, 3, SMTP);
	c[4] = open_conn(lfd, &fam_dual, 4, SMTP);
	load();
	compare(4, "reloaded with live connections");
	close_counted(c + 1, 4, 4);
}

/* ---- scenarios: cgroup scope ----------------------------------------------------------- */

/* Make the test cgroups and count only their sockets from now on. */
void test_cgroup_setup(struct test_cgroup *cg)
{
	if (!E.cgroup[0])
		kt_skip("no cgroup2 mount");
	cg_self(cg->home, sizeof(cg->home));
	snprintf(cg->sub, sizeof(cg->sub), "%s/sub", E.cgroup);
	cg_create(E.cgroup);
	cg_create(cg->sub);
	cg->ids[0] = cg_id(E.cgroup);
	cg->ids[1] = cg_id(cg->sub);
	E.filter = (struct truth_filter){ .cgroups = cg->ids, .ncgroups = 2 };
}

static void sc_cgroup(const void *a, const void *b)
{
	struct test_cgroup cg;
	struct conn in[5], out[3];

	(void)a, (void)b;
	test_cgroup_setup(&cg);
	/* Sockets take the cgroup of their creator; accepted ones the
	 * listener's. */
	cg_move_self(E.cgroup);
	int lin = listen_on(&fam_v4, SMTP);
	cg_move_self(cg.sub);
	int lsub = listen_on(&fam_dual, CONTROL);
	cg_move_self(cg.home);
	int lout = listen_on(&fam_v4, ECSTREAM);

	in[0] = open_conn(lin, &fam_v4, 0, SMTP);
	in[1] = open_conn(lsub, &fam_dual, 1, CONTROL);
	out[0] = open_conn(lout, &fam_v4, 2, ECSTREAM);
	load_scoped(E.cgroup);
	compare(2, "loaded for the cgroup: seeded the two listeners inside it");
	in[2] = open_conn(lin, &fam_v4, 3, SMTP);
	in[3] = open_conn(lsub, &fam_dual, 4, CONTROL);
	out[1] = open_conn(lout, &fam_v4, 5, ECSTREAM);
	compare(4, "one more connection to each listener");
	cg_move_self(E.cgroup);
	out[2] = open_conn(lout, &fam_v4, 6, ECSTREAM);
	in[4] = open_conn(lsub, &fam_v6, 7, CONTROL);
	cg_move_self(cg.home);
	compare(5, "clients inside the cgroup dialled a listener outside and one inside");
	cg_move_self(E.cgroup);
	self_connect(5);
	cg_move_self(cg.home);
	net_shutdown_wr(in[3].cli);
	compare(5, "a session inside the cgroup in CLOSE_WAIT");
	for (unsigned i = 0; i < 3; i++) {
		conn_close(&out[i]);
		compare(5, "connection %u to the listener outside closed", i + 1);
	}
	close_counted(in, 5, 5);
}

/* For scenarios run in both modes: with *scoped, make the test cgroup and
 * move in, so that every socket from now on is audited; returns the cgroup
 * to load for (NULL: the whole host). */
static const char *enter_scope(const bool *scoped, struct test_cgroup *cg)
{
	if (!*scoped)
		return NULL;
	test_cgroup_setup(cg);
	cg_move_self(E.cgroup);
	return E.cgroup;
}

/* ---- scenarios: TCP Fast Open ----------------------------------------------------------- */

/* The passive TFO child exists (SYN_RECV, acceptable) before the
 * handshake completes; in cgroup mode sock_ops sees it at that point. */
static void sc_tfo(const void *a, const void *b)
{
	struct test_cgroup cg;
	struct conn c[4];

	(void)b;
	const char *scope = enter_scope(a, &cg);

	net_enable_tfo();
	int lfd = listen_on(&fam_dual, SMTP);

	net_listen_tfo(lfd);
	load_scoped(scope);
	for (unsigned i = 0; i < 4; i++) {
		const char *src = fam_dual.src[i % 3];

		c[i].cli = net_connect_tfo(src, dst_for(src), SMTP);
		c[i].srv = net_accept_of(lfd, c[i].cli);
		compare(i + 1, "fast-open connection %u from %s", i + 1, src);
	}
	/* The first connection of each family fetched the cookie. */
	EXPECT_EQ(net_syn_had_data(c[3].srv), true);
	net_close(&c[0].cli);
	compare(4, "a fast-open client closed: CLOSE_WAIT");
	close_counted(c, 4, 4);

	/* A child the server closes before its handshake completes: never
	 * counted, and in cgroup mode its pending mark must go with it. The
	 * server reads the SYN's byte first, so that close() sends a FIN
	 * (SYN_RECV -> FIN_WAIT1), not the RST that unread data would. */
	const char *src = fam_dual.src[0];
	int lfd2 = listen_on(&fam_dual, CONTROL);
	struct conn early;

	net_listen_tfo(lfd2);
	net_drop_handshake_acks(lfd2);
	early.cli = net_connect_tfo(src, dst_for(src), CONTROL);
	early.srv = net_accept_of(lfd2, early.cli);
	EXPECT_EQ(net_tcp_state(early.srv), TCP_SYN_RECV);
	char byte;

	EXPECT_EQ(recv(early.srv, &byte, 1, 0), 1);
	net_close(&early.srv);
	compare(0, "a fast-open child closed while SYN_RECV");
	net_close(&early.cli);
}

/* ---- scenarios: other load options ------------------------------------------------------- */

static void sc_replace(const void *a, const void *b)
{
	struct ca_load_opts o = { .replace = true };
	struct conn c[5];

	(void)a, (void)b;
	load();
	int lfd = listen_on(&fam_dual, SMTP);

	open_counted(lfd, &fam_dual, SMTP, c, 3, 0);
	load_opts(&o);
	compare(3, "programs replaced, counts kept");
	net_shutdown_wr(c[0].cli);
	c[3] = open_conn(lfd, &fam_dual, 3, SMTP);
	c[4] = open_conn(lfd, &fam_dual, 4, SMTP);
	compare(5, "two more after the replace, one in CLOSE_WAIT");
	close_counted(c, 5, 5);
}

/* Peers around the edges of odd prefix lengths. */
static const char *const custom_prefix_peers[] = {
	"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.16.1",		/* /31 /28 /20 */
	"fd00:ca::2", "fd00:ca::3", "fd00:ca::80", "fd00:ca:0:100::1",	/* /127 /121 /56 */
	"fd00:ca:0:2::5",
};

static const struct query custom_prefix_queries[] = {
	{ "/20", "SMTP", "127.0.9.9", SMTP, "127.0.0.0", 20, { 3, 0 } },
	{ "/28", "SMTP", "127.0.1.14", SMTP, "127.0.1.0", 28, { 3, 0 } },
	{ "/31", "SMTP", "127.0.1.3", SMTP, "127.0.1.2", 31, { 2, 0 } },
	{ "/24", "SMTP", "127.0.1.9", SMTP, "127.0.1.0", 24, { 3, 0 } },
	{ "/127", "SMTP", "fd00:ca::3", SMTP, "fd00:ca::2", 127, { 2, 0 } },
	{ "/121", "SMTP", "fd00:ca::1", SMTP, "fd00:ca::", 121, { 2, 0 } },
	{ "/56", "SMTP", "fd00:ca::", SMTP, "fd00:ca::", 56, { 4, 0 } },
	{ "/64", "SMTP", "fd00:ca::", SMTP, "fd00:ca::", 64, { 3, 0 } },
};

static void sc_custom_prefixes(const void *a, const void *b)
{
	struct ca_load_opts o = { 0 };
	struct conn c[NELEMS(custom_prefix_peers)];
	const unsigned n = NELEMS(custom_prefix_peers);

	(void)a, (void)b;
	CA_CHECK(ca_parse_prefix_list("v4:20,28,31;v6:56,121,127", &o, &ERR));
	load_opts(&o);
	EXPECT_EQ(ca_loaded_config(E.h)->nr_v4, 3);
	EXPECT_EQ(ca_loaded_config(E.h)->v6[1], 121);
	int lfd = listen_on(&fam_dual, SMTP);

	for (unsigned i = 0; i < n; i++) {
		const char *src = custom_prefix_peers[i];

		c[i] = net_conn_open(lfd, src, dst_for(src), SMTP);
		compare(i + 1, "session from %s", src);
	}
	check_queries(custom_prefix_queries, NELEMS(custom_prefix_queries), 0);
	close_counted(c, n, n);
	check_queries(custom_prefix_queries, NELEMS(custom_prefix_queries), 1);
}

/* ---- scenarios: limits and races ---------------------------------------------------------- */

/* Wait at most KT_WAIT_MS for one gauge of ca_health to read `want`. */
static void wait_gauge(size_t offset, const char *name, int64_t want)
{
	int64_t deadline = kt_now_ms() + KT_WAIT_MS;
	struct ca_health hl;
	int64_t got;

	for (;;) {
		CA_CHECK(ca_read_health(E.h, &hl, &ERR));
		memcpy(&got, (const char *)&hl + offset, sizeof(got));
		if (got == want)
			return;
		if (kt_now_ms() > deadline)
			kt_fail("health.%s: expected %lld, still %lld after %d ms (marks_full "
				"%llu, peers_full %llu)", name, (long long)want, (long long)got,
				KT_WAIT_MS, (unsigned long long)hl.marks_full,
				(unsigned long long)hl.peers_full);
		usleep(5000);
	}
}

void wait_incomplete(int64_t want)
{
	wait_gauge(offsetof(struct ca_health, incomplete), "incomplete", want);
}

void wait_uncounted(int64_t want)
{
	wait_gauge(offsetof(struct ca_health, uncounted), "uncounted", want);
}

/* ca_peers holds 4 entries; the 5th and 6th peer cannot be recorded. Only
 * the test cgroup is audited, so the host's own sessions take no room. */
static void sc_peers_full(const void *a, const void *b)
{
	static const char *const peers[6] = {
		"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.1.5", "127.0.1.6" };
	struct ca_load_opts o = { .max_peers = 4 };
	struct test_cgroup cg;
	struct conn c[6];

	(void)a, (void)b;
	test_cgroup_setup(&cg);
	cg_move_self(E.cgroup);
	int lfd = listen_on(&fam_v4, SMTP);

	cg_move_self(cg.home);
	o.cgroup = E.cgroup;
	load_opts(&o);
	for (unsigned i = 0; i < 6; i++) {
		c[i] = net_conn_open(lfd, peers[i], "127.0.0.1", SMTP);
		if (i < 4)
			compare(i + 1, "session from %s", peers[i]);
	}
	wait_incomplete(2);
	struct ca_health hl;

	CA_CHECK(ca_read_health(E.h, &hl, &ERR));
	EXPECT_EQ(hl.peers_full, 2);
	expect_count("/32", "127.0.1.6", CA_INCOMPLETE, 0);
	expect_count("/32", "127.0.1.1", CA_INCOMPLETE, 1);
	expect_count("/24", "127.0.1.9", CA_INCOMPLETE, 6);
	expect_count("/0", NULL, CA_INCOMPLETE, 6);
	conn_close(&c[5]);
	conn_close(&c[4]);
	wait_incomplete(0);
	E.peers_full = 2;	/* sticky */
	compare(4, "the sessions that found ca_peers full closed");
	expect_count("/0", NULL, 0, 4);
	close_counted(c, 4, 4);
}

#define RACE_ROUNDS	3000

/* Two processes churning connections from one peer to one port (struct
 * churn: scenarios.h). */
static bool stop_asked(int stop)
{
	struct pollfd p = { .fd = stop, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Keep a ring of CHURN_RING connections from 127.0.1.1; each round closes
 * the oldest (every other one client first, through CLOSE_WAIT) and opens
 * a new one. After `rounds`, or when asked, keep the ring open, report and
 * wait to be killed. Both workers share every key they touch, so entries
 * drop to zero and come back under each other's feet. */
static void __attribute__((noreturn))
churn_worker(int lfd, const char *dst, unsigned rounds, int stop, int report)
{
	struct conn ring[CHURN_RING];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (unsigned i = 0; i < CHURN_RING; i++)
		ring[i] = net_conn_open(lfd, "127.0.1.1", dst, SMTP);
	for (unsigned i = 0; i < rounds && !stop_asked(stop); i++) {
		struct conn *c = &ring[i % CHURN_RING];

		if (i % 2)
			net_close(&c->cli);
		conn_close(c);
		*c = net_conn_open(lfd, "127.0.1.1", dst, SMTP);
	}
	if (write(report, "k", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

void churn_start(struct churn *ch, unsigned rounds)
{
	static const char *const dst[2] = { "127.0.0.1", "127.0.0.2" };
	int report[2], stop[2];

	if (pipe2(report, O_CLOEXEC) || pipe2(stop, O_CLOEXEC))
		kt_fail("pipe: %m");
	fflush(stdout);
	for (unsigned i = 0; i < 2; i++) {
		/* Same port, two addresses: two listeners, one key. */
		int lfd = net_listen(dst[i], SMTP, false);

		ch->worker[i] = fork();
		if (ch->worker[i] < 0)
			kt_fail("fork: %m");
		if (ch->worker[i] == 0) {
			close(stop[1]);
			churn_worker(lfd, dst[i], rounds, stop[0], report[1]);
		}
		net_close(&lfd);
	}
	close(report[1]);
	close(stop[0]);
	ch->report = report[0];
	ch->stop = stop[1];
}

/* Ask the workers to settle and wait until both did. */
void churn_settle(struct churn *ch)
{
	int64_t deadline = kt_now_ms() + 60 * 1000;
	char c;

	close(ch->stop);
	for (unsigned n = 0; n < 2; n++) {
		struct pollfd p = { .fd = ch->report, .events = POLLIN };

		if (poll(&p, 1, (int)(deadline - kt_now_ms())) <= 0 ||
		    read(ch->report, &c, 1) != 1)
			kt_fail("a churn worker did not settle (see its message above)");
	}
}

/* Kill the workers: their connections end with them. */
void churn_end(struct churn *ch)
{
	for (unsigned i = 0; i < 2; i++) {
		kill(ch->worker[i], SIGKILL);
		waitpid(ch->worker[i], NULL, 0);
	}
	close(ch->report);
}

/* In cgroup mode the health record counts only our sockets: a contention
 * there is ours, not the host's. */
static void sc_race(const void *a, const void *b)
{
	struct test_cgroup cg;
	struct churn ch;

	(void)b;
	load_scoped(enter_scope(a, &cg));
	churn_start(&ch, RACE_ROUNDS);
	churn_settle(&ch);
	compare(2 * CHURN_RING, "two workers churned %u connections each on one key",
		RACE_ROUNDS);
	churn_end(&ch);
	compare(0, "the workers' connections closed when they died");
}

/* Load (or replace) while connections open and close: seeding and the
 * live programs must hand over without losing or doubling a session. */
static void sc_load_under_churn(const void *a, const void *b)
{
	const bool *replace = a;
	struct ca_load_opts o = { .replace = true };
	struct churn ch;

	(void)b;
	if (*replace)
		load();
	churn_start(&ch, UINT_MAX);
	if (*replace)
		load_opts(&o);
	else
		load();
	churn_settle(&ch);
	compare(2 * CHURN_RING, "%s while two workers churned", *replace ? "replaced" : "loaded");
	churn_end(&ch);
	compare(0, "the workers' connections closed when they died");
}

/* ---- scenarios: scale --------------------------------------------------------------------- */

#define SCALE_CONNS	2000

/* Sources 127.0.1.1 .. 127.0.4.250: four /24s, 1000 peers, uneven ports. */
static void scale_source(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "127.0.%u.%u", 1 + i % 4, 1 + (i / 4) % 250);
}

static void sc_scale(const void *a, const void *b)
{
	static struct conn c[SCALE_CONNS];
	char src[32];
	uint64_t left = SCALE_CONNS;

	(void)a, (void)b;
	load();
	int lsmtp = listen_on(&fam_v4, SMTP);
	int lctl = listen_on(&fam_mapped, CONTROL);

	for (unsigned i = 0; i < SCALE_CONNS; i++) {
		scale_source(i, src, sizeof(src));
		c[i] = net_conn_open(i % 3 ? lsmtp : lctl, src, "127.0.0.1", i % 3 ? SMTP : CONTROL);
		if ((i + 1) % 500 == 0)
			compare(i + 1, "%u connections open", i + 1);
	}
	/* A third each: client closes (CLOSE_WAIT, still counted), server
	 * closes, server resets. */
	for (unsigned i = 0; i < SCALE_CONNS; i++) {
		if (i % 3 == 0)
			net_close(&c[i].cli);
		else if (i % 3 == 1)
			net_close(&c[i].srv);
		else
			net_close_rst(&c[i].srv);
		left -= i % 3 != 0;
	}
	compare(left, "a third each closed by client, closed by server, reset by server");
	for (unsigned i = 0; i < SCALE_CONNS; i++)
		conn_close(&c[i]);
	compare(0, "everything closed");
}

/* ---- the runner ------------------------------------------------------------------------------- */

struct scenario {
	char name[64];
	void (*run)(const void *a, const void *b);
	const void *a, *b;
};

static struct scenario scenarios[96];
static size_t nscenarios;

static void add(const char *name, void (*run)(const void *, const void *),
		const void *a, const void *b)
{
	if (nscenarios == NELEMS(scenarios))
		kt_fail("more than %zu scenarios: enlarge the table", NELEMS(scenarios));
	struct scenario *s = &scenarios[nscenarios++];

	snprintf(s->name, sizeof(s->name), "%s", name);
	s->run = run;
	s->a = a;
	s->b = b;
}

static void register_all(void)
{
	static const struct family_case *session_families[] = {
		&fam_v4, &fam_v6, &fam_mapped, &fam_dual, &fam_v6any };
	static const struct family_case *ending_families[] = { &fam_v4, &fam_v6, &fam_mapped };
	static const bool no = false, yes = true;
	char name[64];

	for (size_t i = 0; i < NELEMS(session_families); i++) {
		snprintf(name, sizeof(name), "sessions/%s", session_families[i]->name);
		add(name, sc_sessions, session_families[i], NULL);
	}
	for (size_t i = 0; i < NELEMS(endings); i++)
		for (size_t j = 0; j < NELEMS(ending_families); j++) {
			snprintf(name, sizeof(name), "end/%s/%s", endings[i].name,
				 ending_families[j]->name);
			add(name, sc_ending, ending_families[j], &endings[i]);
		}
	add("accept-queue", sc_accept_queue, NULL, NULL);
	add("services", sc_services, NULL, NULL);
	add("queries", sc_queries, NULL, NULL);
	add("outbound", sc_outbound, NULL, NULL);
	add("netns/same-port", sc_netns_same_port, NULL, NULL);
	add("seeding", sc_seeding, NULL, NULL);
	add("seeding/socket-only-netns", sc_seeding_socket_only_netns, NULL, NULL);
	add("listener-closed", sc_listener_closed, NULL, NULL);
	add("mptcp", sc_mptcp, NULL, NULL);
	add("loader-exit", sc_loader_exit, NULL, NULL);
	add("reload", sc_reload, NULL, NULL);
	add("cgroup", sc_cgroup, NULL, NULL);
	add("tfo/host", sc_tfo, &no, NULL);
	add("tfo/cgroup", sc_tfo, &yes, NULL);
	add("replace", sc_replace, NULL, NULL);
	add("prefixes/custom", sc_custom_prefixes, NULL, NULL);
	add("limits/peers-full", sc_peers_full, NULL, NULL);
	add("race/same-peer/host", sc_race, &no, NULL);
	add("race/same-peer/cgroup", sc_race, &yes, NULL);
	add("churn/load", sc_load_under_churn, &no, NULL);
	add("churn/replace", sc_load_under_churn, &yes, NULL);
	add("scale", sc_scale, NULL, NULL);
	limits_register(add);
	attacks_register(add);
	rates_register(add);
	restarts_register(add);
	churn_register(add);
	table_register(add);
}

/* In the scenario's own process. */
static void __attribute__((noreturn)) run_scenario(const struct scenario *s)
{
	ns_enter_private(&E.ns[NS_A]);
	truth_open(&E.truth[NS_A]);
	ca_services_defaults(&E.services);
	s->run(s->a, s->b);
	ca_close(E.h);
	fflush(stdout);
	_exit(0);
}

static volatile sig_atomic_t interrupted;
static volatile pid_t current;	/* the running scenario's process group */

static void on_signal(int sig)
{
	interrupted = sig;
	if (current > 0)
		kill(-current, SIGKILL);
}

/* Pins that ca_unload could not remove (a half-done load). */
static void remove_pin_dir(const char *dir)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

/* A scenario killed inside ca_load leaves the loader's staging dir. */
static void remove_staging_dirs(const char *pin_dir)
{
	char pattern[PATH_MAX + 16];
	glob_t g;

	snprintf(pattern, sizeof(pattern), "%s-staging-*", pin_dir);
	if (glob(pattern, GLOB_NOSORT, NULL, &g))
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		remove_pin_dir(g.gl_pathv[i]);
	globfree(&g);
}

static void cleanup_scenario(void)
{
	char sub[PATH_MAX + 8];
	struct ca_error err;
	struct stat st;

	if (E.pin_dir[0] && !stat(E.pin_dir, &st)) {
		admin_patiently(NULL, E.pin_dir, &err);
		remove_pin_dir(E.pin_dir);
	}
	if (E.pin_dir[0])
		remove_staging_dirs(E.pin_dir);
	if (E.cgroup[0]) {
		snprintf(sub, sizeof(sub), "%s/sub", E.cgroup);
		cg_remove(sub);
		cg_remove(E.cgroup);
	}
}

struct outcome {
	char text[16384];	/* what the scenario printed */
	size_t len;
	int status;
	bool exited;		/* status is set */
	bool timed_out;
};

/* Append what fd has to say; false at end of file or on error. */
static bool read_some(int fd, struct outcome *o)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));
	size_t room = sizeof(o->text) - 1 - o->len;

	if (n <= 0)
		return false;
	memcpy(o->text + o->len, buf, (size_t)n < room ? (size_t)n : room);
	o->len += (size_t)n < room ? (size_t)n : room;
	return true;
}

/* Read the scenario's output until it exits or time runs out. Its exit,
 * not the end of the output, ends the wait: helpers it left behind may
 * hold the pipe open. */
static void collect_output(int fd, pid_t pid, struct outcome *o)
{
	int64_t deadline = kt_now_ms() + (int64_t)scenario_seconds() * 1000;
	bool open = true;

	while (!o->exited) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (interrupted)
			return;
		if (kt_now_ms() > deadline) {
			o->timed_out = true;
			return;
		}
		if (open && poll(&p, 1, 100) > 0)
			open = read_some(fd, o);
		else if (!open)
			usleep(10000);
		o->exited = waitpid(pid, &o->status, WNOHANG) == pid;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (open && read_some(fd, o))
		;
}

/* Kill whatever the scenario left running (namespace holders, workers, a
 * loader) and reap it all; we are the subreaper of its orphans. */
static void reap_scenario(pid_t pid, struct outcome *o)
{
	int status;
	pid_t p;

	kill(-pid, SIGKILL);
	while ((p = waitpid(-1, &status, 0)) > 0 || (p < 0 && errno == EINTR))
		if (p == pid) {
			o->status = status;
			o->exited = true;
		}
}

static void run_in_child(const struct scenario *s, struct outcome *o)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		kt_fail("pipe: %m");
	fflush(stdout);
	pid_t pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		run_scenario(s);
	}
	if (pid < 0)
		kt_fail("fork: %m");
	setpgid(pid, pid);
	current = pid;
	close(p[1]);
	collect_output(p[0], pid, o);
	close(p[0]);
	reap_scenario(pid, o);
	current = 0;
}

/* The scenario's output as TAP diagnostics; with notes_only, only its own
 * "# " lines (a replay seed, figures), which passing scenarios show too. */
static void print_output(const char *text, bool notes_only)
{
	for (const char *line = text; *line;) {
		size_t n = strcspn(line, "\n");

		if (!notes_only)
			printf("#   %.*s\n", (int)n, line);
		else if (!strncmp(line, "# ", 2))
			printf("%.*s\n", (int)n, line);
		line += n + (line[n] == '\n');
	}
}

enum result { PASSED, FAILED, SKIPPED };

static enum result report(unsigned n, const struct scenario *s, struct outcome *o)
{
	int st = o->status;
	bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && !o->timed_out;
	bool skip = WIFEXITED(st) && WEXITSTATUS(st) == KT_EXIT_SKIP && !o->timed_out;

	o->text[o->len] = '\0';
	if (skip) {
		const char *why = strstr(o->text, "SKIP: ");

		why = why ? why + 6 : "";
		printf("ok %u - %s # SKIP %.*s\n", n, s->name, (int)strcspn(why, "\n"), why);
		return SKIPPED;
	}
	printf("%sok %u - %s\n", ok ? "" : "not ", n, s->name);
	if (ok) {
		print_output(o->text, true);
		return PASSED;
	}
	if (o->timed_out)
		printf("#   timed out after %d s\n", scenario_seconds());
	else if (WIFSIGNALED(st))
		printf("#   killed by signal %d\n", WTERMSIG(st));
	print_output(o->text, false);
	return FAILED;
}

static bool selected(const struct scenario *s, int argc, char **argv)
{
	bool any = false;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		any = true;
		if (strstr(s->name, argv[i]))
			return true;
	}
	return !any;
}

static void prepare_env(unsigned n)
{
	const char *cg = cg_mount();

	memset(&E, 0, sizeof(E));
	snprintf(E.pin_dir, sizeof(E.pin_dir), "/sys/fs/bpf/connaudit-test-%d-%u",
		 (int)getpid(), n);
	if (cg)
		snprintf(E.cgroup, sizeof(E.cgroup), "%s/connaudit-test-%d-%u", cg,
			 (int)getpid(), n);
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int main(int argc, char **argv)
{
	unsigned counts[3] = { 0 }, n = 0, total = 0;

	register_all();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--list")) {
			for (size_t j = 0; j < nscenarios; j++)
				puts(scenarios[j].name);
			return 0;
		}
		if (argv[i][0] == '-') {
			fprintf(stderr, "usage: %s [--list] [SUBSTRING...]\n", argv[0]);
			return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "kernel_test: must run as root (BPF, namespaces, cgroups)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Leave the host's namespace before anything else: no step can then
	 * touch the host's interfaces or addresses, even by mistake. */
	if (unshare(CLONE_NEWNET))
		kt_fail("unshare(CLONE_NEWNET): %m");
	net_raise_nofile();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	install_signals();
	atexit(cleanup_scenario);
	for (size_t i = 0; i < nscenarios; i++)
		total += selected(&scenarios[i], argc, argv);
	printf("1..%u\n", total);
	for (size_t i = 0; i < nscenarios && !interrupted; i++) {
		static struct outcome o;

		if (!selected(&scenarios[i], argc, argv))
			continue;
		prepare_env(++n);
		memset(&o, 0, sizeof(o));
		run_in_child(&scenarios[i], &o);
		cleanup_scenario();
		counts[report(n, &scenarios[i], &o)]++;
	}
	if (interrupted)
		printf("# interrupted by signal %d\n", (int)interrupted);
	if (counts[SKIPPED])
		printf("# %u skipped\n", counts[SKIPPED]);
	printf("%u passed, %u failed\n", counts[PASSED], counts[FAILED] + (total - n));
	return counts[FAILED] || interrupted || n < total ? 1 : 0;
}
