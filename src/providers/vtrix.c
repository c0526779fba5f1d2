/* SPDX-License-Identifier: MIT */
/*
 * The Vtrix provider: sandboxes from the Hermes gateway's REST API, files
 * and commands over one JSON-RPC WebSocket per sandbox.
 *
 * Wire facts are in docs/providers.md and the protocol notes; in short:
 *  - REST under {url}/api/v1/sandbox (R1-R3; R4 renamed it
 *    /api/v1/sandboxes and merged create and list into one POST), with
 *    "Authorization: Bearer" and "X-Project-ID".  Every answer is the
 *    envelope {code, message, data, request_id}; code != 0 is the error,
 *    whatever the HTTP status says.
 *  - A directory is named by the sandbox's "name" label (set by `new`),
 *    else by its id.  The sandboxes shown are the user's (VTRIX_USER_ID).
 *  - Vtrix makes running sandboxes: `new` waits until "active".
 *  - Files and commands: vtrix_rpc.c (the socket), vtrix_files.c (root/),
 *    vtrix_cmd.c (cmd/).
 *
 * Every failure code (envelope, HTTP without an envelope, JSON-RPC) becomes
 * an errno in vx_errno() and nowhere else.
 */
#include <math.h>

#include "vtrix.h"

/* ---- REST ---- */

static const char *const json_header[] = { "Content-Type: application/json", NULL };

/*
 * One REST call to {url}{prefix}{suffix}, with `body` as JSON if set.
 * *data (caller frees; may be NULL) gets the envelope's data.  0, or
 * -errno with text naming `what`.
 */
static int rest(struct vx *vx, cJSON **data, const char *method, const char *suffix,
		const cJSON *body, int idempotent, const char *what)
{
	struct strbuf url = STRBUF_INIT(8192);
	struct http_req req = HTTP_REQ_INIT;
	struct http_resp r;
	char *text = NULL, msg[240];
	cJSON *env = NULL;
	double code;
	int rc;

	if (data)
		*data = NULL;
	if (strbuf_addf(&url, "%s%s%s", vx->url, vx->prefix, suffix))
		return -ENOMEM;
	if (body && !(text = cJSON_PrintUnformatted(body))) {
		strbuf_release(&url);
		return -ENOMEM;
	}
	req.method = method;
	req.url = url.buf;
	req.idempotent = idempotent;
	req.max_body = VX_LISTING_MAX;
	if (text) {
		req.body = text;
		req.body_len = strlen(text);
		req.headers = json_header;
	}
	rc = http_do(vx->http, &req, &r);
	strbuf_release(&url);
	free(text);
	if (rc) {
		sbx_failf("vtrix: %s: %s", what, sbx_fail_text());
		return rc;
	}
	env = cJSON_ParseWithLength(r.body.buf ? r.body.buf : "", r.body.len);
	if (!cJSON_IsObject(env) || !json_num(env, "code", &code)) {
		/* Not Atlas: a proxy in front of it.  The status is all. */
		if (r.status >= 200 && r.status <= 299) {
			sbx_failf("vtrix: %s: the answer is not an envelope (HTTP %ld)",
				  what, r.status);
			rc = -EPROTO;
		} else {
			sbx_failf("vtrix: %s: HTTP %ld without an envelope", what,
				  r.status);
			rc = -vx_errno(VX_HTTP, r.status);
		}
	} else if (code != 0) {
		const char *m = json_str(env, "message");
		size_t i;

		for (i = 0; m && m[i] && i + 1 < sizeof(msg); i++)
			msg[i] = ((unsigned char)m[i] >= 0x20 && m[i] != 0x7f) ? m[i]
									       : '?';
		msg[i] = '\0';
		sbx_failf("vtrix: %s: %s (code %.0f)", what, msg[0] ? msg : "refused",
			  code);
		rc = -vx_errno(VX_ENVELOPE, fabs(code) < 1e15 ? (long)code : 50000);
	} else if (data) {
		*data = cJSON_DetachItemFromObjectCaseSensitive(env, "data");
	}
	cJSON_Delete(env);
	http_resp_release(&r);
	return rc;
}

