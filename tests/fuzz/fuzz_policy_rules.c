/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_policy_rules.c - libFuzzer target for the policyd rules file: the
 * parser, binding to the built-in services, which prefix each rule counts
 * for a few clients, and the default reply. A refused file names itself and
 * a line and leaves the rules as they were; an accepted one holds only
 * well-formed rules.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "policy_rules.h"

#define ORIGIN	"fuzz.rules"

static void check_reply(const char *r)
{
	size_t len = strnlen(r, POLICY_REPLY_MAX);

	CHECK(len < POLICY_REPLY_MAX);
	for (size_t i = 0; i < len; i++)
		CHECK(r[i] >= 0x20 && r[i] <= 0x7e);
	CHECK(len == 0 || (r[0] != ' ' && r[len - 1] != ' '));
}

static void check_rule(const struct policy_rule *r, unsigned prev_line)
{
	static const char *const clients[] = { "192.0.2.7", "2001:db8::7", "10.1.2.3" };
	struct ca_prefix p;
	char buf[POLICY_REPLY_MAX];

	CHECK(r->line > prev_line);
	CHECK(r->limit <= POLICY_LIMIT_MAX);
	CHECK(strnlen(r->service, CA_SERVICE_NAME_MAX) < CA_SERVICE_NAME_MAX);
	CHECK(strnlen(r->cidr_text, POLICY_TEXT_MAX) < POLICY_TEXT_MAX && r->cidr_text[0]);
	CHECK(r->cluster == (strcmp(r->service, POLICY_CLUSTER_SERVICE) == 0));
	if (r->rate)
		CHECK(r->first_window <= r->last_window && r->monitor[0]);
	else
		CHECK(!r->monitor[0] && r->first_window == 0 && r->last_window == 0);
	check_reply(r->reply);
	for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
		struct ca_addr a;
		struct ca_error err;

		CHECK(ca_addr_parse(clients[i], &a, &err) == 0);
		if (!policy_rule_prefix(r, &a, &p))
			continue;
		CHECK(p.family == CA_AF_ALL || ca_prefix_contains(&p, &a));
		policy_default_reply(r, &p, buf, sizeof(buf));
		CHECK(strncmp(buf, "421 4.7.0 ", 10) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy_rules rules, before;
	struct ca_services services;
	struct ca_error err = { "" };
	int rc;

	memset(&rules, 0, sizeof(rules));
	before = rules;
	rc = policy_rules_parse(&rules, (const char *)data, size, ORIGIN, &err);
	if (rc) {
		CHECK(rc == -EINVAL);
		CHECK(strncmp(err.msg, ORIGIN ":", strlen(ORIGIN ":")) == 0);
		CHECK(memcmp(&rules, &before, sizeof(rules)) == 0);
		return 0;
	}
	CHECK(rules.n <= POLICY_RULES_MAX);
	CHECK(strcmp(rules.origin, ORIGIN) == 0);
	CHECK(rules.on_error == POLICY_FAIL_OPEN || rules.on_error == POLICY_FAIL_CLOSED);
	check_reply(rules.on_error_reply);
	if (rules.on_error == POLICY_FAIL_OPEN)
		CHECK(!rules.on_error_reply[0]);
	for (unsigned i = 0; i < rules.n; i++)
		check_rule(&rules.rule[i], i ? rules.rule[i - 1].line : 0);
	ca_services_defaults(&services);
	rc = policy_rules_bind(&rules, &services, &err);
	CHECK(rc == 0 || rc == -EINVAL || rc == -EOPNOTSUPP);
	CHECK(rc == 0 || strncmp(err.msg, ORIGIN ":", strlen(ORIGIN ":")) == 0);
	for (unsigned i = 0; rc == 0 && i < rules.n; i++)
		CHECK(!(rules.rule[i].cluster && rules.rule[i].rate) && rules.rule[i].svc.nports &&
		      rules.rule[i].cluster == rules.rule[i].svc.cluster &&
		      (!rules.rule[i].rate || (rules.rule[i].mon.size && rules.rule[i].mon.windows &&
					       rules.rule[i].last_window < rules.rule[i].mon.windows)));
	return 0;
}
