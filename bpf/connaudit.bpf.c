// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connaudit.bpf.c - count open inbound TCP sessions per (netns, local port,
 * remote address), and per configured remote prefix.
 *
 * A session is admitted once, when a passively opened socket becomes
 * ESTABLISHED (tp_btf, or sock_ops when scoped to one cgroup), or by the
 * seeding iterator for sockets that existed before load. The counts are in
 * ca_table, an array readers map (struct ca_slot says how it is kept).
 * Admission stores the key, and the slot of every count it added to, in a
 * mark (ca_marks, keyed by the socket cookie); departure, when the socket
 * leaves ESTABLISHED/CLOSE_WAIT, decrements exactly those slots and deletes
 * the mark. Marks make every hook idempotent: two programs
 * attached at once (during `load --replace`) or a socket seen by both the
 * iterator and the tracepoint are counted once.
 *
 * Marks live in a preallocated hash map rather than in socket-local storage:
 * measured here, creating and deleting an sk_storage element per connection
 * (two allocations, and a free deferred through RCU tasks trace) cost about
 * 5% of a loopback connection, a hash insert and delete a fraction of that.
 * A cookie is never reused, so a mark cannot outlive its socket into another.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "connaudit_abi.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "a struct ca_slot is updated as one word with count in the low half"
#endif

#define AF_INET		2
#define AF_INET6	10
#define EEXIST		17
#define E2BIG		7
#define EBUSY		16

/* Tries before an increment gives up (and says so in ca_health): only a
 * concurrent delete of the same entry makes a try fail. */
#define INC_TRIES	8
/* Deepest cgroup nesting followed when seeding in cgroup-scoped mode. */
#define CGROUP_DEPTH	32

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader between open and load; the verifier prunes by it. */
const volatile struct ca_config cfg;

/* Seeding runs the iterator once per network namespace: the kernel walks
 * the listening sockets before the others, so the listeners' ports are
 * known before the sessions on them. Should a listener come after a socket
 * passed over for want of one, seed_rerun asks the loader for another pass
 * (admission is idempotent). Each pass over a namespace walks the
 * established-socket hash table that all namespaces share, so a second pass
 * per namespace would double the load time with many sessions held. The
 * loader gives each namespace a new seed_gen and clears the flags. */
__u32 seed_gen;
bool seed_passed_over, seed_rerun;

/* ca_peers and ca_prefixes share a layout; the loader sets their sizes. */
#define INDEX_MAP(name)						\
	struct {						\
		__uint(type, BPF_MAP_TYPE_HASH);		\
		__uint(max_entries, 65536);			\
		__type(key, struct ca_key);			\
		__type(value, struct ca_ref);			\
		__uint(pinning, LIBBPF_PIN_BY_NAME);		\
	} name SEC(".maps")

INDEX_MAP(ca_peers);
INDEX_MAP(ca_prefixes);

/* The counts (struct ca_slot); the loader sets the size (cfg.table_slots)
 * and freezes it, so that only these programs write it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ca_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_table SEC(".maps");

/* Which slots of ca_table are in use (CA_PIN_TABLE_USED); sized and frozen
 * by the loader like ca_table. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_table_used SEC(".maps");

/* The loader sets the size (--max-sessions). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);	/* socket cookie */
	__type(value, struct ca_mark);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_marks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CA_STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ca_health);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_health SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ca_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_config SEC(".maps");

/* Connections per window (struct ca_rate); the loader sets the size, 1
 * when no monitor is configured. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ca_key);
	__type(value, struct ca_rate);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_rates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CA_ADMITS_MAX_ENTRIES);
	__type(key, struct ca_port_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_admits SEC(".maps");

/* A fresh struct ca_rate is built here: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ca_rate);
} ca_rate_scratch SEC(".maps");

/* Seeding scratch, indexed by local port: the seed_gen of the namespace
 * where a LISTEN socket on that port was last seen. An array holds every
 * port, so no listener can fail to be recorded, and a new generation per
 * namespace needs no clearing in between. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} ca_listen SEC(".maps");

/* The audited local ports (struct ca_ports), filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ca_ports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_ports SEC(".maps");

/* A session that found ca_marks full keeps a flag on its socket, so that
 * ca_health.uncounted can come down when it closes. Used only on that rare
 * path: most sockets never get storage here. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ca_unmarked SEC(".maps");

/* True when sessions to this local port are counted: the first check of
 * every admission, so that sessions to other services (anyone can open
 * them) never take room in the maps. */
static __always_inline bool port_audited(__u16 port)
{
	struct ca_ports *p;
	__u32 zero = 0;

	if (cfg.flags & CA_CFG_ALL_PORTS)
		return true;
	p = bpf_map_lookup_elem(&ca_ports, &zero);
	return p && (p->bits[(port >> 6) & (CA_PORT_WORDS - 1)] >> (port & 63)) & 1;
}

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ca_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Add n to one field of ca_health. Only failures and incomplete sessions
 * come here, so the lookup stays off the common path. */
#define HEALTH_ADD(field, n)						\
	({								\
		__u32 zero_ = 0;					\
		struct ca_health *h_ = bpf_map_lookup_elem(&ca_health, &zero_); \
									\
		if (h_)							\
			__sync_fetch_and_add(&h_->field, n);		\
	})

/* A session that cannot be marked is not counted: say so in the uncounted
 * gauge for as long as its socket lives. If even the flag cannot be stored,
 * the gauge stays up for good (until a reload): too high, never too low. */
