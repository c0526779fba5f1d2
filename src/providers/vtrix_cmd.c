/* SPDX-License-Identifier: MIT */
/*
 * Vtrix: commands (cmd/N).  See vtrix.c.
 *
 * A command starts with a detached exec, so it outlives the call (and the
 * socket); the answer is its cmd_id.  A follower thread then holds an
 * exec_logs call open: the server replays what the command wrote so far
 * and streams the rest as exec.stdout/exec.stderr notifications, and
 * answers with the exit code once the command has ended.  The replay
 * keeps only the last 512 KiB, so the command waits at a gate (a file it
 * polls for) until exec_logs is under way: nothing it writes is lost to
 * the gap between the two calls.  The gate opens with a write_binary of
 * an empty file (tried three times); past 30 s the command runs anyway.
 * If the socket drops, the call fails, or it stays silent for long, the
 * follower asks again (a command failing 8 calls in a row is lost) and
 * skips the bytes it already passed on (the replay buffer keeps the last
 * 512 KiB; output lost beyond it is noted).  kill is the `kill` call with
 * the signal's name.
 *
 * stdin: Vtrix writes "stdin_data" before the command starts and has no
 * call to write more, so commands start with stdin at end of file and a
 * write to cmd/N/stdin fails with EPIPE.
 */
#include <signal.h>

#include "vtrix.h"

#define FOLLOW_IDLE_MS (120 * 1000) /* ask again after this long in silence */
#define FOLLOW_RETRIES 8	    /* failed exec_logs calls in a row: lost */
#define CMD_ID_MAX 128
#define GATE_TRIES 3 /* writes of a command's gate before it waits 30 s */

struct vcmd {
	struct vx *vx;
	char gate[96]; /* the file that lets the command run */
	int gate_open;
	char box[SBX_NAME_MAX + 1];
	char id[CMD_ID_MAX];
	struct sbx_cmd_sink *sink;
	int signalled; /* the last signal sent; atomic */

	/* The follower's, while an exec_logs call runs. */
	unsigned long long passed; /* output bytes passed to the sink */
	unsigned long long seen;   /* output bytes of this call's replay */
};

/* exec.stdout / exec.stderr: pass on what was not passed before. */
static int on_output(void *arg, const char *method, const cJSON *params)
{
	struct vcmd *c = arg;
	enum sbx_stream s;
	const char *data = json_str(params, "data");
	size_t len, skip = 0;

	if (!strcmp(method, "exec.stdout"))
		s = SBX_STREAM_STDOUT;
	else if (!strcmp(method, "exec.stderr"))
		s = SBX_STREAM_STDERR;
	else
		return 0; /* exec.start, exec.done: the answer says it all */
	if (!data)
		return 0;
	len = strlen(data);
	if (c->seen < c->passed)
		skip = c->passed - c->seen < len ? (size_t)(c->passed - c->seen) : len;
	c->seen += len;
	if (len > skip) {
		c->sink->output(c->sink, s, data + skip, len - skip);
		c->passed += len - skip;
	}
	return 0;
}

/* Let the command run: the gate file, made empty.  A failure only costs
 * the command its 30 s wait. */
/* Let the command run: write its gate, an empty file (the same write
 * again is harmless, so a failure is tried again).  0, or -errno. */
static int open_gate(struct vcmd *c)
{
	struct strbuf params = STRBUF_INIT(4096);
	int rc = strbuf_addf(&params, "{\"path\":\"%s\",\"data\":\"\"}", c->gate);

	for (int tries = 0; !rc && tries < GATE_TRIES; tries++) {
		rc = vx_call(c->vx, NULL, c->box, "write_binary", params.buf, params.len,
			     NULL);
		if (!rc)
			break;
		if (tries + 1 < GATE_TRIES)
			rc = 0; /* once more */
	}
	if (rc)
		sbx_warn("vtrix: %s: a command waits 30 s: %s", c->box, sbx_fail_text());
	strbuf_release(&params);
	return rc;
}

