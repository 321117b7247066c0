/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * policy_request.h - one request of Postfix's policy delegation protocol:
 * "name=value" lines ending in an empty line. Pure C on bytes the caller
 * holds: no I/O, no allocation (the fuzzer builds it alone with cidr.c).
 */
#ifndef CA_POLICY_REQUEST_H
#define CA_POLICY_REQUEST_H

#include <stddef.h>

#include "connaudit.h"

/* The largest request, its empty line included. Postfix's requests are
 * about 1 KiB; anything that does not end within this is not Postfix. */
#define POLICY_REQUEST_MAX	16384
#define POLICY_FIELD_MAX	64	/* kept values (for logs), cut to fit */

struct policy_request {
	struct ca_addr client;			/* client_address, parsed */
	char client_text[POLICY_FIELD_MAX];	/* client_address as sent */
	char protocol_state[POLICY_FIELD_MAX];	/* e.g. CONNECT, RCPT; may be "" */
	char instance[POLICY_FIELD_MAX];	/* Postfix's id of the session */
};

/*
 * Parse the request at the start of buf[0..len). Returns:
 *   0 with *used > 0   a valid request, *req filled, *used bytes taken;
 *   0 with *used == 0  incomplete: read more (len < POLICY_REQUEST_MAX);
 *   -EINVAL, *used > 0 a request that ended but is not valid (no or a bad
 *                      client_address, a line without '=', a NUL byte, a
 *                      request type other than smtpd_access_policy): the
 *                      next request starts after *used bytes;
 *   -EMSGSIZE          no end within POLICY_REQUEST_MAX bytes: the stream
 *                      cannot be followed any further.
 * Every error fills err with a message quoting the input.
 */
int policy_request_parse(const char *buf, size_t len, struct policy_request *req,
			 size_t *used, struct ca_error *err);

#endif
