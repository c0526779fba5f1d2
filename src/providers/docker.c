/* SPDX-License-Identifier: MIT */
/*
 * The Docker provider: containers of an engine that speaks the Docker
 * Engine API (Docker, or Podman's `podman system service`) as sandboxes.
 *
 *  - The engine is at DOCKER_HOST (or -o api_url=): unix:///path (the
 *    default is unix:///var/run/docker.sock), tcp://host:port, or
 *    http(s)://.  With DOCKER_TLS_VERIFY set, tcp:// is HTTPS with the
 *    client certificate of DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem),
 *    as Docker's own client takes them.
 *  - The API version is negotiated as Docker's client does: GET /version
 *    at mount, then the lower of the engine's ApiVersion and the newest
 *    this provider knows (DK_API_MAX) prefixes every path.
 *  - A container is named in every URL by its name: the tree's name is
 *    the engine's, so no id needs looking up.  -o label=KEY=VALUE shows
 *    only the containers with that label, and those made here carry it.
 *  - mkdir creates a container from -o image= kept running by a shell
 *    that waits (and ends at once on SIGTERM), then starts it.
 *  - Files go through the archive API (docker_files.c), scripts and
 *    commands through the exec API (docker_exec.c).
 */
#include <strings.h>
#include <unistd.h>

#include "docker.h"
#include "sbxfs/names.h"
#include "sbxfs/remote/opts.h"
#include "sbxfs/remote/time.h"

#define DEFAULT_HOST "unix:///var/run/docker.sock"
#define DEFAULT_IMAGE "alpine:latest"
#define CALL_MAX (8u << 20) /* the most an answer brings (a list) */
/* What keeps a container made here running: a shell that waits, and
 * leaves at once when the engine stops it. */
#define KEEPER "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done"

/* ---- errors: HTTP status and body to errno, in one place ---- */

/* Where the engine differs from the common HTTP statuses: 409 is a
 * conflict of state (a container that is not running, a name taken),
 * which each call says in `over`. */
static const struct errmap docker_errors[] = {
	{ 409, EBUSY },
	{ 0, 0 },
};

static const char *const error_keys[] = { "message", "cause", NULL };

int dk_fail(const char *what, const struct http_resp *r, const struct errmap *over)
{
	const struct errmap *const maps[] = { over ? over : docker_errors, docker_errors,
					      errmap_http, NULL };
	char text[320];

	errmap_text(text, sizeof(text), r->body.buf, r->body.len, error_keys);
	return errmap_fail_http("docker", what, r->status, text, NULL,
				errmap_errno(maps, r->status));
}

int dk_url(struct strbuf *sb, struct dk *dk, const char *id, const char *suffix,
	   const char *path)
{
	int rc = strbuf_addf(sb, "%s/containers/", dk->base);

	if (!rc)
		rc = http_escape(sb, id);
	if (!rc && suffix)
		rc = strbuf_addf(sb, "%s", suffix);
	if (!rc && path) {
		rc = strbuf_addf(
			sb, "%spath=", strchr(suffix ? suffix : "", '?') ? "&" : "?");
		if (!rc)
			rc = http_escape(sb, path);
	}
	return rc ? -ENOMEM : 0;
}

