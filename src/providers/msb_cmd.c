/* SPDX-License-Identifier: MIT */
/*
 * microsandbox: commands and scripts through the agent's exec sessions.
 *
 * An exec session starts with core.exec.request (the program, its
 * arguments, environment, directory and user: the agent implies no
 * shell), is answered with core.exec.started or core.exec.failed, then
 * streams core.exec.stdout and core.exec.stderr, and ends with
 * core.exec.exited {code} once the output has drained; -1 for a death by
 * a signal, which the agent does not name.  Its stdin is a pipe that stays
 * open until an empty core.exec.stdin.  The process dies with the
 * socket, so a command outlives no socket: a dropped socket loses it.
 *
 * The settings come from the sandbox's configuration, as the SDK applies
 * them: its environment, working directory, user and shell (msb inspect).
 */
#include <signal.h>
#include <unistd.h>

#include "msb.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/shell.h"

#define ERR_KEEP 2048	       /* the start of a script's stderr kept */
#define STDIN_CHUNK (1u << 20) /* the most stdin bytes in one frame */

/* The core.exec.request payload: `shell` -c `script` [extra args]. */
static int exec_payload(struct strbuf *p, const struct msb_runtime *rt, const char **args,
			int use_workdir)
{
	const char *shell = rt->shell ? rt->shell : "/bin/sh";
	size_t nargs = 0, nenv = 0;
	int rc;

	while (args[nargs])
		nargs++;
	while (rt->env && rt->env[nenv])
		nenv++;
	rc = cbor_put_map(p, rt->user ? 9 : 8);
	if (!rc)
		rc = cbor_put_text(p, "cmd");
	if (!rc)
		rc = cbor_put_text(p, shell);
	if (!rc)
		rc = cbor_put_text(p, "args");
	if (!rc)
		rc = cbor_put_array(p, nargs);
	for (size_t i = 0; !rc && i < nargs; i++)
		rc = cbor_put_text(p, args[i]);
	if (!rc)
		rc = cbor_put_text(p, "env");
	if (!rc)
		rc = cbor_put_array(p, nenv);
	for (size_t i = 0; !rc && i < nenv; i++)
		rc = cbor_put_text(p, rt->env[i]);
	if (!rc)
		rc = cbor_put_text(p, "cwd");
	if (!rc)
		rc = cbor_put_text(p, use_workdir && rt->workdir ? rt->workdir : "/");
	if (!rc && rt->user) {
		rc = cbor_put_text(p, "user");
		if (!rc)
			rc = cbor_put_text(p, rt->user);
	}
	if (!rc)
		rc = cbor_put_text(p, "tty");
	if (!rc)
		rc = cbor_put_bool(p, 0);
	if (!rc)
		rc = cbor_put_text(p, "rows");
	if (!rc)
		rc = cbor_put_uint(p, 24);
	if (!rc)
		rc = cbor_put_text(p, "cols");
	if (!rc)
		rc = cbor_put_uint(p, 80);
	if (!rc)
		rc = cbor_put_text(p, "rlimits");
	if (!rc)
		rc = cbor_put_array(p, 0);
	return rc;
}

/* The {data: bytes} payload of stdin and its end (len 0). */
static int data_payload(struct strbuf *p, const void *data, size_t len)
{
	int rc = cbor_put_map(p, 1);

	if (!rc)
		rc = cbor_put_text(p, "data");
	return rc ? rc : cbor_put_bytes(p, data, len);
}

/* The words of a core.exec.failed, into out. */
static void failed_text(char *out, size_t size, const struct msb_frame *f)
{
	struct cbor_val v;
	char kind[40] = "other", msg[160] = "";

	if (!cbor_map_get(&f->payload, "kind", &v))
		cbor_text_copy(&v, kind, sizeof(kind));
	if (!cbor_map_get(&f->payload, "message", &v))
		cbor_text_copy(&v, msg, sizeof(msg));
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	snprintf(out, size, "%s%s%s", kind, msg[0] ? ": " : "", msg);
}

