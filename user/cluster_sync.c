// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster_sync.c - the cluster agents' wire formats (see cluster_sync.h).
 * Everything read from Redis is untrusted: a field or count is accepted only
 * in the one canonical form this file writes, and within range.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_sync.h"
#include "errors.h"
#include "store.h"

#define QUOTE_MAX	80
#define DEFAULT_PORT	6379
#define DB_MAX		65535

/* ---- Redis URLs ------------------------------------------------------------ */

static int url_error(struct ca_error *err, const char *shown, const char *why)
{
	char q[QUOTE_MAX];

	return ca_errf(err, -EINVAL, "invalid Redis URL \"%s\": %s (forms: "
		       "redis://[user[:password]@]host[:port][/db], unix://[user[:password]@]/path)",
		       ca_quote(shown, strlen(shown), q, sizeof(q)), why);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %-decode s[0..len) into out (size cap); false on a bad escape, a NUL or
 * too long a result. */
static bool percent_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			if (len - i < 3 || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
				return false;
			c = hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]);
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

/* Decimal without sign, at most max; false otherwise. */
static bool parse_uint(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* "user:password@" or "password@" parts before host; `shown` hides them. */
static int parse_userinfo(const char *url, const char *s, size_t len,
			  struct ca_redis_url *out, struct ca_error *err)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen = colon ? (size_t)(colon - s) : len;

	if (!percent_decode(s, ulen, out->user, sizeof(out->user)))
		return url_error(err, url, "bad user name (too long, or a bad %-escape)");
	if (colon && !percent_decode(colon + 1, len - ulen - 1, out->password,
				     sizeof(out->password)))
		return url_error(err, url, "bad password (too long, or a bad %-escape)");
	return 0;
}

/* "host", "host:port", "[v6]" or "[v6]:port" in s[0..len). */
/* "unix://[user[:password]@]/path[?db=N]" after the scheme: rest. */
static int parse_unix_url(const char *url, const char *rest, struct ca_redis_url *out,
			  struct ca_error *err)
{
	const char *at = rest[0] == '/' ? NULL : strstr(rest, "@/");
	const char *q;
	size_t len;

	if (at) {
		int rc = parse_userinfo(url, rest, (size_t)(at - rest), out, err);

		if (rc)
			return rc;
		rest = at + 1;
		url = "unix://***@/...";	/* quote no password from here on */
	}
	q = strchr(rest, '?');
	len = q ? (size_t)(q - rest) : strlen(rest);
	if (len == 0 || rest[0] != '/')
		return url_error(err, url, "unix:// needs an absolute path (unix:///run/redis.sock)");
	if (len >= sizeof(out->path))
		return url_error(err, url, "the socket path is longer than 107 bytes");
	memcpy(out->path, rest, len);
	out->path[len] = '\0';
	if (q && (strncmp(q, "?db=", 4) != 0 || !parse_uint(q + 4, strlen(q + 4), DB_MAX, &out->db)))
		return url_error(err, url, "the only query is ?db=N (0..65535)");
	out->unix_socket = true;
	return 0;
}

static int parse_host_port(const char *url, const char *s, size_t len, struct ca_redis_url *out,
			   struct ca_error *err)
{
	const char *end = s + len, *host = s, *host_end, *port = NULL;

	if (len && s[0] == '[') {
		host = s + 1;
		host_end = memchr(host, ']', len - 1);
		if (!host_end)
			return url_error(err, url, "an IPv6 host needs its closing ']'");
		if (host_end + 1 < end && host_end[1] != ':')
			return url_error(err, url, "after [IPv6] comes :port or /db");
		if (host_end + 1 < end)
			port = host_end + 2;
	} else {
		host_end = memchr(s, ':', len);
		if (host_end)
			port = host_end + 1;
		else
			host_end = end;
	}
	if (host_end == host)
		return url_error(err, url, "no host");
	if ((size_t)(host_end - host) >= sizeof(out->host))
		return url_error(err, url, "the host name is too long");
	memcpy(out->host, host, (size_t)(host_end - host));
	out->host[host_end - host] = '\0';
	out->port = DEFAULT_PORT;
	if (port && (!parse_uint(port, (size_t)(end - port), 65535, &out->port) || out->port == 0))
		return url_error(err, url, "the port must be 1..65535");
	return 0;
}

