/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connaudit_abi.h - the layout of connaudit's pinned BPF maps.
 *
 * This header is the single source of truth shared by the BPF programs
 * (bpf/connaudit.bpf.c) and every user-space reader. Fixed-width types only;
 * changing any struct here means bumping CA_ABI_VERSION, because readers
 * check it (and the key/value sizes) before trusting a pinned map.
 */
#ifndef CONNAUDIT_ABI_H
#define CONNAUDIT_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CA_ABI_MAGIC	0x43414231u	/* "CAB1" */
#define CA_ABI_VERSION	6u

/* Address families as stored in keys (Linux values, spelled out for BPF). */
#define CA_AF_ALL	0	/* per-port total over both families */
#define CA_AF_INET	2
#define CA_AF_INET6	10

/* Pinned object names, relative to the pin dir (default /sys/fs/bpf/connaudit). */
#define CA_PIN_PEERS	"ca_peers"	/* where each remote address's count is */
#define CA_PIN_PREFIXES	"ca_prefixes"	/* where each configured prefix's and per-port
					 * total's count is */
#define CA_PIN_TABLE	"ca_table"	/* the counts, mapped into readers' memory */
#define CA_PIN_TABLE_USED "ca_table_used"	/* a bit per ca_table slot in use */
#define CA_PIN_MARKS	"ca_marks"	/* per socket cookie: the key each counted socket holds */
#define CA_PIN_STATS	"ca_stats"	/* per-CPU event counters */
#define CA_PIN_HEALTH	"ca_health"	/* anything that makes a count incomplete */
#define CA_PIN_CONFIG	"ca_config"	/* how the auditor was loaded */
#define CA_PIN_PORTS	"ca_ports"	/* the local ports whose sessions are admitted */
#define CA_PIN_UNMARKED	"ca_unmarked"	/* socket storage: sessions left uncounted */
#define CA_PIN_RATES	"ca_rates"	/* connections per window, per key (monitors) */
#define CA_PIN_REMOTE	"ca_remote"	/* cluster: other nodes' counts, summed (cluster agent) */
#define CA_PIN_CLUSTER	"ca_cluster"	/* cluster: each agent's view of the cluster */
#define CA_PIN_ADMITS	"ca_admits"	/* connections admitted per (netns, local port) */
#define CA_PIN_REMOTE_RATES "ca_remote_rates"	/* cluster: other nodes' rate windows, summed */
#define CA_PIN_LINK_STATE	"link_set_state"	/* tp_btf/inet_sock_set_state */
#define CA_PIN_LINK_SOCKOPS	"link_sockops"		/* sock_ops, cgroup-scoped mode only */
#define CA_PIN_LINK_TWIN	"link_state_twin"	/* a second tp_btf program: catches
							 * the runs the kernel skips */

/*
 * Key of ca_peers (prefixlen 32 or 128) and ca_prefixes (a configured
 * prefixlen, or family CA_AF_ALL with prefixlen 0 for the per-port total).
 * IPv4-mapped IPv6 peers are stored as CA_AF_INET.
 */
struct ca_key {
	__u32 netns;		/* inode number of the socket's network namespace */
	__u16 port;		/* local port, host byte order */
	__u8 family;		/* CA_AF_INET, CA_AF_INET6 or CA_AF_ALL */
	__u8 prefixlen;		/* bits of addr that are significant */
	__u8 addr[16];		/* remote address masked to prefixlen, network order;
				 * IPv4 uses addr[0..3], the rest is zero */
};

