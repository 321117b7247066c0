// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_policyd_listen.c - where `connaudit policyd` listens: a UNIX socket, a
 * TCP address, or the sockets systemd passes (sd_listen_fds(3) semantics,
 * without libsystemd).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "cli_policyd.h"

#define SD_LISTEN_FDS_START	3

static int listen_unix(struct policyd_listeners *l, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return cli_fail("--listen unix:%s: the path is too long", path);
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cli_fail("socket: %s", strerror(errno));
	if (lstat(path, &st) == 0) {
		/* A socket left by a server that died may go; a live one may not. */
		if (!S_ISSOCK(st.st_mode) || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		    errno != ECONNREFUSED) {
			close(fd);
			return cli_fail("--listen unix:%s: %s", path, S_ISSOCK(st.st_mode) ?
					"another server is listening there" :
					"exists and is not a socket");
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, SOMAXCONN)) {
		cli_fail("--listen unix:%s: %s", path, strerror(errno));
		close(fd);
		return 1;
	}
	/* As Postfix's own sockets: the directory decides who may connect. */
	chmod(path, 0666);
	snprintf(l->unix_path, sizeof(l->unix_path), "%s", path);
	l->fd[l->n++] = fd;
	return 0;
}

/* "ADDR:PORT", "[ADDR]:PORT" or Postfix's "inet:ADDR:PORT". */
static int listen_inet(struct policyd_listeners *l, const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(spec, ':');
	size_t hlen = colon ? (size_t)(colon - spec) : 0;
	struct addrinfo *ai;
	int fd, one = 1, rc;

	if (!colon || hlen == 0 || hlen >= sizeof(host))
		return cli_fail("--listen takes unix:/path, ADDR:PORT or [ADDR]:PORT, not '%s'",
				spec);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		memmove(host, host + 1, hlen - 1);
	}
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc)
		return cli_fail("--listen %s: %s", spec, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
		cli_fail("--listen %s: %s", spec, strerror(errno));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	freeaddrinfo(ai);
	l->fd[l->n++] = fd;
	return 0;
}

/* Sockets passed by systemd, as sd_listen_fds(3) takes them: only when
 * LISTEN_PID is this process; the variables are removed so that children
 * do not take them too. */
static int listen_systemd(struct policyd_listeners *l)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	unsigned long n;

	if (!pid || !fds || strtoul(pid, NULL, 10) != (unsigned long)getpid())
		return 0;
	n = strtoul(fds, NULL, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n == 0 || n > POLICYD_LISTEN_MAX)
		return cli_fail("LISTEN_FDS=%s: expected 1 to %d sockets", fds, POLICYD_LISTEN_MAX);
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + (int)n; fd++) {
		int acc = 0;
		socklen_t len = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc)
			return cli_fail("fd %d from systemd is not a listening socket (the .socket "
					"unit needs Accept=no)", fd);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		l->fd[l->n++] = fd;
	}
	return 0;
}

int policyd_listen(struct policyd_listeners *l, const char *spec)
{
	if (!spec)
		return listen_systemd(l);
	if (!strncmp(spec, "unix:", 5))
		return listen_unix(l, spec + 5);
	if (spec[0] == '/')
		return listen_unix(l, spec);
	return listen_inet(l, !strncmp(spec, "inet:", 5) ? spec + 5 : spec);
}

void policyd_unlisten(struct policyd_listeners *l)
{
	for (unsigned i = 0; i < l->n; i++)
		close(l->fd[i]);
	l->n = 0;
	if (l->unix_path[0])
		unlink(l->unix_path);
	l->unix_path[0] = '\0';
}

bool policyd_stderr_is_client(void)
{
	struct stat in, err;

	return fstat(0, &in) == 0 && fstat(2, &err) == 0 && S_ISSOCK(in.st_mode) &&
	       in.st_dev == err.st_dev && in.st_ino == err.st_ino;
}
