/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * table.h - the counts in ca_table, read from memory: the frozen map is
 * mapped read-only, so a query makes no system call (struct ca_slot in
 * connaudit_abi.h says how the kernel keeps it).
 */
#ifndef CA_TABLE_H
#define CA_TABLE_H

#include "store.h"

struct ca_table {
	const struct ca_slot *slot;	/* the mapping, NULL until mapped */
	const uint64_t *used;		/* ca_table_used, mapped: a bit per slot */
	size_t len, used_len;		/* bytes mapped */
	uint32_t slots;			/* a power of two */
	uint64_t seed;
};

/* Map pin_dir's ca_table and ca_table_used (slots and seed from cfg). Needs a read-write
 * descriptor (a frozen map refuses writes anyway): root, or the group given
 * to `load --group`. Returns 0 or -errno with a message. */
int ca_table_map(struct ca_table *t, const char *pin_dir, const struct ca_config *cfg,
		 struct ca_error *err);

void ca_table_unmap(struct ca_table *t);

/* *count = the sessions counted under key: the count of the LIVE slot of
 * its probe sequence that holds it, 0 when none does. Returns 0, or
 * -EAGAIN when a slot kept changing under the reader (a message in err). */
int ca_table_count(const struct ca_table *t, const struct ca_key *key, uint64_t *count,
		   struct ca_error *err);

/* fn for every key with a count: per-peer keys (aggregate false) or the
 * others. Returns 0, fn's non-zero value, or -EAGAIN as ca_table_count. */
int ca_table_scan(const struct ca_table *t, bool aggregate, ca_entry_fn fn, void *arg,
		  struct ca_error *err);

#endif