int dk_call(struct dk *dk, cJSON **out, const char *method, const char *box,
	    const char *suffix, cJSON *json, int flags, const char *what,
	    const struct errmap *over)
{
	struct strbuf url = STRBUF_INIT(16384);
	struct http_resp r;
	int rc;

	if (box)
		rc = dk_url(&url, dk, box, suffix, NULL);
	else
		rc = strbuf_addf(&url, "%s%s", dk->base, suffix) ? -ENOMEM : 0;
	if (out)
		*out = NULL;
	if (!rc)
		rc = remote_request(dk->http, &r, "docker", method, url.buf, json,
				    flags & ~DK_CALL_MISSING_OK, CALL_MAX, 0);
	strbuf_release(&url);
	if (rc)
		return rc;
	if (r.status == 404 && (flags & DK_CALL_MISSING_OK))
		rc = -ENOENT;
	else if (r.status / 100 != 2 && r.status != 304)
		rc = dk_fail(what, &r, over);
	else if (out && !cJSON_IsObject(*out = json_parse(r.body.buf, r.body.len)) &&
		 !cJSON_IsArray(*out)) {
		sbx_failf("docker: %s: the answer is not JSON", what);
		rc = -EPROTO;
	}
	http_resp_release(&r);
	if (rc && out) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- containers ---- */

static int dk_state(struct remote *r, char *word, size_t size, char *why, size_t why_size,
		    const char *box);

static const struct remote_state_word dk_states[] = {
	{ "created", REMOTE_STOPPED },
	{ "restarting", REMOTE_STARTING },
	{ "running", REMOTE_RUNNING },
	{ "removing", REMOTE_DELETING },
	{ "paused", REMOTE_PAUSED },
	{ "exited", REMOTE_STOPPED },
	{ "dead", REMOTE_ERROR },
	{ "stopped", REMOTE_STOPPED },
	{ "configured", REMOTE_STOPPED },
	{ "initialized", REMOTE_STOPPED },
	{ NULL, 0 },
};

int dk_running(struct dk *dk, const char *box)
{
	return boxtable_state_is(&dk->r.boxes, box, "running");
}

int dk_running_now(struct dk *dk, const char *box)
{
	char word[32], why[8];
	char text[512];
	int rc;

	snprintf(text, sizeof(text), "%s", sbx_fail_text());
	rc = dk_state(&dk->r, word, sizeof(word), why, sizeof(why), box);
	sbx_failf("%s", text); /* the failure being told is the caller's */
	return rc || !strcmp(word, "running");
}

/* The name of a container in a listing: its first name without the '/';
 * NULL if it has none the tree can show. */
static const char *list_name(const cJSON *c)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(c, "Names");
	const cJSON *n = cJSON_IsArray(names) ? cJSON_GetArrayItem(names, 0) : NULL;
	const char *s = cJSON_IsString(n) ? n->valuestring : NULL;

	if (s && *s == '/')
		s++;
	return s && sbx_name_valid(s) ? s : NULL;
}

/* GET /containers/json?all=1: every container (with the label) to fn
 * (may be NULL); the records of containers no longer listed go. */
static int fetch_list(struct dk *dk, sbx_list_fn fn, void *ctx)
{
	struct strbuf path = STRBUF_INIT(4096);
	cJSON *j, *it;
	unsigned gen;
	int rc = strbuf_addf(&path, "/containers/json?all=1");

	if (!rc && dk->label) {
		cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "label");
		char *txt;

		cJSON_AddItemToArray(a, cJSON_CreateString(dk->label));
		txt = cJSON_PrintUnformatted(o);
		rc = !txt || strbuf_addf(&path, "&filters=") || http_escape(&path, txt);
		free(txt);
		cJSON_Delete(o);
	}
	if (rc) {
		strbuf_release(&path);
		return -ENOMEM;
	}
	rc = dk_call(dk, &j, "GET", NULL, path.buf, NULL, REMOTE_REQ_IDEMPOTENT,
		     "list containers", NULL);
	strbuf_release(&path);
	if (!rc && !cJSON_IsArray(j)) {
		sbx_failf("docker: list containers: the answer is not a container list");
		rc = -EPROTO;
	}
	if (rc) {
		cJSON_Delete(j);
		return rc;
	}
	gen = boxtable_sweep_begin(&dk->r.boxes);
	cJSON_ArrayForEach(it, j)
	{
		const char *name = list_name(it), *state = json_str(it, "State");

		if (name)
			boxtable_seen(&dk->r.boxes, name, state, gen);
	}
	boxtable_sweep_end(&dk->r.boxes, gen);
	cJSON_ArrayForEach(it, j)
	{
		if (fn && list_name(it) && fn(ctx, list_name(it)))
			break;
	}
	cJSON_Delete(j);
	return 0;
}

static int dk_list(struct sbx_provider *p, sbx_list_fn fn, void *ctx)
{
	return fetch_list(DK(p), fn, ctx);
}

/* GET /containers/{box}/json; the JSON (caller frees), -ENOENT if none. */
static int inspect(struct dk *dk, cJSON **out, const char *box)
{
	char what[128];
	int rc;

	snprintf(what, sizeof(what), "inspect container \"%s\"", box);
	rc = dk_call(dk, out, "GET", box, "/json", NULL,
		     REMOTE_REQ_IDEMPOTENT | DK_CALL_MISSING_OK, what, NULL);
	if (!rc && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(*out, "State"))) {
		sbx_failf("docker: %s: the answer is not a container", what);
		rc = -EPROTO;
	}
	if (rc == -ENOENT)
		boxtable_forget(&dk->r.boxes, box);
	if (rc) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return rc;
}

