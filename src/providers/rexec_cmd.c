/* SPDX-License-Identifier: MIT */
/*
 * Rexec: commands.  See rexec.c for the overview.
 *
 * Neither transport streams: the exec endpoint answers once the command
 * has ended (at most 1 MiB, at most 300 s), and terminal output is not
 * byte-exact.  So a command runs detached in the container, under a
 * directory of its own (/var/tmp/.sbxfs/cmd/ID):
 *
 *   in      a fifo, the command's stdin; a "keeper" process holds it open
 *           until stdin is closed, so the command sees EOF only then
 *   out,err the command's stdout and stderr, as files
 *   pid     the command's process group (setsid), for signals
 *   rc      its exit status, written once it has ended
 *
 * The keeper and the waiter (which records rc) run in sessions of their
 * own, so that neither a terminal that closes nor a kill of the command's
 * process group takes them along; the command gets SIGINT and SIGQUIT
 * back (a background job starts with them ignored) where env(1) can.
 *
 * Every step is a short script (rexec_run.c): the launch, which also
 * waits up to half a second and returns the first output, so a quick
 * command costs one call; polls that return the output past the offsets
 * already seen (bounded per poll, base64 on the way, so binary output is
 * exact); stdin chunks written into the fifo; kill.  All of them can be
 * repeated after a dropped connection without harm: the launch starts
 * nothing twice, polls read from offsets, each stdin chunk is written
 * once (a marker file per chunk).  The directory is renamed to ID.done
 * by the poll that sees the end and all output, and launches remove
 * finished ones after ten minutes.  stdout and stderr are read from two
 * files, so `out` interleaves them per poll, not per write.
 */
#include "rexec.h"

#define STDIN_CHUNK (24 * 1024) /* twice base64-encoded under 128 KiB */
#define CMD_ROOT RX_WORK_DIR "/cmd"

struct rcmd {
	struct rx *rx;
	char box[SBX_NAME_MAX + 1];
	char dir[160];
	struct sbx_cmd_sink *sink;
	long long out_off, err_off;
	unsigned long stdin_seq;
	int signalled;
	/* What the launch already brought back (the poller starts with it). */
	struct strbuf first;
	int have_first;
};

/* The poll part of a script: one header line "RC NOUT NERR" (RC "-"
 * while running, "gone" if the directory vanished), then NOUT bytes of
 * stdout from the offset, NERR of stderr. */
static int add_poll(struct strbuf *s, const struct rcmd *c)
{
	return sh_script(
		s,
		"d=%q; o=%L; e=%L; [ -d \"$d\" ] || d=\"$d.done\"; "
		"[ -d \"$d\" ] || { echo gone 0 0; exit 0; }; "
		"r=-; [ -e \"$d/rc\" ] && r=$(cat \"$d/rc\"); "
		"so=$(wc -c < \"$d/out\"); se=$(wc -c < \"$d/err\"); "
		"no=$((so-o)); [ $no -gt %L ] && no=%L; [ $no -lt 0 ] && no=0; "
		"ne=$((se-e)); [ $ne -gt %L ] && ne=%L; [ $ne -lt 0 ] && ne=0; "
		"echo \"$r $no $ne\"; "
		"[ $no -gt 0 ] && tail -c +$((o+1)) \"$d/out\" | head -c $no; "
		"[ $ne -gt 0 ] && tail -c +$((e+1)) \"$d/err\" | head -c $ne; "
		"if [ \"$r\" != - ] && [ $((o+no)) -ge $so ] && [ $((e+ne)) -ge $se ] "
		"&& [ \"${d%%.done}\" = \"$d\" ]; then "
		"kill $(cat \"$d/keeper\" 2>/dev/null) 2>/dev/null; "
		"mv \"$d\" \"$d.done\"; fi; exit 0",
		c->dir, c->out_off, c->err_off, (long long)RX_POLL_OUT_MAX,
		(long long)RX_POLL_OUT_MAX, (long long)RX_POLL_ERR_MAX,
		(long long)RX_POLL_ERR_MAX);
}

/*
 * Take a poll's answer: pass output on, and return 1 with *code once the
 * command has ended and all output was read, 0 while it runs, -errno for
 * an answer that makes no sense or a command whose record is gone.
 */
