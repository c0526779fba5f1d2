/* SPDX-License-Identifier: MIT */
/*
 * Rexec: running a shell script in a container, exactly.
 *
 * Everything the REST API lacks (listings, metadata, commands) is a
 * script.  A script travels base64-encoded inside a fixed ASCII wrapper,
 * so no quoting or encoding on the way can change it.  The wrapper runs
 * it with stdin from /dev/null, stdout and stderr to files in a private
 * temporary directory under /var/tmp/.sbxfs (out of the way of what
 * users look at, /tmp), and prints
 *
 *     base64(stdout) "--\n" base64(first 2 KiB of stderr)
 *
 * so the output survives both transports byte for byte: the exec
 * endpoint strips NULs and replaces invalid UTF-8, the terminal drops
 * invalid UTF-8 and turns "\n" into "\r\n"; base64 is plain ASCII and
 * "--" is no base64 line.
 *
 * Two transports, chosen once per mount (the server is asked, unless
 * -o transport= or REXEC_TRANSPORT says exec or terminal): POST /api/containers/:id/exec
 * where the server has it (a synchronous call; the wrapper's exit code is the script's),
 * else the terminal WebSocket.  A terminal is one connection per container, kept open and
 * used by one round at a time.  On connecting, the login shell is told `stty -echo
 * -icanon` (no echo of what we type; no 4 KiB line limit) and replaced by a
 * non-interactive /bin/sh (no prompt, no line editor).  A round sends one line:
 *
 *     printf 'SBX%sB\n' NONCE; WRAPPER; printf 'SBX%sE%s\n' NONCE "$sbx_r"
 *
 * and takes the output between "SBX<nonce>B" and "SBX<nonce>E<code>".
 * The nonce is random per round and the markers exist whole only in the
 * output (the input holds "SBX%sB"), so neither an echo, nor a stale
 * round, nor a script printing marker-like text can be mistaken for
 * them: the script's own output is base64 between them.  A connection
 * that drops, times out or whose shell restarts is closed; rounds marked
 * REMOTE_RUN_RETRY are then run again on a new connection, others fail with
 * EIO (their effect is unknown).
 */
#include <sys/random.h>

#include "rexec.h"
#include "sbxfs/ws.h"

#define SETUP_PROBES 6

struct rx_term {
	pthread_mutex_t lock; /* held for a whole round */
	struct ws_conn *ws;   /* NULL when not connected */
	char docker_id[RX_ID_MAX];
	unsigned refs; /* guarded by term_refs_lock */
};

static pthread_mutex_t term_refs_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- scripts ---- */

/* The wrapper around a script (see the top of the file). */
static int wrap(struct strbuf *sb, const char *script, int exec_mode)
{
	int rc = strbuf_addf(sb,
			     "sbx_r=125; mkdir -p %s 2>/dev/null; "
			     "sbx_t=$(mktemp -d %s/r.XXXXXX 2>/dev/null || "
			     "mktemp -d /tmp/.sbxfs.XXXXXX 2>/dev/null) && "
			     "{ (eval \"$(printf %%s '",
			     RX_WORK_DIR, RX_WORK_DIR);

	if (!rc)
		rc = b64_encode(sb, script, strlen(script));
	if (!rc)
		rc = strbuf_addf(sb,
				 "' | base64 -d)\") </dev/null >\"$sbx_t/o\" "
				 "2>\"$sbx_t/e\"; sbx_r=$?; base64 \"$sbx_t/o\"; "
				 "echo --; head -c %d \"$sbx_t/e\" | base64; "
				 "rm -rf \"$sbx_t\"; }%s",
				 RX_ERR_KEEP, exec_mode ? "; exit $sbx_r" : "");
	return rc;
}

/* ---- transport: the exec endpoint ---- */

const char *rx_transport_word(struct rx *rx)
{
	enum rx_transport t;

	pthread_mutex_lock(&rx->lock);
	t = rx->transport;
	pthread_mutex_unlock(&rx->lock);
	return t == RX_EXEC ? "exec" : t == RX_TERMINAL ? "terminal" : "auto";
}

