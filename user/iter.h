/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* iter.h - reading a BPF iterator to its end. */
#ifndef CA_ITER_H
#define CA_ITER_H

#include <sys/types.h>

/* A read(2) to use: read itself, or a test's stand-in. */
typedef ssize_t ca_read_fn(int fd, void *buf, size_t len);

/* Read fd until end of file with rd. EAGAIN and EINTR are not errors: the
 * kernel ends a read with EAGAIN after a million objects that wrote no
 * output, and the next read goes on where it stopped. Returns 0 or -errno. */
int ca_iter_drain(int fd, ca_read_fn *rd);

#endif
