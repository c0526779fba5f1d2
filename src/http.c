/* SPDX-License-Identifier: MIT */
/* HTTP requests over a pool of reused libcurl handles; see http.h. */
#include <ctype.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_priv.h"
#include "sbxfs/http.h"
#include "sbxfs/log.h"
#include "sbxfs/provider.h"

#define DEFAULT_MAX_BODY (4u << 20)
#define POOL_MAX 16
#define RETRY_WAIT_MAX_MS 10000
#define HEADER_MAX (16u << 10)

struct http_client {
	struct curl_slist *headers;
	int connect_timeout_ms, timeout_ms, stall_ms, retries;
	char *unix_socket, *ca_file, *cert_file, *key_file; /* NULL: none */

	pthread_mutex_t lock; /* guards pool */
	CURL *pool[POOL_MAX];
	int npool;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static const char *ca_file;
static int keepalive_s = 10;

void http_set_ca_file(const char *path)
{
	ca_file = path;
}

const char *http_ca_file(void)
{
	return ca_file;
}

void http_set_keepalive(int secs)
{
	keepalive_s = secs > 0 ? secs : 1;
}

int http_keepalive(void)
{
	return keepalive_s;
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_client *http_client_new(const struct http_config *cfg)
{
	struct http_client *c;
	size_t i;

	pthread_once(&global_once, global_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if ((cfg->unix_socket && !(c->unix_socket = strdup(cfg->unix_socket))) ||
	    (cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file))) ||
	    (cfg->cert_file && !(c->cert_file = strdup(cfg->cert_file))) ||
	    (cfg->key_file && !(c->key_file = strdup(cfg->key_file)))) {
		http_client_free(c);
		return NULL;
	}
	for (i = 0; i < cfg->nheaders; i++) {
		struct curl_slist *n = curl_slist_append(c->headers, cfg->headers[i]);

		if (!n) {
			http_client_free(c);
			return NULL;
		}
		c->headers = n;
	}
	c->connect_timeout_ms =
		cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	c->stall_ms = cfg->stall_ms > 0 ? cfg->stall_ms : 30000;
	c->retries = cfg->retries >= 0 ? cfg->retries : 3;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void http_client_free(struct http_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	/* The list held secrets: wipe before freeing. */
	for (struct curl_slist *h = c->headers; h; h = h->next)
		memset(h->data, 0, strlen(h->data));
	curl_slist_free_all(c->headers);
	free(c->unix_socket);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void http_client_setup(const struct http_client *c, CURL *h, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)keepalive_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)(keepalive_s + 2) / 3);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	if (c->unix_socket)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
	if (c->ca_file || ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file ? c->ca_file : ca_file);
	if (c->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
}

const struct curl_slist *http_client_headers(const struct http_client *c)
{
	return c->headers;
}

int http_client_timeout_ms(const struct http_client *c)
{
	return c->timeout_ms;
}

/* A handle from the pool (its connections stay warm), or a new one. */
static CURL *handle_get(struct http_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->npool)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_put(struct http_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- one attempt ---- */

struct xfer {
	CURL *h;
	const struct http_req *req;
	struct http_resp *resp;
	size_t max_body;
	int too_big;
	int write_failed;
	int read_failed;
	off_t part_off; /* read position in req->stream */
	/* A transfer's progress, for its stall bound: curl's low-speed
	 * check averages over a window and fires late after a burst. */
	long stall_ms;	   /* 0: not a transfer */
	long moved_ms;	   /* when a byte last moved either way */
	curl_off_t dl, ul; /* bytes moved by then */
	int stalled;
};

static int status_ok(CURL *h)
{
	long code = 0;

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	return code >= 200 && code < 300;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * nmemb;

	if (x->req->sink && status_ok(x->h)) {
		int rc = x->req->sink->write(x->req->sink->ctx, data, len);

		if (rc) {
			x->write_failed = -rc;
			return 0;
		}
	} else if (x->req->out_fd >= 0 && status_ok(x->h)) {
		size_t done = 0;

		/* A file body is bounded only if the caller said so. */
		if (x->req->max_body &&
		    (uint64_t)x->resp->body_size + len > x->req->max_body) {
			x->too_big = 1;
			return 0;
		}

		while (done < len) {
			ssize_t n = pwrite(x->req->out_fd, data + done, len - done,
					   x->resp->body_size + (off_t)done);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				x->write_failed = errno;
				return 0;
			}
			done += (size_t)n;
		}
	} else if (x->resp->body.len + len > x->max_body ||
		   strbuf_add(&x->resp->body, data, len)) {
		x->too_big = 1;
		return 0;
	}
	x->resp->body_size += (off_t)len;
	return len;
}

/* Seconds from a Retry-After value: "5", or a Go duration such as "1m0s"
 * or "500ms".  -1 when it is neither (an HTTP date: use our backoff). */
static double parse_retry_after(const char *v)
{
	double total = 0;
	int any = 0;

	while (*v == ' ')
		v++;
	while (*v && *v != '\r' && *v != '\n') {
		char *end;
		double n = strtod(v, &end);

		if (end == v || n < 0)
			return -1;
		v = end;
		if (!strncmp(v, "ms", 2)) {
			total += n / 1000;
			v += 2;
		} else if (*v == 'h') {
			total += n * 3600;
			v++;
		} else if (*v == 'm') {
			total += n * 60;
			v++;
		} else if (*v == 's') {
			total += n;
			v++;
		} else if (!*v || *v == '\r' || *v == '\n' || *v == ' ') {
			total += n;
		} else {
			return -1;
		}
		any = 1;
		while (*v == ' ')
			v++;
	}
	return any ? total : -1;
}

/* Keep the value of the header the request wants, if data[0..len) is it. */
static void keep_header(struct xfer *x, const char *data, size_t len)
{
	const char *want = x->req->want_header;
	size_t n = strlen(want);

	if (len <= n || data[n] != ':' || strncasecmp(data, want, n))
		return;
	data += n + 1, len -= n + 1;
	while (len && (*data == ' ' || *data == '\t'))
		data++, len--;
	while (len &&
	       (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' '))
		len--;
	x->resp->header.len = 0;
	if (strbuf_add(&x->resp->header, data, len))
		x->resp->header.len = 0; /* over the maximum: as if absent */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * nmemb;
	char line[256];
	char *v;

	if (x->req->want_header)
		keep_header(x, data, len);
	if (len >= sizeof(line))
		return len;
	memcpy(line, data, len);
	line[len] = '\0';
	v = strchr(line, ':');
	if (!v)
		return len;
	*v++ = '\0';
	while (*v == ' ')
		v++;
	v[strcspn(v, "\r\n")] = '\0';
	if (!strcasecmp(line, "Retry-After"))
		x->resp->retry_after = parse_retry_after(v);
	else if (!strcasecmp(line, "Content-Type"))
		snprintf(x->resp->content_type, sizeof(x->resp->content_type), "%s", v);
	return len;
}

/* Where curl reads one file part of a form. */
struct part_reader {
	const struct http_part *p;
	off_t off;
};

static size_t part_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct part_reader *r = arg;
	size_t want = size * nitems;
	ssize_t n;

