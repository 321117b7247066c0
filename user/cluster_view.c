// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster_view.c - the other nodes' counts and rate windows, and their sums
 * in ca_remote and ca_remote_rates.
 *
 * Nodes send per-peer counts only; the sum derives from each peer every key
 * this node's kernel keeps (the peer, its configured prefixes, the per-port
 * total), so a cluster query looks up exactly the keys of a local one even
 * when nodes aggregate different prefix lengths. Changes are applied as
 * deltas and only the keys they touch are written: the cost follows the
 * changes, not the number of keys held.
 *
 * Rate windows are summed slot by slot, nodes' slots lining up because their
 * monitors are the same. A sum slot holds the newest window any node sent
 * for it: a newer window replaces it (the older one is past every window
 * kept, since a slot is reused only after a whole ring), a node's older
 * window adds nothing, and taking a node's window back subtracts only from
 * the window it went into.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "cluster_view.h"

static int touch(struct view_keys *t, const struct ca_key *k)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct ca_key *m = realloc(t->key, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		t->key = m;
		t->cap = cap;
	}
	t->key[t->n++] = *k;
	return 0;
}

/* ---- rate tables: keytabs whose values are owned struct ca_rate * ---- */

static bool ring_empty(const struct ca_rate *r)
{
	for (unsigned i = 0; r && i < CA_RATE_SLOTS; i++)
		if (r->slot[i].count)
			return false;
	return true;
}

struct ca_rate *ratetab_get(const struct keytab *t, const struct ca_key *k)
{
	return (struct ca_rate *)(uintptr_t)keytab_get(t, k);
}

