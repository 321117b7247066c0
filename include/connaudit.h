/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connaudit.h - count open inbound TCP sessions by CIDR and service.
 *
 * Conventions: functions return 0 (or a non-negative value where noted) on
 * success and a negative errno on failure, with a human-readable message in
 * the caller's struct ca_error. Nothing here prints or exits. No function
 * allocates on the query path (ca_count and what it calls).
 */
#ifndef CONNAUDIT_H
#define CONNAUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connaudit_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CA_DEFAULT_PIN_DIR	"/sys/fs/bpf/connaudit"
#define CA_DEFAULT_CONFIG	"/etc/connaudit/services.conf"
#define CA_ENV_PIN_DIR		"CONNAUDIT_PIN_DIR"
#define CA_ENV_CONFIG		"CONNAUDIT_CONFIG"

/* Returned (positive) by the count functions when the kernel side reports
 * that some session could not be counted: *count is then a lower bound. */
#define CA_INCOMPLETE	1

#define CA_ERRMSG_MAX	256
/* A message buffer owned by the caller; filled on every failure. */
struct ca_error {
	char msg[CA_ERRMSG_MAX];
};

/* ---- addresses and CIDRs (user/cidr.c) --------------------------------- */

/* An IPv4 or IPv6 address. IPv4 (including ::ffff:a.b.c.d) uses
 * bytes[0..3] and family CA_AF_INET; the rest of bytes is zero. */
struct ca_addr {
	uint8_t family;		/* CA_AF_INET or CA_AF_INET6 */
	uint8_t bytes[16];	/* network byte order */
};

/* A concrete prefix: every address of `family` whose first `len` bits equal
 * those of `bytes`. family CA_AF_ALL (len 0) matches every address. */
struct ca_prefix {
	uint8_t family;
	uint8_t len;
	uint8_t bytes[16];	/* host bits are always zero */
};

enum ca_cidr_kind {
	CA_CIDR_ALL,		/* "/0": every peer, both families */
	CA_CIDR_PEER,		/* "/N" or "/N,/M": relative to the peer address */
	CA_CIDR_FIXED,		/* "addr" or "addr/len" */
};

/* A parsed CIDR argument, reusable across queries. */
struct ca_cidr {
	enum ca_cidr_kind kind;
	uint8_t v4_len;		/* CA_CIDR_PEER: bits applied to an IPv4 peer (a bare
				 * "/N" may hold up to 128: refused at resolve time
				 * for IPv4 peers) */
	uint8_t v6_len;		/* CA_CIDR_PEER: bits applied to an IPv6 peer */
	struct ca_prefix fixed;	/* CA_CIDR_FIXED */
};

/* Parse an address: dotted IPv4, IPv6 with or without brackets; IPv4-mapped
 * IPv6 becomes IPv4. Returns 0, or -EINVAL with a message quoting `s`. */
int ca_addr_parse(const char *s, struct ca_addr *out, struct ca_error *err);

/* Format an address (IPv4 dotted, IPv6 compressed) into buf.
 * Returns 0, -ENOSPC if len is too small (INET6_ADDRSTRLEN suffices), or
 * -EAFNOSUPPORT for an unknown family. */
int ca_addr_format(const struct ca_addr *a, char *buf, size_t len);

/* Parse a CIDR argument in any form of the msys.audit API ("/24", "/24,/64",
 * "/0", "addr", "addr/len", "[v6]", "[v6]/len"). Host bits are accepted and
 * masked off. Returns 0, or -EINVAL with a message quoting the input. */
int ca_cidr_parse(const char *s, struct ca_cidr *out, struct ca_error *err);

/* Turn a parsed CIDR into a concrete prefix, using `peer` for the
 * peer-relative forms (peer may be NULL for the others). Returns 0, or
 * -EINVAL when a peer is needed but missing or the length does not fit the
 * peer's family. */
int ca_cidr_resolve(const struct ca_cidr *c, const struct ca_addr *peer,
		    struct ca_prefix *out, struct ca_error *err);

/* True when `a` lies inside `p`. */
bool ca_prefix_contains(const struct ca_prefix *p, const struct ca_addr *a);

/* Zero every bit of bytes past `len` (len <= 128). */
void ca_mask_bytes(uint8_t bytes[16], unsigned len);

