/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* cli.h - what the connaudit command's files share. */
#ifndef CA_CLI_H
#define CA_CLI_H

#include "connaudit.h"

/* Exit codes. */
#define EXIT_USAGE	2
#define EXIT_INCOMPLETE	3	/* a count was printed, but it is a lower bound */

/* Option ids: one getopt_long table for every command (cli.c). */
enum cli_opt {
	O_FIRST = 256,
	O_PIN_DIR = O_FIRST, O_CGROUP, O_PREFIXES, O_CONFIG, O_PEER, O_NETNS, O_PREFIX,
	O_MAX_PEERS, O_MAX_PREFIXES, O_MAX_SESSIONS, O_JSON, O_ALL_NETNS, O_REPLACE, O_QUIET,
	O_GROUP, O_MODE, O_LISTEN, O_TOP_N, O_HELP, O_PORTS, O_ALL_PORTS,
	O_MONITORS, O_MAX_RATES, O_START, O_END, O_RULES, O_WATCH, O_CLUSTER,
	O_REDIS, O_NODE, O_INTERVAL, O_TTL, O_REDIS_PASSWORD_FILE,
	O_LAST
};
_Static_assert(O_LAST - O_FIRST <= 64, "cli_command.opts holds one bit per option");

/* The bit of option `id` in cli_command.opts. */
#define OPT(id)	(1ull << ((id) - O_FIRST))

struct cli;

/* One command: its name, usage, help, and the options it takes. */
struct cli_command {
	const char *name;
	const char *args;	/* positional arguments, for the usage line */
	const char *summary;	/* one line: what it does */
	const char *options;	/* help lines of the options it takes */
	unsigned long long opts;	/* OPT() bits: every other option is refused */
	int min_args, max_args;
	int (*run)(const struct cli *c);
};

/* Everything a subcommand may have been given. */
struct cli {
	const char *pin_dir;
	const char *cgroup;
	const char *prefixes;
	const char *config;
	const char *peer;
	const char *netns;
	const char *prefix;	/* top: "N" or "N,M" */
	const char *group;	/* load: readers' group */
	const char *listen;	/* metrics: serve on ADDR:PORT; policyd: where to listen */
	const char *rules;	/* policyd: the rules file */
	const char *ports;	/* load: more local ports to audit */
	const char *redis;	/* cluster: the Redis URL */
	const char *node;	/* cluster: this node's name */
	const char *cluster_name;	/* cluster: --cluster=NAME */
	const char *redis_password_file;
	unsigned long interval_ms, ttl_s;	/* cluster */
	unsigned long mode;	/* load: mode of the map pins */
	double watch;		/* status, top: redraw every `watch` seconds (0: once) */
	unsigned long top_n;
	unsigned long max_peers, max_prefixes, max_sessions;
	const char *monitors;	/* load: "300,6 1800,4" */
	unsigned long max_rates;	/* load: ca_rates entries */
	unsigned long start, end;	/* connections: windows summed */
	bool json, all_netns, replace, quiet;
	bool all_ports;		/* load: audit every local port */
	bool cluster;		/* count, top: cluster-wide; cluster: --cluster given;
				 * connections: refused (not available yet) */
	int argc;		/* positional arguments left */
	char **argv;
};

/* Print "connaudit: msg" to stderr and return 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "connaudit: msg" to stderr and return EXIT_USAGE (bad input). */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a number from 1 to max into *out; prints and returns EXIT_USAGE on
 * bad input, naming the option `what`. */
int cli_parse_ulong(const char *s, const char *what, unsigned long max, unsigned long *out);

/* Warn on stderr that a printed count is a lower bound, and what to do. */
void cli_incomplete_warning(void);

/* Open the handle for the pin dir in c, switching to --netns if given.
 * Prints the error and returns NULL on failure. */
struct ca_handle *cli_open(const struct cli *c);

/* The namespace to count in: --netns (a namespace file, an `ip netns` name,
 * or the inode of a namespace that a process or /run/netns holds), else our own.
 * Prints the error and returns 1 on failure. */
int cli_netns(const struct cli *c, uint32_t *inode);

