// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_metrics.c - connaudit metrics: counts, event counters and health in
 * the Prometheus text exposition format (version 0.0.4), printed once or
 * served over plain HTTP (GET /metrics) with libmicrohttpd.
 *
 * Every scrape opens the pins afresh, so an unload or a reload shows in the
 * next scrape (connaudit_up 0 while nothing is loaded) without a restart.
 * A scrape that fails half-way is thrown away whole: a partial exposition
 * would look like sessions that went to zero.
 *
 * A change of health goes to stderr once (cli_health_log.h): kept in memory
 * while serving, in a state file between runs of connaudit-metrics.service.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cli.h"
#include "cli_health_log.h"

#define METRICS_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define ERROR_TYPE	"text/plain; charset=utf-8"
#define HTTP_TIMEOUT_S	5	/* an idle or stalled client loses its connection */
/* Scrapers are few, but idle connections must not lock them out: with
 * epoll an idle connection costs only its descriptor, so allow many, and
 * the timeout frees each one soon. */
#define HTTP_MAX_CONNS	512

/* What every scrape needs, fixed when the command starts. */
struct metrics_src {
	const struct cli *c;
	struct ca_services services;
	struct ca_cidr lens;	/* --prefix: how to group peers */
	bool top;		/* --prefix given: export the busiest prefixes */
	struct health_log log;	/* the health seen by the previous scrape */
};

/* ---- the exposition format ---------------------------------------------- */

struct label {
	const char *name, *value;
};