/*
 * The counts live in ca_table, a BPF_F_MMAPABLE array of struct ca_slot
 * that the loader freezes, so that a reader maps it read-only and answers a
 * query with memory reads, no system call. ca_peers and ca_prefixes, hash
 * maps keyed by struct ca_key, say which slot holds a key's count: their
 * value is a struct ca_ref. Their inserts (BPF_NOEXIST) make sure one key
 * has one counting slot; their walks reclaim slots at zero when full.
 *
 * A slot's 64-bit word is (version << 32) | count, updated only by atomics.
 * The version's low two bits are the slot's state, in this cycle:
 * FREE -> CLAIMED (its key being written) -> LIVE -> DEAD (being reclaimed)
 * -> FREE, each step adding 1, so a version is never reused in a slot until
 * it wraps. A count is changed only by a compare-and-swap that expects the
 * version the ca_ref holds, so an update through a stale reference (the
 * slot reclaimed and reused meanwhile) fails and looks the key up again.
 *
 * A key's slot is one of the first CA_TABLE_PROBES of its probe sequence
 * (struct ca_probe), and a key is in one LIVE slot at most: a reader takes
 * the first LIVE slot there whose key matches. It reads the word, the key,
 * and the word again, and trusts the key only when the version did not
 * change in between. A FREE slot does not end the search: the slot may have
 * been reclaimed after the key was placed further on.
 */
struct ca_ref {
	__u32 slot;		/* index in ca_table */
	__u32 version;		/* the slot's version while it holds this key */
};

struct ca_slot {
	union {
		__u64 word;	/* what the atomics update */
		struct {
			__u32 count;	/* open inbound sessions (little-endian low half) */
			__u32 version;
		};
	};
	struct ca_key key;
};

/* ca_table_used: a BPF_F_MMAPABLE array of __u64, frozen and mapped like
 * ca_table, bit i % 64 of word i / 64 set while slot i is not FREE (set when
 * it is claimed, cleared once it is FREE again), so that a reader going
 * through the whole table reads only the slots in use. */
#define CA_TABLE_USED_WORDS(slots)	(((slots) + 63) / 64)

#define CA_SLOT_FREE	0u
#define CA_SLOT_CLAIMED	1u
#define CA_SLOT_LIVE	2u
#define CA_SLOT_DEAD	3u
#define CA_SLOT_STATE(version)	((version) & 3u)
#define CA_TABLE_PROBES	32	/* slots a key may be in */
#define CA_TABLE_MAX_SLOTS	(1u << 24)

/* A key's probe sequence in a table of `slots` (a power of two) slots, as
 * the kernel and readers both compute it: double hashing from a 64-bit hash
 * of the key, the step odd so that the sequence visits distinct slots. */
struct ca_probe {
	__u64 start, step;
	__u32 mask;
};

static inline void ca_probe_start(struct ca_probe *p, const struct ca_key *k, __u64 seed,
				  __u32 slots)
{
	const __u32 *w = (const __u32 *)k;
	__u64 h = seed;

	for (int i = 0; i < (int)(sizeof(*k) / sizeof(__u32)); i++) {
		h ^= w[i];
		h *= 0x9e3779b97f4a7c15ull;
		h ^= h >> 31;
	}
	p->start = h;
	p->step = (h >> 32) | 1;
	p->mask = slots - 1;
}

/* The slot probe n of the sequence looks at. */
static inline __u32 ca_probe_slot(const struct ca_probe *p, __u32 n)
{
	return (__u32)((p->start + n * p->step) & p->mask);
}

/* Most prefix lengths that can be aggregated in the kernel, per family. */
#define CA_MAX_PREFIXES	8

/* Bits of ca_mark.counted: which entries include this socket. */
#define CA_COUNTED_PEER		(1u << 0)
#define CA_COUNTED_TOTAL	(1u << 1)
#define CA_COUNTED_PREFIX(i)	(1u << (2 + (i)))	/* i indexes ca_config.v4/v6 */

/* ca_mark.flags */
#define CA_MARK_PENDING		(1u << 0)	/* TFO child seen by sock_ops before ESTABLISHED */
#define CA_MARK_INCOMPLETE	(1u << 1)	/* some entry could not be incremented */
#define CA_MARK_ADMITTED	(1u << 2)	/* counted (in every entry of `counted`) */
#define CA_MARK_ACTIVE		(1u << 3)	/* a simultaneous open: active, never counted */

