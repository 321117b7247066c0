// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster_query.c - the remote half of a cluster count or rate: lookups in
 * the sums the agent keeps in ca_remote and ca_remote_rates, judged by the
 * agent's record in ca_cluster.
 * Never any network I/O: the agent did that.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "batch.h"
#include "cluster.h"
#include "errors.h"

uint64_t ca_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int remote_lookup(struct ca_store *s, bool aggregate, const struct ca_key *key,
			 uint64_t *count, struct ca_error *err)
{
	struct ca_remote_store *r = (struct ca_remote_store *)s;
	__u64 v;

	(void)aggregate;	/* one map holds every kind of key */
	if (bpf_map_lookup_elem(r->remote_fd, key, &v)) {
		if (errno != ENOENT)
			return ca_errf(err, -errno, "%s lookup failed: %s", CA_PIN_REMOTE,
				       strerror(errno));
		v = 0;
	}
	*count = v;
	return 0;
}

/* Only per-peer entries are scanned (the core scans for prefixes that are
 * not aggregated); aggregate scans are not asked of this store. */
struct remote_scan {
	const struct ca_remote_store *r;
	bool aggregate;
	ca_entry_fn fn;
	void *arg;
};

static int visit_remote(unsigned i, void *arg)
{
	const struct remote_scan *v = arg;

	if (v->r->values[i] == 0 || ca_key_is_peer(&v->r->keys[i]) == v->aggregate)
		return 0;
	return v->fn(&v->r->keys[i], v->r->values[i], v->arg);
}

static int remote_scan(struct ca_store *s, bool aggregate, ca_entry_fn fn, void *arg,
		       struct ca_error *err)
{
	struct ca_remote_store *r = (struct ca_remote_store *)s;
	struct remote_scan v = { r, aggregate, fn, arg };

	return ca_batch_scan(r->remote_fd, CA_PIN_REMOTE, r->keys, r->values, visit_remote, &v,
			     err);
}

static int read_state(struct ca_remote_store *r, uint64_t now, struct ca_error *err)
{
	if (r->state_netns == r->netns && r->state_read_ms &&
	    now - r->state_read_ms < CA_CLUSTER_RECHECK_MS)
		return 0;
	r->state_present = true;
	if (bpf_map_lookup_elem(r->cluster_fd, &r->netns, &r->state)) {
		if (errno != ENOENT)
			return ca_errf(err, -errno, "cannot read %s: %s", CA_PIN_CLUSTER,
				       strerror(errno));
		r->state_present = false;
	}
	r->state_netns = r->netns;
	r->state_read_ms = now;
	return 0;
}

static double seconds(uint64_t ms)
{
	return (double)ms / 1000.0;
}

/* 0 when ca_remote holds every other live node's sessions as of a moment
 * ago; else CA_INCOMPLETE with a message saying why and how old the view is. */
static int remote_health(struct ca_store *s, struct ca_error *err)
{
	struct ca_remote_store *r = (struct ca_remote_store *)s;
	const struct ca_cluster_state *st = &r->state;
	uint64_t now = ca_monotonic_ms();
	int rc = read_state(r, now, err);

	if (rc)
		return rc;
	if (!r->state_present)
		return ca_errf(err, CA_INCOMPLETE, "no cluster agent has run for network "
			       "namespace %u: this is the local count only (start `connaudit "
			       "cluster`)", r->netns);
	if (!st->exact_ms)
		return ca_errf(err, CA_INCOMPLETE, "the cluster view has not been complete "
			       "since its agent started: %s", st->reason);
	if (now > st->updated_ms + st->stale_ms)
		return ca_errf(err, CA_INCOMPLETE, "the cluster view is %.1f s old: its agent "
			       "(pid %u, node %s) has stopped updating it", seconds(now - st->exact_ms),
			       st->agent_pid, st->node);
	if (!(st->flags & CA_CLUSTER_EXACT))
		return ca_errf(err, CA_INCOMPLETE, "the cluster view is %.1f s old: %s",
			       seconds(now > st->exact_ms ? now - st->exact_ms : 0), st->reason);
	return 0;
}

static int remote_rate_lookup(struct ca_store *s, const struct ca_key *key,
			      struct ca_rate *out, struct ca_error *err)
{
	struct ca_remote_store *r = (struct ca_remote_store *)s;

	if (bpf_map_lookup_elem(r->rates_fd, key, out)) {
		if (errno != ENOENT)
			return ca_errf(err, -errno, "%s lookup failed: %s", CA_PIN_REMOTE_RATES,
				       strerror(errno));
		memset(out, 0, sizeof(*out));
	}
	return 0;
}

static int remote_rate_scan(struct ca_store *s, ca_rate_fn fn, void *arg, struct ca_error *err)
{
	struct ca_remote_store *r = (struct ca_remote_store *)s;

	return ca_batch_scan_rates(r->rates_fd, CA_PIN_REMOTE_RATES, r->keys, r->rates, fn, arg,
				   err);
}

/* As remote_health, and every live node's windows are in the sum: none
 * keeps other monitors or says it missed connections, and the map took
 * every key. (`since` needs no check here: a node's own misses are judged
 * by that node.) */
static int remote_rate_health(struct ca_store *s, uint64_t since, struct ca_error *err)
{
	struct ca_remote_store *r = (struct ca_remote_store *)s;
	const struct ca_cluster_state *st = &r->state;
	int rc = remote_health(s, err);

	(void)since;
	if (rc)
		return rc;
	if (st->rate_nodes_off)
		return ca_errf(err, CA_INCOMPLETE, "%u live node%s keep%s other monitors than "
			       "this node, so %s connections are not in the cluster-wide rate "
			       "(load every node with the same --monitors)", st->rate_nodes_off,
			       st->rate_nodes_off == 1 ? "" : "s", st->rate_nodes_off == 1 ? "s" : "",
			       st->rate_nodes_off == 1 ? "its" : "their");
	if (st->rate_nodes_incomplete)
		return ca_errf(err, CA_INCOMPLETE, "%u live node%s could not count some of "
			       "%s connections lately (see `connaudit status` there)",
			       st->rate_nodes_incomplete, st->rate_nodes_incomplete == 1 ? "" : "s",
			       st->rate_nodes_incomplete == 1 ? "its" : "their");
	if (st->flags & CA_CLUSTER_RATES_FULL)
		return ca_errf(err, CA_INCOMPLETE, "%s is full: some remote connections are "
			       "missing", CA_PIN_REMOTE_RATES);
	return 0;
}

void ca_remote_store_init(struct ca_remote_store *r, int remote_fd, int rates_fd,
			  int cluster_fd, const struct ca_config *cfg, struct ca_rate *rates,
			  uint64_t (*boot_ns)(struct ca_store *s))
{
	memset(r, 0, sizeof(*r));
	r->store.lookup = remote_lookup;
	r->store.scan = remote_scan;
	r->store.health = remote_health;
	r->store.rate_lookup = remote_rate_lookup;
	r->store.rate_scan = remote_rate_scan;
	r->store.rate_health = remote_rate_health;
	r->store.boot_ns = boot_ns;
	r->store.cfg = *cfg;
	r->remote_fd = remote_fd;
	r->rates_fd = rates_fd;
	r->cluster_fd = cluster_fd;
	r->rates = rates;
}
