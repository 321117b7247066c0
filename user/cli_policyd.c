// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_policyd.c - connaudit policyd: a Postfix policy delegation server
 * (check_policy_service) that compares connaudit's session counts for the
 * client's network with the limits of a rules file.
 *
 * One ppoll() loop serves every connection; each is a small state machine
 * with its own input buffer (one request at most, POLICY_REQUEST_MAX) and
 * output buffer, on nonblocking sockets, so a slow or broken client holds
 * up no one. It listens on --listen, on sockets systemd passes
 * (LISTEN_FDS), or, with neither, serves stdin/stdout (Postfix's spawn).
 * SIGHUP reloads the rules and services files, keeping the old ones if the
 * new ones are bad; SIGTERM and SIGINT stop it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_policyd.h"
#include "errors.h"
#include "policy_request.h"
#include "policy_rules.h"
#include "store.h"
#include "textfile.h"

#define CONN_MAX		4096
#define OUT_MAX			2048	/* replies waiting for a slow reader */
#define REPLY_LINE_MAX		(POLICY_REPLY_MAX + 16)	/* "action=...\n\n" */
#define IDLE_TIMEOUT_S		600	/* Postfix drops idle ones after 300 s */
#define REQUEST_TIMEOUT_S	30	/* from a request's first byte to its end */
#define BAD_LOGS_PER_S		10	/* a flood of bad requests floods no log */

struct conn {
	int rfd, wfd;
	unsigned id;		/* for log lines */
	bool stdio;		/* fds 0 and 1: blocking, not ours to close */
	bool closing;		/* flush what is in out, then drain */
	bool draining;		/* answered and shut down for writing: input is
				 * dropped until EOF, so that closing with unread
				 * input does not reset the answer away */
	time_t last;		/* monotonic s of the last input */
	size_t in_len, out_off, out_len;
	char out[OUT_MAX];
	char in[POLICY_REQUEST_MAX];
};

enum counts_state { COUNTS_EXACT, COUNTS_INCOMPLETE, COUNTS_UNAVAILABLE };

struct policyd {
	const struct cli *c;
	struct policy_rules *rules;
	struct ca_services services;
	struct ca_handle *h;
	uint32_t netns;
	enum counts_state state;
	bool use_syslog;		/* stderr is the client (spawn) */
	struct policyd_listeners listen;
	bool accept_paused;
	struct conn **conn;
	unsigned nconn, conn_max, next_id;
	struct pollfd *pfd;
	time_t last_tick;
	unsigned bad_logged;	/* bad requests logged this second */
};

static volatile sig_atomic_t got_hup, got_term;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void plog(const struct policyd *d, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void plog(const struct policyd *d, int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (d->use_syslog) {
		vsyslog(LOG_MAIL | prio, fmt, ap);
	} else {
		fputs("connaudit policyd: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* ---- rules ---------------------------------------------------------------- */

/* Rules and services from their files into *out, all checked. */
static int load_rules(const struct cli *c, struct policy_rules *out, struct ca_services *svcs,
		      struct ca_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = ca_services_load(svcs, c->config, err);
	if (rc)
		return rc;
	rc = ca_read_textfile(c->rules, &text, &len);
	if (rc)
		return ca_errf(err, rc, "rules file %s: %s", c->rules, ca_textfile_error(rc));
	rc = policy_rules_parse(out, text, len, c->rules, err);
	free(text);
	return rc ? rc : policy_rules_bind(out, svcs, err);
}

static void warn_slow_rules(const struct policyd *d);

static void reload(struct policyd *d)
{
	struct policy_rules *next = calloc(1, sizeof(*next));
	struct ca_services svcs;
	struct ca_error err;

	if (!next) {
		plog(d, LOG_ERR, "reload: out of memory; keeping the rules loaded before");
		return;
	}
	if (load_rules(d->c, next, &svcs, &err)) {
		plog(d, LOG_ERR, "reload failed, keeping the %u rules loaded before: %s",
		     d->rules->n, err.msg);
		free(next);
		return;
	}
	free(d->rules);
	d->rules = next;
	d->services = svcs;
	plog(d, LOG_INFO, "reloaded %u rules from %s (on_error = %s)", next->n, d->c->rules,
	     next->on_error == POLICY_FAIL_OPEN ? "dunno" : "defer");
	if (d->h)
		warn_slow_rules(d);
}

/* ---- counting ------------------------------------------------------------- */

static const char *state_name(enum counts_state s)
{
	return s == COUNTS_EXACT ? "exact" : s == COUNTS_INCOMPLETE ? "incomplete" : "unavailable";
}

/* Log a change of the counts' state once, not per request. */
static void set_state(struct policyd *d, enum counts_state s, const char *why)
{
	if (s == d->state)
		return;
	d->state = s;
	if (s == COUNTS_EXACT)
		plog(d, LOG_NOTICE, "counts are exact again: answering from the rules");
	else
		plog(d, LOG_WARNING, "counts are %s (%s): until they are back, requests no rule "
		     "rejects are answered %s (on_error = %s)", state_name(s), why,
		     d->rules->on_error == POLICY_FAIL_OPEN ? "DUNNO" : "with a deferral",
		     d->rules->on_error == POLICY_FAIL_OPEN ? "dunno" : "defer");
}

/* Whether the counts of a family/len prefix on nports ports come from a few
 * lookups (user/plan.c) rather than a scan of every peer. */
static bool looked_up(const struct ca_config *cfg, uint8_t family, unsigned len,
		      unsigned nports)
{
	struct ca_prefix p = { .family = family, .len = (uint8_t)len };
	struct ca_plan plan;

	return ca_plan_prefix(cfg, &p, nports, &plan);
}

/* A rule over a prefix length that is neither aggregated nor the sum of a
 * few aggregates scans every peer on each request: say so once per open, it
 * is a setup mistake. */
static void warn_slow_rules(const struct policyd *d)
{
	const struct ca_config *cfg = ca_loaded_config(d->h);

	for (unsigned i = 0; i < d->rules->n; i++) {
		const struct policy_rule *r = &d->rules->rule[i];
		unsigned nports = r->svc.nports;
		/* A bare /N over 32 applies to IPv6 clients only. */
		bool v4 = r->cidr.v4_len > 32 || looked_up(cfg, CA_AF_INET, r->cidr.v4_len, nports);
		bool v6 = looked_up(cfg, CA_AF_INET6, r->cidr.v6_len, nports);
		char what[48];

		if (r->cidr.kind != CA_CIDR_PEER || (v4 && v6))
			continue;
		if (!v4 && !v6)
			snprintf(what, sizeof(what), "IPv4 /%u and IPv6 /%u", r->cidr.v4_len,
				 r->cidr.v6_len);
		else
			snprintf(what, sizeof(what), "%s /%u", v4 ? "IPv6" : "IPv4",
				 v4 ? r->cidr.v6_len : r->cidr.v4_len);
		plog(d, LOG_WARNING, "%s:%u: %s: requests for %s scan every peer: the auditor "
		     "aggregates neither that length nor one a few bits longer (at most %u "
		     "lookups a request over the service's ports): add one to `connaudit load "
		     "--prefixes`, or write /N,/M", d->rules->origin, r->line, r->cidr_text, what,
		     CA_PLAN_MAX_LOOKUPS);
	}
}

static int open_handle(struct policyd *d, struct ca_error *err)
{
	int rc = ca_open(&d->h, d->c->pin_dir, err);

	if (rc)
		return rc;
	ca_set_netns(d->h, d->netns);
	warn_slow_rules(d);
	return 0;
}

/* The count a rule compares with its limit: open sessions, or connections
 * in the rule's windows of a monitor (a monitor the auditor was not loaded
 * with fails, and on_error decides). inbound_cidr's service counts on every
 * node (ca_count adds the cluster agent's view, flagged stale when old). */
static int rule_count(struct policyd *d, const struct policy_rule *r,
		      const struct ca_addr *client, uint64_t *n, struct ca_error *err)
{
	if (r->rate)
		return ca_connections(d->h, &r->mon, &r->cidr, &r->svc, client, r->first_window,
				      r->last_window, n, err);
	return ca_count(d->h, &r->cidr, &r->svc, client, n, err);
}

/* A reply for "no rule could decide": on_error's. */
static void on_error_action(const struct policyd *d, char *action, size_t len)
{
	if (d->rules->on_error == POLICY_FAIL_OPEN)
		snprintf(action, len, "DUNNO");
	else
		snprintf(action, len, "%s", d->rules->on_error_reply[0] ?
			 d->rules->on_error_reply : POLICY_DEFER_REPLY);
}

static void reject(const struct policyd *d, const struct policy_request *req,
		   const struct policy_rule *r, const struct ca_prefix *p, uint64_t n,
		   bool incomplete, char *action, size_t len)
{
	char state[POLICY_FIELD_MAX * 2];

	if (r->reply[0])
		snprintf(action, len, "%s", r->reply);
	else
		policy_default_reply(r, p, action, len);
	ca_quote(req->protocol_state, strlen(req->protocol_state), state, sizeof(state));
	plog(d, LOG_NOTICE, "reject %s (%s): rule %s:%u \"%s%s%s %s %u\": %" PRIu64 " %s%s",
	     req->client_text, state[0] ? state : "no protocol_state", d->rules->origin,
	     r->line, r->service, r->rate ? " rate " : "", r->rate ? r->monitor : "",
	     r->cidr_text, r->limit, n, r->rate ? "connections" : "sessions",
	     incomplete ? " at least (counts incomplete)" : "");
}

/* Evaluate the rules for one client. Returns 1 when a rule rejected, 0 when
 * none did (*incomplete: some count was a lower bound), or a negative errno
 * when counting failed. */
static int evaluate(struct policyd *d, const struct policy_request *req, bool *incomplete,
		    char *action, size_t len, struct ca_error *err)
{
	*incomplete = false;
	for (unsigned i = 0; i < d->rules->n; i++) {
		const struct policy_rule *r = &d->rules->rule[i];
		struct ca_prefix p;
		uint64_t n = 0;
		int rc;

		if (!policy_rule_prefix(r, &req->client, &p))
			continue;
		if (!d->h) {
			rc = open_handle(d, err);
			if (rc)
				return rc;
		}
		rc = rule_count(d, r, &req->client, &n, err);
		if (rc < 0)
			return rc;
		*incomplete |= rc == CA_INCOMPLETE;
		/* A lower bound over the limit is over it for sure. */
		if (n > r->limit) {
			reject(d, req, r, &p, n, rc == CA_INCOMPLETE, action, len);
			return 1;
		}
	}
	return 0;
}

static void decide(struct policyd *d, const struct policy_request *req, char *action,
		   size_t len)
{
	struct ca_error err;
	bool incomplete;
	int rc = evaluate(d, req, &incomplete, action, len, &err);

	if (rc < 0 && d->h) {
		/* Unloaded or reloaded under us: one retry on fresh pins. */
		ca_close(d->h);
		d->h = NULL;
		rc = evaluate(d, req, &incomplete, action, len, &err);
	}
	if (rc == 1) {
		if (!incomplete)
			set_state(d, COUNTS_EXACT, NULL);
		return;
	}
	if (rc < 0) {
		set_state(d, COUNTS_UNAVAILABLE, err.msg);
		on_error_action(d, action, len);
		return;
	}
	if (incomplete) {
		set_state(d, COUNTS_INCOMPLETE, "the kernel could not count some sessions; "
			  "see `connaudit status`");
		on_error_action(d, action, len);
		return;
	}
	set_state(d, COUNTS_EXACT, NULL);
	snprintf(action, len, "DUNNO");
}

/* ---- connections ---------------------------------------------------------- */

static void conn_reply(struct conn *c, const char *action)
{
	int n = snprintf(c->out + c->out_len, OUT_MAX - c->out_len, "action=%s\n\n", action);

	if (n > 0 && (size_t)n < OUT_MAX - c->out_len)
		c->out_len += (size_t)n;
}

/* Answer every whole request in the input, while the output has room. */
static void conn_process(struct policyd *d, struct conn *c)
{
	while (!c->closing && OUT_MAX - c->out_len >= REPLY_LINE_MAX) {
		struct policy_request req;
		char action[REPLY_LINE_MAX];
		struct ca_error err;
		size_t used;
		int rc = policy_request_parse(c->in, c->in_len, &req, &used, &err);

		if (rc == 0 && used == 0)
			return;
		if (rc == 0) {
			decide(d, &req, action, sizeof(action));
		} else {
			on_error_action(d, action, sizeof(action));
			if (++d->bad_logged <= BAD_LOGS_PER_S)
				plog(d, LOG_WARNING, "connection %u: bad request, answered %s%s: %s%s",
				     c->id, action, rc == -EMSGSIZE ? " and closed" : "", err.msg,
				     d->bad_logged == BAD_LOGS_PER_S ?
				     " (no more such lines this second)" : "");
		}
		conn_reply(c, action);
		if (rc == -EMSGSIZE) {
			c->closing = true;
			used = c->in_len;
		}
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
}

/* Write what is pending. Returns -1 when the connection is dead. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = c->stdio ? write(c->wfd, c->out + c->out_off, c->out_len - c->out_off)
				     : send(c->wfd, c->out + c->out_off, c->out_len - c->out_off,
					    MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Read, answer, write. Returns -1 when the connection is to be closed. */
static int conn_work(struct policyd *d, struct conn *c, bool readable)
{
	if (c->draining) {
		ssize_t n = readable ? read(c->rfd, c->in, sizeof(c->in)) : -1;

		return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ? -1 : 0;
	}
	if (readable && !c->closing && c->in_len < sizeof(c->in)) {
		ssize_t n = read(c->rfd, c->in + c->in_len, sizeof(c->in) - c->in_len);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return -1;
		if (n > 0) {
			c->in_len += (size_t)n;
			c->last = now_s();
		}
	}
	for (;;) {
		size_t before = c->in_len;

		conn_process(d, c);
		if (conn_flush(c))
			return -1;
		if (c->out_len || c->in_len == before)
			break;	/* blocked on the reader, or nothing more to answer */
	}
	if (!c->closing || c->out_len)
		return 0;
	if (c->stdio || shutdown(c->wfd, SHUT_WR))
		return -1;
	c->draining = true;
	c->in_len = 0;
	return 0;
}

static struct conn *conn_new(struct policyd *d, int rfd, int wfd, bool stdio)
{
	struct conn *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	c->rfd = rfd;
	c->wfd = wfd;
	c->stdio = stdio;
	c->closing = c->draining = false;
	c->in_len = c->out_off = c->out_len = 0;
	c->last = now_s();
	c->id = ++d->next_id;
	d->conn[d->nconn++] = c;
	return c;
}

static void conn_close(struct policyd *d, unsigned i)
{
	struct conn *c = d->conn[i];

	if (!c->stdio)
		close(c->rfd);
	free(c);
	d->conn[i] = d->conn[--d->nconn];
	d->accept_paused = false;
}

static void accept_all(struct policyd *d, int lfd)
{
	while (d->nconn < d->conn_max) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				plog(d, LOG_WARNING, "cannot accept: %s; pausing for a second",
				     strerror(errno));
				d->accept_paused = true;
			}
			return;
		}
		if (!conn_new(d, fd, fd, false))
			close(fd);
	}
	d->accept_paused = true;	/* at conn_max: resumes when one closes */
}

/* Idle and stalled connections go; a paused accept is retried. */
static void tick(struct policyd *d)
{
	time_t now = now_s();

	if (now == d->last_tick)
		return;
	d->last_tick = now;
	d->bad_logged = 0;
	if (d->nconn < d->conn_max)
		d->accept_paused = false;
	if (d->h && ca_handle_stale(d->h)) {
		ca_close(d->h);
		d->h = NULL;
	}
	for (unsigned i = d->nconn; i-- > 0; ) {
		struct conn *c = d->conn[i];
		bool busy = c->in_len || c->draining;
		time_t limit = busy ? REQUEST_TIMEOUT_S : IDLE_TIMEOUT_S;

		if (c->stdio || now - c->last <= limit)
			continue;
		if (c->in_len && !c->draining)
			plog(d, LOG_WARNING, "connection %u: no whole request within %d s: closed",
			     c->id, REQUEST_TIMEOUT_S);
		conn_close(d, i);
	}
}

/* ---- the loop ------------------------------------------------------------- */

static int serve(struct policyd *d, const sigset_t *wait_mask)
{
	bool stdio = d->listen.n == 0;

	while (!got_term) {
		struct timespec timeout = { 1, 0 };
		unsigned nl = d->accept_paused ? 0 : d->listen.n, n = 0;
		int rc;

		for (unsigned i = 0; i < nl; i++)
			d->pfd[n++] = (struct pollfd){ .fd = d->listen.fd[i], .events = POLLIN };
		for (unsigned i = 0; i < d->nconn; i++) {
			struct conn *c = d->conn[i];
			bool out = c->out_len > 0;

			d->pfd[n++] = (struct pollfd){ .fd = out ? c->wfd : c->rfd,
						       .events = out ? POLLOUT : POLLIN };
		}
		rc = ppoll(d->pfd, n, &timeout, wait_mask);
		if (rc < 0 && errno != EINTR) {
			plog(d, LOG_ERR, "poll: %s", strerror(errno));
			return 1;
		}
		if (got_hup) {
			got_hup = 0;
			reload(d);
		}
		tick(d);
		if (rc <= 0)
			continue;
		/* Connections first: accept_all and conn_close reorder d->conn. */
		for (unsigned i = d->nconn; i-- > 0; ) {
			short ev = i < n - nl ? d->pfd[nl + i].revents : 0;

			if (ev && conn_work(d, d->conn[i], ev & (POLLIN | POLLHUP | POLLERR))) {
				conn_close(d, i);
				if (stdio)
					return 0;
			}
		}
		for (unsigned i = 0; i < nl; i++)
			if (d->pfd[i].revents & POLLIN)
				accept_all(d, d->listen.fd[i]);
	}
	plog(d, LOG_INFO, "stopping");
	return 0;
}

static void cleanup(struct policyd *d)
{
	while (d->nconn)
		conn_close(d, d->nconn - 1);
	policyd_unlisten(&d->listen);
	ca_close(d->h);
	free(d->rules);
	free(d->conn);
	free(d->pfd);
}

static unsigned conn_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > CONN_MAX + 64)
		return CONN_MAX;
	return rl.rlim_cur > 80 ? (unsigned)rl.rlim_cur - 64 : 16;
}

int cmd_policyd(const struct cli *c)
{
	struct policyd d = { .c = c };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, wait_mask;
	struct ca_error err;
	int rc = 1;

	if (!c->rules)
		return cli_usage("policyd needs --rules FILE (see POLICY RULES in `man "
				"connaudit`)");
	if (cli_netns(c, &d.netns))
		return 1;
	d.rules = calloc(1, sizeof(*d.rules));
	d.conn_max = conn_limit();
	d.conn = calloc(d.conn_max + 1, sizeof(*d.conn));
	d.pfd = calloc(d.conn_max + 1 + POLICYD_LISTEN_MAX, sizeof(*d.pfd));
	if (!d.rules || !d.conn || !d.pfd) {
		cli_fail("out of memory");
		goto out;
	}
	/* Under spawn, even an error at start must not reach the client. */
	d.use_syslog = !c->listen && !getenv("LISTEN_FDS") && policyd_stderr_is_client();
	if (d.use_syslog)
		openlog("connaudit-policyd", LOG_PID, LOG_MAIL);
	if (load_rules(c, d.rules, &d.services, &err)) {
		plog(&d, LOG_ERR, "%s", err.msg);
		goto out;
	}
	if (policyd_listen(&d.listen, c->listen))
		goto out;
	if (d.listen.n == 0) {
		if (!conn_new(&d, 0, 1, true)) {
			cli_fail("out of memory");
			goto out;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	/* Signals wait while a request is handled; ppoll takes them. */
	sigprocmask(SIG_BLOCK, &block, &wait_mask);

	if (open_handle(&d, &err))
		set_state(&d, COUNTS_UNAVAILABLE, err.msg);
	if (d.listen.n)
		plog(&d, LOG_INFO, "serving %u rules from %s (on_error = %s) on %s", d.rules->n,
		     c->rules, d.rules->on_error == POLICY_FAIL_OPEN ? "dunno" : "defer",
		     c->listen ? c->listen : "the sockets systemd passed");
	rc = serve(&d, &wait_mask);
out:
	cleanup(&d);
	return rc;
}