static void set_transport(struct rx *rx, enum rx_transport t)
{
	pthread_mutex_lock(&rx->lock);
	if (rx->transport == RX_UNKNOWN) {
		rx->transport = t;
		sbx_info("rexec: commands go through %s",
			 t == RX_EXEC ? "the exec endpoint" : "the terminal WebSocket");
	}
	pthread_mutex_unlock(&rx->lock);
}

/* Is a 404 the router's (no such route) rather than the handler's? */
static int no_route(const struct http_resp *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body.buf ? r->body.buf : "", r->body.len);
	const char *e = json_str(j, "error");
	int none = !j || !e || !strstr(e, "container");

	cJSON_Delete(j);
	return none;
}

/* 0 with the script's results, -ENOSYS if the server has no exec. */
static int run_exec(struct rx *rx, const char *id, const char *what, const char *script,
		    int flags, struct rx_out *res)
{
	struct strbuf url = STRBUF_INIT(4096), w = STRBUF_INIT(RX_OUTPUT_MAX);
	cJSON *body = cJSON_CreateObject(), *argv, *j = NULL;
	struct http_resp r;
	const cJSON *code;
	const char *out;
	int rc;

	argv = body ? cJSON_AddArrayToObject(body, "cmd") : NULL;
	rc = argv ? rx_url(&url, rx, id, "/exec", NULL) : -ENOMEM;
	if (!rc)
		rc = wrap(&w, script, 1);
	if (rc)
		goto out;
	cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/sh"));
	cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
	cJSON_AddItemToArray(argv, cJSON_CreateString(w.buf));
	cJSON_AddNumberToObject(body, "timeout_seconds",
				rx->r.timeout_ms > 300000 ? 300
							  : rx->r.timeout_ms / 1000);
	/* The server ends the script at timeout_seconds; the answer then
	 * comes at once.  A server that says nothing two seconds past that
	 * is not answering: the call stays within its one deadline. */
	/* The server gzips every answer for a client that accepts it: not
	 * one whose output is gzip'd already (its base64 would shrink by a
	 * quarter, for the server's time on every byte). */
	rc = rx_request(rx, &r, "POST", url.buf, body,
			((flags & REMOTE_RUN_RETRY) ? RX_REQ_IDEMPOTENT : 0) |
				((flags & REMOTE_RUN_COMPRESSED) ? REMOTE_REQ_AS_IS : 0),
			RX_EXEC_CAP * 4, rx->r.timeout_ms + 2000);
	if (rc)
		goto out;
	if (r.status == 404 && no_route(&r)) {
		rc = -ENOSYS;
	} else if (r.status != 200) {
		char msg[160];

		snprintf(msg, sizeof(msg), "%s (exec)", what);
		rc = rx_fail_resp(msg, &r, NULL);
	} else if (!(j = cJSON_ParseWithLength(r.body.buf, r.body.len)) ||
		   !(out = json_str(j, "stdout")) ||
		   !cJSON_IsNumber(
			   code = cJSON_GetObjectItemCaseSensitive(j, "exit_code"))) {
		sbx_failf("rexec: %s: the exec answer is not an exec result", what);
		rc = -EPROTO;
	} else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated"))) {
		sbx_failf("rexec: %s: the output is over the exec endpoint's 1 MiB",
			  what);
		rc = -EFBIG;
	} else {
		rc = rx_unwrap(res, out, strlen(out));
		res->code = (int)code->valuedouble;
	}
	http_resp_release(&r);
out:
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&w);
	return rc;
}

/* ---- transport: the terminal ---- */

static void term_disconnect(struct rx_term *t)
{
	if (t->ws)
		ws_close(t->ws);
	t->ws = NULL;
}

