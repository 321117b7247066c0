// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cluster_receive.c - the cluster agent's side of the other nodes: their
 * notices, their hashes, finding them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_agent.h"

/* ---- the other nodes --------------------------------------------------------------- */

/* Replace a node's entries by its hash, refusing bad entries. */
bool read_node(struct agent *ag, struct view_node *n)
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

