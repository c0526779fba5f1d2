/* SPDX-License-Identifier: MIT */
/* Daytona: commands, each in a session of its own.  See daytona.c. */
#include "daytona.h"
#include "sbxfs/remote/endmark.h"
#include "sbxfs/ws.h"

/* ---- commands ---- */

static const char *const split_header[] = { "X-Daytona-Split-Output: true", NULL };

/*
 * One running command: a session of its own holding one asynchronous
 * command, and a thread that follows its log until it ends.  The command
 * runs under a wrapper that ends both streams with an end mark (endmark.h):
 * the log stream then tells the end and the exit status, and neither the
 * server's close of the stream nor a status call is waited for.  The
 * session is kept for the sandbox's next command (dt->idle), so a command
 * costs its exec call and one read of its log, or, still running then,
 * its log stream.
 */
struct dcmd {
	struct dt *dt;
	char box[SBX_NAME_MAX + 1];
	char *toolbox;
	char sid[96];
	char cid[128];
	char marker[96];	/* SBXFS_CMD value in the command's environment */
	struct endmark_cmd end; /* the output, without the end mark */
	struct sbx_cmd_sink *sink;
	int signalled; /* the last signal we sent, 0 if none */

	/* The log, demultiplexed: raw bytes taken so far (over HTTP or the
	 * WebSocket: both carry the log file's bytes), the stream the last
	 * marker chose, and up to 2 bytes that may start a marker. */
	size_t log_off;
	enum sbx_stream stream;
	unsigned char held[2];
	size_t nheld;
	int streamed; /* the log WebSocket carried it all */
};

/* GET {toolbox}/process/session/{sid}{suffix}. */
static int session_get(struct dcmd *c, struct http_resp *r, const char *suffix,
		       const char *const *headers, size_t max)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct http_req req = HTTP_REQ_INIT;
	int rc;

	if (strbuf_addf(&url, "%s/process/session/%s%s", c->toolbox, c->sid, suffix))
		return -ENOMEM;
	req.method = "GET";
	req.url = url.buf;
	req.headers = headers;
	req.idempotent = 1;
	req.max_body = max;
	rc = http_do(c->dt->http, &req, r);
	strbuf_release(&url);
	return rc;
}

static int is_marker(const unsigned char *p)
{
	return (p[0] == 1 && p[1] == 1 && p[2] == 1) ||
	       (p[0] == 2 && p[1] == 2 && p[2] == 2);
}

/* Pass the log's next raw bytes to the sink, split at the 3-byte stream
 * markers.  Bytes that may start a marker wait for the next call, unless
 * `final`. */
static void feed(struct dcmd *c, const unsigned char *data, size_t len, int final)
{
	unsigned char *log = malloc(c->nheld + len + 1);
	size_t n = c->nheld + len, i = 0, seg = 0;

	if (!log)
		return;
	memcpy(log, c->held, c->nheld);
	if (len)
		memcpy(log + c->nheld, data, len);
	c->log_off += len;
	while (i < n) {
		if (n - i < 3 && !final && (log[i] == 1 || log[i] == 2))
			break; /* maybe the start of a marker */
		if (n - i >= 3 && is_marker(log + i)) {
			if (i > seg)
				endmark_cmd_output(&c->end, c->stream,
						   (const char *)log + seg, i - seg);
			c->stream = log[i] == 1 ? SBX_STREAM_STDOUT : SBX_STREAM_STDERR;
			i += 3;
			seg = i;
			continue;
		}
		i++;
	}
	if (i > seg)
		endmark_cmd_output(&c->end, c->stream, (const char *)log + seg, i - seg);
	if (final)
		endmark_cmd_flush(&c->end);
	c->nheld = n - i;
	memcpy(c->held, log + i, c->nheld);
	free(log);
}

/* Read the log again and pass on what is new.  The log is the whole
 * output so far (the API has no offsets). */
static int follow_log(struct dcmd *c, int final)
{
	struct http_resp r;
	char suffix[200];
	int rc;

	snprintf(suffix, sizeof(suffix), "/command/%s/logs", c->cid);
	rc = session_get(c, &r, suffix, split_header, LOG_MAX);
	if (rc)
		return rc;
	if (r.status != 200) {
		rc = dt_fail_resp("command output", &r, NULL);
	} else if (r.body.len < c->log_off) {
		sbx_failf("daytona: command output shrank from %zu to %zu bytes",
			  c->log_off, r.body.len);
		rc = -EPROTO;
	} else {
		feed(c, (const unsigned char *)r.body.buf + c->log_off,
		     r.body.len - c->log_off, final);
	}
	http_resp_release(&r);
	return rc;
}

