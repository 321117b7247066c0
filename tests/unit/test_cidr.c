/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_cidr.c - addresses, CIDRs, resolution, matching and prefix lists. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

/* Expected values come from inet_pton directly, not from the code under test. */
static struct ca_addr addr(const char *text)
{
	struct ca_addr a;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, text, a.bytes) == 1)
		a.family = CA_AF_INET;
	else if (inet_pton(AF_INET6, text, a.bytes) == 1)
		a.family = CA_AF_INET6;
	else
		fail_msg("bad address in the test itself: %s", text);
	return a;
}

static struct ca_prefix prefix(const char *net, unsigned len)
{
	struct ca_addr a = addr(net);
	struct ca_prefix p;

	memset(&p, 0, sizeof(p));
	p.family = a.family;
	p.len = (uint8_t)len;
	memcpy(p.bytes, a.bytes, sizeof(p.bytes));
	return p;
}

static void assert_prefix_equal(const char *input, const struct ca_prefix *got,
				const struct ca_prefix *want)
{
	if (got->family != want->family || got->len != want->len ||
	    memcmp(got->bytes, want->bytes, sizeof(got->bytes)) != 0)
		fail_msg("%s: got family %u len %u, want family %u len %u (or bytes differ)",
			 input, got->family, got->len, want->family, want->len);
}

/* The message must quote the input exactly as `quoted` and contain `why`. */
static void assert_message(const char *input, const struct ca_error *err,
			   const char *quoted, const char *why)
{
	char q[128];

	snprintf(q, sizeof(q), "\"%s\"", quoted);
	if (!strstr(err->msg, q))
		fail_msg("%s: message does not quote the input as %s: %s", input, q, err->msg);
	if (!strstr(err->msg, why))
		fail_msg("%s: message lacks \"%s\": %s", input, why, err->msg);
}

/* Parse `len` bytes expecting -EINVAL, an untouched output and a message. */
static void assert_cidr_invalid(const char *input, size_t len, const char *quoted,
				const char *why)
{
	struct ca_cidr c, before;
	struct ca_error err = { "" };
	int rc;

	memset(&c, 0xa5, sizeof(c));
	before = c;
	rc = ca_cidr_parse_n(input, len, &c, &err);
	if (rc != -EINVAL)
		fail_msg("%s: rc %d, want -EINVAL", quoted, rc);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_message(quoted, &err, quoted, why);
}

static struct ca_cidr parse_ok(const char *input)
{
	struct ca_cidr c;
	struct ca_error err = { "" };
	int rc = ca_cidr_parse(input, &c, &err);

	if (rc != 0)
		fail_msg("%s: rc %d: %s", input, rc, err.msg);
	return c;
}

/* ---- ca_cidr_parse: fixed prefixes ------------------------------------- */

struct fixed_case {
	const char *input;
	const char *net;	/* expected network address */
	unsigned len;
};

