/* SPDX-License-Identifier: MIT */
/* sbxfs: mount sandboxes as a file tree. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "sbxfs/box.h"
#include "sbxfs/cache.h"
#include "sbxfs/fs.h"
#include "sbxfs/fsutil.h"
#include "sbxfs/http.h"
#include "sbxfs/check.h"
#include "sbxfs/config.h"
#include "sbxfs/log.h"
#include "sbxfs/mount.h"
#include "sbxfs/node.h"
#include "sbxfs/notify.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/synth.h"
#include "sbxfs/tree.h"

struct options {
	char *provider;
	char *providers;    /* several, separated by ',' */
	int providers_open; /* the last option was providers=: a provider's
			       name after it is one more of them */
	char *state_dir;
	char *image;
	char *trace;
	char *log;
	char *ca_file;
	char *keepalive;
	char *attr_timeout;
	char *subtree_entries;
	char *subtree_mib;
	char *prefetch_mib;
	char *prefetch_file_kib;
	char *config;
	int check;
	int debug;
	int foreground;
	int help;
	int version;
	struct sbx_kvlist popts; /* options for the provider */
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_DEBUG,
	KEY_FOREGROUND,
	KEY_PROVIDER_OPT,
	KEY_CHECK,
	KEY_PROVIDERS
};

#define OPT(t, p)                                 \
	{                                         \
		t, offsetof(struct options, p), 1 \
	}
