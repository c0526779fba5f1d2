/* SPDX-License-Identifier: MIT */
/* Kept shells: scripts on a shell that stays open.  See keptsh.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sbxfs/remote/endmark.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/keptsh.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/remote/shell.h"
#include "sbxfs/remote/time.h"

#define STEP_MS 500   /* how often a wait looks at sbx_interrupted() */
#define ERR_KEEP 2048 /* the start of a script's stderr, for messages */

struct keptsh_shell {
	struct keptsh_shell *next;
	char box[SBX_NAME_MAX + 1];
	void *stream;		    /* NULL while it is being opened */
	unsigned long n;	    /* which shell of k: part of its marks' id */
	unsigned long sent;	    /* scripts sent on it */
	int busy;		    /* a script has it, or it is being opened */
	int dropped;		    /* close it once its script is done */
	int spare;		    /* a command's, opened ahead (KEPTSH_LAUNCHER) */
	struct timespec idle_since; /* CLOCK_MONOTONIC, when it came free */
};

void keptsh_init(struct keptsh *k, const char *name, const struct keptsh_ops *ops,
		 void *ctx, int stall_ms)
{
	unsigned char r[8] = { 0 };
	size_t i;

	memset(k, 0, sizeof(*k));
	k->name = name;
	k->ops = ops;
	k->ctx = ctx;
	k->stall_ms = stall_ms > 0 ? stall_ms : 30000;
	k->idle_ms = KEPTSH_IDLE_S * 1000;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->freed, NULL);
	/* Not a secret: it keeps one mount's marks apart from another's. */
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		memcpy(r, &ts.tv_nsec,
		       sizeof(r) < sizeof(ts.tv_nsec) ? sizeof(r) : sizeof(ts.tv_nsec));
	}
	for (i = 0; i < sizeof(r); i++)
		snprintf(k->tag + 2 * i, 3, "%02x", r[i]);
}

int keptsh_destroy(struct keptsh *k)
{
	struct keptsh_shell *s, *next;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&k->lock);
	k->stopping = 1;
	while (k->openers)
		if (pthread_cond_timedwait(&k->freed, &k->lock, &until))
			break;
	if (k->openers) {
		pthread_mutex_unlock(&k->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&k->lock);
	for (s = k->shells; s; s = next) {
		next = s->next;
		if (s->stream)
			k->ops->close(s->stream);
		free(s);
	}
	k->shells = NULL;
	pthread_cond_destroy(&k->freed);
	pthread_mutex_destroy(&k->lock);
	return 0;
}

/* Unlink s from k's list; k->lock held. */
static void unlink_locked(struct keptsh *k, struct keptsh_shell *s)
{
	struct keptsh_shell **pp;

	for (pp = &k->shells; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
}

/* Give s back after its script: kept for the next, or closed. */
static void give_back(struct keptsh *k, struct keptsh_shell *s, int keep)
{
	pthread_mutex_lock(&k->lock);
	if (keep && !s->dropped) {
		s->busy = 0;
		clock_gettime(CLOCK_MONOTONIC, &s->idle_since);
	} else {
		unlink_locked(k, s);
		keep = 0;
	}
	pthread_cond_broadcast(&k->freed);
	pthread_mutex_unlock(&k->lock);
	if (!keep) {
		if (s->stream)
			k->ops->close(s->stream);
		free(s);
	}
}

static void ignore(void *ctx, enum sbx_stream stream, const char *data, size_t len)
{
	(void)ctx, (void)stream, (void)data, (void)len;
}

/* Wait on k->freed for STEP_MS at most; k->lock held. */
static void wait_step(struct keptsh *k)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += STEP_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&k->freed, &k->lock, &until);
}

/*
 * Close the unused shells of `box` (NULL: of any sandbox) that have been
 * unused for idle_ms at least; with `box`, mark those in use to be closed
 * once their script is done.
 */
