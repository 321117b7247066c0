/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_cidr.c - libFuzzer target for the CIDR parser, resolver and matcher,
 * and the prefix-list parser.
 *
 * Input: "CIDR" or "CIDR\nPEER" (a CIDR never holds a newline, so the split
 * loses nothing). Every answer is checked against a bit-by-bit model or
 * against another way of getting it; a wrong one aborts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cidr.h"

static unsigned width(uint8_t family)
{
	return family == CA_AF_INET ? 32 : 128;
}

static bool bit(const uint8_t *bytes, unsigned i)
{
	return (bytes[i / 8] >> (7 - i % 8)) & 1;
}

static void flip(uint8_t *bytes, unsigned i)
{
	bytes[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
}

/* The model of ca_prefix_contains: the first len bits, one at a time. */
static bool model_contains(const struct ca_prefix *p, const struct ca_addr *a)
{
	if (p->family == CA_AF_ALL)
		return true;
	if (p->family != a->family)
		return false;
	for (unsigned i = 0; i < p->len; i++)
		if (bit(p->bytes, i) != bit(a->bytes, i))
			return false;
	return true;
}

static void check_failure(int rc, const struct ca_error *err)
{
	CHECK(rc == -EINVAL);
	CHECK(err->msg[0] != '\0');
	CHECK(strlen(err->msg) < sizeof(err->msg));
}

/* A parsed address: canonical, and formatting then parsing gives it back. */
static void check_address(const struct ca_addr *a)
{
	static const uint8_t zero[12], mapped[12] = { [10] = 0xff, [11] = 0xff };
	char text[INET6_ADDRSTRLEN];
	struct ca_addr back;
	struct ca_error err;

	CHECK(a->family == CA_AF_INET || a->family == CA_AF_INET6);
	if (a->family == CA_AF_INET)
		CHECK(memcmp(a->bytes + 4, zero, sizeof(zero)) == 0);
	else
		CHECK(memcmp(a->bytes, mapped, sizeof(mapped)) != 0);
	CHECK(ca_addr_format(a, text, sizeof(text)) == 0);
	CHECK(ca_addr_parse(text, &back, &err) == 0);
	CHECK(memcmp(&back, a, sizeof(back)) == 0);
}

/* A concrete prefix: a real family, a fitting length, no host bit. */
static void check_prefix(const struct ca_prefix *p)
{
	CHECK(p->family == CA_AF_INET || p->family == CA_AF_INET6);
	CHECK(p->len <= width(p->family));
	for (unsigned i = p->len; i < 128; i++)
		CHECK(!bit(p->bytes, i));
}

/* The network address, its last address and its neighbours across the
 * prefix boundary, then `probe` against the model. */
static void check_contains(const struct ca_prefix *p, const struct ca_addr *probe)
{
	struct ca_addr edge;

	if (probe)
		CHECK(ca_prefix_contains(p, probe) == model_contains(p, probe));
	if (p->family == CA_AF_ALL)
		return;
	memset(&edge, 0, sizeof(edge));
	edge.family = p->family;
	memcpy(edge.bytes, p->bytes, sizeof(edge.bytes));
	CHECK(ca_prefix_contains(p, &edge));
	for (unsigned i = p->len; i < width(p->family); i++)
		flip(edge.bytes, i);
	CHECK(ca_prefix_contains(p, &edge));
	if (p->len > 0) {
		flip(edge.bytes, p->len - 1);
		CHECK(!ca_prefix_contains(p, &edge));
	}
	edge.family = p->family == CA_AF_INET ? CA_AF_INET6 : CA_AF_INET;
	CHECK(!ca_prefix_contains(p, &edge));
}

static void check_fixed(const struct ca_cidr *c, const struct ca_addr *peer)
{
	struct ca_prefix p;
	struct ca_addr net;
	struct ca_error err;

	check_prefix(&c->fixed);
	memset(&net, 0, sizeof(net));
	net.family = c->fixed.family;
	memcpy(net.bytes, c->fixed.bytes, sizeof(net.bytes));
	check_address(&net);
	CHECK(ca_cidr_resolve(c, peer, &p, &err) == 0);
	CHECK(memcmp(&p, &c->fixed, sizeof(p)) == 0);
	check_contains(&p, peer);
}

static void check_all(const struct ca_cidr *c, const struct ca_addr *peer)
{
	static const struct ca_prefix all = { .family = CA_AF_ALL };
	struct ca_prefix p;
	struct ca_error err;

	CHECK(ca_cidr_resolve(c, peer, &p, &err) == 0);
	CHECK(memcmp(&p, &all, sizeof(p)) == 0);
	if (peer)
		CHECK(ca_prefix_contains(&p, peer));
}

/* Resolved against the peer: the peer's first bits, and the peer inside. */
static void check_peer_relative(const struct ca_cidr *c, const struct ca_addr *peer)
{
	struct ca_prefix p;
	struct ca_error err;
	unsigned len;
	int rc;

	CHECK(c->v4_len <= 128 && c->v6_len <= 128);
	if (!peer) {
		check_failure(ca_cidr_resolve(c, NULL, &p, &err), &err);
		return;
	}
	len = peer->family == CA_AF_INET ? c->v4_len : c->v6_len;
	rc = ca_cidr_resolve(c, peer, &p, &err);
	if (len > width(peer->family)) {
		check_failure(rc, &err);
		return;
	}
	CHECK(rc == 0);
	check_prefix(&p);
	CHECK(p.family == peer->family && p.len == len);
	for (unsigned i = 0; i < len; i++)
		CHECK(bit(p.bytes, i) == bit(peer->bytes, i));
	CHECK(ca_prefix_contains(&p, peer));
	check_contains(&p, peer);
}

/* ca_cidr_parse on a C string answers as ca_cidr_parse_n did. */
static void check_c_string_agrees(const char *s, size_t len, int rc, const struct ca_cidr *c)
{
	char *copy;
	struct ca_cidr again;
	struct ca_error err;

	if (memchr(s, '\0', len)) {
		CHECK(rc == -EINVAL);
		return;
	}
	copy = strndup(s, len);
	CHECK(copy);
	CHECK(ca_cidr_parse(copy, &again, &err) == rc);
	free(copy);
	if (rc == 0)
		CHECK(again.kind == c->kind && again.v4_len == c->v4_len &&
		      again.v6_len == c->v6_len &&
		      memcmp(&again.fixed, &c->fixed, sizeof(again.fixed)) == 0);
}

/* A prefix list: lengths in range, no repeats, at least one; or untouched. */
static void check_prefix_list(const char *s, size_t len)
{
	char *copy;
	struct ca_load_opts opts, before;
	struct ca_error err;
	int rc;

	if (memchr(s, '\0', len))
		return;
	copy = strndup(s, len);
	CHECK(copy);
	memset(&opts, 0x5a, sizeof(opts));
	before = opts;
	rc = ca_parse_prefix_list(copy, &opts, &err);
	free(copy);
	if (rc) {
		check_failure(rc, &err);
		CHECK(memcmp(&opts, &before, sizeof(opts)) == 0);
		return;
	}
	CHECK(opts.nr_v4 <= CA_MAX_PREFIXES && opts.nr_v6 <= CA_MAX_PREFIXES);
	CHECK(opts.nr_v4 + opts.nr_v6 > 0);
	for (unsigned i = 0; i < opts.nr_v4; i++)
		CHECK(opts.v4[i] >= 1 && opts.v4[i] <= 32 &&
		      !memchr(opts.v4, opts.v4[i], i));
	for (unsigned i = 0; i < opts.nr_v6; i++)
		CHECK(opts.v6[i] >= 1 && opts.v6[i] <= 128 &&
		      !memchr(opts.v6, opts.v6[i], i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	size_t cidr_len = nl ? (size_t)(nl - text) : size;
	struct ca_addr peer;
	bool have_peer = false;
	struct ca_cidr c;
	struct ca_error err;
	int rc;

	if (nl) {
		rc = ca_addr_parse_n(nl + 1, size - cidr_len - 1, &peer, &err);
		have_peer = rc == 0;
		if (have_peer)
			check_address(&peer);
		else
			check_failure(rc, &err);
	}
	check_prefix_list(text, cidr_len);
	rc = ca_cidr_parse_n(text, cidr_len, &c, &err);
	check_c_string_agrees(text, cidr_len, rc, &c);
	if (rc) {
		check_failure(rc, &err);
		return 0;
	}
	switch (c.kind) {
	case CA_CIDR_ALL:
		check_all(&c, have_peer ? &peer : NULL);
		break;
	case CA_CIDR_PEER:
		check_peer_relative(&c, have_peer ? &peer : NULL);
		break;
	case CA_CIDR_FIXED:
		check_fixed(&c, have_peer ? &peer : NULL);
		break;
	default:
		CHECK(!"unknown kind");
	}
	return 0;
}
