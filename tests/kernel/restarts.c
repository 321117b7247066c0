// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * restarts.c - the auditor's own life under load: a loader killed at random
 * points, unload and load with thousands of sessions open, `load --replace`
 * while connections churn, and loads racing each other or an unload.
 *
 * Whatever happens to a loader, the pin dir is either absent or a complete
 * auditor whose counts are exact; a dead loader's staging dir survives only
 * until the next load or unload.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios.h"

#define KILL_ROUNDS	20
#define RACE_ROUNDS	5
#define SOURCES_V6	7	/* KT_V6_LO_ADDRS but fd00:ca::1, the listeners' */

/* Sessions spread over three listeners: IPv4, v4-mapped and IPv6 peers. */
struct sessions {
	int lfd[3];
	struct conn c[2000];
	unsigned n;
};

static void sessions_listen(struct sessions *s)
{
	s->lfd[0] = net_listen("127.0.0.1", CONTROL, false);
	s->lfd[1] = net_listen("::", ECCLUSTER, false);
	s->lfd[2] = net_listen("fd00:ca::1", ECSTREAM, true);
	s->n = 0;
}

/* n more, round robin over the listeners, from many IPv4 /24s and seven
 * IPv6 addresses. */
static void sessions_open(struct sessions *s, unsigned n)
{
	static const char *const v6[] = KT_V6_LO_ADDRS;
	char src[64];

	if (s->n + n > NELEMS(s->c))
		kt_fail("more than %zu sessions", NELEMS(s->c));
	for (unsigned i = s->n; i < s->n + n; i++) {
		unsigned kind = i % 3;

		if (kind == 2)
			snprintf(src, sizeof(src), "%s", v6[1 + i / 3 % SOURCES_V6]);
		else
			snprintf(src, sizeof(src), "127.%u.%u.%u", 1 + kind, i / 3 / 250 % 250,
				 1 + i / 3 % 250);
		s->c[i] = net_conn_open(s->lfd[kind], src, kind == 2 ? "fd00:ca::1" : "127.0.0.1",
					kind == 0 ? CONTROL : kind == 1 ? ECCLUSTER : ECSTREAM);
	}
	s->n += n;
}

/* Room for n open files: the runner raised the soft limit to the hard one,
 * which a VM's init may leave at 4096; root may raise both. */
static void need_files(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		kt_fail("getrlimit: %m");
	if (rl.rlim_cur >= n)
		return;
	rl.rlim_cur = n;
	rl.rlim_max = rl.rlim_max > n ? rl.rlim_max : n;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		kt_fail("%llu open files needed: %m", (unsigned long long)n);
}

static void sessions_close(struct sessions *s)
{
	for (unsigned i = 0; i < s->n; i++)
		conn_close(&s->c[i]);
	s->n = 0;
}

/* ---- admin commands in a process of their own ------------------------------ */

/* fork: the child waits for the pipe `go` to close (go may be NULL), then
 * loads with o, or unloads when o is NULL, and exits with the errno it got
 * (0: done). */
static pid_t spawn_admin(const struct ca_load_opts *o, const int go[2])
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		kt_fail("fork: %m");
	if (pid == 0) {
		struct ca_error err;
		char c;
		int r;

		if (go) {
			close(go[1]);
			if (read(go[0], &c, 1) < 0)
				_exit(125);
		}
		r = o ? ca_load(o, &err) : ca_unload(E.pin_dir, &err);
		if (r < 0 && r != -EEXIST && r != -EBUSY && r != -ENOENT)
			printf("%s: %s\n", o ? "load" : "unload", err.msg);
		fflush(stdout);
		_exit(r < 0 ? (-r > 124 ? 124 : -r) : 0);
	}
	return pid;
}