/* "/{id}{tail}" for the REST paths of one sandbox. */
static int id_path(char *out, size_t size, const char *id, const char *tail)
{
	struct strbuf sb = STRBUF_INIT(1024);
	int rc = strbuf_addf(&sb, "/") || http_escape(&sb, id) ||
		 strbuf_addf(&sb, "%s", tail);

	if (!rc && sb.len < size)
		memcpy(out, sb.buf, sb.len + 1);
	else
		rc = -ENAMETOOLONG;
	strbuf_release(&sb);
	return rc ? -ENAMETOOLONG : 0;
}

/* ---- sandbox records ---- */

/* The directory name of a sandbox: its "name" label if that is a valid
 * name, else its id. */
static const char *name_of(const cJSON *info)
{
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(info, "labels");
	const char *n = json_str(labels, VX_NAME_LABEL);

	return n && sbx_name_valid(n) ? n : json_str(info, "id");
}

static int valid_id(const char *id)
{
	return id && id[0] && strlen(id) < 128 && sbx_name_valid(id);
}

/* The list body for one page. */
static cJSON *list_body(struct vx *vx, int offset)
{
	cJSON *b = cJSON_CreateObject();

	if (!b)
		return NULL;
	if (vx->user)
		cJSON_AddStringToObject(b, "user_id", vx->user);
	cJSON_AddNumberToObject(b, "limit", VX_LIST_PAGE);
	if (offset)
		cJSON_AddNumberToObject(b, "offset", offset);
	return b;
}

/*
 * Every sandbox, page by page: names (label or id) to ids, first come
 * first named (a second sandbox with the same name label shows as its
 * id).  A complete listing marks gone the sandboxes it did not show.  fn
 * may be NULL.
 */
static int list_all(struct vx *vx, sbx_list_fn fn, void *ctx)
{
	struct boxtable *t = &vx->r.boxes;
	unsigned gen = boxtable_sweep_begin(t);
	int rc = 0, page, offset = 0, stop = 0;

	for (page = 0; page < VX_LIST_PAGES_MAX && !stop; page++) {
		cJSON *body = list_body(vx, offset), *data = NULL, *items, *it, *pg;
		int n = 0, more;

		if (!body)
			return -ENOMEM;
		rc = rest(vx, &data, "POST", vx->r4 ? "" : "/list", body, 1,
			  "list sandboxes");
		cJSON_Delete(body);
		if (rc)
			break;
		items = cJSON_GetObjectItemCaseSensitive(data, "items");
		pg = cJSON_GetObjectItemCaseSensitive(data, "pagination");
		if (!cJSON_IsArray(items)) {
			sbx_failf("vtrix: list sandboxes: no \"items\" in the answer");
			cJSON_Delete(data);
			rc = -EPROTO;
			break;
		}
		cJSON_ArrayForEach(it, items)
		{
			const char *id = json_str(it, "id"), *name = name_of(it);
			struct rbox *b;
			void *old;

			n++;
			if (!cJSON_IsObject(it) || !valid_id(id) || !name ||
			    vx_map_state(json_str(it, "status")) == SBX_STATE_DELETING)
				continue;
			boxtable_lock(t);
			b = boxtable_get_locked(t, name);
			if (b && b->seen == gen && !b->gone)
				name = id; /* the name is taken: show the id */
			b = boxtable_set_locked(t, name, id, &old);
			if (b)
				b->seen = gen;
			boxtable_unlock(t);
			if (!b) {
				rc = -ENOMEM;
				break;
			}
			if (fn && !stop && fn(ctx, name))
				stop = 1;
		}
		more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pg, "has_more"));
		cJSON_Delete(data);
		if (rc || !more || n == 0)
			break;
		offset += n;
	}
	if (!rc && !stop)
		boxtable_sweep_end(t, gen);
	return rc;
}

