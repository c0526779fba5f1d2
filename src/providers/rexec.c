/* SPDX-License-Identifier: MIT */
/*
 * The Rexec provider: containers from Rexec's REST API, files and
 * commands through scripts run in the container.
 *
 * Wire facts are in docs/providers.md and the protocol notes; the server's
 * behaviour is the reference.  In short:
 *  - REST under {url}/api, "Authorization: Bearer TOKEN", errors
 *    {"error": "..."} with extra fields (supported_images, retry_after).
 *    This file maps every failed answer to an errno, in rx_fail_resp().
 *  - A container has two ids: the database UUID, which create answers
 *    (202) and GET/DELETE accept, and the Docker id, which exists only
 *    once the container is "configuring" and which start, stop, the file
 *    endpoints, exec and the terminal need.  Start may recreate the
 *    container under a new Docker id.  Each name's record keeps both.
 *  - Containers are made running; create and start follow the state
 *    machine creating -> configuring -> running by polling, bounded.
 *  - The file list is parsed from `ls` on the server and cannot be
 *    trusted, and delete is `rm -rf`: everything but downloads and
 *    uploads is a script run in the container (rexec_run.c), whose
 *    output comes back base64-encoded and so exact (rexec_files.c).
 *  - Scripts and commands run through POST .../exec where the server has
 *    it (found out once), else through the container's terminal
 *    WebSocket, one connection per container, reused (rexec_run.c).
 */
#include "rexec.h"

#define DEFAULT_URL "https://rexec.pipeops.io"
#define LIST_FRESH_MS 1000 /* a list younger than this answers name lookups */

/* ---- errors: HTTP status and body to errno, in one place ---- */

/* Where Rexec differs from the common HTTP statuses. */
static const struct errmap rexec_errors[] = {
	{ 408, EIO },	 { 409, EEXIST },    { 410, ENOENT }, { 422, EIO },
	{ 423, EACCES }, { 504, ETIMEDOUT }, { 0, 0 },
};

static const char *const error_keys[] = { "error", "message", NULL };

/* Extra words for some answers: the supported images of a bad image,
 * how long a rate limit lasts, a container's status. */
static void error_extra(char *out, size_t size, const cJSON *j)
{
	const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(j, "supported_images"), *it;
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retry_after");
	size_t o = 0;

	out[0] = '\0';
	if (cJSON_IsArray(imgs)) {
		o = (size_t)snprintf(out, size, "; supported images:");
		cJSON_ArrayForEach(it, imgs)
		{
			if (!cJSON_IsString(it) || strpbrk(it->valuestring, "\n\r") ||
			    o + strlen(it->valuestring) + 8 >= size)
				continue;
			o += (size_t)snprintf(out + o, size - o, " %s", it->valuestring);
		}
	} else if (cJSON_IsNumber(ra) && ra->valuedouble >= 0 && ra->valuedouble < 1e6) {
		snprintf(out, size, "; retry after %.0f s", ra->valuedouble);
	}
}

/*
 * Rexec's error body is {"error": TEXT} with no code: a 400 is the
 * server's answer to every wrong state, told apart only by its words.
 */
static int status_errno(long status, const char *text, const struct errmap *over)
{
	const struct errmap *const maps[] = { over ? over : rexec_errors, rexec_errors,
					      errmap_http, NULL };
	const struct errmap *const only_over[] = { over, NULL };

	if (status == 400 && errmap_errno(only_over, status) == EIO) {
		if (strstr(text, "not running"))
			return EAGAIN;
		if (strstr(text, "too large"))
			return EFBIG;
	}
	return errmap_errno(maps, status);
}

int rx_fail_resp(const char *what, const struct http_resp *r, const struct errmap *over)
{
	char text[320], extra[1024] = "";
	cJSON *j = r->body.len ? json_parse(r->body.buf, r->body.len) : NULL;

	errmap_text(text, sizeof(text), r->body.buf, r->body.len, error_keys);
	if (cJSON_IsObject(j))
		error_extra(extra, sizeof(extra), j);
	cJSON_Delete(j);
	return errmap_fail_http("rexec", what, r->status, text, extra,
				status_errno(r->status, text, over));
}

/* ---- requests ---- */

