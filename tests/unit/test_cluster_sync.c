/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_cluster_sync.c - Redis URLs, hash fields, counts and change notices
 * of the cluster agents (user/cluster_sync.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_sync.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- URLs ------------------------------------------------------------------ */

static void test_url_tcp(void **state)
{
	struct ca_redis_url u;
	struct ca_error err;

	(void)state;
	assert_int_equal(ca_redis_url_parse("redis://localhost", &u, &err), 0);
	assert_false(u.unix_socket);
	assert_string_equal(u.host, "localhost");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "");

	assert_int_equal(ca_redis_url_parse("redis://mx:s%40cret@10.0.0.5:6380/3", &u, &err), 0);
	assert_string_equal(u.host, "10.0.0.5");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 3);
	assert_string_equal(u.user, "mx");
	assert_string_equal(u.password, "s@cret");

	assert_int_equal(ca_redis_url_parse("redis://:pw@[2001:db8::1]:7000", &u, &err), 0);
	assert_string_equal(u.host, "2001:db8::1");
	assert_int_equal(u.port, 7000);
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "pw");

	assert_int_equal(ca_redis_url_parse("redis://[::1]/2", &u, &err), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 2);
}

static void test_url_unix(void **state)
{
	struct ca_redis_url u;
	struct ca_error err;

	(void)state;
	assert_int_equal(ca_redis_url_parse("unix:///run/redis/redis.sock", &u, &err), 0);
	assert_true(u.unix_socket);
	assert_string_equal(u.path, "/run/redis/redis.sock");
	assert_int_equal(ca_redis_url_parse("unix:///tmp/r.sock?db=5", &u, &err), 0);
	assert_string_equal(u.path, "/tmp/r.sock");
	assert_int_equal(u.db, 5);
	assert_int_equal(ca_redis_url_parse("unix://mx1:p%3Aw@/run/r.sock", &u, &err), 0);
	assert_string_equal(u.user, "mx1");
	assert_string_equal(u.password, "p:w");
	assert_string_equal(u.path, "/run/r.sock");
	assert_int_equal(ca_redis_url_parse("unix://mx1@/run/r.sock", &u, &err), 0);
	assert_string_equal(u.user, "mx1");
	assert_string_equal(u.password, "");
}

static void test_url_bad(void **state)
{
	static const char *const bad[] = {
		"", "localhost:6379", "http://x", "redis://", "redis://:6379", "redis://h:0",
		"redis://h:65536", "redis://h:12x", "redis://h/x", "redis://h/70000",
		"redis://[::1", "redis://[::1]x", "unix://", "unix://relative.sock",
		"unix:///s?db=x", "unix:///s?foo=1", "unix://u@", "unix://u:%zz@/s", "redis://u:p%4@h", "redis://u:%00@h",
	};
	struct ca_redis_url u;
	struct ca_error err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		if (ca_redis_url_parse(bad[i], &u, &err) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(err.msg, "invalid Redis URL"));
	}
	assert_int_equal(ca_redis_url_parse(NULL, &u, &err), -EINVAL);
}

static void test_url_hides_password(void **state)
{
	struct ca_redis_url u;
	struct ca_error err;

	(void)state;
	assert_int_equal(ca_redis_url_parse("redis://me:topsecret@h:99999", &u, &err), -EINVAL);
	assert_null(strstr(err.msg, "topsecret"));
	assert_non_null(strstr(err.msg, "port"));
}

/* ---- fields and counts ---------------------------------------------------------- */

static struct ca_key peer(const char *addr, uint16_t port)
{
	struct ca_key k;

	memset(&k, 0, sizeof(k));
	k.port = port;
	if (inet_pton(AF_INET, addr, k.addr) == 1) {
		k.family = CA_AF_INET;
		k.prefixlen = 32;
	} else if (inet_pton(AF_INET6, addr, k.addr) == 1) {
		k.family = CA_AF_INET6;
		k.prefixlen = 128;
	} else {
		fail_msg("bad address in the test itself: %s", addr);
	}
	return k;
}

static void test_field_round_trip(void **state)
{
	static const struct { const char *addr, *text; uint16_t port; } cases[] = {
		{ "192.0.2.7", "25|192.0.2.7", 25 },
		{ "2001:db8::1", "587|2001:db8::1", 587 },
		{ "10.0.0.1", "65535|10.0.0.1", 65535 },
	};
	char buf[CA_SYNC_FIELD_MAX];
	struct ca_error err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_key k = peer(cases[i].addr, cases[i].port), back;
		int n = ca_sync_field_encode(&k, buf);

		assert_int_equal(n, (int)strlen(buf));
		assert_string_equal(buf, cases[i].text);
		assert_int_equal(ca_sync_field_decode(buf, (size_t)n, &back, &err), 0);
		assert_memory_equal(&back, &k, sizeof(k));
	}
}