int vx_id_of(struct vx *vx, char *out, size_t size, const char *box)
{
	int rc = boxtable_id(&vx->r.boxes, out, size, box);

	if (rc != -ENOENT)
		return rc;
	rc = list_all(vx, NULL, NULL);
	return rc ? rc : boxtable_id(&vx->r.boxes, out, size, box);
}

int vx_get_info(struct vx *vx, cJSON **out, const char *box)
{
	char id[128], path[300], what[128];
	int rc, pass;

	*out = NULL;
	snprintf(what, sizeof(what), "get sandbox \"%s\"", box);
	for (pass = 0; pass < 2; pass++) {
		rc = vx_id_of(vx, id, sizeof(id), box);
		if (rc)
			return rc;
		rc = id_path(path, sizeof(path), id, "");
		if (!rc)
			rc = rest(vx, out, "GET", path, NULL, 1, what);
		if (rc != -ENOENT)
			break;
		/* Gone, or the name now belongs to another sandbox. */
		boxtable_forget(&vx->r.boxes, box);
	}
	if (!rc && !cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		sbx_failf("vtrix: %s: the answer is not a sandbox", what);
		rc = -EPROTO;
	}
	return rc;
}

static int state_of(struct vx *vx, const char *box, char *out, size_t size)
{
	cJSON *info = NULL;
	int rc = vx_get_info(vx, &info, box);

	if (!rc)
		snprintf(out, size, "%s",
			 json_str(info, "status") ? json_str(info, "status") : "unknown");
	cJSON_Delete(info);
	return rc;
}

int vx_not_active(struct vx *vx, const char *box, int rc)
{
	char state[64], text[400];

	if (rc != -EIO && rc != -ECONNRESET && rc != -ENOENT)
		return rc;
	snprintf(text, sizeof(text), "%s", sbx_fail_text());
	if (state_of(vx, box, state, sizeof(state)) ||
	    vx_map_state(state) == SBX_STATE_RUNNING) {
		sbx_failf("%s", text);
		return rc;
	}
	sbx_failf("vtrix: sandbox \"%s\" is %s, not active: start it with "
		  "'echo start > %s/ctl'",
		  box, state, box);
	return -EAGAIN;
}

/* ---- setup ---- */

static void wipe(char *s)
{
	if (s)
		memset(s, 0, strlen(s));
	free(s);
}

static void free_ws_headers(struct vx *vx)
{
	for (size_t i = 0; i < vx->nws_headers; i++)
		wipe(vx->ws_headers[i]);
	vx->nws_headers = 0;
}

/*
 * One small list at mount time: refused credentials are a mount error,
 * said once.  It also finds the revision: a gateway that does not know
 * /api/v1/sandbox/list speaks R4's /api/v1/sandboxes.  An unreachable
 * gateway is only a warning: the mount works once it answers.
 */
static int check_credentials(struct vx *vx)
{
	cJSON *body = list_body(vx, 0), *data = NULL;
	char text[400];
	int rc;

	if (!body)
		return -ENOMEM;
	rc = rest(vx, &data, "POST", "/list", body, 0, "list sandboxes");
	if (rc == -ENOENT) {
		free(vx->prefix);
		vx->prefix = strdup("/api/v1/sandboxes");
		vx->r4 = 1;
		if (!vx->prefix)
			rc = -ENOMEM;
		else
			rc = rest(vx, &data, "POST", "", body, 0, "list sandboxes (R4)");
	}
	cJSON_Delete(body);
	cJSON_Delete(data);
	snprintf(text, sizeof(text), "%s", sbx_fail_text());
	if (rc == -EACCES) {
		sbx_failf("vtrix: the credentials were refused: %s", text);
	} else if (rc == -EPROTO) {
		sbx_failf("%s", text); /* an untrusted certificate does not get better */
	} else if (rc == -ENOENT) {
		sbx_failf("vtrix: %s is not a Vtrix gateway: %s", vx->url, text);
	} else if (rc && rc != -ENOMEM) {
		sbx_warn("%s; mounting anyway", text);
		rc = 0;
	}
	return rc;
}

