// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster.c - the cluster benchmark's timed parts (bench/cluster.sh sets up
 * Redis, the namespaces and the agents):
 *   1. query cost: ca_count_cluster / ca_count for one /24, same handle;
 *   2. propagation delay: a session opened (then closed) in node A, until
 *      node B's cluster count shows it, EVENTS times each;
 *   3. churn: connections opened and closed in node A for CHURN_MS, with
 *      Redis's command and byte counters and the agents' CPU time around it.
 *
 * Usage: cluster PIN_DIR NS_A NS_B REDIS_SOCKET EVENTS CHURN_MS AGENT_PID...
 * Prints "name value unit" lines.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "connaudit.h"
#include "netlib.h"

#define QUERIES		200000
#define QUERY_ROUNDS	10
#define PEER_POOL	200	/* connections held during the churn */
#define WAIT_NS		5000000000ull

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t count_now(struct ca_handle *h, const struct ca_cidr *cidr,
			  const struct ca_service *svc, bool cluster)
{
	struct ca_error err;
	uint64_t n = 0;
	int rc = (cluster ? ca_count_cluster : ca_count)(h, cidr, svc, NULL, &n, &err);

	if (rc < 0)
		kt_fail("count: %s", err.msg);
	return n;
}

/* Rounds of each kind in turn, the fastest round of each: other load on
 * the machine comes and goes during a run. */
static void query_cost(struct ca_handle *h, const struct ca_cidr *cidr,
		       const struct ca_service *svc)
{
	uint64_t t[2] = { UINT64_MAX, UINT64_MAX };

	for (int round = 0; round < 2 * QUERY_ROUNDS; round++) {
		int cluster = round % 2;
		uint64_t t0 = bench_now_ns(), per;

		for (int i = 0; i < QUERIES / QUERY_ROUNDS; i++)
			count_now(h, cidr, svc, cluster);
		per = (bench_now_ns() - t0) / (QUERIES / QUERY_ROUNDS);
		if (per < t[cluster])
			t[cluster] = per;
	}
	printf("query_local_ns %" PRIu64 " ns\n", t[0]);
	printf("query_cluster_ns %" PRIu64 " ns\n", t[1]);
	printf("query_cluster_over_local %.2f ratio\n", (double)t[1] / (double)t[0]);
}

/* Nanoseconds until B's cluster count is `want`. */
static uint64_t wait_for(struct ca_handle *h, const struct ca_cidr *cidr,
			 const struct ca_service *svc, uint64_t want, uint64_t t0)
{
	while (count_now(h, cidr, svc, true) != want) {
		if (bench_now_ns() - t0 > WAIT_NS)
			kt_fail("node B's cluster count did not reach %" PRIu64 " in 5 s", want);
		usleep(200);
	}
	return bench_now_ns() - t0;
}

static void propagation(struct ca_handle *h, const struct ca_cidr *cidr,
			const struct ca_service *svc, int lfd, unsigned events)
{
	uint64_t *d = calloc(2 * (size_t)events, sizeof(*d));
	uint64_t base = count_now(h, cidr, svc, true);

	if (!d)
		kt_fail("out of memory");
	for (unsigned i = 0; i < events; i++) {
		struct conn c = net_conn_open(lfd, "127.0.0.2", "127.0.0.1", 25);
		uint64_t t0 = bench_now_ns();

		d[2 * i] = wait_for(h, cidr, svc, base + 1, t0);
		/* shown just after an agent's tick: close anywhere in the next interval */
		usleep((useconds_t)(rand() % 100000));
		close(c.cli);
		close(c.srv);
		t0 = bench_now_ns();
		d[2 * i + 1] = wait_for(h, cidr, svc, base, t0);
		/* start the next one anywhere in the agents' 100 ms interval */
		usleep((useconds_t)(rand() % 100000));
	}
	qsort(d, 2 * (size_t)events, sizeof(*d), cmp_u64);
	printf("propagation_events %u opens+closes\n", 2 * events);
	printf("propagation_p50_ms %.1f ms\n", (double)d[events] / 1e6);
	printf("propagation_p99_ms %.1f ms\n", (double)d[(2 * events * 99) / 100] / 1e6);
	printf("propagation_max_ms %.1f ms\n", (double)d[2 * events - 1] / 1e6);
	free(d);
}

