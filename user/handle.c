// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * handle.c - a read-only view of a loaded auditor's pinned maps, and the
 * store the counting core reads through.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cluster.h"
#include "batch.h"
#include "errors.h"
#include "store.h"
#include "sysfs.h"
#include "table.h"

struct pinned_map {
	const char *name;
	__u32 type, key_size, value_size;
	int fd;
	__u32 id;
};

enum { M_PEERS, M_PREFIXES, M_STATS, M_HEALTH, M_CONFIG, M_RATES, M_REMOTE, M_CLUSTER, M_ADMITS,
       M_REMOTE_RATES, M_NR };

struct ca_handle {
	struct ca_store store;		/* first: the core gets &h->store */
	struct pinned_map maps[M_NR];
	const struct ca_health *health;	/* mmapped ca_health */
	uint32_t netns_self, netns;
	char pin_dir[PATH_MAX];
	/* scan buffers, allocated at open so that queries do not allocate */
	struct ca_table table;		/* the counts, mapped */
	struct ca_key keys[CA_SCAN_BATCH];
	struct ca_rate rates[CA_SCAN_BATCH];
	struct ca_remote_store remote;	/* the other nodes of a cluster */
};

static const struct pinned_map expected[M_NR] = {
	[M_PEERS] = { CA_PIN_PEERS, BPF_MAP_TYPE_HASH, sizeof(struct ca_key),
		      sizeof(struct ca_ref), -1, 0 },
	[M_PREFIXES] = { CA_PIN_PREFIXES, BPF_MAP_TYPE_HASH, sizeof(struct ca_key),
			 sizeof(struct ca_ref), -1, 0 },
	[M_STATS] = { CA_PIN_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32),
		      sizeof(__u64), -1, 0 },
	[M_HEALTH] = { CA_PIN_HEALTH, BPF_MAP_TYPE_ARRAY, sizeof(__u32),
		       sizeof(struct ca_health), -1, 0 },
	[M_CONFIG] = { CA_PIN_CONFIG, BPF_MAP_TYPE_ARRAY, sizeof(__u32),
		       sizeof(struct ca_config), -1, 0 },
	[M_RATES] = { CA_PIN_RATES, BPF_MAP_TYPE_HASH, sizeof(struct ca_key),
		      sizeof(struct ca_rate), -1, 0 },
	[M_REMOTE] = { CA_PIN_REMOTE, BPF_MAP_TYPE_HASH, sizeof(struct ca_key),
		       sizeof(__u64), -1, 0 },
	[M_CLUSTER] = { CA_PIN_CLUSTER, BPF_MAP_TYPE_HASH, sizeof(__u32),
			sizeof(struct ca_cluster_state), -1, 0 },
	[M_ADMITS] = { CA_PIN_ADMITS, BPF_MAP_TYPE_HASH, sizeof(struct ca_port_key),
		       sizeof(__u64), -1, 0 },
	[M_REMOTE_RATES] = { CA_PIN_REMOTE_RATES, BPF_MAP_TYPE_HASH, sizeof(struct ca_key),
			     sizeof(struct ca_rate), -1, 0 },
};

static int open_error(const char *pin_dir, const char *path, int rc, struct ca_error *err)
{
	if (rc == -ENOENT) {
		rc = ca_check_bpffs(pin_dir, err);
		if (rc)
			return rc;
		return ca_errf(err, -ENOENT, "connaudit is not loaded at %s (%s is missing); "
			       "run `connaudit load` as root", pin_dir, path);
	}
	if (rc == -EACCES || rc == -EPERM)
		return ca_errf(err, rc, "permission denied opening %s: run as root or as a "
			       "member of the group given to `connaudit load --group` (kernels "
			       "before 5.19 with kernel.unprivileged_bpf_disabled set refuse "
			       "every unprivileged reader)", path);
	return ca_errf(err, rc, "cannot open %s: %s", path, strerror(-rc));
}

