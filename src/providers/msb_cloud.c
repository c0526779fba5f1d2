/* SPDX-License-Identifier: MIT */
/*
 * microsandbox: the cloud backend (-o backend=cloud, or MSB_BACKEND=cloud).
 *
 * The lifecycle is the cloud's REST API, under MSB_API_URL (default
 * https://api.microsandbox.dev) with `Authorization: Bearer MSB_API_KEY`:
 *
 *   GET    /v1/sandboxes?limit=&cursor=        list, a page at a time
 *   GET    /v1/sandboxes/by-name/NAME          one sandbox
 *   POST   /v1/sandboxes?start=true&wait_for=running&wait_timeout=S
 *   POST   /v1/sandboxes/by-name/NAME/start?wait_for=running&wait_timeout=S
 *   POST   /v1/sandboxes/by-name/NAME/stop
 *   DELETE /v1/sandboxes/by-name/NAME
 *
 * and the agent is the same relay as agent.sock, reached over the
 * WebSocket /v1/sandboxes/ID/agent (ID the sandbox's uuid).  That
 * WebSocket is a byte pipe whose message boundaries mean nothing:
 * ws_pipe_open() makes it a stream socket, so msb_agent.c reads frames
 * from it as from agent.sock.
 */
#include "msb.h"
#include "sbxfs/http.h"
#include "sbxfs/log.h"
#include "sbxfs/remote/errmap.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/opts.h"
#include "sbxfs/remote/request.h"
#include "sbxfs/ws.h"

#define DEFAULT_URL "https://api.microsandbox.dev"
#define START_WAIT_S 90 /* what the server waits for a start */
#define START_MS ((START_WAIT_S + 5) * 1000)
#define PAGE 100       /* sandboxes a page */
#define PAGES_MAX 1000 /* pages of one listing */
#define CURSOR_MAX 1024
#define BODY_MAX (4u << 20)

/* Where the cloud's words differ from the common HTTP table: a sandbox
 * that cannot start is the runtime's failure. */
static const struct errmap cloud_errors[] = {
	{ 502, EIO },
	{ 0, 0 },
};

static const char *const error_keys[] = { "message", NULL };

static int cloud_fail(const char *what, const struct http_resp *r,
		      const struct errmap *over)
{
	const struct errmap *const maps[] = { over ? over : cloud_errors, cloud_errors,
					      errmap_http, NULL };
	char text[320];

	errmap_text(text, sizeof(text), r->body.buf, r->body.len, error_keys);
	if (!text[0]) {
		/* {"error": {"code", "message"}} */
		cJSON *j = json_parse(r->body.buf, r->body.len);
		const char *msg =
			json_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");

		if (msg)
			json_text(text, sizeof(text), msg, 300);
		cJSON_Delete(j);
	}
	return errmap_fail_http("microsandbox", what, r->status, text, NULL,
				errmap_errno(maps, r->status));
}

/*
 * One request: {api_url}{path}, with `body` (may be NULL); a 2xx answer
 * into *r (released by the caller), else -errno with text (the statuses
 * of `over` first).  timeout_ms 0: the provider's.
 */
static int call(struct msb *m, struct http_resp *r, const char *method, const char *path,
		cJSON *body, int flags, int timeout_ms, const char *what,
		const struct errmap *over)
{
	struct strbuf url = STRBUF_INIT(8192);
	int rc = strbuf_addf(&url, "%s%s", m->api_url, path) ? -ENOMEM : 0;

	if (!rc)
		rc = remote_request(m->http, r, "microsandbox", method, url.buf, body,
				    flags, BODY_MAX, timeout_ms);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r->status < 200 || r->status > 299) {
		rc = cloud_fail(what, r, over);
		http_resp_release(r);
	}
	return rc;
}

/*
 * A request about sandbox `box`: METHOD {api_url}/v1/sandboxes/by-name/BOX
 * {suffix}, whose failure text names "VERB sandbox "BOX"" (`what`, kept
 * for the caller's own texts).  As call().
 */
