// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * churn.c - a seeded random driver that opens and ends thousands of
 * connections and checks connaudit against sock_diag along the way.
 *
 * Connections come from IPv4, IPv6 and v4-mapped peers, to six listeners
 * on five ports, in two network namespaces; some open with TCP Fast Open.
 * They end by client close (through CLOSE_WAIT), half-close, server close,
 * RST from either side, SOCK_DESTROY of either side and connect(AF_UNSPEC).
 * The peers in use are a window that slides over pools of addresses, so
 * keys keep dropping to zero and new ones keep appearing: with maps sized
 * small on purpose the auditor must reclaim zero entries all along.
 *
 * Every CHECK_EVERY events each namespace is compared with the runner's
 * views_settle() (every per-peer entry and aggregate, and the session total
 * this driver expects) and a sample of ca_count_str queries is checked
 * against sums over the kernel's own view.
 *
 *   CONNAUDIT_SEED=N    replay a run (the seed is printed on every run)
 *   CONNAUDIT_EVENTS=N  events per scenario (default: a short run)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include <bpf/bpf.h>

#include "scenarios.h"

#define ENV_EVENTS	"CONNAUDIT_EVENTS"
#define CHECK_EVERY	200
#define SAMPLED_PEERS	3	/* per namespace and checkpoint */
#define MAX_LIVE	1200	/* two fds each: fits in 4096 open files (a VM's) */
#define MISMATCH_CAP	10	/* past this, a persistent drift only repeats */
#define POOL4		1024
#define POOL6		48
#define TFO_ONE_IN	8
/* More than the runner's 2 s per comparison: a loaded machine (or a VM
 * without KVM) may take a while to finish thousands of handshakes. */
#define QUERY_WAIT_MS	(2 * KT_WAIT_MS)

/* ---- the world: pools of peers, listeners, routes ------------------------ */

enum fam { V4, MAPPED, V6 };

/* A way in: a port, the family of its peers and the listener that takes them. */
struct route {
	uint16_t port;
	enum fam fam;
	unsigned listener;
};

static const struct listener_spec {
	const char *addr;
	uint16_t port;
	bool v6only;
} listeners[] = {
	{ "::", SMTP, false },		/* dual stack: v4-mapped and IPv6 peers */
	{ "127.0.0.1", CONTROL, false },
	{ "fd00:ca::1", CONTROL, true },
	{ "::", ECSTREAM, true },
	{ "127.0.0.1", ECCLUSTER, false },
	{ "0.0.0.0", 8025, false },	/* no service: audited by load --ports */
};

static const struct route routes[] = {
	{ SMTP, MAPPED, 0 }, { SMTP, V6, 0 }, { CONTROL, V4, 1 }, { CONTROL, V6, 2 },
	{ ECSTREAM, V6, 3 }, { ECCLUSTER, V4, 4 }, { 8025, V4, 5 },
};
/* Routes per peer family, for the bound on live keys (small maps). */
#define ROUTES_V4	4	/* SMTP (mapped), CONTROL, ECCLUSTER, 8025 */
#define ROUTES_V6	3	/* SMTP, CONTROL, ECSTREAM */

/* IPv4 peer i of the pool: a new /24 every 4 peers, a new /16 every 64,
 * none in 127.0/16 where the listeners are. All of 127/8 is on lo. */
static void pool4_addr(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "127.%u.%u.%u", 16 + i / 64, (i / 4) % 16, 1 + i % 4);
}

/* IPv6 peer i: a new /64 every 4 peers, a new /48 every 16. */
static void pool6_addr(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "fd00:cb:%x:%x::%x", i / 16, (i / 4) % 4, 1 + i % 4);
}

static void peer_addr(enum fam fam, unsigned i, char *buf, size_t len)
{
	if (fam == V6)
		pool6_addr(i, buf, len);
	else
		pool4_addr(i, buf, len);
}

static void write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, value, strlen(value));

	if (n != (ssize_t)strlen(value))
		kt_fail("write %s to %s: %m", value, path);
	close(fd);
}

/* Listeners, peer addresses and settings of the current namespace. */
static void setup_namespace(int lfd[NELEMS(listeners)])
{
	char addr[64];

	for (unsigned i = 0; i < POOL6; i++) {
		pool6_addr(i, addr, sizeof(addr));
		strcat(addr, "/128");
		net_addr_add("lo", addr);
	}
	/* Client-closed connections leave TIME_WAIT behind: reuse it for
	 * every address here, not only 127/8 (the default, 2). */
	write_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", "1");
	net_enable_tfo();
	for (size_t i = 0; i < NELEMS(listeners); i++) {
		lfd[i] = net_listen(listeners[i].addr, listeners[i].port, listeners[i].v6only);
		net_listen_tfo(lfd[i]);
	}
}

