// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* truth.c - ground truth from sock_diag, and tallies (see truth.h). */
#include "truth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "netlib.h"

/* ---- tallies ------------------------------------------------------------- */

void tally_add(struct tally *t, const struct ca_key *key, uint64_t count)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		if (!t->v)
			kt_fail("out of memory for %zu tally entries", t->cap);
	}
	t->v[t->n++] = (struct tally_entry){ .key = *key, .count = count };
}

static int key_cmp(const struct ca_key *a, const struct ca_key *b)
{
	if (a->netns != b->netns)
		return a->netns < b->netns ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->prefixlen != b->prefixlen)
		return a->prefixlen < b->prefixlen ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int entry_cmp(const void *a, const void *b)
{
	return key_cmp(&((const struct tally_entry *)a)->key,
		       &((const struct tally_entry *)b)->key);
}

void tally_finish(struct tally *t)
{
	size_t out = 0;

	if (!t->n)
		return;		/* t->v may be NULL, which qsort must not see */
	qsort(t->v, t->n, sizeof(*t->v), entry_cmp);
	for (size_t i = 0; i < t->n; i++) {
		if (out && !key_cmp(&t->v[out - 1].key, &t->v[i].key))
			t->v[out - 1].count += t->v[i].count;
		else
			t->v[out++] = t->v[i];
	}
	t->n = out;
	out = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].count)
			t->v[out++] = t->v[i];
	t->n = out;
}

void tally_free(struct tally *t)
{
	free(t->v);
	*t = (struct tally){ 0 };
}

uint64_t tally_total(const struct tally *t)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < t->n; i++)
		sum += t->v[i].count;
	return sum;
}

/* Prefix arithmetic of the tests' own: an oracle must not share the code it
 * checks (connaudit's is user/cidr.c and the BPF program). */
static void mask_bits(uint8_t addr[16], unsigned len)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;

		addr[i] &= keep ? (uint8_t)(0xff << (8 - keep)) : 0;
	}
}

static bool prefix_contains(const struct kt_prefix *p, const struct ca_key *k)
{
	uint8_t a[16], b[16];

	if (!p->family)
		return true;
	if (p->family != k->family)
		return false;
	memcpy(a, p->addr, 16);
	memcpy(b, k->addr, 16);
	mask_bits(a, p->len);
	mask_bits(b, p->len);
	return !memcmp(a, b, 16);
}

static void add_masked(struct tally *out, const struct tally_entry *e, uint8_t family,
		       unsigned len)
{
	struct ca_key k = e->key;

	k.family = family;
	k.prefixlen = (uint8_t)len;
	mask_bits(k.addr, len);
	tally_add(out, &k, e->count);
}

void tally_aggregate(const struct tally *peers, const struct ca_config *cfg,
		     struct tally *out)
{
	for (size_t i = 0; i < peers->n; i++) {
		const struct tally_entry *e = &peers->v[i];
		bool v4 = e->key.family == CA_AF_INET;
		unsigned nr = v4 ? cfg->nr_v4 : cfg->nr_v6;

		for (unsigned j = 0; j < nr; j++)
			add_masked(out, e, e->key.family, v4 ? cfg->v4[j] : cfg->v6[j]);
		add_masked(out, e, CA_AF_ALL, 0);
	}
	tally_finish(out);
}

const char *tally_key_str(const struct ca_key *k, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (k->family == CA_AF_ALL) {
		snprintf(buf, len, "port %u all", k->port);
		return buf;
	}
	inet_ntop(k->family == CA_AF_INET ? AF_INET : AF_INET6, k->addr, addr, sizeof(addr));
	snprintf(buf, len, "port %u %s/%u", k->port, addr, k->prefixlen);
	return buf;
}

static size_t report_diff(const struct ca_key *k, uint64_t truth, uint64_t auditor, FILE *out)
{
	char key[96];

	if (!out)
		return 1;
	fprintf(out, "    %s: truth %llu, auditor %llu\n", tally_key_str(k, key, sizeof(key)),
		(unsigned long long)truth, (unsigned long long)auditor);
	return 1;
}

