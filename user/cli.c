// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cli.c - the connaudit command: argument parsing, load, unload, count. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sysfs.h"

static const char usage[] =
"Usage: connaudit COMMAND [OPTIONS]\n"
"Count open inbound TCP sessions per service and client network, kept by\n"
"BPF programs in the kernel.\n"
"\n"
"Commands:\n"
"  load      load and attach the auditor, count existing sessions, pin (root)\n"
"            [--cgroup PATH] [--prefixes LIST] [--max-peers N] [--max-prefixes N]\n"
"            [--max-sessions N]\n"
"            [--group NAME [--mode 0640]] [--replace] [--quiet]\n"
"  unload    detach the auditor and remove its pins (root)\n"
"  status    loaded or not, programs, maps, counters  [--json]\n"
"  count     CIDR SERVICE  print one count  [--peer ADDR] [--config FILE] [--netns NS]\n"
"            [--cluster (every node of the cluster; inbound_cidr always is)]\n"
"  dump      every (port, peer, count) in this namespace  [--json] [--all-netns]\n"
"  top       SERVICE  busiest client prefixes  [--prefix N[,M]] [-n K] [--json]\n"
"            [--cluster]\n"
"  metrics   Prometheus text: counts per service and port, counters, health\n"
"            [--prefix N[,M] [-n K]] [--listen ADDR:PORT (serve GET /metrics)]\n"
"  cluster   share counts with other nodes through Redis (runs until stopped)\n"
"            --redis URL --node NAME [--cluster NAME] [--netns NS] [--interval MS]\n"
"            [--ttl SECONDS] [--redis-password-file FILE]\n"
"\n"
"Common options:\n"
"  --pin-dir DIR   where the maps are pinned (default $" CA_ENV_PIN_DIR " or "
CA_DEFAULT_PIN_DIR ")\n"
"  --config FILE   services file (default $" CA_ENV_CONFIG " or " CA_DEFAULT_CONFIG ")\n"
"  --netns NS      count in another network namespace: a path such as\n"
"                  /run/netns/NAME or /proc/PID/ns/net, or its inode number\n"
"  -h, --help      this text\n"
"\n"
"CIDR forms: /N (the peer's /N), /N,/M (N for IPv4 peers, M for IPv6), /0 (all\n"
"peers), ADDR, ADDR/LEN, [IPv6], [IPv6]/LEN. --prefixes LIST: \"24,16,64,48\" or\n"
"\"v4:24,16;v6:64,48\" (the lengths aggregated in the kernel).\n"
"Exit status: 0 ok, 1 error, 2 usage, 3 count printed but incomplete (see status).\n";

enum opt_id {
	O_PIN_DIR = 256, O_CGROUP, O_PREFIXES, O_CONFIG, O_PEER, O_NETNS, O_PREFIX,
	O_MAX_PEERS, O_MAX_PREFIXES, O_MAX_SESSIONS, O_JSON, O_ALL_NETNS, O_REPLACE, O_QUIET, O_GROUP,
	O_MODE, O_LISTEN, O_REDIS, O_NODE, O_CLUSTER, O_INTERVAL, O_TTL, O_REDIS_PASSWORD_FILE,
};

static const struct option options[] = {
	{ "pin-dir", required_argument, NULL, O_PIN_DIR },
	{ "cgroup", required_argument, NULL, O_CGROUP },
	{ "prefixes", required_argument, NULL, O_PREFIXES },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "peer", required_argument, NULL, O_PEER },
	{ "netns", required_argument, NULL, O_NETNS },
	{ "prefix", required_argument, NULL, O_PREFIX },
	{ "max-peers", required_argument, NULL, O_MAX_PEERS },
	{ "max-prefixes", required_argument, NULL, O_MAX_PREFIXES },
	{ "max-sessions", required_argument, NULL, O_MAX_SESSIONS },
	{ "json", no_argument, NULL, O_JSON },
	{ "all-netns", no_argument, NULL, O_ALL_NETNS },
	{ "replace", no_argument, NULL, O_REPLACE },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "group", required_argument, NULL, O_GROUP },
	{ "mode", required_argument, NULL, O_MODE },
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "redis", required_argument, NULL, O_REDIS },
	{ "node", required_argument, NULL, O_NODE },
	/* count, top: a flag; cluster: --cluster NAME (see cmd_cluster) */
	{ "cluster", optional_argument, NULL, O_CLUSTER },
	{ "interval", required_argument, NULL, O_INTERVAL },
	{ "ttl", required_argument, NULL, O_TTL },
	{ "redis-password-file", required_argument, NULL, O_REDIS_PASSWORD_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("connaudit: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static int parse_ulong(const char *s, const char *what, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out == 0 || *out > max)
		return cli_fail("%s must be a number from 1 to %lu, not '%s'", what, max, s);
	return 0;
}

static int parse_mode(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 8);
	if (errno || end == s || *end || *out > 0777)
		return cli_fail("--mode takes octal permission bits such as 0640, not '%s'", s);
	return 0;
}