void rx_term_free(struct rx_term *t)
{
	unsigned left;

	if (!t)
		return;
	pthread_mutex_lock(&term_refs_lock);
	left = --t->refs;
	pthread_mutex_unlock(&term_refs_lock);
	if (left)
		return;
	term_disconnect(t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void rx_term_close(struct rx *rx, const char *box)
{
	struct rbox *b;
	struct rx_term *t = NULL;

	boxtable_lock(&rx->r.boxes);
	b = boxtable_find_locked(&rx->r.boxes, box);
	if (b) {
		t = b->priv;
		b->priv = NULL;
	}
	boxtable_unlock(&rx->r.boxes);
	rx_term_free(t);
}

/* The box's terminal, referenced (created if none). */
static struct rx_term *term_get(struct rx *rx, struct rbox *b)
{
	struct rx_term *t;

	boxtable_lock(&rx->r.boxes);
	t = b->priv;
	if (!t && (t = calloc(1, sizeof(*t)))) {
		pthread_mutex_init(&t->lock, NULL);
		t->refs = 1; /* the box's */
		b->priv = t;
	}
	if (t) {
		pthread_mutex_lock(&term_refs_lock);
		t->refs++;
		pthread_mutex_unlock(&term_refs_lock);
	}
	boxtable_unlock(&rx->r.boxes);
	return t;
}

static void nonce(char *out, size_t size)
{
	unsigned char r[8];
	size_t i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		memcpy(r, &ts.tv_nsec,
		       sizeof(r) < sizeof(ts.tv_nsec) ? sizeof(r) : sizeof(ts.tv_nsec));
	}
	for (i = 0; i < sizeof(r) && 2 * i + 2 < size; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static int send_input(struct rx_term *t, const char *text)
{
	cJSON *m = cJSON_CreateObject();
	char *s;
	int rc;

	if (!m)
		return -ENOMEM;
	cJSON_AddStringToObject(m, "type", "input");
	cJSON_AddStringToObject(m, "data", text);
	s = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	if (!s)
		return -ENOMEM;
	rc = ws_send_text(t->ws, s, strlen(s), 10000);
	free(s);
	return rc;
}

/*
 * The next frame: 1 with output text appended to `acc`, 2 for another
 * frame, or -errno: -ETIMEDOUT when nothing came in time, -ECONNRESET when
 * the connection or the shell went away, -EAGAIN when the container must
 * be started again.
 */
static int next_frame(struct rx_term *t, struct strbuf *acc, int timeout_ms, char *type,
		      size_t tsize)
{
	struct strbuf msg = STRBUF_INIT(RX_OUTPUT_MAX);
	int binary = 0, close_code = 0, rc;
	cJSON *j;
	const char *ty, *data;

	rc = ws_recv(t->ws, &msg, &binary, &close_code, timeout_ms);
	if (rc == 0) {
		sbx_failf("rexec: the terminal closed (%d)", close_code);
		rc = -ECONNRESET;
	}
	if (rc < 0) {
		if (rc != -ETIMEDOUT && rc != -ECONNRESET) {
			sbx_failf("rexec: the terminal failed: %s", sbx_fail_text());
			rc = -ECONNRESET;
		}
		strbuf_release(&msg);
		return rc;
	}
	j = cJSON_ParseWithLength(msg.buf ? msg.buf : "", msg.len);
	strbuf_release(&msg);
	ty = json_str(j, "type");
	data = json_str(j, "data");
	snprintf(type, tsize, "%s", ty ? ty : "");
	rc = 2;
	if (ty && !strcmp(ty, "output") && data) {
		rc = strbuf_add(acc, data, strlen(data)) ? -EFBIG : 1;
		if (rc == -EFBIG)
			sbx_failf("rexec: a script's output is over %zu bytes", acc->max);
	} else if (ty && !strcmp(ty, "container_restart_required")) {
		sbx_failf("rexec: the terminal says the container must be restarted");
		rc = -EAGAIN;
	} else if (ty && !strcmp(ty, "error")) {
		sbx_failf("rexec: the terminal says: %.200s", data ? data : "error");
		rc = -ECONNRESET;
	}
	cJSON_Delete(j);
	return rc;
}

static int has_error(const struct http_resp *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body.buf ? r->body.buf : "", r->body.len);
	int yes = json_str(j, "error") != NULL;

	cJSON_Delete(j);
	return yes;
}

/* Why a WebSocket upgrade was refused: the same address as a plain GET
 * answers with the server's JSON error, mapped in the one place. */
static int diagnose_refusal(struct rx *rx, const char *url, int ws_rc)
{
	struct http_resp r;
	int rc = rx_request(rx, &r, "GET", url, NULL, 0, 0, 0);

	if (rc)
		return ws_rc;
	if (r.status >= 400 && has_error(&r))
		rc = rx_fail_resp("open the terminal", &r, NULL);
	else
		rc = ws_rc;
	http_resp_release(&r);
	return rc;
}

/* Wait for "shell_ready", then make the shell ours (see the top). */
static int term_setup(struct rx *rx, struct rx_term *t)
{
	struct strbuf acc = STRBUF_INIT(1u << 20);
	struct timespec t0;
	char type[32], n[20], want[32], line[64];
	int rc = 0, ready = 0, probe;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!ready) {
		if (ms_since(&t0) > rx->r.timeout_ms) {
			sbx_failf("rexec: the terminal's shell did not start in %d s",
				  rx->r.timeout_ms / 1000);
			rc = -ETIMEDOUT;
			goto out;
		}
		rc = next_frame(t, &acc, 1000, type, sizeof(type));
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0)
			goto out;
		ready = !strcmp(type, "shell_ready");
	}
	rc = send_input(
		t,
		"stty -echo -icanon min 1 time 0 2>/dev/null; exec /bin/sh 2>/dev/null\n");
	if (rc)
		goto out;
	usleep(150000);
	for (probe = 0; probe < SETUP_PROBES; probe++) {
		struct timespec p0;

		nonce(n, sizeof(n));
		snprintf(want, sizeof(want), "SBX%sR", n);
		snprintf(line, sizeof(line), "printf 'SBX%%sR\\n' %s\n", n);
		rc = send_input(t, line);
		if (rc)
			goto out;
		clock_gettime(CLOCK_MONOTONIC, &p0);
		while (ms_since(&p0) < 1500) {
			rc = next_frame(t, &acc, 300, type, sizeof(type));
			if (rc == -ETIMEDOUT)
				continue;
			if (rc < 0)
				goto out;
			if (acc.buf && strstr(acc.buf, want)) {
				rc = 0;
				goto out;
			}
		}
	}
	sbx_failf("rexec: the terminal's shell does not answer");
	rc = -ETIMEDOUT;
out:
	strbuf_release(&acc);
	return rc;
}

