/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cli_health_log.h - one line in the journal when the auditor's counts
 * degrade, and one when they are exact again; not one per check.
 *
 * Whatever checks the health periodically (the metrics timer, the cluster
 * agent, the policy server) keeps one struct health_log, reads ca_health as
 * usual, and passes it to health_log_update after each read. A process that
 * lives across checks keeps the state in memory (state_file NULL); one that
 * runs once per check (connaudit-metrics.service) keeps it in a small file
 * between runs (health_log_state_file says which).
 *
 * The lines go to stderr, which systemd hands to the journal; there they
 * carry a syslog priority prefix: <4> (warning) when counts may be low, <5>
 * (notice) when they are exact again.
 */
#ifndef CA_CLI_HEALTH_LOG_H
#define CA_CLI_HEALTH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connaudit.h"

#define HEALTH_LOG_STATE_ENV	"CONNAUDIT_HEALTH_STATE"

/* What the last check saw. Plain data: zero it, or health_log_init. */
struct health_log {
	const char *state_file;		/* NULL: remembered in memory only */
	bool known;			/* there was a previous check */
	char pin_dir[256];		/* the auditor it was about */
	uint64_t loaded_at;		/* ... and when that auditor was loaded */
	unsigned flags;			/* HEALTH_* conditions seen then */
	uint64_t peers_full, prefixes_full, marks_full;	/* the refusal totals then */
};

/* The file for a process that runs once per check: $CONNAUDIT_HEALTH_STATE,
 * else $RUNTIME_DIRECTORY/health (systemd's RuntimeDirectory=), else NULL
 * (then every run is a first check: a degraded auditor is reported each
 * time, an exact one never). Writes into buf; returns buf or NULL. */
const char *health_log_state_file(char *buf, size_t len);

/* No previous check, or the one kept in state_file (a missing or unreadable
 * file is no previous check). */
void health_log_init(struct health_log *l, const char *state_file);

/* Compare the health of the auditor at pin_dir (cfg: its config, hv: its
 * health) with the previous check; print one line to stderr when the
 * conditions changed; remember this check (in the state file if any).
 * Returns 1 when it printed a line, 0 when not, or a negative errno when the
 * state file could not be written (the line is printed anyway). */
int health_log_update(struct health_log *l, const char *pin_dir, const struct ca_config *cfg,
		      const struct ca_health *hv);

#endif
