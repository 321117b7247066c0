/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * netlib.h - sandboxes and sockets for the real-kernel tests.
 *
 * Every helper either succeeds or ends the test with kt_fail(): each
 * scenario runs in a process of its own, so a failed setup step is a failed
 * scenario and the parent cleans up. Nothing here needs ip, ss or any other
 * tool: interfaces and addresses are made over rtnetlink, so the same static
 * binary runs in a VM with only busybox around it.
 */
#ifndef KT_NETLIB_H
#define KT_NETLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/netlink.h>

/* Exit status of a scenario that cannot run here (not a failure). */
#define KT_EXIT_SKIP	77

/* How long any helper waits for the kernel to reach a state. */
#define KT_WAIT_MS	2000

/* Print "FAIL: ..." and end the scenario with status 1. */
void kt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Print "SKIP: ..." and end the scenario with KT_EXIT_SKIP. */
void kt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Monotonic milliseconds, for bounded waits. */
int64_t kt_now_ms(void);

/* ---- netlink requests (shared by rtnetlink and sock_diag users) -------- */

struct nlk_msg {
	union {
		struct nlmsghdr nh;
		char buf[1024];
	};
};

/* Start a request: header, then `hdrlen` bytes of family header. */
void nlk_init(struct nlk_msg *m, uint16_t type, uint16_t flags,
	      const void *hdr, size_t hdrlen);
/* Append an attribute; returns it (for nesting). */
struct rtattr *nlk_put(struct nlk_msg *m, uint16_t type, const void *data, size_t len);
void nlk_put_str(struct nlk_msg *m, uint16_t type, const char *s);
/* Nested attributes: begin returns the container, end fixes its length. */
struct rtattr *nlk_nest_begin(struct nlk_msg *m, uint16_t type);
void nlk_nest_end(struct nlk_msg *m, struct rtattr *nest);

/* A netlink socket of `proto` in the current network namespace (it stays
 * bound to that namespace after setns). */
int nlk_open(int proto);
/* Send with NLM_F_ACK and wait for the answer: 0 or a negative errno. */
int nlk_transact(int fd, struct nlk_msg *m);
/* Send with NLM_F_DUMP and call fn on every reply message; fn returns 0 to
 * go on. Returns 0, fn's non-zero value, or a negative errno. */
int nlk_dump(int fd, struct nlk_msg *m,
	     int (*fn)(const struct nlmsghdr *nh, void *arg), void *arg);

/* ---- network namespaces ------------------------------------------------ */

struct netns {
	int fd;			/* open /proc/.../ns/net */
	uint32_t inode;		/* what connaudit keys carry */
	pid_t holder;		/* process keeping it alive, 0 for our own */
};

/* Move this process into a new, empty namespace with lo up and the
 * IPv6 test addresses (KT_V6_LO_ADDRS) on lo, and describe it in *ns. */
void ns_enter_private(struct netns *ns);
/* The namespace this process is in now. */
void ns_current(struct netns *ns);
/* A second namespace, set up the same way, held by a child that dies
 * with us. */
void ns_spawn(struct netns *ns);
/* Switch this process to `ns` (sockets created afterwards live there). */
void ns_switch(const struct netns *ns);
/* Kill the holder (if any) and close the fd. */
void ns_release(struct netns *ns);

/* Unique-local addresses put on lo of every private namespace; /128 each,
 * so fd00:ca::2 and fd00:ca:0:1::4 share a /48 but not a /64. */
#define KT_V6_LO_ADDRS	{ "fd00:ca::1", "fd00:ca::2", "fd00:ca::3", "fd00:ca::4", \
			  "fd00:ca::80", "fd00:ca:0:1::4", "fd00:ca:0:2::5", \
			  "fd00:ca:0:100::1" }

/* ---- interfaces and addresses (rtnetlink) ------------------------------ */

void net_link_up(const char *ifname);
/* Add "addr/len" to ifname, usable at once (no duplicate detection). */
void net_addr_add(const char *ifname, const char *cidr);
/* Create a veth pair: `name` here, `peer` moved into peer_ns. */
void net_veth_add(const char *name, const char *peer, const struct netns *peer_ns);

