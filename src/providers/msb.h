/* SPDX-License-Identifier: MIT */
/*
 * The microsandbox provider's parts, shared by microsandbox.c (the msb
 * tool: sandboxes and their lifecycle), msb_agent.c (the agent socket of
 * each sandbox: frames and sessions), msb_files.c (root/ through the
 * agent's fs messages), msb_cmd.c (commands and scripts through its exec
 * messages) and msb_parse.c (what the agent and msb send that needs
 * parsing).  Not an interface: the provider's interface is provider.h.
 */
#ifndef SBXFS_PROVIDERS_MSB_H
#define SBXFS_PROVIDERS_MSB_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sbxfs/provider.h"
#include "sbxfs/remote/cbor.h"
#include "sbxfs/remote/cmdpoll.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/stage.h"
#include "sbxfs/stagefile.h"
#include "sbxfs/strbuf.h"

/* ---- the agent protocol ---- */

/* A frame: [len u32 BE = 5 + body][id u32 BE][flags u8][body]. */
#define MSB_FRAME_HEAD 9
#define MSB_FRAME_MAX (4u << 20) /* the largest len the relay takes */
#define MSB_CHUNK_MAX (3u << 20) /* the largest fs data chunk */
/* The protocol generation spoken: a newer agent is spoken to in it. */
#define MSB_GEN 7
/* The relay's correlation-id ranges: 128 slots of this many ids. */
#define MSB_ID_STEP 33554431u

enum {
	MSB_FLAG_TERMINAL = 0x01,
	MSB_FLAG_START = 0x02,
	MSB_FLAG_SHUTDOWN = 0x04,
};

/* A frame from the agent.  The payload is decoded; both it and the type
 * point into the frame's bytes, which live only as long as the call
 * they are given to. */
struct msb_frame {
	uint32_t id;
	unsigned flags;
	unsigned v;		 /* the sender's protocol generation */
	struct cbor_val type;	 /* TEXT, "core.fs.response" */
	struct cbor_val raw;	 /* BYTES: `p`, the payload's CBOR */
	struct cbor_val payload; /* the payload, decoded */
};

/* One file as the agent describes it (EntryInfo). */
struct msb_entry {
	struct stat st;
	struct cbor_val path; /* TEXT: the full path in the sandbox */
};

/* ---- msb_parse.c ---- */

/* The body of a frame (after id and flags) into f: a CBOR map of v, t
 * and p, p a byte string that holds one CBOR item.  0 or -EPROTO. */
int msb_frame_parse(struct msb_frame *f, const uint8_t *body, size_t len);
/* Is f of type `type`? */
int msb_frame_is(const struct msb_frame *f, const char *type);
/* The frame that sends `payload` (CBOR bytes) as message `type` of
 * generation v on id with flags, whole, into out.  0, -E2BIG past
 * MSB_FRAME_MAX, -ENOMEM. */
int msb_frame_build(struct strbuf *out, uint32_t id, unsigned flags, unsigned v,
		    const char *type, const void *payload, size_t len);

/* An EntryInfo map into *e: type and permission bits from `mode` (or
 * from `kind` when mode has no type), size, owner, times.  -EPROTO. */
int msb_entry_parse(struct msb_entry *e, const struct cbor_val *info);

/*
 * The errno of an fs failure's text: the N of its last "(os error N)",
 * else EIO.  Never 0.
 */
int msb_os_errno(const char *text, size_t len);

#define MSB_ID_MAX 64

/* A sandbox as `msb ls` or `msb inspect` shows it, or the cloud API. */
struct msb_box {
	char name[SBX_NAME_MAX + 1];
	char id[MSB_ID_MAX]; /* the cloud's uuid; "" from msb */
	char status[32];     /* "Running", as msb spells it */
	char image[256];     /* "" if not said */
	char created[40];    /* RFC 3339, "" if not said */
};

/*
 * `msb ls --format json`: call fn for each sandbox of the array, in
 * order; nonzero from fn stops.  Entries without a usable name are
 * skipped.  0, fn's value, or -EPROTO for text that is no such array.
 */
int msb_parse_ls(const char *json, size_t len,
		 int (*fn)(void *ctx, const struct msb_box *b), void *ctx);

/* What `msb inspect NAME --format json` says that commands need: the
 * sandbox's environment ("K=V" each), working directory, user, shell. */
struct msb_runtime {
	char **env;		      /* NULL-terminated; NULL if none */
	char *workdir, *user, *shell; /* NULL if not set */
	unsigned cpus;
	unsigned memory_mib;
};
/* 0, or -EPROTO; *b gets the status too. */
int msb_parse_inspect(struct msb_box *b, struct msb_runtime *rt, const char *json,
		      size_t len);
void msb_runtime_release(struct msb_runtime *rt);

/* The cloud API's Sandbox object into *b (its id too) and, rt not NULL,
 * its spec's runtime settings.  0, or -EPROTO (no usable name or id). */
int msb_parse_cloud_box(struct msb_box *b, struct msb_runtime *rt, const char *json,
			size_t len);
/*
 * A page of the cloud's list, {"data": [Sandbox...], "next_cursor"?}:
 * fn for each usable sandbox, in order (nonzero stops), and the cursor
 * of the next page into cursor ("" if none).  0, fn's value, or -EPROTO.
 */
int msb_parse_cloud_page(const char *json, size_t len, char *cursor, size_t size,
			 int (*fn)(void *ctx, const struct msb_box *b), void *ctx);

/* ---- the provider ---- */

struct msb_conn; /* one agent socket, msb_agent.c */

