/* SPDX-License-Identifier: MIT */
/* Validation of names and paths that come from users or from a sandbox. */
#ifndef SBXFS_NAMES_H
#define SBXFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* A sandbox name: 1..SBX_NAME_MAX bytes of [A-Za-z0-9._-], starting with a
 * letter or digit.  So never "", ".", ".." or anything with '/'. */
bool sbx_name_valid(const char *name);

/* A directory entry name as a sandbox reports it: 1..255 bytes, no '/' and
 * not "." or "..".  Any other byte is allowed. */
bool sbx_entry_name_valid(const char *name);

/*
 * What the kernel should be told a symlink at `linkpath` (absolute, inside
 * a sandbox) points to, so that following it through the mount stays
 * inside the sandbox's root/ and reaches what the sandbox itself would.
 * A relative target that stays inside is kept as it is; an absolute one,
 * or one whose ".." climbs above "/", becomes "../" once per directory
 * above the link, then the target resolved lexically from "/".  Returns 0
 * or -ENAMETOOLONG.
 */
int sbx_symlink_confine(char *out, size_t size, const char *linkpath, const char *target);

/* ISO 8601 UTC time ("2026-11-21T22:31:05Z") into out (>= 21 bytes). */
void sbx_time_iso(char *out, size_t size, long long t);

#endif