/* Load the services table from --config / env / default; prints on error. */
int cli_services(const struct cli *c, struct ca_services *s);

/* ---- shared by status, top and metrics (cli_inspect.c) ------------------ */

/* One map entry, or one client prefix with the sessions summed into it. */
struct cli_entry {
	struct ca_key key;
	uint64_t count;
};

/* The ca_stats counters by index, named as status and metrics print them
 * (CA_STAT_NR of them: cli_inspect.c checks that every one has a name). */
extern const char *const cli_stat_names[];

/* True when the health record says every count is exact. */
bool cli_health_exact(const struct ca_health *hv);

/* *n = the number of non-zero entries of ca_peers (prefixes=false) or
 * ca_prefixes, in every namespace. Returns 0 or a negative errno. */
int cli_count_entries(struct ca_handle *h, bool prefixes, size_t *n, struct ca_error *err);

/* The ca_peers entries of namespace `netns` (0: all) into *v (malloc'ed, the
 * caller frees) and *n. Prints the error and returns non-zero on failure. */
int cli_collect_peers(struct ca_handle *h, uint32_t netns, struct cli_entry **v, size_t *n);

/* Parse --prefix: "N" or "N,M" (also "/N", "/N,/M"): bits kept of IPv4 and
 * IPv6 peers; NULL means 24,64. Prints the error and returns EXIT_USAGE. */
int cli_parse_group_prefix(const char *s, struct ca_cidr *out);

/* The client prefixes of `svc`: each of the n peers in `in` on one of its
 * ports, masked to the lengths in `lens`, equal prefixes merged with their
 * counts summed, busiest first. Writes to out (room for n; out may be in)
 * and returns how many it wrote. */
size_t cli_group_by_prefix(const struct cli_entry *in, size_t n, const struct ca_service *svc,
			   const struct ca_cidr *lens, struct cli_entry *out);

/* The address of a key as text into buf ("?" if it cannot be formatted). */
const char *cli_key_addr(const struct ca_key *k, char *buf, size_t len);

/* The cluster agent's record for h's namespace, as status and metrics show
 * it: present=false when no agent ever ran for it. */
struct cli_cluster {
	bool present;
	bool running;		/* the agent updated it lately */
	bool exact;		/* cluster counts are exact now */
	double view_age_s;	/* since the view was last exact (-1: never) */
	uint64_t now_ms;
	struct ca_cluster_state st;
};
void cli_read_cluster(struct ca_handle *h, struct cli_cluster *out);

/* A pinned link and its program, as bpf_prog_info reports them. */
struct link_status {
	const char *pin;
	bool present;
	__u32 link_id, prog_id;
	char prog_name[16];
	__u64 run_cnt, run_time_ns;
	__u64 recursion_misses;	/* runs the kernel skipped: nested in another run */
};

/* The link pins: tracepoint, its twin, sock_ops. */
#define CLI_LINKS	3
extern const char *const cli_link_pins[CLI_LINKS];

/* Fill l (l->pin set by the caller) from the pin dir; present stays false
 * when the pin cannot be opened (not loaded, or not root: links are 0600). */
void cli_read_link(const char *pin_dir, struct link_status *l);

/* Parse --watch's optional SECONDS (NULL: the default, 2). Prints the
 * error and returns EXIT_USAGE when it is not a number from 0.1 to 86400. */
int cli_parse_watch(const char *s, double *out);

/* Clear the screen and run draw(c) every c->watch seconds, like watch(1),
 * until q or SIGINT/SIGTERM (cli_watch.c). Returns 0, or EXIT_USAGE when
 * draw did (bad arguments: nothing to redraw). */
int cli_watch(const struct cli *c, const char *title, int (*draw)(const struct cli *c));

int cmd_load(const struct cli *c);
int cmd_unload(const struct cli *c);
int cmd_count(const struct cli *c);
int cmd_status(const struct cli *c);
int cmd_dump(const struct cli *c);
int cmd_top(const struct cli *c);
int cmd_metrics(const struct cli *c);
int cmd_connections(const struct cli *c);
int cmd_show(const struct cli *c);
int cmd_policyd(const struct cli *c);
int cmd_cluster(const struct cli *c);

#endif
