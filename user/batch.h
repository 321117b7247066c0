/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* batch.h - read a BPF hash map keyed by struct ca_key, many entries a call. */
#ifndef CA_BATCH_H
#define CA_BATCH_H

#include "connaudit.h"

/* Entries read per bpf() call: the size of the callers' key and value arrays. */
#define CA_SCAN_BATCH	256

/* Called for entry i of the batch just read into the caller's arrays;
 * non-zero stops the scan. */
typedef int (*ca_batch_fn)(unsigned i, void *arg);

/* Read every entry of the hash map `fd` (named `what` in messages),
 * CA_SCAN_BATCH at a time, into keys[] and values (CA_SCAN_BATCH values of
 * the map's value size), and call fn for each. Returns 0, fn's non-zero
 * value, or a negative errno with a message in err. */
int ca_batch_scan(int fd, const char *what, struct ca_key *keys, void *values,
		  ca_batch_fn fn, void *arg, struct ca_error *err);

/* ca_batch_scan of a map whose values are struct ca_rate (ca_rates,
 * ca_remote_rates), calling fn with each entry's key and value. */
int ca_batch_scan_rates(int fd, const char *what, struct ca_key *keys, struct ca_rate *rates,
			int (*fn)(const struct ca_key *key, const struct ca_rate *v, void *arg),
			void *arg, struct ca_error *err);

#endif