/* Open one pinned map read-only and check it is the map we expect. */
static int open_map(struct ca_handle *h, struct pinned_map *m, struct ca_error *err)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[PATH_MAX];

	if (ca_join_path(path, sizeof(path), h->pin_dir, m->name))
		return ca_errf(err, -ENAMETOOLONG, "pin dir path is too long");
	m->fd = bpf_obj_get_opts(path, &opts);
	if (m->fd < 0)
		return open_error(h->pin_dir, path, -errno, err);
	if (bpf_obj_get_info_by_fd(m->fd, &info, &len))
		return ca_errf(err, -errno, "cannot inspect %s: %s", path, strerror(errno));
	if (info.type != m->type || info.key_size != m->key_size ||
	    info.value_size != m->value_size)
		return ca_errf(err, -EPROTO, "%s is not the map this connaudit expects (type "
			       "%u key %u value %u, want %u/%u/%u): loaded by another version? "
			       "unload and load again", path, info.type, info.key_size,
			       info.value_size, m->type, m->key_size, m->value_size);
	m->id = info.id;
	return 0;
}

static int read_config(struct ca_handle *h, struct ca_error *err)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(h->maps[M_CONFIG].fd, &zero, &h->store.cfg))
		return ca_errf(err, -errno, "cannot read %s/%s: %s", h->pin_dir, CA_PIN_CONFIG,
			       strerror(errno));
	if (h->store.cfg.magic != CA_ABI_MAGIC || h->store.cfg.abi_version != CA_ABI_VERSION)
		return ca_errf(err, -EPROTO, "%s was loaded by a connaudit with another map "
			       "layout (version %u, this is %u): unload and load again",
			       h->pin_dir, h->store.cfg.abi_version, CA_ABI_VERSION);
	return 0;
}

/*
 * Map ca_health when this process may open it read-write: a read-only bpf
 * fd cannot be mmapped (mmap drops VM_SHARED for files not open for write,
 * and BPF refuses private mappings). The mapping itself is PROT_READ.
 * Readers without write access read it with a lookup on every query.
 */
static void map_health(struct ca_handle *h)
{
	char path[PATH_MAX];
	void *p;
	int fd;

	if (ca_join_path(path, sizeof(path), h->pin_dir, CA_PIN_HEALTH))
		return;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	p = mmap(NULL, sizeof(struct ca_health), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p != MAP_FAILED)
		h->health = p;
}

/* One table holds every kind of key: `aggregate` needs no other map. */
static int store_lookup(struct ca_store *s, bool aggregate, const struct ca_key *key,
			uint64_t *count, struct ca_error *err)
{
	(void)aggregate;
	return ca_table_count(&((struct ca_handle *)s)->table, key, count, err);
}

static int store_scan(struct ca_store *s, bool aggregate, ca_entry_fn fn, void *arg,
		      struct ca_error *err)
{
	return ca_table_scan(&((struct ca_handle *)s)->table, aggregate, fn, arg, err);
}

static int store_health(struct ca_store *s, struct ca_error *err)
{
	struct ca_handle *h = (struct ca_handle *)s;
	struct ca_health copy;
	const struct ca_health *hv = h->health;

	if (!hv) {
		int rc = ca_read_health(h, &copy, err);

		if (rc)
			return rc;
		hv = &copy;
	}
	if (__atomic_load_n(&hv->retired, __ATOMIC_ACQUIRE))
		return ca_errf(err, -ESTALE, "the auditor was unloaded or reloaded since this "
			       "handle was opened: reopen it");
	if (__atomic_load_n(&hv->incomplete, __ATOMIC_RELAXED) > 0 ||
	    __atomic_load_n(&hv->uncounted, __ATOMIC_RELAXED) > 0 || hv->underflow)
		return ca_errf(err, CA_INCOMPLETE, "the auditor could not count some sessions "
			       "(see `connaudit status`), so the count is a lower bound");
	return 0;
}

