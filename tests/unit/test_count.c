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
#include "store.h"

#define NETNS		4026531840u
#define OTHER_NETNS	4026532000u
#define MAX_ENTRIES	512

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

/* Add one session from addr to port, as admit() in the BPF program does:
 * the exact key, the per-port total, and one entry per configured prefix. */
static void add_session(struct fake_store *f, uint32_t netns, uint16_t port, const char *addr)
{
	const struct ca_config *c = &f->store.cfg;
	struct ca_prefix p = { 0 };
	struct ca_error err;
	struct ca_addr a;
	struct ca_key k;
	bool v4;

	assert_int_equal(ca_addr_parse(addr, &a, &err), 0);
	v4 = a.family == CA_AF_INET;
	p.family = a.family;
	p.len = v4 ? 32 : 128;
	memcpy(p.bytes, a.bytes, sizeof(p.bytes));
	ca_key_of_prefix(&k, netns, port, &p);
	bump(f->peers, &f->npeers, &k);

	for (unsigned i = 0; i < (v4 ? c->nr_v4 : c->nr_v6); i++) {
		p.len = v4 ? c->v4[i] : c->v6[i];
		memcpy(p.bytes, a.bytes, sizeof(p.bytes));
		ca_mask_bytes(p.bytes, p.len);
		ca_key_of_prefix(&k, netns, port, &p);
		bump(f->prefixes, &f->nprefixes, &k);
	}
	memset(&p, 0, sizeof(p));
	ca_key_of_prefix(&k, netns, port, &p);
	bump(f->prefixes, &f->nprefixes, &k);
}

static const struct ca_service smtp = { .name = "SMTP", .ports = { 25, 465, 587 }, .nports = 3 };
static const struct ca_service control = { .name = "Control", .ports = { 2025 }, .nports = 1 };

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

static void test_unconfigured_prefix_scans_once(void **state)
{
	struct fake_store *f = *state;

	populate(f);
	assert_int_equal(count(f, "192.0.2.0/25", &smtp, NULL), 3);
	assert_int_equal(f->scans, 1);
	assert_int_equal(count(f, "192.0.0.0/22", &smtp, NULL), 4);
	assert_int_equal(count(f, "0.0.0.0/1", &smtp, NULL), 0);
	assert_int_equal(count(f, "128.0.0.0/1", &smtp, NULL), 5);
	assert_int_equal(count(f, "[2001:db8::]/32", &smtp, NULL), 4);
	assert_int_equal(count(f, "/24,/56", &smtp, "2001:db8:1:2::"), 3);
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

/* Every prefix length of every family: the aggregate answer (lookup) must
 * equal the scan answer over the exact entries. */
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
		cmocka_unit_test_setup_teardown(test_unconfigured_prefix_scans_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_namespace_is_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregates_agree_with_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_relative_needs_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_failure_propagates, setup, teardown),
	};

	return cmocka_run_group_tests_name("count", tests, NULL, NULL);
}
