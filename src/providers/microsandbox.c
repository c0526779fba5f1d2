/* SPDX-License-Identifier: MIT */
/*
 * microsandbox: microVM sandboxes on this machine, run by the msb tool.
 *
 * The lifecycle goes through msb itself (create, start, stop, rm, ls and
 * inspect with --format json), started with posix_spawn and its own
 * MSB_HOME, forced to the local backend.  Files and commands go straight
 * to each sandbox's agent socket (msb_agent.c), as the SDKs do.  The
 * sandbox's database is msb's: sbxfs never reads it.
 *
 * A sandbox runs detached from msb, and from sbxfs: it lives until it is
 * stopped, whoever started it.
 *
 * With -o backend=cloud (or MSB_BACKEND=cloud) the sandboxes are the
 * cloud's: the lifecycle is its REST API and the agent its WebSocket
 * (msb_cloud.c), and msb is not needed.  Everything else is the same.
 */
#include <unistd.h>

#include "msb.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/lifecycle.h"
#include "sbxfs/remote/opts.h"
#include "sbxfs/remote/time.h"
#include "sbxfs/spawn.h"

#define CLI_OUT_MAX (16u << 20) /* what one msb command may print */
#define LIFECYCLE_MS (REMOTE_STATE_WAIT_S * 1000)
#define DEFAULT_IMAGE "alpine"

extern char **environ;

/* msb's status words, as `msb ls` spells them. */
static const struct remote_state_word msb_states[] = {
	{ "Created", REMOTE_CREATING },
	{ "Starting", REMOTE_STARTING },
	{ "Running", REMOTE_RUNNING },
	{ "Draining", REMOTE_STOPPING },
	{ "Paused", REMOTE_PAUSED },
	{ "Stopped", REMOTE_STOPPED },
	/* A crashed sandbox starts again like a stopped one. */
	{ "Crashed", REMOTE_STOPPED },
	/* The cloud's words. */
	{ "created", REMOTE_CREATING },
	{ "starting", REMOTE_STARTING },
	{ "running", REMOTE_RUNNING },
	{ "stopping", REMOTE_STOPPING },
	{ "stopped", REMOTE_STOPPED },
	{ "failed", REMOTE_STOPPED },
	{ NULL, 0 },
};

/*
 * Run `msb ARGS...` (NULL-terminated) for `what`, its stdout into out
 * (may be NULL).  0; -ENOENT for an unknown sandbox, -EEXIST for a name
 * taken, -EIO with msb's words otherwise; -ETIMEDOUT past timeout_ms.
 */