/* The command's exit code: 1 and *code when it has ended, 0 while it
 * runs, or -errno. */
static int command_status(struct dcmd *c, int *code)
{
	struct http_resp r;
	char suffix[160];
	double d;
	cJSON *j;
	int rc;

	snprintf(suffix, sizeof(suffix), "/command/%s", c->cid);
	rc = session_get(c, &r, suffix, NULL, 0);
	if (rc)
		return rc;
	if (r.status != 200) {
		rc = dt_fail_resp("command status", &r, NULL);
	} else if (!(j = dt_parse_json(&r, "command status"))) {
		rc = -EPROTO;
	} else {
		rc = json_num(j, "exitCode", &d) ? 1 : 0;
		if (rc)
			*code = (int)d;
		cJSON_Delete(j);
	}
	http_resp_release(&r);
	return rc;
}

static void session_delete(struct dcmd *c)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;

	if (strbuf_addf(&url, "%s/process/session/%s", c->toolbox, c->sid))
		return;
	if (!dt_request(c->dt, &r, "DELETE", url.buf, NULL, REQ_IDEMPOTENT, 0))
		http_resp_release(&r);
	strbuf_release(&url);
}

/* Is the command's sandbox still started?  (Stopping it ends every
 * command, and its toolbox stops answering.) */
static int sandbox_running(struct dcmd *c)
{
	char state[64];

	return !dt_state_of(c->dt, c->box, state, sizeof(state)) &&
	       dt_map_state(state) == SBX_STATE_RUNNING;
}

/*
 * Follow the log over Daytona's log WebSocket while the command runs: the
 * server sends the log's bytes as they come and closes with 1000 once the
 * command has ended and all was sent.  Returns 0 then, or -errno when the
 * caller should poll the log over HTTP instead (no WebSocket route, a
 * dropped connection, a server gone quiet).
 */
static int follow_ws(struct dcmd *c)
{
	struct ws_config cfg = { 0 };
	struct strbuf url = STRBUF_INIT(4096), msg = STRBUF_INIT(1u << 20);
	struct ws_conn *ws;
	size_t seen = 0;
	int rc, close_code = 0, quiet = 0;

	if (strbuf_addf(&url, "%s/process/session/%s/command/%s/logs?follow=true",
			c->toolbox, c->sid, c->cid))
		return -ENOMEM;
	cfg.url = url.buf;
	cfg.headers = (const char *const *)c->dt->ws_headers;
	cfg.nheaders = c->dt->nws_headers;
	cfg.connect_timeout_ms = 10000;
	rc = ws_connect(&ws, &cfg);
	strbuf_release(&url);
	if (rc) {
		sbx_trace(SBX_TRACE_WS, "daytona: command log stream: %s; polling",
			  sbx_fail_text());
		return rc;
	}
	for (;;) {
		int code;

		if (cmdpoll_stopping(&c->dt->r.cmds)) {
			rc = -ECANCELED;
			break;
		}
		rc = ws_recv(ws, &msg, NULL, &close_code, 1000);
		if (rc == -ETIMEDOUT) {
			/* Silence is fine while the command runs; check now and
			 * then that the server is still there. */
			if (++quiet % 5)
				continue;
			rc = command_status(c, &code);
			if (rc < 0)
				break;
			if (rc == 1) {
				/* Ended, yet the stream stays open (a background
				 * process holds the output): take the rest over
				 * HTTP. */
				rc = -EAGAIN;
				break;
			}
			continue;
		}
		if (rc < 0)
			break;
		if (rc == 0) {
			rc = close_code == 1000 ? 0 : -EPIPE;
			break;
		}
		quiet = 0;
		/* After a fallback and a new stream, skip what we have. */
		if (seen + msg.len > c->log_off) {
			size_t skip = c->log_off > seen ? c->log_off - seen : 0;

			feed(c, (const unsigned char *)msg.buf + skip, msg.len - skip, 0);
		}
		seen += msg.len;
		if (endmark_cmd_ended(&c->end, NULL)) {
			feed(c, NULL, 0, 1); /* what was held back */
			rc = 0;
			break;
		}
	}
	strbuf_release(&msg);
	ws_close(ws);
	sbx_trace(SBX_TRACE_WS, "daytona: command log stream ended (%d, close %d)", rc,
		  close_code);
	return rc;
}