/* Value of ca_marks, a hash map keyed by the socket cookie (__u64). */
struct ca_mark {
	struct ca_key key;	/* exact key the socket was counted under */
	__u32 counted;		/* CA_COUNTED_* bits */
	__u32 flags;		/* CA_MARK_* bits */
	__u32 slot[2 + CA_MAX_PREFIXES];	/* per counted bit: its ca_table slot */
};

/* What the foreign_sockets iterator prints, no map: a socket (fd of process
 * tgid) in another network namespace than its process's. Seeding visits every
 * process's own namespace anyway, and only these can name one more. */
struct ca_foreign_sock {
	__u32 tgid;
	__u32 fd;
	__u32 netns;		/* inode of the socket's network namespace */
};

/* ca_stats: BPF_MAP_TYPE_PERCPU_ARRAY of __u64, indexed by this enum. */
enum ca_stat {
	CA_STAT_EVENTS,		/* state changes that passed the filter: into or out of
				 * a counted state, and the SYN_RECV steps marks need */
	CA_STAT_ADMITTED,	/* sessions counted at ESTABLISHED */
	CA_STAT_DEPARTED,	/* sessions uncounted when leaving ESTABLISHED/CLOSE_WAIT */
	CA_STAT_SEEDED,		/* sessions counted by the iterator at load */
	CA_STAT_SOCKOPS,	/* sock_ops callbacks examined (cgroup mode) */
	CA_STAT_RECLAIMED,	/* zero entries deleted to make room in a full map */
	CA_STAT_NR,
};

/*
 * ca_health: a one-element BPF_F_MMAPABLE array, so a reader can check on
 * every query, for the price of a memory read, whether counts are exact.
 */
struct ca_health {
	__s64 incomplete;	/* gauge: live sessions missing from some entry */
	__u64 peers_full;	/* total inserts into ca_peers refused (map or
				 * ca_table full) */
	__u64 prefixes_full;	/* total inserts into ca_prefixes refused (map or
				 * ca_table full) */
	__u64 contention;	/* total inserts abandoned after too many retries */
	__u64 marks_full;	/* total sessions that found ca_marks full */
	__u64 underflow;	/* decrements that found no entry (sticky) */
	__u64 retired;		/* set by unload: nothing updates these maps any more */
	__s64 uncounted;	/* gauge: live sessions not counted at all (ca_marks
				 * was full); back to 0 when they have closed */
	__u64 rates_full;	/* connections not counted in ca_rates: map full (sticky) */
	__u64 rates_lost;	/* rate increments abandoned after too many retries (sticky) */
	__u64 rates_missed_at;	/* wall-clock second of the latest of those two: windows
				 * that end before it are exact */
	__u64 admits_full;	/* connections not added to ca_admits: map full (sticky) */
};
/* The *_full and contention fields are totals, for rates; whether counts are
 * exact now is said by the gauges (incomplete, uncounted) and underflow. */

/*
 * Connection rates. A monitor counts admitted connections per window of
 * `size` seconds, windows aligned to multiples of size since the Unix epoch
 * (window number = wall-clock seconds / size), and keeps the last `windows`.
 * ca_rates holds, per ca_key (the exact peer, each configured prefix shorter
 * than a full address, the per-port total), one ring of slots per monitor:
 * monitor m uses slot[base + window % windows]. A slot is one 64-bit word,
 * updated by compare-and-swap: the window number it counts (low half) and
 * the count. Window 0 means "never used" (its count is then a random tag of
 * the entry, so that an update through a stale pointer into a recycled
 * element fails); CA_RATE_DEAD marks a slot of an entry being reclaimed.
 */
#define CA_MAX_MONITORS	4
#define CA_RATE_SLOTS	32	/* windows over all monitors */
#define CA_RATE_DEAD	0xffffffffu