static __always_inline void note_unmarked(struct sock *sk)
{
	__u32 *flag = bpf_sk_storage_get(&ca_unmarked, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);

	HEALTH_ADD(marks_full, 1);
	if (flag && *flag)
		return;
	if (flag)
		*flag = 1;
	HEALTH_ADD(uncounted, 1);
}

/* An unmarked socket leaves: take it out of the gauge (once). */
static __always_inline void forget_unmarked(struct sock *sk)
{
	if (bpf_sk_storage_delete(&ca_unmarked, sk) == 0)
		HEALTH_ADD(uncounted, -1);
}

/*
 * Counters are created on first use and stay when they return to zero, so a
 * key that comes and goes (a port's total on a quiet server) costs a
 * compare-and-swap, not an insert and a delete each time. Zero entries are
 * reclaimed only when an insert finds the map full (reclaim_*_zeros()), which
 * bounds the maps by their size. The count is in ca_table (see struct
 * ca_slot for the slot's life); the index maps say where. Races:
 *
 * 1. Reclaim vs increment of the same key. Reclaim claims a slot by a
 *    compare-and-swap LIVE/0 -> DEAD/0, deletes the index entry, then frees
 *    the slot. An increment expects the LIVE version its reference names,
 *    so it never adds to a DEAD or reused slot (it looks up again), and its
 *    BPF_NOEXIST insert fails while the dead entry is still there, so the
 *    delete can only ever remove the dead entry, never a fresh one. If the
 *    claim fails, an increment won and nothing is deleted.
 *
 * 2. Recycled elements. Hash maps reuse a deleted element at once, so a
 *    reference read from an earlier lookup may by now be another key's. An
 *    increment checks the slot's key under the version it expects (a LIVE
 *    slot's key never changes), so it cannot count for another key. A
 *    decrement goes straight to the slot its mark recorded: the session
 *    being uncounted keeps that count at 1 or more, so the slot stays.
 *
 * 3. Two first sessions of one key at once. Each claims a free slot of its
 *    probe sequence and writes the key there before its BPF_NOEXIST
 *    insert; only the winner makes its slot LIVE (with its session in it),
 *    the loser frees its slot again. So a key is in one LIVE slot at most,
 *    and a reader stops at the first. An increment that finds the winner's
 *    slot not LIVE yet (the few instructions in between) looks up again.
 *
 * An increment that still fails after INC_TRIES (a reclaimer stalled between
 * its claim and its delete) is reported in ca_health, never lost silently.
 */
#define VERSION(word)	((__u32)((word) >> 32))
#define SLOT_WORD(version, count)	(((__u64)(version) << 32) | (count))

static __always_inline struct ca_slot *table_slot(__u32 i)
{
	return bpf_map_lookup_elem(&ca_table, &i);
}

static __always_inline bool same_key(const struct ca_key *a, const struct ca_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

/* Slot i's bit in ca_table_used. Only the owner of a claimed (or DEAD) slot
 * changes it: set after the claim, cleared before the slot is FREE again,
 * so a LIVE slot's bit is always set, and a clear never undoes the set of
 * the slot's next claimer. */
static __always_inline void mark_used(__u32 i, bool used)
{
	__u32 w = i / 64;
	__u64 *word = bpf_map_lookup_elem(&ca_table_used, &w);
	__u64 bit = 1ull << (i % 64);

	if (!word)
		return;
	if (used)
		__sync_fetch_and_or(word, bit);
	else
		__sync_fetch_and_and(word, ~bit);
}

/* Free slot i, which this program claimed (for an insert, or DEAD to
 * reclaim). */
static __always_inline void free_slot(__u32 i, struct ca_slot *s, __u32 version)
{
	__u32 next = (version | 3u) + 1;	/* the next FREE version */

	mark_used(i, false);
	__sync_val_compare_and_swap(&s->word, SLOT_WORD(version, 0), SLOT_WORD(next, 0));
}

/*
 * Claim a free slot of key's probe sequence and write the key there; *ref
 * names the slot and the version it will have once LIVE. Global, so that
 * the verifier walks the probe loop once. Returns 0, or -E2BIG when every
 * slot of the sequence is taken.
 */
__noinline int table_claim(const struct ca_key *key, struct ca_ref *ref)
{
	struct ca_probe seq;
	struct ca_key k;

	if (!key || !ref)
		return -E2BIG;
	k = *key;
	ca_probe_start(&seq, &k, cfg.table_seed, cfg.table_slots);
	for (__u32 p = 0; p < CA_TABLE_PROBES; p++) {
		struct ca_slot *s = table_slot(ca_probe_slot(&seq, p));
		__u64 old;
		__u32 v;

		if (!s)
			continue;
		old = *(volatile __u64 *)&s->word;
		v = VERSION(old);
		if (CA_SLOT_STATE(v) != CA_SLOT_FREE ||
		    __sync_val_compare_and_swap(&s->word, old, SLOT_WORD(v + 1, 0)) != old)
			continue;
		mark_used(ca_probe_slot(&seq, p), true);
		s->key = k;
		ref->slot = ca_probe_slot(&seq, p);
		ref->version = v + 2;
		return 0;
	}
	return -E2BIG;
}

struct reclaim_ctx {
	bool any;	/* a flag, not a count: the verifier must see the walk converge */
};

static long reclaim_one(void *map, const struct ca_key *key, struct ca_ref *ref,
			struct reclaim_ctx *ctx)
{
	struct ca_slot *s = table_slot(ref->slot);
	__u32 v = ref->version;

	if (!s || *(volatile __u64 *)&s->word != SLOT_WORD(v, 0) ||
	    __sync_val_compare_and_swap(&s->word, SLOT_WORD(v, 0), SLOT_WORD(v + 1, 0)) !=
	    SLOT_WORD(v, 0))
		return 0;
	bpf_map_delete_elem(map, key);
	free_slot(ref->slot, s, v + 1);
	stat_inc(CA_STAT_RECLAIMED);
	ctx->any = true;
	return 0;
}

/*
 * A walk visits the whole map, and a map full of live entries (which anyone
 * who can open connections from many addresses can bring about) has nothing
 * to reclaim: every new peer would pay a walk for nothing. So at most one
 * walk per map starts in any RECLAIM_GAP_NS, and an insert that finds the
 * map full in between fails at once (and is reported like any refused
 * insert). A walk frees every zero entry at once, so a map that merely
 * filled with zeros needs one walk per refill.
 */
#define RECLAIM_GAP_NS	(20 * 1000 * 1000ull)

__u64 peers_walked_at, prefixes_walked_at, rates_walked_at;	/* bpf_ktime_get_ns() of
									 * the last walk */

/* Claim the right to walk now; false if a walk started less than
 * RECLAIM_GAP_NS ago (or another CPU claimed it first). */
static __always_inline bool may_walk(__u64 *walked_at)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 last = *(volatile __u64 *)walked_at;

	if (last && now - last < RECLAIM_GAP_NS)
		return false;
	return __sync_val_compare_and_swap(walked_at, last, now) == last;
}

