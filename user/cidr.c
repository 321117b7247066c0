/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cidr.c - the one parser and matcher of addresses, CIDRs and prefix-length
 * lists. Address syntax is inet_pton's: this file only splits the text
 * around addresses and checks prefix lengths.
 *
 * The internal parsers return NULL on success or a reason, a static string
 * saying what is wrong; the public functions turn a reason into a message
 * that quotes the whole input and names the accepted forms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"
#include "errors.h"

#define STR_(x)	#x
#define STR(x)	STR_(x)

/* Above every valid input ("[" + a 45-character IPv6 + "]/128" is 51, the
 * longest prefix list 61): the cap keeps messages short and lets inet_pton
 * work on a copy on the stack. */
#define TEXT_MAX	64
#define QUOTE_MAX	80

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) spends this many bits before the IPv4. */
#define MAPPED_BITS	96

struct syntax {
	const char *name;	/* what the input is, for "invalid NAME" */
	const char *forms;	/* what would have been accepted */
};

static const struct syntax cidr_syntax = {
	"CIDR", "/N, /N,/M, /0, addr, addr/len or [IPv6]/len"
};
static const struct syntax addr_syntax = {
	"address", "a.b.c.d, IPv6 or [IPv6]"
};
static const struct syntax list_syntax = {
	"prefix list", "24,16,64,48 or v4:24,16;v6:64,48"
};

static int invalid(struct ca_error *err, const struct syntax *syn,
		   const char *s, size_t len, const char *why)
{
	char q[QUOTE_MAX];

	return ca_errf(err, -EINVAL, "invalid %s \"%s\": %s (forms: %s)",
		       syn->name, ca_quote(s, s ? len : 0, q, sizeof(q)), why, syn->forms);
}

/* Checks every parser makes before looking at the syntax. */
static const char *check_text(const char *s, size_t len)
{
	if (!s)
		return "no text (NULL)";
	if (len == 0)
		return "empty";
	if (len > TEXT_MAX)
		return "longer than " STR(TEXT_MAX) " characters";
	if (memchr(s, '\0', len))
		return "embedded NUL byte";
	for (size_t i = 0; i < len; i++)
		if (memchr(" \t\n\v\f\r", s[i], 6))
			return "whitespace is not allowed";
	return NULL;
}

/* ---- prefix lengths ---------------------------------------------------- */

/* 1 to 3 decimal digits and nothing else: no sign, no space. */
static const char *parse_decimal(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	if (n == 0)
		return "missing prefix length";
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return "a prefix length is decimal digits only";
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (n > 3)
		return "a prefix length has at most 3 digits";
	*out = v;
	return NULL;
}

static const char *parse_bits(const char *s, size_t n, unsigned max,
			      const char *out_of_range, unsigned *out)
{
	const char *why = parse_decimal(s, n, out);

	return !why && *out > max ? out_of_range : why;
}

/* ---- addresses --------------------------------------------------------- */

static unsigned family_bits(uint8_t family)
{
	return family == CA_AF_INET ? 32 : 128;
}

static bool pton(int af, const char *s, size_t n, void *dst)
{
	char buf[TEXT_MAX + 1];

	if (n > TEXT_MAX)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(af, buf, dst) == 1;
}

static const char *parse_ipv4(const char *s, size_t n, struct ca_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = CA_AF_INET;
	if (!pton(AF_INET, s, n, out->bytes))
		return "expected an IPv4 address a.b.c.d of decimal octets 0..255";
	return NULL;
}

/* The kernel side stores v4-mapped peers as IPv4, so they must parse as IPv4
 * to match; *mapped says the text was ::ffff:a.b.c.d. */
static const char *parse_ipv6(const char *s, size_t n, struct ca_addr *out, bool *mapped)
{
	struct in6_addr a;

	if (!pton(AF_INET6, s, n, &a))
		return "expected an IPv6 address";
	*mapped = IN6_IS_ADDR_V4MAPPED(&a);
	memset(out, 0, sizeof(*out));
	if (*mapped) {
		out->family = CA_AF_INET;
		memcpy(out->bytes, &a.s6_addr[12], 4);
	} else {
		out->family = CA_AF_INET6;
		memcpy(out->bytes, a.s6_addr, 16);
	}
	return NULL;
}

