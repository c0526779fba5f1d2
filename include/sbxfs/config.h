/* SPDX-License-Identifier: MIT */
/*
 * The config file, $XDG_CONFIG_HOME/sbxfs/config (or -o config=FILE):
 * defaults for sbxfs's -o options and the providers' credentials, one
 * "key = value" per line, in sections:
 *
 *   # a comment
 *   attr_timeout = 10        (before any section: whatever the provider)
 *   [daytona]                (only when the provider is daytona)
 *   api_key = dtn_...
 *
 * Blank lines and lines whose first character that is not blank is '#'
 * are skipped; blanks around keys and values are dropped; a value runs to
 * the end of its line.  The command line beats the file, and the file
 * beats the environment (main.c applies it).
 */
#ifndef SBXFS_CONFIG_H
#define SBXFS_CONFIG_H

#include <stddef.h>

struct config_entry {
	char *section; /* NULL before the first [section] */
	char *key;
	char *value;
	unsigned line;
};

struct config {
	struct config_entry *v;
	size_t n;
};

/*
 * Read the config file at `path`.  known(key) tells the keys sbxfs takes.
 * Returns 0; -ENOENT if there is no such file; or -errno with a one-line
 * reason in why ("PATH:LINE: ..." for a line that is not one): -EINVAL
 * for a line that is no "key = value", "[section]" or comment, or an
 * unknown key; -EPERM for a file that other users may read (or write)
 * while it holds a credential (a key that config_secret() names); what
 * opening it gave otherwise.
 */
int config_load(struct config *c, const char *path, int (*known)(const char *key),
		char *why, size_t size);
void config_free(struct config *c);

/* Whether a key holds a credential: api_key, token, jwt_token, ... */
int config_secret(const char *key);

#endif