static int cli(struct msb *m, struct strbuf *out, const char *what, int timeout_ms,
	       const char *const args[])
{
	struct strbuf sink = STRBUF_INIT(CLI_OUT_MAX);
	char *argv[24], err[1024], text[300];
	size_t n = 0;
	int rc;

	argv[n++] = m->msb;
	for (size_t i = 0; args[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	sbx_trace(SBX_TRACE_PROVIDER, "microsandbox: msb %s", args[0]);
	rc = spawn_capture(argv, m->envp, timeout_ms, out ? out : &sink, err, sizeof(err),
			   sbx_interrupted);
	strbuf_release(&sink);
	/* msb's error lines go on in lines of "  → reason": one line. */
	for (char *a; (a = strstr(err, "\n  \xe2\x86\x92 "));) {
		a[0] = ':';
		a[1] = ' ';
		memmove(a + 2, a + 7, strlen(a + 7) + 1);
	}
	json_text(text, sizeof(text), err, sizeof(text) - 1);
	if (rc == -ETIMEDOUT) {
		sbx_failf("microsandbox: %s: msb did not finish within %d s", what,
			  timeout_ms / 1000);
	} else if (rc == -EINTR) {
		sbx_failf("microsandbox: %s: interrupted", what);
	} else if (rc == -EFBIG) {
		sbx_failf("microsandbox: %s: msb printed more than %u MiB", what,
			  CLI_OUT_MAX >> 20);
	} else if (rc < 0) {
		sbx_failf("microsandbox: %s: cannot run %s: %s", what, m->msb,
			  strerror(-rc));
	} else if (rc > 0) {
		sbx_failf("microsandbox: %s: %s", what,
			  text[0] ? text : "msb failed without a word");
		if (strstr(err, "not found"))
			rc = -ENOENT;
		else if (strstr(err, "already exists"))
			rc = -EEXIST;
		else
			rc = -EIO;
	}
	return rc;
}

/* ---- sandboxes ---- */

static void runtime_free(void *priv)
{
	if (priv)
		msb_runtime_release(priv);
	free(priv);
}

/* Note what an inspect or a listing said of box: its status word, and
 * (rt not NULL) its runtime settings, which the record takes over. */
static void note_box(struct msb *m, const struct msb_box *b, struct msb_runtime *rt)
{
	struct msb_runtime *keep = NULL, *old = NULL;
	struct rbox *r;

	if (rt && (keep = malloc(sizeof(*keep)))) {
		*keep = *rt;
		memset(rt, 0, sizeof(*rt));
	}
	boxtable_lock(&m->r.boxes);
	r = boxtable_seen_locked(&m->r.boxes, b->name, b->status, 0);
	if (r) {
		snprintf(r->id, sizeof(r->id), "%s", b->id[0] ? b->id : b->name);
		if (keep) {
			old = r->priv;
			r->priv = keep;
			keep = NULL;
		}
	}
	boxtable_unlock(&m->r.boxes);
	runtime_free(old);
	runtime_free(keep);
}

/* `msb inspect box`: its status and settings into *b and *rt (may be
 * NULL); the record notes both.  -ENOENT if there is no such sandbox. */
static int inspect(struct msb *m, struct msb_box *b, struct msb_runtime *rt,
		   const char *box)
{
	const char *args[] = { "inspect", box, "--format", "json", NULL };
	struct strbuf out = STRBUF_INIT(CLI_OUT_MAX);
	struct msb_runtime mine;
	char what[128];
	int rc;

	snprintf(what, sizeof(what), "inspect sandbox \"%s\"", box);
	if (m->cloud)
		rc = msb_cloud_inspect(m, b, &mine, box);
	else
		rc = cli(m, &out, what, m->r.timeout_ms, args);
	if (!rc && !m->cloud &&
	    msb_parse_inspect(b, &mine, out.buf ? out.buf : "", out.len)) {
		sbx_failf("microsandbox: %s: msb's answer does not parse", what);
		rc = -EPROTO;
	}
	strbuf_release(&out);
	if (rc == -ENOENT)
		boxtable_forget(&m->r.boxes, box);
	if (rc)
		return rc;
	if (rt) {
		*rt = mine;
		note_box(m, b, NULL);
	} else {
		note_box(m, b, &mine);
		msb_runtime_release(&mine);
	}
	return 0;
}

static char **strv_dup(char *const *v)
{
	size_t n = 0;
	char **out;

	while (v && v[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		if (!(out[i] = strdup(v[i]))) {
			while (i--)
				free(out[i]);
			free(out);
			return NULL;
		}
	}
	return out;
}

static char *str_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A copy of src's settings into *dst: 0, or -ENOMEM (then *dst holds
 * nothing). */
static int runtime_dup(struct msb_runtime *dst, const struct msb_runtime *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->env = src->env ? strv_dup(src->env) : NULL;
	dst->workdir = str_dup(src->workdir);
	dst->user = str_dup(src->user);
	dst->shell = str_dup(src->shell);
	dst->cpus = src->cpus;
	dst->memory_mib = src->memory_mib;
	if ((src->env && !dst->env) || (src->workdir && !dst->workdir) ||
	    (src->user && !dst->user) || (src->shell && !dst->shell)) {
		msb_runtime_release(dst);
		return -ENOMEM;
	}
	return 0;
}

int msb_runtime_of(struct msb *m, struct msb_runtime *rt, const char *box)
{
	struct msb_runtime *kept, copy;
	struct msb_box b;
	struct rbox *r;
	int rc = 0;

	memset(rt, 0, sizeof(*rt));
	boxtable_lock(&m->r.boxes);
	r = boxtable_find_locked(&m->r.boxes, box);
	kept = r && !r->gone ? r->priv : NULL;
	if (kept)
		rc = runtime_dup(rt, kept);
	boxtable_unlock(&m->r.boxes);
	if (kept)
		return rc;
	/* Not asked yet: inspect once, and keep a copy. */
	rc = inspect(m, &b, rt, box);
	if (!rc && !runtime_dup(&copy, rt)) {
		note_box(m, &b, &copy);
		msb_runtime_release(&copy);
	}
	return rc;
}

struct name_ctx {
	sbx_list_fn fn;
	void *ctx;
};

struct list_ctx {
	struct msb *m;
	unsigned gen;
	struct name_ctx *nx; /* names passed on as they come, or NULL */
};

static int list_one(void *ctx, const struct msb_box *b)
{
	struct list_ctx *x = ctx;
	struct rbox *r;

	boxtable_lock(&x->m->r.boxes);
	r = boxtable_seen_locked(&x->m->r.boxes, b->name, b->status, x->gen);
	if (r)
		snprintf(r->id, sizeof(r->id), "%s", b->id[0] ? b->id : b->name);
	boxtable_unlock(&x->m->r.boxes);
	return x->nx && x->nx->fn(x->nx->ctx, b->name) ? 1 : 0;
}

static int name_one(void *ctx, const struct msb_box *b)
{
	struct name_ctx *x = ctx;

	return x->fn(x->ctx, b->name);
}

static int msb_list(struct sbx_provider *p, sbx_list_fn fn, void *ctx)
{
	struct msb *m = MSB(p);
	const char *args[] = { "ls", "--format", "json", NULL };
	struct strbuf out = STRBUF_INIT(CLI_OUT_MAX);
	struct list_ctx lx = { .m = m };
	struct name_ctx nx = { .fn = fn, .ctx = ctx };
	int rc;

	if (m->cloud) {
		lx.gen = boxtable_sweep_begin(&m->r.boxes);
		lx.nx = fn ? &nx : NULL;
		rc = msb_cloud_list(m, list_one, &lx);
		if (!rc)
			boxtable_sweep_end(&m->r.boxes, lx.gen);
		return rc > 0 ? 0 : rc; /* > 0: fn stopped it */
	}
	rc = cli(m, &out, "list sandboxes", m->r.timeout_ms, args);
	if (!rc) {
		lx.gen = boxtable_sweep_begin(&m->r.boxes);
		rc = msb_parse_ls(out.buf ? out.buf : "", out.len, list_one, &lx);
		if (!rc)
			boxtable_sweep_end(&m->r.boxes, lx.gen);
	}
	if (!rc && fn)
		msb_parse_ls(out.buf, out.len, name_one, &nx);
	if (rc == -EPROTO)
		sbx_failf("microsandbox: list sandboxes: msb's answer is not a list");
	strbuf_release(&out);
	return rc;
}

static int msb_state(struct remote *r, char *word, size_t size, char *why,
		     size_t why_size, const char *box)
{
	struct msb_box b;
	int rc = inspect((struct msb *)r, &b, NULL, box);

	why[0] = '\0';
	(void)why_size;
	if (!rc)
		snprintf(word, size, "%s", b.status);
	return rc;
}

const char *msb_create_flag(const char *key, const char *v)
{
	const char *flag = NULL;
	char *end;

	if (!strcmp(key, "image"))
		return "";
	if (!strcmp(key, "env") && strchr(v, '=') && v[0] != '=')
		flag = "-e";
	else if (!strcmp(key, "label") && strchr(v, '=') && v[0] != '=')
		flag = "--label";
	else if (!strcmp(key, "workdir") && v[0] == '/')
		flag = "-w";
	else if (!strcmp(key, "cpus") && strtol(v, &end, 10) > 0 && !*end)
		flag = "-c";
	else if (!strcmp(key, "memory") && strtol(v, &end, 10) > 0 && !*end)
		flag = "-m"; /* MiB, as the other providers take it */
	if (!flag || strpbrk(v, "\n\r") || v[0] == '-') {
		sbx_failf("bad argument \"%s=%s\" for a microsandbox sandbox (image, "
			  "env=NAME=VALUE, label=KEY=VALUE, workdir=/PATH, cpus, "
			  "memory=MiB)",
			  key, v);
		return NULL;
	}
	return flag;
}

/* The flags of `msb create` for the `new` arguments. */
static int create_args(const char **argv, size_t max, const char *box, const char *image,
		       const struct sbx_kvlist *args)
{
	size_t n = 0;

	argv[n++] = "create";
	argv[n++] = image;
	argv[n++] = "--name";
	argv[n++] = box;
	argv[n++] = "-q";
	for (size_t i = 0; i < args->n; i++) {
		const char *key = args->v[i].key, *v = args->v[i].value;
		const char *flag = msb_create_flag(key, v);

		if (!strcmp(key, "image"))
			continue;
		if (!flag)
			return -EINVAL;
		if (n + 3 > max)
			return -E2BIG;
		argv[n++] = flag;
		argv[n++] = v;
	}
	argv[n] = NULL;
	return 0;
}

static int msb_create(struct remote *r, const char *box, const struct sbx_kvlist *args)
{
	struct msb *m = (struct msb *)r;
	const char *image = sbx_kv_get(args, "image"), *argv[64],
		   *rm[] = { "rm", "-f", box, NULL };
	char what[128], mem[32];
	int rc;

	if (!image)
		image = m->image;
	if (!image[0] || image[0] == '-' || strpbrk(image, " \n\r\t")) {
		sbx_failf("bad image \"%s\"", image);
		return -EINVAL;
	}
	if (m->cloud)
		return msb_cloud_create(m, box, image, args);
	rc = create_args(argv, sizeof(argv) / sizeof(argv[0]), box, image, args);
	if (rc)
		return rc;
	/* msb takes memory with a unit. */
	for (size_t i = 0; argv[i]; i++) {
		if (!strcmp(argv[i], "-m") && argv[i + 1]) {
			snprintf(mem, sizeof(mem), "%sM", argv[i + 1]);
			argv[++i] = mem;
		}
	}
	snprintf(what, sizeof(what), "create sandbox \"%s\"", box);
	rc = cli(m, NULL, what, LIFECYCLE_MS, argv);
	if (rc && rc != -EEXIST) {
		/* msb keeps a sandbox that failed to boot, as stopped: remove
		 * it, so that none is shown that mkdir said it did not make. */
		char text[400];

		snprintf(text, sizeof(text), "%s", sbx_fail_text());
		cli(m, NULL, "remove the failed sandbox", LIFECYCLE_MS, rm);
		sbx_failf("%s", text);
	}
	if (rc == -EEXIST)
		sbx_failf("microsandbox: %s: the name is taken", what);
	return rc;
}

static int lifecycle(struct msb *m, const char *verb, const char *box)
{
	const char *args[] = { verb, box, NULL };
	char what[128];

	if (m->cloud)
		return msb_cloud_lifecycle(m, verb, box);
	snprintf(what, sizeof(what), "%s sandbox \"%s\"", verb, box);
	return cli(m, NULL, what, LIFECYCLE_MS, args);
}

static int msb_start(struct remote *r, const char *box)
{
	struct msb *m = (struct msb *)r;
	void *old = NULL;
	struct rbox *b;

	/* Its settings may have changed while it was stopped. */
	boxtable_lock(&m->r.boxes);
	if ((b = boxtable_find_locked(&m->r.boxes, box))) {
		old = b->priv;
		b->priv = NULL;
	}
	boxtable_unlock(&m->r.boxes);
	runtime_free(old);
	return lifecycle(m, "start", box);
}

static int msb_stop(struct remote *r, const char *box)
{
	struct msb *m = (struct msb *)r;

	msb_agent_close(m, box);
	return lifecycle(m, "stop", box);
}

static int msb_remove(struct remote *r, const char *box)
{
	struct msb *m = (struct msb *)r;
	const char *args[] = { "rm", "-f", box, NULL };
	char what[128];

	msb_agent_close(m, box);
	if (m->cloud)
		return msb_cloud_remove(m, box);
	snprintf(what, sizeof(what), "remove sandbox \"%s\"", box);
	return cli(m, NULL, what, LIFECYCLE_MS, args);
}

static const struct remote_box_ops msb_box_ops = {
	.noun = "sandbox",
	.states = msb_states,
	.state = msb_state,
	.create = msb_create,
	.start = msb_start,
	.stop = msb_stop,
	.remove = msb_remove,
};

static int msb_ctl(struct sbx_provider *p, const char *box, int argc, char *const argv[])
{
	struct msb *m = MSB(p);

	if (argc == 1 && (!strcmp(argv[0], "pause") || !strcmp(argv[0], "resume")))
		return lifecycle(m, argv[0], box);
	sbx_failf("unknown command \"%s\" (microsandbox knows start, stop, restart, "
		  "pause, resume, delete)",
		  argv[0]);
	return -EINVAL;
}

static int msb_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	struct msb *m = MSB(p);
	struct msb_runtime rt;
	struct msb_box b;
	struct timespec ts;
	int rc = inspect(m, &b, &rt, box);

	if (rc)
		return rc;
	snprintf(out->id, sizeof(out->id), "%s", b.id[0] ? b.id : b.name);
	out->state = remote_sbx_state(remote_state_of(msb_states, b.status));
	snprintf(out->native_state, sizeof(out->native_state), "%s", b.status);
	snprintf(out->image, sizeof(out->image), "%s", b.image);
	if (!rfc3339_parse(&ts, b.created))
		out->created = ts.tv_sec;
	if (rt.cpus)
		sbx_kv_addf(&out->extra, "cpus", "%u", rt.cpus);
	if (rt.memory_mib)
		sbx_kv_addf(&out->extra, "memory", "%u MiB", rt.memory_mib);
	if (rt.workdir)
		sbx_kv_add(&out->extra, "workdir", rt.workdir);
	if (rt.user)
		sbx_kv_add(&out->extra, "user", rt.user);
	msb_runtime_release(&rt);
	return 0;
}

/* ---- setup ---- */

/* The msb program: -o msb=, MSB_PATH, or the first msb on PATH. */
static char *find_msb(const struct sbx_kvlist *opts)
{
	char *given = remote_opt(opts, "msb", "MSB_PATH");
	const char *path = getenv("PATH");

	if (given)
		return access(given, X_OK) ? (free(given), NULL) : given;
	while (path && *path) {
		size_t n = strcspn(path, ":");
		char *cand;

		if (n && asprintf(&cand, "%.*s/msb", (int)n, path) >= 0) {
			if (!access(cand, X_OK))
				return cand;
			free(cand);
		}
		path += n + (path[n] == ':');
	}
	return NULL;
}

/* Our environment for msb, with MSB_HOME set and the local backend. */
static char **msb_environ(const char *home)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "MSB_HOME=", 9) &&
		    strncmp(environ[i], "MSB_BACKEND=", 12))
			env[k++] = environ[i];
	if (asprintf(&env[k], "MSB_HOME=%s", home) < 0) {
		free(env);
		return NULL;
	}
	env[k + 1] = "MSB_BACKEND=local";
	return env;
}

