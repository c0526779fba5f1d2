/* SPDX-License-Identifier: MIT */
/*
 * JSON as the remote providers read it: typed fields of cJSON objects,
 * bodies parsed with their length (never as C strings), text checked to
 * be UTF-8 before it goes into a JSON string, and the server's words
 * made fit for a message.  Nothing here allocates except json_parse().
 */
#ifndef SBXFS_REMOTE_JSON_H
#define SBXFS_REMOTE_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* The string o.key; NULL if o is no object, or key is missing or is not a
 * string.  Borrowed from o. */
const char *json_str(const cJSON *o, const char *key);

/* The number o.key into *out: 1, or 0 (out untouched) if there is none. */
int json_num(const cJSON *o, const char *key, double *out);

/* Parse buf[0..len) (buf may be NULL when len is 0); NULL if it is not
 * JSON.  The caller frees the result with cJSON_Delete(). */
cJSON *json_parse(const char *buf, size_t len);

/* Is s valid UTF-8 (what JSON text must be): no overlong forms, no
 * surrogates, nothing past U+10FFFF? */
int json_utf8_valid(const char *s);

/*
 * Copy at most `max` bytes of the server's text s (may be NULL) into out
 * (size bytes, always terminated) for a message: line breaks and tabs
 * become blanks, other bytes outside printable ASCII '?', and trailing
 * blanks go.  Returns out.
 */
char *json_text(char *out, size_t size, const char *s, size_t max);

/* A `new` argument that a create body carries as a whole number. */
struct json_int_arg {
	const char *key;   /* the argument's key: "cpu" */
	const char *field; /* the body's field: "cpu_shares" */
	long min, max;	   /* the values taken */
};

/*
 * If `key` is one of `args` (a list ending with a NULL key), add its
 * value v to `body` as that field: 1 when added, 0 when key is none of
 * them, -EINVAL with text for a value that is no whole number from min
 * to max.
 */
int json_add_int_arg(cJSON *body, const struct json_int_arg *args, const char *key,
		     const char *v);

#endif
