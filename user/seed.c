// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "errors.h"
#include "connaudit.skel.h"
#include "iter.h"
#include "seed.h"
#include "sysfs.h"

struct seed_run {
	struct connaudit_bpf *skel;
	int link_fd;
	struct ca_seed_report *report;
	struct ca_error *err;
};

/* One pass of the iterator over the caller's current network namespace:
 * the iterator walks the namespace of the process that creates it. */
static int run_iter_pass(struct seed_run *run)
{
	int fd, rc;

	fd = bpf_iter_create(run->link_fd);
	if (fd < 0)
		return ca_errf(run->err, -errno, "cannot start the seeding iterator: %s",
			       strerror(errno));
	rc = ca_iter_drain(fd, read, NULL, NULL);
	close(fd);
	if (rc)
		return ca_errf(run->err, rc, "seeding iterator failed: %s", strerror(-rc));
	return 0;
}

static int seed_netns(int fd, uint32_t inode, void *arg)
{
	struct seed_run *run = arg;
	int rc;

	if (setns(fd, CLONE_NEWNET) != 0)
		return ca_errf(run->err, -errno, "cannot enter network namespace %u to count "
			       "its sessions: %s", inode, strerror(errno));
	/* A new generation: listeners recorded in other namespaces do not match. */
	run->skel->bss->seed_gen++;
	run->skel->bss->seed_passed_over = false;
	run->skel->bss->seed_rerun = false;
	rc = run_iter_pass(run);
	/* A kernel that walked a listener after sessions: every listener is
	 * known now, and the sessions already counted are not counted again. */
	if (!rc && run->skel->bss->seed_rerun)
		rc = run_iter_pass(run);
	run->report->namespaces++;
	return rc;
}

static void note_skipped(const char *path, void *arg)
{
	struct seed_run *run = arg;

	if (!run->report->skipped++)
		snprintf(run->report->first_skipped, sizeof(run->report->first_skipped), "%s",
			 path);
}

int ca_seed(struct connaudit_bpf *skel, struct ca_seed_report *report, struct ca_error *err)
{
	struct seed_run run = { .skel = skel, .report = report, .err = err };
	struct bpf_link *link, *sockets;
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
	sockets = bpf_program__attach_iter(skel->progs.foreign_sockets, NULL);
	if (!sockets) {
		rc = -errno;
		close(self);
		bpf_link__destroy(link);
		return ca_errf(err, rc, "cannot attach the iter/task_file program that finds "
			       "namespaces held by sockets: %s", strerror(-rc));
	}
	run.link_fd = bpf_link__fd(link);
	memset(report, 0, sizeof(*report));
	skel->bss->foreign_last_tgid = 0;
	skel->bss->foreign_last_netns = 0;
	rc = ca_foreach_netns(seed_netns, note_skipped, &run, bpf_link__fd(sockets), err);
	if (setns(self, CLONE_NEWNET) != 0 && !rc)
		rc = ca_errf(err, -errno, "cannot return to the original network namespace: %s",
			     strerror(errno));
	close(self);
	bpf_link__destroy(sockets);
	bpf_link__destroy(link);
	return rc;
}
