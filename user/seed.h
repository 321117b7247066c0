/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* seed.h - count the sessions that existed before the auditor loaded. */
#ifndef CA_SEED_H
#define CA_SEED_H

#include "connaudit.h"

struct connaudit_bpf;

/* Run the seeding iterator in every network namespace on the host. Call it
 * after the live programs are attached, so that no session falls between the
 * two. Returns the number of namespaces walked, or -errno. */
int ca_seed(struct connaudit_bpf *skel, struct ca_error *err);

#endif