static const struct remote_box_ops vx_box_ops;

static void vx_free(struct vx *vx)
{
	remote_release(&vx->r);
	free_ws_headers(vx);
	http_client_free(vx->http);
	free(vx->url);
	free(vx->prefix);
	free(vx->project);
	free(vx->user);
	pthread_mutex_destroy(&vx->lock);
	free(vx);
}

static int vx_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	char *url = remote_opt(opts, "api_url", "VTRIX_URL");
	char *token = remote_opt(opts, "token", "VTRIX_TOKEN");
	char *project = remote_opt(opts, "project_id", "VTRIX_PROJECT_ID");
	char auth[4096], proj[600], missing[96] = "";
	const char *headers[2];
	struct http_config cfg = { 0 };
	struct vx *vx = NULL;
	int rc = -EINVAL;

	if (!url)
		strcat(missing, " VTRIX_URL");
	if (!token)
		strcat(missing, " VTRIX_TOKEN");
	if (!project)
		strcat(missing, " VTRIX_PROJECT_ID");
	if (missing[0]) {
		sbx_failf("vtrix: no credentials: set%s (or -o api_url=, token=, "
			  "project_id=)",
			  missing);
		goto out;
	}
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		sbx_failf("vtrix: VTRIX_URL must start with http:// or https://");
		goto out;
	}
	if (strpbrk(token, "\r\n") || strpbrk(project, "\r\n") ||
	    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >=
		    (int)sizeof(auth) ||
	    snprintf(proj, sizeof(proj), "X-Project-ID: %s", project) >=
		    (int)sizeof(proj)) {
		sbx_failf("vtrix: the token or project id is too long or not one line");
		goto out;
	}
	vx = calloc(1, sizeof(*vx));
	if (!vx) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&vx->lock, NULL);
	rc = remote_setup(&vx->r, "vtrix", REMOTE_TEXT_OUTPUT, opts, &vx_stagefile_ops,
			  NULL);
	vx->r.run = vx_run;
	vx->r.box_ops = &vx_box_ops;
	if (rc)
		goto fail;
	rc = -ENOMEM;
	vx->url = url;
	url = NULL;
	remote_trim_url(vx->url);
	vx->project = project;
	project = NULL;
	vx->user = remote_opt(opts, "user_id", "VTRIX_USER_ID");
	vx->prefix = strdup("/api/v1/sandbox");
	headers[0] = auth;
	headers[1] = proj;
	cfg.headers = headers;
	cfg.nheaders = 2;
	remote_http_config(&vx->r, &cfg);
	vx->ws_headers[0] = strdup(auth);
	vx->ws_headers[1] = strdup(proj);
	vx->nws_headers = 2;
	vx->http = http_client_new(&cfg);
	if (!vx->prefix || !vx->ws_headers[0] || !vx->ws_headers[1] || !vx->http)
		goto fail;
	rc = check_credentials(vx);
	if (rc)
		goto fail;
	p->priv = vx;
	goto out;
fail:
	vx_free(vx);
out:
	memset(auth, 0, sizeof(auth));
	wipe(token);
	free(url);
	free(project);
	return rc;
}

static void vx_destroy(struct sbx_provider *p)
{
	struct vx *vx = VX(p);
	int left;

	if (!vx)
		return;
	/* Closing the sockets ends the command followers' calls; they see
	 * the stop, finish their commands and leave. */
	cmdpoll_stop(&vx->r.cmds);
	vx_rpc_close(vx, NULL);
	left = cmdpoll_wait(&vx->r.cmds, 30);
	vx_rpc_close(vx, NULL);
	if (left)
		return; /* a follower is stuck in a bounded call: leak, don't crash */
	vx_free(vx);
	p->priv = NULL;
}

static void vx_describe(struct sbx_provider *p, struct sbx_kvlist *out)
{
	struct vx *vx = VX(p);

	sbx_kv_add(out, "api_url", vx->url);
	sbx_kv_add(out, "api",
		   vx->r4 ? "R4 (/api/v1/sandboxes)" : "R1-R3 (/api/v1/sandbox)");
	sbx_kv_add(out, "project_id", vx->project);
	if (vx->user)
		sbx_kv_add(out, "user_id", vx->user);
	remote_describe(&vx->r, out);
}

