/* SPDX-License-Identifier: MIT */
/*
 * The Daytona provider: sandboxes from Daytona's REST API, files and
 * commands through each sandbox's toolbox.
 *
 * Wire facts are in docs/providers.md and the protocol notes; the server's
 * behaviour is the reference.  In short:
 *  - Main API at api_url (/sandbox...), Bearer key; JSON errors
 *    {statusCode, error, message}.
 *  - Toolbox at {toolboxProxyUrl}/{id} (older servers: the
 *    toolbox-proxy-url call, or {api_url}/toolbox/{id}/toolbox).  File
 *    errors often have an empty body: the HTTP status is what counts.
 *  - Files move whole (no ranges): they are staged on disk (stage.c),
 *    fetched at open, uploaded at close or fsync (stagefile.c).
 *  - What the toolbox lacks (rmdir that refuses non-empty directories,
 *    rename over a file, truncate, utimens, link, statfs) runs as a
 *    command through /process/execute, with its exit code carrying the
 *    errno.  The file API follows symlinks and cannot make them, so this
 *    provider shows symlinks as what they point to and cannot create them.
 *  - Commands run in a session of their own, asynchronously; output comes
 *    from the command's log (stdout and stderr told apart by the 3-byte
 *    line markers), the end from the command's exit code.
 */
#include "daytona.h"

/* ---- errors: HTTP status and body to errno, in one place ---- */

/* Where Daytona differs from the common HTTP statuses. */
static const struct errmap daytona_errors[] = { { 410, EPIPE }, { 0, 0 } };

/* The server's words: {statusCode, error, message}, message maybe a list. */
static const char *const error_keys[] = { "message", "error", NULL };

int dt_fail_resp(const char *what, const struct http_resp *r, const struct errmap *over)
{
	const struct errmap *const maps[] = { over ? over : daytona_errors,
					      daytona_errors, errmap_http, NULL };
	char text[320];

	errmap_text(text, sizeof(text), r->body.buf, r->body.len, error_keys);
	return errmap_fail_http("daytona", what, r->status, text, NULL,
				errmap_errno(maps, r->status));
}

/* ---- requests ---- */

/* One request; a JSON body if `json` is set.  0 with a response of any
 * status, or -errno when none came. */
int dt_request(struct dt *dt, struct http_resp *resp, const char *method, const char *url,
	       cJSON *json, int flags, size_t max_body)
{
	return remote_request(dt->http, resp, "daytona", method, url, json,
			      flags & (REQ_IDEMPOTENT | REQ_TRANSFER), max_body,
			      (flags & REQ_LONG) ? 90000 : 0);
}

/* Parse a JSON answer; NULL with -EPROTO text if it is not JSON. */
cJSON *dt_parse_json(const struct http_resp *r, const char *what)
{
	cJSON *j = cJSON_ParseWithLength(r->body.buf ? r->body.buf : "", r->body.len);

	if (!j)
		sbx_failf("daytona: %s: the answer is not JSON", what);
	return j;
}

/* ---- URLs ---- */

int dt_url_sandbox(struct strbuf *sb, struct dt *dt, const char *idname,
		   const char *suffix)
{
	int rc = strbuf_addf(sb, "%s/sandbox/", dt->api);

	if (!rc)
		rc = http_escape(sb, idname);
	return rc ? rc : strbuf_addf(sb, "%s", suffix ? suffix : "");
}