static int store_rate_lookup(struct ca_store *s, const struct ca_key *key, struct ca_rate *out,
			     struct ca_error *err)
{
	struct ca_handle *h = (struct ca_handle *)s;

	if (bpf_map_lookup_elem(h->maps[M_RATES].fd, key, out)) {
		if (errno != ENOENT)
			return ca_errf(err, -errno, "map lookup failed: %s", strerror(errno));
		memset(out, 0, sizeof(*out));
	}
	return 0;
}

static int store_rate_scan(struct ca_store *s, ca_rate_fn fn, void *arg, struct ca_error *err)
{
	struct ca_handle *h = (struct ca_handle *)s;

	return ca_batch_scan_rates(h->maps[M_RATES].fd, CA_PIN_RATES, h->keys, h->rates, fn,
				   arg, err);
}

/* Rates from second `since` on are exact unless a connection missed its
 * entry since then (map full, a lost race), or one could not be marked
 * (then a second pass may have counted it). */
static int store_rate_health(struct ca_store *s, uint64_t since, struct ca_error *err)
{
	struct ca_handle *h = (struct ca_handle *)s;
	struct ca_health copy;
	const struct ca_health *hv = h->health;
	int rc = store_health(s, err);

	if (rc < 0)
		return rc;
	if (!hv) {
		rc = ca_read_health(h, &copy, err);
		if (rc)
			return rc;
		hv = &copy;
	}
	if (hv->marks_full || ((hv->rates_full || hv->rates_lost) &&
				__atomic_load_n(&hv->rates_missed_at, __ATOMIC_RELAXED) >= since))
		return ca_errf(err, CA_INCOMPLETE, "the auditor could not count some connections "
			       "in these windows (see `connaudit status`), so the count is a "
			       "lower bound");
	return 0;
}

static uint64_t store_boot_ns(struct ca_store *s)
{
	struct timespec ts;

	(void)s;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int ca_open(struct ca_handle **out, const char *pin_dir, struct ca_error *err)
{
	struct ca_handle *h = calloc(1, sizeof(*h));
	int rc = 0;

	*out = NULL;
	if (!h)
		return ca_errf(err, -ENOMEM, "out of memory");
	memcpy(h->maps, expected, sizeof(expected));
	snprintf(h->pin_dir, sizeof(h->pin_dir), "%s", ca_resolve_pin_dir(pin_dir));
	h->store.lookup = store_lookup;
	h->store.scan = store_scan;
	h->store.health = store_health;
	h->store.rate_lookup = store_rate_lookup;
	h->store.rate_scan = store_rate_scan;
	h->store.rate_health = store_rate_health;
	h->store.boot_ns = store_boot_ns;
	h->netns_self = h->netns = ca_netns_self();
	for (int i = 0; i < M_NR && !rc; i++)
		rc = open_map(h, &h->maps[i], err);
	if (!rc)
		rc = read_config(h, err);
	if (!rc)
		rc = ca_table_map(&h->table, h->pin_dir, &h->store.cfg, err);
	if (!rc) {
		map_health(h);
		ca_remote_store_init(&h->remote, h->maps[M_REMOTE].fd, h->maps[M_REMOTE_RATES].fd,
				     h->maps[M_CLUSTER].fd, &h->store.cfg, h->rates,
				     store_boot_ns);
	}
	if (rc) {
		ca_close(h);
		return rc;
	}
	*out = h;
	return 0;
}

void ca_close(struct ca_handle *h)
{
	if (!h)
		return;
	for (int i = 0; i < M_NR; i++)
		if (h->maps[i].fd >= 0)
			close(h->maps[i].fd);
	if (h->health)
		munmap((void *)h->health, sizeof(struct ca_health));
	ca_table_unmap(&h->table);
	free(h);
}

const char *ca_pin_dir(const struct ca_handle *h)
{
	return h->pin_dir;
}

void ca_set_netns(struct ca_handle *h, uint32_t netns_inode)
{
	h->netns = netns_inode ? netns_inode : h->netns_self;
}

uint32_t ca_netns(const struct ca_handle *h)
{
	return h->netns;
}

uint32_t ca_netns_self(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) == 0 ? (uint32_t)st.st_ino : 0;
}

