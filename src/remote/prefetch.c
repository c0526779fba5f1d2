/* SPDX-License-Identifier: MIT */
/*
 * The prefetch slot of a remote provider: the small files of a subtree in
 * one script, as one tar stream (GNU tar in its POSIX format, whose pax
 * headers give mtimes to the nanosecond; else busybox tar, to the second),
 * each member kept as a staged copy if it is the version the listing
 * showed.  Where the API bounds what one script brings back (rexec's exec
 * endpoint), the files go in several scripts run side by side: one round
 * trip for all.  Where the bytes travel as text or the API bounds them,
 * the stream goes through the sandbox's gzip (if it has one): a third of
 * the bytes, and three times the files a call brings back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sbxfs/log.h"
#include "sbxfs/remote/gunzip.h"
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
/* Calls side by side, for an API whose calls bring back little. */
#define PARALLEL_MAX 16
/* How much a gzip'd stream is taken to shrink to size a call, in tenths:
 * at first, and at most (a fifth kept in hand of what was seen). */
#define GZIP_TENTHS_FIRST 20
#define GZIP_TENTHS_MAX 60

/* Does r's prefetch go gzip'd: its bytes travel as text, or are few? */
static int gzipped(const struct remote *r)
{
	return r->output_max || (r->flags & REMOTE_TEXT_OUTPUT);
}

struct ahead {
	struct remote *r;
	const char *box, *dir;
	char *const *rels;
	const struct stat *sts;
	size_t n;    /* the end of the slice being read */
	size_t next; /* members come in the order asked: the next to match */
	long cur;    /* the member being read, -1 if it is not kept */
	char *data;
	size_t len;
	size_t kept;
};