static void put_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value may hold anything but must escape \, " and newline. */
static void put_label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* name{label="value",...} VALUE, VALUE formatted from fmt. */
static void put_sample(FILE *f, const char *name, const struct label *labels, size_t n,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void put_sample(FILE *f, const char *name, const struct label *labels, size_t n,
		       const char *fmt, ...)
{
	va_list ap;

	fputs(name, f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "{", labels[i].name);
		put_label_value(f, labels[i].value);
		fputc('"', f);
	}
	fputs(n ? "} " : " ", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* A family of one map-labelled sample per map, from two values. */
static void put_per_map(FILE *f, const char *name, const char *type, const char *help,
			uint64_t peers, uint64_t prefixes)
{
	put_family(f, name, type, help);
	put_sample(f, name, &(struct label){ "map", CA_PIN_PEERS }, 1, "%" PRIu64, peers);
	put_sample(f, name, &(struct label){ "map", CA_PIN_PREFIXES }, 1, "%" PRIu64, prefixes);
}

/* ---- what a scrape reads ------------------------------------------------ */

/* One per-port figure of svc's port i: 0 or a message in err. */
typedef int (*port_reader)(struct ca_handle *h, const struct ca_service *svc, unsigned i,
			   uint64_t *n, struct ca_error *err);

/* Sessions to one port of svc from any peer: the per-port total entry. */
static int count_port(struct ca_handle *h, const struct ca_service *svc, unsigned i,
		      uint64_t *n, struct ca_error *err)
{
	struct ca_service one = *svc;
	struct ca_cidr all = { .kind = CA_CIDR_ALL };
	int rc;

	one.ports[0] = svc->ports[i];
	one.nports = 1;
	rc = ca_count(h, &all, &one, NULL, n, err);
	return rc < 0 ? rc : 0;	/* CA_INCOMPLETE shows in connaudit_counts_exact */
}

/* Connections ever admitted to one port of svc. A port with no counter
 * while ca_admits was full has no sample: none beats a low one. */
static int connections_port(struct ca_handle *h, const struct ca_service *svc, unsigned i,
			    uint64_t *n, struct ca_error *err)
{
	return ca_connections_total(h, svc->ports[i], n, err);
}

/* One sample per port of every service; a reader's CA_INCOMPLETE skips it. */
static int put_per_port(FILE *f, struct ca_handle *h, const struct ca_services *services,
			const char *name, const char *type, const char *help, port_reader read)
{
	struct ca_error err;
	char port[8];
	uint64_t n;
	int rc;

	put_family(f, name, type, help);
	for (unsigned s = 0; s < services->n; s++) {
		const struct ca_service *svc = &services->svc[s];

		for (unsigned i = 0; i < svc->nports; i++) {
			rc = read(h, svc, i, &n, &err);
			if (rc == CA_INCOMPLETE)
				continue;
			if (rc)
				return cli_fail("%s", err.msg);
			snprintf(port, sizeof(port), "%u", svc->ports[i]);
			put_sample(f, name, (struct label[]){ { "service", svc->name },
				   { "port", port } }, 2, "%" PRIu64, n);
		}
	}
	return 0;
}

static int put_sessions(FILE *f, struct ca_handle *h, const struct ca_services *services)
{
	return put_per_port(f, h, services, "connaudit_inbound_sessions", "gauge",
			    "Open inbound TCP sessions (established or close-wait) to the port, "
			    "in this network namespace.", count_port) ||
	       put_per_port(f, h, services, "connaudit_connections_total", "counter",
			    "Inbound TCP connections admitted to the port (completed handshakes) "
			    "since the auditor was first loaded, in this network namespace.",
			    connections_port);
}

/* The busiest --prefix client prefixes of every service, -n of each. */
static int put_top_prefixes(FILE *f, struct ca_handle *h, const struct metrics_src *m)
{
	static const char name[] = "connaudit_top_prefix_sessions";
	char addr[INET6_ADDRSTRLEN], prefix[INET6_ADDRSTRLEN + 4];
	struct cli_entry *peers = NULL, *top = NULL;
	size_t n = 0;

	if (cli_collect_peers(h, ca_netns(h), &peers, &n))
		return 1;
	top = malloc((n ? n : 1) * sizeof(*top));
	if (!top) {
		free(peers);
		return cli_fail("out of memory");
	}
	put_family(f, name, "gauge", "Open inbound TCP sessions from the busiest client "
		   "prefixes of each service (connaudit top), in this network namespace.");
	for (unsigned s = 0; s < m->services.n; s++) {
		const struct ca_service *svc = &m->services.svc[s];
		size_t k = cli_group_by_prefix(peers, n, svc, &m->lens, top);

		for (size_t i = 0; i < k && i < m->c->top_n; i++) {
			cli_key_addr(&top[i].key, addr, sizeof(addr));
			snprintf(prefix, sizeof(prefix), "%s/%u", addr, top[i].key.prefixlen);
			put_sample(f, name, (struct label[]){ { "service", svc->name },
				   { "prefix", prefix } }, 2, "%" PRIu64, top[i].count);
		}
	}
	free(top);
	free(peers);
	return 0;
}

static int put_stats(FILE *f, struct ca_handle *h)
{
	static const char name[] = "connaudit_events_total";
	uint64_t stats[CA_STAT_NR];
	struct ca_error err;

	if (ca_read_stats(h, stats, &err))
		return cli_fail("%s", err.msg);
	put_family(f, name, "counter", "Events handled by the auditor's BPF programs, by "
		   "kind (the counters of connaudit status).");
	for (int i = 0; i < CA_STAT_NR; i++)
		put_sample(f, name, &(struct label){ "kind", cli_stat_names[i] }, 1,
			   "%" PRIu64, stats[i]);
	return 0;
}

/* Tell stderr (the journal) when the health changed since the last scrape;
 * a state file that cannot be written costs a warning, not the scrape. */
static void log_health(struct health_log *log, struct ca_handle *h, const struct ca_health *hv)
{
	int rc = health_log_update(log, ca_pin_dir(h), ca_loaded_config(h), hv);

	if (rc < 0)
		cli_fail("warning: cannot keep the health state in %s: %s (set %s to a "
			 "writable file)", log->state_file, strerror(-rc), HEALTH_LOG_STATE_ENV);
}

static int put_health(FILE *f, struct ca_handle *h, struct health_log *log)
{
	struct ca_health hv;
	struct ca_error err;

	if (ca_read_health(h, &hv, &err))
		return cli_fail("%s", err.msg);
	log_health(log, h, &hv);
	put_family(f, "connaudit_counts_exact", "gauge", "1 when every count is exact, 0 when "
		   "some may be low (see the other health metrics and connaudit status).");
	put_sample(f, "connaudit_counts_exact", NULL, 0, "%d", cli_health_exact(&hv));
	put_family(f, "connaudit_incomplete_sessions", "gauge",
		   "Live sessions missing from some count.");
	put_sample(f, "connaudit_incomplete_sessions", NULL, 0, "%" PRId64, (int64_t)hv.incomplete);
	put_family(f, "connaudit_uncounted_sessions", "gauge",
		   "Live sessions not counted at all: ca_marks was full when they began.");
	put_sample(f, "connaudit_uncounted_sessions", NULL, 0, "%" PRId64, (int64_t)hv.uncounted);
	put_per_map(f, "connaudit_map_full_total", "counter",
		    "Inserts the kernel refused because the map was full.",
		    hv.peers_full, hv.prefixes_full);
	put_sample(f, "connaudit_map_full_total", &(struct label){ "map", CA_PIN_ADMITS }, 1,
		   "%" PRIu64, (uint64_t)hv.admits_full);
	put_family(f, "connaudit_contention_total", "counter",
		   "Inserts abandoned after too many retries.");
	put_sample(f, "connaudit_contention_total", NULL, 0, "%" PRIu64, (uint64_t)hv.contention);
	put_family(f, "connaudit_marks_full_total", "counter",
		   "Sessions not counted because ca_marks (one entry per session) was full.");
	put_sample(f, "connaudit_marks_full_total", NULL, 0, "%" PRIu64, (uint64_t)hv.marks_full);
	put_family(f, "connaudit_underflows_total", "counter",
		   "Decrements that found no entry to decrement.");
	put_sample(f, "connaudit_underflows_total", NULL, 0, "%" PRIu64, (uint64_t)hv.underflow);
	return 0;
}

static int put_maps(FILE *f, struct ca_handle *h)
{
	const struct ca_config *cfg = ca_loaded_config(h);
	size_t peers, prefixes;
	struct ca_error err;

	if (cli_count_entries(h, false, &peers, &err) ||
	    cli_count_entries(h, true, &prefixes, &err))
		return cli_fail("%s", err.msg);
	put_per_map(f, "connaudit_map_entries", "gauge", "Entries counting open sessions, in "
		    "every network namespace (entries at zero stay until a full map needs room).",
		    peers, prefixes);
	put_per_map(f, "connaudit_map_capacity", "gauge",
		    "Most entries the map can hold.", cfg->max_peers, cfg->max_prefixes);
	put_family(f, "connaudit_sessions_capacity", "gauge",
		   "Most sessions counted at once (entries of ca_marks).");
	put_sample(f, "connaudit_sessions_capacity", NULL, 0, "%" PRIu32, cfg->max_sessions);
	put_family(f, "connaudit_load_time_seconds", "gauge",
		   "When the auditor was first loaded, in seconds since the epoch.");
	put_sample(f, "connaudit_load_time_seconds", NULL, 0, "%" PRIu64,
		   (uint64_t)cfg->loaded_at);
	return 0;
}

/* Events the kernel dropped: a run of a program nested in another run of it
 * (an interrupt during a run) is skipped, and its state change is lost. */
static void put_missed(FILE *f, struct ca_handle *h)
{
	static const char name[] = "connaudit_missed_events_total";

	put_family(f, name, "counter", "Runs of a program that the kernel skipped because "
		   "they were nested in another run (bpf_prog_info.recursion_misses); "
		   "needs read access to the link pins.");
	for (int i = 0; i < CLI_LINKS; i++) {
		struct link_status l = { .pin = cli_link_pins[i] };

		cli_read_link(ca_pin_dir(h), &l);
		if (l.present)
			put_sample(f, name, &(struct label){ "program", l.prog_name }, 1,
				   "%llu", (unsigned long long)l.recursion_misses);
	}
}

/* The cluster agent's view for this namespace (nothing when none ran). */
static void put_cluster(FILE *f, struct ca_handle *h)
{
	struct cli_cluster cl;

	cli_read_cluster(h, &cl);
	if (!cl.present)
		return;
	put_family(f, "connaudit_cluster_agent_up", "gauge",
		   "1 when the cluster agent for this namespace is running.");
	put_sample(f, "connaudit_cluster_agent_up", NULL, 0, "%d", cl.running);
	put_family(f, "connaudit_cluster_redis_up", "gauge",
		   "1 when the cluster agent is connected to Redis.");
	put_sample(f, "connaudit_cluster_redis_up", NULL, 0, "%d",
		   cl.running && (cl.st.flags & CA_CLUSTER_REDIS_UP));
	put_family(f, "connaudit_cluster_exact", "gauge",
		   "1 when cluster-wide counts are exact, 0 when they are flagged incomplete.");
	put_sample(f, "connaudit_cluster_exact", NULL, 0, "%d", cl.exact);
	put_family(f, "connaudit_cluster_view_age_seconds", "gauge",
		   "Seconds since the cluster view was last exact (0 while it is; -1: never).");
	put_sample(f, "connaudit_cluster_view_age_seconds", NULL, 0, "%.3f", cl.view_age_s);
	put_family(f, "connaudit_cluster_nodes", "gauge",
		   "Other nodes whose sessions the cluster counts include.");
	put_sample(f, "connaudit_cluster_nodes", NULL, 0, "%u", cl.st.nodes);
	put_family(f, "connaudit_cluster_node_age_seconds", "gauge",
		   "Seconds since each other node was last heard from.");
	for (unsigned i = 0; i < cl.st.nodes && i < CA_CLUSTER_NODES_MAX; i++)
		put_sample(f, "connaudit_cluster_node_age_seconds",
			   &(struct label){ "node", cl.st.list[i].name }, 1, "%.3f",
			   (double)(cl.now_ms - cl.st.list[i].heard_ms) / 1000.0);
	put_family(f, "connaudit_cluster_refused_total", "counter",
		   "Entries read from Redis that were malformed or out of range, and refused.");
	put_sample(f, "connaudit_cluster_refused_total", NULL, 0, "%llu",
		   (unsigned long long)cl.st.refused);
}

static void put_up(FILE *f, bool up)
{
	put_family(f, "connaudit_up", "gauge", "1 when the auditor's maps could be read.");
	put_sample(f, "connaudit_up", NULL, 0, "%d", up);
}

/* Everything a loaded auditor tells. Prints the error and returns non-zero
 * on failure, with f holding a partial text. */
static int put_all(FILE *f, struct metrics_src *m)
{
	struct ca_handle *h = cli_open(m->c);
	int rc;

	if (!h)
		return 1;
	put_up(f, true);
	rc = put_sessions(f, h, &m->services) || (m->top && put_top_prefixes(f, h, m)) ||
	     put_stats(f, h) || put_health(f, h, &m->log) || put_maps(f, h);
	if (!rc) {
		put_missed(f, h);
		put_cluster(f, h);
	}
	ca_close(h);
	return rc;
}

/* One scrape into a malloc'ed *text of *len bytes. Returns 0 when the
 * auditor could be read; else 1, and the text says only connaudit_up 0. */
static int render(struct metrics_src *m, char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);
	int rc;

	if (!f)
		return cli_fail("out of memory");
	rc = put_all(f, m);
	if (rc) {
		fclose(f);	/* drop what the failed scrape wrote */
		free(*text);
		*text = NULL;
		f = open_memstream(text, len);
		if (!f)
			return cli_fail("out of memory");
		put_up(f, false);
	}
	fclose(f);
	return rc;
}

/* ---- serving ---------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char bad_method[] = "only GET (and HEAD) are served\n";
	char *text = NULL;
	size_t len = 0;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, ERROR_TYPE, bad_method,
			     sizeof(bad_method) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, ERROR_TYPE, not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	render(cls, &text, &len);	/* a failed scrape still answers: connaudit_up 0 */
	return text ? reply(conn, MHD_HTTP_OK, METRICS_TYPE, text, len, MHD_RESPMEM_MUST_FREE)
		    : MHD_NO;
}

