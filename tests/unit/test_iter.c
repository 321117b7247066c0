/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_iter.c - ca_iter_drain reads on through EAGAIN (issue 12, item 7). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "iter.h"

/* A scripted read: each step returns n (> 0 bytes, 0 end) or fails with -n. */
static const int *script;
static size_t step, steps;

static ssize_t scripted_read(int fd, void *buf, size_t len)
{
	(void)fd;
	assert_true(step < steps);	/* never read past the end */
	int r = script[step++];

	if (r < 0) {
		errno = -r;
		return -1;
	}
	memset(buf, 'x', (size_t)r < len ? (size_t)r : len);
	return r;
}

static int run(const int *s, size_t n)
{
	script = s;
	steps = n;
	step = 0;
	return ca_iter_drain(-1, scripted_read, NULL, NULL);
}

/* What a namespace with over a million sockets gives: EAGAIN, then more. */
static void test_eagain_goes_on(void **state)
{
	static const int s[] = { -EAGAIN, -EAGAIN, 8, -EINTR, -EAGAIN, 0 };

	(void)state;
	assert_int_equal(run(s, 6), 0);
	assert_int_equal(step, 6);
}

static void test_other_errors_stop(void **state)
{
	static const int s[] = { 8, -EAGAIN, -EFAULT };

	(void)state;
	assert_int_equal(run(s, 3), -EFAULT);
	assert_int_equal(step, 3);
}

static void test_empty(void **state)
{
	static const int s[] = { 0 };

	(void)state;
	assert_int_equal(run(s, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eagain_goes_on),
		cmocka_unit_test(test_other_errors_stop),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
