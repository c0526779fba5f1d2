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
 *    fetched at open, uploaded at close or fsync.
 *  - What the toolbox lacks (rmdir that refuses non-empty directories,
 *    rename over a file, truncate, utimens, link, statfs) runs as a
 *    command through /process/execute, with its exit code carrying the
 *    errno.  The file API follows symlinks and cannot make them, so this
 *    provider shows symlinks as what they point to and cannot create them.
 *  - Commands run in a session of their own, asynchronously; output comes
 *    from the command's log (stdout and stderr told apart by the 3-byte
 *    line markers), the end from the command's exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sbxfs/http.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/provider.h"
#include "sbxfs/shell.h"
#include "sbxfs/stage.h"
#include "sbxfs/strbuf.h"

#define DEFAULT_API_URL "https://app.daytona.io/api"
#define LIST_PAGE 200
#define LIST_PAGES_MAX 100 /* 20,000 sandboxes */
#define LISTING_MAX (64u << 20)
#define RUN_OUTPUT_MAX (1u << 20)
#define LOG_MAX ((size_t)1 << 30)
#define STATE_WAIT_S 300 /* bound on waiting for a state change */
#define CMD_LOST_S 60	 /* a command whose server stops answering this long is lost */

struct dbox {
	struct dbox *next;
	char name[SBX_NAME_MAX + 1];
	char id[128];
	char *toolbox; /* base URL of this sandbox's toolbox, no trailing '/' */
};

struct dt {
	struct http_client *http;
	char *api;    /* no trailing '/' */
	char *target; /* default region for new sandboxes, or NULL */
	int jwt;      /* authenticating with a JWT and an organisation id */
	struct stage *stage;
	char session_prefix[48];

	pthread_mutex_t lock; /* guards boxes, cmd_seq, pollers, stopping */
	pthread_cond_t pollers_done;
	struct dbox *boxes;
	unsigned long cmd_seq;
	int pollers;
	int stopping;
};

#define DT(p) ((struct dt *)(p)->priv)

/* ---- errors: HTTP status and body to errno, in one place ---- */

/* Exceptions to the default mapping, per call. */
struct errmap {
	long status;
	int err;
};

static int status_errno(long status, const struct errmap *over)
{
	for (; over && over->status; over++)
		if (over->status == status)
			return over->err;
	switch (status) {
	case 400:
	case 422:
		return EINVAL;
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 408:
		return ETIMEDOUT;
	case 409:
		return EBUSY;
	case 410:
		return EPIPE;
	case 413:
		return EFBIG;
	case 429:
		return EAGAIN;
	default:
		return EIO;
	}
}

/* The server's words for a failure: "message", else "error", else the
 * body itself when it is short text, else nothing.  Always printable. */
static void error_text(char *out, size_t size, const struct http_resp *r)
{
	cJSON *j = r->body.len ? cJSON_ParseWithLength(r->body.buf, r->body.len) : NULL;
	const char *msg = NULL;
	size_t i, o = 0;

	if (j) {
		cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");

		if (cJSON_IsArray(m))
			m = cJSON_GetArrayItem(m, 0);
		if (!cJSON_IsString(m))
			m = cJSON_GetObjectItemCaseSensitive(j, "error");
		if (cJSON_IsString(m))
			msg = m->valuestring;
	} else if (r->body.len && r->body.len < 300) {
		msg = r->body.buf;
	}
	for (i = 0; msg && msg[i] && o + 1 < size && i < 300; i++)
		out[o++] = (msg[i] >= 0x20 && msg[i] < 0x7f) ? msg[i] : '?';
	out[o] = '\0';
	cJSON_Delete(j);
}

static int fail_resp(const char *what, const struct http_resp *r,
		     const struct errmap *over)
{
	char text[320];
	int err = status_errno(r->status, over);

	error_text(text, sizeof(text), r);
	sbx_failf("daytona: %s: HTTP %ld%s%s", what, r->status, text[0] ? ": " : "",
		  text);
	return -err;
}

/* ---- requests ---- */

static const char *const split_header[] = { "X-Daytona-Split-Output: true", NULL };
static const char *const json_header[] = { "Content-Type: application/json", NULL };

enum {
	REQ_IDEMPOTENT = 1 << 0,
	REQ_TRANSFER = 1 << 1,
	REQ_LONG = 1 << 2, /* the server may hold it up to 30 s on purpose */
};

/* One request; a JSON body if `json` is set.  0 with a response of any
 * status, or -errno when none came. */
static int request(struct dt *dt, struct http_resp *resp, const char *method,
		   const char *url, cJSON *json, int flags, size_t max_body)
{
	struct http_req req = HTTP_REQ_INIT;
	char *body = NULL;
	int rc;

	req.method = method;
	req.url = url;
	req.idempotent = flags & REQ_IDEMPOTENT;
	req.transfer = flags & REQ_TRANSFER;
	req.timeout_ms = (flags & REQ_LONG) ? 90000 : 0;
	req.max_body = max_body;
	if (json) {
		body = cJSON_PrintUnformatted(json);
		if (!body)
			return -ENOMEM;
		req.body = body;
		req.body_len = strlen(body);
		req.headers = json_header;
	}
	rc = http_do(dt->http, &req, resp);
	free(body);
	if (rc)
		sbx_failf("daytona: %s", sbx_fail_text());
	return rc;
}

/* Parse a JSON answer; NULL with -EPROTO text if it is not JSON. */
static cJSON *parse_json(const struct http_resp *r, const char *what)
{
	cJSON *j = cJSON_ParseWithLength(r->body.buf ? r->body.buf : "", r->body.len);

	if (!j)
		sbx_failf("daytona: %s: the answer is not JSON", what);
	return j;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jnum(const cJSON *o, const char *key, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		return 0;
	*out = v->valuedouble;
	return 1;
}

/* ---- URLs ---- */

static int url_sandbox(struct strbuf *sb, struct dt *dt, const char *idname,
		       const char *suffix)
{
	int rc = strbuf_addf(sb, "%s/sandbox/", dt->api);

	if (!rc)
		rc = http_escape(sb, idname);
	return rc ? rc : strbuf_addf(sb, "%s", suffix ? suffix : "");
}

/* {toolbox}{route}?k1=v1&k2=v2 ... (NULL-terminated key/value pairs). */
static int url_toolbox(struct strbuf *sb, const char *toolbox, const char *route, ...)
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

static enum sbx_state map_state(const char *s)
{
	static const struct {
		const char *word;
		enum sbx_state state;
	} map[] = {
		{ "started", SBX_STATE_RUNNING },
		{ "stopped", SBX_STATE_STOPPED },
		{ "paused", SBX_STATE_STOPPED },
		{ "starting", SBX_STATE_STARTING },
		{ "restoring", SBX_STATE_STARTING },
		{ "resuming", SBX_STATE_STARTING },
		{ "pulling_snapshot", SBX_STATE_CREATING },
		{ "creating", SBX_STATE_CREATING },
		{ "pending_build", SBX_STATE_CREATING },
		{ "building_snapshot", SBX_STATE_CREATING },
		{ "stopping", SBX_STATE_STOPPING },
		{ "pausing", SBX_STATE_STOPPING },
		{ "archiving", SBX_STATE_STOPPING },
		{ "archived", SBX_STATE_ARCHIVED },
		{ "error", SBX_STATE_ERROR },
		{ "build_failed", SBX_STATE_ERROR },
		{ "destroying", SBX_STATE_DELETING },
		{ "destroyed", SBX_STATE_DELETING },
	};
	size_t i;

	for (i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].word, s))
			return map[i].state;
	return SBX_STATE_UNKNOWN;
}

/* The name a sandbox goes by here: its Daytona name, else its id. */
static const char *box_name_of(const cJSON *sb)
{
	const char *name = jstr(sb, "name");

	return name && name[0] ? name : jstr(sb, "id");
}

/* Remember name -> id (and the toolbox URL if the JSON has one). */
static void remember(struct dt *dt, const cJSON *sb)
{
	const char *name = box_name_of(sb), *id = jstr(sb, "id");
	const char *proxy = jstr(sb, "toolboxProxyUrl");
	struct dbox *b;

	if (!name || !id || !sbx_name_valid(name) || strlen(id) >= sizeof(b->id))
		return;
	pthread_mutex_lock(&dt->lock);
	for (b = dt->boxes; b; b = b->next)
		if (!strcmp(b->name, name))
			break;
	if (!b && (b = calloc(1, sizeof(*b)))) {
		snprintf(b->name, sizeof(b->name), "%s", name);
		b->next = dt->boxes;
		dt->boxes = b;
	}
	if (b && strcmp(b->id, id)) {
		snprintf(b->id, sizeof(b->id), "%s", id);
		free(b->toolbox);
		b->toolbox = NULL;
	}
	if (b && !b->toolbox && proxy && proxy[0] && !strncmp(proxy, "http", 4)) {
		struct strbuf u = STRBUF_INIT(4096);
		size_t n = strlen(proxy);

		while (n && proxy[n - 1] == '/')
			n--;
		if (!strbuf_add(&u, proxy, n) && !strbuf_addf(&u, "/") &&
		    !http_escape(&u, id))
			b->toolbox = strbuf_detach(&u, NULL);
		strbuf_release(&u);
	}
	pthread_mutex_unlock(&dt->lock);
}