static void test_parse_fixed(void **state)
{
	static const struct fixed_case cases[] = {
		{ "192.0.2.1", "192.0.2.1", 32 },
		{ "192.0.2.0/24", "192.0.2.0", 24 },
		{ "192.0.2.77/24", "192.0.2.0", 24 },		/* host bits masked */
		{ "192.0.2.255/25", "192.0.2.128", 25 },	/* partial byte */
		{ "255.255.255.255/31", "255.255.255.254", 31 },
		{ "10.1.2.3/8", "10.0.0.0", 8 },
		{ "10.1.2.3/032", "10.1.2.3", 32 },		/* 3 digits */
		{ "255.255.255.255/1", "128.0.0.0", 1 },
		{ "1.2.3.4/0", "0.0.0.0", 0 },
		{ "0.0.0.0", "0.0.0.0", 32 },
		{ "2001:db8::1", "2001:db8::1", 128 },
		{ "2001:db8::1/128", "2001:db8::1", 128 },
		{ "2001:db8::ffff/112", "2001:db8::", 112 },
		{ "2001:db8:1:2:ffff::/67", "2001:db8:1:2:e000::", 67 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127",
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 127 },
		{ "2001:db8::1/0", "::", 0 },
		{ "::", "::", 128 },
		{ "[2001:db8::1]", "2001:db8::1", 128 },
		{ "[2001:db8::]/32", "2001:db8::", 32 },
		{ "[::1]", "::1", 128 },
		{ "::1.2.3.4", "::1.2.3.4", 128 },		/* v4-compatible stays IPv6 */
		/* v4-mapped becomes IPv4; a length on it loses the 96 mapping bits */
		{ "::ffff:1.2.3.4", "1.2.3.4", 32 },
		{ "::FFFF:1.2.3.4", "1.2.3.4", 32 },
		{ "::ffff:1.2.3.4/128", "1.2.3.4", 32 },
		{ "::ffff:1.2.3.4/120", "1.2.3.0", 24 },
		{ "[::ffff:10.9.8.7]/96", "0.0.0.0", 0 },
		{ "::ffff:c000:0201", "192.0.2.1", 32 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_cidr c = parse_ok(cases[i].input);
		struct ca_prefix want = prefix(cases[i].net, cases[i].len);

		if (c.kind != CA_CIDR_FIXED)
			fail_msg("%s: kind %d, want CA_CIDR_FIXED", cases[i].input, c.kind);
		assert_prefix_equal(cases[i].input, &c.fixed, &want);
	}
}

/* ---- ca_cidr_parse: peer-relative forms -------------------------------- */

struct relative_case {
	const char *input;
	enum ca_cidr_kind kind;
	unsigned v4_len, v6_len;
};

static void test_parse_relative(void **state)
{
	static const struct relative_case cases[] = {
		{ "/0", CA_CIDR_ALL, 0, 0 },
		{ "/000", CA_CIDR_ALL, 0, 0 },
		{ "/1", CA_CIDR_PEER, 1, 1 },
		{ "/24", CA_CIDR_PEER, 24, 24 },
		{ "/32", CA_CIDR_PEER, 32, 32 },
		{ "/33", CA_CIDR_PEER, 33, 33 },	/* refused only for IPv4 peers */
		{ "/64", CA_CIDR_PEER, 64, 64 },
		{ "/128", CA_CIDR_PEER, 128, 128 },
		{ "/24,/64", CA_CIDR_PEER, 24, 64 },
		{ "/0,/0", CA_CIDR_PEER, 0, 0 },	/* the peer's family only */
		{ "/32,/128", CA_CIDR_PEER, 32, 128 },
		{ "/0,/128", CA_CIDR_PEER, 0, 128 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_cidr c = parse_ok(cases[i].input);

		if (c.kind != cases[i].kind || c.v4_len != cases[i].v4_len ||
		    c.v6_len != cases[i].v6_len)
			fail_msg("%s: kind %d /%u,/%u; want kind %d /%u,/%u",
				 cases[i].input, c.kind, c.v4_len, c.v6_len,
				 cases[i].kind, cases[i].v4_len, cases[i].v6_len);
	}
}

/* ---- ca_cidr_parse: errors --------------------------------------------- */

struct invalid_case {
	const char *input;
	const char *why;	/* a fragment the message must contain */
};

static void test_parse_invalid(void **state)
{
	static const struct invalid_case cases[] = {
		{ "", "empty" },
		{ "1.2.3.256", "octets 0..255" },
		{ "1.2.3", "a.b.c.d" },
		{ "1.2.3.4.5", "a.b.c.d" },
		{ "01.2.3.4", "a.b.c.d" },
		{ "x1.2.3.4", "a.b.c.d" },
		{ "1.2.3.4x", "a.b.c.d" },
		{ "localhost", "a.b.c.d" },
		{ "1.2.3.4/33", "IPv4 prefix length must be 0..32" },
		{ "1.2.3.4/99", "0..32" },
		{ "2001:db8::/129", "IPv6 prefix length must be 0..128" },
		{ "[2001:db8::]/129", "0..128" },
		{ "1.2.3.4/+8", "decimal digits only" },
		{ "1.2.3.4/-8", "decimal digits only" },
		{ "1.2.3.4/8x", "decimal digits only" },
		{ "1.2.3.4/0x8", "decimal digits only" },
		{ "1.2.3.4/24/8", "decimal digits only" },
		{ "1.2.3.4/0008", "at most 3 digits" },
		{ "1.2.3.4/", "missing prefix length" },
		{ "2001:db8::/", "missing prefix length" },
		{ "/", "missing prefix length" },
		{ "/+24", "decimal digits only" },
		{ "/-1", "decimal digits only" },
		{ "/129", "/N must be 0..128" },
		{ "/1000", "at most 3 digits" },
		{ "/24,", "expected /M after the comma" },
		{ "/24,64", "expected /M after the comma" },
		{ "/24,/", "missing prefix length" },
		{ "/33,/64", "IPv4 length N must be 0..32" },
		{ "/24,/129", "IPv6 length M must be 0..128" },
		{ "/24,/64,/8", "decimal digits only" },
		{ ",/24", "a.b.c.d" },
		{ "fe80::1%eth0", "zone ids" },
		{ "[fe80::1%eth0]", "zone ids" },
		{ "[2001:db8::1", "without a closing ']'" },
		{ "[", "without a closing ']'" },
		{ "2001:db8::1]", "unbalanced brackets" },
		{ "[[::1]]", "unbalanced brackets" },
		{ "[2001:db8::/32]", "without a closing ']'" },
		{ "[]", "missing address" },
		{ "[]/24", "missing address" },
		{ "/24]", "decimal digits only" },
		{ "[1.2.3.4]", "brackets are for IPv6 addresses only" },
		{ "[1.2.3.4]/24", "brackets are for IPv6 addresses only" },
		{ "1::2::3", "expected an IPv6 address" },
		{ "2001:db8::1x", "expected an IPv6 address" },
		{ "::ffff:1.2.3.4/95", "96..128" },
		{ "::ffff:1.2.3.4/64", "96..128" },
		{ "::ffff:1.2.3.4/129", "96..128" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_cidr_invalid(cases[i].input, strlen(cases[i].input),
				    cases[i].input, cases[i].why);
}

static void test_parse_invalid_unprintable(void **state)
{
	(void)state;
	assert_cidr_invalid("1.2.3.4\0/8", 10, "1.2.3.4\\x00/8", "embedded NUL");
	assert_cidr_invalid("\0", 1, "\\x00", "embedded NUL");
	assert_cidr_invalid(" 1.2.3.4", 8, " 1.2.3.4", "whitespace");
	assert_cidr_invalid("1.2.3.4 ", 8, "1.2.3.4 ", "whitespace");
	assert_cidr_invalid("1.2.3.4\n", 8, "1.2.3.4\\x0a", "whitespace");
	assert_cidr_invalid("/24,\t/64", 8, "/24,\\x09/64", "whitespace");
}

static void test_parse_length_limit(void **state)
{
	char s[200], quoted[80];
	struct ca_cidr c;
	struct ca_error err = { "" };

	(void)state;
	/* 64 characters is within the limit: refused for its syntax only */
	memset(s, '1', 64);
	s[64] = '\0';
	assert_cidr_invalid(s, 64, s, "a.b.c.d");
	s[64] = '1';
	s[65] = '\0';
	assert_cidr_invalid(s, 65, s, "longer than 64 characters");
	/* a long input is quoted in part, ending in "..." */
	memset(s, '1', sizeof(s));
	assert_int_equal(ca_cidr_parse_n(s, sizeof(s), &c, &err), -EINVAL);
	memset(quoted, '1', 60);
	quoted[60] = '\0';
	assert_non_null(strstr(err.msg, quoted));
	assert_non_null(strstr(err.msg, "1...\""));
	assert_true(strlen(err.msg) < 200);
}

static void test_parse_null(void **state)
{
	struct ca_cidr c;
	struct ca_error err = { "" };

	(void)state;
	assert_int_equal(ca_cidr_parse(NULL, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NULL"));
	assert_int_equal(ca_cidr_parse_n(NULL, 3, &c, &err), -EINVAL);
}

/* ca_cidr_parse and ca_cidr_parse_n agree, and _n reads only `len` bytes. */
static void test_parse_n_uses_len(void **state)
{
	struct ca_cidr c;
	struct ca_error err = { "" };
	struct ca_prefix want = prefix("10.0.0.0", 8);

	(void)state;
	assert_int_equal(ca_cidr_parse_n("10.1.2.3/8garbage", 10, &c, &err), 0);
	assert_int_equal(c.kind, CA_CIDR_FIXED);
	assert_prefix_equal("10.1.2.3/8", &c.fixed, &want);
}

/* ---- ca_addr_parse, ca_addr_format ------------------------------------ */

static void test_addr_parse(void **state)
{
	static const struct { const char *input, *want; } cases[] = {
		{ "192.0.2.1", "192.0.2.1" },
		{ "0.0.0.0", "0.0.0.0" },
		{ "255.255.255.255", "255.255.255.255" },
		{ "2001:db8::1", "2001:db8::1" },
		{ "[2001:db8::1]", "2001:db8::1" },
		{ "::", "::" },
		{ "::ffff:192.0.2.1", "192.0.2.1" },
		{ "[::ffff:192.0.2.1]", "192.0.2.1" },
	};
	struct ca_error err = { "" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_addr got, want = addr(cases[i].want);

		memset(&got, 0xa5, sizeof(got));
		if (ca_addr_parse(cases[i].input, &got, &err) != 0)
			fail_msg("%s: %s", cases[i].input, err.msg);
		assert_memory_equal(&got, &want, sizeof(got));
	}
}

static void test_addr_parse_invalid(void **state)
{
	static const struct invalid_case cases[] = {
		{ "", "empty" },
		{ "1.2.3.4/24", "prefix length is not allowed" },
		{ "/24", "prefix length is not allowed" },
		{ "[1.2.3.4]", "brackets are for IPv6" },
		{ "fe80::1%eth0", "zone ids" },
		{ "1.2.3.256", "a.b.c.d" },
		{ "[::1", "closing ']'" },
		{ "::1 ", "whitespace" },
	};
	struct ca_addr a;
	struct ca_error err = { "" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (ca_addr_parse(cases[i].input, &a, &err) != -EINVAL)
			fail_msg("%s: accepted", cases[i].input);
		assert_message(cases[i].input, &err, cases[i].input, cases[i].why);
		assert_non_null(strstr(err.msg, "invalid address"));
	}
	assert_int_equal(ca_addr_parse_n("::1\0x", 5, &a, &err), -EINVAL);
	assert_message("::1\\x00x", &err, "::1\\x00x", "embedded NUL");
	assert_int_equal(ca_addr_parse(NULL, &a, &err), -EINVAL);
}

static void test_addr_format_round_trip(void **state)
{
	static const char *const texts[] = {
		"0.0.0.0", "192.0.2.1", "255.255.255.255",
		"::", "::1", "2001:db8::1", "fe80::1:2", "2001:db8:0:1:1:1:1:1",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	};
	struct ca_error err = { "" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		char buf[INET6_ADDRSTRLEN];
		struct ca_addr a = addr(texts[i]), back;

		assert_int_equal(ca_addr_format(&a, buf, sizeof(buf)), 0);
		assert_string_equal(buf, texts[i]);
		assert_int_equal(ca_addr_parse(buf, &back, &err), 0);
		assert_memory_equal(&back, &a, sizeof(a));
	}
}

static void test_addr_format_errors(void **state)
{
	struct ca_addr a = addr("192.0.2.1");
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(ca_addr_format(&a, buf, sizeof("192.0.2.1")), 0);
	assert_string_equal(buf, "192.0.2.1");
	assert_int_equal(ca_addr_format(&a, buf, sizeof("192.0.2.1") - 1), -ENOSPC);
	a.family = 7;
	assert_int_equal(ca_addr_format(&a, buf, sizeof(buf)), -EAFNOSUPPORT);
}

/* ---- ca_cidr_resolve ------------------------------------------------------ */

struct resolve_case {
	const char *cidr;
	const char *peer;
	const char *net;	/* NULL: the ALL prefix */
	unsigned len;
};

static void test_resolve(void **state)
{
	static const struct resolve_case cases[] = {
		{ "/0", "192.0.2.1", NULL, 0 },
		{ "/24", "192.0.2.77", "192.0.2.0", 24 },
		{ "/32", "192.0.2.77", "192.0.2.77", 32 },
		{ "/64", "2001:db8:1:2:3::4", "2001:db8:1:2::", 64 },
		{ "/128", "2001:db8::4", "2001:db8::4", 128 },
		{ "/24,/64", "192.0.2.77", "192.0.2.0", 24 },
		{ "/24,/64", "2001:db8:1:2:3::4", "2001:db8:1:2::", 64 },
		{ "/16,/48", "2001:db8:1:2:3::4", "2001:db8:1::", 48 },
		{ "/0,/0", "192.0.2.1", "0.0.0.0", 0 },
		{ "/0,/0", "2001:db8::1", "::", 0 },
		{ "/32,/128", "10.0.0.1", "10.0.0.1", 32 },
		{ "10.9.8.7/8", "2001:db8::1", "10.0.0.0", 8 },	/* fixed ignores peer */
	};
	struct ca_error err = { "" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_cidr c = parse_ok(cases[i].cidr);
		struct ca_addr peer = addr(cases[i].peer);
		struct ca_prefix got, want = { .family = CA_AF_ALL };

		if (cases[i].net)
			want = prefix(cases[i].net, cases[i].len);
		memset(&got, 0xa5, sizeof(got));
		if (ca_cidr_resolve(&c, &peer, &got, &err) != 0)
			fail_msg("%s for %s: %s", cases[i].cidr, cases[i].peer, err.msg);
		assert_prefix_equal(cases[i].cidr, &got, &want);
	}
}

static void test_resolve_without_peer(void **state)
{
	struct ca_cidr c;
	struct ca_prefix got, want = prefix("2001:db8::", 32);
	struct ca_error err = { "" };

	(void)state;
	c = parse_ok("/0");
	assert_int_equal(ca_cidr_resolve(&c, NULL, &got, &err), 0);
	assert_int_equal(got.family, CA_AF_ALL);
	assert_int_equal(got.len, 0);

	c = parse_ok("[2001:db8::]/32");
	assert_int_equal(ca_cidr_resolve(&c, NULL, &got, &err), 0);
	assert_prefix_equal("[2001:db8::]/32", &got, &want);

	c = parse_ok("/24,/64");
	assert_int_equal(ca_cidr_resolve(&c, NULL, &got, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "needs the connecting peer address"));
	assert_non_null(strstr(err.msg, "/24 for IPv4, /64 for IPv6"));
}

static void test_resolve_long_length_on_ipv4_peer(void **state)
{
	struct ca_cidr c = parse_ok("/64");
	struct ca_addr v4 = addr("1.2.3.4"), v6 = addr("2001:db8::1");
	struct ca_prefix got, want = prefix("2001:db8::", 64);
	struct ca_error err = { "" };

	(void)state;
	assert_int_equal(ca_cidr_resolve(&c, &v4, &got, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/64 cannot apply to IPv4 peer 1.2.3.4"));
	assert_non_null(strstr(err.msg, "/N,/M"));
	assert_int_equal(ca_cidr_resolve(&c, &v6, &got, &err), 0);
	assert_prefix_equal("/64", &got, &want);

	c = parse_ok("/33");
	assert_int_equal(ca_cidr_resolve(&c, &v4, &got, &err), -EINVAL);
	c = parse_ok("/32");
	assert_int_equal(ca_cidr_resolve(&c, &v4, &got, &err), 0);
}

static void test_resolve_bad_peer_family(void **state)
{
	struct ca_cidr c = parse_ok("/24");
	struct ca_addr peer = addr("1.2.3.4");
	struct ca_prefix got;
	struct ca_error err = { "" };

	(void)state;
	peer.family = 7;
	assert_int_equal(ca_cidr_resolve(&c, &peer, &got, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown family 7"));
}

/* ---- ca_prefix_contains, ca_mask_bytes ----------------------------------- */

struct contains_case {
	const char *cidr;
	const char *addr;
	bool inside;
};

static void test_prefix_contains(void **state)
{
	static const struct contains_case cases[] = {
		{ "192.0.2.0/24", "192.0.2.0", true },
		{ "192.0.2.0/24", "192.0.2.255", true },
		{ "192.0.2.0/24", "192.0.1.255", false },
		{ "192.0.2.0/24", "192.0.3.0", false },
		{ "192.0.2.0/24", "2001:db8::", false },	/* other family */
		{ "192.0.2.128/25", "192.0.2.127", false },
		{ "192.0.2.128/25", "192.0.2.128", true },
		{ "192.0.2.1", "192.0.2.1", true },
		{ "192.0.2.1", "192.0.2.0", false },
		{ "192.0.2.1", "192.0.2.3", false },
		{ "0.0.0.0/1", "127.255.255.255", true },
		{ "0.0.0.0/1", "128.0.0.0", false },
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "0.0.0.0/0", "::", false },
		{ "::/0", "ffff::", true },
		{ "::/0", "0.0.0.0", false },
		{ "2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true },
		{ "2001:db8::/32", "2001:db9::", false },
		{ "2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false },
		{ "2001:db8::/127", "2001:db8::1", true },
		{ "2001:db8::/127", "2001:db8::2", false },
		{ "2001:db8::1", "2001:db8::1", true },
		{ "2001:db8::1", "2001:db8::", false },
		{ "::ffff:192.0.2.0/120", "192.0.2.9", true },
	};
	struct ca_error err = { "" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_cidr c = parse_ok(cases[i].cidr);
		struct ca_addr a = addr(cases[i].addr);
		struct ca_prefix p;

		assert_int_equal(ca_cidr_resolve(&c, NULL, &p, &err), 0);
		if (ca_prefix_contains(&p, &a) != cases[i].inside)
			fail_msg("%s contains %s: want %s", cases[i].cidr, cases[i].addr,
				 cases[i].inside ? "yes" : "no");
	}
}

static void test_prefix_contains_all(void **state)
{
	struct ca_prefix all = { .family = CA_AF_ALL };
	struct ca_addr v4 = addr("203.0.113.9"), v6 = addr("2001:db8::9");

	(void)state;
	assert_true(ca_prefix_contains(&all, &v4));
	assert_true(ca_prefix_contains(&all, &v6));
}

static void test_mask_bytes(void **state)
{
	static const struct { unsigned len; const char *want; } cases[] = {
		{ 0, "::" },
		{ 1, "8000::" },
		{ 9, "ff80::" },
		{ 16, "ffff::" },
		{ 17, "ffff:8000::" },
		{ 127, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe" },
		{ 128, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
		{ 200, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t b[16];
		struct ca_addr want = addr(cases[i].want);

		memset(b, 0xff, sizeof(b));
		ca_mask_bytes(b, cases[i].len);
		if (memcmp(b, want.bytes, sizeof(b)) != 0)
			fail_msg("mask /%u differs from %s", cases[i].len, cases[i].want);
	}
}

/* ---- ca_parse_prefix_list -------------------------------------------------- */

struct list_case {
	const char *input;
	unsigned nr_v4, nr_v6;
	uint8_t v4[CA_MAX_PREFIXES], v6[CA_MAX_PREFIXES];
};

static void test_prefix_list(void **state)
{
	static const struct list_case cases[] = {
		{ "24,16,64,48", 2, 2, { 24, 16 }, { 64, 48 } },
		{ "v4:24,16;v6:64,48", 2, 2, { 24, 16 }, { 64, 48 } },
		{ "v6:64,48;v4:24,16", 2, 2, { 24, 16 }, { 64, 48 } },
		{ "v6:16,32", 0, 2, { 0 }, { 16, 32 } },	/* short v6 lengths */
		{ "v4:24", 1, 0, { 24 }, { 0 } },
		{ "v4:24;v6:", 1, 0, { 24 }, { 0 } },
		{ "v4:;v6:56", 0, 1, { 0 }, { 56 } },
		{ "24", 1, 0, { 24 }, { 0 } },
		{ "1,32,33,128", 2, 2, { 1, 32 }, { 33, 128 } },
		{ "1,2,3,4,5,6,7,8", 8, 0, { 1, 2, 3, 4, 5, 6, 7, 8 }, { 0 } },
		{ "v4:25,26,27,28,29,30,31,32;v6:121,122,123,124,125,126,127,128", 8, 8,
		  { 25, 26, 27, 28, 29, 30, 31, 32 },
		  { 121, 122, 123, 124, 125, 126, 127, 128 } },
	};
	struct ca_error err = { "" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_load_opts opts;

		memset(&opts, 0xa5, sizeof(opts));
		if (ca_parse_prefix_list(cases[i].input, &opts, &err) != 0)
			fail_msg("%s: %s", cases[i].input, err.msg);
		if (opts.nr_v4 != cases[i].nr_v4 || opts.nr_v6 != cases[i].nr_v6)
			fail_msg("%s: %u v4 and %u v6 lengths", cases[i].input,
				 opts.nr_v4, opts.nr_v6);
		assert_memory_equal(opts.v4, cases[i].v4, sizeof(opts.v4));
		assert_memory_equal(opts.v6, cases[i].v6, sizeof(opts.v6));
	}
}

static void test_prefix_list_invalid(void **state)
{
	static const struct invalid_case cases[] = {
		{ "", "empty" },
		{ "0", "IPv4 lengths must be 1..32" },
		{ "129", "IPv6 lengths must be 1..128" },
		{ "v4:0", "IPv4 lengths must be 1..32" },
		{ "v4:33", "IPv4 lengths must be 1..32" },
		{ "v6:0", "IPv6 lengths must be 1..128" },
		{ "v6:129", "IPv6 lengths must be 1..128" },
		{ "24,24", "listed twice" },
		{ "v6:64,48,64", "listed twice" },
		{ "1,2,3,4,5,6,7,8,9", "more than 8 lengths" },
		{ "v6:1,2,3,4,5,6,7,8,9", "more than 8 lengths" },
		{ "24,", "missing prefix length" },
		{ ",24", "missing prefix length" },
		{ "24,,16", "missing prefix length" },
		{ "+24", "decimal digits only" },
		{ "24;64", "decimal digits only" },
		{ "1024", "at most 3 digits" },
		{ "v4:24;v4:16", "v4: is given twice" },
		{ "v6:64;v6:", "v6: is given twice" },
		{ "v5:24", "must start with v4: or v6:" },
		{ "V4:24", "must start with v4: or v6:" },
		{ "v4", "decimal digits only" },
		{ "v4:24;", "must start with v4: or v6:" },
		{ "v4:24;;v6:64", "must start with v4: or v6:" },
		{ "24,v6:64", "must start with v4: or v6:" },
		{ "v4:", "no length at all" },
		{ "v4:;v6:", "no length at all" },
		{ "24, 16", "whitespace" },
	};
	struct ca_load_opts opts, before;
	struct ca_error err = { "" };

	(void)state;
	memset(&opts, 0xa5, sizeof(opts));
	before = opts;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (ca_parse_prefix_list(cases[i].input, &opts, &err) != -EINVAL)
			fail_msg("%s: accepted", cases[i].input);
		assert_memory_equal(&opts, &before, sizeof(opts));
		assert_message(cases[i].input, &err, cases[i].input, cases[i].why);
	}
	assert_int_equal(ca_parse_prefix_list(NULL, &opts, &err), -EINVAL);
	assert_memory_equal(&opts, &before, sizeof(opts));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fixed),
		cmocka_unit_test(test_parse_relative),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_invalid_unprintable),
		cmocka_unit_test(test_parse_length_limit),
		cmocka_unit_test(test_parse_null),
		cmocka_unit_test(test_parse_n_uses_len),
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_addr_parse_invalid),
		cmocka_unit_test(test_addr_format_round_trip),
		cmocka_unit_test(test_addr_format_errors),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_resolve_without_peer),
		cmocka_unit_test(test_resolve_long_length_on_ipv4_peer),
		cmocka_unit_test(test_resolve_bad_peer_family),
		cmocka_unit_test(test_prefix_contains),
		cmocka_unit_test(test_prefix_contains_all),
		cmocka_unit_test(test_mask_bytes),
		cmocka_unit_test(test_prefix_list),
		cmocka_unit_test(test_prefix_list_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