static int dk_state(struct remote *r, char *word, size_t size, char *why, size_t why_size,
		    const char *box)
{
	struct dk *dk = (struct dk *)r;
	const cJSON *state;
	cJSON *c;
	const char *v;
	int rc = inspect(dk, &c, box);

	if (rc)
		return rc;
	state = cJSON_GetObjectItemCaseSensitive(c, "State");
	snprintf(word, size, "%s", (v = json_str(state, "Status")) ? v : "");
	snprintf(why, why_size, "%s", (v = json_str(state, "Error")) ? v : "");
	boxtable_seen(&dk->r.boxes, box, word, 0);
	cJSON_Delete(c);
	return 0;
}

/* Arguments of `new` that the create body takes. */
static int create_body(struct dk *dk, cJSON *body, const struct sbx_kvlist *args)
{
	const char *image = dk->image;
	cJSON *labels = cJSON_AddObjectToObject(body, "Labels");
	cJSON *host = cJSON_AddObjectToObject(body, "HostConfig");
	cJSON *cmd = cJSON_AddArrayToObject(body, "Cmd");
	cJSON *env = NULL;
	size_t i;

	for (i = 0; i < args->n; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;
		char *end;

		if (!strcmp(key, "image")) {
			image = v;
		} else if (!strcmp(key, "env") && strchr(v, '=')) {
			if (!env)
				env = cJSON_AddArrayToObject(body, "Env");
			cJSON_AddItemToArray(env, cJSON_CreateString(v));
		} else if (!strcmp(key, "workdir") && v[0] == '/') {
			cJSON_AddStringToObject(body, "WorkingDir", v);
		} else if (!strcmp(key, "memory") && strtoll(v, &end, 10) > 0 && !*end) {
			/* MiB, as the other providers take it */
			cJSON_AddNumberToObject(host, "Memory",
						(double)strtoll(v, NULL, 10) * 1048576);
		} else if (!strcmp(key, "cpus") && strtod(v, &end) > 0 && !*end) {
			cJSON_AddNumberToObject(host, "NanoCpus", strtod(v, NULL) * 1e9);
		} else if (!strcmp(key, "network") && v[0] && !strpbrk(v, " \n")) {
			cJSON_AddStringToObject(host, "NetworkMode", v);
		} else {
			sbx_failf(
				"bad argument \"%s=%s\" for a docker container (image, "
				"env=NAME=VALUE, workdir=/PATH, memory=MiB, cpus, network)",
				key, v);
			return -EINVAL;
		}
	}
	if (!image[0] || strpbrk(image, " \n\r\t")) {
		sbx_failf("bad image \"%s\"", image);
		return -EINVAL;
	}
	cJSON_AddStringToObject(body, "Image", image);
	cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
	cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
	cJSON_AddItemToArray(cmd, cJSON_CreateString(KEEPER));
	if (dk->label) {
		const char *eq = strchr(dk->label, '=');
		char key[256];

		snprintf(key, sizeof(key), "%.*s", (int)(eq - dk->label), dk->label);
		cJSON_AddStringToObject(labels, key, eq + 1);
	}
	return 0;
}

/* POST /containers/{box}/{action}: start, stop, restart, pause, unpause.
 * 304 (already so) is done.  Its kept shells end first: a stop ends
 * them anyway, and a paused shell would not answer. */
static int act(struct dk *dk, const char *box, const char *action)
{
	static const struct errmap over[] = { { 409, EAGAIN }, { 0, 0 } };
	char suffix[32], what[128];

	snprintf(suffix, sizeof(suffix), "/%s%s", action,
		 !strcmp(action, "stop") || !strcmp(action, "restart") ? "?t=10" : "");
	snprintf(what, sizeof(what), "%s container \"%s\"", action, box);
	keptsh_drop(&dk->shells, box);
	return dk_call(dk, NULL, "POST", box, suffix, NULL, 0, what, over);
}

