// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "store.h"

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

bool ca_lookup_table(const struct ca_config *cfg, const struct ca_prefix *p,
			 bool *aggregate)
{
	const uint8_t *lens = p->family == CA_AF_INET ? cfg->v4 : cfg->v6;
	unsigned nr = p->family == CA_AF_INET ? cfg->nr_v4 : cfg->nr_v6;

	if (p->family == CA_AF_ALL) {
		*aggregate = true;	/* the per-port total */
		return true;
	}
	if (p->len == (p->family == CA_AF_INET ? 32 : 128)) {
		*aggregate = false;
		return true;
	}
	for (unsigned i = 0; i < nr && i < CA_MAX_PREFIXES; i++) {
		if (lens[i] == p->len) {
			*aggregate = true;
			return true;
		}
	}
	return false;
}

struct scan_sum {
	uint32_t netns;
	const struct ca_service *svc;
	const struct ca_prefix *prefix;
	uint64_t total;
};

static int sum_matching(const struct ca_key *k, uint64_t count, void *arg)
{
	struct scan_sum *s = arg;
	struct ca_addr a = { .family = k->family };

	if (k->netns != s->netns)
		return 0;
	memcpy(a.bytes, k->addr, sizeof(a.bytes));
	if (!ca_prefix_contains(s->prefix, &a))
		return 0;
	for (unsigned i = 0; i < s->svc->nports; i++) {
		if (s->svc->ports[i] == k->port) {
			s->total += count;
			break;
		}
	}
	return 0;
}

int ca_count_core(struct ca_store *s, uint32_t netns, const struct ca_cidr *cidr,
		  const struct ca_service *svc, const struct ca_addr *peer,
		  uint64_t *count, struct ca_error *err)
{
	struct ca_prefix p;
	struct ca_key k;
	bool aggregate;
	uint64_t total = 0, one;
	int rc;

	rc = ca_cidr_resolve(cidr, peer, &p, err);
	if (rc)
		return rc;
	if (ca_lookup_table(&s->cfg, &p, &aggregate)) {
		for (unsigned i = 0; i < svc->nports; i++) {
			ca_key_of_prefix(&k, netns, svc->ports[i], &p);
			rc = s->lookup(s, aggregate, &k, &one, err);
			if (rc)
				return rc;
			total += one;
		}
	} else {
		struct scan_sum sum = { .netns = netns, .svc = svc, .prefix = &p };

		rc = s->scan(s, false, sum_matching, &sum, err);
		if (rc)
			return rc;
		total = sum.total;
	}
	*count = total;
	return s->health(s, err);
}
