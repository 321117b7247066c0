// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cli_inspect.c - connaudit status, dump and top. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "sysfs.h"

static const char *const stat_names[CA_STAT_NR] = {
	[CA_STAT_EVENTS] = "events",
	[CA_STAT_ADMITTED] = "admitted",
	[CA_STAT_DEPARTED] = "departed",
	[CA_STAT_SEEDED] = "seeded",
	[CA_STAT_SOCKOPS] = "sockops_callbacks",
};

/* Entries gathered from a map, for sorting and printing. */
struct entries {
	struct entry {
		struct ca_key key;
		uint64_t count;
	} *v;
	size_t n, cap;
	uint32_t netns;		/* 0: every namespace */
};

static int gather(const struct ca_key *key, uint64_t count, void *arg)
{
	struct entries *e = arg;

	if (e->netns && key->netns != e->netns)
		return 0;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 256;
		struct entry *v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = (struct entry){ *key, count };
	return 0;
}

static int by_ns_port_addr(const void *a, const void *b)
{
	const struct ca_key *x = &((const struct entry *)a)->key;
	const struct ca_key *y = &((const struct entry *)b)->key;

	if (x->netns != y->netns)
		return x->netns < y->netns ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->prefixlen != y->prefixlen)
		return x->prefixlen < y->prefixlen ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static const char *key_addr(const struct ca_key *k, char *buf, size_t len)
{
	struct ca_addr a = { .family = k->family };

	memcpy(a.bytes, k->addr, sizeof(a.bytes));
	if (ca_addr_format(&a, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

/* Gather the entries of one map for the handle's namespace (or all). */
static int collect(struct ca_handle *h, bool prefixes, uint32_t netns, struct entries *e)
{
	struct ca_error err;
	int rc;

	e->netns = netns;
	rc = ca_foreach(h, prefixes, gather, e, &err);
	if (rc)
		return rc == -ENOMEM ? cli_fail("out of memory") : cli_fail("%s", err.msg);
	qsort(e->v, e->n, sizeof(*e->v), by_ns_port_addr);
	return 0;
}

int cmd_dump(const struct cli *c)
{
	struct entries e = { 0 };
	struct ca_handle *h = cli_open(c);
	char addr[INET6_ADDRSTRLEN];
	uint32_t netns = 0;

	if (!h || (!c->all_netns && cli_netns(c, &netns)) || collect(h, false, netns, &e)) {
		ca_close(h);
		return 1;
	}
	if (c->json)
		printf("[");
	for (size_t i = 0; i < e.n; i++) {
		const struct ca_key *k = &e.v[i].key;

		key_addr(k, addr, sizeof(addr));
		if (c->json)
			printf("%s\n  {\"netns\": %u, \"port\": %u, \"addr\": \"%s\", \"count\": %" PRIu64 "}",
			       i ? "," : "", k->netns, k->port, addr, e.v[i].count);
		else if (c->all_netns)
			printf("%u %u %s %" PRIu64 "\n", k->netns, k->port, addr, e.v[i].count);
		else
			printf("%u %s %" PRIu64 "\n", k->port, addr, e.v[i].count);
	}
	if (c->json)
		printf("%s]\n", e.n ? "\n" : "");
	free(e.v);
	ca_close(h);
	return 0;
}

/* Sessions grouped by client prefix, summed over the service's ports. */
static int by_count_desc(const void *a, const void *b)
{
	uint64_t x = ((const struct entry *)a)->count, y = ((const struct entry *)b)->count;

	return x == y ? by_ns_port_addr(a, b) : (x > y ? -1 : 1);
}

static bool service_has_port(const struct ca_service *svc, uint16_t port)
{
	for (unsigned i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port)
			return true;
	return false;
}

/* Mask each peer to its family's length and merge equal prefixes. */
static size_t group_by_prefix(struct entries *e, const struct ca_service *svc,
			      unsigned v4_len, unsigned v6_len)
{
	size_t out = 0;

	for (size_t i = 0; i < e->n; i++) {
		struct ca_key *k = &e->v[i].key;

		if (!service_has_port(svc, k->port))
			continue;
		k->port = 0;
		k->prefixlen = (uint8_t)(k->family == CA_AF_INET ? v4_len : v6_len);
		ca_mask_bytes(k->addr, k->prefixlen);
		e->v[out++] = e->v[i];
	}
	qsort(e->v, out, sizeof(*e->v), by_ns_port_addr);
	size_t merged = 0;

	for (size_t i = 0; i < out; i++) {
		if (merged && !by_ns_port_addr(&e->v[merged - 1], &e->v[i]))
			e->v[merged - 1].count += e->v[i].count;
		else
			e->v[merged++] = e->v[i];
	}
	return merged;
}

int cmd_top(const struct cli *c)
{
	struct ca_services services;
	const struct ca_service *svc;
	struct entries e = { 0 };
	struct ca_handle *h;
	struct ca_error err;
	struct ca_cidr cidr;
	char addr[INET6_ADDRSTRLEN];
	uint32_t netns;
	size_t n;

	if (c->argc != 1)
		return cli_fail("top needs SERVICE, e.g. `connaudit top SMTP --prefix 24,64`")
		       ? EXIT_USAGE : 0;
	if (ca_cidr_parse(c->prefix ? c->prefix : "/24,/64", &cidr, &err) ||
	    cidr.kind != CA_CIDR_PEER)
		return cli_fail("--prefix takes the form /N or /N,/M (N for IPv4, M for IPv6)%s%s",
				cidr.kind != CA_CIDR_PEER ? "" : ": ", err.msg) ? EXIT_USAGE : 0;
	if (cli_services(c, &services))
		return 1;
	svc = ca_services_find(&services, c->argv[0], &err);
	if (!svc)
		return cli_fail("%s", err.msg);
	h = cli_open(c);
	if (!h || cli_netns(c, &netns) || collect(h, false, netns, &e)) {
		ca_close(h);
		return 1;
	}
	n = group_by_prefix(&e, svc, cidr.v4_len > 32 ? 32 : cidr.v4_len, cidr.v6_len);
	qsort(e.v, n, sizeof(*e.v), by_count_desc);
	if (n > c->top_n)
		n = c->top_n;
	if (c->json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		const struct ca_key *k = &e.v[i].key;

		key_addr(k, addr, sizeof(addr));
		if (c->json)
			printf("%s\n  {\"prefix\": \"%s/%u\", \"count\": %" PRIu64 "}",
			       i ? "," : "", addr, k->prefixlen, e.v[i].count);
		else
			printf("%" PRIu64 " %s/%u\n", e.v[i].count, addr, k->prefixlen);
	}
	if (c->json)
		printf("%s]\n", n ? "\n" : "");
	free(e.v);
	ca_close(h);
	return 0;
}

/* ---- status ---------------------------------------------------------- */

struct link_status {
	const char *pin;
	bool present;
	__u32 link_id, prog_id;
	char prog_name[BPF_OBJ_NAME_LEN];
	__u64 run_cnt, run_time_ns;
};

struct status {
	const struct ca_config *cfg;
	struct link_status links[2];
	size_t peers, prefixes;
	uint64_t stats[CA_STAT_NR];
	struct ca_health health;
	struct utsname uts;
};

static void read_link(const char *pin_dir, struct link_status *l)
{
	struct bpf_link_info li = { 0 };
	struct bpf_prog_info pi = { 0 };
	__u32 len = sizeof(li);
	char path[PATH_MAX];
	int fd, pfd;

	ca_pin_path(path, sizeof(path), pin_dir, l->pin);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	l->present = true;
	if (bpf_obj_get_info_by_fd(fd, &li, &len) == 0) {
		l->link_id = li.id;
		l->prog_id = li.prog_id;
	}
	close(fd);
	pfd = bpf_prog_get_fd_by_id(l->prog_id);
	len = sizeof(pi);
	if (pfd >= 0 && bpf_obj_get_info_by_fd(pfd, &pi, &len) == 0) {
		memcpy(l->prog_name, pi.name, sizeof(l->prog_name));
		l->run_cnt = pi.run_cnt;
		l->run_time_ns = pi.run_time_ns;
	}
	if (pfd >= 0)
		close(pfd);
}

static int count_entry(const struct ca_key *key, uint64_t count, void *arg)
{
	(void)key;
	(void)count;
	++*(size_t *)arg;
	return 0;
}

static int read_status(struct ca_handle *h, struct status *s)
{
	struct ca_error err;

	s->cfg = ca_loaded_config(h);
	s->links[0].pin = CA_PIN_LINK_STATE;
	s->links[1].pin = CA_PIN_LINK_SOCKOPS;
	for (int i = 0; i < 2; i++)
		read_link(ca_pin_dir(h), &s->links[i]);
	uname(&s->uts);
	if (ca_foreach(h, false, count_entry, &s->peers, &err) ||
	    ca_foreach(h, true, count_entry, &s->prefixes, &err) ||
	    ca_read_stats(h, s->stats, &err) || ca_read_health(h, &s->health, &err))
		return cli_fail("%s", err.msg);
	return 0;
}

static bool status_exact(const struct ca_health *hv)
{
	return hv->incomplete <= 0 && !hv->storage_fail && !hv->underflow && !hv->retired;
}

static void print_prefix_list(const char *sep, const uint8_t *lens, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		printf("%s%u", i ? sep : "", lens[i]);
}

static void print_status_text(const struct cli *c, const struct status *s)
{
	const struct ca_health *hv = &s->health;

	printf("connaudit loaded at %s\n", ca_resolve_pin_dir(c->pin_dir));
	printf("  kernel     %s\n", s->uts.release);
	if (s->cfg->flags & CA_CFG_CGROUP)
		printf("  scope      cgroup id %llu (sock_ops admission)\n",
		       (unsigned long long)s->cfg->cgroup_id);
	else
		printf("  scope      whole host (tp_btf admission)\n");
	printf("  prefixes   IPv4 /");
	print_prefix_list(" /", s->cfg->v4, s->cfg->nr_v4);
	printf("  IPv6 /");
	print_prefix_list(" /", s->cfg->v6, s->cfg->nr_v6);
	printf("\n");
	for (int i = 0; i < 2; i++) {
		const struct link_status *l = &s->links[i];

		if (l->present)
			printf("  link       %-15s link id %u, prog %s id %u, runs %llu, %llu ns\n",
			       l->pin, l->link_id, l->prog_name, l->prog_id,
			       (unsigned long long)l->run_cnt, (unsigned long long)l->run_time_ns);
	}
	printf("  maps       %s %zu/%u entries, %s %zu/%u entries\n", CA_PIN_PEERS, s->peers,
	       s->cfg->max_peers, CA_PIN_PREFIXES, s->prefixes, s->cfg->max_prefixes);
	printf("  counters  ");
	for (int i = 0; i < CA_STAT_NR; i++)
		printf(" %s %llu", stat_names[i], (unsigned long long)s->stats[i]);
	printf("\n  health     %s: incomplete %lld, peers_full %llu, prefixes_full %llu, "
	       "contention %llu, storage_fail %llu, underflow %llu\n",
	       status_exact(hv) ? "exact" : "COUNTS MAY BE LOW", (long long)hv->incomplete,
	       (unsigned long long)hv->peers_full, (unsigned long long)hv->prefixes_full,
	       (unsigned long long)hv->contention, (unsigned long long)hv->storage_fail,
	       (unsigned long long)hv->underflow);
}

static void print_status_json(const struct cli *c, const struct status *s)
{
	const struct ca_health *hv = &s->health;

	printf("{\"loaded\": true, \"pin_dir\": \"%s\", \"kernel\": \"%s\",\n",
	       ca_resolve_pin_dir(c->pin_dir), s->uts.release);
	printf(" \"scope\": \"%s\", \"cgroup_id\": %llu,\n",
	       s->cfg->flags & CA_CFG_CGROUP ? "cgroup" : "host",
	       (unsigned long long)s->cfg->cgroup_id);
	printf(" \"prefixes\": {\"ipv4\": [");
	print_prefix_list(", ", s->cfg->v4, s->cfg->nr_v4);
	printf("], \"ipv6\": [");
	print_prefix_list(", ", s->cfg->v6, s->cfg->nr_v6);
	printf("]},\n \"links\": [");
	for (int i = 0, n = 0; i < 2; i++) {
		const struct link_status *l = &s->links[i];

		if (l->present)
			printf("%s{\"pin\": \"%s\", \"link_id\": %u, \"prog\": \"%s\", "
			       "\"prog_id\": %u, \"run_cnt\": %llu, \"run_time_ns\": %llu}",
			       n++ ? ", " : "", l->pin, l->link_id, l->prog_name, l->prog_id,
			       (unsigned long long)l->run_cnt, (unsigned long long)l->run_time_ns);
	}
	printf("],\n \"maps\": {\"%s\": {\"entries\": %zu, \"max\": %u}, "
	       "\"%s\": {\"entries\": %zu, \"max\": %u}},\n \"stats\": {",
	       CA_PIN_PEERS, s->peers, s->cfg->max_peers, CA_PIN_PREFIXES, s->prefixes,
	       s->cfg->max_prefixes);
	for (int i = 0; i < CA_STAT_NR; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", stat_names[i],
		       (unsigned long long)s->stats[i]);
	printf("},\n \"health\": {\"exact\": %s, \"incomplete\": %lld, \"peers_full\": %llu, "
	       "\"prefixes_full\": %llu, \"contention\": %llu, \"storage_fail\": %llu, "
	       "\"underflow\": %llu}}\n", status_exact(hv) ? "true" : "false",
	       (long long)hv->incomplete, (unsigned long long)hv->peers_full,
	       (unsigned long long)hv->prefixes_full, (unsigned long long)hv->contention,
	       (unsigned long long)hv->storage_fail, (unsigned long long)hv->underflow);
}

int cmd_status(const struct cli *c)
{
	struct status s = { 0 };
	struct ca_handle *h;
	struct ca_error err;
	int rc = ca_open(&h, c->pin_dir, &err);

	if (rc == -ENOENT) {
		if (c->json)
			printf("{\"loaded\": false, \"pin_dir\": \"%s\", \"reason\": \"%s\"}\n",
			       ca_resolve_pin_dir(c->pin_dir), err.msg);
		else
			printf("connaudit is not loaded: %s\n", err.msg);
		return 1;
	}
	if (rc)
		return cli_fail("%s", err.msg);
	rc = read_status(h, &s);
	if (!rc) {
		if (c->json)
			print_status_json(c, &s);
		else
			print_status_text(c, &s);
	}
	ca_close(h);
	return rc;
}
