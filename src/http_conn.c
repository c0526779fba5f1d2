/* SPDX-License-Identifier: MIT */
/*
 * Connections taken over after their answer (see http.h): a request sent
 * by hand on a connection curl opened (CURLOPT_CONNECT_ONLY, so that Unix
 * sockets and TLS work as for every other request), its answer's head
 * read here, and then raw bytes both ways.
 *
 * curl forbids two threads in one handle at once, and a command's stdin
 * is written while its output is read: every curl_easy_recv() and
 * curl_easy_send() is made under the connection's lock, and both are
 * non-blocking, so the waiting (poll) happens outside it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "http_priv.h"
#include "sbxfs/http.h"
#include "sbxfs/provider.h"

#define HEAD_MAX (16u << 10)
#define ERROR_BODY_MAX (64u << 10)
#define POLL_STEP_MS 100

struct http_conn {
	CURL *h;
	curl_socket_t sock;
	int tls;
	pthread_mutex_t lock; /* guards h's use */
	/* Stream bytes that came with the answer's head. */
	char *pending;
	size_t npending, off;
	char path[256]; /* for messages */
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Wait until the socket is ready for `events`, at most until `deadline`
 * (now_ms(); 0: none): 0 when ready, -ETIMEDOUT, -EINTR. */
static int wait_ready(struct http_conn *k, short events, long deadline,
		      const volatile int *interrupted)
{
	for (;;) {
		struct pollfd pfd = { .fd = k->sock, .events = events };
		long step = POLL_STEP_MS;

		if ((interrupted && *interrupted) || sbx_interrupted())
			return -EINTR;
		if (deadline) {
			long left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			if (left < step)
				step = left;
		}
		if (poll(&pfd, 1, (int)step) > 0)
			return 0;
	}
}

/* One non-blocking receive: bytes, 0 at the end, -EAGAIN, -EIO. */
static ssize_t recv_some(struct http_conn *k, char *buf, size_t len)
{
	size_t n = 0;
	CURLcode rc;

	pthread_mutex_lock(&k->lock);
	rc = curl_easy_recv(k->h, buf, len, &n);
	pthread_mutex_unlock(&k->lock);
	if (rc == CURLE_AGAIN)
		return -EAGAIN;
	if (rc != CURLE_OK) {
		sbx_failf("%s: %s", k->path, curl_easy_strerror(rc));
		return -EIO;
	}
	return (ssize_t)n;
}

static ssize_t read_until(struct http_conn *k, char *buf, size_t len, long deadline,
			  const volatile int *interrupted)
{
	for (;;) {
		ssize_t n = recv_some(k, buf, len);
		int rc;

		if (n != -EAGAIN)
			return n;
		rc = wait_ready(k, POLLIN, deadline, interrupted);
		if (rc == -ETIMEDOUT)
			sbx_failf("%s: no answer in time", k->path);
		if (rc)
			return rc;
	}
}

static ssize_t write_until(struct http_conn *k, const char *buf, size_t len,
			   long deadline, const volatile int *interrupted)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;
		CURLcode rc;
		int w;

		pthread_mutex_lock(&k->lock);
		rc = curl_easy_send(k->h, buf + done, len - done, &n);
		pthread_mutex_unlock(&k->lock);
		if (rc == CURLE_OK) {
			done += n;
			continue;
		}
		if (rc != CURLE_AGAIN) {
			sbx_failf("%s: cannot send: %s", k->path, curl_easy_strerror(rc));
			return rc == CURLE_SEND_ERROR ? -EPIPE : -EIO;
		}
		w = wait_ready(k, POLLOUT, deadline, interrupted);
		if (w == -ETIMEDOUT)
			sbx_failf("%s: the server takes nothing", k->path);
		if (w)
			return w;
	}
	return (ssize_t)len;
}

