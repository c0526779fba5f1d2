/* SPDX-License-Identifier: MIT */
/*
 * The prefetch slot of a remote provider: the small files of a subtree in
 * one script, as one tar stream (GNU tar in its POSIX format, whose pax
 * headers give mtimes to the nanosecond; else busybox tar, to the second),
 * each member kept as a staged copy if it is the version the listing
 * showed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sbxfs/log.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/remote/shell.h"
#include "sbxfs/remote/tar.h"

/* The names a script carries: it travels as one argument (often base64),
 * and an argument of execve() holds at most 128 KiB. */
#define NAMES_MAX (60u << 10)
/* What a tar adds to its members: a header each (and a pax header with
 * GNU tar), padding, and the end. */
#define MEMBER_OVERHEAD (3 * 512)
/* And the record it pads the archive to. */
#define TAR_RECORD 10240
/* The most one call brings, whatever the window: it is held in memory. */
#define CALL_MAX (32u << 20)

struct ahead {
	struct remote *r;
	const char *box, *dir;
	char *const *rels;
	const struct stat *sts;
	size_t n, next; /* members come in the order asked: the next to match */
	long cur;	/* the member being read, -1 if it is not kept */
	char *data;
	size_t len;
	size_t kept;
};

/* Keep the member just read if all of it came. */
static void keep(struct ahead *a)
{
	char path[4096];

	if (a->cur < 0)
		return;
	if (a->len == (size_t)a->sts[a->cur].st_size &&
	    snprintf(path, sizeof(path), "%s/%s", strcmp(a->dir, "/") ? a->dir : "",
		     a->rels[a->cur]) < (int)sizeof(path) &&
	    stagefile_offer(&a->r->files, a->box, path, &a->sts[a->cur], a->data,
			    a->len) == 0)
		a->kept++;
	free(a->data);
	a->data = NULL;
	a->cur = -1;
}

/* Is the member the version the listing showed?  busybox gives whole
 * seconds: then the seconds must agree. */
static int same_version(const struct tar_entry *e, const struct stat *st)
{
	return e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
	       (e->mtime.tv_nsec == 0 || e->mtime.tv_nsec == st->st_mtim.tv_nsec);
}

static int on_entry(void *ctx, const struct tar_entry *e)
{
	struct ahead *a = ctx;
	const char *name = e->name;
	size_t i;

	keep(a);
	if (!strncmp(name, "./", 2))
		name += 2;
	for (i = a->next; i < a->n && strcmp(a->rels[i], name); i++)
		;
	if (i == a->n)
		return 1; /* not asked for: the stream is not what we think */
	a->next = i + 1;
	if (e->type != '0' || !same_version(e, &a->sts[i]))
		return 0;
	a->data = malloc(e->size ? (size_t)e->size : 1);
	if (!a->data)
		return -ENOMEM;
	a->cur = (long)i;
	a->len = 0;
	return 0;
}

static int on_data(void *ctx, const char *buf, size_t len)
{
	struct ahead *a = ctx;

	if (a->cur < 0)
		return 0;
	if (len > (size_t)a->sts[a->cur].st_size - a->len)
		return -EPROTO;
	memcpy(a->data + a->len, buf, len);
	a->len += len;
	return 0;
}

int remote_prefetch(struct sbx_provider *p, const char *box, const char *dir,
		    char *const *rels, const struct stat *sts, size_t n)
{
	struct remote *r = REMOTE(p);
	struct strbuf checks = STRBUF_INIT(4096 + 64), body = STRBUF_INIT(2 * NAMES_MAX);
	struct ahead a = {
		.r = r, .box = box, .dir = dir, .rels = rels, .sts = sts, .cur = -1
	};
	struct tar_reader t;
	size_t names = 0, total = TAR_RECORD;
	struct strbuf out = STRBUF_INIT(0);
	int rc = sh_script(&checks, "cd -- %q 2>/dev/null || exit 2; ", dir);

	/* As many as fit the script and the output, in the order asked. */
	for (a.n = 0; a.n < n && names + strlen(rels[a.n]) + 5 <= NAMES_MAX; a.n++) {
		size_t more = (size_t)sts[a.n].st_size + 511 + MEMBER_OVERHEAD;

		if (a.n && (total + more > CALL_MAX ||
			    (r->output_max && total + more > r->output_max)))
			break;
		names += strlen(rels[a.n]) + 5;
		total += more;
	}
	if (!rc)
		rc = sh_script(&body, "if tar --version 2>/dev/null | grep -q GNU; then "
				      "set -- --format=posix; else set --; fi; "
				      "tar \"$@\" -cf - --no-recursion");
	for (size_t i = 0; !rc && i < a.n; i++)
		rc = sh_script(&body, " ./%q", rels[i]);
	if (!rc)
		rc = sh_script(&body, " 2>/dev/null | head -c %L", (long long)total);
	out.max = total + 4096; /* a strbuf keeps a NUL after its bytes */
	if (!rc)
		rc = remote_run_bytes(r, box, "prefetch", checks.buf, body.buf, 0,
				      REMOTE_RUN_RETRY, &out);
	if (!rc) {
		tar_reader_init(&t, on_entry, on_data, &a);
		if (tar_feed(&t, out.buf, out.len) < 0)
			sbx_debug("%s: prefetch of \"%s\": the stream ended early or "
				  "does not parse; kept what came whole",
				  r->name, dir);
		keep(&a);
		sbx_debug("%s: prefetch of \"%s\": %zu of %zu files kept", r->name, dir,
			  a.kept, a.n);
	}
	free(a.data);
	strbuf_release(&checks);
	strbuf_release(&body);
	strbuf_release(&out);
	return rc ? rc : (int)a.n;
}