/* An address, IPv6 optionally in brackets. Brackets are checked here rather
 * than left to inet_pton so that the message can say what is wrong. */
static const char *parse_address(const char *s, size_t n, struct ca_addr *out, bool *mapped)
{
	bool bracketed = n > 0 && s[0] == '[';

	*mapped = false;
	if (bracketed) {
		if (n < 2 || s[n - 1] != ']')
			return "'[' without a closing ']'";
		s++;
		n -= 2;
	}
	if (memchr(s, '[', n) || memchr(s, ']', n))
		return "unbalanced brackets";
	if (n == 0)
		return "missing address";
	if (memchr(s, '%', n))
		return "zone ids (%...) are not supported";
	if (memchr(s, ':', n))
		return parse_ipv6(s, n, out, mapped);
	if (bracketed)
		return "brackets are for IPv6 addresses only";
	return parse_ipv4(s, n, out);
}

static void make_prefix(const struct ca_addr *a, unsigned len, struct ca_prefix *out)
{
	out->family = a->family;
	out->len = (uint8_t)len;
	memcpy(out->bytes, a->bytes, sizeof(out->bytes));
	ca_mask_bytes(out->bytes, len);
}

int ca_addr_parse_n(const char *s, size_t len, struct ca_addr *out, struct ca_error *err)
{
	struct ca_addr a;
	bool mapped;
	const char *why = check_text(s, len);

	if (!why && memchr(s, '/', len))
		why = "a prefix length is not allowed here";
	if (!why)
		why = parse_address(s, len, &a, &mapped);
	if (why)
		return invalid(err, &addr_syntax, s, len, why);
	*out = a;
	return 0;
}

int ca_addr_parse(const char *s, struct ca_addr *out, struct ca_error *err)
{
	return ca_addr_parse_n(s, s ? strlen(s) : 0, out, err);
}

int ca_addr_format(const struct ca_addr *a, char *buf, size_t len)
{
	if (a->family != CA_AF_INET && a->family != CA_AF_INET6)
		return -EAFNOSUPPORT;
	/* socklen_t is narrower than size_t; more than this is never needed. */
	if (len > INET6_ADDRSTRLEN)
		len = INET6_ADDRSTRLEN;
	if (!inet_ntop(a->family == CA_AF_INET ? AF_INET : AF_INET6, a->bytes,
		       buf, (socklen_t)len))
		return -ENOSPC;
	return 0;
}

/* ---- CIDRs ------------------------------------------------------------- */

/* A length after ::ffff:a.b.c.d counts the 96 mapping bits, so /120 there is
 * /24 of the IPv4 address. Below 96 it would also cover IPv6 addresses that
 * are not v4-mapped, which no IPv4 prefix can express: refused. */
static const char *parse_fixed_len(const char *s, size_t n, uint8_t family,
				   bool mapped, unsigned *bits)
{
	static const char mapped_range[] =
		"a length on ::ffff:a.b.c.d must be 96..128";
	const char *why;

	if (!mapped)
		return parse_bits(s, n, family_bits(family), family == CA_AF_INET ?
				  "an IPv4 prefix length must be 0..32" :
				  "an IPv6 prefix length must be 0..128", bits);
	why = parse_bits(s, n, 128, mapped_range, bits);
	if (!why && *bits < MAPPED_BITS)
		why = mapped_range;
	if (!why)
		*bits -= MAPPED_BITS;
	return why;
}

/* "addr" or "addr/len"; host bits of addr are dropped, as documented. */
static const char *parse_fixed(const char *s, size_t n, struct ca_cidr *c)
{
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	struct ca_addr a;
	bool mapped;
	unsigned bits;
	const char *why = parse_address(s, alen, &a, &mapped);

	if (why)
		return why;
	bits = family_bits(a.family);
	if (slash)
		why = parse_fixed_len(slash + 1, n - alen - 1, a.family, mapped, &bits);
	if (why)
		return why;
	c->kind = CA_CIDR_FIXED;
	make_prefix(&a, bits, &c->fixed);
	return NULL;
}

