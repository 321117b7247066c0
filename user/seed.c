// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "errors.h"
#include "connaudit.skel.h"
#include "seed.h"
#include "sysfs.h"

struct seed_run {
	struct connaudit_bpf *skel;
	int link_fd;
	int namespaces;
	struct ca_error *err;
};

/* One pass of the iterator over the caller's current network namespace:
 * the iterator walks the namespace of the process that creates it. */
static int run_iter_pass(struct seed_run *run, int pass)
{
	char buf[64];
	ssize_t n;
	int fd;

	run->skel->bss->seed_pass = pass;
	fd = bpf_iter_create(run->link_fd);
	if (fd < 0)
		return ca_errf(run->err, -errno, "cannot start the seeding iterator: %s",
			       strerror(errno));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	n = n < 0 ? -errno : 0;
	close(fd);
	if (n)
		return ca_errf(run->err, (int)n, "seeding iterator failed: %s", strerror((int)-n));
	return 0;
}

static int seed_netns(int fd, uint32_t inode, void *arg)
{
	struct seed_run *run = arg;
	int rc;

	(void)inode;
	if (setns(fd, CLONE_NEWNET) != 0)
		return ca_errf(run->err, -errno, "cannot enter network namespace %u to count "
			       "its sessions: %s", inode, strerror(errno));
	rc = run_iter_pass(run, 1);
	if (!rc)
		rc = run_iter_pass(run, 2);
	run->namespaces++;
	return rc;
}

int ca_seed(struct connaudit_bpf *skel, struct ca_error *err)
{
	struct seed_run run = { .skel = skel, .err = err };
	struct bpf_link *link;
	int self, rc;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return ca_errf(err, -errno, "cannot open /proc/self/ns/net: %s", strerror(errno));
	link = bpf_program__attach_iter(skel->progs.seed, NULL);
	if (!link) {
		rc = -errno;
		close(self);
		return ca_errf(err, rc, "cannot attach the iter/tcp seeding program: %s "
			       "(needs kernel 5.9 or later)", strerror(-rc));
	}
	run.link_fd = bpf_link__fd(link);
	rc = ca_foreach_netns(seed_netns, &run, err);
	if (setns(self, CLONE_NEWNET) != 0 && !rc)
		rc = ca_errf(err, -errno, "cannot return to the original network namespace: %s",
			     strerror(errno));
	close(self);
	bpf_link__destroy(link);
	return rc ? rc : run.namespaces;
}
