// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cluster_publish.c - the cluster agent's side of this node: read the
 * local counts, write what changed to Redis, publish the notice. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct rate_read {
	struct agent *ag;
	uint64_t boot_ns;
};

/* A peer's live windows (aggregates derive from peers on the receiving side). */
static int local_rate(const struct ca_key *key, const struct ca_rate *v, void *arg)
{
	const struct rate_read *r = arg;
	struct ca_rate live;
	struct ca_key k;

	if (key->netns != ca_netns(r->ag->h) || key->port == 0 ||
	    key->prefixlen != (key->family == CA_AF_INET ? 32 : 128) ||
	    !ca_sync_rate_live(ca_loaded_config(r->ag->h), v, r->boot_ns, &live))
		return 0;
	k = *key;
	k.netns = 0;
	return ratetab_set(&r->ag->now_rates, &k, &live);
}

/* True when a connection went uncounted in a window some monitor still
 * keeps (as the local rate health judges it). */
static bool rates_low(const struct ca_config *cfg, const struct ca_health *hv)
{
	uint64_t span = 0, now = (uint64_t)time(NULL);

	for (unsigned m = 0; m < cfg->nr_monitors && m < CA_MAX_MONITORS; m++)
		if ((uint64_t)cfg->mon[m].size * cfg->mon[m].windows > span)
			span = (uint64_t)cfg->mon[m].size * cfg->mon[m].windows;
	return hv->marks_full || ((hv->rates_full || hv->rates_lost) &&
				  hv->rates_missed_at + span >= now);
}

/* ag->now = this namespace's per-peer counts, ag->now_rates their windows. */
int read_local(struct agent *ag)
{
	const struct ca_config *cfg = ca_loaded_config(ag->h);
	struct rate_read rr = { ag, boot_ns() };
	struct ca_health hv;
	struct ca_error err;
	int rc;

	keytab_clear(&ag->now);
	ratetab_free(&ag->now_rates);
	rc = ca_foreach(ag->h, false, local_entry, ag, &err);
	if (!rc && cfg->nr_monitors)
		rc = ca_foreach_rate(ag->h, local_rate, &rr, &err);
	if (rc) {
		agent_log(ag, "cannot read the local counts: %s", rc == -ENOMEM ?
			  "out of memory" : err.msg);
		return rc;
	}
	if (ca_read_health(ag->h, &hv, &err)) {
		ag->local_incomplete = ag->rates_low = true;
		return 0;
	}
	ag->local_incomplete = !cli_health_exact(&hv);
	ag->rates_low = cfg->nr_monitors && rates_low(cfg, &hv);
	health_log_update(&ag->health, ca_pin_dir(ag->h), cfg, &hv);
	return 0;
}

/* "FIELD VALUE\n" into the notice, and the field (and value, unless it
 * is gone) into the HSET/HDEL. */
static int add_field(struct args *notice, struct args *cmd, const char *field, size_t flen,
		     const char *value, bool gone)
{
	char line[CA_SYNC_FIELD_MAX + CA_SYNC_RATE_MAX + 4];

	if (notice && notice->n < NOTICE_MAX_ENTRIES &&
	    args_add(notice, line, (size_t)snprintf(line, sizeof(line), "%.*s %s\n",
						    (int)flen, field, value)))
		return -ENOMEM;
	if (args_add(cmd, field, flen))
		return -ENOMEM;
	return gone ? 0 : args_str(cmd, value);
}

static int add_change(struct args *notice, struct args *cmd, const struct ca_key *k,
		      uint64_t count)
{
	char field[CA_SYNC_FIELD_MAX], value[24];
	int n = ca_sync_field_encode(k, field);

	if (n < 0)
		return 0;	/* not a per-peer key: never published */
	snprintf(value, sizeof(value), "%" PRIu64, count);
	return add_field(notice, cmd, field, (size_t)n, value, !count);
}

