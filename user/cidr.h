/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cidr.h - length-counted forms of the address and CIDR parsers, for callers
 * whose strings may hold NUL bytes (the Lua module, the fuzzers): a C string
 * would silently end at the first NUL and accept "10.0.0.1\0junk".
 */
#ifndef CA_CIDR_H
#define CA_CIDR_H

#include <stddef.h>

#include "connaudit.h"

/* ca_cidr_parse on the `len` bytes at `s`. Returns 0, or -EINVAL with a
 * message quoting the input (an embedded NUL is an error). */
int ca_cidr_parse_n(const char *s, size_t len, struct ca_cidr *out, struct ca_error *err);

/* ca_addr_parse on the `len` bytes at `s`. Returns 0, or -EINVAL with a
 * message quoting the input (an embedded NUL is an error). */
int ca_addr_parse_n(const char *s, size_t len, struct ca_addr *out, struct ca_error *err);

#endif