/* Status first: output logged before the end is then in the read that
 * follows. */
static int poll_step(void *cmd, int *code, int *progressed)
{
	struct dcmd *c = cmd;
	size_t before = c->log_off;
	int rc = command_status(c, code);

	if (rc >= 0) {
		int ended = rc;

		rc = 0;
		if (!c->streamed)
			rc = follow_log(c, ended);
		else if (ended)
			feed(c, NULL, 0, 1); /* what was held back */
		if (!rc && ended)
			rc = 1;
		if (!rc && endmark_cmd_ended(&c->end, code))
			rc = 1;
	}
	*progressed = c->log_off != before;
	return rc;
}

static int poll_failed(void *cmd, int rc, struct sbx_exit *ex)
{
	if (sandbox_running(cmd))
		return 0;
	snprintf(ex->reason, sizeof(ex->reason), "the sandbox stopped under it");
	return 1;
}

static const struct cmdpoll_cmd poll_ops = {
	.poll = poll_step,
	.failed = poll_failed,
};

/* Drop idle[i], keeping the others in the order they came; lock held. */
static void idle_remove_locked(struct dt *dt, size_t i)
{
	memmove(&dt->idle[i], &dt->idle[i + 1],
		(dt->nidle - i - 1) * sizeof(dt->idle[0]));
	dt->nidle--;
}

/* Keep the session of a command that ended for the sandbox's next
 * command: 0, or -1 if it should be deleted (no memory).  With no room
 * left, the session kept longest (most often a sandbox's that is gone)
 * makes way: into *old, for the caller to delete (old->toolbox, which it
 * frees, stays NULL if none did). */
static int idle_put(struct dt *dt, const char *box, const char *sid, const char *toolbox,
		    struct dcmd *old)
{
	char *tb = strdup(toolbox);
	struct dt_idle *i;

	if (!tb)
		return -1;
	pthread_mutex_lock(&dt->lock);
	if (dt->nidle == DT_IDLE_MAX) {
		snprintf(old->sid, sizeof(old->sid), "%s", dt->idle[0].sid);
		old->toolbox = dt->idle[0].toolbox;
		idle_remove_locked(dt, 0);
	}
	i = &dt->idle[dt->nidle++];
	snprintf(i->box, sizeof(i->box), "%s", box);
	snprintf(i->sid, sizeof(i->sid), "%s", sid);
	i->toolbox = tb;
	pthread_mutex_unlock(&dt->lock);
	return 0;
}

/* A kept session of box's into sid (sizeof(c->sid)), the latest; 0, or
 * -1 if none. */
static int idle_take(struct dt *dt, const char *box, char *sid, size_t size)
{
	int rc = -1;

	pthread_mutex_lock(&dt->lock);
	for (size_t i = dt->nidle; i-- > 0;) {
		if (strcmp(dt->idle[i].box, box))
			continue;
		snprintf(sid, size, "%s", dt->idle[i].sid);
		free(dt->idle[i].toolbox);
		idle_remove_locked(dt, i);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&dt->lock);
	return rc;
}

void dt_idle_forget(struct dt *dt, const char *box)
{
	pthread_mutex_lock(&dt->lock);
	for (size_t i = dt->nidle; i-- > 0;) {
		if (strcmp(dt->idle[i].box, box))
			continue;
		free(dt->idle[i].toolbox);
		idle_remove_locked(dt, i);
	}
	pthread_mutex_unlock(&dt->lock);
}

void dt_idle_drop(struct dt *dt)
{
	for (size_t i = 0; i < dt->nidle; i++) {
		struct dcmd c = { .dt = dt, .toolbox = dt->idle[i].toolbox };

		snprintf(c.sid, sizeof(c.sid), "%s", dt->idle[i].sid);
		session_delete(&c);
		free(dt->idle[i].toolbox);
	}
	dt->nidle = 0;
}

