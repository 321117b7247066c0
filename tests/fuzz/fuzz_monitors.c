// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_monitors.c - libFuzzer target for the monitor parsers and the window
 * arithmetic of user/monitors.c.
 *
 * Input: a monitor list as text. Every list that parses is checked against
 * the limits and formats back to monitors that parse the same; then a
 * ca_rates entry made from the input's bytes is summed over ranges, which
 * must add up window by window.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "connaudit.h"

#define TEXT_MAX	256

static void check_sums(const struct ca_config *cfg, const uint8_t *data, size_t size)
{
	struct ca_rate v;
	uint32_t now;

	memset(&v, 0, sizeof(v));
	memcpy(&v, data, size < sizeof(v) ? size : sizeof(v));
	now = size >= 4 ? (uint32_t)data[0] << 24 | (uint32_t)data[size - 1] : (uint32_t)size;
	for (unsigned mi = 0; mi < cfg->nr_monitors; mi++) {
		unsigned n = cfg->mon[mi].windows;
		uint64_t whole = ca_rate_sum(cfg, mi, &v, now, 0, n + 3), parts = 0;

		for (unsigned k = 0; k < n + 3; k++) {
			uint64_t one = ca_rate_sum(cfg, mi, &v, now, k, k);

			CHECK(k < n || one == 0);
			parts += one;
		}
		CHECK(whole == parts);
		CHECK(ca_rate_sum(cfg, mi, &v, now, 1, 0) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ca_monitor m[CA_MAX_MONITORS], back;
	struct ca_error err = { "" };
	struct ca_config cfg;
	char text[TEXT_MAX + 1], one[CA_MONITOR_TEXT_MAX];
	unsigned n = 0, slots = 0;
	int rc;

	if (size > TEXT_MAX)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	rc = ca_monitor_parse(text, &back, &err);
	CHECK(rc == 0 || (rc == -EINVAL && err.msg[0]));
	rc = ca_monitors_parse(text, m, &n, &err);
	if (rc) {
		CHECK(rc == -EINVAL && err.msg[0] && strlen(err.msg) < sizeof(err.msg));
		return 0;
	}
	CHECK(n >= 1 && n <= CA_MAX_MONITORS);
	memset(&cfg, 0, sizeof(cfg));
	for (unsigned i = 0; i < n; i++) {
		CHECK(m[i].size >= 1 && m[i].size <= CA_MONITOR_SIZE_MAX);
		CHECK(m[i].windows >= 1 && m[i].windows <= CA_RATE_SLOTS);
		CHECK(ca_monitor_format(&m[i], one, sizeof(one)) == 0);
		CHECK(ca_monitor_parse(one, &back, &err) == 0);
		CHECK(back.size == m[i].size && back.windows == m[i].windows);
		cfg.mon[i] = (struct ca_monitor_cfg){ .size = m[i].size,
						      .windows = (uint8_t)m[i].windows,
						      .base = (uint8_t)slots };
		slots += m[i].windows;
	}
	CHECK(slots <= CA_RATE_SLOTS);
	cfg.nr_monitors = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		CHECK(ca_monitor_find(&cfg, &m[i], &err) == (int)i);
	check_sums(&cfg, data, size);
	return 0;
}
