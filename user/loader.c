// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loader.c - load, replace and unload the auditor.
 *
 * A fresh load builds everything in a staging dir next to the pin dir and
 * renames it into place as its last step, so that a loader killed at any
 * point leaves either a complete auditor or no pin dir at all (a dead
 * loader's staging dir is removed by the next load or unload).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cluster.h"
#include "errors.h"
#include "connaudit.skel.h"
#include "ports.h"
#include "seed.h"
#include "sysfs.h"

#define DEFAULT_MAX_PEERS	65536
#define DEFAULT_MAX_PREFIXES	65536
#define DEFAULT_MAX_SESSIONS	65536
#define DEFAULT_MAX_RATES	65536
#define LOCK_WAIT_MS		30000
#define LOCK_POLL_MS		50
#define STAGING_INFIX		"-staging-"  /* bpffs forbids dots in names */
/* tp_btf, socket cookies from tracing programs, BPF compare-and-swap (5.12). */
#define MIN_KERNEL_MAJOR	5
#define MIN_KERNEL_MINOR	15	/* bpf_for_each_map_elem (5.13), batched iter/tcp (5.15) */

/* The link pins, in the order of the skeleton's links in pin_links(). */
static const char *const link_pins[] = { CA_PIN_LINK_STATE, CA_PIN_LINK_TWIN,
					 CA_PIN_LINK_SOCKOPS };
#define LINK_PINS	(int)(sizeof(link_pins) / sizeof(link_pins[0]))

static const uint8_t default_v4[] = { 24, 16 };
static const uint8_t default_v6[] = { 64, 48 };

/* The tail of libbpf's warnings during a load: the verifier's last words. */
static char libbpf_tail[200];

static int keep_libbpf_tail(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	if (getenv("CONNAUDIT_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (n > 0) {	/* the end of a long line says the most */
		size_t keep = (size_t)n < sizeof(libbpf_tail) ? (size_t)n : sizeof(libbpf_tail) - 1;

		memcpy(libbpf_tail, line + n - keep, keep);
		libbpf_tail[keep] = '\0';
	}
	return 0;
}

static void progress(const struct ca_load_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->quiet)
		return;
	va_start(ap, fmt);
	fputs("connaudit: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int check_kernel(struct ca_error *err)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		return ca_errf(err, -EOPNOTSUPP, "this kernel has no BTF (/sys/kernel/btf/vmlinux "
			       "is missing): connaudit needs CONFIG_DEBUG_INFO_BTF=y");
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major < MIN_KERNEL_MAJOR || (major == MIN_KERNEL_MAJOR && minor < MIN_KERNEL_MINOR)))
		return ca_errf(err, -EOPNOTSUPP, "kernel %s is too old: connaudit needs %d.%d or "
			       "later (BPF compare-and-swap, socket cookies from tracing programs)",
			       u.release, MIN_KERNEL_MAJOR, MIN_KERNEL_MINOR);
	return 0;
}

static int permission_error(struct ca_error *err, int rc, const char *what)
{
	return ca_errf(err, rc, "%s: %s%s", what, strerror(-rc),
		       rc == -EPERM || rc == -EACCES ? " (run as root: loading needs CAP_BPF, "
		       "CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN)" : "");
}

/* The commands that act on this pin dir, spelled with --pin-dir unless it
 * is the default. */
static int already_loaded(const char *pin_dir, struct ca_error *err)
{
	bool dflt = !strcmp(pin_dir, CA_DEFAULT_PIN_DIR);

	return ca_errf(err, -EEXIST, "already loaded at %s; `connaudit load --replace%s%s` "
		       "swaps the programs and keeps the counts, `connaudit unload%s%s` "
		       "removes it", pin_dir, dflt ? "" : " --pin-dir ", dflt ? "" : pin_dir,
		       dflt ? "" : " --pin-dir ", dflt ? "" : pin_dir);
}

/* Serialise loads and unloads under one parent dir; the lock dies with us.
 * A second command waits for the first (so that a second `load` then sees
 * the first one's result and says so) but not forever. */
