/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * store.h - where the counting core reads counts from. The library's store
 * is the pinned BPF maps (handle.c); unit tests use an in-memory fake.
 */
#ifndef CA_STORE_H
#define CA_STORE_H

#include "connaudit.h"

typedef int (*ca_entry_fn)(const struct ca_key *key, uint64_t count, void *arg);
typedef int (*ca_rate_fn)(const struct ca_key *key, const struct ca_rate *v, void *arg);

struct ca_store {
	/* *count = the count at key in ca_prefixes (aggregate) or ca_peers,
	 * 0 when absent. Returns 0 or -errno (message in err). */
	int (*lookup)(struct ca_store *s, bool aggregate, const struct ca_key *key,
		      uint64_t *count, struct ca_error *err);
	/* Call fn for every entry with a non-zero count. Returns 0, fn's
	 * non-zero value, or -errno. */
	int (*scan)(struct ca_store *s, bool aggregate, ca_entry_fn fn, void *arg,
		    struct ca_error *err);
	/* 0 when counts are exact, CA_INCOMPLETE when some session could not be
	 * counted, -ESTALE when the maps were retired by an unload. */
	int (*health)(struct ca_store *s, struct ca_error *err);
	/* *out = the ca_rates entry at key, all zero when absent. Returns 0 or
	 * -errno. */
	int (*rate_lookup)(struct ca_store *s, const struct ca_key *key, struct ca_rate *out,
			   struct ca_error *err);
	/* Call fn for every ca_rates entry. Returns 0, fn's non-zero value, or
	 * -errno. */
	int (*rate_scan)(struct ca_store *s, ca_rate_fn fn, void *arg, struct ca_error *err);
	/* Like health, for connection rates in windows from wall-clock second
	 * `since` on. */
	int (*rate_health)(struct ca_store *s, uint64_t since, struct ca_error *err);
	/* CLOCK_BOOTTIME in ns, the clock the kernel side reads. */
	uint64_t (*boot_ns)(struct ca_store *s);
	/* The prefix lengths the kernel aggregates. */
	struct ca_config cfg;
};

/* Count sessions in namespace `netns` to the ports of svc from cidr,
 * resolved against peer: the sum of the entries ca_plan_prefix picks, else
 * one scan of ca_peers. Returns 0, CA_INCOMPLETE or -errno. */
int ca_count_core(struct ca_store *s, uint32_t netns, const struct ca_cidr *cidr,
		  const struct ca_service *svc, const struct ca_addr *peer,
		  uint64_t *count, struct ca_error *err);

/* Connections in windows start..end of monitor m to the ports of svc from
 * cidr: the sum of the ca_rates entries ca_plan_prefix picks, else one scan
 * of ca_rates. Returns 0, CA_INCOMPLETE or -errno. */
int ca_connections_core(struct ca_store *s, uint32_t netns, const struct ca_monitor *m,
			const struct ca_cidr *cidr, const struct ca_service *svc,
			const struct ca_addr *peer, unsigned start, unsigned end,
			uint64_t *count, struct ca_error *err);

/* ---- the plan of a query (user/plan.c) ---------------------------------- */

/*
 * Most lookups, over all ports, that a query makes instead of one scan. A
 * lookup is one bpf() call: 0.4-0.7 us on an idle machine, 1.6 us with both
 * CPUs busy; a scan takes 0.07 ms at 500 peers, 0.4 ms at 5,000, 2.7 ms at
 * 25,000, and the sock_diag dump at 50,000 sessions 20 ms (bench/query.c).
 * 256 lookups (0.1-0.4 ms, whatever the sessions held) cost what a scan of
 * a few thousand peers does, stay 50 times below the dump even with slow
 * calls, and cover a /25 from its addresses, a /16 from /24s or a /56 from
 * /64s on one port. While the maps hold only a few hundred peers a scan
 * would be cheaper; the cap bounds what that costs.
 */
#define CA_PLAN_MAX_LOOKUPS	256u

/* The keys whose entries sum to a prefix: every sub-prefix of base of
 * length len, on each port; nkeys = 2^(len - base.len) of them a port. */
struct ca_plan {
	struct ca_prefix base;	/* the prefix asked about */
	uint8_t len;		/* a configured length, or the full address */
	bool aggregate;		/* the keys are in ca_prefixes, not ca_peers */
	uint32_t nkeys;
};

/* Plan prefix p on nports ports with the shortest length >= p->len that the
 * maps hold (one key a port when p's own length is held). False when that
 * takes more than CA_PLAN_MAX_LOOKUPS lookups: the caller scans instead. */
bool ca_plan_prefix(const struct ca_config *cfg, const struct ca_prefix *p, unsigned nports,
		    struct ca_plan *out);

typedef int (*ca_key_fn)(const struct ca_key *key, bool aggregate, void *arg);

/* Call fn on every key of plan, on each port of svc, in netns. Returns 0 or
 * fn's first non-zero value. */
int ca_plan_each(const struct ca_plan *plan, uint32_t netns, const struct ca_service *svc,
		 ca_key_fn fn, void *arg);

/* True for a per-peer key (a full IPv4 or IPv6 address). */
bool ca_key_is_peer(const struct ca_key *k);

/* The key of prefix p on port in netns (the layout every map uses). */
void ca_key_of_prefix(struct ca_key *k, uint32_t netns, uint16_t port,
		      const struct ca_prefix *p);

#endif
