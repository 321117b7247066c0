/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* cli.h - what the connaudit command's files share. */
#ifndef CA_CLI_H
#define CA_CLI_H

#include "connaudit.h"

/* Exit codes. */
#define EXIT_USAGE	2
#define EXIT_INCOMPLETE	3	/* a count was printed, but it is a lower bound */

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
	const char *listen;	/* metrics: serve on ADDR:PORT */
	const char *redis;	/* cluster: the Redis URL */
	const char *node;	/* cluster: this node's name */
	const char *cluster_name;	/* cluster: --cluster=NAME */
	const char *redis_password_file;
	unsigned long interval_ms, ttl_s;	/* cluster */
	bool cluster;		/* count, top: cluster-wide; cluster: --cluster given */
	unsigned long mode;	/* load: mode of the map pins */
	unsigned long top_n;
	unsigned long max_peers, max_prefixes, max_sessions;
	bool json, all_netns, replace, quiet;
	int argc;		/* positional arguments left */
	char **argv;
};

/* Print "connaudit: msg" to stderr and return 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The namespace to report on: --netns (path or inode), else our own.
 * Prints the error and returns 1 on failure. */
int cli_netns(const struct cli *c, uint32_t *inode);

/* Open the handle for the pin dir in c, switching to --netns if given.
 * Prints the error and returns NULL on failure. */
struct ca_handle *cli_open(const struct cli *c);

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

int cmd_status(const struct cli *c);
int cmd_dump(const struct cli *c);
int cmd_top(const struct cli *c);
int cmd_metrics(const struct cli *c);
int cmd_cluster(const struct cli *c);

#endif