static void close_unused(struct keptsh *k, const char *box, long idle_ms)
{
	struct keptsh_shell *s, **pp, *closing = NULL;

	pthread_mutex_lock(&k->lock);
	for (pp = &k->shells; (s = *pp);) {
		if (box && strcmp(s->box, box)) {
			pp = &s->next;
			continue;
		}
		if (s->busy || ms_since(&s->idle_since) < idle_ms) {
			if (box)
				s->dropped = 1;
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->next = closing;
		closing = s;
	}
	pthread_cond_broadcast(&k->freed);
	pthread_mutex_unlock(&k->lock);
	while ((s = closing)) {
		closing = s->next;
		k->ops->close(s->stream);
		free(s);
	}
}

/*
 * A shell of `box` for one script: an idle one, still open, or a new
 * one while the box has fewer than KEPTSH_PER_BOX, else the first that
 * comes free.  *fresh says which.  0, -EINTR, -ETIMEDOUT, or open's error.
 */
static int take(struct keptsh *k, const char *box, struct keptsh_shell **out, int *fresh)
{
	struct timespec t0;
	int rc;

	/* A sandbox used once keeps no process of ours for long; done on
	 * the way to a script, it costs no thread. */
	close_unused(k, NULL, k->idle_ms);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&k->lock);
	for (;;) {
		struct keptsh_shell *s, *idle = NULL;
		unsigned count = 0;

		for (s = k->shells; s; s = s->next) {
			if (strcmp(s->box, box) || s->dropped || s->spare)
				continue;
			count++;
			if (!s->busy && !idle)
				idle = s;
		}
		if (idle) {
			idle->busy = 1;
			pthread_mutex_unlock(&k->lock);
			/* An idle shell says nothing: output, or its end,
			 * means it is gone (the sandbox stopped). */
			if (k->ops->read(idle->stream, 0, ignore, NULL) != -ETIMEDOUT) {
				give_back(k, idle, 0);
				pthread_mutex_lock(&k->lock);
				continue;
			}
			*out = idle;
			*fresh = 0;
			return 0;
		}
		if (count < KEPTSH_PER_BOX) {
			s = calloc(1, sizeof(*s));
			if (!s) {
				pthread_mutex_unlock(&k->lock);
				return -ENOMEM;
			}
			snprintf(s->box, sizeof(s->box), "%s", box);
			s->busy = 1;
			s->n = ++k->opened;
			s->next = k->shells;
			k->shells = s;
			pthread_mutex_unlock(&k->lock);
			rc = k->ops->open(k->ctx, box, NULL, &s->stream);
			if (rc) {
				s->stream = NULL;
				give_back(k, s, 0);
				return rc;
			}
			*out = s;
			*fresh = 1;
			return 0;
		}
		if (sbx_interrupted()) {
			pthread_mutex_unlock(&k->lock);
			return -EINTR;
		}
		if (ms_since(&t0) >= k->stall_ms) {
			pthread_mutex_unlock(&k->lock);
			sbx_failf("%s: no shell of \"%s\" came free in %d s", k->name,
				  box, k->stall_ms / 1000);
			return -ETIMEDOUT;
		}
		wait_step(k);
	}
}

/* One script's output, as it comes, each stream through its mark. */
struct reply {
	struct endmark mark[2]; /* SBX_STREAM_STDOUT, SBX_STREAM_STDERR */
	struct strbuf *out;	/* may be NULL */
	struct strbuf err;
	int over; /* stdout went past out's maximum */
};

static void to_out(void *ctx, const char *data, size_t len)
{
	struct reply *y = ctx;

	if (y->out && !y->over && strbuf_add(y->out, data, len))
		y->over = 1;
}

static void to_err(void *ctx, const char *data, size_t len)
{
	struct reply *y = ctx;

	if (y->err.len < ERR_KEEP)
		strbuf_add(&y->err, data,
			   len < ERR_KEEP - y->err.len ? len : ERR_KEEP - y->err.len);
}