static void *poller(void *arg)
{
	struct dcmd *c = arg;
	struct dt *dt = c->dt;
	struct dcmd after = { .dt = dt }, old = { .dt = dt };
	struct sbx_exit ex;
	int kept, code;

	/* The log over the open HTTP connection first: a short command has
	 * ended by the time it is asked, two round trips in all, where the
	 * log stream is a new connection (TCP, TLS, the upgrade).  The stream
	 * follows a command still running; polling the log is the fallback. */
	if (!follow_log(c, 0) && endmark_cmd_ended(&c->end, NULL)) {
		feed(c, NULL, 0, 1); /* what was held back */
		c->streamed = 1;
	} else {
		c->streamed = follow_ws(c) == 0;
	}
	if (endmark_cmd_ended(&c->end, &code))
		cmdpoll_exit(&ex, code, c->signalled);
	else
		cmdpoll_follow(&dt->r.cmds, &ex, &poll_ops, c, &c->signalled);
	/* The session goes back to the sandbox's before the reader of the
	 * output is told (the next command finds it), or away after: a
	 * request, off the reader's path. */
	kept = ex.how == SBX_EXIT_CODE && !c->signalled &&
	       endmark_cmd_ended(&c->end, NULL) &&
	       !idle_put(dt, c->box, c->sid, c->toolbox, &old);
	after.toolbox = c->toolbox;
	c->toolbox = NULL;
	snprintf(after.sid, sizeof(after.sid), "%s", c->sid);
	c->sink->done(c->sink, &ex); /* may release c: touch it no more */
	if (!kept && (ex.how != SBX_EXIT_FAILED || !strstr(ex.reason, "unmounted")))
		session_delete(&after);
	if (old.toolbox)
		session_delete(&old);
	free(old.toolbox);
	free(after.toolbox);
	cmdpoll_leave(&dt->r.cmds);
	return NULL;
}

static void dcmd_free(struct dcmd *c)
{
	free(c->toolbox);
	free(c);
}

/* 0 if box is started, else -EAGAIN (or -errno) with the reason. */
static int check_running(struct dt *dt, const char *box)
{
	char state[64];
	int rc = dt_state_of(dt, box, state, sizeof(state));

	if (!rc && dt_map_state(state) != SBX_STATE_RUNNING) {
		sbx_failf("daytona: sandbox \"%s\" is %s, not started", box, state);
		rc = -EAGAIN;
	}
	return rc;
}

