// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli.c - the connaudit command: one table of commands, each with the
 * options it takes, its usage and its help; parsing and dispatch.
 *
 * Every option is parsed by one getopt_long table, then refused unless the
 * command's entry lists it, so that an option given to the wrong command is
 * an error naming the command rather than silently ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sysfs.h"

#ifndef CA_VERSION
#define CA_VERSION "unknown"
#endif

static const struct option long_options[] = {
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
	{ "ports", required_argument, NULL, O_PORTS },
	{ "all-ports", no_argument, NULL, O_ALL_PORTS },
	{ "monitors", required_argument, NULL, O_MONITORS },
	{ "max-rates", required_argument, NULL, O_MAX_RATES },
	{ "start", required_argument, NULL, O_START },
	{ "end", required_argument, NULL, O_END },
	{ "rules", required_argument, NULL, O_RULES },
	{ "watch", optional_argument, NULL, O_WATCH },
	/* count, top: a flag; cluster: --cluster=NAME, or --cluster NAME with NAME
	 * read as its argument (see cmd_cluster) */
	{ "cluster", optional_argument, NULL, O_CLUSTER },
	{ "redis", required_argument, NULL, O_REDIS },
	{ "node", required_argument, NULL, O_NODE },
	{ "interval", required_argument, NULL, O_INTERVAL },
	{ "ttl", required_argument, NULL, O_TTL },
	{ "redis-password-file", required_argument, NULL, O_REDIS_PASSWORD_FILE },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

/* The common options' help lines, shared by the commands that take them. */
#define H_PIN_DIR "  --pin-dir DIR      where the maps are pinned (default $" CA_ENV_PIN_DIR \
		  " or " CA_DEFAULT_PIN_DIR ")\n"
#define H_CONFIG  "  --config FILE      services file (default $" CA_ENV_CONFIG " or " \
		  CA_DEFAULT_CONFIG ")\n"
#define H_NETNS   "  --netns NS         count in another network namespace: /run/netns/NAME,\n" \
		  "                     an `ip netns` NAME, /proc/PID/ns/net, or its inode\n"
#define H_JSON    "  --json             JSON output\n"
#define H_PREFIX  "  --prefix N[,M]     group peers by N bits (IPv4) and M bits (IPv6); " \
		  "default 24,64\n"
#define H_TOP_N   "  -n K               at most K prefixes (default 10)\n"
#define H_WATCH   "  --watch[=SECONDS]  redraw every SECONDS (default 2) until q or Ctrl-C\n"

static const struct cli_command commands[] = {
	{ "load", "", "load and attach the auditor, count existing sessions, pin (root)",
	  H_PIN_DIR
	  "  --cgroup PATH      count only sessions of this cgroup v2 directory and below\n"
	  "  --prefixes LIST    prefix lengths aggregated in the kernel: \"24,16,64,48\" or\n"
	  "                     \"v4:24,16;v6:64,48\" (lengths above 32 are IPv6)\n"
	  "  --max-peers N, --max-prefixes N, --max-sessions N   map sizes (default 65536)\n"
	  "  --ports LIST       count these local ports too (8025,9000-9010); by default\n"
	  "                     only the services' ports (read now and at --replace)\n"
	  "  --all-ports        count sessions on every local port\n"
	  "  --monitors LIST    connection-rate monitors, \"SIZE,WINDOWS ...\": windows of\n"
	  "                     SIZE seconds, the last WINDOWS kept (e.g. \"300,6 1800,4\")\n"
	  "  --max-rates N      entries of the connection-rate map (with --monitors)\n"
	  H_CONFIG
	  "  --group NAME       let this group read the counts; --mode 0640 their mode\n"
	  "  --replace          swap in new programs of a loaded auditor, keep the counts\n"
	  "  --quiet            no progress lines\n",
	  OPT(O_PIN_DIR) | OPT(O_CGROUP) | OPT(O_PREFIXES) | OPT(O_MAX_PEERS) |
	  OPT(O_MAX_PREFIXES) | OPT(O_MAX_SESSIONS) | OPT(O_GROUP) | OPT(O_MODE) |
	  OPT(O_REPLACE) | OPT(O_QUIET) | OPT(O_PORTS) | OPT(O_ALL_PORTS) | OPT(O_CONFIG) |
	  OPT(O_MONITORS) | OPT(O_MAX_RATES),
	  0, 0, cmd_load },
	{ "unload", "", "detach the auditor and remove its pins (root)",
	  H_PIN_DIR "  --quiet            no progress line\n",
	  OPT(O_PIN_DIR) | OPT(O_QUIET), 0, 0, cmd_unload },
	{ "status", "", "loaded or not, programs, maps, counters, health",
	  H_PIN_DIR H_NETNS H_JSON H_WATCH,
	  OPT(O_PIN_DIR) | OPT(O_NETNS) | OPT(O_JSON) | OPT(O_WATCH), 0, 0, cmd_status },
	{ "count", "CIDR SERVICE", "print the open inbound sessions to SERVICE from CIDR",
	  "  --peer ADDR        the client whose network /N and /N,/M refer to\n"
	  "  --cluster          on every node of the cluster (inbound_cidr always is)\n"
	  H_PIN_DIR H_CONFIG H_NETNS H_JSON,
	  OPT(O_PEER) | OPT(O_PIN_DIR) | OPT(O_CONFIG) | OPT(O_NETNS) | OPT(O_JSON) |
	  OPT(O_CLUSTER), 2, 2, cmd_count },
	{ "connections", "MONITOR CIDR [SERVICE]",
	  "connections admitted in windows of a monitor (SERVICE default SMTP)",
	  "  --peer ADDR        the client whose network /N and /N,/M refer to\n"
	  "  --start K, --end L sum windows K to L back (0: the current one; default 0 0)\n"
	  "  --cluster          on every node of the cluster (inbound_cidr always is)\n"
	  H_PIN_DIR H_CONFIG H_NETNS H_JSON,
	  OPT(O_PEER) | OPT(O_START) | OPT(O_END) | OPT(O_PIN_DIR) | OPT(O_CONFIG) |
	  OPT(O_NETNS) | OPT(O_JSON) | OPT(O_CLUSTER), 2, 3, cmd_connections },
	{ "show", "ip ADDR", "every monitor's windows and the sessions for ADDR",
	  "  --prefix N         for ADDR's /N instead of ADDR alone\n"
	  H_PIN_DIR H_CONFIG H_NETNS,
	  OPT(O_PREFIX) | OPT(O_PIN_DIR) | OPT(O_CONFIG) | OPT(O_NETNS), 2, 2, cmd_show },
	{ "dump", "", "every (port, peer, count) in this namespace",
	  "  --all-netns        every namespace (adds a netns column)\n"
	  H_PIN_DIR H_NETNS H_JSON,
	  OPT(O_ALL_NETNS) | OPT(O_PIN_DIR) | OPT(O_NETNS) | OPT(O_JSON), 0, 0, cmd_dump },
	{ "top", "SERVICE", "the busiest client prefixes of SERVICE",
	  H_PREFIX H_TOP_N
	  "  --cluster          the peers of every node of the cluster\n"
	  H_PIN_DIR H_CONFIG H_NETNS H_JSON H_WATCH,
	  OPT(O_PREFIX) | OPT(O_TOP_N) | OPT(O_PIN_DIR) | OPT(O_CONFIG) | OPT(O_NETNS) |
	  OPT(O_JSON) | OPT(O_WATCH) | OPT(O_CLUSTER), 1, 1, cmd_top },
	{ "metrics", "", "Prometheus text: sessions per service and port, counters, health",
	  "  --prefix N[,M]     also export the busiest client prefixes (-n K of them)\n"
	  H_TOP_N
	  "  --listen ADDR:PORT serve GET /metrics there instead of printing once\n"
	  H_PIN_DIR H_CONFIG H_NETNS,
	  OPT(O_PREFIX) | OPT(O_TOP_N) | OPT(O_LISTEN) | OPT(O_PIN_DIR) | OPT(O_CONFIG) |
	  OPT(O_NETNS), 0, 0, cmd_metrics },
	{ "policyd", "", "Postfix policy server: session limits per client network",
	  "  --rules FILE       the rules: SERVICE CIDR LIMIT [REPLY...] per line\n"
	  "  --listen unix:/PATH | ADDR:PORT   where to serve; without it, the sockets\n"
	  "                     systemd passes, else stdin/stdout (Postfix spawn)\n"
	  H_PIN_DIR H_CONFIG H_NETNS,
	  OPT(O_RULES) | OPT(O_LISTEN) | OPT(O_PIN_DIR) | OPT(O_CONFIG) | OPT(O_NETNS),
	  0, 0, cmd_policyd },
	{ "cluster", "", "share this node's counts with the others through Redis (runs until "
	  "stopped)",
	  "  --redis URL        redis://[USER[:PASSWORD]@]HOST[:PORT][/DB] or\n"
	  "                     unix://[USER[:PASSWORD]@]/PATH\n"
	  "  --node NAME        this node's name, unique in the cluster\n"
	  "  --cluster NAME     the cluster's name: its keys in Redis (default \"default\")\n"
	  "  --interval MS      publish changes at most this often (default 100)\n"
	  "  --ttl SECONDS      a node silent this long leaves the sums (default 5)\n"
	  "  --redis-password-file FILE   the password ($CONNAUDIT_REDIS_PASSWORD too)\n"
	  H_PIN_DIR H_NETNS,
	  OPT(O_REDIS) | OPT(O_NODE) | OPT(O_CLUSTER) | OPT(O_INTERVAL) | OPT(O_TTL) |
	  OPT(O_REDIS_PASSWORD_FILE) | OPT(O_PIN_DIR) | OPT(O_NETNS),
	  0, 1, cmd_cluster },
};
#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char footer[] =
"CIDR forms: /N (the peer's /N), /N,/M (N for IPv4 peers, M for IPv6), /0 (all\n"
"peers), ADDR, ADDR/LEN, [IPv6], [IPv6]/LEN.\n"
"Exit status: 0 ok, 1 error, 2 usage, 3 count printed but incomplete (see status).\n";

static void print_overview(FILE *f)
{
	fputs("Usage: connaudit COMMAND [OPTIONS]\n"
	      "Count open inbound TCP sessions per service and client network, kept by\n"
	      "BPF programs in the kernel.\n\nCommands:\n", f);
	for (size_t i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fputs("\n`connaudit COMMAND --help` shows a command's options; "
	      "`connaudit --version` the version.\n\n", f);
	fputs(footer, f);
}

static void print_command_help(const struct cli_command *cmd, FILE *f)
{
	fprintf(f, "Usage: connaudit %s%s%s [OPTIONS]\n%s.\n\nOptions:\n%s"
		   "  -h, --help         this text\n\n%s",
		cmd->name, *cmd->args ? " " : "", cmd->args, cmd->summary, cmd->options, footer);
}

/* An option as the user spells it, for messages. */
static const char *option_name(int id)
{
	static char buf[32];

	if (id == O_TOP_N)
		return "-n";
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == id) {
			snprintf(buf, sizeof(buf), "--%s", o->name);
			return buf;
		}
	return "?";
}

/* "connaudit: message" on stderr; returns rc. */
static int say(int rc, const char *fmt, va_list ap)
{
	fputs("connaudit: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return rc;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = say(1, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = say(EXIT_USAGE, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_parse_ulong(const char *s, const char *what, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out == 0 || *out > max)
		return cli_usage("%s must be a number from 1 to %lu, not '%s'", what, max, s);
	return 0;
}

/* A window number: 0 (the current window) and up. */
static int parse_window(const char *s, const char *what, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out > CA_RATE_SLOTS * 1000ul)
		return cli_usage("%s takes a window number, 0 (the current one) or more, "
				 "not '%s'", what, s);
	return 0;
}

static int parse_mode(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 8);
	if (errno || end == s || *end || *out > 0777)
		return cli_usage("--mode takes octal permission bits such as 0640, not '%s'", s);
	return 0;
}

