/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <stdarg.h>
#include <stdio.h>

#include "errors.h"

int ca_errf(struct ca_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

const char *ca_quote(const char *s, size_t len, char *out, size_t out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + need + 4 > out_len) {	/* keep room for "...\0" */
			snprintf(out + o, out_len - o, "...");
			return out;
		}
		if (need == 1)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}
