/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* test_health_log.c - when the health log speaks: one line into a degraded
 * episode, one out of it, none in between; its state file across runs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli_health_log.h"

#define PIN	"/sys/fs/bpf/test"

static char captured[4096];
static char state_path[64];
static int saved_stderr = -1;

/* stderr into a temporary file for each test. */
static int setup(void **ctx)
{
	char path[] = "/tmp/test_health_log.XXXXXX";
	int fd = mkstemp(path);

	(void)ctx;
	if (fd < 0)
		return -1;
	unlink(path);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
	unsetenv("JOURNAL_STREAM");
	snprintf(state_path, sizeof(state_path), "/tmp/test_health_state.%d", (int)getpid());
	unlink(state_path);
	return 0;
}

/* What no test consumed, such as cmocka's message about a failure, goes
 * on to the real stderr. */
static int teardown(void **ctx)
{
	ssize_t n;

	(void)ctx;
	fflush(stderr);
	n = pread(2, captured, sizeof(captured), 0);
	if (n > 0 && write(saved_stderr, captured, (size_t)n) < 0)
		return -1;
	dup2(saved_stderr, 2);
	close(saved_stderr);
	unlink(state_path);
	return 0;
}

/* What was written to stderr since the last call (consumed). */
static const char *printed(void)
{
	ssize_t n;

	fflush(stderr);
	n = pread(2, captured, sizeof(captured) - 1, 0);
	captured[n > 0 ? n : 0] = '\0';
	assert_int_equal(ftruncate(2, 0), 0);
	lseek(2, 0, SEEK_SET);
	return captured;
}

static const struct ca_config load1 = { .loaded_at = 1000 };
static const struct ca_config load2 = { .loaded_at = 2000 };

static void test_episode(void **ctx)
{
	struct health_log l;
	struct ca_health hv = { 0 };

	(void)ctx;
	health_log_init(&l, NULL);
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 0);
	assert_string_equal(printed(), "");

	hv.incomplete = 3;
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 1);
	assert_string_equal(printed(), "connaudit: " PIN ": counts may be low: 3 live sessions "
			    "missing from some count; see `connaudit status`\n");
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 0);

	hv.peers_full = 5;	/* a new condition while degraded: one more line */
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 1);
	assert_non_null(strstr(printed(), "counts still may be low: 3 live sessions missing "
				"from some count; ca_peers ran full (5 inserts refused"));
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 0);
	hv.peers_full = 9;	/* ... running full again is not news */
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 0);
	assert_string_equal(printed(), "");

	hv.incomplete = 0;
	hv.peers_full = 12;	/* refusals that left every count exact */
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 1);
	assert_string_equal(printed(), "connaudit: " PIN ": counts are exact again\n");
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 0);
	assert_string_equal(printed(), "");
}

static void test_other_conditions(void **ctx)
{
	struct health_log l;
	struct ca_health hv = { .marks_full = 2, .uncounted = 2 };

	(void)ctx;
	health_log_init(&l, NULL);
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 1);
	assert_non_null(strstr(printed(), "2 live sessions not counted at all; ca_marks ran full "
				"(2 sessions found it full"));
	hv.underflow = 1;
	assert_int_equal(health_log_update(&l, PIN, &load1, &hv), 1);
	assert_non_null(strstr(printed(), "1 decrements found no entry"));
	hv = (struct ca_health){ .prefixes_full = 4, .incomplete = 1 };
	assert_int_equal(health_log_update(&l, PIN, &load2, &hv), 1);	/* a new load */
	assert_non_null(strstr(printed(), "ca_prefixes ran full (4 inserts refused"));
	hv = (struct ca_health){ .prefixes_full = 4 };
	assert_int_equal(health_log_update(&l, PIN, &load2, &hv), 1);
	assert_string_equal(printed(), "connaudit: " PIN ": counts are exact again\n");
}

/* Each "run" is a new struct read from the state file, as the timer's. */
static void test_state_file(void **ctx)
{
	struct ca_health bad = { .incomplete = 1 }, good = { 0 };
	struct health_log l;
	FILE *f;

	(void)ctx;
	health_log_init(&l, state_path);
	assert_int_equal(health_log_update(&l, PIN, &load1, &bad), 1);
	assert_non_null(strstr(printed(), "counts may be low"));
	health_log_init(&l, state_path);
	assert_true(l.known);
	assert_int_equal(health_log_update(&l, PIN, &load1, &bad), 0);
	assert_string_equal(printed(), "");
	health_log_init(&l, state_path);
	assert_int_equal(health_log_update(&l, PIN, &load1, &good), 1);
	assert_string_equal(printed(), "connaudit: " PIN ": counts are exact again\n");

	/* Another auditor's state is no previous check of this one. */
	health_log_init(&l, state_path);
	assert_int_equal(health_log_update(&l, "/sys/fs/bpf/other", &load1, &bad), 1);
	assert_non_null(strstr(printed(), "/sys/fs/bpf/other: counts may be low"));

	/* A file that is not a state file is no previous check either. */
	f = fopen(state_path, "w");
	assert_non_null(f);
	fputs("something else\n", f);
	fclose(f);
	health_log_init(&l, state_path);
	assert_false(l.known);

	health_log_init(&l, "/nonexistent-dir/health");
	assert_int_equal(health_log_update(&l, PIN, &load1, &bad), -ENOENT);
	assert_non_null(strstr(printed(), "counts may be low"));	/* said anyway */
}

static void test_state_file_choice(void **ctx)
{
	char buf[256];

	(void)ctx;
	setenv("CONNAUDIT_HEALTH_STATE", "/x/state", 1);
	setenv("RUNTIME_DIRECTORY", "/run/connaudit:/run/other", 1);
	assert_string_equal(health_log_state_file(buf, sizeof(buf)), "/x/state");
	unsetenv("CONNAUDIT_HEALTH_STATE");
	assert_string_equal(health_log_state_file(buf, sizeof(buf)), "/run/connaudit/health");
	unsetenv("RUNTIME_DIRECTORY");
	assert_null(health_log_state_file(buf, sizeof(buf)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_episode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_conditions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_file_choice, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
