/* SPDX-License-Identifier: MIT */
/*
 * Docker: scripts and commands through the exec API.
 *
 * A script (the remote layer's run) goes to a shell kept open in the
 * container (keptsh.h): an exec of /bin/sh with stdin, created and then
 * started without a terminal on a connection taken over after its answer
 * (http_conn.c), whose multiplexed stdout and stderr are demultiplexed
 * as they come.  Opening one is two requests and a process the engine
 * starts; each script on it then is one round trip.  A command of cmd/N
 * goes to a spare shell opened ahead, if one is ready: one write of its
 * line, its output then on that shell's stream, and cmd/N/stdin writes
 * to it; else it is an exec of its own with stdin, started the same way
 * (two requests).  A thread of the provider's cmdpoll group reads its
 * output until the end mark of its wrapper has come on both streams
 * (endmark.h), and asks the exec's inspect only if the stream ended
 * without it (the command was killed with its wrapper).
 *
 * The exec API has no call to signal an exec: a command's processes
 * carry a marker in their environment, and a script signals them
 * (sh_signal_marked()).
 */
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "sbxfs/remote/endmark.h"
#include "sbxfs/remote/keptsh.h"
#include "sbxfs/remote/shell.h"

#define SCRIPT_ARG_MAX (120u << 10) /* under Linux's 128 KiB for one argument */
#define READ_STEP_MS 500

/* POST /containers/{box}/exec of /bin/sh with `args` (NULL-terminated)
 * and `env` ("NAME=VALUE", may be NULL); the exec's id into id. */
static int exec_create(struct dk *dk, char *id, const char *box, const char *what,
		       const char *const args[], const char *env, int with_stdin)
{
	static const struct errmap over[] = { { 409, EAGAIN }, { 404, EIO }, { 0, 0 } };
	cJSON *body = cJSON_CreateObject(), *cmd, *j;
	const char *v;
	int rc, i;

	cmd = cJSON_AddArrayToObject(body, "Cmd");
	cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
	for (i = 0; args[i]; i++) {
		struct strbuf wrapped = STRBUF_INIT(SCRIPT_ARG_MAX * 2);
		const char *a = args[i];

		/* The engine reads JSON as UTF-8 and would turn other bytes
		 * (a name's) into U+FFFD: such a script travels as base64. */
		if (!json_utf8_valid(a)) {
			if (sh_wrap_base64(&wrapped, NULL, a))
				wrapped.len = SCRIPT_ARG_MAX + 1;
			a = wrapped.buf ? wrapped.buf : "";
		}
		if (strlen(a) > SCRIPT_ARG_MAX || wrapped.len > SCRIPT_ARG_MAX) {
			strbuf_release(&wrapped);
			cJSON_Delete(body);
			sbx_failf("docker: %s: a script of %zu bytes is over %u", what,
				  strlen(args[i]), SCRIPT_ARG_MAX);
			return -E2BIG;
		}
		cJSON_AddItemToArray(cmd, cJSON_CreateString(a));
		strbuf_release(&wrapped);
	}
	if (env)
		cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "Env"),
				     cJSON_CreateString(env));
	cJSON_AddBoolToObject(body, "AttachStdin", with_stdin);
	cJSON_AddBoolToObject(body, "AttachStdout", 1);
	cJSON_AddBoolToObject(body, "AttachStderr", 1);
	rc = dk_call(dk, &j, "POST", box, "/exec", body, 0, what, over);
	cJSON_Delete(body);
	/* Podman answers 500 where Docker says 409: ask. */
	if (rc == -EIO && !dk_running_now(dk, box))
		rc = -EAGAIN;
	if (!rc && (!(v = json_str(j, "Id")) || !v[0] || strlen(v) >= DK_ID_MAX ||
		    strspn(v, "0123456789abcdef") != strlen(v))) {
		sbx_failf("docker: %s: the answer is not a new exec", what);
		rc = -EPROTO;
	} else if (!rc) {
		snprintf(id, DK_ID_MAX, "%s", v);
	}
	cJSON_Delete(j);
	return rc;
}