/* {toolbox}{route}?k1=v1&k2=v2 ... (NULL-terminated key/value pairs). */
int dt_url_toolbox(struct strbuf *sb, const char *toolbox, const char *route, ...)
{
	const char *k;
	va_list ap;
	int rc = strbuf_addf(sb, "%s%s", toolbox, route);
	char sep = '?';

	va_start(ap, route);
	while (!rc && (k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		rc = strbuf_addf(sb, "%c%s=", sep, k);
		if (!rc)
			rc = http_escape(sb, v);
		sep = '&';
	}
	va_end(ap);
	return rc;
}

/* ---- sandbox records ---- */

/* The name a sandbox goes by here: its Daytona name, else its id. */
static const char *box_name_of(const cJSON *sb)
{
	const char *name = json_str(sb, "name");

	return name && name[0] ? name : json_str(sb, "id");
}

/* Remember name -> id (and the toolbox URL, the record's priv, if the
 * JSON has one). */
static void remember(struct dt *dt, const cJSON *sb)
{
	const char *name = box_name_of(sb), *id = json_str(sb, "id");
	const char *proxy = json_str(sb, "toolboxProxyUrl");
	struct boxtable *t = &dt->r.boxes;
	struct rbox *b;
	void *old;

	if (!name || !id || !sbx_name_valid(name) || strlen(id) >= sizeof(b->id))
		return;
	boxtable_lock(t);
	b = boxtable_set_locked(t, name, id, &old);
	if (b && !b->priv && proxy && proxy[0] && !strncmp(proxy, "http", 4)) {
		struct strbuf u = STRBUF_INIT(4096);
		size_t n = strlen(proxy);

		while (n && proxy[n - 1] == '/')
			n--;
		if (!strbuf_add(&u, proxy, n) && !strbuf_addf(&u, "/") &&
		    !http_escape(&u, id))
			b->priv = strbuf_detach(&u, NULL);
		strbuf_release(&u);
	}
	boxtable_unlock(t);
	free(old);
}

/* GET /sandbox/{name}: the sandbox JSON (caller frees).  -ENOENT if none. */
int dt_get_sandbox(struct dt *dt, cJSON **out, const char *name)
{
	struct strbuf url = STRBUF_INIT(8192);
	struct http_resp r;
	char what[128];
	int rc;

	*out = NULL;
	snprintf(what, sizeof(what), "get sandbox \"%s\"", name);
	rc = dt_url_sandbox(&url, dt, name, NULL);
	if (rc) {
		strbuf_release(&url);
		return rc;
	}
	rc = dt_request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		boxtable_forget(&dt->r.boxes, name);
		rc = -ENOENT;
	} else if (r.status != 200) {
		rc = dt_fail_resp(what, &r, NULL);
	} else if (!(*out = dt_parse_json(&r, what)) || !cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		sbx_failf("daytona: %s: the answer is not a sandbox", what);
		rc = -EPROTO;
	} else {
		remember(dt, *out);
	}
	http_resp_release(&r);
	return rc;
}

/* The toolbox base URL of a sandbox; the caller frees it.  Uses what the
 * sandbox JSON said, else asks the API, else the old API route. */
int dt_toolbox_of(struct dt *dt, char **out, const char *name)
{
	struct boxtable *t = &dt->r.boxes;
	struct strbuf url = STRBUF_INIT(8192);
	char id[128] = "";
	struct rbox *b;
	struct http_resp r;
	cJSON *j = NULL;
	int rc;

	*out = NULL;
	for (int pass = 0; pass < 2; pass++) {
		boxtable_lock(t);
		b = boxtable_find_locked(t, name);
		if (b && b->gone)
			b = NULL;
		if (b && b->priv)
			*out = strdup(b->priv);
		if (b)
			snprintf(id, sizeof(id), "%s", b->id);
		boxtable_unlock(t);
		if (*out)
			return 0;
		if (id[0])
			break;
		rc = dt_get_sandbox(dt, &j, name);
		cJSON_Delete(j);
		if (rc)
			return rc;
	}
	if (!id[0])
		return -ENOENT;
	/* No toolboxProxyUrl in the sandbox JSON: an older server. */
	rc = dt_url_sandbox(&url, dt, id, "/toolbox-proxy-url");
	if (rc) {
		strbuf_release(&url);
		return rc;
	}
	rc = dt_request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	url = (struct strbuf)STRBUF_INIT(8192);
	if (r.status == 200 && (j = cJSON_ParseWithLength(r.body.buf, r.body.len)) &&
	    json_str(j, "url") && !strncmp(json_str(j, "url"), "http", 4)) {
		const char *u = json_str(j, "url");
		size_t n = strlen(u);

		while (n && u[n - 1] == '/')
			n--;
		rc = strbuf_add(&url, u, n) || strbuf_addf(&url, "/") ||
		     http_escape(&url, id);
	} else if (r.status == 404) {
		rc = strbuf_addf(&url, "%s/toolbox/", dt->api) || http_escape(&url, id) ||
		     strbuf_addf(&url, "/toolbox");
	} else {
		rc = dt_fail_resp("toolbox address", &r, NULL);
		cJSON_Delete(j);
		http_resp_release(&r);
		strbuf_release(&url);
		return rc;
	}
	cJSON_Delete(j);
	http_resp_release(&r);
	if (rc) {
		strbuf_release(&url);
		return -ENOMEM;
	}
	*out = strbuf_detach(&url, NULL);
	boxtable_lock(t);
	b = boxtable_find_locked(t, name);
	if (b && !b->gone && !b->priv && !strcmp(b->id, id))
		b->priv = strdup(*out);
	boxtable_unlock(t);
	return 0;
}

