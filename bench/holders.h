/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * holders.h - keep many inbound loopback connections open at once.
 *
 * Both ends of a loopback connection are local, so each one costs two file
 * descriptors, and the open-files limit is per process: the connections are
 * spread over child processes that make their share and then sleep holding
 * it. Children die with the parent (PR_SET_PDEATHSIG).
 *
 * Connection i comes from peer address holders_peer(i), a fixed plan, so the
 * number inside any prefix is known without asking the kernel.
 */
#ifndef CA_BENCH_HOLDERS_H
#define CA_BENCH_HOLDERS_H

#include <stdint.h>
#include <sys/types.h>

#define HOLDERS_MAX_PROCS	64

struct holders {
	int lfd;		/* the one listener all connections go to */
	uint16_t port;
	unsigned held;		/* connections open so far */
	unsigned per_proc;	/* most one process can hold under its fd limit */
	unsigned nprocs;
	pid_t pids[HOLDERS_MAX_PROCS];
};

/* Listen on 0.0.0.0:port in the current network namespace. */
void holders_start(struct holders *h, uint16_t port);
/* Open connections until `target` are held (never fewer than now). */
void holders_grow(struct holders *h, unsigned target);
/* Kill the children, closing every held connection. */
void holders_stop(struct holders *h);

/* Peer (source) address of connection i, host byte order. */
uint32_t holders_peer(unsigned i);
/* How many distinct peers the first n connections come from. */
unsigned holders_peers(unsigned n);
/* How many of the first n connections come from net/len (host order). */
uint64_t holders_count_in(unsigned n, uint32_t net, unsigned len);

#endif
