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

#endif
