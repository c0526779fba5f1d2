/* SPDX-License-Identifier: MIT */
/*
 * The HTTP requests every remote provider makes the same way, over
 * http.c: a call with a JSON body, and the download of a file into a
 * staged copy, and the first request of a mount.  The answer's status
 * is the caller's to map (errmap.h).
 */
#ifndef SBXFS_REMOTE_REQUEST_H
#define SBXFS_REMOTE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sbxfs/http.h"
#include "sbxfs/provider.h"
#include "sbxfs/remote/errmap.h"

/* remote_request's flags */
enum {
	REMOTE_REQ_IDEMPOTENT = 1 << 0, /* safe to send again: retried */
	REMOTE_REQ_TRANSFER = 1 << 1,	/* file data: bounded by the stall timeout */
	REMOTE_REQ_AS_IS = 1 << 3,	/* the answer uncompressed (http.h's as_is) */
};

/*
 * One request of provider `name` with `json` (may be NULL) as its body;
 * the answer's body in memory, at most max_body bytes (0: http.c's
 * default); timeout_ms overrides the client's total timeout (0: not).
 * 0 with a response of any status (the caller releases it), or -errno
 * with "NAME: " and http.c's text when none came.
 */
int remote_request(struct http_client *http, struct http_resp *resp, const char *name,
		   const char *method, const char *url, cJSON *json, int flags,
		   size_t max_body, int timeout_ms);

/*
 * A download of a file this big or bigger asks for its bytes as they are
 * (no Accept-Encoding).  A server's gzip runs at tens of MB/s, slower than
 * most links to a sandbox, and the big files of a sandbox (archives,
 * images, binaries, databases) seldom compress; a small file's time is its
 * round trip, compressed or not.
 */
#define REMOTE_DOWNLOAD_AS_IS_MIN (1u << 20)

/*
 * GET `url` into the file fd (emptied first: it ends up holding what
 * came), at most `max` bytes, retried and bounded as a transfer.  `size`
 * is the file's size as last seen (REMOTE_DOWNLOAD_AS_IS_MIN).  0 with a
 * response of any status (the caller releases it), or -errno with
 * "NAME: download \"PATH\": " and http.c's text when none came.
 */
int remote_download(struct http_client *http, struct http_resp *resp, const char *name,
		    const char *url, int fd, uint64_t max, uint64_t size,
		    const char *path);

/*
 * The first request of a mount, `url` fetched with GET to try the
 * credentials: a refusal (one of the statuses of `refused`, a list
 * ending with 0) is a mount error, said once through fail(`what`, answer,
 * NULL), rather than a tree that stays empty; a certificate the client
 * does not trust is one too (-EPROTO).  A server that cannot be reached
 * is only a warning: the mount works once it answers.  0 or -errno.
 */
int remote_check_credentials(struct http_client *http, const char *name, const char *url,
			     size_t max_body, const long *refused, const char *what,
			     int (*fail)(const char *what, const struct http_resp *r,
					 const struct errmap *over));

#endif