static int lock_parent(const char *pin_dir, struct ca_error *err)
{
	char buf[PATH_MAX];
	int fd, rc = 0;

	snprintf(buf, sizeof(buf), "%s", pin_dir);
	fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return permission_error(err, -errno, "cannot open the pin dir's parent");
	for (int waited_ms = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited_ms += LOCK_POLL_MS) {
		if (errno != EWOULDBLOCK)
			rc = ca_errf(err, -errno, "cannot lock %s: %s", buf, strerror(errno));
		else if (waited_ms >= LOCK_WAIT_MS)
			rc = ca_errf(err, -EBUSY, "another connaudit load or unload has held %s "
				     "for %d s; try again when it has finished", buf,
				     LOCK_WAIT_MS / 1000);
		if (rc) {
			close(fd);
			return rc;
		}
		usleep(LOCK_POLL_MS * 1000);
	}
	return fd;
}

/* Tell readers that still hold these maps open that nothing updates them
 * any more (they check ca_health on every query). */
static void retire_maps(const char *dir)
{
	char path[PATH_MAX];
	struct ca_health *h;
	int fd;

	ca_join_path(path, sizeof(path), dir, CA_PIN_HEALTH);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h != MAP_FAILED) {
		__atomic_store_n(&h->retired, 1, __ATOMIC_RELEASE);
		munmap(h, sizeof(*h));
	}
	close(fd);
}

/* Remove every pin in dir, links first so that counting stops before the
 * maps are retired and go, then dir itself. Returns 0 or -errno. */
static int remove_pin_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	for (int i = 0; i < LINK_PINS; i++) {
		ca_join_path(path, sizeof(path), dir, link_pins[i]);
		unlink(path);
	}
	retire_maps(dir);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		ca_join_path(path, sizeof(path), dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Remove staging dirs left by loaders that died before publishing. Called
 * under the lock, which a live loader holds until it has published: every
 * staging dir found here is dead, whatever its pid says now. */
static void remove_dead_staging(const char *pin_dir)
{
	char parent[PATH_MAX], base[NAME_MAX + 1], prefix[NAME_MAX + 16], path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(parent, sizeof(parent), "%s", pin_dir);
	snprintf(base, sizeof(base), "%s", basename(parent));
	snprintf(prefix, sizeof(prefix), "%s" STAGING_INFIX, base);
	d = opendir(dirname(parent));
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 ||
		    ca_join_path(path, sizeof(path), parent, e->d_name))
			continue;
		remove_pin_dir(path);
	}
	closedir(d);
}

static bool pin_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];

	ca_join_path(path, sizeof(path), dir, name);
	return access(path, F_OK) == 0;
}

/* The wall clock the BPF side reckons windows by: CLOCK_BOOTTIME plus this
 * offset, taken now. */
static int64_t realtime_offset_ns(void)
{
	struct timespec rt, boot;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	return (int64_t)(rt.tv_sec - boot.tv_sec) * 1000000000 + (rt.tv_nsec - boot.tv_nsec);
}

/* Connection-rate monitors: each gets its run of slots in struct ca_rate. */
static int rates_config(const struct ca_load_opts *o, struct ca_config *c, struct ca_error *err)
{
	unsigned base = 0;

	if (o->nr_monitors > CA_MAX_MONITORS)
		return ca_errf(err, -EINVAL, "%u monitors: at most %u", o->nr_monitors,
			       CA_MAX_MONITORS);
	for (unsigned i = 0; i < o->nr_monitors; i++) {
		const struct ca_monitor *m = &o->monitors[i];

		if (!m->size || m->size > CA_MONITOR_SIZE_MAX || !m->windows ||
		    base + m->windows > CA_RATE_SLOTS)
			return ca_errf(err, -EINVAL, "monitor %u,%u: sizes are 1..%u s, and at "
				       "most %u windows over all monitors", m->size, m->windows,
				       CA_MONITOR_SIZE_MAX, CA_RATE_SLOTS);
		c->mon[i] = (struct ca_monitor_cfg){ .size = m->size,
						     .windows = (__u8)m->windows,
						     .base = (__u8)base };
		base += m->windows;
	}
	c->nr_monitors = o->nr_monitors;
	c->max_rates = !o->nr_monitors ? 1 : o->max_rates ? o->max_rates : DEFAULT_MAX_RATES;
	c->realtime_offset_ns = realtime_offset_ns();
	return 0;
}

