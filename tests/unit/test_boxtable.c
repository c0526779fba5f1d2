/* SPDX-License-Identifier: MIT */
/* The remote layer's sandbox table, and the start/stop state machine
 * over a scripted provider. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbxfs/remote/boxtable.h"
#include "sbxfs/remote/lifecycle.h"
#include "sbxfs/remote/remote.h"
#include "test.h"

static int released;

static void release(void *priv)
{
	released++;
	free(priv);
}

static void check_table(void)
{
	struct boxtable t;
	struct rbox *b;
	char id[RBOX_ID_MAX];
	void *old;
	unsigned gen;

	boxtable_init(&t, release);
	CHECK(boxtable_id(&t, id, sizeof(id), "a") == -ENOENT);
	CHECK(!boxtable_fresh(&t, 1000));
	/* A record made by a look is gone until an id comes. */
	b = boxtable_get(&t, "a");
	CHECK(b && b->gone && boxtable_get(&t, "a") == b);
	CHECK(boxtable_id(&t, id, sizeof(id), "a") == -ENOENT);
	boxtable_set(&t, "a", "id-1");
	CHECK(boxtable_id(&t, id, sizeof(id), "a") == 0 && !strcmp(id, "id-1"));

	/* A new id for the name detaches the old sandbox's priv. */
	b->priv = strdup("x");
	boxtable_set(&t, "a", "id-1");
	CHECK(b->priv && released == 0);
	boxtable_set(&t, "a", "id-2");
	CHECK(!b->priv && released == 1);
	boxtable_lock(&t);
	b = boxtable_set_locked(&t, "a", "id-2", &old);
	boxtable_unlock(&t);
	CHECK(b && !old);

	/* Forgotten: gone, no ids, priv released; the record stays. */
	b->priv = strdup("y");
	snprintf(b->alt_id, sizeof(b->alt_id), "docker");
	boxtable_forget(&t, "a");
	CHECK(b->gone && !b->id[0] && !b->alt_id[0] && !b->priv && released == 2);
	CHECK(boxtable_get(&t, "a") == b);
	boxtable_forget(&t, "nothing");

	/* A complete listing marks gone what it did not show. */
	boxtable_set(&t, "a", "1");
	boxtable_set(&t, "b", "2");
	gen = boxtable_sweep_begin(&t);
	boxtable_lock(&t);
	b = boxtable_set_locked(&t, "b", "2", &old);
	b->seen = gen;
	boxtable_unlock(&t);
	boxtable_sweep_end(&t, gen);
	CHECK(boxtable_id(&t, id, sizeof(id), "a") == -ENOENT);
	CHECK(boxtable_id(&t, id, sizeof(id), "b") == 0 && !strcmp(id, "2"));
	CHECK(boxtable_fresh(&t, 10000) && !boxtable_fresh(&t, -1));
	/* An older listing ending late keeps what a newer one showed. */
	{
		unsigned g1 = boxtable_sweep_begin(&t), g2 = boxtable_sweep_begin(&t);

		b->seen = g2;
		boxtable_sweep_end(&t, g1);
		CHECK(!b->gone);
		boxtable_sweep_end(&t, g2);
		CHECK(!b->gone);
	}

	/* Seen by a listing, or by a call about it alone: there, in its
	 * state; a word too long for the record is "?". */
	CHECK(!boxtable_state_is(&t, "c", "up"));
	gen = boxtable_sweep_begin(&t);
	boxtable_seen(&t, "c", "up", gen);
	boxtable_seen(&t, "b", NULL, gen);
	boxtable_sweep_end(&t, gen);
	CHECK(boxtable_state_is(&t, "c", "up") && !boxtable_state_is(&t, "c", "down"));
	CHECK(boxtable_get(&t, "c")->seen == gen && !b->gone);
	boxtable_seen(&t, "c", "a state word far longer than any record keeps", 0);
	CHECK(boxtable_state_is(&t, "c", "?") && boxtable_get(&t, "c")->seen == gen);
	boxtable_forget(&t, "c");
	CHECK(!boxtable_state_is(&t, "c", "?"));

	boxtable_set_stopping(&t, "b", 1);
	CHECK(boxtable_stopping(&t, b) == 1);
	boxtable_set_stopping(&t, "b", 0);
	CHECK(boxtable_stopping(&t, b) == 0);

	b->priv = strdup("z");
	boxtable_destroy(&t);
	CHECK(released == 3);
}

