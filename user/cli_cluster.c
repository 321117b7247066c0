// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_cluster.c - `connaudit cluster`: the agent that shares this node's
 * counts through Redis and keeps the other nodes' sum in ca_remote. This
 * file: its setup, its loop, and the record in ca_cluster that queries
 * read (the other steps: cluster_agent.h).
 *
 * One loop, one thread. Every --interval it reads this namespace's per-peer
 * counts, writes what changed to its Redis hash (one MULTI/EXEC pipeline)
 * and publishes a notice carrying the changes; between ticks it applies
 * the other nodes' notices as they arrive. Queries never wait for any of
 * this: they read ca_remote and the record in ca_cluster, which says how
 * old the view is. Redis layout and notice format: cluster_sync.h.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cluster_agent.h"
#include "sysfs.h"

#define DEFAULT_INTERVAL_MS	100
#define DEFAULT_TTL_S		5
#define DEFAULT_CLUSTER		"default"
#define SILENT_INTERVALS	3	/* a node this many intervals quiet: view not exact */
#define SILENT_SLACK_MS		250
#define STALE_CHECK_MS		1000	/* how often to check the pins are still ours */
#define AGENT_STOPPED		"the agent stopped"	/* the record's last reason */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* ---- the record queries read ---------------------------------------------------------- */

static bool node_silent(const struct agent *ag, const struct view_node *n, uint64_t now)
{
	unsigned iv = n->interval_ms ? n->interval_ms : ag->interval_ms;

	return now - n->heard_ms > (uint64_t)SILENT_INTERVALS * iv + SILENT_SLACK_MS;
}

/* Why the view is not exact now, or NULL when it is. */
static const char *inexact_reason(struct agent *ag, uint64_t now, char *buf, size_t len)
{
	if (!ag->up) {
		snprintf(buf, len, "Redis is unreachable (%.100s)", ag->redis_error);
		return buf;
	}
	if (ag->view.remote_full)
		return CA_PIN_REMOTE " is full: some remote sessions are missing";
	if (now - ag->connected_ms < (uint64_t)SILENT_INTERVALS * ag->interval_ms)
		return "the agent is still learning which nodes are live";
	for (size_t i = 0; i < ag->view.nnodes; i++) {
		const struct view_node *n = &ag->view.node[i];
		const char *why = n->need_read ? "is being re-read" :
				  node_silent(ag, n, now) ? "has been silent" :
				  n->refused ? "sent entries that were refused" :
				  n->incomplete ? "reports incomplete counts of its own" : NULL;

		if (why) {
			snprintf(buf, len, "node %s %s (last heard %.1f s ago)", n->name, why,
				 (double)(now - n->heard_ms) / 1000.0);
			return buf;
		}
	}
	return NULL;
}