/* Delete every zero entry of one map; true if there was any. One function
 * per map: a bpf_for_each_map_elem call that may see either map (clang
 * merges the two calls of an if/else into one) is refused by the 6.1
 * verifier ("tail_call abusing map_ptr"). */
static __noinline bool reclaim_peer_zeros(void)
{
	struct reclaim_ctx ctx = {};

	if (!may_walk(&peers_walked_at))
		return false;
	bpf_for_each_map_elem(&ca_peers, reclaim_one, &ctx, 0);
	return ctx.any;
}

static __noinline bool reclaim_prefix_zeros(void)
{
	struct reclaim_ctx ctx = {};

	if (!may_walk(&prefixes_walked_at))
		return false;
	bpf_for_each_map_elem(&ca_prefixes, reclaim_one, &ctx, 0);
	return ctx.any;
}

/* Slots of a key's probe sequence that admission looks at before it asks
 * the index map: a key almost always sits in one of the first few (the
 * table is at most half full), and a key not found there costs a hash
 * lookup as before, not a walk of all CA_TABLE_PROBES. */
#define FAST_PROBES	4

/*
 * Add one to key's count straight in its LIVE slot, as a reader finds it;
 * 0 with *slot, or -1 to take the index map's way. The key read between
 * the word and the compare-and-swap is the slot's own: the swap succeeds
 * only if the version, which every change of state moves, did not move.
 */
static __always_inline int table_inc(const struct ca_key *key, __u32 *slot)
{
	struct ca_probe seq;

	ca_probe_start(&seq, key, cfg.table_seed, cfg.table_slots);
	for (__u32 p = 0; p < FAST_PROBES; p++) {
		__u32 i = ca_probe_slot(&seq, p);
		struct ca_slot *s = table_slot(i);
		__u64 old;

		if (!s)
			return -1;
		old = *(volatile __u64 *)&s->word;
		if (CA_SLOT_STATE(VERSION(old)) != CA_SLOT_LIVE || !same_key(&s->key, key))
			continue;
		if (__sync_val_compare_and_swap(&s->word, old, old + 1) != old)
			return -1;
		*slot = i;
		return 0;
	}
	return -1;
}

/* Add one to key's count; *slot says where, for the decrement. Inlined at
 * call sites that pass a constant map, so that the verifier can inline the
 * hash lookups too (a helper call is an indirect call). */
static __always_inline int counter_inc(void *map, const struct ca_key *key, bool aggregate,
				       __u32 *slot)
{
	bool reclaimed = false;

	if (table_inc(key, slot) == 0)
		return 0;
	for (int i = 0; i < INC_TRIES; i++) {
		__u64 *found = bpf_map_lookup_elem(map, key);

		if (found) {
			__u64 r = *(volatile __u64 *)found;	/* slot and version, at once */
			struct ca_slot *s = table_slot((__u32)r);
			__u64 old;

			if (!s)
				return -EBUSY;
			old = *(volatile __u64 *)&s->word;
			if (VERSION(old) != (__u32)(r >> 32) || !same_key(&s->key, key))
				continue;
			if (__sync_val_compare_and_swap(&s->word, old, old + 1) == old) {
				*slot = (__u32)r;
				return 0;
			}
			continue;
		}

		struct ca_ref fresh;
		int err = table_claim(key, &fresh);

		if (!err) {
			struct ca_slot *s = table_slot(fresh.slot);

			if (!s)
				return -EBUSY;
			/* int: before 6.4 the map ops return int, and the upper half of
			 * the helper's 64-bit result is zero (-E2BIG reads 0xfffffff9). */
			err = bpf_map_update_elem(map, key, &fresh, BPF_NOEXIST);
			if (!err) {
				/* a full barrier: the key is in place before the slot is
				 * LIVE, with this session in it */
				__sync_val_compare_and_swap(&s->word,
							    SLOT_WORD(fresh.version - 1, 0),
							    SLOT_WORD(fresh.version, 1));
				*slot = fresh.slot;
				return 0;
			}
			free_slot(fresh.slot, s, fresh.version - 1);
		}
		if (err == -E2BIG && !reclaimed) {
			reclaimed = true;
			if (aggregate ? reclaim_prefix_zeros() : reclaim_peer_zeros())
				continue;
		}
		if (err != -EEXIST)
			return err;
	}
	return -EBUSY;
}