static void forget(struct dt *dt, const char *name)
{
	struct dbox **pp, *b;

	pthread_mutex_lock(&dt->lock);
	for (pp = &dt->boxes; (b = *pp); pp = &b->next) {
		if (!strcmp(b->name, name)) {
			*pp = b->next;
			free(b->toolbox);
			free(b);
			break;
		}
	}
	pthread_mutex_unlock(&dt->lock);
}

/* GET /sandbox/{name}: the sandbox JSON (caller frees).  -ENOENT if none. */
static int get_sandbox(struct dt *dt, cJSON **out, const char *name)
{
	struct strbuf url = STRBUF_INIT(8192);
	struct http_resp r;
	char what[128];
	int rc;

	*out = NULL;
	snprintf(what, sizeof(what), "get sandbox \"%s\"", name);
	if (url_sandbox(&url, dt, name, NULL))
		return -ENOMEM;
	rc = request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		forget(dt, name);
		rc = -ENOENT;
	} else if (r.status != 200) {
		rc = fail_resp(what, &r, NULL);
	} else if (!(*out = parse_json(&r, what)) || !cJSON_IsObject(*out)) {
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
static int toolbox_of(struct dt *dt, char **out, const char *name)
{
	struct strbuf url = STRBUF_INIT(8192);
	char id[128] = "";
	struct dbox *b;
	struct http_resp r;
	cJSON *j = NULL;
	int rc;

	*out = NULL;
	for (int pass = 0; pass < 2; pass++) {
		pthread_mutex_lock(&dt->lock);
		for (b = dt->boxes; b; b = b->next)
			if (!strcmp(b->name, name))
				break;
		if (b && b->toolbox)
			*out = strdup(b->toolbox);
		if (b)
			snprintf(id, sizeof(id), "%s", b->id);
		pthread_mutex_unlock(&dt->lock);
		if (*out)
			return 0;
		if (id[0])
			break;
		rc = get_sandbox(dt, &j, name);
		cJSON_Delete(j);
		if (rc)
			return rc;
	}
	if (!id[0])
		return -ENOENT;
	/* No toolboxProxyUrl in the sandbox JSON: an older server. */
	if (url_sandbox(&url, dt, id, "/toolbox-proxy-url"))
		return -ENOMEM;
	rc = request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	url = (struct strbuf)STRBUF_INIT(8192);
	if (r.status == 200 && (j = cJSON_ParseWithLength(r.body.buf, r.body.len)) &&
	    jstr(j, "url") && !strncmp(jstr(j, "url"), "http", 4)) {
		const char *u = jstr(j, "url");
		size_t n = strlen(u);

		while (n && u[n - 1] == '/')
			n--;
		rc = strbuf_add(&url, u, n) || strbuf_addf(&url, "/") ||
		     http_escape(&url, id);
	} else if (r.status == 404) {
		rc = strbuf_addf(&url, "%s/toolbox/", dt->api) || http_escape(&url, id) ||
		     strbuf_addf(&url, "/toolbox");
	} else {
		rc = -(r.status ? -fail_resp("toolbox address", &r, NULL) : EIO);
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
	pthread_mutex_lock(&dt->lock);
	for (b = dt->boxes; b; b = b->next)
		if (!strcmp(b->name, name) && !b->toolbox)
			b->toolbox = strdup(*out);
	pthread_mutex_unlock(&dt->lock);
	return 0;
}

/*
 * A toolbox call failed with `r`: if the sandbox is not running, say so
 * (-EAGAIN, the tree's errno for a sandbox in the wrong state); otherwise
 * map the status.
 */
static int toolbox_fail(struct dt *dt, const char *box, const char *what,
			const struct http_resp *r, const struct errmap *over)
{
	cJSON *sb = NULL;
	int rc;

	if (r->status == 404 || r->status == 409 || r->status == 408)
		return fail_resp(what, r, over);
	rc = fail_resp(what, r, over);
	if (!get_sandbox(dt, &sb, box)) {
		const char *state = jstr(sb, "state");

		if (map_state(state) != SBX_STATE_RUNNING) {
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

static char *opt_or_env(const struct sbx_kvlist *o, const char *key, const char *env)
{
	const char *v = sbx_kv_get(o, key);

	if (!v)
		v = getenv(env);
	return v && v[0] ? strdup(v) : NULL;
}

static int dt_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	char *key = opt_or_env(opts, "api_key", "DAYTONA_API_KEY");
	char *jwt = opt_or_env(opts, "jwt_token", "DAYTONA_JWT_TOKEN");
	char *org = opt_or_env(opts, "organization_id", "DAYTONA_ORGANIZATION_ID");
	char *api = opt_or_env(opts, "api_url", "DAYTONA_API_URL");
	const char *state = sbx_kv_get(opts, "state_dir"), *v;
	char auth[4096], orgh[512], stagedir[4200];
	const char *headers[3];
	struct http_config cfg = { 0 };
	struct dt *dt = NULL;
	uint64_t cache_max = 2ull << 30;
	int rc = -EINVAL;
	size_t n;

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
	if ((v = sbx_kv_get(opts, "cache_max"))) {
		char *end;
		unsigned long long mb = strtoull(v, &end, 10);

		if (end == v || *end || mb == 0) {
			sbx_failf("cache_max must be a number of MiB, not \"%s\"", v);
			goto out;
		}
		cache_max = (uint64_t)mb << 20;
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
	pthread_cond_init(&dt->pollers_done, NULL);
	dt->jwt = !key;
	dt->api = api ? api : strdup(DEFAULT_API_URL);
	api = NULL;
	n = strlen(dt->api);
	while (n && dt->api[n - 1] == '/')
		dt->api[--n] = '\0';
	dt->target = opt_or_env(opts, "target", "DAYTONA_TARGET");
	snprintf(dt->session_prefix, sizeof(dt->session_prefix), "sbxfs-%d-%lx",
		 (int)getpid(), (unsigned long)time(NULL));
	headers[0] = auth;
	cfg.nheaders = 1;
	if (dt->jwt) {
		snprintf(orgh, sizeof(orgh), "X-Daytona-Organization-ID: %s", org);
		headers[cfg.nheaders++] = orgh;
	}
	headers[cfg.nheaders++] = "X-Daytona-Source: sbxfs";
	cfg.headers = headers;
	cfg.retries = 3;
	if ((v = sbx_kv_get(opts, "timeout"))) {
		int s = atoi(v);

		if (s <= 0) {
			sbx_failf("timeout must be a number of seconds, not \"%s\"", v);
			goto fail;
		}
		cfg.timeout_ms = cfg.stall_ms = s * 1000;
	}
	dt->http = http_client_new(&cfg);
	snprintf(stagedir, sizeof(stagedir), "%s/stage/daytona", state ? state : "/tmp");
	dt->stage = stage_new(stagedir, cache_max);
	if (!dt->http || !dt->stage)
		goto fail;
	p->priv = dt;
	rc = 0;
	goto out;
fail:
	http_client_free(dt->http);
	stage_free(dt->stage);
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
	struct timespec until;

	if (!dt)
		return;
	/* Command pollers notice `stopping`, end their commands and leave. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&dt->lock);
	dt->stopping = 1;
	while (dt->pollers)
		if (pthread_cond_timedwait(&dt->pollers_done, &dt->lock, &until))
			break;
	while (dt->boxes) {
		struct dbox *b = dt->boxes;

		dt->boxes = b->next;
		free(b->toolbox);
		free(b);
	}
	pthread_mutex_unlock(&dt->lock);
	if (dt->pollers)
		return; /* a poller is stuck in a bounded request: leak, don't crash */
	http_client_free(dt->http);
	stage_free(dt->stage);
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
	sbx_kv_addf(out, "cache_max", "%llu",
		    (unsigned long long)(stage_max(dt->stage) >> 20));
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
		rc = request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, LISTING_MAX);
		strbuf_release(&url);
		if (rc)
			break;
		if (r.status != 200) {
			rc = fail_resp("list sandboxes", &r, NULL);
			http_resp_release(&r);
			break;
		}
		j = parse_json(&r, "list sandboxes");
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
			    map_state(jstr(it, "state")) == SBX_STATE_DELETING)
				continue;
			remember(dt, it);
			if (fn(ctx, name))
				break;
		}
		next = cJSON_IsArray(j) ? NULL : jstr(j, "nextCursor");
		free(cursor);
		cursor = next && next[0] ? strdup(next) : NULL;
		cJSON_Delete(j);
		if (!cursor)
			break;
	}
	free(cursor);
	return rc;
}

/* Wait until the sandbox reaches one of the states in `want` (a
 * space-separated list of Daytona words).  -ENOENT as a wanted outcome is
 * the word "gone".  Fails on error states and past STATE_WAIT_S. */
static int wait_state(struct dt *dt, const char *box, const char *want)
{
	time_t deadline = time(NULL) + STATE_WAIT_S;
	long delay_ms = 100;
	char last[64] = "";

	for (;;) {
		cJSON *sb = NULL;
		int rc = get_sandbox(dt, &sb, box);
		const char *state;
		char word[72];

		if (rc == -ENOENT) {
			return strstr(want, "gone") ? 0 : rc;
		}
		if (rc)
			return rc;
		state = jstr(sb, "state");
		snprintf(last, sizeof(last), "%s", state ? state : "?");
		snprintf(word, sizeof(word), " %s ", last);
		{
			char padded[256];

			snprintf(padded, sizeof(padded), " %s ", want);
			if (strstr(padded, word)) {
				cJSON_Delete(sb);
				return 0;
			}
		}
		if (map_state(state) == SBX_STATE_ERROR) {
			const char *why = jstr(sb, "errorReason");

			sbx_failf("daytona: sandbox \"%s\" is in state %s%s%s", box, last,
				  why ? ": " : "", why ? why : "");
			cJSON_Delete(sb);
			return -EIO;
		}
		cJSON_Delete(sb);
		if (time(NULL) > deadline) {
			sbx_failf(
				"daytona: sandbox \"%s\" still %s after %d s (waiting for %s)",
				box, last, STATE_WAIT_S, want);
			return -ETIMEDOUT;
		}
		usleep((useconds_t)delay_ms * 1000);
		if (delay_ms < 1000)
			delay_ms = delay_ms * 3 / 2;
	}
}

static int add_int_arg(cJSON *body, const char *field, const char *key, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end || n < -1 || n > 1000000) {
		sbx_failf("bad %s \"%s\": a whole number is needed", key, v);
		return -EINVAL;
	}
	cJSON_AddNumberToObject(body, field, (double)n);
	return 0;
}