/* A pin dir with its trailing slashes dropped ("/" stays): pins are named
 * by joining, and a staging dir beside the pin dir is named by appending. */
static const char *trim_slashes(char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	return dir;
}

static int parse_option(struct cli *c, int id, char *arg)
{
	switch (id) {
	case O_PIN_DIR: c->pin_dir = trim_slashes(arg); return 0;
	case O_CGROUP: c->cgroup = arg; return 0;
	case O_PREFIXES: c->prefixes = arg; return 0;
	case O_CONFIG: c->config = arg; return 0;
	case O_PEER: c->peer = arg; return 0;
	case O_NETNS: c->netns = arg; return 0;
	case O_PREFIX: c->prefix = arg; return 0;
	case O_TOP_N: return cli_parse_ulong(arg, "-n", 1000000, &c->top_n);
	case O_MAX_PEERS: return cli_parse_ulong(arg, "--max-peers", 1u << 26, &c->max_peers);
	case O_MAX_PREFIXES:
		return cli_parse_ulong(arg, "--max-prefixes", 1u << 26, &c->max_prefixes);
	case O_MAX_SESSIONS:
		return cli_parse_ulong(arg, "--max-sessions", CA_MAX_SESSIONS, &c->max_sessions);
	case O_JSON: c->json = true; return 0;
	case O_ALL_NETNS: c->all_netns = true; return 0;
	case O_REPLACE: c->replace = true; return 0;
	case O_QUIET: c->quiet = true; return 0;
	case O_GROUP: c->group = arg; return 0;
	case O_LISTEN: c->listen = arg; return 0;
	case O_PORTS: c->ports = arg; return 0;
	case O_ALL_PORTS: c->all_ports = true; return 0;
	case O_MONITORS: c->monitors = arg; return 0;
	case O_MAX_RATES: return cli_parse_ulong(arg, "--max-rates", 1u << 24, &c->max_rates);
	case O_START: return parse_window(arg, "--start", &c->start);
	case O_END: return parse_window(arg, "--end", &c->end);
	case O_RULES: c->rules = arg; return 0;
	case O_WATCH: return cli_parse_watch(arg, &c->watch);
	case O_CLUSTER: c->cluster = true; c->cluster_name = arg; return 0;
	case O_REDIS: c->redis = arg; return 0;
	case O_NODE: c->node = arg; return 0;
	case O_INTERVAL: return cli_parse_ulong(arg, "--interval (ms)", 60000, &c->interval_ms);
	case O_TTL: return cli_parse_ulong(arg, "--ttl (seconds)", 3600, &c->ttl_s);
	case O_REDIS_PASSWORD_FILE: c->redis_password_file = arg; return 0;
	case O_MODE: return parse_mode(arg, &c->mode);
	default: return EXIT_USAGE;
	}
}

