// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "connaudit_abi.h"
#include "errors.h"
#include "iter.h"
#include "sysfs.h"

#define BPF_FS_MAGIC		0xcafe4a11
#define CGROUP2_SUPER_MAGIC	0x63677270
#define DEFAULT_BPFFS		"/sys/fs/bpf"

int ca_join_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

const char *ca_resolve_pin_dir(const char *arg)
{
	const char *env = getenv(CA_ENV_PIN_DIR);

	if (arg && *arg)
		return arg;
	return env && *env ? env : CA_DEFAULT_PIN_DIR;
}

/* statfs of `path`, or of its nearest existing ancestor. */
static int statfs_existing(const char *path, struct statfs *st)
{
	char buf[PATH_MAX];
	char *slash;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	while (statfs(buf, st) != 0) {
		if (errno != ENOENT)
			return -errno;
		slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return statfs("/", st) ? -errno : 0;
		*slash = '\0';
	}
	return 0;
}

int ca_check_bpffs(const char *dir, struct ca_error *err)
{
	struct statfs st;
	int rc = statfs_existing(dir, &st);

	if (rc)
		return ca_errf(err, rc, "cannot inspect %s: %s", dir, strerror(-rc));
	if ((unsigned long)st.f_type == BPF_FS_MAGIC)
		return 0;
	return ca_errf(err, -ENOENT,
		       "no connaudit maps at %s: it is not on a BPF filesystem. Is bpffs "
		       "mounted (mount -t bpf bpf /sys/fs/bpf)? If this runs under "
		       "`ip netns exec`, which mounts a fresh /sys, use "
		       "`nsenter --net=/run/netns/NAME` instead", dir);
}

int ca_ensure_bpffs(const char *pin_dir, struct ca_error *err)
{
	size_t n = strlen(DEFAULT_BPFFS);

	if (ca_check_bpffs(pin_dir, NULL) == 0)
		return 0;
	if (strncmp(pin_dir, DEFAULT_BPFFS "/", n + 1) != 0)
		return ca_errf(err, -ENOENT,
			       "pin dir %s is not on a BPF filesystem; pick a dir under a "
			       "bpffs mount such as " DEFAULT_BPFFS, pin_dir);
	if (mount("bpf", DEFAULT_BPFFS, "bpf", 0, "mode=0700") != 0)
		return ca_errf(err, -errno, "cannot mount bpffs on " DEFAULT_BPFFS ": %s%s",
			       strerror(errno),
			       errno == EPERM ? " (needs root / CAP_SYS_ADMIN)" : "");
	return 0;
}

int ca_cgroup2_mount(char *buf, size_t len, struct ca_error *err)
{
	FILE *f = setmntent("/proc/mounts", "r");
	struct mntent *m;
	int rc = -ENOENT;

	if (!f)
		return ca_errf(err, -errno, "cannot read /proc/mounts: %s", strerror(errno));
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			rc = snprintf(buf, len, "%s", m->mnt_dir) < (int)len ? 0 : -ENAMETOOLONG;
			break;
		}
	}
	endmntent(f);
	if (rc == -ENOENT)
		return ca_errf(err, rc, "no cgroup v2 filesystem in /proc/mounts: mount one "
			       "(mount -t cgroup2 none /sys/fs/cgroup) to use --cgroup");
	return rc;
}

