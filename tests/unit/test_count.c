// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_count.c - the counting core (user/count.c) against an in-memory store
 * that keeps its aggregates the way the BPF program does.
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
#define OTHER_NETNS	4026532000u
#define MAX_ENTRIES	2048
#define NSAMPLES	400	/* random sessions of the agreement test */

struct fake_store {
	struct ca_store store;	/* first: the core is handed &f->store */
	struct entry {
		struct ca_key key;
		uint64_t count;
	} peers[MAX_ENTRIES], prefixes[MAX_ENTRIES];
	size_t npeers, nprefixes;
	int lookups, scans;
	int health_rc;		/* what health() answers */
	int fail_lookup;	/* non-zero: lookup() fails with this */
};

static struct entry *find(struct entry *v, size_t n, const struct ca_key *k)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&v[i].key, k, sizeof(*k)))
			return &v[i];
	return NULL;
}

static void bump(struct entry *v, size_t *n, const struct ca_key *k)
{
	struct entry *e = find(v, *n, k);

	if (!e) {
		assert_true(*n < MAX_ENTRIES);
		e = &v[(*n)++];
		e->key = *k;
		e->count = 0;
	}
	e->count++;
}

static int fake_lookup(struct ca_store *s, bool aggregate, const struct ca_key *key,
		       uint64_t *count, struct ca_error *err)
{
	struct fake_store *f = (struct fake_store *)s;
	struct entry *e = aggregate ? find(f->prefixes, f->nprefixes, key)
				    : find(f->peers, f->npeers, key);

	f->lookups++;
	if (f->fail_lookup)
		return ca_errf(err, f->fail_lookup, "lookup failed");
	*count = e ? e->count : 0;
	return 0;
}

static int fake_scan(struct ca_store *s, bool aggregate, ca_entry_fn fn, void *arg,
		     struct ca_error *err)
{
	struct fake_store *f = (struct fake_store *)s;
	struct entry *v = aggregate ? f->prefixes : f->peers;
	size_t n = aggregate ? f->nprefixes : f->npeers;

	(void)err;
	f->scans++;
	for (size_t i = 0; i < n; i++) {
		int rc = fn(&v[i].key, v[i].count, arg);

		if (rc)
			return rc;
	}
	return 0;
}

static int fake_health(struct ca_store *s, struct ca_error *err)
{
	struct fake_store *f = (struct fake_store *)s;

	if (f->health_rc < 0)
		return ca_errf(err, f->health_rc, "stale");
	return f->health_rc;
}

static struct fake_store *fake_new(void)
{
	struct fake_store *f = calloc(1, sizeof(*f));
	struct ca_config *c = &f->store.cfg;

	assert_non_null(f);
	f->store.lookup = fake_lookup;
	f->store.scan = fake_scan;
	f->store.health = fake_health;
	c->nr_v4 = 2;
	c->v4[0] = 24;
	c->v4[1] = 16;
	c->nr_v6 = 2;
	c->v6[0] = 64;
	c->v6[1] = 48;
	return f;
}

/* Add one session from a to port, as admit() in the BPF program does:
 * the exact key, the per-port total, and one entry per configured prefix. */
static void add_session_from(struct fake_store *f, uint32_t netns, uint16_t port,
			     const struct ca_addr *a)
{
	const struct ca_config *c = &f->store.cfg;
	struct ca_prefix p = { 0 };
	struct ca_key k;
	bool v4 = a->family == CA_AF_INET;

	p.family = a->family;
	p.len = v4 ? 32 : 128;
	memcpy(p.bytes, a->bytes, sizeof(p.bytes));
	ca_key_of_prefix(&k, netns, port, &p);
	bump(f->peers, &f->npeers, &k);

	for (unsigned i = 0; i < (v4 ? c->nr_v4 : c->nr_v6); i++) {
		p.len = v4 ? c->v4[i] : c->v6[i];
		memcpy(p.bytes, a->bytes, sizeof(p.bytes));
		ca_mask_bytes(p.bytes, p.len);
		ca_key_of_prefix(&k, netns, port, &p);
		bump(f->prefixes, &f->nprefixes, &k);
	}
	memset(&p, 0, sizeof(p));
	ca_key_of_prefix(&k, netns, port, &p);
	bump(f->prefixes, &f->nprefixes, &k);
}

static void add_session(struct fake_store *f, uint32_t netns, uint16_t port, const char *addr)
{
	struct ca_error err;
	struct ca_addr a;

	assert_int_equal(ca_addr_parse(addr, &a, &err), 0);
	add_session_from(f, netns, port, &a);
}

