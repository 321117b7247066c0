// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtpsession.c - the SMTP client of the Postfix test: one session from a
 * chosen source address, one line on stdout per reply ("STEP CODE TEXT").
 *
 *   smtpsession SRC DST PORT hold   greeting, EHLO, MAIL, RCPT; prints "held"
 *                                  and keeps the session until SIGTERM, then
 *                                  QUIT
 *   smtpsession SRC DST PORT quit   greeting, EHLO, MAIL, RCPT, QUIT
 *   smtpsession SRC DST PORT mail   the same with DATA and a message
 *
 * Exits 0 when every reply was the one a served session gets (2xx, 354 to
 * DATA), 1 at the first other reply (the session then ends), 2 on errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define LINE_MAX_	1024

static volatile sig_atomic_t stop;
static int fd = -1;
static char buf[LINE_MAX_ * 4];
static size_t have;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int die(const char *what)
{
	fprintf(stderr, "smtpsession: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* One line of the server, without CRLF, into line. */
static void read_line(char *line)
{
	char *nl;

	while (!(nl = memchr(buf, '\n', have))) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have - 1);

		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			die("read");
		}
		have += (size_t)n;
	}
	*nl = '\0';
	if (nl > buf && nl[-1] == '\r')
		nl[-1] = '\0';
	memcpy(line, buf, strnlen(buf, LINE_MAX_ - 1));
	line[strnlen(buf, LINE_MAX_ - 1)] = '\0';
	have -= (size_t)(nl + 1 - buf);
	memmove(buf, nl + 1, have);
}

/* A whole (multi-line) reply: prints its last line; returns its code. */
static int reply(const char *step)
{
	char line[LINE_MAX_];

	do
		read_line(line);
	while (strlen(line) > 3 && line[3] == '-');
	printf("%s %s\n", step, line);
	fflush(stdout);
	return atoi(line);
}

static void say(const char *fmt, const char *arg)
{
	char line[LINE_MAX_];
	int n = snprintf(line, sizeof(line), fmt, arg);

	if (write(fd, line, (size_t)n) != n)
		die("write");
}

/* Send a command, read its reply; leave with 1 unless it is `want`xx. */
static void step(const char *name, const char *cmd, int want)
{
	int code;

	say("%s\r\n", cmd);
	code = reply(name);
	if (code / 100 != want && code != want)
		exit(1);
}

int main(int argc, char **argv)
{
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	struct timeval tv = { 20, 0 };
	struct sigaction sa = { .sa_handler = on_term };
	bool mail;

	if (argc != 5 || (strcmp(argv[4], "hold") && strcmp(argv[4], "mail") &&
			  strcmp(argv[4], "quit"))) {
		fprintf(stderr, "usage: smtpsession SRC DST PORT hold|quit|mail\n");
		return 2;
	}
	mail = !strcmp(argv[4], "mail");
	if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
		fprintf(stderr, "smtpsession: SRC and DST are IPv4 addresses\n");
		return 2;
	}
	dst.sin_port = htons((uint16_t)atoi(argv[3]));
	sigaction(SIGTERM, &sa, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)))
		die("connect");
	if (reply("greeting") / 100 != 2)
		return 1;
	step("ehlo", "EHLO client.test", 2);
	step("mail", "MAIL FROM:<sender@client.test>", 2);
	step("rcpt", "RCPT TO:<someone@localhost>", 2);
	if (mail) {
		step("data", "DATA", 354);
		say("%s", "Subject: connaudit policyd test\r\n\r\nhello\r\n.\r\n");
		if (reply("message") / 100 != 2)
			return 1;
	} else if (!strcmp(argv[4], "hold")) {
		printf("held\n");
		fflush(stdout);
		while (!stop)
			sleep(1);	/* SIGTERM cuts it short */
	}
	step("quit", "QUIT", 2);
	return 0;
}