/* Build the create body from "new NAME k=v ..." arguments. */
static int create_body(struct dt *dt, cJSON *body, const char *box,
		       const struct sbx_kvlist *args)
{
	static const struct {
		const char *key, *field;
	} ints[] = {
		{ "cpu", "cpu" },
		{ "memory", "memory" },
		{ "disk", "disk" },
		{ "gpu", "gpu" },
		{ "auto_stop", "autoStopInterval" },
		{ "auto_archive", "autoArchiveInterval" },
		{ "auto_delete", "autoDeleteInterval" },
	};
	cJSON *env = cJSON_AddObjectToObject(body, "env");
	cJSON *labels = cJSON_AddObjectToObject(body, "labels");
	const char *image = NULL;
	size_t i, k;
	int rc;

	cJSON_AddStringToObject(body, "name", box);
	if (dt->target)
		cJSON_AddStringToObject(body, "target", dt->target);
	for (i = 0; i < args->n; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;

		for (k = 0; k < sizeof(ints) / sizeof(ints[0]); k++)
			if (!strcmp(key, ints[k].key))
				break;
		if (k < sizeof(ints) / sizeof(ints[0])) {
			rc = add_int_arg(body, ints[k].field, key, v);
			if (rc)
				return rc;
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

static int dt_create(struct sbx_provider *p, const char *box,
		     const struct sbx_kvlist *args)
{
	static const struct errmap over[] = { { 409, EEXIST }, { 0, 0 } };
	struct dt *dt = DT(p);
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
	rc = request(dt, &r, "POST", url.buf, body, REQ_LONG, 0);
	if (rc)
		goto out;
	if (r.status != 200 && r.status != 201) {
		rc = fail_resp(what, &r, over);
	} else if ((sb = cJSON_ParseWithLength(r.body.buf, r.body.len))) {
		remember(dt, sb);
		cJSON_Delete(sb);
	}
	http_resp_release(&r);
	/* Daytona makes running sandboxes: wait until it is usable. */
	if (!rc)
		rc = wait_state(dt, box, "started");
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
	if (url_sandbox(&url, dt, box, action))
		return -ENOMEM;
	rc = request(dt, &r, method, url.buf, NULL, REQ_LONG, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status < 200 || r.status > 299)
		rc = fail_resp(msg, &r, over);
	http_resp_release(&r);
	return rc;
}

/* The sandbox's current Daytona state word into `out`. */
static int state_of(struct dt *dt, const char *box, char *out, size_t size)
{
	cJSON *sb = NULL;
	int rc = get_sandbox(dt, &sb, box);

	if (!rc)
		snprintf(out, size, "%s",
			 jstr(sb, "state") ? jstr(sb, "state") : "unknown");
	cJSON_Delete(sb);
	return rc;
}

static int dt_start(struct sbx_provider *p, const char *box)
{
	struct dt *dt = DT(p);
	char state[64];
	int rc = state_of(dt, box, state, sizeof(state));

	if (rc)
		return rc;
	switch (map_state(state)) {
	case SBX_STATE_RUNNING:
		return 0;
	case SBX_STATE_STOPPED:
	case SBX_STATE_ARCHIVED:
	case SBX_STATE_ERROR:
		rc = lifecycle(dt, box, "POST", "/start", "start");
		break;
	case SBX_STATE_STOPPING:
		/* Let the stop finish, then start. */
		rc = wait_state(dt, box, "stopped archived");
		if (!rc)
			rc = lifecycle(dt, box, "POST", "/start", "start");
		break;
	case SBX_STATE_DELETING:
		sbx_failf("daytona: sandbox \"%s\" is being deleted", box);
		return -EBUSY;
	default:
		break; /* creating, starting: it is on its way */
	}
	return rc ? rc : wait_state(dt, box, "started");
}

static int dt_stop(struct sbx_provider *p, const char *box)
{
	struct dt *dt = DT(p);
	char state[64];
	int rc = state_of(dt, box, state, sizeof(state));

	if (rc)
		return rc;
	switch (map_state(state)) {
	case SBX_STATE_STOPPED:
	case SBX_STATE_ARCHIVED:
		return 0;
	case SBX_STATE_STOPPING:
		break;
	case SBX_STATE_CREATING:
	case SBX_STATE_STARTING:
		rc = wait_state(dt, box, "started");
		if (!rc)
			rc = lifecycle(dt, box, "POST", "/stop", "stop");
		break;
	case SBX_STATE_DELETING:
		sbx_failf("daytona: sandbox \"%s\" is being deleted", box);
		return -EBUSY;
	default:
		rc = lifecycle(dt, box, "POST", "/stop", "stop");
		break;
	}
	stage_drop_box(dt->stage, box);
	return rc ? rc : wait_state(dt, box, "stopped archived");
}

static int dt_remove(struct sbx_provider *p, const char *box)
{
	struct dt *dt = DT(p);
	int rc = lifecycle(dt, box, "DELETE", "", "delete");

	if (rc == -ENOENT)
		rc = 0;
	if (!rc)
		rc = wait_state(dt, box, "gone destroyed");
	if (!rc) {
		forget(dt, box);
		stage_drop_box(dt->stage, box);
	}
	return rc;
}

static int dt_ctl(struct sbx_provider *p, const char *box, int argc, char *const argv[])
{
	struct dt *dt = DT(p);
	int rc;

	if (!strcmp(argv[0], "archive") && argc == 1) {
		rc = dt_stop(p, box);
		if (!rc)
			rc = lifecycle(dt, box, "POST", "/archive", "archive");
		return rc ? rc : wait_state(dt, box, "archived");
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

static time_t parse_iso(const char *s)
{
	struct tm tm = { 0 };
	const char *end;

	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return 0;
	return timegm(&tm);
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
	int rc = get_sandbox(dt, &sb, box);

	if (rc)
		return rc;
	snprintf(out->id, sizeof(out->id), "%s", (v = jstr(sb, "id")) ? v : "");
	v = jstr(sb, "state");
	out->state = map_state(v);
	snprintf(out->native_state, sizeof(out->native_state), "%s", v ? v : "");
	bi = cJSON_GetObjectItemCaseSensitive(sb, "buildInfo");
	if ((v = jstr(sb, "snapshot")) && v[0])
		snprintf(out->image, sizeof(out->image), "%s", v);
	else if (bi && (v = jstr(bi, "dockerfileContent")) && !strncmp(v, "FROM ", 5))
		snprintf(out->image, sizeof(out->image), "%.*s",
			 (int)strcspn(v + 5, "\n"), v + 5);
	out->created = parse_iso(jstr(sb, "createdAt"));
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((v = jstr(sb, strs[i].field)) && v[0] && !strchr(v, '\n'))
			sbx_kv_add(&out->extra, strs[i].key, v);
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (jnum(sb, nums[i].field, &d))
			sbx_kv_addf(&out->extra, nums[i].key, "%g", d);
	add_map(&out->extra, sb, "labels", "label.", 0);
	add_map(&out->extra, sb, "env", "env.", 1);
	cJSON_Delete(sb);
	return 0;
}

/* ---- FileInfo ---- */

/* "2026-06-01T15:16:34.123456789Z" (modifiedAt) or Go's time.String()
 * "2026-06-01 15:16:34.123456789 +0000 UTC" (modTime). */
static int parse_time(const char *s, struct timespec *ts)
{
	struct tm tm = { 0 };
	const char *p;
	long nsec = 0, off = 0;
	int digits = 0;

	if (!s)
		return -1;
	p = strptime(s, "%Y-%m-%d", &tm);
	if (!p || (*p != 'T' && *p != ' '))
		return -1;
	p = strptime(p + 1, "%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*p - '0');
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	while (*p == ' ')
		p++;
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 &&
		    sscanf(p + 1, "%2d%2d", &hh, &mm) != 2)
			return -1;
		off = sign * (hh * 3600L + mm * 60L);
	} else if (*p != 'Z' && *p) {
		return -1;
	}
	ts->tv_sec = timegm(&tm) - off;
	ts->tv_nsec = nsec;
	return 0;
}

/* Go's FileMode.String(): type and special letters, then "rwxrwxrwx". */
static mode_t parse_mode(const char *s, int is_dir, const char *perm)
{
	mode_t m = 0, type = is_dir ? S_IFDIR : S_IFREG;
	size_t n = s ? strlen(s) : 0, i;

	if (n >= 9) {
		static const char rwx[] = "rwxrwxrwx";

		for (i = 0; i < 9; i++)
			if (s[n - 9 + i] == rwx[i])
				m |= 0400 >> i;
		for (i = 0; i < n - 9; i++) {
			switch (s[i]) {
			case 'u':
				m |= S_ISUID;
				break;
			case 'g':
				m |= S_ISGID;
				break;
			case 't':
				m |= S_ISVTX;
				break;
			case 'p':
				type = S_IFIFO;
				break;
			case 'S':
				type = S_IFSOCK;
				break;
			case 'D':
				type = strchr(s, 'c') && strchr(s, 'c') < s + n - 9
					       ? S_IFCHR
					       : S_IFBLK;
				break;
			}
		}
	} else if (perm) {
		m = (mode_t)strtoul(perm, NULL, 8) & 07777;
	}
	if (is_dir)
		type = S_IFDIR;
	return type | m;
}

static unsigned idnum(const char *s)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return 65534;
	v = strtoul(s, &end, 10);
	return (*end || v > 0xfffffffful) ? 65534 : (unsigned)v;
}

/* A FileInfo as lstat would give it (as far as Daytona knows).  -EPROTO
 * for an entry that lies: no name, a bad name, a negative size. */
static int fileinfo_stat(const cJSON *fi, struct stat *st, const char **name)
{
	double size = -1;
	const cJSON *isdir = cJSON_GetObjectItemCaseSensitive(fi, "isDir");
	const char *n = jstr(fi, "name");

	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(fi) || !jnum(fi, "size", &size) || size < 0 || size > 0x1p62)
		return -EPROTO;
	if (name) {
		if (!n || !sbx_entry_name_valid(n))
			return -EPROTO;
		*name = n;
	}
	st->st_mode = parse_mode(jstr(fi, "mode"), cJSON_IsTrue(isdir),
				 jstr(fi, "permissions"));
	st->st_size = (off_t)size;
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	st->st_uid = idnum(jstr(fi, "owner"));
	st->st_gid = idnum(jstr(fi, "group"));
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	if (parse_time(jstr(fi, "modifiedAt"), &st->st_mtim) &&
	    parse_time(jstr(fi, "modTime"), &st->st_mtim))
		st->st_mtim.tv_sec = 0;
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

/* ---- file slots ---- */

static int dt_info_call(struct dt *dt, struct stat *st, const char *box, const char *path)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	char *tb;
	cJSON *j;
	int rc = toolbox_of(dt, &tb, box);

	if (rc)
		return rc;
	rc = url_toolbox(&url, tb, "/files/info", "path", path, NULL) ? -ENOMEM : 0;
	free(tb);
	if (!rc)
		rc = request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		rc = -ENOENT;
	} else if (r.status != 200) {
		rc = toolbox_fail(dt, box, "file info", &r, NULL);
	} else if (!(j = parse_json(&r, "file info"))) {
		rc = -EPROTO;
	} else {
		rc = fileinfo_stat(j, st, NULL);
		if (rc)
			sbx_failf("daytona: file info of \"%s\": a bad FileInfo", path);
		cJSON_Delete(j);
	}
	http_resp_release(&r);
	return rc;
}

static int dt_getattr(struct sbx_provider *p, struct stat *out, const char *box,
		      const char *path)
{
	struct dt *dt = DT(p);

	if (!stage_stat(dt->stage, box, path, out))
		return 0;
	return dt_info_call(dt, out, box, path);
}

static int dt_readdir(struct sbx_provider *p, const char *box, const char *path,
		      sbx_dirent_fn fn, void *ctx)
{
	struct dt *dt = DT(p);
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	cJSON *j, *it;
	char *tb;
	int rc = toolbox_of(dt, &tb, box);

	if (rc)
		return rc;
	rc = url_toolbox(&url, tb, "/files", "path", path, NULL) ? -ENOMEM : 0;
	free(tb);
	if (!rc)
		rc = request(dt, &r, "GET", url.buf, NULL, REQ_IDEMPOTENT, LISTING_MAX);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404) {
		http_resp_release(&r);
		return -ENOENT;
	}
	if (r.status != 200) {
		rc = toolbox_fail(dt, box, "list files", &r, NULL);
		http_resp_release(&r);
		return rc;
	}
	j = parse_json(&r, "list files");
	http_resp_release(&r);
	if (!j || !cJSON_IsArray(j)) {
		cJSON_Delete(j);
		sbx_failf("daytona: list files of \"%s\": not a list", path);
		return -EPROTO;
	}
	cJSON_ArrayForEach(it, j)
	{
		struct stat st;
		const char *name;

		/* Skip what we cannot show truthfully: bad names, and names
		 * the server turned to U+FFFD because they were not UTF-8. */
		if (fileinfo_stat(it, &st, &name) || strstr(name, "\xef\xbf\xbd")) {
			sbx_debug("daytona: %s:%s: skipped an entry that is not valid",
				  box, path);
			continue;
		}
		if (fn(ctx, name, &st))
			break;
	}
	cJSON_Delete(j);
	return 0;
}