/* Keep the member just read if all of it came. */
static void keep(struct ahead *a)
{
	char path[SBX_PATH_MAX];

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

/* One call of a prefetch: the files [from, to) of the ones asked, run by
 * a thread of its own when there are several. */
struct slice {
	struct remote *r;
	const char *box, *dir;
	char *const *rels;
	const struct stat *sts;
	size_t from, to, total;
	struct strbuf out;
	size_t came; /* the bytes that came, before gunzip */
	int rc;
	pthread_t thread;
};

/* The files from `from` on that fit one call: the script (its names)
 * and what the call may bring back; at least one. */
static size_t slice_end(const struct remote *r, char *const *rels, const struct stat *sts,
			size_t from, size_t n, size_t *total)
{
	size_t names = 0, cap = r->output_max, i;
	unsigned tenths = __atomic_load_n(&r->gzip_tenths, __ATOMIC_RELAXED);

	if (cap && gzipped(r))
		cap = cap / 10 * (tenths ? tenths : GZIP_TENTHS_FIRST);
	*total = TAR_RECORD;
	for (i = from; i < n && names + strlen(rels[i]) + 5 <= NAMES_MAX; i++) {
		size_t more = (size_t)sts[i].st_size + 511 + MEMBER_OVERHEAD;

		if (i > from &&
		    (*total + more > CALL_MAX || (cap && *total + more > cap)))
			break;
		names += strlen(rels[i]) + 5;
		*total += more;
	}
	return i;
}

static void *slice_run(void *arg)
{
	struct slice *sl = arg;
	struct strbuf checks = STRBUF_INIT(4096 + 64), body = STRBUF_INIT(2 * NAMES_MAX);
	int rc = sh_script(&checks, "cd -- %q 2>/dev/null || exit 2; ", sl->dir);

	if (!rc)
		rc = sh_script(&body, "if tar --version 2>/dev/null | grep -q GNU; then "
				      "set -- --format=posix; else set --; fi; "
				      "tar \"$@\" -cf - --no-recursion");
	for (size_t i = sl->from; !rc && i < sl->to; i++)
		rc = sh_script(&body, " ./%q", sl->rels[i]);
	if (!rc)
		rc = sh_script(&body, " 2>/dev/null | head -c %L%s", (long long)sl->total,
			       gzipped(sl->r) ? " | { gzip -1 2>/dev/null || cat; }"
					      : "");
	sl->out.max = sl->total + 4096; /* a strbuf keeps a NUL after its bytes */
	if (!rc)
		rc = remote_run_bytes(
			sl->r, sl->box, "prefetch", checks.buf, body.buf, 0,
			REMOTE_RUN_RETRY | (gzipped(sl->r) ? REMOTE_RUN_COMPRESSED : 0),
			&sl->out);
	sl->came = sl->out.len;
	if (!rc && gunzip_is(sl->out.buf, sl->out.len)) {
		struct strbuf tar = STRBUF_INIT(sl->total + 4096);

		/* Cut short or corrupt: the members that came whole count. */
		if (gunzip(&tar, sl->out.buf, sl->out.len))
			sbx_debug("%s: prefetch: the gzip stream does not inflate whole",
				  sl->r->name);
		strbuf_release(&sl->out);
		sl->out = tar;
	}
	strbuf_release(&checks);
	strbuf_release(&body);
	sl->rc = rc;
	return NULL;
}

/* How well these calls' streams compressed, for the next calls' size. */
static void note_ratio(struct remote *r, const struct slice *sl, size_t nsl)
{
	size_t came = 0, tar = 0;
	unsigned tenths;

	if (!gzipped(r))
		return;
	for (size_t i = 0; i < nsl; i++)
		if (!sl[i].rc && sl[i].came) {
			came += sl[i].came;
			tar += sl[i].out.len;
		}
	if (!came)
		return;
	/* A sandbox without gzip sends the tar as it is: 10, one for one. */
	tenths = came >= tar ? 10 : (unsigned)(tar * 8 / came);
	if (tenths < 10)
		tenths = 10;
	if (tenths > GZIP_TENTHS_MAX)
		tenths = GZIP_TENTHS_MAX;
	__atomic_store_n(&r->gzip_tenths, tenths, __ATOMIC_RELAXED);
}

int remote_prefetch(struct sbx_provider *p, const char *box, const char *dir,
		    char *const *rels, const struct stat *sts, size_t n)
{
	struct remote *r = REMOTE(p);
	struct ahead a = {
		.r = r, .box = box, .dir = dir, .rels = rels, .sts = sts, .cur = -1
	};
	struct slice sl[PARALLEL_MAX];
	size_t nsl = 0, from = 0, taken = 0;
	int rc = 0;

	if (remote_readonly(r, box))
		return -ENOTSUP; /* no script runs there now */
	/* Calls side by side where the API bounds what one brings back:
	 * each a round trip, together one. */
	while (from < n && nsl < (r->output_max ? PARALLEL_MAX : 1)) {
		struct slice *s = &sl[nsl];

		memset(s, 0, sizeof(*s));
		s->r = r, s->box = box, s->dir = dir, s->rels = rels, s->sts = sts;
		s->from = from;
		s->to = from = slice_end(r, rels, sts, from, n, &s->total);
		s->out = (struct strbuf)STRBUF_INIT(0);
		nsl++;
	}
	for (size_t i = 1; i < nsl; i++)
		if (pthread_create(&sl[i].thread, NULL, slice_run, &sl[i])) {
			nsl = i; /* no thread: fewer calls */
			break;
		}
	slice_run(&sl[0]);
	for (size_t i = 1; i < nsl; i++)
		pthread_join(sl[i].thread, NULL);
	/* The slices in order, up to the first that failed. */
	for (size_t i = 0; i < nsl; i++) {
		struct tar_reader t;

		if (sl[i].rc) {
			rc = taken ? 0 : sl[i].rc;
			break;
		}
		a.n = sl[i].to;
		a.next = sl[i].from;
		tar_reader_init(&t, on_entry, on_data, &a);
		if (tar_feed(&t, sl[i].out.buf, sl[i].out.len) < 0)
			sbx_debug("%s: prefetch of \"%s\": the stream ended early or "
				  "does not parse; kept what came whole",
				  r->name, dir);
		keep(&a);
		taken = sl[i].to;
	}
	sbx_debug("%s: prefetch of \"%s\": %zu of %zu files kept, %zu calls", r->name,
		  dir, a.kept, taken, nsl);
	note_ratio(r, sl, nsl);
	for (size_t i = 0; i < nsl; i++)
		strbuf_release(&sl[i].out);
	free(a.data);
	return rc ? rc : (int)taken;
}
