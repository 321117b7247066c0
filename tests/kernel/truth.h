/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * truth.h - what the kernel itself says is open, to check connaudit against.
 *
 * The ground truth comes from NETLINK_SOCK_DIAG, read independently of
 * connaudit's BPF side: a socket is an inbound session when it is
 * ESTABLISHED or CLOSE_WAIT and a LISTEN socket in the same namespace holds
 * its local port (the rule `ss` users apply). IPv4-mapped peers become IPv4.
 * The rule misreads an outbound socket that holds a listening port itself;
 * scenarios that make one name it in truth_filter.outbound.
 *
 * Counts are kept as tallies: sorted (struct ca_key, count) lists, the same
 * shape for the truth, for what connaudit reports and for the aggregates.
 */
#ifndef KT_TRUTH_H
#define KT_TRUTH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "connaudit.h"

/* ---- tallies ------------------------------------------------------------- */

struct tally_entry {
	struct ca_key key;
	uint64_t count;
};

struct tally {
	struct tally_entry *v;
	size_t n, cap;
};

/* Append; call tally_finish before reading. */
void tally_add(struct tally *t, const struct ca_key *key, uint64_t count);
/* Sort and merge equal keys; drop zero counts. */
void tally_finish(struct tally *t);
void tally_free(struct tally *t);
uint64_t tally_total(const struct tally *t);
/* The aggregates connaudit should hold for these per-peer counts: every
 * prefix length in cfg, plus the per-port total (CA_AF_ALL, prefixlen 0). */
void tally_aggregate(const struct tally *peers, const struct ca_config *cfg,
		     struct tally *out);
/* Print one line per key whose counts differ ("    key: truth N, auditor
 * M") to out (NULL: print nothing); returns how many differ. */
size_t tally_diff(const struct tally *truth, const struct tally *auditor, FILE *out);
/* "port 25 127.0.1.0/24", "port 25 all" into buf. */
const char *tally_key_str(const struct ca_key *k, char *buf, size_t len);

/* A prefix to sum over: family 0 means every peer. */
struct kt_prefix {
	int family;		/* 0, CA_AF_INET or CA_AF_INET6 */
	uint8_t addr[16];
	unsigned len;
};
/* Sum of peer counts on `port` inside p. */
uint64_t tally_sum(const struct tally *peers, uint16_t port, const struct kt_prefix *p);
/* A prefix from "a.b.c.d" / "v6" and a length; addr NULL means every peer. */
struct kt_prefix kt_prefix(const char *addr, unsigned len);

/* ---- sock_diag ------------------------------------------------------------- */

/* A sock_diag socket, opened in some namespace and bound to it for good. */
struct truth_src {
	int fd;
	uint32_t netns;		/* inode, as connaudit's keys carry it */
};

/* Open one in the current namespace. */
void truth_open(struct truth_src *src);
void truth_close(struct truth_src *src);

/* Which of the kernel's inbound sessions a scenario expects to be counted. */
struct truth_filter {
	const uint64_t *cgroups;	/* keep only sockets of these cgroups ... */
	size_t ncgroups;		/* ... when non-zero */
	const uint64_t *outbound;	/* cookies of outbound sockets that hold */
	size_t noutbound;		/* a listening port (the rule misreads them) */
	const struct ca_ports *ports;	/* keep only sessions to these local ports
					 * (the load's table), when set */
};

/* The per-peer tally (prefixlen 32/128) of inbound sessions in src's
 * namespace, keeping those f admits (f may be NULL). Fails the test if
 * sock_diag fails. */
void truth_peers(const struct truth_src *src, const struct truth_filter *f,
		 struct tally *out);

/* What `ss -K` does: SOCK_DESTROY the socket with this cookie. Returns 0,
 * -ENOENT when no socket has it, or the kernel's negative errno
 * (-EOPNOTSUPP without CONFIG_INET_DIAG_DESTROY). */
int truth_destroy(const struct truth_src *src, uint64_t cookie);

#endif
