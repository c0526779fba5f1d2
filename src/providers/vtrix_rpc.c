/* SPDX-License-Identifier: MIT */
/*
 * Vtrix: one JSON-RPC 2.0 WebSocket per sandbox, shared by every call.
 *
 * Vtrix does files and commands over a single socket per sandbox
 * (…/{id}/connect), with integer ids, several calls in flight at once, and
 * notifications tied to their call by params.id.  ws.c lets only one
 * thread drive a connection, so each socket has one I/O thread that owns
 * its ws_conn:
 *
 *   caller threads                         I/O thread (one per socket)
 *   --------------                         ---------------------------
 *   vx_call: take an id, queue the         connect; then loop:
 *   message, ws_wake() the thread,           send what is queued;
 *   wait on the condvar (bounded)            ws_recv() (ws_wake ends it);
 *                                            answer -> its call, done;
 *                                            notification -> the call's
 *                                            note() (exec output, read
 *                                            chunks), in arrival order
 *
 * Calls in flight are a list under the socket's lock; the I/O thread never
 * holds that lock across ws_send_text/ws_recv or a note() (a call being
 * fed is marked busy, so its caller cannot vanish meanwhile).  A caller
 * that gives up (timeout) unlinks its call; a late answer is then dropped.
 *
 * When the socket closes or fails, the thread fails every call in flight
 * with -ECONNRESET and the reason, marks the socket dead and ends; the
 * next call for the sandbox opens a new socket (reconnect on demand).
 * Sockets are reference counted: the table holds one, each call one from
 * vx_submit() to vx_wait(); the last reference joins the thread and frees.
 * Waits look at the caller's interrupt flag (Ctrl-C) at least every 200 ms.
 */
#include "vtrix.h"
#include "sbxfs/ws.h"

#define RPC_TEXT_MAX 240
#define SEND_TIMEOUT_MIN_MS 30000

struct vcall {
	struct vcall *next;
	long long id;
	char method[32];
	char *msg; /* to send; NULL once handed to the socket */
	size_t len;
	vx_note_fn note;
	void *ctx;
	int busy;     /* the I/O thread is inside note() */
	int done;     /* answered or failed: err and result are final */
	int err;      /* 0 or -errno */
	int note_err; /* a note() failed: the call fails with it */
	cJSON *result;
	char text[RPC_TEXT_MAX + 80];
	long last_ms; /* when the call was last heard from */
};

struct vx_rpc {
	struct vx_rpc *next; /* in vx->rpcs, under vx->lock */
	struct vx *vx;
	char box[SBX_NAME_MAX + 1];
	char id[128];
	int refs; /* under vx->lock */

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* a call progressed, or the socket died */
	struct ws_conn *conn; /* while open; owned by the thread */
	pthread_t thread;
	int dead; /* the thread ended (or is ending): take no calls */
	int stop; /* asked to close */
	long long next_id;
	struct vcall *calls; /* in flight */
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Printable, bounded copy of server text for messages. */
static void clean_text(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; s && *s && o + 1 < size && o < RPC_TEXT_MAX; s++)
		out[o++] = ((unsigned char)*s >= 0x20 && *s != 0x7f) ? *s : '?';
	out[o] = '\0';
}

/* A JSON number that can be one of our ids (1 .. 2^53); 0 if not. */
static long long id_of(const cJSON *v)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
	    v->valuedouble > 9007199254740992.0)
		return 0;
	return (long long)v->valuedouble;
}

/* ---- the call list (rpc->lock held) ---- */

static struct vcall *find_call(struct vx_rpc *r, long long id)
{
	struct vcall *c;