/* A handle: the shared staged copy plus what this open may do. */
struct dfile {
	struct staged *f;
	int writable;
};

/* Download box:path into f (locked by the caller). */
static int fetch(struct dt *dt, struct staged *f, const char *box, const char *path,
		 const struct stat *remote)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_resp r;
	char *tb;
	int rc;

	rc = stage_reserve(f, remote->st_size);
	if (rc)
		return rc;
	rc = toolbox_of(dt, &tb, box);
	if (rc)
		return rc;
	rc = url_toolbox(&url, tb, "/files/download", "path", path, NULL) ? -ENOMEM : 0;
	free(tb);
	if (rc)
		return rc;
	req.method = "GET";
	req.url = url.buf;
	req.out_fd = f->fd;
	req.idempotent = 1;
	req.transfer = 1;
	rc = http_do(dt->http, &req, &r);
	strbuf_release(&url);
	if (rc) {
		sbx_failf("daytona: download \"%s\": %s", path, sbx_fail_text());
		return rc;
	}
	if (r.status != 200) {
		rc = r.status == 404 ? -ENOENT
				     : toolbox_fail(dt, box, "download", &r, NULL);
	} else if (r.body_size != remote->st_size) {
		/* The file changed between info and download, or the server
		 * lies: take what came, but do not trust it for reuse. */
		sbx_debug("daytona: %s:%s: %lld bytes downloaded, %lld announced", box,
			  path, (long long)r.body_size, (long long)remote->st_size);
		if (ftruncate(f->fd, r.body_size))
			rc = -errno;
		f->fetched = 1;
		f->remote_size = -1;
	} else {
		f->fetched = 1;
		f->remote_size = remote->st_size;
		f->remote_mtime = remote->st_mtim;
	}
	f->mode = remote->st_mode;
	http_resp_release(&r);
	return rc;
}