const struct ca_config *ca_loaded_config(const struct ca_handle *h)
{
	return &h->store.cfg;
}

bool ca_handle_stale(const struct ca_handle *h)
{
	char path[PATH_MAX];
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	bool stale = true;
	int fd;

	if (store_health((struct ca_store *)h, NULL) == -ESTALE)
		return true;
	fd = ca_join_path(path, sizeof(path), h->pin_dir, CA_PIN_PEERS) ? -1 : bpf_obj_get(path);
	if (fd < 0)
		return true;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		stale = info.id != h->maps[M_PEERS].id;
	close(fd);
	return stale;
}

int ca_count(struct ca_handle *h, const struct ca_cidr *cidr, const struct ca_service *svc,
	     const struct ca_addr *peer, uint64_t *count, struct ca_error *err)
{
	if (svc->cluster)
		return ca_count_cluster(h, cidr, svc, peer, count, err);
	return ca_count_core(&h->store, h->netns, cidr, svc, peer, count, err);
}

/* Add this node's answer (lrc, local) and the other nodes' (rrc, remote).
 * The message of an incomplete sum says why: the remote view first. */
static int cluster_sum(int lrc, uint64_t local, int rrc, uint64_t remote, const char *what,
		       uint64_t *count, struct ca_error *err)
{
	if (rrc < 0)
		return rrc;
	*count = local + remote;
	if (lrc == CA_INCOMPLETE && rrc == 0)
		ca_errf(err, CA_INCOMPLETE, "this node could not count some of its own %s "
			"(see `connaudit status`)", what);
	return lrc == CA_INCOMPLETE || rrc == CA_INCOMPLETE ? CA_INCOMPLETE : 0;
}

/* This node's connections plus the other nodes' windows kept by the agent;
 * the message of an incomplete count says why, as ca_count_cluster's. */
static int connections_cluster(struct ca_handle *h, const struct ca_monitor *m,
			       const struct ca_cidr *cidr, const struct ca_service *svc,
			       const struct ca_addr *peer, unsigned start, unsigned end,
			       uint64_t *count, struct ca_error *err)
{
	uint64_t local, remote;
	int lrc, rrc;

	lrc = ca_connections_core(&h->store, h->netns, m, cidr, svc, peer, start, end, &local,
				  err);
	if (lrc < 0)
		return lrc;
	h->remote.netns = h->netns;
	rrc = ca_connections_core(&h->remote.store, h->netns, m, cidr, svc, peer, start, end,
				  &remote, err);
	return cluster_sum(lrc, local, rrc, remote, "connections", count, err);
}

int ca_connections(struct ca_handle *h, const struct ca_monitor *m, const struct ca_cidr *cidr,
		   const struct ca_service *svc, const struct ca_addr *peer, unsigned start,
		   unsigned end, uint64_t *count, struct ca_error *err)
{
	if (svc->cluster)
		return connections_cluster(h, m, cidr, svc, peer, start, end, count, err);
	return ca_connections_core(&h->store, h->netns, m, cidr, svc, peer, start, end, count,
				   err);
}

/* This node's count plus the other nodes' sum kept by the agent. The
 * message of an incomplete count says why: the remote view first. */
int ca_count_cluster(struct ca_handle *h, const struct ca_cidr *cidr,
		     const struct ca_service *svc, const struct ca_addr *peer,
		     uint64_t *count, struct ca_error *err)
{
	uint64_t local, remote;
	int lrc, rrc;

	lrc = ca_count_core(&h->store, h->netns, cidr, svc, peer, &local, err);
	if (lrc < 0)
		return lrc;
	h->remote.netns = h->netns;
	rrc = ca_count_core(&h->remote.store, h->netns, cidr, svc, peer, &remote, err);
	return cluster_sum(lrc, local, rrc, remote, "sessions", count, err);
}

