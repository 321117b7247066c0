/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* sysfs.h - the filesystems and namespaces connaudit depends on. */
#ifndef CA_SYSFS_H
#define CA_SYSFS_H

#include <stdint.h>

#include "connaudit.h"

/* buf = dir/name (a pin, or any path). Returns 0, or -ENAMETOOLONG if it does not fit. */
int ca_join_path(char *buf, size_t len, const char *dir, const char *name);

/* Resolve the pin dir: arg, else $CONNAUDIT_PIN_DIR, else the default. */
const char *ca_resolve_pin_dir(const char *arg);

/* 0 when `dir` (or its nearest existing ancestor) is on bpffs; else -ENOENT
 * with a message explaining how to mount it, or why it looks missing (a
 * fresh /sys from `ip netns exec`). */
int ca_check_bpffs(const char *dir, struct ca_error *err);

/* Make sure the pin dir's parent is on bpffs, mounting bpffs at
 * /sys/fs/bpf when that is where it belongs. Returns 0 or -errno. */
int ca_ensure_bpffs(const char *pin_dir, struct ca_error *err);

/* Path of the cgroup v2 mount from /proc/mounts, into buf. -ENOENT if none. */
int ca_cgroup2_mount(char *buf, size_t len, struct ca_error *err);

/* Open a cgroup v2 directory (O_RDONLY|O_DIRECTORY) after checking that it
 * is on cgroup2; *id gets its cgroup id. Returns the fd or -errno. */
int ca_open_cgroup(const char *path, uint64_t *id, struct ca_error *err);

/* Open the cgroup v2 directory with this id through a file handle.
 * Returns the fd or -errno. */
int ca_open_cgroup_by_id(uint64_t id, struct ca_error *err);

/* Call fn(fd, inode, arg) once for every distinct network namespace that a
 * process or /run/netns holds, or a process's socket; fd is open only during
 * the call. A file in /run/netns that is no network namespace goes to
 * skipped(path, arg). sockets_iter is the link of the foreign_sockets
 * iterator (bpf/connaudit.bpf.c) that finds the sockets' namespaces in one
 * walk, or -1 to ask about every socket descriptor of every process (slow
 * with many: seconds for 400,000). Returns 0, fn's non-zero value, or -errno. */
int ca_foreach_netns(int (*fn)(int fd, uint32_t inode, void *arg),
		     void (*skipped)(const char *path, void *arg), void *arg,
		     int sockets_iter, struct ca_error *err);

#endif