static int dk_create(struct remote *r0, const char *box, const struct sbx_kvlist *args)
{
	static const struct errmap over[] = { { 409, EEXIST }, { 0, 0 } };
	struct dk *dk = (struct dk *)r0;
	struct strbuf path = STRBUF_INIT(4096);
	cJSON *body = cJSON_CreateObject();
	char what[128];
	int rc;

	snprintf(what, sizeof(what), "create container \"%s\"", box);
	if (!body || strbuf_addf(&path, "/containers/create?name=") ||
	    http_escape(&path, box)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = create_body(dk, body, args);
	if (!rc)
		rc = dk_call(dk, NULL, "POST", NULL, path.buf, body, DK_CALL_MISSING_OK,
			     what, over);
	if (rc == -ENOENT)
		sbx_failf("docker: %s: HTTP 404: no such image here", what);
	if (rc == -EIO) {
		/* Podman answers 500 where Docker says 409 for a name taken. */
		char word[32], why[8];

		if (!dk_state(r0, word, sizeof(word), why, sizeof(why), box)) {
			sbx_failf("docker: %s: the name is taken", what);
			rc = -EEXIST;
		}
	}
	if (!rc) {
		boxtable_seen(&dk->r.boxes, box, "created", 0);
		rc = act(dk, box, "start");
	}
out:
	strbuf_release(&path);
	cJSON_Delete(body);
	return rc;
}

static int dk_start(struct remote *r, const char *box)
{
	int paused = boxtable_state_is(&r->boxes, box, "paused");

	return act((struct dk *)r, box, paused ? "unpause" : "start");
}

static int dk_stop(struct remote *r, const char *box)
{
	return act((struct dk *)r, box, "stop");
}

static int dk_remove(struct remote *r, const char *box)
{
	char what[128];

	snprintf(what, sizeof(what), "delete container \"%s\"", box);
	keptsh_drop(&((struct dk *)r)->shells, box);
	return dk_call((struct dk *)r, NULL, "DELETE", box, "?force=1&v=1", NULL,
		       DK_CALL_MISSING_OK, what, NULL);
}

static const struct remote_box_ops dk_box_ops = {
	.noun = "container",
	.states = dk_states,
	.state = dk_state,
	.create = dk_create,
	.start = dk_start,
	.stop = dk_stop,
	.remove = dk_remove,
};

static int dk_ctl(struct sbx_provider *p, const char *box, int argc, char *const argv[])
{
	struct dk *dk = DK(p);

	if (argc == 1 && (!strcmp(argv[0], "pause") || !strcmp(argv[0], "unpause"))) {
		int rc = act(dk, box, argv[0]);

		if (!rc)
			boxtable_seen(&dk->r.boxes, box,
				      !strcmp(argv[0], "pause") ? "paused" : "running",
				      0);
		return rc;
	}
	sbx_failf("unknown command \"%s\" (docker knows start, stop, restart, pause, "
		  "unpause, delete)",
		  argv[0]);
	return -EINVAL;
}

static void add_time(struct sbx_box_info *out, const char *key, const char *v)
{
	struct timespec ts;

	/* The engine writes "0001-01-01T00:00:00Z" for never. */
	if (!rfc3339_parse(&ts, v) && ts.tv_sec > 0 && !strpbrk(v, "\n"))
		sbx_kv_add(&out->extra, key, v);
}

static int dk_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	struct dk *dk = DK(p);
	const cJSON *state, *config;
	struct timespec ts;
	cJSON *c;
	const char *v, *word;
	double d;
	int rc = inspect(dk, &c, box);

	if (rc)
		return rc;
	state = cJSON_GetObjectItemCaseSensitive(c, "State");
	config = cJSON_GetObjectItemCaseSensitive(c, "Config");
	v = json_str(c, "Id");
	snprintf(out->id, sizeof(out->id), "%s",
		 v && strlen(v) < DK_ID_MAX && !strpbrk(v, "\n/") ? v : "");
	word = json_str(state, "Status");
	boxtable_seen(&dk->r.boxes, box, word, 0);
	out->state = remote_sbx_state(remote_state_of(dk_states, word));
	snprintf(out->native_state, sizeof(out->native_state), "%s",
		 word && !strpbrk(word, "\n") ? word : "");
	if ((v = json_str(config, "Image")) && !strpbrk(v, "\n"))
		snprintf(out->image, sizeof(out->image), "%s", v);
	if (!rfc3339_parse(&ts, json_str(c, "Created")))
		out->created = ts.tv_sec;
	add_time(out, "started", json_str(state, "StartedAt"));
	if (word && strcmp(word, "running") && strcmp(word, "paused")) {
		add_time(out, "finished", json_str(state, "FinishedAt"));
		if (json_num(state, "ExitCode", &d) && strcmp(word, "created"))
			sbx_kv_addf(&out->extra, "exit_code", "%.0f", d);
		sbx_kv_add(&out->extra, "files", "read-only while stopped");
	} else {
		keptsh_describe(&dk->shells, box, &out->extra);
	}
	cJSON_Delete(c);
	return 0;
}