/* ---- the driver's own account of what should count ---------------------- */

enum state { OPEN, CLOSE_WAIT };

struct live {
	struct conn c;
	uint8_t ns, route, state;
	uint16_t peer;		/* index into its family's pool */
	uint64_t since;		/* event that put it in CLOSE_WAIT */
};

/* The ways a connection ends. CLOSE_WAIT endings keep it counted until a
 * FINISH_* ending closes the server side. */
enum ending {
	CLIENT_FIN, HALF_CLOSE,		/* to CLOSE_WAIT */
	SERVER_FIN, CLIENT_RST, SERVER_RST, SERVER_DESTROY, CLIENT_DESTROY, DISCONNECT,
	FINISH_FIN, FINISH_RST, FINISH_DESTROY,	/* from CLOSE_WAIT */
	NR_ENDINGS,
};

static const char *const ending_names[NR_ENDINGS] = {
	"client-close", "half-close", "server-close", "client-rst", "server-rst",
	"server-destroy", "client-destroy", "disconnect", "closewait-close",
	"closewait-rst", "closewait-destroy",
};

struct churn_case {
	const char *name;
	bool scoped;		/* cgroup mode: only our sockets take room */
	uint32_t max_peers;	/* 0: the default sizes */
	uint32_t max_prefixes;
	unsigned window[2];	/* peers in use at once: IPv4 pool, IPv6 pool */
	unsigned advance_every;	/* events between two slides of the windows */
	unsigned live;		/* connections kept open, about */
	unsigned default_events;
	bool must_reclaim;	/* the run is pointless unless zero entries were reclaimed */
};

struct driver {
	const struct churn_case *cc;
	struct kt_rng rng;
	int lfd[2][NELEMS(listeners)];
	struct live live[MAX_LIVE];
	unsigned nlive;
	uint64_t expect[2];	/* sessions that count, per namespace */
	unsigned base[2];	/* first peer of each window */
	uint64_t events, opens, tfo_opens, endings[NR_ENDINGS];
	unsigned checkpoints, mismatches;
	bool destroy_ok;	/* SOCK_DESTROY is built into this kernel */
	struct test_cgroup cg;	/* E.filter points into it */
};

/* ---- opening --------------------------------------------------------------- */

static const char *dst_of(enum fam fam)
{
	return fam == V6 ? "fd00:ca::1" : "127.0.0.1";
}

static void open_one(struct driver *d)
{
	struct live *l = &d->live[d->nlive];
	char src[64];
	int pool;

	l->ns = (uint8_t)kt_below(&d->rng, 2);
	l->route = (uint8_t)kt_below(&d->rng, NELEMS(routes));
	pool = routes[l->route].fam == V6;
	l->peer = (uint16_t)((d->base[pool] + kt_below(&d->rng, d->cc->window[pool])) %
			     (pool ? POOL6 : POOL4));
	l->state = OPEN;
	peer_addr(routes[l->route].fam, l->peer, src, sizeof(src));
	ns_switch(&E.ns[l->ns]);
	int lfd = d->lfd[l->ns][routes[l->route].listener];
	const char *dst = dst_of(routes[l->route].fam);

	if (kt_below(&d->rng, TFO_ONE_IN) == 0) {
		l->c.cli = net_connect_tfo(src, dst, routes[l->route].port);
		l->c.srv = net_accept_of(lfd, l->c.cli);
		d->tfo_opens++;
	} else {
		l->c = net_conn_open(lfd, src, dst, routes[l->route].port);
	}
	ns_switch(&E.ns[NS_A]);
	d->expect[l->ns]++;
	d->nlive++;
	d->opens++;
}

/* ---- ending ------------------------------------------------------------------ */

