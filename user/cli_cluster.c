// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_cluster.c - `connaudit cluster`: the agent that shares this node's
 * counts through Redis and keeps the other nodes' sum in ca_remote.
 *
 * One loop, one thread. Every --interval it reads this namespace's per-peer
 * counts, writes what changed to its Redis hash (one MULTI/EXEC pipeline)
 * and publishes a notice carrying the changes; between ticks it applies
 * the other nodes' notices as they arrive. Queries never wait for any of
 * this: they read ca_remote and the record in ca_cluster, which says how
 * old the view is. Redis layout and notice format: cluster_sync.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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
#include <hiredis/hiredis.h>

#include "cli.h"
#include "cluster.h"
#include "cluster_view.h"
#include "sysfs.h"

#define DEFAULT_INTERVAL_MS	100
#define DEFAULT_TTL_S		5
#define DEFAULT_CLUSTER		"default"
#define CONNECT_TIMEOUT_MS	1000
#define COMMAND_TIMEOUT_MS	500
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		2000
#define SILENT_INTERVALS	3	/* a node this many intervals quiet: view not exact */
#define SILENT_SLACK_MS		250
#define NOTICE_MAX_ENTRIES	1000	/* more changes: the notice says "re-read" */
#define HSET_CHUNK		1000	/* field/value pairs per HSET of a snapshot */
#define KEY_MAX			(CA_CLUSTER_NAME_MAX * 2 + 32)
#define STALE_CHECK_MS		1000	/* how often to check the pins are still ours */
#define IDENTITY_MAX		(PATH_MAX + 128)
#define AGENT_STOPPED		"the agent stopped"	/* the record's last reason */

/* Claim or refresh the node's liveness key: refused (the holder's value is
 * returned) unless it is free, ours, or starts with ARGV[3] (the same
 * identity: a restarted agent takes over). Also keeps the node's hash alive. */
