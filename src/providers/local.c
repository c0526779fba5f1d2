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
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/log.h"
#include "sbxfs/names.h"
#include "sbxfs/nsjoin.h"
#include "sbxfs/provider.h"
#include "sbxfs/spawn.h"

#define KEEPER_READY_MS 15000
/* The keeper's shell: says it is ready, then lives until its stdin closes. */
#define KEEPER_SCRIPT "echo ready; while read -r line; do :; done"
#define OUTPUT_GRACE_MS 1000 /* output read after the shell exits */
#define LISTING_MAX 1000000

/* The sandbox's own writable directories, for image=host and image=DIR. */
static const char *const host_own_dirs[] = { "etc", "root", "home", "tmp", "var",
					     "opt", "srv",  "mnt",  NULL };
static const char *const image_own_dirs[] = { "root", "home", "tmp", "var/tmp", NULL };
/* Host system directories shown read-only with image=host. */
static const char *const host_sys_dirs[] = { "usr",   "bin",   "sbin",	 "lib",
					     "lib32", "lib64", "libx32", NULL };
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

struct local_box {
	struct local_box *next;
	char name[SBX_NAME_MAX + 1];
	pthread_mutex_t lock; /* guards everything below */
	int rootfd;	      /* O_PATH root of the sandbox namespace, or -1 */
	int mntnsfd;	      /* its mount namespace, or -1 */
	pid_t keeper;	      /* bwrap, while running */
	pid_t init;	      /* the sandbox's pid 1, as the host sees it */
	int keeper_in;	      /* keeper's stdin: it lives while this is open */
	int deleted;	      /* guarded by local.lock: the sandbox was removed */
};

struct local {
	char *dir; /* STATE/local */
	char default_image[256];
	pthread_mutex_t lock; /* guards boxes */
	struct local_box *boxes;
	int live_cmds; /* atomic: command threads not yet finished */
};

struct local_cmd {
	pthread_mutex_t lock; /* guards pid (0 once reaped) and in_fd */
	pid_t pid;
	int in_fd, out_fd, err_fd;
	struct sbx_cmd_sink *sink;
	struct local *l;
};

/* ---- small helpers ---- */

/* Close both ends of a pipe that are still open. */
static void close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

static struct local *L(struct sbx_provider *p)
{
	return p->priv;
}

