/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_policy_request.c - libFuzzer target for the Postfix policy request
 * parser. The input is a stream of requests, parsed as policyd does: one
 * after another until one is incomplete or the stream cannot be followed.
 * Each answer must be one of the documented ones, and a whole request must
 * parse the same when it is all the parser is given.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "policy_request.h"

static void check_text(const char *s)
{
	CHECK(memchr(s, '\0', POLICY_FIELD_MAX) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;

	while (left > 0) {
		struct policy_request req, again;
		struct ca_error err = { "" };
		size_t used = 99, used2;
		int rc = policy_request_parse(p, left, &req, &used, &err);

		CHECK(rc == 0 || rc == -EINVAL || rc == -EMSGSIZE);
		CHECK(used <= left && used <= POLICY_REQUEST_MAX);
		if (rc == -EMSGSIZE) {
			CHECK(used == 0 && left >= POLICY_REQUEST_MAX && err.msg[0]);
			return 0;
		}
		if (rc == 0 && used == 0) {
			CHECK(left < POLICY_REQUEST_MAX);
			return 0;
		}
		CHECK(used > 0 && p[used - 1] == '\n');
		if (rc == 0) {
			CHECK(req.client.family == CA_AF_INET || req.client.family == CA_AF_INET6);
			check_text(req.client_text);
			check_text(req.protocol_state);
			check_text(req.instance);
			CHECK(req.client_text[0] != '\0');
		} else {
			CHECK(err.msg[0] != '\0');
		}
		/* the request alone: the same answer */
		CHECK(policy_request_parse(p, used, &again, &used2, &err) == rc && used2 == used);
		if (rc == 0)
			CHECK(memcmp(&again, &req, sizeof(req)) == 0);
		p += used;
		left -= used;
	}
	return 0;
}