/* ---- services (user/services.c) ---------------------------------------- */

#define CA_SERVICE_NAME_MAX	32
#define CA_SERVICE_PORTS_MAX	16
#define CA_SERVICES_MAX		64

struct ca_service {
	char name[CA_SERVICE_NAME_MAX];
	uint16_t ports[CA_SERVICE_PORTS_MAX];
	unsigned nports;
	bool cluster;		/* counted cluster-wide (inbound_cidr) */
};

/* The service table: built-ins plus the config file. Plain data, no
 * allocation: it can live on the stack or in static storage. */
struct ca_services {
	struct ca_service svc[CA_SERVICES_MAX];
	unsigned n;
	/* Momentum's inbound_cidr: SMTP's ports, counted cluster-wide; kept
	 * in step with SMTP unless the config names inbound_cidr itself */
	struct ca_service inbound_cidr;
};

/* Fill `s` with the built-in services (SMTP 25, Control 2025, ECStream 1825,
 * ECCluster 4802). */
void ca_services_defaults(struct ca_services *s);

/* Built-ins, then the config file: `path`, else $CONNAUDIT_CONFIG, else
 * CA_DEFAULT_CONFIG. A missing default file means built-ins only; a missing
 * named file is -ENOENT. A malformed line is -EINVAL naming file and line.
 * All or nothing: after any failure `s` holds the built-ins only. */
int ca_services_load(struct ca_services *s, const char *path, struct ca_error *err);

/* Parse config text (the body of a services.conf) into `s`, on top of what it
 * holds; `origin` names the source in messages. Returns 0 or -EINVAL; on
 * failure `s` is left as it was. */
int ca_services_parse(struct ca_services *s, const char *text, size_t len,
		      const char *origin, struct ca_error *err);

/* Find a service by name (case-sensitive, as Momentum does). "inbound_cidr"
 * is SMTP's ports with `cluster` set (unless the config defines it). Returns
 * NULL with a message listing the known names, or explaining that ECmmove2
 * (Momentum clustering's own listener) is not available. */
const struct ca_service *ca_services_find(const struct ca_services *s,
					  const char *name, struct ca_error *err);

/* ---- connection-rate monitors (user/monitors.c) ------------------------- */

/* A monitor: windows of `size` seconds, the last `windows` kept. Window 0 is
 * the current one, window k the one k windows back. */
struct ca_monitor {
	uint32_t size;		/* 1..CA_MONITOR_SIZE_MAX seconds */
	uint32_t windows;	/* 1..CA_RATE_SLOTS */
};

#define CA_MONITOR_SIZE_MAX	(7u * 24 * 3600)
#define CA_MONITOR_TEXT_MAX	24	/* "604800,32" and then some */

/* Parse one monitor as Momentum writes it: "SIZE,WINDOWS" ("300,6").
 * Returns 0, or -EINVAL with a message quoting `s`. */
int ca_monitor_parse(const char *s, struct ca_monitor *out, struct ca_error *err);

/* Format a monitor as "SIZE,WINDOWS" into buf (CA_MONITOR_TEXT_MAX suffices).
 * Returns 0 or -ENOSPC. */
int ca_monitor_format(const struct ca_monitor *m, char *buf, size_t len);

/* Parse a monitor list ("300,6 1800,4" or "300,6;1800,4") into out (room
 * for CA_MAX_MONITORS) and *n. Windows over all monitors may not exceed
 * CA_RATE_SLOTS. Returns 0, or -EINVAL saying what is wrong. */
int ca_monitors_parse(const char *s, struct ca_monitor *out, unsigned *n, struct ca_error *err);

/* The index of monitor m in a loaded config. Returns it, or -ENOENT with a
 * message listing the configured monitors. */
int ca_monitor_find(const struct ca_config *cfg, const struct ca_monitor *m,
		    struct ca_error *err);

/* The current window number of monitor `mi` of cfg at CLOCK_BOOTTIME
 * `boot_ns`: wall-clock seconds (as the kernel side reckons them) / size. */
uint32_t ca_window_now(const struct ca_config *cfg, unsigned mi, uint64_t boot_ns);

/* The connections one ca_rates entry holds for monitor `mi`, summed over
 * windows start..end (0 is window `now`) that the monitor keeps. */