/* The request's head and body, by hand. */
static int build_request(struct strbuf *sb, struct http_client *c,
			 const struct http_req *req)
{
	const char *host = strstr(req->url, "://"), *path;
	const struct curl_slist *l;
	int rc = 0;
	size_t i;

	host = host ? host + 3 : req->url;
	path = strchr(host, '/');
	if (!path)
		path = "/";
	rc = strbuf_addf(sb, "%s %s HTTP/1.1\r\nHost: %.*s\r\n", req->method, path,
			 (int)(strcspn(host, "/")), host);
	for (l = http_client_headers(c); l && !rc; l = l->next)
		rc = strbuf_addf(sb, "%s\r\n", l->data);
	for (i = 0; req->headers && req->headers[i] && !rc; i++)
		rc = strbuf_addf(sb, "%s\r\n", req->headers[i]);
	if (!rc && req->body)
		rc = strbuf_addf(sb, "Content-Type: %s\r\n",
				 req->content_type ? req->content_type
						   : "application/json");
	if (!rc)
		rc = strbuf_addf(sb,
				 "Content-Length: %zu\r\nConnection: Upgrade\r\n"
				 "Upgrade: tcp\r\n\r\n",
				 req->body ? req->body_len : 0);
	if (!rc && req->body)
		rc = strbuf_add(sb, req->body, req->body_len);
	return rc;
}

/* A header's value in head (lines of "Name: value\r\n"), into out. */
static int header_value(const char *head, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	const char *l;

	for (l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
		l += 2;
		if (!strncasecmp(l, name, n) && l[n] == ':') {
			const char *v = l + n + 1;

			v += strspn(v, " \t");
			snprintf(out, size, "%.*s", (int)strcspn(v, "\r\n"), v);
			return 1;
		}
	}
	return 0;
}

/* Read the answer's head into head (its NUL-terminated text) and what
 * came after it into k->pending. */
static int read_head(struct http_conn *k, struct strbuf *head, long deadline)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read_until(k, buf, sizeof(buf), deadline, NULL);
		char *end;

		if (n < 0)
			return (int)n;
		if (n == 0) {
			sbx_failf("%s: the connection closed before an answer", k->path);
			return -EIO;
		}
		if (strbuf_add(head, buf, (size_t)n)) {
			sbx_failf("%s: an answer head over %u bytes", k->path, HEAD_MAX);
			return -EPROTO;
		}
		end = memmem(head->buf, head->len, "\r\n\r\n", 4);
		if (end) {
			size_t hlen = (size_t)(end - head->buf) + 4;

			k->npending = head->len - hlen;
			if (k->npending) {
				k->pending = malloc(k->npending);
				if (!k->pending)
					return -ENOMEM;
				memcpy(k->pending, head->buf + hlen, k->npending);
			}
			head->buf[hlen - 2] = '\0';
			head->len = hlen - 2;
			return 0;
		}
	}
}

/* The body of an answer that refused the upgrade, for its message. */
static void read_error_body(struct http_conn *k, const char *head, struct http_resp *resp,
			    long deadline)
{
	char len_s[32] = "", buf[4096];
	long long want = -1;

	if (header_value(head, "Content-Length", len_s, sizeof(len_s)))
		want = atoll(len_s);
	resp->body.max = ERROR_BODY_MAX;
	if (k->npending && strbuf_add(&resp->body, k->pending, k->npending))
		return;
	while (want < 0 || (long long)resp->body.len < want) {
		ssize_t n = read_until(k, buf, sizeof(buf), deadline, NULL);

		if (n <= 0 || strbuf_add(&resp->body, buf, (size_t)n))
			break;
	}
	resp->body_size = (off_t)resp->body.len;
}

