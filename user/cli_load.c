// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cli_load.c - connaudit load and unload. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sysfs.h"

/* A group name or number, for load --group. */
static int resolve_group(const char *name, struct ca_load_opts *o)
{
	struct group *g = getgrnam(name);
	unsigned long gid;
	char *end;

	if (g) {
		o->gid = g->gr_gid;
	} else {
		errno = 0;
		gid = strtoul(name, &end, 10);
		if (errno || end == name || *end || gid > UINT32_MAX)
			return cli_usage("--group: no group named '%s' (create it with groupadd)",
					 name);
		o->gid = (uint32_t)gid;
	}
	o->grant_group = true;
	return 0;
}

int cmd_load(const struct cli *c)
{
	struct ca_load_opts o = {
		.pin_dir = c->pin_dir, .cgroup = c->cgroup, .replace = c->replace,
		.quiet = c->quiet, .max_peers = (uint32_t)c->max_peers,
		.max_prefixes = (uint32_t)c->max_prefixes,
		.max_sessions = (uint32_t)c->max_sessions, .mode = (unsigned)c->mode,
		.services = c->config, .ports = c->ports, .all_ports = c->all_ports,
	};
	struct ca_error err;

	if (c->mode && !c->group)
		return cli_usage("--mode goes with --group");
	if (c->ports && c->all_ports)
		return cli_usage("--ports and --all-ports: give one (--all-ports already counts "
				 "every port)");
	if (c->group && resolve_group(c->group, &o))
		return EXIT_USAGE;
	if (c->prefixes && ca_parse_prefix_list(c->prefixes, &o, &err))
		return cli_usage("--prefixes: %s", err.msg);
	if (ca_load(&o, &err))
		return cli_fail("%s", err.msg);
	return 0;
}

int cmd_unload(const struct cli *c)
{
	struct ca_error err;

	if (ca_unload(c->pin_dir, &err))
		return cli_fail("%s", err.msg);
	if (!c->quiet)
		fprintf(stderr, "connaudit: unloaded from %s\n", ca_resolve_pin_dir(c->pin_dir));
	return 0;
}