static void sockaddr_to_diag(const struct sockaddr_storage *sa, __be16 *port, __be32 addr[4])
{
	if (sa->ss_family == AF_INET) {
		*port = ((const struct sockaddr_in *)sa)->sin_port;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		*port = ((const struct sockaddr_in6 *)sa)->sin6_port;
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

/* What `ss -K` does, addressed from the socket's own ends: truth_destroy()
 * finds the socket by dumping every one, too slow for thousands of events. */
static int destroy_fd(int ns, int fd)
{
	struct inet_diag_req_v2 req = { .sdiag_protocol = IPPROTO_TCP, .idiag_states = 0xfff };
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	uint64_t cookie = net_cookie(fd);
	struct nlk_msg m;

	if (getsockname(fd, (struct sockaddr *)&local, &llen) ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen))
		kt_fail("addresses of a socket to destroy: %m");
	req.sdiag_family = (uint8_t)local.ss_family;
	sockaddr_to_diag(&local, &req.id.idiag_sport, req.id.idiag_src);
	sockaddr_to_diag(&peer, &req.id.idiag_dport, req.id.idiag_dst);
	req.id.idiag_cookie[0] = (uint32_t)cookie;
	req.id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
	nlk_init(&m, SOCK_DESTROY, 0, &req, sizeof(req));
	return nlk_transact(E.truth[ns].fd, &m);
}

/* SOCK_DESTROY, or a reset where the kernel cannot destroy sockets. */
static void destroy_or_reset(struct driver *d, int ns, int *fd)
{
	int r = d->destroy_ok ? destroy_fd(ns, *fd) : -EOPNOTSUPP;

	if (r == -EOPNOTSUPP) {
		if (d->destroy_ok)
			printf("# SOCK_DESTROY is not built in (CONFIG_INET_DIAG_DESTROY): "
			       "resets instead\n");
		d->destroy_ok = false;
		net_close_rst(fd);
	} else if (r) {
		kt_fail("SOCK_DESTROY: %s", strerror(-r));
	}
}

/* The action itself, on the socket it concerns; true if the session still
 * counts afterwards (the server side is in CLOSE_WAIT). */
static bool act(struct driver *d, struct live *l, enum ending how)
{
	switch (how) {
	case CLIENT_FIN:
		net_close(&l->c.cli);
		return true;
	case HALF_CLOSE:
		net_shutdown_wr(l->c.cli);
		return true;
	case SERVER_FIN:
	case FINISH_FIN:
		net_close(&l->c.srv);
		break;
	case CLIENT_RST:
		net_close_rst(&l->c.cli);
		break;
	case SERVER_RST:
	case FINISH_RST:
		net_close_rst(&l->c.srv);
		break;
	case SERVER_DESTROY:
	case FINISH_DESTROY:
		destroy_or_reset(d, l->ns, &l->c.srv);
		break;
	case CLIENT_DESTROY:
		destroy_or_reset(d, l->ns, &l->c.cli);
		break;
	case DISCONNECT:
		net_disconnect(l->c.srv);
		break;
	default:
		kt_fail("no ending %d", (int)how);
	}
	return false;
}

/* End (or half-end) live[i]; an ended one leaves the array. */
static void end_one(struct driver *d, unsigned i, enum ending how)
{
	struct live *l = &d->live[i];

	ns_switch(&E.ns[l->ns]);
	bool counts = act(d, l, how);

	ns_switch(&E.ns[NS_A]);
	d->endings[how % NR_ENDINGS]++;	/* act() knows every ending: only for gcc */
	if (counts) {
		l->state = CLOSE_WAIT;
		l->since = d->events;
		return;
	}
	/* The other end has nothing left to say: close it plainly. */
	net_close(&l->c.cli);
	net_close(&l->c.srv);
	d->expect[l->ns]--;
	*l = d->live[--d->nlive];
}

/* final: an ending after which the session no longer counts. */
static enum ending pick_ending(struct driver *d, const struct live *l, bool final)
{
	if (l->state == CLOSE_WAIT)
		return FINISH_FIN + kt_below(&d->rng, 3);
	if (final)
		return SERVER_FIN + kt_below(&d->rng, DISCONNECT - SERVER_FIN + 1);
	return kt_below(&d->rng, DISCONNECT + 1);
}

static void end_random(struct driver *d)
{
	unsigned i = kt_below(&d->rng, d->nlive);

	end_one(d, i, pick_ending(d, &d->live[i], false));
}

/* A server in CLOSE_WAIT whose client closed stays there until it closes,
 * but the client's orphan may one day time out with a reset: finish the
 * old ones (older than the previous checkpoint) long before that. */
static void finish_old_close_waits(struct driver *d)
{
	for (unsigned i = d->nlive; i-- > 0;) {
		struct live *l = &d->live[i];

		if (l->state == CLOSE_WAIT && d->events - l->since >= CHECK_EVERY)
			end_one(d, i, pick_ending(d, l, true));
	}
}

/* Slide both windows by one peer: the peer left behind ends all its
 * sessions for good, so its keys fall to zero and may be reclaimed. */
static void advance_windows(struct driver *d)
{
	for (int pool = 0; pool < 2; pool++) {
		unsigned leaving = d->base[pool];

		d->base[pool] = (d->base[pool] + 1) % (pool ? POOL6 : POOL4);
		for (unsigned i = d->nlive; i-- > 0;) {
			struct live *l = &d->live[i];

			if ((routes[l->route].fam == V6) == pool && l->peer == leaving)
				end_one(d, i, pick_ending(d, l, true));
		}
	}
}

/* ---- checking ------------------------------------------------------------------ */

const struct peer_query peer_queries[] = {
	{ RELATIVE, "/32", { 32, 32 } },
	{ RELATIVE, "/24", { 24, 24 } },
	{ RELATIVE, "/24,/64", { 24, 64 } },
	{ RELATIVE, "/16,/48", { 16, 48 } },
	{ RELATIVE, "/25,/56", { 25, 56 } },	/* not aggregated: a scan */
	{ FIXED, NULL, { 24, 64 } },
	{ FIXED, NULL, { 32, 128 } },
	{ ALL, "/0", { 0, 0 } },
};
const size_t npeer_queries = NELEMS(peer_queries);

static const char *service_of(uint16_t port)
{
	switch (port) {
	case SMTP: return "SMTP";
	case CONTROL: return "Control";
	case ECSTREAM: return "ECStream";
	case ECCLUSTER: return "ECCluster";
	default: return "SMTP";	/* port 8025 is no service's: ask about the peer's SMTP */
	}
}

/* The query's answer by the kernel's view: its sum over the service's ports. */
static uint64_t truth_answer(const struct tally *truth, const struct ca_service *svc,
			     const struct kt_prefix *p)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < svc->nports; i++)
		sum += tally_sum(truth, svc->ports[i], p);
	return sum;
}