static void test_field_not_peer(void **state)
{
	struct ca_key k = peer("192.0.2.0", 25);
	char buf[CA_SYNC_FIELD_MAX];

	(void)state;
	k.prefixlen = 24;
	assert_int_equal(ca_sync_field_encode(&k, buf), -EINVAL);
	k.prefixlen = 32;
	k.port = 0;
	assert_int_equal(ca_sync_field_encode(&k, buf), -EINVAL);
	k.port = 25;
	k.family = CA_AF_ALL;
	assert_int_equal(ca_sync_field_encode(&k, buf), -EINVAL);
}

static void test_field_refused(void **state)
{
	static const char *const bad[] = {
		"", "|", "25", "25|", "|1.2.3.4", "0|1.2.3.4", "65536|1.2.3.4", "025|1.2.3.4",
		"+25|1.2.3.4", "25|1.2.3.4/24", "25|1.2.3", "25|[::1]", "25|2001:DB8::1",
		"25|2001:db8:0::1", "25|::ffff:1.2.3.4", "25|1.2.3.4 ", "25 |1.2.3.4",
		"25|1.2.3.4|5", "25|01.2.3.4",
	};
	struct ca_error err;
	struct ca_key k;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		if (ca_sync_field_decode(bad[i], strlen(bad[i]), &k, &err) != -EINVAL)
			fail_msg("accepted field \"%s\"", bad[i]);
		assert_non_null(strstr(err.msg, "refused entry"));
	}
	/* a NUL inside the field */
	assert_int_equal(ca_sync_field_decode("25|1.2.3.4\0x", 12, &k, &err), -EINVAL);
}