int ca_redis_url_parse(const char *url, struct ca_redis_url *out, struct ca_error *err)
{
	static const char scheme[] = "redis://", unix_scheme[] = "unix://";
	const char *s, *at, *slash, *end;

	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return url_error(err, "", "empty");
	if (strncmp(url, unix_scheme, sizeof(unix_scheme) - 1) == 0)
		return parse_unix_url(url, url + sizeof(unix_scheme) - 1, out, err);
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return url_error(err, url, "it must start with redis:// or unix://");
	s = url + sizeof(scheme) - 1;
	end = s + strlen(s);
	slash = strchr(s, '/');
	at = memrchr(s, '@', (size_t)((slash ? slash : end) - s));
	if (at) {
		int rc = parse_userinfo("redis://***@...", s, (size_t)(at - s), out, err);

		if (rc)
			return rc;
		s = at + 1;
		url = "redis://***@...";	/* quote no password from here on */
	}
	if (parse_host_port(url, s, (size_t)((slash ? slash : end) - s), out, err))
		return -EINVAL;
	if (slash && slash[1] && !parse_uint(slash + 1, strlen(slash + 1), DB_MAX, &out->db))
		return url_error(err, url, "the database after / must be a number 0..65535");
	return 0;
}

/* ---- names and fields -------------------------------------------------------- */

bool ca_sync_name_ok(const char *s, size_t len)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "abcdefghijklmnopqrstuvwxyz0123456789_.-";

	if (len == 0 || len >= CA_CLUSTER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !memchr(allowed, s[i], sizeof(allowed) - 1))
			return false;
	return true;
}

int ca_sync_field_encode(const struct ca_key *k, char buf[CA_SYNC_FIELD_MAX])
{
	struct ca_addr a = { .family = k->family };
	char text[64];

	if (!ca_key_is_peer(k) || k->port == 0)
		return -EINVAL;
	memcpy(a.bytes, k->addr, sizeof(a.bytes));
	if (ca_addr_format(&a, text, sizeof(text)))
		return -EINVAL;
	return snprintf(buf, CA_SYNC_FIELD_MAX, "%u|%s", k->port, text);
}

static int field_error(struct ca_error *err, const char *s, size_t len, const char *why)
{
	char q[QUOTE_MAX];

	return ca_errf(err, -EINVAL, "refused entry \"%s\": %s",
		       ca_quote(s, len, q, sizeof(q)), why);
}

int ca_sync_field_decode(const char *s, size_t len, struct ca_key *k, struct ca_error *err)
{
	const char *bar = memchr(s, '|', len);
	char addr[64], again[CA_SYNC_FIELD_MAX];
	struct ca_error ignored;
	struct ca_addr a;
	unsigned port;
	size_t alen;

	memset(k, 0, sizeof(*k));
	if (!bar || !parse_uint(s, (size_t)(bar - s), 65535, &port) || port == 0)
		return field_error(err, s, len, "want PORT|ADDRESS with a port 1..65535");
	alen = len - (size_t)(bar - s) - 1;
	if (alen == 0 || alen >= sizeof(addr) || memchr(bar + 1, '\0', alen))
		return field_error(err, s, len, "no address");
	memcpy(addr, bar + 1, alen);
	addr[alen] = '\0';
	if (ca_addr_parse(addr, &a, &ignored))
		return field_error(err, s, len, "not an IP address");
	k->port = (uint16_t)port;
	k->family = a.family;
	k->prefixlen = a.family == CA_AF_INET ? 32 : 128;
	memcpy(k->addr, a.bytes, sizeof(k->addr));
	/* one spelling per key: "025|...", "[::1]", "::FFFF:..." would alias */
	if (ca_sync_field_encode(k, again) != (int)len || memcmp(again, s, len) != 0)
		return field_error(err, s, len, "not in canonical form");
	return 0;
}

int ca_sync_count_decode(const char *s, size_t len, bool allow_zero, uint32_t *out,
			 struct ca_error *err)
{
	char q[QUOTE_MAX];
	unsigned v;

	if (!parse_uint(s, len, UINT32_MAX, &v) || (len > 1 && s[0] == '0'))
		return ca_errf(err, -EINVAL, "refused count \"%s\": not a decimal number",
			       ca_quote(s, len, q, sizeof(q)));
	if (v > CA_SYNC_COUNT_MAX || (v == 0 && !allow_zero))
		return ca_errf(err, -ERANGE, "refused count %u: out of range (%u..%u)", v,
			       allow_zero ? 0 : 1, CA_SYNC_COUNT_MAX);
	*out = v;
	return 0;
}

