// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_rates.c - the rate query (user/rates.c) against an in-memory store
 * that fills its ca_rates entries the way the BPF program does: every
 * connection goes into the current window of every monitor, under the exact
 * peer, each configured prefix shorter than an address and the port total.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "sample_peers.h"
#include "store.h"

#define NETNS		4026531840u
#define MAX_ENTRIES	2048
#define NSAMPLES	400	/* random connections of the agreement test */
#define NOW_SEC		1800000000u	/* the fake clock: boot 0 is this wall second */

struct fake_rates {
	struct ca_store store;	/* first: the core is handed &f->store */
	struct entry {
		struct ca_key key;
		struct ca_rate v;
	} e[MAX_ENTRIES];
	size_t n;
	uint64_t boot_ns;
	int lookups, scans, health_rc;
	uint64_t health_since;
};

static int fake_rate_lookup(struct ca_store *s, const struct ca_key *key, struct ca_rate *out,
			    struct ca_error *err)
{
	struct fake_rates *f = (struct fake_rates *)s;

	(void)err;
	f->lookups++;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < f->n; i++)
		if (!memcmp(&f->e[i].key, key, sizeof(*key)))
			*out = f->e[i].v;
	return 0;
}

static int fake_rate_scan(struct ca_store *s, ca_rate_fn fn, void *arg, struct ca_error *err)
{
	struct fake_rates *f = (struct fake_rates *)s;

	(void)err;
	f->scans++;
	for (size_t i = 0; i < f->n; i++) {
		int rc = fn(&f->e[i].key, &f->e[i].v, arg);

		if (rc)
			return rc;
	}
	return 0;
}

static int fake_rate_health(struct ca_store *s, uint64_t since, struct ca_error *err)
{
	struct fake_rates *f = (struct fake_rates *)s;

	(void)err;
	f->health_since = since;
	return f->health_rc;
}

static uint64_t fake_boot_ns(struct ca_store *s)
{
	return ((struct fake_rates *)s)->boot_ns;
}

/* Monitors "2,5" (slots 0..4) and "300,6" (slots 5..10); prefixes /24 /16
 * and /64 /48, plus /32 configured (the peer's own entry answers it). */
static struct fake_rates *fake_new(void)
{
	struct fake_rates *f = calloc(1, sizeof(*f));
	struct ca_config *c = &f->store.cfg;

	assert_non_null(f);
	f->store.rate_lookup = fake_rate_lookup;
	f->store.rate_scan = fake_rate_scan;
	f->store.rate_health = fake_rate_health;
	f->store.boot_ns = fake_boot_ns;
	c->nr_v4 = 3;
	c->v4[0] = 24;
	c->v4[1] = 16;
	c->v4[2] = 32;
	c->nr_v6 = 2;
	c->v6[0] = 64;
	c->v6[1] = 48;
	c->nr_monitors = 2;
	c->mon[0] = (struct ca_monitor_cfg){ .size = 2, .windows = 5, .base = 0 };
	c->mon[1] = (struct ca_monitor_cfg){ .size = 300, .windows = 6, .base = 5 };
	c->realtime_offset_ns = (int64_t)NOW_SEC * 1000000000;
	return f;
}

static void bump(struct fake_rates *f, const struct ca_key *k, uint64_t sec)
{
	const struct ca_config *c = &f->store.cfg;
	struct entry *e = NULL;

	for (size_t i = 0; i < f->n && !e; i++)
		if (!memcmp(&f->e[i].key, k, sizeof(*k)))
			e = &f->e[i];
	if (!e) {
		assert_true(f->n < MAX_ENTRIES);
		e = &f->e[f->n++];
		memset(e, 0, sizeof(*e));
		e->key = *k;
	}
	for (unsigned m = 0; m < c->nr_monitors; m++) {
		uint32_t w = (uint32_t)(sec / c->mon[m].size);
		struct ca_rate_slot *s = &e->v.slot[c->mon[m].base + w % c->mon[m].windows];

		if (s->window != w)
			*s = (struct ca_rate_slot){ w, 0 };
		s->count++;
	}
}