static int box_call(struct msb *m, struct http_resp *r, const char *method,
		    const char *box, const char *suffix, cJSON *body, int flags,
		    int timeout_ms, const char *verb, char what[128])
{
	struct strbuf path = STRBUF_INIT(4096);
	int rc = strbuf_addf(&path, "/v1/sandboxes/by-name/");

	snprintf(what, 128, "%s sandbox \"%s\"", verb, box);
	if (!rc)
		rc = http_escape(&path, box);
	if (!rc)
		rc = strbuf_addf(&path, "%s", suffix);
	rc = rc ? -ENOMEM
		: call(m, r, method, path.buf, body, flags, timeout_ms, what, NULL);
	strbuf_release(&path);
	return rc;
}

int msb_cloud_list(struct msb *m, int (*fn)(void *ctx, const struct msb_box *b),
		   void *ctx)
{
	char cursor[CURSOR_MAX] = "";
	int rc = 0;

	for (int page = 0; page < PAGES_MAX; page++) {
		struct strbuf path = STRBUF_INIT(CURSOR_MAX + 64);
		struct http_resp r;

		rc = strbuf_addf(&path, "/v1/sandboxes?limit=%d", PAGE);
		if (!rc && cursor[0])
			rc = strbuf_addf(&path, "&cursor=%s", cursor);
		rc = rc ? -ENOMEM
			: call(m, &r, "GET", path.buf, NULL, REMOTE_REQ_IDEMPOTENT, 0,
			       "list sandboxes", NULL);
		strbuf_release(&path);
		if (rc)
			return rc;
		rc = msb_parse_cloud_page(r.body.buf ? r.body.buf : "", r.body.len,
					  cursor, sizeof(cursor), fn, ctx);
		http_resp_release(&r);
		if (rc == -EPROTO)
			sbx_failf(
				"microsandbox: list sandboxes: the answer is not a page "
				"of sandboxes");
		if (rc || !cursor[0])
			return rc;
	}
	return 0;
}

int msb_cloud_inspect(struct msb *m, struct msb_box *b, struct msb_runtime *rt,
		      const char *box)
{
	struct http_resp r;
	char what[128];
	int rc = box_call(m, &r, "GET", box, "", NULL, REMOTE_REQ_IDEMPOTENT, 0, "get",
			  what);

	if (rc)
		return rc;
	rc = msb_parse_cloud_box(b, rt, r.body.buf ? r.body.buf : "", r.body.len);
	http_resp_release(&r);
	if (rc)
		sbx_failf("microsandbox: %s: the answer is not a sandbox", what);
	return rc;
}

/* The body of a create: the image, and the `new` arguments as the
 * cloud's fields (checked as msb create's flags are). */