static void check_states(void)
{
	static const struct remote_state_word words[] = {
		{ "up", REMOTE_RUNNING },  { "down", REMOTE_STOPPED },
		{ "held", REMOTE_PAUSED }, { "dead", REMOTE_GONE },
		{ NULL, REMOTE_UNKNOWN },
	};

	CHECK(remote_state_of(words, "up") == REMOTE_RUNNING);
	CHECK(remote_state_of(words, "Up") == REMOTE_UNKNOWN);
	CHECK(remote_state_of(words, NULL) == REMOTE_UNKNOWN);
	CHECK(remote_sbx_state(REMOTE_PAUSED) == SBX_STATE_STOPPED);
	CHECK(remote_sbx_state(REMOTE_GONE) == SBX_STATE_DELETING);
	CHECK(remote_sbx_state(REMOTE_ARCHIVED) == SBX_STATE_ARCHIVED);
	CHECK(remote_sbx_state((enum remote_state)99) == SBX_STATE_UNKNOWN);
}

/* A provider whose sandbox goes through `states` (one per state call;
 * NULL: no such sandbox), and which notes the calls it gets. */
struct fake {
	struct remote r;
	const char *const *states;
	int n, i, asked;
	char calls[128];
	int stopping_seen;
};

static const struct remote_state_word fake_words[] = {
	{ "up", REMOTE_RUNNING },     { "down", REMOTE_STOPPED },
	{ "held", REMOTE_PAUSED },    { "booting", REMOTE_STARTING },
	{ "new", REMOTE_CREATING },   { "halting", REMOTE_STOPPING },
	{ "dying", REMOTE_DELETING }, { "broken", REMOTE_ERROR },
	{ NULL, REMOTE_UNKNOWN },
};

static int fake_state(struct remote *r, char *word, size_t size, char *why,
		      size_t why_size, const char *box)
{
	struct fake *f = (struct fake *)r;
	const char *s = f->states[f->i];

	f->asked++;
	if (f->i + 1 < f->n)
		f->i++;
	if (!s)
		return -ENOENT;
	snprintf(word, size, "%s", s);
	snprintf(why, why_size, "%s", !strcmp(s, "broken") ? "disk full" : "");
	return 0;
}

static int note(struct remote *r, const char *what, const char *box)
{
	struct fake *f = (struct fake *)r;
	struct rbox *b = boxtable_get(&r->boxes, box);

	f->stopping_seen = b ? boxtable_stopping(&r->boxes, b) : -1;
	snprintf(f->calls + strlen(f->calls), sizeof(f->calls) - strlen(f->calls), "%s ",
		 what);
	return 0;
}

static int fake_create(struct remote *r, const char *box, const struct sbx_kvlist *args)
{
	return note(r, "create", box);
}

static int fake_start(struct remote *r, const char *box)
{
	return note(r, "start", box);
}

static int fake_stop(struct remote *r, const char *box)
{
	return note(r, "stop", box);
}

static int fake_remove(struct remote *r, const char *box)
{
	return note(r, "remove", box);
}

static struct remote_box_ops fake_ops = {
	.noun = "box",
	.states = fake_words,
	.state = fake_state,
	.create = fake_create,
	.start = fake_start,
	.stop = fake_stop,
	.remove = fake_remove,
};

static int create_plain(struct sbx_provider *p, const char *box)
{
	struct sbx_kvlist args = { 0 };

	return remote_create(p, box, &args);
}

/* Run op on a fresh fake that goes through `states`; its calls. */
static int run(struct fake *f, struct sbx_provider *p, struct stage *st,
	       int (*op)(struct sbx_provider *, const char *), const char *const *states,
	       int n)
{
	memset(f, 0, sizeof(*f));
	f->r.name = "fake";
	f->r.stage = st;
	f->r.box_ops = &fake_ops;
	boxtable_init(&f->r.boxes, NULL);
	f->states = states;
	f->n = n;
	p->priv = f;
	return op(p, "b");
}