static int box_dir(char *out, size_t size, struct local *l, const char *box,
		   const char *sub)
{
	int n = snprintf(out, size, "%s/%s%s%s", l->dir, box, sub ? "/" : "",
			 sub ? sub : "");

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Read a whole small file (config) into a kv list. */
static int config_load(struct sbx_kvlist *out, struct local *l, const char *box)
{
	char path[4096], line[2048];
	FILE *f;
	int rc = box_dir(path, sizeof(path), l, box, "config");

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
	int rc = box_dir(path, sizeof(path), l, box, "config");

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
static struct local_box *box_get(struct local *l, const char *name)
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
	if (box_dir(path, sizeof(path), l, name, "config") || stat(path, &st) < 0)
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

/* ---- the keeper: bwrap building the sandbox's namespaces ---- */

static int add_arg(char **argv, int *argc, int max, const char *s)
{
	if (*argc >= max - 1)
		return -E2BIG;
	argv[(*argc)++] = (char *)s;
	argv[*argc] = NULL;
	return 0;
}

/* Strings for the argv that need storage. */
struct argstore {
	char buf[32768];
	size_t used;
};

static const char *store(struct argstore *as, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *store(struct argstore *as, const char *fmt, ...)
{
	va_list ap;
	char *s = as->buf + as->used;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s, sizeof(as->buf) - as->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(as->buf) - as->used)
		return "";
	as->used += (size_t)n + 1;
	return s;
}

static int keeper_argv(char **argv, int max, struct argstore *as, struct local *l,
		       const char *box, const struct sbx_kvlist *cfg)
{
	const char *image = sbx_kv_get(cfg, "image");
	const char *net = sbx_kv_get(cfg, "net");
	char fs[4096], link[4096];
	int argc = 0, rc = 0;
	struct stat st;

	if (box_dir(fs, sizeof(fs), l, box, "fs"))
		return -ENAMETOOLONG;
#define ARG(s)                                               \
	do {                                                 \
		if (!rc)                                     \
			rc = add_arg(argv, &argc, max, (s)); \
	} while (0)
	ARG("bwrap");
	ARG("--unshare-user");
	/* Root inside, mapped to the daemon's user: for an unprivileged
	 * caller, bwrap otherwise nests a second user namespace (for --dev),
	 * which commands could not join. */
	ARG("--uid");
	ARG("0");
	ARG("--gid");
	ARG("0");
	ARG("--unshare-pid");
	ARG("--unshare-ipc");
	ARG("--unshare-uts");
	ARG("--unshare-cgroup-try");
	if (!net || strcmp(net, "host"))
		ARG("--unshare-net");
	ARG("--die-with-parent");
	ARG("--hostname");
	ARG(box);
	if (!image || !strcmp(image, "host")) {
		for (int i = 0; host_sys_dirs[i]; i++) {
			const char *d = host_sys_dirs[i];
			char hp[64];
			ssize_t n;

			snprintf(hp, sizeof(hp), "/%s", d);
			if (lstat(hp, &st) < 0)
				continue;
			if (S_ISLNK(st.st_mode)) {
				n = readlink(hp, link, sizeof(link) - 1);
				if (n <= 0)
					continue;
				link[n] = '\0';
				ARG("--symlink");
				ARG(store(as, "%s", link));
				ARG(store(as, "%s", hp));
			} else if (S_ISDIR(st.st_mode)) {
				ARG("--ro-bind");
				ARG(store(as, "%s", hp));
				ARG(store(as, "%s", hp));
			}
		}
		for (int i = 0; host_own_dirs[i]; i++) {
			ARG("--bind");
			ARG(store(as, "%s/%s", fs, host_own_dirs[i]));
			ARG(store(as, "/%s", host_own_dirs[i]));
		}
	} else {
		ARG("--ro-bind");
		ARG(image);
		ARG("/");
		for (int i = 0; image_own_dirs[i]; i++) {
			char in_image[4200];

			snprintf(in_image, sizeof(in_image), "%s/%s", image,
				 image_own_dirs[i]);
			if (stat(in_image, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			ARG("--bind");
			ARG(store(as, "%s/%s", fs, image_own_dirs[i]));
			ARG(store(as, "/%s", image_own_dirs[i]));
		}
	}
	if (!image || !strcmp(image, "host")) {
		ARG("--proc");
		ARG("/proc");
		ARG("--dev");
		ARG("/dev");
		ARG("--chdir");
		ARG("/root");
		ARG("--remount-ro");
		ARG("/");
	} else {
		/* A read-only image gets /proc, /dev and a home only where it
		 * has the directories to mount them on. */
		static const char *const mounts[][2] = { { "proc", "--proc" },
							 { "dev", "--dev" } };

		for (int i = 0; i < 2; i++) {
			char in_image[4200];

			snprintf(in_image, sizeof(in_image), "%s/%s", image,
				 mounts[i][0]);
			if (stat(in_image, &st) == 0 && S_ISDIR(st.st_mode)) {
				ARG(mounts[i][1]);
				ARG(store(as, "/%s", mounts[i][0]));
			}
		}
		snprintf(link, sizeof(link), "%s/root", image);
		ARG("--chdir");
		ARG(stat(link, &st) == 0 && S_ISDIR(st.st_mode) ? "/root" : "/");
	}
	ARG("--info-fd");
	ARG("3");
#undef ARG
	return rc;
}

/* A pipe holding argv[1..] NUL-separated, for bwrap --args; the read end
 * is argsp[0].  The options are a few KiB: they fit in the pipe. */
static int keeper_args_pipe(int argsp[2], char *const argv[])
{
	if (pipe2(argsp, O_CLOEXEC))
		return -errno;
	for (int i = 1; argv[i]; i++) {
		size_t len = strlen(argv[i]) + 1;

		if (write(argsp[1], argv[i], len) != (ssize_t)len) {
			close_pipe(argsp);
			return -E2BIG;
		}
	}
	close(argsp[1]);
	argsp[1] = -1;
	return 0;
}

/* Read until `want` appears or the deadline; for the keeper's handshake. */
static int read_until(int fd, char *buf, size_t size, const char *want, int timeout_ms)
{
	size_t used = 0;

	buf[0] = '\0';
	while (used < size - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? -errno : -ETIMEDOUT;
		n = read(fd, buf + used, size - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, want))
			return 0;
	}
	return -E2BIG;
}

static void box_close_view_locked(struct local_box *b)
{
	if (b->rootfd >= 0)
		close(b->rootfd);
	if (b->mntnsfd >= 0)
		close(b->mntnsfd);
	b->rootfd = b->mntnsfd = -1;
}

/* Kill the keeper's PID namespace and reap it.  Lock held. */
static void box_kill_keeper_locked(struct local_box *b)
{
	if (!b->keeper)
		return;
	kill(b->init, SIGKILL);
	kill(b->keeper, SIGKILL);
	close(b->keeper_in);
	if (spawn_wait(b->keeper, 10000) < 0)
		sbx_warn("sandbox \"%s\": keeper %d did not exit", b->name,
			 (int)b->keeper);
	b->keeper = b->init = 0;
	b->keeper_in = -1;
}

/* Has the keeper died on its own?  Lock held. */
static int box_running_locked(struct local_box *b)
{
	int status;

	if (!b->keeper)
		return 0;
	if (waitpid(b->keeper, &status, WNOHANG) == b->keeper) {
		sbx_warn("sandbox \"%s\": its keeper exited unexpectedly", b->name);
		kill(b->init, SIGKILL);
		close(b->keeper_in);
		b->keeper = b->init = 0;
		b->keeper_in = -1;
		return 0;
	}
	return 1;
}

/*
 * Build the sandbox's namespaces with bwrap and take hold of its root and
 * mount namespace.  The keeper stays if `keep`, else it is killed once the
 * descriptors are held (a view for a stopped sandbox).  Lock held.
 */
static int box_spawn_locked(struct local *l, struct local_box *b, int keep)
{
	struct sbx_kvlist cfg = { 0 };
	struct argstore *as = NULL;
	char *argv[256], info[512], path[64], ready[64];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, inf[2] = { -1, -1 };
	int errp[2] = { -1, -1 }, argsp[2] = { -1, -1 };
	int rc, rootfd = -1, nsfd = -1;
	pid_t pid = 0, init = 0;
	char *p;

	rc = config_load(&cfg, l, b->name);
	if (rc)
		goto out;
	as = calloc(1, sizeof(*as));
	if (!as) {
		rc = -ENOMEM;
		goto out;
	}
	rc = keeper_argv(argv, 256, as, l, b->name, &cfg);
	if (rc)
		goto out;
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(inf, O_CLOEXEC) ||
	    pipe2(errp, O_CLOEXEC | O_NONBLOCK)) {
		rc = -errno;
		goto out;
	}
	/* The options go through a pipe (--args), not argv: the sandbox can
	 * read its pid 1's command line, which must not show host paths. */
	rc = keeper_args_pipe(argsp, argv);
	if (rc)
		goto out;
	{
		char *short_argv[] = { "bwrap",	  "--args", "4",	   "--",
				       "/bin/sh", "-c",	    KEEPER_SCRIPT, NULL };

		rc = spawn_start(&pid, short_argv, NULL, in[0], out[1], errp[1], inf[1],
				 argsp[0], 1);
	}
	close_pipe(argsp);
	if (rc) {
		sbx_failf("cannot run bwrap: %s", strerror(-rc));
		goto out;
	}
	close(in[0]);
	close(out[1]);
	close(inf[1]);
	close(errp[1]);
	in[0] = out[1] = inf[1] = errp[1] = -1;

	rc = read_until(inf[0], info, sizeof(info), "}", KEEPER_READY_MS);
	if (!rc)
		rc = read_until(out[0], ready, sizeof(ready), "ready\n", KEEPER_READY_MS);
	p = strstr(info, "\"child-pid\"");
	if (!rc && (!p || sscanf(p, "\"child-pid\" : %d", &init) != 1 || init <= 1))
		rc = -EPROTO;
	if (rc) {
		char why[256] = "";
		ssize_t n;

		/* bwrap says why on stderr: give the first line. */
		if (rc != -ETIMEDOUT && spawn_wait(pid, 2000) >= 0) {
			n = read(errp[0], why, sizeof(why) - 1);
			why[n > 0 ? n : 0] = '\0';
			why[strcspn(why, "\n")] = '\0';
		}
		sbx_failf("sandbox \"%s\" did not start: %s", b->name,
			  rc == -ETIMEDOUT ? "bwrap timed out"
			  : why[0]	   ? why
				   : "bwrap failed (are user namespaces allowed?)");
		rc = -EIO;
		goto fail;
	}
	snprintf(path, sizeof(path), "/proc/%d/root", init);
	rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", init);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rootfd < 0 || nsfd < 0) {
		rc = -errno;
		sbx_failf("sandbox \"%s\": cannot hold its namespace: %s", b->name,
			  strerror(errno));
		goto fail;
	}
	box_close_view_locked(b);
	b->rootfd = rootfd;
	b->mntnsfd = nsfd;
	rootfd = nsfd = -1;
	b->keeper = pid;
	b->init = init;
	b->keeper_in = in[1];
	in[1] = -1;
	if (!keep)
		box_kill_keeper_locked(b);
	goto out;
fail:
	if (init > 1)
		kill(init, SIGKILL);
	kill(pid, SIGKILL);
	spawn_wait(pid, 5000);
	if (rootfd >= 0)
		close(rootfd);
	if (nsfd >= 0)
		close(nsfd);
out:
	close_pipe(in);
	close_pipe(out);
	close_pipe(inf);
	close_pipe(errp);
	free(as);
	sbx_kv_free(&cfg);
	return rc;
}

/* A descriptor for the sandbox's root (the caller closes it). */
static int box_root(struct sbx_provider *p, const char *box)
{
	struct local_box *b = box_get(L(p), box);
	int fd, rc = 0;

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	if (b->rootfd < 0)
		rc = box_spawn_locked(L(p), b, 0);
	fd = rc ? rc : fcntl(b->rootfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 && !rc)
		fd = -errno;
	pthread_mutex_unlock(&b->lock);
	return fd;
}

/* ---- path resolution inside the sandbox ---- */

static int open_in(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode & 07777) : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	const char *rel = path[1] ? path + 1 : ".";
	long fd;

	do
		fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

/*
 * Resolve everything but the last component of `path`: an O_PATH descriptor
 * of the parent directory, and in *base the last component.  "/" has no
 * parent: -EBUSY.
 */
static int open_parent(struct sbx_provider *p, const char *box, const char *path,
		       const char **base)
{
	char parent[4096];
	const char *slash = strrchr(path, '/');
	size_t n = (size_t)(slash - path);
	int root, fd;

	if (!slash[1])
		return -EBUSY;
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	if (!n)
		strcpy(parent, "/");
	*base = slash + 1;
	root = box_root(p, box);
	if (root < 0)
		return root;
	fd = open_in(root, parent, O_PATH | O_DIRECTORY, 0);
	close(root);
	return fd;
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
		box_kill_keeper_locked(b);
		box_close_view_locked(b);
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
	rc = box_dir(dir, sizeof(dir), l, box, NULL);
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
	for (const char *const *d = host ? host_own_dirs : image_own_dirs; *d; d++) {
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
	struct local_box *b = box_get(l, box);
	char dir[4096], trash[4200], why[256];
	int rc;

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	box_kill_keeper_locked(b);
	box_close_view_locked(b);
	/* Rename first so the name is free at once and a crash leaves no
	 * half-deleted sandbox under its name. */
	box_dir(dir, sizeof(dir), l, box, NULL);
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
	struct local_box *b = box_get(L(p), box);
	int rc = 0;

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	if (!box_running_locked(b))
		rc = box_spawn_locked(L(p), b, 1);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static int local_stop(struct sbx_provider *p, const char *box)
{
	struct local_box *b = box_get(L(p), box);

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	box_kill_keeper_locked(b);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int local_info(struct sbx_provider *p, struct sbx_box_info *out, const char *box)
{
	struct local_box *b = box_get(L(p), box);
	struct sbx_kvlist cfg = { 0 };
	const char *v;
	int rc;

	if (!b)
		return -ENOENT;
	rc = config_load(&cfg, L(p), box);
	if (rc)
		return rc;
	pthread_mutex_lock(&b->lock);
	out->state = box_running_locked(b) ? SBX_STATE_RUNNING : SBX_STATE_STOPPED;
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

/* ---- file slots ---- */

static int local_getattr(struct sbx_provider *p, struct stat *out, const char *box,
			 const char *path)
{
	const char *base;
	int fd, rc = 0;

	if (!strcmp(path, "/")) {
		fd = box_root(p, box);
		if (fd < 0)
			return fd;
		if (fstat(fd, out) < 0)
			rc = -errno;
		close(fd);
		return rc;
	}
	fd = open_parent(p, box, path, &base);
	if (fd < 0)
		return fd;
	if (fstatat(fd, base, out, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int local_readdir(struct sbx_provider *p, const char *box, const char *path,
			 sbx_dirent_fn fn, void *ctx)
{
	int root = box_root(p, box), fd;
	struct dirent *de;
	struct stat st;
	size_t count = 0;
	DIR *d;
	int rc = 0;

	if (root < 0)
		return root;
	fd = open_in(root, path, O_RDONLY | O_DIRECTORY, 0);
	close(root);
	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (++count > LISTING_MAX) {
			sbx_failf("directory \"%s\" has more than %d entries", path,
				  LISTING_MAX);
			rc = -EFBIG;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		rc = fn(ctx, de->d_name, &st);
	}
	closedir(d);
	return rc > 0 ? 0 : rc;
}

static int local_open(struct sbx_provider *p, uint64_t *fh, struct stat *st,
		      const char *box, const char *path, int flags, mode_t mode,
		      const struct stat *known)
{
	(void)known; /* the file itself is at hand */
	int root = box_root(p, box), fd;

	if (root < 0)
		return root;
	fd = open_in(root, path, (flags & ~O_NOCTTY) | O_NOFOLLOW, mode);
	close(root);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		int rc = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;

		close(fd);
		return rc;
	}
	*fh = (uint64_t)fd;
	return 0;
}

static int local_fgetattr(struct sbx_provider *p, struct stat *out, uint64_t fh)
{
	return fstat((int)fh, out) < 0 ? -errno : 0;
}

static ssize_t local_read(struct sbx_provider *p, uint64_t fh, char *buf, size_t size,
			  off_t off)
{
	ssize_t n = pread((int)fh, buf, size, off);

	return n < 0 ? -errno : n;
}

static ssize_t local_write(struct sbx_provider *p, uint64_t fh, const char *buf,
			   size_t size, off_t off)
{
	ssize_t n = pwrite((int)fh, buf, size, off);

	return n < 0 ? -errno : n;
}

static int local_fsync(struct sbx_provider *p, uint64_t fh, int datasync)
{
	int rc = datasync ? fdatasync((int)fh) : fsync((int)fh);

	return rc < 0 ? -errno : 0;
}

static int local_release(struct sbx_provider *p, uint64_t fh)
{
	return close((int)fh) < 0 ? -errno : 0;
}

/* Run fn on (parent descriptor, last component). */
#define AT_PARENT(p, box, path, call)                             \
	do {                                                      \
		const char *base;                                 \
		int pfd = open_parent((p), (box), (path), &base); \
		int rc_ = 0;                                      \
		if (pfd < 0)                                      \
			return pfd;                               \
		if ((call) < 0)                                   \
			rc_ = -errno;                             \
		close(pfd);                                       \
		return rc_;                                       \
	} while (0)

static int local_mkdir(struct sbx_provider *p, const char *box, const char *path,
		       mode_t mode)
{
	AT_PARENT(p, box, path, mkdirat(pfd, base, mode));
}

static int local_unlink(struct sbx_provider *p, const char *box, const char *path)
{
	AT_PARENT(p, box, path, unlinkat(pfd, base, 0));
}

static int local_rmdir(struct sbx_provider *p, const char *box, const char *path)
{
	AT_PARENT(p, box, path, unlinkat(pfd, base, AT_REMOVEDIR));
}

static int local_chmod(struct sbx_provider *p, const char *box, const char *path,
		       mode_t mode)
{
	if (!strcmp(path, "/"))
		return -EROFS;
	AT_PARENT(p, box, path, fchmodat(pfd, base, mode, AT_SYMLINK_NOFOLLOW));
}

static int local_chown(struct sbx_provider *p, const char *box, const char *path,
		       uid_t uid, gid_t gid)
{
	if (!strcmp(path, "/"))
		return -EROFS;
	AT_PARENT(p, box, path, fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int local_utimens(struct sbx_provider *p, const char *box, const char *path,
			 const struct timespec ts[2])
{
	if (!strcmp(path, "/"))
		return -EROFS;
	AT_PARENT(p, box, path, utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW));
}

static int local_symlink(struct sbx_provider *p, const char *box, const char *target,
			 const char *path)
{
	AT_PARENT(p, box, path, symlinkat(target, pfd, base));
}

static int local_readlink(struct sbx_provider *p, char *buf, size_t size, const char *box,
			  const char *path)
{
	const char *base;
	int pfd = open_parent(p, box, path, &base);
	ssize_t n;

	if (pfd < 0)
		return pfd;
	n = readlinkat(pfd, base, buf, size);
	close(pfd);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

static int local_truncate(struct sbx_provider *p, const char *box, const char *path,
			  off_t size)
{
	int root = box_root(p, box), fd, rc = 0;

	if (root < 0)
		return root;
	fd = open_in(root, path, O_WRONLY | O_NOFOLLOW, 0);
	close(root);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int two_parents(struct sbx_provider *p, const char *box, const char *from,
		       const char *to, int *fa, const char **ba, int *fb, const char **bb)
{
	*fa = open_parent(p, box, from, ba);
	if (*fa < 0)
		return *fa;
	*fb = open_parent(p, box, to, bb);
	if (*fb < 0) {
		close(*fa);
		return *fb;
	}
	return 0;
}

static int local_rename(struct sbx_provider *p, const char *box, const char *from,
			const char *to, unsigned flags)
{
	const char *ba, *bb;
	int fa, fb, rc = two_parents(p, box, from, to, &fa, &ba, &fb, &bb);

	if (rc)
		return rc;
	if (renameat2(fa, ba, fb, bb, flags) < 0)
		rc = -errno;
	close(fa);
	close(fb);
	return rc;
}

static int local_link(struct sbx_provider *p, const char *box, const char *from,
		      const char *to)
{
	const char *ba, *bb;
	int fa, fb, rc = two_parents(p, box, from, to, &fa, &ba, &fb, &bb);

	if (rc)
		return rc;
	if (linkat(fa, ba, fb, bb, 0) < 0)
		rc = -errno;
	close(fa);
	close(fb);
	return rc;
}

static int local_statfs(struct sbx_provider *p, struct statvfs *out, const char *box,
			const char *path)
{
	int root = box_root(p, box), fd, rc = 0;

	if (root < 0)
		return root;
	fd = open_in(root, path, O_PATH, 0);
	close(root);
	if (fd < 0)
		return fd;
	if (fstatvfs(fd, out) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* ---- commands: joined to the keeper's namespaces (nsjoin.c) ---- */

static void cmd_reap_locked(struct local_cmd *c, struct sbx_exit *ex)
{
	int status;

	if (waitpid(c->pid, &status, 0) == c->pid) {
		if (WIFSIGNALED(status)) {
			ex->how = SBX_EXIT_SIGNAL;
			ex->code = WTERMSIG(status);
		} else {
			ex->how = SBX_EXIT_CODE;
			ex->code = WEXITSTATUS(status);
		}
	} else {
		ex->how = SBX_EXIT_FAILED;
		snprintf(ex->reason, sizeof(ex->reason), "lost: %s", strerror(errno));
	}
	c->pid = 0;
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

/* Forward output until the shell has exited and its pipes are closed (or
 * a grace period after the exit, so a background job holding the pipe does
 * not keep the command "running" forever). */
static void *cmd_thread(void *arg)
{
	struct local_cmd *c = arg;
	struct sbx_cmd_sink *sink = c->sink;
	struct local *l = c->l;
	struct sbx_exit ex = { 0 };
	struct pollfd pfd[2] = { { .fd = c->out_fd, .events = POLLIN },
				 { .fd = c->err_fd, .events = POLLIN } };
	long long deadline = 0;
	char buf[65536];
	siginfo_t si;

	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		int timeout = 200, r;

		if (deadline) {
			timeout = (int)(deadline - ms_now());
			if (timeout <= 0)
				break;
		}
		r = poll(pfd, 2, timeout);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2 && r > 0; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n > 0) {
				sink->output(sink,
					     i ? SBX_STREAM_STDERR : SBX_STREAM_STDOUT,
					     buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
		}
		memset(&si, 0, sizeof(si));
		if (!deadline &&
		    waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid)
			deadline = ms_now() + OUTPUT_GRACE_MS;
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	pthread_mutex_lock(&c->lock);
	cmd_reap_locked(c, &ex);
	pthread_mutex_unlock(&c->lock);
	sink->done(sink, &ex);
	__atomic_sub_fetch(&l->live_cmds, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int cmd_env(char **envp, int max, char store[][1024], const struct sbx_kvlist *cfg)
{
	int n = 0;

	envp[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	envp[n++] = "HOME=/root";
	envp[n++] = "LANG=C.UTF-8";
	envp[n++] = "TERM=dumb";
	for (size_t i = 0; i < cfg->n && n < max - 1; i++) {
		if (strncmp(cfg->v[i].key, "env.", 4))
			continue;
		snprintf(store[n], 1024, "%s=%s", cfg->v[i].key + 4, cfg->v[i].value);
		envp[n] = store[n];
		n++;
	}
	envp[n] = NULL;
	return n;
}

static int local_cmd_start(struct sbx_provider *p, void **handle, const char *box,
			   const char *cmdline, struct sbx_cmd_sink *sink)
{
	struct local_box *b = box_get(L(p), box);
	struct sbx_kvlist cfg = { 0 };
	char *envp[40];
	char envstore[40][1024];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	struct local_cmd *c = NULL;
	const char *net;
	pthread_t tid;
	pid_t pid;
	int rc;

	if (!b)
		return -ENOENT;
	rc = config_load(&cfg, L(p), box);
	if (rc)
		return rc;
	net = sbx_kv_get(&cfg, "net");
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&b->lock);
	if (!box_running_locked(b)) {
		pthread_mutex_unlock(&b->lock);
		sbx_failf("sandbox \"%s\" is not running (write \"start\" to its ctl)",
			  box);
		rc = -EAGAIN;
		goto out;
	}
	{
		char *argv[] = { "/bin/sh", "-c", (char *)cmdline, NULL };
		struct nsjoin j = {
			.target = b->init,
			/* net=host shares the host's: nothing to join. */
			.join_net = !(net && !strcmp(net, "host")),
			.argv = argv,
			.envp = envp,
			.cwd = "/root",
			.fd_in = in[0],
			.fd_out = out[1],
			.fd_err = err[1],
		};

		cmd_env(envp, 40, envstore, &cfg);
		rc = nsjoin_spawn(&pid, &j);
	}
	pthread_mutex_unlock(&b->lock);
	if (rc)
		goto out;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	pthread_mutex_init(&c->lock, NULL);
	c->pid = pid;
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = err[0];
	c->sink = sink;
	c->l = L(p);
	in[1] = out[0] = err[0] = -1;
	__atomic_add_fetch(&c->l->live_cmds, 1, __ATOMIC_RELAXED);
	rc = pthread_create(&tid, NULL, cmd_thread, c);
	if (rc) {
		__atomic_sub_fetch(&c->l->live_cmds, 1, __ATOMIC_RELAXED);
		kill(-pid, SIGKILL);
		spawn_wait(pid, 5000);
		close(c->in_fd);
		close(c->out_fd);
		close(c->err_fd);
		rc = -rc;
		goto out;
	}
	pthread_detach(tid);
	*handle = c;
	c = NULL;
out:
	free(c);
	close_pipe(in);
	close_pipe(out);
	close_pipe(err);
	sbx_kv_free(&cfg);
	return rc;
}

static ssize_t local_cmd_stdin(struct sbx_provider *p, void *handle, const char *data,
			       size_t len, const volatile int *interrupted)
{
	struct local_cmd *c = handle;
	size_t done = 0;
	int fd;

	/* Write through a duplicate so that a blocked writer holds no lock:
	 * a kill must get through while the command does not read. */
	pthread_mutex_lock(&c->lock);
	fd = c->in_fd < 0 ? -1 : fcntl(c->in_fd, F_DUPFD_CLOEXEC, 0);
	if (len == 0 && c->in_fd >= 0) {
		close(c->in_fd);
		c->in_fd = -1;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd < 0)
		return -EPIPE;
	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = write(fd, data + done, len - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (*interrupted) {
			errno = EINTR;
			break;
		}
		poll(&pfd, 1, 200);
	}
	if (done < len && !done)
		done = (size_t)-errno;
	close(fd);
	return (ssize_t)done;
}

/*
 * Signal every process of group `pgid` but its leader.  The leader is
 * the join helper, which would die of a TERM the command itself ignores; it exits
 * with the command's own status (or re-raises its signal) by itself.
 */
static int signal_group_but_leader(pid_t pgid, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[64], buf[512], *rp;
		long pid = strtol(de->d_name, &rp, 10);
		int pgrp = 0, fd;
		ssize_t n;

		if (*rp || pid <= 0 || pid == pgid)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		rp = strrchr(buf, ')'); /* the name may hold anything */
		if (rp && sscanf(rp + 1, " %*c %*d %d", &pgrp) == 1 && pgrp == pgid &&
		    kill((pid_t)pid, sig) == 0)
			found = 1;
	}
	closedir(d);
	return found ? 0 : -ESRCH;
}

static int local_cmd_signal(struct sbx_provider *p, void *handle, int sig)
{
	struct local_cmd *c = handle;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = c->pid ? signal_group_but_leader(c->pid, sig) : -ESRCH;
	/* Just after the start the helper may not have forked the shell yet. */
	for (int i = 0; rc == -ESRCH && c->pid && i < 100; i++) {
		usleep(10000);
		rc = signal_group_but_leader(c->pid, sig);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void local_cmd_release(struct sbx_provider *p, void *handle)
{
	struct local_cmd *c = handle;

	if (c->in_fd >= 0)
		close(c->in_fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
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
