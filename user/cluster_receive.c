// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cluster_receive.c - the cluster agent's side of the other nodes: their
 * notices, their hashes, finding them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_agent.h"

/* ---- the other nodes --------------------------------------------------------------- */

/* One entry of a node's hash into counts or rates. Returns 0, 1 for a
 * meta field, or -EINVAL with a message. */
static int hash_entry(struct view_node *n, const redisReply *f, const redisReply *v,
		      struct keytab *counts, struct keytab *rates, struct ca_error *err)
{
	struct ca_rate ring;
	struct ca_key k;
	uint32_t count;

	if (strcmp(f->str, CA_SYNC_META_SEQ) == 0) {
		n->seq = strtoull(v->str, NULL, 10);
		return 1;
	}
	if (strcmp(f->str, CA_SYNC_META_TOKEN) == 0) {
		snprintf(n->token, sizeof(n->token), "%s", v->str);
		return 1;
	}
	if (strcmp(f->str, CA_SYNC_META_MONITORS) == 0)
		return 1;	/* read first, by read_node */
	if (f->len && f->str[0] == CA_SYNC_RATE_MARK) {
		if (ca_sync_field_decode(f->str + 1, f->len - 1, &k, err) ||
		    ca_sync_rate_decode(v->str, v->len, &ring, err))
			return -EINVAL;
		return ratetab_set(rates, &k, &ring) ? -ENOMEM : 0;
	}
	if (ca_sync_field_decode(f->str, f->len, &k, err) ||
	    ca_sync_count_decode(v->str, v->len, false, &count, err))
		return -EINVAL;
	return keytab_set(counts, &k, count) ? -ENOMEM : 0;
}

/* Whether node n keeps our monitors, from its hash's meta field (none: no
 * monitors); says so in the log when that changes. */
static void check_monitors(struct agent *ag, struct view_node *n, const redisReply *r)
{
	const char *theirs = "";
	bool differ;

	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, CA_SYNC_META_MONITORS) == 0)
			theirs = r->element[i + 1]->str;
	differ = ag->view.cfg.nr_monitors && strcmp(theirs, ag->view.monitors) != 0;
	if (differ && !n->monitors_differ)
		agent_log(ag, "node %s keeps monitors \"%s\", this node \"%s\": its "
			  "connections are left out of cluster-wide rates, which say so",
			  n->name, theirs, ag->view.monitors);
	n->monitors_differ = differ;
}

/* Replace a node's entries by its hash, refusing bad entries. */
bool read_node(struct agent *ag, struct view_node *n)
{
	struct keytab t = { 0 }, rates = { 0 };
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
	check_monitors(ag, n, r);
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		int rc;

		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
			bad++;
			continue;
		}
		rc = hash_entry(n, f, v, &t, &rates, &err);
		if (rc == -EINVAL && !bad)
			agent_log(ag, "node %s: %s", n->name, err.msg);
		bad += rc < 0;
	}
	freeReplyObject(r);
	if (bad)
		agent_log(ag, "node %s: refused %u entries of its hash; its sessions are "
			  "counted without them and the view is flagged", n->name, bad);
	ag->view.refused += bad;
	n->refused = bad > 0;
	n->need_read = false;
	view_replace(&ag->view, n, &t, &rates);
	keytab_free(&t);
	ratetab_free(&rates);
	return true;
}

static void apply_notice(struct agent *ag, const char *msg, size_t len, uint64_t now)
{
	struct ca_sync_header h;
	struct view_node *n;
	struct ca_error err;
	const char *p, *end = msg + len;
	struct ca_sync_entry e;
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
	n->rates_low = h.flags & CA_SYNC_FLAG_RATES_LOW;
	if (n->need_read)
		return;
	if (strcmp(h.token, n->token) != 0 || (h.flags & CA_SYNC_FLAG_FULL) || h.seq > n->seq + 1) {
		n->need_read = true;
		return;
	}
	if (h.seq != n->seq + 1)
		return;		/* a heartbeat, or old news */
	while ((rc = ca_sync_next_entry(&p, end, &e, &err)) != 0) {
		if (rc < 0) {
			if (!n->refused)
				agent_log(ag, "node %s: %s", n->name, err.msg);
			n->refused = true;
			ag->view.refused++;
			continue;
		}
		if (e.rate)
			view_set_rate(&ag->view, n, &e.key, &e.ring);
		else
			view_set(&ag->view, n, &e.key, e.count);
	}
	n->seq = h.seq;
}

/* Handle what the subscription has delivered, without blocking. */
bool read_notices(struct agent *ag, uint64_t now)
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
bool discover_nodes(struct agent *ag, uint64_t now)
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

