/* SPDX-License-Identifier: MIT */
/*
 * A small HTTP client over libcurl for the remote providers.
 *
 * One client per provider instance holds the credentials and the timeouts
 * and a pool of curl handles, so that connections are reused across
 * requests and threads.  Every request is bounded: a connect timeout, and
 * either a total timeout or, for transfers of file data, a stall timeout.
 * Response bodies kept in memory have a maximum.  Idempotent requests are
 * retried with backoff on transport failures, 429 and 5xx, as long as the
 * request being served has lost less than the total timeout to failures
 * (see sbx_call_stalled()): a silent server costs a caller one timeout.
 *
 * Credentials live only in the client's header list: they are never
 * logged, and error texts name the method and path, never the headers.
 */
#ifndef SBXFS_HTTP_H
#define SBXFS_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "sbxfs/strbuf.h"

struct http_client;

struct http_config {
	/* Header lines sent with every request ("Authorization: Bearer ...").
	 * Copied; may hold secrets. */
	const char *const *headers;
	size_t nheaders;
	int connect_timeout_ms; /* default 10 s */
	int timeout_ms;		/* whole request, for small requests; default 30 s */
	int stall_ms;		/* transfers: fail after this long without progress;
				   default 30 s */
	int retries;		/* further attempts for idempotent requests; default 3 */
};

/*
 * Trust the certificate authorities in this PEM file, instead of the
 * system's, for HTTPS here and WSS in ws.c.  Set once at start-up, before
 * any connection; NULL means the system's store.  The string is kept.
 */
void http_set_ca_file(const char *path);
const char *http_ca_file(void);

/*
 * http_do() fails with -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH or -EIO for
 * transport failures (retried when idempotent), -EPROTO when the server's
 * TLS certificate is not trusted (never retried), -EINTR when the caller
 * was interrupted (see sbx_interrupted()), -EFBIG for a body over the
 * maximum; always with sbx_failf() text.
 */
struct http_client *http_client_new(const struct http_config *cfg);
void http_client_free(struct http_client *c);

/* A multipart/form-data file part read from a descriptor. */
struct http_part {
	const char *name;     /* form field name, e.g. "file" */
	const char *filename; /* filename in the part header */
	int fd;		      /* read with pread from offset 0 */
	off_t size;
};

struct http_req {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	const char *url;    /* full URL, query included */
	/* Extra header lines for this request only. */
	const char *const *headers;
	/* A body from memory (with its Content-Type)... */
	const char *body;
	size_t body_len;
	const char *content_type;
	/* ...or one multipart file part. */
	const struct http_part *part;
	/* Where a 2xx body goes: memory (at most max_body bytes; default
	 * 4 MiB) or, if out_fd >= 0, that file from offset 0 (at most
	 * max_body bytes if set).  Error bodies always go to memory. */
	int out_fd;
	size_t max_body;
	/* Safe to send again after a failure that may have reached the
	 * server: enables retries. */
	int idempotent;
	/* A transfer of file data: bounded by the stall timeout, not the
	 * total one. */
	int transfer;
	/* Override the client's total timeout (ms), e.g. for calls the
	 * server holds open on purpose. */
	int timeout_ms;
};

#define HTTP_REQ_INIT        \
	{                    \
		.out_fd = -1 \
	}

struct http_resp {
	long status;	    /* HTTP status; 0 if none arrived */
	struct strbuf body; /* the body when it went to memory */
	off_t body_size;    /* bytes received (memory or file) */
	double retry_after; /* seconds from Retry-After, or -1 */
	char content_type[96];
};

/*
 * Send a request and wait for the whole response.  Returns 0 once a
 * response arrived, whatever its status (the caller maps it), or a
 * negative errno with sbx_failf() text when none did: -ETIMEDOUT,
 * -ECONNREFUSED, -EHOSTUNREACH, -EFBIG (body over max_body), -EIO.
 * The caller releases resp with http_resp_release().
 */
int http_do(struct http_client *c, const struct http_req *req, struct http_resp *resp);
void http_resp_release(struct http_resp *resp);

/* Append s percent-encoded for a URL path segment or query value: every
 * byte but unreserved ones [A-Za-z0-9-._~] is encoded. */
int http_escape(struct strbuf *sb, const char *s);

/* The path part of a URL, for messages: no scheme, host or query. */
const char *http_url_path(const char *url, char *buf, size_t size);

#endif
