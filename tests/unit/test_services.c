/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_services.c - built-ins, services.conf parsing, loading and lookup. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "connaudit.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ORIGIN		"test.conf"

/* ---- helpers ------------------------------------------------------------ */

/* The ports of service `name` in s are `want`, a 0-terminated list. */
static void assert_ports(const struct ca_services *s, const char *name,
			 const uint16_t *want)
{
	struct ca_error err = { "" };
	const struct ca_service *svc = ca_services_find(s, name, &err);
	unsigned n = 0;

	if (!svc)
		fail_msg("%s: not found: %s", name, err.msg);
	while (want[n])
		n++;
	if (svc->nports != n)
		fail_msg("%s: %u ports, want %u", name, svc->nports, n);
	assert_memory_equal(svc->ports, want, n * sizeof(want[0]));
}

static void assert_builtins_only(const struct ca_services *s)
{
	struct ca_services want;

	ca_services_defaults(&want);
	assert_int_equal(s->n, 4);
	assert_memory_equal(s, &want, sizeof(want));
}

static void parse_ok(struct ca_services *s, const char *text)
{
	struct ca_error err = { "" };

	ca_services_defaults(s);
	if (ca_services_parse(s, text, strlen(text), ORIGIN, &err) != 0)
		fail_msg("rejected: %s", err.msg);
}

/* Temporary files and directories of one test, removed by the teardown. */
struct scratch {
	char file[96];
	char dir[64];
};

static int setup(void **state)
{
	static struct scratch scratch;

	memset(&scratch, 0, sizeof(scratch));
	unsetenv(CA_ENV_CONFIG);
	*state = &scratch;
	return 0;
}

static int teardown(void **state)
{
	struct scratch *sc = *state;

	if (sc->file[0])
		unlink(sc->file);
	if (sc->dir[0])
		rmdir(sc->dir);
	unsetenv(CA_ENV_CONFIG);
	return 0;
}