static void config_from_opts(const struct ca_load_opts *o, uint64_t cgroup_id,
			     struct ca_config *c)
{
	memset(c, 0, sizeof(*c));
	c->magic = CA_ABI_MAGIC;
	c->abi_version = CA_ABI_VERSION;
	c->flags = (o->cgroup ? CA_CFG_CGROUP : 0) | (o->all_ports ? CA_CFG_ALL_PORTS : 0);
	c->cgroup_id = cgroup_id;
	if (o->nr_v4 || o->nr_v6) {
		c->nr_v4 = o->nr_v4;
		c->nr_v6 = o->nr_v6;
		memcpy(c->v4, o->v4, sizeof(c->v4));
		memcpy(c->v6, o->v6, sizeof(c->v6));
	} else {
		c->nr_v4 = sizeof(default_v4);
		c->nr_v6 = sizeof(default_v6);
		memcpy(c->v4, default_v4, sizeof(default_v4));
		memcpy(c->v6, default_v6, sizeof(default_v6));
	}
	c->max_peers = o->max_peers ? o->max_peers : DEFAULT_MAX_PEERS;
	c->max_prefixes = o->max_prefixes ? o->max_prefixes : DEFAULT_MAX_PREFIXES;
	c->max_sessions = o->max_sessions ? o->max_sessions : DEFAULT_MAX_SESSIONS;
	c->loaded_at = (uint64_t)time(NULL);
}

/* ca_table: room for every entry of both index maps twice over (a key's
 * probe sequence then finds a free slot all but always), a power of two,
 * and a random seed, so that nobody can aim addresses at one sequence. */
static int table_config(struct ca_config *c, struct ca_error *err)
{
	uint64_t want = 2 * ((uint64_t)c->max_peers + c->max_prefixes), slots = 1;

	while (slots < want)
		slots <<= 1;
	if (slots > CA_TABLE_MAX_SLOTS)
		return ca_errf(err, -EINVAL, "--max-peers %u and --max-prefixes %u need %llu "
			       "count slots, more than %u: give smaller sizes", c->max_peers,
			       c->max_prefixes, (unsigned long long)slots, CA_TABLE_MAX_SLOTS);
	if (getrandom(&c->table_seed, sizeof(c->table_seed), 0) != sizeof(c->table_seed))
		return ca_errf(err, -EIO, "cannot read random bytes for the table seed");
	c->table_slots = (__u32)slots;
	return 0;
}

/* No descriptor may change a count from now on; the programs still do. */
static int freeze_table(struct connaudit_bpf *skel, struct ca_error *err)
{
	if (bpf_map_freeze(bpf_map__fd(skel->maps.ca_table)))
		return ca_errf(err, -errno, "cannot freeze %s: %s", CA_PIN_TABLE, strerror(errno));
	if (bpf_map_freeze(bpf_map__fd(skel->maps.ca_table_used)))
		return ca_errf(err, -errno, "cannot freeze %s: %s", CA_PIN_TABLE_USED,
			       strerror(errno));
	return 0;
}

/* Open and load the skeleton with maps pinned (or reused) under pin_root. */
static int open_and_load(struct connaudit_bpf **out, const char *pin_root,
			 const struct ca_config *c, struct ca_error *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root);
	struct connaudit_bpf *skel;
	int rc;

	libbpf_tail[0] = '\0';
	skel = connaudit_bpf__open_opts(&oo);
	if (!skel)
		return ca_errf(err, -errno, "cannot open the BPF object: %s", strerror(errno));
	skel->rodata->cfg = *c;
	bpf_map__set_max_entries(skel->maps.ca_peers, c->max_peers);
	bpf_map__set_max_entries(skel->maps.ca_prefixes, c->max_prefixes);
	bpf_map__set_max_entries(skel->maps.ca_marks, c->max_sessions);
	bpf_map__set_max_entries(skel->maps.ca_rates, c->max_rates);
	bpf_map__set_max_entries(skel->maps.ca_table, c->table_slots);
	bpf_map__set_max_entries(skel->maps.ca_table_used, CA_TABLE_USED_WORDS(c->table_slots));
	bpf_program__set_autoload(skel->progs.on_sockops, c->flags & CA_CFG_CGROUP);
	rc = connaudit_bpf__load(skel);
	if (rc) {
		connaudit_bpf__destroy(skel);
		if (rc == -EPERM || rc == -EACCES)
			return permission_error(err, rc, "cannot load the BPF programs");
		return ca_errf(err, rc, "the kernel refused the BPF programs: %s [%s]; run with "
			       "CONNAUDIT_DEBUG=1 to see the verifier log", strerror(-rc),
			       libbpf_tail);
	}
	*out = skel;
	return 0;
}

