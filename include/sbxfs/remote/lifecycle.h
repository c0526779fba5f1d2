/* SPDX-License-Identifier: MIT */
/*
 * One start/stop state machine for the remote providers, over their
 * sandbox APIs.
 *
 * A provider names its API's calls in a struct remote_box_ops (get a
 * sandbox's state, create, start, stop, delete) and maps each of its
 * state words to the layer's states; the layer decides, from the state a
 * sandbox is in, what to call and what to wait for, and waits with
 * backoff, a bound and Ctrl-C (sbx_interrupted()).  The slots
 * remote_create, remote_start, remote_stop and remote_remove have the
 * signatures of provider.h, for an ops table to point straight at them
 * (REMOTE_OPS_BOXES).
 */
#ifndef SBXFS_REMOTE_LIFECYCLE_H
#define SBXFS_REMOTE_LIFECYCLE_H

#include <stddef.h>

#include "sbxfs/provider.h"

struct remote;

/*
 * The layer's states.  Finer than provider.h's enum sbx_state where the
 * state machine needs it: a paused sandbox is stopped but is no outcome
 * a stop waits for, and a sandbox shown as destroyed is as good as gone.
 * The order is the order in which messages name the states waited for.
 */
enum remote_state {
	REMOTE_UNKNOWN = 0, /* a word the provider's table does not have */
	REMOTE_CREATING,
	REMOTE_STARTING,
	REMOTE_RUNNING,
	REMOTE_STOPPING,
	REMOTE_STOPPED,
	REMOTE_PAUSED,
	REMOTE_ARCHIVED,
	REMOTE_ERROR,
	REMOTE_DELETING,
	REMOTE_GONE, /* no such sandbox (-ENOENT), or a word that means it */
};

/* A set of states, for remote_wait(). */
#define REMOTE_IN(s) (1u << (s))

/* One word of a provider's and the layer's state for it. */
struct remote_state_word {
	const char *word;
	enum remote_state state;
};

/* struct remote_box_ops.flags */
enum {
	/* start lets a sandbox in a state the table does not know finish
	 * what it is doing instead of starting it (states come and go on
	 * this server faster than the table follows). */
	REMOTE_BOX_UNKNOWN_BUSY = 1u << 0,
};

/*
 * A provider's sandbox API.  Every call blocks, may fail with the errno
 * of its transport or answer (with sbx_failf() text), and must honour
 * sbx_interrupted() where it waits.  `box` is the name the tree shows.
 */
struct remote_box_ops {
	/* The word for a sandbox in messages: "sandbox", "container". */
	const char *noun;
	/* The provider's state words, ending with { NULL, 0 }. */
	const struct remote_state_word *states;
	/* REMOTE_BOX_* above. */
	unsigned flags;

	/*
	 * state: the provider's state word for `box` into word (size
	 * bytes; "" if the server gives none) and, if the server says why a
	 * sandbox failed, its words into why (why_size bytes; "" if not).
	 * -ENOENT if there is no such sandbox.  Required.
	 */
	int (*state)(struct remote *r, char *word, size_t size, char *why,
		     size_t why_size, const char *box);
	/*
	 * create: ask for a new sandbox `box` with the `new` arguments
	 * `args` (unknown keys: -EINVAL with text); -EEXIST if the name is
	 * taken.  Returns once the server has taken the request; the layer
	 * then waits for it to run.  Required.
	 */
	int (*create)(struct remote *r, const char *box, const struct sbx_kvlist *args);
	/*
	 * start, stop: ask the server to start or stop `box`, which the
	 * layer has seen in a state that allows it; return once the request
	 * is taken (the layer waits for the outcome).  Whatever the provider
	 * holds open to the sandbox and that a stop breaks (a socket, a
	 * terminal) it closes here.  Required.
	 */
	int (*start)(struct remote *r, const char *box);
	int (*stop)(struct remote *r, const char *box);
	/*
	 * remove: ask the server to delete `box`.  -ENOENT when it is
	 * already gone (the layer takes that as done).  Required.
	 */
	int (*remove)(struct remote *r, const char *box);
};

/* How long a state change may take before a wait gives up. */
#define REMOTE_STATE_WAIT_S 300

/* The layer's state for a provider's word (NULL: REMOTE_UNKNOWN). */
enum remote_state remote_state_of(const struct remote_state_word *states,
				  const char *word);
/* provider.h's state for one of the layer's, for `status` and listings. */
enum sbx_state remote_sbx_state(enum remote_state s);

/*
 * Wait until `box` is in one of the states of `want` (REMOTE_IN() bits;
 * REMOTE_GONE for "no such sandbox").  Asks the provider's state with a
 * backoff from 100 ms growing by half up to 1 s.  0 once it is there;
 * -EIO with text when the sandbox is in REMOTE_ERROR (and that is not
 * wanted); -ETIMEDOUT past limit_s seconds; -EINTR when the caller gave
 * up (sbx_interrupted()); or the state call's errno.
 */
int remote_wait(struct remote *r, const char *box, unsigned want, int limit_s);

/*
 * Slots of provider.h, for p whose priv begins with a struct remote
 * that has box_ops.
 *  create: the provider's create, then a wait for the sandbox to run.
 *  start: nothing for a running sandbox; one that is on its way up is
 *    waited for, one that is stopping is let stop first, one being
 *    deleted is -EBUSY; else the provider's start.  Then a wait for it
 *    to run.
 *  stop: nothing for a stopped, paused or archived sandbox; one being
 *    deleted is -EBUSY, one on its way up is waited for first, one
 *    already stopping is not asked again.  The box counts as stopping
 *    meanwhile (boxtable_set_stopping()), and its staged copies are
 *    dropped.  Then a wait for it to be stopped (or archived).
 *  remove: the provider's remove, a wait for the sandbox to be gone,
 *    then its record and staged copies are forgotten.
 */
int remote_create(struct sbx_provider *p, const char *box, const struct sbx_kvlist *args);
int remote_start(struct sbx_provider *p, const char *box);
int remote_stop(struct sbx_provider *p, const char *box);
int remote_remove(struct sbx_provider *p, const char *box);

#define REMOTE_OPS_BOXES                                                         \
	.create = remote_create, .remove = remote_remove, .start = remote_start, \
	.stop = remote_stop

#endif