static void on_output(void *ctx, enum sbx_stream stream, const char *data, size_t len)
{
	struct reply *y = ctx;

	if (stream == SBX_STREAM_STDOUT)
		endmark_feed(&y->mark[0], data, len, to_out, y);
	else
		endmark_feed(&y->mark[1], data, len, to_err, y);
}

/*
 * Send the script on s and read its output up to both marks.  0 with
 * *code; -EFBIG, -EINTR or -ETIMEDOUT (s is then of no more use); or
 * -EPIPE with text when s was lost, the script sent or not.
 */
static int exchange(struct keptsh *k, struct keptsh_shell *s, const char *what,
		    const char *script, struct reply *y, int *code)
{
	struct strbuf text = STRBUF_INIT(strlen(script) + 2 * ENDMARK_MAX + 128);
	struct timespec quiet;
	char id[ENDMARK_ID_MAX];
	int rc;

	snprintf(id, sizeof(id), "%s-%lu-%lu", k->tag, s->n, ++s->sent);
	if (endmark_init(&y->mark[0], id) || endmark_init(&y->mark[1], id))
		return -EINVAL;
	/* The script may end in a comment: its own line before ')'. */
	if (strbuf_addf(&text, "( %s\n) </dev/null", script) ||
	    endmark_script(&y->mark[0], &text) || strbuf_add(&text, "\n", 1)) {
		strbuf_release(&text);
		return -ENOMEM;
	}
	rc = k->ops->write(s->stream, text.buf, text.len);
	strbuf_release(&text);
	if (rc)
		goto lost;
	clock_gettime(CLOCK_MONOTONIC, &quiet);
	while (!y->mark[0].ended || !y->mark[1].ended) {
		rc = k->ops->read(s->stream, STEP_MS, on_output, y);
		if (y->over) {
			sbx_failf("%s: %s: the output is over %zu bytes", k->name, what,
				  y->out->max);
			return -EFBIG;
		}
		if (rc > 0) {
			clock_gettime(CLOCK_MONOTONIC, &quiet);
			continue;
		}
		if (rc == 0) {
			sbx_failf("the stream ended");
			rc = -EPIPE;
		}
		if (rc != -ETIMEDOUT)
			goto lost;
		if (sbx_interrupted())
			return -EINTR;
		if (ms_since(&quiet) >= k->stall_ms) {
			sbx_failf("%s: %s: no answer from the shell in \"%s\" for %d s",
				  k->name, what, s->box, k->stall_ms / 1000);
			return -ETIMEDOUT;
		}
	}
	*code = y->mark[0].code;
	return 0;
lost : {
	char msg[400];

	snprintf(msg, sizeof(msg), "%s", sbx_fail_text());
	sbx_failf("%s: %s: the shell in \"%s\" was lost: %s", k->name, what, s->box, msg);
	return -EPIPE;
}
}

int keptsh_run(struct keptsh *k, const char *box, const char *what, const char *script,
	       int flags, struct strbuf *out)
{
	struct reply y = { .out = out };
	int code = 0, fresh, tries = 0, rc;

	for (;;) {
		struct keptsh_shell *s;

		rc = take(k, box, &s, &fresh);
		if (rc)
			return rc;
		if (out)
			out->len = 0;
		strbuf_release(&y.err);
		y.err = (struct strbuf)STRBUF_INIT(ERR_KEEP + 1);
		y.over = 0;
		rc = exchange(k, s, what, script, &y, &code);
		give_back(k, s, !rc);
		/* A shell kept from before may have been lost while idle,
		 * just before this script; a new one once, where the script
		 * may run twice. */
		if (rc == -EPIPE && !fresh && (flags & REMOTE_RUN_RETRY) && !tries++ &&
		    !sbx_interrupted())
			continue;
		break;
	}
	if (rc == -EPIPE)
		rc = -EIO;
	if (!rc && code) {
		rc = sh_exit_errno(code);
		if (rc > 0) {
			char e[300];

			json_text(e, sizeof(e), y.err.buf ? y.err.buf : "",
				  sizeof(e) - 1);
			sbx_failf("%s: %s: exit %d%s%s", k->name, what, code,
				  e[0] ? ": " : "", e);
			rc = -EIO;
		}
	}
	strbuf_release(&y.err);
	return rc;
}