int dt_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink)
{
	static const struct errmap over[] = { { 409, EBUSY }, { 0, 0 } };
	struct dt *dt = DT(p);
	struct dcmd *c = calloc(1, sizeof(*c));
	struct strbuf url = STRBUF_INIT(4096), cmd = STRBUF_INIT(1u << 20);
	cJSON *body = NULL, *j = NULL;
	struct http_resp r;
	char env[128];
	unsigned long seq;
	int rc, fresh = 0, kept;

	if (!c)
		return -ENOMEM;
	/* A session kept from the sandbox's last command: the sandbox ran
	 * then, and the exec itself says if it no longer does.  Else the
	 * state is asked first, for a clear error. */
	kept = !idle_take(dt, box, c->sid, sizeof(c->sid));
	rc = kept ? 0 : check_running(dt, box);
	if (!rc)
		rc = dt_toolbox_of(dt, &c->toolbox, box);
	if (rc)
		goto fail;
	pthread_mutex_lock(&dt->lock);
	seq = ++dt->cmd_seq;
	pthread_mutex_unlock(&dt->lock);
	c->dt = dt;
	c->sink = sink;
	snprintf(c->box, sizeof(c->box), "%s", box);
	snprintf(c->marker, sizeof(c->marker), "%s-%lu", dt->session_prefix, seq);
	rc = endmark_cmd_init(&c->end, c->marker, sink);
	if (rc)
		goto fail;
	/* A session of its own, so commands run side by side: the kept one,
	 * else a new one. */
	if (!kept) {
	new_session:
		snprintf(c->sid, sizeof(c->sid), "%s", c->marker);
		body = cJSON_CreateObject();
		strbuf_release(&url);
		if (!body || strbuf_addf(&url, "%s/process/session", c->toolbox)) {
			rc = -ENOMEM;
			goto fail;
		}
		cJSON_AddStringToObject(body, "sessionId", c->sid);
		rc = dt_request(dt, &r, "POST", url.buf, body, 0, 0);
		cJSON_Delete(body);
		body = NULL;
		if (rc)
			goto fail;
		if (r.status != 201 && r.status != 200)
			rc = dt_toolbox_fail(dt, box, "new session", &r, over);
		http_resp_release(&r);
		if (rc)
			goto fail;
		fresh = 1;
	}

	/* The marker in the environment lets kill find the command's
	 * processes; base64 carries any bytes through JSON. */
	snprintf(env, sizeof(env), SH_CMD_ENV "%s", c->marker);
	body = cJSON_CreateObject();
	strbuf_release(&cmd);
	rc = body ? sh_wrap_base64(&cmd, env, cmdline) : -ENOMEM;
	if (!rc)
		rc = endmark_script(&c->end.stream[0], &cmd);
	if (rc)
		goto fail_session;
	cJSON_AddStringToObject(body, "command", cmd.buf);
	cJSON_AddBoolToObject(body, "runAsync", 1);
	cJSON_AddBoolToObject(body, "async", 1);
	/* Otherwise Daytona copies what we send to stdin into the output. */
	cJSON_AddBoolToObject(body, "suppressInputEcho", 1);
	strbuf_release(&url);
	if (strbuf_addf(&url, "%s/process/session/%s/exec", c->toolbox, c->sid)) {
		rc = -ENOMEM;
		goto fail_session;
	}
	rc = dt_request(dt, &r, "POST", url.buf, body, 0, 0);
	if (rc)
		goto fail_session;
	if (!fresh && (r.status < 200 || r.status > 299)) {
		/* The kept session is gone (the sandbox restarted: the
		 * toolbox says 404, or 500 "session not found", or it stopped):
		 * once more in a new one, once the sandbox is known to run. */
		http_resp_release(&r);
		cJSON_Delete(body);
		body = NULL;
		rc = check_running(dt, box);
		if (rc)
			goto fail;
		goto new_session;
	}
	if (r.status != 202 && r.status != 200) {
		rc = dt_toolbox_fail(dt, box, "run command", &r, NULL);
	} else if (
		!(j = dt_parse_json(&r, "run command")) || !json_str(j, "cmdId") ||
		strlen(json_str(j, "cmdId")) >= sizeof(c->cid) ||
		strspn(json_str(j, "cmdId"),
		       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
			strlen(json_str(j, "cmdId"))) {
		sbx_failf("daytona: run command: no usable cmdId in the answer");
		rc = -EPROTO;
	} else {
		snprintf(c->cid, sizeof(c->cid), "%s", json_str(j, "cmdId"));
	}
	http_resp_release(&r);
	if (rc)
		goto fail_session;

	rc = cmdpoll_start(&dt->r.cmds, poller, c);
	if (rc)
		goto fail_session;
	*handle = c;
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&cmd);
	return 0;

fail_session:
	session_delete(c);
fail:
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&cmd);
	dcmd_free(c);
	return rc;
}

ssize_t dt_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted)
{
	static const struct errmap over[] = { { 410, EPIPE }, { 404, EPIPE }, { 0, 0 } };
	struct dcmd *c = handle;
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;
	cJSON *body;
	char *text;
	int rc;

	/* Daytona's input call cannot close stdin: EOF never reaches the
	 * command (see docs/providers.md). */
	if (len == 0)
		return 0;
	text = strndup(data, len);
	body = cJSON_CreateObject();
	if (!text || !body || strlen(text) != len ||
	    strbuf_addf(&url, "%s/process/session/%s/command/%s/input", c->toolbox,
			c->sid, c->cid)) {
		rc = (text && strlen(text) != len) ? -EINVAL : -ENOMEM;
		if (rc == -EINVAL)
			sbx_failf("daytona: stdin cannot carry NUL bytes");
		goto out;
	}
	cJSON_AddStringToObject(body, "data", text);
	rc = dt_request(c->dt, &r, "POST", url.buf, body, 0, 0);
	if (!rc) {
		if (r.status < 200 || r.status > 299)
			rc = dt_fail_resp("command input", &r, over);
		http_resp_release(&r);
	}
out:
	free(text);
	cJSON_Delete(body);
	strbuf_release(&url);
	return rc ? rc : (ssize_t)len;
}

int dt_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct dcmd *c = handle;

	/* Daytona has no kill call: the command's processes carry its
	 * marker in their environment. */
	c->signalled = sig;
	return remote_signal_marked(&c->dt->r, c->box, c->marker, sig);
}

void dt_cmd_release(struct sbx_provider *p, void *handle)
{
	dcmd_free(handle);
}