static const char claim_script[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if v and v ~= ARGV[1] and string.sub(v, 1, #ARGV[3]) ~= ARGV[3] then return v end "
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
	"redis.call('PEXPIRE', KEYS[2], ARGV[2]) "
	"return false";

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
	int remote_fd, cluster_fd;
	struct view view;
	bool view_ready;		/* view_init done: after the first claim */
	struct keytab published, now;	/* our entries as in Redis; as read now */
	bool local_incomplete;
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

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void agent_log(const struct agent *ag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void agent_log(const struct agent *ag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "connaudit cluster %s: ", ag->node);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- building commands ------------------------------------------------------ */

static void args_reset(struct args *a)
{
	a->len = 0;
	a->n = 0;
}

static void args_free(struct args *a)
{
	free(a->text);
	free(a->off);
	free(a->arglen);
	free(a->argv);
	memset(a, 0, sizeof(*a));
}

static int args_add(struct args *a, const char *s, size_t len)
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

static int args_str(struct args *a, const char *s)
{
	return args_add(a, s, strlen(s));
}

static int args_u64(struct args *a, uint64_t v)
{
	char buf[24];

	return args_add(a, buf, (size_t)snprintf(buf, sizeof(buf), "%" PRIu64, v));
}

/* Queue the command in a (pipelined: replies are read later). */
static int args_append(struct agent *ag, struct args *a)
{
	for (size_t i = 0; i < a->n; i++)
		a->argv[i] = a->text + a->off[i];
	if (redisAppendCommandArgv(ag->cmd, (int)a->n, a->argv, a->arglen) != REDIS_OK)
		return -EIO;
	args_reset(a);
	return 0;
}

/* ---- the Redis connection ----------------------------------------------------- */

static void redis_down(struct agent *ag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void redis_down(struct agent *ag, const char *fmt, ...)
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

static const char *context_error(redisContext *c)
{
	return c && c->err ? c->errstr : "no reply";
}

/* Read one reply of the pipeline; NULL (Redis marked down) on I/O errors
 * and error replies. */
static redisReply *get_reply(struct agent *ag, redisContext *c, const char *what)
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
static redisReply *command(struct agent *ag, const char *what)
{
	if (args_append(ag, &ag->a)) {
		redis_down(ag, "%s: cannot send", what);
		return NULL;
	}
	return get_reply(ag, ag->cmd, what);
}

/* Read n replies, true when none failed. */
static bool drain_replies(struct agent *ag, size_t n, const char *what)
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
static bool claim(struct agent *ag, bool claiming)
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

/* ---- publishing this node ------------------------------------------------------- */

static int local_entry(const struct ca_key *key, uint64_t count, void *arg)
{
	struct agent *ag = arg;
	struct ca_key k;

	if (key->netns != ca_netns(ag->h) || key->port == 0)
		return 0;
	k = *key;
	k.netns = 0;
	return keytab_set(&ag->now, &k, count);
}

/* ag->now = this namespace's per-peer counts. */
static int read_local(struct agent *ag)
{
	struct ca_health hv;
	struct ca_error err;
	int rc;

	keytab_clear(&ag->now);
	rc = ca_foreach(ag->h, false, local_entry, ag, &err);
	if (rc) {
		agent_log(ag, "cannot read the local counts: %s", rc == -ENOMEM ?
			  "out of memory" : err.msg);
		return rc;
	}
	ag->local_incomplete = ca_read_health(ag->h, &hv, &err) || !cli_health_exact(&hv);
	return 0;
}

/* "FIELD COUNT\n" into the notice, and the field into the HSET/HDEL. */
static int add_change(struct args *notice, struct args *cmd, const struct ca_key *k,
		      uint64_t count)
{
	char field[CA_SYNC_FIELD_MAX], line[CA_SYNC_FIELD_MAX + 24];
	int n = ca_sync_field_encode(k, field);

	if (n < 0)
		return 0;	/* not a per-peer key: never published */
	if (notice && notice->n < NOTICE_MAX_ENTRIES &&
	    args_add(notice, line, (size_t)snprintf(line, sizeof(line), "%s %" PRIu64 "\n",
						    field, count)))
		return -ENOMEM;
	if (args_add(cmd, field, (size_t)n))
		return -ENOMEM;
	return count ? args_u64(cmd, count) : 0;
}

static int notice_header(struct agent *ag, struct args *notice, unsigned flags)
{
	struct ca_sync_header h = { .seq = ag->seq, .flags = flags,
				    .interval_ms = ag->interval_ms };
	char line[256];
	int n;

	snprintf(h.node, sizeof(h.node), "%s", ag->node);
	memcpy(h.token, ag->token, sizeof(h.token));
	if (ag->local_incomplete)
		h.flags |= CA_SYNC_FLAG_INCOMPLETE;
	n = ca_sync_header_encode(&h, line, sizeof(line));
	return n < 0 ? n : args_add(notice, line, (size_t)n);
}

/* Queue PUBLISH of the notice built in `body` (entries) after `flags`. */
static int queue_publish(struct agent *ag, const struct args *body, unsigned flags,
			 size_t entries)
{
	struct args msg = { 0 };
	int rc = notice_header(ag, &msg, entries > NOTICE_MAX_ENTRIES ?
			       flags | CA_SYNC_FLAG_FULL : flags);

	/* msg.text is the whole notice: the header line, then the entries' */
	if (!rc && body && body->len && entries <= NOTICE_MAX_ENTRIES &&
	    args_add(&msg, body->text, body->len))
		rc = -ENOMEM;
	args_reset(&ag->a);
	if (!rc && (args_str(&ag->a, "PUBLISH") || args_str(&ag->a, ag->channel) ||
		    args_add(&ag->a, msg.text, msg.len)))
		rc = -ENOMEM;
	args_free(&msg);
	return rc ? rc : args_append(ag, &ag->a);
}

/* Queue "HSET node .seq S .tok T" meta fields into cmd. */
static int add_meta(struct agent *ag, struct args *cmd)
{
	if (args_str(cmd, CA_SYNC_META_SEQ) || args_u64(cmd, ag->seq) ||
	    args_str(cmd, CA_SYNC_META_TOKEN) || args_str(cmd, ag->token))
		return -ENOMEM;
	return 0;
}

/* Our whole hash, replaced in one transaction, then a notice saying so. */
static bool publish_snapshot(struct agent *ag)
{
	struct args hset = { 0 };
	size_t replies = 0, pairs = 0;
	bool ok = false;

	if (read_local(ag))
		return false;
	ag->seq++;
	args_reset(&ag->a);
	if (args_str(&ag->a, "MULTI") || args_append(ag, &ag->a) ||
	    args_str(&ag->a, "DEL") || args_str(&ag->a, ag->key_node) ||
	    args_append(ag, &ag->a))
		goto out;
	replies = 2;
	for (struct keytab_slot *s = keytab_first(&ag->now); s; s = keytab_next(&ag->now, s)) {
		if (!hset.n && (args_str(&hset, "HSET") || args_str(&hset, ag->key_node)))
			goto out;
		if (add_change(NULL, &hset, &s->key, s->value))
			goto out;
		if (++pairs % HSET_CHUNK == 0) {
			if (args_append(ag, &hset))
				goto out;
			replies++;
		}
	}
	if (!hset.n && (args_str(&hset, "HSET") || args_str(&hset, ag->key_node)))
		goto out;
	if (add_meta(ag, &hset) || args_append(ag, &hset))
		goto out;
	args_reset(&ag->a);
	if (args_str(&ag->a, "PEXPIRE") || args_str(&ag->a, ag->key_node) ||
	    args_u64(&ag->a, ag->ttl_ms) || args_append(ag, &ag->a) ||
	    args_str(&ag->a, "EXEC") || args_append(ag, &ag->a) ||
	    queue_publish(ag, NULL, CA_SYNC_FLAG_FULL, 0))
		goto out;
	replies += 4;
	ok = true;
out:
	args_free(&hset);
	if (!ok) {
		redis_down(ag, "cannot send the snapshot");
		return false;
	}
	if (!drain_replies(ag, replies, "writing the snapshot"))
		return false;
	keytab_clear(&ag->published);
	for (struct keytab_slot *s = keytab_first(&ag->now); s; s = keytab_next(&ag->now, s))
		if (keytab_set(&ag->published, &s->key, s->value))
			return false;
	return true;
}

/* The changes since the last publish, or a heartbeat when there are none. */
static bool publish_changes(struct agent *ag)
{
	struct args hset = { 0 }, hdel = { 0 }, body = { 0 };
	size_t changes = 0, replies = 1;
	bool ok = false;

	if (read_local(ag))
		return true;	/* nothing new to say; try again next tick */
	for (struct keytab_slot *s = keytab_first(&ag->now); s; s = keytab_next(&ag->now, s)) {
		if (keytab_get(&ag->published, &s->key) == s->value)
			continue;
		if ((!hset.n && (args_str(&hset, "HSET") || args_str(&hset, ag->key_node))) ||
		    add_change(&body, &hset, &s->key, s->value))
			goto out;
		changes++;
	}
	for (struct keytab_slot *s = keytab_first(&ag->published); s;
	     s = keytab_next(&ag->published, s)) {
		if (keytab_get(&ag->now, &s->key))
			continue;
		if ((!hdel.n && (args_str(&hdel, "HDEL") || args_str(&hdel, ag->key_node))) ||
		    add_change(&body, &hdel, &s->key, 0))
			goto out;
		changes++;
	}
	if (changes) {
		size_t deletes = hdel.n ? 1 : 0;	/* args_append empties hdel */

		ag->seq++;
		if (!hset.n && (args_str(&hset, "HSET") || args_str(&hset, ag->key_node)))
			goto out;
		args_reset(&ag->a);
		if (add_meta(ag, &hset) || args_str(&ag->a, "MULTI") ||
		    args_append(ag, &ag->a) || (deletes && args_append(ag, &hdel)) ||
		    args_append(ag, &hset) || args_str(&ag->a, "EXEC") ||
		    args_append(ag, &ag->a))
			goto out;
		replies += 3 + deletes;
	}
	if (queue_publish(ag, &body, 0, changes))
		goto out;
	ok = true;
out:
	args_free(&hset);
	args_free(&hdel);
	args_free(&body);
	if (!ok) {
		redis_down(ag, "cannot send the changes");
		return false;
	}
	if (!drain_replies(ag, replies, "publishing the changes"))
		return false;
	if (changes) {
		struct keytab t = ag->published;

		ag->published = ag->now;
		ag->now = t;
	}
	return true;
}

/* ---- the other nodes --------------------------------------------------------------- */

/* Replace a node's entries by its hash, refusing bad entries. */
static bool read_node(struct agent *ag, struct view_node *n)
{
	struct keytab t = { 0 };
	struct ca_error err;
	unsigned bad = 0;
	redisReply *r;
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "ca:{%s}:node:%s", ag->cluster, n->name);
	args_reset(&ag->a);
	if (args_str(&ag->a, "HGETALL") || args_str(&ag->a, key))
		return false;
	r = command(ag, "reading a node");
	if (!r)
		return false;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
		/* never a reply to HGETALL: the replies are out of step */
		freeReplyObject(r);
		redis_down(ag, "unexpected reply to HGETALL");
		return false;
	}
	n->seq = 0;
	n->token[0] = '\0';
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		struct ca_key k;
		uint32_t count;

		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
			bad++;
			continue;
		}
		if (strcmp(f->str, CA_SYNC_META_SEQ) == 0) {
			n->seq = strtoull(v->str, NULL, 10);
			continue;
		}
		if (strcmp(f->str, CA_SYNC_META_TOKEN) == 0) {
			snprintf(n->token, sizeof(n->token), "%s", v->str);
			continue;
		}
		if (ca_sync_field_decode(f->str, f->len, &k, &err) ||
		    ca_sync_count_decode(v->str, v->len, false, &count, &err)) {
			if (!bad++)
				agent_log(ag, "node %s: %s", n->name, err.msg);
			continue;
		}
		if (keytab_set(&t, &k, count))
			bad++;
	}
	freeReplyObject(r);
	if (bad)
		agent_log(ag, "node %s: refused %u entries of its hash; its sessions are "
			  "counted without them and the view is flagged", n->name, bad);
	ag->view.refused += bad;
	n->refused = bad > 0;
	n->need_read = false;
	view_replace(&ag->view, n, &t);
	keytab_free(&t);
	return true;
}

