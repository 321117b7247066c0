/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cluster_view.h - the cluster agent's picture of the other nodes: their
 * per-peer counts and rate windows, when each was last heard, and the sums
 * that it keeps in ca_remote and ca_remote_rates for its namespace. No Redis
 * here: cli_cluster.c feeds it what it reads.
 */
#ifndef CA_CLUSTER_VIEW_H
#define CA_CLUSTER_VIEW_H

#include "cluster_sync.h"
#include "keytab.h"

struct view_node {
	char name[CA_CLUSTER_NAME_MAX];
	char token[CA_SYNC_TOKEN_LEN + 1];	/* instance whose seq we follow */
	uint64_t seq;			/* last notice applied (or read in the hash) */
	unsigned interval_ms;		/* its --interval, from its notices */
	uint64_t heard_ms;		/* last notice (or when we started to wait) */
	bool need_read;			/* re-read its hash before trusting it */
	bool incomplete;		/* it says its own counts are incomplete */
	bool refused;			/* it sent entries we refused */
	bool rates_low;			/* it says it missed connections lately */
	bool monitors_differ;		/* its monitors are not ours: no rates */
	uint64_t sessions;
	struct keytab entries;		/* per-peer key (netns 0) -> sessions */
	struct keytab rates;		/* per-peer key (netns 0) -> struct ca_rate *
					 * (live slots only) */
};

/* Keys whose sums changed since the last flush (a key may repeat). */
struct view_keys {
	struct ca_key *key;
	size_t n, cap;
};

struct view {
	uint32_t netns;			/* keys of ca_remote we own */
	struct ca_config cfg;		/* prefixes to derive, as the kernel does */
	char monitors[CA_SYNC_MONITORS_MAX];	/* ours, as nodes publish theirs */
	int remote_fd, rates_fd;	/* ca_remote, ca_remote_rates, writable */
	struct view_node *node;
	size_t nnodes, cap;
	struct keytab sum;		/* exactly what ca_remote holds for netns */
	struct keytab sum_rates;	/* key -> struct ca_rate *: ca_remote_rates */
	struct view_keys touched, touched_rates;
	bool remote_full;		/* ca_remote refused an insert (sticky) */
	bool rates_full;		/* ca_remote_rates refused an insert (sticky) */
	uint64_t refused;		/* entries refused, ever */
	uint64_t resyncs;		/* full re-reads */
};

/* Start empty, deleting what earlier agents left in ca_remote and
 * ca_remote_rates for netns. Returns 0 or -errno. */
int view_init(struct view *v, int remote_fd, int rates_fd, uint32_t netns,
	      const struct ca_config *cfg);
void view_free(struct view *v);

/* The node called name, created (need_read set, heard now) if new. NULL
 * only when out of memory. */
struct view_node *view_node_get(struct view *v, const char *name, uint64_t now_ms);

/* Set one per-peer entry of node n (count 0: gone). Returns 0 or -ENOMEM. */
int view_set(struct view *v, struct view_node *n, const struct ca_key *peer, uint32_t count);

/* Set the rate windows of one peer of node n (live slots; all zero: gone).
 * Ignored while n's monitors differ from ours. Returns 0 or -ENOMEM. */
int view_set_rate(struct view *v, struct view_node *n, const struct ca_key *peer,
		  const struct ca_rate *ring);

/* Replace all of n's entries by those of counts (key -> sessions) and
 * rates (key -> struct ca_rate *, NULL: none). Returns 0 or -ENOMEM. */
int view_replace(struct view *v, struct view_node *n, const struct keytab *counts,
		 const struct keytab *rates);

/* The ring a rate table holds at k, NULL when none; rings are owned by the
 * table and freed by ratetab_free. */
struct ca_rate *ratetab_get(const struct keytab *t, const struct ca_key *k);
/* Store a copy of ring at k (replacing any; an all-zero ring removes k).
 * Returns 0 or -ENOMEM. */
int ratetab_set(struct keytab *t, const struct ca_key *k, const struct ca_rate *ring);
void ratetab_free(struct keytab *t);

/* Drop node n from the sum and the list. */
void view_drop(struct view *v, struct view_node *n);

/* Write the changed sums to ca_remote and ca_remote_rates. Returns 0 or
 * -errno (remote_full or rates_full is set for good on -E2BIG: the sum lacks
 * some keys). */
int view_flush(struct view *v);

#endif