/* The data of a stdout, stderr or stdin.error frame; -EPROTO. */
static int frame_data(struct cbor_val *d, const struct msb_frame *f)
{
	if (cbor_map_get(&f->payload, "data", d) || d->type != CBOR_BYTES) {
		sbx_failf("microsandbox: an output frame without data");
		return -EPROTO;
	}
	return 0;
}

/* The exit code of core.exec.exited; -EPROTO. */
static int frame_code(int64_t *code, const struct msb_frame *f)
{
	struct cbor_val v;

	if (cbor_map_get(&f->payload, "code", &v) || cbor_int(&v, code) || *code < -1 ||
	    *code > 255) {
		sbx_failf("microsandbox: an exit without a code");
		return -EPROTO;
	}
	return 0;
}

/* ---- scripts ---- */

struct run_ctx {
	struct strbuf *out; /* may be NULL: stdout is dropped */
	struct strbuf err;  /* the start of stderr */
	int64_t code;
	int exited;
	char failed[200]; /* why it could not start; "" if it did */
};

static int run_frame(void *ctx, const struct msb_frame *f, int err, const char *why)
{
	struct run_ctx *x = ctx;
	struct cbor_val d;

	(void)err;
	(void)why;
	if (!f)
		return 0;
	if (msb_frame_is(f, "core.exec.stdout")) {
		if (frame_data(&d, f))
			return -EPROTO;
		if (x->out && strbuf_add(x->out, d.data, d.len)) {
			sbx_failf("the output is over %zu bytes", x->out->max);
			return -EFBIG;
		}
	} else if (msb_frame_is(f, "core.exec.stderr")) {
		if (frame_data(&d, f))
			return -EPROTO;
		if (x->err.len < ERR_KEEP)
			strbuf_add(&x->err, d.data,
				   d.len < ERR_KEEP - x->err.len ? d.len
								 : ERR_KEEP - x->err.len);
	} else if (msb_frame_is(f, "core.exec.exited")) {
		if (frame_code(&x->code, f))
			return -EPROTO;
		x->exited = 1;
	} else if (msb_frame_is(f, "core.exec.failed")) {
		failed_text(x->failed, sizeof(x->failed), f);
	}
	return 0; /* started, stdin.error: nothing to do */
}

/* Run once; 0 when the script ran to its end (x->code). */
static int run_once(struct msb *m, const char *box, const char *what, const char *script,
		    struct run_ctx *x)
{
	const char *args[] = { "-c", script, NULL };
	struct strbuf p = STRBUF_INIT(SIZE_MAX), eof = STRBUF_INIT(64);
	struct strbuf wrapped = STRBUF_INIT(SIZE_MAX);
	struct msb_runtime rt;
	struct msb_sess *s = NULL;
	int rc = msb_runtime_of(m, &rt, box);

	if (rc)
		return rc;
	/* The agent's strings are UTF-8 text: a script that names a file
	 * whose name is other bytes travels as base64. */
	if (!json_utf8_valid(script)) {
		rc = sh_wrap_base64(&wrapped, NULL, script);
		args[1] = wrapped.buf;
	}
	if (!rc)
		rc = exec_payload(&p, &rt, args, 0);
	msb_runtime_release(&rt);
	if (!rc)
		rc = data_payload(&eof, NULL, 0);
	if (!rc)
		rc = msb_sess_open(m, &s, box, "core.exec.request", &p, run_frame, x);
	/* Scripts read no stdin: end it at once. */
	if (!rc)
		rc = msb_sess_send(s, "core.exec.stdin", &eof);
	if (!rc)
		rc = msb_sess_wait(s, m->r.timeout_ms);
	msb_sess_close(s);
	strbuf_release(&p);
	strbuf_release(&eof);
	strbuf_release(&wrapped);
	if (!rc && x->failed[0]) {
		sbx_failf("microsandbox: %s: the shell could not start: %s", what,
			  x->failed);
		rc = -EIO;
	} else if (!rc && (!x->exited || x->code < 0)) {
		sbx_failf("microsandbox: %s: the shell was killed", what);
		rc = -EIO;
	}
	return rc;
}

