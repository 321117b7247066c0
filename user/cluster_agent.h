/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cluster_agent.h - what the files of `connaudit cluster` share: the
 * agent's state and its steps. cli_cluster.c runs the loop and keeps the
 * record queries read; cluster_redis.c talks to Redis (connection, claim,
 * commands); cluster_publish.c sends this node's changes;
 * cluster_receive.c applies the other nodes'. Redis layout and notice
 * format: cluster_sync.h.
 */
#ifndef CA_CLUSTER_AGENT_H
#define CA_CLUSTER_AGENT_H

#include <limits.h>

#include <hiredis/hiredis.h>

#include "cli.h"
#include "cluster.h"
#include "cli_health_log.h"
#include "cluster_view.h"

#define CONNECT_TIMEOUT_MS	1000
#define COMMAND_TIMEOUT_MS	500
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		2000
#define NOTICE_MAX_ENTRIES	1000	/* more changes: the notice says "re-read" */
#define HSET_CHUNK		1000	/* field/value pairs per HSET of a snapshot */
#define KEY_MAX			(CA_CLUSTER_NAME_MAX * 2 + 32)
#define IDENTITY_MAX		(PATH_MAX + 128)

/* A command being built: arguments in one growing text buffer. */
struct args {
	char *text;
	size_t len, cap;
	size_t *off, *arglen;
	size_t n, ncap;
	const char **argv;
};

struct agent {
	/* settings */
	struct ca_redis_url url;
	const char *node, *cluster;
	unsigned interval_ms, ttl_ms;
	char identity[IDENTITY_MAX];	/* host, namespace and pin dir */
	char alive_value[IDENTITY_MAX + 64];
	char token[CA_SYNC_TOKEN_LEN + 1];
	char key_node[KEY_MAX], key_alive[KEY_MAX], channel[KEY_MAX], alive_prefix[KEY_MAX];
	/* local side */
	struct ca_handle *h;
	int remote_fd, rates_fd, cluster_fd;
	struct view view;
	bool view_ready;		/* view_init done: after the first claim */
	struct keytab published, now;	/* our entries as in Redis; as read now */
	struct keytab published_rates, now_rates;	/* the same for rate windows
							 * (values: struct ca_rate *) */
	bool local_incomplete;
	bool rates_low;			/* we missed connections in a window still kept */
	struct health_log health;	/* the journal line when counts degrade or recover */
	/* Redis side */
	redisContext *cmd, *sub;
	bool up;
	uint64_t connected_ms, own_heard_ms, next_connect_ms, backoff_ms, next_refresh_ms;
	uint64_t seq, next_stale_check_ms;
	char redis_error[128];
	struct args a;
	/* what the record says */
	uint64_t exact_ms;
	enum { AGENT_RUNNING, AGENT_REPLACED, AGENT_FAILED } state;	/* FAILED: exit 1 */
};

void agent_log(const struct agent *ag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- commands (cluster_redis.c) ---- */
void args_reset(struct args *a);
void args_free(struct args *a);
/* Append one argument. Returns 0 or -ENOMEM. */
int args_add(struct args *a, const char *s, size_t len);
int args_str(struct args *a, const char *s);
int args_u64(struct args *a, uint64_t v);
/* Queue the command in a on the command connection (pipelined: read its
 * reply later) and empty a. Returns 0 or -EIO. */
int args_append(struct agent *ag, struct args *a);

/* ---- the connection (cluster_redis.c) ---- */
/* Mark Redis down (closing both connections) and schedule a reconnect. */
void redis_down(struct agent *ag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* c's error text, for messages. */
const char *context_error(redisContext *c);
/* The next reply of c; NULL (and Redis down) on I/O errors and error replies. */
redisReply *get_reply(struct agent *ag, redisContext *c, const char *what);
/* Run the command built in ag->a; its reply, or NULL (Redis down). */
redisReply *command(struct agent *ag, const char *what);
/* Read n queued replies; false (Redis down) if any failed. */
bool drain_replies(struct agent *ag, size_t n, const char *what);
/* Claim (claiming) or refresh the node's liveness key; false when Redis is
 * down or the name is someone else's (ag->state says whose). */
bool claim(struct agent *ag, bool claiming);
/* Connect, log in, subscribe, claim, publish a snapshot, find the nodes. */
bool connect_redis(struct agent *ag);

/* ---- this node (cluster_publish.c) ---- */
/* ag->now = this namespace's per-peer counts, ag->now_rates their live
 * rate windows. Returns 0 or -errno. */
int read_local(struct agent *ag);
/* Queue a PUBLISH of a notice with `flags` and the entry lines in body. */
int queue_publish(struct agent *ag, const struct args *body, unsigned flags, size_t entries);
/* Our whole hash, replaced in one transaction, then a notice saying so. */
bool publish_snapshot(struct agent *ag);
/* The changes since the last publish, or a heartbeat. */
bool publish_changes(struct agent *ag);

/* ---- the other nodes (cluster_receive.c) ---- */
/* Replace a node's entries by its hash, refusing bad entries. */
bool read_node(struct agent *ag, struct view_node *n);
/* Apply what the subscription has delivered, without blocking. */
bool read_notices(struct agent *ag, uint64_t now);
/* Every node with a liveness key: wait for (and read) each one. */
bool discover_nodes(struct agent *ag, uint64_t now);

#endif