/* "/N,/M", given the position of the comma. */
static const char *parse_relative_pair(const char *s, size_t n, const char *comma,
				       struct ca_cidr *c)
{
	const char *end = s + n;
	unsigned v4, v6;
	const char *why = parse_bits(s + 1, (size_t)(comma - s) - 1, 32,
				     "in /N,/M the IPv4 length N must be 0..32", &v4);

	if (why)
		return why;
	if (end - comma < 2 || comma[1] != '/')
		return "expected /M after the comma of /N,/M";
	why = parse_bits(comma + 2, (size_t)(end - comma) - 2, 128,
			 "in /N,/M the IPv6 length M must be 0..128", &v6);
	if (why)
		return why;
	c->kind = CA_CIDR_PEER;
	c->v4_len = (uint8_t)v4;
	c->v6_len = (uint8_t)v6;
	return NULL;
}

/* "/N" or "/N,/M". "/0" alone means every peer of both families and needs no
 * peer; "/0,/0" stays relative: every address of the peer's own family. */
static const char *parse_relative(const char *s, size_t n, struct ca_cidr *c)
{
	const char *comma = memchr(s, ',', n);
	unsigned bits;
	const char *why;

	if (comma)
		return parse_relative_pair(s, n, comma, c);
	why = parse_bits(s + 1, n - 1, 128, "/N must be 0..128", &bits);
	if (why)
		return why;
	c->kind = bits == 0 ? CA_CIDR_ALL : CA_CIDR_PEER;
	c->v4_len = c->v6_len = (uint8_t)bits;
	return NULL;
}

int ca_cidr_parse_n(const char *s, size_t len, struct ca_cidr *out, struct ca_error *err)
{
	struct ca_cidr c;
	const char *why = check_text(s, len);

	memset(&c, 0, sizeof(c));
	if (!why)
		why = s[0] == '/' ? parse_relative(s, len, &c) : parse_fixed(s, len, &c);
	if (why)
		return invalid(err, &cidr_syntax, s, len, why);
	*out = c;
	return 0;
}

int ca_cidr_parse(const char *s, struct ca_cidr *out, struct ca_error *err)
{
	return ca_cidr_parse_n(s, s ? strlen(s) : 0, out, err);
}

static int resolve_peer(const struct ca_cidr *c, const struct ca_addr *peer,
			struct ca_prefix *out, struct ca_error *err)
{
	char text[INET6_ADDRSTRLEN];

	if (!peer)
		return ca_errf(err, -EINVAL, "a peer-relative CIDR (/%u for IPv4, /%u for "
			       "IPv6 peers) needs the connecting peer address",
			       c->v4_len, c->v6_len);
	if (peer->family == CA_AF_INET6) {
		make_prefix(peer, c->v6_len, out);
		return 0;
	}
	if (peer->family != CA_AF_INET)
		return ca_errf(err, -EINVAL, "peer address has unknown family %u", peer->family);
	if (c->v4_len > 32) {
		ca_addr_format(peer, text, sizeof(text));
		return ca_errf(err, -EINVAL,
			       "/%u cannot apply to IPv4 peer %s; use /N,/M to give "
			       "IPv4 and IPv6 lengths apart, e.g. /24,/%u",
			       c->v4_len, text, c->v6_len);
	}
	make_prefix(peer, c->v4_len, out);
	return 0;
}

int ca_cidr_resolve(const struct ca_cidr *c, const struct ca_addr *peer,
		    struct ca_prefix *out, struct ca_error *err)
{
	switch (c->kind) {
	case CA_CIDR_ALL:
		memset(out, 0, sizeof(*out));
		out->family = CA_AF_ALL;
		return 0;
	case CA_CIDR_PEER:
		return resolve_peer(c, peer, out, err);
	case CA_CIDR_FIXED:
		*out = c->fixed;
		return 0;
	}
	return ca_errf(err, -EINVAL, "unknown CIDR kind %d", (int)c->kind);
}

void ca_mask_bytes(uint8_t bytes[16], unsigned len)
{
	if (len >= 128)
		return;
	bytes[len / 8] &= (uint8_t)(0xff00u >> (len % 8));
	memset(bytes + len / 8 + 1, 0, 15 - len / 8);
}