static cJSON *create_body(const char *box, const char *image,
			  const struct sbx_kvlist *args)
{
	cJSON *body = cJSON_CreateObject(), *img = cJSON_AddObjectToObject(body, "image");
	cJSON *res = cJSON_CreateObject(), *run = cJSON_CreateObject();
	cJSON *env = cJSON_AddArrayToObject(body, "env");
	cJSON *labels = cJSON_AddObjectToObject(body, "labels");
	int bad = !body || !img || !res || !run || !env || !labels;

	cJSON_AddStringToObject(body, "name", box);
	cJSON_AddStringToObject(img, "type", image[0] == '/' ? "bind" : "oci");
	cJSON_AddStringToObject(img, image[0] == '/' ? "path" : "reference", image);
	for (size_t i = 0; i < args->n && !bad; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;
		const char *flag = msb_create_flag(key, v);
		const char *eq = strchr(v, '=');

		if (!strcmp(key, "image"))
			continue;
		if (!flag) {
			bad = 1;
		} else if (!strcmp(flag, "-e")) {
			cJSON *e = cJSON_CreateObject();
			char *k = strndup(v, (size_t)(eq - v));

			if (!e || !k || !cJSON_AddItemToArray(env, e))
				bad = 1;
			cJSON_AddStringToObject(e, "key", k);
			cJSON_AddStringToObject(e, "value", eq + 1);
			free(k);
		} else if (!strcmp(flag, "--label")) {
			char *k = strndup(v, (size_t)(eq - v));

			if (!k || !cJSON_AddStringToObject(labels, k, eq + 1))
				bad = 1;
			free(k);
		} else if (!strcmp(flag, "-w")) {
			cJSON_AddStringToObject(run, "workdir", v);
		} else {
			cJSON_AddNumberToObject(
				res, !strcmp(flag, "-c") ? "vcpus" : "memory_mib",
				strtol(v, NULL, 10));
		}
	}
	if (!bad && cJSON_GetArraySize(res))
		bad = !cJSON_AddItemToObject(body, "resources", res), res = NULL;
	if (!bad && cJSON_GetArraySize(run))
		bad = !cJSON_AddItemToObject(body, "runtime", run), run = NULL;
	cJSON_Delete(res);
	cJSON_Delete(run);
	if (bad) {
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}

int msb_cloud_create(struct msb *m, const char *box, const char *image,
		     const struct sbx_kvlist *args)
{
	static const struct errmap over[] = { { 409, EEXIST }, { 0, 0 } };
	cJSON *body = create_body(box, image, args);
	struct http_resp r;
	char what[128], path[96];
	int rc;

	if (!body)
		return sbx_fail_text()[0] ? -EINVAL : -ENOMEM;
	snprintf(what, sizeof(what), "create sandbox \"%s\"", box);
	snprintf(path, sizeof(path),
		 "/v1/sandboxes?start=true&wait_for=running&wait_timeout=%d",
		 START_WAIT_S);
	rc = call(m, &r, "POST", path, body, 0, START_MS, what, over);
	cJSON_Delete(body);
	if (!rc) {
		http_resp_release(&r);
		return 0;
	}
	if (rc != -EEXIST) {
		/* A sandbox that failed to start stays, "failed": remove it,
		 * so that none is shown that mkdir said it did not make. */
		char text[400];

		snprintf(text, sizeof(text), "%s", sbx_fail_text());
		msb_cloud_remove(m, box);
		sbx_failf("%s", text);
	}
	return rc;
}

int msb_cloud_lifecycle(struct msb *m, const char *verb, const char *box)
{
	char what[128], suffix[96];
	cJSON *body;
	struct http_resp r;
	int start = !strcmp(verb, "start"), rc;

	if (!start && strcmp(verb, "stop")) {
		sbx_failf("microsandbox: the cloud has no \"%s\" (start, stop, restart, "
			  "delete)",
			  verb);
		return -ENOTSUP;
	}
	if (start)
		snprintf(suffix, sizeof(suffix),
			 "/start?wait_for=running&wait_timeout=%d", START_WAIT_S);
	else
		snprintf(suffix, sizeof(suffix), "/stop");
	body = cJSON_CreateObject();
	/* The verb as a literal keeps a sanitizer build's format check quiet. */
	rc = body ? box_call(m, &r, "POST", box, suffix, body, REMOTE_REQ_IDEMPOTENT,
			     start ? START_MS : 0, start ? "start" : "stop", what)
		  : -ENOMEM;
	if (!rc)
		http_resp_release(&r);
	cJSON_Delete(body);
	return rc;
}

int msb_cloud_remove(struct msb *m, const char *box)
{
	struct http_resp r;
	char what[128];
	int rc = box_call(m, &r, "DELETE", box, "", NULL, REMOTE_REQ_IDEMPOTENT, 0,
			  "remove", what);

	if (!rc)
		http_resp_release(&r);
	return rc;
}

/* The uuid of `box`: from its record, else asked. */
static int cloud_id(struct msb *m, char *id, size_t size, const char *box)
{
	struct msb_box b;
	int rc = boxtable_id(&m->r.boxes, id, size, box);

	if (!rc && id[0] && strcmp(id, box))
		return 0;
	rc = msb_cloud_inspect(m, &b, NULL, box);
	if (!rc)
		snprintf(id, size, "%s", b.id);
	return rc;
}

int msb_cloud_agent(struct msb *m, const char *box)
{
	const char *headers[] = { m->auth };
	struct ws_config cfg = { .headers = headers,
				 .nheaders = 1,
				 .connect_timeout_ms = m->r.timeout_ms,
				 .max_message = MSB_FRAME_MAX + MSB_FRAME_HEAD };
	struct strbuf url = STRBUF_INIT(4096);
	char id[MSB_ID_MAX] = "";
	struct msb_box b;
	int fd = -1, rc = cloud_id(m, id, sizeof(id), box);

	if (!rc)
		rc = strbuf_addf(&url, "%s/v1/sandboxes/%s/agent", m->api_url, id)
			     ? -ENOMEM
			     : 0;
	if (!rc) {
		cfg.url = url.buf;
		rc = ws_pipe_open(&cfg, &fd);
	}
	strbuf_release(&url);
	if (!rc)
		return fd;
	if (rc == -ENOMEM || rc == -EINTR)
		return rc;
	/* Refused: say whether it is because the sandbox is not running. */
	{
		char text[400];

		snprintf(text, sizeof(text), "%s", sbx_fail_text());
		if (!msb_cloud_inspect(m, &b, NULL, box) && strcmp(b.status, "running")) {
			sbx_failf("microsandbox: sandbox \"%s\" is %s: it is not running",
				  box, b.status);
			return -EAGAIN;
		}
		sbx_failf("microsandbox: cannot reach the agent of sandbox \"%s\": %s",
			  box, text);
	}
	return rc == -ENOENT ? -EAGAIN : rc;
}

int msb_cloud_init(struct msb *m, const struct sbx_kvlist *opts)
{
	static const long refused[] = { 401, 403, 0 };
	char *key = remote_opt(opts, "api_key", "MSB_API_KEY");
	const char *headers[2];
	struct http_config cfg = { 0 };
	struct strbuf url = STRBUF_INIT(4096);
	size_t n;
	int rc;

	m->api_url = remote_opt(opts, "api_url", "MSB_API_URL");
	if (!m->api_url)
		m->api_url = strdup(DEFAULT_URL);
	if (!key || !key[0]) {
		free(key);
		sbx_failf(
			"microsandbox: no credentials for the cloud: set MSB_API_KEY (or "
			"-o api_key=)");
		return -EINVAL;
	}
	if (!m->api_url || asprintf(&m->auth, "Authorization: Bearer %s", key) < 0) {
		m->auth = NULL;
		memset(key, 0, strlen(key));
		free(key);
		return -ENOMEM;
	}
	memset(key, 0, strlen(key));
	free(key);
	n = strlen(m->api_url);
	while (n && m->api_url[n - 1] == '/')
		m->api_url[--n] = '\0';
	if (strncmp(m->api_url, "http://", 7) && strncmp(m->api_url, "https://", 8)) {
		sbx_failf("microsandbox: api_url \"%s\" is not http:// or https://",
			  m->api_url);
		return -EINVAL;
	}
	headers[0] = m->auth;
	headers[1] = "User-Agent: sbxfs/" SBXFS_VERSION;
	cfg.headers = headers;
	cfg.nheaders = 2;
	cfg.timeout_ms = m->r.timeout_ms;
	m->http = http_client_new(&cfg);
	if (!m->http)
		return -ENOMEM;
	rc = strbuf_addf(&url, "%s/v1/sandboxes?limit=1", m->api_url) ? -ENOMEM : 0;
	if (!rc)
		rc = remote_check_credentials(m->http, "microsandbox", url.buf, BODY_MAX,
					      refused, "the API key", cloud_fail);
	strbuf_release(&url);
	return rc;
}

void msb_cloud_free(struct msb *m)
{
	if (m->auth)
		memset(m->auth, 0, strlen(m->auth));
	free(m->auth);
	http_client_free(m->http);
	free(m->api_url);
}
