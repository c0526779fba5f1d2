/* SPDX-License-Identifier: MIT */
/*
 * The local provider: sandboxes on this machine, isolated by bubblewrap in
 * their own user, mount, PID, IPC and UTS (and, unless net=host, network)
 * namespaces.
 *
 * A sandbox is a directory STATE/local/NAME holding `config` and `fs/`, the
 * sandbox's own writable directories.  Its "/" exists only inside a mount
 * namespace that bwrap builds.  A running sandbox has a keeper: bwrap with
 * a shell that waits on its stdin, whose namespaces commands join through
 * our own setns() join (nsjoin.c).  Stopping kills the sandbox's PID namespace.
 *
 * root/ must show exactly what commands see, running or stopped, and must
 * never resolve a path outside the sandbox.  So we hold two descriptors
 * into the sandbox's mount namespace: its root directory and the
 * namespace itself (without the latter the mounts are detached once the
 * last process exits).  Every path is resolved from that root with
 * openat2(RESOLVE_IN_ROOT): ".." and absolute symlinks stay inside, as
 * they do for the sandbox's own processes.  A stopped sandbox keeps the
 * namespace of its last run, or gets one built for the purpose.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/provider.h"
#include "sbxfs/spawn.h"
#include "local.h"

/* The sandbox's own writable directories, for image=host and image=DIR. */
const char *const local_host_own_dirs[] = { "etc", "root", "home", "tmp", "var",
					    "opt", "srv",  "mnt",  NULL };
const char *const local_image_own_dirs[] = { "root", "home", "tmp", "var/tmp", NULL };
/* What of the host's /etc a sandbox gets a copy of: enough for programs to
 * run, never the host's secrets (no shadow, no keys). */
static const char *const etc_copy[] = { "passwd",
					"group",
					"hosts",
					"host.conf",
					"nsswitch.conf",
					"resolv.conf",
					"ld.so.cache",
					"ld.so.conf",
					"ld.so.conf.d",
					"alternatives",
					"ssl",
					"ca-certificates",
					"ca-certificates.conf",
					"profile",
					"profile.d",
					"bash.bashrc",
					"environment",
					"localtime",
					"timezone",
					"os-release",
					"debian_version",
					"issue",
					"shells",
					"login.defs",
					"protocols",
					"services",
					"networks",
					"inputrc",
					"mime.types",
					"gai.conf",
					"terminfo",
					"magic",
					"python3",
					"python3.11",
					"perl",
					"xdg",
					"skel",
					"mke2fs.conf",
					NULL };

/* ---- small helpers ---- */

/* Close both ends of a pipe that are still open. */
void local_close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

int local_box_dir(char *out, size_t size, struct local *l, const char *box,
		  const char *sub)
{
	int n = snprintf(out, size, "%s/%s%s%s", l->dir, box, sub ? "/" : "",
			 sub ? sub : "");

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Read a whole small file (config) into a kv list. */
int local_config_load(struct sbx_kvlist *out, struct local *l, const char *box)
{
	char path[4096], line[2048];
	FILE *f;
	int rc = local_box_dir(path, sizeof(path), l, box, "config");

	if (rc)
		return rc;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ENOENT : -errno;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');

		line[strcspn(line, "\n")] = '\0';
		if (!eq)
			continue;
		*eq = '\0';
		sbx_kv_add(out, line, eq + 1);
	}
	fclose(f);
	return 0;
}

static int config_save(struct local *l, const char *box, const struct sbx_kvlist *cfg)
{
	char path[4096], tmp[4200];
	FILE *f;
	int rc = local_box_dir(path, sizeof(path), l, box, "config");

	if (rc)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (size_t i = 0; i < cfg->n; i++)
		fprintf(f, "%s=%s\n", cfg->v[i].key, cfg->v[i].value);
	if (fflush(f) || fsync(fileno(f))) {
		rc = -errno;
		fclose(f);
		unlink(tmp);
		return rc;
	}
	fclose(f);
	return rename(tmp, path) < 0 ? -errno : 0;
}

/* ---- the table of known sandboxes ---- */

