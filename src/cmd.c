/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/cmd.h"
#include "sbxfs/log.h"
#include "sbxfs/status.h"

static const char *const stream_file[CMD_NSTREAMS] = { "out", "stdout", "stderr" };

static int cmd_path(char *out, size_t size, struct cmd_host *h, unsigned n,
		    const char *file)
{
	int len = snprintf(out, size, "%s/%s/%u%s%s", h->spool_dir, h->box, n,
			   file ? "/" : "", file ? file : "");

	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		rc = -EIO;
	close(fd);
	return rc;
}

static char *read_small_file(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(max + 1);
	n = buf ? read(fd, buf, max) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static struct cmd *cmd_alloc(struct cmd_host *h, unsigned n, const char *cmdline)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c || !(c->cmdline = strdup(cmdline))) {
		free(c);
		return NULL;
	}
	c->n = n;
	c->host = h;
	h->ops->get(h);
	c->refs = 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	for (int i = 0; i < CMD_NSTREAMS; i++)
		c->fd[i] = -1;
	return c;
}

void cmd_put(struct cmd *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (int i = 0; i < CMD_NSTREAMS; i++)
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	c->host->ops->put(c->host);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->cmdline);
	free(c);
}

static int parse_status(struct sbx_exit *ex, const char *text)
{
	char word[32];
	int sig;

	if (sscanf(text, "exited %d", &ex->code) == 1) {
		ex->how = SBX_EXIT_CODE;
		return 0;
	}
	if (sscanf(text, "killed %31s", word) == 1 &&
	    (sig = status_signal_parse(word)) > 0) {
		ex->how = SBX_EXIT_SIGNAL;
		ex->code = sig;
		return 0;
	}
	ex->how = SBX_EXIT_FAILED;
	if (!strncmp(text, "failed ", 7))
		snprintf(ex->reason, sizeof(ex->reason), "%s", text + 7);
	else
		snprintf(ex->reason, sizeof(ex->reason), "daemon stopped while it ran");
	return 0;
}

unsigned cmd_spooled(struct cmd_host *h)
{
	char dir[4200];
	struct dirent *de;
	unsigned max = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", h->spool_dir, h->box);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		unsigned long n = strtoul(de->d_name, &end, 10);

		if (!*end && n > max && n < 1000000)
			max = (unsigned)n;
	}
	closedir(d);
	return max;
}

struct cmd *cmd_load(struct cmd_host *h, unsigned n)
{
	char path[4300], *cmdline, *status;
	struct cmd *c;
	struct stat st;

	cmd_path(path, sizeof(path), h, n, "cmdline");
	cmdline = read_small_file(path, 65536);
	c = cmd_alloc(h, n, cmdline ? cmdline : "");
	free(cmdline);
	if (!c)
		return NULL;
	cmd_path(path, sizeof(path), h, n, "status");
	status = read_small_file(path, 256);
	if (status)
		status[strcspn(status, "\n")] = '\0';
	parse_status(&c->exit, status && strcmp(status, "running") ? status : "");
	free(status);
	for (int i = 0; i < CMD_NSTREAMS; i++) {
		cmd_path(path, sizeof(path), h, n, stream_file[i]);
		c->size[i] = stat(path, &st) == 0 ? st.st_size : 0;
	}
	return c;
}

