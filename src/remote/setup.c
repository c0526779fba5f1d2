/* SPDX-License-Identifier: MIT */
/* What every remote provider sets up, tells and frees the same way.  See
 * remote.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "sbxfs/remote/opts.h"
#include "sbxfs/remote/remote.h"
#include "remote_int.h"

#define TIMEOUT_S 30
#define TIMEOUT_MAX_S 86400
#define CACHE_MAX (2ull << 30)
#define CACHE_MAX_MIB (1ull << 40)

int remote_setup(struct remote *r, const char *name, unsigned flags,
		 const struct sbx_kvlist *opts, const struct stagefile_ops *files,
		 void (*release)(void *priv))
{
	const char *state = sbx_kv_get(opts, "state_dir");
	uint64_t cache_max = CACHE_MAX;
	int timeout_s = TIMEOUT_S;
	char dir[4200];

	r->name = name;
	r->flags = flags;
	boxtable_init(&r->boxes, release);
	cmdpoll_init(&r->cmds);
	pthread_mutex_init(&r->walk_statfs.lock, NULL);
	if (remote_opt_mib(&cache_max, opts, "cache_max", CACHE_MAX_MIB) ||
	    remote_opt_seconds(&timeout_s, opts, "timeout", TIMEOUT_MAX_S))
		return -EINVAL;
	r->timeout_ms = timeout_s * 1000;
	if (snprintf(dir, sizeof(dir), "%s/stage/%s", state ? state : "/tmp", name) >=
	    (int)sizeof(dir)) {
		sbx_failf("state_dir is too long");
		return -ENAMETOOLONG;
	}
	r->stage = stage_new(dir, cache_max);
	if (!r->stage)
		return -ENOMEM;
	stagefile_init(&r->files, files, r->stage, r);
	r->files.give = remote_give_staged;
	return 0;
}

void remote_release(struct remote *r)
{
	boxtable_destroy(&r->boxes);
	stage_free(r->stage);
	r->stage = NULL;
	cmdpoll_destroy(&r->cmds);
	pthread_mutex_destroy(&r->walk_statfs.lock);
}

void remote_http_config(const struct remote *r, struct http_config *cfg)
{
	cfg->retries = 3;
	cfg->timeout_ms = cfg->stall_ms = r->timeout_ms;
}

void remote_describe(const struct remote *r, struct sbx_kvlist *out)
{
	sbx_kv_addf(out, "timeout", "%d", r->timeout_ms / 1000);
	sbx_kv_addf(out, "cache_max", "%llu",
		    (unsigned long long)(stage_max(r->stage) >> 20));
}
