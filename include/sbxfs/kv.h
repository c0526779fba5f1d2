/* SPDX-License-Identifier: MIT */
/* An ordered list of "key value" string pairs: options, create arguments,
 * status lines.  The list owns its strings. */
#ifndef SBXFS_KV_H
#define SBXFS_KV_H

#include <stddef.h>

struct sbx_kv {
	char *key;
	char *value;
};

struct sbx_kvlist {
	struct sbx_kv *v;
	size_t n, cap;
};

/* Append copies of key and value.  Returns 0 or -ENOMEM. */
int sbx_kv_add(struct sbx_kvlist *l, const char *key, const char *value);
int sbx_kv_addf(struct sbx_kvlist *l, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The value of the first pair with this key, or NULL. */
const char *sbx_kv_get(const struct sbx_kvlist *l, const char *key);
void sbx_kv_free(struct sbx_kvlist *l);

#endif
