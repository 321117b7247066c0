// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor.c - attach 1 or 2 empty programs to tp_btf/inet_sock_set_state,
 * or the empty sock_ops program to the cgroup2 root (bench/floor.bpf.c),
 * say "attached" on stdout, and hold them until SIGTERM or SIGINT.
 * bench/run.sh and bench/compare.sh run the churn beside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floor.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The cgroup2 root, from /proc/mounts; NULL if there is none. */
static const char *cgroup2_root(char *buf, size_t len)
{
	char dev[64], dir[256], type[32];
	FILE *f = fopen("/proc/mounts", "re");
	const char *found = NULL;

	while (f && !found && fscanf(f, "%63s %255s %31s %*[^\n]", dev, dir, type) == 3)
		if (!strcmp(type, "cgroup2") && snprintf(buf, len, "%s", dir) < (int)len)
			found = buf;
	if (f)
		fclose(f);
	return found;
}

static int attach_sockops(struct floor_bpf *skel)
{
	char root[256];
	int fd;

	if (!cgroup2_root(root, sizeof(root))) {
		fprintf(stderr, "floor: no cgroup2 mount in /proc/mounts\n");
		return -1;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	skel->links.floor_sockops = bpf_program__attach_cgroup(skel->progs.floor_sockops, fd);
	close(fd);
	return skel->links.floor_sockops ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct floor_bpf *skel;
	bool sockops = argc == 2 && !strcmp(argv[1], "sockops");
	int n = argc == 2 ? atoi(argv[1]) : 0;

	if (!sockops && (n < 1 || n > 2)) {
		fprintf(stderr, "usage: floor 1|2|sockops  (empty tp_btf programs to attach, "
			"or the empty sock_ops program at the cgroup2 root)\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "floor: cannot load bench/floor.bpf.c: %s\n", strerror(errno));
		return 1;
	}
	if (sockops) {
		if (attach_sockops(skel)) {
			fprintf(stderr, "floor: cannot attach sock_ops to the cgroup2 root: %s\n",
				strerror(errno));
			floor_bpf__destroy(skel);
			return 1;
		}
	} else {
		skel->links.floor_a = bpf_program__attach(skel->progs.floor_a);
		if (skel->links.floor_a && n == 2)
			skel->links.floor_b = bpf_program__attach(skel->progs.floor_b);
		if (!skel->links.floor_a || (n == 2 && !skel->links.floor_b)) {
			fprintf(stderr, "floor: cannot attach to tp_btf/inet_sock_set_state: %s\n",
				strerror(errno));
			floor_bpf__destroy(skel);
			return 1;
		}
	}
	printf("attached\n");
	fflush(stdout);
	while (!stop)
		pause();
	floor_bpf__destroy(skel);
	return 0;
}
