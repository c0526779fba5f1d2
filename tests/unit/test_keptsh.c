/* SPDX-License-Identifier: MIT */
/* Kept shells (keptsh.h) over a real /bin/sh on pipes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbxfs/provider.h"
#include "sbxfs/remote/keptsh.h"
#include "sbxfs/remote/remote.h"
#include "test.h"

struct pipesh {
	pid_t pid;
	int in, out, err;
};

static int opens;
static pid_t last_pid;

static int sh_open(void *ctx, const char *box, const char *command, void **stream)
{
	int in[2], out[2], err[2];
	struct pipesh *s;

	(void)ctx;
	if (!strcmp(box, "stopped"))
		return -EAGAIN;
	s = calloc(1, sizeof(*s));
	if (!s || pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		abort();
	s->pid = fork();
	if (s->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		if (command)
			execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		else
			execl("/bin/sh", "sh", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	s->in = in[1];
	s->out = out[0];
	s->err = err[0];
	__atomic_add_fetch(&opens, 1, __ATOMIC_RELAXED);
	last_pid = s->pid;
	*stream = s;
	return 0;
}

static int sh_write(void *stream, const char *buf, size_t len)
{
	struct pipesh *s = stream;

	while (len) {
		ssize_t n = write(s->in, buf, len);

		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sh_read(void *stream, int timeout_ms, keptsh_out_fn out, void *ctx)
{
	struct pipesh *s = stream;
	struct pollfd p[2] = { { s->out, POLLIN, 0 }, { s->err, POLLIN, 0 } };
	char buf[4096];
	int i, got = 0, ended = 0;

	if (poll(p, 2, timeout_ms) == 0)
		return -ETIMEDOUT;
	for (i = 0; i < 2; i++) {
		ssize_t n;

		if (!p[i].revents)
			continue;
		n = read(p[i].fd, buf, sizeof(buf));
		if (n > 0) {
			out(ctx, i ? SBX_STREAM_STDERR : SBX_STREAM_STDOUT, buf,
			    (size_t)n);
			got = 1;
		} else {
			ended = 1;
		}
	}
	return got ? 1 : ended ? 0 : -ETIMEDOUT;
}

static void sh_close(void *stream)
{
	struct pipesh *s = stream;

	close(s->in);
	close(s->out);
	close(s->err);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	free(s);
}

static const struct keptsh_ops pipe_ops = { sh_open, sh_write, sh_read, sh_close };

static int run(struct keptsh *k, const char *script, int flags, struct strbuf *out)
{
	if (out)
		out->len = 0;
	return keptsh_run(k, "box", "test", script, flags, out);
}

static void *side_by_side(void *arg)
{
	struct strbuf out = STRBUF_INIT(64);

	CHECK(run(arg, "sleep 0.1; echo ok", 0, &out) == 0);
	CHECK(out.buf && !strcmp(out.buf, "ok\n"));
	strbuf_release(&out);
	return NULL;
}

static void collect(void *ctx, enum sbx_stream stream, const char *data, size_t len)
{
	if (stream == SBX_STREAM_STDOUT)
		strbuf_add(ctx, data, len);
}

/* Does box's "shells" status line read `want`? */
static int described(struct keptsh *k, const char *box, const char *want)
{
	struct sbx_kvlist kv = { 0 };
	const char *v;
	int same;

	keptsh_describe(k, box, &kv);
	v = sbx_kv_get(&kv, "shells");
	same = v && !strcmp(v, want);
	sbx_kv_free(&kv);
	return same;
}

/* A spare: none at first (one is then opened in the background); once
 * there, its line runs, and what follows on its stdin is the line's. */
static void check_spares(struct keptsh *k)
{
	struct strbuf out = STRBUF_INIT(4096);
	const char *line = "printf a; read x; echo \"[$x]\"; exit 3\nhello\n";
	void *stream = NULL;
	int tries, rc;

	CHECK(described(k, "spare", "0 for scripts; spares: 0 ready, 0 opening"));
	CHECK(keptsh_take_spare(k, "spare", &stream) == -ENOENT);
	for (tries = 0; tries < 500; tries++) {
		if (described(k, "spare", "0 for scripts; spares: 2 ready, 0 opening"))
			break;
		usleep(10000);
	}
	CHECK(tries < 500);
	CHECK(keptsh_take_spare(k, "spare", &stream) == 0);
	CHECK(stream != NULL);
	if (!stream)
		return;
	CHECK(pipe_ops.write(stream, line, strlen(line)) == 0);
	while ((rc = pipe_ops.read(stream, 2000, collect, &out)) > 0)
		;
	CHECK(rc == 0 && out.buf && !strcmp(out.buf, "a[hello]\n"));
	pipe_ops.close(stream);
	strbuf_release(&out);
	/* Scripts never take a spare; dropping the box closes it. */
	CHECK(keptsh_run(k, "spare", "test", "true", 0, NULL) == 0);
	for (tries = 0; tries < 500; tries++) {
		if (described(k, "spare", "1 for scripts; spares: 2 ready, 0 opening"))
			break;
		usleep(10000);
	}
	CHECK(tries < 500);
	keptsh_drop(k, "spare");
	CHECK(described(k, "spare", "0 for scripts; spares: 0 ready, 0 opening"));
}