int ca_read_cluster(struct ca_handle *h, struct ca_cluster_state *out, struct ca_error *err)
{
	if (bpf_map_lookup_elem(h->maps[M_CLUSTER].fd, &h->netns, out) == 0)
		return 0;
	if (errno == ENOENT)
		return ca_errf(err, -ENOENT, "no cluster agent has run for network namespace %u",
			       h->netns);
	return ca_errf(err, -errno, "cannot read %s: %s", CA_PIN_CLUSTER, strerror(errno));
}

int ca_foreach_remote(struct ca_handle *h,
		      int (*fn)(const struct ca_key *key, uint64_t count, void *arg),
		      void *arg, struct ca_error *err)
{
	return h->remote.store.scan(&h->remote.store, false, fn, arg, err);
}

int ca_count_str(struct ca_handle *h, const struct ca_services *services, const char *cidr,
		 const char *service, const char *peer, uint64_t *count, struct ca_error *err)
{
	const struct ca_service *svc;
	struct ca_cidr c;
	struct ca_addr a;
	int rc;

	rc = ca_cidr_parse(cidr, &c, err);
	if (rc)
		return rc;
	svc = ca_services_find(services, service, err);
	if (!svc)
		return -EINVAL;
	if (peer) {
		rc = ca_addr_parse(peer, &a, err);
		if (rc)
			return rc;
	}
	return ca_count(h, &c, svc, peer ? &a : NULL, count, err);
}

int ca_read_health(struct ca_handle *h, struct ca_health *out, struct ca_error *err)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(h->maps[M_HEALTH].fd, &zero, out))
		return ca_errf(err, -errno, "cannot read %s: %s", CA_PIN_HEALTH, strerror(errno));
	return 0;
}

int ca_read_stats(struct ca_handle *h, uint64_t out[CA_STAT_NR], struct ca_error *err)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *percpu;

	if (ncpu <= 0)
		return ca_errf(err, ncpu ? ncpu : -EINVAL, "cannot count the possible CPUs");
	percpu = calloc((size_t)ncpu, sizeof(*percpu));
	if (!percpu)
		return ca_errf(err, -ENOMEM, "out of memory");
	for (__u32 i = 0; i < CA_STAT_NR; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(h->maps[M_STATS].fd, &i, percpu)) {
			int rc = -errno;

			free(percpu);
			return ca_errf(err, rc, "cannot read %s: %s", CA_PIN_STATS, strerror(-rc));
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += percpu[c];
	}
	free(percpu);
	return 0;
}

int ca_foreach_rate(struct ca_handle *h,
		    int (*fn)(const struct ca_key *key, const struct ca_rate *v, void *arg),
		    void *arg, struct ca_error *err)
{
	return store_rate_scan(&h->store, fn, arg, err);
}

int ca_connections_total(struct ca_handle *h, uint16_t port, uint64_t *total,
			 struct ca_error *err)
{
	struct ca_port_key k = { .netns = h->netns, .port = port };
	struct ca_health hv;
	int rc;

	if (bpf_map_lookup_elem(h->maps[M_ADMITS].fd, &k, total) == 0)
		return 0;
	if (errno != ENOENT)
		return ca_errf(err, -errno, "cannot read %s: %s", CA_PIN_ADMITS, strerror(errno));
	*total = 0;
	rc = ca_read_health(h, &hv, err);
	if (rc)
		return rc;
	if (hv.admits_full)
		return ca_errf(err, CA_INCOMPLETE, "%s was full when some port had its first "
			       "connection, so port %u may have had connections that it does not "
			       "hold; unload and load again to start the counters afresh",
			       CA_PIN_ADMITS, port);
	return 0;
}

int ca_foreach(struct ca_handle *h, bool prefixes,
	       int (*fn)(const struct ca_key *key, uint64_t count, void *arg),
	       void *arg, struct ca_error *err)
{
	return store_scan(&h->store, prefixes, fn, arg, err);
}
