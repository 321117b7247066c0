// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* netlib.c - sandboxes and sockets for the real-kernel tests (see netlib.h). */
#include "netlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/filter.h>
#include <linux/veth.h>

/* ---- failing ------------------------------------------------------------- */

/* _exit, not exit: a scenario is a fork of the runner, whose atexit
 * cleanup must run once, in the runner, not in every scenario. */
static void __attribute__((noreturn)) end_with(int status, const char *tag,
					       const char *fmt, va_list ap)
{
	printf("%s: ", tag);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	_exit(status);
}

void kt_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	end_with(1, "FAIL", fmt, ap);
}

void kt_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	end_with(KT_EXIT_SKIP, "SKIP", fmt, ap);
}

int64_t kt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- netlink --------------------------------------------------------------- */

void nlk_init(struct nlk_msg *m, uint16_t type, uint16_t flags,
	      const void *hdr, size_t hdrlen)
{
	memset(m, 0, sizeof(*m));
	m->nh.nlmsg_len = NLMSG_LENGTH(hdrlen);
	m->nh.nlmsg_type = type;
	m->nh.nlmsg_flags = NLM_F_REQUEST | flags;
	if (hdrlen)
		memcpy(NLMSG_DATA(&m->nh), hdr, hdrlen);
}

/* Append len bytes at the aligned end of the message. */
static void *nlk_reserve(struct nlk_msg *m, size_t len)
{
	size_t off = NLMSG_ALIGN(m->nh.nlmsg_len);

	if (off + RTA_ALIGN(len) > sizeof(m->buf))
		kt_fail("netlink request does not fit in %zu bytes", sizeof(m->buf));
	m->nh.nlmsg_len = off + RTA_ALIGN(len);
	return m->buf + off;
}

struct rtattr *nlk_put(struct nlk_msg *m, uint16_t type, const void *data, size_t len)
{
	struct rtattr *rta = nlk_reserve(m, RTA_LENGTH(len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	return rta;
}

void nlk_put_str(struct nlk_msg *m, uint16_t type, const char *s)
{
	nlk_put(m, type, s, strlen(s) + 1);
}

struct rtattr *nlk_nest_begin(struct nlk_msg *m, uint16_t type)
{
	return nlk_put(m, type, NULL, 0);
}

void nlk_nest_end(struct nlk_msg *m, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)(m->buf + m->nh.nlmsg_len - (char *)nest);
}

int nlk_open(int proto)
{
	struct timeval tv = { .tv_sec = KT_WAIT_MS / 1000 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	if (fd < 0)
		kt_fail("netlink socket (protocol %d): %m", proto);
	/* A kernel that never answers must not hang the suite. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		kt_fail("SO_RCVTIMEO on netlink: %m");
	return fd;
}

static int nlk_send(int fd, struct nlk_msg *m, uint16_t flags)
{
	static uint32_t seq;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	m->nh.nlmsg_flags |= flags;
	m->nh.nlmsg_seq = ++seq;
	if (sendto(fd, m->buf, m->nh.nlmsg_len, 0,
		   (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

/* Read replies until fn or an ACK/DONE/error ends the exchange. */
static int nlk_receive(int fd, int (*fn)(const struct nlmsghdr *nh, void *arg), void *arg)
{
	static char buf[64 * 1024] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0)
			return -errno;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
			if (nh->nlmsg_type == NLMSG_DONE)
				return 0;
			int r = fn ? fn(nh, arg) : 0;

			if (r)
				return r;
		}
	}
}

int nlk_transact(int fd, struct nlk_msg *m)
{
	int r = nlk_send(fd, m, NLM_F_ACK);

	return r ? r : nlk_receive(fd, NULL, NULL);
}

int nlk_dump(int fd, struct nlk_msg *m,
	     int (*fn)(const struct nlmsghdr *nh, void *arg), void *arg)
{
	int r = nlk_send(fd, m, NLM_F_DUMP);

	return r ? r : nlk_receive(fd, fn, arg);
}

/* ---- interfaces and addresses --------------------------------------------- */

void net_link_up(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		kt_fail("get flags of %s: %m", ifname);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		kt_fail("set %s up: %m", ifname);
	close(fd);
}

