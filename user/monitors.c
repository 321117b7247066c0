// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * monitors.c - connection-rate monitors as text ("300,6"), and the window
 * arithmetic that reads a ca_rates entry. Pure: no maps, no clock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

#define STR_(x)	#x
#define STR(x)	STR_(x)
#define QUOTE_MAX	80
#define LIST_MAX	200	/* longer than any valid list of CA_MAX_MONITORS */

/* A decimal number in [lo, hi] spanning s..end exactly; NULL or a reason. */
static const char *parse_number(const char *s, const char *end, uint32_t lo, uint32_t hi,
				uint32_t *out)
{
	uint64_t v = 0;

	if (s == end)
		return "a number is missing";
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return "only digits and one comma are allowed";
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > hi)
			return "a number is too large";
	}
	if (v < lo)
		return "sizes and window counts start at 1";
	*out = (uint32_t)v;
	return NULL;
}

static const char *parse_one(const char *s, size_t len, struct ca_monitor *out)
{
	const char *comma = memchr(s, ',', len);
	const char *why;

	if (!comma)
		return "expected SIZE,WINDOWS, e.g. 300,6";
	why = parse_number(s, comma, 1, CA_MONITOR_SIZE_MAX, &out->size);
	if (!why)
		why = parse_number(comma + 1, s + len, 1, CA_RATE_SLOTS, &out->windows);
	return why;
}

static int invalid(struct ca_error *err, const char *what, const char *s, size_t len,
		   const char *why)
{
	char q[QUOTE_MAX];

	return ca_errf(err, -EINVAL, "invalid %s \"%s\": %s (SIZE,WINDOWS: window size in "
		       "seconds, 1.." STR(CA_MONITOR_SIZE_MAX) ", and windows kept, 1.."
		       STR(CA_RATE_SLOTS) ")", what, ca_quote(s, s ? len : 0, q, sizeof(q)), why);
}

int ca_monitor_parse(const char *s, struct ca_monitor *out, struct ca_error *err)
{
	size_t len = s ? strnlen(s, CA_MONITOR_TEXT_MAX + 1) : 0;
	const char *why = !s ? "no text (NULL)" : len > CA_MONITOR_TEXT_MAX ? "too long" :
			  parse_one(s, len, out);

	return why ? invalid(err, "monitor", s, len, why) : 0;
}

int ca_monitor_format(const struct ca_monitor *m, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%u,%u", m->size, m->windows);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static bool is_separator(char c)
{
	return c == ' ' || c == ';';
}

int ca_monitors_parse(const char *s, struct ca_monitor *out, unsigned *n, struct ca_error *err)
{
	size_t len = s ? strnlen(s, LIST_MAX + 1) : 0;
	unsigned count = 0, slots = 0;
	const char *why = NULL, *p, *end;
	struct ca_monitor m;

	if (!s || len > LIST_MAX)
		return invalid(err, "monitor list", s, len, s ? "too long" : "no text (NULL)");
	for (p = s, end = s + len; !why;) {
		const char *stop;

		while (p < end && is_separator(*p))
			p++;
		if (p == end)
			break;
		for (stop = p; stop < end && !is_separator(*stop);)
			stop++;
		why = parse_one(p, (size_t)(stop - p), &m);
		for (unsigned i = 0; !why && i < count; i++)
			if (out[i].size == m.size && out[i].windows == m.windows)
				why = "a monitor is listed twice";
		if (!why && count == CA_MAX_MONITORS)
			why = "more than " STR(CA_MAX_MONITORS) " monitors";
		if (!why && (slots += m.windows) > CA_RATE_SLOTS)
			why = "more than " STR(CA_RATE_SLOTS) " windows over all monitors";
		if (!why)
			out[count++] = m;
		p = stop;
	}
	if (!why && count == 0)
		why = "no monitor; leave the option out to keep no rates";
	if (why)
		return invalid(err, "monitor list", s, len, why);
	*n = count;
	return 0;
}

int ca_monitor_find(const struct ca_config *cfg, const struct ca_monitor *m,
		    struct ca_error *err)
{
	char list[CA_MAX_MONITORS * (CA_MONITOR_TEXT_MAX + 1)] = "", one[CA_MONITOR_TEXT_MAX];
	size_t used = 0;

	for (unsigned i = 0; i < cfg->nr_monitors && i < CA_MAX_MONITORS; i++) {
		struct ca_monitor have = { cfg->mon[i].size, cfg->mon[i].windows };

		if (have.size == m->size && have.windows == m->windows)
			return (int)i;
		ca_monitor_format(&have, one, sizeof(one));
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
					 used ? " " : "", one);
	}
	ca_monitor_format(m, one, sizeof(one));
	if (!cfg->nr_monitors)
		return ca_errf(err, -ENOENT, "monitor %s is not configured: the auditor keeps no "
			       "connection rates; load it with --monitors \"%s\"", one, one);
	return ca_errf(err, -ENOENT, "monitor %s is not configured; the loaded monitors are: %s "
		       "(to change them, unload and load with --monitors)", one, list);
}

uint32_t ca_window_now(const struct ca_config *cfg, unsigned mi, uint64_t boot_ns)
{
	uint64_t secs = (boot_ns + (uint64_t)cfg->realtime_offset_ns) / 1000000000ull;
	uint32_t size = mi < CA_MAX_MONITORS ? cfg->mon[mi].size : 0;

	return size ? (uint32_t)(secs / size) : 0;
}

uint64_t ca_rate_sum(const struct ca_config *cfg, unsigned mi, const struct ca_rate *v,
		     uint32_t now, unsigned start, unsigned end)
{
	const struct ca_monitor_cfg *m;
	uint64_t sum = 0;

	if (mi >= cfg->nr_monitors || mi >= CA_MAX_MONITORS)
		return 0;
	m = &cfg->mon[mi];
	for (unsigned k = start; k <= end && k < m->windows && k <= now; k++) {
		uint32_t w = now - k;
		unsigned i = m->base + w % m->windows;

		if (w != 0 && i < CA_RATE_SLOTS && v->slot[i].window == w)
			sum += v->slot[i].count;
	}
	return sum;
}