	if (r->off >= r->p->size)
		return 0;
	if ((off_t)want > r->p->size - r->off)
		want = (size_t)(r->p->size - r->off);
	do
		n = pread(r->p->fd, buf, want, r->off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) /* the file shrank or failed under us */
		return CURL_READFUNC_ABORT;
	r->off += n;
	return (size_t)n;
}

static int part_seek(void *arg, curl_off_t offset, int origin)
{
	struct part_reader *r = arg;

	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	r->off = offset;
	return CURL_SEEKFUNC_OK;
}

/* The form of req's parts, read through readers (one per part). */
static curl_mime *form_of(CURL *h, const struct http_req *req,
			  struct part_reader *readers)
{
	size_t n = req->nparts ? req->nparts : 1;
	curl_mime *mime = curl_mime_init(h);

	for (size_t i = 0; mime && i < n; i++) {
		const struct http_part *p = &req->part[i];
		curl_mimepart *part = curl_mime_addpart(mime);

		if (!part || curl_mime_name(part, p->name) != CURLE_OK) {
			curl_mime_free(mime);
			return NULL;
		}
		if (p->text) {
			curl_mime_data(part, p->text, CURL_ZERO_TERMINATED);
			continue;
		}
		readers[i].p = p;
		curl_mime_filename(part, p->filename);
		curl_mime_type(part, "application/octet-stream");
		curl_mime_data_cb(part, (curl_off_t)p->size, part_read, part_seek, NULL,
				  &readers[i]);
	}
	return mime;
}

static size_t stream_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	const struct http_body *b = x->req->stream;
	size_t want = size * nitems;
	ssize_t n;

	if (x->part_off >= b->size)
		return 0;
	if ((off_t)want > b->size - x->part_off)
		want = (size_t)(b->size - x->part_off);
	n = b->read(b->ctx, buf, want, x->part_off);
	if (n <= 0 || (size_t)n > want) {
		x->read_failed = n < 0 ? (int)-n : EIO;
		return CURL_READFUNC_ABORT;
	}
	x->part_off += n;
	return (size_t)n;
}

static int stream_seek(void *arg, curl_off_t offset, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	x->part_off = offset;
	return CURL_SEEKFUNC_OK;
}

/* curl asks now and then, also while it waits for an answer: a nonzero
 * return ends the transfer (CURLE_ABORTED_BY_CALLBACK). */