/* ---- sandboxes ---- */

static int vx_list(struct sbx_provider *p, sbx_list_fn fn, void *ctx)
{
	return list_all(VX(p), fn, ctx);
}

static int whole_number(const char *key, const char *v, long max, long *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end || n < 0 || n > max) {
		sbx_failf("bad %s \"%s\": a whole number from 0 to %ld is needed", key, v,
			  max);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

static int one_line(const char *key, const char *v)
{
	if (strpbrk(v, "\n\r")) {
		sbx_failf("bad %s: it must be one line", key);
		return -EINVAL;
	}
	return 0;
}

/* The create body from "new NAME k=v ..." arguments. */
static int create_body(struct vx *vx, cJSON *body, const char *box,
		       const struct sbx_kvlist *args)
{
	cJSON *spec = cJSON_CreateObject(), *labels = cJSON_CreateObject();
	cJSON *env = cJSON_CreateObject();
	int rc = 0;

	if (!spec || !labels || !env) {
		rc = -ENOMEM;
		goto out;
	}
	cJSON_AddStringToObject(body, "user_id", vx->user);
	cJSON_AddStringToObject(labels, VX_NAME_LABEL, box);
	for (size_t i = 0; i < args->n && !rc; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;
		long n;

		if ((rc = one_line(key, v)))
			break;
		if (!strcmp(key, "cpu") || !strcmp(key, "memory") ||
		    !strcmp(key, "image")) {
			cJSON_DeleteItemFromObject(spec, key);
			cJSON_AddStringToObject(spec, key, v);
		} else if (!strcmp(key, "ttl")) {
			rc = whole_number(key, v, 24 * 365, &n);
			if (!rc && n)
				cJSON_AddNumberToObject(body, "ttl_hours", (double)n);
		} else if (!strncmp(key, "label.", 6) && key[6]) {
			if (!strcmp(key + 6, VX_NAME_LABEL)) {
				sbx_failf("label.%s is the sandbox's name here",
					  VX_NAME_LABEL);
				rc = -EINVAL;
			} else {
				cJSON_DeleteItemFromObject(labels, key + 6);
				cJSON_AddStringToObject(labels, key + 6, v);
			}
		} else if (!strncmp(key, "env.", 4) && key[4]) {
			cJSON_DeleteItemFromObject(env, key + 4);
			cJSON_AddStringToObject(env, key + 4, v);
		} else {
			sbx_failf("unknown key \"%s\" for a vtrix sandbox (cpu, memory, "
				  "image, ttl, label.K, env.K)",
				  key);
			rc = -EINVAL;
		}
	}
	if (rc)
		goto out;
	if (cJSON_GetArraySize(spec)) {
		cJSON_AddItemToObject(body, "spec", spec);
		spec = NULL;
	}
	cJSON_AddItemToObject(body, "labels", labels);
	labels = NULL;
	if (cJSON_GetArraySize(env)) {
		/* The environment reaches commands through an init payload
		 * (R1/R2 "body"; R3+ also read "envs"). */
		cJSON *payloads = cJSON_AddArrayToObject(body, "payloads");
		cJSON *pl = cJSON_CreateObject();

		cJSON_AddItemToArray(payloads, pl);
		cJSON_AddStringToObject(pl, "api", "/api/v1/env");
		cJSON_AddItemToObject(pl, "envs", cJSON_Duplicate(env, 1));
		cJSON_AddItemToObject(pl, "body", env);
		env = NULL;
	}
out:
	cJSON_Delete(spec);
	cJSON_Delete(labels);
	cJSON_Delete(env);
	return rc;
}

static int vx_create(struct remote *r, const char *box, const struct sbx_kvlist *args)
{
	struct vx *vx = (struct vx *)r;
	cJSON *body = NULL, *data = NULL;
	char id[128], what[128];
	const char *newid;
	int rc;

	snprintf(what, sizeof(what), "create sandbox \"%s\"", box);
	if (!vx->user) {
		sbx_failf("vtrix: sandboxes are owned by a user: set VTRIX_USER_ID (or "
			  "-o user_id=) to create one");
		return -EINVAL;
	}
	rc = vx_id_of(vx, id, sizeof(id), box);
	if (!rc) {
		sbx_failf("vtrix: sandbox \"%s\" exists", box);
		return -EEXIST;
	}
	if (rc != -ENOENT)
		return rc;
	body = cJSON_CreateObject();
	if (!body)
		return -ENOMEM;
	rc = create_body(vx, body, box, args);
	if (!rc)
		rc = rest(vx, &data, "POST", vx->r4 ? "" : "/create", body, 0, what);
	if (!rc) {
		newid = json_str(cJSON_GetObjectItemCaseSensitive(data, "sandbox"), "id");
		if (!valid_id(newid)) {
			sbx_failf("vtrix: %s: no usable sandbox id in the answer", what);
			rc = -EPROTO;
		} else {
			boxtable_set(&vx->r.boxes, box, newid);
		}
	}
	cJSON_Delete(body);
	cJSON_Delete(data);
	return rc;
}

/* POST or DELETE on one sandbox: {prefix}/{id}{action}. */
static int lifecycle(struct vx *vx, const char *box, const char *method,
		     const char *action, const cJSON *body, const char *verb)
{
	char id[128], path[300], what[160];
	int rc = vx_id_of(vx, id, sizeof(id), box);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "%s sandbox \"%s\"", verb, box);
	rc = id_path(path, sizeof(path), id, action);
	return rc ? rc : rest(vx, NULL, method, path, body, 0, what);
}