/* One connection from a to port at wall-clock second sec. */
static void connect_from(struct fake_rates *f, uint16_t port, const struct ca_addr *a,
			 uint64_t sec)
{
	const struct ca_config *c = &f->store.cfg;
	struct ca_prefix p = { 0 };
	struct ca_key k;
	bool v4 = a->family == CA_AF_INET;

	p.family = a->family;
	p.len = v4 ? 32 : 128;
	memcpy(p.bytes, a->bytes, sizeof(p.bytes));
	ca_key_of_prefix(&k, NETNS, port, &p);
	bump(f, &k, sec);
	for (unsigned i = 0; i < (v4 ? c->nr_v4 : c->nr_v6); i++) {
		p.len = v4 ? c->v4[i] : c->v6[i];
		if (p.len == (v4 ? 32 : 128))
			continue;
		memcpy(p.bytes, a->bytes, sizeof(p.bytes));
		ca_mask_bytes(p.bytes, p.len);
		ca_key_of_prefix(&k, NETNS, port, &p);
		bump(f, &k, sec);
	}
	memset(&p, 0, sizeof(p));
	ca_key_of_prefix(&k, NETNS, port, &p);
	bump(f, &k, sec);
}

static void connect_at(struct fake_rates *f, uint16_t port, const char *addr, uint64_t sec)
{
	struct ca_error err;
	struct ca_addr a;

	assert_int_equal(ca_addr_parse(addr, &a, &err), 0);
	connect_from(f, port, &a, sec);
}

static const struct ca_service smtp = { .name = "SMTP", .ports = { 25, 587 }, .nports = 2 };
static const struct ca_service port25 = { .name = "Port25", .ports = { 25 }, .nports = 1 };

static int ask_on(struct fake_rates *f, const struct ca_service *svc, struct ca_monitor m,
		  const char *cidr, const char *peer, unsigned start, unsigned end, uint64_t *n)
{
	struct ca_error err = { "" };
	struct ca_cidr c;
	struct ca_addr a;

	assert_int_equal(ca_cidr_parse(cidr, &c, &err), 0);
	if (peer)
		assert_int_equal(ca_addr_parse(peer, &a, &err), 0);
	return ca_connections_core(&f->store, NETNS, &m, &c, svc, peer ? &a : NULL, start,
				   end, n, &err);
}

static int ask(struct fake_rates *f, struct ca_monitor m, const char *cidr, const char *peer,
	       unsigned start, unsigned end, uint64_t *n)
{
	return ask_on(f, &smtp, m, cidr, peer, start, end, n);
}

static uint64_t rate(struct fake_rates *f, struct ca_monitor m, const char *cidr,
		     const char *peer, unsigned start, unsigned end)
{
	uint64_t n = 12345;

	assert_int_equal(ask(f, m, cidr, peer, start, end, &n), 0);
	return n;
}

static const struct ca_monitor two_s = { 2, 5 }, five_min = { 300, 6 };

/* Now is second NOW_SEC + 10: window 0 of "2,5" holds seconds +10 and +11,
 * window 2 second +7, and +1 is window 5, no longer kept; every connection
 * but the one at -1 (window 1) is in window 0 of "300,6". */
static void populate(struct fake_rates *f)
{
	f->boot_ns = 10ull * 1000000000ull;
	/* in time order, as the kernel sees them */
	connect_at(f, 25, "2001:db8:1:3::1", NOW_SEC - 1);
	connect_at(f, 25, "192.0.3.5", NOW_SEC + 1);
	connect_at(f, 25, "192.0.2.1", NOW_SEC + 7);
	connect_at(f, 587, "192.0.2.77", NOW_SEC + 7);
	connect_at(f, 25, "192.0.2.1", NOW_SEC + 10);
	connect_at(f, 25, "2001:db8:1:2::1", NOW_SEC + 10);
	connect_at(f, 2025, "192.0.2.1", NOW_SEC + 10);	/* not SMTP */
}