/* The command as the sandbox runs it: wait at the gate, then become the
 * user's shell (same process, so kill and exit codes are the user's). */
static int gated_script(struct strbuf *sb, const struct vcmd *c, const char *cmdline)
{
	int rc = strbuf_addf(
		sb,
		"g=%s; i=0; while [ ! -e \"$g\" ] && [ $i -lt 600 ]; do "
		"sleep 0.05; i=$((i+1)); done; rm -f \"$g\"; exec /bin/sh -c ",
		c->gate);

	return rc ? rc : sh_quote(sb, cmdline);
}

/* One exec_logs call: 1 with *ex set when the command has ended, 0 to
 * ask again, -errno on failure. */
static int follow_once(struct vcmd *c, struct sbx_exit *ex)
{
	struct vx_call_opts o = { .note = on_output,
				  .ctx = c,
				  .idle_ms = FOLLOW_IDLE_MS };
	cJSON *params = cJSON_CreateObject(), *res = NULL;
	struct vx_pending *pd;
	char *text;
	double code;
	int rc, sig;

	if (!params)
		return -ENOMEM;
	cJSON_AddStringToObject(params, "cmd_id", c->id);
	c->seen = 0;
	text = cJSON_PrintUnformatted(params);
	cJSON_Delete(params);
	if (!text)
		return -ENOMEM;
	rc = vx_submit(c->vx, &pd, c->box, "exec_logs", text, strlen(text), &o);
	free(text);
	if (rc)
		return rc;
	if (!c->gate_open)
		c->gate_open = open_gate(c) == 0;
	rc = vx_wait(pd, &res);
	if (rc == -ETIMEDOUT) {
		cJSON_Delete(res);
		return 0; /* silence: ask again (replayed bytes are skipped) */
	}
	if (rc)
		return rc;
	if (c->seen < c->passed && c->seen > 0)
		sbx_debug("vtrix: %s: command %s: output lost past the replay buffer",
			  c->box, c->id);
	if (!json_num(res, "exit_code", &code)) {
		cJSON_Delete(res);
		return 0; /* not ended (a timeout on the server's side) */
	}
	if (code < -1000000 || code > 1000000) {
		cJSON_Delete(res);
		sbx_failf("vtrix: exec_logs: exit code %g is not one", code);
		return -EIO;
	}
	cJSON_Delete(res);
	sig = __atomic_load_n(&c->signalled, __ATOMIC_ACQUIRE);
	cmdpoll_exit(ex, (long)code, sig);
	return 1;
}

static void *follower(void *arg)
{
	struct vcmd *c = arg;
	struct vx *vx = c->vx;
	struct sbx_exit ex = { .how = SBX_EXIT_FAILED };
	int failures = 0;

	for (;;) {
		int rc;

		if (cmdpoll_stopping(&vx->r.cmds)) {
			cmdpoll_unmounted(&ex);
			break;
		}
		rc = follow_once(c, &ex);
		if (rc == 1)
			break;
		if (rc == 0) {
			failures = 0;
			continue;
		}
		if (cmdpoll_stopping(&vx->r.cmds))
			continue;
		rc = vx_not_active(vx, c->box, rc);
		if (rc == -EAGAIN) {
			snprintf(ex.reason, sizeof(ex.reason),
				 "the sandbox stopped under it");
			break;
		}
		/* A server error, or a command the server no longer knows
		 * (the same -32000): asked again, then lost. */
		if (++failures >= FOLLOW_RETRIES) {
			cmdpoll_lost(&ex);
			break;
		}
		sleep(1);
	}
	c->sink->done(c->sink, &ex); /* may release c: touch it no more */
	cmdpoll_leave(&vx->r.cmds);
	return NULL;
}

/* The cmd_id of a detached exec's answer; -EPROTO if there is none we
 * would put in a request. */
