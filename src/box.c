/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/box.h"
#include "sbxfs/cmd.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/spawn.h"

struct box *box_ref(struct box *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

struct box *box_get(struct sbxfs *fs, const char *name)
{
	struct box *b;

	pthread_mutex_lock(&fs->boxes_lock);
	for (b = fs->boxes; b; b = b->next)
		if (!strcmp(b->name, name))
			break;
	if (!b && (b = calloc(1, sizeof(*b)))) {
		snprintf(b->name, sizeof(b->name), "%s", name);
		b->fs = fs;
		b->refs = 1; /* the registry's */
		pthread_mutex_init(&b->lock, NULL);
		b->next = fs->boxes;
		fs->boxes = b;
	}
	if (b)
		box_ref(b);
	pthread_mutex_unlock(&fs->boxes_lock);
	return b;
}

static void box_free(struct box *b)
{
	for (unsigned i = 0; i < b->ncmds; i++)
		if (b->cmds[i])
			cmd_put(b->cmds[i]);
	free(b->cmds);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void box_put(struct box *b)
{
	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		box_free(b);
}

void box_fail(struct box *b, int rc, const char *fmt, ...)
{
	char msg[sizeof(b->err)];
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	} else if (sbx_fail_text()[0]) {
		snprintf(msg, sizeof(msg), "%s", sbx_fail_text());
	} else {
		snprintf(msg, sizeof(msg), "%s", strerror(-rc));
	}
	sbx_warn("sandbox \"%s\": %s (%s)", b->name, msg, strerror(-rc));
	pthread_mutex_lock(&b->lock);
	snprintf(b->err, sizeof(b->err), "%s", msg);
	b->err_time = time(NULL);
	pthread_mutex_unlock(&b->lock);
}

void box_err_text(struct box *b, char *out, size_t size)
{
	char when[32];

	pthread_mutex_lock(&b->lock);
	if (b->err[0]) {
		sbx_time_iso(when, sizeof(when), b->err_time);
		snprintf(out, size, "%s %s\n", when, b->err);
	} else {
		out[0] = '\0';
	}
	pthread_mutex_unlock(&b->lock);
}

void box_deleted(struct sbxfs *fs, const char *name)
{
	struct box **pp, *b = NULL;
	char dir[4200], why[256];
	char *argv[] = { "rm", "-rf", "--one-file-system", dir, NULL };

	pthread_mutex_lock(&fs->boxes_lock);
	for (pp = &fs->boxes; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			b = *pp;
			*pp = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->boxes_lock);
	box_put(b);
	snprintf(dir, sizeof(dir), "%s/%s", fs->cmd_dir, name);
	if (spawn_run(argv, 60000, why, sizeof(why)))
		sbx_warn("removing \"%s\": %s", dir, why);
}

void box_registry_free(struct sbxfs *fs)
{
	struct box *b, *next;

	for (b = fs->boxes; b; b = next) {
		next = b->next;
		box_put(b);
	}
	fs->boxes = NULL;
}