static void test_configured_prefix_is_one_lookup_per_port(void **state)
{
	struct fake_rates *f = *state;

	populate(f);
	assert_int_equal(rate(f, two_s, "/24", "192.0.2.9", 0, 0), 1);
	assert_int_equal(f->lookups, 2);	/* two SMTP ports */
	assert_int_equal(rate(f, two_s, "/24", "192.0.2.9", 0, 4), 3);
	assert_int_equal(rate(f, two_s, "/24", "192.0.2.9", 1, 1), 0);
	assert_int_equal(rate(f, two_s, "/24", "192.0.2.9", 2, 2), 2);
	assert_int_equal(rate(f, two_s, "/16", "192.0.9.9", 0, 4), 3);	/* +1 is not kept */
	assert_int_equal(rate(f, five_min, "/16", "192.0.9.9", 0, 0), 4);
	assert_int_equal(rate(f, two_s, "/32", "192.0.2.1", 0, 2), 2);
	assert_int_equal(rate(f, two_s, "/32", "192.0.2.1", 0, 0), 1);
	assert_int_equal(rate(f, two_s, "/64", "2001:db8:1:2::9", 0, 0), 1);
	assert_int_equal(rate(f, five_min, "/48", "2001:db8:1::", 0, 0), 1);
	assert_int_equal(rate(f, five_min, "/48", "2001:db8:1::", 1, 1), 1);	/* second -1 */
	assert_int_equal(rate(f, five_min, "/0", NULL, 0, 5), 6);
	assert_int_equal(rate(f, two_s, "/0", NULL, 0, 0), 2);
	assert_int_equal(f->scans, 0);
}

static uint64_t rate_on(struct fake_rates *f, const struct ca_service *svc, struct ca_monitor m,
			const char *cidr, unsigned start, unsigned end)
{
	uint64_t n = 12345;

	assert_int_equal(ask_on(f, svc, m, cidr, NULL, start, end, &n), 0);
	return n;
}

/* Lookups of the sub-prefixes at the next length ca_rates holds. */
static void test_unconfigured_prefix_sums_lookups(void **state)
{
	struct fake_rates *f = *state;

	populate(f);
	assert_int_equal(rate_on(f, &port25, five_min, "192.0.2.0/25", 0, 0), 2);
	assert_int_equal(f->lookups, 128);			/* its addresses */
	assert_int_equal(rate_on(f, &port25, five_min, "192.0.0.0/20", 0, 0), 3);
	assert_int_equal(f->lookups, 128 + 16);			/* its /24s */
	assert_int_equal(rate_on(f, &port25, five_min, "[2001:db8:1::]/56", 0, 1), 2);
	assert_int_equal(f->lookups, 128 + 16 + 256);		/* its /64s */
	assert_int_equal(rate_on(f, &port25, two_s, "::ffff:192.0.2.0/121", 0, 2), 2);
	/* two ports x 128 addresses: at the cap, still lookups */
	assert_int_equal(rate(f, five_min, "192.0.2.0/25", NULL, 0, 0), 3);
	assert_int_equal(f->scans, 0);
}

static void test_wide_prefix_scans_peers_only(void **state)
{
	struct fake_rates *f = *state;

	populate(f);
	assert_int_equal(rate(f, five_min, "192.0.0.0/8", NULL, 0, 0), 4);
	assert_int_equal(rate(f, five_min, "[2001:db8::]/32", NULL, 0, 5), 2);
	assert_int_equal(rate(f, five_min, "0.0.0.0/0", NULL, 0, 5), 4);
	assert_int_equal(f->scans, 3);
	assert_int_equal(f->lookups, 0);
}

/* Random connections, every prefix length around several of their peers:
 * the answer is the true count, and where one port sums lookups and three
 * (two of them empty) scan, both agree. */
static void test_plans_agree_on_random_peers(void **state)
{
	static const struct ca_service padded = { .name = "Padded", .ports = { 25, 1, 2 },
						   .nports = 3 };
	struct fake_rates *f = *state;
	struct sample rnd = { 0x9e3779b9u };
	struct ca_addr peers[NSAMPLES];
	struct ca_error err;
	unsigned compared = 0;

	f->boot_ns = 10ull * 1000000000ull;
	for (size_t i = 0; i < NSAMPLES; i++) {
		sample_peer(&rnd, &peers[i]);
		connect_from(f, 25, &peers[i], NOW_SEC + 10);
	}
	for (size_t i = 0; i < 6; i++) {
		const struct ca_addr *peer = &peers[sample_next(&rnd) % NSAMPLES];
		unsigned full = peer->family == CA_AF_INET ? 32 : 128;

		for (unsigned len = 0; len <= full; len++) {
			struct ca_cidr c = { .kind = CA_CIDR_PEER, .v4_len = (uint8_t)len,
					     .v6_len = (uint8_t)len };
			struct ca_prefix p;
			struct ca_plan plan;
			uint64_t one, three;
			int scans = f->scans;
			bool planned;

			assert_int_equal(ca_cidr_resolve(&c, peer, &p, &err), 0);
			planned = ca_plan_prefix(&f->store.cfg, &p, 1, &plan);
			assert_int_equal(ca_connections_core(&f->store, NETNS, &two_s, &c, &port25,
							     peer, 0, 0, &one, &err), 0);
			assert_int_equal(one, sample_count_in(peers, NSAMPLES, &p));
			assert_int_equal(f->scans - scans, !planned);
			assert_int_equal(ca_connections_core(&f->store, NETNS, &two_s, &c, &padded,
							     peer, 0, 0, &three, &err), 0);
			assert_int_equal(three, one);
			compared += planned && !ca_plan_prefix(&f->store.cfg, &p, 3, &plan);
		}
	}
	assert_true(compared > 0);
}