int rx_request(struct rx *rx, struct http_resp *resp, const char *method, const char *url,
	       cJSON *json, int flags, size_t max_body, int timeout_ms)
{
	return remote_request(rx->http, resp, "rexec", method, url, json, flags, max_body,
			      timeout_ms);
}

int rx_url(struct strbuf *sb, struct rx *rx, const char *id, const char *suffix,
	   const char *path)
{
	int rc = strbuf_addf(sb, "%s/api/containers", rx->url);

	if (!rc && id)
		rc = strbuf_addf(sb, "/");
	if (!rc && id)
		rc = http_escape(sb, id);
	if (!rc && suffix)
		rc = strbuf_addf(sb, "%s", suffix);
	if (!rc && path)
		rc = strbuf_addf(sb, "?path=");
	if (!rc && path)
		rc = http_escape(sb, path);
	return rc;
}

/* ---- container records ---- */

static const struct remote_state_word rx_states[] = {
	{ "running", REMOTE_RUNNING },	    { "creating", REMOTE_CREATING },
	{ "configuring", REMOTE_STARTING }, { "stopped", REMOTE_STOPPED },
	{ "paused", REMOTE_PAUSED },	    { "error", REMOTE_ERROR },
	{ NULL, REMOTE_UNKNOWN },
};

static enum sbx_state map_state(const char *s)
{
	return remote_sbx_state(remote_state_of(rx_states, s));
}

/* An id as the server gives it: short, and only characters that need no
 * escaping anywhere (UUID, 64 hex). */
static int id_ok(const char *id)
{
	return id && id[0] && strlen(id) < RX_ID_MAX &&
	       strspn(id, "0123456789abcdefABCDEF-") == strlen(id);
}

/* Is this list entry one of the user's own containers? */
static int own_container(const cJSON *c)
{
	const char *id = json_str(c, "id");
	const cJSON *shared = cJSON_GetObjectItemCaseSensitive(c, "shared");

	const char *name = json_str(c, "name");

	return cJSON_IsObject(c) && id && strncmp(id, "agent:", 6) &&
	       !cJSON_IsTrue(shared) && name && sbx_name_valid(name);
}

/* Take in what a container JSON says about ids and status; a listing
 * (gen, else 0) marks the record seen. */
static void remember(struct rx *rx, const cJSON *c, unsigned gen)
{
	const char *name = json_str(c, "name"), *id = json_str(c, "id");
	const char *db = json_str(c, "db_id"), *status = json_str(c, "status");
	struct boxtable *t = &rx->r.boxes;
	struct rbox *b;
	struct rx_term *old = NULL;

	if (!own_container(c) || !id_ok(id) || (db && !id_ok(db)))
		return;
	boxtable_lock(t);
	b = boxtable_seen_locked(t, name, status, gen);
	if (b) {
		if (db)
			snprintf(b->id, sizeof(b->id), "%s", db);
		/* The list shows the UUID as id until there is a Docker id. */
		if (strlen(id) == 64) {
			if (b->alt_id[0] && strcmp(b->alt_id, id)) {
				old = b->priv; /* the container was recreated */
				b->priv = NULL;
			}
			snprintf(b->alt_id, sizeof(b->alt_id), "%s", id);
		} else if (!db) {
			snprintf(b->id, sizeof(b->id), "%s", id);
		}
	}
	boxtable_unlock(t);
	rx_term_free(old);
}

static void mark_gone(struct rx *rx, const char *box)
{
	boxtable_forget(&rx->r.boxes, box);
	stage_drop_box(rx->r.stage, box);
}

/* GET /api/containers: every own container to fn (may be NULL); the
 * records of containers no longer listed are marked gone. */