static const struct fuse_opt option_spec[] = {
	OPT("provider=%s", provider), FUSE_OPT_KEY("providers=", KEY_PROVIDERS),
	OPT("state_dir=%s", state_dir), OPT("image=%s", image), OPT("trace=%s", trace),
	OPT("log=%s", log), OPT("ca_file=%s", ca_file), OPT("keepalive=%s", keepalive),
	OPT("attr_timeout=%s", attr_timeout), OPT("subtree_entries=%s", subtree_entries),
	OPT("subtree_mib=%s", subtree_mib), OPT("prefetch_mib=%s", prefetch_mib),
	OPT("prefetch_file_kib=%s", prefetch_file_kib), OPT("config=%s", config),
	FUSE_OPT_KEY("-h", KEY_HELP), FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("--check", KEY_CHECK), FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION), FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG), FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	/* Passed to the provider, which
	   checks them. */
	FUSE_OPT_KEY("api_url=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("api_key=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("jwt_token=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("organization_id=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("token=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("project_id=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("user_id=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("transport=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("target=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("label=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("timeout=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("cache_max=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("home=", KEY_PROVIDER_OPT), FUSE_OPT_KEY("msb=", KEY_PROVIDER_OPT),
	FUSE_OPT_KEY("backend=", KEY_PROVIDER_OPT), FUSE_OPT_END
};

static int provider_known(const char *name)
{
	struct sbx_provider *p = sbx_provider_new(name);

	sbx_provider_free(p);
	return p != NULL;
}

static int option_key(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;
	int listing = o->providers_open;

	o->providers_open = 0;
	switch (key) {
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	case KEY_CHECK:
		o->check = 1;
		return 0;
	case KEY_DEBUG:
		o->debug = 1;
		o->foreground = 1;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = 1;
		return 0;
	case KEY_PROVIDERS:
		free(o->providers);
		o->providers = strdup(arg + strlen("providers="));
		o->providers_open = 1;
		return o->providers ? 0 : -1;
	case FUSE_OPT_KEY_OPT:
		/* -o providers=local,daytona: the comma split the list. */
		if (listing && !strchr(arg, '=') && provider_known(arg)) {
			size_t n = strlen(o->providers) + strlen(arg) + 2;
			char *list = malloc(n);

			if (!list)
				return -1;
			snprintf(list, n, "%s,%s", o->providers, arg);
			free(o->providers);
			o->providers = list;
			o->providers_open = 1;
			return 0;
		}
		return 1;
	case KEY_PROVIDER_OPT: {
		const char *eq = strchr(arg, '=');
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
		return sbx_kv_add(&o->popts, name, eq + 1) ? -1 : 0;
	}
	}
	return 1; /* keep it for libfuse */
}

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [options] [PROVIDER] MOUNTPOINT\n"
		"\n"
		"Mount sandboxes as a file tree.\n"
		"\n"
		"    -f                     stay in the foreground\n"
		"    -d                     debug logging (implies -f)\n"
		"    -h, --help             this help\n"
		"    -V, --version          the version\n"
		"    -o provider=NAME       sandbox provider (default: local)\n"
		"    -o state_dir=DIR       where sandboxes and command output live\n"
		"                           (default: $XDG_DATA_HOME/sbxfs)\n"
		"    -o image=IMAGE         default image for new sandboxes\n"
		"                           (local: \"host\" or a root directory)\n"
		"    -o trace=LIST          trace components, separated by ':':\n"
		"                           fuse:cmd:provider:cache:http:ws, or all\n"
		"    -o log=FILE            log here (default: stderr in the foreground,\n"
		"                           STATE_DIR/sbxfs.log otherwise)\n"
		"    --check                tell what is missing to mount, with fixes\n"
		"    -o config=FILE         defaults and credentials (default:\n"
		"                           $XDG_CONFIG_HOME/sbxfs/config, if there)\n"
		"    -o attr_timeout=SECONDS  trust attributes, names and listings below\n"
		"                           root/ this long (default: the provider's;\n"
		"                           local 5, remote 10; 0 asks every time)\n"
		"    -o subtree_entries=N   a directory listed cold brings the listings\n"
		"                           below it, up to N entries (default 20000;\n"
		"                           0 lists one directory at a time)\n"
		"    -o subtree_mib=MIB     and up to MIB of their records (default 4)\n"
		"    -o prefetch_mib=MIB    files read one after another below such a\n"
		"                           subtree bring its small files in rounds, the\n"
		"                           first of MIB, each next twice the last\n"
		"                           (default 4; 0 reads one file at a time)\n"
		"    -o prefetch_file_kib=KIB  the largest file brought so (default 256)\n"
		"\n"
		"Remote providers (daytona, rexec, vtrix, docker, microsandbox) also take:\n"
		"    -o api_url=URL         the service's API (default from the environment;\n"
		"                           docker: DOCKER_HOST, unix:// or tcp://)\n"
		"    -o target=REGION       where new sandboxes go\n"
		"    -o label=KEY=VALUE     docker: show only containers with this label\n"
		"    -o home=DIR, msb=PATH  microsandbox: MSB_HOME and the msb program\n"
		"    -o backend=cloud       microsandbox: its cloud (MSB_API_URL, MSB_API_KEY)\n"
		"    -o timeout=SECONDS     bound on one request (default 30)\n"
		"    -o cache_max=MIB       staged file data kept on disk (default 2048)\n"
		"    -o keepalive=SECONDS   check a quiet connection after this long (TCP\n"
		"                           keep-alive, WebSocket PING; default 10)\n"
		"    -o ca_file=PEM         trust these certificate authorities for HTTPS\n"
		"                           and WSS (default: $SSL_CERT_FILE, else the\n"
		"                           system's)\n"
		"  Credentials come from the environment (DAYTONA_API_KEY,\n"
		"  REXEC_TOKEN, VTRIX_TOKEN, ...) or -o api_key=, token=; see\n"
		"  docs/providers.md.\n"
		"\n"
		"Unmount with fusermount3 -u MOUNTPOINT, or SIGINT/SIGTERM.\n"
		"See sbxfs(1) and sbxfs-tree(5) in docs/.\n",
		prog);
}

/* "1.5" -> 1.5: a decimal number of seconds, 0 to a day. */
static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 86400))
		return -1;
	*out = v;
	return 0;
}

