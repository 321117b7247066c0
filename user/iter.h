/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* iter.h - reading a BPF iterator to its end. */
#ifndef CA_ITER_H
#define CA_ITER_H

#include <stddef.h>
#include <sys/types.h>

/* A read(2) to use: read itself, or a test's stand-in. */
typedef ssize_t ca_read_fn(int fd, void *buf, size_t len);

/* What the iterator printed, a piece at a time: 0 to go on, else -errno. */
typedef int ca_take_fn(const void *buf, size_t len, void *arg);

/* Read fd until end of file with rd, giving what it reads to take (NULL:
 * drop it). Every piece is a whole number of records of a size that
 * divides 4080 (8, 12, 16, 24 bytes...): the kernel copies whole records
 * while there is room. EAGAIN and EINTR are not errors: the kernel ends a
 * read with EAGAIN after a million objects that wrote no output, and the
 * next read goes on where it stopped. Returns 0, take's error, or -errno. */
int ca_iter_drain(int fd, ca_read_fn *rd, ca_take_fn *take, void *arg);

#endif
