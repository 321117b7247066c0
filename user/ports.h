/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ports.h - the table of audited local ports the kernel checks at admission. */
#ifndef CA_PORTS_H
#define CA_PORTS_H

#include "connaudit.h"

/* Set in `t` the bits of a port list such as "25,587,8000-8010".
 * Returns the number of ports it named, or -EINVAL quoting the bad item. */
int ca_ports_parse(const char *s, struct ca_ports *t, struct ca_error *err);

/* The table a load uses: every port of every service (built-ins and the
 * services file o->services) plus o->ports. Returns the number of ports set,
 * or a negative errno (bad services file, bad list). */
int ca_ports_build(const struct ca_load_opts *o, struct ca_ports *t, struct ca_error *err);

/* Whether port is set in t. */
static inline bool ca_port_isset(const struct ca_ports *t, uint16_t port)
{
	return (t->bits[port / 64] >> (port % 64)) & 1;
}

#endif