/*
 * A toolbox call failed with `r`: if the sandbox is not running, say so
 * (-EAGAIN, the tree's errno for a sandbox in the wrong state); otherwise
 * map the status.
 */
int dt_toolbox_fail(struct dt *dt, const char *box, const char *what,
		    const struct http_resp *r, const struct errmap *over)
{
	cJSON *sb = NULL;
	int rc;

	if (r->status == 404 || r->status == 409 || r->status == 408)
		return dt_fail_resp(what, r, over);
	rc = dt_fail_resp(what, r, over);
	if (!dt_get_sandbox(dt, &sb, box)) {
		const char *state = json_str(sb, "state");

		if (dt_map_state(state) != SBX_STATE_RUNNING) {
			sbx_failf("daytona: sandbox \"%s\" is %s, not started: start it "
				  "with 'echo start > %s/ctl'",
				  box, state ? state : "in an unknown state", box);
			rc = -EAGAIN;
		}
	}
	cJSON_Delete(sb);
	return rc;
}

/* ---- setup ---- */

/*
 * One small request at mount time: a refused key is a mount error, said
 * once, rather than a tree that stays empty.  An unreachable server is
 * only a warning: the mount works once it answers.
 */
static void free_ws_headers(struct dt *dt)
{
	for (size_t i = 0; i < dt->nws_headers; i++) {
		if (dt->ws_headers[i])
			memset(dt->ws_headers[i], 0, strlen(dt->ws_headers[i]));
		free(dt->ws_headers[i]);
	}
	dt->nws_headers = 0;
}

static int check_credentials(struct dt *dt)
{
	static const long refused[] = { 401, 403, 0 };
	struct strbuf url = STRBUF_INIT(4096);
	int rc;

	if (strbuf_addf(&url, "%s/sandbox?limit=1", dt->api))
		return -ENOMEM;
	rc = remote_check_credentials(dt->http, "daytona", url.buf, 0, refused,
				      "the credentials were refused", dt_fail_resp);
	strbuf_release(&url);
	return rc;
}

static const struct remote_box_ops dt_box_ops;

static int dt_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	char *key = remote_opt(opts, "api_key", "DAYTONA_API_KEY");
	char *jwt = remote_opt(opts, "jwt_token", "DAYTONA_JWT_TOKEN");
	char *org = remote_opt(opts, "organization_id", "DAYTONA_ORGANIZATION_ID");
	char *api = remote_opt(opts, "api_url", "DAYTONA_API_URL");
	char auth[4096], orgh[512];
	const char *headers[3];
	struct http_config cfg = { 0 };
	struct dt *dt = NULL;
	int rc = -EINVAL;

	if (!key && !(jwt && org)) {
		sbx_failf("no credentials: set DAYTONA_API_KEY (or DAYTONA_JWT_TOKEN "
			  "with DAYTONA_ORGANIZATION_ID)");
		goto out;
	}
	if (!key && jwt && !org) {
		sbx_failf("DAYTONA_JWT_TOKEN needs DAYTONA_ORGANIZATION_ID");
		goto out;
	}
	if (api && strncmp(api, "http://", 7) && strncmp(api, "https://", 8)) {
		sbx_failf("api_url must start with http:// or https://");
		goto out;
	}
	if (snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : jwt) >=
	    (int)sizeof(auth)) {
		sbx_failf("the API key or token is too long");
		goto out;
	}
	dt = calloc(1, sizeof(*dt));
	if (!dt) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&dt->lock, NULL);
	rc = remote_setup(&dt->r, "daytona", REMOTE_TEXT_OUTPUT | REMOTE_FOLLOWS_SYMLINKS,
			  opts, &dt_stagefile_ops, free);
	/* A script's bytes come base64-encoded in the JSON of the answer. */
	dt->r.output_max = RUN_OUTPUT_MAX / 4 * 3 - 4096;
	dt->r.run = dt_run;
	dt->r.box_ops = &dt_box_ops;
	if (rc)
		goto fail;
	rc = -ENOMEM;
	dt->jwt = !key;
	dt->api = api ? api : strdup(DEFAULT_API_URL);
	api = NULL;
	remote_trim_url(dt->api);
	dt->target = remote_opt(opts, "target", "DAYTONA_TARGET");
	snprintf(dt->session_prefix, sizeof(dt->session_prefix), "sbxfs-%d-%lx",
		 (int)getpid(), (unsigned long)time(NULL));
	headers[0] = auth;
	cfg.nheaders = 1;
	if (dt->jwt) {
		snprintf(orgh, sizeof(orgh), "X-Daytona-Organization-ID: %s", org);
		headers[cfg.nheaders++] = orgh;
	}
	headers[cfg.nheaders++] = "X-Daytona-Source: sbxfs";
	dt->ws_headers[dt->nws_headers++] = strdup(auth);
	if (dt->jwt)
		dt->ws_headers[dt->nws_headers++] = strdup(orgh);
	dt->ws_headers[dt->nws_headers++] = strdup("X-Daytona-Split-Output: true");
	for (size_t i = 0; i < dt->nws_headers; i++)
		if (!dt->ws_headers[i])
			goto fail;
	cfg.headers = headers;
	remote_http_config(&dt->r, &cfg);
	dt->http = http_client_new(&cfg);
	if (!dt->http)
		goto fail;
	rc = check_credentials(dt);
	if (rc)
		goto fail;
	p->priv = dt;
	goto out;