struct ca_monitor_cfg {
	__u32 size;		/* seconds per window */
	__u8 windows;		/* windows kept, 1..CA_RATE_SLOTS */
	__u8 base;		/* first slot of this monitor in ca_rate.slot */
	__u8 pad[2];
};

struct ca_rate_slot {
	__u32 window;		/* window number, 0: unused, CA_RATE_DEAD: reclaiming */
	__u32 count;		/* connections in that window */
};

/* Value of ca_rates (key: struct ca_key). */
struct ca_rate {
	struct ca_rate_slot slot[CA_RATE_SLOTS];
};

/*
 * ca_admits: a hash map of the connections admitted (at the handshake, as
 * the rate monitors count them; seeded sessions are not connections) per
 * (namespace, local port) since the first load, so that a metrics scraper
 * can derive rates itself. Kept with or without monitors, never reclaimed
 * (a counter must not go back): a key that finds the map full is not
 * counted at all, and ca_health.admits_full says so.
 */
struct ca_port_key {
	__u32 netns;		/* inode number of the network namespace */
	__u16 port;		/* local port, host byte order */
	__u16 zero;
};
#define CA_ADMITS_MAX_ENTRIES	16384

/* Config flags. */
#define CA_CFG_CGROUP	(1u << 0)	/* admission by sock_ops on one cgroup */
#define CA_CFG_ALL_PORTS (1u << 1)	/* admit on every local port, not only ca_ports' */

/* ca_ports: a one-element array holding a bitmap of local ports; only
 * sessions to a port whose bit is set are counted (unless CA_CFG_ALL_PORTS). */
#define CA_PORT_WORDS	(65536 / 64)
struct ca_ports {
	__u64 bits[CA_PORT_WORDS];
};

/* ca_config: a one-element array, written once by the loader. */
struct ca_config {
	__u32 magic;		/* CA_ABI_MAGIC */
	__u32 abi_version;	/* CA_ABI_VERSION */
	__u32 flags;		/* CA_CFG_* */
	__u8 nr_v4;		/* entries used in v4[] */
	__u8 nr_v6;		/* entries used in v6[] */
	__u8 v4[CA_MAX_PREFIXES];	/* aggregated IPv4 prefix lengths */
	__u8 v6[CA_MAX_PREFIXES];	/* aggregated IPv6 prefix lengths */
	__u8 pad[2];
	__u64 cgroup_id;	/* CA_CFG_CGROUP: id (inode) of the audited cgroup */
	__u32 max_peers;	/* max_entries of ca_peers */
	__u32 max_prefixes;	/* max_entries of ca_prefixes */
	__u64 loaded_at;	/* CLOCK_REALTIME seconds of the first load */
	__u32 max_sessions;	/* max_entries of ca_marks */
	__u32 nr_ports;		/* bits set in ca_ports */
	__u32 parent_mode;	/* load --group: mode of the pin dir's parent before
				 * it was given o+x, plus CA_PARENT_MODE_SAVED; 0: untouched */
	__u32 max_rates;	/* max_entries of ca_rates (1 without monitors) */
	/* Connection-rate monitors (see struct ca_rate). */
	__u8 nr_monitors;
	__u8 pad4[7];
	struct ca_monitor_cfg mon[CA_MAX_MONITORS];
	/* CLOCK_REALTIME - CLOCK_BOOTTIME in ns, taken by the loader at load
	 * and at every --replace: the BPF side's wall clock. */
	__s64 realtime_offset_ns;
	__u64 table_seed;	/* struct ca_probe's seed, random at the first load */
	__u32 table_slots;	/* max_entries of ca_table, a power of two */
	__u32 pad5;
};
#define CA_PARENT_MODE_SAVED	(1u << 16)