static int fetch_list(struct rx *rx, sbx_list_fn fn, void *ctx)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;
	cJSON *j, *arr, *it;
	unsigned gen;
	int rc;

	rc = rx_url(&url, rx, NULL, NULL, NULL);
	if (rc) {
		strbuf_release(&url);
		return rc;
	}
	rc = rx_request(rx, &r, "GET", url.buf, NULL, RX_REQ_IDEMPOTENT, RX_LIST_MAX, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status != 200) {
		rc = rx_fail_resp("list containers", &r, NULL);
		http_resp_release(&r);
		return rc;
	}
	j = cJSON_ParseWithLength(r.body.buf ? r.body.buf : "", r.body.len);
	http_resp_release(&r);
	arr = cJSON_GetObjectItemCaseSensitive(j, "containers");
	/* An empty list may come as null (a nil Go slice). */
	if (!cJSON_IsObject(j) || (!cJSON_IsArray(arr) && !cJSON_IsNull(arr))) {
		cJSON_Delete(j);
		sbx_failf("rexec: list containers: the answer is not a container list");
		return -EPROTO;
	}
	gen = boxtable_sweep_begin(&rx->r.boxes);
	cJSON_ArrayForEach(it, arr)
	{
		if (own_container(it))
			remember(rx, it, gen);
	}
	boxtable_sweep_end(&rx->r.boxes, gen);
	cJSON_ArrayForEach(it, arr)
	{
		if (fn && own_container(it) && id_ok(json_str(it, "id")) &&
		    fn(ctx, json_str(it, "name")))
			break;
	}
	cJSON_Delete(j);
	return 0;
}

/* GET /api/containers/{id}; the JSON (caller frees), -ENOENT if none. */
static int get_container(struct rx *rx, cJSON **out, const char *id, const char *box)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;
	char what[128];
	int rc;

	*out = NULL;
	snprintf(what, sizeof(what), "get container \"%s\"", box);
	rc = rx_url(&url, rx, id, NULL, NULL);
	if (rc) {
		strbuf_release(&url);
		return rc;
	}
	rc = rx_request(rx, &r, "GET", url.buf, NULL, RX_REQ_IDEMPOTENT, 0, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		rc = -ENOENT;
	} else if (r.status != 200) {
		rc = rx_fail_resp(what, &r, NULL);
	} else {
		*out = cJSON_ParseWithLength(r.body.buf ? r.body.buf : "", r.body.len);
		if (!cJSON_IsObject(*out) || !json_str(*out, "status")) {
			cJSON_Delete(*out);
			*out = NULL;
			sbx_failf("rexec: %s: the answer is not a container", what);
			rc = -EPROTO;
		} else if (!json_str(*out, "name") ||
			   strcmp(json_str(*out, "name"), box)) {
			/* Another container now holds the id: ours is gone. */
			cJSON_Delete(*out);
			*out = NULL;
			rc = -ENOENT;
		} else {
			remember(rx, *out, 0);
		}
	}
	http_resp_release(&r);
	return rc;
}

/* Copy the record's ids; -ENOENT if the box is not known to exist. */
static int ids_of(struct rx *rx, const char *box, char *db, char *docker, char *status)
{
	struct rbox *b;
	int rc = -ENOENT;

	boxtable_lock(&rx->r.boxes);
	b = boxtable_find_locked(&rx->r.boxes, box);
	if (b && !b->gone) {
		/* Both were checked by id_ok(): shorter than RX_ID_MAX. */
		snprintf(db, RX_ID_MAX, "%.*s", RX_ID_MAX - 1, b->id);
		snprintf(docker, RX_ID_MAX, "%.*s", RX_ID_MAX - 1, b->alt_id);
		if (status)
			snprintf(status, 32, "%s", b->state);
		rc = 0;
	}
	boxtable_unlock(&rx->r.boxes);
	return rc;
}

/* The container's JSON, found by what we know of its ids, else by the
 * list.  -ENOENT if there is no such container. */
static int lookup(struct rx *rx, cJSON **out, const char *box)
{
	char db[RX_ID_MAX], docker[RX_ID_MAX];
	int rc = ids_of(rx, box, db, docker, NULL);

	*out = NULL;
	if (rc || (!db[0] && !docker[0])) {
		if (boxtable_fresh(&rx->r.boxes, LIST_FRESH_MS))
			return -ENOENT;
		rc = fetch_list(rx, NULL, NULL);
		if (!rc)
			rc = ids_of(rx, box, db, docker, NULL);
		if (rc)
			return rc;
	}
	rc = get_container(rx, out, db[0] ? db : docker, box);
	if (rc == -ENOENT)
		mark_gone(rx, box);
	return rc;
}