struct msb {
	struct remote r;	  /* first: the remote layer's part */
	int cloud;		  /* the cloud backend: REST and the agent WebSocket */
	char *api_url;		  /* cloud: the API's base, no trailing '/' */
	char *auth;		  /* cloud: "Authorization: Bearer KEY" (a secret) */
	struct http_client *http; /* cloud */
	char *msb;		  /* the msb program, as found on PATH */
	char *home;		  /* MSB_HOME, or ~/.microsandbox */
	char **envp;		  /* the environment msb runs with */
	char *image;		  /* what mkdir creates sandboxes from */

	pthread_mutex_t lock; /* guards conns and readers */
	pthread_cond_t readers_done;
	struct msb_conn *conns; /* live agent sockets */
	int readers;		/* socket reader threads not yet ended */
	/* r.boxes: a record's state is msb's status word; its priv the
	 * struct msb_runtime from inspect, once asked. */
};

#define MSB(p) ((struct msb *)(p)->priv)

/* ---- microsandbox.c ---- */

/* The runtime settings of `box` (env, workdir, user, shell), from a
 * cached inspect: copied into *rt.  0 or -errno with text. */
int msb_runtime_of(struct msb *m, struct msb_runtime *rt, const char *box);

/* The flag of `msb create` for the `new` argument key=v ("-e", "--label",
 * "-w", "-c", "-m"), or NULL with text if it is not one sbxfs takes. */
const char *msb_create_flag(const char *key, const char *v);

/* ---- msb_cloud.c: the cloud backend's REST API and agent WebSocket ---- */

/* Set up m->api_url, m->auth and m->http from -o api_url=, api_key= or
 * MSB_API_URL, MSB_API_KEY, and try the key once (a refusal is -EACCES).
 * 0 or -errno with text; msb_cloud_free() undoes it either way. */
int msb_cloud_init(struct msb *m, const struct sbx_kvlist *opts);
void msb_cloud_free(struct msb *m);
/* As msb ls, inspect, create, start/stop and rm -f, each -errno with
 * text (-ENOENT no such sandbox, -EEXIST the name is taken). */
int msb_cloud_list(struct msb *m, int (*fn)(void *ctx, const struct msb_box *b),
		   void *ctx);
int msb_cloud_inspect(struct msb *m, struct msb_box *b, struct msb_runtime *rt,
		      const char *box);
int msb_cloud_create(struct msb *m, const char *box, const char *image,
		     const struct sbx_kvlist *args);
int msb_cloud_lifecycle(struct msb *m, const char *verb, const char *box);
int msb_cloud_remove(struct msb *m, const char *box);
/* A stream socket to the agent of `box` over its WebSocket: the fd, or
 * -EAGAIN (not running) or -errno, with text. */
int msb_cloud_agent(struct msb *m, const char *box);

/* ---- msb_agent.c: sessions on the agent socket of a sandbox ---- */

struct msb_sess;

/*
 * What a session is told.  Called on the socket's reader thread, one
 * frame at a time, in arrival order: with each frame of the session
 * (after its last, a terminal one, nothing more comes); or once with f
 * NULL, `err` and `why` when the session ended otherwise: the socket
 * died (-ECONNRESET), or the agent refused a message (core.error:
 * -EPROTO).  A negative return fails the session with that errno (the
 * text from sbx_failf()), and nothing more is delivered.
 */
typedef int (*msb_frame_fn)(void *ctx, const struct msb_frame *f, int err,
			    const char *why);

/*
 * Open a session on the agent socket of `box` (connecting first if
 * there is none, or it died): a fresh id, and the first frame `type`
 * with the CBOR `payload` and MSB_FLAG_START.  0 and *out; -EAGAIN if
 * the sandbox has no agent socket (not running); -ETIMEDOUT if the
 * agent does not become ready in time; -errno with text.
 */
int msb_sess_open(struct msb *m, struct msb_sess **out, const char *box, const char *type,
		  const struct strbuf *payload, msb_frame_fn fn, void *ctx);
/* Send a further frame on the session (flags 0).  0, or -errno with
 * text (-ECONNRESET once the socket died). */
int msb_sess_send(struct msb_sess *s, const char *type, const struct strbuf *payload);
/*
 * Wait for the session's end: 0 after its terminal frame (or a failure
 * fn returned); -ECONNRESET if the socket died; -ETIMEDOUT after
 * `idle_ms` with nothing heard (<= 0: no bound); -EINTR when the caller
 * gives up (sbx_interrupted()).  With text.
 */
int msb_sess_wait(struct msb_sess *s, int idle_ms);
/* Forget the session: fn is not called again.  Always, once. */
void msb_sess_close(struct msb_sess *s);
/* Close the agent socket of `box` (NULL: of every sandbox): a stop.
 * With box NULL, also waits for every socket's reader to end. */
void msb_agent_close(struct msb *m, const char *box);

/* ---- msb_files.c ---- */

extern const struct stagefile_ops msb_stagefile_ops;
/* readdir, readlink, mkdir, unlink, rmdir, rename, chmod, chown,
 * symlink, truncate and utimens by the agent's messages, for the remote
 * layer's slots (remote.h). */
extern const struct remote_fs_ops msb_fs_ops;

/* ---- msb_cmd.c ---- */

/* The remote layer's run (remote.h): a script through an exec session. */
int msb_run(struct remote *r, const char *box, const char *what, const char *script,
	    int flags, struct strbuf *out);
int msb_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		  const char *cmdline, struct sbx_cmd_sink *sink);
ssize_t msb_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		      const volatile int *interrupted);
int msb_cmd_signal(struct sbx_provider *p, void *handle, int sig);
void msb_cmd_release(struct sbx_provider *p, void *handle);

#endif