static int parse_option(struct cli *c, int id, const char *arg)
{
	switch (id) {
	case O_PIN_DIR: c->pin_dir = arg; return 0;
	case O_CGROUP: c->cgroup = arg; return 0;
	case O_PREFIXES: c->prefixes = arg; return 0;
	case O_CONFIG: c->config = arg; return 0;
	case O_PEER: c->peer = arg; return 0;
	case O_NETNS: c->netns = arg; return 0;
	case O_PREFIX: c->prefix = arg; return 0;
	case 'n': return parse_ulong(arg, "-n", 1000000, &c->top_n);
	case O_MAX_PEERS: return parse_ulong(arg, "--max-peers", 1u << 26, &c->max_peers);
	case O_MAX_PREFIXES: return parse_ulong(arg, "--max-prefixes", 1u << 26, &c->max_prefixes);
	case O_MAX_SESSIONS: return parse_ulong(arg, "--max-sessions", CA_MAX_SESSIONS,
						    &c->max_sessions);
	case O_JSON: c->json = true; return 0;
	case O_ALL_NETNS: c->all_netns = true; return 0;
	case O_REPLACE: c->replace = true; return 0;
	case O_QUIET: c->quiet = true; return 0;
	case O_GROUP: c->group = arg; return 0;
	case O_LISTEN: c->listen = arg; return 0;
	case O_MODE: return parse_mode(arg, &c->mode);
	case O_REDIS: c->redis = arg; return 0;
	case O_NODE: c->node = arg; return 0;
	case O_CLUSTER: c->cluster = true; c->cluster_name = arg; return 0;
	case O_INTERVAL: return parse_ulong(arg, "--interval (ms)", 60000, &c->interval_ms);
	case O_TTL: return parse_ulong(arg, "--ttl (seconds)", 3600, &c->ttl_s);
	case O_REDIS_PASSWORD_FILE: c->redis_password_file = arg; return 0;
	default: return EXIT_USAGE;
	}
}

int cli_netns(const struct cli *c, uint32_t *inode)
{
	unsigned long ino;
	struct stat st;

	if (!c->netns) {
		*inode = ca_netns_self();
		return *inode ? 0 : cli_fail("cannot read /proc/self/ns/net: %s", strerror(errno));
	}
	if (stat(c->netns, &st) == 0) {
		*inode = (uint32_t)st.st_ino;
		return 0;
	}
	if (parse_ulong(c->netns, "--netns (a namespace file or its inode number)",
			UINT32_MAX, &ino))
		return 1;
	*inode = (uint32_t)ino;
	return 0;
}

struct ca_handle *cli_open(const struct cli *c)
{
	struct ca_handle *h;
	struct ca_error err;
	uint32_t netns;

	if (cli_netns(c, &netns))
		return NULL;
	if (ca_open(&h, c->pin_dir, &err)) {
		cli_fail("%s", err.msg);
		return NULL;
	}
	ca_set_netns(h, netns);
	return h;
}

int cli_services(const struct cli *c, struct ca_services *s)
{
	struct ca_error err;

	if (ca_services_load(s, c->config, &err))
		return cli_fail("%s", err.msg);
	return 0;
}

/* A group name or number, for load --group. */
static int resolve_group(const char *name, struct ca_load_opts *o)
{
	struct group *g = getgrnam(name);
	unsigned long gid;
	char *end;

	if (g) {
		o->gid = g->gr_gid;
	} else {
		errno = 0;
		gid = strtoul(name, &end, 10);
		if (errno || end == name || *end || gid > UINT32_MAX)
			return cli_fail("--group: no group named '%s' (create it with groupadd)",
					name);
		o->gid = (uint32_t)gid;
	}
	o->grant_group = true;
	return 0;
}

