/* SPDX-License-Identifier: MIT */
/* The config file: see config.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sbxfs/config.h"

int config_secret(const char *key)
{
	static const char *const secrets[] = { "api_key", "token", "jwt_token", NULL };

	for (size_t i = 0; secrets[i]; i++)
		if (!strcmp(key, secrets[i]))
			return 1;
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].section);
		free(c->v[i].key);
		free(c->v[i].value);
	}
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* s without the blanks at both ends (in place). */
static char *trim(char *s)
{
	char *end;

	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int valid_name(const char *s)
{
	return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(s);
}

static int add(struct config *c, const char *section, const char *key, const char *value,
	       unsigned line)
{
	struct config_entry *v = realloc(c->v, (c->n + 1) * sizeof(*v)), *e;

	if (!v)
		return -ENOMEM;
	c->v = v;
	e = &v[c->n];
	e->section = section ? strdup(section) : NULL;
	e->key = strdup(key);
	e->value = strdup(value);
	e->line = line;
	c->n++;
	if ((section && !e->section) || !e->key || !e->value)
		return -ENOMEM;
	return 0;
}

/* One line (trimmed, not blank, no comment) into c; section is the
 * current section (updated by a "[name]" line). */
static int parse_line(struct config *c, char *ln, char *section, size_t secsize,
		      int (*known)(const char *key), const char *path, unsigned line,
		      char *why, size_t size)
{
	char *eq, *key, *value;

	if (ln[0] == '[') {
		char *end = strchr(ln, ']');

		if (!end || end[1] || (size_t)(end - ln - 1) >= secsize) {
			snprintf(why, size, "%s:%u: a section is \"[NAME]\"", path, line);
			return -EINVAL;
		}
		*end = '\0';
		if (!valid_name(trim(ln + 1))) {
			snprintf(why, size, "%s:%u: \"%s\" is no provider name", path,
				 line, ln + 1);
			return -EINVAL;
		}
		snprintf(section, secsize, "%s", trim(ln + 1));
		return 0;
	}
	eq = strchr(ln, '=');
	if (!eq) {
		snprintf(why, size, "%s:%u: expected \"key = value\"", path, line);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(ln);
	value = trim(eq + 1);
	if (!valid_name(key) || !known(key)) {
		snprintf(why, size, "%s:%u: unknown key \"%.64s\"", path, line, key);
		return -EINVAL;
	}
	if (!strcmp(key, "provider") && section[0]) {
		snprintf(why, size, "%s:%u: \"provider\" belongs before any section",
			 path, line);
		return -EINVAL;
	}
	return add(c, section[0] ? section : NULL, key, value, line);
}

int config_load(struct config *c, const char *path, int (*known)(const char *key),
		char *why, size_t size)
{
	char buf[4096], section[64] = "";
	unsigned line = 0, secret_line = 0;
	const char *secret = NULL;
	struct stat st;
	FILE *f = fopen(path, "re");
	int rc = 0;

	c->v = NULL;
	c->n = 0;
	if (!f) {
		rc = -errno;
		if (rc != -ENOENT)
			snprintf(why, size, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while (!rc && fgets(buf, sizeof(buf), f)) {
		char *ln;

		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			snprintf(why, size, "%s:%u: line longer than %zu bytes", path,
				 line, sizeof(buf) - 2);
			rc = -EINVAL;
			break;
		}
		buf[strcspn(buf, "\n")] = '\0';
		ln = trim(buf);
		if (!ln[0] || ln[0] == '#')
			continue;
		rc = parse_line(c, ln, section, sizeof(section), known, path, line, why,
				size);
		if (!rc && c->n && config_secret(c->v[c->n - 1].key) && !secret) {
			secret = c->v[c->n - 1].key;
			secret_line = line;
		}
	}
	if (!rc && fstat(fileno(f), &st) == 0 && secret && (st.st_mode & 077)) {
		snprintf(
			why, size,
			"%s holds a credential (%s, line %u) but other users can read or "
			"write it (mode %04o): chmod 600 it",
			path, secret, secret_line, (unsigned)(st.st_mode & 07777));
		rc = -EPERM;
	}
	fclose(f);
	if (rc)
		config_free(c);
	return rc;
}