/* Returns -1 when the slot is already zero (a lost admission). */
static __always_inline int counter_dec(__u32 slot)
{
	struct ca_slot *s = table_slot(slot);

	if (!s)
		return -1;
	for (int i = 0; i < INC_TRIES; i++) {
		__u64 old = *(volatile __u64 *)&s->word;

		/* never DEAD or reused here: the departing session holds it */
		if ((__u32)old == 0)
			return -1;
		if (__sync_val_compare_and_swap(&s->word, old, old - 1) == old)
			return 0;
	}
	return -1;
}

/* Zero the bits of key->addr past len; addr is 4-byte aligned in ca_key. */
static __always_inline void mask_addr(struct ca_key *key, __u32 len)
{
	__u32 *w = (__u32 *)key->addr;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 keep = len > 32 * i ? len - 32 * i : 0;

		if (keep == 0)
			w[i] = 0;
		else if (keep < 32)
			w[i] &= bpf_htonl(~0u << (32 - keep));
	}
	key->prefixlen = len;
}

/* The exact key of a full TCP socket; false for families we do not count.
 * Direct BTF reads: every caller holds a trusted struct sock pointer. */
static __always_inline bool key_of(struct sock *sk, struct ca_key *key)
{
	__u16 family = sk->__sk_common.skc_family;
	__u32 *w = (__u32 *)key->addr;

	__builtin_memset(key, 0, sizeof(*key));
	key->netns = sk->__sk_common.skc_net.net->ns.inum;
	key->port = sk->__sk_common.skc_num;

	if (family == AF_INET) {
		key->family = CA_AF_INET;
		key->prefixlen = 32;
		w[0] = sk->__sk_common.skc_daddr;
		return true;
	}
	if (family != AF_INET6)
		return false;

	__u32 a[4];

	__builtin_memcpy(a, &sk->__sk_common.skc_v6_daddr, sizeof(a));
	/* ::ffff:a.b.c.d from a dual-stack listener is an IPv4 peer. */
	if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff)) {
		key->family = CA_AF_INET;
		key->prefixlen = 32;
		w[0] = a[3];
		return true;
	}
	key->family = CA_AF_INET6;
	key->prefixlen = 128;
	__builtin_memcpy(key->addr, a, sizeof(a));
	return true;
}

static __always_inline void note_failure(int err, bool aggregate)
{
	if (err == -EBUSY)
		HEALTH_ADD(contention, 1);
	else if (aggregate)
		HEALTH_ADD(prefixes_full, 1);
	else
		HEALTH_ADD(peers_full, 1);
}

/* Bits of m->counted and the entry each stands for. */
static __always_inline bool entry_key(const struct ca_mark *m, int bit,
				      struct ca_key *k, bool *aggregate)
{
	bool v4 = m->key.family == CA_AF_INET;
	__u32 nr = v4 ? cfg.nr_v4 : cfg.nr_v6;

	*k = m->key;
	*aggregate = bit != 0;
	if (bit == 0)			/* CA_COUNTED_PEER: the exact key */
		return true;
	if (bit == 1) {			/* CA_COUNTED_TOTAL: per-port total */
		k->family = CA_AF_ALL;
		mask_addr(k, 0);
		return true;
	}
	if (bit - 2 >= nr)
		return false;
	mask_addr(k, v4 ? cfg.v4[(bit - 2) & (CA_MAX_PREFIXES - 1)]
			: cfg.v6[(bit - 2) & (CA_MAX_PREFIXES - 1)]);
	return true;
}

/*
 * Connection rates: every admitted connection (never a seeded session) adds
 * 1 to the current window of every monitor, in the ca_rates entry of each
 * key its session is counted under. Called where an admission's mark is
 * made (or, for a pending TFO child, set): marks make that happen once per
 * connection, whichever of the programs sees it first. A connection that
 * could not be marked is not counted (marks_full says so).
 *
 * Windows follow CLOCK_BOOTTIME plus the wall-clock offset the loader
 * stored, so a step of the wall clock is followed at the next
 * `load --replace`, not before.
 *
 * Entries whose every slot is older than its monitor keeps are reclaimed
 * when an insert finds the map full: the reclaimer claims each slot by a
 * compare-and-swap to CA_RATE_DEAD and deletes the entry only when it holds
 * every one. An increment never adds to a DEAD slot (it looks up again),
 * so it either lands before the claim (and the claim fails: the entry
 * stays) or in the next entry. An unused slot holds the entry's random tag
 * as its count, so an increment that read a slot before its element was
 * deleted and reused for another key fails its compare-and-swap rather than
 * count for that key. (As with the counters, a lookup whose element is
 * deleted and reused before the increment even reads it is not caught: that
 * takes a reclaim of this very entry, which had seen no connection for the
 * whole span of every monitor, within those few instructions.)
 */