int msb_run(struct remote *r, const char *box, const char *what, const char *script,
	    int flags, struct strbuf *out)
{
	struct msb *m = (struct msb *)r;
	struct run_ctx x = { .out = out, .err = STRBUF_INIT(ERR_KEEP + 1) };
	int rc = run_once(m, box, what, script, &x);

	if (rc == -ECONNRESET && (flags & REMOTE_RUN_RETRY) && !sbx_interrupted()) {
		if (out)
			out->len = 0;
		x.err.len = 0;
		x.exited = 0;
		rc = run_once(m, box, what, script, &x);
	}
	if (!rc && x.code) {
		rc = sh_exit_errno((long)x.code);
		if (rc > 0) {
			char e[300];

			json_text(e, sizeof(e), x.err.buf, sizeof(e) - 1);
			sbx_failf("microsandbox: %s: exit %d%s%s", what, (int)x.code,
				  e[0] ? ": " : "", e);
			rc = -EIO;
		}
	}
	strbuf_release(&x.err);
	return rc;
}

/* ---- commands ---- */

struct msb_cmd {
	struct msb *m;
	struct msb_sess *s;
	struct sbx_cmd_sink *sink;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t cond;
	int started;   /* core.exec.started came */
	int ended;     /* the sink was told (or the start failed) */
	int stdin_err; /* a write to stdin failed: -EPIPE */
	int signalled; /* the last signal sent */
	char failed[200];
};

/* The end of a command, to its sink.  Called once, on the reader. */
static void cmd_end(struct msb_cmd *c, const struct sbx_exit *ex)
{
	int tell;

	pthread_mutex_lock(&c->lock);
	tell = c->started && !c->ended;
	c->ended = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (tell)
		c->sink->done(c->sink, ex);
}

static int cmd_frame(void *ctx, const struct msb_frame *f, int err, const char *why)
{
	struct msb_cmd *c = ctx;
	struct sbx_exit ex = { 0 };
	struct cbor_val d;
	int64_t code;

	if (!f) {
		(void)err;
		if (cmdpoll_stopping(&c->m->r.cmds)) {
			cmdpoll_unmounted(&ex);
		} else {
			ex.how = SBX_EXIT_FAILED;
			snprintf(ex.reason, sizeof(ex.reason), "lost: %.140s", why);
		}
		snprintf(c->failed, sizeof(c->failed), "%s", why);
		cmd_end(c, &ex);
		return 0;
	}
	if (msb_frame_is(f, "core.exec.started")) {
		pthread_mutex_lock(&c->lock);
		c->started = 1;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	} else if (msb_frame_is(f, "core.exec.stdout") ||
		   msb_frame_is(f, "core.exec.stderr")) {
		if (frame_data(&d, f))
			return -EPROTO;
		if (d.len)
			c->sink->output(c->sink,
					msb_frame_is(f, "core.exec.stdout")
						? SBX_STREAM_STDOUT
						: SBX_STREAM_STDERR,
					(const char *)d.data, d.len);
	} else if (msb_frame_is(f, "core.exec.exited")) {
		int sig = __atomic_load_n(&c->signalled, __ATOMIC_RELAXED);

		if (frame_code(&code, f))
			return -EPROTO;
		if (code >= 0) {
			cmdpoll_exit(&ex, (long)code, sig);
		} else if (sig) {
			ex.how = SBX_EXIT_SIGNAL;
			ex.code = sig;
		} else {
			ex.how = SBX_EXIT_FAILED;
			snprintf(ex.reason, sizeof(ex.reason),
				 "killed by a signal the agent does not name");
		}
		cmd_end(c, &ex);
	} else if (msb_frame_is(f, "core.exec.failed")) {
		failed_text(c->failed, sizeof(c->failed), f);
		cmd_end(c, &ex); /* not started: the sink is not told */
	} else if (msb_frame_is(f, "core.exec.stdin.error")) {
		__atomic_store_n(&c->stdin_err, -EPIPE, __ATOMIC_RELAXED);
	}
	return 0;
}

