// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * policy_rules.c - the rules file of `connaudit policyd` (format in
 * policy_rules.h and man connaudit(8)). Fields are separated by spaces or
 * tabs; '#' at the start of a field begins a comment (so a reply may hold
 * "http://host/#part"); a CR before the LF is ignored.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "errors.h"
#include "policy_rules.h"

#define QUOTE_MAX	48

struct line_ctx {
	const char *origin;
	unsigned line;
	struct ca_error *err;
};

static int line_error(const struct line_ctx *at, const char *problem, const char *field,
		      size_t len)
{
	char qo[POLICY_ORIGIN_MAX], qf[QUOTE_MAX];

	return ca_errf(at->err, -EINVAL, "%s:%u: %s: \"%s\"",
		       ca_quote(at->origin, strlen(at->origin), qo, sizeof(qo)), at->line,
		       problem, ca_quote(field, len, qf, sizeof(qf)));
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The end of a line's content: before a comment, CR and trailing blanks. */
static const char *content_end(const char *p, const char *eol)
{
	const char *e = p;

	while (e < eol && !(*e == '#' && (e == p || blank(e[-1]))))
		e++;
	while (e > p && (blank(e[-1]) || e[-1] == '\r'))
		e--;
	return e;
}

/* Moves *p past the next field of p..end; false when none is left. */
static bool next_field(const char **p, const char *end, const char **field, size_t *len)
{
	const char *s = *p;

	while (s < end && blank(*s))
		s++;
	*field = s;
	while (s < end && !blank(*s))
		s++;
	*len = (size_t)(s - *field);
	*p = s;
	return *len > 0;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && blank(*p))
		p++;
	return p;
}

static bool field_is(const char *f, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(f, want, len) == 0;
}