static const char *write_file(struct scratch *sc, const char *text, size_t len)
{
	int fd;

	snprintf(sc->file, sizeof(sc->file), "/tmp/test_services.XXXXXX");
	fd = mkstemp(sc->file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return sc->file;
}

/* ---- defaults and parsing -------------------------------------------------- */

static void test_defaults(void **state)
{
	static const struct { const char *name; uint16_t port; } want[] = {
		{ "SMTP", 25 }, { "Control", 2025 }, { "ECStream", 1825 }, { "ECCluster", 4802 },
	};
	struct ca_services s;

	(void)state;
	memset(&s, 0xa5, sizeof(s));
	ca_services_defaults(&s);
	assert_int_equal(s.n, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_string_equal(s.svc[i].name, want[i].name);
		assert_int_equal(s.svc[i].nports, 1);
		assert_int_equal(s.svc[i].ports[0], want[i].port);
	}
}

/* Ports of a service, 0-terminated. */
struct want_service {
	const char *name;
	uint16_t ports[CA_SERVICE_PORTS_MAX + 1];
};

struct good_case {
	const char *text;
	unsigned n;			/* services after parsing */
	struct want_service want[3];
};

static void test_parse_good(void **state)
{
	static const struct good_case cases[] = {
		/* a known name is replaced, a new one added */
		{ "Foo 1000 1001\nSMTP 25 587 465\n", 5,
		  { { "SMTP", { 25, 587, 465 } }, { "Foo", { 1000, 1001 } },
		    { "Control", { 2025 } } } },
		{ "# services\n"
		  "\n"
		  "   \t \n"
		  "\t# indented comment\n"
		  "Foo 1 2 # trailing comment 3\n"
		  "Bar\t10\t 11#12\n"
		  "#Baz 5\n"
		  "Last 7", 7,			/* no final newline */
		  { { "Foo", { 1, 2 } }, { "Bar", { 10, 11 } }, { "Last", { 7 } } } },
		/* a CR before the LF is ignored, as is one ending the text */
		{ "Foo 1\r\n\r\n# note\r\nBar 2 3 # c\r\nBaz 4\r", 7,
		  { { "Foo", { 1 } }, { "Bar", { 2, 3 } }, { "Baz", { 4 } } } },
		{ "A.b_c-9 1 65535\n"
		  "n234567890123456789012345678901 5\n"	/* 31 characters */
		  "Sixteen 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 7,
		  { { "A.b_c-9", { 1, 65535 } }, { "n234567890123456789012345678901", { 5 } },
		    { "Sixteen", { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } } } },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_services s;

		parse_ok(&s, cases[i].text);
		if (s.n != cases[i].n)
			fail_msg("case %zu: %u services, want %u", i, s.n, cases[i].n);
		for (size_t j = 0; j < ARRAY_SIZE(cases[i].want) && cases[i].want[j].name; j++)
			assert_ports(&s, cases[i].want[j].name, cases[i].want[j].ports);
	}
}

static void test_parse_replaces_in_place(void **state)
{
	struct ca_services s;

	(void)state;
	parse_ok(&s, "Foo 1000\nSMTP 587\n");
	assert_string_equal(s.svc[0].name, "SMTP");
	assert_int_equal(s.svc[0].ports[0], 587);
	assert_string_equal(s.svc[4].name, "Foo");
}

/* Builds "S1 1\nS2 2\n..." adding `count` services. */
static void many_services(char *buf, size_t len, unsigned count)
{
	size_t o = 0;

	for (unsigned i = 1; i <= count; i++)
		o += (size_t)snprintf(buf + o, len - o, "S%u %u\n", i, i);
}

static void test_parse_service_limit(void **state)
{
	char text[1024];
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	many_services(text, sizeof(text), CA_SERVICES_MAX - 4);
	parse_ok(&s, text);
	assert_int_equal(s.n, CA_SERVICES_MAX);
	/* a replacement still fits in a full table */
	assert_int_equal(ca_services_parse(&s, "S1 99\n", 6, ORIGIN, &err), 0);

	many_services(text, sizeof(text), CA_SERVICES_MAX - 3);
	ca_services_defaults(&s);
	assert_int_equal(ca_services_parse(&s, text, strlen(text), ORIGIN, &err), -EINVAL);
	assert_string_equal(err.msg, ORIGIN ":61: more than 64 services: \"S61\"");
	assert_builtins_only(&s);
}

struct invalid_case {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	const char *message;	/* the whole expected message */
};

static void test_parse_invalid(void **state)
{
	static const struct invalid_case cases[] = {
		{ "Foo\n", 0, ":1: a service needs at least one port: \"Foo\"" },
		{ "Foo # 25\n", 0, ":1: a service needs at least one port: \"Foo\"" },
		{ "\nFoo 0\n", 0, ":2: a port is a decimal number 1..65535: \"0\"" },
		{ "Foo 65536", 0, ":1: a port is a decimal number 1..65535: \"65536\"" },
		{ "Foo 999999", 0, ":1: a port is a decimal number 1..65535: \"999999\"" },
		{ "Foo -1", 0, ":1: a port is a decimal number 1..65535: \"-1\"" },
		{ "Foo +25", 0, ":1: a port is a decimal number 1..65535: \"+25\"" },
		{ "Foo 0x19", 0, ":1: a port is a decimal number 1..65535: \"0x19\"" },
		{ "Foo 25a", 0, ":1: a port is a decimal number 1..65535: \"25a\"" },
		{ "Foo 25,26", 0, ":1: a port is a decimal number 1..65535: \"25,26\"" },
		{ "Foo 1\rBar 2\n", 0, ":1: a port is a decimal number 1..65535: \"1\\x0dBar\"" },
		{ "Foo 1\0 2\n", 9, ":1: a port is a decimal number 1..65535: \"1\\x00\"" },
		{ "Foo 25 587 25\n", 0, ":1: port listed twice: \"25\"" },
		/* a name on two lines is a mistake, built-in or not */
		{ "Foo 1\nBar 2\nFoo 2 3\n", 0, ":3: service already defined on line 1: merge "
		  "the ports into one line: \"Foo\"" },
		{ "SMTP 25\n\nSMTP 587\n", 0, ":3: service already defined on line 1: merge "
		  "the ports into one line: \"SMTP\"" },
		{ "Foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n", 0,
		  ":1: more than 16 ports for one service: \"17\"" },
		{ "n2345678901234567890123456789012 5\n", 0,
		  ":1: a service name is 1..31 characters of A-Z a-z 0-9 _ . -: "
		  "\"n2345678901234567890123456789012\"" },
		{ "Fo/o 1\n", 0, ":1: a service name is 1..31 characters of A-Z a-z 0-9 _ . -: \"Fo/o\"" },
		{ "ok 1\nF\xc3\xa9 1\n", 0,
		  ":2: a service name is 1..31 characters of A-Z a-z 0-9 _ . -: \"F\\xc3\\xa9\"" },
		{ "\vFoo 1\n", 0,
		  ":1: a service name is 1..31 characters of A-Z a-z 0-9 _ . -: \"\\x0bFoo\"" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ca_services s;
		struct ca_error err = { "" };
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		char want[CA_ERRMSG_MAX];

		snprintf(want, sizeof(want), ORIGIN "%s", cases[i].message);
		ca_services_defaults(&s);
		if (ca_services_parse(&s, cases[i].text, len, ORIGIN, &err) != -EINVAL)
			fail_msg("case %zu accepted", i);
		if (strcmp(err.msg, want) != 0)
			fail_msg("case %zu: got %s, want %s", i, err.msg, want);
		assert_builtins_only(&s);
	}
}

/* Lines are counted across CR-LF endings, comments and blank lines. */
static void test_parse_line_numbers(void **state)
{
	static const char text[] = "Foo 1\r\n# c\n\nBar 2\nBaz\n";
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	ca_services_defaults(&s);
	assert_int_equal(ca_services_parse(&s, text, strlen(text), ORIGIN, &err), -EINVAL);
	assert_string_equal(err.msg, ORIGIN ":5: a service needs at least one port: \"Baz\"");
	assert_int_equal(ca_services_parse(&s, text, strlen(text), NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "(config):5: a service needs at least one port: \"Baz\"");
}

static void test_parse_empty(void **state)
{
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	ca_services_defaults(&s);
	assert_int_equal(ca_services_parse(&s, "", 0, ORIGIN, &err), 0);
	assert_builtins_only(&s);
	assert_int_equal(ca_services_parse(&s, NULL, 0, ORIGIN, &err), 0);
	assert_builtins_only(&s);
}

/* ---- loading ---------------------------------------------------------------- */

static void test_load_path(void **state)
{
	const char *path = write_file(*state, "Foo 7\n", 6);
	struct ca_services s;
	struct ca_error err = { "" };

	setenv(CA_ENV_CONFIG, "/nonexistent/connaudit.conf", 1);	/* path wins */
	assert_int_equal(ca_services_load(&s, path, &err), 0);
	assert_int_equal(s.n, 5);
	assert_ports(&s, "Foo", (const uint16_t[]){ 7, 0 });
}

static void test_load_env(void **state)
{
	const char *path = write_file(*state, "SMTP 2525\n", 10);
	struct ca_services s;
	struct ca_error err = { "" };

	setenv(CA_ENV_CONFIG, path, 1);
	assert_int_equal(ca_services_load(&s, NULL, &err), 0);
	assert_int_equal(s.n, 4);
	assert_ports(&s, "SMTP", (const uint16_t[]){ 2525, 0 });
}

static void test_load_missing_named(void **state)
{
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	assert_int_equal(ca_services_load(&s, "/nonexistent/a.conf", &err), -ENOENT);
	assert_string_equal(err.msg, "config file \"/nonexistent/a.conf\": "
			    "No such file or directory");
	assert_builtins_only(&s);

	setenv(CA_ENV_CONFIG, "/nonexistent/b.conf", 1);
	assert_int_equal(ca_services_load(&s, NULL, &err), -ENOENT);
	assert_string_equal(err.msg, "config file \"/nonexistent/b.conf\" (from "
			    "$CONNAUDIT_CONFIG): No such file or directory");
}

static void test_load_missing_default(void **state)
{
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	if (access(CA_DEFAULT_CONFIG, F_OK) == 0 || errno != ENOENT)
		skip();		/* this machine has a config installed */
	assert_int_equal(ca_services_load(&s, NULL, &err), 0);
	assert_builtins_only(&s);
	setenv(CA_ENV_CONFIG, "", 1);	/* empty counts as unset */
	assert_int_equal(ca_services_load(&s, NULL, &err), 0);
	assert_builtins_only(&s);
}

static void test_load_malformed(void **state)
{
	const char *path = write_file(*state, "Foo 1\nBar x\n", 12);
	struct ca_services s;
	struct ca_error err = { "" };
	char want[CA_ERRMSG_MAX];

	assert_int_equal(ca_services_load(&s, path, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: a port is a decimal number 1..65535: \"x\"", path);
	assert_string_equal(err.msg, want);
	assert_builtins_only(&s);
}

static void test_load_size_limit(void **state)
{
	size_t mib = 1u << 20;
	char *text = malloc(mib + 1);
	struct ca_services s;
	struct ca_error err = { "" };
	const char *path;

	assert_non_null(text);
	memset(text, '#', mib + 1);		/* one long comment line */
	path = write_file(*state, text, mib);
	assert_int_equal(ca_services_load(&s, path, &err), 0);
	unlink(path);
	path = write_file(*state, text, mib + 1);
	free(text);
	assert_int_equal(ca_services_load(&s, path, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "larger than 1 MiB"));
	assert_non_null(strstr(err.msg, path));
}

static void test_load_unreadable(void **state)
{
	struct scratch *sc = *state;
	struct ca_services s;
	struct ca_error err = { "" };
	char want[CA_ERRMSG_MAX];

	snprintf(sc->dir, sizeof(sc->dir), "/tmp/test_services.XXXXXX");
	assert_non_null(mkdtemp(sc->dir));
	assert_int_equal(ca_services_load(&s, sc->dir, &err), -EISDIR);
	snprintf(want, sizeof(want), "config file \"%s\": Is a directory", sc->dir);
	assert_string_equal(err.msg, want);

	/* a FIFO is refused at once, not waited on for a writer */
	snprintf(sc->file, sizeof(sc->file), "%s/fifo", sc->dir);
	assert_int_equal(mkfifo(sc->file, 0600), 0);
	assert_int_equal(ca_services_load(&s, sc->file, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
	unlink(sc->file);

	if (geteuid() == 0)
		return;		/* root reads mode 000 files */
	write_file(sc, "Foo 1\n", 6);
	assert_int_equal(chmod(sc->file, 0), 0);
	assert_int_equal(ca_services_load(&s, sc->file, &err), -EACCES);
	assert_non_null(strstr(err.msg, "Permission denied"));
}

/* ---- lookup -------------------------------------------------------------- */

static void test_find(void **state)
{
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	ca_services_defaults(&s);
	assert_ptr_equal(ca_services_find(&s, "SMTP", &err), &s.svc[0]);
	assert_ptr_equal(ca_services_find(&s, "ECCluster", &err), &s.svc[3]);
	assert_null(ca_services_find(&s, "smtp", &err));
	assert_string_equal(err.msg, "unknown service \"smtp\" (names are case-sensitive); "
			    "known services: SMTP, Control, ECStream, ECCluster");
	assert_null(ca_services_find(&s, "Nope", &err));
	assert_string_equal(err.msg, "unknown service \"Nope\"; "
			    "known services: SMTP, Control, ECStream, ECCluster");
	assert_null(ca_services_find(&s, "", &err));
	assert_non_null(strstr(err.msg, "unknown service \"\""));
	assert_null(ca_services_find(&s, NULL, &err));
	assert_string_equal(err.msg, "no service name given");
}

static void test_find_clustering_only(void **state)
{
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	ca_services_defaults(&s);
	assert_null(ca_services_find(&s, "ECmmove2", &err));
	assert_string_equal(err.msg, "service \"ECmmove2\" exists in Momentum only with "
			    "clustering and connaudit does not audit it; define it with its "
			    "ports in services.conf to count it");
	assert_null(ca_services_find(&s, "ecmmove2", &err));
	assert_non_null(strstr(err.msg, "unknown service \"ecmmove2\""));
}

/* inbound_cidr: SMTP's ports, counted cluster-wide, following SMTP's config. */
static void test_find_inbound_cidr(void **state)
{
	const struct ca_service *svc;
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	ca_services_defaults(&s);
	assert_int_equal(s.n, 4);	/* not a table entry: metrics do not list it */
	svc = ca_services_find(&s, "inbound_cidr", &err);
	assert_non_null(svc);
	assert_true(svc->cluster);
	assert_string_equal(svc->name, "inbound_cidr");
	assert_ports(&s, "inbound_cidr", (const uint16_t[]){ 25, 0 });
	assert_false(ca_services_find(&s, "SMTP", &err)->cluster);
	parse_ok(&s, "SMTP 25 587\n");
	assert_ports(&s, "inbound_cidr", (const uint16_t[]){ 25, 587, 0 });
	parse_ok(&s, "inbound_cidr 2526\n");	/* named in the config: its own ports */
	assert_ports(&s, "inbound_cidr", (const uint16_t[]){ 2526, 0 });
	assert_true(ca_services_find(&s, "inbound_cidr", &err)->cluster);
	assert_null(ca_services_find(&s, "Inbound_cidr", &err));
}

static void test_find_long_list_is_cut(void **state)
{
	char text[4096];
	size_t o = 0;
	struct ca_services s;
	struct ca_error err = { "" };

	(void)state;
	for (unsigned i = 0; i < CA_SERVICES_MAX - 4; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      "service_with_a_long_name_%02u %u\n", i, i + 1);
	parse_ok(&s, text);
	assert_null(ca_services_find(&s, "Nope", &err));
	assert_non_null(strstr(err.msg, "known services: SMTP, Control, ECStream, "
			       "ECCluster, service_with_a_long_name_00"));
	assert_non_null(strstr(err.msg, ", ..."));
	assert_null(strstr(err.msg, "service_with_a_long_name_59"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_replaces_in_place),
		cmocka_unit_test(test_parse_service_limit),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_line_numbers),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test_setup_teardown(test_load_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_missing_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_missing_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_unreadable, setup, teardown),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_find_clustering_only),
		cmocka_unit_test(test_find_inbound_cidr),
		cmocka_unit_test(test_find_long_list_is_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
