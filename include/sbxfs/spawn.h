/* SPDX-License-Identifier: MIT */
/* Starting helper programs (bwrap, nsenter, cp) from a threaded daemon:
 * posix_spawn, default signal dispositions, no inherited descriptors. */
#ifndef SBXFS_SPAWN_H
#define SBXFS_SPAWN_H

#include <sys/types.h>

/*
 * Start argv[0] (looked up in PATH) with `envp` (NULL: ours).  The child's
 * descriptors 0, 1, 2, 3 and 4 come from fd_in, fd_out, fd_err, fd3 and
 * fd4; -1 gives /dev/null for 0-2 and nothing for 3 and 4.  With
 * new_pgroup the child leads a process group of its own.  Returns 0 and
 * *pid, or -errno.
 */
int spawn_start(pid_t *pid, char *const argv[], char *const envp[], int fd_in, int fd_out,
		int fd_err, int fd3, int fd4, int new_pgroup);

/*
 * Run to completion, at most `timeout_ms`; stderr (first line) goes into
 * `why` when the exit status is not 0.  Returns the exit status (0..255),
 * -ETIMEDOUT (the child is killed), or -errno.
 */
int spawn_run(char *const argv[], int timeout_ms, char *why, size_t whysize);

/*
 * Run argv (with envp; NULL: ours) to completion, at most `timeout_ms`,
 * its stdout into `out` (bounded by out->max: past it the rest is
 * dropped and -EFBIG returned once the child is done) and the start of
 * its stderr, NUL-terminated, into err (errsize bytes).  Output is read
 * while the child runs, and no longer than the child lives: a detached
 * grandchild that keeps the pipes open does not hold the call.  Returns
 * the exit status (0..255, 128 + N for a signal), -ETIMEDOUT (the child's
 * process group is killed), -EINTR once `interrupted` (may be NULL)
 * returns nonzero (likewise), or -errno.
 */
struct strbuf;
int spawn_capture(char *const argv[], char *const envp[], int timeout_ms,
		  struct strbuf *out, char *err, size_t errsize,
		  int (*interrupted)(void));

/* Wait for pid to exit, at most timeout_ms; -ETIMEDOUT if it did not.
 * Returns the wait status. */
int spawn_wait(pid_t pid, int timeout_ms);

#endif
