/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* cli_policyd.h - what the policy server's files share. */
#ifndef CA_CLI_POLICYD_H
#define CA_CLI_POLICYD_H

#include <stdbool.h>
#include <sys/un.h>

#define POLICYD_LISTEN_MAX	16

struct policyd_listeners {
	int fd[POLICYD_LISTEN_MAX];
	unsigned n;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];	/* made here:
									 * removed at exit */
};

/* Listen on `spec`: unix:/PATH (or /PATH), ADDR:PORT, [ADDR]:PORT or
 * inet:ADDR:PORT; with spec NULL, take the sockets systemd passed, if any
 * (none leaves l->n at 0). Prints the error and returns 1 on failure. */
int policyd_listen(struct policyd_listeners *l, const char *spec);

/* Close the listeners and remove the UNIX socket made by policyd_listen. */
void policyd_unlisten(struct policyd_listeners *l);

/* True when stderr is the client on stdin, as under Postfix's spawn(8): log
 * lines must then go elsewhere (syslog), or they would garble the replies. */
bool policyd_stderr_is_client(void);

#endif
