/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_services.c - libFuzzer target for the services.conf parser and the
 * lookup. The input is the config text; the name looked up is its first
 * field. A parse either yields a well-formed table or leaves the old one.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "connaudit.h"

#define ORIGIN	"fuzz.conf"

static void check_name(const char *name)
{
	size_t len = strnlen(name, CA_SERVICE_NAME_MAX);

	CHECK(len >= 1 && len < CA_SERVICE_NAME_MAX);
	CHECK(strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789_.-") == len);
}

static void check_ports(const struct ca_service *svc)
{
	CHECK(svc->nports >= 1 && svc->nports <= CA_SERVICE_PORTS_MAX);
	for (unsigned i = 0; i < CA_SERVICE_PORTS_MAX; i++) {
		if (i >= svc->nports) {
			CHECK(svc->ports[i] == 0);
			continue;
		}
		CHECK(svc->ports[i] != 0);
		for (unsigned j = 0; j < i; j++)
			CHECK(svc->ports[j] != svc->ports[i]);
	}
}

/* Every entry well-formed, names unique, built-ins kept, each findable. */
static void check_table(const struct ca_services *s)
{
	struct ca_services builtins;
	struct ca_error err;

	ca_services_defaults(&builtins);
	CHECK(s->n >= builtins.n && s->n <= CA_SERVICES_MAX);
	for (unsigned i = 0; i < builtins.n; i++)
		CHECK(strcmp(s->svc[i].name, builtins.svc[i].name) == 0);
	for (unsigned i = 0; i < s->n; i++) {
		check_name(s->svc[i].name);
		check_ports(&s->svc[i]);
		CHECK(ca_services_find(s, s->svc[i].name, &err) == &s->svc[i]);
	}
}

/* The lookup of the input's first field: the entry of that name, or NULL
 * with a message. */
static void check_find(const struct ca_services *s, const char *text, size_t len)
{
	char name[64];
	size_t n = 0;
	const struct ca_service *svc;
	struct ca_error err = { "" };

	while (n < len && n < sizeof(name) - 1 && !memchr(" \t\r\n", text[n], 5))
		n++;
	memcpy(name, text, n);
	name[n] = '\0';
	svc = ca_services_find(s, name, &err);
	if (svc == &s->inbound_cidr) {
		/* not named in the config: SMTP's ports (the first entry), cluster-wide */
		CHECK(strcmp(name, "inbound_cidr") == 0 && svc->cluster);
		CHECK(svc->nports == s->svc[0].nports &&
		      memcmp(svc->ports, s->svc[0].ports, sizeof(svc->ports)) == 0);
	} else if (svc) {
		CHECK(svc >= s->svc && svc < s->svc + s->n);
		CHECK(strcmp(svc->name, name) == 0);
		CHECK(svc->cluster == (strcmp(name, "inbound_cidr") == 0));
	} else {
		CHECK(strstr(err.msg, "unknown service") || strstr(err.msg, "clustering"));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ca_services before, once, twice;
	const char *text = (const char *)data;
	struct ca_error err = { "" };
	int rc;

	ca_services_defaults(&before);
	once = before;
	rc = ca_services_parse(&once, text, size, ORIGIN, &err);
	if (rc) {
		CHECK(rc == -EINVAL);
		CHECK(strncmp(err.msg, ORIGIN ":", strlen(ORIGIN ":")) == 0);
		CHECK(memcmp(&once, &before, sizeof(once)) == 0);
	} else {
		check_table(&once);
		/* replacing by name makes a second pass change nothing */
		twice = once;
		CHECK(ca_services_parse(&twice, text, size, ORIGIN, &err) == 0);
		CHECK(memcmp(&twice, &once, sizeof(once)) == 0);
	}
	check_find(&once, text, size);
	return 0;
}
