/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* seed.h - count the sessions that existed before the auditor loaded. */
#ifndef CA_SEED_H
#define CA_SEED_H

#include "connaudit.h"

struct connaudit_bpf;

#include <limits.h>

/* What seeding walked, and what it passed over. */
struct ca_seed_report {
	int namespaces;			/* network namespaces seeded */
	int skipped;			/* files in /run/netns that are no netns */
	char first_skipped[PATH_MAX];	/* the first of them, for the warning */
};

/* Run the seeding iterator in every network namespace on the host. Call it
 * after the live programs are attached, so that no session falls between the
 * two. Returns 0 (with *report filled), or -errno. */
int ca_seed(struct connaudit_bpf *skel, struct ca_seed_report *report, struct ca_error *err);

#endif
