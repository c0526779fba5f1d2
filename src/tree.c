/* SPDX-License-Identifier: MIT */
/* One provider's tree: see tree.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/fsutil.h"
#include "sbxfs/log.h"
#include "sbxfs/node.h"
#include "sbxfs/notify.h"
#include "sbxfs/tree.h"

int tree_open(struct sbxfs *fs, const char *name, const struct sbx_kvlist *popts,
	      const struct tree_opts *o, fuse_ino_t root_ino, int keep_failed)
{
	int rc;

	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->boxes_lock, NULL);
	pthread_mutex_init(&fs->ctl_lock, NULL);
	pthread_mutex_init(&fs->list_lock, NULL);
	fs->provider = sbx_provider_new(name);
	if (!fs->provider)
		return -EINVAL;
	sbx_fail_clear();
	rc = fs->provider->ops.init(fs->provider, popts);
	if (rc) {
		if (!sbx_fail_text()[0])
			sbx_failf("%s", strerror(-rc));
		if (!keep_failed) {
			sbx_provider_free(fs->provider);
			fs->provider = NULL;
			return rc;
		}
		snprintf(fs->failed, sizeof(fs->failed), "provider %s did not start: %s",
			 name, sbx_fail_text());
		if (sbx_provider_disable(fs->provider, fs->failed))
			return -ENOMEM;
	}
	fs->root_ino = root_ino;
	fs->state_dir = strdup(o->state_dir);
	if (!fs->state_dir ||
	    asprintf(&fs->cmd_dir, "%s/cmds/%s", o->state_dir, name) < 0) {
		fs->cmd_dir = NULL;
		return -ENOMEM;
	}
	sbx_mkdir_p(fs->cmd_dir, 0700);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->started = time(NULL);
	fs->attr_timeout = fs->provider->attr_timeout;
	fs->entry_timeout = fs->provider->entry_timeout;
	if (o->attr_timeout >= 0)
		fs->attr_timeout = fs->entry_timeout = o->attr_timeout;
	fs->subtree_entries = o->subtree_mib ? o->subtree_entries : 0;
	fs->subtree_bytes = o->subtree_mib << 20;
	fs->prefetch_bytes = (uint64_t)o->prefetch_mib << 20;
	fs->prefetch_file_max = (uint64_t)o->prefetch_file_kib << 10;
	fs->cache = cache_new(fs->attr_timeout, 200000);
	fs->nodes = node_table_new(root_ino);
	if (!fs->cache || !fs->nodes)
		return -ENOMEM;
	if (fs->provider->desc->path_max)
		node_table_set_path_max(fs->nodes, fs->provider->desc->path_max);
	if (fs->failed[0])
		sbx_warn("%s", fs->failed);
	return fs->failed[0] ? -EIO : 0;
}

int tree_serve(struct sbxfs *fs)
{
	int rc = notifier_start(fs);

	if (!rc)
		fs->inval_box_now = sbxfs_invalidate_box_now;
	return rc;
}

void tree_stop(struct sbxfs *fs)
{
	if (fs->inval_box_now)
		notifier_stop(fs);
}

void tree_close(struct sbxfs *fs)
{
	if (fs->provider) {
		fs->provider->ops.destroy(fs->provider);
		sbx_provider_free(fs->provider);
		fs->provider = NULL;
	}
	box_registry_free(fs);
	if (fs->nodes)
		node_table_free(fs->nodes);
	cache_free(fs->cache);
	free(fs->list);
	free(fs->cmd_dir);
	free(fs->state_dir);
	pthread_mutex_destroy(&fs->boxes_lock);
	pthread_mutex_destroy(&fs->ctl_lock);
	pthread_mutex_destroy(&fs->list_lock);
}
