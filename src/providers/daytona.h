/* SPDX-License-Identifier: MIT */
/*
 * The Daytona provider's parts, shared by daytona.c (requests, errors,
 * sandboxes), daytona_files.c (root/) and daytona_cmd.c (commands).
 * Not an interface: the provider's interface is provider.h.
 */
#ifndef SBXFS_PROVIDERS_DAYTONA_H
#define SBXFS_PROVIDERS_DAYTONA_H

#include <ctype.h>
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

#define DEFAULT_API_URL "https://app.daytona.io/api"
#define LIST_PAGE 200
#define LIST_PAGES_MAX 100 /* 20,000 sandboxes */
#define LISTING_MAX (64u << 20)
#define RUN_OUTPUT_MAX (48u << 20)
#define LOG_MAX ((size_t)1 << 30)
#define DT_IDLE_MAX 4 /* sessions kept for reuse */

struct dt {
	struct remote r; /* first: the remote layer's part */
	struct http_client *http;
	char *api;    /* no trailing '/' */
	char *target; /* default region for new sandboxes, or NULL */
	int jwt;      /* authenticating with a JWT and an organisation id */
	char session_prefix[48];
	/* Handshake headers for WebSockets: credentials and the split
	 * output switch.  Secret: wiped at destroy. */
	char *ws_headers[3];
	size_t nws_headers;

	/* r.boxes: a record's priv is the base URL of the sandbox's
	 * toolbox (no trailing '/'), or NULL until known. */
	pthread_mutex_t lock; /* guards cmd_seq and idle */
	unsigned long cmd_seq;
	/* Sessions whose last command ended, kept for the next command of
	 * their sandbox: a command then costs no session call before it and
	 * none after (daytona_cmd.c).  Deleted at unmount. */
	struct dt_idle {
		char box[SBX_NAME_MAX + 1];
		char sid[96];
		char *toolbox;
	} idle[DT_IDLE_MAX];
	size_t nidle;
	int no_bulk_upload; /* the toolbox lacks /files/bulk-upload (atomic) */
};

#define DT(p) ((struct dt *)(p)->priv)

/* Delete the sessions kept for reuse (at unmount). */
void dt_idle_drop(struct dt *dt);

/* Forget the sessions kept for box, without a request: it is being
 * stopped or deleted, and they end with it. */
void dt_idle_forget(struct dt *dt, const char *box);

/* Exceptions to the default mapping, per call: struct errmap (errmap.h). */

enum {
	REQ_IDEMPOTENT = REMOTE_REQ_IDEMPOTENT,
	REQ_TRANSFER = REMOTE_REQ_TRANSFER,
	REQ_LONG = 1 << 2, /* the server may hold it up to 30 s on purpose */
};

/* ---- daytona.c ---- */

int dt_fail_resp(const char *what, const struct http_resp *r, const struct errmap *over);
int dt_request(struct dt *dt, struct http_resp *resp, const char *method, const char *url,
	       cJSON *json, int flags, size_t max_body);
cJSON *dt_parse_json(const struct http_resp *r, const char *what);
int dt_url_sandbox(struct strbuf *sb, struct dt *dt, const char *idname,
		   const char *suffix);
int dt_url_toolbox(struct strbuf *sb, const char *toolbox, const char *route, ...);
/* Daytona's state words, for the state machine (lifecycle.h). */
extern const struct remote_state_word dt_states[];
enum sbx_state dt_map_state(const char *s);
int dt_get_sandbox(struct dt *dt, cJSON **out, const char *name);
int dt_toolbox_of(struct dt *dt, char **out, const char *name);
int dt_toolbox_fail(struct dt *dt, const char *box, const char *what,
		    const struct http_resp *r, const struct errmap *over);
int dt_state_of(struct dt *dt, const char *box, char *out, size_t size);

/* ---- daytona_parse.c ---- */

/* A FileInfo as lstat would give it (as far as Daytona knows), and its
 * name (borrowed from fi) if `name` is not NULL.  -EPROTO for an entry
 * that lies: no name, a bad name, a negative size. */
int dt_fileinfo_stat(struct stat *st, const char **name, const cJSON *fi);
/*
 * A listing of the toolbox (a JSON array of FileInfo, body[0..len)) to
 * fn, entry by entry, until fn returns nonzero.  Entries that cannot be
 * shown truthfully are skipped.  The number skipped, or -EPROTO for an
 * answer that is not a JSON array.
 */
int dt_parse_listing(const char *body, size_t len, sbx_dirent_fn fn, void *ctx);
/* The answer of a bulk upload (body[0..len)): the bytes the server wrote
 * to `path`, in *bytes.  -EPROTO if it does not name path. */
int dt_parse_uploaded(const char *body, size_t len, const char *path, off_t *bytes);

/* ---- daytona_files.c ---- */

/* The remote layer's run (remote.h): a shell script in the sandbox with
 * /process/execute.  `out` gets stdout and stderr, as text. */
int dt_run(struct remote *r, const char *box, const char *what, const char *script,
	   int flags, struct strbuf *out);
int dt_readdir(struct sbx_provider *p, const char *box, const char *path,
	       sbx_dirent_fn fn, void *ctx);
/* The transfers of staged files (stagefile.h). */
extern const struct stagefile_ops dt_stagefile_ops;
int dt_mkdir(struct sbx_provider *p, const char *box, const char *path, mode_t mode);
int dt_unlink(struct sbx_provider *p, const char *box, const char *path);
int dt_rename(struct sbx_provider *p, const char *box, const char *from, const char *to,
	      unsigned flags);
int dt_chmod(struct sbx_provider *p, const char *box, const char *path, mode_t mode);
int dt_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
	     gid_t gid);

/* ---- daytona_cmd.c ---- */

int dt_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink);
ssize_t dt_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted);
int dt_cmd_signal(struct sbx_provider *p, void *handle, int sig);
void dt_cmd_release(struct sbx_provider *p, void *handle);

#endif