/* GET /exec/{id}/json until the exec has ended: its exit code. */
static int exec_code(struct dk *dk, int *code, const char *id, const char *what)
{
	struct timespec pause = { 0, 5 * 1000000L };
	char path[DK_ID_MAX + 16];
	int tries;

	snprintf(path, sizeof(path), "/exec/%s/json", id);
	for (tries = 0; tries < 40; tries++) {
		double d;
		cJSON *j;
		int rc = dk_call(dk, &j, "GET", NULL, path, NULL, REMOTE_REQ_IDEMPOTENT,
				 what, NULL);

		if (!rc && !cJSON_IsObject(j)) {
			sbx_failf("docker: %s: the exec's inspect is not an object",
				  what);
			rc = -EPROTO;
		}
		if (rc) {
			cJSON_Delete(j);
			return rc;
		}
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "Running")) &&
		    json_num(j, "ExitCode", &d)) {
			cJSON_Delete(j);
			*code = d >= 0 && d < 256 ? (int)d : 255;
			return 0;
		}
		cJSON_Delete(j);
		/* The stream can end just before the engine notes the exit. */
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 200 * 1000000L)
			pause.tv_nsec *= 2;
	}
	sbx_failf("docker: %s: the exec's stream ended but it still runs", what);
	return -EIO;
}

/* An exec of /bin/sh `args` with stdin (exec_create()), then POST
 * /exec/{id}/start without a terminal, on a connection taken over after
 * its answer: the exec's stdin, and its multiplexed output.  Its id into
 * id. */
static int exec_open(struct dk *dk, struct http_conn **conn, char *id, const char *box,
		     const char *what, const char *const args[])
{
	static const struct errmap over[] = { { 409, EAGAIN }, { 0, 0 } };
	const char *body = "{\"Detach\":false,\"Tty\":false}";
	struct strbuf url = STRBUF_INIT(4096);
	struct http_req req = HTTP_REQ_INIT;
	struct http_resp r;
	int rc = exec_create(dk, id, box, what, args, NULL, 1);

	if (rc)
		return rc;
	if (strbuf_addf(&url, "%s/exec/%s/start", dk->base, id))
		return -ENOMEM;
	req.method = "POST";
	req.url = url.buf;
	req.body = body;
	req.body_len = strlen(body);
	req.content_type = "application/json";
	rc = http_conn_open(dk->http, conn, &req, &r);
	if (!rc && !*conn)
		rc = dk_fail(what, &r, over);
	http_resp_release(&r);
	strbuf_release(&url);
	return rc;
}

/* ---- scripts ---- */

/*
 * Scripts run on kept shells (keptsh.h): an exec of /bin/sh with stdin,
 * started once (two requests) and kept, each script then one round trip
 * on its stream and no process start by the engine.
 */
struct dk_shell {
	struct http_conn *conn;
	char id[DK_ID_MAX]; /* the exec's */
	struct dk_demux demux;
	keptsh_out_fn out;
	void *ctx;
};

static int shell_output(void *ctx, int stream, const char *buf, size_t len);

static int shell_open(void *ctx, const char *box, const char *command, void **stream)
{
	const char *const args[] = { command ? "-c" : NULL, command, NULL };
	struct dk *dk = ctx;
	struct dk_shell *sh = calloc(1, sizeof(*sh));
	int rc;

	if (!sh)
		return -ENOMEM;
	dk_demux_init(&sh->demux, shell_output, sh);
	rc = exec_open(dk, &sh->conn, sh->id, box, "open a shell", args);
	if (rc) {
		free(sh);
		return rc;
	}
	*stream = sh;
	return 0;
}

static int shell_write(void *stream, const char *buf, size_t len)
{
	ssize_t n = http_conn_write(((struct dk_shell *)stream)->conn, buf, len, NULL);

	return n < 0 ? (int)n : 0;
}

static int shell_output(void *ctx, int stream, const char *buf, size_t len)
{
	struct dk_shell *sh = ctx;

	if (stream == 1 || stream == 2)
		sh->out(sh->ctx, stream == 1 ? SBX_STREAM_STDOUT : SBX_STREAM_STDERR, buf,
			len);
	return 0;
}

