/* SPDX-License-Identifier: MIT */
/*
 * sbxfs --check: what a new user lacks to mount sandboxes, each with its
 * fix, one line per check ("ok   WHAT: ..." or "FAIL WHAT: ...: FIX").
 * This module checks the host (FUSE, fusermount3, and for `local`
 * bubblewrap and user namespaces); main.c adds the provider's checks (its
 * options and credentials, then reaching its service) through
 * check_report().
 */
#ifndef SBXFS_CHECK_H
#define SBXFS_CHECK_H

#include <stdio.h>

struct check {
	FILE *out;
	int failed; /* checks that failed */
};

/* One result: what was checked, and (printf) what came of it. */
void check_report(struct check *c, int ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The host's part for `provider`. */
void check_host(struct check *c, const char *provider);

#endif
