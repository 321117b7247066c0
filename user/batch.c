// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* batch.c - one loop of batched map lookups for every scan of a map. */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "batch.h"
#include "errors.h"

int ca_batch_scan(int fd, const char *what, struct ca_key *keys, void *values,
		  ca_batch_fn fn, void *arg, struct ca_error *err)
{
	struct ca_key batch_in, batch_out;
	bool first = true;

	for (;;) {
		__u32 n = CA_SCAN_BATCH;
		/* The end of the map is -ENOENT with the last entries in n. */
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &batch_in, &batch_out, keys,
					      values, &n, NULL);

		if (rc && rc != -ENOENT)
			return ca_errf(err, rc, "batched lookup in %s failed: %s%s", what,
				       strerror(-rc),
				       rc == -EINVAL ? " (needs kernel 5.6 or later)" : "");
		for (__u32 i = 0; i < n; i++) {
			int stop = fn(i, arg);

			if (stop)
				return stop;
		}
		if (rc == -ENOENT)
			return 0;
		batch_in = batch_out;
		first = false;
	}
}

struct rate_visit {
	const struct ca_key *keys;
	const struct ca_rate *rates;
	int (*fn)(const struct ca_key *key, const struct ca_rate *v, void *arg);
	void *arg;
};

static int visit_rate(unsigned i, void *arg)
{
	const struct rate_visit *v = arg;

	return v->fn(&v->keys[i], &v->rates[i], v->arg);
}

int ca_batch_scan_rates(int fd, const char *what, struct ca_key *keys, struct ca_rate *rates,
			int (*fn)(const struct ca_key *key, const struct ca_rate *v, void *arg),
			void *arg, struct ca_error *err)
{
	struct rate_visit v = { keys, rates, fn, arg };

	return ca_batch_scan(fd, what, keys, rates, visit_rate, &v, err);
}