fail:
	remote_release(&dt->r);
	free_ws_headers(dt);
	http_client_free(dt->http);
	free(dt->api);
	free(dt->target);
	free(dt);
out:
	memset(auth, 0, sizeof(auth));
	if (key)
		memset(key, 0, strlen(key));
	if (jwt)
		memset(jwt, 0, strlen(jwt));
	free(key);
	free(jwt);
	free(org);
	free(api);
	return rc;
}

static void dt_destroy(struct sbx_provider *p)
{
	struct dt *dt = DT(p);
	int left;

	if (!dt)
		return;
	/* Command pollers notice the stop, end their commands and leave. */
	cmdpoll_stop(&dt->r.cmds);
	left = cmdpoll_wait(&dt->r.cmds, 30);
	if (left)
		return; /* a poller is stuck in a bounded request: leak, don't crash */
	dt_idle_drop(dt);
	remote_release(&dt->r);
	free_ws_headers(dt);
	http_client_free(dt->http);
	free(dt->api);
	free(dt->target);
	free(dt);
	p->priv = NULL;
}

static void dt_describe(struct sbx_provider *p, struct sbx_kvlist *out)
{
	struct dt *dt = DT(p);

	sbx_kv_add(out, "api_url", dt->api);
	sbx_kv_add(out, "auth", dt->jwt ? "jwt" : "api_key");
	if (dt->target)
		sbx_kv_add(out, "target", dt->target);
	remote_describe(&dt->r, out);
}

/* ---- sandboxes ---- */

static int dt_list(struct sbx_provider *p, sbx_list_fn fn, void *ctx)
{
	struct dt *dt = DT(p);
	char *cursor = NULL;
	int rc = 0, page;

	for (page = 0; page < LIST_PAGES_MAX; page++) {
		struct strbuf url = STRBUF_INIT(8192);
		struct http_resp r;
		cJSON *j, *items, *it;
		const char *next;

		if (strbuf_addf(&url, "%s/sandbox?limit=%d", dt->api, LIST_PAGE) ||
		    (cursor &&
		     (strbuf_addf(&url, "&cursor=") || http_escape(&url, cursor)))) {
			strbuf_release(&url);
			rc = -ENOMEM;
			break;
		}
		rc = dt_request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT,
				LISTING_MAX);
		strbuf_release(&url);
		if (rc)
			break;
		if (r.status != 200) {
			rc = dt_fail_resp("list sandboxes", &r, NULL);
			http_resp_release(&r);
			break;
		}
		j = dt_parse_json(&r, "list sandboxes");
		http_resp_release(&r);
		if (!j) {
			rc = -EPROTO;
			break;
		}
		/* Since v0.180 {items, nextCursor}; before, a bare array. */
		items = cJSON_IsArray(j) ? j
					 : cJSON_GetObjectItemCaseSensitive(j, "items");
		if (!cJSON_IsArray(items)) {
			sbx_failf("daytona: list sandboxes: no \"items\" in the answer");
			cJSON_Delete(j);
			rc = -EPROTO;
			break;
		}
		cJSON_ArrayForEach(it, items)
		{
			const char *name = box_name_of(it);

			if (!cJSON_IsObject(it) || !name ||
			    dt_map_state(json_str(it, "state")) == SBX_STATE_DELETING)
				continue;
			remember(dt, it);
			if (fn(ctx, name))
				break;
		}
		next = cJSON_IsArray(j) ? NULL : json_str(j, "nextCursor");
		free(cursor);
		cursor = next && next[0] ? strdup(next) : NULL;
		cJSON_Delete(j);
		if (!cursor)
			break;
	}
	free(cursor);
	return rc;
}

