// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cluster_maps.c - the maps the cluster agent writes (ca_remote,
 * ca_remote_rates, ca_cluster). No BPF program uses them: the loader creates and pins them
 * beside the others, so that readers find them where they find the counts,
 * with the same permissions, and `load --replace` keeps them.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cluster.h"
#include "errors.h"
#include "sysfs.h"

static int create_pinned(const char *dir, const char *name, enum bpf_map_type type,
			 __u32 key_size, __u32 value_size, __u32 max_entries,
			 struct ca_error *err)
{
	/* entries come and go with remote sessions: allocate them as they come */
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	char path[PATH_MAX];
	int fd, rc = 0;

	if (ca_join_path(path, sizeof(path), dir, name))
		return ca_errf(err, -ENAMETOOLONG, "pin dir path is too long");
	if (access(path, F_OK) == 0)
		return 0;
	fd = bpf_map_create(type, name, key_size, value_size, max_entries, &opts);
	if (fd < 0)
		return ca_errf(err, -errno, "cannot create %s: %s", name, strerror(errno));
	if (bpf_obj_pin(fd, path))
		rc = ca_errf(err, -errno, "cannot pin %s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

int ca_cluster_maps_pin(const char *dir, struct ca_error *err)
{
	int rc = create_pinned(dir, CA_PIN_REMOTE, BPF_MAP_TYPE_HASH, sizeof(struct ca_key),
			       sizeof(__u64), CA_REMOTE_MAX_ENTRIES, err);

	if (!rc)
		rc = create_pinned(dir, CA_PIN_REMOTE_RATES, BPF_MAP_TYPE_HASH,
				   sizeof(struct ca_key), sizeof(struct ca_rate),
				   CA_REMOTE_RATES_MAX_ENTRIES, err);
	if (rc)
		return rc;
	return create_pinned(dir, CA_PIN_CLUSTER, BPF_MAP_TYPE_HASH, sizeof(__u32),
			     sizeof(struct ca_cluster_state), CA_CLUSTER_MAX_ENTRIES, err);
}
