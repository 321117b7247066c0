// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>

#include "iter.h"

/* EAGAINs in a row before giving up: each stands for a million objects
 * walked, so this many means a kernel that never ends the walk. */
#define MAX_AGAIN	(1 << 20)

int ca_iter_drain(int fd, ca_read_fn *rd, ca_take_fn *take, void *arg)
{
	char buf[4080];
	int again = 0;

	for (;;) {
		ssize_t n = rd(fd, buf, sizeof(buf));
		int rc;

		if (n == 0)
			return 0;
		if (n > 0) {
			again = 0;
			rc = take ? take(buf, (size_t)n, arg) : 0;
			if (rc)
				return rc;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || ++again > MAX_AGAIN)
			return -errno;
	}
}
