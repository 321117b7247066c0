// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor.bpf.c - two programs that do nothing, on the tracepoint connaudit
 * uses. What the churn benchmark measures with them attached is the floor:
 * the cost of the kernel dispatching to one or two tp_btf programs, which
 * no auditor on this tracepoint can go below.
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