static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = arg;

	(void)dltotal, (void)ultotal;
	if (x && x->stall_ms) {
		long now = mono_ms();

		if (dlnow != x->dl || ulnow != x->ul || !x->moved_ms) {
			x->dl = dlnow;
			x->ul = ulnow;
			x->moved_ms = now;
		} else if (now - x->moved_ms >= x->stall_ms) {
			x->stalled = 1;
			return 1;
		}
	}
	return sbx_interrupted();
}

static int errno_of_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
		return EINTR;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return EPROTO; /* not the server we want: never retried */
	case CURLE_OPERATION_TIMEDOUT:
		return ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return EHOSTUNREACH;
	case CURLE_OUT_OF_MEMORY:
		return ENOMEM;
	default:
		return EIO;
	}
}

/* Once the request being served has lost time to a silent server, what
 * is left of its one timeout bounds every further attempt (see
 * sbx_call_stalled()); until then each attempt has its own timeout. */
static long call_left_ms(const struct http_client *c)
{
	long stalled = sbx_call_stalled_ms();

	return stalled > 0 ? c->timeout_ms - stalled : LONG_MAX;
}

static long attempt_timeout_ms(const struct http_client *c, const struct http_req *req)
{
	long ms = req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms;
	long left = call_left_ms(c);

	return ms < left ? ms : left;
}

static int attempt(struct http_client *c, const struct http_req *req,
		   struct http_resp *resp, struct curl_slist *headers)
{
	struct xfer x = { .req = req, .resp = resp };
	struct part_reader *readers = NULL;
	curl_mime *mime = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char pathbuf[256];
	CURLcode rc;
	CURL *h;

	x.max_body = req->max_body && req->out_fd < 0 ? req->max_body : DEFAULT_MAX_BODY;
	h = x.h = handle_get(c);
	if (!h) {
		sbx_failf("cannot allocate an HTTP handle");
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	http_client_setup(c, h, errbuf);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, req->as_is ? NULL : "");
	if (req->transfer) {
		/* Big bodies take what they take, as long as they move
		 * (on_progress ends one still for stall_ms; curl's own check
		 * stays as a backstop). */
		x.stall_ms = c->stall_ms;
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
				 (long)((c->stall_ms + 999) / 1000));
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, attempt_timeout_ms(c, req));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);

	if (req->part) {
		readers = calloc(req->nparts ? req->nparts : 1, sizeof(*readers));
		if (!readers || !(mime = form_of(h, req, readers))) {
			free(readers);
			handle_put(c, h);
			sbx_failf("cannot make a form: out of memory");
			return -ENOMEM;
		}
		curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
	} else if (req->stream) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)req->stream->size);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, stream_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, stream_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
		/* Send at once: no waiting for a "100 Continue" first. */
		curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
	} else if (req->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
	} else if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (strcmp(req->method, "GET") && strcmp(req->method, "POST") &&
	    strcmp(req->method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	else if (!strcmp(req->method, "GET"))
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);

	if (req->sink)
		sbx_fail_clear(); /* so that the text after a failure is the sink's */
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_mime_free(mime);
	free(readers);
	http_url_path(req->url, pathbuf, sizeof(pathbuf));
	if (x.too_big) {
		sbx_failf("%s %s: answer larger than %zu bytes", req->method, pathbuf,
			  req->out_fd >= 0 && status_ok(h) ? req->max_body : x.max_body);
		handle_put(c, h);
		return -EFBIG;
	}
	if (x.read_failed) {
		handle_put(c, h);
		sbx_failf("%s %s: cannot read what to send: %s", req->method, pathbuf,
			  strerror(x.read_failed));
		return -x.read_failed;
	}
	if (x.write_failed) {
		handle_put(c, h);
		if (req->sink && sbx_fail_text()[0]) /* the sink said why */
			sbx_failf("%s %s: %s", req->method, pathbuf, sbx_fail_text());
		else
			sbx_failf("%s %s: cannot store the answer: %s", req->method,
				  pathbuf, strerror(x.write_failed));
		return -x.write_failed;
	}
	handle_put(c, h);
	if (rc == CURLE_ABORTED_BY_CALLBACK && x.stalled) {
		resp->status = 0;
		sbx_failf("%s %s: nothing moved for %ld s", req->method, pathbuf,
			  (x.stall_ms + 999) / 1000);
		return -ETIMEDOUT;
	}
	if (rc != CURLE_OK) {
		resp->status = 0;
		sbx_failf("%s %s: %s", req->method, pathbuf,
			  rc == CURLE_ABORTED_BY_CALLBACK ? "interrupted"
			  : errbuf[0]			  ? errbuf
							  : curl_easy_strerror(rc));
		return -errno_of_curl(rc);
	}
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Sleep between attempts, in steps, so that an interrupted caller does
 * not wait for the next attempt. */
static void sleep_ms(long ms)
{
	while (ms > 0 && !sbx_interrupted()) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, step * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		ms -= step;
	}
}