int ca_open_cgroup(const char *path, uint64_t *id, struct ca_error *err)
{
	struct statfs sfs;
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ca_errf(err, -errno, "cannot open cgroup %s: %s", path, strerror(errno));
	if (fstatfs(fd, &sfs) || (unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC ||
	    fstat(fd, &st)) {
		close(fd);
		return ca_errf(err, -EINVAL, "%s is not a cgroup v2 directory (cgroup v2 is "
			       "where /proc/mounts lists type cgroup2)", path);
	}
	*id = st.st_ino;	/* on cgroup2 the inode number is the cgroup id */
	return fd;
}

int ca_open_cgroup_by_id(uint64_t id, struct ca_error *err)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = 0xfe } };
	char mnt[PATH_MAX];
	int mfd, fd, rc;

	rc = ca_cgroup2_mount(mnt, sizeof(mnt), err);
	if (rc)
		return rc;
	mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return ca_errf(err, -errno, "cannot open %s: %s", mnt, strerror(errno));
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -errno : fd;
	close(mfd);
	if (rc < 0)
		return ca_errf(err, rc, "cannot find the audited cgroup (id %llu): %s; was "
			       "it removed?", (unsigned long long)id, strerror(-rc));
	return rc;
}

/* Seen namespace inodes, so that each is visited once. */
struct seen {
	uint32_t *ino;
	size_t n, cap;
};

static bool seen_has(const struct seen *s, uint32_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ino[i] == ino)
			return true;
	return false;
}

static int seen_add(struct seen *s, uint32_t ino)
{
	if (seen_has(s, ino))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint32_t *p = realloc(s->ino, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->ino = p;
		s->cap = cap;
	}
	s->ino[s->n++] = ino;
	return 1;
}

/* Call fn for namespace fd if it is new; closes fd. */
static int visit_fd(struct seen *s, int fd, int (*fn)(int, uint32_t, void *), void *arg)
{
	struct stat st;
	int rc = fstat(fd, &st) ? 0 : seen_add(s, (uint32_t)st.st_ino);

	if (rc > 0)
		rc = fn(fd, (uint32_t)st.st_ino, arg);
	close(fd);
	return rc;
}

/* What to do with a file that is not a network namespace: NULL where every
 * file is one (/proc/.../ns/net), a callback that reports it in /run/netns. */
typedef void skip_fn(const char *path, void *arg);

/* Visit the netns at dir/name/suffix if it is new. */
static int visit_netns(struct seen *s, const char *dir, const char *name,
		       const char *suffix, int (*fn)(int, uint32_t, void *),
		       skip_fn *skipped, void *arg)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* the task exited, or not a namespace file */
	/* A file left by a failed `ip netns add` (no bind mount on it), or
	 * another kind of namespace: setns() would fail, so pass it by. */
	if (skipped && ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		skipped(path, arg);
		close(fd);
		return 0;
	}
	return visit_fd(s, fd, fn, arg);
}

static int walk_dir(struct seen *s, const char *dir, const char *suffix, bool pids_only,
		    int (*fn)(int, uint32_t, void *), skip_fn *skipped, void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return 0;	/* no /run/netns: nothing named there */
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.' || (pids_only && (e->d_name[0] < '0' || e->d_name[0] > '9')))
			continue;
		rc = visit_netns(s, dir, e->d_name, suffix, fn, skipped, arg);
	}
	closedir(d);
	return rc;
}

/* The netns of socket `fd` of process `pid`, as a new fd, or -1. */
static int socket_netns(int pidfd, int fd)
{
	int sfd = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int nsfd;

	if (sfd < 0)
		return -1;
	nsfd = ioctl(sfd, SIOCGSKNS);
	close(sfd);
	return nsfd;
}

/* Namespaces that no process is in any more but whose sockets a process
 * still holds (it created them, then setns()ed away). */
static int walk_socket_namespaces(struct seen *s, const char *pid,
				  int (*fn)(int, uint32_t, void *), void *arg)
{
	char dir[PATH_MAX], link[64], path[PATH_MAX];
	struct dirent *e;
	int pidfd, rc = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	d = opendir(dir);
	if (!d)
		return 0;
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)atoi(pid), 0);
	while (pidfd >= 0 && !rc && (e = readdir(d))) {
		ssize_t n;
		int nsfd;

		if (ca_join_path(path, sizeof(path), dir, e->d_name))
			continue;
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 7 || strncmp(link, "socket:", 7) != 0)
			continue;
		nsfd = socket_netns(pidfd, atoi(e->d_name));
		if (nsfd < 0)
			continue;
		rc = visit_fd(s, nsfd, fn, arg);
	}
	if (pidfd >= 0)
		close(pidfd);
	closedir(d);
	return rc;
}

