/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_keytab.c - the cluster agent's hash table (user/keytab.c) against a
 * plain array, through random inserts, updates and removals: removal moves
 * entries back, the step most likely to lose one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keytab.h"

#define KEYS	3000	/* distinct keys; few enough that they collide often */

static struct ca_key key_of(unsigned i)
{
	struct ca_key k;

	memset(&k, 0, sizeof(k));
	k.netns = i % 7;
	k.port = (uint16_t)(25 + i % 3);
	k.family = CA_AF_INET;
	k.prefixlen = 32;
	k.addr[2] = (uint8_t)(i >> 8);
	k.addr[3] = (uint8_t)i;
	return k;
}

static void check_same(const struct keytab *t, const uint64_t *model)
{
	size_t n = 0, seen = 0;

	for (unsigned i = 0; i < KEYS; i++) {
		struct ca_key k = key_of(i);

		if (keytab_get(t, &k) != model[i])
			fail_msg("key %u: %llu, want %llu", i,
				 (unsigned long long)keytab_get(t, &k), (unsigned long long)model[i]);
		n += model[i] != 0;
	}
	assert_int_equal(t->n, n);
	for (struct keytab_slot *s = keytab_first(t); s; s = keytab_next(t, s))
		seen++;
	assert_int_equal(seen, n);
}

static void test_random_against_model(void **state)
{
	static uint64_t model[KEYS];
	struct keytab t = { 0 };

	(void)state;
	srand(7);
	for (int step = 0; step < 200000; step++) {
		unsigned i = (unsigned)rand() % KEYS;
		/* more removals than inserts in some phases, so the table empties */
		uint64_t v = (step / 20000) % 2 ? (rand() % 4 == 0 ? (uint64_t)rand() % 5 : 0)
						 : (uint64_t)rand() % 5;
		struct ca_key k = key_of(i);

		assert_int_equal(keytab_set(&t, &k, v), 0);
		model[i] = v;
		if (step % 10000 == 0)
			check_same(&t, model);
	}
	check_same(&t, model);
	keytab_clear(&t);
	memset(model, 0, sizeof(model));
	check_same(&t, model);
	keytab_free(&t);
}

static void test_empty(void **state)
{
	struct keytab t = { 0 };
	struct ca_key k = key_of(1);

	(void)state;
	assert_int_equal(keytab_get(&t, &k), 0);
	assert_int_equal(keytab_set(&t, &k, 0), 0);	/* removing nothing allocates nothing */
	assert_null(t.slot);
	assert_null(keytab_first(&t));
	keytab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