static int shell_read(void *stream, int timeout_ms, keptsh_out_fn out, void *ctx)
{
	struct dk_shell *sh = stream;
	char buf[65536];
	ssize_t n = http_conn_read(sh->conn, buf, sizeof(buf), timeout_ms, NULL);
	int rc;

	if (n <= 0)
		return (int)n;
	sh->out = out;
	sh->ctx = ctx;
	rc = dk_demux_feed(&sh->demux, buf, (size_t)n);
	return rc ? rc : 1;
}

static void shell_close(void *stream)
{
	struct dk_shell *sh = stream;

	http_conn_close(sh->conn);
	free(sh);
}

const struct keptsh_ops dk_shell_ops = {
	.open = shell_open,
	.write = shell_write,
	.read = shell_read,
	.close = shell_close,
};

int dk_run(struct remote *r, const char *box, const char *what, const char *script,
	   int flags, struct strbuf *out)
{
	int rc = keptsh_run(&((struct dk *)r)->shells, box, what, script, flags, out);

	if (rc == -EAGAIN) {
		/* A stopped container's files are shown read-only. */
		sbx_failf("docker: %s: container \"%s\" is not running: its files "
			  "are read-only",
			  what, box);
		rc = -EROFS;
	}
	return rc;
}

/* ---- commands ---- */

struct dk_cmd {
	struct dk *dk;
	char box[SBX_NAME_MAX + 1];
	char exec_id[DK_ID_MAX];
	char token[64]; /* SH_CMD_ENV's value: marks the command's processes */
	struct http_conn *conn;
	struct sbx_cmd_sink *sink;
	struct dk_demux demux;
	struct endmark_cmd end; /* the output, without its end mark */
	int signalled;		/* the last signal sent, for the exit status */
};

/* The command's output, without the end mark of its wrapper. */
static int cmd_output(void *ctx, int stream, const char *buf, size_t len)
{
	struct dk_cmd *c = ctx;

	if (stream == 1 || stream == 2)
		endmark_cmd_output(&c->end,
				   stream == 1 ? SBX_STREAM_STDOUT : SBX_STREAM_STDERR,
				   buf, len);
	return 0;
}

static void *follow(void *arg)
{
	struct dk_cmd *c = arg;
	struct dk *dk = c->dk;
	struct sbx_exit ex = { 0 };
	char buf[65536];
	int code, rc = 0;

	for (;;) {
		ssize_t n;

		if (cmdpoll_stopping(&c->dk->r.cmds)) {
			cmdpoll_unmounted(&ex);
			break;
		}
		n = http_conn_read(c->conn, buf, sizeof(buf), READ_STEP_MS, NULL);
		if (n == -ETIMEDOUT)
			continue;
		if (n > 0)
			rc = dk_demux_feed(&c->demux, buf, (size_t)n);
		if (n < 0 || rc) {
			cmdpoll_lost(&ex);
			break;
		}
		if (endmark_cmd_ended(&c->end, &code)) {
			/* Its wrapper said how it ended: no inspect. */
			cmdpoll_exit(&ex, code,
				     __atomic_load_n(&c->signalled, __ATOMIC_RELAXED));
			break;
		}
		if (n == 0) {
			endmark_cmd_flush(&c->end);
			rc = exec_code(c->dk, &code, c->exec_id, "command");
			if (rc)
				cmdpoll_lost(&ex);
			else
				cmdpoll_exit(
					&ex, code,
					__atomic_load_n(&c->signalled, __ATOMIC_RELAXED));
			break;
		}
	}
	/* done may release the handle: c is not to be touched after it. */
	c->sink->done(c->sink, &ex);
	cmdpoll_leave(&dk->r.cmds);
	return NULL;
}

/*
 * Start c on a spare shell (keptsh.h) if one is ready: one write of its
 * line, no request.  The line ends the shell, so what follows on its
 * stdin is the command's.  0, or -ENOENT when there was no spare or the
 * line could not go out (the launcher runs nothing without its newline):
 * the caller then makes the command's own exec.
 */
