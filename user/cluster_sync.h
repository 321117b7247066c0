/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cluster_sync.h - what cluster agents say to each other through Redis, as
 * pure functions (no I/O): Redis URLs, hash fields, change notices.
 *
 * Redis layout, for cluster C and node N (the braces are Redis hash tags:
 * every key of a cluster lands in one slot):
 *   ca:{C}:node:N    hash: field "PORT|ADDR" -> sessions from ADDR to local
 *                    port PORT (decimal 1..CA_SYNC_COUNT_MAX); meta fields
 *                    ".tok" (the agent instance) and ".seq" (last notice)
 *   ca:{C}:alive:N   string: the agent's identity and instance, expires
 *                    after the agent's --ttl unless refreshed
 *   ca:{C}:events    channel: one notice per interval per node
 *                    Nodes with rate monitors also keep there, per peer
 *                    with connections in a window they keep, a field
 *                    "~PORT|ADDR" -> "SLOT:WINDOW:COUNT,..." (the slots of
 *                    struct ca_rate that hold a live window, in slot order),
 *                    and the meta field ".mon": their monitors ("300,6 1800,4").
 * A notice is text: a header line "ca1 NODE TOKEN SEQ FLAGS INTERVAL_MS"
 * then one line "FIELD VALUE" per changed entry (VALUE 0: gone). Values
 * are absolute, so applying a notice twice is harmless; a notice whose SEQ
 * does not follow the last one seen (or FLAGS with 'F') means: re-read the
 * node's hash.
 */
#ifndef CA_CLUSTER_SYNC_H
#define CA_CLUSTER_SYNC_H

#include "connaudit.h"

#define CA_SYNC_COUNT_MAX	CA_MAX_SESSIONS	/* no node holds more sessions */
#define CA_SYNC_FIELD_MAX	64	/* "65535|" + an IPv6 address + NUL */
#define CA_SYNC_TOKEN_LEN	16	/* hex digits of an agent instance */
#define CA_SYNC_INTERVAL_MAX	60000
#define CA_SYNC_META_SEQ	".seq"
#define CA_SYNC_META_TOKEN	".tok"
#define CA_SYNC_META_MONITORS	".mon"
#define CA_SYNC_RATE_MARK	'~'	/* first character of a rate field */
#define CA_SYNC_RATE_MAX	(32 * 26)	/* a rate value's text, with its NUL */
#define CA_SYNC_MONITORS_MAX	(CA_MAX_MONITORS * CA_MONITOR_TEXT_MAX)

/* ---- Redis URLs ---------------------------------------------------------- */

struct ca_redis_url {
	bool unix_socket;
	char path[108];		/* unix_socket: the socket */
	char host[256];		/* else: name or address (IPv6 without brackets) */
	unsigned port;		/* default 6379 */
	unsigned db;		/* SELECT, default 0 */
	char user[128];		/* empty: the default user */
	char password[256];	/* empty: none given in the URL */
};

/* Parse redis://[user[:password]@]host[:port][/db] (user and password may
 * be %-encoded; host may be [IPv6]) or unix://[user[:password]@]/path[?db=N]. Returns 0 or
 * -EINVAL with a message quoting the URL (without its password). */
int ca_redis_url_parse(const char *url, struct ca_redis_url *out, struct ca_error *err);

/* ---- names and fields ---------------------------------------------------- */

/* True for 1..CA_CLUSTER_NAME_MAX-1 characters of A-Z a-z 0-9 _ . - */
bool ca_sync_name_ok(const char *s, size_t len);

/* "PORT|ADDR" of a per-peer key (netns is not part of it). Returns the
 * length, or -EINVAL for a key that is not a per-peer key. */
int ca_sync_field_encode(const struct ca_key *k, char buf[CA_SYNC_FIELD_MAX]);

/* Parse a field in the canonical form ca_sync_field_encode writes into a
 * per-peer key with netns 0. Returns 0 or -EINVAL with a message. */
int ca_sync_field_decode(const char *s, size_t len, struct ca_key *k, struct ca_error *err);

/* A count: decimal without leading zeros, 1..CA_SYNC_COUNT_MAX (0 too when
 * allow_zero). Returns 0 or -ERANGE / -EINVAL with a message. */
int ca_sync_count_decode(const char *s, size_t len, bool allow_zero, uint32_t *out,
			 struct ca_error *err);

/* ---- rate windows --------------------------------------------------------- */

/* The monitors of cfg as one text, "300,6 1800,4" ("" without any). */
void ca_sync_monitors_text(const struct ca_config *cfg, char buf[CA_SYNC_MONITORS_MAX]);

/* out = v with only the slots that hold a window cfg's monitors still keep
 * at CLOCK_BOOTTIME boot_ns and a count; every other slot zero. Returns the
 * number of those slots. */
unsigned ca_sync_rate_live(const struct ca_config *cfg, const struct ca_rate *v,
			   uint64_t boot_ns, struct ca_rate *out);

/* The value text of a live ring ("0" when no slot holds a count). Returns
 * its length. */
int ca_sync_rate_encode(const struct ca_rate *live, char buf[CA_SYNC_RATE_MAX]);

/* Parse a value in the canonical form ca_sync_rate_encode writes (slots in
 * increasing order, numbers without leading zeros, window and count not 0).
 * "0" gives all zero. Returns 0 or -EINVAL with a message. */
int ca_sync_rate_decode(const char *s, size_t len, struct ca_rate *out, struct ca_error *err);

/* ---- change notices ------------------------------------------------------- */

#define CA_SYNC_FLAG_FULL	(1u << 0)	/* 'F': re-read the node's hash */
#define CA_SYNC_FLAG_INCOMPLETE	(1u << 1)	/* 'I': its own counts are incomplete */
#define CA_SYNC_FLAG_RATES_LOW	(1u << 2)	/* 'R': it missed connections lately */

struct ca_sync_header {
	char node[CA_CLUSTER_NAME_MAX];
	char token[CA_SYNC_TOKEN_LEN + 1];
	uint64_t seq;
	unsigned flags;		/* CA_SYNC_FLAG_* */
	unsigned interval_ms;
};

/* Write the header line into buf. Returns its length, or -ENOSPC. */
int ca_sync_header_encode(const struct ca_sync_header *h, char *buf, size_t len);

/* Parse the header line of msg (its '\n' may be missing when nothing
 * follows); *body points past it. Returns 0 or -EINVAL with a message. */
int ca_sync_header_decode(const char *msg, size_t len, struct ca_sync_header *h,
			  const char **body, struct ca_error *err);

/* One line of a notice body: a count or a rate entry of one peer. */
struct ca_sync_entry {
	struct ca_key key;	/* per-peer key, netns 0 */
	bool rate;		/* a "~" field: `ring` holds its value */
	uint32_t count;		/* !rate: the sessions (0: the entry is gone) */
	struct ca_rate ring;	/* rate: the live slots (all zero: gone) */
};

/* The next line of a notice body at *p (before end): returns 1 with *e
 * and moves *p on, 0 at the end, or -EINVAL with a message (*p then moves
 * past the bad line). */
int ca_sync_next_entry(const char **p, const char *end, struct ca_sync_entry *e,
		       struct ca_error *err);

#endif
