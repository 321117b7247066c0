/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* errors.h - filling the caller's struct ca_error. */
#ifndef CA_ERRORS_H
#define CA_ERRORS_H

#include "connaudit.h"

/* Format a message into err (if non-NULL) and return `code` (a negative
 * errno), so that failures read: return ca_errf(err, -EINVAL, "...", ...); */
int ca_errf(struct ca_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Quote untrusted input for a message: printable ASCII is copied, anything
 * else becomes \xHH, and long input is cut with "..." (at most out_len-1). */
const char *ca_quote(const char *s, size_t len, char *out, size_t out_len);

#endif
