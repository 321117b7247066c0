// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster_redis.c - the cluster agent's Redis connection: commands built as
 * argument vectors and pipelined, log in, the node's claim, connect.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_agent.h"

/* Claim or refresh the node's liveness key: refused (the holder's value is
 * returned) unless it is free, ours, or starts with ARGV[3] (the same
 * identity: a restarted agent takes over). Also keeps the node's hash alive. */
static const char claim_script[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if v and v ~= ARGV[1] and string.sub(v, 1, #ARGV[3]) ~= ARGV[3] then return v end "
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
	"redis.call('PEXPIRE', KEYS[2], ARGV[2]) "
	"return false";

void agent_log(const struct agent *ag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "connaudit cluster %s: ", ag->node);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- building commands ------------------------------------------------------ */

void args_reset(struct args *a)
{
	a->len = 0;
	a->n = 0;
}

void args_free(struct args *a)
{
	free(a->text);
	free(a->off);
	free(a->arglen);
	free(a->argv);
	memset(a, 0, sizeof(*a));
}

int args_add(struct args *a, const char *s, size_t len)
{
	if (a->len + len > a->cap) {
		size_t cap = (a->len + len) * 2 + 4096;
		char *t = realloc(a->text, cap);

		if (!t)
			return -ENOMEM;
		a->text = t;
		a->cap = cap;
	}
	if (a->n == a->ncap) {
		size_t ncap = a->ncap * 2 + 64;
		size_t *off = realloc(a->off, ncap * sizeof(*off));
		size_t *al = off ? realloc(a->arglen, ncap * sizeof(*al)) : NULL;
		const char **av = al ? realloc(a->argv, ncap * sizeof(*av)) : NULL;

		if (off)
			a->off = off;
		if (al)
			a->arglen = al;
		if (!av)
			return -ENOMEM;
		a->argv = av;
		a->ncap = ncap;
	}
	memcpy(a->text + a->len, s, len);
	a->off[a->n] = a->len;
	a->arglen[a->n++] = len;
	a->len += len;
	return 0;
}

int args_str(struct args *a, const char *s)
{
	return args_add(a, s, strlen(s));
}

int args_u64(struct args *a, uint64_t v)
{
	char buf[24];

	return args_add(a, buf, (size_t)snprintf(buf, sizeof(buf), "%" PRIu64, v));
}

/* Queue the command in a (pipelined: replies are read later). */
int args_append(struct agent *ag, struct args *a)
{
	for (size_t i = 0; i < a->n; i++)
		a->argv[i] = a->text + a->off[i];
	if (redisAppendCommandArgv(ag->cmd, (int)a->n, a->argv, a->arglen) != REDIS_OK)
		return -EIO;
	args_reset(a);
	return 0;
}

/* ---- the Redis connection ----------------------------------------------------- */

void redis_down(struct agent *ag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void redis_down(struct agent *ag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ag->redis_error, sizeof(ag->redis_error), fmt, ap);
	va_end(ap);
	if (ag->up || !ag->backoff_ms)
		agent_log(ag, "Redis: %s; serving the last known view, flagged, and retrying",
			  ag->redis_error);
	if (ag->cmd)
		redisFree(ag->cmd);
	if (ag->sub)
		redisFree(ag->sub);
	ag->cmd = ag->sub = NULL;
	ag->up = false;
	ag->backoff_ms = ag->backoff_ms ? ag->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (ag->backoff_ms > BACKOFF_MAX_MS)
		ag->backoff_ms = BACKOFF_MAX_MS;
	ag->next_connect_ms = ca_monotonic_ms() + ag->backoff_ms;
}

const char *context_error(redisContext *c)
{
	return c && c->err ? c->errstr : "no reply";
}

/* Read one reply of the pipeline; NULL (Redis marked down) on I/O errors
 * and error replies. */
redisReply *get_reply(struct agent *ag, redisContext *c, const char *what)
{
	void *r = NULL;

	if (redisGetReply(c, &r) != REDIS_OK || !r) {
		redis_down(ag, "%s: %s", what, context_error(c));
		return NULL;
	}
	if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		redis_down(ag, "%s: %s", what, ((redisReply *)r)->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Run one command built in ag->a and return its reply (NULL: down). */
redisReply *command(struct agent *ag, const char *what)
{
	if (args_append(ag, &ag->a)) {
		redis_down(ag, "%s: cannot send", what);
		return NULL;
	}
	return get_reply(ag, ag->cmd, what);
}

/* Read n replies, true when none failed. */
bool drain_replies(struct agent *ag, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		redisReply *r = get_reply(ag, ag->cmd, what);

		if (!r)
			return false;
		freeReplyObject(r);
	}
	return true;
}

static redisContext *open_context(struct agent *ag)
{
	struct timeval tv = { 0, CONNECT_TIMEOUT_MS * 1000 };
	struct timeval cmd_tv = { 0, COMMAND_TIMEOUT_MS * 1000 };
	redisContext *c = ag->url.unix_socket ? redisConnectUnixWithTimeout(ag->url.path, tv)
					      : redisConnectWithTimeout(ag->url.host,
									(int)ag->url.port, tv);

	if (!c || c->err) {
		redis_down(ag, "cannot connect to %s: %s", ag->url.unix_socket ? ag->url.path :
			   ag->url.host, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, cmd_tv);
	return c;
}

/* AUTH (with a user: the two-argument form of Redis 6) and SELECT. */
static bool login(struct agent *ag, redisContext *c)
{
	void *r;

	if (ag->url.password[0]) {
		r = ag->url.user[0] ? redisCommand(c, "AUTH %s %s", ag->url.user, ag->url.password)
				    : redisCommand(c, "AUTH %s", ag->url.password);
		if (!r || ((redisReply *)r)->type == REDIS_REPLY_ERROR) {
			redis_down(ag, "AUTH refused: %s", r ? ((redisReply *)r)->str :
				   context_error(c));
			freeReplyObject(r);
			return false;
		}
		freeReplyObject(r);
	}
	if (ag->url.db) {
		r = redisCommand(c, "SELECT %u", ag->url.db);
		if (!r || ((redisReply *)r)->type == REDIS_REPLY_ERROR) {
			redis_down(ag, "SELECT %u refused: %s", ag->url.db,
				   r ? ((redisReply *)r)->str : context_error(c));
			freeReplyObject(r);
			return false;
		}
		freeReplyObject(r);
	}
	return true;
}

/* Claim (claiming=true) or refresh the liveness key. False when Redis is
 * down or the name is someone else's (ag->state says whose). */
bool claim(struct agent *ag, bool claiming)
{
	char ttl[16];
	redisReply *r;

	snprintf(ttl, sizeof(ttl), "%u", ag->ttl_ms);
	args_reset(&ag->a);
	if (args_str(&ag->a, "EVAL") || args_str(&ag->a, claim_script) ||
	    args_str(&ag->a, "2") || args_str(&ag->a, ag->key_alive) ||
	    args_str(&ag->a, ag->key_node) || args_str(&ag->a, ag->alive_value) ||
	    args_str(&ag->a, ttl) ||
	    args_str(&ag->a, claiming ? ag->alive_prefix : ag->alive_value))
		return false;
	r = command(ag, "claiming the node name");
	if (!r)
		return false;
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
		freeReplyObject(r);
		redis_down(ag, "unexpected reply to the claim script");
		return false;
	}
	if (r->type == REDIS_REPLY_STRING) {
		if (!claiming && strncmp(r->str, ag->alive_prefix, strlen(ag->alive_prefix)) == 0) {
			agent_log(ag, "a newer agent for this node and namespace has taken over; "
				  "stopping");
			ag->state = AGENT_REPLACED;
		} else {
			agent_log(ag, "refused: node name \"%s\" is held by another live agent "
				  "(%.*s); give this one another --node, or stop that one (a dead "
				  "agent's claim expires after its --ttl)", ag->node, (int)r->len,
				  r->str);
			ag->state = AGENT_FAILED;
		}
		freeReplyObject(r);
		return false;
	}
	freeReplyObject(r);
	ag->next_refresh_ms = ca_monotonic_ms() + ag->ttl_ms / 4;
	return true;
}

bool connect_redis(struct agent *ag)
{
	uint64_t now = ca_monotonic_ms();
	redisReply *r;

	ag->cmd = open_context(ag);
	if (!ag->cmd)
		return false;
	ag->sub = open_context(ag);
	if (!ag->sub || !login(ag, ag->cmd) || !login(ag, ag->sub))
		return false;
	r = redisCommand(ag->sub, "SUBSCRIBE %s", ag->channel);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		redis_down(ag, "SUBSCRIBE refused: %s", r ? r->str : context_error(ag->sub));
		freeReplyObject(r);
		return false;
	}
	freeReplyObject(r);
	if (!claim(ag, true))
		return false;
	/* the namespace is ours now: clear what an earlier agent left */
	if (!ag->view_ready) {
		if (view_init(&ag->view, ag->remote_fd, ag->rates_fd, ca_netns(ag->h),
			      ca_loaded_config(ag->h))) {
			redis_down(ag, "out of memory");
			return false;
		}
		ag->view_ready = true;
	}
	if (!publish_snapshot(ag))
		return false;
	/* every known node may have changed while we were away */
	for (size_t i = 0; i < ag->view.nnodes; i++) {
		ag->view.node[i].need_read = true;
		ag->view.node[i].heard_ms = now;
	}
	if (!discover_nodes(ag, now))
		return false;
	ag->up = true;
	ag->backoff_ms = 0;
	ag->connected_ms = ag->own_heard_ms = now;
	ag->redis_error[0] = '\0';
	agent_log(ag, "connected to Redis; cluster \"%s\", %zu other node%s known",
		  ag->cluster, ag->view.nnodes, ag->view.nnodes == 1 ? "" : "s");
	return true;
}