/* ---- change notices ----------------------------------------------------------- */

int ca_sync_header_encode(const struct ca_sync_header *h, char *buf, size_t len)
{
	char flags[4] = "-";
	int n = 0;

	if (h->flags & CA_SYNC_FLAG_FULL)
		flags[n++] = 'F';
	if (h->flags & CA_SYNC_FLAG_INCOMPLETE)
		flags[n++] = 'I';
	if (h->flags & CA_SYNC_FLAG_RATES_LOW)
		flags[n++] = 'R';
	n = snprintf(buf, len, "ca1 %s %s %" PRIu64 " %s %u\n", h->node, h->token, h->seq,
		     flags, h->interval_ms);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* The next space-separated word of [*p, end) on this line. */
static bool next_word(const char **p, const char *end, const char **w, size_t *len)
{
	const char *s = *p;

	*w = s;
	while (s < end && *s != ' ' && *s != '\n')
		s++;
	*len = (size_t)(s - *w);
	if (s < end && *s == ' ')
		s++;
	*p = s;
	return *len > 0;
}

/* Decimal without sign or leading zeros (one spelling per number). */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static bool parse_token(const char *s, size_t len, char out[CA_SYNC_TOKEN_LEN + 1])
{
	if (len != CA_SYNC_TOKEN_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hex_value(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F'))
			return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

static bool parse_flags(const char *s, size_t len, unsigned *out)
{
	*out = 0;
	if (len == 1 && s[0] == '-')
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned f = s[i] == 'F' ? CA_SYNC_FLAG_FULL : s[i] == 'I' ?
			     CA_SYNC_FLAG_INCOMPLETE : s[i] == 'R' ? CA_SYNC_FLAG_RATES_LOW : 0;

		if (!f || (*out & f))
			return false;
		*out |= f;
	}
	return len > 0;
}

int ca_sync_header_decode(const char *msg, size_t len, struct ca_sync_header *h,
			  const char **body, struct ca_error *err)
{
	const char *p = msg, *nl = memchr(msg, '\n', len), *end = nl ? nl : msg + len, *w;
	char q[QUOTE_MAX];
	uint64_t interval;
	size_t wl;

	memset(h, 0, sizeof(*h));
	if (end == msg || end[-1] == ' ')
		goto bad;
	if (!next_word(&p, end, &w, &wl) || wl != 3 || memcmp(w, "ca1", 3) != 0)
		goto bad;
	if (!next_word(&p, end, &w, &wl) || !ca_sync_name_ok(w, wl))
		goto bad;
	memcpy(h->node, w, wl);
	if (!next_word(&p, end, &w, &wl) || !parse_token(w, wl, h->token) ||
	    !next_word(&p, end, &w, &wl) || !parse_u64(w, wl, &h->seq) ||
	    !next_word(&p, end, &w, &wl) || !parse_flags(w, wl, &h->flags) ||
	    !next_word(&p, end, &w, &wl) || !parse_u64(w, wl, &interval) ||
	    interval == 0 || interval > CA_SYNC_INTERVAL_MAX || p != end)
		goto bad;
	h->interval_ms = (unsigned)interval;
	*body = nl ? nl + 1 : end;	/* a notice of the header alone may lack its \n */
	return 0;
bad:
	return ca_errf(err, -EINVAL, "refused notice \"%s\": want \"ca1 NODE TOKEN SEQ FLAGS "
		       "INTERVAL_MS\" on its first line",
		       ca_quote(msg, (size_t)(end - msg), q, sizeof(q)));
}

int ca_sync_next_entry(const char **p, const char *end, struct ca_sync_entry *e,
		       struct ca_error *err)
{
	const char *line = *p, *nl, *space, *value;
	size_t len, flen, vlen;

	if (line >= end)
		return 0;
	nl = memchr(line, '\n', (size_t)(end - line));
	len = nl ? (size_t)(nl - line) : (size_t)(end - line);
	*p = nl ? nl + 1 : end;
	space = memchr(line, ' ', len);
	if (!space)
		return field_error(err, line, len, "want \"PORT|ADDRESS COUNT\" or "
				   "\"~PORT|ADDRESS SLOTS\"");
	flen = (size_t)(space - line);
	value = space + 1;
	vlen = len - flen - 1;
	memset(e, 0, sizeof(*e));
	e->rate = flen && line[0] == CA_SYNC_RATE_MARK;
	if (e->rate)
		return ca_sync_field_decode(line + 1, flen - 1, &e->key, err) ||
		       ca_sync_rate_decode(value, vlen, &e->ring, err) ? -EINVAL : 1;
	return ca_sync_field_decode(line, flen, &e->key, err) ||
	       ca_sync_count_decode(value, vlen, true, &e->count, err) ? -EINVAL : 1;
}

/* ---- rate windows ------------------------------------------------------------- */

void ca_sync_monitors_text(const struct ca_config *cfg, char buf[CA_SYNC_MONITORS_MAX])
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < cfg->nr_monitors && i < CA_MAX_MONITORS; i++) {
		struct ca_monitor m = { cfg->mon[i].size, cfg->mon[i].windows };

		if (i)
			buf[n++] = ' ';
		ca_monitor_format(&m, buf + n, CA_SYNC_MONITORS_MAX - n);
		n += strlen(buf + n);
	}
}

unsigned ca_sync_rate_live(const struct ca_config *cfg, const struct ca_rate *v,
			   uint64_t boot_ns, struct ca_rate *out)
{
	unsigned live = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned m = 0; m < cfg->nr_monitors && m < CA_MAX_MONITORS; m++) {
		const struct ca_monitor_cfg *mc = &cfg->mon[m];
		uint32_t now = ca_window_now(cfg, m, boot_ns);

		for (unsigned i = mc->base; i < (unsigned)mc->base + mc->windows &&
		     i < CA_RATE_SLOTS; i++) {
			const struct ca_rate_slot *sl = &v->slot[i];

			if (sl->window == 0 || sl->window == CA_RATE_DEAD || !sl->count ||
			    sl->window > now || sl->window + mc->windows <= now)
				continue;
			out->slot[i] = *sl;
			live++;
		}
	}
	return live;
}