/* ---- sockets ------------------------------------------------------------ */

/* "127.0.0.1", "::1", "::ffff:127.0.0.1" plus port into *sa; returns its
 * length. Fails the test on a malformed address. */
socklen_t net_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *sa);
/* "addr:port" / "[v6]:port" into *sa. Returns its length, 0 if malformed. */
socklen_t net_parse_endpoint(const char *s, struct sockaddr_storage *sa);

/* A TCP listener on addr:port. v6only only matters for IPv6 addresses:
 * false on "::" makes a dual-stack listener that accepts IPv4 as
 * ::ffff:a.b.c.d. */
int net_listen(const char *addr, uint16_t port, bool v6only);
/* The same with a protocol (IPPROTO_MPTCP); skips the test if the kernel
 * has no MPTCP. */
int net_listen_proto(const char *addr, uint16_t port, bool v6only, int protocol);
/* A TCP socket bound to src:port (port 0: chosen at connect time). */
int net_socket_bound(const char *src, uint16_t port);
int net_socket_bound_proto(const char *src, uint16_t port, int protocol);
/* Connect from `src` (any port) to dst:port; waits at most KT_WAIT_MS. */
int net_connect(const char *src, const char *dst, uint16_t port);
/* Connect an existing socket (e.g. one reused after a disconnect); an
 * IPv4 dst is mapped for an AF_INET6 socket. */
void net_connect_fd(int fd, const char *dst, uint16_t port);
/* Accept one connection, waiting at most KT_WAIT_MS for it. */
int net_accept(int lfd);
/* Accept the connection client socket `cli` made; fails if another one is
 * at the head of the queue. */
int net_accept_of(int lfd, int cli);

/* Both ends of one loopback connection, so each can be closed its own way. */
struct conn {
	int cli;		/* -1 once closed */
	int srv;		/* -1 when not accepted (yet) or closed */
};
/* connect(src -> dst:port) then accept it on lfd, checking the accepted
 * socket is that very connection. */
struct conn net_conn_open(int lfd, const char *src, const char *dst, uint16_t port);

/* TCP Fast Open: enable it in the current namespace, on a listener, and
 * connect-and-send one byte with it. */
void net_enable_tfo(void);
void net_listen_tfo(int lfd);
int net_connect_tfo(const char *src, const char *dst, uint16_t port);
/* Whether data rode on this connection's SYN (TCPI_OPT_SYN_DATA). */
bool net_syn_had_data(int fd);
/* Make lfd, and the children it creates from now on, drop every segment
 * that carries none of SYN, FIN and RST: a fast-open child then never gets
 * the final ACK of its handshake and stays SYN_RECV. */
void net_drop_handshake_acks(int lfd);
/* The TCP state of a socket (TCP_ESTABLISHED, TCP_SYN_RECV, ...). */
int net_tcp_state(int fd);

uint16_t net_local_port(int fd);
uint64_t net_cookie(int fd);

/* The ways a connection ends, from the side that acts. */
void net_close(int *fd);		/* orderly close: FIN */
void net_close_rst(int *fd);		/* SO_LINGER {1, 0}: RST */
void net_shutdown_wr(int fd);		/* half-close: the peer goes to CLOSE_WAIT */
void net_disconnect(int fd);		/* connect(AF_UNSPEC): to CLOSE, reusable */

/* Raise the soft open-files limit to the hard one. */
void net_raise_nofile(void);

/* ---- cgroup v2 ----------------------------------------------------------- */

/* Where cgroup2 is mounted (from /proc/mounts), or NULL. */
const char *cg_mount(void);
/* The cgroup2 directory this process is in now, into buf. */
void cg_self(char *buf, size_t len);
/* mkdir path (an existing one is fine). */
void cg_create(const char *path);
/* Move this process into the cgroup at `path`. */
void cg_move_self(const char *path);
/* The cgroup id sockets report (the directory's inode). */
uint64_t cg_id(const char *path);
/* rmdir, ignoring a cgroup that is already gone. Returns 0 or -errno. */
int cg_remove(const char *path);

#endif