int rx_docker_id(struct rx *rx, char *id, size_t size, const char *box, int fresh)
{
	char db[RX_ID_MAX], docker[RX_ID_MAX], status[32];
	int rc = fresh ? -ENOENT : ids_of(rx, box, db, docker, status);

	if (rc || !docker[0] || strcmp(status, "running")) {
		cJSON *c = NULL;

		rc = lookup(rx, &c, box);
		cJSON_Delete(c);
		if (!rc)
			rc = ids_of(rx, box, db, docker, status);
		if (rc)
			return rc;
	}
	/* The file endpoints and exec want "running"; the terminal takes
	 * "configuring" too, but setup still changes the container then. */
	if (!docker[0] || strcmp(status, "running")) {
		sbx_failf("rexec: container \"%s\" is %s, not running: start it with "
			  "'echo start > %s/ctl'",
			  box, status[0] ? status : "in an unknown state", box);
		return -EAGAIN;
	}
	snprintf(id, size, "%s", docker);
	return 0;
}

/* ---- setup ---- */

/* One small request at mount time: a refused token is a mount error,
 * said once; an unreachable server only a warning. */
static int check_credentials(struct rx *rx)
{
	static const long refused[] = { 401, 403, 423, 0 };
	struct strbuf url = STRBUF_INIT(4096);
	int rc;

	if (strbuf_addf(&url, "%s/api/containers", rx->url))
		return -ENOMEM;
	rc = remote_check_credentials(rx->http, "rexec", url.buf, RX_LIST_MAX, refused,
				      "the token was refused", rx_fail_resp);
	strbuf_release(&url);
	return rc;
}

static void release_term(void *t)
{
	rx_term_free(t);
}

static void rx_free(struct rx *rx)
{
	if (!rx)
		return;
	remote_release(&rx->r);
	if (rx->auth) {
		memset(rx->auth, 0, strlen(rx->auth));
		free(rx->auth);
	}
	http_client_free(rx->http);
	free(rx->url);
	pthread_mutex_destroy(&rx->lock);
	free(rx);
}

static int parse_options(struct rx *rx, const struct sbx_kvlist *opts)
{
	const char *v = sbx_kv_get(opts, "transport");

	if (!v)
		v = getenv("REXEC_TRANSPORT");
	if (!v || !v[0])
		v = "auto";
	if (strcmp(v, "auto") && strcmp(v, "exec") && strcmp(v, "terminal")) {
		sbx_failf("transport must be auto, exec or terminal, not \"%s\"", v);
		return -EINVAL;
	}
	snprintf(rx->transport_opt, sizeof(rx->transport_opt), "%s", v);
	rx->transport = !strcmp(v, "exec")	 ? RX_EXEC
			: !strcmp(v, "terminal") ? RX_TERMINAL
						 : RX_UNKNOWN;
	return 0;
}

static const struct remote_box_ops rx_box_ops;

static int rx_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	char *token = remote_opt(opts, "token", "REXEC_TOKEN");
	char *url = remote_opt(opts, "api_url", "REXEC_URL");
	char auth[4200];
	const char *headers[1];
	struct http_config cfg = { 0 };
	struct rx *rx = NULL;
	int rc = -EINVAL;
	size_t n;

	if (!token) {
		sbx_failf("no token: set REXEC_TOKEN (or -o token=)");
		goto out;
	}
	if (strpbrk(token, " \t\r\n") ||
	    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >=
		    (int)sizeof(auth)) {
		sbx_failf("the token is malformed (blanks, or too long)");
		goto out;
	}
	if (url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		sbx_failf("api_url must start with http:// or https://");
		goto out;
	}
	rx = calloc(1, sizeof(*rx));
	if (!rx) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&rx->lock, NULL);
	rc = remote_setup(&rx->r, "rexec", 0, opts, &rx_stagefile_ops, release_term);
	/* The exec endpoint cuts stdout at 1 MiB, and scripts' bytes come
	 * base64-encoded. */
	rx->r.output_max = 700u << 10;
	rx->r.run = rx_remote_run;
	rx->r.box_ops = &rx_box_ops;
	if (rc)
		goto fail;
	rc = -ENOMEM;
	rx->url = url ? url : strdup(DEFAULT_URL);
	url = NULL;
	if (!rx->url)
		goto fail;
	n = remote_trim_url(rx->url);
	if (n >= 4 && !strcmp(rx->url + n - 4, "/api"))
		rx->url[n - 4] = '\0'; /* accept the API's address too */
	rc = parse_options(rx, opts);
	if (rc)
		goto fail;
	rc = -ENOMEM;
	rx->auth = strdup(auth);
	headers[0] = auth;
	cfg.headers = headers;
	cfg.nheaders = 1;
	remote_http_config(&rx->r, &cfg);
	rx->http = http_client_new(&cfg);
	if (!rx->auth || !rx->http)
		goto fail;
	rc = check_credentials(rx);
	if (rc)
		goto fail;
	p->priv = rx;
	goto out;