static int start_on_spare(struct dk *dk, struct dk_cmd *c, const char *env,
			  const char *cmdline)
{
	struct strbuf line = STRBUF_INIT(SCRIPT_ARG_MAX);
	struct dk_shell *sh;
	void *stream;
	int rc;

	/* A command over one argument's bound fails in its own exec. */
	if (strlen(cmdline) > SCRIPT_ARG_MAX / 2 ||
	    keptsh_take_spare(&dk->shells, c->box, &stream))
		return -ENOENT;
	sh = stream;
	/* One line: a command of many goes as base64. */
	if (strchr(cmdline, '\n'))
		rc = sh_wrap_base64(&line, env, cmdline);
	else
		rc = strbuf_addf(&line, "%s /bin/sh -c ", env) ||
		     sh_quote(&line, cmdline);
	if (!rc)
		rc = endmark_script(&c->end.stream[0], &line) ||
		     strbuf_addf(&line, "; exit $sbxfs_s\n");
	if (!rc)
		rc = shell_write(sh, line.buf, line.len);
	strbuf_release(&line);
	if (rc) {
		shell_close(sh);
		return -ENOENT;
	}
	c->conn = sh->conn;
	snprintf(c->exec_id, sizeof(c->exec_id), "%s", sh->id);
	free(sh);
	return 0;
}

int dk_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink)
{
	static unsigned long counter;
	struct dk *dk = DK(p);
	struct dk_cmd *c = calloc(1, sizeof(*c));
	struct strbuf wrapper = STRBUF_INIT(4096);
	const char *args[] = { "-c", NULL, "sh", cmdline, NULL };
	char env[96];
	int rc;

	if (!c)
		return -ENOMEM;
	c->dk = dk;
	c->sink = sink;
	snprintf(c->box, sizeof(c->box), "%s", box);
	snprintf(c->token, sizeof(c->token), "%lx.%d.%lu", (unsigned long)time(NULL),
		 (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	snprintf(env, sizeof(env), SH_CMD_ENV "%s", c->token);
	dk_demux_init(&c->demux, cmd_output, c);
	/* The command runs under a shell that ends both streams with an
	 * end mark: the stream itself says how it ended. */
	rc = endmark_cmd_init(&c->end, c->token, sink);
	if (!rc && (strbuf_addf(&wrapper, "%s /bin/sh -c \"$1\"", env) ||
		    endmark_script(&c->end.stream[0], &wrapper) ||
		    strbuf_addf(&wrapper, "; exit $sbxfs_s")))
		rc = -ENOMEM;
	args[1] = wrapper.buf;
	/* Only the command carries the marker that kill looks for: its
	 * wrapper lives on to tell how it ended. */
	if (!rc && start_on_spare(dk, c, env, cmdline))
		rc = exec_open(dk, &c->conn, c->exec_id, box, "start command", args);
	if (rc)
		goto fail;
	rc = cmdpoll_start(&dk->r.cmds, follow, c);
	if (rc)
		goto fail;
	strbuf_release(&wrapper);
	*handle = c;
	return 0;
fail:
	if (rc == -EAGAIN)
		sbx_failf("docker: container \"%s\" is not running", box);
	strbuf_release(&wrapper);
	http_conn_close(c->conn);
	free(c);
	return rc;
}

ssize_t dk_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted)
{
	struct dk_cmd *c = handle;
	int rc;

	(void)p;
	if (len)
		return http_conn_write(c->conn, data, len, interrupted);
	rc = http_conn_shutdown_write(c->conn);
	return rc == -ENOTSUP ? 0 : rc;
}

int dk_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct dk_cmd *c = handle;

	__atomic_store_n(&c->signalled, sig, __ATOMIC_RELAXED);
	return remote_signal_marked(&DK(p)->r, c->box, c->token, sig);
}

void dk_cmd_release(struct sbx_provider *p, void *handle)
{
	struct dk_cmd *c = handle;

	(void)p;
	http_conn_close(c->conn);
	free(c);
}