/* ---- the engine ---- */

/* The engine's address into cfg and dk->base; the URL's scheme and host
 * for curl ("http://docker" for a Unix socket). */
static int parse_host(struct dk *dk, struct http_config *cfg, char **sock, char **ca,
		      char **cert, char **key)
{
	const char *h = dk->where, *tls = getenv("DOCKER_TLS_VERIFY");
	const char *certs = getenv("DOCKER_CERT_PATH");
	char home_certs[4096];

	if (!strncmp(h, "unix://", 7)) {
		if (h[7] != '/') {
			sbx_failf(
				"DOCKER_HOST \"%s\": a Unix socket needs an absolute path",
				h);
			return -EINVAL;
		}
		*sock = strdup(h + 7);
		cfg->unix_socket = *sock;
		return asprintf(&dk->base, "http://docker") < 0 ? -ENOMEM : 0;
	}
	if (!strncmp(h, "http://", 7) || !strncmp(h, "https://", 8)) {
		dk->base = strdup(h);
	} else if (!strncmp(h, "tcp://", 6)) {
		if (asprintf(&dk->base, "%s://%s", tls && tls[0] ? "https" : "http",
			     h + 6) < 0)
			dk->base = NULL;
	} else {
		sbx_failf("DOCKER_HOST \"%s\": use unix:///PATH, tcp://HOST:PORT or "
			  "http(s)://HOST:PORT",
			  h);
		return -EINVAL;
	}
	if (!dk->base)
		return -ENOMEM;
	remote_trim_url(dk->base);
	if (strncmp(dk->base, "https://", 8))
		return 0;
	if (!certs || !certs[0]) {
		snprintf(home_certs, sizeof(home_certs), "%s/.docker",
			 getenv("HOME") ? getenv("HOME") : "/root");
		certs = home_certs;
	}
	if (asprintf(ca, "%s/ca.pem", certs) < 0 ||
	    asprintf(cert, "%s/cert.pem", certs) < 0 ||
	    asprintf(key, "%s/key.pem", certs) < 0)
		return -ENOMEM;
	cfg->ca_file = access(*ca, R_OK) ? NULL : *ca;
	cfg->cert_file = access(*cert, R_OK) ? NULL : *cert;
	cfg->key_file = access(*key, R_OK) ? NULL : *key;
	return 0;
}

/* GET /version: the API version both sides speak, appended to base.  An
 * engine that does not answer fails the mount, naming where it was
 * looked for. */
static int negotiate(struct dk *dk)
{
	char version[16] = DK_API_MAX, *base;
	struct strbuf url = STRBUF_INIT(4096);
	struct http_resp r;
	const char *v;
	cJSON *j = NULL;
	int rc;

	if (strbuf_addf(&url, "%s/version", dk->base))
		return -ENOMEM;
	rc = remote_request(dk->http, &r, "docker", "GET", url.buf, NULL,
			    REMOTE_REQ_IDEMPOTENT, 0, 0);
	strbuf_release(&url);
	if (rc) {
		char msg[400];

		snprintf(msg, sizeof(msg), "%s", sbx_fail_text());
		sbx_failf("no Docker engine answers at %s (%s)", dk->where, msg);
		return rc;
	}
	if (r.status != 200 || !(j = json_parse(r.body.buf, r.body.len)) ||
	    !(v = json_str(j, "ApiVersion")) || strspn(v, "0123456789.") != strlen(v) ||
	    strlen(v) >= sizeof(version)) {
		rc = r.status != 200 ? dk_fail("version", &r, NULL) : -EPROTO;
		if (rc == -EPROTO)
			sbx_failf("docker: %s does not answer as a Docker engine",
				  dk->where);
	} else if (dk_version_cmp(v, DK_API_MIN) < 0) {
		sbx_failf(
			"docker: the engine at %s speaks API %s; sbxfs needs %s or newer",
			dk->where, v, DK_API_MIN);
		rc = -EPROTO;
	} else if (dk_version_cmp(v, DK_API_MAX) < 0) {
		snprintf(version, sizeof(version), "%s", v);
	}
	http_resp_release(&r);
	cJSON_Delete(j);
	if (rc)
		return rc;
	if (asprintf(&base, "%s/v%s", dk->base, version) < 0)
		return -ENOMEM;
	free(dk->base);
	dk->base = base;
	return 0;
}