struct foreign_walk {
	struct seen *s;
	int (*fn)(int, uint32_t, void *);
	void *arg;
	bool visit_failed;	/* the error is fn's (or seen_add's), not the read's */
};

/* Visit the new namespaces among what the foreign_sockets iterator printed. */
static int take_foreign(const void *buf, size_t len, void *arg)
{
	const struct ca_foreign_sock *r = buf;
	struct foreign_walk *w = arg;
	int rc = 0;

	if (len % sizeof(*r))
		return -EPROTO;
	for (size_t i = 0; !rc && i < len / sizeof(*r); i++) {
		int pidfd, nsfd;

		if (seen_has(w->s, r[i].netns))
			continue;
		pidfd = (int)syscall(SYS_pidfd_open, (pid_t)r[i].tgid, 0);
		if (pidfd < 0)
			continue;	/* it exited, and its sockets with it */
		nsfd = socket_netns(pidfd, (int)r[i].fd);
		close(pidfd);
		if (nsfd >= 0)
			rc = visit_fd(w->s, nsfd, w->fn, w->arg);
	}
	w->visit_failed = rc != 0;
	return rc;
}

/* Namespaces held only by sockets, as the iterator behind link_fd finds
 * them: one walk in the kernel instead of a question per socket. */
static int walk_foreign_sockets(struct seen *s, int link_fd,
				int (*fn)(int, uint32_t, void *), void *arg,
				struct ca_error *err)
{
	struct foreign_walk w = { .s = s, .fn = fn, .arg = arg };
	int fd = bpf_iter_create(link_fd), rc;

	if (fd < 0)
		return ca_errf(err, -errno, "cannot start the iterator over processes' "
			       "sockets: %s", strerror(errno));
	rc = ca_iter_drain(fd, read, take_foreign, &w);
	close(fd);
	if (rc && !w.visit_failed)
		return ca_errf(err, rc, "reading the iterator over processes' sockets "
			       "failed: %s", strerror(-rc));
	return rc;
}

/* Every process's and thread's namespace, then those held only by sockets
 * (through the iterator, or the process's descriptors if link_fd < 0). */
static int walk_processes(struct seen *s, int link_fd, int (*fn)(int, uint32_t, void *),
			  void *arg, struct ca_error *err)
{
	DIR *d = opendir("/proc");
	char tasks[PATH_MAX];
	struct dirent *e;
	int rc = 0;

	if (!d)
		return -errno;
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(tasks, sizeof(tasks), "/proc/%s/task", e->d_name);
		rc = walk_dir(s, tasks, "/ns/net", true, fn, NULL, arg);
		if (!rc && link_fd < 0)
			rc = walk_socket_namespaces(s, e->d_name, fn, arg);
	}
	closedir(d);
	if (!rc && link_fd >= 0)
		rc = walk_foreign_sockets(s, link_fd, fn, arg, err);
	return rc;
}

int ca_foreach_netns(int (*fn)(int fd, uint32_t inode, void *arg),
		     void (*skipped)(const char *path, void *arg), void *arg,
		     int sockets_iter, struct ca_error *err)
{
	struct seen s = { 0 };
	int rc = visit_netns(&s, "/proc", "self", "/ns/net", fn, NULL, arg);

	if (!rc)
		rc = walk_dir(&s, "/run/netns", "", false, fn, skipped, arg);
	if (!rc)
		rc = walk_processes(&s, sockets_iter, fn, arg, err);
	free(s.ino);
	if (rc == -ENOMEM)
		return ca_errf(err, rc, "out of memory listing network namespaces");
	return rc;
}
