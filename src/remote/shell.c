/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/shell.h"

int sh_quote(struct strbuf *sb, const char *s)
{
	int rc = strbuf_add(sb, "'", 1);

	while (!rc && *s) {
		size_t n = strcspn(s, "'");

		rc = strbuf_add(sb, s, n);
		s += n;
		if (!rc && *s == '\'') {
			rc = strbuf_add(sb, "'\\''", 4);
			s++;
		}
	}
	return rc ? rc : strbuf_add(sb, "'", 1);
}

int sh_vscript(struct strbuf *sb, const char *fmt, va_list ap)
{
	int rc = 0;

	for (; *fmt && !rc; fmt++) {
		if (fmt[0] != '%' || !fmt[1]) {
			rc = strbuf_add(sb, fmt, 1);
			continue;
		}
		switch (*++fmt) {
		case 'q':
			rc = sh_quote(sb, va_arg(ap, const char *));
			break;
		case 's':
			rc = strbuf_addf(sb, "%s", va_arg(ap, const char *));
			break;
		case 'L':
			rc = strbuf_addf(sb, "%lld", va_arg(ap, long long));
			break;
		case '%':
			rc = strbuf_add(sb, "%", 1);
			break;
		default:
			rc = strbuf_add(sb, fmt - 1, 2);
			break;
		}
	}
	return rc;
}

int sh_script(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = sh_vscript(sb, fmt, ap);
	va_end(ap);
	return rc;
}

int sh_wrap_base64(struct strbuf *sb, const char *env, const char *script)
{
	int rc = 0;

	if (env)
		rc = strbuf_addf(sb, "%s ", env);
	/* $(...) would strip trailing newlines, which a script never needs. */
	if (!rc)
		rc = strbuf_addf(sb, "/bin/sh -c \"$(echo '");
	if (!rc)
		rc = b64_encode(sb, script, strlen(script));
	return rc ? rc : strbuf_addf(sb, "' | base64 -d)\"");
}

int sh_exit_errno(long code)
{
	static const int known[] = {
		ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY,    EPERM, EACCES, EINVAL,
		EFBIG,	ENOSPC, EXDEV,	 ELOOP,	 ENAMETOOLONG, EPIPE, ESRCH,
	};
	size_t i;

	if (code == 0)
		return 0;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (code == known[i])
			return -known[i];
	return 1;
}

int sh_rmdir(struct strbuf *sb, const char *path)
{
	/* rmdir(1) refuses a directory with anything in it, as rmdir(2) must. */
	return sh_script(sb,
			 "d=%q; [ -L \"$d\" ] && exit 20; "
			 "[ -d \"$d\" ] || { [ -e \"$d\" ] && exit 20; exit 2; }; "
			 "rmdir -- \"$d\" 2>/dev/null && exit 0; "
			 "[ -n \"$(ls -A -- \"$d\" 2>/dev/null)\" ] && exit 39; exit 5",
			 path);
}

int sh_utimens(struct strbuf *sb, const char *path, const struct timespec ts[2],
	       int follow)
{
	static const char *const flag[2] = { "-a", "-m" };
	int rc = sh_script(sb, "p=%q; " SH_EXISTS("p") " || exit 2; ", path), i;

	/* busybox's touch takes "@SECONDS" but no fraction: it gets whole
	 * seconds when GNU's form is refused. */
	for (i = 0; i < 2 && !rc; i++) {
		const char *h = follow ? "" : " -h";

		if (ts[i].tv_nsec == UTIME_OMIT)
			continue;
		if (ts[i].tv_nsec == UTIME_NOW)
			rc = strbuf_addf(sb, "touch -c%s %s -- \"$p\" 2>&1 || exit 5; ",
					 h, flag[i]);
		else
			rc = strbuf_addf(
				sb,
				"{ touch -c%s %s -d @%lld.%09ld -- \"$p\" 2>/dev/null || "
				"touch -c%s %s -d @%lld -- \"$p\" 2>&1; } || exit 5; ",
				h, flag[i], (long long)ts[i].tv_sec, ts[i].tv_nsec, h,
				flag[i], (long long)ts[i].tv_sec);
	}
	return rc;
}

int sh_chown(struct strbuf *sb, const char *path, unsigned uid, unsigned gid)
{
	char who[40] = "";

	if (uid != (unsigned)-1)
		snprintf(who, sizeof(who), "%u", uid);
	if (gid != (unsigned)-1)
		snprintf(who + strlen(who), sizeof(who) - strlen(who), ":%u", gid);
	return sh_script(sb,
			 "p=%q; " SH_EXISTS("p") " || exit 2; "
						 "chown -h %s -- \"$p\" 2>&1 || exit 1",
			 path, who);
}

int sh_link(struct strbuf *sb, const char *from, const char *to)
{
	return sh_script(
		sb,
		"a=%q; b=%q; " SH_EXISTS("a") " || exit 2; " SH_EXISTS(
			"b") " && exit 17; " SH_REALDIR("a") " && exit 1; "
							     "ln -- \"$a\" \"$b\" 2>&1 || exit 5",
		from, to);
}

int sh_symlink(struct strbuf *sb, const char *target, const char *path)
{
	return sh_script(
		sb,
		"t=%q; p=%q; " SH_EXISTS("p") " && exit 17; "
					      "ln -s -- \"$t\" \"$p\" 2>&1 || exit 5",
		target, path);
}