static int same_remote(const struct staged *f, const struct stat *st)
{
	return f->fetched && f->remote_size == st->st_size &&
	       f->remote_mtime.tv_sec == st->st_mtim.tv_sec &&
	       f->remote_mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static int dt_open(struct sbx_provider *p, uint64_t *fh, struct stat *st, const char *box,
		   const char *path, int flags, mode_t mode)
{
	struct dt *dt = DT(p);
	struct dfile *h = calloc(1, sizeof(*h));
	struct stat remote;
	struct staged *f;
	int rc = 0, shared;

	if (!h)
		return -ENOMEM;
	f = h->f = stage_open(dt->stage, box, path, &rc);
	if (!f) {
		free(h);
		return rc;
	}
	shared = stage_shared(f);
	pthread_mutex_lock(&f->lock);
	if (shared && (f->fetched || f->dirty)) {
		/* Another open holds the current contents. */
		if (flags & O_CREAT && flags & O_EXCL)
			rc = -EEXIST;
	} else {
		rc = dt_info_call(dt, &remote, box, path);
		if (rc == -ENOENT && (flags & O_CREAT)) {
			/* New: exists here until close uploads it. */
			rc = ftruncate(f->fd, 0) ? -errno : 0;
			f->fetched = 0;
			f->dirty = 1;
			f->mode = S_IFREG | (mode & 07777);
		} else if (!rc && (flags & O_CREAT) && (flags & O_EXCL)) {
			rc = -EEXIST;
		} else if (!rc && S_ISDIR(remote.st_mode)) {
			rc = -EISDIR;
		} else if (!rc && !S_ISREG(remote.st_mode)) {
			rc = -EOPNOTSUPP;
			sbx_failf("daytona: \"%s\" is not a regular file", path);
		} else if (!rc && (flags & O_TRUNC)) {
			rc = ftruncate(f->fd, 0) ? -errno : 0;
			f->mode = remote.st_mode;
			f->fetched = 1;
			f->remote_size = -1;
			f->dirty = 1;
		} else if (!rc && !same_remote(f, &remote)) {
			rc = fetch(dt, f, box, path, &remote);
		}
	}
	if (!rc && (flags & O_TRUNC) && shared) {
		rc = ftruncate(f->fd, 0) ? -errno : 0;
		f->dirty = 1;
	}
	if (!rc && fstat(f->fd, st))
		rc = -errno;
	if (!rc) {
		st->st_mode = f->mode;
		st->st_nlink = 1;
		if (f->fetched && !f->dirty && f->remote_size >= 0)
			st->st_mtim = f->remote_mtime;
	}
	pthread_mutex_unlock(&f->lock);
	if (rc) {
		stage_close(f);
		free(h);
		return rc;
	}
	h->writable = (flags & O_ACCMODE) != O_RDONLY;
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static ssize_t dt_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t size,
		       off_t off)
{
	struct dfile *h = (struct dfile *)(uintptr_t)fh;
	ssize_t n = pread(h->f->fd, buf, size, off);

	return n < 0 ? -errno : n;
}

static ssize_t dt_write(struct sbx_provider *p, uint64_t fh, const char *buf, size_t size,
			off_t off)
{
	struct dfile *h = (struct dfile *)(uintptr_t)fh;
	struct staged *f = h->f;
	ssize_t n;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = stage_reserve(f, off + (off_t)size);
	if (rc) {
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	n = pwrite(f->fd, buf, size, off);
	if (n < 0)
		n = -errno;
	else
		f->dirty = 1;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Upload f (locked by the caller) if it has changes, then check that the
 * server holds what we sent: a close that returns 0 means the data is
 * there. */
static int upload(struct dt *dt, struct staged *f)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_req req = HTTP_REQ_INIT;
	struct http_part part = { "file", "upload", f->fd, 0 };
	struct http_resp r;
	struct stat local, remote;
	char *box = NULL, *path = NULL, *tb = NULL;
	int rc;

	if (!f->dirty)
		return 0;
	rc = stage_where(f, &box, &path);
	if (rc == -ENOENT) { /* unlinked while open: nothing to keep */
		f->dirty = 0;
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (fstat(f->fd, &local)) {
		rc = -errno;
		goto out;
	}
	part.size = local.st_size;
	rc = toolbox_of(dt, &tb, box);
	if (rc)
		goto out;
	if (url_toolbox(&url, tb, "/files/upload", "path", path, NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	req.method = "POST";
	req.url = url.buf;
	req.part = &part;
	req.idempotent = 1; /* the whole file, overwritten: safe to repeat */
	req.transfer = 1;
	rc = http_do(dt->http, &req, &r);
	if (rc) {
		sbx_failf("daytona: upload \"%s\": %s", path, sbx_fail_text());
		goto out;
	}
	if (r.status != 200 && r.status != 201) {
		static const struct errmap over[] = { { 404, ENOENT }, { 0, 0 } };

		rc = toolbox_fail(dt, box, "upload", &r, over);
		http_resp_release(&r);
		goto out;
	}
	http_resp_release(&r);
	/* A new file lands 0644: give it the mode it was created with. */
	if (!f->fetched && (f->mode & 07777) != 0644) {
		char m[8];

		snprintf(m, sizeof(m), "%04o", (unsigned)(f->mode & 07777));
		strbuf_release(&url);
		url = (struct strbuf)STRBUF_INIT(16384);
		if (url_toolbox(&url, tb, "/files/permissions", "path", path, "mode", m,
				NULL)) {
			rc = -ENOMEM;
			goto out;
		}
		rc = request(dt, &r, "POST", url.buf, NULL, REQ_IDEMPOTENT, 0);
		if (!rc && r.status != 200)
			rc = toolbox_fail(dt, box, "set mode after upload", &r, NULL);
		if (!rc)
			http_resp_release(&r);
		if (rc)
			goto out;
	}
	rc = dt_info_call(dt, &remote, box, path);
	if (!rc && remote.st_size != local.st_size) {
		sbx_failf(
			"daytona: upload \"%s\": the server holds %lld bytes, we sent %lld",
			path, (long long)remote.st_size, (long long)local.st_size);
		rc = -EIO;
	}
	if (!rc) {
		f->dirty = 0;
		f->fetched = 1;
		f->remote_size = remote.st_size;
		f->remote_mtime = remote.st_mtim;
		f->mode = (f->mode & S_IFMT) | (remote.st_mode & 07777);
	}
out:
	strbuf_release(&url);
	free(tb);
	free(box);
	free(path);
	return rc;
}

static int dt_flush(struct sbx_provider *p, uint64_t fh)
{
	struct dfile *h = (struct dfile *)(uintptr_t)fh;
	int rc;

	if (!h->writable)
		return 0;
	pthread_mutex_lock(&h->f->lock);
	rc = upload(DT(p), h->f);
	pthread_mutex_unlock(&h->f->lock);
	return rc;
}

static int dt_fsync(struct sbx_provider *p, uint64_t fh, int datasync)
{
	return dt_flush(p, fh);
}

static int dt_release(struct sbx_provider *p, uint64_t fh)
{
	struct dfile *h = (struct dfile *)(uintptr_t)fh;
	int rc = 0;

	/* Normally flush uploaded it; a failed upload gets one more try, and
	 * a loud log line if that fails too. */
	if (h->writable) {
		pthread_mutex_lock(&h->f->lock);
		if (h->f->dirty && stage_shared(h->f) == 0) {
			rc = upload(DT(p), h->f);
			if (rc)
				sbx_err("daytona: changes to a file were not saved: %s",
					sbx_fail_text());
		}
		pthread_mutex_unlock(&h->f->lock);
	}
	stage_close(h->f);
	free(h);
	return rc;
}

static int simple_toolbox(struct dt *dt, const char *box, const char *method,
			  const char *what, const char *route, const char *const *query,
			  const struct errmap *over)
{
	struct strbuf url = STRBUF_INIT(32768);
	struct http_resp r;
	char *tb;
	char sep = '?';
	int rc = toolbox_of(dt, &tb, box);

	if (rc)
		return rc;
	rc = strbuf_addf(&url, "%s%s", tb, route);
	free(tb);
	for (; !rc && query && query[0]; query += 2) {
		rc = strbuf_addf(&url, "%c%s=", sep, query[0]);
		if (!rc)
			rc = http_escape(&url, query[1]);
		sep = '&';
	}
	if (!rc)
		rc = request(dt, &r, method, url.buf, NULL, 0, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status < 200 || r.status > 299)
		rc = toolbox_fail(dt, box, what, &r, over);
	http_resp_release(&r);
	return rc;
}

static int dt_mkdir(struct sbx_provider *p, const char *box, const char *path,
		    mode_t mode)
{
	char m[8];
	const char *q[] = { "path", path, "mode", m, NULL };

	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 07777));
	return simple_toolbox(DT(p), box, "POST", "mkdir", "/files/folder", q, NULL);
}

static int dt_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	static const struct errmap over[] = { { 400, EISDIR }, { 0, 0 } };
	const char *q[] = { "path", path, NULL };
	int rc = simple_toolbox(DT(p), box, "DELETE", "delete", "/files", q, over);

	if (!rc || rc == -ENOENT)
		stage_unlink(DT(p)->stage, box, path);
	return rc;
}

static int dt_chmod(struct sbx_provider *p, const char *box, const char *path,
		    mode_t mode)
{
	char m[8];
	const char *q[] = { "path", path, "mode", m, NULL };

	snprintf(m, sizeof(m), "%04o", (unsigned)(mode & 07777));
	return simple_toolbox(DT(p), box, "POST", "chmod", "/files/permissions", q, NULL);
}

static int dt_chown(struct sbx_provider *p, const char *box, const char *path, uid_t uid,
		    gid_t gid)
{
	char u[16], g[16];
	const char *q[7] = { "path", path };
	int n = 2;

	if (uid != (uid_t)-1) {
		snprintf(u, sizeof(u), "%u", (unsigned)uid);
		q[n++] = "owner";
		q[n++] = u;
	}
	if (gid != (gid_t)-1) {
		snprintf(g, sizeof(g), "%u", (unsigned)gid);
		q[n++] = "group";
		q[n++] = g;
	}
	q[n] = NULL;
	if (n == 2)
		return 0;
	return simple_toolbox(DT(p), box, "POST", "chown", "/files/permissions", q, NULL);
}

/* ---- what the toolbox lacks, as commands ---- */

/*
 * Run `script` with /bin/sh in the sandbox through /process/execute and
 * map its exit code: 0 is success, and the scripts below exit with an
 * errno value for the outcomes that have one; anything else is -EIO with
 * the output in the failure text.  `out` (may be NULL) gets the output.
 */
static int run(struct dt *dt, const char *box, const char *what, const char *script,
	       struct strbuf *out)
{
	struct strbuf url = STRBUF_INIT(4096), cmd = STRBUF_INIT(1u << 20);
	struct http_resp r;
	cJSON *body = cJSON_CreateObject(), *j = NULL;
	double code = -1;
	const char *result;
	char *tb = NULL;
	int rc;

	rc = toolbox_of(dt, &tb, box);
	if (rc)
		goto out;
	if (!body || strbuf_addf(&url, "%s/process/execute", tb) ||
	    sh_wrap_base64(&cmd, NULL, script)) {
		rc = -ENOMEM;
		goto out;
	}
	cJSON_AddStringToObject(body, "command", cmd.buf);
	cJSON_AddNumberToObject(body, "timeout", 60);
	rc = request(dt, &r, "POST", url.buf, body, REQ_LONG, RUN_OUTPUT_MAX);
	if (rc)
		goto out;
	if (r.status != 200) {
		rc = toolbox_fail(dt, box, what, &r, NULL);
		http_resp_release(&r);
		goto out;
	}
	j = parse_json(&r, what);
	http_resp_release(&r);
	if (!j) {
		rc = -EPROTO;
		goto out;
	}
	/* "code" before v0.113, "exitCode" since. */
	if (!jnum(j, "exitCode", &code))
		jnum(j, "code", &code);
	result = jstr(j, "result");
	if (out && result)
		strbuf_add(out, result, strlen(result));
	if (code == 0) {
		rc = 0;
	} else if (code == ENOENT || code == EEXIST || code == ENOTDIR ||
		   code == EISDIR || code == ENOTEMPTY || code == EPERM ||
		   code == EACCES || code == EINVAL) {
		rc = -(int)code;
	} else {
		sbx_failf("daytona: %s: exit %g: %.300s", what, code,
			  result ? result : "");
		rc = -EIO;
	}
out:
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&cmd);
	free(tb);
	return rc;
}

/* script = prefix + quoted args, joined by the format in `fmt`, where
 * each %q takes the next path. */
static int script_of(struct strbuf *sb, const char *fmt, const char *a, const char *b)
{
	const char *args[2] = { a, b };
	int i = 0, rc = 0;

	for (; *fmt && !rc; fmt++) {
		if (fmt[0] == '%' && fmt[1] == 'q' && i < 2) {
			rc = sh_quote(sb, args[i++]);
			fmt++;
		} else {
			rc = strbuf_add(sb, fmt, 1);
		}
	}
	return rc;
}

static int run_fmt(struct dt *dt, const char *box, const char *what, const char *fmt,
		   const char *a, const char *b, struct strbuf *out)
{
	struct strbuf s = STRBUF_INIT(1u << 20);
	int rc = script_of(&s, fmt, a, b) ? -ENOMEM : run(dt, box, what, s.buf, out);

	strbuf_release(&s);
	return rc;
}

static int dt_rmdir(struct sbx_provider *p, const char *box, const char *path)
{
	/* The toolbox's delete is recursive or nothing: rmdir(1) refuses a
	 * directory with anything in it, as rmdir(2) must. */
	return run_fmt(DT(p), box, "rmdir",
		       "d=%q; [ -d \"$d\" ] || exit 20; rmdir -- \"$d\" 2>&1 && exit 0; "
		       "[ -n \"$(ls -A -- \"$d\" 2>/dev/null)\" ] && exit 39; exit 5",
		       path, NULL, NULL);
}

static int dt_rename(struct sbx_provider *p, const char *box, const char *from,
		     const char *to, unsigned flags)
{
	static const struct errmap over[] = { { 409, EEXIST }, { 0, 0 } };
	struct dt *dt = DT(p);
	const char *q[] = { "source", from, "destination", to, NULL };
	int rc;

	if (flags & ~RENAME_NOREPLACE) {
		sbx_failf("daytona: rename cannot exchange two files");
		return -EINVAL;
	}
	/* The toolbox moves only onto a free name (409 otherwise). */
	rc = simple_toolbox(dt, box, "POST", "rename", "/files/move", q, over);
	if (rc == -EEXIST && !(flags & RENAME_NOREPLACE)) {
		/* Over an existing file, as editors save: rename(2) in the
		 * sandbox, atomic there. */
		rc = run_fmt(dt, box, "rename",
			     "a=%q; b=%q; mv -fT -- \"$a\" \"$b\" 2>&1 && exit 0; "
			     "[ -d \"$b\" ] && [ -n \"$(ls -A -- \"$b\")\" ] && exit 39; "
			     "exit 5",
			     from, to, NULL);
	}
	if (!rc)
		stage_rename(dt->stage, box, from, to);
	return rc;
}

static int dt_truncate(struct sbx_provider *p, const char *box, const char *path,
		       off_t size)
{
	struct dt *dt = DT(p);
	char n[32];
	int rc;

	/* An open copy is the file's future contents: truncate that, and
	 * close uploads it. */
	rc = stage_truncate(dt->stage, box, path, size);
	if (rc != -ENOENT)
		return rc;
	snprintf(n, sizeof(n), "%lld", (long long)size);
	rc = run_fmt(dt, box, "truncate", "truncate -s %q -- %q 2>&1 || exit 5", n, path,
		     NULL);
	/* A cached copy no longer matches. */
	if (!rc)
		stage_unlink(dt->stage, box, path);
	return rc;
}

static void touch_time(char *out, size_t size, const struct timespec *ts)
{
	snprintf(out, size, "@%lld.%09ld", (long long)ts->tv_sec, ts->tv_nsec);
}

static int dt_utimens(struct sbx_provider *p, const char *box, const char *path,
		      const struct timespec ts[2])
{
	struct dt *dt = DT(p);
	struct strbuf s = STRBUF_INIT(1u << 20);
	static const char *const flag[2] = { "-a", "-m" };
	char t[48];
	int rc = 0, i;

	for (i = 0; i < 2 && !rc; i++) {
		if (ts[i].tv_nsec == UTIME_OMIT)
			continue;
		rc = strbuf_addf(&s, "touch -c %s ", flag[i]);
		if (!rc && ts[i].tv_nsec != UTIME_NOW) {
			touch_time(t, sizeof(t), &ts[i]);
			rc = strbuf_addf(&s, "-d %s ", t);
		}
		if (!rc)
			rc = script_of(&s, "-- %q 2>&1 || exit 5; ", path, NULL);
	}
	if (!rc && s.len)
		rc = run(dt, box, "utimens", s.buf, NULL);
	else if (rc)
		rc = -ENOMEM;
	strbuf_release(&s);
	return rc;
}

static int dt_link(struct sbx_provider *p, const char *box, const char *from,
		   const char *to)
{
	return run_fmt(DT(p), box, "link", "ln -- %q %q 2>&1 && exit 0; exit 5", from, to,
		       NULL);
}

static int dt_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
		     const char *path)
{
	struct strbuf o = STRBUF_INIT(4096);
	unsigned long long bsize, blocks, bfree, bavail, files, ffree, namemax;
	int rc = run_fmt(DT(p), box, "statfs",
			 "stat -f -c '%S %b %f %a %c %d %l' -- %q 2>&1 || exit 5", path,
			 NULL, &o);

	if (rc)
		goto out;
	if (!o.buf || sscanf(o.buf, "%llu %llu %llu %llu %llu %llu %llu", &bsize, &blocks,
			     &bfree, &bavail, &files, &ffree, &namemax) != 7) {
		sbx_failf("daytona: statfs: unexpected answer");
		rc = -EPROTO;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	out->f_bsize = out->f_frsize = bsize;
	out->f_blocks = blocks;
	out->f_bfree = bfree;
	out->f_bavail = bavail;
	out->f_files = files;
	out->f_ffree = out->f_favail = ffree;
	out->f_namemax = namemax;
out:
	strbuf_release(&o);
	return rc;
}

/* ---- commands ---- */

/*
 * One running command: a session of its own holding one asynchronous
 * command, and a thread that follows its log and status until it ends.
 */
struct dcmd {
	struct dt *dt;
	char box[SBX_NAME_MAX + 1];
	char *toolbox;
	char sid[96];
	char cid[128];
	char marker[96]; /* SBXFS_CMD value in the command's environment */
	struct sbx_cmd_sink *sink;
	int signalled; /* the last signal we sent, 0 if none */

	/* The log, demultiplexed: bytes consumed so far and the stream the
	 * last marker chose; a possible marker split across reads waits. */
	size_t log_off;
	enum sbx_stream stream;
};

/* GET {toolbox}/process/session/{sid}{suffix}. */
static int session_get(struct dcmd *c, struct http_resp *r, const char *suffix,
		       const char *const *headers, size_t max)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct http_req req = HTTP_REQ_INIT;
	int rc;

	if (strbuf_addf(&url, "%s/process/session/%s%s", c->toolbox, c->sid, suffix))
		return -ENOMEM;
	req.method = "GET";
	req.url = url.buf;
	req.headers = headers;
	req.idempotent = 1;
	req.max_body = max;
	rc = http_do(c->dt->http, &req, r);
	strbuf_release(&url);
	return rc;
}