int ratetab_set(struct keytab *t, const struct ca_key *k, const struct ca_rate *ring)
{
	struct ca_rate *cur = ratetab_get(t, k);

	if (ring_empty(ring)) {
		if (cur) {
			keytab_set(t, k, 0);	/* a removal never allocates */
			free(cur);
		}
		return 0;
	}
	if (cur) {
		*cur = *ring;
		return 0;
	}
	cur = malloc(sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	*cur = *ring;
	if (keytab_set(t, k, (uint64_t)(uintptr_t)cur)) {
		free(cur);
		return -ENOMEM;
	}
	return 0;
}

void ratetab_free(struct keytab *t)
{
	for (struct keytab_slot *s = keytab_first(t); s; s = keytab_next(t, s))
		free((void *)(uintptr_t)s->value);
	keytab_free(t);
}

/* ---- sums ---- */

typedef int (*derived_fn)(struct view *v, const struct ca_key *k, const void *arg);

/* fn on every key the kernel would update for a session from this peer. */
static int for_each_derived(struct view *v, const struct ca_key *peer, derived_fn fn,
			    const void *arg)
{
	unsigned full = peer->family == CA_AF_INET ? 32 : 128;
	const uint8_t *lens = peer->family == CA_AF_INET ? v->cfg.v4 : v->cfg.v6;
	unsigned nr = peer->family == CA_AF_INET ? v->cfg.nr_v4 : v->cfg.nr_v6;
	struct ca_key k = *peer;
	int rc;

	k.netns = v->netns;
	rc = fn(v, &k, arg);
	for (unsigned i = 0; !rc && i < nr && i < CA_MAX_PREFIXES; i++) {
		if (lens[i] >= full)
			continue;	/* the peer key already */
		k = *peer;
		k.netns = v->netns;
		k.prefixlen = lens[i];
		ca_mask_bytes(k.addr, lens[i]);
		rc = fn(v, &k, arg);
	}
	if (!rc) {
		memset(&k, 0, sizeof(k));
		k.netns = v->netns;
		k.port = peer->port;
		k.family = CA_AF_ALL;
		rc = fn(v, &k, arg);
	}
	return rc;
}

static int add_count(struct view *v, const struct ca_key *k, const void *arg)
{
	int64_t delta = *(const int64_t *)arg;
	uint64_t cur = keytab_get(&v->sum, k);
	int rc = keytab_set(&v->sum, k, (uint64_t)((int64_t)cur + delta));

	return rc ? rc : touch(&v->touched, k);
}

static int add_derived(struct view *v, const struct ca_key *peer, int64_t delta)
{
	return for_each_derived(v, peer, add_count, &delta);
}

struct ring_change {
	const struct ca_rate *old, *new;	/* a node's slots for one peer */
};

static int apply_ring(struct view *v, const struct ca_key *k, const void *arg)
{
	const struct ring_change *c = arg;
	struct ca_rate sum = { 0 }, *cur = ratetab_get(&v->sum_rates, k);
	int rc;

	if (cur)
		sum = *cur;
	for (unsigned i = 0; i < CA_RATE_SLOTS; i++) {
		struct ca_rate_slot *s = &sum.slot[i];
		const struct ca_rate_slot *o = &c->old->slot[i], *n = &c->new->slot[i];

		if (o->count && o->window == s->window)
			s->count = s->count > o->count ? s->count - o->count : 0;
		if (n->count && n->window > s->window)
			*s = *n;
		else if (n->count && n->window == s->window)
			s->count += n->count;
	}
	rc = ratetab_set(&v->sum_rates, k, &sum);
	return rc ? rc : touch(&v->touched_rates, k);
}

static int delete_own_keys(int fd, uint32_t netns)
{
	struct ca_key k, next, *mine = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	for (int r = bpf_map_get_next_key(fd, NULL, &next); r == 0;
	     r = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		if (k.netns != netns)
			continue;
		if (n == cap) {
			struct ca_key *m = realloc(mine, (cap = cap ? cap * 2 : 256) * sizeof(*m));

			if (!m) {
				rc = -ENOMEM;
				break;
			}
			mine = m;
		}
		mine[n++] = k;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &mine[i]);
	free(mine);
	return rc;
}

int view_init(struct view *v, int remote_fd, int rates_fd, uint32_t netns,
	      const struct ca_config *cfg)
{
	int rc;

	memset(v, 0, sizeof(*v));
	v->remote_fd = remote_fd;
	v->rates_fd = rates_fd;
	v->netns = netns;
	v->cfg = *cfg;
	ca_sync_monitors_text(cfg, v->monitors);
	rc = delete_own_keys(remote_fd, netns);
	return rc ? rc : delete_own_keys(rates_fd, netns);
}

void view_free(struct view *v)
{
	for (size_t i = 0; i < v->nnodes; i++) {
		keytab_free(&v->node[i].entries);
		ratetab_free(&v->node[i].rates);
	}
	free(v->node);
	keytab_free(&v->sum);
	ratetab_free(&v->sum_rates);
	free(v->touched.key);
	free(v->touched_rates.key);
	memset(v, 0, sizeof(*v));
}

struct view_node *view_node_get(struct view *v, const char *name, uint64_t now_ms)
{
	struct view_node *n;

	for (size_t i = 0; i < v->nnodes; i++)
		if (strcmp(v->node[i].name, name) == 0)
			return &v->node[i];
	if (v->nnodes == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		struct view_node *m = realloc(v->node, cap * sizeof(*m));

		if (!m)
			return NULL;
		v->node = m;
		v->cap = cap;
	}
	n = &v->node[v->nnodes++];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->heard_ms = now_ms;
	n->need_read = true;
	return n;
}

int view_set(struct view *v, struct view_node *n, const struct ca_key *peer, uint32_t count)
{
	uint64_t old = keytab_get(&n->entries, peer);
	int rc;

	if (old == count)
		return 0;
	rc = keytab_set(&n->entries, peer, count);
	if (rc)
		return rc;
	n->sessions = n->sessions + count - old;
	return add_derived(v, peer, (int64_t)count - (int64_t)old);
}

int view_set_rate(struct view *v, struct view_node *n, const struct ca_key *peer,
		  const struct ca_rate *ring)
{
	struct ca_rate before = { 0 }, *old = ratetab_get(&n->rates, peer);
	struct ring_change c = { &before, ring };
	int rc;

	if (n->monitors_differ || !v->cfg.nr_monitors)
		return 0;
	if (old)
		before = *old;
	else if (ring_empty(ring))
		return 0;
	rc = for_each_derived(v, peer, apply_ring, &c);
	return rc ? rc : ratetab_set(&n->rates, peer, ring);
}

static int subtract_all(struct view *v, struct view_node *n)
{
	static const struct ca_rate none;
	int rc = 0;

	for (struct keytab_slot *s = keytab_first(&n->entries); !rc && s;
	     s = keytab_next(&n->entries, s))
		rc = add_derived(v, &s->key, -(int64_t)s->value);
	for (struct keytab_slot *s = keytab_first(&n->rates); !rc && s;
	     s = keytab_next(&n->rates, s)) {
		struct ring_change c = { ratetab_get(&n->rates, &s->key), &none };

		rc = for_each_derived(v, &s->key, apply_ring, &c);
	}
	if (rc)
		return rc;
	keytab_clear(&n->entries);
	ratetab_free(&n->rates);
	n->sessions = 0;
	return 0;
}

int view_replace(struct view *v, struct view_node *n, const struct keytab *counts,
		 const struct keytab *rates)
{
	int rc = subtract_all(v, n);

	for (struct keytab_slot *s = keytab_first(counts); !rc && s; s = keytab_next(counts, s))
		rc = view_set(v, n, &s->key, (uint32_t)s->value);
	for (struct keytab_slot *s = rates ? keytab_first(rates) : NULL; !rc && s;
	     s = keytab_next(rates, s))
		rc = view_set_rate(v, n, &s->key, ratetab_get(rates, &s->key));
	v->resyncs++;
	return rc;
}

void view_drop(struct view *v, struct view_node *n)
{
	subtract_all(v, n);
	keytab_free(&n->entries);
	ratetab_free(&n->rates);
	*n = v->node[--v->nnodes];
}

/* Write (or delete) the sums of keys touched in one map. */
static int flush_keys(int fd, struct view_keys *t, const void *(*value)(struct view *,
		      const struct ca_key *, __u64 *), struct view *v, bool *full)
{
	int rc = 0;

	for (size_t i = 0; i < t->n; i++) {
		const struct ca_key *k = &t->key[i];
		__u64 scratch;
		const void *val = value(v, k, &scratch);

		if (val) {
			if (bpf_map_update_elem(fd, k, val, BPF_ANY)) {
				rc = -errno;
				*full |= errno == E2BIG;
			}
		} else if (bpf_map_delete_elem(fd, k) && errno != ENOENT) {
			rc = -errno;
		}
	}
	t->n = 0;
	return rc;
}

static const void *count_value(struct view *v, const struct ca_key *k, __u64 *scratch)
{
	*scratch = keytab_get(&v->sum, k);
	return *scratch ? scratch : NULL;
}

static const void *rate_value(struct view *v, const struct ca_key *k, __u64 *scratch)
{
	(void)scratch;
	return ratetab_get(&v->sum_rates, k);
}

int view_flush(struct view *v)
{
	int rc = flush_keys(v->remote_fd, &v->touched, count_value, v, &v->remote_full);
	int rrc = flush_keys(v->rates_fd, &v->touched_rates, rate_value, v, &v->rates_full);

	return rc ? rc : rrc;
}