static void test_count(void **state)
{
	char max[16];
	struct ca_error err;
	uint32_t v;

	(void)state;
	assert_int_equal(ca_sync_count_decode("7", 1, false, &v, &err), 0);
	assert_int_equal(v, 7);
	snprintf(max, sizeof(max), "%u", CA_SYNC_COUNT_MAX);
	assert_int_equal(ca_sync_count_decode(max, strlen(max), false, &v, &err), 0);
	assert_int_equal(v, CA_SYNC_COUNT_MAX);
	snprintf(max, sizeof(max), "%u", CA_SYNC_COUNT_MAX + 1);
	assert_int_equal(ca_sync_count_decode(max, strlen(max), false, &v, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "out of range"));
	assert_int_equal(ca_sync_count_decode("0", 1, false, &v, &err), -ERANGE);
	assert_int_equal(ca_sync_count_decode("0", 1, true, &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ca_sync_count_decode("", 0, true, &v, &err), -EINVAL);
	assert_int_equal(ca_sync_count_decode("07", 2, true, &v, &err), -EINVAL);
	assert_int_equal(ca_sync_count_decode("-1", 2, true, &v, &err), -EINVAL);
	assert_int_equal(ca_sync_count_decode("99999999999", 11, true, &v, &err), -EINVAL);
	assert_int_equal(ca_sync_count_decode("1e3", 3, true, &v, &err), -EINVAL);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(ca_sync_name_ok("mx1.example-a_b", 15));
	assert_false(ca_sync_name_ok("", 0));
	assert_false(ca_sync_name_ok("a b", 3));
	assert_false(ca_sync_name_ok("a:b", 3));
	assert_false(ca_sync_name_ok("a*", 2));
	assert_false(ca_sync_name_ok("{x}", 3));
	assert_false(ca_sync_name_ok("0123456789012345678901234567890123456789012345678", 48));
}

/* ---- notices --------------------------------------------------------------------- */

static void test_notice_round_trip(void **state)
{
	struct ca_sync_header h = { .node = "mx2", .token = "0123456789abcdef", .seq = 42,
				    .flags = CA_SYNC_FLAG_INCOMPLETE, .interval_ms = 100 }, back;
	char msg[512];
	const char *body, *p;
	struct ca_error err;
	struct ca_sync_entry e;
	struct ca_key want;
	int n = ca_sync_header_encode(&h, msg, sizeof(msg));

	(void)state;
	assert_true(n > 0);
	assert_string_equal(msg, "ca1 mx2 0123456789abcdef 42 I 100\n");
	strcat(msg, "25|192.0.2.7 3\n25|2001:db8::1 0\n~25|192.0.2.7 0:5:2,7:9:1\n~25|192.0.2.8 0\n");
	assert_int_equal(ca_sync_header_decode(msg, strlen(msg), &back, &body, &err), 0);
	assert_string_equal(back.node, "mx2");
	assert_string_equal(back.token, h.token);
	assert_int_equal(back.seq, 42);
	assert_int_equal(back.flags, CA_SYNC_FLAG_INCOMPLETE);
	assert_int_equal(back.interval_ms, 100);
	p = body;
	assert_int_equal(ca_sync_next_entry(&p, msg + strlen(msg), &e, &err), 1);
	want = peer("192.0.2.7", 25);
	assert_memory_equal(&e.key, &want, sizeof(want));
	assert_false(e.rate);
	assert_int_equal(e.count, 3);
	assert_int_equal(ca_sync_next_entry(&p, msg + strlen(msg), &e, &err), 1);
	want = peer("2001:db8::1", 25);
	assert_memory_equal(&e.key, &want, sizeof(want));
	assert_int_equal(e.count, 0);
	assert_int_equal(ca_sync_next_entry(&p, msg + strlen(msg), &e, &err), 1);
	want = peer("192.0.2.7", 25);
	assert_memory_equal(&e.key, &want, sizeof(want));
	assert_true(e.rate);
	assert_int_equal(e.ring.slot[0].window, 5);
	assert_int_equal(e.ring.slot[0].count, 2);
	assert_int_equal(e.ring.slot[7].window, 9);
	assert_int_equal(e.ring.slot[7].count, 1);
	assert_int_equal(e.ring.slot[1].count, 0);
	assert_int_equal(ca_sync_next_entry(&p, msg + strlen(msg), &e, &err), 1);
	assert_true(e.rate);
	for (unsigned i = 0; i < CA_RATE_SLOTS; i++)
		assert_int_equal(e.ring.slot[i].count, 0);	/* gone */
	assert_int_equal(ca_sync_next_entry(&p, msg + strlen(msg), &e, &err), 0);

	h.flags = CA_SYNC_FLAG_FULL | CA_SYNC_FLAG_INCOMPLETE | CA_SYNC_FLAG_RATES_LOW;
	ca_sync_header_encode(&h, msg, sizeof(msg));
	assert_non_null(strstr(msg, " FIR "));
	assert_int_equal(ca_sync_header_decode(msg, strlen(msg), &back, &body, &err), 0);
	assert_int_equal(back.flags, h.flags);
	assert_int_equal(ca_sync_header_encode(&h, msg, 10), -ENOSPC);
	/* the header alone, without its newline (as a shell would send it) */
	assert_int_equal(ca_sync_header_decode("ca1 a 0123456789abcdef 1 F 100", 30, &back,
					       &body, &err), 0);
	assert_int_equal(back.flags, CA_SYNC_FLAG_FULL);
}

static void test_notice_refused(void **state)
{
	static const char *const bad[] = {
		"", "ca1 mx2 0123456789abcdef 42 - 100 ", "ca2 mx2 0123456789abcdef 42 - 100\n",
		"ca1 m:x 0123456789abcdef 42 - 100\n", "ca1 mx2 0123456789ABCDEF 42 - 100\n",
		"ca1 mx2 0123456789abcde 42 - 100\n", "ca1 mx2 0123456789abcdef -1 - 100\n",
		"ca1 mx2 0123456789abcdef 42 X 100\n", "ca1 mx2 0123456789abcdef 42 FF 100\n",
		"ca1 mx2 0123456789abcdef 42 - 0\n", "ca1 mx2 0123456789abcdef 42 - 60001\n",
		"ca1 mx2 0123456789abcdef 42 - 100 extra\n", "ca1  mx2 0123456789abcdef 42 - 100\n",
		"ca1 mx2 0123456789abcdef 42 -\n", "ca1 mx2 0123456789abcdef 042 - 100\n",
		"ca1 mx2 0123456789abcdef 42 - 0100\n", "ca1 mx2 0123456789abcdef 42 - 100 \n",
	};
	struct ca_sync_header h;
	struct ca_error err;
	const char *body;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (ca_sync_header_decode(bad[i], strlen(bad[i]), &h, &body, &err) != -EINVAL)
			fail_msg("accepted notice \"%s\"", bad[i]);
}

static void test_entry_refused_moves_on(void **state)
{
	static const char body[] = "25|1.2.3.4 x\n25|1.2.3.4 5000000\nnonsense\n25|1.2.3.5 2\n";
	const char *p = body, *end = body + strlen(body);
	struct ca_error err;
	struct ca_sync_entry e;

	(void)state;
	assert_int_equal(ca_sync_next_entry(&p, end, &e, &err), -EINVAL);
	assert_int_equal(ca_sync_next_entry(&p, end, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "out of range"));
	assert_int_equal(ca_sync_next_entry(&p, end, &e, &err), -EINVAL);
	assert_int_equal(ca_sync_next_entry(&p, end, &e, &err), 1);
	assert_int_equal(e.count, 2);
	assert_int_equal(ca_sync_next_entry(&p, end, &e, &err), 0);
}

/* Rate values: one spelling each, and nothing a ring cannot hold. */
static void test_rate_value(void **state)
{
	static const char *const bad[] = {
		"", "00", "1", "0:5", "0:5:", "0:5:0", "0:0:3", "32:5:3", "0:5:3,", ",0:5:3",
		"1:5:3,0:6:1", "1:5:3,1:6:1", "0:05:3", "0:5:03", "0:4294967295:1",
		"0:5:4294967296", "0:5:3 ", "0:5:3,,1:5:3", "-1:5:3", "0:5:3:4",
	};
	struct ca_rate r, back;
	struct ca_error err;
	char text[CA_SYNC_RATE_MAX];
	int n;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (ca_sync_rate_decode(bad[i], strlen(bad[i]), &r, &err) != -EINVAL)
			fail_msg("accepted rate value \"%s\"", bad[i]);
	/* every slot full, with the largest numbers: the buffer holds it */
	for (unsigned i = 0; i < CA_RATE_SLOTS; i++)
		r.slot[i] = (struct ca_rate_slot){ CA_RATE_DEAD - 1, UINT32_MAX };
	n = ca_sync_rate_encode(&r, text);
	assert_int_equal(n, (int)strlen(text));
	assert_true((size_t)n < sizeof(text));
	assert_int_equal(ca_sync_rate_decode(text, strlen(text), &back, &err), 0);
	assert_memory_equal(&r, &back, sizeof(r));
	memset(&r, 0, sizeof(r));
	ca_sync_rate_encode(&r, text);
	assert_string_equal(text, "0");
}

/* Only windows a monitor still keeps, with a count, are published. */
static void test_rate_live(void **state)
{
	struct ca_config cfg = { .nr_monitors = 2 };
	struct ca_rate v = { 0 }, live;
	uint64_t now_ns = 1000ull * 1000000000ull;	/* second 1000, offset 0 */

	(void)state;
	cfg.mon[0] = (struct ca_monitor_cfg){ .size = 10, .windows = 3, .base = 0 };
	cfg.mon[1] = (struct ca_monitor_cfg){ .size = 100, .windows = 2, .base = 3 };
	v.slot[0] = (struct ca_rate_slot){ 99, 4 };	/* window 99 of 10 s: kept */
	v.slot[1] = (struct ca_rate_slot){ 100, 2 };	/* the current one */
	v.slot[2] = (struct ca_rate_slot){ 98, 1 };	/* two back: kept */
	v.slot[3] = (struct ca_rate_slot){ 8, 7 };	/* 100 s windows: two back, gone */
	v.slot[4] = (struct ca_rate_slot){ 9, 0 };	/* current, but no count */
	v.slot[5] = (struct ca_rate_slot){ 100, 9 };	/* past the monitors' slots */
	assert_int_equal(ca_sync_rate_live(&cfg, &v, now_ns, &live), 3);
	assert_int_equal(live.slot[0].count, 4);
	assert_int_equal(live.slot[1].count, 2);
	assert_int_equal(live.slot[2].count, 1);
	for (unsigned i = 3; i < CA_RATE_SLOTS; i++)
		assert_int_equal(live.slot[i].count, 0);
	v.slot[2] = (struct ca_rate_slot){ 97, 1 };	/* three back: past 3 windows */
	v.slot[0] = (struct ca_rate_slot){ CA_RATE_DEAD, 4 };
	assert_int_equal(ca_sync_rate_live(&cfg, &v, now_ns, &live), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_value),
		cmocka_unit_test(test_rate_live),
		cmocka_unit_test(test_url_tcp),
		cmocka_unit_test(test_url_unix),
		cmocka_unit_test(test_url_bad),
		cmocka_unit_test(test_url_hides_password),
		cmocka_unit_test(test_field_round_trip),
		cmocka_unit_test(test_field_not_peer),
		cmocka_unit_test(test_field_refused),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_notice_round_trip),
		cmocka_unit_test(test_notice_refused),
		cmocka_unit_test(test_entry_refused_moves_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