static int is_marker(const unsigned char *p)
{
	return (p[0] == 1 && p[1] == 1 && p[2] == 1) ||
	       (p[0] == 2 && p[1] == 2 && p[2] == 2);
}

/* Feed the log's new bytes [from, len) to the sink, split at the 3-byte
 * stream markers.  A marker that may continue past the end is left for
 * the next read, unless `final`. */
static void demux(struct dcmd *c, const unsigned char *log, size_t len, int final)
{
	size_t i = c->log_off, run = i;

	while (i < len) {
		if (len - i < 3 && !final && (log[i] == 1 || log[i] == 2))
			break; /* maybe the start of a marker */
		if (len - i >= 3 && is_marker(log + i)) {
			if (i > run)
				c->sink->output(c->sink, c->stream,
						(const char *)log + run, i - run);
			c->stream = log[i] == 1 ? SBX_STREAM_STDOUT : SBX_STREAM_STDERR;
			i += 3;
			run = i;
			continue;
		}
		i++;
	}
	if (i > run)
		c->sink->output(c->sink, c->stream, (const char *)log + run, i - run);
	c->log_off = i;
}

/* Read the log again and pass on what is new.  The log is the whole
 * output so far (the API has no offsets). */
static int follow_log(struct dcmd *c, int final)
{
	struct http_resp r;
	char suffix[200];
	int rc;

	snprintf(suffix, sizeof(suffix), "/command/%s/logs", c->cid);
	rc = session_get(c, &r, suffix, split_header, LOG_MAX);
	if (rc)
		return rc;
	if (r.status != 200) {
		rc = fail_resp("command output", &r, NULL);
	} else if (r.body.len < c->log_off) {
		sbx_failf("daytona: command output shrank from %zu to %zu bytes",
			  c->log_off, r.body.len);
		rc = -EPROTO;
	} else if (r.body.len) {
		demux(c, (const unsigned char *)r.body.buf, r.body.len, final);
	}
	http_resp_release(&r);
	return rc;
}

