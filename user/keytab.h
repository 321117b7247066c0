/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* keytab.h - a hash table from struct ca_key to a count, for the cluster
 * agent's copies of local, remote and summed counts. A count of 0 is no
 * entry. */
#ifndef CA_KEYTAB_H
#define CA_KEYTAB_H

#include <stddef.h>

#include "connaudit.h"

struct keytab_slot {
	struct ca_key key;
	uint64_t value;		/* 0: the slot is free */
};

struct keytab {
	struct keytab_slot *slot;
	size_t cap;		/* a power of two, or 0 */
	size_t n;
};

/* The count at k, 0 when absent. */
uint64_t keytab_get(const struct keytab *t, const struct ca_key *k);

/* Set k to v (0 removes it). Returns 0 or -ENOMEM (t is then unchanged). */
int keytab_set(struct keytab *t, const struct ca_key *k, uint64_t v);

/* Remove every entry, keeping the memory. */
void keytab_clear(struct keytab *t);

void keytab_free(struct keytab *t);

/* for (struct keytab_slot *s = keytab_first(t); s; s = keytab_next(t, s)) */
struct keytab_slot *keytab_first(const struct keytab *t);
struct keytab_slot *keytab_next(const struct keytab *t, struct keytab_slot *s);

#endif
