/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* cli.h - what the connaudit command's files share. */
#ifndef CA_CLI_H
#define CA_CLI_H

#include "connaudit.h"

/* Exit codes. */
#define EXIT_USAGE	2
#define EXIT_INCOMPLETE	3	/* a count was printed, but it is a lower bound */

/* Everything a subcommand may have been given. */
struct cli {
	const char *pin_dir;
	const char *cgroup;
	const char *prefixes;
	const char *config;
	const char *peer;
	const char *netns;
	const char *prefix;	/* top: "N" or "N,M" */
	const char *group;	/* load: readers' group */
	const char *listen;	/* metrics: serve on ADDR:PORT */
	unsigned long mode;	/* load: mode of the map pins */
	unsigned long top_n;
	unsigned long max_peers, max_prefixes;
	bool json, all_netns, replace, quiet;
	int argc;		/* positional arguments left */
	char **argv;
};

/* Print "connaudit: msg" to stderr and return 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The namespace to report on: --netns (path or inode), else our own.
 * Prints the error and returns 1 on failure. */
int cli_netns(const struct cli *c, uint32_t *inode);

/* Open the handle for the pin dir in c, switching to --netns if given.
 * Prints the error and returns NULL on failure. */
struct ca_handle *cli_open(const struct cli *c);

/* Load the services table from --config / env / default; prints on error. */
int cli_services(const struct cli *c, struct ca_services *s);

int cmd_status(const struct cli *c);
int cmd_dump(const struct cli *c);
int cmd_top(const struct cli *c);

#endif
