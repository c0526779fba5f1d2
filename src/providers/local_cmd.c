/* SPDX-License-Identifier: MIT */
/* The local provider's commands: joined to the keeper's namespaces
 * (nsjoin.c), with their output read by one thread each. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/log.h"
#include "sbxfs/nsjoin.h"
#include "sbxfs/provider.h"
#include "sbxfs/spawn.h"
#include "local.h"

#define OUTPUT_GRACE_MS 1000 /* output read after the shell exits */

struct local_cmd {
	pthread_mutex_t lock; /* guards pid (0 once reaped) and in_fd */
	pid_t pid;
	int in_fd, out_fd, err_fd;
	struct sbx_cmd_sink *sink;
	struct local *l;
};

/* ---- commands: joined to the keeper's namespaces (nsjoin.c) ---- */

static void cmd_reap_locked(struct local_cmd *c, struct sbx_exit *ex)
{
	int status;

	if (waitpid(c->pid, &status, 0) == c->pid) {
		if (WIFSIGNALED(status)) {
			ex->how = SBX_EXIT_SIGNAL;
			ex->code = WTERMSIG(status);
		} else {
			ex->how = SBX_EXIT_CODE;
			ex->code = WEXITSTATUS(status);
		}
	} else {
		ex->how = SBX_EXIT_FAILED;
		snprintf(ex->reason, sizeof(ex->reason), "lost: %s", strerror(errno));
	}
	c->pid = 0;
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

/* Forward output until the shell has exited and its pipes are closed (or
 * a grace period after the exit, so a background job holding the pipe does
 * not keep the command "running" forever). */
static void *cmd_thread(void *arg)
{
	struct local_cmd *c = arg;
	struct sbx_cmd_sink *sink = c->sink;
	struct local *l = c->l;
	struct sbx_exit ex = { 0 };
	struct pollfd pfd[2] = { { .fd = c->out_fd, .events = POLLIN },
				 { .fd = c->err_fd, .events = POLLIN } };
	long long deadline = 0;
	char buf[65536];
	siginfo_t si;

	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		int timeout = 200, r;

		if (deadline) {
			timeout = (int)(deadline - ms_now());
			if (timeout <= 0)
				break;
		}
		r = poll(pfd, 2, timeout);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2 && r > 0; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n > 0) {
				sink->output(sink,
					     i ? SBX_STREAM_STDERR : SBX_STREAM_STDOUT,
					     buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
		}
		memset(&si, 0, sizeof(si));
		if (!deadline &&
		    waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid)
			deadline = ms_now() + OUTPUT_GRACE_MS;
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	pthread_mutex_lock(&c->lock);
	cmd_reap_locked(c, &ex);
	pthread_mutex_unlock(&c->lock);
	sink->done(sink, &ex);
	__atomic_sub_fetch(&l->live_cmds, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int cmd_env(char **envp, int max, char store[][1024], const struct sbx_kvlist *cfg)
{
	int n = 0;

	envp[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	envp[n++] = "HOME=/root";
	envp[n++] = "LANG=C.UTF-8";
	envp[n++] = "TERM=dumb";
	for (size_t i = 0; i < cfg->n && n < max - 1; i++) {
		if (strncmp(cfg->v[i].key, "env.", 4))
			continue;
		snprintf(store[n], 1024, "%s=%s", cfg->v[i].key + 4, cfg->v[i].value);
		envp[n] = store[n];
		n++;
	}
	envp[n] = NULL;
	return n;
}

int local_cmd_start(struct sbx_provider *p, void **handle, const char *box,
		    const char *cmdline, struct sbx_cmd_sink *sink)
{
	struct local_box *b = local_box_get(L(p), box);
	struct sbx_kvlist cfg = { 0 };
	char *envp[40];
	char envstore[40][1024];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	struct local_cmd *c = NULL;
	const char *net;
	pthread_t tid;
	pid_t pid;
	int rc;

	if (!b)
		return -ENOENT;
	rc = local_config_load(&cfg, L(p), box);
	if (rc)
		return rc;
	net = sbx_kv_get(&cfg, "net");
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&b->lock);
	if (!local_box_running_locked(b)) {
		pthread_mutex_unlock(&b->lock);
		sbx_failf("sandbox \"%s\" is not running (write \"start\" to its ctl)",
			  box);
		rc = -EAGAIN;
		goto out;
	}
	{
		char *argv[] = { "/bin/sh", "-c", (char *)cmdline, NULL };
		struct nsjoin j = {
			.target = b->init,
			/* net=host shares the host's: nothing to join. */
			.join_net = !(net && !strcmp(net, "host")),
			.argv = argv,
			.envp = envp,
			.cwd = "/root",
			.fd_in = in[0],
			.fd_out = out[1],
			.fd_err = err[1],
		};

		cmd_env(envp, 40, envstore, &cfg);
		rc = nsjoin_spawn(&pid, &j);
	}
	pthread_mutex_unlock(&b->lock);
	if (rc)
		goto out;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	pthread_mutex_init(&c->lock, NULL);
	c->pid = pid;
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = err[0];
	c->sink = sink;
	c->l = L(p);
	in[1] = out[0] = err[0] = -1;
	__atomic_add_fetch(&c->l->live_cmds, 1, __ATOMIC_RELAXED);
	rc = pthread_create(&tid, NULL, cmd_thread, c);
	if (rc) {
		__atomic_sub_fetch(&c->l->live_cmds, 1, __ATOMIC_RELAXED);
		kill(-pid, SIGKILL);
		spawn_wait(pid, 5000);
		close(c->in_fd);
		close(c->out_fd);
		close(c->err_fd);
		rc = -rc;
		goto out;
	}
	pthread_detach(tid);
	*handle = c;
	c = NULL;
out:
	free(c);
	local_close_pipe(in);
	local_close_pipe(out);
	local_close_pipe(err);
	sbx_kv_free(&cfg);
	return rc;
}

ssize_t local_cmd_stdin(struct sbx_provider *p, void *handle, const char *data,
			size_t len, const volatile int *interrupted)
{
	struct local_cmd *c = handle;
	size_t done = 0;
	int fd;

	/* Write through a duplicate so that a blocked writer holds no lock:
	 * a kill must get through while the command does not read. */
	pthread_mutex_lock(&c->lock);
	fd = c->in_fd < 0 ? -1 : fcntl(c->in_fd, F_DUPFD_CLOEXEC, 0);
	if (len == 0 && c->in_fd >= 0) {
		close(c->in_fd);
		c->in_fd = -1;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd < 0)
		return -EPIPE;
	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = write(fd, data + done, len - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (*interrupted) {
			errno = EINTR;
			break;
		}
		poll(&pfd, 1, 200);
	}
	if (done < len && !done)
		done = (size_t)-errno;
	close(fd);
	return (ssize_t)done;
}

/*
 * Signal every process of group `pgid` but its leader.  The leader is
 * the join helper, which would die of a TERM the command itself ignores; it exits
 * with the command's own status (or re-raises its signal) by itself.
 */
static int signal_group_but_leader(pid_t pgid, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[64], buf[512], *rp;
		long pid = strtol(de->d_name, &rp, 10);
		int pgrp = 0, fd;
		ssize_t n;

		if (*rp || pid <= 0 || pid == pgid)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		rp = strrchr(buf, ')'); /* the name may hold anything */
		if (rp && sscanf(rp + 1, " %*c %*d %d", &pgrp) == 1 && pgrp == pgid &&
		    kill((pid_t)pid, sig) == 0)
			found = 1;
	}
	closedir(d);
	return found ? 0 : -ESRCH;
}

int local_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct local_cmd *c = handle;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = c->pid ? signal_group_but_leader(c->pid, sig) : -ESRCH;
	/* Just after the start the helper may not have forked the shell yet. */
	for (int i = 0; rc == -ESRCH && c->pid && i < 100; i++) {
		usleep(10000);
		rc = signal_group_but_leader(c->pid, sig);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void local_cmd_release(struct sbx_provider *p, void *handle)
{
	struct local_cmd *c = handle;

	if (c->in_fd >= 0)
		close(c->in_fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