static int take_poll(struct rcmd *c, const struct strbuf *a, int *code)
{
	struct rx_poll pl;
	int rc = rx_poll_parse(&pl, a->buf, a->len);

	if (rc < 0)
		return rc;
	if (pl.nout)
		c->sink->output(c->sink, SBX_STREAM_STDOUT, pl.out, pl.nout);
	if (pl.nerr)
		c->sink->output(c->sink, SBX_STREAM_STDERR, pl.err, pl.nerr);
	c->out_off += (long long)pl.nout;
	c->err_off += (long long)pl.nerr;
	if (rc == 1)
		*code = pl.code;
	return rc;
}

static int poll_once(struct rcmd *c, int *code)
{
	struct strbuf s = STRBUF_INIT(1u << 16);
	struct rx_out res;
	int rc;

	if (c->have_first) {
		c->have_first = 0;
		rc = take_poll(c, &c->first, code);
		strbuf_release(&c->first);
		return rc;
	}
	rx_out_init(&res, RX_POLL_OUT_MAX + RX_POLL_ERR_MAX + 4096);
	rc = add_poll(&s, c);
	if (!rc)
		rc = rx_run(c->rx, c->box, "command output", s.buf, REMOTE_RUN_RETRY,
			    &res);
	if (!rc && res.code != 0) {
		sbx_failf("rexec: command output: exit %d", res.code);
		rc = -EIO;
	}
	if (!rc)
		rc = take_poll(c, &res.out, code);
	rx_out_release(&res);
	strbuf_release(&s);
	return rc;
}

static int poll_step(void *cmd, int *code, int *progressed)
{
	struct rcmd *c = cmd;
	long long before = c->out_off + c->err_off;
	int rc = poll_once(c, code);

	*progressed = c->out_off + c->err_off != before;
	return rc;
}

/* A stopped container ends its commands. */
static int poll_failed(void *cmd, int rc, struct sbx_exit *ex)
{
	if (rc != -EAGAIN)
		return 0;
	cmdpoll_lost(ex);
	return 1;
}

static const struct cmdpoll_cmd poll_ops = {
	.poll = poll_step,
	.failed = poll_failed,
};

static void *poller(void *arg)
{
	struct rcmd *c = arg;
	struct rx *rx = c->rx;
	struct sbx_exit ex;

	cmdpoll_follow(&rx->r.cmds, &ex, &poll_ops, c, &c->signalled);
	c->sink->done(c->sink, &ex); /* may release c: touch it no more */
	cmdpoll_leave(&rx->r.cmds);
	return NULL;
}

static void rcmd_free(struct rcmd *c)
{
	strbuf_release(&c->first);
	free(c);
}

/* The launch (see the top): starts the command unless it was started,
 * waits up to half a second, then answers like a poll. */
static int launch(struct rcmd *c, const char *cmdline)
{
	struct strbuf s = STRBUF_INIT(1u << 20);
	struct rx_out res;
	int rc = sh_script(
		&s,
		"R=%q; d=%q; c=%q; mkdir -p \"$R\" || exit 5; "
		"find \"$R\" -maxdepth 1 -name '*.done' -mmin +10 -exec rm -rf {} + "
		"2>/dev/null; "
		"if ! [ -e \"$d/pid\" ]; then "
		"mkdir -p \"$d\" && mkfifo \"$d/in\" && : > \"$d/out\" && : > \"$d/err\" "
		"|| exit 5; "
		"E=; env --default-signal=INT true 2>/dev/null && "
		"E='env --default-signal=INT,QUIT'; "
		"setsid /bin/sh -c 'exec 3<>\"$0/in\"; exec sleep 2147483647' \"$d\" "
		"</dev/null >/dev/null 2>&1 & echo $! > \"$d/keeper\"; "
		"setsid /bin/sh -c '$2 setsid /bin/sh -c \"$1\" <\"$0/in\" >\"$0/out\" "
		"2>\"$0/err\" & p=$!; echo $p > \"$0/pid.t\"; mv \"$0/pid.t\" \"$0/pid\"; "
		"wait $p; echo $? > \"$0/rc.t\"; mv \"$0/rc.t\" \"$0/rc\"; "
		"kill $(cat \"$0/keeper\") 2>/dev/null' \"$d\" \"$c\" \"$E\" "
		"</dev/null >/dev/null 2>&1 & "
		"i=0; while ! [ -e \"$d/pid\" ] && [ $i -lt 200 ]; do sleep 0.01; "
		"i=$((i+1)); done; fi; "
		"i=0; while ! [ -e \"$d/rc\" ] && [ $i -lt 10 ]; do sleep 0.05; "
		"i=$((i+1)); done; ",
		CMD_ROOT, c->dir, cmdline);

	if (!rc)
		rc = add_poll(&s, c);
	if (rc) {
		strbuf_release(&s);
		return rc;
	}
	rx_out_init(&res, RX_POLL_OUT_MAX + RX_POLL_ERR_MAX + 4096);
	rc = rx_run(c->rx, c->box, "run command", s.buf, REMOTE_RUN_RETRY, &res);
	if (!rc && res.code != 0) {
		sbx_failf("rexec: run command: the launcher failed (exit %d)", res.code);
		rc = -EIO;
	}
	if (!rc) {
		c->first = res.out;
		res.out = (struct strbuf)STRBUF_INIT(0);
		c->have_first = 1;
	}
	rx_out_release(&res);
	strbuf_release(&s);
	return rc;
}