/* total_commands_processed and total_net_{input,output}_bytes. */
static void redis_counters(const char *sock, uint64_t out[3])
{
	static const char *const names[] = { "total_commands_processed:",
					      "total_net_input_bytes:",
					      "total_net_output_bytes:" };
	char cmd[512], line[256];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "redis-cli -s '%s' info stats", sock);
	p = popen(cmd, "r");
	if (!p)
		kt_fail("redis-cli: %m");
	while (fgets(line, sizeof(line), p))
		for (int i = 0; i < 3; i++)
			if (!strncmp(line, names[i], strlen(names[i])))
				out[i] = strtoull(line + strlen(names[i]), NULL, 10);
	pclose(p);
}

/* utime + stime of a process, in clock ticks. */
static uint64_t cpu_ticks(pid_t pid)
{
	unsigned long long ut = 0, st = 0;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		kt_fail("%s: %m", path);
	if (fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		kt_fail("cannot parse %s", path);
	fclose(f);
	return ut + st;
}

static void churn(int lfd, unsigned ms, const char *sock, pid_t *agents, int nagents)
{
	struct conn pool[PEER_POOL];
	uint64_t before[3] = { 0 }, after[3] = { 0 }, cpu0 = 0, cpu1 = 0, t0, elapsed;
	unsigned long opened = 0;
	char src[32];

	for (int i = 0; i < PEER_POOL; i++)
		pool[i].cli = pool[i].srv = -1;
	redis_counters(sock, before);
	for (int i = 0; i < nagents; i++)
		cpu0 += cpu_ticks(agents[i]);
	t0 = bench_now_ns();
	while (bench_now_ns() - t0 < (uint64_t)ms * 1000000) {
		struct conn *c = &pool[rand() % PEER_POOL];

		if (c->cli >= 0) {
			close(c->cli);
			close(c->srv);
		}
		snprintf(src, sizeof(src), "127.0.%d.%d", rand() % 4, rand() % 250 + 2);
		*c = net_conn_open(lfd, src, "127.0.0.1", 25);
		opened++;
	}
	elapsed = bench_now_ns() - t0;
	usleep(300000);		/* let the last changes go out */
	redis_counters(sock, after);
	for (int i = 0; i < nagents; i++)
		cpu1 += cpu_ticks(agents[i]);
	for (int i = 0; i < PEER_POOL; i++)
		if (pool[i].cli >= 0) {
			close(pool[i].cli);
			close(pool[i].srv);
		}
	double s = (double)(elapsed + 300000000ull) / 1e9;

	printf("churn_rate %.0f connections/s in node A\n", (double)opened / ((double)elapsed / 1e9));
	printf("redis_commands_per_node %.0f commands/s\n", (double)(after[0] - before[0]) / s / nagents);
	printf("redis_bytes_in_per_node %.0f bytes/s\n", (double)(after[1] - before[1]) / s / nagents);
	printf("redis_bytes_out_per_node %.0f bytes/s\n", (double)(after[2] - before[2]) / s / nagents);
	printf("agent_cpu_per_node %.1f %%\n",
	       100.0 * (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) / s / nagents);
}

int main(int argc, char **argv)
{
	struct ca_cidr cidr;
	struct ca_services services;
	const struct ca_service *svc;
	struct ca_handle *h;
	struct ca_error err;
	struct netns a = { .fd = -1 };
	pid_t agents[8];
	int nagents = 0, lfd;
	struct stat st;

	if (argc < 8) {
		fprintf(stderr, "usage: %s PIN_DIR NS_A NS_B REDIS_SOCKET EVENTS CHURN_MS "
			"AGENT_PID...\n", argv[0]);
		return 2;
	}
	for (int i = 7; i < argc && nagents < 8; i++)
		agents[nagents++] = (pid_t)atoi(argv[i]);
	ca_services_defaults(&services);
	svc = ca_services_find(&services, "SMTP", &err);
	if (ca_cidr_parse("127.0.0.0/24", &cidr, &err) || ca_open(&h, argv[1], &err))
		kt_fail("%s", err.msg);
	if (stat(argv[3], &st))
		kt_fail("%s: %m", argv[3]);
	ca_set_netns(h, (uint32_t)st.st_ino);
	srand(1);
	query_cost(h, &cidr, svc);
	a.fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (a.fd < 0)
		kt_fail("%s: %m", argv[2]);
	ns_switch(&a);
	lfd = net_listen("127.0.0.1", 25, false);
	propagation(h, &cidr, svc, lfd, (unsigned)atoi(argv[5]));
	churn(lfd, (unsigned)atoi(argv[6]), argv[4], agents, nagents);
	close(lfd);
	ca_close(h);
	return 0;
}