static void msb_free(struct msb *m)
{
	if (!m)
		return;
	remote_release(&m->r);
	if (m->envp) {
		for (size_t i = 0; m->envp[i]; i++)
			if (!strncmp(m->envp[i], "MSB_HOME=", 9))
				free(m->envp[i]);
		free(m->envp);
	}
	msb_cloud_free(m);
	free(m->msb);
	free(m->home);
	free(m->image);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->readers_done);
	free(m);
}

static int msb_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	char *backend = remote_opt(opts, "backend", "MSB_BACKEND");
	struct msb *m = calloc(1, sizeof(*m));
	int rc;

	if (!m) {
		free(backend);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->readers_done, NULL);
	m->cloud = backend && !strcmp(backend, "cloud");
	/* On this machine the agent's Stat is the cheapest answer; across a
	 * network a lookup by script that lists a directory along saves the
	 * round trips of the names after it. */
	rc = remote_setup(&m->r, "microsandbox", m->cloud ? 0 : REMOTE_NATIVE_STAT, opts,
			  &msb_stagefile_ops, runtime_free);
	m->r.run = msb_run;
	m->r.box_ops = &msb_box_ops;
	m->r.fs = &msb_fs_ops;
	m->r.output_max = 48u << 20;
	if (rc)
		goto fail;
	rc = -EINVAL;
	if (backend && strcmp(backend, "local") && strcmp(backend, "cloud")) {
		sbx_failf("microsandbox: backend \"%s\" is none sbxfs knows (local, "
			  "cloud)",
			  backend);
		goto fail;
	}
	if (m->cloud) /* far away: trusted as long as the other services */
		p->attr_timeout = p->entry_timeout = 10.0;
	if (m->cloud && (rc = msb_cloud_init(m, opts)))
		goto fail;
	m->msb = m->cloud ? NULL : find_msb(opts);
	if (!m->msb && !m->cloud) {
		sbx_failf("microsandbox: the msb tool is not on PATH (install "
			  "microsandbox, or give -o msb=PATH)");
		rc = -ENOENT;
		goto fail;
	}
	rc = -ENOMEM;
	m->home = remote_opt(opts, "home", "MSB_HOME");
	if (!m->home && asprintf(&m->home, "%s/.microsandbox",
				 getenv("HOME") ? getenv("HOME") : "/root") < 0)
		m->home = NULL;
	m->image = remote_opt(opts, "image", NULL);
	if (!m->image)
		m->image = strdup(DEFAULT_IMAGE);
	if (!m->home || !m->image || (!m->cloud && !(m->envp = msb_environ(m->home))))
		goto fail;
	free(backend);
	p->priv = m;
	return 0;
