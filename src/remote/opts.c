/* SPDX-License-Identifier: MIT */
/* The mount options of the remote providers.  See opts.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/opts.h"

char *remote_opt(const struct sbx_kvlist *opts, const char *key, const char *env)
{
	const char *v = sbx_kv_get(opts, key);

	if (!v && env)
		v = getenv(env);
	return v && v[0] ? strdup(v) : NULL;
}

int remote_opt_mib(uint64_t *bytes, const struct sbx_kvlist *opts, const char *key,
		   unsigned long long max_mib)
{
	const char *v = sbx_kv_get(opts, key);
	unsigned long long mb;
	char *end;

	if (!v)
		return 0;
	mb = strtoull(v, &end, 10);
	if (end == v || *end || mb == 0 || mb > max_mib) {
		sbx_failf("%s must be a number of MiB, not \"%s\"", key, v);
		return -EINVAL;
	}
	*bytes = (uint64_t)mb << 20;
	return 0;
}

int remote_opt_seconds(int *seconds, const struct sbx_kvlist *opts, const char *key,
		       long max_s)
{
	const char *v = sbx_kv_get(opts, key);
	char *end;
	long s;

	if (!v)
		return 0;
	s = strtol(v, &end, 10);
	if (end == v || *end || s <= 0 || s > max_s) {
		sbx_failf("%s must be a number of seconds, not \"%s\"", key, v);
		return -EINVAL;
	}
	*seconds = (int)s;
	return 0;
}

size_t remote_trim_url(char *url)
{
	size_t n = strlen(url);

	while (n && url[n - 1] == '/')
		url[--n] = '\0';
	return n;
}
