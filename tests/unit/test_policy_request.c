/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_policy_request.c - the Postfix policy request parser: framing,
 * the attributes kept, and every way a request can be bad. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy_request.h"

/* What Postfix 3.7's smtpd sends at CONNECT, trimmed a little. */
#define CONNECT_REQUEST \
	"request=smtpd_access_policy\n" \
	"protocol_state=CONNECT\n" \
	"protocol_name=SMTP\n" \
	"client_address=192.0.2.7\n" \
	"client_name=unknown\n" \
	"reverse_client_name=unknown\n" \
	"instance=1e2f.6571b0c4.a1b2c.0\n" \
	"sender=\n" \
	"server_address=198.51.100.1\n" \
	"server_port=25\n" \
	"\n"

static int parse(const char *text, size_t len, struct policy_request *req, size_t *used,
		 struct ca_error *err)
{
	return policy_request_parse(text, len, req, used, err);
}

static void test_connect_request(void **state)
{
	struct policy_request req;
	struct ca_error err = { "" };
	size_t used = 0;

	(void)state;
	assert_int_equal(parse(CONNECT_REQUEST, strlen(CONNECT_REQUEST), &req, &used, &err), 0);
	assert_int_equal(used, strlen(CONNECT_REQUEST));
	assert_int_equal(req.client.family, CA_AF_INET);
	assert_memory_equal(req.client.bytes, ((uint8_t[]){ 192, 0, 2, 7 }), 4);
	assert_string_equal(req.client_text, "192.0.2.7");
	assert_string_equal(req.protocol_state, "CONNECT");
	assert_string_equal(req.instance, "1e2f.6571b0c4.a1b2c.0");
}

/* Every prefix of a request is "read more", never an error. */
static void test_incomplete(void **state)
{
	struct policy_request req;
	struct ca_error err;
	size_t used = 99;

	(void)state;
	for (size_t n = 0; n < strlen(CONNECT_REQUEST); n++) {
		assert_int_equal(parse(CONNECT_REQUEST, n, &req, &used, &err), 0);
		assert_int_equal(used, 0);
	}
}

static void test_pipelined(void **state)
{
	static const char two[] = "client_address=2001:db8::1\n\n"
				  "client_address=::ffff:10.1.2.3\nprotocol_state=RCPT\n\n";
	struct policy_request req;
	struct ca_error err;
	size_t used;

	(void)state;
	assert_int_equal(parse(two, strlen(two), &req, &used, &err), 0);
	assert_int_equal(used, strlen("client_address=2001:db8::1\n\n"));
	assert_int_equal(req.client.family, CA_AF_INET6);
	assert_string_equal(req.protocol_state, "");
	assert_int_equal(parse(two + used, strlen(two) - used, &req, &used, &err), 0);
	assert_int_equal(req.client.family, CA_AF_INET);	/* mapped: IPv4 */
	assert_memory_equal(req.client.bytes, ((uint8_t[]){ 10, 1, 2, 3 }), 4);
	assert_string_equal(req.protocol_state, "RCPT");
}

static void test_crlf(void **state)
{
	static const char text[] = "request=smtpd_access_policy\r\nclient_address=192.0.2.1\r\n\r\n";
	struct policy_request req;
	struct ca_error err;
	size_t used;

	(void)state;
	assert_int_equal(parse(text, strlen(text), &req, &used, &err), 0);
	assert_int_equal(used, strlen(text));
	assert_string_equal(req.client_text, "192.0.2.1");
}