static struct local_box *box_find_locked(struct local *l, const char *name)
{
	for (struct local_box *b = l->boxes; b; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

/* The record for an existing sandbox, made on first use.  Records live
 * until unmount; delete marks them, so a pointer from here stays valid.
 * Known records answer without touching the disk: this is on the path of
 * every file operation. */
struct local_box *local_box_get(struct local *l, const char *name)
{
	char path[4096];
	struct local_box *b;
	struct stat st;

	pthread_mutex_lock(&l->lock);
	b = box_find_locked(l, name);
	if (b && !b->deleted) {
		pthread_mutex_unlock(&l->lock);
		return b;
	}
	pthread_mutex_unlock(&l->lock);
	if (local_box_dir(path, sizeof(path), l, name, "config") || stat(path, &st) < 0)
		return NULL;
	pthread_mutex_lock(&l->lock);
	b = box_find_locked(l, name);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b) {
			snprintf(b->name, sizeof(b->name), "%s", name);
			pthread_mutex_init(&b->lock, NULL);
			b->rootfd = b->mntnsfd = b->keeper_in = -1;
			b->next = l->boxes;
			l->boxes = b;
		}
	}
	if (b)
		b->deleted = 0;
	pthread_mutex_unlock(&l->lock);
	return b;
}

/* ---- sandbox slots ---- */

static int local_init(struct sbx_provider *p, const struct sbx_kvlist *opts)
{
	const char *state = sbx_kv_get(opts, "state_dir");
	const char *image = sbx_kv_get(opts, "image");
	struct local *l;
	char dir[4096];
	int rc;

	if (!state) {
		sbx_failf("no state directory");
		return -EINVAL;
	}
	if (snprintf(dir, sizeof(dir), "%s/local", state) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	rc = sbx_mkdir_p(dir, 0700);
	if (rc) {
		sbx_failf("cannot create state directory \"%s\": %s", dir, strerror(-rc));
		return rc;
	}
	if (image && strcmp(image, "host") && image[0] != '/') {
		sbx_failf("image must be \"host\" or an absolute directory, not \"%s\"",
			  image);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->dir = strdup(dir))) {
		free(l);
		return -ENOMEM;
	}
	snprintf(l->default_image, sizeof(l->default_image), "%s",
		 image ? image : "host");
	pthread_mutex_init(&l->lock, NULL);
	p->priv = l;
	return 0;
}