static int term_connect(struct rx *rx, struct rx_term *t, const char *id)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct ws_config cfg = { 0 };
	const char *headers[1] = { rx->auth };
	unsigned long seq;
	int rc;

	pthread_mutex_lock(&rx->lock);
	seq = ++rx->seq;
	pthread_mutex_unlock(&rx->lock);
	/* A connection id of our own: the server closes an older session
	 * with the same id. */
	if (strbuf_addf(&url, "%s/ws/terminal/%s?id=sbxfs-%d-%lu", rx->url, id,
			(int)getpid(), seq))
		return -ENOMEM;
	cfg.url = url.buf;
	cfg.headers = headers;
	cfg.nheaders = 1;
	cfg.connect_timeout_ms = rx->r.timeout_ms;
	cfg.max_message = RX_OUTPUT_MAX;
	rc = ws_connect(&t->ws, &cfg);
	if (rc) {
		t->ws = NULL;
		rc = diagnose_refusal(rx, url.buf, rc);
	}
	strbuf_release(&url);
	if (!rc) {
		rc = term_setup(rx, t);
		if (rc)
			term_disconnect(t);
	}
	if (!rc)
		snprintf(t->docker_id, sizeof(t->docker_id), "%s", id);
	sbx_trace(SBX_TRACE_WS, "rexec: terminal to %.12s: %s", id,
		  rc ? sbx_fail_text() : "ready");
	return rc;
}

