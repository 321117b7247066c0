/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sample_peers.h - random peers for the counting tests, packed into a few
 * prefixes so that every prefix length holds several of them: IPv4 in
 * 10.0.0.0/15 (two /16s, four /24s each), IPv6 in 2001:db8::/47 (two /48s,
 * two /56s each, four /64s each, the last 8 bits random). The sequence is
 * the same on every run.
 */
#ifndef CA_TEST_SAMPLE_PEERS_H
#define CA_TEST_SAMPLE_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "connaudit.h"

struct sample {
	uint32_t state;		/* xorshift32, never 0 */
};

static inline uint32_t sample_next(struct sample *s)
{
	uint32_t x = s->state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return s->state = x;
}

/* A random peer: IPv4 or IPv6 at random. */
static inline void sample_peer(struct sample *s, struct ca_addr *out)
{
	uint32_t r = sample_next(s);
	static const uint8_t v6_base[4] = { 0x20, 0x01, 0x0d, 0xb8 };

	memset(out, 0, sizeof(*out));
	if (r & 1) {
		out->family = CA_AF_INET;
		out->bytes[0] = 10;
		out->bytes[1] = (r >> 1) & 1;
		out->bytes[2] = (r >> 2) & 3;
		out->bytes[3] = (uint8_t)(r >> 4);
		return;
	}
	out->family = CA_AF_INET6;
	memcpy(out->bytes, v6_base, sizeof(v6_base));
	out->bytes[5] = (r >> 1) & 1;
	out->bytes[6] = (r >> 2) & 1;
	out->bytes[7] = (r >> 3) & 3;
	out->bytes[15] = (uint8_t)(r >> 5);
}

/* How many of peers[0..n) lie in p: the answer any plan must give. */
static inline uint64_t sample_count_in(const struct ca_addr *peers, size_t n,
				       const struct ca_prefix *p)
{
	uint64_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += ca_prefix_contains(p, &peers[i]);
	return count;
}

#endif
