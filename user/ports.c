// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ports.c - which local ports the kernel admits sessions on.
 *
 * Only sessions to the configured services are counted by default: a
 * session to any other port (anyone on the host can open thousands) would
 * otherwise take room in the maps that the MTA's sessions need.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "ports.h"

#define QUOTE_MAX	40

static void port_set(struct ca_ports *t, unsigned port)
{
	t->bits[port / 64] |= 1ull << (port % 64);
}

/* One port number 1..65535 at *p; advances *p past it. */
static int parse_port(const char **p, unsigned *out)
{
	char *end;
	unsigned long v;

	if (**p < '0' || **p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(*p, &end, 10);
	if (errno || v == 0 || v > 65535)
		return -EINVAL;
	*p = end;
	*out = (unsigned)v;
	return 0;
}

int ca_ports_parse(const char *s, struct ca_ports *t, struct ca_error *err)
{
	const char *p = s, *item;
	char q[QUOTE_MAX];
	unsigned lo, hi;
	int n = 0;

	if (!s || !*s)
		return ca_errf(err, -EINVAL, "empty port list: give ports such as 25,587 "
			       "or a range 8000-8010");
	for (;;) {
		item = p;
		if (parse_port(&p, &lo))
			goto bad;
		hi = lo;
		if (*p == '-') {
			p++;
			if (parse_port(&p, &hi) || hi < lo)
				goto bad;
		}
		if (*p != ',' && *p != '\0')
			goto bad;
		for (unsigned port = lo; port <= hi; port++, n++)
			port_set(t, port);
		if (*p == '\0')
			return n;
		p++;
	}
bad:
	return ca_errf(err, -EINVAL, "bad port list item \"%s\": give ports 1-65535, "
		       "separated by commas, or ranges such as 8000-8010",
		       ca_quote(item, strcspn(item, ","), q, sizeof(q)));
}

int ca_ports_build(const struct ca_load_opts *o, struct ca_ports *t, struct ca_error *err)
{
	struct ca_services s;
	int rc, n = 0;

	memset(t, 0, sizeof(*t));
	rc = ca_services_load(&s, o->services, err);
	if (rc)
		return rc;
	for (unsigned i = 0; i < s.n; i++)
		for (unsigned j = 0; j < s.svc[i].nports; j++)
			port_set(t, s.svc[i].ports[j]);
	if (o->ports) {
		rc = ca_ports_parse(o->ports, t, err);
		if (rc < 0)
			return rc;
	}
	for (unsigned w = 0; w < CA_PORT_WORDS; w++)
		n += __builtin_popcountll(t->bits[w]);
	return n;
}
