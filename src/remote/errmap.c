/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "sbxfs/remote/errmap.h"
#include "sbxfs/remote/json.h"

#define TEXT_MAX 300

const struct errmap errmap_http[] = {
	{ 400, EINVAL },    { 401, EACCES }, { 403, EACCES }, { 404, ENOENT },
	{ 408, ETIMEDOUT }, { 409, EBUSY },  { 413, EFBIG },  { 422, EINVAL },
	{ 429, EAGAIN },    { 0, 0 },
};

int errmap_errno(const struct errmap *const *maps, long code)
{
	const struct errmap *m;

	for (; *maps; maps++)
		for (m = *maps; m->code; m++)
			if (m->code == code)
				return m->err;
	return EIO;
}

void errmap_text(char *out, size_t size, const char *body, size_t len,
		 const char *const *keys)
{
	cJSON *j = len ? json_parse(body, len) : NULL;
	const char *msg = NULL;

	if (cJSON_IsObject(j)) {
		for (; keys && *keys && !msg; keys++) {
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, *keys);

			if (cJSON_IsArray(m))
				m = cJSON_GetArrayItem(m, 0);
			if (cJSON_IsString(m))
				msg = m->valuestring;
		}
	} else if (!j && len && len < TEXT_MAX && body) {
		msg = body;
	}
	json_text(out, size, msg, msg == body ? len : TEXT_MAX);
	cJSON_Delete(j);
}

int errmap_fail_http(const char *name, const char *what, long status, const char *text,
		     const char *extra, int err)
{
	sbx_failf("%s: %s: HTTP %ld%s%s%s", name, what, status,
		  text && text[0] ? ": " : "", text ? text : "", extra ? extra : "");
	return -err;
}
