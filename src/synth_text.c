/* SPDX-License-Identifier: MIT */
/*
 * The synthetic files' text: what a read of a control file gives (built at
 * open), and the size a stat shows of any synthetic file.
 */
#include <stdio.h>
#include <string.h>

#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/cmd.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/node.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/status.h"
#include "sbxfs/strbuf.h"
#include "synth_int.h"

static void root_ctl_text(struct sbxfs *fs, struct strbuf *sb)
{
	struct sbx_kvlist kv = { 0 };
	char when[32];

	strbuf_addf(sb, "provider %s\n", fs->provider->desc->name);
	fs->provider->ops.describe(fs->provider, &kv);
	for (size_t i = 0; i < kv.n; i++)
		strbuf_addf(sb, "%s %s\n", kv.v[i].key, kv.v[i].value);
	sbx_kv_free(&kv);
	strbuf_addf(sb, "attr_timeout %g\n", fs->attr_timeout);
	strbuf_addf(sb, "cache_entries %zu\n", cache_count(fs->cache));
	pthread_mutex_lock(&fs->ctl_lock);
	if (fs->ctl_err[0]) {
		sbx_time_iso(when, sizeof(when), fs->ctl_err_time);
		strbuf_addf(sb, "error %s %s\n", when, fs->ctl_err);
	}
	pthread_mutex_unlock(&fs->ctl_lock);
}

/* A tree's status, in a mount of several: its provider, whether it
 * started, and why not or its last error (as MOUNT/ctl says it). */
static void tree_status_text(struct sbxfs *fs, struct strbuf *sb)
{
	char when[32];

	strbuf_addf(sb, "provider %s\n", fs->provider->desc->name);
	strbuf_addf(sb, "state %s\n", fs->failed[0] ? "failed" : "running");
	if (fs->failed[0]) {
		strbuf_addf(sb, "error %s\n", fs->failed);
		return;
	}
	pthread_mutex_lock(&fs->ctl_lock);
	if (fs->ctl_err[0]) {
		sbx_time_iso(when, sizeof(when), fs->ctl_err_time);
		strbuf_addf(sb, "error %s %s\n", when, fs->ctl_err);
	}
	pthread_mutex_unlock(&fs->ctl_lock);
}

/* A tree's err: why its provider did not start, else the last failure of
 * its ctl, as a sandbox's err says its last. */
static void tree_err_text(struct sbxfs *fs, struct strbuf *sb)
{
	char when[32];

	if (fs->failed[0]) {
		strbuf_addf(sb, "%s\n", fs->failed);
		return;
	}
	pthread_mutex_lock(&fs->ctl_lock);
	if (fs->ctl_err[0]) {
		sbx_time_iso(when, sizeof(when), fs->ctl_err_time);
		strbuf_addf(sb, "%s %s\n", when, fs->ctl_err);
	}
	pthread_mutex_unlock(&fs->ctl_lock);
}

/* The status and ctl texts of a sandbox from one provider call, into
 * status and ctl (either may be NULL); their sizes are kept for
 * synth_attr(). */
static int info_texts(struct sbxfs *fs, struct box *b, struct strbuf *status,
		      struct strbuf *ctl)
{
	struct strbuf st = STRBUF_INIT(4096), word = STRBUF_INIT(64);
	struct sbx_box_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	sbx_fail_clear();
	rc = fs->provider->ops.info(fs->provider, &info, b->name);
	if (rc) {
		box_fail(b, rc, NULL);
		goto out;
	}
	rc = status_format(&st, b->name, fs->provider->desc->name, &info);
	if (!rc)
		rc = strbuf_addf(&word, "%s\n", sbx_state_word(info.state));
	if (!rc && status)
		rc = strbuf_add(status, st.buf, st.len);
	if (!rc && ctl)
		rc = strbuf_add(ctl, word.buf, word.len);
	if (!rc) {
		pthread_mutex_lock(&b->lock);
		b->status_size = (off_t)st.len;
		b->ctl_size = (off_t)word.len;
		b->sizes_known = 1;
		pthread_mutex_unlock(&b->lock);
	}
out:
	sbx_kv_free(&info.extra);
	strbuf_release(&st);
	strbuf_release(&word);
	return rc;
}

int synth_build_text(struct sbxfs *fs, const struct node *n, struct cmd *cmd,
		     struct strbuf *sb)
{
	char word[512];
	int rc = 0;

	switch (n->kind) {
	case NODE_ROOTCTL:
		root_ctl_text(fs, sb);
		break;
	case NODE_TREESTATUS:
		tree_status_text(fs, sb);
		break;
	case NODE_TREEERR:
		tree_err_text(fs, sb);
		break;
	case NODE_STATUS:
		rc = info_texts(fs, n->box, sb, NULL);
		break;
	case NODE_BOXCTL:
		rc = info_texts(fs, n->box, NULL, sb);
		break;
	case NODE_ERR:
		box_err_text(n->box, word, sizeof(word));
		rc = strbuf_addf(sb, "%s", word);
		break;
	case NODE_CMDFILE:
		if (n->cfile == CF_CMDLINE)
			rc = strbuf_addf(sb, "%s\n", cmd->cmdline);
		else if (n->cfile == CF_STATUS) {
			cmd_status_word(cmd, word, sizeof(word));
			rc = strbuf_addf(sb, "%s\n", word);
		}
		break;
	default:
		break;
	}
	return rc;
}

/* The status and ctl texts' sizes as last built (by a read, or by a stat
 * since a ctl verb): a stat asks the provider only when they are not
 * known, and a listing of the sandbox asks once for both. */
static off_t info_size(struct sbxfs *fs, const struct node *n)
{
	struct box *b = n->box;
	struct strbuf sb = STRBUF_INIT(4096);
	off_t size = 0;
	int known;

	pthread_mutex_lock(&b->lock);
	known = b->sizes_known;
	if (known)
		size = n->kind == NODE_STATUS ? b->status_size : b->ctl_size;
	pthread_mutex_unlock(&b->lock);
	if (!known && synth_build_text(fs, n, NULL, &sb) == 0)
		size = (off_t)sb.len;
	strbuf_release(&sb);
	return size;
}

off_t synth_size(struct sbxfs *fs, const struct node *n)
{
	struct strbuf sb = STRBUF_INIT(4096);
	struct cmd *c = NULL;
	off_t size = 0;

	switch (n->kind) {
	case NODE_CMDLAST:
		return 10;
	case NODE_STATUS:
	case NODE_BOXCTL:
		return info_size(fs, n);
	case NODE_ROOTCTL:
	case NODE_TREESTATUS:
	case NODE_TREEERR:
	case NODE_ERR:
		break;
	case NODE_CMDFILE:
		if (!(c = box_cmd_get(n->box, n->cmd)))
			return 0;
		if (n->cfile == CF_STDOUT || n->cfile == CF_STDERR ||
		    n->cfile == CF_OUT) {
			size = cmd_size(c, n->cfile == CF_STDOUT   ? CMD_STDOUT
					   : n->cfile == CF_STDERR ? CMD_STDERR
								   : CMD_OUT);
			cmd_put(c);
			return size;
		}
		break;
	default:
		return 0;
	}
	if (synth_build_text(fs, n, c, &sb) == 0)
		size = (off_t)sb.len;
	strbuf_release(&sb);
	cmd_put(c);
	return size;
}
