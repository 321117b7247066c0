// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_watch.c - --watch: redraw a command's output every interval, as
 * watch(1) does, until q is pressed or SIGINT or SIGTERM arrives.
 *
 * Each command reopens the pins on every draw, so an unload or a reload
 * shows on the next screen. The terminal is put in non-canonical mode (no
 * Enter needed after q, no echo) and restored on the way out; Ctrl-C still
 * sends SIGINT.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define WATCH_DEFAULT_S	2.0
#define WATCH_MAX_S	86400.0

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

int cli_parse_watch(const char *s, double *out)
{
	char *end;

	if (!s) {
		*out = WATCH_DEFAULT_S;
		return 0;
	}
	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !(*out >= 0.1 && *out <= WATCH_MAX_S))
		return cli_usage("--watch takes seconds from 0.1 to %.0f, as in --watch=5, not '%s'",
				 WATCH_MAX_S, s);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait `seconds`; true when it is time to quit: q read from the terminal,
 * or a stop signal. Without a terminal only a signal ends the wait early. */
static bool wait_for_quit(bool tty, double seconds)
{
	double deadline = now_s() + seconds, left;
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char key;

	while (!stop_signal && (left = deadline - now_s()) > 0) {
		int n = poll(&p, tty ? 1 : 0, (int)(left * 1000) + 1);

		if (n > 0) {
			if (read(0, &key, 1) != 1)
				tty = false;	/* the terminal went away: keep drawing */
			else if (key == 'q' || key == 'Q')
				return true;
		}
	}
	return stop_signal != 0;
}

int cli_watch(const struct cli *c, const char *title, int (*draw)(const struct cli *c))
{
	struct sigaction sa = { .sa_handler = on_stop };	/* no SA_RESTART: poll returns */
	struct termios saved, raw;
	bool tty = isatty(0) && tcgetattr(0, &saved) == 0;
	char when[64];
	time_t t;
	int rc;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (tty) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(0, TCSANOW, &raw);
	}
	do {
		t = time(NULL);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		printf("\033[H\033[2JEvery %gs: connaudit %s    %s    (q or Ctrl-C quits)\n\n",
		       c->watch, title, when);
		rc = draw(c);
		fflush(stdout);
		fflush(stderr);
	} while (rc != EXIT_USAGE && !wait_for_quit(tty, c->watch));
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	return rc == EXIT_USAGE ? rc : 0;
}