/* A bad request that ends is skipped whole: the next one is fine. */
static void test_bad_requests(void **state)
{
#define C(text, msg)	{ text, sizeof(text) - 1, msg }
	static const struct {
		const char *text;
		size_t len;
		const char *msg;
	} cases[] = {
		C("\n", "no client_address"),
		C("request=smtpd_access_policy\nprotocol_state=CONNECT\n\n", "no client_address"),
		C("client_address=192.0.2.300\n\n", "not an IP address: \"192.0.2.300\""),
		C("client_address=\n\n", "not an IP address"),
		C("client_address=192.0.2.0/24\n\n", "not an IP address"),
		C("client_address=192.0.2.1\nclient_address=192.0.2.2\n\n", "given twice"),
		C("garbage\nclient_address=192.0.2.1\n\n", "name=value: \"garbage\""),
		C("=x\nclient_address=192.0.2.1\n\n", "name=value"),
		C("request=other\nclient_address=192.0.2.1\n\n", "not smtpd_access_policy"),
		C("client_address=192.0.2.1\x00\n\n", "NUL byte"),
		C("client_address=192.0.2.1\nname=a\0" "b\n\n", "NUL byte"),
	};
	static const char next[] = "client_address=198.51.100.9\n\n";

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		size_t len = cases[i].len, used = 0;
		struct policy_request req;
		struct ca_error err = { "" };

		memcpy(buf, cases[i].text, len);
		memcpy(buf + len, next, sizeof(next) - 1);
		assert_int_equal(parse(buf, len + sizeof(next) - 1, &req, &used, &err), -EINVAL);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: want \"%s\" in \"%s\"", i, cases[i].msg, err.msg);
		assert_int_equal(used, len);
		assert_int_equal(parse(buf + used, sizeof(next) - 1, &req, &used, &err), 0);
		assert_string_equal(req.client_text, "198.51.100.9");
	}
}

static void test_size_limit(void **state)
{
	char *buf = malloc(POLICY_REQUEST_MAX + 64);
	static const char head[] = "client_address=192.0.2.1\nx=";
	struct policy_request req;
	struct ca_error err = { "" };
	size_t used = 7;

	(void)state;
	assert_non_null(buf);
	if (!buf)
		return;	/* unreachable; tells the compiler (ASan builds warn) */
	/* exactly the limit, with its empty line: accepted */
	memcpy(buf, head, sizeof(head) - 1);
	memset(buf + sizeof(head) - 1, 'v', POLICY_REQUEST_MAX - (sizeof(head) - 1) - 2);
	memcpy(buf + POLICY_REQUEST_MAX - 2, "\n\n", 2);
	assert_int_equal(parse(buf, POLICY_REQUEST_MAX, &req, &used, &err), 0);
	assert_int_equal(used, POLICY_REQUEST_MAX);
	/* one byte more: no end within the limit */
	memmove(buf + 1, buf, POLICY_REQUEST_MAX);
	buf[0] = 'y';
	buf[1] = '=';	/* "y=client_address=...": a line of its own */
	buf[2] = '\n';
	assert_int_equal(parse(buf, POLICY_REQUEST_MAX + 1, &req, &used, &err), -EMSGSIZE);
	assert_int_equal(used, 0);
	assert_non_null(strstr(err.msg, "16384 bytes"));
	/* no newline at all, at the limit */
	memset(buf, 'z', POLICY_REQUEST_MAX);
	assert_int_equal(parse(buf, POLICY_REQUEST_MAX, &req, &used, &err), -EMSGSIZE);
	free(buf);
}

/* Values kept for logs are cut to fit, never overflow. */
static void test_long_values(void **state)
{
	char text[1024];
	struct policy_request req;
	struct ca_error err;
	size_t used;

	(void)state;
	snprintf(text, sizeof(text), "protocol_state=%0200d\ninstance=%0300d\n"
		 "client_address=192.0.2.1\n\n", 0, 0);
	assert_int_equal(parse(text, strlen(text), &req, &used, &err), 0);
	assert_int_equal(strlen(req.protocol_state), POLICY_FIELD_MAX - 1);
	assert_int_equal(strlen(req.instance), POLICY_FIELD_MAX - 1);
	snprintf(text, sizeof(text), "client_address=%0100d\n\n", 0);
	assert_int_equal(parse(text, strlen(text), &req, &used, &err), -EINVAL);
	assert_int_equal(used, strlen(text));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_request),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_long_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
