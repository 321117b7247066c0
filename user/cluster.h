/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cluster.h - the library's side of cluster-wide counts: the maps the agent
 * writes (cluster_maps.c) and the store that reads them (cluster_query.c).
 */
#ifndef CA_CLUSTER_H
#define CA_CLUSTER_H

#include "batch.h"
#include "store.h"


/* Create ca_remote and ca_cluster under dir unless they exist (a replace
 * keeps them). Returns 0 or -errno. */
int ca_cluster_maps_pin(const char *dir, struct ca_error *err);

/* ca_remote as a store: lookups there, scans of its per-peer entries, and a
 * health that is the freshness of the agent's view. */
struct ca_remote_store {
	struct ca_store store;		/* first: the core gets &r->store */
	int remote_fd, rates_fd, cluster_fd;
	uint32_t netns;			/* whose view health() judges */
	/* the agent's record, re-read at most every CA_CLUSTER_RECHECK_MS */
	struct ca_cluster_state state;
	uint64_t state_read_ms;
	uint32_t state_netns;
	bool state_present;
	struct ca_key keys[CA_SCAN_BATCH];
	__u64 values[CA_SCAN_BATCH];
	struct ca_rate *rates;		/* CA_SCAN_BATCH, the handle's scan buffer */
};

/* How long a query may trust the record it read last: a record says at
 * most this much later that the view went stale. */
#define CA_CLUSTER_RECHECK_MS	10

/* Set up r on the three map fds (owned by the caller) with cfg's prefixes
 * and monitors; rate scans go through `rates` (CA_SCAN_BATCH entries). */
void ca_remote_store_init(struct ca_remote_store *r, int remote_fd, int rates_fd,
			  int cluster_fd, const struct ca_config *cfg, struct ca_rate *rates,
			  uint64_t (*boot_ns)(struct ca_store *s));

/* CLOCK_MONOTONIC in milliseconds, the clock of ca_cluster_state. */
uint64_t ca_monotonic_ms(void);

#endif