static unsigned ifindex_of(const char *ifname)
{
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		kt_fail("no interface %s: %m", ifname);
	return idx;
}

/* Whether a datagram sent to addr arrives there. */
static bool loops_back(const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t len = net_sockaddr(addr, 0, &sa), slen = sizeof(sa);
	int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;
	bool ok = fd >= 0 && !bind(fd, (struct sockaddr *)&sa, len) &&
		  !getsockname(fd, (struct sockaddr *)&sa, &slen) &&
		  !connect(fd, (struct sockaddr *)&sa, slen) && send(fd, &c, 1, 0) == 1 &&
		  poll(&p, 1, 20) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 1;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Even without DAD, IPv6 installs an address's local route from a work
 * queue, a moment after RTM_NEWADDR is acknowledged; until then packets to
 * it leave through the prefix route and are dropped as not ours. */
static void wait_usable(const char *addr)
{
	int64_t deadline = kt_now_ms() + KT_WAIT_MS;

	while (!loops_back(addr)) {
		if (kt_now_ms() > deadline)
			kt_fail("%s is not usable %d ms after adding it", addr, KT_WAIT_MS);
		usleep(1000);
	}
}

void net_addr_add(const char *ifname, const char *cidr)
{
	char addr[INET6_ADDRSTRLEN];
	unsigned char bytes[16];
	unsigned len;
	uint32_t flags = IFA_F_NODAD;	/* usable at once: no tentative phase */

	if (sscanf(cidr, "%45[^/]/%u", addr, &len) != 2)
		kt_fail("bad address %s (want addr/len)", cidr);
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	size_t alen = family == AF_INET ? 4 : 16;

	if (inet_pton(family, addr, bytes) != 1)
		kt_fail("bad address %s", cidr);
	struct ifaddrmsg ifa = {
		.ifa_family = (uint8_t)family, .ifa_prefixlen = (uint8_t)len,
		.ifa_flags = IFA_F_NODAD, .ifa_index = ifindex_of(ifname),
	};
	struct nlk_msg m;

	nlk_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	nlk_put(&m, IFA_LOCAL, bytes, alen);
	nlk_put(&m, IFA_ADDRESS, bytes, alen);
	nlk_put(&m, IFA_FLAGS, &flags, sizeof(flags));

	int fd = nlk_open(NETLINK_ROUTE);
	int r = nlk_transact(fd, &m);

	close(fd);
	if (r)
		kt_fail("add %s to %s: %s", cidr, ifname, strerror(-r));
	wait_usable(addr);
}

void net_veth_add(const char *name, const char *peer, const struct netns *peer_ns)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	uint32_t nsfd = (uint32_t)peer_ns->fd;
	struct nlk_msg m;

	nlk_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	nlk_put_str(&m, IFLA_IFNAME, name);
	struct rtattr *linkinfo = nlk_nest_begin(&m, IFLA_LINKINFO);
	nlk_put_str(&m, IFLA_INFO_KIND, "veth");
	struct rtattr *data = nlk_nest_begin(&m, IFLA_INFO_DATA);
	struct rtattr *peerinfo = nlk_nest_begin(&m, VETH_INFO_PEER);
	/* The peer's attributes follow an ifinfomsg of its own. */
	memcpy(nlk_reserve(&m, sizeof(ifi)), &ifi, sizeof(ifi));
	nlk_put_str(&m, IFLA_IFNAME, peer);
	nlk_put(&m, IFLA_NET_NS_FD, &nsfd, sizeof(nsfd));
	nlk_nest_end(&m, peerinfo);
	nlk_nest_end(&m, data);
	nlk_nest_end(&m, linkinfo);

	int fd = nlk_open(NETLINK_ROUTE);
	int r = nlk_transact(fd, &m);

	close(fd);
	if (r)
		kt_fail("create veth %s/%s: %s", name, peer, strerror(-r));
}

/* ---- network namespaces ----------------------------------------------------- */

static void ns_open(struct netns *ns, const char *path, pid_t holder)
{
	struct stat st;

	ns->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ns->fd < 0 || fstat(ns->fd, &st))
		kt_fail("open %s: %m", path);
	ns->inode = (uint32_t)st.st_ino;
	ns->holder = holder;
}