/* "ADDR:PORT" or "[IPv6]:PORT" into *sa; returns its length, 0 if malformed. */
static socklen_t parse_listen(const char *s, struct sockaddr_storage *sa)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 2], *end;
	unsigned long port;
	size_t hlen;

	if (!colon)
		return 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	hlen = (size_t)(colon - s);
	if (errno || end == colon + 1 || *end || port == 0 || port > 65535 || hlen >= sizeof(host))
		return 0;
	if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hlen - 2, s + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hlen, s);
	memset(sa, 0, sizeof(*sa));
	if (s[0] != '[' && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		return sizeof(*in);
	}
	if (s[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return sizeof(*in6);
	}
	return 0;
}

static bool is_loopback(const struct sockaddr_storage *sa)
{
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

	if (sa->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* Serve until SIGINT or SIGTERM. The signals are blocked before the server
 * thread starts, so that it inherits the mask and only sigwait() sees them;
 * their disposition is reset first, because a shell starts a background job
 * with SIGINT ignored, and an ignored signal never reaches sigwait(). */
static int serve(struct metrics_src *m)
{
	struct sockaddr_storage sa;
	struct MHD_Daemon *d;
	sigset_t stop;
	int sig;

	if (!parse_listen(m->c->listen, &sa))
		return cli_usage("--listen takes ADDR:PORT or [IPv6]:PORT, such as "
				"127.0.0.1:9477, not '%s'", m->c->listen);
	if (!is_loopback(&sa))
		cli_fail("warning: serving metrics on %s, which is not a loopback address: "
			 "anyone who can reach it can read the counts", m->c->listen);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
			     (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     ntohs(((struct sockaddr_in *)&sa)->sin_port), NULL, NULL,
			     answer, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNS, MHD_OPTION_END);
	if (!d)
		return cli_fail("cannot serve on %s (see the message above)", m->c->listen);
	fprintf(stderr, "connaudit: serving http://%s/metrics\n", m->c->listen);
	sigwait(&stop, &sig);
	MHD_stop_daemon(d);
	fprintf(stderr, "connaudit: stopped by %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	return 0;
}

int cmd_metrics(const struct cli *c)
{
	struct metrics_src m = { .c = c, .top = c->prefix != NULL };
	char state[4096], *text = NULL;
	size_t len = 0;
	int rc;

	if (m.top && cli_parse_group_prefix(c->prefix, &m.lens))
		return EXIT_USAGE;
	if (cli_services(c, &m.services))
		return 1;
	health_log_init(&m.log, c->listen ? NULL : health_log_state_file(state, sizeof(state)));
	if (c->listen)
		return serve(&m);
	rc = render(&m, &text, &len);
	if (text)
		fwrite(text, 1, len, stdout);
	free(text);
	return rc ? 1 : 0;
}