int ca_sync_rate_encode(const struct ca_rate *live, char buf[CA_SYNC_RATE_MAX])
{
	int n = 0;

	for (unsigned i = 0; i < CA_RATE_SLOTS; i++) {
		if (!live->slot[i].count)
			continue;
		n += snprintf(buf + n, CA_SYNC_RATE_MAX - (size_t)n, "%s%u:%u:%u", n ? "," : "",
			      i, live->slot[i].window, live->slot[i].count);
	}
	if (!n)
		n = snprintf(buf, CA_SYNC_RATE_MAX, "0");
	return n;
}

/* One number of a slot triple, up to the next separator `stop`. */
static bool take_u32(const char **s, const char *end, char stop, uint32_t max, uint32_t *out)
{
	const char *p = *s;
	uint64_t v;

	while (p < end && *p != stop)
		p++;
	if (!parse_u64(*s, (size_t)(p - *s), &v) || v > max)
		return false;
	*out = (uint32_t)v;
	*s = p < end ? p + 1 : p;
	return true;
}

int ca_sync_rate_decode(const char *s, size_t len, struct ca_rate *out, struct ca_error *err)
{
	const char *p = s, *end = s + len;
	char q[QUOTE_MAX];
	int last = -1;

	memset(out, 0, sizeof(*out));
	if (len == 1 && s[0] == '0')
		return 0;
	while (p < end) {
		uint32_t i, w, c;

		if (!take_u32(&p, end, ':', CA_RATE_SLOTS - 1, &i) || (int)i <= last ||
		    !take_u32(&p, end, ':', CA_RATE_DEAD - 1, &w) || !w ||
		    !take_u32(&p, end, ',', UINT32_MAX, &c) || !c ||
		    (p == end && end[-1] == ','))
			return ca_errf(err, -EINVAL, "refused rate windows \"%s\": want "
				       "SLOT:WINDOW:COUNT,... with slots 0..%u in increasing "
				       "order, or 0", ca_quote(s, len, q, sizeof(q)),
				       CA_RATE_SLOTS - 1);
		out->slot[i].window = w;
		out->slot[i].count = c;
		last = (int)i;
	}
	if (last < 0)
		return ca_errf(err, -EINVAL, "refused rate windows \"\": empty");
	return 0;
}
