// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * table.c - read ca_table from memory. A slot's key is trusted only when
 * the slot's version is the same before and after reading it (a sequence
 * lock the kernel's state changes bump); its count comes from the second
 * read of the word, an instant at which that key held that count.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "errors.h"
#include "sysfs.h"
#include "table.h"

/* Rereads of one slot before giving up: each failure means the kernel
 * reclaimed and reused that slot meanwhile, which takes a full map. */
#define SLOT_TRIES	64

/* Map len bytes of the frozen map pinned as pin_dir/name, read-only. */
static int map_pin(const char *pin_dir, const char *name, size_t len, const void **out,
		   struct ca_error *err)
{
	char path[PATH_MAX];
	void *p;
	int fd;

	if (ca_join_path(path, sizeof(path), pin_dir, name))
		return ca_errf(err, -ENAMETOOLONG, "pin dir path is too long");
	fd = bpf_obj_get(path);
	if (fd < 0)
		return ca_errf(err, -errno, "cannot open %s: %s (it is mapped, which needs "
			       "read-write access; a frozen map cannot be written through it: run "
			       "as root or as a member of the group given to `connaudit load "
			       "--group`)", path, strerror(errno));
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return ca_errf(err, -errno, "cannot map %s: %s", path, strerror(errno));
	*out = p;
	return 0;
}

int ca_table_map(struct ca_table *t, const char *pin_dir, const struct ca_config *cfg,
		 struct ca_error *err)
{
	const void *slot, *used;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((cfg->table_slots & (cfg->table_slots - 1)) || !cfg->table_slots)
		return ca_errf(err, -EPROTO, "%s/%s: %u slots is not a power of two", pin_dir,
			       CA_PIN_CONFIG, cfg->table_slots);
	t->len = (size_t)cfg->table_slots * sizeof(struct ca_slot);
	t->used_len = CA_TABLE_USED_WORDS(cfg->table_slots) * sizeof(uint64_t);
	rc = map_pin(pin_dir, CA_PIN_TABLE, t->len, &slot, err);
	if (rc)
		return rc;
	t->slot = slot;
	rc = map_pin(pin_dir, CA_PIN_TABLE_USED, t->used_len, &used, err);
	if (rc) {
		ca_table_unmap(t);
		return rc;
	}
	t->used = used;
	t->slots = cfg->table_slots;
	t->seed = cfg->table_seed;
	return 0;
}

void ca_table_unmap(struct ca_table *t)
{
	if (t->slot)
		munmap((void *)t->slot, t->len);
	if (t->used)
		munmap((void *)t->used, t->used_len);
	t->slot = NULL;
	t->used = NULL;
}

/* A LIVE slot's key and count at one instant: 1, 0 when it is not LIVE,
 * -EAGAIN when it kept changing. */
static int read_slot(const struct ca_slot *s, struct ca_key *key, uint32_t *count)
{
	for (int i = 0; i < SLOT_TRIES; i++) {
		uint64_t w1 = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE), w2;

		if (CA_SLOT_STATE((uint32_t)(w1 >> 32)) != CA_SLOT_LIVE)
			return 0;
		memcpy(key, (const void *)&s->key, sizeof(*key));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		w2 = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
		if ((w1 >> 32) == (w2 >> 32)) {
			*count = (uint32_t)w2;
			return 1;
		}
	}
	return -EAGAIN;
}

static int busy(struct ca_error *err)
{
	return ca_errf(err, -EAGAIN, "a slot of %s kept changing while it was read; try again",
		       CA_PIN_TABLE);
}

int ca_table_count(const struct ca_table *t, const struct ca_key *key, uint64_t *count,
		   struct ca_error *err)
{
	struct ca_probe seq;

	ca_probe_start(&seq, key, t->seed, t->slots);
	for (uint32_t p = 0; p < CA_TABLE_PROBES; p++) {
		const struct ca_slot *s = &t->slot[ca_probe_slot(&seq, p)];
		struct ca_key k;
		uint32_t n;
		int rc = read_slot(s, &k, &n);

		if (rc < 0)
			return busy(err);
		if (rc && memcmp(&k, key, sizeof(k)) == 0) {
			*count = n;
			return 0;
		}
	}
	*count = 0;
	return 0;
}

/* Only the slots whose bit is set in ca_table_used: a LIVE slot's always is
 * (the kernel sets it at the claim and clears it before the slot is FREE),
 * and a slot that turns LIVE after its word was read is one the scan may
 * leave out, as it would any session opened after the scan began. */
int ca_table_scan(const struct ca_table *t, bool aggregate, ca_entry_fn fn, void *arg,
		  struct ca_error *err)
{
	for (uint32_t w = 0; w < CA_TABLE_USED_WORDS(t->slots); w++) {
		uint64_t bits = __atomic_load_n(&t->used[w], __ATOMIC_ACQUIRE);

		for (; bits; bits &= bits - 1) {
			const struct ca_slot *s = &t->slot[w * 64 + (uint32_t)__builtin_ctzll(bits)];
			struct ca_key k;
			uint32_t n;
			int rc = read_slot(s, &k, &n);

			if (rc < 0)
				return busy(err);
			if (!rc || !n || ca_key_is_peer(&k) == aggregate)
				continue;
			rc = fn(&k, n, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}