struct rate_now {
	__u32 win[CA_MAX_MONITORS];	/* the current window of each monitor */
};

static __always_inline __u32 slot_of(__u32 m, __u32 win)
{
	m &= CA_MAX_MONITORS - 1;
	return (cfg.mon[m].base + win % cfg.mon[m].windows) & (CA_RATE_SLOTS - 1);
}

/* True when slot i of a ca_rate lies outside every window kept. */
static __always_inline bool slot_stale(const struct rate_now *now, __u32 i, __u32 window)
{
	if (window == 0)
		return true;
	for (__u32 m = 0; m < CA_MAX_MONITORS && m < cfg.nr_monitors; m++) {
		if (i < cfg.mon[m].base || i >= cfg.mon[m].base + cfg.mon[m].windows)
			continue;
		return window + cfg.mon[m].windows <= now->win[m];
	}
	return true;
}

struct rate_reclaim_ctx {
	struct rate_now now;
	bool any;	/* a flag, not a count: the verifier must see the walk converge */
};

static long reclaim_rate(void *map, const struct ca_key *key, struct ca_rate *v,
			 struct rate_reclaim_ctx *ctx)
{
	__u32 i, claimed;

	for (i = 0; i < CA_RATE_SLOTS; i++) {
		__u32 window = *(volatile __u32 *)&v->slot[i].window;

		if (window == CA_RATE_DEAD || !slot_stale(&ctx->now, i, window))
			return 0;
	}
	for (claimed = 0; claimed < CA_RATE_SLOTS; claimed++) {
		__u64 *w = (__u64 *)&v->slot[claimed];
		__u64 old = *(volatile __u64 *)w;

		if ((__u32)old == CA_RATE_DEAD || !slot_stale(&ctx->now, claimed, (__u32)old) ||
		    __sync_val_compare_and_swap(w, old, CA_RATE_DEAD) != old)
			break;
	}
	if (claimed < CA_RATE_SLOTS) {
		/* An increment won: give the claimed slots back as unused ones
		 * (they were stale, so they read as 0 either way). */
		__u64 unused = (__u64)(bpf_get_prandom_u32() | 1) << 32;

		for (i = 0; i < CA_RATE_SLOTS && i < claimed; i++)
			*(volatile __u64 *)&v->slot[i] = unused;
		return 0;
	}
	bpf_map_delete_elem(map, key);
	stat_inc(CA_STAT_RECLAIMED);
	ctx->any = true;
	return 0;
}

static __noinline bool reclaim_rates(const struct rate_now *now)
{
	struct rate_reclaim_ctx ctx = { .now = *now };

	if (!may_walk(&rates_walked_at))	/* bounded as the counters' walks are */
		return false;
	bpf_for_each_map_elem(&ca_rates, reclaim_rate, &ctx, 0);
	return ctx.any;
}

/* Add one to slot `i` for window `win`. Returns 0, 1 when the slot is
 * DEAD and dead_ends says so, or -EBUSY after INC_TRIES. */
static __always_inline int slot_add(struct ca_rate *v, __u32 i, __u32 win, bool dead_ends)
{
	__u64 *w = (__u64 *)&v->slot[i & (CA_RATE_SLOTS - 1)];

	for (int t = 0; t < INC_TRIES; t++) {
		__u64 old = *(volatile __u64 *)w;
		__u64 new = (__u32)old == win ? old + (1ull << 32) : (1ull << 32) | win;

		if ((__u32)old == CA_RATE_DEAD) {
			if (dead_ends)
				return 1;
			continue;
		}
		if (__sync_val_compare_and_swap(w, old, new) == old)
			return 0;
	}
	return -EBUSY;
}

/*
 * Add one connection to the current windows of key's entry. Global, so
 * that the verifier checks it once, not for every key of connection_admitted().
 *
 * Monitors go in slot order, as the reclaimer claims slots. A DEAD first
 * slot means the entry may be on its way out: look it up again (nothing
 * was counted yet). A DEAD later slot cannot be: the reclaimer claimed the
 * first slot before it, so our increment there made its claim fail, and it
 * gives the slots back; wait for that.
 */
__noinline int rate_inc(const struct ca_key *key, const struct rate_now *now)
{
	__u32 zero = 0;
	bool reclaimed = false;
	struct ca_key k;
	int err = 0;

	if (!key || !now)
		return 0;
	k = *key;	/* before 6.4, map helpers take no argument memory as a key */
	for (int pass = 0; pass < 3; pass++) {
		struct ca_rate *v = bpf_map_lookup_elem(&ca_rates, &k);

		if (!v) {
			struct ca_rate *fresh = bpf_map_lookup_elem(&ca_rate_scratch, &zero);
			__u64 tag = bpf_get_prandom_u32() | 1;

			if (!fresh)
				return -EBUSY;
			for (int i = 0; i < CA_RATE_SLOTS; i++)
				*(__u64 *)&fresh->slot[i] = tag << 32;
			for (__u32 m = 0; m < CA_MAX_MONITORS && m < cfg.nr_monitors; m++)
				*(__u64 *)&fresh->slot[slot_of(m, now->win[m])] =
					(1ull << 32) | now->win[m];
			err = bpf_map_update_elem(&ca_rates, &k, fresh, BPF_NOEXIST);
			if (!err)
				return 0;
			if (err == -E2BIG && !reclaimed) {
				reclaimed = true;
				reclaim_rates(now);
				continue;
			}
			if (err != -EEXIST)
				return err;
			continue;
		}
		err = slot_add(v, slot_of(0, now->win[0]), now->win[0], true);
		if (err == 1)
			continue;
		for (__u32 m = 1; m < CA_MAX_MONITORS && m < cfg.nr_monitors; m++)
			if (slot_add(v, slot_of(m, now->win[m]), now->win[m], false))
				err = -EBUSY;
		return err;
	}
	return err == -E2BIG ? err : -EBUSY;
}