uint64_t ca_rate_sum(const struct ca_config *cfg, unsigned mi, const struct ca_rate *v,
		     uint32_t now, unsigned start, unsigned end);

/* ---- queries on a loaded auditor (user/handle.c, user/count.c) --------- */

struct ca_handle;

/* Open the pinned maps read-only: `pin_dir`, else $CONNAUDIT_PIN_DIR, else
 * CA_DEFAULT_PIN_DIR. Checks map types, sizes and the ABI version.
 * Returns 0, or -ENOENT (not loaded / not bpffs), -EACCES, -EPROTO (maps are
 * not connaudit's or of another version) with a message saying what to do. */
int ca_open(struct ca_handle **out, const char *pin_dir, struct ca_error *err);

/* Release a handle; NULL is allowed. */
void ca_close(struct ca_handle *h);

/* The pin dir this handle was opened on. */
const char *ca_pin_dir(const struct ca_handle *h);

/* Count in network namespace `netns_inode` instead of the caller's own
 * (0 restores the caller's own). */
void ca_set_netns(struct ca_handle *h, uint32_t netns_inode);

/* The inode of the network namespace this handle counts in. */
uint32_t ca_netns(const struct ca_handle *h);

/* The inode of the caller's network namespace, or 0 (with errno) on error. */
uint32_t ca_netns_self(void);

/* The config the auditor was loaded with. */
const struct ca_config *ca_loaded_config(const struct ca_handle *h);

/* True when the pins no longer refer to the maps this handle holds (the
 * auditor was unloaded or reloaded): reopen to see current counts. */
bool ca_handle_stale(const struct ca_handle *h);

/* Count open inbound sessions to `svc` from `cidr` (peer used by the
 * peer-relative forms, may be NULL otherwise); a service with `cluster` set
 * is counted as ca_count_cluster does. Returns 0, CA_INCOMPLETE (count is a
 * lower bound: see ca_health), or a negative errno. */
int ca_count(struct ca_handle *h, const struct ca_cidr *cidr,
	     const struct ca_service *svc, const struct ca_addr *peer,
	     uint64_t *count, struct ca_error *err);

/* ca_count over the whole cluster: this node's count plus the other live
 * nodes' sum that `connaudit cluster` keeps in ca_remote (local lookups
 * only, no network I/O). Returns 0, a negative errno, or CA_INCOMPLETE with
 * a message in err saying why and how old the cluster view is (no agent,
 * agent stopped, Redis unreachable, a node silent, remote data refused):
 * the count is then this node's plus the last known remote sum. */
int ca_count_cluster(struct ca_handle *h, const struct ca_cidr *cidr,
		     const struct ca_service *svc, const struct ca_addr *peer,
		     uint64_t *count, struct ca_error *err);

/* The cluster agent's record for the handle's namespace. Returns 0, -ENOENT
 * when no agent has run for it, or another negative errno. */
int ca_read_cluster(struct ca_handle *h, struct ca_cluster_state *out, struct ca_error *err);

/* Visit every per-peer entry of the other nodes' sum (ca_remote), in every
 * namespace (key.netns is the asking node's). Returns 0, fn's non-zero value
 * or a negative errno. */
int ca_foreach_remote(struct ca_handle *h,
		      int (*fn)(const struct ca_key *key, uint64_t count, void *arg),
		      void *arg, struct ca_error *err);

/* ca_count on strings: parses cidr, looks up service in `services`, parses
 * peer (may be NULL). Same returns; -EINVAL for bad input. */
int ca_count_str(struct ca_handle *h, const struct ca_services *services,
		 const char *cidr, const char *service, const char *peer,
		 uint64_t *count, struct ca_error *err);

/* Connections admitted to `svc` from `cidr` (as ca_count) in windows
 * start..end of monitor m (0 the current one; windows past those kept read
 * 0), summed. Returns 0, CA_INCOMPLETE (a lower bound: some connection
 * could not be counted), -ENOENT when m is not a loaded monitor, -EINVAL
 * for start > end, or another negative errno. */
int ca_connections(struct ca_handle *h, const struct ca_monitor *m, const struct ca_cidr *cidr,
		   const struct ca_service *svc, const struct ca_addr *peer, unsigned start,
		   unsigned end, uint64_t *count, struct ca_error *err);

