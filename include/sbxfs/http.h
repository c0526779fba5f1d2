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
	/* Connect to this Unix socket, not to the URL's host (the URL still
	 * gives the path).  Copied; NULL for none. */
	const char *unix_socket;
	/* TLS: this client's certificate authorities, certificate and key
	 * (PEM files), where the server asks for a client certificate.
	 * Copied; NULL for none (the CA file then is http_set_ca_file()'s). */
	const char *ca_file, *cert_file, *key_file;
};

/*
 * Trust the certificate authorities in this PEM file, instead of the
 * system's, for HTTPS here and WSS in ws.c.  Set once at start-up, before
 * any connection; NULL means the system's store.  The string is kept.
 */
void http_set_ca_file(const char *path);
const char *http_ca_file(void);

/*
 * How soon a connection that went quiet is checked, in seconds: TCP
 * keep-alive probes on every connection (here and in ws.c), and a
 * WebSocket PING after this long without traffic both ways, whose PONG
 * must come within as long again or the connection is closed (so a
 * stream whose peer vanished ends in seconds, not at a request's
 * timeout).  Set once at start-up (-o keepalive=); default 10.
 */
void http_set_keepalive(int secs);
int http_keepalive(void);

/*
 * http_do() fails with -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH or -EIO for
 * transport failures (retried when idempotent), -EPROTO when the server's
 * TLS certificate is not trusted (never retried), -EINTR when the caller
 * was interrupted (see sbx_interrupted()), -EFBIG for a body over the
 * maximum; always with sbx_failf() text.
 */
struct http_client *http_client_new(const struct http_config *cfg);
void http_client_free(struct http_client *c);

/* A multipart/form-data part: a file read from a descriptor, or text. */
struct http_part {
	const char *name;     /* form field name, e.g. "file" */
	const char *filename; /* filename in the part header */
	int fd;		      /* read with pread from offset 0 */
	off_t size;
	const char *text; /* if set, a text field with this value (no file) */
};

/*
 * A request body made as it is sent: `size` bytes, which read() gives at
 * offsets (from 0 again when the request is retried).  read returns the
 * bytes it put in buf (at least 1 while off < size), or -errno.
 */
struct http_body {
	off_t size;
	ssize_t (*read)(void *ctx, char *buf, size_t len, off_t off);
	void *ctx;
};

/*
 * Where a 2xx answer's body goes as it comes, in pieces: write returns 0,
 * or -errno to end the transfer (the request fails with it); reset is
 * called before each attempt, so that a retry starts afresh.
 */
struct http_sink {
	int (*write)(void *ctx, const char *buf, size_t len);
	int (*reset)(void *ctx);
	void *ctx;
};

struct http_req {
	const char *method; /* "GET", "HEAD", "POST", "PUT", "DELETE" */
	const char *url;    /* full URL, query included */
	/* Extra header lines for this request only. */
	const char *const *headers;
	/* A body from memory (with its Content-Type)... */
	const char *body;
	size_t body_len;
	const char *content_type;
	/* ...or a multipart form of nparts parts (0 counts as 1), or a body
	 * made as it goes. */
	const struct http_part *part;
	size_t nparts;
	const struct http_body *stream;
	/* Where a 2xx body goes: memory (at most max_body bytes; default
	 * 4 MiB) or, if out_fd >= 0, that file from offset 0 (at most
	 * max_body bytes if set).  Error bodies always go to memory. */
	int out_fd;
	size_t max_body;
	/* Or, if set, a 2xx body goes to this sink (max_body unused). */
	const struct http_sink *sink;
	/* Keep the value of this answer header in resp->header. */
	const char *want_header;
	/* Safe to send again after a failure that may have reached the
	 * server: enables retries. */
	int idempotent;
	/* A transfer of file data: bounded by the stall timeout, not the
	 * total one. */
	int transfer;
	/* Override the client's total timeout (ms), e.g. for calls the
	 * server holds open on purpose. */
	int timeout_ms;
	/* Ask for the answer as it is (no Accept-Encoding): its body is
	 * compressed already, and a server's compression of it again would
	 * cost its time for little. */
	int as_is;
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
	/* The value of req->want_header, at most 16 KiB; empty if none. */
	struct strbuf header;
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

/*
 * A connection taken over after its answer, as Docker's exec and attach
 * streams are: the request goes out with "Connection: Upgrade" and
 * "Upgrade: tcp", the answer's head is read, and from then on the
 * connection carries raw bytes both ways.  One thread at a time reads;
 * another may write meanwhile.
 */
struct http_conn;

/*
 * Send req (method, url, headers, body from memory; never retried: the
 * request starts something) on a new connection of c's, and read the
 * answer's head, bounded by c's total timeout.  An answer of 101 or 2xx
 * leaves the connection open in *out with resp->status set; any other
 * status gives *out NULL and the answer's body in resp (the caller maps
 * it and releases resp).  0, or -errno with sbx_failf() text when no
 * answer came.
 */
int http_conn_open(struct http_client *c, struct http_conn **out,
		   const struct http_req *req, struct http_resp *resp);

/*
 * Read what comes next, waiting at most timeout_ms (-1: no bound) and
 * giving up with -EINTR once *interrupted (may be NULL) is set.  Bytes
 * read (at most len), 0 at the end of the stream, -ETIMEDOUT, -EINTR or
 * -EIO with text.
 */
ssize_t http_conn_read(struct http_conn *k, char *buf, size_t len, int timeout_ms,
		       const volatile int *interrupted);

/* Write all of buf, waiting while the peer does not read.  len, -EINTR
 * once *interrupted is set, or -EPIPE/-EIO with text. */
ssize_t http_conn_write(struct http_conn *k, const char *buf, size_t len,
			const volatile int *interrupted);

/* Tell the peer nothing more will be written, and read on: shutdown(2)
 * of the write side, or over TLS its close_notify.  0 or -errno with
 * text (-ENOTSUP: TLS through a libcurl not built on OpenSSL). */
int http_conn_shutdown_write(struct http_conn *k);

/* Close and free k (NULL is fine).  Safe while no call uses k. */
void http_conn_close(struct http_conn *k);

#endif