/* Build the create body from "new NAME k=v ..." arguments. */
static int create_body(struct dt *dt, cJSON *body, const char *box,
		       const struct sbx_kvlist *args)
{
	static const struct json_int_arg ints[] = {
		{ "cpu", "cpu", -1, 1000000 },
		{ "memory", "memory", -1, 1000000 },
		{ "disk", "disk", -1, 1000000 },
		{ "gpu", "gpu", -1, 1000000 },
		{ "auto_stop", "autoStopInterval", -1, 1000000 },
		{ "auto_archive", "autoArchiveInterval", -1, 1000000 },
		{ "auto_delete", "autoDeleteInterval", -1, 1000000 },
		{ NULL, NULL, 0, 0 },
	};
	cJSON *env = cJSON_AddObjectToObject(body, "env");
	cJSON *labels = cJSON_AddObjectToObject(body, "labels");
	const char *image = NULL;
	size_t i;
	int rc;

	cJSON_AddStringToObject(body, "name", box);
	if (dt->target)
		cJSON_AddStringToObject(body, "target", dt->target);
	for (i = 0; i < args->n; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;

		rc = json_add_int_arg(body, ints, key, v);
		if (rc < 0)
			return rc;
		if (rc) {
			/* a number */
		} else if (!strcmp(key, "image")) {
			image = v;
		} else if (!strcmp(key, "snapshot")) {
			cJSON_AddStringToObject(body, "snapshot", v);
		} else if (!strcmp(key, "target")) {
			cJSON_DeleteItemFromObject(body, "target");
			cJSON_AddStringToObject(body, "target", v);
		} else if (!strcmp(key, "user")) {
			cJSON_AddStringToObject(body, "user", v);
		} else if (!strcmp(key, "public")) {
			cJSON_AddBoolToObject(body, "public", !strcmp(v, "true"));
		} else if (!strcmp(key, "net")) {
			if (strcmp(v, "none") && strcmp(v, "on")) {
				sbx_failf("bad net \"%s\": none or on", v);
				return -EINVAL;
			}
			cJSON_AddBoolToObject(body, "networkBlockAll",
					      !strcmp(v, "none"));
		} else if (!strncmp(key, "env.", 4) && key[4]) {
			cJSON_AddStringToObject(env, key + 4, v);
		} else if (!strncmp(key, "label.", 6) && key[6]) {
			cJSON_AddStringToObject(labels, key + 6, v);
		} else {
			sbx_failf("unknown key \"%s\" for a daytona sandbox", key);
			return -EINVAL;
		}
	}
	if (image) {
		struct strbuf df = STRBUF_INIT(4096);
		cJSON *bi;

		if (cJSON_GetObjectItemCaseSensitive(body, "snapshot")) {
			sbx_failf("image= and snapshot= exclude each other");
			return -EINVAL;
		}
		if (strpbrk(image, "\n\r") || strbuf_addf(&df, "FROM %s\n", image)) {
			sbx_failf("bad image \"%s\"", image);
			strbuf_release(&df);
			return -EINVAL;
		}
		bi = cJSON_AddObjectToObject(body, "buildInfo");
		cJSON_AddStringToObject(bi, "dockerfileContent", df.buf);
		strbuf_release(&df);
	}
	return 0;
}