static void apply_notice(struct agent *ag, const char *msg, size_t len, uint64_t now)
{
	struct ca_sync_header h;
	struct view_node *n;
	struct ca_error err;
	const char *p, *end = msg + len;
	struct ca_key k;
	uint32_t count;
	int rc;

	if (ca_sync_header_decode(msg, len, &h, &p, &err)) {
		if (!ag->view.refused++)
			agent_log(ag, "%s", err.msg);
		return;
	}
	if (strcmp(h.node, ag->node) == 0) {
		if (strcmp(h.token, ag->token) == 0)
			ag->own_heard_ms = now;
		return;
	}
	n = view_node_get(&ag->view, h.node, now);
	if (!n)
		return;
	if (n->need_read && !n->seq && !n->token[0])
		agent_log(ag, "node %s joined", h.node);
	n->heard_ms = now;
	n->interval_ms = h.interval_ms;
	n->incomplete = h.flags & CA_SYNC_FLAG_INCOMPLETE;
	if (n->need_read)
		return;
	if (strcmp(h.token, n->token) != 0 || (h.flags & CA_SYNC_FLAG_FULL) || h.seq > n->seq + 1) {
		n->need_read = true;
		return;
	}
	if (h.seq != n->seq + 1)
		return;		/* a heartbeat, or old news */
	while ((rc = ca_sync_next_entry(&p, end, &k, &count, &err)) != 0) {
		if (rc < 0) {
			if (!n->refused)
				agent_log(ag, "node %s: %s", n->name, err.msg);
			n->refused = true;
			ag->view.refused++;
			continue;
		}
		view_set(&ag->view, n, &k, count);
	}
	n->seq = h.seq;
}

