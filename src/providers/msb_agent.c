/* SPDX-License-Identifier: MIT */
/*
 * microsandbox: the agent socket of each sandbox, and the sessions on it.
 *
 * A sandbox's agent.sock is a relay: it gives each client a range of
 * correlation ids, and every exchange (a file operation, a command) is a
 * session on one id of that range.  Handles, commands and streams belong
 * to the connection that made them and die with it, so there is one
 * long-lived socket per sandbox, shared by every call:
 *
 *   caller threads                        reader thread (one per socket)
 *   --------------                        ------------------------------
 *   msb_sess_open: take a free id,        read a frame; find its session;
 *   send the first frame (under the       call the session's fn with it;
 *   write lock); msb_sess_wait on the     a terminal frame ends the
 *   condvar, bounded                      session (its id is free again)
 *
 * Sessions in flight are a list under the socket's lock, which is never
 * held across a read, a write or a call of fn (a session being fed is
 * marked busy, so that msb_sess_close() waits for it).  When the socket
 * ends, for a drop, a stop or a frame that is not the protocol, every
 * session still open is told (fn with NULL) and fails; the next session
 * for the sandbox connects anew.  Sockets are reference counted: the
 * table holds one reference, the reader one, each session one.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "msb.h"
#include "sbxfs/log.h"

#define WHY_MAX 300

struct msb_sess {
	struct msb_sess *next; /* in c->sessions while linked */
	struct msb_conn *c;    /* referenced */
	uint32_t id;
	msb_frame_fn fn;
	void *ctx;
	int linked; /* frames for the id reach fn */
	int busy;   /* the reader is inside fn */
	int closed; /* closed from inside fn: the reader frees it after */
	int done;   /* ended: err and why are final */
	int err;
	char why[WHY_MAX];
	long last_ms; /* when the session was last heard from */
};

struct msb_conn {
	struct msb_conn *next; /* in m->conns, under m->lock */
	struct msb *m;
	char box[SBX_NAME_MAX + 1];
	int refs; /* under m->lock */
	int fd;
	uint32_t id_lo, id_hi; /* the relay's range: [id_lo, id_hi) */
	unsigned gen;	       /* the generation spoken */

