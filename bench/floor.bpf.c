// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor.bpf.c - programs that do nothing, on the hooks an auditor can use.
 * What the churn benchmark measures with them attached is the floor of each
 * design: the cost of the kernel dispatching to one or two tp_btf programs
 * on inet_sock_set_state (connaudit today), or to one sock_ops program at
 * the cgroup2 root that asks for state callbacks on every accepted socket
 * (the kernel never skips a nested cgroup program, so that design would
 * need no twin).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_a, struct sock *sk, int oldstate, int newstate)
{
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_b, struct sock *sk, int oldstate, int newstate)
{
	return 0;
}

/* Ask for state callbacks on each accepted socket, as a sock_ops auditor
 * would to see its departures; do nothing else. */
SEC("sockops")
int floor_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}
