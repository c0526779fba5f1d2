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

#include "sbxfs/box.h"
#include "sbxfs/cmd.h"
#include "sbxfs/log.h"
#include "sbxfs/notify.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/status.h"

static const char *const stream_file[CMD_NSTREAMS] = { "out", "stdout", "stderr" };

static int cmd_path(char *out, size_t size, struct box *b, unsigned n, const char *file)
{
	int len = snprintf(out, size, "%s/%s/%u%s%s", b->fs->cmd_dir, b->name, n,
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

static struct cmd *cmd_new(struct box *b, unsigned n, const char *cmdline)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c || !(c->cmdline = strdup(cmdline))) {
		free(c);
		return NULL;
	}
	c->n = n;
	c->box = box_ref(b);
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
	box_put(c->box);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->cmdline);
	free(c);
}

/* Append the record to the box's list; takes the box's reference. */
static int box_add_cmd_locked(struct box *b, struct cmd *c)
{
	if (b->ncmds == b->capcmds) {
		unsigned cap = b->capcmds ? b->capcmds * 2 : 16;
		struct cmd **nv = realloc(b->cmds, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		b->cmds = nv;
		b->capcmds = cap;
	}
	b->cmds[b->ncmds++] = c;
	return 0;
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

/* Lock of the box held. */
static void load_locked(struct box *b)
{
	char dir[4200], path[4300];
	struct dirent *de;
	unsigned max = 0;
	DIR *d;

	if (b->cmds_loaded)
		return;
	b->cmds_loaded = 1;
	snprintf(dir, sizeof(dir), "%s/%s", b->fs->cmd_dir, b->name);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		unsigned long n = strtoul(de->d_name, &end, 10);

		if (!*end && n > max && n < 1000000)
			max = (unsigned)n;
	}
	closedir(d);
	for (unsigned n = 1; n <= max; n++) {
		char *cmdline, *status;
		struct cmd *c;
		struct stat st;

		cmd_path(path, sizeof(path), b, n, "cmdline");
		cmdline = read_small_file(path, 65536);
		c = cmd_new(b, n, cmdline ? cmdline : "");
		free(cmdline);
		if (!c)
			break;
		cmd_path(path, sizeof(path), b, n, "status");
		status = read_small_file(path, 256);
		if (status)
			status[strcspn(status, "\n")] = '\0';
		parse_status(&c->exit, status && strcmp(status, "running") ? status : "");
		free(status);
		for (int i = 0; i < CMD_NSTREAMS; i++) {
			cmd_path(path, sizeof(path), b, n, stream_file[i]);
			c->size[i] = stat(path, &st) == 0 ? st.st_size : 0;
		}
		if (box_add_cmd_locked(b, c)) {
			cmd_put(c);
			break;
		}
	}
}

unsigned cmd_count(struct box *b)
{
	unsigned n;

	pthread_mutex_lock(&b->lock);
	load_locked(b);
	n = b->ncmds;
	pthread_mutex_unlock(&b->lock);
	return n;
}

struct cmd *cmd_get(struct box *b, unsigned n)
{
	struct cmd *c = NULL;

	pthread_mutex_lock(&b->lock);
	load_locked(b);
	if (n >= 1 && n <= b->ncmds && b->cmds[n - 1]) {
		c = b->cmds[n - 1];
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&b->lock);
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
	struct sbx_provider *p = c->box->fs->provider;
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
	cmd_path(path, sizeof(path), c->box, c->n, "status");
	write_file(path, word);
	word[strcspn(word, "\n")] = '\0';
	sbx_trace(SBX_TRACE_CMD, "sandbox \"%s\": command %u %s", c->box->name, c->n,
		  word);
	if (dropped)
		box_fail(c->box, -EFBIG, "command %u: output past %lld bytes was dropped",
			 c->n, (long long)CMD_SPOOL_MAX);
}

static void sink_done(struct sbx_cmd_sink *sink, const struct sbx_exit *ex)
{
	struct cmd *c = (struct cmd *)((char *)sink - offsetof(struct cmd, sink));
	struct sbx_provider *p = c->box->fs->provider;
	void *release;

	/* The command may have changed any file of the sandbox: forget it all
	 * before a reader sees the end, so what it does next sees the
	 * command's effects.  (This thread serves no FUSE request.) */
	sbxfs_invalidate_box_now(c->box->fs, c->box);
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

int cmd_start(struct cmd **out, struct box *b, const char *cmdline)
{
	struct sbx_provider *p = b->fs->provider;
	char path[4300];
	struct cmd *c;
	unsigned n;
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	load_locked(b);
	n = b->ncmds + 1;
	clock_gettime(CLOCK_REALTIME, &b->cmds_mtime);
	c = cmd_new(b, n, cmdline);
	if (!c || box_add_cmd_locked(b, c)) {
		pthread_mutex_unlock(&b->lock);
		cmd_put(c);
		return -ENOMEM;
	}
	c->running = 1;
	__atomic_add_fetch(&c->refs, 2, __ATOMIC_RELAXED); /* running, caller */
	pthread_mutex_unlock(&b->lock);

	c->sink.output = sink_output;
	c->sink.done = sink_done;
	cmd_path(path, sizeof(path), b, 0, NULL);
	path[strlen(path) - 2] = '\0'; /* the box's spool directory */
	mkdir(b->fs->cmd_dir, 0700);
	mkdir(path, 0700);
	cmd_path(path, sizeof(path), b, n, NULL);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	for (int i = 0; i < CMD_NSTREAMS && !rc; i++) {
		cmd_path(path, sizeof(path), b, n, stream_file[i]);
		c->fd[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (c->fd[i] < 0)
			rc = -errno;
	}
	if (!rc) {
		cmd_path(path, sizeof(path), b, n, "cmdline");
		rc = write_file(path, cmdline);
	}
	if (!rc) {
		cmd_path(path, sizeof(path), b, n, "status");
		rc = write_file(path, "running\n");
	}
	if (rc) {
		box_fail(b, rc, "exec: cannot record command %u under \"%s\": %s", n,
			 b->fs->cmd_dir, strerror(-rc));
	} else {
		void *h = NULL;

		sbx_fail_clear();
		/* Publish the handle before the provider can call done. */
		pthread_mutex_lock(&c->lock);
		c->handle_users++;
		pthread_mutex_unlock(&c->lock);
		rc = p->ops.cmd_start(p, &h, b->name, cmdline, &c->sink);
		pthread_mutex_lock(&c->lock);
		c->handle = rc ? NULL : h;
		pthread_mutex_unlock(&c->lock);
		handle_unuse(c);
		if (rc)
			box_fail(b, rc, NULL);
	}
	if (rc) {
		struct sbx_exit ex = { .how = SBX_EXIT_FAILED };

		snprintf(ex.reason, sizeof(ex.reason), "%s", strerror(-rc));
		finish(c, &ex);
		cmd_put(c); /* it will never run */
		cmd_put(c); /* the caller's */
		return rc;
	}
	sbx_trace(SBX_TRACE_CMD, "sandbox \"%s\": command %u started", b->name, n);
	*out = c;
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

ssize_t cmd_read(struct cmd *c, enum cmd_stream s, char *buf, size_t size, off_t off,
		 fuse_req_t req)
{
	char path[4300];
	ssize_t n;
	off_t have;
	int fd;

	if (req)
		fuse_req_interrupt_func(req, wake_reader, c);
	pthread_mutex_lock(&c->lock);
	while (off >= c->size[s] && c->running) {
		struct timespec ts;

		/* Ctrl-C on the reader, or the daemon shutting down (SIGTERM):
		 * a reader must not keep the daemon from exiting. */
		if (req &&
		    (fuse_req_interrupted(req) || fuse_session_exited(c->box->fs->se))) {
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
	pthread_mutex_unlock(&c->lock);
	if (req)
		fuse_req_interrupt_func(req, NULL, NULL);

	if (off >= have) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if ((off_t)size > have - off)
		size = (size_t)(have - off);
	if (fd < 0) {
		cmd_path(path, sizeof(path), c->box, c->n, stream_file[s]);
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
	struct sbx_provider *p = c->box->fs->provider;
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
	struct sbx_provider *p = c->box->fs->provider;
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
