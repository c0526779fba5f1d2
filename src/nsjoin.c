/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbxfs/nsjoin.h"
#include "sbxfs/provider.h"

/* What went wrong in the child, for the parent's message. */
struct join_error {
	int step;
	int err;
};

static const char *const step_names[] = {
	"open the sandbox's namespaces",
	"join its user namespace",
	"join its namespaces",
	"enter its root",
	"become root inside",
	"fork inside",
	"run the shell",
};

enum { NS_USER, NS_IPC, NS_UTS, NS_NET, NS_PID, NS_MNT, NS_COUNT };

static const struct {
	const char *file;
	int type;
} namespaces[NS_COUNT] = {
	[NS_USER] = { "user", CLONE_NEWUSER }, [NS_IPC] = { "ipc", CLONE_NEWIPC },
	[NS_UTS] = { "uts", CLONE_NEWUTS },    [NS_NET] = { "net", CLONE_NEWNET },
	[NS_PID] = { "pid", CLONE_NEWPID },    [NS_MNT] = { "mnt", CLONE_NEWNS },
};

/* From here to exec, only async-signal-safe calls: we are a fork of a
 * threaded process. */
static void child_fail(int pipe_fd, int step)
{
	struct join_error e = { step, errno };

	if (write(pipe_fd, &e, sizeof(e)) < 0) {
		/* nothing more to say */
	}
	_exit(127);
}

static void reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL); /* fails harmlessly for KILL, STOP */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The helper: joins, forks the program into the PID namespace, waits. */
static void helper(const struct nsjoin *j, const int *nsfd, int rootfd, int pipe_fd)
{
	pid_t pid;
	int status;

	setpgid(0, 0);
	reset_signals();
	if (dup2(j->fd_in, 0) < 0 || dup2(j->fd_out, 1) < 0 || dup2(j->fd_err, 2) < 0)
		child_fail(pipe_fd, 0);
	/* The user namespace first: it gives the rights to join the rest. */
	if (getuid() == 0)
		setgroups(0, NULL);
	if (setns(nsfd[NS_USER], CLONE_NEWUSER) < 0)
		child_fail(pipe_fd, 1);
	for (int i = NS_IPC; i < NS_COUNT; i++)
		if (nsfd[i] >= 0 && setns(nsfd[i], namespaces[i].type) < 0)
			child_fail(pipe_fd, 2);
	if (fchdir(rootfd) < 0 || chroot(".") < 0)
		child_fail(pipe_fd, 3);
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		child_fail(pipe_fd, 4);
	/* Keep nothing of the daemon's: above all not the write end of the
	 * program's stdin, or it would never see end of file. */
	if (pipe_fd > 3)
		syscall(SYS_close_range, 3, pipe_fd - 1, 0);
	syscall(SYS_close_range, pipe_fd + 1, ~0u, 0);
	pid = fork(); /* only a child enters the PID namespace */
	if (pid < 0)
		child_fail(pipe_fd, 5);
	if (pid == 0) {
		if (chdir(j->cwd) < 0 && chdir("/") < 0)
			child_fail(pipe_fd, 3);
		execve(j->argv[0], j->argv, j->envp);
		child_fail(pipe_fd, 6);
	}
	close(pipe_fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			_exit(127);
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		kill(getpid(), WTERMSIG(status));
		_exit(128 + WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

int nsjoin_spawn(pid_t *pid_out, const struct nsjoin *j)
{
	int nsfd[NS_COUNT], rootfd, pfd[2], rc = 0;
	struct join_error e;
	char path[64];
	ssize_t n;
	pid_t pid;

	for (int i = 0; i < NS_COUNT; i++) {
		nsfd[i] = -1;
		if (i == NS_NET && !j->join_net)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)j->target,
			 namespaces[i].file);
		nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0)
			rc = -errno;
	}
	snprintf(path, sizeof(path), "/proc/%d/root", (int)j->target);
	rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 && !rc)
		rc = -errno;
	if (!rc && pipe2(pfd, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc) {
		sbx_failf("cannot %s: %s", step_names[0], strerror(-rc));
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		helper(j, nsfd, rootfd, pfd[1]);
	}
	close(pfd[1]);
	if (pid < 0) {
		rc = -errno;
		sbx_failf("cannot fork: %s", strerror(errno));
		close(pfd[0]);
		goto out;
	}
	/* The pipe closes when the program is running (close on exec), or
	 * brings why it could not. */
	do
		n = read(pfd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == (ssize_t)sizeof(e)) {
		rc = e.err ? -e.err : -EIO;
		sbx_failf("cannot %s: %s", step_names[e.step % 7], strerror(e.err));
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out;
	}
	*pid_out = pid;
out:
	for (int i = 0; i < NS_COUNT; i++)
		if (nsfd[i] >= 0)
			close(nsfd[i]);
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}
