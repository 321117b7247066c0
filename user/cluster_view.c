// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster_view.c - the other nodes' counts and their sum in ca_remote.
 *
 * Nodes send per-peer counts only; the sum derives from each peer every key
 * this node's kernel keeps (the peer, its configured prefixes, the per-port
 * total), so a cluster query looks up exactly the keys of a local one even
 * when nodes aggregate different prefix lengths. Changes are applied as
 * deltas and only the keys they touch are written: the cost follows the
 * changes, not the number of keys held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "cluster_view.h"

static int touch(struct view *v, const struct ca_key *k)
{
	if (v->ntouched == v->touched_cap) {
		size_t cap = v->touched_cap ? v->touched_cap * 2 : 256;
		struct ca_key *t = realloc(v->touched, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		v->touched = t;
		v->touched_cap = cap;
	}
	v->touched[v->ntouched++] = *k;
	return 0;
}

static int add_to_sum(struct view *v, const struct ca_key *k, int64_t delta)
{
	uint64_t cur = keytab_get(&v->sum, k);
	int rc = keytab_set(&v->sum, k, (uint64_t)((int64_t)cur + delta));

	return rc ? rc : touch(v, k);
}

/* Every key the kernel would update for a session from this peer. */
static int add_derived(struct view *v, const struct ca_key *peer, int64_t delta)
{
	unsigned full = peer->family == CA_AF_INET ? 32 : 128;
	const uint8_t *lens = peer->family == CA_AF_INET ? v->cfg.v4 : v->cfg.v6;
	unsigned nr = peer->family == CA_AF_INET ? v->cfg.nr_v4 : v->cfg.nr_v6;
	struct ca_key k = *peer;
	int rc;

	k.netns = v->netns;
	rc = add_to_sum(v, &k, delta);
	for (unsigned i = 0; !rc && i < nr && i < CA_MAX_PREFIXES; i++) {
		if (lens[i] >= full)
			continue;	/* the peer key already */
		k = *peer;
		k.netns = v->netns;
		k.prefixlen = lens[i];
		ca_mask_bytes(k.addr, lens[i]);
		rc = add_to_sum(v, &k, delta);
	}
	if (!rc) {
		memset(&k, 0, sizeof(k));
		k.netns = v->netns;
		k.port = peer->port;
		k.family = CA_AF_ALL;
		rc = add_to_sum(v, &k, delta);
	}
	return rc;
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

int view_init(struct view *v, int remote_fd, uint32_t netns, const struct ca_config *cfg)
{
	memset(v, 0, sizeof(*v));
	v->remote_fd = remote_fd;
	v->netns = netns;
	v->cfg = *cfg;
	return delete_own_keys(remote_fd, netns);
}

void view_free(struct view *v)
{
	for (size_t i = 0; i < v->nnodes; i++)
		keytab_free(&v->node[i].entries);
	free(v->node);
	keytab_free(&v->sum);
	free(v->touched);
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

static int subtract_all(struct view *v, struct view_node *n)
{
	for (struct keytab_slot *s = keytab_first(&n->entries); s;
	     s = keytab_next(&n->entries, s)) {
		int rc = add_derived(v, &s->key, -(int64_t)s->value);

		if (rc)
			return rc;
	}
	keytab_clear(&n->entries);
	n->sessions = 0;
	return 0;
}

int view_replace(struct view *v, struct view_node *n, const struct keytab *t)
{
	int rc = subtract_all(v, n);

	for (struct keytab_slot *s = keytab_first(t); !rc && s; s = keytab_next(t, s))
		rc = view_set(v, n, &s->key, (uint32_t)s->value);
	v->resyncs++;
	return rc;
}

void view_drop(struct view *v, struct view_node *n)
{
	subtract_all(v, n);
	keytab_free(&n->entries);
	*n = v->node[--v->nnodes];
}

int view_flush(struct view *v)
{
	int rc = 0;

	for (size_t i = 0; i < v->ntouched; i++) {
		const struct ca_key *k = &v->touched[i];
		__u64 val = keytab_get(&v->sum, k);

		if (val) {
			if (bpf_map_update_elem(v->remote_fd, k, &val, BPF_ANY)) {
				rc = -errno;
				v->remote_full |= errno == E2BIG;
			}
		} else if (bpf_map_delete_elem(v->remote_fd, k) && errno != ENOENT) {
			rc = -errno;
		}
	}
	v->ntouched = 0;
	return rc;
}
