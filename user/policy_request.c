// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * policy_request.c - parse one Postfix policy delegation request
 * (SMTPD_POLICY_README): "name=value" lines, then an empty line. Attributes
 * other than request, client_address, protocol_state and instance are
 * skipped. A CR before the LF is dropped, so that a person typing at `nc -C`
 * is understood too. A bad request is still read to its end, so that the
 * connection can go on with the next one.
 */
#include <errno.h>
#include <string.h>

#include "cidr.h"
#include "errors.h"
#include "policy_request.h"

#define QUOTE_MAX	48

/* What the lines of one request have told so far. */
struct scan {
	struct policy_request *req;
	bool have_client;
	int rc;				/* the first problem, 0 if none */
	struct ca_error *err;
};

static void problem(struct scan *s, const char *what, const char *text, size_t len)
{
	char q[QUOTE_MAX];

	if (s->rc)
		return;		/* the first problem is the one reported */
	s->rc = ca_errf(s->err, -EINVAL, "%s: \"%s\"", what, ca_quote(text, len, q, sizeof(q)));
}

static bool is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* Copy a value kept for logs, cut to fit. */
static void keep(char *dst, const char *v, size_t len)
{
	if (len >= POLICY_FIELD_MAX)
		len = POLICY_FIELD_MAX - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static void client_address(struct scan *s, const char *v, size_t len)
{
	struct ca_error ignored;

	if (s->have_client)
		problem(s, "client_address given twice", v, len);
	else if (ca_addr_parse_n(v, len, &s->req->client, &ignored))
		problem(s, "client_address is not an IP address", v, len);
	else
		keep(s->req->client_text, v, len);
	s->have_client = true;
}

/* One "name=value" line, without its line ending. */
static void attribute(struct scan *s, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);
	size_t nlen, vlen;
	const char *v;

	if (memchr(line, '\0', len) || !eq || eq == line) {
		problem(s, memchr(line, '\0', len) ? "a NUL byte in the request"
			: "a request line is name=value", line, len);
		return;
	}
	nlen = (size_t)(eq - line);
	v = eq + 1;
	vlen = len - nlen - 1;
	if (is(line, nlen, "client_address")) {
		client_address(s, v, vlen);
	} else if (is(line, nlen, "request")) {
		if (!is(v, vlen, "smtpd_access_policy"))
			problem(s, "request type is not smtpd_access_policy", v, vlen);
	} else if (is(line, nlen, "protocol_state")) {
		keep(s->req->protocol_state, v, vlen);
	} else if (is(line, nlen, "instance")) {
		keep(s->req->instance, v, vlen);
	}
}

int policy_request_parse(const char *buf, size_t len, struct policy_request *req,
			 size_t *used, struct ca_error *err)
{
	struct scan s = { .req = req, .err = err };
	size_t avail = len < POLICY_REQUEST_MAX ? len : POLICY_REQUEST_MAX;
	const char *p = buf, *end = buf + avail;

	*used = 0;
	memset(req, 0, sizeof(*req));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (!nl)
			break;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0) {
			*used = (size_t)(nl + 1 - buf);
			if (!s.rc && !s.have_client)
				s.rc = ca_errf(err, -EINVAL, "the request has no client_address");
			return s.rc;
		}
		attribute(&s, p, n);
		p = nl + 1;
	}
	if (len < POLICY_REQUEST_MAX)
		return 0;
	return ca_errf(err, -EMSGSIZE, "no request end (an empty line) within %u bytes",
		       POLICY_REQUEST_MAX);
}
