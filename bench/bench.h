/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bench.h - what the benchmark programs share.
 *
 * The benchmarks reuse the real-kernel tests' helpers (tests/kernel/netlib.h)
 * for listeners, connections and netlink, so that there is one way to make
 * them; only the timed loops are written here.
 */
#ifndef CA_BENCH_H
#define CA_BENCH_H

#include <stdint.h>
#include <time.h>

/* Monotonic nanoseconds: every duration the benchmarks report. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
