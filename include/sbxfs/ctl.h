/* SPDX-License-Identifier: MIT */
/*
 * Control-file messages, the Plan 9 way: one command per line, several
 * lines per write, each parsed against a table of verbs.  Fields are split
 * on blanks; a field may be quoted with '...' (no escapes inside, '' for a
 * literal quote) so that values can hold blanks.
 */
#ifndef SBXFS_CTL_H
#define SBXFS_CTL_H

#include <stddef.h>

#define CTL_MAX_ARGS 64
#define CTL_LINE_MAX 4096   /* longest line */
#define CTL_WRITE_MAX 65536 /* longest write to a control file */

struct ctl_cmd {
	int index; /* which entry of the table; -1 for an unknown verb */
	int argc;  /* argv[0] is the verb */
	char *argv[CTL_MAX_ARGS + 1];
};

struct ctl_verb {
	const char *verb;
	int min_args; /* arguments after the verb */
	int max_args; /* -1: any number */
};

/*
 * Split `line` (modified in place: fields are NUL-terminated) and look the
 * verb up in `table` (ended by a NULL verb).  On failure fills `why` with a
 * message that quotes the offending line, and returns -EINVAL (unknown verb,
 * bad argument count, bad quoting).  A blank line gives -ENODATA.  `out`
 * is always set: after an unknown verb, argc > 0 and index is -1, so the
 * caller may offer the fields to someone else; after any other failure,
 * argc is 0.
 */
int ctl_parse_line(struct ctl_cmd *out, char *line, const struct ctl_verb *table,
		   char *why, size_t whysize);

/* Walk the lines of a write: returns a pointer to the next line (NUL
 * terminated in place, without '\n' or a trailing '\r') and advances *pos,
 * or NULL at the end.  `buf` must have room for the terminating NUL at
 * buf[len]. */
char *ctl_next_line(char *buf, size_t len, size_t *pos);

/* Split "key=value" in place.  Returns -EINVAL if no '=' or empty key. */
int ctl_split_kv(char *arg, char **key, char **value);

#endif