/* A whole number from 0 to max. */
static int parse_count(const char *s, unsigned long max, size_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int fail_usage(const char *prog, const char *why, const char *arg)
{
	fprintf(stderr, "%s: %s%s%s%s\n", prog, why, arg ? " \"" : "", arg ? arg : "",
		arg ? "\"" : "");
	usage(stderr, prog);
	return 2;
}

/* ---- the config file (config.h) ---- */

/* The option of `key` in option_spec: a field of struct options (*field
 * set), or a provider's option (*field NULL); -1 if it has none. */
static int option_of(const char *key, size_t *offset, int *provider_opt)
{
	size_t n = strlen(key);

	for (const struct fuse_opt *op = option_spec; op->templ; op++) {
		if (strncmp(op->templ, key, n) || op->templ[n] != '=')
			continue;
		*provider_opt = op->value == KEY_PROVIDER_OPT &&
				op->offset == (unsigned long)-1U; /* FUSE_OPT_KEY */
		*offset = op->offset;
		return 0;
	}
	return -1;
}

static int config_key(const char *key)
{
	size_t offset;
	int popt;

	return strcmp(key, "config") && option_of(key, &offset, &popt) == 0;
}

/*
 * Read the config file (-o config=, else $XDG_CONFIG_HOME/sbxfs/config or
 * ~/.config/sbxfs/config, which may be missing) into c, and fill what the
 * command line left unset: the provider or providers first, then the
 * mount's options from the part before any section and, with one
 * provider, from its section.  The image and the providers' own options
 * are each tree's (tree_options()).  0, or -errno with why.
 */
static int apply_config(struct options *o, struct config *c, char *why, size_t size)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	const char *one;
	char path[4096] = "";
	int rc;

	memset(c, 0, sizeof(*c));
	if (o->config)
		snprintf(path, sizeof(path), "%s", o->config);
	else if (xdg && xdg[0] == '/')
		snprintf(path, sizeof(path), "%s/sbxfs/config", xdg);
	else if (home && home[0] == '/')
		snprintf(path, sizeof(path), "%s/.config/sbxfs/config", home);
	else
		return 0;
	rc = config_load(c, path, config_key, why, size);
	/* The default place may be out of reach (HOME is another user's). */
	if ((rc == -ENOENT || rc == -ENOTDIR || rc == -EACCES) && !o->config)
		return 0;
	if (rc == -ENOENT)
		snprintf(why, size, "%s: no such config file", path);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->n && !o->provider && !o->providers; i++) {
		if (c->v[i].section)
			continue;
		if (!strcmp(c->v[i].key, "provider"))
			o->provider = strdup(c->v[i].value);
		else if (!strcmp(c->v[i].key, "providers"))
			o->providers = strdup(c->v[i].value);
	}
	one = o->providers ? NULL : o->provider ? o->provider : "local";
	for (size_t i = 0; i < c->n && !rc; i++) {
		const struct config_entry *e = &c->v[i];
		size_t offset;
		int popt;
		char **field;

		if ((e->section && (!one || strcmp(e->section, one))) ||
		    option_of(e->key, &offset, &popt) || popt ||
		    !strcmp(e->key, "image") || !strcmp(e->key, "providers"))
			continue;
		field = (char **)((char *)o + offset);
		if (!*field && !(*field = strdup(e->value)))
			rc = -ENOMEM;
	}
	if (rc)
		snprintf(why, size, "%s: %s", path, strerror(-rc));
	return rc;
}

/*
 * What the init of provider `name` takes: the state directory, the image
 * and its own options, each from the command line, else the config
 * file's section of the provider, else its part before any section.
 */
static int tree_options(struct sbx_kvlist *popts, const struct options *o,
			const struct config *c, const char *name, const char *state)
{
	int rc = sbx_kv_add(popts, "state_dir", state);

	if (!rc && o->image)
		rc = sbx_kv_add(popts, "image", o->image);
	for (size_t i = 0; i < o->popts.n && !rc; i++)
		rc = sbx_kv_add(popts, o->popts.v[i].key, o->popts.v[i].value);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c->n && !rc; i++) {
			const struct config_entry *e = &c->v[i];
			size_t offset;
			int popt;

			if (pass == 0 ? !e->section || strcmp(e->section, name)
				      : e->section != NULL)
				continue;
			if (option_of(e->key, &offset, &popt) ||
			    (!popt && strcmp(e->key, "image")) ||
			    sbx_kv_get(popts, e->key))
				continue;
			rc = sbx_kv_add(popts, e->key, e->value);
		}
	}
	return rc;
}

static int count_box(void *ctx, const char *name)
{
	(*(size_t *)ctx)++;
	return 0;
}

/* The names of a list "local,daytona" into names[] (at most max, each
 * once, each a provider sbxfs has); their count, or -1 with why. */
static int split_providers(char *list, char **names, int max, char *why, size_t size)
{
	int n = 0;

	for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		struct sbx_provider *p = sbx_provider_new(name);

		if (!p) {
			snprintf(why, size, "%s", sbx_fail_text());
			return -1;
		}
		sbx_provider_free(p);
		for (int i = 0; i < n; i++)
			if (!strcmp(names[i], name)) {
				snprintf(why, size, "provider \"%s\" named twice", name);
				return -1;
			}
		if (n == max) {
			snprintf(why, size, "more than %d providers", max);
			return -1;
		}
		names[n++] = name;
	}
	if (!n)
		snprintf(why, size, "no provider named");
	return n ? n : -1;
}