/* Attach the live programs: the tracepoint and its twin always,
 * sock_ops when scoped. */
static int attach_live(struct connaudit_bpf *skel, int cgroup_fd, struct ca_error *err)
{
	skel->links.on_set_state = bpf_program__attach(skel->progs.on_set_state);
	if (!skel->links.on_set_state)
		return permission_error(err, -errno,
					"cannot attach to tp_btf/inet_sock_set_state");
	skel->links.on_state_twin = bpf_program__attach(skel->progs.on_state_twin);
	if (!skel->links.on_state_twin)
		return permission_error(err, -errno,
					"cannot attach the second tp_btf/inet_sock_set_state program");
	if (cgroup_fd < 0)
		return 0;
	skel->links.on_sockops = bpf_program__attach_cgroup(skel->progs.on_sockops, cgroup_fd);
	if (!skel->links.on_sockops)
		return permission_error(err, -errno, "cannot attach sock_ops to the cgroup");
	return 0;
}

/* Pin the live links in dir under their names plus suffix. */
static int pin_links(struct connaudit_bpf *skel, const char *dir, const char *suffix,
		     struct ca_error *err)
{
	struct bpf_link *links[] = { skel->links.on_set_state, skel->links.on_state_twin,
				     skel->links.on_sockops };
	char path[PATH_MAX];