size_t tally_diff(const struct tally *truth, const struct tally *auditor, FILE *out)
{
	size_t i = 0, j = 0, differ = 0;

	while (i < truth->n || j < auditor->n) {
		int c = i == truth->n ? 1 : j == auditor->n ? -1
			: key_cmp(&truth->v[i].key, &auditor->v[j].key);

		if (c < 0) {
			differ += report_diff(&truth->v[i].key, truth->v[i].count, 0, out);
			i++;
		} else if (c > 0) {
			differ += report_diff(&auditor->v[j].key, 0, auditor->v[j].count, out);
			j++;
		} else {
			if (truth->v[i].count != auditor->v[j].count)
				differ += report_diff(&truth->v[i].key, truth->v[i].count,
						      auditor->v[j].count, out);
			i++;
			j++;
		}
	}
	return differ;
}

uint64_t tally_sum(const struct tally *peers, uint16_t port, const struct kt_prefix *p)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < peers->n; i++)
		if (peers->v[i].key.port == port && prefix_contains(p, &peers->v[i].key))
			sum += peers->v[i].count;
	return sum;
}

struct kt_prefix kt_prefix(const char *addr, unsigned len)
{
	struct kt_prefix p = { .len = len };

	if (!addr)
		return p;
	p.family = strchr(addr, ':') ? CA_AF_INET6 : CA_AF_INET;
	if (inet_pton(p.family == CA_AF_INET ? AF_INET : AF_INET6, addr, p.addr) != 1)
		kt_fail("bad prefix address %s", addr);
	return p;
}

/* ---- sock_diag ------------------------------------------------------------- */

#define TCPF(state)	(1u << (state))
#define TCPF_ALL	0xfffu

/* What one sock_diag record tells. */
struct diag_sock {
	uint8_t family;
	uint8_t state;
	struct inet_diag_sockid id;
	uint64_t cookie;
	uint64_t cgroup;	/* 0 if the kernel did not say */
};

typedef int (*diag_fn)(const struct diag_sock *s, void *arg);

struct diag_walk {
	diag_fn fn;
	void *arg;
};

static int diag_record(const struct nlmsghdr *nh, void *arg)
{
	const struct diag_walk *w = arg;
	const struct inet_diag_msg *msg = NLMSG_DATA(nh);
	struct diag_sock s = {
		.family = msg->idiag_family,
		.state = msg->idiag_state,
		.id = msg->id,
		.cookie = msg->id.idiag_cookie[0] | (uint64_t)msg->id.idiag_cookie[1] << 32,
	};
	int len = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));

	if (nh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return 0;
	for (struct rtattr *a = (struct rtattr *)(msg + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == INET_DIAG_CGROUP_ID && RTA_PAYLOAD(a) >= sizeof(uint64_t))
			memcpy(&s.cgroup, RTA_DATA(a), sizeof(s.cgroup));
	return w->fn(&s, w->arg);
}

/* Call fn on every TCP socket in one of `states`, both families. */
static int diag_walk(const struct truth_src *src, uint32_t states, diag_fn fn, void *arg)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct diag_walk w = { fn, arg };

	for (size_t i = 0; i < sizeof(families); i++) {
		struct inet_diag_req_v2 req = {
			.sdiag_family = families[i],
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = states,
		};
		struct nlk_msg m;

		nlk_init(&m, SOCK_DIAG_BY_FAMILY, 0, &req, sizeof(req));
		int r = nlk_dump(src->fd, &m, diag_record, &w);

		if (r)
			return r;
	}
	return 0;
}

void truth_open(struct truth_src *src)
{
	struct netns here;

	ns_current(&here);
	src->netns = here.inode;
	ns_release(&here);
	src->fd = nlk_open(NETLINK_SOCK_DIAG);
}

void truth_close(struct truth_src *src)
{
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
}

/* Listening ports, and the connected sockets that may be inbound. */
struct snapshot {
	uint64_t listening[65536 / 64];
	struct diag_sock *conn;
	size_t n, cap;
};

