// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * plan.c - which map keys answer a prefix query. The kernel keeps an entry
 * per peer and per configured prefix; the entries of one length on one port
 * partition every shorter prefix, each session in exactly one of them, so a
 * prefix is the sum of its sub-prefixes at the next length the maps hold.
 */
#include <string.h>

#include "store.h"

bool ca_key_is_peer(const struct ca_key *k)
{
	return (k->family == CA_AF_INET && k->prefixlen == 32) ||
	       (k->family == CA_AF_INET6 && k->prefixlen == 128);
}

void ca_key_of_prefix(struct ca_key *k, uint32_t netns, uint16_t port,
		      const struct ca_prefix *p)
{
	memset(k, 0, sizeof(*k));
	k->netns = netns;
	k->port = port;
	k->family = p->family;
	k->prefixlen = p->len;
	memcpy(k->addr, p->bytes, sizeof(k->addr));
}

/* The shortest length >= len that the maps hold for family: a configured
 * prefix length (ca_prefixes), or the full address (ca_peers). */
static unsigned held_length(const struct ca_config *cfg, uint8_t family, unsigned len)
{
	const uint8_t *lens = family == CA_AF_INET ? cfg->v4 : cfg->v6;
	unsigned nr = family == CA_AF_INET ? cfg->nr_v4 : cfg->nr_v6;
	unsigned full = family == CA_AF_INET ? 32 : 128, best = full;

	/* 0 is never configured (the per-port total covers both families),
	 * and a configured full length is the peer's own entry. */
	for (unsigned i = 0; i < nr && i < CA_MAX_PREFIXES; i++)
		if (lens[i] >= len && lens[i] > 0 && lens[i] < best)
			best = lens[i];
	return best;
}

bool ca_plan_prefix(const struct ca_config *cfg, const struct ca_prefix *p, unsigned nports,
		    struct ca_plan *out)
{
	unsigned len, extra;

	out->base = *p;
	if (p->family == CA_AF_ALL) {	/* the per-port total */
		out->len = 0;
		out->aggregate = true;
		out->nkeys = 1;
		return true;
	}
	len = held_length(cfg, p->family, p->len);
	extra = len - p->len;
	/* 2^extra keys per port: past the cap long before the shift overflows. */
	if (extra >= 31 || (uint64_t)nports << extra > CA_PLAN_MAX_LOOKUPS)
		return false;
	out->len = (uint8_t)len;
	out->aggregate = len < (p->family == CA_AF_INET ? 32u : 128u);
	out->nkeys = 1u << extra;
	return true;
}

/* The next prefix of length len after bytes: add 1 at bit len - 1, carrying
 * toward the first byte (network order). The caller stops before the carry
 * would leave the queried prefix. */
static void next_prefix(uint8_t bytes[16], unsigned len)
{
	unsigned i = (len - 1) / 8, add = 0x80u >> ((len - 1) % 8);

	for (;;) {
		unsigned v = bytes[i] + add;

		bytes[i] = (uint8_t)v;
		if (v < 0x100 || i == 0)
			return;
		i--;
		add = 1;
	}
}

int ca_plan_each(const struct ca_plan *plan, uint32_t netns, const struct ca_service *svc,
		 ca_key_fn fn, void *arg)
{
	struct ca_prefix sub = plan->base;
	struct ca_key k;
	int rc;

	sub.len = plan->len;
	for (uint32_t i = 0; i < plan->nkeys; i++) {
		if (i)
			next_prefix(sub.bytes, sub.len);
		for (unsigned j = 0; j < svc->nports; j++) {
			ca_key_of_prefix(&k, netns, svc->ports[j], &sub);
			rc = fn(&k, plan->aggregate, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}