/* Take what came while nobody read; notice a connection that died. */
static int term_drain(struct rx_term *t)
{
	struct strbuf junk = STRBUF_INIT(RX_OUTPUT_MAX);
	struct timespec t0;
	char type[32];
	int rc;

	/* Bounded: a server that keeps sending must not hold us here. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		junk.len = 0;
		rc = next_frame(t, &junk, 1, type, sizeof(type));
	} while (rc > 0 && ms_since(&t0) < 200);
	strbuf_release(&junk);
	return rc == -ETIMEDOUT ? 0 : rc;
}

/* One round on a connected terminal (see the top). */
static int term_round(struct rx *rx, struct rx_term *t, const char *script,
		      struct rx_out *res, int timeout_s)
{
	struct strbuf line = STRBUF_INIT(RX_OUTPUT_MAX), acc = STRBUF_INIT(RX_OUTPUT_MAX);
	char n[20], begin[32], end[32], type[32];
	struct timespec t0;
	size_t scan = 0;
	int rc;

	nonce(n, sizeof(n));
	snprintf(begin, sizeof(begin), "SBX%sB", n);
	snprintf(end, sizeof(end), "SBX%sE", n);
	rc = strbuf_addf(&line, "printf 'SBX%%sB\\n' %s; ", n);
	if (!rc)
		rc = wrap(&line, script, 0);
	if (!rc)
		rc = strbuf_addf(&line, "; printf 'SBX%%sE%%s\\n' %s \"$sbx_r\"\n", n);
	if (rc)
		goto out;
	rc = send_input(t, line.buf);
	if (rc) {
		rc = -ECONNRESET;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		const char *b, *e;

		if (ms_since(&t0) > timeout_s * 1000L) {
			sbx_failf("rexec: no answer from the terminal in %d s",
				  timeout_s);
			rc = -ETIMEDOUT;
			break;
		}
		if (sbx_interrupted()) {
			sbx_failf("rexec: interrupted while waiting for the terminal");
			rc = -EINTR;
			break;
		}
		rc = next_frame(t, &acc, 250, type, sizeof(type));
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0)
			break;
		if (rc != 1)
			continue;
		/* A shell that exited was replaced: our line went nowhere. */
		if (strstr(acc.buf + scan, "[Starting new session...]")) {
			sbx_failf("rexec: the terminal's shell restarted");
			rc = -ECONNRESET;
			break;
		}
		scan = acc.len > 64 ? acc.len - 64 : 0;
		b = strstr(acc.buf, begin);
		e = b ? strstr(b, end) : NULL;
		if (e && strchr(e, '\n')) {
			const char *body = strchr(b, '\n');
			char *stop;
			long code = strtol(e + strlen(end), &stop, 10);

			if (!body || body > e || (*stop != '\r' && *stop != '\n')) {
				sbx_failf("rexec: garbled markers from the terminal");
				rc = -EPROTO;
				break;
			}
			body++;
			rc = rx_unwrap(res, body, (size_t)(e - body));
			res->code = (int)code;
			break;
		}
	}
out:
	strbuf_release(&line);
	strbuf_release(&acc);
	return rc;
}