/* Relies on the prefix's host bits being zero, as struct ca_prefix promises. */
bool ca_prefix_contains(const struct ca_prefix *p, const struct ca_addr *a)
{
	uint8_t masked[16];

	if (p->family == CA_AF_ALL)
		return true;
	if (p->family != a->family)
		return false;
	memcpy(masked, a->bytes, sizeof(masked));
	ca_mask_bytes(masked, p->len);
	return memcmp(masked, p->bytes, sizeof(masked)) == 0;
}

/* ---- prefix-length lists for the loader -------------------------------- */

enum { V4, V6 };

struct lengths {
	uint8_t n;
	uint8_t v[CA_MAX_PREFIXES];
};

static const char *add_length(struct lengths sets[2], int fam, unsigned bits)
{
	struct lengths *set = &sets[fam];

	/* 0 is refused: the per-port total is counted anyway. */
	if (bits == 0 || bits > (fam == V6 ? 128u : 32u))
		return fam == V6 ? "IPv6 lengths must be 1..128" :
				   "IPv4 lengths must be 1..32";
	if (memchr(set->v, (int)bits, set->n))
		return "a length is listed twice";
	if (set->n == CA_MAX_PREFIXES)
		return "more than " STR(CA_MAX_PREFIXES) " lengths for one family";
	set->v[set->n++] = (uint8_t)bits;
	return NULL;
}

/* The length of the field at s, up to `sep` or `end`; *next is the field
 * after it, or NULL when this is the last. */
static size_t field(const char *s, const char *end, char sep, const char **next)
{
	const char *at = memchr(s, sep, (size_t)(end - s));

	*next = at ? at + 1 : NULL;
	return (size_t)((at ? at : end) - s);
}

/* A comma list of lengths for family `fam`, or with fam < 0 (the plain form)
 * each length where it can go: above 32 only IPv6 is possible. */
static const char *parse_lengths(const char *s, const char *end, int fam,
				 struct lengths sets[2])
{
	const char *next;
	unsigned bits;

	for (const char *p = s; p; p = next) {
		const char *why = parse_decimal(p, field(p, end, ',', &next), &bits);

		if (!why)
			why = add_length(sets, fam >= 0 ? fam : bits > 32 ? V6 : V4, bits);
		if (why)
			return why;
	}
	return NULL;
}

/* "v4:LIST" or "v6:LIST"; an empty LIST asks for no prefixes of that family. */
static const char *parse_section(const char *s, size_t n, bool seen[2],
				 struct lengths sets[2])
{
	int fam;

	if (n < 3 || s[0] != 'v' || (s[1] != '4' && s[1] != '6') || s[2] != ':')
		return "each part must start with v4: or v6:";
	fam = s[1] == '6' ? V6 : V4;
	if (seen[fam])
		return fam == V6 ? "v6: is given twice" : "v4: is given twice";
	seen[fam] = true;
	return n == 3 ? NULL : parse_lengths(s + 3, s + n, fam, sets);
}

static const char *parse_sections(const char *s, const char *end, struct lengths sets[2])
{
	bool seen[2] = { false, false };
	const char *next;

	for (const char *p = s; p; p = next) {
		const char *why = parse_section(p, field(p, end, ';', &next), seen, sets);

		if (why)
			return why;
	}
	return NULL;
}

int ca_parse_prefix_list(const char *s, struct ca_load_opts *opts, struct ca_error *err)
{
	struct lengths sets[2];
	size_t len = s ? strlen(s) : 0;
	const char *why = check_text(s, len);

	memset(sets, 0, sizeof(sets));
	if (!why)
		why = memchr(s, ':', len) ? parse_sections(s, s + len, sets) :
					    parse_lengths(s, s + len, -1, sets);
	/* nr_v4 = nr_v6 = 0 means "the defaults" to ca_load: refuse rather
	 * than silently turn "none" into the defaults. */
	if (!why && sets[V4].n + sets[V6].n == 0)
		why = "no length at all; leave the list out to get the defaults";
	if (why)
		return invalid(err, &list_syntax, s, len, why);
	opts->nr_v4 = sets[V4].n;
	opts->nr_v6 = sets[V6].n;
	memcpy(opts->v4, sets[V4].v, sizeof(opts->v4));
	memcpy(opts->v6, sets[V6].v, sizeof(opts->v6));
	return 0;
}
