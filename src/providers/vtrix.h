/* SPDX-License-Identifier: MIT */
/*
 * The Vtrix provider's parts, shared by vtrix.c (REST, errors, sandboxes),
 * vtrix_rpc.c (the JSON-RPC socket of each sandbox), vtrix_files.c (root/)
 * and vtrix_cmd.c (commands).  Not an interface: the provider's interface
 * is provider.h.
 */
#ifndef SBXFS_PROVIDERS_VTRIX_H
#define SBXFS_PROVIDERS_VTRIX_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sbxfs/http.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/provider.h"
#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/cmdpoll.h"
#include "sbxfs/remote/errmap.h"
#include "sbxfs/remote/find.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/lifecycle.h"
#include "sbxfs/remote/opts.h"
#include "sbxfs/remote/shell.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/remote/request.h"
#include "sbxfs/remote/time.h"
#include "sbxfs/stage.h"
#include "sbxfs/stagefile.h"
#include "sbxfs/strbuf.h"

#define VX_LIST_PAGE 100
#define VX_LIST_PAGES_MAX 200 /* 20,000 sandboxes */
#define VX_LISTING_MAX (64u << 20)
#define VX_WS_MESSAGE_MAX (160u << 20)
#define VX_NAME_LABEL "name" /* the label that names a sandbox here */

/* Where a failure came from, for the one errno mapping (vx_errno). */
enum vx_src {
	VX_ENVELOPE, /* a REST envelope with code != 0 */
	VX_RPC,	     /* a JSON-RPC error object */
	VX_HTTP,     /* an HTTP status that came without an envelope */
};

struct vx_rpc; /* one JSON-RPC socket, vtrix_rpc.c */

struct vx {
	struct remote r; /* first: the remote layer's part */
	struct http_client *http;
	char *url;    /* gateway base URL, no trailing '/' */
	char *prefix; /* "/api/v1/sandbox" (R1-R3) or "/api/v1/sandboxes" (R4) */
	int r4;	      /* R4: create and list are both POST {prefix} */
	char *project;
	char *user; /* owner of the sandboxes shown and made, or NULL */
	/* Handshake headers for the sockets.  Secret: wiped at destroy. */
	char *ws_headers[2];
	size_t nws_headers;

	pthread_mutex_t lock; /* guards rpcs */
	struct vx_rpc *rpcs;
};

#define VX(p) ((struct vx *)(p)->priv)

/* ---- vtrix_parse.c ---- */

/* The errno for a failure code from `src`; the one mapping. */
int vx_errno(enum vx_src src, long code);
/* Vtrix's state words, for the state machine (lifecycle.h). */
extern const struct remote_state_word vx_states[];
enum sbx_state vx_map_state(const char *s);
/* RFC 3339 into ts; -1 if it is not. */
int vx_parse_time(const char *s, struct timespec *ts);

/* ---- vtrix.c ---- */

/* The Vtrix id of sandbox `box`: -ENOENT if there is none. */
int vx_id_of(struct vx *vx, char *out, size_t size, const char *box);
/* The sandbox's Info (caller frees); -ENOENT if it is gone. */
int vx_get_info(struct vx *vx, cJSON **out, const char *box);
/* A file or command call failed with -EIO-like `rc`: if the sandbox is
 * not active, say so and return -EAGAIN, else rc. */
int vx_not_active(struct vx *vx, const char *box, int rc);

/* ---- vtrix_rpc.c ---- */

/*
 * Called from the socket's thread for each notification of a call, in
 * arrival order, with the method and params (borrowed).  A negative errno
 * fails the call (once its answer arrives); further notifications of that
 * call are then dropped.
 */
typedef int (*vx_note_fn)(void *ctx, const char *method, const cJSON *params);

struct vx_call_opts {
	vx_note_fn note; /* may be NULL */
	void *ctx;
	/* Fail with -ETIMEDOUT after this long without any message for the
	 * call: 0 = the mount's timeout, -1 = no bound (the socket's death
	 * still ends the call). */
	int idle_ms;
};

/*
 * Call `method` with `params` (a JSON object, serialised by the caller:
 * `params_json`, `len` bytes) on the socket of sandbox `box`, connecting
 * it first if need be; wait for the answer.  *result (caller frees) gets
 * "result".  Errors: a JSON-RPC error through vx_errno() with text,
 * -ECONNRESET if the socket dropped meanwhile, -ETIMEDOUT, -ENOENT if the
 * sandbox is gone.
 */
int vx_call(struct vx *vx, cJSON **result, const char *box, const char *method,
	    const char *params_json, size_t len, const struct vx_call_opts *o);
/* vx_call in two steps: queue the call (0 and *out, or -errno), then
 * wait for its answer (frees `p`).  Between them the caller may make
 * other calls. */
struct vx_pending;
int vx_submit(struct vx *vx, struct vx_pending **out, const char *box, const char *method,
	      const char *params_json, size_t len, const struct vx_call_opts *o);
int vx_wait(struct vx_pending *p, cJSON **result);
/* For big params without a copy: vx_msg_begin() starts the message in
 * `msg`, the caller appends the params object, vx_submit_msg() ends it
 * and takes the buffer (released on failure too). */
int vx_msg_begin(struct strbuf *msg, const char *method);
int vx_submit_msg(struct vx *vx, struct vx_pending **out, const char *box,
		  const char *method, struct strbuf *msg, const struct vx_call_opts *o);
/* The same with params as cJSON (borrowed). */
int vx_call_json(struct vx *vx, cJSON **result, const char *box, const char *method,
		 const cJSON *params, const struct vx_call_opts *o);
/* Close the socket of `box` (stop, delete): its calls fail, its thread is
 * joined.  NULL box: every socket (unmount). */
void vx_rpc_close(struct vx *vx, const char *box);

/* ---- vtrix_files.c ---- */

/*
 * The remote layer's run (remote.h): `script` with /bin/sh in the sandbox
 * (a blocking exec).  `out` (may be NULL) gets stdout and stderr, as
 * text.  `flags` are not needed: an exec call is never sent twice.
 */
int vx_run(struct remote *r, const char *box, const char *what, const char *script,
	   int flags, struct strbuf *out);

/* The transfers of staged files (stagefile.h). */
extern const struct stagefile_ops vx_stagefile_ops;

/* ---- vtrix_cmd.c ---- */

int vx_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink);
ssize_t vx_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted);
int vx_cmd_signal(struct sbx_provider *p, void *handle, int sig);
void vx_cmd_release(struct sbx_provider *p, void *handle);

#endif
