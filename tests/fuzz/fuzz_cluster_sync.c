/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_cluster_sync.c - libFuzzer target for what a cluster agent reads from
 * Redis and from its command line: change notices (header and entries),
 * hash fields and counts, Redis URLs.
 *
 * Every accepted field re-encodes to the same bytes (one spelling per key),
 * every accepted count is in range, every accepted notice header re-encodes
 * to its first line, and every failure comes with a message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cluster_sync.h"

static void check_message(const struct ca_error *err)
{
	CHECK(err->msg[0] != '\0');
	CHECK(strlen(err->msg) < sizeof(err->msg));
}

static void check_field(const char *s, size_t len)
{
	char again[CA_SYNC_FIELD_MAX];
	struct ca_error err = { "" };
	struct ca_key k;

	if (ca_sync_field_decode(s, len, &k, &err)) {
		check_message(&err);
		return;
	}
	CHECK(k.netns == 0 && k.port != 0);
	CHECK((k.family == CA_AF_INET && k.prefixlen == 32) ||
	      (k.family == CA_AF_INET6 && k.prefixlen == 128));
	CHECK(ca_sync_field_encode(&k, again) == (int)len);
	CHECK(memcmp(again, s, len) == 0);
}

static void check_notice(const char *s, size_t len)
{
	struct ca_sync_header h;
	struct ca_error err = { "" };
	const char *body, *p, *end = s + len;
	char line[256], value[CA_SYNC_RATE_MAX];
	struct ca_sync_entry e;
	int rc, n;

	if (ca_sync_header_decode(s, len, &h, &body, &err)) {
		check_message(&err);
		return;
	}
	CHECK(ca_sync_name_ok(h.node, strlen(h.node)));
	CHECK(h.interval_ms >= 1 && h.interval_ms <= CA_SYNC_INTERVAL_MAX);
	n = ca_sync_header_encode(&h, line, sizeof(line));
	/* the flags may be spelled "IF" where encode writes "FI" */
	CHECK(n > 0 && ((size_t)n == (size_t)(body - s) ||
			(body == end && !memchr(s, '\n', len) && (size_t)n == len + 1)));
	for (p = body; (rc = ca_sync_next_entry(&p, end, &e, &err)) != 0; ) {
		CHECK(p <= end);
		if (rc < 0) {
			check_message(&err);
			continue;
		}
		CHECK(e.key.port != 0);
		if (!e.rate) {
			CHECK(e.count <= CA_SYNC_COUNT_MAX);
			continue;
		}
		/* what decodes encodes back and decodes to the same ring */
		n = ca_sync_rate_encode(&e.ring, value);
		CHECK(n > 0 && (size_t)n < sizeof(value));
		{
			struct ca_rate again;

			CHECK(ca_sync_rate_decode(value, (size_t)n, &again, &err) == 0);
			CHECK(memcmp(&again, &e.ring, sizeof(again)) == 0);
		}
	}
}

static void check_url(const char *s)
{
	struct ca_redis_url u;
	struct ca_error err = { "" };

	if (ca_redis_url_parse(s, &u, &err)) {
		check_message(&err);
		return;
	}
	if (u.unix_socket) {
		CHECK(u.path[0] == '/');
	} else {
		CHECK(u.host[0] != '\0');
		CHECK(u.port >= 1 && u.port <= 65535);
	}
	CHECK(u.db <= 65535);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct ca_error err;
	uint32_t v;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_notice(s, size);
	check_field(s, size);
	if (ca_sync_count_decode(s, size, true, &v, &err) == 0)
		CHECK(v <= CA_SYNC_COUNT_MAX);
	if (!memchr(s, '\0', size))
		check_url(s);
	free(s);
	return 0;
}