	for (int i = 0; i < LINK_PINS; i++) {
		if (!links[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s%s", dir, link_pins[i], suffix);
		if (bpf_link__pin(links[i], path))
			return ca_errf(err, -errno, "cannot pin %s: %s", path, strerror(errno));
	}
	return 0;
}

static int write_config(struct connaudit_bpf *skel, const struct ca_config *c,
			struct ca_error *err)
{
	__u32 zero = 0;

	if (bpf_map__update_elem(skel->maps.ca_config, &zero, sizeof(zero), c, sizeof(*c), 0))
		return ca_errf(err, -errno, "cannot write ca_config: %s", strerror(errno));
	return 0;
}

static int write_ports(struct connaudit_bpf *skel, const struct ca_ports *t,
		       struct ca_error *err)
{
	__u32 zero = 0;

	if (bpf_map__update_elem(skel->maps.ca_ports, &zero, sizeof(zero), t, sizeof(*t), 0))
		return ca_errf(err, -errno, "cannot write ca_ports: %s", strerror(errno));
	return 0;
}

/* The port table o asks for, its size in c->nr_ports, and a progress line. */
static int ports_from_opts(const struct ca_load_opts *o, struct ca_ports *t,
			   struct ca_config *c, struct ca_error *err)
{
	int n = ca_ports_build(o, t, err);

	if (n < 0)
		return n;
	c->nr_ports = (uint32_t)n;
	if (o->all_ports)
		progress(o, "auditing sessions on every local port (--all-ports)");
	else
		progress(o, "auditing sessions on %d local port%s (the services' and --ports)",
			 n, n == 1 ? "" : "s");
	return 0;
}

/* Seeding cannot make room: if some session found a map full, say so now
 * rather than leave it to the next `status`. */
static void warn_if_inexact(const struct ca_load_opts *o, struct connaudit_bpf *skel)
{
	struct ca_health h;
	__u32 zero = 0;

	if (bpf_map__lookup_elem(skel->maps.ca_health, &zero, sizeof(zero), &h, sizeof(h), 0))
		return;
	if (h.uncounted > 0 || h.incomplete > 0)
		progress(o, "warning: %lld existing session%s could not be counted and %lld only "
			 "in part (maps full: raise --max-sessions, --max-peers or "
			 "--max-prefixes); counts are lower bounds until they close",
			 (long long)h.uncounted, h.uncounted == 1 ? "" : "s",
			 (long long)h.incomplete);
}

/* The frozen ca_table can be mapped only from a read-write descriptor, and
 * no descriptor can write it (updates fail, writable mappings too): who may
 * read it gets the write bit as well, to open it that way. */
static unsigned table_mode(unsigned mode)
{
	return mode | ((mode & 0044) >> 1);
}

/*
 * Let group o->gid read the counts and nothing more: the pin dir and map pins
 * get that group and `mode` (no write bits for anyone but root, so a
 * reader's update or delete fails), link pins stay root-only, and the bpffs
 * root gets o+x so readers can reach the dir without listing anything else.
 * The root's mode before that goes to c->parent_mode, for unload to restore.
 */
static int grant_readers(const char *pin_dir, const struct ca_load_opts *o,
			 struct ca_config *c, struct ca_error *err)
{
	static const char *const maps[] = { CA_PIN_PEERS, CA_PIN_PREFIXES, CA_PIN_MARKS,
					    CA_PIN_STATS, CA_PIN_HEALTH, CA_PIN_CONFIG,
					    CA_PIN_RATES, CA_PIN_REMOTE, CA_PIN_CLUSTER,
					    CA_PIN_ADMITS, CA_PIN_REMOTE_RATES, CA_PIN_TABLE,
					    CA_PIN_TABLE_USED };
	unsigned mode = o->mode ? o->mode : 0640;
	char path[PATH_MAX], parent[PATH_MAX];
	struct stat st;

	if (mode & 0022 || mode & ~0777u)
		return ca_errf(err, -EINVAL, "--mode %o would let others than root write the "
			       "maps; use read bits only, e.g. 0640", mode);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		if (ca_join_path(path, sizeof(path), pin_dir, maps[i]) ||
		    chown(path, 0, o->gid) ||
		    chmod(path, strncmp(maps[i], CA_PIN_TABLE, strlen(CA_PIN_TABLE)) ? mode :
			  table_mode(mode)))
			return ca_errf(err, -errno, "cannot give group %u access to %s: %s",
				       o->gid, path, strerror(errno));
	}
	/* the dir: search wherever the maps are readable */
	if (chown(pin_dir, 0, o->gid) || chmod(pin_dir, 0700 | ((mode & 0044) >> 2) | (mode & 0044)))
		return ca_errf(err, -errno, "cannot set access on %s: %s", pin_dir, strerror(errno));
	snprintf(parent, sizeof(parent), "%s", pin_dir);
	if (stat(dirname(parent), &st) == 0 && !(st.st_mode & S_IXOTH)) {
		if (chmod(parent, (st.st_mode & 07777) | S_IXOTH))
			return ca_errf(err, -errno, "cannot let readers traverse %s: %s", parent,
				       strerror(errno));
		c->parent_mode = (st.st_mode & 07777) | CA_PARENT_MODE_SAVED;
	}
	return 0;
}

/* ca_config of another pin dir: read (write false) or write it. 0 or -1. */
static int access_config(const char *dir, struct ca_config *c, bool write)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, rc;

	if (ca_join_path(path, sizeof(path), dir, CA_PIN_CONFIG))
		return -1;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	rc = write ? bpf_map_update_elem(fd, &zero, c, 0) : bpf_map_lookup_elem(fd, &zero, c);
	close(fd);
	return rc || c->magic != CA_ABI_MAGIC || c->abi_version != CA_ABI_VERSION ? -1 : 0;
}

/*
 * An unloaded pin dir's load gave the parent o+x (saved: its mode before).
 * If another pin dir there still lets a group read (its config pin has
 * group or other read bits), it needs the o+x: hand it the saved mode, for
 * its own unload. Otherwise give the parent its mode back, unless someone
 * has changed it since. Runs under the parent's lock.
 */
