// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rates.c - connection rates (ca_rates) against the test's own log.
 *
 * Monitors with windows of 1 and 2 seconds make rotation happen within the
 * scenario. Every connection is logged with the second (as the kernel side
 * reckons it) it was made in; connections are made only well inside a
 * second, so that the log knows its window for certain. Then every window
 * of every monitor, and ranges of them, are asked for exact peers, the
 * configured prefixes, a prefix that needs a scan, /0 and IPv6 forms, and
 * must equal what the log says, windows past those kept reading 0.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "scenarios.h"

#define MONITORS	"1,4 2,3"
#define LOG_MAX		64
/* A connection is made only when the second has this much left and used. */
#define EDGE_MS		80

struct logged {
	struct ca_addr peer;
	uint16_t port;
	uint64_t sec;
};

static struct logged conn_log[LOG_MAX];
static unsigned nlog;

static const char *const v4_peers[] = { "127.0.1.1", "127.0.1.2", "127.0.2.1", "127.1.0.1" };
static const char *const v6_peers[] = { "fd00:ca::2", "fd00:ca::3", "fd00:ca:0:1::4" };

static const struct ca_service *smtp(void)
{
	const struct ca_service *s = ca_services_find(&E.services, "SMTP", &ERR);

	if (!s)
		kt_fail("%s", ERR.msg);
	return s;
}

static void load_monitors(const char *list)
{
	struct ca_load_opts o = { 0 };
	unsigned n;

	CA_CHECK(ca_monitors_parse(list, o.monitors, &n, &ERR));
	o.nr_monitors = (uint8_t)n;
	load_opts(&o);
}

/* The kernel side's wall clock, in ms. */
static uint64_t wall_ms(void)
{
	const struct ca_config *cfg = ca_loaded_config(E.h);
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
		(uint64_t)cfg->realtime_offset_ns) / 1000000ull;
}

/* Wait until the current second has at least `room` ms left and EDGE_MS
 * used; returns that second. */
static uint64_t inside_second(unsigned room)
{
	uint64_t ms;

	while ((ms = wall_ms()) % 1000 < EDGE_MS || 1000 - ms % 1000 < room)
		usleep(10000);
	return ms / 1000;
}

static void connect_logged(int lfd, const char *src, const char *dst, uint16_t port)
{
	uint64_t sec = inside_second(EDGE_MS);
	struct conn c = net_conn_open(lfd, src, dst, port);

	if (wall_ms() / 1000 != sec)
		kt_fail("a connection took more than %d ms: its window is uncertain", EDGE_MS);
	if (nlog == LOG_MAX)
		kt_fail("connection log full");
	CA_CHECK(ca_addr_parse(src, &conn_log[nlog].peer, &ERR));
	conn_log[nlog].port = port;
	conn_log[nlog++].sec = sec;
	conn_close(&c);		/* a connection counts once made, open or not */
}

/* What the log says for prefix p on port 25, monitor mi, windows start..end. */
static uint64_t expected(const struct ca_config *cfg, unsigned mi, const struct ca_prefix *p,
			 uint64_t now_sec, unsigned start, unsigned end)
{
	uint32_t size = cfg->mon[mi].size, now = (uint32_t)(now_sec / size);
	uint64_t n = 0;

	for (unsigned i = 0; i < nlog; i++) {
		uint32_t w = (uint32_t)(conn_log[i].sec / size);

		if (conn_log[i].port == SMTP && ca_prefix_contains(p, &conn_log[i].peer) &&
		    w <= now && now - w >= start && now - w <= end && now - w < cfg->mon[mi].windows)
			n++;
	}
	return n;
}

struct rate_query {
	const char *cidr;
	const char *peer;	/* NULL: not peer-relative */
};

static const struct rate_query rate_queries[] = {
	{ "/32", "127.0.1.1" }, { "/32", "127.0.1.2" }, { "/32", "127.1.0.1" },
	{ "/24", "127.0.1.9" }, { "/16", "127.0.200.1" }, { "/25", "127.0.1.1" },
	{ "/24,/64", "fd00:ca::9" }, { "/128", "fd00:ca::2" }, { "/48", "fd00:ca::1" },
	{ "/56", "fd00:ca::1" }, { "/0", NULL }, { "127.0.0.0/8", NULL },
	{ "[fd00:ca::]/32", NULL }, { "127.0.2.1", NULL },
};

/* Ask every query, monitor and window range; false if the second changed
 * meanwhile (the caller asks again). */
