// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* keytab.c - open addressing with linear probing; removal shifts the
 * following entries back, so there are no tombstones to sweep. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keytab.h"

static size_t hash_key(const struct ca_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static size_t find(const struct keytab *t, const struct ca_key *k)
{
	size_t mask = t->cap - 1, i = hash_key(k) & mask;

	while (t->slot[i].value && memcmp(&t->slot[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & mask;
	return i;
}

uint64_t keytab_get(const struct keytab *t, const struct ca_key *k)
{
	return t->cap ? t->slot[find(t, k)].value : 0;
}

static int grow(struct keytab *t)
{
	struct keytab bigger = { .cap = t->cap ? t->cap * 2 : 64 };

	bigger.slot = calloc(bigger.cap, sizeof(*bigger.slot));
	if (!bigger.slot)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i].value)
			bigger.slot[find(&bigger, &t->slot[i].key)] = t->slot[i];
	bigger.n = t->n;
	free(t->slot);
	*t = bigger;
	return 0;
}

/* Remove slot i, moving back each later entry of the run that may no
 * longer be reachable from its home slot. */
static void remove_at(struct keytab *t, size_t i)
{
	size_t mask = t->cap - 1, j = i;

	t->slot[i].value = 0;
	t->n--;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!t->slot[j].value)
			return;
		home = hash_key(&t->slot[j].key) & mask;
		/* j stays if its home lies cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->slot[i] = t->slot[j];
		t->slot[j].value = 0;
		i = j;
	}
}

int keytab_set(struct keytab *t, const struct ca_key *k, uint64_t v)
{
	size_t i;

	if (!t->cap) {
		if (!v)
			return 0;
		if (grow(t))
			return -ENOMEM;
	}
	i = find(t, k);
	if (t->slot[i].value) {
		if (v)
			t->slot[i].value = v;
		else
			remove_at(t, i);
		return 0;
	}
	if (!v)
		return 0;
	if ((t->n + 1) * 4 > t->cap * 3) {	/* keep it at most 3/4 full */
		if (grow(t))
			return -ENOMEM;
		i = find(t, k);
	}
	t->slot[i].key = *k;
	t->slot[i].value = v;
	t->n++;
	return 0;
}

void keytab_clear(struct keytab *t)
{
	if (t->cap)
		memset(t->slot, 0, t->cap * sizeof(*t->slot));
	t->n = 0;
}

void keytab_free(struct keytab *t)
{
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static struct keytab_slot *scan_from(const struct keytab *t, size_t i)
{
	for (; i < t->cap; i++)
		if (t->slot[i].value)
			return &t->slot[i];
	return NULL;
}

struct keytab_slot *keytab_first(const struct keytab *t)
{
	return scan_from(t, 0);
}

struct keytab_slot *keytab_next(const struct keytab *t, struct keytab_slot *s)
{
	return scan_from(t, (size_t)(s - t->slot) + 1);
}