/* A connection missing from some rate entry: readers of windows that
 * include second `secs` are told their count is a lower bound. */
static __always_inline void note_rate_miss(int err, __u64 secs)
{
	__u32 zero = 0;
	struct ca_health *h = bpf_map_lookup_elem(&ca_health, &zero);

	if (!h)
		return;
	if (err == -E2BIG)
		__sync_fetch_and_add(&h->rates_full, 1);
	else
		__sync_fetch_and_add(&h->rates_lost, 1);
	h->rates_missed_at = secs;
}

/* One more connection to the port (ca_admits). The entry is made once per
 * (namespace, port), so the common path is a lookup and an atomic add. */
static __always_inline void admits_inc(const struct ca_key *key)
{
	struct ca_port_key pk = { .netns = key->netns, .port = key->port };
	__u64 one = 1, *n;

	for (int i = 0; i < 2; i++) {
		n = bpf_map_lookup_elem(&ca_admits, &pk);
		if (n) {
			__sync_fetch_and_add(n, 1);
			return;
		}
		int err = bpf_map_update_elem(&ca_admits, &pk, &one, BPF_NOEXIST);

		if (!err)
			return;
		if (err != -EEXIST) {
			HEALTH_ADD(admits_full, 1);
			return;
		}
	}
}

/* Count a connection: in its port's total, and in every rate entry of its
 * session's keys. */
__noinline int connection_admitted(const struct ca_mark *m)
{
	struct rate_now now = {};
	struct ca_key k;
	bool aggregate;
	__u64 secs;

	if (!m)
		return 0;
	admits_inc(&m->key);
	if (!cfg.nr_monitors)
		return 0;
	secs = (bpf_ktime_get_boot_ns() + cfg.realtime_offset_ns) / 1000000000ull;
	for (__u32 i = 0; i < CA_MAX_MONITORS && i < cfg.nr_monitors; i++)
		now.win[i] = cfg.mon[i].size ? secs / cfg.mon[i].size : 0;
	for (int bit = 0; bit < 2 + CA_MAX_PREFIXES; bit++) {
		if (!entry_key(m, bit, &k, &aggregate))
			break;
		/* A configured full-length prefix is the peer's own entry. */
		if (bit >= 2 && k.prefixlen == (k.family == CA_AF_INET ? 32 : 128))
			continue;
		int err = rate_inc(&k, &now);

		if (err)
			note_rate_miss(err, secs);
	}
	return 0;
}

/* Count the session described by m->key in every entry it belongs to.
 * admit() and depart() are global functions, so that the verifier checks
 * each once rather than at every call site (a load took 3.5 times longer). */
__noinline int admit(struct ca_mark *m, __u32 how)
{
	struct ca_key k;
	bool aggregate;

	if (!m)
		return 0;

	m->counted = 0;
	for (int bit = 0; bit < 2 + CA_MAX_PREFIXES; bit++) {
		if (!entry_key(m, bit, &k, &aggregate))
			break;
		int err = aggregate ? counter_inc(&ca_prefixes, &k, true, &m->slot[bit])
				    : counter_inc(&ca_peers, &k, false, &m->slot[bit]);

		if (err)
			note_failure(err, aggregate);
		else
			m->counted |= 1u << bit;
	}
	m->flags = CA_MARK_ADMITTED;
	if (m->counted != (1u << (2 + (m->key.family == CA_AF_INET ? cfg.nr_v4 : cfg.nr_v6))) - 1) {
		m->flags |= CA_MARK_INCOMPLETE;
		HEALTH_ADD(incomplete, 1);
	}
	stat_inc(how);
	return 0;
}

/* Uncount what admit() counted for this mark. */
__noinline int depart(struct ca_mark *m)
{
	if (!m)
		return 0;

	for (int bit = 0; bit < 2 + CA_MAX_PREFIXES; bit++) {
		if (!(m->counted & (1u << bit)))
			continue;
		if (counter_dec(m->slot[bit]))
			HEALTH_ADD(underflow, 1);
	}
	if (m->flags & CA_MARK_INCOMPLETE)
		HEALTH_ADD(incomplete, -1);
	stat_inc(CA_STAT_DEPARTED);
	return 0;
}

/* Every mark is made after its socket's cookie, so a socket whose cookie
 * was never made (most sockets, until something asks for it) holds none
 * and needs no lookup. Read it before bpf_get_socket_cookie() makes one. */
static __always_inline bool may_hold_mark(struct sock *sk)
{
	return sk->__sk_common.skc_cookie.counter != 0;
}

/* Mark and count a socket unless it is counted already. Counted first and
 * marked after, so that the common path is one insert; a refused insert
 * (ca_marks full) takes the counts back. */