static bool check_once(const char *step)
{
	const struct ca_config *cfg = ca_loaded_config(E.h);
	const struct ca_service *svc = smtp();
	uint64_t sec = inside_second(300), got, want;
	unsigned bad = 0;

	for (size_t q = 0; q < NELEMS(rate_queries); q++) {
		const struct rate_query *rq = &rate_queries[q];
		struct ca_prefix p;
		struct ca_cidr c;
		struct ca_addr a;

		CA_CHECK(ca_cidr_parse(rq->cidr, &c, &ERR));
		if (rq->peer)
			CA_CHECK(ca_addr_parse(rq->peer, &a, &ERR));
		CA_CHECK(ca_cidr_resolve(&c, rq->peer ? &a : NULL, &p, &ERR));
		for (unsigned mi = 0; mi < cfg->nr_monitors; mi++) {
			struct ca_monitor m = { cfg->mon[mi].size, cfg->mon[mi].windows };
			unsigned last = m.windows + 1;

			for (unsigned s = 0; s <= last; s++) {
				for (unsigned e = s; e <= last; e++) {
					int rc = ca_connections(E.h, &m, &c, svc, rq->peer ? &a : NULL,
								s, e, &got, &ERR);

					CA_CHECK(rc);
					want = expected(cfg, mi, &p, sec, s, e);
					if (rc != 0 || got != want) {
						printf("%s: connections %u,%u %s peer %s windows %u..%u: "
						       "got %llu (rc %d), the log says %llu\n", step,
						       m.size, m.windows, rq->cidr,
						       rq->peer ? rq->peer : "-", s, e,
						       (unsigned long long)got, rc,
						       (unsigned long long)want);
						bad++;
					}
				}
			}
		}
	}
	if (wall_ms() / 1000 != sec)
		return false;
	if (bad)
		kt_fail("%s: %u answers differ from the connection log", step, bad);
	return true;
}

static void check_rates(const char *step)
{
	for (int i = 0; i < 3; i++)
		if (check_once(step))
			return;
	kt_fail("%s: could not ask everything within one second", step);
}

static void sc_rate_windows(const void *a, const void *b)
{
	struct kt_rng rng = { kt_seed("rates/windows") };

	(void)a, (void)b;
	load_monitors(MONITORS);
	int l4 = net_listen("127.0.0.1", SMTP, false);
	int l6 = net_listen("fd00:ca::1", SMTP, true);
	int other = net_listen("127.0.0.1", CONTROL, false);

	check_rates("nothing yet");
	for (int round = 0; round < 12; round++) {
		unsigned n = 1 + kt_below(&rng, 3);

		for (unsigned i = 0; i < n; i++) {
			if (kt_below(&rng, 3) == 0)
				connect_logged(l6, v6_peers[kt_below(&rng, NELEMS(v6_peers))],
					       "fd00:ca::1", SMTP);
			else
				connect_logged(l4, v4_peers[kt_below(&rng, NELEMS(v4_peers))],
					       "127.0.0.1", SMTP);
		}
		connect_logged(other, "127.0.1.1", "127.0.0.1", CONTROL);	/* not SMTP */
		usleep(150000 + 50000 * kt_below(&rng, 4));
	}
	printf("# %u connections logged\n", nlog);
	check_rates("after the connections");
	sleep(2);
	check_rates("two seconds later");
	sleep(3);
	check_rates("five seconds later");
	/* Every window of "1,4" has rotated out by now. */
	struct ca_monitor m = { 1, 4 };
	struct ca_cidr all;
	uint64_t got;

	CA_CHECK(ca_cidr_parse("/0", &all, &ERR));
	CA_CHECK(ca_connections(E.h, &m, &all, smtp(), NULL, 0, 3, &got, &ERR));
	EXPECT_EQ(got, 0);
}

/* Sessions found by seeding were not made in any window. */
static void sc_rate_seeding(const void *a, const void *b)
{
	struct ca_monitor m = { 30, 2 };
	struct conn c[3];
	struct ca_cidr all;
	uint64_t got;

	(void)a, (void)b;
	int lfd = net_listen("127.0.0.1", SMTP, false);

	for (int i = 0; i < 3; i++)
		c[i] = net_conn_open(lfd, v4_peers[i], "127.0.0.1", SMTP);
	load_monitors("30,2 1,1 2,1 3,28");	/* the most monitors and windows */
	compare(3, "three sessions seeded");
	CA_CHECK(ca_cidr_parse("/0", &all, &ERR));
	CA_CHECK(ca_connections(E.h, &m, &all, smtp(), NULL, 0, 1, &got, &ERR));
	EXPECT_EQ(got, 0);
	struct conn d = net_conn_open(lfd, v4_peers[0], "127.0.0.1", SMTP);

	compare(4, "one more made after load");
	CA_CHECK(ca_connections(E.h, &m, &all, smtp(), NULL, 0, 1, &got, &ERR));
	EXPECT_EQ(got, 1);
	conn_close(&d);
	for (int i = 0; i < 3; i++)
		conn_close(&c[i]);
}