/* Decimal 0..max without sign or spaces. */
static bool parse_number(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* The SMTP codes and access(5) actions a policy may answer with. */
static bool valid_action(const char *s, size_t len)
{
	static const char *const actions[] = {
		"REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "HOLD",
		"DISCARD", "WARN", "INFO",
	};
	size_t word = 0;

	while (word < len && !blank(s[word]))
		word++;
	if (word == 3 && (s[0] == '4' || s[0] == '5') && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9')
		return true;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (field_is(s, word, actions[i]))
			return true;
	return false;
}

/* The rest of a line as a reply (may be empty: the default). */
static int parse_reply(const char *p, const char *end, char *out, const struct line_ctx *at)
{
	size_t len;

	p = skip_blanks(p, end);
	len = (size_t)(end - p);
	out[0] = '\0';
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return line_error(at, "a reply is printable ASCII", p, len);
	if (len >= POLICY_REPLY_MAX)
		return line_error(at, "a reply is at most 199 characters", p, len);
	if (!valid_action(p, len))
		return line_error(at, "a reply starts with a 4xx or 5xx code or an action "
				  "(REJECT, DEFER, DEFER_IF_PERMIT, ...)", p, len);
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* "on_error = dunno" or "on_error = defer [REPLY]"; p is past "on_error". */
static int parse_on_error(struct policy_rules *r, const char *p, const char *end,
			  const struct line_ctx *at)
{
	static const char usage[] = "expected on_error = dunno or on_error = defer [REPLY]";
	const char *word;
	size_t len;

	if (r->on_error_line)
		return line_error(at, "on_error is set twice (first on another line)", "on_error", 8);
	p = skip_blanks(p, end);
	if (p == end || *p != '=')
		return line_error(at, usage, p, (size_t)(end - p));
	p++;
	if (!next_field(&p, end, &word, &len))
		return line_error(at, usage, word, len);
	r->on_error_line = at->line;
	if (field_is(word, len, "dunno")) {
		p = skip_blanks(p, end);
		if (p < end)
			return line_error(at, "on_error = dunno takes no reply", p, (size_t)(end - p));
		r->on_error = POLICY_FAIL_OPEN;
		return 0;
	}
	if (!field_is(word, len, "defer"))
		return line_error(at, usage, word, len);
	r->on_error = POLICY_FAIL_CLOSED;
	return parse_reply(p, end, r->on_error_reply, at);
}

/* "SIZE,COUNT" or "SIZE,COUNT:FIRST-LAST" (windows summed, 0 = current). */
static int parse_monitor(struct policy_rule *rule, const char *f, size_t len,
			 const struct line_ctx *at)
{
	static const char usage[] = "a rate monitor is SIZE,COUNT or SIZE,COUNT:FIRST-LAST "
				    "(seconds a window, windows kept, the windows summed)";
	const char *colon = memchr(f, ':', len);
	const char *mend = colon ? colon : f + len;
	uint32_t first = 0, last = 0;
	struct ca_error merr;

	if ((size_t)(mend - f) >= sizeof(rule->monitor))
		return line_error(at, usage, f, len);
	memcpy(rule->monitor, f, (size_t)(mend - f));
	if (ca_monitor_parse(rule->monitor, &rule->mon, &merr))
		return line_error(at, merr.msg, f, len);
	if (colon) {
		const char *dash = memchr(colon, '-', (size_t)(f + len - colon));
		const char *fend = dash ? dash : f + len;

		if (!parse_number(colon + 1, (size_t)(fend - colon - 1), 1000, &first))
			return line_error(at, usage, f, len);
		last = first;
		if (dash && !parse_number(dash + 1, (size_t)(f + len - dash - 1), 1000, &last))
			return line_error(at, usage, f, len);
		if (first > last || last >= rule->mon.windows)
			return line_error(at, "rate windows FIRST-LAST must have FIRST <= LAST < "
					  "COUNT", f, len);
	}
	rule->first_window = first;
	rule->last_window = last;
	rule->rate = true;
	return 0;
}

static int parse_rule(struct policy_rule *rule, const char *p, const char *end,
		      const struct line_ctx *at)
{
	struct ca_error cerr;
	const char *f;
	size_t len;
	int rc;

	memset(rule, 0, sizeof(*rule));
	rule->line = at->line;
	next_field(&p, end, &f, &len);
	if (len >= CA_SERVICE_NAME_MAX)
		return line_error(at, "a service name is at most 31 characters", f, len);
	memcpy(rule->service, f, len);
	rule->cluster = strcmp(rule->service, POLICY_CLUSTER_SERVICE) == 0;
	if (!next_field(&p, end, &f, &len))
		return line_error(at, "expected SERVICE CIDR LIMIT [REPLY]", rule->service, strlen(rule->service));
	if (field_is(f, len, "rate")) {
		if (!next_field(&p, end, &f, &len))
			return line_error(at, "expected SERVICE rate MONITOR CIDR LIMIT [REPLY]",
					  rule->service, strlen(rule->service));
		rc = parse_monitor(rule, f, len, at);
		if (rc)
			return rc;
		next_field(&p, end, &f, &len);
	}
	if (len == 0 || len >= sizeof(rule->cidr_text))
		return line_error(at, "expected a CIDR such as /24,/64 after the service",
				  f, len);
	if (ca_cidr_parse_n(f, len, &rule->cidr, &cerr))
		return line_error(at, cerr.msg, f, len);
	memcpy(rule->cidr_text, f, len);
	if (!next_field(&p, end, &f, &len) || !parse_number(f, len, POLICY_LIMIT_MAX, &rule->limit))
		return line_error(at, "expected a LIMIT (0..1000000000) after the CIDR", f, len);
	return parse_reply(p, end, rule->reply, at);
}

static int parse_line(struct policy_rules *r, const char *p, const char *end,
		      const struct line_ctx *at)
{
	static const char key[] = "on_error";
	size_t klen = sizeof(key) - 1;

	p = skip_blanks(p, end);
	if (p == end)
		return 0;
	if ((size_t)(end - p) >= klen && memcmp(p, key, klen) == 0 &&
	    (p + klen == end || blank(p[klen]) || p[klen] == '='))
		return parse_on_error(r, p + klen, end, at);
	if (r->n == POLICY_RULES_MAX)
		return line_error(at, "more than 64 rules", p, (size_t)(end - p));
	return parse_rule(&r->rule[r->n++], p, end, at);
}

int policy_rules_parse(struct policy_rules *r, const char *text, size_t len,
		       const char *origin, struct ca_error *err)
{
	struct policy_rules next;
	struct line_ctx at = { origin ? origin : "(rules)", 0, err };
	const char *end = text + len;

	memset(&next, 0, sizeof(next));
	snprintf(next.origin, sizeof(next.origin), "%s", at.origin);
	for (const char *p = text; len && p < end; ) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		int rc;

		at.line++;
		if (memchr(p, '\0', (size_t)(eol - p)))
			return line_error(&at, "a NUL byte in the line", p, (size_t)(eol - p));
		rc = parse_line(&next, p, content_end(p, eol), &at);
		if (rc)
			return rc;
		p = nl ? nl + 1 : end;
	}
	*r = next;
	return 0;
}

int policy_rules_bind(struct policy_rules *r, const struct ca_services *services,
		      struct ca_error *err)
{
	for (unsigned i = 0; i < r->n; i++) {
		struct policy_rule *rule = &r->rule[i];
		const struct ca_service *svc;
		struct ca_error serr;

		svc = ca_services_find(services, rule->service, &serr);
		if (!svc)
			return ca_errf(err, -EINVAL, "%s:%u: %s (services come from the services "
				       "file, --config)", r->origin, rule->line, serr.msg);
		rule->svc = *svc;
	}
	return 0;
}

bool policy_rule_prefix(const struct policy_rule *r, const struct ca_addr *client,
			struct ca_prefix *out)
{
	if (r->cidr.kind == CA_CIDR_FIXED && !ca_prefix_contains(&r->cidr.fixed, client))
		return false;
	if (r->cidr.kind == CA_CIDR_PEER && client->family == CA_AF_INET && r->cidr.v4_len > 32)
		return false;
	return ca_cidr_resolve(&r->cidr, client, out, NULL) == 0;
}

void policy_default_reply(const struct policy_rule *r, const struct ca_prefix *p,
			  char *buf, size_t len)
{
	struct ca_addr a = { .family = p->family };
	char net[INET6_ADDRSTRLEN] = "";

	char per[POLICY_TEXT_MAX + 48] = "";

	/* Momentum's wording for a rate: "connection rate limit exceeded". */
	if (r->rate)
		snprintf(per, sizeof(per), " in windows %u-%u of %s", r->first_window,
			 r->last_window, r->monitor);
	memcpy(a.bytes, p->bytes, sizeof(a.bytes));
	if (p->family == CA_AF_ALL || ca_addr_format(&a, net, sizeof(net)))
		snprintf(buf, len, "421 4.7.0 Too many %s %s: more than %u from all "
			 "networks%s", r->svc.name, r->rate ? "connections" : "sessions", r->limit,
			 per);
	else
		snprintf(buf, len, "421 4.7.0 Too many %s %s from your network: more "
			 "than %u from %s/%u%s", r->svc.name, r->rate ? "connections" : "sessions",
			 r->limit, net, p->len, per);
}