static int dt_create(struct remote *rm, const char *box, const struct sbx_kvlist *args)
{
	static const struct errmap over[] = { { 409, EEXIST }, { 0, 0 } };
	struct dt *dt = (struct dt *)rm;
	struct strbuf url = STRBUF_INIT(4096);
	cJSON *body = cJSON_CreateObject(), *sb;
	struct http_resp r;
	char what[128];
	int rc;

	snprintf(what, sizeof(what), "create sandbox \"%s\"", box);
	if (!body || strbuf_addf(&url, "%s/sandbox", dt->api)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = create_body(dt, body, box, args);
	if (rc)
		goto out;
	rc = dt_request(dt, &r, "POST", url.buf, body, REQ_LONG, 0);
	if (rc)
		goto out;
	if (r.status != 200 && r.status != 201) {
		rc = dt_fail_resp(what, &r, over);
	} else if ((sb = cJSON_ParseWithLength(r.body.buf, r.body.len))) {
		remember(dt, sb);
		cJSON_Delete(sb);
	}
	http_resp_release(&r);
out:
	strbuf_release(&url);
	cJSON_Delete(body);
	return rc;
}

/* POST /sandbox/{id}{action}; 400 means the state forbids it. */
static int lifecycle(struct dt *dt, const char *box, const char *method,
		     const char *action, const char *what)
{
	static const struct errmap over[] = { { 400, EBUSY }, { 0, 0 } };
	struct strbuf url = STRBUF_INIT(8192);
	struct http_resp r;
	char msg[160];
	int rc;

	snprintf(msg, sizeof(msg), "%s sandbox \"%s\"", what, box);
	rc = dt_url_sandbox(&url, dt, box, action);
	if (rc) {
		strbuf_release(&url);
		return rc;
	}
	rc = dt_request(dt, &r, method, url.buf, NULL, REQ_LONG, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status < 200 || r.status > 299)
		rc = dt_fail_resp(msg, &r, over);
	http_resp_release(&r);
	return rc;
}

/* The sandbox's current Daytona state word into `out`. */
int dt_state_of(struct dt *dt, const char *box, char *out, size_t size)
{
	cJSON *sb = NULL;
	int rc = dt_get_sandbox(dt, &sb, box);

	if (!rc)
		snprintf(out, size, "%s",
			 json_str(sb, "state") ? json_str(sb, "state") : "unknown");
	cJSON_Delete(sb);
	return rc;
}

static int dt_start(struct remote *rm, const char *box)
{
	return lifecycle((struct dt *)rm, box, "POST", "/start", "start");
}

static int dt_stop(struct remote *rm, const char *box)
{
	dt_idle_forget((struct dt *)rm, box);
	return lifecycle((struct dt *)rm, box, "POST", "/stop", "stop");
}

static int dt_remove(struct remote *rm, const char *box)
{
	dt_idle_forget((struct dt *)rm, box);
	return lifecycle((struct dt *)rm, box, "DELETE", "", "delete");
}

/* The state word and, for a failed sandbox, why. */
static int box_state(struct remote *rm, char *word, size_t size, char *why,
		     size_t why_size, const char *box)
{
	cJSON *sb = NULL;
	int rc = dt_get_sandbox((struct dt *)rm, &sb, box);
	const char *v;

	if (rc)
		return rc;
	snprintf(word, size, "%s", (v = json_str(sb, "state")) ? v : "");
	snprintf(why, why_size, "%s", (v = json_str(sb, "errorReason")) ? v : "");
	cJSON_Delete(sb);
	return 0;
}

static const struct remote_box_ops dt_box_ops = {
	.noun = "sandbox",
	.states = dt_states,
	/* Daytona has more states than the table knows, and adds some. */
	.flags = REMOTE_BOX_UNKNOWN_BUSY,
	.state = box_state,
	.create = dt_create,
	.start = dt_start,
	.stop = dt_stop,
	.remove = dt_remove,
};

static int dt_ctl(struct sbx_provider *p, const char *box, int argc, char *const argv[])
{
	struct dt *dt = DT(p);
	int rc;

	if (!strcmp(argv[0], "archive") && argc == 1) {
		rc = remote_stop(p, box);
		if (!rc)
			rc = lifecycle(dt, box, "POST", "/archive", "archive");
		return rc ? rc
			  : remote_wait(&dt->r, box, REMOTE_IN(REMOTE_ARCHIVED),
					REMOTE_STATE_WAIT_S);
	}
	if (!strcmp(argv[0], "archive")) {
		sbx_failf("archive takes no arguments");
		return -EINVAL;
	}
	sbx_failf("unknown command \"%s\" (daytona knows start, stop, restart, "
		  "delete, archive)",
		  argv[0]);
	return -EINVAL;
}

static void add_map(struct sbx_kvlist *out, const cJSON *sb, const char *field,
		    const char *prefix, int hide_values)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(sb, field), *it;

	cJSON_ArrayForEach(it, m)
	{
		char key[160];
		const char *v = cJSON_IsString(it) ? it->valuestring : "";

		if (!it->string || strpbrk(it->string, " \n") || strpbrk(v, "\n"))
			continue;
		snprintf(key, sizeof(key), "%s%s", prefix, it->string);
		sbx_kv_add(out, key, hide_values ? "(set)" : v);
	}
}