static void write_record(struct agent *ag, uint64_t now)
{
	struct ca_cluster_state st = {
		.updated_ms = now, .interval_ms = ag->interval_ms, .ttl_ms = ag->ttl_ms,
		.stale_ms = SILENT_INTERVALS * ag->interval_ms + COMMAND_TIMEOUT_MS * 2,
		.nodes = (__u32)ag->view.nnodes, .agent_pid = (__u32)getpid(),
		.refused = ag->view.refused, .resyncs = ag->view.resyncs,
	};
	const char *why = inexact_reason(ag, now, st.reason, sizeof(st.reason));
	__u32 netns = ca_netns(ag->h);

	if (why && why != st.reason)
		snprintf(st.reason, sizeof(st.reason), "%s", why);
	if (!why)
		ag->exact_ms = now;
	st.exact_ms = ag->exact_ms;
	st.flags = (ag->up ? CA_CLUSTER_REDIS_UP : 0) | (why ? 0 : CA_CLUSTER_EXACT);
	snprintf(st.node, sizeof(st.node), "%s", ag->node);
	snprintf(st.cluster, sizeof(st.cluster), "%s", ag->cluster);
	for (size_t i = 0; i < ag->view.nnodes && i < CA_CLUSTER_NODES_MAX; i++) {
		const struct view_node *n = &ag->view.node[i];
		struct ca_cluster_node *o = &st.list[i];

		snprintf(o->name, sizeof(o->name), "%s", n->name);
		o->heard_ms = n->heard_ms;
		o->entries = (__u32)n->entries.n;
		o->sessions = n->sessions;
		o->flags = (node_silent(ag, n, now) ? CA_NODE_SILENT : 0) |
			   (n->incomplete ? CA_NODE_INCOMPLETE : 0) |
			   (n->refused ? CA_NODE_REFUSED : 0) |
			   (n->monitors_differ ? CA_NODE_MONITORS : 0) |
			   (n->rates_low ? CA_NODE_RATES_INCOMPLETE : 0);
	}
	for (size_t i = 0; i < ag->view.nnodes; i++) {
		st.rate_nodes_off += ag->view.node[i].monitors_differ;
		st.rate_nodes_incomplete += ag->view.node[i].rates_low;
	}
	if (ag->view.rates_full)
		st.flags |= CA_CLUSTER_RATES_FULL;
	if (bpf_map_update_elem(ag->cluster_fd, &netns, &st, BPF_ANY))
		agent_log(ag, "cannot write %s: %s", CA_PIN_CLUSTER, strerror(errno));
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void drop_dead_nodes(struct agent *ag, uint64_t now)
{
	for (size_t i = 0; i < ag->view.nnodes; ) {
		struct view_node *n = &ag->view.node[i];

		if (now - n->heard_ms <= ag->ttl_ms) {
			i++;
			continue;
		}
		agent_log(ag, "node %s dropped: silent for %.1f s (--ttl %u s)", n->name,
			  (double)(now - n->heard_ms) / 1000.0, ag->ttl_ms / 1000);
		view_drop(&ag->view, n);
	}
}

static void read_pending_nodes(struct agent *ag)
{
	for (size_t i = 0; ag->up && i < ag->view.nnodes; i++)
		if (ag->view.node[i].need_read)
			read_node(ag, &ag->view.node[i]);
}

static void tick(struct agent *ag, uint64_t now)
{
	/* after an unload (and load), these maps are no one's: start afresh */
	if (now >= ag->next_stale_check_ms) {
		ag->next_stale_check_ms = now + STALE_CHECK_MS;
		if (ca_handle_stale(ag->h)) {
			agent_log(ag, "the auditor was unloaded or reloaded; exiting so that a "
				  "new agent (systemd restarts it) serves the new maps");
			ag->state = AGENT_FAILED;
			return;
		}
	}
	if (ag->up && now >= ag->next_refresh_ms)
		claim(ag, false);
	if (ag->up)
		publish_changes(ag);
	if (ag->up && now - ag->own_heard_ms >
	    (uint64_t)SILENT_INTERVALS * ag->interval_ms + COMMAND_TIMEOUT_MS)
		redis_down(ag, "our own notices stopped arriving");
	/* while Redis is down nobody is heard: keep the last view */
	if (ag->up)
		drop_dead_nodes(ag, now);
}

static void wait_for_notices(struct agent *ag, uint64_t until)
{
	uint64_t now = ca_monotonic_ms();

	if (until <= now)
		return;
	if (!ag->up) {
		struct timespec ts = { (time_t)((until - now) / 1000),
				       (long)((until - now) % 1000) * 1000000 };

		nanosleep(&ts, NULL);
		return;
	}
	struct pollfd p = { .fd = ag->sub->fd, .events = POLLIN };

	if (poll(&p, 1, (int)(until - now)) > 0)
		read_notices(ag, ca_monotonic_ms());
}

static int run(struct agent *ag)
{
	uint64_t next_tick = ca_monotonic_ms();

	while (!stop_signal && ag->state == AGENT_RUNNING) {
		uint64_t now = ca_monotonic_ms();

		if (!ag->up && now >= ag->next_connect_ms)
			connect_redis(ag);
		if (ag->state != AGENT_RUNNING)
			break;
		if (now >= next_tick) {
			tick(ag, now);
			next_tick = next_tick + ag->interval_ms > now ? next_tick + ag->interval_ms
								      : now + ag->interval_ms;
		}
		read_pending_nodes(ag);
		view_flush(&ag->view);
		write_record(ag, ca_monotonic_ms());
		wait_for_notices(ag, ag->up ? next_tick : (next_tick < ag->next_connect_ms ?
							   next_tick : ag->next_connect_ms));
	}
	return ag->state == AGENT_FAILED;
}

/* On a clean stop: leave the cluster at once rather than after --ttl. */
static void leave(struct agent *ag)
{
	struct ca_cluster_state st;
	__u32 netns = ca_netns(ag->h);

	if (ag->up) {
		keytab_clear(&ag->now);
		args_reset(&ag->a);
		if (!args_str(&ag->a, "DEL") && !args_str(&ag->a, ag->key_node) &&
		    !args_str(&ag->a, ag->key_alive)) {
			redisReply *r = command(ag, "leaving");

			freeReplyObject(r);
		}
		if (ag->up) {
			ag->seq++;
			if (!queue_publish(ag, NULL, CA_SYNC_FLAG_FULL, 0))
				drain_replies(ag, 1, "leaving");
		}
	}
	if (bpf_map_lookup_elem(ag->cluster_fd, &netns, &st) == 0) {
		st.flags = 0;
		snprintf(st.reason, sizeof(st.reason), AGENT_STOPPED);
		bpf_map_update_elem(ag->cluster_fd, &netns, &st, BPF_ANY);
	}
}

/* ---- setup ------------------------------------------------------------------------------------ */

/* Print the message and return EXIT_USAGE. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_fail("%s", msg);
	return EXIT_USAGE;
}

static int read_password_file(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return cli_fail("--redis-password-file %s: %s", path, strerror(errno));
	n = fgets(out, (int)len, f) ? strcspn(out, "\r\n") : 0;
	fclose(f);
	out[n] = '\0';
	if (!n)
		return cli_fail("--redis-password-file %s: the first line is empty", path);
	return 0;
}

static int open_rw(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (ca_join_path(path, sizeof(path), pin_dir, name))
		return -1;
	fd = bpf_obj_get(path);
	if (fd < 0)
		cli_fail("cannot open %s for writing: %s (the agent runs as root, or with "
			 "CAP_BPF and write access to the pins)", path, strerror(errno));
	return fd;
}

/* Refuse to share a namespace's keys of ca_remote with a running agent. */
static int other_agent(const struct agent *ag)
{
	struct ca_cluster_state st;
	__u32 netns = ca_netns(ag->h);

	/* a live agent writes its record every interval, and says when it stops */
	if (bpf_map_lookup_elem(ag->cluster_fd, &netns, &st) != 0 ||
	    st.agent_pid == (__u32)getpid() || kill((pid_t)st.agent_pid, 0) != 0 ||
	    ca_monotonic_ms() > st.updated_ms + st.stale_ms ||
	    strcmp(st.reason, AGENT_STOPPED) == 0)
		return 0;
	return cli_fail("an agent (pid %u, node \"%s\") already serves network namespace %u "
			"with the pins in %s; stop it first", st.agent_pid, st.node, netns,
			ca_pin_dir(ag->h));
}

static int setup(struct agent *ag, const struct cli *c)
{
	const char *env_password = getenv("CONNAUDIT_REDIS_PASSWORD");
	uint8_t rnd[CA_SYNC_TOKEN_LEN / 2];
	struct ca_error err;
	char host[256] = "?";

	if (!c->redis || !c->node)
		return usage_error("cluster needs --redis URL and --node NAME, e.g. `connaudit "
				   "cluster --redis unix:///run/redis/redis.sock --node mx1`");
	if (ca_redis_url_parse(c->redis, &ag->url, &err))
		return usage_error("--redis: %s", err.msg);
	if (c->redis_password_file) {
		if (read_password_file(c->redis_password_file, ag->url.password,
				       sizeof(ag->url.password)))
			return 1;
	} else if (!ag->url.password[0] && env_password && *env_password) {
		snprintf(ag->url.password, sizeof(ag->url.password), "%s", env_password);
	}
	ag->node = c->node;
	ag->cluster = c->cluster_name ? c->cluster_name : DEFAULT_CLUSTER;
	/* getopt reads "--cluster NAME" as the flag count and top take, then NAME */
	if (c->argc == 1 && c->cluster && !c->cluster_name)
		ag->cluster = c->argv[0];
	else if (c->argc)
		return usage_error("cluster: unexpected argument '%s'", c->argv[0]);
	if (!ca_sync_name_ok(ag->node, strlen(ag->node)))
		return usage_error("--node \"%s\": a node name is 1..%d characters of A-Z a-z "
				"0-9 _ . -", ag->node, CA_CLUSTER_NAME_MAX - 1);
	if (!ca_sync_name_ok(ag->cluster, strlen(ag->cluster)))
		return usage_error("--cluster \"%s\": a cluster name is 1..%d characters of "
				"A-Z a-z 0-9 _ . -", ag->cluster, CA_CLUSTER_NAME_MAX - 1);
	ag->interval_ms = c->interval_ms ? (unsigned)c->interval_ms : DEFAULT_INTERVAL_MS;
	ag->ttl_ms = (unsigned)(c->ttl_s ? c->ttl_s : DEFAULT_TTL_S) * 1000;
	if (ag->ttl_ms <= (SILENT_INTERVALS + 1) * ag->interval_ms)
		return usage_error("--ttl must exceed %d intervals (%u ms), or a live node would "
				"drop out", SILENT_INTERVALS + 1, (SILENT_INTERVALS + 1) *
				ag->interval_ms);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return cli_fail("cannot read random bytes: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		sprintf(ag->token + 2 * i, "%02x", rnd[i]);
	ag->h = cli_open(c);
	if (!ag->h)
		return 1;
	ag->remote_fd = open_rw(ca_pin_dir(ag->h), CA_PIN_REMOTE);
	ag->rates_fd = ag->remote_fd < 0 ? -1 : open_rw(ca_pin_dir(ag->h), CA_PIN_REMOTE_RATES);
	ag->cluster_fd = ag->rates_fd < 0 ? -1 : open_rw(ca_pin_dir(ag->h), CA_PIN_CLUSTER);
	if (ag->cluster_fd < 0)
		return 1;
	if (other_agent(ag))
		return 1;
	gethostname(host, sizeof(host) - 1);
	snprintf(ag->identity, sizeof(ag->identity), "host=%s netns=%u pins=%s", host,
		 ca_netns(ag->h), ca_pin_dir(ag->h));
	snprintf(ag->alive_prefix, sizeof(ag->alive_prefix), "%.*s token=", KEY_MAX - 8,
		 ag->identity);
	snprintf(ag->alive_value, sizeof(ag->alive_value), "%s token=%s", ag->identity,
		 ag->token);
	snprintf(ag->key_node, sizeof(ag->key_node), "ca:{%s}:node:%s", ag->cluster, ag->node);
	snprintf(ag->key_alive, sizeof(ag->key_alive), "ca:{%s}:alive:%s", ag->cluster, ag->node);
	snprintf(ag->channel, sizeof(ag->channel), "ca:{%s}:events", ag->cluster);
	return 0;
}

int cmd_cluster(const struct cli *c)
{
	struct agent ag = { .remote_fd = -1, .rates_fd = -1, .cluster_fd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	rc = setup(&ag, c);
	if (!rc) {
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		agent_log(&ag, "sharing namespace %u's counts as node \"%s\" of cluster \"%s\" "
			  "every %u ms (ttl %u s)", ca_netns(ag.h), ag.node, ag.cluster,
			  ag.interval_ms, ag.ttl_ms / 1000);
		rc = run(&ag);
		if (ag.state == AGENT_RUNNING)
			leave(&ag);
	}
	if (ag.cmd)
		redisFree(ag.cmd);
	if (ag.sub)
		redisFree(ag.sub);
	view_free(&ag.view);
	keytab_free(&ag.published);
	keytab_free(&ag.now);
	ratetab_free(&ag.published_rates);
	ratetab_free(&ag.now_rates);
	args_free(&ag.a);
	if (ag.remote_fd >= 0)
		close(ag.remote_fd);
	if (ag.rates_fd >= 0)
		close(ag.rates_fd);
	if (ag.cluster_fd >= 0)
		close(ag.cluster_fd);
	ca_close(ag.h);
	return rc;
}