static int vx_start(struct remote *r, const char *box)
{
	return lifecycle((struct vx *)r, box, "POST", "/start", NULL, "start");
}

/* Closes the sandbox's socket before and after: a stop breaks it. */
static int vx_stop(struct remote *r, const char *box)
{
	struct vx *vx = (struct vx *)r;
	int rc;

	vx_rpc_close(vx, box);
	rc = lifecycle(vx, box, "POST", "/stop", NULL, "stop");
	/* A stop already under way refuses another: wait for it. */
	if (rc == -EBUSY && !remote_wait(r, box, REMOTE_IN(REMOTE_STOPPED), 30))
		rc = 0;
	vx_rpc_close(vx, box);
	return rc;
}

static int vx_remove(struct remote *r, const char *box)
{
	vx_rpc_close((struct vx *)r, box);
	return lifecycle((struct vx *)r, box, "DELETE", "", NULL, "delete");
}

static int box_state(struct remote *r, char *word, size_t size, char *why,
		     size_t why_size, const char *box)
{
	return state_of((struct vx *)r, box, word, size);
}

static const struct remote_box_ops vx_box_ops = {
	.noun = "sandbox",
	.states = vx_states,
	.state = box_state,
	.create = vx_create,
	.start = vx_start,
	.stop = vx_stop,
	.remove = vx_remove,
};

/* extend HOURS: R1/R2 take {"hours"}, R3/R4 {"seconds"} (at most a day
 * per call).  Hours first; a refused body is tried the other way. */
static int extend(struct vx *vx, const char *box, const char *arg)
{
	cJSON *body = cJSON_CreateObject();
	long hours;
	int rc = whole_number("hours", arg, 24 * 365, &hours);

	if (!body || rc) {
		cJSON_Delete(body);
		return rc ? rc : -ENOMEM;
	}
	cJSON_AddNumberToObject(body, vx->r4 ? "seconds" : "hours",
				(double)(vx->r4 ? hours * 3600 : hours));
	rc = lifecycle(vx, box, "POST", "/extend", body, "extend");
	if (rc == -EINVAL && !vx->r4 && hours > 0 && hours <= 24) {
		cJSON_DeleteItemFromObject(body, "hours");
		cJSON_AddNumberToObject(body, "seconds", (double)(hours * 3600));
		rc = lifecycle(vx, box, "POST", "/extend", body, "extend");
	}
	cJSON_Delete(body);
	return rc;
}