static const struct ca_service smtp = { .name = "SMTP", .ports = { 25, 465, 587 }, .nports = 3 };
static const struct ca_service control = { .name = "Control", .ports = { 2025 }, .nports = 1 };
static const struct ca_service port25 = { .name = "Port25", .ports = { 25 }, .nports = 1 };
static const struct ca_service port587 = { .name = "Port587", .ports = { 587 }, .nports = 1 };

/* Count with cidr/peer strings; asserts the call succeeds with rc. */
static uint64_t count_rc(struct fake_store *f, uint32_t netns, const char *cidr,
			 const struct ca_service *svc, const char *peer, int want_rc)
{
	struct ca_error err = { "" };
	struct ca_cidr c;
	struct ca_addr a;
	uint64_t n = 12345;

	assert_int_equal(ca_cidr_parse(cidr, &c, &err), 0);
	if (peer)
		assert_int_equal(ca_addr_parse(peer, &a, &err), 0);
	assert_int_equal(ca_count_core(&f->store, netns, &c, svc, peer ? &a : NULL, &n, &err),
			 want_rc);
	return n;
}

static uint64_t count(struct fake_store *f, const char *cidr, const struct ca_service *svc,
		      const char *peer)
{
	return count_rc(f, NETNS, cidr, svc, peer, 0);
}

static void populate(struct fake_store *f)
{
	static const char *const v4[] = {
		"192.0.2.1", "192.0.2.1", "192.0.2.77", "192.0.3.5", "198.51.100.9",
	};
	static const char *const v6[] = {
		"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::1", "2001:db8:9::1",
	};

	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		add_session(f, NETNS, 25, v4[i]);
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
		add_session(f, NETNS, 587, v6[i]);
	add_session(f, NETNS, 2025, "192.0.2.1");
	add_session(f, OTHER_NETNS, 25, "192.0.2.1");
}

static void test_configured_prefix_is_one_lookup_per_port(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count(f, "/24", &smtp, "192.0.2.200"), 3);
	assert_int_equal(f->lookups, 3);	/* SMTP has three ports */
	assert_int_equal(f->scans, 0);
	assert_int_equal(count(f, "/16", &smtp, "192.0.99.1"), 4);
	assert_int_equal(count(f, "/64", &smtp, "2001:db8:1:2::ffff"), 2);
	assert_int_equal(count(f, "/48", &smtp, "2001:db8:1::"), 3);
	assert_int_equal(f->scans, 0);
}

static void test_exact_address_uses_peers_map(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count(f, "/32", &smtp, "192.0.2.1"), 2);
	assert_int_equal(count(f, "192.0.2.1", &smtp, NULL), 2);
	assert_int_equal(count(f, "/128", &smtp, "2001:db8:9::1"), 1);
	assert_int_equal(count(f, "[2001:db8:9::1]", &smtp, NULL), 1);
	assert_int_equal(count(f, "/32", &smtp, "::ffff:192.0.2.1"), 2);
	assert_int_equal(f->scans, 0);
}

static void test_total_counts_both_families(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count(f, "/0", &smtp, NULL), 9);
	assert_int_equal(count(f, "/0", &control, NULL), 1);
	assert_int_equal(f->scans, 0);
}

/* Lookups of the sub-prefixes at the next length the maps hold, on one
 * port: 2^(that length - the prefix's) of them. */
static void test_unconfigured_prefix_sums_lookups(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count(f, "192.0.2.0/25", &port25, NULL), 3);	/* 128 addresses */
	assert_int_equal(f->lookups, 128);
	assert_int_equal(count(f, "192.0.2.128/25", &port25, NULL), 0);
	assert_int_equal(count(f, "192.0.2.64/26", &port25, NULL), 1);
	assert_int_equal(count(f, "192.0.0.0/20", &port25, NULL), 4);	/* 16 /24s */
	assert_int_equal(count(f, "192.0.2.0/23", &port25, NULL), 4);
	assert_int_equal(count(f, "192.0.0.0/8", &port25, NULL), 4);	/* 256 /16s */
	assert_int_equal(count(f, "198.0.0.0/8", &port25, NULL), 1);
	assert_int_equal(count(f, "[2001:db8:1::]/56", &port587, NULL), 3);	/* 256 /64s */
	assert_int_equal(count(f, "[2001:db8:1:2::]/63", &port587, NULL), 3);
	assert_int_equal(count(f, "[2001:db8::]/40", &port587, NULL), 4);	/* 256 /48s */
	assert_int_equal(count(f, "[2001:db8:1:2::]/120", &port587, NULL), 2);	/* 256 addresses */
	/* v4-mapped: the IPv4 /25 and /20 again */
	assert_int_equal(count(f, "::ffff:192.0.2.0/121", &port25, NULL), 3);
	assert_int_equal(count(f, "::ffff:192.0.0.0/116", &port25, NULL), 4);
	assert_int_equal(count(f, "/25", &port25, "::ffff:192.0.2.9"), 3);
	assert_int_equal(f->scans, 0);
}