fail:
	rx_free(rx);
out:
	memset(auth, 0, sizeof(auth));
	if (token)
		memset(token, 0, strlen(token));
	free(token);
	free(url);
	return rc;
}

static void rx_destroy(struct sbx_provider *p)
{
	struct rx *rx = RX(p);

	if (!rx)
		return;
	/* Command pollers notice the stop and leave. */
	cmdpoll_stop(&rx->r.cmds);
	if (cmdpoll_wait(&rx->r.cmds, 30))
		return; /* a poller is stuck in a bounded call: leak, don't crash */
	rx_free(rx);
	p->priv = NULL;
}

static void rx_describe(struct sbx_provider *p, struct sbx_kvlist *out)
{
	struct rx *rx = RX(p);

	sbx_kv_add(out, "api_url", rx->url);
	sbx_kv_add(out, "transport", rx_transport_word(rx));
	remote_describe(&rx->r, out);
}

/* ---- containers ---- */

static int rx_list(struct sbx_provider *p, sbx_list_fn fn, void *ctx)
{
	return fetch_list(RX(p), fn, ctx);
}

/* A Docker reference (registry/name:tag) rather than an image key. */
static int is_docker_ref(const char *image)
{
	return strpbrk(image, ":/.@") != NULL;
}

static int create_body(cJSON *body, const char *box, const struct sbx_kvlist *args)
{
	static const struct json_int_arg ints[] = {
		{ "memory", "memory_mb", 0, 10000000 },
		{ "cpu", "cpu_shares", 0, 10000000 },
		{ "disk", "disk_mb", 0, 10000000 },
		{ NULL, NULL, 0, 0 },
	};
	const char *image = "ubuntu", *custom = NULL;
	size_t i;
	int rc;

	cJSON_AddStringToObject(body, "name", box);
	for (i = 0; i < args->n; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;

		rc = json_add_int_arg(body, ints, key, v);
		if (rc < 0)
			return rc;
		if (rc) {
			/* a number */
		} else if (!strcmp(key, "image")) {
			image = v;
		} else if (!strcmp(key, "custom_image")) {
			custom = v;
		} else if (!strcmp(key, "role")) {
			cJSON_AddStringToObject(body, "role", v);
		} else {
			sbx_failf("unknown key \"%s\" for a rexec container (image, "
				  "custom_image, role, memory, cpu, disk)",
				  key);
			return -EINVAL;
		}
	}
	if (!image[0] || strpbrk(image, " \n\r\t")) {
		sbx_failf("bad image \"%s\"", image);
		return -EINVAL;
	}
	if (!custom && is_docker_ref(image)) {
		custom = image;
		image = "custom";
	}
	cJSON_AddStringToObject(body, "image", custom ? "custom" : image);
	if (custom)
		cJSON_AddStringToObject(body, "custom_image", custom);
	return 0;
}