static void restore_parent_mode(const char *pin_dir, uint32_t saved)
{
	char parent[PATH_MAX], dir[PATH_MAX], cfg[PATH_MAX];
	mode_t mode = saved & 07777;
	struct ca_config other;
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (!(saved & CA_PARENT_MODE_SAVED))
		return;
	snprintf(parent, sizeof(parent), "%s", pin_dir);
	dirname(parent);
	d = opendir(parent);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || ca_join_path(dir, sizeof(dir), parent, e->d_name) ||
		    ca_join_path(cfg, sizeof(cfg), dir, CA_PIN_CONFIG) ||
		    stat(cfg, &st) || !(st.st_mode & 0044))
			continue;
		/* Needed still; another version's config cannot take the mode. */
		if (access_config(dir, &other, false) == 0 && !other.parent_mode) {
			other.parent_mode = saved;
			access_config(dir, &other, true);
		}
		closedir(d);
		return;
	}
	if (d)
		closedir(d);
	if (stat(parent, &st) == 0 && (st.st_mode & 07777) == (mode | S_IXOTH))
		chmod(parent, mode);
}

/* Count the sessions that exist, and say what seeding passed over. */
static int seed_and_report(const struct ca_load_opts *o, struct connaudit_bpf *skel,
			   struct ca_error *err)
{
	struct ca_seed_report r;
	int rc = ca_seed(skel, &r, err);

	if (rc)
		return rc;
	progress(o, "counted existing sessions in %d network namespace%s", r.namespaces,
		 r.namespaces == 1 ? "" : "s");
	if (r.skipped)
		progress(o, "warning: skipped %d file%s in /run/netns that %s no network "
			 "namespace (%s%s): left by a failed `ip netns add`? remove %s",
			 r.skipped, r.skipped == 1 ? "" : "s", r.skipped == 1 ? "is" : "are",
			 r.first_skipped, r.skipped > 1 ? ", ..." : "",
			 r.skipped == 1 ? "it" : "them");
	warn_if_inexact(o, skel);
	return 0;
}

static int load_fresh(const struct ca_load_opts *o, const char *pin_dir, struct ca_error *err)
{
	struct connaudit_bpf *skel = NULL;
	char staging[PATH_MAX];
	struct ca_ports ports;
	struct ca_config c;
	uint64_t cgroup_id = 0;
	int cgroup_fd = -1, rc;

	if (o->cgroup) {
		cgroup_fd = ca_open_cgroup(o->cgroup, &cgroup_id, err);
		if (cgroup_fd < 0)
			return cgroup_fd;
	}
	config_from_opts(o, cgroup_id, &c);
	rc = ports_from_opts(o, &ports, &c, err);
	if (!rc)
		rc = rates_config(o, &c, err);
	if (!rc)
		rc = table_config(&c, err);
	if (rc)
		goto out;
	snprintf(staging, sizeof(staging), "%s" STAGING_INFIX "%d", pin_dir, (int)getpid());
	if (mkdir(staging, 0700) != 0) {
		rc = permission_error(err, -errno, "cannot create the staging pin dir");
		goto out;
	}
	rc = open_and_load(&skel, staging, &c, err);
	if (!rc)
		rc = freeze_table(skel, err);
	if (!rc)
		rc = write_config(skel, &c, err);
	if (!rc)
		rc = write_ports(skel, &ports, err);
	if (!rc) {
		progress(o, "attaching (%s)", o->cgroup ? o->cgroup : "whole host");
		rc = attach_live(skel, cgroup_fd, err);
	}
	if (!rc)
		rc = seed_and_report(o, skel, err);
	if (!rc)
		rc = pin_links(skel, staging, "", err);
	if (!rc)
		rc = ca_cluster_maps_pin(staging, err);
	if (!rc && o->grant_group)
		rc = grant_readers(staging, o, &c, err);
	if (!rc && c.parent_mode)
		rc = write_config(skel, &c, err);
	if (!rc && rename(staging, pin_dir) != 0)
		rc = ca_errf(err, -errno, "cannot publish %s: %s", pin_dir, strerror(errno));
	if (rc) {
		remove_pin_dir(staging);
		restore_parent_mode(staging, c.parent_mode);
	} else
		progress(o, "loaded; counts are pinned under %s", pin_dir);
out:
	connaudit_bpf__destroy(skel);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	return rc;
}