void ask_peer_query(const struct peer_query *q, const char *peer, const char *service,
		    const struct tally *truth, struct answer *a)
{
	const struct ca_service *svc = ca_services_find(&E.services, service, &ERR);
	bool v6 = strchr(peer, ':');
	unsigned len = q->len[v6];
	struct kt_prefix p = kt_prefix(q->kind == ALL ? NULL : peer, len);

	if (!svc)
		kt_fail("service %s: %s", service, ERR.msg);
	if (q->kind == FIXED)
		snprintf(a->cidr, sizeof(a->cidr), v6 ? "[%s]/%u" : "%s/%u", peer, len);
	else
		snprintf(a->cidr, sizeof(a->cidr), "%s", q->cidr);
	a->got = ~0ull;
	a->rc = ca_count_str(E.h, &E.services, a->cidr, service,
			     q->kind == RELATIVE ? peer : NULL, &a->got, &ERR);
	a->want = truth_answer(truth, svc, &p);
}

void print_answer(const struct answer *a, const char *service, const char *peer)
{
	printf("count %s %s peer %s: the kernel shows %llu, connaudit says %llu (return %d%s%s)\n",
	       a->cidr, service, peer, (unsigned long long)a->want, (unsigned long long)a->got,
	       a->rc, a->rc < 0 ? ": " : "", a->rc < 0 ? ERR.msg : "");
}

/* One query about `peer`; false (printed when loud) if connaudit is not
 * exact or disagrees with the kernel. */
static bool check_query(const struct peer_query *q, const char *peer, const char *service,
			const struct tally *truth, bool loud)
{
	struct answer a;

	ask_peer_query(q, peer, service, truth, &a);
	if (a.rc == 0 && a.got == a.want)
		return true;
	if (loud)
		print_answer(&a, service, peer);
	return false;
}

struct sample {
	char peer[64];
	const char *service;
};

/* Peers of random live sessions in namespace ns (fewer if it has none). */
static unsigned sample_peers(struct driver *d, int ns, struct sample *s, unsigned want)
{
	unsigned n = 0;

	for (unsigned tries = 0; n < want && tries < 8 * want && d->nlive; tries++) {
		const struct live *l = &d->live[kt_below(&d->rng, d->nlive)];
		const struct route *rt = &routes[l->route];

		if (l->ns != ns)
			continue;
		peer_addr(rt->fam, l->peer, s[n].peer, sizeof(s[n].peer));
		s[n].service = service_of(rt->port);
		n++;
	}
	return n;
}

