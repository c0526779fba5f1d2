/* SPDX-License-Identifier: MIT */
/*
 * The Rexec provider's parts, shared by rexec.c (requests, errors,
 * containers), rexec_run.c (running scripts in a container: the exec
 * endpoint or the terminal WebSocket), rexec_files.c (root/) and
 * rexec_cmd.c (commands).  Not an interface: the provider's interface is
 * provider.h.
 */
#ifndef SBXFS_PROVIDERS_REXEC_H
#define SBXFS_PROVIDERS_REXEC_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

#define RX_LIST_MAX (8u << 20)	    /* the container list */
#define RX_OUTPUT_MAX (48u << 20)   /* one script's output, base64 included */
#define RX_EXEC_CAP (1u << 20)	    /* the exec endpoint's output cap */
#define RX_UPLOAD_MAX (100ll << 20) /* the server's per-request upload cap */
#define RX_ID_MAX 80
#define RX_ERR_KEEP 2048	     /* the start of a script's stderr kept */
#define RX_POLL_OUT_MAX (512 * 1024) /* per poll; base64 of it fits 1 MiB */
#define RX_POLL_ERR_MAX (128 * 1024)
/* Where scripts and commands keep their files in the container. */
#define RX_WORK_DIR "/var/tmp/.sbxfs"
/* The container's home, a volume the file endpoints always see. */
#define RX_HOME "/home/user"

struct rx_term;

enum rx_transport {
	RX_UNKNOWN = 0,
	RX_EXEC,     /* POST /api/containers/:id/exec */
	RX_TERMINAL, /* /ws/terminal/:id */
};

struct rx {
	struct remote r; /* first: the remote layer's part */
	struct http_client *http;
	char *url;		/* no trailing '/' */
	char *auth;		/* "Authorization: Bearer ..." for WebSockets: secret */
	char transport_opt[16]; /* "auto", "exec" or "terminal" */

	/* r.boxes: a record's id is the database UUID, alt_id the Docker
	 * id ("" while creating), state the status, priv the container's
	 * terminal (struct rx_term, whose own lock guards its use). */
	pthread_mutex_t lock; /* guards transport, seq */
	enum rx_transport transport;
	unsigned long seq;
};

#define RX(p) ((struct rx *)(p)->priv)

enum {
	RX_REQ_IDEMPOTENT = REMOTE_REQ_IDEMPOTENT,
	RX_REQ_TRANSFER = REMOTE_REQ_TRANSFER,
	RX_REQ_LONG = 1 << 2,
};

/* ---- rexec.c ---- */

/* The one place where a failed answer becomes an errno (and err text). */
int rx_fail_resp(const char *what, const struct http_resp *r, const struct errmap *over);
int rx_request(struct rx *rx, struct http_resp *resp, const char *method, const char *url,
	       cJSON *json, int flags, size_t max_body, int timeout_ms);
/* {url}/api/containers/{id}{suffix}[?path=...] */
int rx_url(struct strbuf *sb, struct rx *rx, const char *id, const char *suffix,
	   const char *path);
/* The Docker id of a running container into id; -EAGAIN with text when it
 * is not running, -ENOENT when there is none.  `fresh` asks the server. */
int rx_docker_id(struct rx *rx, char *id, size_t size, const char *box, int fresh);

/* ---- rexec_run.c ---- */

/* How a script ran: its stdout exactly, the start of its stderr. */
struct rx_out {
	struct strbuf out;
	struct strbuf err;
	int code;
};

/* Flags of rx_run: REMOTE_RUN_RETRY (remote.h). */

/* ---- rexec_parse.c ---- */

/* res with stdout bounded by `max`, stderr by twice RX_ERR_KEEP. */
void rx_out_init(struct rx_out *o, size_t max);
void rx_out_release(struct rx_out *o);
/*
 * Decode the wrapper's output s[0..n) (base64 of stdout, a "--" line,
 * base64 of the start of stderr; lines may end in "\r\n") into res->out
 * and res->err.  0; -EPROTO with text if it is not what the wrapper
 * prints (it could not run: no mktemp or base64 in the image); -EFBIG
 * with text past res->out's maximum.
 */
int rx_unwrap(struct rx_out *res, const char *s, size_t n);

/* A command poll's answer (rexec_cmd.c): pointers into the answer. */
struct rx_poll {
	const char *out, *err; /* new stdout and stderr */
	size_t nout, nerr;
	int code; /* the exit status, once ended */
};
/*
 * Parse a poll's answer buf[0..len): a header line "RC NOUT NERR" (RC
 * "-" while running, "gone" if the command's directory vanished), then
 * NOUT bytes of stdout and NERR of stderr, nothing more.  1 once the
 * command has ended and a poll brought the rest of its output (code
 * set), 0 while it runs or more output waits, -ENOENT with text if the
 * record is gone, -EPROTO with text for anything else.
 */
int rx_poll_parse(struct rx_poll *pl, const char *buf, size_t len);
/* Run `script` with /bin/sh in the running container; 0 when it ran
 * (whatever its exit code), -errno when it could not be run. */
int rx_run(struct rx *rx, const char *box, const char *what, const char *script,
	   int flags, struct rx_out *res);
/* Run and map the exit code: 0 is success, an errno value is that errno,
 * anything else is -EIO with stderr in the failure text.  `out` (may be
 * NULL) gets stdout. */
int rx_run_errno(struct rx *rx, const char *box, const char *what, const char *script,
		 int flags, struct strbuf *out);
/* rx_run_errno as the remote layer's run (remote.h). */
int rx_remote_run(struct remote *r, const char *box, const char *what, const char *script,
		  int flags, struct strbuf *out);
/* Close the container's terminal, if open (before stop or delete). */
void rx_term_close(struct rx *rx, const char *box);
void rx_term_free(struct rx_term *t);
const char *rx_transport_word(struct rx *rx);

/* ---- rexec_files.c ---- */

/* The transfers of staged files (stagefile.h). */
extern const struct stagefile_ops rx_stagefile_ops;

/* ---- rexec_cmd.c ---- */

int rx_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink);
ssize_t rx_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted);
int rx_cmd_signal(struct sbx_provider *p, void *handle, int sig);
void rx_cmd_release(struct sbx_provider *p, void *handle);

#endif