static int read_pinned_config(const char *pin_dir, struct ca_config *c, struct ca_error *err)
{
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, rc = 0;

	ca_join_path(path, sizeof(path), pin_dir, CA_PIN_CONFIG);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return ca_errf(err, -errno, "cannot open %s: %s", path, strerror(errno));
	if (bpf_map_lookup_elem(fd, &zero, c))
		rc = ca_errf(err, -errno, "cannot read %s: %s", path, strerror(errno));
	else if (c->magic != CA_ABI_MAGIC || c->abi_version != CA_ABI_VERSION)
		rc = ca_errf(err, -EPROTO, "%s was loaded by another connaudit version; "
			     "unload and load instead of --replace", pin_dir);
	close(fd);
	return rc;
}

/* True when t sets a port that old does not. */
static bool ports_widen(const struct ca_ports *old, const struct ca_ports *t)
{
	for (unsigned w = 0; w < CA_PORT_WORDS; w++)
		if (t->bits[w] & ~old->bits[w])
			return true;
	return false;
}

/* Link pins "-new" left by a replace that died before renaming them: under
 * the lock no live replace can own one, and each would make the next
 * replace's pin fail with EEXIST. */
static void remove_dead_new_links(const char *pin_dir)
{
	char path[PATH_MAX];

	for (int i = 0; i < LINK_PINS; i++) {
		snprintf(path, sizeof(path), "%s/%s-new", pin_dir, link_pins[i]);
		unlink(path);
	}
}

/* Write the replace's port table and config. Sessions already open on
 * ports the table did not hold before are counted by seeding again (marks
 * keep it from counting any session twice); sessions on ports taken out
 * stay counted until they close. */
static int apply_ports(const struct ca_load_opts *o, struct connaudit_bpf *skel,
		       bool was_all, const struct ca_ports *t, const struct ca_config *c,
		       bool *widened, struct ca_error *err)
{
	struct ca_ports old;
	__u32 zero = 0;
	int rc;

	if (bpf_map__lookup_elem(skel->maps.ca_ports, &zero, sizeof(zero), &old, sizeof(old), 0))
		return ca_errf(err, -errno, "cannot read ca_ports: %s", strerror(errno));
	*widened = !was_all && (o->all_ports || ports_widen(&old, t));
	rc = write_config(skel, c, err);
	return rc ? rc : write_ports(skel, t, err);
}

/* New programs on the pinned maps: counts and marks carry over. Old and new
 * programs run side by side for a moment, which the marks make harmless. */
static int load_replace(const struct ca_load_opts *o, const char *pin_dir, struct ca_error *err)
{
	struct connaudit_bpf *skel = NULL;
	char from[PATH_MAX], to[PATH_MAX];
	struct ca_ports ports;
	struct ca_config c;
	bool was_all, widened = false;
	int cgroup_fd = -1, rc;

	rc = read_pinned_config(pin_dir, &c, err);
	if (rc)
		return rc;
	if (o->nr_v4 || o->nr_v6 || o->cgroup || o->max_peers || o->max_prefixes ||
	    o->max_sessions || o->grant_group || o->nr_monitors || o->max_rates)
		return ca_errf(err, -EINVAL, "--replace keeps the loaded settings; to change "
			       "prefixes, cgroup, sizes, monitors or group, unload and load "
			       "again");
	/* Rate windows follow the wall clock as it is now (after a step). */
	c.realtime_offset_ns = realtime_offset_ns();
	was_all = c.flags & CA_CFG_ALL_PORTS;
	c.flags = (c.flags & ~CA_CFG_ALL_PORTS) | (o->all_ports ? CA_CFG_ALL_PORTS : 0);
	rc = ports_from_opts(o, &ports, &c, err);
	if (rc)
		return rc;
	if (c.flags & CA_CFG_CGROUP) {
		cgroup_fd = ca_open_cgroup_by_id(c.cgroup_id, err);
		if (cgroup_fd < 0)
			return cgroup_fd;
	}
	remove_dead_new_links(pin_dir);
	rc = open_and_load(&skel, pin_dir, &c, err);
	if (!rc)
		rc = apply_ports(o, skel, was_all, &ports, &c, &widened, err);
	if (!rc)
		rc = attach_live(skel, cgroup_fd, err);
	if (!rc && widened)
		rc = seed_and_report(o, skel, err);
	if (!rc)
		rc = pin_links(skel, pin_dir, "-new", err);
	if (!rc)
		rc = ca_cluster_maps_pin(pin_dir, err);
	for (int i = 0; !rc && i < LINK_PINS; i++) {
		snprintf(from, sizeof(from), "%s/%s-new", pin_dir, link_pins[i]);
		snprintf(to, sizeof(to), "%s/%s", pin_dir, link_pins[i]);
		if (access(from, F_OK) == 0 && rename(from, to) != 0)
			rc = ca_errf(err, -errno, "cannot replace %s: %s", to, strerror(errno));
	}
	if (!rc)
		progress(o, "replaced the programs; counts kept under %s", pin_dir);
	connaudit_bpf__destroy(skel);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	return rc;
}