/* Wrong answers among all queries about the samples, against one reading
 * of the kernel's view. */
static unsigned query_round(int ns, const struct sample *s, unsigned n, bool loud)
{
	struct tally truth = { 0 };
	unsigned wrong = 0;

	truth_peers(&E.truth[ns], &E.filter, &truth);
	for (unsigned i = 0; i < n; i++)
		for (size_t q = 0; q < npeer_queries; q++)
			wrong += !check_query(&peer_queries[q], s[i].peer, s[i].service,
					      &truth, loud);
	tally_free(&truth);
	return wrong;
}

/* The sampled queries, retried (bounded) while sessions still settle. */
static unsigned check_queries(struct driver *d, int ns)
{
	struct sample s[SAMPLED_PEERS];
	unsigned n = sample_peers(d, ns, s, SAMPLED_PEERS), wrong;
	int64_t deadline = kt_now_ms() + QUERY_WAIT_MS;

	ca_set_netns(E.h, E.ns[ns].inode);
	while ((wrong = query_round(ns, s, n, false)) && kt_now_ms() < deadline)
		usleep(5000);
	if (wrong)
		wrong = query_round(ns, s, n, true);
	ca_set_netns(E.h, 0);
	return wrong;
}

/* The tracepoint's runs that the kernel skipped because the program was
 * already running on that CPU (a softirq interrupting it): events connaudit
 * never saw. Only for the report: 0 when unknown. */
static uint64_t tracepoint_misses(void)
{
	struct bpf_link_info link = { 0 };
	struct bpf_prog_info prog = { 0 };
	uint32_t llen = sizeof(link), plen = sizeof(prog);
	char path[PATH_MAX + 32];
	int lfd, pfd = -1;

	snprintf(path, sizeof(path), "%s/%s", E.pin_dir, CA_PIN_LINK_STATE);
	lfd = bpf_obj_get(path);
	if (lfd >= 0 && !bpf_obj_get_info_by_fd(lfd, &link, &llen))
		pfd = bpf_prog_get_fd_by_id(link.prog_id);
	if (pfd < 0 || bpf_obj_get_info_by_fd(pfd, &prog, &plen))
		prog.recursion_misses = 0;
	if (lfd >= 0)
		close(lfd);
	if (pfd >= 0)
		close(pfd);
	return prog.recursion_misses;
}

static void checkpoint(struct driver *d)
{
	char step[96];

	finish_old_close_waits(d);
	d->checkpoints++;
	for (int ns = NS_A; ns <= NS_B; ns++) {
		snprintf(step, sizeof(step), "checkpoint %u after %llu events, namespace %c",
			 d->checkpoints, (unsigned long long)d->events, 'A' + ns);
		if (!views_settle(ns, d->expect[ns], step)) {
			d->mismatches++;
			printf("(tracepoint runs skipped by the kernel so far: %llu)\n",
			       (unsigned long long)tracepoint_misses());
		}
		check_health(step);
		d->mismatches += check_queries(d, ns);
	}
	if (d->mismatches >= MISMATCH_CAP)
		kt_fail("%u mismatches by %s: stopping (CONNAUDIT_SEED replays the run)",
			d->mismatches, step);
}

/* ---- the run ---------------------------------------------------------------------- */

static unsigned events_wanted(const struct churn_case *cc)
{
	const char *s = getenv(ENV_EVENTS);
	char *end;
	unsigned long n = s ? strtoul(s, &end, 10) : cc->default_events;

	if (s && (*end || !n))
		kt_fail("%s=%s: want a positive number", ENV_EVENTS, s);
	return (unsigned)n;
}

uint64_t kt_seed(const char *scenario)
{
	const char *s = getenv(KT_ENV_SEED);
	struct timespec ts;
	uint64_t seed;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = s ? strtoull(s, NULL, 0)
		 : ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid();
	printf("# %s: seed %llu (%s=%llu replays it)\n", scenario, (unsigned long long)seed,
	       KT_ENV_SEED, (unsigned long long)seed);
	return seed;
}

/* The live target, with some swing so that the count goes both ways. */
static bool want_open(struct driver *d)
{
	unsigned target = d->cc->live;

	if (d->nlive < target / 2)
		return true;
	if (d->nlive >= target + target / 2 || d->nlive == MAX_LIVE)
		return false;
	return kt_below(&d->rng, 2);
}