static void dk_free(struct dk *dk)
{
	/* A spare shell still being opened uses the client: leak, don't
	 * crash (its open is bounded). */
	if (!dk || keptsh_destroy(&dk->shells))
		return;
	remote_release(&dk->r);
	http_client_free(dk->http);
	free(dk->where);
	free(dk->base);
	free(dk->image);
	free(dk->label);
	free(dk);
}

static int parse_options(struct dk *dk, const struct sbx_kvlist *opts)
{
	const char *label = sbx_kv_get(opts, "label");

	if (label && (!strchr(label, '=') || label[0] == '=' || strlen(label) > 250)) {
		sbx_failf("label must be KEY=VALUE, not \"%s\"", label);
		return -EINVAL;
	}
	dk->where = remote_opt(opts, "api_url", "DOCKER_HOST");
	if (!dk->where)
		dk->where = strdup(DEFAULT_HOST);
	dk->image = remote_opt(opts, "image", NULL);
	if (!dk->image)
		dk->image = strdup(DEFAULT_IMAGE);
	if (label)
		dk->label = strdup(label);
	return !dk->where || !dk->image || (label && !dk->label) ? -ENOMEM : 0;
}

static int dk_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	char *sock = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	struct http_config cfg = { 0 };
	struct dk *dk = calloc(1, sizeof(*dk));
	int rc;

	if (!dk)
		return -ENOMEM;
	rc = remote_setup(&dk->r, "docker", 0, opts, &dk_stagefile_ops, NULL);
	keptsh_init(&dk->shells, "docker", &dk_shell_ops, dk, 30000);
	dk->shells.stall_ms = dk->r.timeout_ms;
	dk->r.run = dk_run;
	dk->r.box_ops = &dk_box_ops;
	dk->r.fs = &dk_fs_ops;
	if (!rc)
		rc = parse_options(dk, opts);
	if (!rc)
		rc = parse_host(dk, &cfg, &sock, &ca, &cert, &key);
	remote_http_config(&dk->r, &cfg);
	cfg.connect_timeout_ms = 5000;
	if (!rc && !(dk->http = http_client_new(&cfg)))
		rc = -ENOMEM;
	if (!rc)
		rc = negotiate(dk);
	if (rc)
		dk_free(dk);
	else
		p->priv = dk;
	free(sock);
	free(ca);
	free(cert);
	free(key);
	return rc;
}

static void dk_destroy(struct sbx_provider *p)
{
	struct dk *dk = DK(p);

	if (!dk)
		return;
	/* Command followers notice the stop and leave. */
	cmdpoll_stop(&dk->r.cmds);
	if (cmdpoll_wait(&dk->r.cmds, 30))
		return; /* a follower is stuck in a bounded call: leak, don't crash */
	dk_free(dk);
	p->priv = NULL;
}

static void dk_describe(struct sbx_provider *p, struct sbx_kvlist *out)
{
	struct dk *dk = DK(p);

	sbx_kv_add(out, "api_url", dk->where);
	sbx_kv_add(out, "api", strrchr(dk->base, '/') + 1);
	sbx_kv_add(out, "image", dk->image);
	if (dk->label)
		sbx_kv_add(out, "label", dk->label);
	remote_describe(&dk->r, out);
}

static const struct sbx_provider_ops docker_ops = {
	.init = dk_init,
	.destroy = dk_destroy,
	.describe = dk_describe,
	.list = dk_list,
	REMOTE_OPS_BOXES,
	.ctl = dk_ctl,
	.info = dk_info,
	REMOTE_OPS_FILES,
	REMOTE_OPS_SHELL,
	.cmd_start = dk_cmd_start,
	.cmd_stdin = dk_cmd_stdin,
	.cmd_signal = dk_cmd_signal,
	.cmd_release = dk_cmd_release,
};

const struct sbx_provider_desc sbx_provider_docker = {
	.name = "docker",
	.caps = SBX_CAP_SYMLINK | SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN |
		SBX_CAP_RENAME_OVER | SBX_CAP_LIST_STATS,
	/* Every look is a request to the engine, most of them a process in
	 * the container: trust answers a while. */
	.attr_timeout = 10.0,
	.entry_timeout = 10.0,
	.path_max = REMOTE_PATH_MAX,
	.ops = &docker_ops,
};