/* ---- network namespaces ------------------------------------------------ */

struct inode_search {
	uint32_t inode;
	bool found;
};

static int match_inode(int fd, uint32_t inode, void *arg)
{
	struct inode_search *s = arg;

	(void)fd;
	if (inode == s->inode)
		s->found = true;
	return s->found;
}

/* The namespace inode of a file that must be a network namespace. */
static int netns_file(const char *path, uint32_t *inode)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int type;

	if (fd < 0)
		return cli_fail("--netns %s: %s", path, errno == ENOENT ? "no such file" :
				errno == EACCES ? "permission denied" : strerror(errno));
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type != CLONE_NEWNET || fstat(fd, &st)) {
		close(fd);
		return cli_fail("--netns %s: not a network namespace (give /run/netns/NAME, an "
				"`ip netns` name, /proc/PID/ns/net or its inode)", path);
	}
	close(fd);
	*inode = (uint32_t)st.st_ino;
	return 0;
}

int cli_netns(const struct cli *c, uint32_t *inode)
{
	struct inode_search s = { 0 };
	struct ca_error err;
	char path[PATH_MAX];
	unsigned long ino;
	char *end;

	if (!c->netns) {
		*inode = ca_netns_self();
		return *inode ? 0 : cli_fail("cannot read /proc/self/ns/net: %s", strerror(errno));
	}
	if (strchr(c->netns, '/'))
		return netns_file(c->netns, inode);
	errno = 0;
	ino = strtoul(c->netns, &end, 10);
	if (errno || end == c->netns || *end || ino > UINT32_MAX) {
		snprintf(path, sizeof(path), "/run/netns/%s", c->netns);
		if (access(path, F_OK))
			return cli_fail("--netns %s: no namespace of that name in /run/netns, and "
					"not a path or an inode number", c->netns);
		return netns_file(path, inode);
	}
	s.inode = (uint32_t)ino;
	if (ca_foreach_netns(match_inode, NULL, &s, -1, &err) < 0)
		return cli_fail("%s", err.msg);
	if (!s.found)
		return cli_fail("--netns %lu: no network namespace with that inode is held by "
				"a process or /run/netns", ino);
	*inode = s.inode;
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

void cli_incomplete_warning(void)
{
	cli_fail("warning: this count may be low: the kernel could not count some sessions. "
		 "`connaudit status` says why; a full map needs a larger --max-* at the next "
		 "load");
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;
	struct cli c = { .top_n = 10 };
	int id, rc;

	if (argc < 2) {
		print_overview(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		cmd = argc > 2 ? find_command(argv[2]) : NULL;
		if (cmd)
			print_command_help(cmd, stdout);
		else
			print_overview(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("connaudit %s\n", CA_VERSION);
		return 0;
	}
	cmd = find_command(argv[1]);
	if (!cmd)
		return cli_usage("unknown command '%s'; `connaudit --help` lists them", argv[1]);

	optind = 1;
	opterr = 0;
	while ((id = getopt_long(argc - 1, argv + 1, "hn:", long_options, NULL)) != -1) {
		if (id == 'h' || id == O_HELP) {
			print_command_help(cmd, stdout);
			return 0;
		}
		if (id == 'n')
			id = O_TOP_N;
		if (id == '?')
			return cli_usage("%s: %s '%s'; `connaudit %s --help` lists its options",
					 cmd->name, optopt == 'n' || optopt >= O_FIRST ?
					 "option needs a value:" : "unknown option",
					 argv[optind], cmd->name);
		if (!(cmd->opts & OPT(id)))
			return cli_usage("%s does not take %s; `connaudit %s --help` lists its "
					 "options", cmd->name, option_name(id), cmd->name);
		rc = parse_option(&c, id, optarg);
		if (rc)
			return EXIT_USAGE;
	}
	if (!c.pin_dir && getenv(CA_ENV_PIN_DIR) && *getenv(CA_ENV_PIN_DIR)) {
		static char env_dir[PATH_MAX];

		if (snprintf(env_dir, sizeof(env_dir), "%s", getenv(CA_ENV_PIN_DIR)) >=
		    (int)sizeof(env_dir))
			return cli_usage("$%s is longer than %d bytes", CA_ENV_PIN_DIR, PATH_MAX);
		c.pin_dir = trim_slashes(env_dir);
	}
	c.argc = argc - 1 - optind;
	c.argv = argv + 1 + optind;
	if (c.argc < cmd->min_args || c.argc > cmd->max_args) {
		if (c.argc > cmd->max_args)
			cli_usage("%s: unexpected argument '%s'", cmd->name, c.argv[cmd->max_args]);
		else
			cli_usage("%s needs %s", cmd->name, cmd->args);
		fprintf(stderr, "Usage: connaudit %s%s%s [OPTIONS]  (--help for more)\n",
			cmd->name, *cmd->args ? " " : "", cmd->args);
		return EXIT_USAGE;
	}
	return cmd->run(&c);
}