static void local_destroy(struct sbx_provider *p)
{
	struct local *l = L(p);
	struct local_box *b, *next;

	for (b = l->boxes; b; b = b->next) {
		pthread_mutex_lock(&b->lock);
		local_box_kill_keeper_locked(b);
		local_box_close_view_locked(b);
		pthread_mutex_unlock(&b->lock);
	}
	/* Killing the keepers ended every command; let their threads deliver
	 * the end before the caller frees what the sinks point to. */
	for (int i = 0; i < 300 && __atomic_load_n(&l->live_cmds, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	for (b = l->boxes; b; b = next) {
		next = b->next;
		pthread_mutex_destroy(&b->lock);
		free(b);
	}
	free(l->dir);
	free(l);
}

static void local_describe(struct sbx_provider *p, struct sbx_kvlist *out)
{
	sbx_kv_add(out, "state_dir", L(p)->dir);
	sbx_kv_add(out, "image", L(p)->default_image);
	sbx_kv_add(out, "isolation",
		   "bubblewrap: user, mount, pid, ipc, uts, net namespaces");
}

static int local_list(struct sbx_provider *p, sbx_list_fn fn, void *ctx)
{
	DIR *d = opendir(L(p)->dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while (!rc && (de = readdir(d)))
		if (de->d_type == DT_DIR && sbx_name_valid(de->d_name))
			rc = fn(ctx, de->d_name);
	closedir(d);
	return 0;
}

/* Check and normalise the `new` arguments into the stored config. */
static int config_from_args(struct sbx_kvlist *cfg, struct local *l,
			    const struct sbx_kvlist *args)
{
	const char *image = l->default_image;
	const char *net = "none";
	char buf[4200];
	struct stat st;

	for (size_t i = 0; i < args->n; i++) {
		const char *k = args->v[i].key, *v = args->v[i].value;

		if (!strcmp(k, "image")) {
			image = v;
		} else if (!strcmp(k, "net")) {
			if (strcmp(v, "none") && strcmp(v, "host")) {
				sbx_failf("net must be \"none\" or \"host\", not \"%s\"",
					  v);
				return -EINVAL;
			}
			net = v;
		} else if (!strcmp(k, "cpu") || !strcmp(k, "memory") ||
			   !strcmp(k, "disk")) {
			sbx_failf("the local provider cannot limit %s", k);
			return -ENOTSUP;
		} else if (!strncmp(k, "env.", 4) || !strncmp(k, "label.", 6)) {
			const char *name = strchr(k, '.') + 1;

			if (!*name || strpbrk(name, "=\n") || strpbrk(v, "\n")) {
				sbx_failf("bad key \"%s\"", k);
				return -EINVAL;
			}
		} else {
			sbx_failf(
				"unknown key \"%s\" (known: image, net, env.K, label.K)",
				k);
			return -EINVAL;
		}
	}
	if (strcmp(image, "host")) {
		if (image[0] != '/' || stat(image, &st) < 0 || !S_ISDIR(st.st_mode)) {
			sbx_failf("image \"%s\" is not \"host\" or an absolute directory",
				  image);
			return -EINVAL;
		}
		snprintf(buf, sizeof(buf), "%s/bin/sh", image);
		if (stat(buf, &st) < 0) {
			sbx_failf("image \"%s\" has no /bin/sh", image);
			return -EINVAL;
		}
	}
	sbx_kv_add(cfg, "image", image);
	sbx_kv_add(cfg, "net", net);
	for (size_t i = 0; i < args->n; i++)
		if (strchr(args->v[i].key, '.'))
			sbx_kv_add(cfg, args->v[i].key, args->v[i].value);
	return 0;
}

static int populate_etc(const char *etc)
{
	char *argv[128];
	char why[256];
	int argc = 0, rc;
	struct stat st;
	char paths[64][64];

	argv[argc++] = "cp";
	argv[argc++] = "-a";
	for (int i = 0; etc_copy[i] && argc < 120; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/etc/%s", etc_copy[i]);
		if (lstat(paths[i], &st) == 0)
			argv[argc++] = paths[i];
	}
	argv[argc++] = (char *)etc;
	argv[argc] = NULL;
	rc = spawn_run(argv, 60000, why, sizeof(why));
	if (rc)
		sbx_warn("copying /etc: %s", why);
	return 0;
}

static int local_create(struct sbx_provider *p, const char *box,
			const struct sbx_kvlist *args)
{
	struct local *l = L(p);
	struct sbx_kvlist cfg = { 0 };
	char dir[4096], sub[4200], id[13];
	unsigned char rnd[6];
	int rc, host;

	rc = config_from_args(&cfg, l, args);
	if (rc)
		goto out;
	rc = local_box_dir(dir, sizeof(dir), l, box, NULL);
	if (rc)
		goto out;
	if (mkdir(dir, 0700) < 0) {
		rc = -errno;
		if (rc == -EEXIST)
			sbx_failf("sandbox \"%s\" exists", box);
		goto out;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (int i = 0; i < 6; i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	sbx_kv_add(&cfg, "id", id);
	sbx_kv_addf(&cfg, "created", "%lld", (long long)time(NULL));
	host = !strcmp(sbx_kv_get(&cfg, "image"), "host");
	for (const char *const *d = host ? local_host_own_dirs : local_image_own_dirs; *d;
	     d++) {
		snprintf(sub, sizeof(sub), "%s/fs/%s", dir, *d);
		rc = sbx_mkdir_p(sub, 0755);
		if (rc)
			goto undo;
		if (!strcmp(*d, "tmp"))
			chmod(sub, 01777);
	}
	if (host) {
		snprintf(sub, sizeof(sub), "%s/fs/var/tmp", dir);
		mkdir(sub, 0755);
		chmod(sub, 01777);
		snprintf(sub, sizeof(sub), "%s/fs/etc", dir);
		populate_etc(sub);
		snprintf(sub, sizeof(sub), "%s/fs/etc/hostname", dir);
		FILE *f = fopen(sub, "we");
		if (f) {
			fprintf(f, "%s\n", box);
			fclose(f);
		}
	}
	rc = config_save(l, box, &cfg);
	if (!rc)
		goto out;
undo:
	sbx_failf("cannot create sandbox \"%s\": %s", box, strerror(-rc));
	{
		char why[256];

		sbx_remove_tree(dir, 60000, why, sizeof(why));
	}
out:
	sbx_kv_free(&cfg);
	return rc;
}

static int local_remove(struct sbx_provider *p, const char *box)
{
	struct local *l = L(p);
	struct local_box *b = local_box_get(l, box);
	char dir[4096], trash[4200], why[256];
	int rc;

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	local_box_kill_keeper_locked(b);
	local_box_close_view_locked(b);
	/* Rename first so the name is free at once and a crash leaves no
	 * half-deleted sandbox under its name. */
	local_box_dir(dir, sizeof(dir), l, box, NULL);
	snprintf(trash, sizeof(trash), "%s/.deleted-%s.%ld", l->dir, box,
		 (long)time(NULL));
	rc = rename(dir, trash) < 0 ? -errno : 0;
	pthread_mutex_unlock(&b->lock);
	if (!rc) {
		pthread_mutex_lock(&l->lock);
		b->deleted = 1;
		pthread_mutex_unlock(&l->lock);
	}
	if (rc) {
		sbx_failf("cannot delete sandbox \"%s\": %s", box, strerror(-rc));
		return rc;
	}
	if (sbx_remove_tree(trash, 600000, why, sizeof(why)))
		sbx_warn("removing \"%s\": %s", trash, why);
	return 0;
}

static int local_start(struct sbx_provider *p, const char *box)
{
	struct local_box *b = local_box_get(L(p), box);
	int rc = 0;

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	if (!local_box_running_locked(b))
		rc = local_box_spawn_locked(L(p), b, 1);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int local_stop(struct sbx_provider *p, const char *box)
{
	struct local_box *b = local_box_get(L(p), box);

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	local_box_kill_keeper_locked(b);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int local_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	struct local_box *b = local_box_get(L(p), box);
	struct sbx_kvlist cfg = { 0 };
	const char *v;
	int rc;

	if (!b)
		return -ENOENT;
	rc = local_config_load(&cfg, L(p), box);
	if (rc)
		return rc;
	pthread_mutex_lock(&b->lock);
	out->state = local_box_running_locked(b) ? SBX_STATE_RUNNING : SBX_STATE_STOPPED;
	if (b->keeper)
		sbx_kv_addf(&out->extra, "pid", "%d", (int)b->init);
	pthread_mutex_unlock(&b->lock);
	snprintf(out->id, sizeof(out->id), "%s", (v = sbx_kv_get(&cfg, "id")) ? v : "");
	snprintf(out->image, sizeof(out->image), "%s",
		 (v = sbx_kv_get(&cfg, "image")) ? v : "host");
	out->created = (v = sbx_kv_get(&cfg, "created")) ? (time_t)atoll(v) : 0;
	sbx_kv_add(&out->extra, "net", (v = sbx_kv_get(&cfg, "net")) ? v : "none");
	for (size_t i = 0; i < cfg.n; i++) {
		if (!strncmp(cfg.v[i].key, "label.", 6))
			sbx_kv_add(&out->extra, cfg.v[i].key, cfg.v[i].value);
		else if (!strncmp(cfg.v[i].key, "env.", 4))
			sbx_kv_add(&out->extra, cfg.v[i].key, "(set)");
	}
	sbx_kv_free(&cfg);
	return 0;
}

static const struct sbx_provider_ops local_ops = {
	.init = local_init,
	.destroy = local_destroy,
	.describe = local_describe,
	.list = local_list,
	.create = local_create,
	.remove = local_remove,
	.start = local_start,
	.stop = local_stop,
	.info = local_info,
	.getattr = local_getattr,
	.fgetattr = local_fgetattr,
	.readdir = local_readdir,
	.open = local_open,
	.read = local_read,
	.write = local_write,
	.fsync = local_fsync,
	.release = local_release,
	.mkdir = local_mkdir,
	.unlink = local_unlink,
	.rmdir = local_rmdir,
	.rename = local_rename,
	.chmod = local_chmod,
	.chown = local_chown,
	.truncate = local_truncate,
	.utimens = local_utimens,
	.symlink = local_symlink,
	.mknod = local_mknod,
	.readlink = local_readlink,
	.link = local_link,
	.statfs = local_statfs,
	.cmd_start = local_cmd_start,
	.cmd_stdin = local_cmd_stdin,
	.cmd_signal = local_cmd_signal,
	.cmd_release = local_cmd_release,
};

const struct sbx_provider_desc sbx_provider_local = {
	.name = "local",
	.caps = SBX_CAP_SYMLINK | SBX_CAP_HARDLINK | SBX_CAP_CHOWN | SBX_CAP_STDIN |
		SBX_CAP_RENAME_OVER | SBX_CAP_NO_FLUSH,
	/* Our own writes keep the kernel exact and commands run through exec
	 * invalidate when they end; only processes left running in the
	 * background change files unseen, for at most this long. */
	.attr_timeout = 5.0,
	.entry_timeout = 5.0,
	.ops = &local_ops,
};