/*
 * ca_remote: a hash map written by the cluster agents (`connaudit cluster`),
 * never by BPF. Key: a ca_key whose netns is the namespace of the node that
 * asks (one agent per audited namespace); value (__u64): the sessions of
 * every other live node of the cluster under that key. The agent derives
 * the same keys as ca_peers and ca_prefixes (per peer, per configured
 * prefix, per-port total), so that a cluster query adds one lookup per key.
 */
#define CA_REMOTE_MAX_ENTRIES	(1u << 18)

/*
 * ca_remote_rates: the same for connection rates, written by the agents
 * when this node has monitors. Key: as ca_remote's; value: a struct
 * ca_rate laid out by this node's monitors, each slot the sum of the other
 * live nodes' connections in that window. Nodes whose monitors differ from
 * this node's are left out of it (ca_cluster_state.rate_nodes_off says how
 * many), since their windows do not line up.
 */
#define CA_REMOTE_RATES_MAX_ENTRIES	(1u << 16)

/* Nodes listed in ca_cluster_state (the sum may hold more). */
#define CA_CLUSTER_NODES_MAX	16
#define CA_CLUSTER_NAME_MAX	48

/* ca_cluster_state.flags */
#define CA_CLUSTER_REDIS_UP	(1u << 0)	/* connected, subscribed, node claimed */
#define CA_CLUSTER_EXACT	(1u << 1)	/* ca_remote is the sum of every live node */
#define CA_CLUSTER_RATES_FULL	(1u << 2)	/* ca_remote_rates refused an insert */

/* ca_cluster_node.flags */
#define CA_NODE_SILENT		(1u << 0)	/* not heard from for a few intervals */
#define CA_NODE_INCOMPLETE	(1u << 1)	/* its own counts are incomplete */
#define CA_NODE_REFUSED		(1u << 2)	/* it sent entries that were refused */
#define CA_NODE_MONITORS	(1u << 3)	/* its monitors differ: rates left out */
#define CA_NODE_RATES_INCOMPLETE (1u << 4)	/* it missed some connections lately */

/* One remote node as the agent sees it. */
struct ca_cluster_node {
	char name[CA_CLUSTER_NAME_MAX];
	__u64 heard_ms;		/* CLOCK_MONOTONIC ms of its last message */
	__u32 entries;		/* its per-peer entries */
	__u32 flags;		/* CA_NODE_* */
	__u64 sessions;		/* its sessions, all ports */
};

/*
 * ca_cluster: a hash map keyed by netns inode (__u32), written by the agent
 * for that namespace on every loop (at least every interval). Times are
 * CLOCK_MONOTONIC milliseconds, so only readers on the same host compare them.
 */
struct ca_cluster_state {
	__u64 updated_ms;	/* the agent's loop last ran */
	__u64 exact_ms;		/* ca_remote was last known to be exact */
	__u32 interval_ms;	/* --interval */
	__u32 ttl_ms;		/* --ttl */
	__u32 stale_ms;		/* a view older than this is not exact */
	__u32 flags;		/* CA_CLUSTER_* */
	__u32 nodes;		/* other live nodes in the sum */
	__u32 agent_pid;
	__u64 refused;		/* remote entries refused since the agent started */
	__u64 resyncs;		/* full re-reads of a node (gaps, reconnects) */
	__u32 rate_nodes_off;	/* live nodes whose rates are not in ca_remote_rates
				 * (their monitors differ from this node's) */
	__u32 rate_nodes_incomplete;	/* live nodes that say their own rates are low */
	char node[CA_CLUSTER_NAME_MAX];		/* this node's --node */
	char cluster[CA_CLUSTER_NAME_MAX];	/* --cluster */
	char reason[128];	/* why the view is not exact, if it is not */
	struct ca_cluster_node list[CA_CLUSTER_NODES_MAX];
};
#define CA_CLUSTER_MAX_ENTRIES	256	/* namespaces with an agent */

#endif /* CONNAUDIT_ABI_H */
