/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_ports.c - the audited-port table: --ports lists and the services'. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ports.h"

static unsigned count_set(const struct ca_ports *t)
{
	unsigned n = 0;

	for (unsigned w = 0; w < CA_PORT_WORDS; w++)
		n += (unsigned)__builtin_popcountll(t->bits[w]);
	return n;
}

static void test_list_and_ranges(void **state)
{
	struct ca_ports t = { 0 };
	struct ca_error err = { "" };

	(void)state;
	assert_int_equal(ca_ports_parse("25,587,8000-8010,65535,1", &t, &err), 15);
	assert_true(ca_port_isset(&t, 25) && ca_port_isset(&t, 587));
	assert_true(ca_port_isset(&t, 8000) && ca_port_isset(&t, 8010));
	assert_true(ca_port_isset(&t, 65535) && ca_port_isset(&t, 1));
	assert_false(ca_port_isset(&t, 8011) || ca_port_isset(&t, 0) || ca_port_isset(&t, 26));
	assert_int_equal(count_set(&t), 15);
}

static void test_bad_lists(void **state)
{
	static const char *const bad[] = { "", "0", "65536", "25,", ",25", "25;26", "x",
					   "10-9", "-5", "25-", "1-2-3", "25 26", "+25" };
	struct ca_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ca_ports t = { 0 };

		err.msg[0] = '\0';
		if (ca_ports_parse(bad[i], &t, &err) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(err.msg[0] != '\0');
	}
}

/* The services file's ports, the built-ins' and --ports, nothing else. */
static void test_build(void **state)
{
	char path[] = "/tmp/test_ports_XXXXXX";
	struct ca_load_opts o = { .ports = "8025" };
	struct ca_error err = { "" };
	struct ca_ports t;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "Submission 587 465\n", 19), 19);
	close(fd);
	o.services = path;
	assert_int_equal(ca_ports_build(&o, &t, &err), 7);
	unlink(path);
	for (unsigned p = 1; p < 65536; p++) {
		bool want = p == 25 || p == 2025 || p == 1825 || p == 4802 || p == 587 ||
			    p == 465 || p == 8025;

		if (ca_port_isset(&t, (uint16_t)p) != want)
			fail_msg("port %u: %s", p, want ? "missing" : "set");
	}
	o.services = "/nonexistent/services.conf";
	assert_int_equal(ca_ports_build(&o, &t, &err), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_and_ranges),
		cmocka_unit_test(test_bad_lists),
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
