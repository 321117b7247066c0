// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cli_connections.c - `connaudit connections` and `connaudit show ip`:
 * connections per window of the loaded rate monitors. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The library's message says which node's view is old or why; locally the
 * reason is always in `connaudit status`. */
static int incomplete_warning(bool cluster, const struct ca_error *err)
{
	if (cluster)
		cli_fail("warning: this count may be low: %s", err->msg);
	else
		cli_fail("warning: this count may be low: the kernel could not count some "
			 "connections (see `connaudit status`)");
	return EXIT_INCOMPLETE;
}

/* Bad input is reported as such even when nothing is loaded: parse
 * everything before opening the maps. */
int cmd_connections(const struct cli *c)
{
	const char *service = c->argc > 2 ? c->argv[2] : "SMTP";
	const struct ca_service *svc;
	struct ca_services services;
	struct ca_service one;
	struct ca_prefix resolved;
	struct ca_monitor m;
	struct ca_handle *h;
	struct ca_error err;
	struct ca_cidr cidr;
	struct ca_addr peer;
	uint64_t n = 0;
	int rc;

	if (c->argc < 2)
		return cli_usage("connections needs MONITOR and CIDR, e.g. `connaudit connections "
				"300,6 /24 SMTP --peer 192.0.2.7 --end 5`");
	if (ca_monitor_parse(c->argv[0], &m, &err) || ca_cidr_parse(c->argv[1], &cidr, &err) ||
	    (c->peer && ca_addr_parse(c->peer, &peer, &err)) ||
	    ca_cidr_resolve(&cidr, c->peer ? &peer : NULL, &resolved, &err))
		return cli_usage("%s", err.msg);
	if (c->start > c->end)
		return cli_usage("--start %lu is past --end %lu: windows %lu..%lu are summed, 0 "
				"being the current one", c->start, c->end, c->start, c->end);
	if (cli_services(c, &services))
		return 1;
	svc = ca_services_find(&services, service, &err);
	if (!svc)
		return cli_usage("%s", err.msg);
	one = *svc;
	one.cluster = svc->cluster || c->cluster;
	h = cli_open(c);
	if (!h)
		return 1;
	rc = ca_connections(h, &m, &cidr, &one, c->peer ? &peer : NULL, (unsigned)c->start,
			    (unsigned)c->end, &n, &err);
	ca_close(h);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (c->json)
		printf("{\"monitor\":\"%u,%u\",\"service\":\"%s\",\"start\":%lu,\"end\":%lu,"
		       "\"connections\":%" PRIu64 ",\"exact\":%s}\n", m.size, m.windows, svc->name,
		       c->start, c->end, n, rc == CA_INCOMPLETE ? "false" : "true");
	else
		printf("%" PRIu64 "\n", n);
	return rc == CA_INCOMPLETE ? incomplete_warning(one.cluster, &err) : 0;
}

/* Lines as Momentum's `inbound_audit show ip` prints them: the sessions
 * open now, then "Connections SIZE/K: N" for every window of every monitor. */
static int show_ip(struct ca_handle *h, const struct ca_cidr *cidr, const struct ca_service *svc,
		   const struct ca_addr *peer)
{
	const struct ca_config *cfg = ca_loaded_config(h);
	bool incomplete = false;
	struct ca_error err;
	uint64_t n;
	int rc;

	rc = ca_count(h, cidr, svc, peer, &n, &err);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	incomplete |= rc == CA_INCOMPLETE;
	printf("Sessions: %" PRIu64 "\n", n);
	for (unsigned i = 0; i < cfg->nr_monitors && i < CA_MAX_MONITORS; i++) {
		struct ca_monitor m = { cfg->mon[i].size, cfg->mon[i].windows };

		for (unsigned k = 0; k < m.windows; k++) {
			rc = ca_connections(h, &m, cidr, svc, peer, k, k, &n, &err);
			if (rc < 0)
				return cli_fail("%s", err.msg);
			incomplete |= rc == CA_INCOMPLETE;
			printf("Connections %u/%u: %" PRIu64 "\n", m.size, k, n);
		}
	}
	if (!cfg->nr_monitors)
		fprintf(stderr, "connaudit: no connection-rate monitor is loaded (load with "
			"--monitors \"300,6\" to keep rates)\n");
	return incomplete ? incomplete_warning(svc->cluster, &err) : 0;
}

int cmd_show(const struct cli *c)
{
	const struct ca_service *svc;
	struct ca_services services;
	struct ca_handle *h;
	struct ca_error err;
	struct ca_cidr cidr;
	struct ca_addr peer;
	int rc;

	if (c->argc != 2 || strcmp(c->argv[0], "ip"))
		return cli_usage("show takes `ip ADDR`, e.g. `connaudit show ip 192.0.2.7 "
				"--prefix 24`");
	if (ca_addr_parse(c->argv[1], &peer, &err))
		return cli_usage("%s", err.msg);
	if (cli_parse_group_prefix(c->prefix ? c->prefix : "32,128", &cidr))
		return EXIT_USAGE;
	if (cli_services(c, &services))
		return 1;
	svc = ca_services_find(&services, "SMTP", &err);
	if (!svc)
		return cli_fail("%s", err.msg);
	h = cli_open(c);
	if (!h)
		return 1;
	rc = show_ip(h, &cidr, svc, &peer);
	ca_close(h);
	return rc;
}