static __always_inline void admit_sock(struct sock *sk, __u64 cookie, bool may_be_marked,
				       __u32 how)
{
	struct ca_mark *m = may_be_marked ? bpf_map_lookup_elem(&ca_marks, &cookie) : NULL;
	struct ca_mark fresh = {};

	if (m && (m->flags & (CA_MARK_ADMITTED | CA_MARK_ACTIVE)))
		return;
	if (!key_of(sk, &fresh.key))
		return;
	admit(&fresh, how);
	if (bpf_map_update_elem(&ca_marks, &cookie, &fresh, BPF_ANY)) {
		depart(&fresh);
		note_unmarked(sk);
	} else if (how == CA_STAT_ADMITTED) {
		connection_admitted(&fresh);
	}
}

static __always_inline bool counted_state(int state)
{
	return state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT;
}

/* Mark an active open on its way through SYN_RECV (a simultaneous open:
 * two active ends, or a socket connected to itself), so that its
 * SYN_RECV -> ESTABLISHED is not taken for an admission. Should ca_marks be
 * full, that admission may count it (the total marks_full says so). */
static __always_inline void mark_active(struct sock *sk)
{
	struct ca_mark active = { .flags = CA_MARK_ACTIVE };
	__u64 cookie = bpf_get_socket_cookie(sk);
	int err = bpf_map_update_elem(&ca_marks, &cookie, &active, BPF_NOEXIST);

	if (err == -E2BIG)
		HEALTH_ADD(marks_full, 1);
}

/* True when the socket's cgroup is the audited one or below it. */
static __always_inline bool in_audited_cgroup(struct sock *sk)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);

	for (int i = 0; i < CGROUP_DEPTH && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == cfg.cgroup_id)
			return true;
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return false;
}

/* Count or uncount one state change that passed the filter. `repaired`:
 * an admission of a socket restored with TCP_REPAIR, which sock_ops never
 * sees, so scoped mode checks its cgroup here. */
static __always_inline void count_change(struct sock *sk, bool admission, bool simultaneous,
					 bool repaired)
{
	bool marked = may_hold_mark(sk);
	struct ca_mark *m;
	__u64 cookie;

	if (simultaneous) {
		mark_active(sk);
		return;
	}
	if (admission) {
		cookie = bpf_get_socket_cookie(sk);
		if (!(cfg.flags & CA_CFG_CGROUP) || (repaired && in_audited_cgroup(sk))) {
			admit_sock(sk, cookie, marked, CA_STAT_ADMITTED);
			return;
		}
		if (repaired)
			return;
		/* Scoped mode: only a TFO child that sock_ops saw is pending
		 * (sock_ops made its cookie). */
		if (!marked)
			return;
		m = bpf_map_lookup_elem(&ca_marks, &cookie);
		if (m && (m->flags & CA_MARK_PENDING) && !(m->flags & CA_MARK_ADMITTED)) {
			admit(m, CA_STAT_ADMITTED);
			connection_admitted(m);
		}
		return;
	}
	if (!marked)
		return;
	cookie = bpf_get_socket_cookie(sk);
	m = bpf_map_lookup_elem(&ca_marks, &cookie);
	if (!m) {
		forget_unmarked(sk);
		return;
	}
	if (m->flags & CA_MARK_ADMITTED)
		depart(m);
	/* Deleted, not cleared: a socket reused after connect(AF_UNSPEC) starts afresh. */
	bpf_map_delete_elem(&ca_marks, &cookie);
}

/* True for a socket in TCP_REPAIR mode. The tracepoint's argument only
 * covers struct sock: the helper gives the tcp_sock that holds the bit. */
static __always_inline bool in_repair(struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	return tp && BPF_CORE_READ_BITFIELD(tp, repair);
}

/* The last state change on_set_state handled on this CPU. */
struct handled {
	__u64 sk;
	__s32 oldstate, newstate;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct handled);
} ca_handled SEC(".maps");

/*
 * Runs on every TCP state change on the host, about ten per connection, so
 * it decides from the states alone before touching the socket: only the
 * admission transition, transitions out of a counted state, and the rare
 * ones into and out of SYN_RECV that marks need go further.
 */
static __always_inline int on_state_change(struct sock *sk, int oldstate, int newstate,
					   bool twin)
{
	bool admission = oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED;
	bool simultaneous = oldstate == TCP_SYN_SENT && newstate == TCP_SYN_RECV;
	/* Leaving SYN_RECV for anything but ESTABLISHED (FIN_WAIT1, CLOSE)
	 * drops a mark made on the way in: a simultaneous open's, or in scoped
	 * mode a pending TFO child's. */
	bool abandoned = oldstate == TCP_SYN_RECV && newstate != TCP_ESTABLISHED;
	/* A socket restored with TCP_REPAIR (CRIU) is put in ESTABLISHED
	 * without a handshake: on an audited port it is taken for inbound, as
	 * seeding takes it when a listener holds the port. Every active open
	 * makes this transition too; the port check sends them away. */
	bool repaired = oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED;
	struct handled *last;
	__u32 zero = 0;

	if (!admission && !simultaneous && !abandoned && !repaired &&
	    (!counted_state(oldstate) || counted_state(newstate)))
		return 0;
	if ((admission || simultaneous || repaired) && !port_audited(sk->__sk_common.skc_num))
		return 0;
	if (repaired && !in_repair(sk))
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;	/* MPTCP sockets: their TCP subflows are counted */
	last = bpf_map_lookup_elem(&ca_handled, &zero);
	if (!last)
		return 0;	/* cannot happen: a one-entry array */
	if (twin && last->sk == (__u64)sk && last->oldstate == oldstate &&
	    last->newstate == newstate) {
		last->sk = 0;
		return 0;
	}
	if (!twin)
		stat_inc(CA_STAT_EVENTS);
	count_change(sk, admission || repaired, simultaneous, repaired);
	if (!twin) {
		last->sk = (__u64)sk;
		last->oldstate = oldstate;
		last->newstate = newstate;
	}
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, struct sock *sk, int oldstate, int newstate)
{
	return on_state_change(sk, oldstate, newstate, false);
}

