/* SPDX-License-Identifier: MIT */
/* A blocking WebSocket client, one libwebsockets context per connection;
 * see ws.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "sbxfs/http.h"
#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "sbxfs/ws.h"

#define DEFAULT_MAX_MESSAGE (1u << 20)
#define QUEUE_MAX 8

enum ws_phase { WS_CONNECTING, WS_OPEN, WS_CLOSED, WS_FAILED };

struct ws_conn {
	struct lws_context *ctx;
	struct lws *wsi;
	enum ws_phase phase;
	int close_code;
	char why[160];

	char **headers; /* "Name:" and value, pairs */
	size_t nheaders;

	/* The message being received, and whole ones not yet taken. */
	struct strbuf partial;
	int partial_binary;
	struct {
		char *data;
		size_t len;
		int binary;
	} ready[QUEUE_MAX];
	int nready;
	int too_big;
	int rx_paused; /* reading stopped while `ready` is full */
	int woken;     /* ws_wake() was called; atomic */

	/* One outgoing message at a time. */
	unsigned char *out; /* LWS_PRE bytes of headroom, then the data */
	size_t out_len;
	int out_binary;

	lws_retry_bo_t idle; /* when to PING a quiet connection, and give up */
};

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void quiet_lws(void)
{
	/* libwebsockets logs to stderr by default; its errors reach us as
	 * callbacks, which we report ourselves. */
	lws_set_log_level(0, NULL);
}

/*
 * The TLS client context every WebSocket of the process shares: the CA
 * store (http_ca_file(), else the system's) read once, not once a
 * connection.  libwebsockets verifies the peer and its name with it.
 * NULL if it could not be made.  Freed at exit.
 */
static SSL_CTX *tls_ctx;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void)
{
	SSL_CTX_free(tls_ctx);
}

static void tls_init(void)
{
	const char *ca = http_ca_file();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (!(ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
		 : SSL_CTX_set_default_verify_paths(ctx))) {
		SSL_CTX_free(ctx);
		return;
	}
	tls_ctx = ctx;
	atexit(tls_free);
}

