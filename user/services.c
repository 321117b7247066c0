/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * services.c - the table of service names and their local ports: Momentum's
 * built-in listeners, then services.conf.
 *
 * services.conf holds one service a line, "NAME PORT [PORT ...]", fields
 * separated by spaces or tabs; '#' starts a comment anywhere; a CR before the
 * LF is ignored, so files written on Windows load. A line for a built-in
 * name replaces its ports; a new name adds a service. A name given twice in
 * one file is an error: silently keeping either line would hide a typo.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errors.h"
#include "textfile.h"

#define STR_(x)	#x
#define STR(x)	STR_(x)

#define QUOTE_MAX	40

_Static_assert(CA_SERVICE_NAME_MAX == 32, "the name message says 1..31");

void ca_services_defaults(struct ca_services *s)
{
	static const struct ca_service builtins[] = {
		{ .name = "SMTP",      .ports = { 25 },   .nports = 1 },
		{ .name = "Control",   .ports = { 2025 }, .nports = 1 },
		{ .name = "ECStream",  .ports = { 1825 }, .nports = 1 },
		{ .name = "ECCluster", .ports = { 4802 }, .nports = 1 },
	};

	memset(s, 0, sizeof(*s));
	memcpy(s->svc, builtins, sizeof(builtins));
	s->n = sizeof(builtins) / sizeof(builtins[0]);
	s->inbound_cidr = builtins[0];
	strcpy(s->inbound_cidr.name, "inbound_cidr");
	s->inbound_cidr.cluster = true;
}

/* ---- parsing ----------------------------------------------------------- */

/* Where a line is, for "FILE:LINE: ..." messages. */
struct line_ctx {
	const char *origin;
	unsigned line;
	struct ca_error *err;
	unsigned defined[CA_SERVICES_MAX];	/* line that named each service, 0: none */
};

/* Every line error names the problem and quotes the field it is about. */
static int line_error(const struct line_ctx *at, const char *problem,
		      const char *field, size_t len)
{
	char qo[QUOTE_MAX * 2], qf[QUOTE_MAX];

	return ca_errf(at->err, -EINVAL, "%s:%u: %s: \"%s\"",
		       ca_quote(at->origin, strlen(at->origin), qo, sizeof(qo)),
		       at->line, problem, ca_quote(field, len, qf, sizeof(qf)));
}

/* Moves *p past the next field of p..end; false when none is left. */
static bool next_field(const char **p, const char *end, const char **field, size_t *len)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	*field = s;
	while (s < end && *s != ' ' && *s != '\t')
		s++;
	*len = (size_t)(s - *field);
	*p = s;
	return *len > 0;
}

static bool valid_name(const char *s, size_t len)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "abcdefghijklmnopqrstuvwxyz0123456789_.-";

	if (len == 0 || len >= CA_SERVICE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!memchr(allowed, s[i], sizeof(allowed) - 1))
			return false;
	return true;
}

/* Decimal 1..65535; at most 5 digits so that the value cannot overflow. */
static bool parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static int add_port(struct ca_service *svc, const char *field, size_t len,
		    const struct line_ctx *at)
{
	uint16_t port;

	if (!parse_port(field, len, &port))
		return line_error(at, "a port is a decimal number 1..65535", field, len);
	for (unsigned i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port)
			return line_error(at, "port listed twice", field, len);
	if (svc->nports == CA_SERVICE_PORTS_MAX)
		return line_error(at, "more than " STR(CA_SERVICE_PORTS_MAX) " ports for one service", field, len);
	svc->ports[svc->nports++] = port;
	return 0;
}

/* The index of `name` in s, or s->n when it is not there. */
static unsigned index_of(const struct ca_services *s, const char *name)
{
	unsigned i = 0;

	while (i < s->n && strcmp(s->svc[i].name, name) != 0)
		i++;
	return i;
}

static int store_service(struct ca_services *s, const struct ca_service *svc,
			 struct line_ctx *at)
{
	unsigned i = index_of(s, svc->name);
	char problem[96];

	if (i == CA_SERVICES_MAX)
		return line_error(at, "more than " STR(CA_SERVICES_MAX) " services",
				  svc->name, strlen(svc->name));
	if (at->defined[i]) {
		snprintf(problem, sizeof(problem), "service already defined on line %u: "
			 "merge the ports into one line", at->defined[i]);
		return line_error(at, problem, svc->name, strlen(svc->name));
	}
	at->defined[i] = at->line;
	if (i == s->n)
		s->n++;
	s->svc[i] = *svc;
	s->svc[i].cluster = strcmp(svc->name, "inbound_cidr") == 0;
	return 0;
}

/* inbound_cidr follows SMTP's ports (the table's first entry). */
static void follow_smtp(struct ca_services *s)
{
	memcpy(s->inbound_cidr.ports, s->svc[0].ports, sizeof(s->inbound_cidr.ports));
	s->inbound_cidr.nports = s->svc[0].nports;
}

/* One line without its comment and line ending; a blank line is fine. */
static int apply_line(struct ca_services *s, const char *p, const char *end,
		      struct line_ctx *at)
{
	struct ca_service svc;
	const char *field;
	size_t len;
	int rc;