static void one_event(struct driver *d)
{
	d->events++;
	if (d->events % d->cc->advance_every == 0)
		advance_windows(d);
	else if (want_open(d))
		open_one(d);
	else
		end_random(d);
	if (d->events % CHECK_EVERY == 0)
		checkpoint(d);
}

static void end_everything(struct driver *d)
{
	while (d->nlive)
		end_one(d, d->nlive - 1, pick_ending(d, &d->live[d->nlive - 1], true));
	compare_ns(NS_A, 0, "every session ended");
	compare_ns(NS_B, 0, "every session ended");
}

static void report(const struct driver *d, int64_t ms, const uint64_t stats[CA_STAT_NR])
{
	printf("# %s: %llu events (%llu opens, %llu with fast open), %u checkpoints, "
	       "%u mismatches, %.1f s\n", d->cc->name, (unsigned long long)d->events,
	       (unsigned long long)d->opens, (unsigned long long)d->tfo_opens, d->checkpoints,
	       d->mismatches, (double)ms / 1000);
	printf("# %s: zero entries reclaimed %llu, tracepoint runs skipped by the kernel %llu\n",
	       d->cc->name, (unsigned long long)stats[CA_STAT_RECLAIMED],
	       (unsigned long long)tracepoint_misses());
	printf("# %s: endings:", d->cc->name);
	for (int i = 0; i < NR_ENDINGS; i++)
		printf(" %s %llu", ending_names[i], (unsigned long long)d->endings[i]);
	printf("\n");
}

/* Everything the run needs before the first event. */
static void churn_setup(struct driver *d)
{
	/* 8025 is no service's: audited as an extra port */
	struct ca_load_opts o = { .max_peers = d->cc->max_peers,
				  .max_prefixes = d->cc->max_prefixes, .ports = "8025" };

	if (d->cc->scoped) {
		test_cgroup_setup(&d->cg);
		cg_move_self(E.cgroup);
		o.cgroup = E.cgroup;
	}
	second_namespace();
	setup_namespace(d->lfd[NS_A]);
	ns_switch(&E.ns[NS_B]);
	setup_namespace(d->lfd[NS_B]);
	ns_switch(&E.ns[NS_A]);
	load_opts(&o);
	d->destroy_ok = true;
}

static void sc_churn(const void *a, const void *b)
{
	static struct driver d;
	uint64_t stats[CA_STAT_NR];
	unsigned events;
	int64_t start;

	(void)b;
	d.cc = a;
	d.rng.s = kt_seed(d.cc->name);
	events = events_wanted(d.cc);
	churn_setup(&d);
	start = kt_now_ms();
	while (d.events < events)
		one_event(&d);
	end_everything(&d);
	CA_CHECK(ca_read_stats(E.h, stats, &ERR));
	report(&d, kt_now_ms() - start, stats);
	if (d.mismatches)
		kt_fail("%u mismatches (CONNAUDIT_SEED replays the run)", d.mismatches);
	if (d.cc->must_reclaim && !stats[CA_STAT_RECLAIMED])
		kt_fail("no zero entry was reclaimed: the maps never filled up");
}

/* The default maps, the whole host audited. */
static const struct churn_case churn_random = {
	.name = "churn/random", .window = { 96, 24 }, .advance_every = 50, .live = 600,
	.default_events = 3000,
};

/* Maps twice the live keys the windows allow, far fewer than the keys seen
 * over a run: zero entries must be reclaimed again and again. Live peer
 * keys: 2 namespaces x (8 IPv4 peers x 4 routes + 4 IPv6 peers x 3) = 88.
 * Live prefix keys per namespace and port: the total, at most 3 /24s and 2
 * /16s of 8 consecutive IPv4 peers, 2 /64s and 2 /48s of 4 IPv6 peers: 10,
 * so 100 over 5 ports. Only our cgroup is audited: the host takes no room. */
static const struct churn_case churn_small_maps = {
	.name = "churn/small-maps", .scoped = true,
	.max_peers = 2 * 2 * (8 * ROUTES_V4 + 4 * ROUTES_V6), .max_prefixes = 2 * 100,
	.window = { 8, 4 }, .advance_every = 40, .live = 200, .default_events = 2000,
	.must_reclaim = true,
};

void churn_register(kt_add_fn *add)
{
	add(churn_random.name, sc_churn, &churn_random, NULL);
	add(churn_small_maps.name, sc_churn, &churn_small_maps, NULL);
}
