/* SPDX-License-Identifier: MIT */
/* One start/stop state machine over the providers' sandbox APIs.  See
 * lifecycle.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/remote/lifecycle.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/remote/time.h"

enum remote_state remote_state_of(const struct remote_state_word *states,
				  const char *word)
{
	for (; word && states->word; states++)
		if (!strcmp(states->word, word))
			return states->state;
	return REMOTE_UNKNOWN;
}

enum sbx_state remote_sbx_state(enum remote_state s)
{
	static const enum sbx_state map[] = {
		[REMOTE_UNKNOWN] = SBX_STATE_UNKNOWN,
		[REMOTE_CREATING] = SBX_STATE_CREATING,
		[REMOTE_STARTING] = SBX_STATE_STARTING,
		[REMOTE_RUNNING] = SBX_STATE_RUNNING,
		[REMOTE_STOPPING] = SBX_STATE_STOPPING,
		[REMOTE_STOPPED] = SBX_STATE_STOPPED,
		[REMOTE_PAUSED] = SBX_STATE_STOPPED,
		[REMOTE_ARCHIVED] = SBX_STATE_ARCHIVED,
		[REMOTE_ERROR] = SBX_STATE_ERROR,
		[REMOTE_DELETING] = SBX_STATE_DELETING,
		[REMOTE_GONE] = SBX_STATE_DELETING,
	};

	return (size_t)s < sizeof(map) / sizeof(map[0]) ? map[s] : SBX_STATE_UNKNOWN;
}

/* The states of `want` in the provider's words, for messages: "gone"
 * for REMOTE_GONE, then every word the table maps to each state. */
static void want_words(char *out, size_t size, const struct remote_state_word *states,
		       unsigned want)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned s = 0; s <= REMOTE_GONE; s++) {
		if (!(want & REMOTE_IN(s)))
			continue;
		if (s == REMOTE_GONE && o < size)
			o += (size_t)snprintf(out + o, size - o, "%sgone", o ? " " : "");
		for (const struct remote_state_word *w = states; w->word && o < size; w++)
			if (w->state == s)
				o += (size_t)snprintf(out + o, size - o, "%s%s",
						      o ? " " : "", w->word);
	}
}

int remote_wait(struct remote *r, const char *box, unsigned want, int limit_s)
{
	const struct remote_box_ops *ops = r->box_ops;
	struct timespec t0;
	long delay_ms = 100;
	char words[160];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char word[64], why[256] = "";
		enum remote_state s;
		int rc = ops->state(r, word, sizeof(word), why, sizeof(why), box);

		if (rc == -ENOENT)
			return (want & REMOTE_IN(REMOTE_GONE)) ? 0 : rc;
		if (rc)
			return rc;
		s = remote_state_of(ops->states, word);
		if (want & REMOTE_IN(s))
			return 0;
		if (!word[0])
			snprintf(word, sizeof(word), "?");
		if (s == REMOTE_ERROR) {
			sbx_failf("%s: %s \"%s\" is in state %s%s%s", r->name, ops->noun,
				  box, word, why[0] ? ": " : "", why);
			return -EIO;
		}
		want_words(words, sizeof(words), ops->states, want);
		if (ms_since(&t0) > limit_s * 1000L) {
			sbx_failf("%s: %s \"%s\" still %s after %d s (waiting for %s)",
				  r->name, ops->noun, box, word, limit_s, words);
			return -ETIMEDOUT;
		}
		usleep((useconds_t)delay_ms * 1000);
		if (sbx_interrupted()) {
			sbx_failf(
				"%s: interrupted while %s \"%s\" was %s (waiting for %s)",
				r->name, ops->noun, box, word, words);
			return -EINTR;
		}
		if (delay_ms < 1000)
			delay_ms = delay_ms * 3 / 2;
	}
}

/* The layer's state of `box` now. */
static int state_now(struct remote *r, enum remote_state *out, const char *box)
{
	char word[64], why[256];
	int rc = r->box_ops->state(r, word, sizeof(word), why, sizeof(why), box);

	*out = rc ? REMOTE_UNKNOWN : remote_state_of(r->box_ops->states, word);
	return rc;
}