/* Read the health record. Returns 0 or a negative errno. */
int ca_read_health(struct ca_handle *h, struct ca_health *out, struct ca_error *err);

/* Sum the per-CPU event counters into out[CA_STAT_NR]. */
int ca_read_stats(struct ca_handle *h, uint64_t out[CA_STAT_NR], struct ca_error *err);

/* Visit every entry of ca_rates (connections per window, in every
 * namespace), with batched lookups. Stops early and returns fn's value if fn
 * returns non-zero; else 0 or a negative errno. */
int ca_foreach_rate(struct ca_handle *h,
		    int (*fn)(const struct ca_key *key, const struct ca_rate *v, void *arg),
		    void *arg, struct ca_error *err);

/* *total = the connections admitted to local port `port` in the handle's
 * namespace since the auditor was first loaded (a replace keeps it; seeded
 * sessions are not connections). Returns 0, CA_INCOMPLETE (with *total 0)
 * when the port has no counter and some counter could not be made because
 * ca_admits was full, or a negative errno. */
int ca_connections_total(struct ca_handle *h, uint16_t port, uint64_t *total,
			 struct ca_error *err);

/* Visit every non-zero entry of ca_peers (prefixes=false) or ca_prefixes
 * (prefixes=true), in every namespace, with batched lookups. Stops early and
 * returns fn's value if fn returns non-zero; else 0 or a negative errno. */
int ca_foreach(struct ca_handle *h, bool prefixes,
	       int (*fn)(const struct ca_key *key, uint64_t count, void *arg),
	       void *arg, struct ca_error *err);

/* ---- administration, needs root (user/loader.c) ------------------------ */

#define CA_MAX_SESSIONS	(1u << 22)	/* largest ca_load_opts.max_sessions */

struct ca_load_opts {
	const char *pin_dir;	/* NULL: CA_DEFAULT_PIN_DIR */
	const char *cgroup;	/* NULL: audit the whole host; else a cgroup2 dir */
	uint8_t nr_v4, nr_v6;	/* 0 and 0: the defaults (/24 /16, /64 /48) */
	uint8_t v4[CA_MAX_PREFIXES];
	uint8_t v6[CA_MAX_PREFIXES];
	uint32_t max_peers;	/* 0: default */
	uint32_t max_prefixes;	/* 0: default */
	uint32_t max_sessions;	/* 0: default; sessions counted at once (ca_marks),
				 * at most CA_MAX_SESSIONS */
	uint8_t nr_monitors;	/* connection-rate monitors (ca_monitors_parse) */
	struct ca_monitor monitors[CA_MAX_MONITORS];
	uint32_t max_rates;	/* 0: default; ca_rates entries, with monitors */
	bool grant_group;	/* let group `gid` read the counts (else root only) */
	uint32_t gid;
	unsigned mode;		/* with grant_group: mode of the map pins (0: 0640) */
	const char *services;	/* services file for the port table (NULL: as
				 * ca_services_load); re-read by a replace */
	const char *ports;	/* more local ports to audit: "25,587,8000-8010" */
	bool all_ports;		/* audit sessions on every local port */
	bool replace;		/* swap programs of a loaded auditor, keep counts;
				 * takes services/ports/all_ports anew */
	bool quiet;		/* no progress lines on stderr */
};

/* Parse a prefix list such as "v4:24,16;v6:64,48" or "24,16,64,48" (lengths
 * above 32 are IPv6) into opts. Returns 0 or -EINVAL. */
int ca_parse_prefix_list(const char *s, struct ca_load_opts *opts, struct ca_error *err);

/* Mount bpffs, load and attach the programs, count the sessions that already
 * exist, and pin everything under the pin dir. Only sessions to the ports of
 * the services (opts->services) and opts->ports are counted, unless
 * opts->all_ports. Returns 0, -EEXIST when already loaded (and not
 * opts->replace), -EBUSY when another load runs, -EINVAL for a bad port list
 * or services file, or another negative errno with a message saying what to
 * do. */
int ca_load(const struct ca_load_opts *opts, struct ca_error *err);

/* Detach the programs and remove the pins. Returns 0, -ENOENT when nothing
 * is loaded there, or a negative errno. */
int ca_unload(const char *pin_dir, struct ca_error *err);

#ifdef __cplusplus
}
#endif

#endif /* CONNAUDIT_H */
