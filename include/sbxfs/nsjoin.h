/* SPDX-License-Identifier: MIT */
/*
 * Running a program inside the namespaces of a sandbox that bubblewrap
 * built.  bwrap does the setup; joining is a few setns() calls, done here
 * because nsenter cannot join an unprivileged bwrap sandbox: it insists
 * on setgroups(), which an unprivileged user namespace denies.
 */
#ifndef SBXFS_NSJOIN_H
#define SBXFS_NSJOIN_H

#include <sys/types.h>

struct nsjoin {
	pid_t target;	   /* a process of the sandbox (its pid 1) */
	int join_net;	   /* join its network namespace too */
	char *const *argv; /* argv[0]: an absolute path inside */
	char *const *envp;
	const char *cwd; /* inside; "/" if it cannot be entered */
	int fd_in, fd_out, fd_err;
};

/*
 * Start j->argv inside the target's user, IPC, UTS, (network,) PID and
 * mount namespaces and root, as uid and gid 0 there.  *pid is a helper
 * that leads a new process group, waits for the program and ends as it
 * ended (the same exit code, or the same signal).  Returns 0 once the
 * program runs, or -errno if it could not be started (with sbx_failf()).
 */
int nsjoin_spawn(pid_t *pid, const struct nsjoin *j);

#endif