	if (!next_field(&p, end, &field, &len))
		return 0;
	if (!valid_name(field, len))
		return line_error(at, "a service name is 1..31 characters of "
				  "A-Z a-z 0-9 _ . -", field, len);
	memset(&svc, 0, sizeof(svc));
	memcpy(svc.name, field, len);
	while (next_field(&p, end, &field, &len)) {
		rc = add_port(&svc, field, len, at);
		if (rc)
			return rc;
	}
	if (svc.nports == 0)
		return line_error(at, "a service needs at least one port",
				  svc.name, strlen(svc.name));
	return store_service(s, &svc, at);
}

/* The end of the line's content: before a '#', else before a CR-LF's CR. */
static const char *content_end(const char *p, const char *eol)
{
	const char *hash = memchr(p, '#', (size_t)(eol - p));

	if (hash)
		return hash;
	return eol > p && eol[-1] == '\r' ? eol - 1 : eol;
}

int ca_services_parse(struct ca_services *s, const char *text, size_t len,
		      const char *origin, struct ca_error *err)
{
	/* Work on a copy so that a bad line leaves `s` as it was. */
	struct ca_services next;
	struct line_ctx at = { .origin = origin ? origin : "(config)", .err = err };
	const char *end;

	if (len == 0)
		return 0;	/* text may be NULL then, and NULL + 0 is undefined */
	next = *s;
	end = text + len;
	for (const char *p = text; p < end; ) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		int rc;

		at.line++;
		rc = apply_line(&next, p, content_end(p, eol), &at);
		if (rc)
			return rc;
		p = nl ? nl + 1 : end;
	}
	follow_smtp(&next);
	*s = next;
	return 0;
}

/* ---- loading ----------------------------------------------------------- */

struct config_source {
	const char *path;
	const char *via;	/* how the path was chosen, for messages */
	bool named;		/* false for the default path, which may be missing */
};

static struct config_source pick_source(const char *path)
{
	const char *env = getenv(CA_ENV_CONFIG);

	if (path)
		return (struct config_source){ path, "", true };
	/* An empty variable counts as unset, as with `CONNAUDIT_CONFIG= cmd`. */
	if (env && *env)
		return (struct config_source){ env, " (from $" CA_ENV_CONFIG ")", true };
	return (struct config_source){ CA_DEFAULT_CONFIG, "", false };
}

static int source_error(const struct config_source *src, int code, const char *what,
			struct ca_error *err)
{
	char q[QUOTE_MAX * 2];

	return ca_errf(err, code, "config file \"%s\"%s: %s",
		       ca_quote(src->path, strlen(src->path), q, sizeof(q)), src->via, what);
}

static int read_source(const struct config_source *src, char **text, size_t *len,
		       struct ca_error *err)
{
	int rc = ca_read_textfile(src->path, text, len);

	return rc ? source_error(src, rc, ca_textfile_error(rc), err) : 0;
}

int ca_services_load(struct ca_services *s, const char *path, struct ca_error *err)
{
	struct config_source src = pick_source(path);
	char *text = NULL;
	size_t len = 0;
	int rc;

	ca_services_defaults(s);
	rc = read_source(&src, &text, &len, err);
	if (rc == -ENOENT && !src.named)
		return 0;	/* no config installed: the built-ins are the table */
	if (rc)
		return rc;
	rc = ca_services_parse(s, text, len, src.path, err);
	free(text);
	return rc;
}

/* ---- lookup ------------------------------------------------------------ */

/* Momentum's cluster replication listener: connaudit knows no port for it. */
static bool clustering_only(const char *name)
{
	return strcmp(name, "ECmmove2") == 0;
}

static bool known_but_for_case(const struct ca_services *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcasecmp(s->svc[i].name, name) == 0)
			return true;
	return false;
}

/* "SMTP, Control, ..." ending in ", ..." when the rest does not fit in `len`. */
static void list_names(const struct ca_services *s, char *buf, size_t len)
{
	static const char more[] = ", ...";
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < s->n; i++) {
		const char *sep = i ? ", " : "";

		if (o + strlen(sep) + strlen(s->svc[i].name) + sizeof(more) > len) {
			snprintf(buf + o, len - o, "%s", more);
			return;
		}
		o += (size_t)snprintf(buf + o, len - o, "%s%s", sep, s->svc[i].name);
	}
}

const struct ca_service *ca_services_find(const struct ca_services *s,
					  const char *name, struct ca_error *err)
{
	char q[QUOTE_MAX], names[140];
	unsigned i;

	if (!name) {
		ca_errf(err, -EINVAL, "no service name given");
		return NULL;
	}
	i = index_of(s, name);
	if (i < s->n)
		return &s->svc[i];
	if (strcmp(name, "inbound_cidr") == 0)
		return &s->inbound_cidr;
	ca_quote(name, strlen(name), q, sizeof(q));
	if (clustering_only(name)) {
		ca_errf(err, -ENOENT, "service \"%s\" exists in Momentum only with "
			"clustering and connaudit does not audit it; define it "
			"with its ports in services.conf to count it", q);
		return NULL;
	}
	list_names(s, names, sizeof(names));
	ca_errf(err, -ENOENT, "unknown service \"%s\"%s; known services: %s", q,
		known_but_for_case(s, name) ? " (names are case-sensitive)" : "",
		names);
	return NULL;
}
