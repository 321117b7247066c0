// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_monitors.c - monitor strings and the window arithmetic of
 * user/monitors.c, on ca_rates entries built here slot by slot as the BPF
 * side lays them out.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "connaudit.h"

/* A config with monitors "300,6" (slots 0..5) and "2,5" (slots 6..10). */
static void two_monitors(struct ca_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nr_monitors = 2;
	cfg->mon[0] = (struct ca_monitor_cfg){ .size = 300, .windows = 6, .base = 0 };
	cfg->mon[1] = (struct ca_monitor_cfg){ .size = 2, .windows = 5, .base = 6 };
}

/* Count n connections in window w of monitor mi, as the kernel would. */
static void put(struct ca_rate *v, const struct ca_config *cfg, unsigned mi, uint32_t w,
		uint32_t n)
{
	unsigned i = cfg->mon[mi].base + w % cfg->mon[mi].windows;

	v->slot[i].window = w;
	v->slot[i].count = n;
}

static void test_parse_one(void **state)
{
	struct ca_monitor m;
	struct ca_error err;

	(void)state;
	assert_int_equal(ca_monitor_parse("300,6", &m, &err), 0);
	assert_int_equal(m.size, 300);
	assert_int_equal(m.windows, 6);
	assert_int_equal(ca_monitor_parse("604800,32", &m, &err), 0);
	static const char *const bad[] = { "", "300", "300,", ",6", "300,0", "0,6", "300,33",
					   "604801,1", "300,6,1", " 300,6", "300, 6", "-1,6",
					   "+300,6", "99999999999999999999,1", "300;6", "3e2,6" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		assert_int_equal(ca_monitor_parse(bad[i], &m, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "SIZE,WINDOWS"));
	}
	assert_int_equal(ca_monitor_parse(NULL, &m, &err), -EINVAL);
}