/* Handle what the subscription has delivered, without blocking. */
static bool read_notices(struct agent *ag, uint64_t now)
{
	void *r;

	if (redisBufferRead(ag->sub) != REDIS_OK) {
		redis_down(ag, "subscription: %s", context_error(ag->sub));
		return false;
	}
	for (;;) {
		redisReply *m;

		if (redisReaderGetReply(ag->sub->reader, &r) != REDIS_OK) {
			redis_down(ag, "subscription: unreadable reply");
			return false;
		}
		if (!r)
			return true;
		m = r;
		if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
		    m->element[0]->type == REDIS_REPLY_STRING &&
		    strcmp(m->element[0]->str, "message") == 0 &&
		    m->element[2]->type == REDIS_REPLY_STRING)
			apply_notice(ag, m->element[2]->str, m->element[2]->len, now);
		freeReplyObject(m);
	}
}

/* Every node with a liveness key: wait for (and read) each one. */
static bool discover_nodes(struct agent *ag, uint64_t now)
{
	char pattern[KEY_MAX + 2], cursor[32] = "0";
	size_t prefix = (size_t)snprintf(pattern, sizeof(pattern), "ca:{%s}:alive:", ag->cluster);

	strcat(pattern, "*");
	do {
		redisReply *r;

		args_reset(&ag->a);
		if (args_str(&ag->a, "SCAN") || args_str(&ag->a, cursor) ||
		    args_str(&ag->a, "MATCH") || args_str(&ag->a, pattern) ||
		    args_str(&ag->a, "COUNT") || args_str(&ag->a, "1000"))
			return false;
		r = command(ag, "listing the nodes");
		if (!r)
			return false;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			redis_down(ag, "unexpected SCAN reply");
			return false;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			const redisReply *k = r->element[1]->element[i];

			if (k->type != REDIS_REPLY_STRING || k->len <= prefix ||
			    !ca_sync_name_ok(k->str + prefix, k->len - prefix) ||
			    strcmp(k->str + prefix, ag->node) == 0)
				continue;
			view_node_get(&ag->view, k->str + prefix, now);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return true;
}

static bool connect_redis(struct agent *ag)
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
		if (view_init(&ag->view, ag->remote_fd, ca_netns(ag->h), ca_loaded_config(ag->h))) {
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
		snprintf(buf, len, "Redis is unreachable (%s)", ag->redis_error);
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
			   (n->refused ? CA_NODE_REFUSED : 0);
	}
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
	ag->cluster_fd = ag->remote_fd < 0 ? -1 : open_rw(ca_pin_dir(ag->h), CA_PIN_CLUSTER);
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
	struct agent ag = { .remote_fd = -1, .cluster_fd = -1 };
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
	args_free(&ag.a);
	if (ag.remote_fd >= 0)
		close(ag.remote_fd);
	if (ag.cluster_fd >= 0)
		close(ag.cluster_fd);
	ca_close(ag.h);
	return rc;
}