static int being_deleted(struct remote *r, const char *box)
{
	sbx_failf("%s: %s \"%s\" is being deleted", r->name, r->box_ops->noun, box);
	return -EBUSY;
}

int remote_create(struct sbx_provider *p, const char *box, const struct sbx_kvlist *args)
{
	struct remote *r = REMOTE(p);
	int rc = r->box_ops->create(r, box, args);

	/* Sandboxes are made running: wait until it is usable. */
	return rc ? rc
		  : remote_wait(r, box, REMOTE_IN(REMOTE_RUNNING), REMOTE_STATE_WAIT_S);
}

int remote_start(struct sbx_provider *p, const char *box)
{
	struct remote *r = REMOTE(p);
	enum remote_state s;
	int rc = state_now(r, &s, box);

	if (rc)
		return rc;
	switch (s) {
	case REMOTE_RUNNING:
		return 0;
	case REMOTE_CREATING:
	case REMOTE_STARTING:
		break; /* on its way */
	case REMOTE_UNKNOWN:
		if (!(r->box_ops->flags & REMOTE_BOX_UNKNOWN_BUSY))
			rc = r->box_ops->start(r, box);
		break;
	case REMOTE_STOPPING:
		/* Let the stop finish, then start. */
		rc = remote_wait(r, box,
				 REMOTE_IN(REMOTE_STOPPED) | REMOTE_IN(REMOTE_ARCHIVED),
				 REMOTE_STATE_WAIT_S);
		if (!rc)
			rc = r->box_ops->start(r, box);
		break;
	case REMOTE_DELETING:
	case REMOTE_GONE:
		return being_deleted(r, box);
	default:
		rc = r->box_ops->start(r, box);
		break;
	}
	return rc ? rc
		  : remote_wait(r, box, REMOTE_IN(REMOTE_RUNNING), REMOTE_STATE_WAIT_S);
}

int remote_stop(struct sbx_provider *p, const char *box)
{
	struct remote *r = REMOTE(p);
	enum remote_state s;
	int call = 1, rc = state_now(r, &s, box);

	if (rc)
		return rc;
	switch (s) {
	case REMOTE_STOPPED:
	case REMOTE_PAUSED:
	case REMOTE_ARCHIVED:
		return 0;
	case REMOTE_DELETING:
	case REMOTE_GONE:
		return being_deleted(r, box);
	case REMOTE_STOPPING:
		call = 0;
		break;
	case REMOTE_CREATING:
	case REMOTE_STARTING:
		/* Stop it once it is up: a start under way refuses a stop. */
		rc = remote_wait(r, box, REMOTE_IN(REMOTE_RUNNING), REMOTE_STATE_WAIT_S);
		if (rc)
			return rc;
		break;
	default:
		break;
	}
	boxtable_set_stopping(&r->boxes, box, 1);
	if (call)
		rc = r->box_ops->stop(r, box);
	stage_drop_box(r->stage, box);
	if (!rc)
		rc = remote_wait(r, box,
				 REMOTE_IN(REMOTE_STOPPED) | REMOTE_IN(REMOTE_ARCHIVED),
				 REMOTE_STATE_WAIT_S);
	boxtable_set_stopping(&r->boxes, box, 0);
	return rc;
}

int remote_remove(struct sbx_provider *p, const char *box)
{
	struct remote *r = REMOTE(p);
	int rc;

	boxtable_set_stopping(&r->boxes, box, 1);
	rc = r->box_ops->remove(r, box);
	if (rc == -ENOENT)
		rc = 0;
	if (!rc)
		rc = remote_wait(r, box, REMOTE_IN(REMOTE_GONE), REMOTE_STATE_WAIT_S);
	boxtable_set_stopping(&r->boxes, box, 0);
	if (!rc) {
		boxtable_forget(&r->boxes, box);
		stage_drop_box(r->stage, box);
	}
	return rc;
}