static void test_format_round_trip(void **state)
{
	struct ca_monitor m = { 1800, 4 }, back;
	struct ca_error err;
	char buf[CA_MONITOR_TEXT_MAX];

	(void)state;
	assert_int_equal(ca_monitor_format(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1800,4");
	assert_int_equal(ca_monitor_parse(buf, &back, &err), 0);
	assert_memory_equal(&m, &back, sizeof(m));
	assert_int_equal(ca_monitor_format(&m, buf, 5), -ENOSPC);
}

static void test_parse_list(void **state)
{
	struct ca_monitor m[CA_MAX_MONITORS];
	struct ca_error err;
	unsigned n = 99;

	(void)state;
	assert_int_equal(ca_monitors_parse("300,6 1800,4", m, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(m[1].size, 1800);
	assert_int_equal(ca_monitors_parse("  10,6  ", m, &n, &err), 0);
	assert_int_equal(n, 1);
	/* ';' too: systemd splits $CONNAUDIT_ARGS at spaces, quotes or not */
	assert_int_equal(ca_monitors_parse("300,6;1800,4", m, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(m[1].windows, 4);
	assert_int_equal(ca_monitors_parse(";300,6; ;", m, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ca_monitors_parse("1,8 2,8 3,8 4,8", m, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(ca_monitors_parse("1,8 2,8 3,8 4,9", m, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "windows over all monitors"));
	assert_int_equal(ca_monitors_parse("1,1 2,1 3,1 4,1 5,1", m, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "more than 4 monitors"));
	assert_int_equal(ca_monitors_parse("300,6 300,6", m, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
	assert_int_equal(ca_monitors_parse("   ", m, &n, &err), -EINVAL);
	assert_int_equal(ca_monitors_parse(";", m, &n, &err), -EINVAL);
	assert_int_equal(ca_monitors_parse("300,6,1800,4", m, &n, &err), -EINVAL);
	assert_int_equal(ca_monitors_parse("300,6\t1800,4", m, &n, &err), -EINVAL);
}

static void test_find(void **state)
{
	struct ca_monitor m = { 2, 5 }, unknown = { 2, 6 };
	struct ca_config cfg;
	struct ca_error err;

	(void)state;
	two_monitors(&cfg);
	assert_int_equal(ca_monitor_find(&cfg, &m, &err), 1);
	assert_int_equal(ca_monitor_find(&cfg, &unknown, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "2,6 is not configured"));
	assert_non_null(strstr(err.msg, "300,6 2,5"));
	cfg.nr_monitors = 0;
	assert_int_equal(ca_monitor_find(&cfg, &m, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "--monitors"));
}

/* Windows are aligned to multiples of their size since the epoch. */
static void test_window_now(void **state)
{
	struct ca_config cfg;

	(void)state;
	two_monitors(&cfg);
	cfg.realtime_offset_ns = 1800000000ll * 1000000000ll;	/* boot at 1.8e9 s */
	assert_int_equal(ca_window_now(&cfg, 0, 0), 6000000);
	assert_int_equal(ca_window_now(&cfg, 0, 299ull * 1000000000ull + 999999999ull), 6000000);
	assert_int_equal(ca_window_now(&cfg, 0, 300ull * 1000000000ull), 6000001);
	assert_int_equal(ca_window_now(&cfg, 1, 1999999999ull), 900000000);
	assert_int_equal(ca_window_now(&cfg, 1, 2000000000ull), 900000001);
	assert_int_equal(ca_window_now(&cfg, 3, 0), 0);	/* no such monitor */
}

static void test_sum_ranges(void **state)
{
	struct ca_config cfg;
	struct ca_rate v;
	uint32_t now = 1000;

	(void)state;
	two_monitors(&cfg);
	memset(&v, 0, sizeof(v));
	for (uint32_t k = 0; k < 6; k++)
		put(&v, &cfg, 0, now - k, 10 + k);	/* window k holds 10 + k */
	put(&v, &cfg, 1, now, 7);
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, now, 0, 0), 10);
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, now, 5, 5), 15);
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, now, 0, 5), 10 + 11 + 12 + 13 + 14 + 15);
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, now, 2, 3), 12 + 13);
	/* past the windows kept: 0, and a range reaching past them stops there */
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, now, 6, 9), 0);
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, now, 4, 100), 14 + 15);
	/* monitors do not see each other's slots */
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, now, 0, 4), 7);
	assert_int_equal(ca_rate_sum(&cfg, 2, &v, now, 0, 4), 0);
}

/* A ring slot holds the newest window that fell on it; older ones read 0. */
static void test_stale_slots_wrap(void **state)
{
	struct ca_config cfg;
	struct ca_rate v;

	(void)state;
	two_monitors(&cfg);
	memset(&v, 0, sizeof(v));
	put(&v, &cfg, 1, 100, 3);	/* slot 6 + 100 % 5 = 6 */
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 100, 0, 0), 3);
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 104, 4, 4), 3);
	/* five windows on, the same slot is window 0 again: 100 is not kept */
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 105, 0, 4), 0);
	put(&v, &cfg, 1, 105, 1);
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 105, 0, 4), 1);
	/* window numbers near zero: nothing before window 0 is asked */
	memset(&v, 0, sizeof(v));
	put(&v, &cfg, 1, 1, 4);
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 1, 0, 4), 4);
	/* an unused slot (window 0, its count a tag) and a slot being
	 * reclaimed never count */
	v.slot[6].window = 0;		/* window 0 would fall here */
	v.slot[6].count = 0xdeadbeef;
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 1, 0, 4), 4);
	v.slot[8].window = CA_RATE_DEAD;	/* window 2's slot */
	v.slot[8].count = 9;
	assert_int_equal(ca_rate_sum(&cfg, 1, &v, 2, 0, 4), 4);
	/* the largest window numbers */
	memset(&v, 0, sizeof(v));
	put(&v, &cfg, 0, UINT32_MAX - 1, 2);
	assert_int_equal(ca_rate_sum(&cfg, 0, &v, UINT32_MAX - 1, 0, UINT32_MAX), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_one),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_window_now),
		cmocka_unit_test(test_sum_ranges),
		cmocka_unit_test(test_stale_slots_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