static int rx_create(struct remote *r0, const char *box, const struct sbx_kvlist *args)
{
	struct rx *rx = (struct rx *)r0;
	struct strbuf url = STRBUF_INIT(4096);
	cJSON *body = cJSON_CreateObject(), *c = NULL;
	struct http_resp r;
	char what[128];
	int rc;

	snprintf(what, sizeof(what), "create container \"%s\"", box);
	if (!body || rx_url(&url, rx, NULL, NULL, NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = create_body(body, box, args);
	if (rc)
		goto out;
	rc = rx_request(rx, &r, "POST", url.buf, body, 0, 0, 0);
	if (rc)
		goto out;
	if (r.status != 202 && r.status != 200 && r.status != 201) {
		rc = rx_fail_resp(what, &r, NULL);
	} else if (!(c = cJSON_ParseWithLength(r.body.buf, r.body.len)) ||
		   !id_ok(json_str(c, "id")) || !json_str(c, "name") ||
		   strcmp(json_str(c, "name"), box)) {
		sbx_failf("rexec: %s: the answer is not the new container", what);
		rc = -EPROTO;
	} else {
		remember(rx, c, 0);
	}
	http_resp_release(&r);
out:
	cJSON_Delete(c);
	strbuf_release(&url);
	cJSON_Delete(body);
	return rc;
}

/* POST /api/containers/{docker id}/{action}: start and stop. */
static int lifecycle(struct rx *rx, const char *box, const char *action)
{
	struct strbuf url = STRBUF_INIT(4096);
	char db[RX_ID_MAX], docker[RX_ID_MAX], msg[128], suffix[16];
	struct http_resp r;
	cJSON *j;
	int rc = ids_of(rx, box, db, docker, NULL);

	if (rc)
		return rc;
	if (!docker[0]) {
		sbx_failf("rexec: container \"%s\" has no Docker container yet", box);
		return -EAGAIN;
	}
	snprintf(msg, sizeof(msg), "%s container \"%s\"", action, box);
	snprintf(suffix, sizeof(suffix), "/%s", action);
	rc = rx_url(&url, rx, docker, suffix, NULL);
	if (rc) {
		strbuf_release(&url);
		return rc;
	}
	rc = rx_request(rx, &r, "POST", url.buf, NULL, 0, 0, 120000);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status != 200) {
		rc = rx_fail_resp(msg, &r, NULL);
	} else if ((j = cJSON_ParseWithLength(r.body.buf, r.body.len))) {
		/* Start may recreate the container under a new Docker id. */
		const char *id = json_str(j, "id");
		struct rbox *b;

		boxtable_lock(&rx->r.boxes);
		b = boxtable_find_locked(&rx->r.boxes, box);
		if (b && id_ok(id) && strlen(id) == 64)
			snprintf(b->alt_id, sizeof(b->alt_id), "%s", id);
		boxtable_unlock(&rx->r.boxes);
		cJSON_Delete(j);
	}
	http_resp_release(&r);
	return rc;
}

static int status_of(struct remote *r, char *out, size_t size, char *why, size_t why_size,
		     const char *box)
{
	cJSON *c = NULL;
	int rc = lookup((struct rx *)r, &c, box);

	if (!rc)
		snprintf(out, size, "%s", json_str(c, "status"));
	why[0] = '\0';
	cJSON_Delete(c);
	return rc;
}

/* A terminal whose shell dies with the container starts it again:
 * close it first. */
static int rx_start(struct remote *r, const char *box)
{
	rx_term_close((struct rx *)r, box);
	return lifecycle((struct rx *)r, box, "start");
}

static int rx_stop(struct remote *r, const char *box)
{
	rx_term_close((struct rx *)r, box);
	return lifecycle((struct rx *)r, box, "stop");
}

static int rx_remove(struct remote *r0, const char *box)
{
	struct rx *rx = (struct rx *)r0;
	struct strbuf url = STRBUF_INIT(4096);
	char db[RX_ID_MAX], docker[RX_ID_MAX], msg[128];
	struct http_resp r;
	cJSON *c = NULL;
	int rc = lookup(rx, &c, box);

	cJSON_Delete(c);
	if (!rc)
		rc = ids_of(rx, box, db, docker, NULL);
	if (rc)
		return rc;
	/* Deleting a container that is still being created leaves it running
	 * unlisted on the server: let the creation finish first. */
	rc = remote_wait(r0, box,
			 REMOTE_IN(REMOTE_RUNNING) | REMOTE_IN(REMOTE_STOPPED) |
				 REMOTE_IN(REMOTE_ERROR) | REMOTE_IN(REMOTE_GONE),
			 REMOTE_STATE_WAIT_S);
	if (rc)
		return rc;
	rx_term_close(rx, box);
	snprintf(msg, sizeof(msg), "delete container \"%s\"", box);
	rc = rx_url(&url, rx, db[0] ? db : docker, NULL, NULL);
	if (!rc)
		rc = rx_request(rx, &r, "DELETE", url.buf, NULL, RX_REQ_IDEMPOTENT, 0,
				120000);
	strbuf_release(&url);
	if (!rc) {
		if (r.status != 200 && r.status != 404)
			rc = rx_fail_resp(msg, &r, NULL);
		http_resp_release(&r);
	}
	return rc;
}

static const struct remote_box_ops rx_box_ops = {
	.noun = "container",
	.states = rx_states,
	.state = status_of,
	.create = rx_create,
	.start = rx_start,
	.stop = rx_stop,
	.remove = rx_remove,
};

static int rx_ctl(struct sbx_provider *p, const char *box, int argc, char *const argv[])
{
	sbx_failf("unknown command \"%s\" (rexec knows start, stop, restart, delete)",
		  argv[0]);
	return -EINVAL;
}

static int rx_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	static const struct {
		const char *field, *key;
	} strs[] = {
		{ "db_id", "db_id" },		{ "role", "role" },
		{ "ip_address", "ip_address" }, { "last_used_at", "last_used" },
		{ "expires_at", "expires" },
	};
	struct rx *rx = RX(p);
	const cJSON *res;
	cJSON *c = NULL;
	const char *v;
	double d;
	size_t i;
	int rc = lookup(rx, &c, box);

	if (rc)
		return rc;
	v = json_str(c, "id");
	snprintf(out->id, sizeof(out->id), "%s", v && id_ok(v) ? v : "");
	v = json_str(c, "status");
	out->state = map_state(v);
	snprintf(out->native_state, sizeof(out->native_state), "%s",
		 v && !strpbrk(v, "\n") ? v : "");
	if ((v = json_str(c, "image")) && !strpbrk(v, "\n"))
		snprintf(out->image, sizeof(out->image), "%s", v);
	if ((v = json_str(c, "created_at"))) {
		struct tm tm = { 0 };

		if (strptime(v, "%Y-%m-%dT%H:%M:%S", &tm))
			out->created = timegm(&tm);
	}
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((v = json_str(c, strs[i].field)) && v[0] && !strpbrk(v, "\n"))
			sbx_kv_add(&out->extra, strs[i].key, v);
	res = cJSON_GetObjectItemCaseSensitive(c, "resources");
	if (json_num(res, "memory_mb", &d))
		sbx_kv_addf(&out->extra, "memory_mb", "%g", d);
	if (json_num(res, "cpu_shares", &d))
		sbx_kv_addf(&out->extra, "cpu_shares", "%g", d);
	if (json_num(res, "disk_mb", &d))
		sbx_kv_addf(&out->extra, "disk_mb", "%g", d);
	if (json_num(c, "idle_seconds", &d))
		sbx_kv_addf(&out->extra, "idle_seconds", "%.0f", d);
	sbx_kv_add(&out->extra, "transport", rx_transport_word(rx));
	cJSON_Delete(c);
	return 0;
}

static const struct sbx_provider_ops rexec_ops = {
	.init = rx_init,
	.destroy = rx_destroy,
	.describe = rx_describe,
	.list = rx_list,
	REMOTE_OPS_BOXES,
	.ctl = rx_ctl,
	.info = rx_info,
	REMOTE_OPS_FILES,
	REMOTE_OPS_SHELL,
	.cmd_start = rx_cmd_start,
	.cmd_stdin = rx_cmd_stdin,
	.cmd_signal = rx_cmd_signal,
	.cmd_release = rx_cmd_release,
};

const struct sbx_provider_desc sbx_provider_rexec = {
	.name = "rexec",
	.caps = SBX_CAP_SYMLINK | SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN |
		SBX_CAP_RENAME_OVER | SBX_CAP_LIST_STATS,
	/* Every look is a script in the container: trust answers a while. */
	.attr_timeout = 10.0,
	.entry_timeout = 10.0,
	.path_max = REMOTE_PATH_MAX,
	.ops = &rexec_ops,
};