/*
 * sbxfs --check (check.h): the host, then each provider: its options and
 * credentials (its init), and reaching its service (its list of
 * sandboxes).  0 if all is well, else 1.
 */
static int check(const struct options *o, const struct config *cfg, const char *state,
		 char **names, int count)
{
	struct check c = { stdout, 0 };
	int local = 0;

	for (int i = 0; i < count; i++)
		local |= !strcmp(names[i], "local");
	check_host(&c, local ? "local" : names[0]);
	for (int i = 0; i < count; i++) {
		struct sbx_kvlist popts = { 0 };
		struct sbx_provider *p = sbx_provider_new(names[i]);
		char what[64];
		size_t n = 0;
		int rc;

		if (!p || tree_options(&popts, o, cfg, names[i], state)) {
			check_report(&c, 0, names[i], "%s", sbx_fail_text());
			sbx_kv_free(&popts);
			free(p);
			continue;
		}
		sbx_fail_clear();
		rc = p->ops.init(p, &popts);
		if (rc) {
			check_report(
				&c, 0, names[i],
				"%s: docs/providers.md says what it needs (-o options, "
				"the config file, or the environment)",
				sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
		} else {
			check_report(&c, 1, names[i], "options and credentials");
			snprintf(what, sizeof(what),
				 count > 1 ? "reaching %s" : "reaching the service",
				 names[i]);
			sbx_fail_clear();
			rc = p->ops.list(p, count_box, &n);
			if (rc)
				check_report(&c, 0, what,
					     "%s: check the address, the network and the "
					     "credentials",
					     sbx_fail_text()[0] ? sbx_fail_text()
								: strerror(-rc));
			else
				check_report(&c, 1, what, "%zu sandboxes", n);
			p->ops.destroy(p);
		}
		sbx_provider_free(p);
		sbx_kv_free(&popts);
	}
	fflush(stdout);
	return c.failed ? 1 : 0;
}

static char *default_state_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char buf[PATH_MAX];

	if (xdg && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/sbxfs", xdg);
	else if (home && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.local/share/sbxfs", home);
	else
		return NULL;
	return strdup(buf);
}

/*
 * mount(8) and fstab lines run "sbxfs SOURCE MOUNTPOINT -o OPTIONS"
 * (through mount.fuse3, for the type fuse.sbxfs): SOURCE names the
 * provider.  Take it out of argv before libfuse, which takes one
 * non-option, the mount point.  NULL if there is none.
 */
static char *take_source(int *argc, char **argv)
{
	int first = 0, n = 0;
	char *src;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "-o"))
			i++; /* its value */
		else if (argv[i][0] != '-' && n++ == 0)
			first = i;
	}
	if (n != 2)
		return NULL;
	src = argv[first];
	memmove(&argv[first], &argv[first + 1], (size_t)(*argc - first) * sizeof(*argv));
	(*argc)--;
	return src;
}