static int snapshot_add(const struct diag_sock *s, void *arg)
{
	struct snapshot *snap = arg;
	uint16_t port = ntohs(s->id.idiag_sport);

	if (s->state == TCP_LISTEN) {
		snap->listening[port / 64] |= 1ull << (port % 64);
		return 0;
	}
	if (snap->n == snap->cap) {
		snap->cap = snap->cap ? 2 * snap->cap : 256;
		snap->conn = realloc(snap->conn, snap->cap * sizeof(*snap->conn));
		if (!snap->conn)
			return -ENOMEM;
	}
	snap->conn[snap->n++] = *s;
	return 0;
}

static bool listed(uint64_t v, const uint64_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

static bool admitted(const struct diag_sock *s, const struct truth_filter *f)
{
	uint16_t port = ntohs(s->id.idiag_sport);

	if (!f)
		return true;
	if (f->ports && !(f->ports->bits[port / 64] >> (port % 64) & 1))
		return false;
	if (f->ncgroups && !listed(s->cgroup, f->cgroups, f->ncgroups))
		return false;
	return !listed(s->cookie, f->outbound, f->noutbound);
}

static const uint8_t v4mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

/* The key connaudit should count s under: IPv4-mapped peers as IPv4. */
static struct ca_key peer_key(const struct diag_sock *s, uint32_t netns)
{
	struct ca_key k = { .netns = netns, .port = ntohs(s->id.idiag_sport) };
	const uint8_t *dst = (const uint8_t *)s->id.idiag_dst;

	if (s->family == AF_INET) {
		memcpy(k.addr, dst, 4);
	} else if (!memcmp(dst, v4mapped_prefix, sizeof(v4mapped_prefix))) {
		memcpy(k.addr, dst + 12, 4);
	} else {
		memcpy(k.addr, dst, 16);
		k.family = CA_AF_INET6;
		k.prefixlen = 128;
		return k;
	}
	k.family = CA_AF_INET;
	k.prefixlen = 32;
	return k;
}

void truth_peers(const struct truth_src *src, const struct truth_filter *f,
		 struct tally *out)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));
	uint32_t states = TCPF(TCP_LISTEN) | TCPF(TCP_ESTABLISHED) | TCPF(TCP_CLOSE_WAIT);

	if (!snap)
		kt_fail("out of memory");
	int r = diag_walk(src, states, snapshot_add, snap);

	if (r)
		kt_fail("sock_diag dump in netns %u: %s", src->netns, strerror(-r));
	for (size_t i = 0; i < snap->n; i++) {
		const struct diag_sock *s = &snap->conn[i];
		uint16_t port = ntohs(s->id.idiag_sport);

		if ((snap->listening[port / 64] >> (port % 64) & 1) && admitted(s, f)) {
			struct ca_key k = peer_key(s, src->netns);

			tally_add(out, &k, 1);
		}
	}
	tally_finish(out);
	free(snap->conn);
	free(snap);
}

struct cookie_search {
	uint64_t cookie;
	struct diag_sock found;
	bool hit;
};

/* Never stops the walk: a dump left half-read would answer the next request. */
static int match_cookie(const struct diag_sock *s, void *arg)
{
	struct cookie_search *cs = arg;

	if (s->cookie == cs->cookie) {
		cs->found = *s;
		cs->hit = true;
	}
	return 0;
}

int truth_destroy(const struct truth_src *src, uint64_t cookie)
{
	struct cookie_search cs = { .cookie = cookie };
	int r = diag_walk(src, TCPF_ALL, match_cookie, &cs);

	if (r < 0)
		return r;
	if (!cs.hit)
		return -ENOENT;
	/* The kernel finds the socket by its 4-tuple and checks the cookie. */
	struct inet_diag_req_v2 req = {
		.sdiag_family = cs.found.family,
		.sdiag_protocol = IPPROTO_TCP,
		.idiag_states = TCPF_ALL,
		.id = cs.found.id,
	};
	struct nlk_msg m;

	nlk_init(&m, SOCK_DESTROY, 0, &req, sizeof(req));
	return nlk_transact(src->fd, &m);
}