int http_conn_open(struct http_client *c, struct http_conn **out,
		   const struct http_req *req, struct http_resp *resp)
{
	struct strbuf rq = STRBUF_INIT(1u << 20), head = STRBUF_INIT(HEAD_MAX);
	char errbuf[CURL_ERROR_SIZE] = "", te[64];
	long deadline = now_ms() + http_client_timeout_ms(c);
	struct http_conn *k;
	curl_socket_t sock;
	CURLcode cc;
	int rc;

	*out = NULL;
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	k = calloc(1, sizeof(*k));
	if (!k || !(k->h = curl_easy_init())) {
		free(k);
		return -ENOMEM;
	}
	pthread_mutex_init(&k->lock, NULL);
	http_url_path(req->url, k->path, sizeof(k->path));
	k->tls = !strncasecmp(req->url, "https:", 6);
	http_client_setup(c, k->h, errbuf);
	curl_easy_setopt(k->h, CURLOPT_URL, req->url);
	curl_easy_setopt(k->h, CURLOPT_CONNECT_ONLY, 1L);
	cc = curl_easy_perform(k->h);
	if (cc != CURLE_OK) {
		sbx_failf("%s %s: %s", req->method, k->path,
			  errbuf[0] ? errbuf : curl_easy_strerror(cc));
		http_conn_close(k);
		return cc == CURLE_COULDNT_CONNECT	? -ECONNREFUSED
		       : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
							: -EIO;
	}
	if (curl_easy_getinfo(k->h, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
	    sock == CURL_SOCKET_BAD) {
		sbx_failf("%s %s: no socket", req->method, k->path);
		http_conn_close(k);
		return -EIO;
	}
	k->sock = sock;
	rc = build_request(&rq, c, req);
	if (!rc)
		rc = (int)write_until(k, rq.buf, rq.len, deadline, NULL);
	strbuf_release(&rq);
	if (rc >= 0)
		rc = read_head(k, &head, deadline);
	if (rc < 0) {
		strbuf_release(&head);
		http_conn_close(k);
		return rc;
	}
	if (sscanf(head.buf, "HTTP/1.%*c %ld", &resp->status) != 1 ||
	    resp->status < 100 || resp->status > 599) {
		sbx_failf("%s %s: not an HTTP answer", req->method, k->path);
		rc = -EPROTO;
	} else if (resp->status == 101 || (resp->status >= 200 && resp->status < 300)) {
		header_value(head.buf, "Content-Type", resp->content_type,
			     sizeof(resp->content_type));
		if (header_value(head.buf, "Transfer-Encoding", te, sizeof(te))) {
			sbx_failf("%s %s: a stream in \"%s\" transfer encoding",
				  req->method, k->path, te);
			rc = -EPROTO;
		} else {
			*out = k;
		}
	} else {
		read_error_body(k, head.buf, resp, deadline);
	}
	strbuf_release(&head);
	if (!*out)
		http_conn_close(k);
	return rc;
}

ssize_t http_conn_read(struct http_conn *k, char *buf, size_t len, int timeout_ms,
		       const volatile int *interrupted)
{
	if (k->off < k->npending) {
		size_t n = k->npending - k->off;

		if (n > len)
			n = len;
		memcpy(buf, k->pending + k->off, n);
		k->off += n;
		return (ssize_t)n;
	}
	return read_until(k, buf, len, timeout_ms < 0 ? 0 : now_ms() + timeout_ms,
			  interrupted);
}

ssize_t http_conn_write(struct http_conn *k, const char *buf, size_t len,
			const volatile int *interrupted)
{
	return write_until(k, buf, len, 0, interrupted);
}

/*
 * TLS has no half-close of the socket's kind: a TCP FIN without TLS's
 * own end is a truncation to the peer.  Its end of input is close_notify
 * (SSL_shutdown(), what Go's tls.Conn.CloseWrite sends and an engine
 * reads as the end of a command's stdin); the stream is then read on
 * with SSL_read() alone, through curl.
 */
static int tls_shutdown_write(struct http_conn *k)
{
	struct curl_tlssessioninfo *info = NULL;
	SSL *ssl;
	int r, w;

	for (;;) {
		pthread_mutex_lock(&k->lock);
		if (curl_easy_getinfo(k->h, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK ||
		    !info || info->backend != CURLSSLBACKEND_OPENSSL ||
		    !info->internals) {
			pthread_mutex_unlock(&k->lock);
			sbx_failf(
				"%s: cannot end the input of a TLS stream with this libcurl",
				k->path);
			return -ENOTSUP;
		}
		ssl = info->internals;
		r = SSL_shutdown(ssl);
		r = r >= 0 ? 0 : SSL_get_error(ssl, r);
		pthread_mutex_unlock(&k->lock);
		if (!r)
			return 0;
		if (r != SSL_ERROR_WANT_WRITE && r != SSL_ERROR_WANT_READ) {
			sbx_failf("%s: cannot end the input of the TLS stream", k->path);
			return -EIO;
		}
		w = wait_ready(k, r == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0, NULL);
		if (w)
			return w;
	}
}

int http_conn_shutdown_write(struct http_conn *k)
{
	if (k->tls)
		return tls_shutdown_write(k);
	return shutdown(k->sock, SHUT_WR) ? -errno : 0;
}

void http_conn_close(struct http_conn *k)
{
	if (!k)
		return;
	curl_easy_cleanup(k->h);
	pthread_mutex_destroy(&k->lock);
	free(k->pending);
	free(k);
}
