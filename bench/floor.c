// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor.c - attach 1 or 2 empty programs to tp_btf/inet_sock_set_state
 * (bench/floor.bpf.c), say "attached" on stdout, and hold them until
 * SIGTERM or SIGINT. bench/run.sh runs the churn beside it.
 */
#include <errno.h>
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

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct floor_bpf *skel;
	int n = argc == 2 ? atoi(argv[1]) : 0;

	if (n < 1 || n > 2) {
		fprintf(stderr, "usage: floor 1|2  (empty tp_btf programs to attach)\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "floor: cannot load bench/floor.bpf.c: %s\n", strerror(errno));
		return 1;
	}
	skel->links.floor_a = bpf_program__attach(skel->progs.floor_a);
	if (skel->links.floor_a && n == 2)
		skel->links.floor_b = bpf_program__attach(skel->progs.floor_b);
	if (!skel->links.floor_a || (n == 2 && !skel->links.floor_b)) {
		fprintf(stderr, "floor: cannot attach to tp_btf/inet_sock_set_state: %s\n",
			strerror(errno));
		floor_bpf__destroy(skel);
		return 1;
	}
	printf("attached\n");
	fflush(stdout);
	while (!stop)
		pause();
	floor_bpf__destroy(skel);
	return 0;
}
