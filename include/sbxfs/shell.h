/* SPDX-License-Identifier: MIT */
/* Building shell command lines for providers that run commands to do what
 * their file API lacks.  Any byte but NUL survives quoting. */
#ifndef SBXFS_SHELL_H
#define SBXFS_SHELL_H

#include <stddef.h>

#include "sbxfs/strbuf.h"

/* Append s as one single-quoted shell word. */
int sh_quote(struct strbuf *sb, const char *s);

/* Append the base64 encoding of data (standard alphabet, padded). */
int sh_base64(struct strbuf *sb, const void *data, size_t len);

/*
 * Append a command that runs `script` with /bin/sh -c while carrying it as
 * base64, so that the outer text is plain ASCII: it survives JSON encoders
 * that replace bytes which are not UTF-8, and shells that split words.
 * `env` (may be NULL) is a "NAME=value" assignment for the command.
 */
int sh_wrap_base64(struct strbuf *sb, const char *env, const char *script);

/*
 * Shell text that renames "$a" to "$b" as rename(2) does, replacing a file
 * or an empty directory there; its status is mv's, with mv's message on
 * stdout.  GNU mv refuses to move a symlink over the file it points to
 * ("are the same file"), which rename(2) allows: that case is redone with
 * perl's rename, or without perl by moving "$b" aside first.
 */
#define SH_RENAME_AB                                                                     \
	"{ mv -fT -- \"$a\" \"$b\" 2>&1 || { [ -h \"$a\" ] && ! [ -d \"$b\" ] && "       \
	"{ perl -e 'rename($ARGV[0], $ARGV[1]) or exit 1' \"$a\" \"$b\" 2>/dev/null || " \
	"{ t=\"$b.sbxfs-mv.$$\"; mv -fT -- \"$b\" \"$t\" && mv -fT -- \"$a\" \"$b\" && " \
	"rm -f -- \"$t\"; }; }; }; }"

#endif