int main(int argc, char *argv[])
{
	char *source = take_source(&argc, argv);
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cl = { 0 };
	struct options o = { 0 };
	struct fuse_loop_config *loop = NULL;
	struct sbxfs_mount m = { 0 };
	struct fuse_session *se = NULL;
	struct config cfg = { 0 };
	char *list = NULL, *names[MOUNT_TREES_MAX];
	int count = 0;
	const char *prog = "sbxfs";
	char *state = NULL;
	FILE *logf = NULL;
	double timeout = -1;
	size_t subtree_entries = 20000, subtree_mib = 4;
	size_t prefetch_mib = 4, prefetch_file_kib = 256;
	int rc = 1, mounted = 0;

	if (fuse_opt_parse(&args, &o, option_spec, option_key) < 0) {
		rc = fail_usage(prog, "bad options", NULL);
		goto out;
	}
	if (o.help) {
		usage(stdout, prog);
		printf("\nFUSE options:\n");
		fuse_lowlevel_help();
		rc = 0;
		goto out;
	}
	if (o.version) {
		printf("sbxfs %s (libfuse %s)\n", SBXFS_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (fuse_parse_cmdline(&args, &cl) != 0) {
		rc = fail_usage(prog, "bad options", NULL);
		goto out;
	}
	if (!cl.mountpoint && !o.check) {
		rc = fail_usage(prog, "no mountpoint given", NULL);
		goto out;
	}
	/* The provider: -o provider=, else SOURCE ("sbxfs": the default),
	 * else the config file's, else local; then the config file fills
	 * what the command line left unset. */
	if (!o.provider && source && strcmp(source, "sbxfs"))
		o.provider = strdup(source);
	{
		char why[1024];

		if (apply_config(&o, &cfg, why, sizeof(why))) {
			fprintf(stderr, "%s: %s\n", prog, why);
			rc = 2;
			goto out;
		}
	}
	if (o.trace && sbx_log_set_trace(o.trace)) {
		rc = fail_usage(prog, "unknown trace component in", o.trace);
		goto out;
	}
	if (o.attr_timeout && parse_seconds(o.attr_timeout, &timeout)) {
		rc = fail_usage(prog, "attr_timeout must be seconds, 0 to 86400, not",
				o.attr_timeout);
		goto out;
	}
	if (o.subtree_entries &&
	    parse_count(o.subtree_entries, 10000000, &subtree_entries)) {
		rc = fail_usage(prog, "subtree_entries must be 0 to 10000000, not",
				o.subtree_entries);
		goto out;
	}
	if (o.subtree_mib && parse_count(o.subtree_mib, 1024, &subtree_mib)) {
		rc = fail_usage(prog, "subtree_mib must be 0 to 1024, not",
				o.subtree_mib);
		goto out;
	}
	if (o.keepalive) {
		size_t secs;

		if (parse_count(o.keepalive, 3600, &secs) || secs < 1) {
			rc = fail_usage(prog, "keepalive must be 1 to 3600 seconds, not",
					o.keepalive);
			goto out;
		}
		http_set_keepalive((int)secs);
	}
	if (o.prefetch_mib && parse_count(o.prefetch_mib, 4096, &prefetch_mib)) {
		rc = fail_usage(prog, "prefetch_mib must be 0 to 4096, not",
				o.prefetch_mib);
		goto out;
	}
	if (o.prefetch_file_kib &&
	    parse_count(o.prefetch_file_kib, 1024 * 1024, &prefetch_file_kib)) {
		rc = fail_usage(prog, "prefetch_file_kib must be 0 to 1048576, not",
				o.prefetch_file_kib);
		goto out;
	}
	if (o.provider && strchr(o.provider, ',') && !o.providers) {
		o.providers = o.provider; /* SOURCE "local,daytona" */
		o.provider = NULL;
	}
	if (!o.provider)
		o.provider = strdup("local");
	{
		char why[256];

		list = strdup(o.providers ? o.providers : o.provider);
		count = list ? split_providers(list, names, MOUNT_TREES_MAX, why,
					       sizeof(why))
			     : -1;
		if (count < 0) {
			rc = fail_usage(prog, list ? why : strerror(ENOMEM), NULL);
			goto out;
		}
	}

	state = o.state_dir ? strdup(o.state_dir) : default_state_dir();
	if (!state) {
		rc = fail_usage(prog, "no state directory: set -o state_dir or HOME",
				NULL);
		goto out;
	}
	{
		int err = sbx_mkdir_p(state, 0700);

		if (err) {
			fprintf(stderr, "%s: cannot create state directory \"%s\": %s\n",
				prog, state, strerror(-err));
			goto out;
		}
	}
	{
		char *real = realpath(state, NULL);

		free(state);
		state = real;
		if (!state) {
			fprintf(stderr, "%s: bad state directory: %s\n", prog,
				strerror(errno));
			goto out;
		}
	}
	sbx_log_setup(stderr, o.debug ? SBX_LOG_DEBUG : SBX_LOG_INFO);

	/* Private certificate authorities, as OpenSSL's tools take them. */
	if (!o.ca_file && getenv("SSL_CERT_FILE") && *getenv("SSL_CERT_FILE"))
		o.ca_file = strdup(getenv("SSL_CERT_FILE"));
	if (o.ca_file) {
		if (access(o.ca_file, R_OK)) {
			fprintf(stderr, "%s: cannot read ca_file \"%s\": %s\n", prog,
				o.ca_file, strerror(errno));
			goto out;
		}
		http_set_ca_file(o.ca_file);
	}

	if (o.check) {
		rc = check(&o, &cfg, state, names, count);
		goto out;
	}
	/* Each provider's tree.  With one, a provider that does not start
	 * is a mount error; with several, its tree says why and the others
	 * work. */
	m.multi = o.providers != NULL;
	m.uid = getuid();
	m.gid = getgid();
	m.started = time(NULL);
	for (int i = 0; i < count; i++) {
		struct sbx_kvlist popts = { 0 };
		struct tree_opts to = { state,	     timeout,	   subtree_entries,
					subtree_mib, prefetch_mib, prefetch_file_kib };
		struct sbxfs *fs = calloc(1, sizeof(*fs));

		if (!fs || tree_options(&popts, &o, &cfg, names[i], state)) {
			sbx_kv_free(&popts);
			free(fs);
			goto out;
		}
		m.trees[m.n++] = fs;
		rc = tree_open(fs, names[i], &popts, &to, mount_tree_root(&m, (size_t)i),
			       m.multi);
		sbx_kv_free(&popts);
		fs->multi = m.multi;
		if (rc && !fs->failed[0]) {
			fprintf(stderr, "%s: provider %s: %s\n", prog, names[i],
				sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
			rc = 1;
			goto out;
		}
	}
	rc = 1;

	fuse_opt_add_arg(&args, "-odefault_permissions,fsname=sbxfs,subtype=sbxfs");
	se = fuse_session_new(&args, &sbxfs_ops, sizeof(sbxfs_ops), &m);
	if (!se) {
		/* libfuse printed the reason: an unknown option. */
		usage(stderr, prog);
		rc = 2;
		goto out;
	}
	for (size_t i = 0; i < m.n; i++)
		m.trees[i]->se = se;
	if (fuse_set_signal_handlers(se))
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if (fuse_session_mount(se, cl.mountpoint)) {
		fprintf(stderr, "%s: cannot mount on \"%s\"\n", prog, cl.mountpoint);
		goto out;
	}
	mounted = 1;
	if (!o.foreground || o.log) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s", o.log ? o.log : "");
		if (!o.log)
			snprintf(path, sizeof(path), "%s/sbxfs.log", state);
		logf = fopen(path, "ae");
		if (logf)
			sbx_log_setup(logf, o.debug ? SBX_LOG_DEBUG : SBX_LOG_INFO);
	}
	if (fuse_daemonize(o.foreground))
		goto out;
	for (size_t i = 0; i < m.n; i++)
		if (tree_serve(m.trees[i]))
			goto out;
	sbx_info("mounted %s: provider%s %s, state %s", cl.mountpoint, m.multi ? "s" : "",
		 o.providers ? o.providers : o.provider, state);

	loop = fuse_loop_cfg_create();
	/* Readers of running commands block in a request: allow many.  No
	 * worker ever exits when idle: a process a request starts with a
	 * parent-death signal (local's bwrap keeper, --die-with-parent) is
	 * killed when the thread that started it exits, not the daemon. */
	fuse_loop_cfg_set_max_threads(loop, 512);
	fuse_loop_cfg_set_idle_threads(loop, 512);
	rc = fuse_session_loop_mt(se, loop);
	/* The loop returns the signal that ended it: a clean unmount. */
	rc = (rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP) ? 0 : 1;
	fuse_loop_cfg_destroy(loop);
	sbx_info("unmounting %s", cl.mountpoint);
out:
	for (size_t i = 0; i < m.n; i++)
		tree_stop(m.trees[i]);
	synth_release_all();
	if (se) {
		if (mounted)
			fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	for (size_t i = 0; i < m.n; i++) {
		tree_close(m.trees[i]);
		free(m.trees[i]);
	}
	config_free(&cfg);
	free(list);
	free(state);
	sbx_kv_free(&o.popts);
	free(cl.mountpoint);
	fuse_opt_free_args(&args);
	free(o.provider);
	free(o.providers);
	free(o.state_dir);
	free(o.image);
	free(o.trace);
	free(o.config);
	free(o.log);
	free(o.ca_file);
	free(o.keepalive);
	free(o.attr_timeout);
	free(o.subtree_entries);
	free(o.subtree_mib);
	free(o.prefetch_mib);
	free(o.prefetch_file_kib);
	if (logf)
		fclose(logf);
	return rc;
}
