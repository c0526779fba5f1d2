/* SPDX-License-Identifier: MIT */
/*
 * File metadata from a shell in the sandbox, for providers whose file API
 * knows no modes, owners, link counts or symlinks.
 *
 * One record format: what GNU find -printf FIND_PRINTF prints,
 *
 *     type mode nlink uid gid size atime mtime ctime inode name NUL
 *
 * with the type as find's %y letter, the mode in octal, times as
 * seconds.fraction, and the name as the last path component.  Where find
 * has no -printf (busybox), stat -c FIND_STAT_FMT gives the same fields,
 * the raw st_mode in hex with an 'x' before it, whole seconds, the whole
 * path and a newline; the scripts below add the NUL.  The parser takes
 * either.
 *
 * The records are bytes from the sandbox: the parser is bounded by the
 * record's NUL, checks every field, and refuses rather than guesses.
 */
#ifndef SBXFS_REMOTE_FIND_H
#define SBXFS_REMOTE_FIND_H

#include <stddef.h>
#include <sys/stat.h>

#include "sbxfs/provider.h"
#include "sbxfs/strbuf.h"

#define FIND_PRINTF "%y %m %n %U %G %s %A@ %T@ %C@ %i %f\\0"
#define FIND_STAT_FMT "x%f %h %u %g %s %X %Y %Z %i %n"
/* A shell test: is there a find with -printf? */
#define FIND_HAVE_PRINTF "find / -maxdepth 0 -printf '' 2>/dev/null"

/*
 * Append shell text that prints the record of the file named by the
 * shell variable `var` (lstat: a symlink is itself), and the text that
 * prints the records of every entry of the directory named by `var`
 * (not "." or "..", not recursive).  Both assume "$var" exists; their
 * status is find's or stat's.  0 or the strbuf's -E2BIG/-ENOMEM.
 */
int find_script_stat(struct strbuf *sb, const char *var);
int find_script_list(struct strbuf *sb, const char *var);

/*
 * Subtrees in one script, for the readtree slot (provider.h).  The records
 * are those above with two fields first, '+' (or '-' for a directory the
 * sandbox's user cannot read, left out of the walk) and the device
 * number, and the name is the path below the directory walked (find's
 * %P; stat's "./src/main.c"):
 *
 *     + dev type mode nlink uid gid size atime mtime ctime inode rel NUL
 *
 * and a symlink's record is followed by its target: "L " target NUL.
 * The script, run in the directory (cd'ed into), prints the record of the
 * directory itself (rel "") and of its entries, a mark "/" NUL, then the
 * walk depth first on the directory's file system, and a second mark,
 * all of the walk cut after `max_bytes`.  `follow`: give what symlinks
 * point to (a provider whose file API follows them).
 */
#define FIND_TREE_PRINTF "%D %y %m %n %U %G %s %A@ %T@ %C@ %i %P\\0"
#define FIND_TREE_STAT_FMT "%d " FIND_STAT_FMT
int find_script_tree(struct strbuf *sb, int follow, size_t max_bytes);

/*
 * The records of a tree script in buf[0..len) (modified in place) to fn,
 * as the readtree slot gives them: each entry with its path below the
 * directory, marked SBX_TREE_OPAQUE where the walk leaves it out (it
 * could not be read, or is on another device), a symlink with the target
 * that follows its record (none if it is missing, empty or over
 * PATH_MAX), and the marks.  A record
 * that does not parse or names what cannot be shown is left out before
 * the first mark and ends the walk after it.  0 once the first mark was
 * seen (whole or cut after it), -EPROTO if it never came.
 */
int find_tree_each(char *buf, size_t len, sbx_treeent_fn fn, void *ctx);

/*
 * Parse one NUL-terminated record `rec` (modified in place) into *st and
 * *name, which points into rec.  st_ino is left 0: the tree numbers its
 * own inodes, and a file made here has no remote one until it is saved.
 * -EPROTO for anything that is not such a record.
 */
int find_parse(char *rec, struct stat *st, const char **name);

/*
 * The output of a stat script: exactly one record, ending with its NUL,
 * in buf[0..len) (modified in place).  0 or -EPROTO.
 */
int find_parse_one(char *buf, size_t len, struct stat *st);

/*
 * Each record of a listing in buf[0..len) (modified in place) to fn, in
 * order.  Records that do not parse, and names that are not a valid
 * entry (sbx_entry_name_valid()), are left out, never shown wrong; a last
 * record without its NUL (an interrupted listing) ends the walk.  Returns
 * 0 once every record was seen or fn returned nonzero.
 */
int find_each(char *buf, size_t len, sbx_dirent_fn fn, void *ctx);

#endif