static int vx_ctl(struct sbx_provider *p, const char *box, int argc, char *const argv[])
{
	if (!strcmp(argv[0], "extend")) {
		if (argc != 2) {
			sbx_failf("extend takes one argument: the hours to add "
				  "(0: the server's default)");
			return -EINVAL;
		}
		return extend(VX(p), box, argv[1]);
	}
	sbx_failf("unknown command \"%s\" (vtrix knows start, stop, restart, delete, "
		  "extend HOURS)",
		  argv[0]);
	return -EINVAL;
}

static void add_str(struct sbx_kvlist *out, const cJSON *o, const char *field,
		    const char *key)
{
	const char *v = json_str(o, field);

	if (v && v[0] && !strpbrk(v, "\n\r"))
		sbx_kv_add(out, key, v);
}

static int vx_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	struct vx *vx = VX(p);
	const cJSON *spec, *labels, *it;
	struct timespec t;
	cJSON *info = NULL;
	const char *v;
	int rc = vx_get_info(vx, &info, box);

	if (rc)
		return rc;
	snprintf(out->id, sizeof(out->id), "%s", (v = json_str(info, "id")) ? v : "");
	v = json_str(info, "status");
	out->state = vx_map_state(v);
	if (v)
		snprintf(out->native_state, sizeof(out->native_state), "%s", v);
	spec = cJSON_GetObjectItemCaseSensitive(info, "spec");
	if ((v = json_str(info, "image_tag")) || (v = json_str(spec, "image")))
		snprintf(out->image, sizeof(out->image), "%s", v);
	if (!rfc3339_parse(&t, json_str(info, "created_at")))
		out->created = t.tv_sec;
	add_str(&out->extra, info, "expire_at", "expires");
	add_str(&out->extra, info, "user_id", "user");
	add_str(&out->extra, spec, "cpu", "cpu");
	add_str(&out->extra, spec, "memory", "memory");
	add_str(&out->extra, info, "allocated_at", "allocated");
	add_str(&out->extra, info, "last_active_at", "last_active");
	add_str(&out->extra, info, "preview_url", "preview_url");
	labels = cJSON_GetObjectItemCaseSensitive(info, "labels");
	cJSON_ArrayForEach(it, labels)
	{
		char key[160];

		if (!cJSON_IsString(it) || !it->string || strpbrk(it->string, " \n\r") ||
		    strpbrk(it->valuestring, "\n\r"))
			continue;
		snprintf(key, sizeof(key), "label.%s", it->string);
		sbx_kv_add(&out->extra, key, it->valuestring);
	}
	cJSON_Delete(info);
	return 0;
}

static const struct sbx_provider_ops vtrix_ops = {
	.init = vx_init,
	.destroy = vx_destroy,
	.describe = vx_describe,
	.list = vx_list,
	REMOTE_OPS_BOXES,
	.ctl = vx_ctl,
	.info = vx_info,
	REMOTE_OPS_FILES,
	REMOTE_OPS_SHELL,
	.cmd_start = vx_cmd_start,
	.cmd_stdin = vx_cmd_stdin,
	.cmd_signal = vx_cmd_signal,
	.cmd_release = vx_cmd_release,
};

const struct sbx_provider_desc sbx_provider_vtrix = {
	.name = "vtrix",
	/* STDIN only in that cmd/N/stdin is answered: Vtrix closes stdin
	 * at the start, so writes fail with EPIPE (vtrix_cmd.c). */
	.caps = SBX_CAP_SYMLINK | SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN |
		SBX_CAP_RENAME_OVER | SBX_CAP_LIST_STATS,
	/* Every look costs a command in the sandbox: trust answers a while. */
	.attr_timeout = 10.0,
	.entry_timeout = 10.0,
	.path_max = REMOTE_PATH_MAX,
	.ops = &vtrix_ops,
};
