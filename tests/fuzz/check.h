/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* check.h - the fuzzers' invariant check: a wrong answer must crash, so
 * that libFuzzer reports it and keeps the input. */
#ifndef CA_FUZZ_CHECK_H
#define CA_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/* libFuzzer's entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