/* The command's exit code: 1 and *code when it has ended, 0 while it
 * runs, or -errno. */
static int command_status(struct dcmd *c, int *code)
{
	struct http_resp r;
	char suffix[160];
	double d;
	cJSON *j;
	int rc;

	snprintf(suffix, sizeof(suffix), "/command/%s", c->cid);
	rc = session_get(c, &r, suffix, NULL, 0);
	if (rc)
		return rc;
	if (r.status != 200) {
		rc = fail_resp("command status", &r, NULL);
	} else if (!(j = parse_json(&r, "command status"))) {
		rc = -EPROTO;
	} else {
		rc = jnum(j, "exitCode", &d) ? 1 : 0;
		if (rc)
			*code = (int)d;
		cJSON_Delete(j);
	}
	http_resp_release(&r);
	return rc;
}

static void session_delete(struct dcmd *c)
{
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;

	if (strbuf_addf(&url, "%s/process/session/%s", c->toolbox, c->sid))
		return;
	if (!request(c->dt, &r, "DELETE", url.buf, NULL, REQ_IDEMPOTENT, 0))
		http_resp_release(&r);
	strbuf_release(&url);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void *poller(void *arg)
{
	struct dcmd *c = arg;
	struct dt *dt = c->dt;
	struct sbx_exit ex = { .how = SBX_EXIT_FAILED };
	struct timespec last_ok;
	long delay_ms = 20;
	int code = 0;

	clock_gettime(CLOCK_MONOTONIC, &last_ok);
	for (;;) {
		int stopping, rc;
		size_t before = c->log_off;

		pthread_mutex_lock(&dt->lock);
		stopping = dt->stopping;
		pthread_mutex_unlock(&dt->lock);
		if (stopping) {
			snprintf(ex.reason, sizeof(ex.reason),
				 "sbxfs was unmounted; the command may still run");
			break;
		}
		/* Status first: output logged before the end is then in the
		 * read that follows. */
		rc = command_status(c, &code);
		if (rc >= 0) {
			int ended = rc;

			rc = follow_log(c, ended);
			if (!rc && ended) {
				if (c->signalled && code == 128 + c->signalled) {
					ex.how = SBX_EXIT_SIGNAL;
					ex.code = c->signalled;
				} else {
					ex.how = SBX_EXIT_CODE;
					ex.code = code;
				}
				break;
			}
		}
		if (rc < 0) {
			if (rc == -ENOENT || ms_since(&last_ok) > CMD_LOST_S * 1000L) {
				snprintf(ex.reason, sizeof(ex.reason), "lost: %.140s",
					 sbx_fail_text());
				break;
			}
		} else {
			clock_gettime(CLOCK_MONOTONIC, &last_ok);
		}
		/* Poll quickly while output flows, back off while it does not. */
		delay_ms = c->log_off != before
				   ? 20
				   : (delay_ms * 3 / 2 > 500 ? 500 : delay_ms * 3 / 2);
		usleep((useconds_t)delay_ms * 1000);
	}
	if (ex.how != SBX_EXIT_FAILED || !strstr(ex.reason, "unmounted"))
		session_delete(c);
	c->sink->done(c->sink, &ex); /* may release c: touch it no more */
	pthread_mutex_lock(&dt->lock);
	if (--dt->pollers == 0)
		pthread_cond_broadcast(&dt->pollers_done);
	pthread_mutex_unlock(&dt->lock);
	return NULL;
}

static void dcmd_free(struct dcmd *c)
{
	free(c->toolbox);
	free(c);
}

static int dt_cmd_start(struct sbx_provider *p, void **handle, const char *box,
			const char *cmdline, struct sbx_cmd_sink *sink)
{
	static const struct errmap over[] = { { 409, EBUSY }, { 0, 0 } };
	struct dt *dt = DT(p);
	struct dcmd *c = calloc(1, sizeof(*c));
	struct strbuf url = STRBUF_INIT(4096), cmd = STRBUF_INIT(1u << 20);
	cJSON *body = NULL, *j = NULL;
	struct http_resp r;
	char state[64], env[128];
	pthread_t t;
	unsigned long seq;
	int rc;

	if (!c)
		return -ENOMEM;
	rc = state_of(dt, box, state, sizeof(state));
	if (!rc && map_state(state) != SBX_STATE_RUNNING) {
		sbx_failf("daytona: sandbox \"%s\" is %s, not started", box, state);
		rc = -EAGAIN;
	}
	if (!rc)
		rc = toolbox_of(dt, &c->toolbox, box);
	if (rc)
		goto fail;
	pthread_mutex_lock(&dt->lock);
	seq = ++dt->cmd_seq;
	pthread_mutex_unlock(&dt->lock);
	c->dt = dt;
	c->sink = sink;
	snprintf(c->box, sizeof(c->box), "%s", box);
	snprintf(c->sid, sizeof(c->sid), "%s-%lu", dt->session_prefix, seq);
	snprintf(c->marker, sizeof(c->marker), "%s", c->sid);

	/* A session of its own, so commands run side by side. */
	body = cJSON_CreateObject();
	if (!body || strbuf_addf(&url, "%s/process/session", c->toolbox)) {
		rc = -ENOMEM;
		goto fail;
	}
	cJSON_AddStringToObject(body, "sessionId", c->sid);
	rc = request(dt, &r, "POST", url.buf, body, 0, 0);
	if (rc)
		goto fail;
	if (r.status != 201 && r.status != 200)
		rc = toolbox_fail(dt, box, "new session", &r, over);
	http_resp_release(&r);
	if (rc)
		goto fail;

	/* The marker in the environment lets kill find the command's
	 * processes; base64 carries any bytes through JSON. */
	snprintf(env, sizeof(env), "SBXFS_CMD=%s", c->marker);
	cJSON_Delete(body);
	body = cJSON_CreateObject();
	if (!body || sh_wrap_base64(&cmd, env, cmdline)) {
		rc = -ENOMEM;
		goto fail_session;
	}
	cJSON_AddStringToObject(body, "command", cmd.buf);
	cJSON_AddBoolToObject(body, "runAsync", 1);
	cJSON_AddBoolToObject(body, "async", 1);
	strbuf_release(&url);
	if (strbuf_addf(&url, "%s/process/session/%s/exec", c->toolbox, c->sid)) {
		rc = -ENOMEM;
		goto fail_session;
	}
	rc = request(dt, &r, "POST", url.buf, body, 0, 0);
	if (rc)
		goto fail_session;
	if (r.status != 202 && r.status != 200) {
		rc = toolbox_fail(dt, box, "run command", &r, NULL);
	} else if (
		!(j = parse_json(&r, "run command")) || !jstr(j, "cmdId") ||
		strlen(jstr(j, "cmdId")) >= sizeof(c->cid) ||
		strspn(jstr(j, "cmdId"),
		       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
			strlen(jstr(j, "cmdId"))) {
		sbx_failf("daytona: run command: no usable cmdId in the answer");
		rc = -EPROTO;
	} else {
		snprintf(c->cid, sizeof(c->cid), "%s", jstr(j, "cmdId"));
	}
	http_resp_release(&r);
	if (rc)
		goto fail_session;

	pthread_mutex_lock(&dt->lock);
	dt->pollers++;
	pthread_mutex_unlock(&dt->lock);
	{
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = -pthread_create(&t, &attr, poller, c);
		pthread_attr_destroy(&attr);
	}
	if (rc) {
		pthread_mutex_lock(&dt->lock);
		dt->pollers--;
		pthread_mutex_unlock(&dt->lock);
		sbx_failf("cannot start a thread: %s", strerror(-rc));
		goto fail_session;
	}
	*handle = c;
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&cmd);
	return 0;

fail_session:
	session_delete(c);
fail:
	cJSON_Delete(j);
	cJSON_Delete(body);
	strbuf_release(&url);
	strbuf_release(&cmd);
	dcmd_free(c);
	return rc;
}

static ssize_t dt_cmd_stdin(struct sbx_provider *p, void *handle, const char *data,
			    size_t len, const volatile int *interrupted)
{
	static const struct errmap over[] = { { 410, EPIPE }, { 404, EPIPE }, { 0, 0 } };
	struct dcmd *c = handle;
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;
	cJSON *body;
	char *text;
	int rc;

	/* Daytona's input call cannot close stdin: EOF never reaches the
	 * command (see docs/providers.md). */
	if (len == 0)
		return 0;
	text = strndup(data, len);
	body = cJSON_CreateObject();
	if (!text || !body || strlen(text) != len ||
	    strbuf_addf(&url, "%s/process/session/%s/command/%s/input", c->toolbox,
			c->sid, c->cid)) {
		rc = (text && strlen(text) != len) ? -EINVAL : -ENOMEM;
		if (rc == -EINVAL)
			sbx_failf("daytona: stdin cannot carry NUL bytes");
		goto out;
	}
	cJSON_AddStringToObject(body, "data", text);
	rc = request(c->dt, &r, "POST", url.buf, body, 0, 0);
	if (!rc) {
		if (r.status < 200 || r.status > 299)
			rc = fail_resp("command input", &r, over);
		http_resp_release(&r);
	}
out:
	free(text);
	cJSON_Delete(body);
	strbuf_release(&url);
	return rc ? rc : (ssize_t)len;
}

static int dt_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct dcmd *c = handle;
	struct strbuf s = STRBUF_INIT(4096);
	int rc;

	if (sig <= 0 || sig > 64)
		return -EINVAL;
	/* Daytona has no kill call: find the command's processes by the
	 * marker in their environment, and signal each. */
	rc = strbuf_addf(
		     &s,
		     "for d in /proc/[0-9]*; do "
		     "if tr '\\0' '\\n' < \"$d/environ\" 2>/dev/null | "
		     "grep -qx 'SBXFS_CMD=%s'; then kill -%d \"${d#/proc/}\" 2>/dev/null; fi; "
		     "done; exit 0",
		     c->marker, sig)
		     ? -ENOMEM
		     : 0;
	if (!rc) {
		c->signalled = sig;
		rc = run(c->dt, c->box, "kill", s.buf, NULL);
	}
	strbuf_release(&s);
	return rc;
}

