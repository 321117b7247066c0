// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * table.c - reads from the mapped ca_table stay exact while the kernel
 * inserts, reclaims and reuses slots under them.
 *
 * A child churns connections from a new peer each time (a sliding window
 * over 127.0.1.0/24 and 127.0.2.0/24) with ca_peers sized small, so that
 * zero entries are reclaimed and their slots reused all along. Meanwhile
 * this process reads, as fast as it can, the counts of sessions it holds
 * still (from 127.0.3.3, in a /24 and /16 of their own among the defaults,
 * and per port total on another port): every single read must be exact.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios.h"

#define HELD		3	/* sessions from 127.0.3.3, held throughout */
#define WINDOW		24	/* the churner's open connections */
#define READ_MS		3000

static void __attribute__((noreturn)) churner(int lfd)
{
	struct conn ring[WINDOW] = { 0 };
	char src[32];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (unsigned i = 0;; i++) {
		struct conn *c = &ring[i % WINDOW];

		if (i >= WINDOW)
			conn_close(c);
		snprintf(src, sizeof(src), "127.0.%u.%u", 1 + i / 250 % 2, 1 + i % 250);
		*c = net_conn_open(lfd, src, "127.0.0.1", SMTP);
	}
}

static uint64_t reclaimed(void)
{
	uint64_t s[CA_STAT_NR];

	CA_CHECK(ca_read_stats(E.h, s, &ERR));
	return s[CA_STAT_RECLAIMED];
}

/* One read: count cidr about 127.0.3.3 on SMTP (or Control) must be want.
 * The churn may find ca_peers full between two reclaim walks, which flags
 * every read while such a session lives (CA_INCOMPLETE); the held sessions'
 * entries were made before, so their counts must be exact all the same. */
static void read_exact(const char *cidr, const char *service, uint64_t want, unsigned n)
{
	uint64_t got = 0;
	int rc = ca_count_str(E.h, &E.services, cidr, service, "127.0.3.3", &got, &ERR);

	if ((rc != 0 && rc != CA_INCOMPLETE) || got != want)
		kt_fail("read %u of %s %s during churn: rc %d, %llu sessions, want %llu (%s)",
			n, cidr, service, rc, (unsigned long long)got, (unsigned long long)want,
			rc ? ERR.msg : "the count itself");
}

static void sc_table_reads(const void *a, const void *b)
{
	struct ca_load_opts o = { .max_peers = 256 };
	int lfd = net_listen("127.0.0.1", SMTP, false), cfd = net_listen("127.0.0.1", CONTROL,
									 false);
	struct conn held[HELD], control;
	struct ca_health hv;
	uint64_t before;
	int64_t end;
	unsigned n = 0;
	pid_t child;

	(void)a;
	(void)b;
	load_opts(&o);
	for (unsigned i = 0; i < HELD; i++)
		held[i] = net_conn_open(lfd, "127.0.3.3", "127.0.0.1", SMTP);
	control = net_conn_open(cfd, "127.0.3.3", "127.0.0.1", CONTROL);
	compare(HELD + 1, "%u sessions from 127.0.3.3 held", HELD + 1);
	before = reclaimed();
	fflush(stdout);
	child = fork();
	if (child < 0)
		kt_fail("fork: %m");
	if (child == 0)
		churner(lfd);
	end = kt_now_ms() + READ_MS;
	while (kt_now_ms() < end) {
		read_exact("/32", "SMTP", HELD, n);
		read_exact("/24", "SMTP", HELD, n);
		read_exact("127.0.3.0/25", "SMTP", HELD, n);	/* summed from peers */
		read_exact("/0", "Control", 1, n);
		n++;
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	printf("# %u rounds of 4 reads during churn, %llu entries reclaimed meanwhile\n", n,
	       (unsigned long long)(reclaimed() - before));
	if (reclaimed() - before < 100)
		kt_fail("only %llu entries were reclaimed: the churn did not reuse slots",
			(unsigned long long)(reclaimed() - before));
	for (unsigned i = 0; i < HELD; i++)
		conn_close(&held[i]);
	conn_close(&control);
	net_close(&lfd);
	net_close(&cfd);
	wait_incomplete(0);
	CA_CHECK(ca_read_health(E.h, &hv, &ERR));
	E.peers_full = hv.peers_full;	/* what the churn found full: not this test's */
	compare(0, "everything closed");
}

void table_register(kt_add_fn *add)
{
	add("table/reads-under-churn", sc_table_reads, NULL, NULL);
}
