// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* count.c - open sessions from a prefix: lookups where the plan allows, else a scan. */
#include <string.h>

#include "store.h"

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

/* One lookup of the plan, added up. */
struct lookup_sum {
	struct ca_store *s;
	struct ca_error *err;
	uint64_t total;
};

static int add_lookup(const struct ca_key *k, bool aggregate, void *arg)
{
	struct lookup_sum *sum = arg;
	uint64_t one;
	int rc = sum->s->lookup(sum->s, aggregate, k, &one, sum->err);

	if (!rc)
		sum->total += one;
	return rc;
}

int ca_count_core(struct ca_store *s, uint32_t netns, const struct ca_cidr *cidr,
		  const struct ca_service *svc, const struct ca_addr *peer,
		  uint64_t *count, struct ca_error *err)
{
	struct ca_prefix p;
	struct ca_plan plan;
	uint64_t total;
	int rc;

	rc = ca_cidr_resolve(cidr, peer, &p, err);
	if (rc)
		return rc;
	if (ca_plan_prefix(&s->cfg, &p, svc->nports, &plan)) {
		struct lookup_sum sum = { .s = s, .err = err };

		rc = ca_plan_each(&plan, netns, svc, add_lookup, &sum);
		total = sum.total;
	} else {
		struct scan_sum sum = { .netns = netns, .svc = svc, .prefix = &p };

		rc = s->scan(s, false, sum_matching, &sum, err);
		total = sum.total;
	}
	if (rc)
		return rc;
	*count = total;
	return s->health(s, err);
}
