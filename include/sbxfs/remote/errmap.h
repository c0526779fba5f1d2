/* SPDX-License-Identifier: MIT */
/*
 * The one error map of the remote providers: an HTTP status, or a code
 * of the provider's own error body (a REST envelope's code, a JSON-RPC
 * error code), to an errno; and the server's message, made printable, as
 * the text of the failure (sbx_failf(), which becomes the sandbox's err).
 *
 * A provider lists the codes where it differs from the common HTTP
 * table, and each call the few statuses that mean something else there
 * (409 on create is EEXIST).  No errno is guessed from the words of a
 * message where the body has a code.
 */
#ifndef SBXFS_REMOTE_ERRMAP_H
#define SBXFS_REMOTE_ERRMAP_H

#include <stddef.h>

/* One code and its errno (positive).  A table ends with { 0, 0 }. */
struct errmap {
	long code;
	int err;
};

/* The common HTTP statuses: 400 and 422 EINVAL, 401 and 403 EACCES, 404
 * ENOENT, 408 ETIMEDOUT, 409 EBUSY, 413 EFBIG, 429 EAGAIN. */
extern const struct errmap errmap_http[];

/*
 * The errno (positive) for `code`: from the first table of `maps` that
 * has the code (the list ends with NULL; most particular first), else
 * EIO.
 */
int errmap_errno(const struct errmap *const *maps, long code);

/*
 * The server's words in an error body body[0..len) into out (size bytes,
 * always terminated, printable): the first of `keys` (a NULL-terminated
 * list) that is a string, or an array whose first item is, of a JSON
 * object; else the body itself when it is short text that is no JSON;
 * else "".  At most 300 bytes of the message are kept.
 */
void errmap_text(char *out, size_t size, const char *body, size_t len,
		 const char *const *keys);

/*
 * The failure of an HTTP answer: sbx_failf("NAME: WHAT: HTTP STATUS:
 * TEXTEXTRA") (": TEXT" only if there is text; `extra` may be NULL) and
 * -err.
 */
int errmap_fail_http(const char *name, const char *what, long status, const char *text,
		     const char *extra, int err);

#endif