static void dt_cmd_release(struct sbx_provider *p, void *handle)
{
	dcmd_free(handle);
}

static const struct sbx_provider_ops daytona_ops = {
	.init = dt_init,
	.destroy = dt_destroy,
	.describe = dt_describe,
	.list = dt_list,
	.create = dt_create,
	.remove = dt_remove,
	.start = dt_start,
	.stop = dt_stop,
	.ctl = dt_ctl,
	.info = dt_info,
	.getattr = dt_getattr,
	.readdir = dt_readdir,
	.open = dt_open,
	.read = dt_read,
	.write = dt_write,
	.flush = dt_flush,
	.fsync = dt_fsync,
	.release = dt_release,
	.mkdir = dt_mkdir,
	.unlink = dt_unlink,
	.rmdir = dt_rmdir,
	.rename = dt_rename,
	.chmod = dt_chmod,
	.chown = dt_chown,
	.truncate = dt_truncate,
	.utimens = dt_utimens,
	.link = dt_link,
	.statfs = dt_statfs,
	.cmd_start = dt_cmd_start,
	.cmd_stdin = dt_cmd_stdin,
	.cmd_signal = dt_cmd_signal,
	.cmd_release = dt_cmd_release,
};

const struct sbx_provider_desc sbx_provider_daytona = {
	.name = "daytona",
	/* No SYMLINK: the toolbox follows symlinks and cannot show them. */
	.caps = SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN | SBX_CAP_RENAME_OVER,
	/* Every look costs a round trip: trust answers a little longer. */
	.attr_timeout = 10.0,
	.entry_timeout = 10.0,
	.ops = &daytona_ops,
};