/* Take the lock for a load or unload and clear what dead loaders left.
 * Returns the lock fd (close it to release) or -errno. */
static int begin_admin(const char *pin_dir, struct ca_error *err)
{
	int lock = lock_parent(pin_dir, err);

	if (lock >= 0)
		remove_dead_staging(pin_dir);
	return lock;
}

int ca_load(const struct ca_load_opts *o, struct ca_error *err)
{
	const char *pin_dir = ca_resolve_pin_dir(o->pin_dir);
	libbpf_print_fn_t old_print;
	int lock, rc;

	if (o->max_sessions > CA_MAX_SESSIONS)
		return ca_errf(err, -EINVAL, "max_sessions %u is more than %u", o->max_sessions,
			       CA_MAX_SESSIONS);
	rc = check_kernel(err);
	if (rc)
		return rc;
	rc = ca_ensure_bpffs(pin_dir, err);
	if (rc)
		return rc;
	lock = begin_admin(pin_dir, err);
	if (lock < 0)
		return lock;
	old_print = libbpf_set_print(keep_libbpf_tail);

	if (pin_exists(pin_dir, CA_PIN_LINK_STATE)) {
		rc = o->replace ? load_replace(o, pin_dir, err)
				: already_loaded(pin_dir, err);
	} else if (o->replace) {
		rc = ca_errf(err, -ENOENT, "nothing to replace: connaudit is not loaded at %s",
			     pin_dir);
	} else if (access(pin_dir, F_OK) == 0 && rmdir(pin_dir) != 0) {
		rc = ca_errf(err, -EEXIST, "%s exists but holds no complete connaudit load; "
			     "`connaudit unload --pin-dir %s` clears it", pin_dir, pin_dir);
	} else {
		rc = load_fresh(o, pin_dir, err);
	}
	libbpf_set_print(old_print);
	close(lock);
	return rc;
}

/* Remove the pins, and undo what the load did to the parent's mode. */
static int unload_pin_dir(const char *pin_dir)
{
	struct ca_config c = { 0 };
	int rc;

	if (access_config(pin_dir, &c, false))
		c.parent_mode = 0;	/* another version's, or half-made: leave the mode */
	rc = remove_pin_dir(pin_dir);
	if (!rc)
		restore_parent_mode(pin_dir, c.parent_mode);
	return rc;
}

int ca_unload(const char *pin_dir_arg, struct ca_error *err)
{
	const char *pin_dir = ca_resolve_pin_dir(pin_dir_arg);
	int lock, rc;

	rc = ca_check_bpffs(pin_dir, err);
	if (rc)
		return rc;
	lock = begin_admin(pin_dir, err);
	if (lock < 0)
		return lock;
	if (access(pin_dir, F_OK) != 0)
		rc = ca_errf(err, -ENOENT, "connaudit is not loaded at %s", pin_dir);
	else if (access(pin_dir, X_OK) != 0)
		rc = ca_errf(err, -errno, "cannot remove the pins in %s: %s (run as root)",
			     pin_dir, strerror(errno));
	else if (!pin_exists(pin_dir, CA_PIN_CONFIG) && !pin_exists(pin_dir, CA_PIN_LINK_STATE))
		rc = ca_errf(err, -EINVAL, "%s does not look like a connaudit pin dir "
			     "(no %s); not touching it", pin_dir, CA_PIN_CONFIG);
	else if ((rc = unload_pin_dir(pin_dir)) != 0)
		rc = ca_errf(err, rc, "cannot remove the pins: %s%s", strerror(-rc),
			     rc == -EPERM || rc == -EACCES ? " (run as root)" : "");
	close(lock);
	return rc;
}
