/* SPDX-License-Identifier: MIT */
/* Times as remote services write them, and the monotonic clock that
 * bounds every wait of the remote providers. */
#ifndef SBXFS_REMOTE_TIME_H
#define SBXFS_REMOTE_TIME_H

#include <time.h>

/*
 * An RFC 3339 time ("2026-06-01T15:16:34.123456789Z", any offset, 'T' or
 * 't' or ' ' between date and time, 'Z' or 'z'), or Go's time.String()
 * form ("2026-06-01 15:16:34.123456789 +0000 UTC"), into *ts.  A time
 * without a zone is UTC.  Digits past nanoseconds are dropped.  Returns 0,
 * or -EINVAL (ts untouched) for NULL or anything else.
 */
int rfc3339_parse(struct timespec *ts, const char *s);

/* Milliseconds on CLOCK_MONOTONIC since *t0 (taken on that clock). */
long ms_since(const struct timespec *t0);

#endif
