/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_policy_rules.c - the policyd rules file: syntax, on_error, replies,
 * binding to services (and the refusals of what cannot be counted yet),
 * which prefix a rule counts for a client, the default reply. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy_rules.h"

#define ORIGIN	"rules.conf"

static struct policy_rules rules;	/* large: off the stack */

static void parse_ok(const char *text)
{
	struct ca_error err = { "" };

	if (policy_rules_parse(&rules, text, strlen(text), ORIGIN, &err))
		fail_msg("refused: %s", err.msg);
}

/* text is refused with a message holding want; rules are left as they were. */
static void parse_bad(const char *text, const char *want)
{
	static struct policy_rules before;
	struct ca_error err = { "" };

	parse_ok("SMTP /32 7\n");
	before = rules;
	assert_int_equal(policy_rules_parse(&rules, text, strlen(text), ORIGIN, &err), -EINVAL);
	if (!strstr(err.msg, want))
		fail_msg("for \"%s\": want \"%s\" in \"%s\"", text, want, err.msg);
	assert_memory_equal(&rules, &before, sizeof(rules));
}

static void bind_ok(void)
{
	struct ca_services s;
	struct ca_error err = { "" };

	ca_services_defaults(&s);
	if (policy_rules_bind(&rules, &s, &err))
		fail_msg("bind refused: %s", err.msg);
}

static void test_issue_example(void **state)
{
	(void)state;
	parse_ok("SMTP /32,/128 5\n"
		 "SMTP /24,/64 20  421 4.7.0 Too many connections from your network\n");
	assert_int_equal(rules.n, 2);
	assert_int_equal(rules.on_error, POLICY_FAIL_OPEN);	/* the default */
	assert_int_equal(rules.rule[0].line, 1);
	assert_string_equal(rules.rule[0].service, "SMTP");
	assert_int_equal(rules.rule[0].cidr.kind, CA_CIDR_PEER);
	assert_int_equal(rules.rule[0].cidr.v4_len, 32);
	assert_int_equal(rules.rule[0].cidr.v6_len, 128);
	assert_int_equal(rules.rule[0].limit, 5);
	assert_string_equal(rules.rule[0].reply, "");
	assert_string_equal(rules.rule[1].cidr_text, "/24,/64");
	assert_int_equal(rules.rule[1].limit, 20);
	assert_string_equal(rules.rule[1].reply,
			    "421 4.7.0 Too many connections from your network");
	assert_false(rules.rule[1].cluster || rules.rule[1].rate);
	assert_string_equal(rules.origin, ORIGIN);
	bind_ok();
	assert_int_equal(rules.rule[1].svc.ports[0], 25);
}

static void test_comments_and_blanks(void **state)
{
	(void)state;
	parse_ok("# limits\n\n   \t\n"
		 "SMTP\t/24 3 # three\r\n"
		 "  Control /0 0 REJECT see http://example.com/#limits   # why\n"
		 "#on_error = defer\n");
	assert_int_equal(rules.n, 2);
	assert_int_equal(rules.rule[0].line, 4);
	assert_string_equal(rules.rule[0].reply, "");
	assert_int_equal(rules.rule[1].cidr.kind, CA_CIDR_ALL);
	assert_int_equal(rules.rule[1].limit, 0);
	assert_string_equal(rules.rule[1].reply, "REJECT see http://example.com/#limits");
	assert_int_equal(rules.on_error, POLICY_FAIL_OPEN);
	parse_ok("");
	assert_int_equal(rules.n, 0);
}

static void test_on_error(void **state)
{
	(void)state;
	parse_ok("on_error = defer\n");
	assert_int_equal(rules.on_error, POLICY_FAIL_CLOSED);
	assert_string_equal(rules.on_error_reply, "");
	assert_int_equal(rules.on_error_line, 1);
	parse_ok("SMTP /24 3\non_error=defer   451 4.3.0 Try later\n");
	assert_int_equal(rules.on_error, POLICY_FAIL_CLOSED);
	assert_string_equal(rules.on_error_reply, "451 4.3.0 Try later");
	parse_ok("on_error =dunno # fail open\n");
	assert_int_equal(rules.on_error, POLICY_FAIL_OPEN);
	parse_bad("on_error = defer\non_error = dunno\n", ORIGIN ":2: on_error is set twice");
	parse_bad("on_error = maybe\n", ORIGIN ":1: expected on_error = dunno or");
	parse_bad("on_error dunno\n", "expected on_error = dunno");
	parse_bad("on_error =\n", "expected on_error = dunno");
	parse_bad("on_error = dunno 421 4.3.0 x\n", "on_error = dunno takes no reply");
	parse_bad("on_error = defer hello\n", "a reply starts with a 4xx or 5xx code");
}