static int dt_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	static const struct {
		const char *field, *key;
	} nums[] = {
		{ "cpu", "cpu" },
		{ "memory", "memory" },
		{ "disk", "disk" },
		{ "gpu", "gpu" },
		{ "autoStopInterval", "auto_stop" },
		{ "autoArchiveInterval", "auto_archive" },
		{ "autoDeleteInterval", "auto_delete" },
	};
	static const struct {
		const char *field, *key;
	} strs[] = {
		{ "target", "target" },
		{ "user", "user" },
		{ "desiredState", "desired_state" },
		{ "errorReason", "error" },
		{ "updatedAt", "updated" },
		{ "lastActivityAt", "last_activity" },
		{ "backupState", "backup_state" },
	};
	struct dt *dt = DT(p);
	const cJSON *bi;
	cJSON *sb = NULL;
	const char *v;
	double d;
	size_t i;
	int rc = dt_get_sandbox(dt, &sb, box);

	if (rc)
		return rc;
	snprintf(out->id, sizeof(out->id), "%s", (v = json_str(sb, "id")) ? v : "");
	v = json_str(sb, "state");
	out->state = dt_map_state(v);
	snprintf(out->native_state, sizeof(out->native_state), "%s", v ? v : "");
	bi = cJSON_GetObjectItemCaseSensitive(sb, "buildInfo");
	if ((v = json_str(sb, "snapshot")) && v[0])
		snprintf(out->image, sizeof(out->image), "%s", v);
	else if (bi && (v = json_str(bi, "dockerfileContent")) && !strncmp(v, "FROM ", 5))
		snprintf(out->image, sizeof(out->image), "%.*s",
			 (int)strcspn(v + 5, "\n"), v + 5);
	{
		struct timespec created;

		if (!rfc3339_parse(&created, json_str(sb, "createdAt")))
			out->created = created.tv_sec;
	}
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((v = json_str(sb, strs[i].field)) && v[0] && !strchr(v, '\n'))
			sbx_kv_add(&out->extra, strs[i].key, v);
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (json_num(sb, nums[i].field, &d))
			sbx_kv_addf(&out->extra, nums[i].key, "%g", d);
	add_map(&out->extra, sb, "labels", "label.", 0);
	add_map(&out->extra, sb, "env", "env.", 1);
	cJSON_Delete(sb);
	return 0;
}

static const struct sbx_provider_ops daytona_ops = {
	.init = dt_init,
	.destroy = dt_destroy,
	.describe = dt_describe,
	.list = dt_list,
	REMOTE_OPS_BOXES,
	.ctl = dt_ctl,
	.info = dt_info,
	REMOTE_OPS_FILES,
	.readdir = dt_readdir,
	.mkdir = dt_mkdir,
	.unlink = dt_unlink,
	.rename = dt_rename,
	.chmod = dt_chmod,
	.chown = dt_chown,
	.cmd_start = dt_cmd_start,
	.cmd_stdin = dt_cmd_stdin,
	.cmd_signal = dt_cmd_signal,
	.cmd_release = dt_cmd_release,
};

const struct sbx_provider_desc sbx_provider_daytona = {
	.name = "daytona",
	/* No SYMLINK: the toolbox follows symlinks and cannot show them. */
	.caps = SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN | SBX_CAP_RENAME_OVER |
		SBX_CAP_LIST_STATS,
	/* Every look costs a round trip: trust answers a little longer. */
	.attr_timeout = 10.0,
	.entry_timeout = 10.0,
	.path_max = REMOTE_PATH_MAX,
	.ops = &daytona_ops,
};