/*
 * The same work again, from a second program on the same tracepoint. The
 * kernel skips a run of a program that would nest inside a run of the same
 * program on that CPU (a softirq handling TCP packets that interrupts a
 * process-context run), and a skipped departure would leave a count high for
 * good. The two programs run one after the other, never at once, so a nested
 * state change finds at most one of them busy and the other one counts it.
 * (fentry on tcp_set_state would do the same job, but needs ftrace, which
 * not every kernel has.)
 *
 * The twin does nothing for a change on_set_state has just handled on this
 * CPU (ca_handled names it). When on_set_state was skipped, ca_handled
 * names some earlier change, so the twin does the work; marks make a second
 * pass over the same change a no-op anyway. Only the same socket making the
 * same transition twice, with both runs of on_set_state skipped in between,
 * could fool the comparison.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state_twin, struct sock *sk, int oldstate, int newstate)
{
	return on_state_change(sk, oldstate, newstate, true);
}

/* Mark a fast-open child that is still SYN_RECV as pending (scoped mode):
 * the tracepoint counts it when it becomes ESTABLISHED, as ss would. */
static __always_inline void mark_pending(struct sock *sk, __u64 cookie)
{
	struct ca_mark pending = { .flags = CA_MARK_PENDING };

	if (!key_of(sk, &pending.key))
		return;
	/* int: before 6.4 the upper half of the helper's result is zero */
	int err = bpf_map_update_elem(&ca_marks, &cookie, &pending, BPF_NOEXIST);

	if (err == -E2BIG)
		note_unmarked(sk);
}

/* Cgroup-scoped admission: the program is attached to one cgroup only. */
SEC("sockops")
int on_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk;
	struct tcp_sock *tp;
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (!port_audited(skops->local_port))
		return 1;
	stat_inc(CA_STAT_SOCKOPS);
	bsk = skops->sk;
	if (!bsk)
		return 1;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 1;
	bool marked = may_hold_mark((struct sock *)tp);

	cookie = bpf_get_socket_cookie(skops);
	if (skops->state == TCP_ESTABLISHED) {
		admit_sock((struct sock *)tp, cookie, marked, CA_STAT_ADMITTED);
		return 1;
	}
	mark_pending((struct sock *)tp, cookie);
	return 1;
}

/* Seeding: count the sessions that were established before load, in the
 * network namespace of the process that reads the iterator. The iterator
 * holds each socket's lock, so it cannot race with that socket's events. */
SEC("iter/tcp")
int seed(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct sock *sk;
	__u32 port, *gen;
	int state;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;	/* timewait and request sockets */
	sk = (struct sock *)tp;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!port_audited(port))
		return 0;
	gen = bpf_map_lookup_elem(&ca_listen, &port);
	if (!gen)
		return 0;	/* cannot happen: the array holds every port */

	if (state == TCP_LISTEN) {
		if (seed_passed_over)
			seed_rerun = true;
		*gen = seed_gen;
		return 0;
	}
	/* Inbound if a listener holds the local port (see README: seeding). */
	if (*gen != seed_gen) {
		seed_passed_over = true;
		return 0;
	}
	if ((cfg.flags & CA_CFG_CGROUP) && !in_audited_cgroup(sk))
		return 0;
	bool marked = may_hold_mark(sk);

	/* A fast-open child waiting for its final ACK: sock_ops saw it before
	 * the load, so mark it pending as sock_ops would have (scoped mode
	 * only: whole-host admission needs no mark). */
	if (state == TCP_SYN_RECV && (cfg.flags & CA_CFG_CGROUP)) {
		mark_pending(sk, bpf_get_socket_cookie(sk));
		return 0;
	}
	if (!counted_state(state))
		return 0;
	admit_sock(sk, bpf_get_socket_cookie(sk), marked, CA_STAT_SEEDED);
	return 0;
}

/* Seeding must also visit namespaces that no process is in any more but
 * whose sockets a process holds (it made them, then setns()ed away). One
 * walk of every process's files finds them; asking per socket descriptor
 * from user space (readlink, pidfd_getfd, SIOCGSKNS) took seconds with
 * 200,000 sessions held. A run of sockets of one process in one namespace
 * is printed once. */
__u32 foreign_last_tgid, foreign_last_netns;

SEC("iter/task_file")
int foreign_sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct ca_foreign_sock out;
	struct socket *sock;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	/* BTF pointers, read directly: a fault (a task without nsproxy, as it
	 * exits) reads 0; bpf_probe_read_kernel took most of this walk's time. */
	out.netns = sock->sk->__sk_common.skc_net.net->ns.inum;
	out.tgid = task->tgid;
	if (!out.netns || out.netns == task->nsproxy->net_ns->ns.inum)
		return 0;
	if (out.tgid == foreign_last_tgid && out.netns == foreign_last_netns)
		return 0;
	foreign_last_tgid = out.tgid;
	foreign_last_netns = out.netns;
	out.fd = ctx->fd;
	bpf_seq_write(ctx->meta->seq, &out, sizeof(out));
	return 0;
}
