/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cluster_view.h - the cluster agent's picture of the other nodes: their
 * per-peer counts, when each was last heard, and the sum of those counts
 * that it keeps in ca_remote for its namespace. No Redis here: cli_cluster.c
 * feeds it what it reads.
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
	uint64_t sessions;
	struct keytab entries;		/* per-peer key (netns 0) -> sessions */
};

struct view {
	uint32_t netns;			/* keys of ca_remote we own */
	struct ca_config cfg;		/* prefixes to derive, as the kernel does */
	int remote_fd;			/* ca_remote, writable */
	struct view_node *node;
	size_t nnodes, cap;
	struct keytab sum;		/* exactly what ca_remote holds for netns */
	struct ca_key *touched;		/* sum keys changed since the last flush */
	size_t ntouched, touched_cap;
	bool remote_full;		/* ca_remote refused an insert (sticky) */
	uint64_t refused;		/* entries refused, ever */
	uint64_t resyncs;		/* full re-reads */
};

/* Start empty, deleting what earlier agents left in ca_remote for netns.
 * Returns 0 or -errno. */
int view_init(struct view *v, int remote_fd, uint32_t netns, const struct ca_config *cfg);
void view_free(struct view *v);

/* The node called name, created (need_read set, heard now) if new. NULL
 * only when out of memory. */
struct view_node *view_node_get(struct view *v, const char *name, uint64_t now_ms);

/* Set one per-peer entry of node n (count 0: gone). Returns 0 or -ENOMEM. */
int view_set(struct view *v, struct view_node *n, const struct ca_key *peer, uint32_t count);

/* Replace all of n's entries by those of t. Returns 0 or -ENOMEM. */
int view_replace(struct view *v, struct view_node *n, const struct keytab *t);

/* Drop node n from the sum and the list. */
void view_drop(struct view *v, struct view_node *n);

/* Write the changed sums to ca_remote. Returns 0 or -errno (remote_full is
 * set for good on -E2BIG: the sum lacks some keys). */
int view_flush(struct view *v);

#endif