/* ---- spares ---- */

struct opener {
	struct keptsh *k;
	struct keptsh_shell *s;
};

/* A thread of keptsh's own: open the spare s, already in the list. */
static void *open_spare(void *arg)
{
	struct opener *o = arg;
	struct keptsh *k = o->k;
	struct keptsh_shell *s = o->s;
	int rc;

	free(o);
	rc = k->ops->open(k->ctx, s->box, KEPTSH_LAUNCHER, &s->stream);
	if (rc)
		s->stream = NULL;
	/* Failed, or dropped meanwhile: gone, and the next command makes
	 * its own. */
	give_back(k, s, !rc);
	pthread_mutex_lock(&k->lock);
	k->openers--;
	pthread_cond_broadcast(&k->freed);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* Open a spare of box in the background; k->lock held. */
static void open_spare_locked(struct keptsh *k, const char *box)
{
	struct keptsh_shell *s = calloc(1, sizeof(*s));
	struct opener *o = malloc(sizeof(*o));
	pthread_attr_t attr;
	pthread_t t;

	if (!s || !o) {
		free(s);
		free(o);
		return;
	}
	snprintf(s->box, sizeof(s->box), "%s", box);
	s->spare = 1;
	s->busy = 1;
	s->n = ++k->opened;
	s->next = k->shells;
	k->shells = s;
	o->k = k;
	o->s = s;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, open_spare, o)) {
		unlink_locked(k, s);
		free(s);
		free(o);
	} else {
		k->openers++;
	}
	pthread_attr_destroy(&attr);
}

/* Open spares of box in the background up to KEPTSH_SPARES there or on
 * their way; k->lock held. */
static void refill_locked(struct keptsh *k, const char *box)
{
	struct keptsh_shell *s;
	int have = 0;

	if (k->stopping)
		return;
	for (s = k->shells; s; s = s->next)
		if (s->spare && !s->dropped && !strcmp(s->box, box))
			have++;
	for (; have < KEPTSH_SPARES; have++)
		open_spare_locked(k, box);
}

int keptsh_take_spare(struct keptsh *k, const char *box, void **stream)
{
	struct keptsh_shell *s;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&k->lock);
	for (;;) {
		struct keptsh_shell *opening = NULL;

		for (s = k->shells; s; s = s->next) {
			if (!s->spare || s->dropped || strcmp(s->box, box))
				continue;
			if (!s->busy)
				break;
			opening = s;
		}
		/* One on its way comes no later than an exec of our own. */
		if (s || !opening || sbx_interrupted() || ms_since(&t0) >= k->stall_ms)
			break;
		wait_step(k);
	}
	if (s)
		unlink_locked(k, s);
	refill_locked(k, box);
	pthread_mutex_unlock(&k->lock);
	if (!s)
		return -ENOENT;
	/* Output, or the end, from a shell that waits for its line: gone. */
	if (k->ops->read(s->stream, 0, ignore, NULL) != -ETIMEDOUT) {
		k->ops->close(s->stream);
		free(s);
		return -ENOENT;
	}
	*stream = s->stream;
	free(s);
	return 0;
}

void keptsh_describe(struct keptsh *k, const char *box, struct sbx_kvlist *out)
{
	struct keptsh_shell *s;
	int scripts = 0, ready = 0, opening = 0;

	pthread_mutex_lock(&k->lock);
	for (s = k->shells; s; s = s->next) {
		if (s->dropped || strcmp(s->box, box))
			continue;
		if (!s->spare)
			scripts++;
		else if (s->busy)
			opening++;
		else
			ready++;
	}
	pthread_mutex_unlock(&k->lock);
	sbx_kv_addf(out, "shells", "%d for scripts; spares: %d ready, %d opening",
		    scripts, ready, opening);
}

void keptsh_drop(struct keptsh *k, const char *box)
{
	close_unused(k, box, 0);
}