void test_keptsh(void)
{
	struct strbuf out = STRBUF_INIT(1 << 20);
	struct keptsh k;
	pthread_t t[6];
	int i;

	keptsh_init(&k, "test", &pipe_ops, NULL, 2000);
	/* Output comes back, stderr stays out of it; the shell is kept. */
	CHECK(run(&k, "echo hi; echo err >&2", 0, &out) == 0);
	CHECK(out.buf && !strcmp(out.buf, "hi\n"));
	CHECK(run(&k, "printf 'a\\0b'", 0, &out) == 0);
	CHECK(out.len == 3 && !memcmp(out.buf, "a\0b", 3));
	CHECK(opens == 1);
	/* A script's exit, variables and traps are its own. */
	CHECK(run(&k, "x=1; trap 'echo trap' EXIT; exit 0", 0, &out) == 0);
	CHECK(out.buf && !strcmp(out.buf, "trap\n"));
	CHECK(run(&k, "echo \"[$x]\" # a comment at the end", 0, &out) == 0);
	CHECK(out.buf && !strcmp(out.buf, "[]\n"));
	/* A mark of another id, and bytes like a mark's, are output. */
	CHECK(run(&k, "printf '\\036SBXFS-END:other:0\\n\\036x'", 0, &out) == 0);
	CHECK(out.len == 21 && !memcmp(out.buf, "\036SBXFS-END:other:0\n\036x", 21));
	/* Exit statuses: an errno, or -EIO with the words of stderr. */
	CHECK(run(&k, "exit 2", 0, &out) == -ENOENT);
	CHECK(run(&k, "echo boom >&2; exit 99", 0, NULL) == -EIO);
	CHECK(strstr(sbx_fail_text(), "exit 99: boom") != NULL);
	CHECK(opens == 1);
	/* A script that ends the shell: lost, -EIO; the next gets a new one. */
	CHECK(run(&k, "kill -9 $$", 0, &out) == -EIO);
	CHECK(strstr(sbx_fail_text(), "was lost") != NULL);
	CHECK(run(&k, "echo again", 0, &out) == 0 && opens == 2);
	/* A shell lost while idle: found out before the script is sent. */
	kill(last_pid, SIGKILL);
	waitpid(last_pid, NULL, 0);
	CHECK(run(&k, "echo fresh", 0, &out) == 0);
	CHECK(out.buf && !strcmp(out.buf, "fresh\n") && opens == 3);
	/* Past the output's maximum: -EFBIG, and that shell is closed. */
	{
		struct strbuf small = STRBUF_INIT(10);

		CHECK(run(&k, "printf '%0100d' 0", 0, &small) == -EFBIG);
		strbuf_release(&small);
	}
	CHECK(run(&k, "true", 0, NULL) == 0 && opens == 4);
	/* Silent past stall_ms: -ETIMEDOUT, and a new shell after. */
	k.stall_ms = 300;
	CHECK(run(&k, "sleep 5", 0, NULL) == -ETIMEDOUT);
	k.stall_ms = 2000;
	CHECK(run(&k, "true", 0, NULL) == 0 && opens == 5);
	/* A box that is not running. */
	CHECK(keptsh_run(&k, "stopped", "test", "true", 0, NULL) == -EAGAIN);
	/* Dropped: the next script opens a shell again. */
	keptsh_drop(&k, "box");
	CHECK(run(&k, "true", 0, NULL) == 0 && opens == 6);
	/* Unused past idle_ms: closed on the way to the next script. */
	k.idle_ms = 0;
	CHECK(run(&k, "true", 0, NULL) == 0 && opens == 7);
	k.idle_ms = 60000;
	CHECK(run(&k, "true", 0, NULL) == 0 && opens == 7);
	/* Side by side: at most KEPTSH_PER_BOX shells, the rest wait. */
	for (i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, side_by_side, &k);
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	CHECK(opens <= 7 + KEPTSH_PER_BOX - 1);
	check_spares(&k);
	CHECK(keptsh_destroy(&k) == 0);
	strbuf_release(&out);
}
