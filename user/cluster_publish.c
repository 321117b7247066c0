// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cluster_publish.c - the cluster agent's side of this node: read the
 * local counts, write what changed to Redis, publish the notice. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster_agent.h"

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
int read_local(struct agent *ag)
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
	if (ca_read_health(ag->h, &hv, &err)) {
		ag->local_incomplete = true;
		return 0;
	}
	ag->local_incomplete = !cli_health_exact(&hv);
	health_log_update(&ag->health, ca_pin_dir(ag->h), ca_loaded_config(ag->h), &hv);
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
int queue_publish(struct agent *ag, const struct args *body, unsigned flags,
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
bool publish_snapshot(struct agent *ag)
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
bool publish_changes(struct agent *ag)
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