static void check_machine(void)
{
	static const char *const stopped[] = { "down", "booting", "up" };
	static const char *const up[] = { "up" };
	static const char *const dying[] = { "dying" };
	static const char *const making[] = { "new", "up", "down" };
	static const char *const halting[] = { "halting", "down" };
	static const char *const halting_then[] = { "halting", "down", "up" };
	static const char *const held[] = { "held", "up" };
	static const char *const weird[] = { "weird", "up" };
	static const char *const gone[] = { "up", NULL };
	static const char *const broken[] = { "broken" };
	static const char *const slow[] = { "booting" };
	char dir[] = "/tmp/sbxfs-test-lifecycle.XXXXXX";
	struct sbx_provider p = { 0 };
	struct stage *st;
	struct fake f;
	char id[RBOX_ID_MAX];

#define RUN(op, states) run(&f, &p, st, op, states, sizeof(states) / sizeof(states[0]))
	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	st = stage_new(dir, 1 << 20);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK(RUN(remote_start, stopped) == 0 && !strcmp(f.calls, "start "));
	boxtable_destroy(&f.r.boxes);
	CHECK(RUN(remote_start, up) == 0 && !f.calls[0] && f.asked == 1);
	boxtable_destroy(&f.r.boxes);
	CHECK(RUN(remote_start, dying) == -EBUSY && !f.calls[0]);
	CHECK(!strcmp(sbx_fail_text(), "fake: box \"b\" is being deleted"));
	boxtable_destroy(&f.r.boxes);
	/* A paused box is started; one stopping is let stop first. */
	CHECK(RUN(remote_start, held) == 0 && !strcmp(f.calls, "start "));
	boxtable_destroy(&f.r.boxes);
	CHECK(RUN(remote_start, halting_then) == 0 && !strcmp(f.calls, "start "));
	boxtable_destroy(&f.r.boxes);
	/* A state the table does not know: started, or waited for. */
	CHECK(RUN(remote_start, weird) == 0 && !strcmp(f.calls, "start "));
	boxtable_destroy(&f.r.boxes);
	fake_ops.flags = REMOTE_BOX_UNKNOWN_BUSY;
	CHECK(RUN(remote_start, weird) == 0 && !f.calls[0]);
	boxtable_destroy(&f.r.boxes);
	fake_ops.flags = 0;

	/* A box on its way up is stopped once up; stopping meanwhile. */
	CHECK(RUN(remote_stop, making) == 0 && !strcmp(f.calls, "stop "));
	CHECK(f.stopping_seen == 1 && !f.r.boxes.boxes->stopping);
	boxtable_destroy(&f.r.boxes);
	CHECK(RUN(remote_stop, halting) == 0 && !f.calls[0]);
	boxtable_destroy(&f.r.boxes);
	CHECK(RUN(remote_stop, held) == 0 && !f.calls[0] && f.asked == 1);
	boxtable_destroy(&f.r.boxes);

	CHECK(RUN(remote_remove, gone) == 0 && !strcmp(f.calls, "remove "));
	CHECK(boxtable_id(&f.r.boxes, id, sizeof(id), "b") == -ENOENT);
	boxtable_destroy(&f.r.boxes);
	CHECK(RUN(create_plain, stopped) == 0 && !strcmp(f.calls, "create "));
	boxtable_destroy(&f.r.boxes);

	/* Waits: a failed box, and one too slow. */
	CHECK(RUN(remote_start, broken) == -EIO);
	CHECK(!strcmp(sbx_fail_text(), "fake: box \"b\" is in state broken: disk full"));
	boxtable_destroy(&f.r.boxes);
	RUN(remote_start, up);
	f.states = slow;
	f.n = 1;
	f.i = 0;
	CHECK(remote_wait(&f.r, "b", REMOTE_IN(REMOTE_RUNNING) | REMOTE_IN(REMOTE_GONE),
			  0) == -ETIMEDOUT);
	CHECK(!strcmp(sbx_fail_text(),
		      "fake: box \"b\" still booting after 0 s (waiting for up gone)"));
	boxtable_destroy(&f.r.boxes);
	stage_free(st);
	rmdir(dir);
#undef RUN
}

void test_boxtable(void)
{
	check_table();
	check_states();
	check_machine();
}
