// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cli_count.c - connaudit count: one count, as a number or JSON. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The prefix counted, as text: "ADDR/LEN", or "all" for /0. */
static const char *prefix_text(const struct ca_prefix *p, char *buf, size_t len)
{
	struct ca_addr a = { .family = p->family };
	size_t n;

	if (p->family == CA_AF_ALL)
		return "all";
	memcpy(a.bytes, p->bytes, sizeof(a.bytes));
	if (ca_addr_format(&a, buf, len))
		return "?";
	n = strlen(buf);
	snprintf(buf + n, len - n, "/%u", p->len);
	return buf;
}

/* Bad input is reported as such even when nothing is loaded: parse
 * everything before opening the maps. */
int cmd_count(const struct cli *c)
{
	const struct ca_service *svc;
	struct ca_services services;
	struct ca_handle *h;
	struct ca_error err;
	struct ca_prefix resolved;
	struct ca_cidr cidr;
	struct ca_addr peer;
	char text[INET6_ADDRSTRLEN + 8];
	uint64_t n = 0;
	int rc;

	if (ca_cidr_parse(c->argv[0], &cidr, &err) ||
	    (c->peer && ca_addr_parse(c->peer, &peer, &err)))
		return cli_usage("%s", err.msg);
	if (ca_cidr_resolve(&cidr, c->peer ? &peer : NULL, &resolved, &err))
		return cli_usage("%s%s", err.msg, c->peer ? "" :
				 " (give the client with --peer ADDR)");
	if (cli_services(c, &services))
		return 1;
	svc = ca_services_find(&services, c->argv[1], &err);
	if (!svc)
		return cli_usage("%s", err.msg);
	h = cli_open(c);
	if (!h)
		return 1;
	rc = (c->cluster ? ca_count_cluster : ca_count)(h, &cidr, svc, c->peer ? &peer : NULL,
							   &n, &err);
	ca_close(h);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (c->json)
		printf("{\"prefix\": \"%s\", \"service\": \"%s\", \"count\": %" PRIu64
		       ", \"exact\": %s}\n", prefix_text(&resolved, text, sizeof(text)),
		       svc->name, n, rc == CA_INCOMPLETE ? "false" : "true");
	else
		printf("%" PRIu64 "\n", n);
	if (rc == CA_INCOMPLETE && (c->cluster || svc->cluster)) {
		/* the message says which node's view is old, and how old */
		cli_fail("warning: this count may be low: %s", err.msg);
		return EXIT_INCOMPLETE;
	}
	if (rc == CA_INCOMPLETE) {
		cli_incomplete_warning();
		return EXIT_INCOMPLETE;
	}
	return 0;
}
