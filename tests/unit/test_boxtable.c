/* SPDX-License-Identifier: MIT */
/* The remote layer's sandbox table, and the state words of the state
 * machine. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/remote/boxtable.h"
#include "sbxfs/remote/lifecycle.h"
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

void test_boxtable(void)
{
	check_table();
	check_states();
}
