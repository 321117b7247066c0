// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cli_inspect.c - connaudit status, dump and top. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "cluster.h"
#include "sysfs.h"

const char *const cli_stat_names[] = {
	[CA_STAT_EVENTS] = "events",
	[CA_STAT_ADMITTED] = "admitted",
	[CA_STAT_DEPARTED] = "departed",
	[CA_STAT_SEEDED] = "seeded",
	[CA_STAT_SOCKOPS] = "sockops_callbacks",
	[CA_STAT_RECLAIMED] = "reclaimed",
};
/* A counter added to enum ca_stat without a name here would print as NULL. */
_Static_assert(sizeof(cli_stat_names) / sizeof(cli_stat_names[0]) == CA_STAT_NR,
	       "every ca_stat needs a name in cli_stat_names");

/* Entries gathered from a map, for sorting and printing. */
struct entries {
	struct cli_entry *v;
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
		struct cli_entry *v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = (struct cli_entry){ *key, count };
	return 0;
}

static int by_ns_port_addr(const void *a, const void *b)
{
	const struct ca_key *x = &((const struct cli_entry *)a)->key;
	const struct ca_key *y = &((const struct cli_entry *)b)->key;

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

const char *cli_key_addr(const struct ca_key *k, char *buf, size_t len)
{
	struct ca_addr a = { .family = k->family };

	memcpy(a.bytes, k->addr, sizeof(a.bytes));
	if (ca_addr_format(&a, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

/* Gather the entries of one map for one namespace (0: all), sorted by key. */
static int collect(struct ca_handle *h, bool prefixes, uint32_t netns, struct entries *e)
{
	struct ca_error err;
	int rc;

	e->netns = netns;
	rc = ca_foreach(h, prefixes, gather, e, &err);
	if (rc)
		return rc == -ENOMEM ? cli_fail("out of memory") : cli_fail("%s", err.msg);
	if (e->n)	/* e->v is NULL for an empty map, and qsort wants an array */
		qsort(e->v, e->n, sizeof(*e->v), by_ns_port_addr);
	return 0;
}

int cli_collect_peers(struct ca_handle *h, uint32_t netns, struct cli_entry **v, size_t *n)
{
	struct entries e = { 0 };
	int rc = collect(h, false, netns, &e);

	if (rc) {
		free(e.v);
		return rc;
	}
	*v = e.v;
	*n = e.n;
	return 0;
}

int cmd_dump(const struct cli *c)
{
	struct entries e = { 0 };
	struct ca_handle *h = cli_open(c);
	char addr[INET6_ADDRSTRLEN];
	if (!h || collect(h, false, c->all_netns ? 0 : ca_netns(h), &e)) {
		ca_close(h);
		return 1;
	}
	if (c->json)
		printf("[");
	for (size_t i = 0; i < e.n; i++) {
		const struct ca_key *k = &e.v[i].key;

		cli_key_addr(k, addr, sizeof(addr));
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
	uint64_t x = ((const struct cli_entry *)a)->count, y = ((const struct cli_entry *)b)->count;

	return x == y ? by_ns_port_addr(a, b) : (x > y ? -1 : 1);
}

static bool service_has_port(const struct ca_service *svc, uint16_t port)
{
	for (unsigned i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port)
			return true;
	return false;
}

/* Mask each peer to its family's length and merge equal prefixes. Each
 * output is written at or before its input's index, so out may be in. */
size_t cli_group_by_prefix(const struct cli_entry *in, size_t n, const struct ca_service *svc,
			   const struct ca_cidr *lens, struct cli_entry *out)
{
	/* A bare "/N" applies N to both families; an IPv4 peer has 32 bits. */
	unsigned v4_len = lens->v4_len > 32 ? 32 : lens->v4_len;
	size_t kept = 0, merged = 0;

	for (size_t i = 0; i < n; i++) {
		struct cli_entry e = in[i];

		if (!service_has_port(svc, e.key.port))
			continue;
		e.key.port = 0;
		e.key.prefixlen = (uint8_t)(e.key.family == CA_AF_INET ? v4_len : lens->v6_len);
		ca_mask_bytes(e.key.addr, e.key.prefixlen);
		out[kept++] = e;
	}
	if (!kept)
		return 0;	/* out may be NULL then */
	qsort(out, kept, sizeof(*out), by_ns_port_addr);
	for (size_t i = 0; i < kept; i++) {
		if (merged && !by_ns_port_addr(&out[merged - 1], &out[i]))
			out[merged - 1].count += out[i].count;
		else
			out[merged++] = out[i];
	}
	qsort(out, merged, sizeof(*out), by_count_desc);
	return merged;
}

/* "N,M" -> "/N,/M": the bare form the usage documents, in the CIDR syntax
 * that ca_cidr_parse() reads. Returns -1 if buf is too small. */
static int slash_each_field(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	bool field_start = true;

	for (; *s && o + 2 < len; s++) {
		if (field_start && *s != '/')
			buf[o++] = '/';
		field_start = *s == ',';
		buf[o++] = *s;
	}
	buf[o] = '\0';
	return *s ? -1 : 0;
}

int cli_parse_group_prefix(const char *s, struct ca_cidr *out)
{
	static const char forms[] = "--prefix takes N or N,M (N bits for IPv4 peers, M for "
				    "IPv6; also written /N or /N,/M)";
	struct ca_error err;
	char buf[32];

	if (!s)
		s = "/24,/64";
	if (slash_each_field(s, buf, sizeof(buf)))
		return cli_usage("%s, not '%.40s...'", forms, s);
	if (ca_cidr_parse(buf, out, &err))
		return cli_usage("%s: %s", forms, err.msg);
	if (out->kind != CA_CIDR_PEER)
		return cli_usage("%s, not '%s'", forms, s);
	return 0;
}

/* top --cluster: the other nodes' peers too (grouping sums equal prefixes).
 * Returns 0, CA_INCOMPLETE (err says why) or a negative errno. */
static int add_remote(struct ca_handle *h, const struct ca_service *svc, struct entries *e,
		      struct ca_error *err)
{
	struct ca_cidr all = { .kind = CA_CIDR_ALL };
	uint64_t total;
	int rc = ca_foreach_remote(h, gather, e, err);

	if (rc)
		return rc;
	/* the same freshness verdict a cluster count would get */
	return ca_count_cluster(h, &all, svc, NULL, &total, err);
}

static int top_once(const struct cli *c)
{
	struct ca_services services;
	const struct ca_service *svc;
	struct entries e = { 0 };
	struct ca_handle *h;
	struct ca_error err;
	struct ca_cidr cidr;
	char addr[INET6_ADDRSTRLEN];
	size_t n;
	int rc = 0;

	if (c->argc != 1)
		return cli_usage("top needs SERVICE, e.g. `connaudit top SMTP --prefix 24,64`");
	if (cli_parse_group_prefix(c->prefix, &cidr))
		return EXIT_USAGE;
	if (cli_services(c, &services))
		return 1;
	svc = ca_services_find(&services, c->argv[0], &err);
	if (!svc)
		return cli_fail("%s", err.msg);
	h = cli_open(c);
	if (!h || collect(h, false, ca_netns(h), &e) ||
	    (c->cluster && (rc = add_remote(h, svc, &e, &err)) < 0)) {
		if (h && rc < 0)
			cli_fail("%s", rc == -ENOMEM ? "out of memory" : err.msg);
		free(e.v);
		ca_close(h);
		return 1;
	}
	n = cli_group_by_prefix(e.v, e.n, svc, &cidr, e.v);
	if (n > c->top_n)
		n = c->top_n;
	if (c->json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		const struct ca_key *k = &e.v[i].key;

		cli_key_addr(k, addr, sizeof(addr));
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
	if (rc == CA_INCOMPLETE) {
		cli_fail("warning: these counts may be low: %s", err.msg);
		return EXIT_INCOMPLETE;
	}
	return 0;
}

/* ---- status ---------------------------------------------------------- */

const char *const cli_link_pins[CLI_LINKS] = { CA_PIN_LINK_STATE, CA_PIN_LINK_TWIN,
						 CA_PIN_LINK_SOCKOPS };

struct status {
	const struct ca_config *cfg;
	bool stats_on;		/* kernel.bpf_stats_enabled: run counts and times kept */
	char cgroup[PATH_MAX];	/* the audited cgroup's path, in cgroup mode */
	struct link_status links[CLI_LINKS];
	size_t peers, prefixes;
	uint64_t stats[CA_STAT_NR];
	struct ca_health health;
	struct utsname uts;
};

void cli_read_link(const char *pin_dir, struct link_status *l)
{
	struct bpf_link_info li = { 0 };
	struct bpf_prog_info pi = { 0 };
	__u32 len = sizeof(li);
	char path[PATH_MAX];
	int fd, pfd;

	ca_join_path(path, sizeof(path), pin_dir, l->pin);
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
		l->recursion_misses = pi.recursion_misses;
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

int cli_count_entries(struct ca_handle *h, bool prefixes, size_t *n, struct ca_error *err)
{
	*n = 0;
	return ca_foreach(h, prefixes, count_entry, n, err);
}

/* True when the kernel keeps programs' run counts and times. */
static bool bpf_stats_enabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "re");
	int on = 0;

	if (f) {
		if (fscanf(f, "%d", &on) != 1)
			on = 0;
		fclose(f);
	}
	return on;
}

/* The path of the audited cgroup, found from its id, or why not. */
static void cgroup_path(uint64_t id, char *buf, size_t len)
{
	struct ca_error err;
	char link[64];
	int fd = ca_open_cgroup_by_id(id, &err);
	ssize_t n = -1;

	if (fd >= 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, buf, len - 1);
		close(fd);
	}
	if (n > 0)
		buf[n] = '\0';
	else
		snprintf(buf, len, "(cgroup id %llu, path not found: removed?)",
			 (unsigned long long)id);
}

static int read_status(struct ca_handle *h, struct status *s)
{
	struct ca_error err;

	s->cfg = ca_loaded_config(h);
	s->stats_on = bpf_stats_enabled();
	if (s->cfg->flags & CA_CFG_CGROUP)
		cgroup_path(s->cfg->cgroup_id, s->cgroup, sizeof(s->cgroup));
	for (int i = 0; i < CLI_LINKS; i++) {
		s->links[i].pin = cli_link_pins[i];
		cli_read_link(ca_pin_dir(h), &s->links[i]);
	}
	uname(&s->uts);
	if (cli_count_entries(h, false, &s->peers, &err) ||
	    cli_count_entries(h, true, &s->prefixes, &err) ||
	    ca_read_stats(h, s->stats, &err) || ca_read_health(h, &s->health, &err))
		return cli_fail("%s", err.msg);
	return 0;
}

bool cli_health_exact(const struct ca_health *hv)
{
	return hv->incomplete <= 0 && hv->uncounted <= 0 && !hv->underflow && !hv->retired;
}

static void print_prefix_list(const char *sep, const uint8_t *lens, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		printf("%s%u", i ? sep : "", lens[i]);
}

/* " /24 /16", or " none". */
static void print_prefix_text(const uint8_t *lens, unsigned n)
{
	if (!n)
		printf(" none");
	for (unsigned i = 0; i < n; i++)
		printf(" /%u", lens[i]);
}

/* s as a JSON string, quotes included. */
static void put_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* The loaded rate monitors, each quoted by `q`, separated by `sep`. */
static void print_monitors(const struct ca_config *cfg, const char *sep, const char *q)
{
	for (unsigned i = 0; i < cfg->nr_monitors && i < CA_MAX_MONITORS; i++)
		printf("%s%s%u,%u%s", i ? sep : "", q, cfg->mon[i].size, cfg->mon[i].windows, q);
}

static void print_status_text(const struct cli *c, const struct status *s)
{
	const struct ca_health *hv = &s->health;

	printf("connaudit loaded at %s\n", ca_resolve_pin_dir(c->pin_dir));
	printf("  kernel     %s\n", s->uts.release);
	if (s->cfg->flags & CA_CFG_CGROUP)
		printf("  scope      cgroup %s and below (sock_ops admission: sessions accepted "
		       "on listeners created in it)\n", s->cgroup);
	else
		printf("  scope      whole host (tp_btf admission)\n");
	if (s->cfg->flags & CA_CFG_ALL_PORTS)
		printf("  ports      every local port (--all-ports)\n");
	else
		printf("  ports      %u (the services' and --ports: %s)\n", s->cfg->nr_ports,
		       CA_PIN_PORTS);
	printf("  prefixes   IPv4");
	print_prefix_text(s->cfg->v4, s->cfg->nr_v4);
	printf("  IPv6");
	print_prefix_text(s->cfg->v6, s->cfg->nr_v6);
	printf("\n");
	printf("  monitors   ");
	print_monitors(s->cfg, " ", "");
	if (s->cfg->nr_monitors)
		printf(" (%s %u max; missed: map full %llu, lost %llu)\n", CA_PIN_RATES,
		       s->cfg->max_rates, (unsigned long long)hv->rates_full,
		       (unsigned long long)hv->rates_lost);
	else
		printf("none (no connection rates: load --monitors)\n");
	for (int i = 0; i < CLI_LINKS; i++) {
		const struct link_status *l = &s->links[i];

		if (!l->present)
			continue;
		printf("  link       %-15s link id %u, prog %s id %u, ", l->pin, l->link_id,
		       l->prog_name, l->prog_id);
		if (s->stats_on)
			printf("runs %llu, %llu ns, ", (unsigned long long)l->run_cnt,
			       (unsigned long long)l->run_time_ns);
		else
			printf("runs not measured (sysctl kernel.bpf_stats_enabled=0), ");
		printf("missed %llu\n", (unsigned long long)l->recursion_misses);
	}
	printf("  maps       %s %zu live/%u max, %s %zu live/%u max, %s %u max, %s %u slots\n",
	       CA_PIN_PEERS, s->peers, s->cfg->max_peers, CA_PIN_PREFIXES, s->prefixes,
	       s->cfg->max_prefixes, CA_PIN_MARKS, s->cfg->max_sessions, CA_PIN_TABLE,
	       s->cfg->table_slots);
	printf("  counters  ");
	for (int i = 0; i < CA_STAT_NR; i++)
		printf(" %s %llu", cli_stat_names[i], (unsigned long long)s->stats[i]);
	printf("\n  health     %s: incomplete %lld, uncounted %lld; totals: peers_full %llu, "
	       "prefixes_full %llu, contention %llu, marks_full %llu, underflow %llu\n",
	       cli_health_exact(hv) ? "exact" : "COUNTS MAY BE LOW", (long long)hv->incomplete,
	       (long long)hv->uncounted,
	       (unsigned long long)hv->peers_full, (unsigned long long)hv->prefixes_full,
	       (unsigned long long)hv->contention, (unsigned long long)hv->marks_full,
	       (unsigned long long)hv->underflow);
	if (hv->admits_full)
		printf("  admits     %s was full %llu times: some ports have no connection "
		       "counter (connaudit_connections_total)\n", CA_PIN_ADMITS,
		       (unsigned long long)hv->admits_full);
}

static void print_status_json(const struct cli *c, const struct status *s)
{
	const struct ca_health *hv = &s->health;

	printf("{\"loaded\": true, \"pin_dir\": ");
	put_json_string(ca_resolve_pin_dir(c->pin_dir));
	printf(", \"kernel\": ");
	put_json_string(s->uts.release);
	printf(",\n \"scope\": \"%s\", \"cgroup_id\": %llu, \"cgroup\": ",
	       s->cfg->flags & CA_CFG_CGROUP ? "cgroup" : "host",
	       (unsigned long long)s->cfg->cgroup_id);
	if (s->cfg->flags & CA_CFG_CGROUP)
		put_json_string(s->cgroup);
	else
		printf("null");
	printf(", \"bpf_stats_enabled\": %s,\n", s->stats_on ? "true" : "false");
	printf(" \"prefixes\": {\"ipv4\": [");
	print_prefix_list(", ", s->cfg->v4, s->cfg->nr_v4);
	printf("], \"ipv6\": [");
	print_prefix_list(", ", s->cfg->v6, s->cfg->nr_v6);
	printf("]},\n \"monitors\": [");
	print_monitors(s->cfg, ", ", "\"");
	printf("], \"rates\": {\"max\": %u, \"full\": %llu, \"lost\": %llu},\n",
	       s->cfg->max_rates, (unsigned long long)hv->rates_full,
	       (unsigned long long)hv->rates_lost);
	printf(" \"links\": [");
	for (int i = 0, n = 0; i < CLI_LINKS; i++) {
		const struct link_status *l = &s->links[i];

		if (l->present)
			printf("%s{\"pin\": \"%s\", \"link_id\": %u, \"prog\": \"%s\", "
			       "\"prog_id\": %u, \"run_cnt\": %llu, \"run_time_ns\": %llu, "
			       "\"recursion_misses\": %llu}",
			       n++ ? ", " : "", l->pin, l->link_id, l->prog_name, l->prog_id,
			       (unsigned long long)l->run_cnt, (unsigned long long)l->run_time_ns,
			       (unsigned long long)l->recursion_misses);
	}
	printf("],\n \"maps\": {\"%s\": {\"entries\": %zu, \"max\": %u}, "
	       "\"%s\": {\"entries\": %zu, \"max\": %u}, \"%s\": {\"max\": %u}, "
	       "\"%s\": {\"slots\": %u}},\n \"stats\": {", CA_PIN_PEERS, s->peers,
	       s->cfg->max_peers, CA_PIN_PREFIXES, s->prefixes, s->cfg->max_prefixes,
	       CA_PIN_MARKS, s->cfg->max_sessions, CA_PIN_TABLE, s->cfg->table_slots);
	for (int i = 0; i < CA_STAT_NR; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", cli_stat_names[i],
		       (unsigned long long)s->stats[i]);
	if (s->cfg->flags & CA_CFG_ALL_PORTS)
		printf("},\n \"ports\": \"all\",");
	else
		printf("},\n \"ports\": %u,", s->cfg->nr_ports);
	printf("\n \"health\": {\"exact\": %s, \"incomplete\": %lld, \"uncounted\": %lld, "
	       "\"peers_full\": %llu, "
	       "\"prefixes_full\": %llu, \"contention\": %llu, \"marks_full\": %llu, "
	       "\"underflow\": %llu, \"admits_full\": %llu}",
	       cli_health_exact(hv) ? "true" : "false",
	       (long long)hv->incomplete, (long long)hv->uncounted,
	       (unsigned long long)hv->peers_full,
	       (unsigned long long)hv->prefixes_full, (unsigned long long)hv->contention,
	       (unsigned long long)hv->marks_full, (unsigned long long)hv->underflow,
	       (unsigned long long)hv->admits_full);
}

void cli_read_cluster(struct ca_handle *h, struct cli_cluster *out)
{
	struct ca_error err;

	memset(out, 0, sizeof(*out));
	out->now_ms = ca_monotonic_ms();
	out->present = ca_read_cluster(h, &out->st, &err) == 0;
	if (!out->present)
		return;
	out->running = out->now_ms <= out->st.updated_ms + out->st.stale_ms &&
		       out->st.agent_pid && kill((pid_t)out->st.agent_pid, 0) == 0;
	out->exact = out->running && (out->st.flags & CA_CLUSTER_EXACT);
	out->view_age_s = out->st.exact_ms ? (double)(out->now_ms - out->st.exact_ms) / 1000.0 : -1;
	if (out->exact)
		out->view_age_s = 0;
}

static double node_age(const struct cli_cluster *cl, const struct ca_cluster_node *n)
{
	return (double)(cl->now_ms - n->heard_ms) / 1000.0;
}

static void print_cluster_text(const struct cli_cluster *cl)
{
	const struct ca_cluster_state *st = &cl->st;

	if (!cl->present) {
		printf("  cluster    no agent has run for this namespace\n");
		return;
	}
	printf("  cluster    \"%s\" as node \"%s\": agent pid %u %s, Redis %s, %u other node%s,"
	       " view %s", st->cluster, st->node, st->agent_pid,
	       cl->running ? "running" : "NOT RUNNING", st->flags & CA_CLUSTER_REDIS_UP ? "up" :
	       "DOWN", st->nodes, st->nodes == 1 ? "" : "s", cl->exact ? "exact" : "STALE");
	if (!cl->exact)
		printf(" (%s; last exact %s%.1f s ago)", st->reason, cl->view_age_s < 0 ? "never: " : "",
		       cl->view_age_s < 0 ? 0 : cl->view_age_s);
	printf("\n             interval %u ms, ttl %u s, refused entries %llu, re-reads %llu\n",
	       st->interval_ms, st->ttl_ms / 1000, (unsigned long long)st->refused,
	       (unsigned long long)st->resyncs);
	for (unsigned i = 0; i < st->nodes && i < CA_CLUSTER_NODES_MAX; i++) {
		const struct ca_cluster_node *n = &st->list[i];

		printf("  node       %-16s heard %.1f s ago, %u peers, %llu sessions%s%s%s%s%s\n",
		       n->name, node_age(cl, n), n->entries, (unsigned long long)n->sessions,
		       n->flags & CA_NODE_SILENT ? ", SILENT" : "",
		       n->flags & CA_NODE_INCOMPLETE ? ", its counts are incomplete" : "",
		       n->flags & CA_NODE_REFUSED ? ", sent refused entries" : "",
		       n->flags & CA_NODE_MONITORS ? ", OTHER MONITORS (left out of rates)" : "",
		       n->flags & CA_NODE_RATES_INCOMPLETE ? ", its rates are incomplete" : "");
	}
	if (st->flags & CA_CLUSTER_RATES_FULL)
		printf("  rates      %s is FULL: some remote connections are missing\n",
		       CA_PIN_REMOTE_RATES);
}

static void print_cluster_json(const struct cli_cluster *cl)
{
	const struct ca_cluster_state *st = &cl->st;

	if (!cl->present) {
		printf(",\n \"cluster\": null}\n");
		return;
	}
	printf(",\n \"cluster\": {\"name\": \"%s\", \"node\": \"%s\", \"agent_pid\": %u, "
	       "\"running\": %s, \"redis_up\": %s, \"exact\": %s, \"view_age_seconds\": %.3f, "
	       "\"interval_ms\": %u, \"ttl_seconds\": %u, \"refused\": %llu, \"nodes\": [",
	       st->cluster, st->node, st->agent_pid, cl->running ? "true" : "false",
	       st->flags & CA_CLUSTER_REDIS_UP ? "true" : "false", cl->exact ? "true" : "false",
	       cl->view_age_s, st->interval_ms, st->ttl_ms / 1000, (unsigned long long)st->refused);
	for (unsigned i = 0; i < st->nodes && i < CA_CLUSTER_NODES_MAX; i++) {
		const struct ca_cluster_node *n = &st->list[i];

		printf("%s{\"name\": \"%s\", \"age_seconds\": %.3f, \"peers\": %u, "
		       "\"sessions\": %llu, \"silent\": %s, \"other_monitors\": %s}",
		       i ? ", " : "", n->name, node_age(cl, n), n->entries,
		       (unsigned long long)n->sessions, n->flags & CA_NODE_SILENT ? "true" : "false",
		       n->flags & CA_NODE_MONITORS ? "true" : "false");
	}
	printf("]}}\n");
}

static int status_once(const struct cli *c)
{
	struct status s = { 0 };
	struct cli_cluster cl;
	struct ca_handle *h;
	struct ca_error err;
	uint32_t netns;
	int rc = cli_netns(c, &netns) ? 1 : ca_open(&h, c->pin_dir, &err);

	if (rc == -ENOENT) {
		if (c->json) {
			printf("{\"loaded\": false, \"pin_dir\": ");
			put_json_string(ca_resolve_pin_dir(c->pin_dir));
			printf(", \"reason\": ");
			put_json_string(err.msg);
			printf("}\n");
		} else
			printf("connaudit is not loaded: %s\n", err.msg);
		return 1;
	}
	if (rc == 1)
		return 1;
	if (rc)
		return cli_fail("%s", err.msg);
	ca_set_netns(h, netns);
	rc = read_status(h, &s);
	if (!rc) {
		cli_read_cluster(h, &cl);
		if (c->json) {
			print_status_json(c, &s);
			print_cluster_json(&cl);
		} else {
			print_status_text(c, &s);
			print_cluster_text(&cl);
		}
	}
	ca_close(h);
	return rc;
}

int cmd_top(const struct cli *c)
{
	return c->watch ? cli_watch(c, "top", top_once) : top_once(c);
}

int cmd_status(const struct cli *c)
{
	return c->watch ? cli_watch(c, "status", status_once) : status_once(c);
}