int rx_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		 const char *cmdline, struct sbx_cmd_sink *sink)
{
	struct rx *rx = RX(p);
	struct rcmd *c = calloc(1, sizeof(*c));
	unsigned long seq;
	int rc;

	if (!c)
		return -ENOMEM;
	pthread_mutex_lock(&rx->lock);
	seq = ++rx->seq;
	pthread_mutex_unlock(&rx->lock);
	c->rx = rx;
	c->sink = sink;
	snprintf(c->box, sizeof(c->box), "%s", box);
	snprintf(c->dir, sizeof(c->dir), "%s/%d-%lx-%lu", CMD_ROOT, (int)getpid(),
		 (unsigned long)time(NULL), seq);
	rc = launch(c, cmdline);
	if (rc) {
		rcmd_free(c);
		return rc;
	}
	rc = cmdpoll_start(&rx->r.cmds, poller, c);
	if (rc) {
		/* The command runs: stop it rather than leave it unseen. */
		remote_runf(&rx->r, box, "kill", REMOTE_RUN_RETRY, NULL,
			    "kill -9 -- -$(cat %q/pid) 2>/dev/null; exit 0", c->dir);
		rcmd_free(c);
		return rc;
	}
	*handle = c;
	return 0;
}

ssize_t rx_cmd_stdin(struct sbx_provider *p, void *handle, const char *data, size_t len,
		     const volatile int *interrupted)
{
	struct rcmd *c = handle;
	struct strbuf b64 = STRBUF_INIT(STDIN_CHUNK * 2);
	unsigned long seq;
	int rc;

	if (len == 0) /* EOF: the keeper lets go of the fifo */
		return remote_runf(
			&c->rx->r, c->box, "close stdin", REMOTE_RUN_RETRY, NULL,
			"d=%q; kill $(cat \"$d/keeper\" 2>/dev/null) 2>/dev/null; "
			"exit 0",
			c->dir);
	if (len > STDIN_CHUNK)
		len = STDIN_CHUNK;
	if (*interrupted)
		return -EINTR;
	seq = __atomic_add_fetch(&c->stdin_seq, 1, __ATOMIC_RELAXED);
	rc = b64_encode(&b64, data, len);
	if (!rc)
		rc = remote_runf(&c->rx->r, c->box, "stdin", REMOTE_RUN_RETRY, NULL,
				 "d=%q; [ -e \"$d/s.%L\" ] && exit 0; "
				 "[ -e \"$d/rc\" ] && exit 32; "
				 "[ -d \"$d\" ] || exit 32; "
				 "printf %%s %q | base64 -d > \"$d/in\" || exit 32; "
				 ": > \"$d/s.%L\"",
				 c->dir, (long long)seq, b64.buf, (long long)seq);
	strbuf_release(&b64);
	return rc ? rc : (ssize_t)len;
}

int rx_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct rcmd *c = handle;

	if (sig <= 0 || sig > 64)
		return -EINVAL;
	c->signalled = sig;
	/* The command leads a process group of its own (setsid). */
	return remote_runf(
		&c->rx->r, c->box, "kill", REMOTE_RUN_RETRY, NULL,
		"d=%q; [ -e \"$d/rc\" ] && exit 0; p=$(cat \"$d/pid\" 2>/dev/null) "
		"|| exit 3; kill -%L -$p 2>/dev/null || kill -%L $p 2>/dev/null; "
		"exit 0",
		c->dir, (long long)sig, (long long)sig);
}

void rx_cmd_release(struct sbx_provider *p, void *handle)
{
	rcmd_free(handle);
}