static int retryable(int rc, long status)
{
	if (rc)
		return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EIO;
	return status == 429 || status >= 500;
}

int http_do(struct http_client *c, const struct http_req *req, struct http_resp *resp)
{
	struct curl_slist *headers = c->headers, *extra = NULL;
	long start = now_ms(), wait_ms = 250, t0;
	int tries = req->idempotent ? c->retries + 1 : 1;
	char pathbuf[256];
	int rc = 0, i;

	/* Per-request headers go in front of a copy-free tail: curl reads the
	 * list as given, so chain our extra nodes onto the client's. */
	for (i = 0; req->headers && req->headers[i]; i++) {
		struct curl_slist *n = curl_slist_append(extra, req->headers[i]);

		if (!n) {
			curl_slist_free_all(extra);
			return -ENOMEM;
		}
		extra = n;
	}
	if (req->content_type) {
		char line[128];
		struct curl_slist *n;

		snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
		n = curl_slist_append(extra, line);
		if (!n) {
			curl_slist_free_all(extra);
			return -ENOMEM;
		}
		extra = n;
	}
	if (extra) {
		struct curl_slist *last = extra;

		while (last->next)
			last = last->next;
		last->next = c->headers;
		headers = extra;
	}

	for (i = 0; i < tries; i++) {
		memset(resp, 0, sizeof(*resp));
		resp->body.max = req->max_body && req->out_fd < 0 ? req->max_body
								  : DEFAULT_MAX_BODY;
		resp->retry_after = -1;
		resp->header.max = HEADER_MAX;
		if (req->sink && req->sink->reset &&
		    (rc = req->sink->reset(req->sink->ctx)))
			break;
		if (req->out_fd >= 0 && ftruncate(req->out_fd, 0) < 0) {
			rc = -errno;
			sbx_failf("cannot truncate the staging file: %s",
				  strerror(errno));
			break;
		}
		if (call_left_ms(c) <= 0) {
			sbx_failf("%s %s: no answer within %d s", req->method,
				  http_url_path(req->url, pathbuf, sizeof(pathbuf)),
				  (c->timeout_ms + 999) / 1000);
			rc = -ETIMEDOUT;
			break;
		}
		t0 = now_ms();
		rc = attempt(c, req, resp, headers);
		if (!retryable(rc, resp->status))
			break;
		sbx_call_stalled(now_ms() - t0);
		if (i + 1 == tries || sbx_interrupted())
			break;
		if (resp->retry_after >= 0) {
			if (resp->retry_after * 1000 > RETRY_WAIT_MAX_MS)
				break; /* longer than we hold a caller: let it see 429 */
			wait_ms = (long)(resp->retry_after * 1000);
		}
		if (sbx_call_stalled_ms() + wait_ms > c->timeout_ms)
			break; /* the caller's one bound, retries included */
		sbx_trace(SBX_TRACE_HTTP, "%s %s: %s, retrying in %ld ms", req->method,
			  http_url_path(req->url, pathbuf, sizeof(pathbuf)),
			  rc ? sbx_fail_text() : "server busy", wait_ms);
		http_resp_release(resp);
		sleep_ms(wait_ms);
		sbx_call_stalled(wait_ms);
		wait_ms = wait_ms * 2 > 4000 ? 4000 : wait_ms * 2;
	}
	if (extra) {
		struct curl_slist *last = extra;

		while (last->next != c->headers)
			last = last->next;
		last->next = NULL;
		curl_slist_free_all(extra);
	}
	sbx_trace(SBX_TRACE_HTTP, "%s %s -> %ld, %lld bytes, %ld ms%s", req->method,
		  http_url_path(req->url, pathbuf, sizeof(pathbuf)), resp->status,
		  (long long)resp->body_size, now_ms() - start, rc ? " (failed)" : "");
	return rc;
}

void http_resp_release(struct http_resp *resp)
{
	strbuf_release(&resp->body);
	strbuf_release(&resp->header);
}

int http_escape(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (; *s && !rc; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			rc = strbuf_add(sb, s, 1);
		} else {
			char enc[3] = { '%', hex[ch >> 4], hex[ch & 15] };

			rc = strbuf_add(sb, enc, 3);
		}
	}
	return rc;
}

const char *http_url_path(const char *url, char *buf, size_t size)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? strchr(p + 3, '/') : url;
	if (!p)
		p = "/";
	n = strcspn(p, "?#");
	snprintf(buf, size, "%.*s", (int)n, p);
	return buf;
}