static int take_id(struct vcmd *c, const cJSON *res)
{
	const char *id = json_str(res, "cmd_id");
	size_t n = id ? strlen(id) : 0;

	if (!n || n >= sizeof(c->id) ||
	    strspn(id,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:") !=
		    n) {
		sbx_failf("vtrix: exec: no usable cmd_id in the answer");
		return -EPROTO;
	}
	memcpy(c->id, id, n + 1);
	return 0;
}

int vx_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink)
{
	struct vx *vx = VX(p);
	static unsigned long seq;
	struct vcmd *c = calloc(1, sizeof(*c));
	struct strbuf cmd = STRBUF_INIT(1u << 20), script = STRBUF_INIT(1u << 20);
	cJSON *params = cJSON_CreateObject(), *res = NULL;
	int rc;

	if (c)
		snprintf(c->gate, sizeof(c->gate), "/tmp/.sbxfs-go-%d-%lx-%lu",
			 (int)getpid(), (unsigned long)time(NULL),
			 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	rc = (c && params) ? gated_script(&script, c, cmdline) : -ENOMEM;
	if (!rc && !json_utf8_valid(script.buf))
		rc = sh_wrap_base64(&cmd, NULL, script.buf);
	if (rc)
		goto fail;
	c->vx = vx;
	c->sink = sink;
	snprintf(c->box, sizeof(c->box), "%s", box);
	/* JSON text is UTF-8: other bytes travel base64-wrapped. */
	cJSON_AddStringToObject(params, "command", cmd.len ? cmd.buf : script.buf);
	cJSON_AddBoolToObject(params, "detached", 1);
	rc = vx_call_json(vx, &res, box, "exec", params, NULL);
	if (rc) {
		rc = vx_not_active(vx, box, rc);
		goto fail;
	}
	rc = take_id(c, res);
	if (!rc)
		rc = cmdpoll_start(&vx->r.cmds, follower, c);
	if (rc)
		goto fail;
	*handle = c;
	cJSON_Delete(res);
	cJSON_Delete(params);
	strbuf_release(&cmd);
	strbuf_release(&script);
	return 0;
fail:
	cJSON_Delete(res);
	cJSON_Delete(params);
	strbuf_release(&cmd);
	strbuf_release(&script);
	free(c);
	return rc;
}

/* "SIGTERM" for SIGTERM, ...; NULL for a number with no name. */
static const char *signal_name(int sig, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np(sig);

	if (!abbrev)
		return NULL;
	snprintf(buf, size, "SIG%s", abbrev);
	return buf;
}

/* Vtrix closes a command's stdin once it has written stdin_data, before
 * the start: there is no stdin left to write to (as a pipe whose reader
 * is gone).  Closing it (len 0) is nothing to do. */
ssize_t vx_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted)
{
	if (len == 0)
		return 0;
	sbx_failf("vtrix: a command's stdin is closed when it starts (Vtrix takes "
		  "stdin only before the start)");
	return -EPIPE;
}

int vx_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct vcmd *c = handle;
	cJSON *params;
	char name[32];
	int rc;

	if (sig <= 0 || sig > 64 || !signal_name(sig, name, sizeof(name))) {
		sbx_failf("vtrix: kill: signal %d has no name Vtrix would take", sig);
		return -EINVAL;
	}
	params = cJSON_CreateObject();
	if (!params)
		return -ENOMEM;
	cJSON_AddStringToObject(params, "cmd_id", c->id);
	cJSON_AddStringToObject(params, "signal", name);
	__atomic_store_n(&c->signalled, sig, __ATOMIC_RELEASE);
	rc = vx_call_json(c->vx, NULL, c->box, "kill", params, NULL);
	cJSON_Delete(params);
	return rc ? vx_not_active(c->vx, c->box, rc) : 0;
}

void vx_cmd_release(struct sbx_provider *p, void *handle)
{
	free(handle);
}