void ns_current(struct netns *ns)
{
	ns_open(ns, "/proc/self/ns/net", 0);
}

void ns_switch(const struct netns *ns)
{
	if (setns(ns->fd, CLONE_NEWNET))
		kt_fail("setns to netns %u: %m", ns->inode);
}

/* What every test namespace starts with: lo up, the test addresses on it. */
static void setup_lo(void)
{
	static const char *const v6[] = KT_V6_LO_ADDRS;
	char cidr[64];

	net_link_up("lo");
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		snprintf(cidr, sizeof(cidr), "%s/128", v6[i]);
		net_addr_add("lo", cidr);
	}
}

void ns_enter_private(struct netns *ns)
{
	if (unshare(CLONE_NEWNET))
		kt_fail("unshare(CLONE_NEWNET): %m (root needed)");
	setup_lo();
	ns_current(ns);
}

/* The holder: unshare, report, then wait to be killed (or orphaned). */
static void __attribute__((noreturn)) ns_hold(int report_fd, pid_t parent)
{
	int devnull = open("/dev/null", O_RDWR);
	int err = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	/* Keep the runner's output pipe from staying open through us. */
	dup2(devnull, STDOUT_FILENO);
	dup2(devnull, STDERR_FILENO);
	if (unshare(CLONE_NEWNET))
		err = errno;
	if (write(report_fd, &err, sizeof(err)) != sizeof(err) || err)
		_exit(1);
	for (;;)
		pause();
}

void ns_spawn(struct netns *ns)
{
	char path[64];
	int p[2], err = -1;
	pid_t parent = getpid();

	if (pipe2(p, O_CLOEXEC))
		kt_fail("pipe: %m");
	fflush(stdout);
	pid_t pid = fork();

	if (pid < 0)
		kt_fail("fork: %m");
	if (pid == 0)
		ns_hold(p[1], parent);
	close(p[1]);
	if (read(p[0], &err, sizeof(err)) != sizeof(err) || err)
		kt_fail("namespace holder: unshare failed: %s", strerror(err > 0 ? err : EIO));
	close(p[0]);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	ns_open(ns, path, pid);

	struct netns home;

	ns_current(&home);
	ns_switch(ns);
	setup_lo();
	ns_switch(&home);
	close(home.fd);
}

void ns_release(struct netns *ns)
{
	if (ns->holder > 0) {
		kill(ns->holder, SIGKILL);
		waitpid(ns->holder, NULL, 0);
		ns->holder = 0;
	}
	if (ns->fd >= 0)
		close(ns->fd);
	ns->fd = -1;
}

/* ---- sockets ------------------------------------------------------------------ */

socklen_t net_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *sa)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return sizeof(*in6);
	}
	kt_fail("not an address: \"%s\"", addr);
}

socklen_t net_parse_endpoint(const char *s, struct sockaddr_storage *sa)
{
	char addr[INET6_ADDRSTRLEN + 2];
	unsigned port;
	int end = 0;

	if (sscanf(s, "[%45[^]]]:%u%n", addr, &port, &end) != 2 &&
	    sscanf(s, "%15[0-9.]:%u%n", addr, &port, &end) != 2)
		return 0;
	if (s[end] || port > 65535)
		return 0;
	return net_sockaddr(addr, (uint16_t)port, sa);
}

static void set_int_opt(int fd, int level, int name, int val, const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)))
		kt_fail("setsockopt %s: %m", what);
}

static int stream_socket(int family, int protocol)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, protocol);

	if (fd < 0 && protocol == IPPROTO_MPTCP &&
	    (errno == EPROTONOSUPPORT || errno == ENOPROTOOPT || errno == EINVAL))
		kt_skip("no MPTCP here: %m");
	if (fd < 0)
		kt_fail("socket: %m");
	return fd;
}

int net_listen(const char *addr, uint16_t port, bool v6only)
{
	return net_listen_proto(addr, port, v6only, 0);
}