/* Only /24 configured: a /20 is 16 lookups, a /16 256. */
static void test_sub_prefixes_of_one_configured_length(void **state)
{
	struct fake_store *f = *state;

	f->store.cfg.nr_v4 = 1;
	f->store.cfg.nr_v6 = 1;
	populate(f);
	assert_int_equal(count(f, "192.0.0.0/20", &port25, NULL), 4);
	assert_int_equal(f->lookups, 16);
	assert_int_equal(count(f, "192.0.0.0/16", &port25, NULL), 4);
	assert_int_equal(f->lookups, 16 + 256);
	assert_int_equal(count(f, "[2001:db8:1::]/56", &port587, NULL), 3);
	assert_int_equal(f->lookups, 16 + 256 + 256);
	assert_int_equal(f->scans, 0);
}

/* More than CA_PLAN_MAX_LOOKUPS lookups: one scan instead. */
static void test_wide_prefix_scans_once(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count(f, "192.0.2.0/25", &smtp, NULL), 3);	/* 3 ports x 128 */
	assert_int_equal(f->scans, 1);
	assert_int_equal(count(f, "192.0.0.0/9", &smtp, NULL), 4);	/* 3 ports x 128 /16s */
	assert_int_equal(count(f, "0.0.0.0/1", &port25, NULL), 0);
	assert_int_equal(count(f, "128.0.0.0/1", &port25, NULL), 5);
	assert_int_equal(count(f, "0.0.0.0/0", &port25, NULL), 5);	/* IPv4 only */
	assert_int_equal(count(f, "[2001:db8::]/32", &smtp, NULL), 4);
	assert_int_equal(count(f, "[::]/0", &smtp, NULL), 4);		/* IPv6 only */
	assert_int_equal(count(f, "[2001:db8:1:2::]/119", &port587, NULL), 2);
	assert_int_equal(count(f, "/24,/56", &smtp, "2001:db8:1:2::"), 3);
	assert_int_equal(f->scans, 9);
	assert_int_equal(f->lookups, 0);
}

static void test_other_namespace_is_separate(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count_rc(f, OTHER_NETNS, "/0", &smtp, NULL, 0), 1);
	assert_int_equal(count_rc(f, OTHER_NETNS, "192.0.2.0/25", &smtp, NULL, 0), 1);
	assert_int_equal(count_rc(f, 1, "/0", &smtp, NULL, 0), 0);
}

/* Every prefix length of every family: the answer from the aggregates must
 * equal the one from the exact entries alone (no configured lengths: their
 * lookups for the longest prefixes, else a scan). */
static void test_aggregates_agree_with_scan(void **state)
{
	struct fake_store *f = *state;
	struct ca_error err;
	struct ca_cidr c;
	struct ca_addr peer;
	const char *peers[] = { "192.0.2.9", "2001:db8:1:2::9" };

	populate(f);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ca_addr_parse(peers[i], &peer, &err), 0);
		for (unsigned len = 0; len <= (i ? 128u : 32u); len++) {
			uint64_t via_core, via_scan;
			struct fake_store *plain = fake_new();

			memcpy(plain->peers, f->peers, sizeof(f->peers));
			plain->npeers = f->npeers;
			plain->store.cfg.nr_v4 = plain->store.cfg.nr_v6 = 0;
			c = (struct ca_cidr){ .kind = CA_CIDR_PEER, .v4_len = (uint8_t)len,
					      .v6_len = (uint8_t)len };
			assert_int_equal(ca_count_core(&f->store, NETNS, &c, &smtp, &peer,
						       &via_core, &err), 0);
			assert_int_equal(ca_count_core(&plain->store, NETNS, &c, &smtp, &peer,
						       &via_scan, &err), 0);
			assert_int_equal(via_core, via_scan);
			free(plain);
		}
	}
}

