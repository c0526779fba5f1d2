/* SPDX-License-Identifier: MIT */
/* The HTTP requests every remote provider makes the same way.  See
 * request.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/log.h"
#include "sbxfs/remote/request.h"

static const char *const json_header[] = { "Content-Type: application/json", NULL };

int remote_request(struct http_client *http, struct http_resp *resp, const char *name,
		   const char *method, const char *url, cJSON *json, int flags,
		   size_t max_body, int timeout_ms)
{
	struct http_req req = HTTP_REQ_INIT;
	char *body = NULL;
	int rc;

	req.method = method;
	req.url = url;
	req.idempotent = flags & REMOTE_REQ_IDEMPOTENT;
	req.transfer = flags & REMOTE_REQ_TRANSFER;
	req.as_is = !!(flags & REMOTE_REQ_AS_IS);
	req.timeout_ms = timeout_ms;
	req.max_body = max_body;
	if (json) {
		body = cJSON_PrintUnformatted(json);
		if (!body)
			return -ENOMEM;
		req.body = body;
		req.body_len = strlen(body);
		req.headers = json_header;
	}
	rc = http_do(http, &req, resp);
	free(body);
	if (rc)
		sbx_failf("%s: %s", name, sbx_fail_text());
	return rc;
}

int remote_download(struct http_client *http, struct http_resp *resp, const char *name,
		    const char *url, int fd, uint64_t max, uint64_t size,
		    const char *path)
{
	struct http_req req = HTTP_REQ_INIT;
	int rc;

	req.method = "GET";
	req.url = url;
	/* http_do() empties the copy first: it ends up holding what came. */
	req.out_fd = fd;
	req.idempotent = 1;
	req.transfer = 1;
	/* A server that sends more than it announced is still bounded. */
	req.max_body = max;
	req.as_is = size >= REMOTE_DOWNLOAD_AS_IS_MIN;
	rc = http_do(http, &req, resp);
	if (rc)
		sbx_failf("%s: download \"%s\": %s", name, path, sbx_fail_text());
	return rc;
}

int remote_check_credentials(struct http_client *http, const char *name, const char *url,
			     size_t max_body, const long *refused, const char *what,
			     int (*fail)(const char *what, const struct http_resp *r,
					 const struct errmap *over))
{
	struct http_resp r;
	int rc = remote_request(http, &r, name, "GET", url, NULL, 0, max_body, 0);

	if (rc == -EPROTO)
		return rc; /* an untrusted certificate does not get better */
	if (rc) {
		sbx_warn("%s; mounting anyway", sbx_fail_text());
		return 0;
	}
	for (; *refused; refused++)
		if (r.status == *refused)
			break;
	if (*refused)
		rc = fail(what, &r, NULL);
	http_resp_release(&r);
	return rc;
}
