/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * policy_rules.h - the rules file of `connaudit policyd`: which counts to
 * compare with which limits, and what to answer. Pure C: parsing needs no
 * I/O (the fuzzer builds it alone with cidr.c, services.c and errors.c).
 *
 *   # comment ('#' at the start of a field)
 *   on_error = dunno | defer [REPLY...]
 *   SERVICE CIDR LIMIT [REPLY...]
 *   SERVICE rate MONITOR[:FIRST-LAST] CIDR LIMIT [REPLY...]
 */
#ifndef CA_POLICY_RULES_H
#define CA_POLICY_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "connaudit.h"

#define POLICY_RULES_MAX	64
#define POLICY_REPLY_MAX	200	/* an SMTP reply line is at most 512 */
#define POLICY_LIMIT_MAX	1000000000u
#define POLICY_ORIGIN_MAX	128
#define POLICY_TEXT_MAX		48	/* CIDR and monitor as written */
#define POLICY_CLUSTER_SERVICE	"inbound_cidr"	/* SMTP, counted cluster-wide */

enum policy_on_error {
	POLICY_FAIL_OPEN,	/* on_error = dunno: the default */
	POLICY_FAIL_CLOSED,	/* on_error = defer */
};

struct policy_rule {
	unsigned line;				/* in the file, for messages */
	char service[CA_SERVICE_NAME_MAX];	/* as written */
	struct ca_service svc;			/* what it counts (policy_rules_bind) */
	bool cluster;				/* inbound_cidr: every node's sessions */
	bool rate;				/* new connections, not open sessions */
	char monitor[POLICY_TEXT_MAX];		/* rate: "300,6" as written */
	struct ca_monitor mon;			/* rate: the monitor it names */
	unsigned first_window, last_window;	/* rate: windows summed, 0 = now */
	char cidr_text[POLICY_TEXT_MAX];
	struct ca_cidr cidr;
	uint32_t limit;				/* reject when count > limit */
	char reply[POLICY_REPLY_MAX];		/* "" = policy_default_reply */
};

struct policy_rules {
	char origin[POLICY_ORIGIN_MAX];
	enum policy_on_error on_error;
	char on_error_reply[POLICY_REPLY_MAX];	/* fail closed: "" = the default */
	unsigned on_error_line;			/* 0 when not set */
	unsigned n;
	struct policy_rule rule[POLICY_RULES_MAX];
};

/* The answer with on_error = defer when the file gives none. */
#define POLICY_DEFER_REPLY	"421 4.3.0 Session limits cannot be checked now, try again later"

/* Parse a rules file's text into *r (replaced whole); `origin` names the
 * file in messages. Returns 0, or -EINVAL with "origin:line: ..." in err;
 * on failure *r is left as it was. */
int policy_rules_parse(struct policy_rules *r, const char *text, size_t len,
		       const char *origin, struct ca_error *err);

/* Resolve every rule's service in `services` and refuse rules this build
 * cannot count. Returns 0, or -EINVAL / -EOPNOTSUPP with "origin:line: ..." in
 * err. */
int policy_rules_bind(struct policy_rules *r, const struct ca_services *services,
		      struct ca_error *err);

/* The prefix rule r counts for `client` into *out. False when the rule does
 * not apply to that client (a fixed CIDR not holding it, a bare /N longer
 * than 32 for an IPv4 client). */
bool policy_rule_prefix(const struct policy_rule *r, const struct ca_addr *client,
			struct ca_prefix *out);

/* The reply of a rule without its own: "421 4.7.0 ..." naming the limit and
 * the client's prefix, into buf. */
void policy_default_reply(const struct policy_rule *r, const struct ca_prefix *p,
			  char *buf, size_t len);

#endif