/* The same for one peer's rate windows (ring NULL: gone). */
static int add_rate_change(struct args *notice, struct args *cmd, const struct ca_key *k,
			   const struct ca_rate *ring)
{
	static const struct ca_rate none;
	char field[CA_SYNC_FIELD_MAX + 1], value[CA_SYNC_RATE_MAX];
	int n = ca_sync_field_encode(k, field + 1);

	if (n < 0)
		return 0;
	field[0] = CA_SYNC_RATE_MARK;
	ca_sync_rate_encode(ring ? ring : &none, value);
	return add_field(notice, cmd, field, (size_t)n + 1, value, !ring);
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
	if (ag->rates_low)
		h.flags |= CA_SYNC_FLAG_RATES_LOW;
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

/* Start "VERB node-key" in cmd unless it is started. Returns 0 or -ENOMEM. */
static int begin(struct agent *ag, struct args *cmd, const char *verb)
{
	if (cmd->n)
		return 0;
	return args_str(cmd, verb) || args_str(cmd, ag->key_node) ? -ENOMEM : 0;
}

/* One more pair queued in hset: send it every HSET_CHUNK pairs, so that no
 * command grows without bound. Returns 0 or -EIO. */
static int chunk(struct agent *ag, struct args *hset, size_t *pairs, size_t *replies)
{
	if (++*pairs % HSET_CHUNK)
		return 0;
	if (args_append(ag, hset))
		return -EIO;
	++*replies;
	return 0;
}

static bool same_ring(const struct ca_rate *a, const struct ca_rate *b)
{
	return a && b && memcmp(a, b, sizeof(*a)) == 0;
}

/* ag->published_rates = ag->now_rates. */
static int keep_published_rates(struct agent *ag)
{
	ratetab_free(&ag->published_rates);
	for (struct keytab_slot *s = keytab_first(&ag->now_rates); s;
	     s = keytab_next(&ag->now_rates, s))
		if (ratetab_set(&ag->published_rates, &s->key, ratetab_get(&ag->now_rates, &s->key)))
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
	for (struct keytab_slot *s = keytab_first(&ag->now); s; s = keytab_next(&ag->now, s))
		if (begin(ag, &hset, "HSET") || add_change(NULL, &hset, &s->key, s->value) ||
		    chunk(ag, &hset, &pairs, &replies))
			goto out;
	for (struct keytab_slot *s = keytab_first(&ag->now_rates); s;
	     s = keytab_next(&ag->now_rates, s))
		if (begin(ag, &hset, "HSET") ||
		    add_rate_change(NULL, &hset, &s->key, ratetab_get(&ag->now_rates, &s->key)) ||
		    chunk(ag, &hset, &pairs, &replies))
			goto out;
	if (begin(ag, &hset, "HSET"))
		goto out;
	if (add_meta(ag, &hset) || args_str(&hset, CA_SYNC_META_MONITORS) ||
	    args_str(&hset, ag->view.monitors) || args_append(ag, &hset))
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
	return keep_published_rates(ag) == 0;
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
		if (begin(ag, &hset, "HSET") ||
		    add_change(&body, &hset, &s->key, s->value))
			goto out;
		changes++;
	}
	for (struct keytab_slot *s = keytab_first(&ag->published); s;
	     s = keytab_next(&ag->published, s)) {
		if (keytab_get(&ag->now, &s->key))
			continue;
		if (begin(ag, &hdel, "HDEL") ||
		    add_change(&body, &hdel, &s->key, 0))
			goto out;
		changes++;
	}
	for (struct keytab_slot *s = keytab_first(&ag->now_rates); s;
	     s = keytab_next(&ag->now_rates, s)) {
		const struct ca_rate *ring = ratetab_get(&ag->now_rates, &s->key);

		if (same_ring(ratetab_get(&ag->published_rates, &s->key), ring))
			continue;
		if (begin(ag, &hset, "HSET") ||
		    add_rate_change(&body, &hset, &s->key, ring))
			goto out;
		changes++;
	}
	for (struct keytab_slot *s = keytab_first(&ag->published_rates); s;
	     s = keytab_next(&ag->published_rates, s)) {
		if (ratetab_get(&ag->now_rates, &s->key))
			continue;
		if (begin(ag, &hdel, "HDEL") ||
		    add_rate_change(&body, &hdel, &s->key, NULL))
			goto out;
		changes++;
	}
	if (changes) {
		size_t deletes = hdel.n ? 1 : 0;	/* args_append empties hdel */

		ag->seq++;
		if (begin(ag, &hset, "HSET"))
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
		if (keep_published_rates(ag)) {
			redis_down(ag, "out of memory");
			return false;
		}
	}
	return true;
}