/* Random sessions, every prefix length around several of their peers: the
 * core's answer (lookups or a scan, as planned) is the true count; where
 * one port sums lookups and three ports (two of them empty) scan, both
 * give the same. */
static void check_plans_on_random_peers(struct fake_store *f)
{
	static const struct ca_service padded = { .name = "Padded", .ports = { 25, 1, 2 },
						   .nports = 3 };
	struct sample rnd = { 0x2545f491u };
	struct ca_addr peers[NSAMPLES];
	struct ca_error err;
	unsigned compared = 0;

	for (size_t i = 0; i < NSAMPLES; i++) {
		sample_peer(&rnd, &peers[i]);
		add_session_from(f, NETNS, 25, &peers[i]);
	}
	for (size_t i = 0; i < 8; i++) {
		const struct ca_addr *peer = &peers[sample_next(&rnd) % NSAMPLES];
		unsigned full = peer->family == CA_AF_INET ? 32 : 128;

		for (unsigned len = 0; len <= full; len++) {
			struct ca_cidr c = { .kind = CA_CIDR_PEER, .v4_len = (uint8_t)len,
					     .v6_len = (uint8_t)len };
			struct ca_prefix p;
			struct ca_plan plan;
			uint64_t one, three;
			int lookups = f->lookups, scans = f->scans;
			bool planned;

			assert_int_equal(ca_cidr_resolve(&c, peer, &p, &err), 0);
			planned = ca_plan_prefix(&f->store.cfg, &p, 1, &plan);
			assert_int_equal(ca_count_core(&f->store, NETNS, &c, &port25, peer, &one,
						       &err), 0);
			assert_int_equal(one, sample_count_in(peers, NSAMPLES, &p));
			assert_int_equal(f->scans - scans, !planned);
			assert_int_equal(f->lookups - lookups, planned ? plan.nkeys : 0);
			assert_int_equal(ca_count_core(&f->store, NETNS, &c, &padded, peer,
						       &three, &err), 0);
			assert_int_equal(three, one);
			compared += planned && !ca_plan_prefix(&f->store.cfg, &p, 3, &plan);
		}
	}
	assert_true(compared > 0);
}

static void test_plans_agree_on_random_peers(void **state)
{
	check_plans_on_random_peers(*state);
}

/* Lengths off byte boundaries: sub-prefixes carry from byte to byte. */
static void test_plans_agree_on_odd_lengths(void **state)
{
	struct fake_store *f = *state;
	struct ca_error err;
	struct ca_load_opts o = { 0 };

	assert_int_equal(ca_parse_prefix_list("v4:12,20,28;v6:44,60,121", &o, &err), 0);
	f->store.cfg.nr_v4 = o.nr_v4;
	f->store.cfg.nr_v6 = o.nr_v6;
	memcpy(f->store.cfg.v4, o.v4, sizeof(o.v4));
	memcpy(f->store.cfg.v6, o.v6, sizeof(o.v6));
	check_plans_on_random_peers(f);
}

static void test_peer_relative_needs_peer(void **state)
{
	struct fake_store *f = *state;
	struct ca_error err = { "" };
	struct ca_cidr c;
	uint64_t n = 7;

	assert_int_equal(ca_cidr_parse("/24", &c, &err), 0);
	assert_int_equal(ca_count_core(&f->store, NETNS, &c, &smtp, NULL, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "peer"));
	assert_int_equal(n, 7);		/* untouched on error */
}

static void test_health_is_reported(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	f->health_rc = CA_INCOMPLETE;
	assert_int_equal(count_rc(f, NETNS, "/0", &smtp, NULL, CA_INCOMPLETE), 9);
	f->health_rc = -ESTALE;
	count_rc(f, NETNS, "/0", &smtp, NULL, -ESTALE);
}

static void test_lookup_failure_propagates(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	f->fail_lookup = -EACCES;
	count_rc(f, NETNS, "/32", &smtp, "192.0.2.1", -EACCES);
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
		cmocka_unit_test_setup_teardown(test_configured_prefix_is_one_lookup_per_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_address_uses_peers_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_total_counts_both_families, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfigured_prefix_sums_lookups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sub_prefixes_of_one_configured_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wide_prefix_scans_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_namespace_is_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregates_agree_with_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plans_agree_on_random_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plans_agree_on_odd_lengths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_relative_needs_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_failure_propagates, setup, teardown),
	};

	return cmocka_run_group_tests_name("count", tests, NULL, NULL);
}
