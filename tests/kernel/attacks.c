// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * attacks.c - what a neighbour or an odd host layout did to the auditor
 * (issue 12), each reproduced and checked against the kernel's view:
 *   - attack/accept-queues: an unprivileged user (nobody) fills accept
 *     queues on high ports with CLOSE_WAIT children, before and after the
 *     load, with ca_marks small; sessions to port 25 must still count;
 *   - seeding/many-listeners: more listening ports than the old seeding
 *     table held (16,384), one session queued on every tenth;
 *   - seeding/stray-netns-files: /run/netns holds an empty file and a
 *     namespace of another kind; the load skips them and counts;
 *   - replace/stale-new-pins: a replace killed half-way left link_*-new;
 *   - tfo/seeded-pending: a fast-open child still SYN_RECV at load time in
 *     cgroup mode is counted once its handshake completes;
 *   - group/bpffs-root-mode: load --group gives a private bpffs root o+x
 *     and the last unload of a granted pin dir takes it back.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <bpf/bpf.h>

#include "ports.h"
#include "scenarios.h"

#define NOBODY		65534
#define ATTACK_PORT	40001	/* and the next one */
#define ATTACK_CONNS	40	/* per phase, over both listeners */

/* The load's own port table, so that the kernel's view keeps what the
 * auditor is meant to count. */
static struct ca_ports audited;

static void audit_ports_of(const struct ca_load_opts *o)
{
	if (ca_ports_build(o, &audited, &ERR) < 0)
		kt_fail("ca_ports_build: %s", ERR.msg);
	E.filter.ports = &audited;
}

/* Connect to port and close at once: the child stays queued in CLOSE_WAIT. */
static void queue_closewait(const char *src, uint16_t port)
{
	int fd = net_connect(src, "127.0.0.1", port);

	net_close(&fd);
}

static void become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		kt_fail("cannot become nobody: %m");
	if (geteuid() != NOBODY)
		kt_fail("still uid %u", (unsigned)geteuid());
}

/* The attacker: two listeners, ATTACK_CONNS queued children, then (on a
 * byte from `go`) as many again; one byte to `done` after each phase. */
static void __attribute__((noreturn)) attacker(int go, int done)
{
	char b = 0;

	become_nobody();
	for (int i = 0; i < 2; i++)	/* held open until killed */
		(void)net_listen("127.0.0.1", ATTACK_PORT + i, false);
	for (int phase = 0; phase < 2; phase++) {
		if (phase && read(go, &b, 1) != 1)
			_exit(1);
		for (int i = 0; i < ATTACK_CONNS; i++)
			queue_closewait("127.0.0.1", ATTACK_PORT + i % 2);
		if (write(done, &b, 1) != 1)
			_exit(1);
	}
	pause();
	_exit(0);
}

static void wait_byte(int fd, const char *what)
{
	char b;

	if (read(fd, &b, 1) != 1)
		kt_fail("the attacker died before %s", what);
}