	pthread_mutex_t wlock; /* one frame written at a time */
	pthread_mutex_t lock;  /* guards what follows */
	pthread_cond_t cond;   /* a session progressed, or the socket died */
	int dead;	       /* ended or ending: no new sessions */
	pthread_t reader;      /* the reader thread */
	uint32_t next_id;
	struct msb_sess *sessions;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- the socket's bytes ---- */

/* Read exactly len bytes, waiting at most until `deadline` (ms of
 * now_ms(); 0: no bound).  0; -ECONNRESET at end of file; -ETIMEDOUT;
 * -errno. */
static int read_full(int fd, void *buf, size_t len, long deadline)
{
	char *p = buf;

	while (len) {
		ssize_t n;

		if (deadline) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			long left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			if (poll(&pfd, 1, left > 200 ? 200 : (int)left) < 0 &&
			    errno != EINTR)
				return -errno;
			if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		n = read(fd, p, len);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write all of buf within timeout_ms.  0, -ETIMEDOUT or -errno. */
static int write_full(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;
	long deadline = now_ms() + timeout_ms;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A frame that came in: its id, flags and body (the bytes after them). */
struct raw_frame {
	uint32_t id;
	unsigned flags;
	uint8_t *body; /* malloc()ed */
	size_t len;
};

/* Read one frame into *f (free f->body).  0; -EPROTO for a length the
 * protocol does not allow; what read_full() returns. */
static int read_frame(int fd, struct raw_frame *f, long deadline)
{
	uint8_t head[MSB_FRAME_HEAD];
	uint32_t len;
	int rc = read_full(fd, head, sizeof(head), deadline);

	f->body = NULL;
	if (rc)
		return rc;
	len = be32(head);
	if (len < 5 || len > MSB_FRAME_MAX)
		return -EPROTO;
	f->id = be32(head + 4);
	f->flags = head[8];
	f->len = len - 5;
	f->body = malloc(f->len ? f->len : 1);
	if (!f->body)
		return -ENOMEM;
	rc = read_full(fd, f->body, f->len, deadline);
	if (rc) {
		free(f->body);
		f->body = NULL;
	}
	return rc;
}

/* ---- finding and connecting the socket ---- */

/* Hex of the first n bytes of sha256(s). */
static void sha_hex(char *out, const char *s, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (!EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL))
		mdlen = 0;
	for (size_t i = 0; i < n && i < mdlen; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[2 * (mdlen < n ? mdlen : n)] = '\0';
}

/*
 * Connect to the socket `base` in the directory `dir`.  The directory is
 * opened first and the socket reached through /proc/self/fd, so that a
 * deep MSB_HOME does not overflow sockaddr_un's 108 bytes.  The fd, or
 * -ENOENT if there is no such socket, -ECONNREFUSED if nothing listens.
 */
static int connect_at(const char *dir, const char *base)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd, rc = 0;

	if (dfd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, base);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		rc = -errno;
	else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		rc = -errno;
	close(dfd);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

/* The agent socket of box, where msb puts it: run/sandboxes/<24 hex of
 * sha256(name)>/agent.sock, else run/agent/<32 hex>.sock, else the
 * sandbox's runtime directory.  The fd or -errno. */
static int connect_agent(struct msb *m, const char *box)
{
	char h24[49], h32[65], dir[4096], base[80];
	int rc = -ENOENT;

	sha_hex(h24, box, 12);
	sha_hex(h32, box, 16);
	for (int i = 0; i < 3 && (rc == -ENOENT || rc == -ECONNREFUSED); i++) {
		int r;

		if (i == 0) {
			snprintf(dir, sizeof(dir), "%s/run/sandboxes/%s", m->home, h24);
			snprintf(base, sizeof(base), "agent.sock");
		} else if (i == 1) {
			snprintf(dir, sizeof(dir), "%s/run/agent", m->home);
			snprintf(base, sizeof(base), "%s.sock", h32);
		} else {
			snprintf(dir, sizeof(dir), "%s/sandboxes/%s/runtime", m->home,
				 box);
			snprintf(base, sizeof(base), "agent.sock");
		}
		r = connect_at(dir, base);
		if (r >= 0)
			return r;
		/* A refused socket is a stale one: keep the first such
		 * answer unless a later candidate does better. */
		if (rc == -ENOENT)
			rc = r;
	}
	return rc;
}

/* The relay's handshake: the 8 bytes of the id range, then the agent's
 * core.ready frame.  Bounded by the provider's timeout. */
static int handshake(struct msb_conn *c)
{
	long deadline = now_ms() + c->m->r.timeout_ms;
	struct raw_frame raw = { 0 };
	struct msb_frame f;
	uint8_t range[8];
	int rc = read_full(c->fd, range, sizeof(range), deadline);

	if (!rc)
		rc = read_frame(c->fd, &raw, deadline);
	if (rc == -ETIMEDOUT) {
		sbx_failf("microsandbox: the agent of sandbox \"%s\" did not become "
			  "ready within %d s",
			  c->box, c->m->r.timeout_ms / 1000);
	} else if (rc == -ECONNRESET) {
		sbx_failf("microsandbox: the agent socket of sandbox \"%s\" closed "
			  "before the handshake (all 128 client slots in use?)",
			  c->box);
	} else if (!rc) {
		c->id_lo = be32(range);
		c->id_hi = be32(range + 4);
		if (c->id_lo == 0)
			c->id_lo = 1;
		if (c->id_lo >= c->id_hi || msb_frame_parse(&f, raw.body, raw.len) ||
		    !msb_frame_is(&f, "core.ready") || f.v == 0) {
			sbx_failf("microsandbox: the agent socket of sandbox \"%s\" "
				  "sent no handshake that sbxfs knows",
				  c->box);
			rc = -EPROTO;
		} else {
			c->gen = f.v < MSB_GEN ? f.v : MSB_GEN;
			c->next_id = c->id_lo;
		}
	} else {
		sbx_failf("microsandbox: the agent socket of sandbox \"%s\": %s", c->box,
			  strerror(-rc));
	}
	free(raw.body);
	return rc;
}

/* ---- sessions (c->lock held) ---- */

static struct msb_sess *find_sess(struct msb_conn *c, uint32_t id)
{
	for (struct msb_sess *s = c->sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void unlink_sess(struct msb_conn *c, struct msb_sess *s)
{
	for (struct msb_sess **pp = &c->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	s->linked = 0;
}

static void end_sess(struct msb_conn *c, struct msb_sess *s, int err, const char *why)
{
	if (s->linked)
		unlink_sess(c, s);
	if (!s->done) {
		s->done = 1;
		s->err = err;
		if (why)
			snprintf(s->why, sizeof(s->why), "%s", why);
	}
	pthread_cond_broadcast(&c->cond);
}

/*
 * The reader is back from s's fn (c->lock held): 1 if fn closed the
 * session meanwhile (a command's end releases it), which is then freed
 * here and must not be touched again; the caller drops its reference
 * to c once it has let go of the lock.
 */
static int back_from_fn(struct msb_conn *c, struct msb_sess *s)
{
	s->busy = 0;
	pthread_cond_broadcast(&c->cond);
	if (!s->closed)
		return 0;
	free(s);
	return 1;
}

/* A free id of the range, or 0 when every one is taken. */
static uint32_t take_id(struct msb_conn *c)
{
	for (uint32_t tries = 0; tries < c->id_hi - c->id_lo; tries++) {
		uint32_t id = c->next_id;

		c->next_id = id + 1 >= c->id_hi ? c->id_lo : id + 1;
		if (!find_sess(c, id))
			return id;
	}
	return 0;
}

/* ---- the reader ---- */

static void conn_put(struct msb_conn *c);

/* The messages an agent sends a client; any other ends the socket. */
static int known_type(const struct msb_frame *f)
{
	static const char *const types[] = {
		"core.fs.response",
		"core.fs.data",
		"core.exec.started",
		"core.exec.stdout",
		"core.exec.stderr",
		"core.exec.exited",
		"core.exec.failed",
		"core.exec.stdin.error",
		"core.error",
		"core.pong",
		"core.touched",
		"core.ready",
		NULL,
	};

	for (int i = 0; types[i]; i++)
		if (msb_frame_is(f, types[i]))
			return 1;
	return 0;
}

/* The words of a core.error, for a session's failure. */
static void error_text(char *out, size_t size, struct msb_conn *c,
		       const struct msb_frame *f)
{
	struct cbor_val v;
	char kind[40] = "?", msg[160] = "", type[48] = "";

	if (!cbor_map_get(&f->payload, "kind", &v))
		cbor_text_copy(&v, kind, sizeof(kind));
	if (!cbor_map_get(&f->payload, "message", &v))
		cbor_text_copy(&v, msg, sizeof(msg));
	if (!cbor_map_get(&f->payload, "offending_type", &v))
		cbor_text_copy(&v, type, sizeof(type));
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	snprintf(out, size,
		 "microsandbox: the agent of sandbox \"%s\" refused %s: %s%s%s", c->box,
		 type[0] ? type : "a message", kind, msg[0] ? ": " : "", msg);
}

/* Hand one frame to its session.  0, or -EPROTO: the socket must end. */
static int dispatch(struct msb_conn *c, const struct raw_frame *raw)
{
	uint32_t id = raw->id;
	unsigned flags = raw->flags;
	struct msb_frame f;
	struct msb_sess *s;
	char why[WHY_MAX];
	int rc, is_error;

	if (msb_frame_parse(&f, raw->body, raw->len)) {
		sbx_warn("microsandbox: %s: a frame that is not the agent protocol",
			 c->box);
		return -EPROTO;
	}
	f.id = id;
	f.flags = flags;
	if (!known_type(&f)) {
		char t[48] = "";

		cbor_text_copy(&f.type, t, sizeof(t));
		sbx_warn("microsandbox: %s: an unknown message \"%.40s\"", c->box, t);
		return -EPROTO;
	}
	is_error = msb_frame_is(&f, "core.error");
	pthread_mutex_lock(&c->lock);
	s = id ? find_sess(c, id) : NULL;
	if (!s || s->done) {
		pthread_mutex_unlock(&c->lock);
		return 0; /* a late frame of a session given up, or the relay's */
	}
	s->busy = 1;
	s->last_ms = now_ms();
	pthread_mutex_unlock(&c->lock);
	if (is_error) {
		error_text(why, sizeof(why), c, &f);
		rc = s->fn(s->ctx, NULL, -EPROTO, why);
		rc = rc < 0 ? rc : -EPROTO;
	} else {
		rc = s->fn(s->ctx, &f, 0, NULL);
		if (rc < 0)
			snprintf(why, sizeof(why), "%s", sbx_fail_text());
	}
	pthread_mutex_lock(&c->lock);
	if (back_from_fn(c, s)) {
		pthread_mutex_unlock(&c->lock);
		conn_put(c); /* the session's */
		return 0;
	}
	if (rc < 0)
		end_sess(c, s, rc, why);
	else if (flags & MSB_FLAG_TERMINAL)
		end_sess(c, s, 0, NULL);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Take c out of the table if it is there (m->lock held): 1 if it was,
 * and the caller now holds the table's reference. */
static int conn_unlink_locked(struct msb *m, struct msb_conn *c)
{
	for (struct msb_conn **pp = &m->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			return 1;
		}
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct msb_conn *c = arg;
	struct msb *m = c->m;
	char why[WHY_MAX];
	int rc, in_table;

	for (;;) {
		struct raw_frame raw;

		rc = read_frame(c->fd, &raw, 0);
		if (!rc)
			rc = dispatch(c, &raw);
		free(raw.body);
		if (rc)
			break;
	}
	if (rc == -EPROTO)
		snprintf(why, sizeof(why),
			 "microsandbox: the agent of sandbox \"%s\" broke the protocol; "
			 "its socket was closed",
			 c->box);
	else
		snprintf(why, sizeof(why),
			 "microsandbox: the agent socket of sandbox \"%s\" closed%s%s",
			 c->box, rc == -ECONNRESET ? "" : ": ",
			 rc == -ECONNRESET ? "" : strerror(-rc));
	sbx_trace(SBX_TRACE_PROVIDER, "%s", why);

	/* Tell every open session, one at a time and without the lock. */
	pthread_mutex_lock(&c->lock);
	c->dead = 1;
	for (;;) {
		struct msb_sess *s = c->sessions;

		if (!s)
			break;
		unlink_sess(c, s);
		s->busy = 1;
		pthread_mutex_unlock(&c->lock);
		s->fn(s->ctx, NULL, -ECONNRESET, why);
		pthread_mutex_lock(&c->lock);
		if (back_from_fn(c, s)) {
			pthread_mutex_unlock(&c->lock);
			conn_put(c); /* the session's */
			pthread_mutex_lock(&c->lock);
			continue;
		}
		end_sess(c, s, -ECONNRESET, why);
	}
	pthread_mutex_unlock(&c->lock);

	pthread_mutex_lock(&m->lock);
	in_table = conn_unlink_locked(m, c);
	pthread_mutex_unlock(&m->lock);
	if (in_table)
		conn_put(c);
	conn_put(c); /* the reader's own */
	pthread_mutex_lock(&m->lock);
	if (--m->readers == 0)
		pthread_cond_broadcast(&m->readers_done);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ---- the socket table ---- */

static void conn_put(struct msb_conn *c)
{
	struct msb *m = c->m;
	int last;

	pthread_mutex_lock(&m->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&m->lock);
	if (!last)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* Connect and shake hands with box's agent: a new socket, its reader
 * started, with the caller's reference.  NULL with -errno in *err. */
static struct msb_conn *conn_new(struct msb *m, const char *box, int *err)
{
	struct msb_conn *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	int rc;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->m = m;
	snprintf(c->box, sizeof(c->box), "%s", box);
	c->fd = m->cloud ? msb_cloud_agent(m, box) : connect_agent(m, box);
	if (c->fd < 0) {
		rc = c->fd;
		if (m->cloud) {
			/* msb_cloud_agent() said why. */
		} else if (rc == -ENOENT || rc == -ECONNREFUSED) {
			sbx_failf("microsandbox: sandbox \"%s\" has no agent listening: "
				  "it is not running",
				  box);
			rc = -EAGAIN;
		} else {
			sbx_failf(
				"microsandbox: cannot reach the agent of sandbox \"%s\": "
				"%s",
				box, strerror(-rc));
		}
		free(c);
		*err = rc;
		return NULL;
	}
	rc = handshake(c);
	if (rc) {
		close(c->fd);
		free(c);
		*err = rc;
		return NULL;
	}
	pthread_mutex_init(&c->wlock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->refs = 2; /* the caller's and the reader's */
	pthread_mutex_lock(&m->lock);
	m->readers++;
	pthread_mutex_unlock(&m->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&c->reader, &attr, reader_main, c);
	pthread_attr_destroy(&attr);
	if (rc) {
		pthread_mutex_lock(&m->lock);
		m->readers--;
		pthread_mutex_unlock(&m->lock);
		c->refs = 1;
		conn_put(c);
		sbx_failf("microsandbox: cannot start a thread: %s", strerror(rc));
		*err = -rc;
		return NULL;
	}
	sbx_trace(SBX_TRACE_PROVIDER,
		  "microsandbox: %s: agent socket open, ids %u-%u, generation %u", box,
		  c->id_lo, c->id_hi, c->gen);
	return c;
}

/* The live socket of box, referenced; a new one if there is none. */
static struct msb_conn *conn_get(struct msb *m, const char *box, int *err)
{
	struct msb_conn *c, *mine;

	for (int pass = 0; pass < 2; pass++) {
		pthread_mutex_lock(&m->lock);
		for (c = m->conns; c; c = c->next) {
			if (strcmp(c->box, box))
				continue;
			pthread_mutex_lock(&c->lock);
			if (!c->dead) {
				pthread_mutex_unlock(&c->lock);
				c->refs++;
				pthread_mutex_unlock(&m->lock);
				return c;
			}
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_unlock(&m->lock);
		if (pass)
			break;
		if (cmdpoll_stopping(&m->r.cmds)) {
			sbx_failf("microsandbox: sbxfs is unmounting");
			*err = -ESHUTDOWN;
			return NULL;
		}
		/* Connect without the lock; keep another thread's socket if
		 * it won the race. */
		mine = conn_new(m, box, err);
		if (!mine)
			return NULL;
		pthread_mutex_lock(&m->lock);
		for (c = m->conns; c; c = c->next)
			if (!strcmp(c->box, box))
				break;
		if (!c) {
			mine->next = m->conns;
			m->conns = mine;
			mine->refs++; /* the table's */
			pthread_mutex_unlock(&m->lock);
			return mine;
		}
		pthread_mutex_unlock(&m->lock);
		shutdown(mine->fd, SHUT_RDWR); /* its reader ends and drops it */
		conn_put(mine);
	}
	sbx_failf("microsandbox: the agent socket of sandbox \"%s\" keeps closing", box);
	*err = -ECONNRESET;
	return NULL;
}

void msb_agent_close(struct msb *m, const char *box)
{
	for (;;) {
		struct msb_conn *c;

		pthread_mutex_lock(&m->lock);
		for (c = m->conns; c; c = c->next)
			if (!box || !strcmp(c->box, box))
				break;
		if (c)
			conn_unlink_locked(m, c);
		pthread_mutex_unlock(&m->lock);
		if (!c)
			break;
		shutdown(c->fd, SHUT_RDWR);
		conn_put(c);
	}
	if (box)
		return;
	pthread_mutex_lock(&m->lock);
	while (m->readers)
		pthread_cond_wait(&m->readers_done, &m->lock);
	pthread_mutex_unlock(&m->lock);
}

/* ---- the session calls ---- */

static int send_frame(struct msb_sess *s, unsigned flags, const char *type,
		      const struct strbuf *payload)
{
	struct msb_conn *c = s->c;
	struct strbuf frame = STRBUF_INIT(MSB_FRAME_MAX + MSB_FRAME_HEAD);
	int rc = msb_frame_build(&frame, s->id, flags, c->gen, type,
				 payload ? payload->buf : NULL,
				 payload ? payload->len : 0);

	if (rc) {
		sbx_failf("microsandbox: %s: a message of %zu bytes is too large", type,
			  payload ? payload->len : 0);
	} else {
		pthread_mutex_lock(&c->wlock);
		rc = write_full(c->fd, frame.buf, frame.len, c->m->r.timeout_ms);
		pthread_mutex_unlock(&c->wlock);
		if (rc == -ETIMEDOUT)
			sbx_failf("microsandbox: the agent of sandbox \"%s\" took no "
				  "message for %d s",
				  c->box, c->m->r.timeout_ms / 1000);
		else if (rc)
			sbx_failf("microsandbox: the agent socket of sandbox \"%s\" "
				  "broke: %s",
				  c->box, strerror(-rc));
		if (rc && rc != -ETIMEDOUT)
			rc = -ECONNRESET;
	}
	strbuf_release(&frame);
	return rc;
}

int msb_sess_open(struct msb *m, struct msb_sess **out, const char *box, const char *type,
		  const struct strbuf *payload, msb_frame_fn fn, void *ctx)
{
	struct msb_sess *s = calloc(1, sizeof(*s));
	struct msb_conn *c;
	int rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	c = conn_get(m, box, &rc);
	if (!c) {
		free(s);
		return rc;
	}
	s->c = c;
	s->fn = fn;
	s->ctx = ctx;
	s->last_ms = now_ms();
	pthread_mutex_lock(&c->lock);
	s->id = c->dead ? 0 : take_id(c);
	if (s->id) {
		s->linked = 1;
		s->next = c->sessions;
		c->sessions = s;
	}
	pthread_mutex_unlock(&c->lock);
	if (!s->id) {
		sbx_failf("microsandbox: the agent socket of sandbox \"%s\" %s", box,
			  c->dead ? "closed" : "has no free session id");
		rc = c->dead ? -ECONNRESET : -EAGAIN;
	} else {
		rc = send_frame(s, MSB_FLAG_START, type, payload);
	}
	if (rc) {
		msb_sess_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int msb_sess_send(struct msb_sess *s, const char *type, const struct strbuf *payload)
{
	int dead;

	pthread_mutex_lock(&s->c->lock);
	dead = s->c->dead;
	pthread_mutex_unlock(&s->c->lock);
	if (dead) {
		sbx_failf("microsandbox: the agent socket of sandbox \"%s\" closed",
			  s->c->box);
		return -ECONNRESET;
	}
	return send_frame(s, 0, type, payload);
}

int msb_sess_wait(struct msb_sess *s, int idle_ms)
{
	struct msb_conn *c = s->c;
	int rc;

	pthread_mutex_lock(&c->lock);
	while (!s->done) {
		long now = now_ms(), until = now + 200;
		struct timespec ts;

		if (idle_ms > 0 && now - s->last_ms >= idle_ms && !s->busy) {
			end_sess(c, s, -ETIMEDOUT, NULL);
			snprintf(s->why, sizeof(s->why),
				 "microsandbox: no answer from the agent of sandbox "
				 "\"%s\" within %d s",
				 c->box, (idle_ms + 999) / 1000);
			break;
		}
		if (sbx_interrupted() && !s->busy) {
			end_sess(c, s, -EINTR, NULL);
			snprintf(s->why, sizeof(s->why),
				 "microsandbox: interrupted while waiting for sandbox "
				 "\"%s\"",
				 c->box);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (until - now) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	rc = s->err;
	if (rc)
		sbx_failf("%s", s->why[0] ? s->why : "microsandbox: the session failed");
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void msb_sess_close(struct msb_sess *s)
{
	struct msb_conn *c;

	if (!s)
		return;
	c = s->c;
	pthread_mutex_lock(&c->lock);
	if (s->linked)
		unlink_sess(c, s);
	if (s->busy && pthread_equal(pthread_self(), c->reader)) {
		/* From inside its own fn: the reader frees it on return. */
		s->closed = 1;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	while (s->busy)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	conn_put(c);
	free(s);
}
