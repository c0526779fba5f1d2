/* SPDX-License-Identifier: MIT */
/*
 * A small blocking WebSocket client over libwebsockets, for the remote
 * providers' streams.
 *
 * One connection, one thread: the thread that calls ws_recv() drives the
 * connection (each connection has its own libwebsockets context, so no
 * service thread is shared and nothing blocks another connection).  Every
 * wait is bounded by the caller's timeout.  Messages are bounded by
 * `max_message`.  Header values (credentials) are never logged.
 */
#ifndef SBXFS_WS_H
#define SBXFS_WS_H

#include <stddef.h>
#include <sys/types.h>

#include "sbxfs/strbuf.h"

struct ws_conn;

struct ws_config {
	const char *url; /* ws://, wss://, http:// or https:// (mapped to ws) */
	/* Extra handshake header lines, "Name: value". */
	const char *const *headers;
	size_t nheaders;
	int connect_timeout_ms;
	size_t max_message; /* default 1 MiB */
};

/* Connect and finish the handshake.  -ECONNREFUSED, -ETIMEDOUT, or -EIO
 * with sbx_failf() text (a refused upgrade, e.g. 404, is -ENOENT). */
int ws_connect(struct ws_conn **out, const struct ws_config *cfg);

/*
 * The next whole message into `msg` (replacing its contents).  Returns
 * 1 with a message, 0 once the peer closed (*close_code set: 1000 for a
 * normal close, 1006 when the connection dropped without one), or -errno:
 * -ETIMEDOUT when nothing came within timeout_ms (the connection stays
 * usable), -EFBIG for a message over max_message, -EAGAIN after ws_wake().
 * While unread messages pile up, the connection stops reading from the
 * peer instead of failing.
 */
int ws_recv(struct ws_conn *c, struct strbuf *msg, int *binary, int *close_code,
	    int timeout_ms);

/*
 * Make a ws_recv() running (or about to run) in another thread return
 * -EAGAIN at once, e.g. because there is something to send.  The only
 * call that is safe from another thread; `c` must stay open meanwhile.
 */
void ws_wake(struct ws_conn *c);

/* Send one text message (queued, then written as the socket allows).
 * 0; -ETIMEDOUT if it did not go within timeout_ms; -EPIPE once closed. */
int ws_send_text(struct ws_conn *c, const char *data, size_t len, int timeout_ms);
/* Send one binary message, as ws_send_text(). */
int ws_send_binary(struct ws_conn *c, const void *data, size_t len, int timeout_ms);

void ws_close(struct ws_conn *c);

/*
 * A WebSocket as a byte pipe, for a protocol that runs one byte stream
 * over binary messages whose boundaries mean nothing (ws_pipe.c).
 * Connect as ws_connect() does; then *fd is one end of a stream socket
 * pair: what is written to it goes out as binary messages, and the bytes
 * of every binary message that comes in can be read from it, in order
 * (text messages are dropped).  Two threads of its own drive the
 * WebSocket.  When the peer closes or the connection fails, *fd reads end
 * of file; closing *fd closes the WebSocket.  0, or -errno as
 * ws_connect().
 */
int ws_pipe_open(const struct ws_config *cfg, int *fd);

#endif
