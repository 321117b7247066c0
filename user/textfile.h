/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* textfile.h - reading a small configuration file whole (services, rules). */
#ifndef CA_TEXTFILE_H
#define CA_TEXTFILE_H

#include <stddef.h>

#define CA_TEXTFILE_MAX	(1u << 20)	/* bytes; a configuration file is a few lines */

/* The whole of `path` into *text (malloc'ed, the caller frees) and *len.
 * A FIFO or socket is refused at once (opening one must not wait for a
 * writer). Returns 0, -EISDIR, -EINVAL (FIFO or socket), -EFBIG (over
 * CA_TEXTFILE_MAX), -ENOMEM, or the -errno of open or read. */
int ca_read_textfile(const char *path, char **text, size_t *len);

/* What a ca_read_textfile() failure means, for a message. */
const char *ca_textfile_error(int rc);

#endif