/* load --replace keeps the windows, and a connection made while both the
 * old and the new programs run is counted once. */
static void sc_rate_replace(const void *a, const void *b)
{
	struct ca_load_opts o = { .replace = true };
	struct ca_monitor m = { 30, 2 };
	struct ca_cidr all, peer24;
	struct ca_addr p;
	uint64_t got;

	(void)a, (void)b;
	load_monitors("30,2 5,4");
	int lfd = net_listen("127.0.0.1", SMTP, false);

	for (int i = 0; i < 3; i++) {
		struct conn c = net_conn_open(lfd, v4_peers[i], "127.0.0.1", SMTP);

		conn_close(&c);
	}
	load_opts(&o);
	CA_CHECK(ca_cidr_parse("/0", &all, &ERR));
	CA_CHECK(ca_connections(E.h, &m, &all, smtp(), NULL, 0, 1, &got, &ERR));
	EXPECT_EQ(got, 3);
	for (int i = 0; i < 2; i++) {
		struct conn c = net_conn_open(lfd, v4_peers[i], "127.0.0.1", SMTP);

		conn_close(&c);
	}
	CA_CHECK(ca_connections(E.h, &m, &all, smtp(), NULL, 0, 1, &got, &ERR));
	EXPECT_EQ(got, 5);
	CA_CHECK(ca_cidr_parse("/24", &peer24, &ERR));
	CA_CHECK(ca_addr_parse("127.0.1.200", &p, &ERR));
	CA_CHECK(ca_connections(E.h, &m, &peer24, smtp(), &p, 0, 1, &got, &ERR));
	EXPECT_EQ(got, 4);
	m.size = 60;
	EXPECT_EQ(ca_connections(E.h, &m, &all, smtp(), NULL, 0, 1, &got, &ERR),
		  -ENOENT);
}

static uint64_t rate_of(const char *cidr, const char *peer, int want_rc)
{
	struct ca_monitor m = { 1, 2 };
	struct ca_cidr c;
	struct ca_addr a;
	uint64_t got;

	CA_CHECK(ca_cidr_parse(cidr, &c, &ERR));
	if (peer)
		CA_CHECK(ca_addr_parse(peer, &a, &ERR));
	int rc = ca_connections(E.h, &m, &c, smtp(), peer ? &a : NULL, 0, 1, &got, &ERR);

	CA_CHECK(rc);
	if (rc != want_rc)
		kt_fail("connections %s peer %s: rc %d, want %d", cidr, peer ? peer : "-", rc,
			want_rc);
	return got;
}

/* Connections in windows 0..1 of monitor "30,2" to service `service`. */
static uint64_t rate_of30_on(const char *cidr, const char *peer, const char *service)
{
	const struct ca_service *svc = ca_services_find(&E.services, service, &ERR);
	struct ca_monitor m = { 30, 2 };
	struct ca_cidr c;
	struct ca_addr a;
	uint64_t got;

	if (!svc)
		kt_fail("%s", ERR.msg);
	CA_CHECK(ca_cidr_parse(cidr, &c, &ERR));
	if (peer)
		CA_CHECK(ca_addr_parse(peer, &a, &ERR));
	EXPECT_EQ(ca_connections(E.h, &m, &c, svc, peer ? &a : NULL, 0, 1, &got, &ERR), 0);
	return got;
}

static uint64_t rate_of30(const char *cidr, const char *peer)
{
	return rate_of30_on(cidr, peer, "SMTP");
}

static void connect_once(int lfd, const char *src)
{
	struct conn c = net_conn_open(lfd, src, "127.0.0.1", SMTP);

	conn_close(&c);
}

/* A full ca_rates: a connection that misses its entries makes the answers
 * about its windows lower bounds; once every entry is older than the
 * windows kept, the next connection reclaims them and counts exactly.
 * Loaded for the test cgroup, so that the host's connections take no room
 * (and admission by sock_ops counts rates too). */