static void test_rate_and_cluster_syntax(void **state)
{
	(void)state;
	parse_ok("SMTP rate 300,6 /24 30\n"
		 "SMTP rate 900,4:0-3 /24,/64 100 421 4.7.0 connection rate limit exceeded\n"
		 "inbound_cidr /24,/64 60        # cluster-wide\n"
		 "inbound_cidr rate 300,6:2 /32 10\n");
	assert_true(rules.rule[0].rate);
	assert_string_equal(rules.rule[0].monitor, "300,6");
	assert_int_equal(rules.rule[0].first_window, 0);
	assert_int_equal(rules.rule[0].last_window, 0);
	assert_string_equal(rules.rule[1].monitor, "900,4");
	assert_int_equal(rules.rule[1].first_window, 0);
	assert_int_equal(rules.rule[1].last_window, 3);
	assert_string_equal(rules.rule[1].reply, "421 4.7.0 connection rate limit exceeded");
	assert_true(rules.rule[2].cluster);
	assert_false(rules.rule[2].rate);
	assert_true(rules.rule[3].cluster && rules.rule[3].rate);
	assert_int_equal(rules.rule[3].first_window, 2);
	assert_int_equal(rules.rule[3].last_window, 2);
	parse_bad("SMTP rate 300 /24 3\n", "monitor");
	parse_bad("SMTP rate 0,6 /24 3\n", "monitor");
	parse_bad("SMTP rate 300,6:3-1 /24 3\n", "FIRST <= LAST < COUNT");
	parse_bad("SMTP rate 300,6:0-6 /24 3\n", "FIRST <= LAST < COUNT");
	parse_bad("SMTP rate\n", "expected SERVICE rate MONITOR");
}

static void test_bad_rules(void **state)
{
	(void)state;
	parse_bad("SMTP\n", ORIGIN ":1: expected SERVICE CIDR LIMIT");
	parse_bad("\nSMTP /24\n", ORIGIN ":2: expected a LIMIT");
	parse_bad("SMTP /24 three\n", "expected a LIMIT (0..1000000000) after the CIDR: \"three\"");
	parse_bad("SMTP /24 -1\n", "expected a LIMIT");
	parse_bad("SMTP /24 1000000001\n", "expected a LIMIT");
	parse_bad("SMTP /33,/64 3\n", ORIGIN ":1: ");
	parse_bad("SMTP 10.0.0.0/33 3\n", "\"10.0.0.0/33\"");
	parse_bad("SMTP 24 3\n", ":1:");
	parse_bad("SMTP /24 3 OK\n", "a reply starts with a 4xx or 5xx code");
	parse_bad("SMTP /24 3 250 fine\n", "a reply starts with a 4xx or 5xx code");
	parse_bad("SMTP /24 3 421 caf\xc3\xa9\n", "a reply is printable ASCII");
	parse_bad("SMTP /24 3 421 a\x01 b\n", "a reply is printable ASCII");
	parse_bad("a_service_name_of_32_characters_ /24 3\n", "at most 31 characters");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "SMTP /24 3\nSMTP /2\0 3\n";
	struct ca_error err = { "" };

	(void)state;
	assert_int_equal(policy_rules_parse(&rules, text, sizeof(text) - 1, ORIGIN, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, ORIGIN ":2: a NUL byte in the line"));
}

static void test_limits_of_the_file(void **state)
{
	static char text[POLICY_RULES_MAX * 16 + 64];
	char reply[POLICY_REPLY_MAX + 16];
	size_t o = 0;

	(void)state;
	for (unsigned i = 0; i < POLICY_RULES_MAX; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "SMTP /24 %u\n", i);
	parse_ok(text);
	assert_int_equal(rules.n, POLICY_RULES_MAX);
	assert_int_equal(rules.rule[POLICY_RULES_MAX - 1].limit, POLICY_RULES_MAX - 1);
	snprintf(text + o, sizeof(text) - o, "SMTP /24 1\n");
	parse_bad(text, ":65: more than 64 rules");

	memset(reply, 'x', sizeof(reply));
	memcpy(reply, "421 ", 4);
	snprintf(text, sizeof(text), "SMTP /24 3 %.*s\n", POLICY_REPLY_MAX - 1, reply);
	parse_ok(text);
	assert_int_equal(strlen(rules.rule[0].reply), POLICY_REPLY_MAX - 1);
	snprintf(text, sizeof(text), "SMTP /24 3 %.*s\n", POLICY_REPLY_MAX, reply);
	parse_bad(text, "a reply is at most 199 characters");
}

