/* SPDX-License-Identifier: MIT */
/*
 * The mount options of the remote providers (-o key=value, or the
 * environment): one parser for each kind of value, with the same words
 * in every provider's messages.  Failures are -EINVAL with sbx_failf()
 * text that quotes the bad value.
 */
#ifndef SBXFS_REMOTE_OPTS_H
#define SBXFS_REMOTE_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "sbxfs/provider.h"

/* The option `key`, else the environment variable `env` (NULL: none), as a string the
 * caller frees; NULL if neither is set, it is empty, or out of memory. */
char *remote_opt(const struct sbx_kvlist *opts, const char *key, const char *env);

/*
 * The option `key` (if set) as a number of MiB from 1 to max_mib, into
 * *bytes (untouched when the option is not set).  0 or -EINVAL.
 */
int remote_opt_mib(uint64_t *bytes, const struct sbx_kvlist *opts, const char *key,
		   unsigned long long max_mib);

/*
 * The option `key` (if set) as a number of seconds from 1 to max_s,
 * into *seconds (untouched when the option is not set).  0 or -EINVAL.
 */
int remote_opt_seconds(int *seconds, const struct sbx_kvlist *opts, const char *key,
		       long max_s);

/* Drop the '/' that end url, in place; its new length. */
size_t remote_trim_url(char *url);

#endif
