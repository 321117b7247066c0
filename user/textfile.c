// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* textfile.c - one reader for the configuration files the tools take. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "textfile.h"

int ca_read_textfile(const char *path, char **text, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	size_t have = 0;
	struct stat st;
	char *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || S_ISDIR(st.st_mode) || S_ISFIFO(st.st_mode) ||
	    S_ISSOCK(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	/* One byte more than the limit: reading it means the file is too large. */
	buf = malloc(CA_TEXTFILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (have <= CA_TEXTFILE_MAX) {
		ssize_t n = read(fd, buf + have, CA_TEXTFILE_MAX + 1 - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;

			free(buf);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (have > CA_TEXTFILE_MAX) {
		free(buf);
		return -EFBIG;
	}
	*text = buf;
	*len = have;
	return 0;
}

const char *ca_textfile_error(int rc)
{
	if (rc == -EINVAL)
		return "not a regular file (a FIFO or a socket)";
	if (rc == -EFBIG)
		return "larger than 1 MiB";
	return strerror(-rc);
}
