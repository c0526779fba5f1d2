/* SPDX-License-Identifier: MIT */
/*
 * gzip streams from a sandbox: what its gzip made of a prefetch's tar,
 * where the bytes travel as text through an API that bounds them
 * (REMOTE_TEXT_OUTPUT, struct remote's output_max).  The stream is
 * hostile: what it inflates to is bounded by the caller's strbuf, and a
 * stream cut short or corrupt still gives what came before the damage.
 */
#ifndef SBXFS_REMOTE_GUNZIP_H
#define SBXFS_REMOTE_GUNZIP_H

#include <stddef.h>

#include "sbxfs/strbuf.h"

/* Does buf begin as a gzip stream does (1f 8b 08)? */
int gunzip_is(const char *buf, size_t len);

/*
 * Inflate the gzip stream in[0..len) (one member; bytes after it are
 * ignored) and append it to out, at most out->max bytes in all.  0 once
 * the stream ended whole; -EFBIG past out's maximum, -EPROTO for a
 * stream cut short or corrupt, -ENOMEM: out holds what was inflated
 * before.
 */
int gunzip(struct strbuf *out, const char *in, size_t len);

#endif