	for (c = r->calls; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void unlink_call(struct vx_rpc *r, struct vcall *c)
{
	struct vcall **pp;

	for (pp = &r->calls; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
}

static void finish_call(struct vx_rpc *r, struct vcall *c, int err, const char *text)
{
	unlink_call(r, c);
	c->done = 1;
	c->err = err;
	if (text)
		snprintf(c->text, sizeof(c->text), "%s", text);
	free(c->msg);
	c->msg = NULL;
	pthread_cond_broadcast(&r->cond);
}

static void fail_all(struct vx_rpc *r, int err, const char *text)
{
	while (r->calls)
		finish_call(r, r->calls, err, text);
}

/* ---- the I/O thread ---- */

static void on_answer(struct vx_rpc *r, cJSON *j, long long id)
{
	cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	struct vcall *c;
	char text[sizeof(c->text)], msg[RPC_TEXT_MAX];

	pthread_mutex_lock(&r->lock);
	c = find_call(r, id); /* never busy: only this thread feeds calls */
	if (!c) {
		pthread_mutex_unlock(&r->lock);
		sbx_trace(SBX_TRACE_WS, "vtrix: %s: answer to call %lld, which is gone",
			  r->box, id);
		return;
	}
	if (cJSON_IsObject(e)) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
		long n = cJSON_IsNumber(code) && code->valuedouble > -1e9 &&
					 code->valuedouble < 1e9
				 ? (long)code->valuedouble
				 : -32603;

		clean_text(msg, sizeof(msg), json_str(e, "message"));
		snprintf(text, sizeof(text), "vtrix: %s: %s (JSON-RPC error %ld)",
			 c->method, msg[0] ? msg : "no message", n);
		finish_call(r, c, -vx_errno(VX_RPC, n), text);
	} else if (c->note_err) {
		finish_call(r, c, c->note_err, NULL);
	} else {
		c->result = cJSON_DetachItemFromObjectCaseSensitive(j, "result");
		if (!c->result)
			c->result = cJSON_CreateNull();
		finish_call(r, c, 0, NULL);
	}
	pthread_mutex_unlock(&r->lock);
}

static void on_note(struct vx_rpc *r, const char *method, const cJSON *params)
{
	const cJSON *idv = cJSON_GetObjectItemCaseSensitive(params, "id");
	struct vcall *c;
	long long id;
	int rc;

	id = id_of(idv);
	if (!id)
		return; /* as the SDKs do: only numeric ids route */
	pthread_mutex_lock(&r->lock);
	c = find_call(r, id);
	if (!c || !c->note || c->note_err) {
		if (c)
			c->last_ms = now_ms();
		pthread_mutex_unlock(&r->lock);
		return;
	}
	c->busy = 1;
	c->last_ms = now_ms();
	pthread_mutex_unlock(&r->lock);
	rc = c->note(c->ctx, method, params);
	pthread_mutex_lock(&r->lock);
	c->busy = 0;
	if (rc < 0) {
		c->note_err = rc;
		snprintf(c->text, sizeof(c->text), "%s", sbx_fail_text());
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* One message from the server: a notification or an answer. */
static void dispatch(struct vx_rpc *r, const struct strbuf *msg)
{
	cJSON *j = cJSON_ParseWithLength(msg->buf ? msg->buf : "", msg->len);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
	const char *method = json_str(j, "method");

	if (!cJSON_IsObject(j)) {
		sbx_trace(SBX_TRACE_WS,
			  "vtrix: %s: ignored a message that is not "
			  "a JSON object",
			  r->box);
	} else if (method && method[0]) {
		const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "params");

		if (cJSON_IsObject(params))
			on_note(r, method, params);
	} else if (id_of(id)) {
		on_answer(r, j, id_of(id));
	}
	cJSON_Delete(j);
}

/* The first queued message, handed over to the caller; NULL if none. */
static char *take_queued(struct vx_rpc *r, size_t *len, long long *id)
{
	struct vcall *c, *first = NULL;
	char *m;

	for (c = r->calls; c; c = c->next)
		if (c->msg && (!first || c->id < first->id))
			first = c;
	if (!first)
		return NULL;
	m = first->msg;
	*len = first->len;
	*id = first->id;
	first->msg = NULL;
	first->last_ms = now_ms();
	return m;
}

static int connect_socket(struct vx_rpc *r, struct ws_conn **conn)
{
	struct vx *vx = r->vx;
	struct strbuf url = STRBUF_INIT(8192);
	struct ws_config cfg = { 0 };
	int rc;

	if (strbuf_addf(&url, "%s%s/", vx->url, vx->prefix) || http_escape(&url, r->id) ||
	    strbuf_addf(&url, "/connect")) {
		strbuf_release(&url);
		return -ENOMEM;
	}
	cfg.url = url.buf;
	cfg.headers = (const char *const *)vx->ws_headers;
	cfg.nheaders = vx->nws_headers;
	cfg.connect_timeout_ms = vx->r.timeout_ms < 10000 ? vx->r.timeout_ms : 10000;
	cfg.max_message = VX_WS_MESSAGE_MAX;
	rc = ws_connect(conn, &cfg);
	strbuf_release(&url);
	return rc;
}

static void *io_main(void *arg)
{
	struct vx_rpc *r = arg;
	struct strbuf msg = STRBUF_INIT(VX_WS_MESSAGE_MAX);
	struct ws_conn *conn = NULL;
	char why[RPC_TEXT_MAX + 80];
	int rc, close_code = 0;
	int send_ms = r->vx->r.timeout_ms > SEND_TIMEOUT_MIN_MS ? r->vx->r.timeout_ms
								: SEND_TIMEOUT_MIN_MS;

	rc = connect_socket(r, &conn);
	if (rc) {
		snprintf(why, sizeof(why),
			 "vtrix: cannot open the socket of sandbox "
			 "\"%s\": %s",
			 r->box, sbx_fail_text());
		pthread_mutex_lock(&r->lock);
		r->dead = 1;
		fail_all(r, rc, why);
		pthread_mutex_unlock(&r->lock);
		return NULL;
	}
	sbx_trace(SBX_TRACE_WS, "vtrix: %s: socket open", r->box);
	pthread_mutex_lock(&r->lock);
	r->conn = conn;
	pthread_mutex_unlock(&r->lock);
	snprintf(why, sizeof(why), "vtrix: the socket of sandbox \"%s\" was closed",
		 r->box);
	for (;;) {
		char *out;
		size_t len = 0;
		long long id = 0;

		pthread_mutex_lock(&r->lock);
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		out = take_queued(r, &len, &id);
		pthread_mutex_unlock(&r->lock);
		if (out) {
			rc = ws_send_text(conn, out, len, send_ms);
			free(out);
			if (rc == -EPIPE) {
				snprintf(why, sizeof(why),
					 "vtrix: the socket of sandbox \"%s\" broke "
					 "while sending",
					 r->box);
				break;
			}
			if (rc) {
				struct vcall *c;

				pthread_mutex_lock(&r->lock);
				if ((c = find_call(r, id)) && !c->busy)
					finish_call(r, c, rc,
						    "vtrix: the call could not be sent "
						    "in time");
				pthread_mutex_unlock(&r->lock);
			}
			continue;
		}
		rc = ws_recv(conn, &msg, NULL, &close_code, 1000);
		if (rc == 1) {
			dispatch(r, &msg);
		} else if (rc == 0) {
			snprintf(why, sizeof(why),
				 "vtrix: the socket of sandbox \"%s\" closed (code %d)",
				 r->box, close_code);
			break;
		} else if (rc != -EAGAIN && rc != -ETIMEDOUT) {
			snprintf(why, sizeof(why),
				 "vtrix: the socket of sandbox \"%s\" "
				 "failed: %s",
				 r->box, sbx_fail_text());
			break;
		}
	}
	sbx_trace(SBX_TRACE_WS, "vtrix: %s: socket ends", r->box);
	pthread_mutex_lock(&r->lock);
	r->dead = 1;
	r->conn = NULL;
	fail_all(r, -ECONNRESET, why);
	pthread_mutex_unlock(&r->lock);
	ws_close(conn);
	strbuf_release(&msg);
	return NULL;
}

/* ---- the socket table ---- */

static void rpc_free(struct vx_rpc *r)
{
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

/* Drop a reference (vx->lock not held). */
static void rpc_put(struct vx *vx, struct vx_rpc *r)
{
	int last;

	pthread_mutex_lock(&vx->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&vx->lock);
	if (last)
		rpc_free(r);
}

/* Ask the socket to close (the thread sees `stop`). */
static void rpc_stop(struct vx_rpc *r)
{
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	if (r->conn)
		ws_wake(r->conn);
	pthread_mutex_unlock(&r->lock);
}

/* Unlink r from the table (vx->lock held); the caller drops the table's
 * reference. */
static void rpc_unlink(struct vx *vx, struct vx_rpc *r)
{
	struct vx_rpc **pp;

	for (pp = &vx->rpcs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			return;
		}
	}
}

/* The live socket of box (id), referenced; a new one if there is none or
 * the old one died.  NULL with -errno in *err. */
static struct vx_rpc *rpc_get(struct vx *vx, const char *box, const char *id, int *err)
{
	struct vx_rpc *r, *stale = NULL;
	int rc;

	pthread_mutex_lock(&vx->lock);
	if (cmdpoll_stopping(&vx->r.cmds)) {
		pthread_mutex_unlock(&vx->lock);
		sbx_failf("vtrix: sbxfs is unmounting");
		*err = -ESHUTDOWN;
		return NULL;
	}
	for (r = vx->rpcs; r; r = r->next)
		if (!strcmp(r->box, box))
			break;
	if (r) {
		int dead;

		pthread_mutex_lock(&r->lock);
		dead = r->dead || r->stop;
		pthread_mutex_unlock(&r->lock);
		if (!dead && !strcmp(r->id, id)) {
			r->refs++;
			pthread_mutex_unlock(&vx->lock);
			return r;
		}
		rpc_unlink(vx, r);
		stale = r;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		pthread_mutex_unlock(&vx->lock);
		*err = -ENOMEM;
		goto out;
	}
	r->vx = vx;
	snprintf(r->box, sizeof(r->box), "%s", box);
	snprintf(r->id, sizeof(r->id), "%s", id);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->refs = 2; /* the table's and the caller's */
	rc = pthread_create(&r->thread, NULL, io_main, r);
	if (rc) {
		pthread_mutex_unlock(&vx->lock);
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		free(r);
		sbx_failf("vtrix: cannot start a thread: %s", strerror(rc));
		*err = -rc;
		r = NULL;
		goto out;
	}
	r->next = vx->rpcs;
	vx->rpcs = r;
	pthread_mutex_unlock(&vx->lock);
out:
	if (stale) {
		rpc_stop(stale);
		rpc_put(vx, stale);
	}
	return r;
}

void vx_rpc_close(struct vx *vx, const char *box)
{
	for (;;) {
		struct vx_rpc *r;

		pthread_mutex_lock(&vx->lock);
		for (r = vx->rpcs; r; r = r->next)
			if (!box || !strcmp(r->box, box))
				break;
		if (r)
			rpc_unlink(vx, r);
		pthread_mutex_unlock(&vx->lock);
		if (!r)
			return;
		rpc_stop(r);
		rpc_put(vx, r);
	}
}

/* ---- calls ---- */

/* Wait for c (r->lock held); gives up after idle_ms without news. */
static void wait_call(struct vx_rpc *r, struct vcall *c, int idle_ms)
{
	while (!c->done) {
		long now = now_ms(), until = now + 1000;
		struct timespec ts;

		if (idle_ms > 0) {
			if (now - c->last_ms >= idle_ms) {
				while (c->busy)
					pthread_cond_wait(&r->cond, &r->lock);
				if (c->done)
					break;
				finish_call(r, c, -ETIMEDOUT, NULL);
				snprintf(c->text, sizeof(c->text),
					 "vtrix: %s: no answer from sandbox \"%s\" "
					 "within %d s",
					 c->method, r->box, (idle_ms + 999) / 1000);
				break;
			}
			if (c->last_ms + idle_ms < until)
				until = c->last_ms + idle_ms;
		}
		/* Ctrl-C of the process waiting in the kernel (the flag is
		 * this thread's FUSE request's). */
		if (sbx_interrupted()) {
			while (c->busy)
				pthread_cond_wait(&r->cond, &r->lock);
			if (c->done)
				break;
			finish_call(r, c, -EINTR, NULL);
			snprintf(
				c->text, sizeof(c->text),
				"vtrix: %s: interrupted while waiting for sandbox \"%s\"",
				c->method, r->box);
			break;
		}
		if (until > now + 200)
			until = now + 200; /* look at the interrupt flag often */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (until - now) / 1000;
		ts.tv_nsec += ((until - now) % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
}

/* A call queued on a socket, not yet waited for. */
struct vx_pending {
	struct vx_rpc *r; /* referenced */
	struct vcall *c;
	int idle_ms;
	int err; /* set when it could not be queued */
};

int vx_msg_begin(struct strbuf *msg, const char *method)
{
	return strbuf_addf(msg,
			   "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":", method);
}

int vx_submit_msg(struct vx *vx, struct vx_pending **out, const char *box,
		  const char *method, struct strbuf *msg, const struct vx_call_opts *o)
{
	static const struct vx_call_opts none = { 0 };
	struct vx_pending *pd = calloc(1, sizeof(*pd));
	struct vcall *c = calloc(1, sizeof(*c));
	struct vx_rpc *r = NULL;
	char id[128];
	int rc;

	*out = NULL;
	if (!o)
		o = &none;
	rc = (!pd || !c) ? -ENOMEM : vx_id_of(vx, id, sizeof(id), box);
	if (!rc)
		r = rpc_get(vx, box, id, &rc);
	if (!r)
		goto fail;
	pd->idle_ms = o->idle_ms == 0 ? vx->r.timeout_ms : o->idle_ms;
	snprintf(c->method, sizeof(c->method), "%s", method);
	c->note = o->note;
	c->ctx = o->ctx;
	pthread_mutex_lock(&r->lock);
	c->id = ++r->next_id;
	pthread_mutex_unlock(&r->lock);
	/* The id goes last, so the caller could build the rest. */
	if (strbuf_addf(msg, ",\"id\":%lld}", c->id)) {
		rpc_put(vx, r);
		rc = -ENOMEM;
		goto fail;
	}
	c->msg = strbuf_detach(msg, &c->len);
	c->last_ms = now_ms();
	pd->r = r;
	pd->c = c;
	pthread_mutex_lock(&r->lock);
	if (r->dead || r->stop) {
		/* Died since rpc_get: fail it, as a dropped socket would. */
		c->done = 1;
		c->err = -ECONNRESET;
		snprintf(c->text, sizeof(c->text),
			 "vtrix: the socket of sandbox \"%s\" is closing", box);
		free(c->msg);
		c->msg = NULL;
	} else {
		c->next = r->calls;
		r->calls = c;
		if (r->conn)
			ws_wake(r->conn);
	}
	pthread_mutex_unlock(&r->lock);
	*out = pd;
	return 0;
fail:
	strbuf_release(msg);
	free(pd);
	free(c);
	return rc;
}

int vx_submit(struct vx *vx, struct vx_pending **out, const char *box, const char *method,
	      const char *params_json, size_t len, const struct vx_call_opts *o)
{
	struct strbuf m = STRBUF_INIT((size_t)-1);

	if (vx_msg_begin(&m, method) || strbuf_add(&m, params_json, len)) {
		strbuf_release(&m);
		*out = NULL;
		return -ENOMEM;
	}
	return vx_submit_msg(vx, out, box, method, &m, o);
}

int vx_wait(struct vx_pending *pd, cJSON **result)
{
	struct vx_rpc *r = pd->r;
	struct vcall *c = pd->c;
	int rc;

	if (result)
		*result = NULL;
	pthread_mutex_lock(&r->lock);
	wait_call(r, c, pd->idle_ms);
	rc = c->err;
	pthread_mutex_unlock(&r->lock);
	sbx_trace(SBX_TRACE_WS, "vtrix: %s: %s #%lld: %d", r->box, c->method, c->id, rc);
	if (rc) {
		cJSON_Delete(c->result);
		sbx_failf("%s", c->text[0] ? c->text : "vtrix: call failed");
	} else if (result) {
		*result = c->result;
	} else {
		cJSON_Delete(c->result);
	}
	rpc_put(r->vx, r);
	free(c);
	free(pd);
	return rc;
}

int vx_call(struct vx *vx, cJSON **result, const char *box, const char *method,
	    const char *params_json, size_t len, const struct vx_call_opts *o)
{
	struct vx_pending *pd;
	int rc = vx_submit(vx, &pd, box, method, params_json, len, o);

	if (result)
		*result = NULL;
	return rc ? rc : vx_wait(pd, result);
}

int vx_call_json(struct vx *vx, cJSON **result, const char *box, const char *method,
		 const cJSON *params, const struct vx_call_opts *o)
{
	char *p = cJSON_PrintUnformatted(params);
	int rc;

	if (!p)
		return -ENOMEM;
	rc = vx_call(vx, result, box, method, p, strlen(p), o);
	free(p);
	return rc;
}