fail:
	free(backend);
	msb_free(m);
	return rc;
}

static void msb_destroy(struct sbx_provider *p)
{
	struct msb *m = MSB(p);

	if (!m)
		return;
	/* Closing the sockets ends every command (their sinks are told). */
	cmdpoll_stop(&m->r.cmds);
	msb_agent_close(m, NULL);
	msb_free(m);
	p->priv = NULL;
}

static void msb_describe(struct sbx_provider *p, struct sbx_kvlist *out)
{
	struct msb *m = MSB(p);

	if (m->cloud) {
		sbx_kv_add(out, "backend", "cloud");
		sbx_kv_add(out, "api_url", m->api_url);
	} else {
		sbx_kv_add(out, "msb", m->msb);
		sbx_kv_add(out, "home", m->home);
		sbx_kv_add(out, "backend", "local");
	}
	sbx_kv_add(out, "image", m->image);
	remote_describe(&m->r, out);
}

static const struct sbx_provider_ops msb_ops = {
	.init = msb_init,
	.destroy = msb_destroy,
	.describe = msb_describe,
	.list = msb_list,
	REMOTE_OPS_BOXES,
	.ctl = msb_ctl,
	.info = msb_info,
	REMOTE_OPS_FILES,
	REMOTE_OPS_SHELL,
	.cmd_start = msb_cmd_start,
	.cmd_stdin = msb_cmd_stdin,
	.cmd_signal = msb_cmd_signal,
	.cmd_release = msb_cmd_release,
};

const struct sbx_provider_desc sbx_provider_microsandbox = {
	.name = "microsandbox",
	.caps = SBX_CAP_SYMLINK | SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN |
		SBX_CAP_RENAME_OVER | SBX_CAP_LIST_STATS,
	/* The agent is on this machine: a look costs little. */
	.attr_timeout = 1.0,
	.entry_timeout = 1.0,
	.path_max = REMOTE_PATH_MAX,
	.ops = &msb_ops,
};