static void sc_accept_queues(const void *a, const void *b)
{
	struct ca_load_opts o = { .max_sessions = 64 };
	int go[2], done[2];
	struct conn c[5];
	pid_t pid;

	(void)a, (void)b;
	audit_ports_of(&o);
	if (pipe(go) || pipe(done))
		kt_fail("pipe: %m");
	pid = fork();
	if (pid < 0)
		kt_fail("fork: %m");
	if (pid == 0)
		attacker(go[0], done[1]);
	wait_byte(done[0], "its first connections");
	load_opts(&o);		/* seeding sees the first phase */
	if (write(go[1], "g", 1) != 1)
		kt_fail("write: %m");
	wait_byte(done[0], "its second connections");
	compare(0, "nobody queued %d CLOSE_WAIT children on ports %d and %d",
		2 * ATTACK_CONNS, ATTACK_PORT, ATTACK_PORT + 1);

	int lfd = net_listen("127.0.0.1", SMTP, false);

	for (unsigned i = 0; i < 5; i++) {
		c[i] = net_conn_open(lfd, "127.0.1.1", "127.0.0.1", SMTP);
		compare(i + 1, "SMTP session %u", i + 1);
	}
	for (unsigned i = 0; i < 5; i++)
		conn_close(&c[i]);
	compare(0, "SMTP sessions closed");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

#define MANY_FIRST	20000
#define MANY_PORTS	18500

static void sc_many_listeners(const void *a, const void *b)
{
	char range[32];
	struct ca_load_opts o = { .ports = range };
	unsigned sessions = 0;

	(void)a, (void)b;
	snprintf(range, sizeof(range), "%d-%d", MANY_FIRST, MANY_FIRST + MANY_PORTS - 1);
	audit_ports_of(&o);
	net_raise_nofile();
	for (int i = 0; i < MANY_PORTS; i++) {
		(void)net_listen("127.0.0.1", (uint16_t)(MANY_FIRST + i), false);
		if (i % 10 == 0) {
			queue_closewait("127.0.1.1", (uint16_t)(MANY_FIRST + i));
			sessions++;
		}
	}
	load_opts(&o);
	compare(sessions, "%d listening ports, a session queued on every tenth", MANY_PORTS);
}

/* A private /run with what a failed `ip netns add` leaves behind (an
 * empty file) and a bind mount of a namespace that is not a network one. */
static void stray_run_netns(void)
{
	int fd;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		kt_skip("no private mount namespace: %m");
	if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") || mkdir("/run/netns", 0755))
		kt_fail("tmpfs on a private /run: %m");
	fd = open("/run/netns/failed-add", O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		kt_fail("creat: %m");
	close(fd);
	fd = open("/run/netns/uts", O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || mount("/proc/self/ns/uts", "/run/netns/uts", NULL, MS_BIND, NULL))
		kt_fail("bind mount of a uts namespace: %m");
	close(fd);
}

static void sc_stray_netns_files(const void *a, const void *b)
{
	struct conn c;

	(void)a, (void)b;
	stray_run_netns();
	int lfd = net_listen("127.0.0.1", SMTP, false);

	c = net_conn_open(lfd, "127.0.1.1", "127.0.0.1", SMTP);
	load();
	compare(1, "loaded past two files in /run/netns that are no network namespace");
	conn_close(&c);
	compare(0, "closed");
}

/* What a replace killed between pinning its links and renaming them left. */
static void pin_stale_new_links(void)
{
	static const char *const names[] = { CA_PIN_LINK_STATE "-new", CA_PIN_LINK_TWIN "-new" };
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", E.pin_dir, CA_PIN_CONFIG);
	fd = bpf_obj_get(path);
	if (fd < 0)
		kt_fail("bpf_obj_get %s: %m", path);
	for (size_t i = 0; i < NELEMS(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", E.pin_dir, names[i]);
		if (bpf_obj_pin(fd, path))
			kt_fail("bpf_obj_pin %s: %m", path);
	}
	close(fd);
}

static void sc_stale_new_pins(const void *a, const void *b)
{
	struct ca_load_opts o = { .replace = true };
	char path[PATH_MAX + 32];
	struct conn c;

	(void)a, (void)b;
	int lfd = net_listen("127.0.0.1", SMTP, false);

	load();
	c = net_conn_open(lfd, "127.0.1.1", "127.0.0.1", SMTP);
	compare(1, "one session");
	pin_stale_new_links();
	load_opts(&o);
	snprintf(path, sizeof(path), "%s/%s-new", E.pin_dir, CA_PIN_LINK_STATE);
	if (access(path, F_OK) == 0)
		kt_fail("%s is still there after the replace", path);
	compare(1, "replaced past the stale -new pins");
	conn_close(&c);
	compare(0, "closed, by the new programs");
}

static void sc_tfo_seeded_pending(const void *a, const void *b)
{
	struct test_cgroup cg;
	struct conn c;
	int off = 0;

	(void)a, (void)b;
	test_cgroup_setup(&cg);
	cg_move_self(E.cgroup);
	net_enable_tfo();
	int lfd = net_listen("127.0.0.1", SMTP, false);

	net_listen_tfo(lfd);
	/* The first connection fetches the fast-open cookie. */
	c.cli = net_connect_tfo("127.0.1.1", "127.0.0.1", SMTP);
	c.srv = net_accept_of(lfd, c.cli);
	conn_close(&c);
	net_drop_handshake_acks(lfd);
	c.cli = net_connect_tfo("127.0.1.1", "127.0.0.1", SMTP);
	c.srv = net_accept_of(lfd, c.cli);
	EXPECT_EQ(net_tcp_state(c.srv), TCP_SYN_RECV);
	load_scoped(E.cgroup);
	/* Not counted yet, as ss would not; its pending mark is no session. */
	expect_count("/0", NULL, 0, 0);
	/* Let the child's segments through: the client's next one acks. */
	if (setsockopt(c.srv, SOL_SOCKET, SO_DETACH_FILTER, &off, sizeof(off)))
		kt_fail("SO_DETACH_FILTER: %m");
	if (send(c.cli, "x", 1, 0) != 1)
		kt_fail("send: %m");
	compare(1, "its handshake completed after the load");
	conn_close(&c);
	compare(0, "closed");
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		kt_fail("stat %s: %m", path);
	return st.st_mode & 0777;	/* bpffs roots also have the sticky bit */
}

static void admin(const struct ca_load_opts *o, const char *pin_dir)
{
	CA_CHECK(admin_patiently(o, pin_dir, &ERR));
}

/* Two granted loads and a plain one under a bpffs root of mode 0700, in a
 * private mount namespace (the host's /sys/fs/bpf is shared with others). */
static void sc_bpffs_root_mode(const void *a, const void *b)
{
	char root[64], dir[3][96];
	struct ca_load_opts o[3] = {
		{ .grant_group = true, .gid = NOBODY, .quiet = true },
		{ .grant_group = true, .gid = NOBODY, .quiet = true },
		{ .quiet = true },
	};

	(void)a, (void)b;
	snprintf(root, sizeof(root), "/tmp/connaudit-bpffs-%d", (int)getpid());
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		kt_skip("no private mount namespace: %m");
	if (mkdir(root, 0700) || mount("bpf", root, "bpf", 0, "mode=0700"))
		kt_fail("a private bpffs at %s: %m", root);
	for (int i = 0; i < 3; i++) {
		snprintf(dir[i], sizeof(dir[i]), "%s/ca%d", root, i);
		o[i].pin_dir = dir[i];
		admin(&o[i], NULL);
	}
	EXPECT_EQ(mode_of(root), 0701);	/* readers must traverse it */
	admin(NULL, dir[0]);
	EXPECT_EQ(mode_of(root), 0701);	/* dir[1]'s readers still need it */
	admin(NULL, dir[1]);
	EXPECT_EQ(mode_of(root), 0700);	/* the last granted load went */
	admin(NULL, dir[2]);
	EXPECT_EQ(mode_of(root), 0700);
	umount(root);
	rmdir(root);
}

void attacks_register(kt_add_fn *add)
{
	add("attack/accept-queues", sc_accept_queues, NULL, NULL);
	add("seeding/many-listeners", sc_many_listeners, NULL, NULL);
	add("seeding/stray-netns-files", sc_stray_netns_files, NULL, NULL);
	add("replace/stale-new-pins", sc_stale_new_pins, NULL, NULL);
	add("tfo/seeded-pending", sc_tfo_seeded_pending, NULL, NULL);
	add("group/bpffs-root-mode", sc_bpffs_root_mode, NULL, NULL);
}