struct cmd *cmd_ref(struct cmd *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

/* The provider handle stays valid while a stdin or signal call uses it:
 * sink_done leaves the release to the last user. */
static void *handle_use(struct cmd *c)
{
	void *h;

	pthread_mutex_lock(&c->lock);
	h = c->handle;
	if (h)
		c->handle_users++;
	pthread_mutex_unlock(&c->lock);
	return h;
}

static void handle_unuse(struct cmd *c)
{
	struct sbx_provider *p = c->host->provider;
	void *release = NULL;

	pthread_mutex_lock(&c->lock);
	if (--c->handle_users == 0 && c->handle_done) {
		release = c->handle;
		c->handle = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (release)
		p->ops.cmd_release(p, release);
}

/* ---- the sink the provider feeds ---- */

static void spool_append(struct cmd *c, enum cmd_stream s, const char *data, size_t len)
{
	if (c->fd[s] < 0)
		return;
	if (c->size[s] + (off_t)len > CMD_SPOOL_MAX) {
		c->dropped = 1;
		return;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(c->fd[s], data + done, len - done,
				   c->size[s] + (off_t)done);

		if (n <= 0) {
			c->dropped = 1;
			return;
		}
		done += (size_t)n;
	}
	c->size[s] += (off_t)len;
}

static void sink_output(struct sbx_cmd_sink *sink, enum sbx_stream stream,
			const char *data, size_t len)
{
	struct cmd *c = (struct cmd *)((char *)sink - offsetof(struct cmd, sink));

	pthread_mutex_lock(&c->lock);
	spool_append(c, stream == SBX_STREAM_STDERR ? CMD_STDERR : CMD_STDOUT, data, len);
	spool_append(c, CMD_OUT, data, len);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void finish(struct cmd *c, const struct sbx_exit *ex)
{
	char path[4300], word[256];
	int dropped;

	pthread_mutex_lock(&c->lock);
	c->exit = *ex;
	c->running = 0;
	dropped = c->dropped;
	for (int i = 0; i < CMD_NSTREAMS; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
	}
	status_exit_word(word, sizeof(word), 0, &c->exit);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);

	strcat(word, "\n");
	cmd_path(path, sizeof(path), c->host, c->n, "status");
	write_file(path, word);
	word[strcspn(word, "\n")] = '\0';
	sbx_trace(SBX_TRACE_CMD, "sandbox \"%s\": command %u %s", c->host->box, c->n,
		  word);
	if (dropped) {
		char msg[128];

		snprintf(msg, sizeof(msg),
			 "command %u: output past %lld bytes was dropped", c->n,
			 (long long)CMD_SPOOL_MAX);
		c->host->ops->fail(c->host, -EFBIG, msg);
	}
}

static void sink_done(struct sbx_cmd_sink *sink, const struct sbx_exit *ex)
{
	struct cmd *c = (struct cmd *)((char *)sink - offsetof(struct cmd, sink));
	struct sbx_provider *p = c->host->provider;
	void *release;

	/* The command may have changed any file of the sandbox: forget it all
	 * before a reader sees the end, so what it does next sees the
	 * command's effects.  (This thread serves no FUSE request.) */
	c->host->ops->ended(c->host);
	if (ex->how == SBX_EXIT_FAILED) {
		char msg[256];

		snprintf(msg, sizeof(msg), "command %u failed: %s", c->n, ex->reason);
		c->host->ops->fail(c->host, -EIO, msg);
	}
	finish(c, ex);
	pthread_mutex_lock(&c->lock);
	c->handle_done = 1;
	release = c->handle_users ? NULL : c->handle;
	if (release)
		c->handle = NULL;
	pthread_mutex_unlock(&c->lock);
	if (release)
		p->ops.cmd_release(p, release);
	cmd_put(c); /* the running command's reference */
}

struct cmd *cmd_new(struct cmd_host *h, unsigned n, const char *cmdline)
{
	struct cmd *c = cmd_alloc(h, n, cmdline);

	if (c)
		c->running = 1;
	return c;
}

/* The provider's cmd_start.  A command whose stdin is not fed reads its
 * end at once, on every provider: its shell takes stdin from /dev/null
 * (or closes it, in an image without one) before the command line, on
 * the same line (the line numbers of its messages stay). */
static int start(struct sbx_provider *p, void **handle, struct cmd *c)
{
	static const char no_stdin[] =
		"if [ -r /dev/null ]; then exec </dev/null; else exec <&-; fi; ";
	char *line;
	int rc;

	if (c->stdin_open)
		return p->ops.cmd_start(p, handle, c->host->box, c->cmdline, &c->sink);
	if (asprintf(&line, "%s%s", no_stdin, c->cmdline) < 0)
		return -ENOMEM;
	rc = p->ops.cmd_start(p, handle, c->host->box, line, &c->sink);
	free(line);
	return rc;
}

int cmd_run(struct cmd *c)
{
	struct cmd_host *h = c->host;
	struct sbx_provider *p = h->provider;
	char path[4300], msg[1024];
	unsigned n = c->n;
	int rc = 0;

	cmd_ref(c); /* the running command's */
	c->sink.output = sink_output;
	c->sink.done = sink_done;
	cmd_path(path, sizeof(path), h, 0, NULL);
	path[strlen(path) - 2] = '\0'; /* the box's spool directory */
	mkdir(h->spool_dir, 0700);
	mkdir(path, 0700);
	cmd_path(path, sizeof(path), h, n, NULL);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	for (int i = 0; i < CMD_NSTREAMS && !rc; i++) {
		cmd_path(path, sizeof(path), h, n, stream_file[i]);
		c->fd[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (c->fd[i] < 0)
			rc = -errno;
	}
	if (!rc) {
		cmd_path(path, sizeof(path), h, n, "cmdline");
		rc = write_file(path, c->cmdline);
	}
	if (!rc) {
		cmd_path(path, sizeof(path), h, n, "status");
		rc = write_file(path, "running\n");
	}
	if (rc) {
		snprintf(msg, sizeof(msg),
			 "exec: cannot record command %u under \"%s\": %s", n,
			 h->spool_dir, strerror(-rc));
		h->ops->fail(h, rc, msg);
	} else {
		void *handle = NULL;

		sbx_fail_clear();
		/* Publish the handle before the provider can call done. */
		pthread_mutex_lock(&c->lock);
		c->handle_users++;
		pthread_mutex_unlock(&c->lock);
		rc = start(p, &handle, c);
		pthread_mutex_lock(&c->lock);
		c->handle = rc ? NULL : handle;
		pthread_mutex_unlock(&c->lock);
		handle_unuse(c);
		if (rc)
			h->ops->fail(h, rc, NULL);
	}
	if (rc) {
		struct sbx_exit ex = { .how = SBX_EXIT_FAILED };

		snprintf(ex.reason, sizeof(ex.reason), "%s", strerror(-rc));
		finish(c, &ex);
		cmd_put(c); /* it will never run */
		return rc;
	}
	sbx_trace(SBX_TRACE_CMD, "sandbox \"%s\": command %u started", h->box, n);
	return 0;
}

/* ---- readers ---- */

static void wake_reader(fuse_req_t req, void *data)
{
	struct cmd *c = data;

	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

off_t cmd_size(struct cmd *c, enum cmd_stream s)
{
	off_t size;

	pthread_mutex_lock(&c->lock);
	size = c->size[s];
	pthread_mutex_unlock(&c->lock);
	return size;
}

ssize_t cmd_read(struct cmd *c, enum cmd_stream s, char *buf, size_t size, off_t off,
		 fuse_req_t req)
{
	char path[4300];
	ssize_t n;
	off_t have;
	int fd, lost;

	if (req)
		fuse_req_interrupt_func(req, wake_reader, c);
	pthread_mutex_lock(&c->lock);
	while (off >= c->size[s] && c->running) {
		struct timespec ts;

		/* Ctrl-C on the reader, or the daemon shutting down (SIGTERM):
		 * a reader must not keep the daemon from exiting. */
		if (req &&
		    (fuse_req_interrupted(req) || c->host->ops->stopping(c->host))) {
			pthread_mutex_unlock(&c->lock);
			fuse_req_interrupt_func(req, NULL, NULL);
			return -EINTR;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	have = c->size[s];
	fd = c->fd[s] >= 0 ? dup(c->fd[s]) : -1;
	lost = !c->running && c->exit.how == SBX_EXIT_FAILED;
	pthread_mutex_unlock(&c->lock);
	if (req)
		fuse_req_interrupt_func(req, NULL, NULL);

	if (off >= have) {
		if (fd >= 0)
			close(fd);
		/* Output that never came is no end of file: a reader such as
		 * `cat exec` must not report success. */
		return lost ? -EIO : 0;
	}
	if ((off_t)size > have - off)
		size = (size_t)(have - off);
	if (fd < 0) {
		cmd_path(path, sizeof(path), c->host, c->n, stream_file[s]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	n = pread(fd, buf, size, off);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static void set_flag(fuse_req_t req, void *data)
{
	*(volatile int *)data = 1;
}

ssize_t cmd_write_stdin(struct cmd *c, const char *data, size_t len, fuse_req_t req)
{
	struct sbx_provider *p = c->host->provider;
	volatile int interrupted = 0;
	void *h = handle_use(c);
	ssize_t rc;

	if (!h)
		return -EPIPE;
	if (req)
		fuse_req_interrupt_func(req, set_flag, (void *)&interrupted);
	rc = p->ops.cmd_stdin(p, h, data, len, &interrupted);
	if (req)
		fuse_req_interrupt_func(req, NULL, NULL);
	handle_unuse(c);
	return rc;
}

int cmd_signal(struct cmd *c, int sig)
{
	struct sbx_provider *p = c->host->provider;
	void *h = handle_use(c);
	int rc;

	if (!h)
		return -ESRCH;
	rc = p->ops.cmd_signal(p, h, sig);
	handle_unuse(c);
	return rc;
}

void cmd_status_word(struct cmd *c, char *out, size_t size)
{
	pthread_mutex_lock(&c->lock);
	status_exit_word(out, size, c->running, &c->exit);
	pthread_mutex_unlock(&c->lock);
}