static void test_bind(void **state)
{
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	ca_services_defaults(&s);
	assert_int_equal(ca_services_parse(&s, "Submission 587 465\n", 19, "svc", &err), 0);
	parse_ok("Submission /24 3\nSMTP /0 100\n");
	assert_int_equal(policy_rules_bind(&rules, &s, &err), 0);
	assert_int_equal(rules.rule[0].svc.nports, 2);
	assert_int_equal(rules.rule[0].svc.ports[1], 465);

	parse_ok("SMTP /24 3\nsmtp /24 3\n");
	assert_int_equal(policy_rules_bind(&rules, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, ORIGIN ":2: unknown service \"smtp\""));

	/* inbound_cidr binds to SMTP's ports, counted cluster-wide */
	parse_ok("SMTP /24 3\ninbound_cidr /24,/64 60\n");
	assert_int_equal(policy_rules_bind(&rules, &s, &err), 0);
	assert_true(rules.rule[1].cluster && rules.rule[1].svc.cluster);
	assert_int_equal(rules.rule[1].svc.ports[0], 25);
	/* a cluster-wide rate: inbound_cidr's ports and flag, and the monitor */
	parse_ok("SMTP /24 3\ninbound_cidr rate 300,6 /24 60\n");
	assert_int_equal(policy_rules_bind(&rules, &s, &err), 0);
	assert_true(rules.rule[1].rate && rules.rule[1].svc.cluster);
	assert_int_equal(rules.rule[1].mon.size, 300);
	/* a rate rule binds to its monitor */
	parse_ok("\n\nSMTP rate 300,6:1-5 /24 30\n");
	assert_int_equal(policy_rules_bind(&rules, &s, &err), 0);
	assert_int_equal(rules.rule[0].mon.size, 300);
	assert_int_equal(rules.rule[0].mon.windows, 6);
	assert_int_equal(rules.rule[0].last_window, 5);
}

static struct ca_addr addr(const char *s)
{
	struct ca_addr a;
	struct ca_error err;

	assert_int_equal(ca_addr_parse(s, &a, &err), 0);
	return a;
}

static void test_rule_prefix(void **state)
{
	struct ca_addr v4 = addr("192.0.2.77"), v6 = addr("2001:db8:1:2::7");
	struct ca_prefix p;

	(void)state;
	parse_ok("SMTP /24,/64 3\nSMTP /64 3\nSMTP 192.0.2.0/25 3\nSMTP /0 3\nSMTP /24 3\n");
	assert_true(policy_rule_prefix(&rules.rule[0], &v4, &p));
	assert_int_equal(p.len, 24);
	assert_memory_equal(p.bytes, ((uint8_t[]){ 192, 0, 2, 0 }), 4);
	assert_true(policy_rule_prefix(&rules.rule[0], &v6, &p));
	assert_int_equal(p.len, 64);
	/* a bare /64 is for IPv6 clients only */
	assert_false(policy_rule_prefix(&rules.rule[1], &v4, &p));
	assert_true(policy_rule_prefix(&rules.rule[1], &v6, &p));
	/* a fixed network applies to its own clients only */
	assert_true(policy_rule_prefix(&rules.rule[2], &v4, &p));
	assert_int_equal(p.len, 25);
	assert_false(policy_rule_prefix(&rules.rule[2], &(struct ca_addr){ 0 }, &p));
	v4 = addr("192.0.2.200");
	assert_false(policy_rule_prefix(&rules.rule[2], &v4, &p));
	assert_false(policy_rule_prefix(&rules.rule[2], &v6, &p));
	/* /0: everyone */
	assert_true(policy_rule_prefix(&rules.rule[3], &v4, &p));
	assert_int_equal(p.family, CA_AF_ALL);
	/* a bare /24 applies to both families, as in msys.audit */
	assert_true(policy_rule_prefix(&rules.rule[4], &v6, &p));
	assert_int_equal(p.len, 24);
}

static void test_default_reply(void **state)
{
	struct ca_addr v4 = addr("198.51.100.9"), v6 = addr("2001:db8::1");
	struct ca_prefix p;
	char buf[POLICY_REPLY_MAX];

	(void)state;
	parse_ok("SMTP /24,/48 20\nSMTP /0 500\n");
	bind_ok();
	assert_true(policy_rule_prefix(&rules.rule[0], &v4, &p));
	policy_default_reply(&rules.rule[0], &p, buf, sizeof(buf));
	assert_string_equal(buf, "421 4.7.0 Too many SMTP sessions from your network: "
			    "more than 20 from 198.51.100.0/24");
	assert_true(policy_rule_prefix(&rules.rule[0], &v6, &p));
	policy_default_reply(&rules.rule[0], &p, buf, sizeof(buf));
	assert_string_equal(buf, "421 4.7.0 Too many SMTP sessions from your network: "
			    "more than 20 from 2001:db8::/48");
	assert_true(policy_rule_prefix(&rules.rule[1], &v6, &p));
	policy_default_reply(&rules.rule[1], &p, buf, sizeof(buf));
	assert_string_equal(buf, "421 4.7.0 Too many SMTP sessions: more than 500 from "
			    "all networks");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_example),
		cmocka_unit_test(test_comments_and_blanks),
		cmocka_unit_test(test_on_error),
		cmocka_unit_test(test_rate_and_cluster_syntax),
		cmocka_unit_test(test_bad_rules),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_limits_of_the_file),
		cmocka_unit_test(test_bind),
		cmocka_unit_test(test_rule_prefix),
		cmocka_unit_test(test_default_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