int sh_signal_marked(struct strbuf *sb, const char *marker, int sig)
{
	int alone = sig == SIGSTOP || sig == SIGCONT;
	char t[160];

	if (sig <= 0 || sig > 64)
		return -EINVAL;
	if (snprintf(t, sizeof(t), SH_CMD_ENV "%s", marker) >= (int)sizeof(t))
		return -E2BIG;
	return sh_script(
		sb,
		"t=%q; i=0; while :; do p=; for d in /proc/[0-9]*; do "
		"tr '\\0' '\\n' < \"$d/environ\" 2>/dev/null | grep -qx \"$t\" && "
		"p=\"$p ${d#/proc/}\"; done; [ -n \"$p\" ] && break; "
		"i=$((i+1)); [ $i -lt 30 ] || exit %L; sleep 0.1; done; "
		"%skill -%L $p 2>/dev/null; %sexit 0",
		t, (long long)ESRCH, alone ? "" : "kill -STOP $p 2>/dev/null; ",
		(long long)sig, alone ? "" : "kill -CONT $p 2>/dev/null; ");
}

int sh_give(struct strbuf *sb, const char *path, unsigned uid, unsigned gid, mode_t mode)
{
	char m[8];
	int rc = sh_script(sb,
			   "p=%q; o=%L; [ -g \"${p%%/*}/\" ] || o=$o:%L; "
			   "chown -h \"$o\" -- \"$p\" 2>&1 || exit 1",
			   path, (long long)uid, (long long)gid);

	if (rc || !(mode & (S_ISUID | S_ISGID)))
		return rc;
	snprintf(m, sizeof(m), "%05o", (unsigned)(mode & 07777));
	return strbuf_addf(sb, "; chmod %s -- \"$p\" 2>&1 || exit 1", m);
}

int sh_statfs(struct strbuf *sb, const char *path)
{
	return sh_script(sb, "stat -f -c %q -- %q 2>&1 || exit 5", SH_STATFS_FMT, path);
}

int sh_parse_statfs(struct statvfs *out, const char *text)
{
	unsigned long long bsize, blocks, bfree, bavail, files, ffree, namemax;

	if (!text || sscanf(text, "%llu %llu %llu %llu %llu %llu %llu", &bsize, &blocks,
			    &bfree, &bavail, &files, &ffree, &namemax) != 7)
		return -EPROTO;
	memset(out, 0, sizeof(*out));
	out->f_bsize = out->f_frsize = bsize;
	out->f_blocks = blocks;
	out->f_bfree = bfree;
	out->f_bavail = bavail;
	out->f_files = files;
	out->f_ffree = out->f_favail = ffree;
	out->f_namemax = namemax;
	return 0;
}

int sh_mkdir(struct strbuf *sb, const char *path, mode_t mode)
{
	char m[8];

	/* Five digits: GNU chmod and mkdir keep a directory's setuid and
	 * setgid bits under a shorter numeric mode. */
	snprintf(m, sizeof(m), "%05o", (unsigned)(mode & 07777));
	return sh_script(sb,
			 "p=%q; " SH_EXISTS("p") " && exit 17; "
						 "mkdir -m %s -- \"$p\" 2>&1 && exit 0; "
						 "[ -d \"${p%%/*}/\" ] || exit 2; exit 5",
			 path, m);
}

int sh_unlink(struct strbuf *sb, const char *path)
{
	return sh_script(sb,
			 "p=%q; " SH_EXISTS("p") " || exit 2; " SH_REALDIR(
				 "p") " && exit 21; rm -f -- \"$p\" 2>&1 || exit 5",
			 path);
}

int sh_rename(struct strbuf *sb, const char *from, const char *to, int noreplace)
{
	return sh_script(
		sb,
		"a=%q; b=%q; nr=%s; [ \"$a\" = \"$b\" ] && exit 0; " SH_EXISTS(
			"a") " || exit 2; "
			     "case \"$b\" in \"$a\"/*) exit 22;; esac; "
			     "if " SH_EXISTS(
				     "b") "; then [ $nr = 1 ] && exit 17; "
					  "if " SH_REALDIR("a") "; then " SH_REALDIR(
						  "b") " || exit 20; "
						       "[ -z \"$(ls -A -- \"$b\")\" ] || exit 39; "
						       "elif " SH_REALDIR(
							       "b") "; then exit 21; fi; fi; " SH_RENAME_AB
								    " || exit 5",
		from, to, noreplace ? "1" : "0");
}

int sh_chmod(struct strbuf *sb, const char *path, mode_t mode)
{
	char m[8];

	snprintf(m, sizeof(m), "%05o", (unsigned)(mode & 07777));
	return sh_script(sb,
			 "p=%q; " SH_EXISTS("p") " || exit 2; "
						 "chmod %s -- \"$p\" 2>&1 || exit 5",
			 path, m);
}

int sh_truncate(struct strbuf *sb, const char *path, off_t size)
{
	return sh_script(
		sb,
		"p=%q; " SH_EXISTS("p") " || exit 2; [ -d \"$p\" ] && exit 21; "
					"truncate -c -s %L -- \"$p\" 2>&1 || exit 5",
		path, (long long)size);
}