static void sc_rate_full(const void *a, const void *b)
{
	struct ca_load_opts o = { .max_rates = 12 };
	struct test_cgroup cg;
	struct ca_health hv;
	uint64_t stats[CA_STAT_NR];
	char src[32];
	unsigned n;

	(void)a, (void)b;
	test_cgroup_setup(&cg);
	cg_move_self(E.cgroup);
	CA_CHECK(ca_monitors_parse("1,2", o.monitors, &n, &ERR));
	o.nr_monitors = (uint8_t)n;
	o.cgroup = E.cgroup;
	load_opts(&o);
	int lfd = net_listen("127.0.0.1", SMTP, false);

	/* 4 entries for the first peer (itself, the total, its /24 and /16),
	 * 2 for each next one (itself, its /24): 12 in all */
	for (int i = 1; i <= 5; i++) {
		snprintf(src, sizeof(src), "127.0.%d.1", i);
		connect_once(lfd, src);
	}
	EXPECT_EQ(rate_of("/0", NULL, 0), 5);
	EXPECT_EQ(rate_of("/32", "127.0.5.1", 0), 1);
	connect_once(lfd, "127.0.6.1");
	EXPECT_EQ(rate_of("/32", "127.0.6.1", CA_INCOMPLETE), 0);
	EXPECT_EQ(rate_of("/0", NULL, CA_INCOMPLETE), 6);
	CA_CHECK(ca_read_health(E.h, &hv, &ERR));
	EXPECT_EQ(hv.rates_full, 2);
	EXPECT_EQ(hv.incomplete, 0);	/* the sessions were counted all the same */

	usleep(2500000);
	inside_second(EDGE_MS);
	connect_once(lfd, "127.0.7.1");
	EXPECT_EQ(rate_of("/32", "127.0.7.1", 0), 1);
	EXPECT_EQ(rate_of("/24", "127.0.7.9", 0), 1);
	EXPECT_EQ(rate_of("/0", NULL, 0), 1);
	CA_CHECK(ca_read_stats(E.h, stats, &ERR));
	if (stats[CA_STAT_RECLAIMED] < 12)
		kt_fail("%llu stale entries reclaimed, want 12",
			(unsigned long long)stats[CA_STAT_RECLAIMED]);
	cg_move_self(cg.home);
}

/* Fast-open connections count once they are established: in cgroup mode
 * sock_ops marks the child pending and the tracepoint admits it; a child
 * closed before its handshake completes made no connection. */
static void sc_rate_tfo(const void *a, const void *b)
{
	const bool *scoped = a;
	struct ca_load_opts o = { .nr_monitors = 1, .monitors = { { 30, 2 } } };
	struct test_cgroup cg;
	struct conn c[3], early;
	char byte;

	(void)b;
	if (*scoped) {
		test_cgroup_setup(&cg);
		cg_move_self(E.cgroup);
		o.cgroup = E.cgroup;
	}
	net_enable_tfo();
	int lfd = net_listen("127.0.0.1", SMTP, false);

	net_listen_tfo(lfd);
	load_opts(&o);
	for (int i = 0; i < 3; i++) {
		c[i].cli = net_connect_tfo(v4_peers[i % 2], "127.0.0.1", SMTP);
		c[i].srv = net_accept_of(lfd, c[i].cli);
		compare(i + 1, "fast-open connection %d", i + 1);
	}
	EXPECT_EQ(net_syn_had_data(c[2].srv), true);
	EXPECT_EQ(rate_of30("/0", NULL), 3);
	EXPECT_EQ(rate_of30("/32", v4_peers[0]), 2);

	int lfd2 = net_listen("127.0.0.1", CONTROL, false);

	net_listen_tfo(lfd2);
	net_drop_handshake_acks(lfd2);
	early.cli = net_connect_tfo(v4_peers[0], "127.0.0.1", CONTROL);
	early.srv = net_accept_of(lfd2, early.cli);
	EXPECT_EQ(net_tcp_state(early.srv), TCP_SYN_RECV);
	EXPECT_EQ(recv(early.srv, &byte, 1, 0), 1);
	net_close(&early.srv);
	compare(3, "a fast-open child closed while SYN_RECV");
	net_close(&early.cli);
	EXPECT_EQ(rate_of30_on("/0", NULL, "Control"), 0);
	for (int i = 0; i < 3; i++)
		conn_close(&c[i]);
	EXPECT_EQ(rate_of30("/0", NULL), 3);
	if (*scoped)
		cg_move_self(cg.home);
}

void rates_register(kt_add_fn *add)
{
	static const bool no = false, yes = true;

	add("rates/tfo/host", sc_rate_tfo, &no, NULL);
	add("rates/tfo/cgroup", sc_rate_tfo, &yes, NULL);
	add("rates/full", sc_rate_full, NULL, NULL);
	add("rates/windows", sc_rate_windows, NULL, NULL);
	add("rates/seeding", sc_rate_seeding, NULL, NULL);
	add("rates/replace", sc_rate_replace, NULL, NULL);
}
