// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* rates.c - connections per window (ca_rates), summed for a query. */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "store.h"

/* What a rate query sums, by lookups (the plan) or by a scan. */
struct rate_sum {
	struct ca_store *s;
	struct ca_error *err;
	const struct ca_config *cfg;
	uint32_t netns, now;
	unsigned mi, start, end;
	const struct ca_service *svc;
	const struct ca_prefix *prefix;
	uint64_t total;
};

static bool on_service(const struct ca_service *svc, uint16_t port)
{
	for (unsigned i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port)
			return true;
	return false;
}

/* Peers' own entries only: aggregates would count their peers twice. */
static int sum_matching_peers(const struct ca_key *k, const struct ca_rate *v, void *arg)
{
	struct rate_sum *s = arg;
	struct ca_addr a = { .family = k->family };

	if (k->netns != s->netns || k->family == CA_AF_ALL ||
	    k->prefixlen != (k->family == CA_AF_INET ? 32 : 128) || !on_service(s->svc, k->port))
		return 0;
	memcpy(a.bytes, k->addr, sizeof(a.bytes));
	if (ca_prefix_contains(s->prefix, &a))
		s->total += ca_rate_sum(s->cfg, s->mi, v, s->now, s->start, s->end);
	return 0;
}

static int add_lookup(const struct ca_key *k, bool aggregate, void *arg)
{
	struct rate_sum *r = arg;
	struct ca_rate v;
	int rc;

	(void)aggregate;	/* ca_rates holds every kind of key */
	rc = r->s->rate_lookup(r->s, k, &v, r->err);
	if (!rc)
		r->total += ca_rate_sum(r->cfg, r->mi, &v, r->now, r->start, r->end);
	return rc;
}

int ca_connections_core(struct ca_store *s, uint32_t netns, const struct ca_monitor *m,
			const struct ca_cidr *cidr, const struct ca_service *svc,
			const struct ca_addr *peer, unsigned start, unsigned end,
			uint64_t *count, struct ca_error *err)
{
	struct rate_sum sum = { .s = s, .err = err, .cfg = &s->cfg, .netns = netns,
				.start = start, .end = end, .svc = svc };
	struct ca_prefix p;
	struct ca_plan plan;
	uint32_t oldest;
	int rc, mi;

	if (start > end)
		return ca_errf(err, -EINVAL, "window range %u..%u is empty: the start (the newest "
			       "window, 0 is the current one) must not exceed the end", start, end);
	mi = ca_monitor_find(&s->cfg, m, err);
	if (mi < 0)
		return mi;
	rc = ca_cidr_resolve(cidr, peer, &p, err);
	if (rc)
		return rc;
	sum.mi = (unsigned)mi;
	sum.now = ca_window_now(&s->cfg, sum.mi, s->boot_ns(s));
	sum.prefix = &p;
	if (ca_plan_prefix(&s->cfg, &p, svc->nports, &plan))
		rc = ca_plan_each(&plan, netns, svc, add_lookup, &sum);
	else
		rc = s->rate_scan(s, sum_matching_peers, &sum, err);
	if (rc)
		return rc;
	*count = sum.total;
	/* The oldest second the answer covers. */
	oldest = end < s->cfg.mon[mi].windows ? end : s->cfg.mon[mi].windows - 1u;
	oldest = sum.now > oldest ? sum.now - oldest : 0;
	return s->rate_health(s, (uint64_t)oldest * s->cfg.mon[mi].size, err);
}
