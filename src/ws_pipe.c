/* SPDX-License-Identifier: MIT */
/*
 * A WebSocket as a byte pipe (ws.h: ws_pipe_open()).
 *
 * ws.c lets one thread drive a connection, and that thread sleeps in
 * ws_recv(); so two threads serve each pipe:
 *
 *   watcher                               pump (owns the ws_conn)
 *   -------                               -----------------------
 *   poll our end of the pair;             loop: if told, read what our end
 *   readable: tell the pump (want),         holds and send it as binary
 *   ws_wake() it, wait till it has          messages, then say so;
 *   read (want cleared)                     ws_recv(): a binary message's
 *                                           bytes are written to our end
 *
 * The pump ends on a close or failure of either side: it stops the
 * watcher, shuts our end (the other end reads end of file), closes the
 * WebSocket and frees the pipe.  Nothing waits on it: it is detached.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "sbxfs/ws.h"

#define CHUNK (64u << 10)      /* read from our end at once */
#define BURST (1u << 20)       /* sent before the pump looks for input */
#define SEND_MS 30000	       /* a message that does not go: the pipe ends */
#define DELIVER_MS 30000       /* our end full this long: the pipe ends */
#define MESSAGE_MAX (8u << 20) /* the largest message taken */

struct ws_pipe {
	struct ws_conn *ws;
	int fd;	     /* our end of the pair, non-blocking */
	int stop[2]; /* the pump ends the watcher's poll by writing here */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int want;   /* our end has bytes to send: the pump is to read them */
	int ending; /* the pump is ending */
	pthread_t watcher;
};

static void *watcher_main(void *arg)
{
	struct ws_pipe *p = arg;

	for (;;) {
		struct pollfd pf[2] = { { p->fd, POLLIN, 0 }, { p->stop[0], POLLIN, 0 } };
		int ending;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (!pf[0].revents)
			continue;
		pthread_mutex_lock(&p->lock);
		p->want = 1;
		ws_wake(p->ws);
		while (p->want && !p->ending)
			pthread_cond_wait(&p->cond, &p->lock);
		ending = p->ending;
		pthread_mutex_unlock(&p->lock);
		if (ending)
			break;
	}
	return NULL;
}

/* Write all of buf to our end, waiting for room at most DELIVER_MS in
 * all.  0 or -errno. */
static int deliver(int fd, const char *buf, size_t len)
{
	int waited = 0;

	while (len) {
		ssize_t n = write(fd, buf, len);
		struct pollfd pf = { fd, POLLOUT, 0 };

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (waited >= DELIVER_MS)
			return -ETIMEDOUT;
		if (poll(&pf, 1, 1000) == 0)
			waited += 1000;
	}
	return 0;
}

/* Send what our end holds, up to BURST bytes.  1 if more may be left,
 * 0 if all was sent, -errno (-EPIPE: the other end was closed). */
static int send_pending(struct ws_pipe *p, char *buf)
{
	size_t sent = 0;

	while (sent < BURST) {
		ssize_t n = read(p->fd, buf, CHUNK);

		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return errno == EAGAIN ? 0 : errno == EINTR ? 1 : -errno;
		if (ws_send_binary(p->ws, buf, (size_t)n, SEND_MS))
			return -EIO;
		sent += (size_t)n;
	}
	return 1;
}

static void *pump_main(void *arg)
{
	struct ws_pipe *p = arg;
	struct strbuf msg = STRBUF_INIT(MESSAGE_MAX);
	char *buf = malloc(CHUNK);
	int more = 0, rc = buf ? 0 : -ENOMEM;

	while (!rc) {
		int want, binary = 0, code;

		pthread_mutex_lock(&p->lock);
		want = p->want;
		pthread_mutex_unlock(&p->lock);
		if (want || more) {
			more = send_pending(p, buf);
			if (more < 0)
				break;
			if (!more) {
				pthread_mutex_lock(&p->lock);
				p->want = 0;
				pthread_cond_signal(&p->cond);
				pthread_mutex_unlock(&p->lock);
			}
		}
		rc = ws_recv(p->ws, &msg, &binary, &code, more ? 1 : 1000);
		if (rc == 1) {
			rc = binary ? deliver(p->fd, msg.buf, msg.len) : 0;
		} else if (rc == 0) {
			sbx_debug("ws pipe: closed by the peer (%d)", code);
			rc = -EPIPE;
		} else if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			rc = 0;
		}
	}
	pthread_mutex_lock(&p->lock);
	p->ending = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	while (write(p->stop[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(p->watcher, NULL);
	shutdown(p->fd, SHUT_RDWR);
	close(p->fd);
	close(p->stop[0]);
	close(p->stop[1]);
	ws_close(p->ws);
	strbuf_release(&msg);
	free(buf);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	return NULL;
}

int ws_pipe_open(const struct ws_config *cfg, int *fd)
{
	struct ws_pipe *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	pthread_t pump;
	int sv[2] = { -1, -1 }, rc;

	if (!p)
		return -ENOMEM;
	p->stop[0] = p->stop[1] = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	rc = ws_connect(&p->ws, cfg);
	if (rc)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    pipe2(p->stop, O_CLOEXEC)) {
		rc = -errno;
		sbx_failf("WebSocket pipe: %s", strerror(-rc));
		goto fail;
	}
	p->fd = sv[1];
	fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
	rc = -pthread_create(&p->watcher, NULL, watcher_main, p);
	if (rc)
		goto fail;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = -pthread_create(&pump, &attr, pump_main, p);
	pthread_attr_destroy(&attr);
	if (rc) {
		while (write(p->stop[1], "x", 1) < 0 && errno == EINTR)
			;
		pthread_join(p->watcher, NULL);
		goto fail;
	}
	*fd = sv[0];
	return 0;
fail:
	if (rc == -EAGAIN)
		sbx_failf("WebSocket pipe: no thread for it");
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	if (p->stop[0] >= 0) {
		close(p->stop[0]);
		close(p->stop[1]);
	}
	ws_close(p->ws);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	return rc;
}
