/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/spawn.h"
#include "sbxfs/strbuf.h"

extern char **environ;

int spawn_start(pid_t *pid, char *const argv[], char *const envp[], int fd_in, int fd_out,
		int fd_err, int fd3, int fd4, int new_pgroup)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	const int from[] = { fd_in, fd_out, fd_err };
	short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	for (int i = 0; i < 3; i++) {
		if (from[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, from[i], i);
		else
			posix_spawn_file_actions_addopen(&fa, i, "/dev/null",
							 i ? O_WRONLY : O_RDONLY, 0);
	}
	if (fd3 >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd3, 3);
	if (fd4 >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd4, 4);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	if (new_pgroup) {
		flags |= POSIX_SPAWN_SETPGROUP;
		posix_spawnattr_setpgroup(&attr, 0);
	}
	posix_spawnattr_setflags(&attr, flags);
	rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return -rc;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

int spawn_wait(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int status, delay = 1;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep((useconds_t)delay * 1000);
		if (delay < 50)
			delay *= 2;
	}
}

int spawn_run(char *const argv[], int timeout_ms, char *why, size_t whysize)
{
	int errpipe[2], status, rc;
	pid_t pid;
	ssize_t n;

	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return -errno;
	rc = spawn_start(&pid, argv, NULL, -1, -1, errpipe[1], -1, -1, 1);
	close(errpipe[1]);
	if (rc) {
		close(errpipe[0]);
		snprintf(why, whysize, "cannot run %s: %s", argv[0], strerror(-rc));
		return rc;
	}
	status = spawn_wait(pid, timeout_ms);
	if (status == -ETIMEDOUT) {
		kill(-pid, SIGKILL);
		spawn_wait(pid, 5000);
		snprintf(why, whysize, "%s timed out after %d ms", argv[0], timeout_ms);
		close(errpipe[0]);
		return -ETIMEDOUT;
	}
	fcntl(errpipe[0], F_SETFL, O_NONBLOCK);
	n = read(errpipe[0], why, whysize - 1);
	close(errpipe[0]);
	why[n > 0 ? n : 0] = '\0';
	why[strcspn(why, "\n")] = '\0';
	if (status < 0)
		return status;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* What is in fd now, without waiting: into out (or dropped past its
 * max, noted in *over) or into err.  0 at end of file, 1 if more may
 * come. */
static int drain(int fd, struct strbuf *out, int *over, char *err, size_t errsize,
		 size_t *nerr)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EINTR ? 1 : errno == EAGAIN ? 1 : 0;
		if (out) {
			if (!*over && strbuf_add(out, buf, (size_t)n))
				*over = 1;
		} else if (*nerr + 1 < errsize) {
			size_t k = errsize - 1 - *nerr < (size_t)n ? errsize - 1 - *nerr
								   : (size_t)n;

			memcpy(err + *nerr, buf, k);
			*nerr += k;
			err[*nerr] = '\0';
		}
	}
}

int spawn_capture(char *const argv[], char *const envp[], int timeout_ms,
		  struct strbuf *out, char *err, size_t errsize, int (*interrupted)(void))
{
	long long deadline = now_ms() + timeout_ms;
	int outp[2], errp[2], status = -1, over = 0, rc;
	int open_out = 1, open_err = 1;
	size_t nerr = 0;
	pid_t pid;

	err[0] = '\0';
	if (pipe2(outp, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		close(outp[0]);
		close(outp[1]);
		return rc;
	}
	rc = spawn_start(&pid, argv, envp, -1, outp[1], errp[1], -1, -1, 1);
	close(outp[1]);
	close(errp[1]);
	if (rc) {
		close(outp[0]);
		close(errp[0]);
		return rc;
	}
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = open_out ? outp[0] : -1, .events = POLLIN },
			{ .fd = open_err ? errp[0] : -1, .events = POLLIN }
		};
		pid_t r;

		if (open_out)
			open_out = drain(outp[0], out, &over, NULL, 0, NULL);
		if (open_err)
			open_err = drain(errp[0], NULL, NULL, err, errsize, &nerr);
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			/* Gone: what it wrote is in the pipes by now. */
			drain(outp[0], out, &over, NULL, 0, NULL);
			drain(errp[0], NULL, NULL, err, errsize, &nerr);
			break;
		}
		if (now_ms() >= deadline || (interrupted && interrupted())) {
			kill(-pid, SIGKILL);
			spawn_wait(pid, 5000);
			status = now_ms() >= deadline ? -ETIMEDOUT : -EINTR;
			break;
		}
		poll(pfd, 2, open_out || open_err ? 50 : 5);
	}
	close(outp[0]);
	close(errp[0]);
	if (status < 0)
		return status;
	if (over)
		return -EFBIG;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