int msb_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		  const char *cmdline, struct sbx_cmd_sink *sink)
{
	struct msb *m = MSB(p);
	struct msb_cmd *c = calloc(1, sizeof(*c));
	/* A shell under the command's, so that the exit status of a command
	 * killed by a signal is 128 + N, as other shells report it. */
	const char *args[] = { "-c", "/bin/sh -c \"$1\"; exit $?", "sh", cmdline, NULL };
	struct strbuf pl = STRBUF_INIT(SIZE_MAX), wrapped = STRBUF_INIT(SIZE_MAX);
	struct msb_runtime rt;
	long deadline;
	int rc = 0;

	if (!c)
		return -ENOMEM;
	c->m = m;
	c->sink = sink;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	/* A command line that is not UTF-8 travels as base64. */
	if (!json_utf8_valid(cmdline)) {
		rc = sh_wrap_base64(&wrapped, NULL, cmdline);
		if (!rc)
			rc = strbuf_addf(&wrapped, "; exit $?");
		args[1] = wrapped.buf;
		args[2] = NULL;
	}
	if (!rc)
		rc = msb_runtime_of(m, &rt, box);
	if (!rc) {
		rc = exec_payload(&pl, &rt, args, 1);
		msb_runtime_release(&rt);
	}
	if (!rc)
		rc = msb_sess_open(m, &c->s, box, "core.exec.request", &pl, cmd_frame, c);
	strbuf_release(&pl);
	strbuf_release(&wrapped);
	if (rc)
		goto fail;
	/* Wait for started or failed, bounded. */
	deadline = (long)time(NULL) + (m->r.timeout_ms + 999) / 1000;
	pthread_mutex_lock(&c->lock);
	while (!c->started && !c->ended && (long)time(NULL) < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	if (!c->started) {
		c->ended = 1; /* a late start tells nobody */
		rc = c->failed[0] ? -EIO : -ETIMEDOUT;
		if (c->failed[0])
			sbx_failf("microsandbox: the command could not start: %s",
				  c->failed);
		else
			sbx_failf("microsandbox: sandbox \"%s\" did not start the "
				  "command within %d s",
				  box, m->r.timeout_ms / 1000);
	}
	pthread_mutex_unlock(&c->lock);
	if (rc)
		goto fail;
	*handle = c;
	return 0;
fail:
	msb_sess_close(c->s);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	return rc;
}

ssize_t msb_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		      const volatile int *interrupted)
{
	struct msb_cmd *c = handle;
	size_t done = 0;
	int rc = 0;

	(void)p;
	do {
		struct strbuf pl = STRBUF_INIT(STDIN_CHUNK + 64);
		size_t n = len - done < STDIN_CHUNK ? len - done : STDIN_CHUNK;
		int ended;

		pthread_mutex_lock(&c->lock);
		ended = c->ended;
		pthread_mutex_unlock(&c->lock);
		if (ended || __atomic_load_n(&c->stdin_err, __ATOMIC_RELAXED))
			return done ? (ssize_t)done : -EPIPE;
		if (interrupted && *interrupted)
			return done ? (ssize_t)done : -EINTR;
		rc = data_payload(&pl, data + done, n);
		if (!rc)
			rc = msb_sess_send(c->s, "core.exec.stdin", &pl);
		strbuf_release(&pl);
		if (rc)
			return done ? (ssize_t)done : rc == -ECONNRESET ? -EPIPE : rc;
		done += n;
	} while (done < len);
	return (ssize_t)len;
}

int msb_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct msb_cmd *c = handle;
	struct strbuf pl = STRBUF_INIT(64);
	int rc;

	(void)p;
	__atomic_store_n(&c->signalled, sig, __ATOMIC_RELAXED);
	rc = cbor_put_map(&pl, 1);
	if (!rc)
		rc = cbor_put_text(&pl, "signal");
	if (!rc)
		rc = cbor_put_int(&pl, sig);
	if (!rc)
		rc = msb_sess_send(c->s, "core.exec.signal", &pl);
	strbuf_release(&pl);
	return rc == -ECONNRESET ? -ESRCH : rc;
}

void msb_cmd_release(struct sbx_provider *p, void *handle)
{
	struct msb_cmd *c = handle;

	(void)p;
	msb_sess_close(c->s);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}