/* Every prefix length: the answer from the aggregates equals the one from
 * the peers' entries alone (their lookups for the longest prefixes, else a
 * scan). */
static void test_aggregates_agree_with_scan(void **state)
{
	struct fake_rates *f = *state;
	const char *peers[] = { "192.0.2.9", "2001:db8:1:2::9" };
	struct ca_error err;

	populate(f);
	for (int i = 0; i < 2; i++) {
		struct ca_addr peer;

		assert_int_equal(ca_addr_parse(peers[i], &peer, &err), 0);
		for (unsigned len = 0; len <= (i ? 128u : 32u); len++) {
			struct ca_cidr c = { .kind = CA_CIDR_PEER, .v4_len = (uint8_t)len,
					     .v6_len = (uint8_t)len };
			struct fake_rates *plain = fake_new();
			uint64_t via_core, via_scan;

			memcpy(plain->e, f->e, sizeof(f->e));
			plain->n = f->n;
			plain->boot_ns = f->boot_ns;
			plain->store.cfg.nr_v4 = plain->store.cfg.nr_v6 = 0;
			for (unsigned s = 0; s < 6; s++) {
				assert_int_equal(ca_connections_core(&f->store, NETNS, &five_min, &c,
								     &smtp, &peer, 0, s, &via_core,
								     &err), 0);
				assert_int_equal(ca_connections_core(&plain->store, NETNS,
								     &five_min, &c, &smtp, &peer, 0,
								     s, &via_scan, &err), 0);
				assert_int_equal(via_core, via_scan);
			}
			free(plain);
		}
	}
}

static void test_bad_queries(void **state)
{
	struct fake_rates *f = *state;
	struct ca_monitor unknown = { 300, 4 };
	uint64_t n = 7;

	populate(f);
	assert_int_equal(ask(f, two_s, "/0", NULL, 2, 1, &n), -EINVAL);
	assert_int_equal(ask(f, unknown, "/0", NULL, 0, 0, &n), -ENOENT);
	assert_int_equal(ask(f, two_s, "/24", NULL, 0, 0, &n), -EINVAL);	/* no peer */
	assert_int_equal(n, 7);
	assert_int_equal(f->lookups + f->scans, 0);
}

/* The health check is asked about the oldest second the answer covers. */
static void test_health_since_oldest_window(void **state)
{
	struct fake_rates *f = *state;
	uint64_t n;

	populate(f);
	rate(f, two_s, "/0", NULL, 0, 0);
	assert_int_equal(f->health_since, NOW_SEC + 10);
	rate(f, two_s, "/0", NULL, 0, 2);
	assert_int_equal(f->health_since, NOW_SEC + 6);
	rate(f, two_s, "/0", NULL, 1, 99);	/* only the windows kept */
	assert_int_equal(f->health_since, NOW_SEC + 2);
	f->health_rc = CA_INCOMPLETE;
	assert_int_equal(ask(f, two_s, "/0", NULL, 0, 0, &n), CA_INCOMPLETE);
	assert_int_equal(n, 2);
}

static int setup(void **state)
{
	*state = fake_new();
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_configured_prefix_is_one_lookup_per_port,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfigured_prefix_sums_lookups, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wide_prefix_scans_peers_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plans_agree_on_random_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregates_agree_with_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_since_oldest_window, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