int net_listen_proto(const char *addr, uint16_t port, bool v6only, int protocol)
{
	struct sockaddr_storage sa;
	socklen_t len = net_sockaddr(addr, port, &sa);
	int fd = stream_socket(sa.ss_family, protocol);

	set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (sa.ss_family == AF_INET6)
		set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only, "IPV6_V6ONLY");
	/* The largest backlog: scenarios leave connections in the queue. */
	if (bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 4096))
		kt_fail("listen on %s port %u: %m", addr, port);
	return fd;
}

static void set_nonblocking(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK))
		kt_fail("fcntl O_NONBLOCK: %m");
}

/* Wait for fd to become ready for `events`, at most KT_WAIT_MS. */
static void wait_ready(int fd, short events, const char *what)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, KT_WAIT_MS);

	if (r < 0)
		kt_fail("poll (%s): %m", what);
	if (r == 0)
		kt_fail("%s: nothing after %d ms", what, KT_WAIT_MS);
}

static int socket_domain(int fd)
{
	int domain;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len))
		kt_fail("SO_DOMAIN: %m");
	return domain;
}

/* Rewrite an IPv4 sockaddr as ::ffff:a.b.c.d, which an AF_INET6 socket
 * (say, one accepted by a dual-stack listener) can connect to. */
static socklen_t v4_mapped(struct sockaddr_storage *sa)
{
	struct sockaddr_in in = *(struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = in.sin_port;
	in6->sin6_addr.s6_addr[10] = 0xff;
	in6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&in6->sin6_addr.s6_addr[12], &in.sin_addr, 4);
	return sizeof(*in6);
}

void net_connect_fd(int fd, const char *dst, uint16_t port)
{
	struct sockaddr_storage sa;
	socklen_t len = net_sockaddr(dst, port, &sa);
	int err = 0;
	socklen_t elen = sizeof(err);
	char what[96];

	snprintf(what, sizeof(what), "connect to %s port %u", dst, port);
	if (sa.ss_family == AF_INET && socket_domain(fd) == AF_INET6)
		len = v4_mapped(&sa);
	set_nonblocking(fd, true);
	if (connect(fd, (struct sockaddr *)&sa, len) && errno != EINPROGRESS)
		kt_fail("%s: %m", what);
	wait_ready(fd, POLLOUT, what);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) || err)
		kt_fail("%s: %s", what, strerror(err));
	set_nonblocking(fd, false);
}

int net_socket_bound(const char *src, uint16_t port)
{
	return net_socket_bound_proto(src, port, 0);
}

int net_socket_bound_proto(const char *src, uint16_t port, int protocol)
{
	struct sockaddr_storage sa;
	socklen_t len = net_sockaddr(src, port, &sa);
	int fd = stream_socket(sa.ss_family, protocol);
	int one = 1;

	/* Pick the port at connect time, so one source can reach many
	 * destinations without exhausting the ephemeral range. Only an
	 * optimisation: older MPTCP refuses the option. */
	if (!port && sa.ss_family == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len))
		kt_fail("bind to %s port %u: %m", src, port);
	return fd;
}

int net_connect(const char *src, const char *dst, uint16_t port)
{
	int fd = net_socket_bound(src, 0);

	net_connect_fd(fd, dst, port);
	return fd;
}

int net_accept(int lfd)
{
	wait_ready(lfd, POLLIN, "accept");

	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		kt_fail("accept: %m");
	return fd;
}

