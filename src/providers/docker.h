/* SPDX-License-Identifier: MIT */
/*
 * The Docker provider's parts, shared by docker.c (the engine, requests,
 * errors, containers), docker_exec.c (scripts and commands through the
 * exec API), docker_files.c (root/ through the archive API) and
 * docker_parse.c (what the engine sends that needs parsing).  Not an
 * interface: the provider's interface is provider.h.
 */
#ifndef SBXFS_PROVIDERS_DOCKER_H
#define SBXFS_PROVIDERS_DOCKER_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "sbxfs/http.h"
#include "sbxfs/provider.h"
#include "sbxfs/remote/boxtable.h"
#include "sbxfs/remote/cmdpoll.h"
#include "sbxfs/remote/errmap.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/keptsh.h"
#include "sbxfs/remote/lifecycle.h"
#include "sbxfs/remote/remote.h"
#include "sbxfs/remote/request.h"
#include "sbxfs/stage.h"
#include "sbxfs/stagefile.h"
#include "sbxfs/strbuf.h"

#define DK_ID_MAX 80
#define DK_OUTPUT_MAX (48u << 20) /* one script's stdout */
#define DK_ERR_KEEP 2048	  /* the start of a script's stderr kept */
/* The API version asked for when the engine allows it, and the oldest
 * this provider speaks. */
#define DK_API_MAX "1.43"
#define DK_API_MIN "1.24"

/* r.boxes: a record's name is the container's, its state the engine's
 * State.Status word. */
struct dk {
	struct remote r; /* first: the remote layer's part */
	struct http_client *http;
	char *where;	      /* DOCKER_HOST or api_url as given: for messages */
	char *base;	      /* "http://docker/v1.43", no trailing '/' */
	char *image;	      /* the image mkdir creates containers from */
	char *label;	      /* "KEY=VALUE" the containers shown carry; NULL: all */
	struct keptsh shells; /* where scripts run (docker_exec.c) */
};

#define DK(p) ((struct dk *)(p)->priv)

/* ---- docker.c ---- */

/* The one place where a failed answer becomes an errno (and err text):
 * the engine's {"message": ...} with the status, `over` first. */
int dk_fail(const char *what, const struct http_resp *r, const struct errmap *over);
/*
 * One call to the engine: `method` on {base}/containers/{box}{suffix},
 * or on {base}{suffix} when box is NULL (suffix from '/', query
 * included), with `json` (may be NULL) as its body.  A 2xx or 304 answer
 * is 0, its JSON into *out if out is not NULL (an object or an array,
 * else -EPROTO with text; the caller frees it); any other status is
 * dk_fail(what, over)'s errno.  flags: REMOTE_REQ_* (request.h), and
 * DK_CALL_MISSING_OK: a 404 is -ENOENT, without text.
 */
#define DK_CALL_MISSING_OK (1 << 8)
int dk_call(struct dk *dk, cJSON **out, const char *method, const char *box,
	    const char *suffix, cJSON *json, int flags, const char *what,
	    const struct errmap *over);
/* {base}/containers/{id}{suffix}, with ?path=P (encoded) if path. */
int dk_url(struct strbuf *sb, struct dk *dk, const char *id, const char *suffix,
	   const char *path);
/* Is `box` running, as last seen (a listing, a state call)? */
int dk_running(struct dk *dk, const char *box);
/* Is it running now (one request to the engine)?  1 also when the engine
 * cannot tell.  Keeps the caller's failure text. */
int dk_running_now(struct dk *dk, const char *box);

/* ---- docker_exec.c ---- */

/* Streams to a shell in a container, for the kept shells. */
extern const struct keptsh_ops dk_shell_ops;
/* The remote layer's run (remote.h): a script on a kept shell. */
int dk_run(struct remote *r, const char *box, const char *what, const char *script,
	   int flags, struct strbuf *out);
int dk_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink);
ssize_t dk_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted);
int dk_cmd_signal(struct sbx_provider *p, void *handle, int sig);
void dk_cmd_release(struct sbx_provider *p, void *handle);

/* ---- docker_files.c ---- */

/* The transfers of staged files (stagefile.h) over the archive API. */
extern const struct stagefile_ops dk_stagefile_ops;
/* Stopped containers' files: read-only, listed through the archive
 * API. */
extern const struct remote_fs_ops dk_fs_ops;

/* ---- docker_parse.c ---- */

/*
 * The multiplexed stream of an exec without a terminal: frames of an
 * 8-byte header (stream 0 stdin, 1 stdout, 2 stderr; 3 zero bytes; a
 * big-endian 32-bit length) and that many bytes.  Fed in pieces of any
 * size; each frame's bytes go to `out` as they come.
 */
struct dk_demux {
	unsigned char head[8];
	unsigned nhead; /* bytes of head read */
	uint32_t left;	/* bytes of the current frame still to come */
	int stream;	/* the current frame's stream */
	int (*out)(void *ctx, int stream, const char *buf, size_t len);
	void *ctx;
};
void dk_demux_init(struct dk_demux *d,
		   int (*out)(void *ctx, int stream, const char *buf, size_t len),
		   void *ctx);
/* 0; -EPROTO with text for a header that is no frame; or out's error. */
int dk_demux_feed(struct dk_demux *d, const char *buf, size_t len);
/* Did the stream end between frames? */
int dk_demux_clean(const struct dk_demux *d);

/*
 * The value of an X-Docker-Container-Path-Stat header (base64 of a JSON
 * object: name, size, mode as a Go FileMode, mtime, linkTarget) into
 * *st: type and permission bits, size, mtime; and the link target into
 * link (size bytes; "" if none; may be NULL).  -EPROTO for anything else.
 */
int dk_parse_path_stat(struct stat *st, char *link, size_t size, const char *value,
		       size_t len);

/* A Go FileMode (os.FileMode bits) as a st_mode: type and 07777. */
mode_t dk_go_mode(uint32_t m);

/* Compare API versions "1.41" and "1.43": <0, 0, >0. */
int dk_version_cmp(const char *a, const char *b);

#endif
