// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_health_log.c - report changes of the auditor's health once, on
 * stderr, for the journal (see cli_health_log.h).
 *
 * A condition is something that makes a count possibly low. The gauges
 * (sessions missing from some count, sessions not counted at all),
 * underflows and an unloaded auditor are read as they are; a map running
 * full is an insert refused since the previous check (those are totals). While a count may be low, a line is
 * printed when a condition appears that the episode has not had yet
 * (conditions add up: a map refusing inserts every other check logs once);
 * once every count is exact, one line says so, and refusals that left the
 * counts exact are not news. So an episode is one line in, one line out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_health_log.h"

enum {
	HEALTH_INCOMPLETE = 1 << 0,
	HEALTH_PEERS_FULL = 1 << 1,
	HEALTH_PREFIXES_FULL = 1 << 2,
	HEALTH_MARKS_FULL = 1 << 3,
	HEALTH_UNCOUNTED = 1 << 4,
	HEALTH_UNDERFLOW = 1 << 5,
	HEALTH_RETIRED = 1 << 6,
	HEALTH_REFUSED = HEALTH_PEERS_FULL | HEALTH_PREFIXES_FULL | HEALTH_MARKS_FULL,
};

#define STATE_MAGIC	"connaudit-health 1"

const char *health_log_state_file(char *buf, size_t len)
{
	const char *v = getenv(HEALTH_LOG_STATE_ENV);
	const char *dir = getenv("RUNTIME_DIRECTORY");
	int n;

	if (v && *v)
		n = snprintf(buf, len, "%s", v);
	else if (dir && *dir)	/* several directories are ':'-separated: take the first */
		n = snprintf(buf, len, "%.*s/health", (int)strcspn(dir, ":"), dir);
	else
		return NULL;
	return n > 0 && (size_t)n < len ? buf : NULL;
}

void health_log_init(struct health_log *l, const char *state_file)
{
	char magic[32];
	unsigned flags;
	uint64_t at, peers, prefixes, marks;
	FILE *f;

	memset(l, 0, sizeof(*l));
	l->state_file = state_file;
	f = state_file ? fopen(state_file, "r") : NULL;
	if (!f)
		return;
	if (fgets(magic, sizeof(magic), f) && !strcmp(magic, STATE_MAGIC "\n") &&
	    fgets(l->pin_dir, sizeof(l->pin_dir), f) &&
	    fscanf(f, "%" SCNu64 " %u %" SCNu64 " %" SCNu64 " %" SCNu64, &at, &flags, &peers,
		   &prefixes, &marks) == 5) {
		l->pin_dir[strcspn(l->pin_dir, "\n")] = '\0';
		l->loaded_at = at;
		l->flags = flags;
		l->peers_full = peers;
		l->prefixes_full = prefixes;
		l->marks_full = marks;
		l->known = true;
	}
	fclose(f);
}

/* Written beside the file and renamed over it: a run killed half-way
 * leaves the previous state, not half of one. */
static int save(const struct health_log *l)
{
	char tmp[4096];
	FILE *f;
	int rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", l->state_file) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, STATE_MAGIC "\n%s\n%" PRIu64 " %u %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		l->pin_dir, l->loaded_at, l->flags, l->peers_full, l->prefixes_full, l->marks_full);
	rc = ferror(f) ? -EIO : 0;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, l->state_file))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* True when stderr is systemd's journal stream: then a "<N>" prefix sets
 * the line's priority (and on a terminal it would only be noise). */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return v && sscanf(v, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* The conditions now; the refusal counters are compared with the previous
 * check's when it was about the same load of the same auditor. */
static unsigned conditions(const struct health_log *prev, bool same_load,
			   const struct ca_health *hv)
{
	unsigned c = 0;

	if (hv->incomplete > 0)
		c |= HEALTH_INCOMPLETE;
	if (hv->peers_full > (same_load ? prev->peers_full : 0))
		c |= HEALTH_PEERS_FULL;
	if (hv->prefixes_full > (same_load ? prev->prefixes_full : 0))
		c |= HEALTH_PREFIXES_FULL;
	if (hv->marks_full > (same_load ? prev->marks_full : 0))
		c |= HEALTH_MARKS_FULL;
	if (hv->uncounted > 0)
		c |= HEALTH_UNCOUNTED;
	if (hv->underflow)
		c |= HEALTH_UNDERFLOW;
	if (hv->retired)
		c |= HEALTH_RETIRED;
	return c;
}

static void print_line(const char *pin_dir, unsigned now, bool again, const struct ca_health *hv)
{
	const char *prio = stderr_is_journal() ? (now ? "<4>" : "<5>") : "";
	const char *sep = "";

	if (!now) {
		fprintf(stderr, "%sconnaudit: %s: counts are exact again\n", prio, pin_dir);
		return;
	}
	fprintf(stderr, "%sconnaudit: %s: counts %s be low: ", prio, pin_dir,
		again ? "still may" : "may");
	if (now & HEALTH_INCOMPLETE) {
		fprintf(stderr, "%s%" PRId64 " live sessions missing from some count", sep,
			(int64_t)hv->incomplete);
		sep = "; ";
	}
	if (now & HEALTH_PEERS_FULL) {
		fprintf(stderr, "%s" CA_PIN_PEERS " ran full (%" PRIu64 " inserts refused since "
			"load: raise --max-peers)", sep, (uint64_t)hv->peers_full);
		sep = "; ";
	}
	if (now & HEALTH_PREFIXES_FULL) {
		fprintf(stderr, "%s" CA_PIN_PREFIXES " ran full (%" PRIu64 " inserts refused since "
			"load: raise --max-prefixes)", sep, (uint64_t)hv->prefixes_full);
		sep = "; ";
	}
	if (now & HEALTH_UNCOUNTED) {
		fprintf(stderr, "%s%" PRId64 " live sessions not counted at all", sep,
			(int64_t)hv->uncounted);
		sep = "; ";
	}
	if (now & HEALTH_MARKS_FULL) {
		fprintf(stderr, "%s" CA_PIN_MARKS " ran full (%" PRIu64 " sessions found it full "
			"since load: raise --max-sessions)", sep, (uint64_t)hv->marks_full);
		sep = "; ";
	}
	if (now & HEALTH_UNDERFLOW) {
		fprintf(stderr, "%s%" PRIu64 " decrements found no entry (until the next load)",
			sep, (uint64_t)hv->underflow);
		sep = "; ";
	}
	if (now & HEALTH_RETIRED)
		fprintf(stderr, "%sthe auditor was unloaded", sep);
	fputs("; see `connaudit status`\n", stderr);
}

int health_log_update(struct health_log *l, const char *pin_dir, const struct ca_config *cfg,
		      const struct ca_health *hv)
{
	bool same_auditor = l->known && !strcmp(l->pin_dir, pin_dir);
	bool same_load = same_auditor && l->loaded_at == cfg->loaded_at;
	unsigned prev = same_auditor ? l->flags : 0;
	unsigned now = conditions(l, same_load, hv);
	bool printed = false;

	bool exact = !(now & ~HEALTH_REFUSED);

	if (exact ? prev != 0 : (now & ~prev) != 0) {
		print_line(pin_dir, exact ? 0 : now, prev != 0, hv);
		printed = true;
	}
	l->known = true;
	snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", pin_dir);
	l->loaded_at = cfg->loaded_at;
	l->flags = exact ? 0 : prev | now;
	l->peers_full = hv->peers_full;
	l->prefixes_full = hv->prefixes_full;
	l->marks_full = hv->marks_full;
	if (l->state_file) {
		int rc = save(l);

		if (rc)
			return rc;
	}
	return printed;
}