static int cmd_load(const struct cli *c)
{
	struct ca_load_opts o = {
		.pin_dir = c->pin_dir, .cgroup = c->cgroup, .replace = c->replace,
		.quiet = c->quiet, .max_peers = (uint32_t)c->max_peers,
		.max_prefixes = (uint32_t)c->max_prefixes,
		.max_sessions = (uint32_t)c->max_sessions, .mode = (unsigned)c->mode,
	};
	struct ca_error err;

	if (c->mode && !c->group)
		return cli_fail("--mode goes with --group");
	if (c->group && resolve_group(c->group, &o))
		return 1;
	if (c->prefixes && ca_parse_prefix_list(c->prefixes, &o, &err))
		return cli_fail("--prefixes: %s", err.msg);
	if (ca_load(&o, &err))
		return cli_fail("%s", err.msg);
	return 0;
}

static int cmd_unload(const struct cli *c)
{
	struct ca_error err;

	if (ca_unload(c->pin_dir, &err))
		return cli_fail("%s", err.msg);
	if (!c->quiet)
		fprintf(stderr, "connaudit: unloaded from %s\n", ca_resolve_pin_dir(c->pin_dir));
	return 0;
}

/* Bad input is reported as such even when nothing is loaded: parse
 * everything before opening the maps. */
static int cmd_count(const struct cli *c)
{
	const struct ca_service *svc;
	struct ca_services services;
	struct ca_handle *h;
	struct ca_error err;
	struct ca_prefix resolved;
	struct ca_cidr cidr;
	struct ca_addr peer;
	uint64_t n = 0;
	int rc;

	if (c->argc != 2)
		return cli_fail("count needs CIDR and SERVICE, e.g. `connaudit count /24 SMTP "
				"--peer 192.0.2.7`") ? EXIT_USAGE : 0;
	if (ca_cidr_parse(c->argv[0], &cidr, &err) ||
	    (c->peer && ca_addr_parse(c->peer, &peer, &err)) ||
	    ca_cidr_resolve(&cidr, c->peer ? &peer : NULL, &resolved, &err))
		return cli_fail("%s", err.msg) ? EXIT_USAGE : 0;
	if (cli_services(c, &services))
		return 1;
	svc = ca_services_find(&services, c->argv[1], &err);
	if (!svc)
		return cli_fail("%s", err.msg) ? EXIT_USAGE : 0;
	h = cli_open(c);
	if (!h)
		return 1;
	rc = (c->cluster ? ca_count_cluster : ca_count)(h, &cidr, svc, c->peer ? &peer : NULL,
							   &n, &err);
	ca_close(h);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	printf("%" PRIu64 "\n", n);
	if (rc == CA_INCOMPLETE && (c->cluster || svc->cluster)) {
		cli_fail("warning: this count may be low: %s", err.msg);
		return EXIT_INCOMPLETE;
	}
	if (rc == CA_INCOMPLETE) {
		cli_fail("warning: this count may be low: the kernel could not count some "
			 "sessions (see `connaudit status`)");
		return EXIT_INCOMPLETE;
	}
	return 0;
}

static const struct command {
	const char *name;
	int (*run)(const struct cli *c);
	int max_args;
} commands[] = {
	{ "load", cmd_load, 0 },
	{ "unload", cmd_unload, 0 },
	{ "status", cmd_status, 0 },
	{ "count", cmd_count, 2 },
	{ "dump", cmd_dump, 0 },
	{ "top", cmd_top, 1 },
	{ "metrics", cmd_metrics, 0 },
	{ "cluster", cmd_cluster, 1 },
};

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct cli c = { .top_n = 10 };
	int id, rc;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return cli_fail("unknown command '%s'; `connaudit --help` lists them", argv[1])
		       ? EXIT_USAGE : 0;

	optind = 1;
	while ((id = getopt_long(argc - 1, argv + 1, "hn:", options, NULL)) != -1) {
		if (id == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		rc = id == '?' ? EXIT_USAGE : parse_option(&c, id, optarg);
		if (rc)
			return EXIT_USAGE;
	}
	c.argc = argc - 1 - optind;
	c.argv = argv + 1 + optind;
	if (c.argc > cmd->max_args)
		return cli_fail("%s: unexpected argument '%s'", cmd->name, c.argv[cmd->max_args])
		       ? EXIT_USAGE : 0;
	return cmd->run(&c);
}