static SSL_CTX *shared_tls(void)
{
	pthread_once(&tls_once, tls_init);
	return tls_ctx;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		    void *in, size_t len)
{
	struct ws_conn *c = lws_get_opaque_user_data(wsi);

	if (!c)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = in, *end = *p + len;

		for (size_t i = 0; i < c->nheaders; i++) {
			const char *v = c->headers[2 * i + 1];

			if (lws_add_http_header_by_name(
				    wsi, (const unsigned char *)c->headers[2 * i],
				    (const unsigned char *)v, (int)strlen(v), p, end))
				return -1;
		}
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->phase = WS_OPEN;
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(c->why, sizeof(c->why), "%.*s", (int)(in ? len : 0),
			 in ? (const char *)in : "");
		c->phase = WS_FAILED;
		c->wsi = NULL;
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len >= 2)
			c->close_code = ((const unsigned char *)in)[0] << 8 |
					((const unsigned char *)in)[1];
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!c->close_code)
			c->close_code = 1006;
		c->phase = WS_CLOSED;
		c->wsi = NULL;
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c->too_big)
			break;
		if (lws_is_first_fragment(wsi)) {
			c->partial.len = 0;
			c->partial_binary = lws_frame_is_binary(wsi);
		}
		if (strbuf_add(&c->partial, in, len)) {
			c->too_big = 1;
			break;
		}
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
			if (c->nready == QUEUE_MAX) {
				c->too_big = 1; /* the reader is not keeping up */
				break;
			}
			c->ready[c->nready].binary = c->partial_binary;
			c->ready[c->nready].data =
				strbuf_detach(&c->partial, &c->ready[c->nready].len);
			c->nready++;
			/* A full queue pauses reading (the peer waits) rather
			 * than failing the connection. */
			if (c->nready == QUEUE_MAX && !lws_rx_flow_control(wsi, 0))
				c->rx_paused = 1;
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->out_len) {
			int n = lws_write(wsi, c->out + LWS_PRE, c->out_len,
					  c->out_binary ? LWS_WRITE_BINARY
							: LWS_WRITE_TEXT);

			c->out_len = 0;
			if (n < 0)
				return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Bytes taken from the socket in one read, and delivered in one
 * LWS_CALLBACK_CLIENT_RECEIVE: a file's data, megabytes of it, is a
 * callback per 64 KiB, not per 4 KiB (libwebsockets' default). */
#define WS_IO_BYTES 65536

static const struct lws_protocols protocols[] = {
	{ "sbxfs", on_event, 0, WS_IO_BYTES, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int split_headers(struct ws_conn *c, const struct ws_config *cfg)
{
	c->headers = calloc(2 * cfg->nheaders + 1, sizeof(char *));
	if (!c->headers)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->nheaders; i++) {
		const char *h = cfg->headers[i], *colon = strchr(h, ':');
		const char *v;

		if (!colon)
			return -EINVAL;
		v = colon + 1;
		while (*v == ' ')
			v++;
		/* libwebsockets wants the name with its colon. */
		c->headers[2 * i] = strndup(h, (size_t)(colon - h) + 1);
		c->headers[2 * i + 1] = strdup(v);
		c->nheaders = i + 1;
		if (!c->headers[2 * i] || !c->headers[2 * i + 1])
			return -ENOMEM;
	}
	return 0;
}

int ws_connect(struct ws_conn **out, const struct ws_config *cfg)
{
	struct lws_context_creation_info ci;
	struct lws_client_connect_info cc;
	const char *prot, *addr, *path;
	char *url = strdup(cfg->url), pathbuf[4096];
	struct ws_conn *c = calloc(1, sizeof(*c));
	long deadline;
	int port, tls, rc = 0;

	pthread_once(&log_once, quiet_lws);
	*out = NULL;
	if (!c || !url) {
		rc = -ENOMEM;
		goto fail;
	}
	c->partial = (struct strbuf)STRBUF_INIT(cfg->max_message ? cfg->max_message
								 : DEFAULT_MAX_MESSAGE);
	rc = split_headers(c, cfg);
	if (rc)
		goto fail;
	if (lws_parse_uri(url, &prot, &addr, &port, &path)) {
		sbx_failf("bad WebSocket address");
		rc = -EINVAL;
		goto fail;
	}
	snprintf(pathbuf, sizeof(pathbuf), "/%s", path);

	memset(&ci, 0, sizeof(ci));
	ci.port = CONTEXT_PORT_NO_LISTEN;
	ci.protocols = protocols;
	tls = !strcmp(prot, "wss") || !strcmp(prot, "https");
	/* TLS set-up only for connections that use it, and then the one
	 * context of the process: the CA store is read once. */
	if (tls) {
		ci.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		ci.provided_client_ssl_ctx = shared_tls();
		if (!ci.provided_client_ssl_ctx) {
			sbx_failf("cannot set up TLS for a WebSocket (the CA store: %s)",
				  http_ca_file() ? http_ca_file() : "the system's");
			rc = -EPROTO;
			goto fail;
		}
	}
	ci.pt_serv_buf_size = WS_IO_BYTES;
	ci.connect_timeout_secs = (cfg->connect_timeout_ms + 999) / 1000;
	/* A peer that vanished: TCP keep-alive below, PINGs above. */
	ci.ka_time = http_keepalive();
	ci.ka_probes = 3;
	ci.ka_interval = (http_keepalive() + 2) / 3;
	c->ctx = lws_create_context(&ci);
	if (!c->ctx) {
		sbx_failf("cannot set up a WebSocket");
		rc = -ENOMEM;
		goto fail;
	}
	memset(&cc, 0, sizeof(cc));
	cc.context = c->ctx;
	cc.address = addr;
	cc.port = port;
	cc.path = pathbuf;
	cc.host = addr;
	cc.origin = addr;
	cc.ietf_version_or_minus_one = -1;
	cc.ssl_connection =
		(!strcmp(prot, "wss") || !strcmp(prot, "https")) ? LCCSCF_USE_SSL : 0;
	cc.opaque_user_data = c;
	c->idle.secs_since_valid_ping = (uint16_t)http_keepalive();
	c->idle.secs_since_valid_hangup = (uint16_t)(2 * http_keepalive());
	cc.retry_and_idle_policy = &c->idle;
	cc.pwsi = &c->wsi;
	if (!lws_client_connect_via_info(&cc) && c->phase != WS_FAILED)
		c->phase = WS_FAILED;

	deadline = now_ms() +
		   (cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000);
	while (c->phase == WS_CONNECTING && now_ms() < deadline)
		lws_service(c->ctx, 100);
	if (c->phase != WS_OPEN) {
		if (c->phase == WS_CONNECTING) {
			sbx_failf("WebSocket %s: no answer in time", pathbuf);
			rc = -ETIMEDOUT;
		} else {
			sbx_failf("WebSocket %s: %s", pathbuf,
				  c->why[0] ? c->why : "refused");
			/* A refused upgrade ("HS: ws upgrade response not 101")
			 * means the route is not there. */
			rc = strstr(c->why, "101")	 ? -ENOENT
			     : strstr(c->why, "refused") ? -ECONNREFUSED
							 : -EIO;
		}
		goto fail;
	}
	free(url);
	*out = c;
	return 0;
fail:
	free(url);
	ws_close(c);
	return rc;
}

int ws_recv(struct ws_conn *c, struct strbuf *msg, int *binary, int *close_code,
	    int timeout_ms)
{
	long deadline = now_ms() + timeout_ms, left;

	for (;;) {
		if (c->too_big) {
			sbx_failf("WebSocket message larger than %zu bytes",
				  c->partial.max);
			return -EFBIG;
		}
		if (c->nready) {
			strbuf_release(msg);
			msg->buf = c->ready[0].data;
			msg->len = msg->cap = c->ready[0].len;
			if (binary)
				*binary = c->ready[0].binary;
			memmove(&c->ready[0], &c->ready[1],
				--c->nready * sizeof(c->ready[0]));
			if (c->rx_paused && c->wsi) {
				c->rx_paused = 0;
				lws_rx_flow_control(c->wsi, 1);
			}
			return 1;
		}
		if (c->phase != WS_OPEN) {
			if (close_code)
				*close_code = c->close_code ? c->close_code : 1006;
			return 0;
		}
		if (__atomic_exchange_n(&c->woken, 0, __ATOMIC_ACQ_REL))
			return -EAGAIN;
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		/* libwebsockets' poll waits for its own next timer, whatever
		 * timeout we pass: a timer on the connection bounds it. */
		if (left > 100)
			left = 100;
		if (c->wsi)
			lws_set_timer_usecs(c->wsi, (lws_usec_t)left * 1000);
		lws_service(c->ctx, (int)left);
	}
}

static int ws_send(struct ws_conn *c, const void *data, size_t len, int binary,
		   int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	unsigned char *buf;

	if (c->phase != WS_OPEN || !c->wsi)
		return -EPIPE;
	buf = realloc(c->out, LWS_PRE + len);
	if (!buf)
		return -ENOMEM;
	c->out = buf;
	memcpy(buf + LWS_PRE, data, len);
	c->out_len = len;
	c->out_binary = binary;
	lws_callback_on_writable(c->wsi);
	while (c->out_len && c->phase == WS_OPEN && now_ms() < deadline)
		lws_service(c->ctx, 50);
	if (c->out_len) {
		c->out_len = 0;
		return c->phase == WS_OPEN ? -ETIMEDOUT : -EPIPE;
	}
	return 0;
}

int ws_send_text(struct ws_conn *c, const char *data, size_t len, int timeout_ms)
{
	return ws_send(c, data, len, 0, timeout_ms);
}

int ws_send_binary(struct ws_conn *c, const void *data, size_t len, int timeout_ms)
{
	return ws_send(c, data, len, 1, timeout_ms);
}

void ws_wake(struct ws_conn *c)
{
	__atomic_store_n(&c->woken, 1, __ATOMIC_RELEASE);
	lws_cancel_service(c->ctx);
}

void ws_close(struct ws_conn *c)
{
	if (!c)
		return;
	if (c->ctx)
		lws_context_destroy(c->ctx);
	for (size_t i = 0; i < 2 * c->nheaders; i++) {
		if (c->headers[i])
			memset(c->headers[i], 0, strlen(c->headers[i]));
		free(c->headers[i]);
	}
	free(c->headers);
	for (int i = 0; i < c->nready; i++)
		free(c->ready[i].data);
	strbuf_release(&c->partial);
	free(c->out);
	free(c);
}