static int run_terminal(struct rx *rx, const char *box, const char *id,
			const char *script, int flags, struct rx_out *res)
{
	struct rbox *b = boxtable_get(&rx->r.boxes, box);
	struct rx_term *t = b ? term_get(rx, b) : NULL;
	int rc = -ECONNRESET, attempt;

	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	for (attempt = 0; attempt < 2 && rc == -ECONNRESET; attempt++) {
		int fresh = 0;

		if (cmdpoll_stopping(&rx->r.cmds)) {
			sbx_failf("rexec: unmounting");
			rc = -ECANCELED;
			break;
		}
		if (t->ws && (strcmp(t->docker_id, id) || term_drain(t)))
			term_disconnect(t);
		if (!t->ws && boxtable_stopping(&rx->r.boxes, b)) {
			/* A terminal opened now would start the container
			 * again when its shell dies. */
			sbx_failf("rexec: container \"%s\" is being stopped", box);
			rc = -EAGAIN;
			break;
		}
		if (!t->ws) {
			rc = term_connect(rx, t, id);
			if (rc)
				break;
			fresh = 1;
		}
		res->out.len = res->err.len = 0;
		rc = term_round(rx, t, script, res, rx->r.timeout_ms / 1000);
		if (rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPROTO ||
		    rc == -EINTR) {
			/* The shell may still be busy with our line: start over. */
			term_disconnect(t);
		}
		if (rc == -ECONNRESET && !(flags & REMOTE_RUN_RETRY) && fresh)
			break;
		if (rc == -ECONNRESET && !(flags & REMOTE_RUN_RETRY)) {
			sbx_failf("rexec: the terminal went away during a command; "
				  "whether it ran is unknown");
			rc = -EIO;
			break;
		}
	}
	if (rc == -ECONNRESET)
		rc = -EIO;
	pthread_mutex_unlock(&t->lock);
	rx_term_free(t);
	return rc;
}

/* ---- running ---- */

static enum rx_transport transport_of(struct rx *rx)
{
	enum rx_transport t;

	pthread_mutex_lock(&rx->lock);
	t = rx->transport;
	pthread_mutex_unlock(&rx->lock);
	return t;
}

int rx_run(struct rx *rx, const char *box, const char *what, const char *script,
	   int flags, struct rx_out *res)
{
	char id[RX_ID_MAX];
	int rc = 0, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		enum rx_transport t = transport_of(rx);

		rc = rx_docker_id(rx, id, sizeof(id), box, attempt > 0);
		if (rc)
			return rc;
		res->out.len = res->err.len = 0;
		if (t != RX_TERMINAL) {
			rc = run_exec(rx, id, what, script, flags, res);
			if (rc == -ENOSYS && t == RX_UNKNOWN) {
				set_transport(rx, RX_TERMINAL);
				t = RX_TERMINAL;
			} else if (rc == -ENOSYS) {
				sbx_failf("rexec: this server has no exec endpoint "
					  "(transport=exec)");
				return -ENOTSUP;
			} else if (!rc) {
				set_transport(rx, RX_EXEC);
			}
		}
		if (t == RX_TERMINAL)
			rc = run_terminal(rx, box, id, script, flags, res);
		/* A stale Docker id (the container was recreated): ask again. */
		if (rc != -ENOENT)
			break;
	}
	return rc;
}

/* Printable start of a script's stderr, for messages. */
static void err_text(char *out, size_t size, const struct strbuf *err)
{
	size_t i, o = 0;

	for (i = 0; i < err->len && o + 1 < size; i++)
		out[o++] =
			(err->buf[i] >= 0x20 && err->buf[i] < 0x7f) ? err->buf[i] : ' ';
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

int rx_run_errno(struct rx *rx, const char *box, const char *what, const char *script,
		 int flags, struct strbuf *out)
{
	struct rx_out res;
	int rc;

	rx_out_init(&res, out ? out->max : (1u << 20));
	rc = rx_run(rx, box, what, script, flags, &res);
	if (rc) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", sbx_fail_text());
		sbx_failf("rexec: %s: %s", what,
			  msg + (strncmp(msg, "rexec: ", 7) ? 0 : 7));
	} else if (res.code == 0) {
		if (out && res.out.len && strbuf_add(out, res.out.buf, res.out.len))
			rc = -EFBIG;
	} else if ((rc = sh_exit_errno(res.code)) <= 0) {
		/* An errno value the script exited with. */
	} else {
		char e[300];

		err_text(e, sizeof(e), &res.err);
		sbx_failf("rexec: %s: exit %d%s%s", what, res.code, e[0] ? ": " : "", e);
		rc = -EIO;
	}
	rx_out_release(&res);
	return rc;
}

/* The remote layer's run (remote.h). */
int rx_remote_run(struct remote *r, const char *box, const char *what, const char *script,
		  int flags, struct strbuf *out)
{
	return rx_run_errno((struct rx *)r, box, what, script, flags, out);
}