/* The admin's result: 0 or -errno; 1 if it was killed. */
static int reap_admin(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		kt_fail("waitpid: %m");
	if (WIFSIGNALED(st))
		return 1;
	return -WEXITSTATUS(st);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void staging_of(pid_t pid, char *buf, size_t len)
{
	snprintf(buf, len, "%s-staging-%d", E.pin_dir, (int)pid);
}

static void unload_now(void)
{
	ca_close(E.h);
	E.h = NULL;
	CA_CHECK(admin_patiently(NULL, E.pin_dir, &ERR));
}

/* ---- a loader killed at random points ------------------------------------------ */

/* How long a load takes here while the workers churn, from fork to exit,
 * in microseconds. */
static unsigned load_duration_us(const struct ca_load_opts *o)
{
	struct churn ch;
	int64_t start;
	int r;

	churn_start(&ch, UINT_MAX);
	start = kt_now_ms();
	r = reap_admin(spawn_admin(o, NULL));
	start = kt_now_ms() - start;
	churn_settle(&ch);
	churn_end(&ch);
	if (r)
		kt_fail("a plain load failed: %s", strerror(-r));
	unload_now();
	return (unsigned)(start + 1) * 1000;
}

struct kill_tally {
	unsigned before, after, staging;	/* killed before / after publishing */
};

/* After the kill, the next load or unload must remove a staging dir the
 * loader left; then a load must succeed and be exact. */
static void recover(unsigned round, pid_t loader, bool loaded, uint64_t expect)
{
	char staging[PATH_MAX + 32];

	staging_of(loader, staging, sizeof(staging));
	if (loaded || round % 2) {
		int r = admin_patiently(NULL, E.pin_dir, &ERR);

		if (r != (loaded ? 0 : -ENOENT))
			kt_fail("round %u: unload after the kill: %d (%s)", round, r, ERR.msg);
		ca_close(E.h);
		E.h = NULL;
	}
	if (!loaded && round % 2 == 0)
		load();
	if (exists(staging))
		kt_fail("round %u: %s survived the next %s", round, staging,
			loaded || round % 2 ? "unload" : "load");
	if (!E.h)
		load();
	compare(expect, "round %u: loaded again after the kill", round);
}

static void kill_round(unsigned round, struct kt_rng *rng, unsigned duration_us,
		       struct kill_tally *t, uint64_t sessions)
{
	struct ca_load_opts o = { .pin_dir = E.pin_dir, .quiet = true };
	char staging[PATH_MAX + 32];
	struct churn ch;
	pid_t pid;
	int r;

	churn_start(&ch, UINT_MAX);
	pid = spawn_admin(&o, NULL);
	/* Up to half as long again: some loaders must live to publish. */
	usleep(kt_below(rng, duration_us + duration_us / 2));
	kill(pid, SIGKILL);
	r = reap_admin(pid);
	churn_settle(&ch);
	if (r < 0)
		kt_fail("round %u: the loader failed on its own: %s", round, strerror(-r));
	staging_of(pid, staging, sizeof(staging));
	bool loaded = exists(E.pin_dir);

	if (r == 0 && !loaded)
		kt_fail("round %u: the loader finished but %s is absent", round, E.pin_dir);
	t->before += !loaded;
	t->after += loaded;
	t->staging += exists(staging);
	if (loaded) {
		open_handle();
		compare(sessions + 2 * CHURN_RING, "round %u: the loader published, then died",
			round);
	} else if (ca_open(&E.h, E.pin_dir, &ERR) != -ENOENT) {
		kt_fail("round %u: no pin dir, yet ca_open did not say -ENOENT", round);
	}
	recover(round, pid, loaded, sessions + 2 * CHURN_RING);
	churn_end(&ch);
	compare(sessions, "round %u: the churn workers died", round);
	unload_now();
}

static void sc_sigkill_load(const void *a, const void *b)
{
	static struct sessions s;
	struct ca_load_opts o = { .pin_dir = E.pin_dir, .quiet = true };
	struct kill_tally t = { 0 };
	struct kt_rng rng = { kt_seed("restart/sigkill-load") };

	(void)a, (void)b;
	sessions_listen(&s);
	sessions_open(&s, 60);
	unsigned duration_us = load_duration_us(&o);

	for (unsigned round = 0; round < KILL_ROUNDS; round++)
		kill_round(round, &rng, duration_us, &t, s.n);
	printf("# restart/sigkill-load: a load takes %u ms; %u rounds: killed before publishing "
	       "%u (staging dir left %u), after %u\n", duration_us / 1000, KILL_ROUNDS,
	       t.before, t.staging, t.after);
	sessions_close(&s);
}

/* ---- unload, load and replace with thousands of sessions ------------------------ */

/* While nothing is loaded: a tenth of A's sessions end, a tenth go to
 * CLOSE_WAIT (still counted), and B gets 300 more. */
static void change_unwatched(struct sessions *a, struct sessions *b)
{
	unsigned tenth = a->n / 10;

	for (unsigned i = 0; i < tenth; i++) {
		net_close_rst(&a->c[i].srv);
		net_close(&a->c[tenth + i].cli);
	}
	ns_switch(&E.ns[NS_B]);
	sessions_open(b, 300);
	ns_switch(&E.ns[NS_A]);
}

/* load --replace while two workers churn: counts and maps are kept. */
static void replace_under_churn(uint64_t in_a, uint64_t in_b)
{
	struct ca_load_opts o = { .replace = true };
	struct ca_handle *kept;
	struct churn ch;

	CA_CHECK(ca_open(&kept, E.pin_dir, &ERR));
	churn_start(&ch, UINT_MAX);
	load_opts(&o);
	churn_settle(&ch);
	compare_ns(NS_A, in_a + 2 * CHURN_RING, "replaced while two workers churned");
	compare_ns(NS_B, in_b, "replaced while two workers churned in A");
	EXPECT_EQ(ca_handle_stale(kept), false);
	ca_close(kept);
	churn_end(&ch);
	compare_ns(NS_A, in_a, "the churn workers died");
}

static void sc_reload_busy(const void *a, const void *b)
{
	static struct sessions sa, sb;

	(void)a, (void)b;
	need_files(2 * (NELEMS(sa.c) + NELEMS(sb.c)) + 256);
	second_namespace();
	sessions_listen(&sa);
	sessions_open(&sa, 2000);
	ns_switch(&E.ns[NS_B]);
	sessions_listen(&sb);
	sessions_open(&sb, 1000);
	ns_switch(&E.ns[NS_A]);
	load();
	compare_ns(NS_A, 2000, "loaded with 2000 sessions open");
	compare_ns(NS_B, 1000, "loaded with 1000 sessions open");
	unload_now();
	change_unwatched(&sa, &sb);
	load();
	compare_ns(NS_A, 1800, "reloaded after 200 ended and 200 went to CLOSE_WAIT");
	compare_ns(NS_B, 1300, "reloaded after 300 opened");
	replace_under_churn(1800, 1300);
	sessions_close(&sa);
	ns_switch(&E.ns[NS_B]);
	sessions_close(&sb);
	ns_switch(&E.ns[NS_A]);
	compare_ns(NS_A, 0, "everything closed");
	compare_ns(NS_B, 0, "everything closed");
}

/* ---- racing admins -------------------------------------------------------------- */

/* Start two admin commands at the same moment; their results in r[]. */
static void race(const struct ca_load_opts *o1, const struct ca_load_opts *o2, int r[2])
{
	int go[2];
	pid_t pid[2];

	if (pipe(go))
		kt_fail("pipe: %m");
	pid[0] = spawn_admin(o1, go);
	pid[1] = spawn_admin(o2, go);
	close(go[0]);
	close(go[1]);		/* both read end-of-file now */
	r[0] = reap_admin(pid[0]);
	r[1] = reap_admin(pid[1]);
}

static bool refused(int r)
{
	return r == -EEXIST || r == -EBUSY;
}

static void race_round(unsigned round, const struct ca_load_opts *o, uint64_t sessions)
{
	int r[2];

	race(o, o, r);
	if (!((r[0] == 0 && refused(r[1])) || (r[1] == 0 && refused(r[0]))))
		kt_fail("round %u: two loads returned %d and %d: want one 0, one -EEXIST or "
			"-EBUSY", round, r[0], r[1]);
	open_handle();
	compare(sessions, "round %u: two loads raced", round);

	/* A load and an unload: the load wins only if it comes second. */
	race(o, NULL, r);
	if (r[1] != 0 || (r[0] != 0 && !refused(r[0])))
		kt_fail("round %u: load and unload raced: %d and %d", round, r[0], r[1]);
	if (r[0] == 0) {
		open_handle();
		compare(sessions, "round %u: unloaded, then loaded", round);
		unload_now();
	} else if (exists(E.pin_dir)) {
		kt_fail("round %u: the load was refused and the unload done, yet %s exists",
			round, E.pin_dir);
	}
	ca_close(E.h);
	E.h = NULL;
}

static void sc_concurrent_load(const void *a, const void *b)
{
	static struct sessions s;
	struct ca_load_opts o = { .pin_dir = E.pin_dir, .quiet = true };

	(void)a, (void)b;
	sessions_listen(&s);
	sessions_open(&s, 30);
	for (unsigned round = 0; round < RACE_ROUNDS; round++)
		race_round(round, &o, s.n);
	sessions_close(&s);
}

void restarts_register(kt_add_fn *add)
{
	add("restart/sigkill-load", sc_sigkill_load, NULL, NULL);
	add("restart/reload-busy", sc_reload_busy, NULL, NULL);
	add("restart/concurrent-load", sc_concurrent_load, NULL, NULL);
}
