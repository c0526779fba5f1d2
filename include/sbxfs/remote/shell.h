/* SPDX-License-Identifier: MIT */
/*
 * POSIX over a shell: what remote providers run in a sandbox to do what
 * their file API lacks (rmdir that refuses a full directory, rename over
 * a file, truncate, utimens, links, statfs ...).
 *
 * Scripts are built with sh_script(), which quotes every argument (any
 * byte but NUL survives), and report their outcome in their exit status:
 * an errno value for the outcomes that have one, by the table of
 * sh_exit_errno().  Every shell text here is for /bin/sh (POSIX) with
 * GNU or busybox tools.
 */
#ifndef SBXFS_REMOTE_SHELL_H
#define SBXFS_REMOTE_SHELL_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "sbxfs/strbuf.h"

/* Append s as one single-quoted shell word.  0 or the strbuf's error. */
int sh_quote(struct strbuf *sb, const char *s);

/*
 * Append a script built from fmt: %q takes a const char * and appends it
 * as one quoted word, %s a const char * appended as it is (shell text of
 * our own, never a name), %L a long long, %% a '%'; any other '%' and
 * what follows are copied.  0, -E2BIG past sb's maximum, or -ENOMEM.
 */
int sh_script(struct strbuf *sb, const char *fmt, ...);
int sh_vscript(struct strbuf *sb, const char *fmt, va_list ap);

/*
 * Append a command that runs `script` with /bin/sh -c while carrying it as
 * base64, so that the outer text is plain ASCII: it survives JSON encoders
 * that replace bytes which are not UTF-8, and shells that split words.
 * `env` (may be NULL) is a "NAME=value" assignment for the command.
 */
int sh_wrap_base64(struct strbuf *sb, const char *env, const char *script);

/*
 * Where an API has no call to signal a command, its processes carry
 * SH_CMD_ENV plus a marker of its own in their environment (the command
 * is started with that assignment before it), and sh_signal_marked()
 * appends the script that signals them: every process whose environment
 * holds it is stopped first, so that no shell sees its child die and
 * goes on meanwhile, then sent `sig` (1 to 64) and continued (SIGSTOP
 * and SIGCONT go alone).  A command just started may not have its
 * processes yet: the script looks again for up to 3 s, and then exits
 * ESRCH.  `marker` must be shell-safe text.
 */
#define SH_CMD_ENV "SBXFS_CMD="
int sh_signal_marked(struct strbuf *sb, const char *marker, int sig);

/*
 * The errno for a script's exit status: 0 for 0, -code for an errno value
 * the scripts use (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EPERM,
 * EACCES, EINVAL, EFBIG, ENOSPC, EXDEV, ELOOP, ENAMETOOLONG, EPIPE,
 * ESRCH), and 1 for any other status: a failure the caller describes
 * (its output in sbx_failf() text) and returns as -EIO.
 */
int sh_exit_errno(long code);

/* Shell tests: does "$v" exist (a dangling symlink does); is it a
 * directory that is not a symlink. */
#define SH_EXISTS(v) "{ [ -e \"$" v "\" ] || [ -L \"$" v "\" ]; }"
#define SH_REALDIR(v) "{ [ -d \"$" v "\" ] && ! [ -L \"$" v "\" ]; }"

/*
 * Shell text that renames "$a" to "$b" as rename(2) does, replacing a file
 * or an empty directory there; its status is mv's, with mv's message on
 * stdout.  GNU mv refuses to move a symlink over the file it points to
 * ("are the same file"), and busybox mv over a symlink it cannot follow (a
 * loop), both of which rename(2) allows: where a symlink is involved and
 * "$b" is no directory, the rename is redone with perl's rename, or
 * without perl by moving "$b" aside first.
 */
#define SH_RENAME_AB                                                                     \
	"{ mv -fT -- \"$a\" \"$b\" 2>&1 || { { [ -h \"$a\" ] || [ -h \"$b\" ]; } && "    \
	"! { [ -d \"$b\" ] && ! [ -h \"$b\" ]; } && "                                    \
	"{ perl -e 'rename($ARGV[0], $ARGV[1]) or exit 1' \"$a\" \"$b\" 2>/dev/null || " \
	"{ t=\"$b.sbxfs-mv.$$\"; mv -fT -- \"$b\" \"$t\" && mv -fT -- \"$a\" \"$b\" && " \
	"rm -f -- \"$t\"; }; }; }; }"

/*
 * The scripts of the POSIX calls, for the path(s) given; each exits with
 * the errno the call would give.
 *  mkdir: mkdir(2) with `mode` (setuid, setgid and sticky kept).
 *  unlink: unlink(2); a directory is -EISDIR.
 *  rename: rename(2) of `from` to `to`, replacing what is there as
 *    rename(2) does unless `noreplace` (RENAME_NOREPLACE).
 *  chmod: chmod(2) (of a symlink: of what it points to).
 *  truncate: truncate(2) of a file that exists.
 *  rmdir: rmdir(2) of `path` (never recursive).
 *  utimens: utimensat(2), on a symlink itself unless `follow`; ts as
 *    for it (UTIME_NOW, UTIME_OMIT).
 *  chown: lchown(2); uid or gid (uid_t)-1 leaves it.
 *  link: link(2) of `from` as `to`.
 *  symlink: symlink(2) of `target` at `path`.
 *  give: lchown(2) of a name just made to its creator, as a kernel makes
 *    it: uid, and gid unless its directory is set-group-ID (whose group
 *    it keeps).  `mode`: a regular file's permission bits, whose set-ID
 *    bits chown clears and give then sets again; 0 for other files.
 *    Exits 1 with chown's words when the sandbox's user may not.
 *  statfs: prints what sh_parse_statfs() reads.
 */
struct timespec;
int sh_mkdir(struct strbuf *sb, const char *path, mode_t mode);
int sh_unlink(struct strbuf *sb, const char *path);
int sh_rename(struct strbuf *sb, const char *from, const char *to, int noreplace);
int sh_chmod(struct strbuf *sb, const char *path, mode_t mode);
int sh_truncate(struct strbuf *sb, const char *path, off_t size);
int sh_rmdir(struct strbuf *sb, const char *path);
int sh_utimens(struct strbuf *sb, const char *path, const struct timespec ts[2],
	       int follow);
int sh_chown(struct strbuf *sb, const char *path, unsigned uid, unsigned gid);
int sh_link(struct strbuf *sb, const char *from, const char *to);
int sh_symlink(struct strbuf *sb, const char *target, const char *path);
int sh_give(struct strbuf *sb, const char *path, unsigned uid, unsigned gid, mode_t mode);
int sh_statfs(struct strbuf *sb, const char *path);

/* What the statfs script prints: stat -f -c of this. */
#define SH_STATFS_FMT "%S %b %f %a %c %d %l"

/* The output of the statfs script into *out: 0 or -EPROTO. */
int sh_parse_statfs(struct statvfs *out, const char *text);

#endif