static uint16_t port_of(const struct sockaddr_storage *sa)
{
	return ntohs(sa->ss_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
					      : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

uint16_t net_local_port(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		kt_fail("getsockname: %m");
	return port_of(&sa);
}

static uint16_t peer_port(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	if (getpeername(fd, (struct sockaddr *)&sa, &len))
		kt_fail("getpeername: %m");
	return port_of(&sa);
}

int net_accept_of(int lfd, int cli)
{
	int srv = net_accept(lfd);

	/* Ports suffice: a client port is unique among those queued on one
	 * listener, and anything else at the head of the queue is a mistake
	 * of the scenario. */
	if (peer_port(srv) != net_local_port(cli))
		kt_fail("accepted port %u's connection, not port %u's",
			peer_port(srv), net_local_port(cli));
	return srv;
}

struct conn net_conn_open(int lfd, const char *src, const char *dst, uint16_t port)
{
	struct conn c = { .cli = net_connect(src, dst, port) };

	c.srv = net_accept_of(lfd, c.cli);
	return c;
}

void net_enable_tfo(void)
{
	/* Per namespace: 1 client, 2 server, 3 both. */
	int fd = open("/proc/sys/net/ipv4/tcp_fastopen", O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "3", 1) != 1)
		kt_fail("enable TCP Fast Open: %m");
	close(fd);
}

void net_listen_tfo(int lfd)
{
	set_int_opt(lfd, IPPROTO_TCP, TCP_FASTOPEN, 16, "TCP_FASTOPEN");
}

int net_connect_tfo(const char *src, const char *dst, uint16_t port)
{
	struct timeval tv = { .tv_sec = KT_WAIT_MS / 1000 };
	int fd = net_socket_bound(src, 0);

	/* connect() only records the destination; the first send carries
	 * the SYN with the data (once a cookie is cached). The send waits
	 * for the handshake, so bound it. */
	set_int_opt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1, "TCP_FASTOPEN_CONNECT");
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		kt_fail("SO_SNDTIMEO: %m");
	net_connect_fd(fd, dst, port);
	if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
		kt_fail("fast-open send to %s port %u: %m", dst, port);
	return fd;
}

void net_drop_handshake_acks(int lfd)
{
	/* A socket filter runs on TCP segments with the TCP header at offset
	 * 0; byte 13 holds the flags, FIN|SYN|RST = 0x07. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x07, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (setsockopt(lfd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		kt_fail("SO_ATTACH_FILTER: %m");
}

int net_tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		kt_fail("TCP_INFO: %m");
	return ti.tcpi_state;
}

bool net_syn_had_data(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		kt_fail("TCP_INFO: %m");
	return ti.tcpi_options & TCPI_OPT_SYN_DATA;
}

uint64_t net_cookie(int fd)
{
	uint64_t cookie;
	socklen_t len = sizeof(cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		kt_fail("SO_COOKIE: %m");
	return cookie;
}

void net_close(int *fd)
{
	if (*fd >= 0 && close(*fd))
		kt_fail("close: %m");
	*fd = -1;
}

void net_close_rst(int *fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (setsockopt(*fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		kt_fail("SO_LINGER: %m");
	net_close(fd);
}

void net_shutdown_wr(int fd)
{
	if (shutdown(fd, SHUT_WR))
		kt_fail("shutdown(SHUT_WR): %m");
}

void net_disconnect(int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	if (connect(fd, &sa, sizeof(sa)))
		kt_fail("connect(AF_UNSPEC): %m");
}

void net_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		kt_fail("getrlimit: %m");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		kt_fail("setrlimit: %m");
}

/* ---- cgroup v2 ------------------------------------------------------------------ */

const char *cg_mount(void)
{
	static char found[256];
	char line[512], dir[256], type[32];
	FILE *f = fopen("/proc/mounts", "re");

	if (!f)
		return NULL;
	found[0] = '\0';
	while (!found[0] && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %255s %31s", dir, type) == 2 && !strcmp(type, "cgroup2"))
			snprintf(found, sizeof(found), "%s", dir);
	fclose(f);
	return found[0] ? found : NULL;
}

void cg_self(char *buf, size_t len)
{
	char line[512];
	const char *mnt = cg_mount();
	FILE *f = fopen("/proc/self/cgroup", "re");
	bool ok = false;

	if (!f || !mnt)
		kt_fail("no cgroup2 mount or /proc/self/cgroup");
	while (!ok && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "");
			ok = true;
		}
	fclose(f);
	if (!ok)
		kt_fail("no cgroup2 line in /proc/self/cgroup");
}

void cg_create(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		kt_fail("mkdir %s: %m", path);
}

void cg_move_self(const char *path)
{
	char procs[512], pid[16];
	int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	int fd = open(procs, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, pid, (size_t)n) != n)
		kt_fail("move into %s: %m", path);
	close(fd);
}

uint64_t cg_id(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		kt_fail("stat %s: %m", path);
	return st.st_ino;
}

int cg_remove(const char *path)
{
	return rmdir(path) && errno != ENOENT ? -errno : 0;
}
