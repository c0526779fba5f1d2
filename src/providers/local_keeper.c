/* SPDX-License-Identifier: MIT */
/*
 * The local provider's keeper: bwrap building a sandbox's namespaces, with
 * a shell that lives while its stdin is open, and the descriptors of the
 * sandbox's root and mount namespace that root/ is resolved from.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbxfs/fsutil.h"
#include "sbxfs/log.h"
#include "sbxfs/provider.h"
#include "sbxfs/spawn.h"
#include "local.h"

#define KEEPER_READY_MS 15000
/* The keeper's shell: says it is ready, then lives until its stdin closes. */
#define KEEPER_SCRIPT "echo ready; while read -r line; do :; done"

/* Host system directories shown read-only with image=host. */
static const char *const host_sys_dirs[] = { "usr",   "bin",   "sbin",	 "lib",
					     "lib32", "lib64", "libx32", NULL };

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

	if (local_box_dir(fs, sizeof(fs), l, box, "fs"))
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
		for (int i = 0; local_host_own_dirs[i]; i++) {
			ARG("--bind");
			ARG(store(as, "%s/%s", fs, local_host_own_dirs[i]));
			ARG(store(as, "/%s", local_host_own_dirs[i]));
		}
	} else {
		ARG("--ro-bind");
		ARG(image);
		ARG("/");
		for (int i = 0; local_image_own_dirs[i]; i++) {
			char in_image[4200];

			snprintf(in_image, sizeof(in_image), "%s/%s", image,
				 local_image_own_dirs[i]);
			if (stat(in_image, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			ARG("--bind");
			ARG(store(as, "%s/%s", fs, local_image_own_dirs[i]));
			ARG(store(as, "/%s", local_image_own_dirs[i]));
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
			local_close_pipe(argsp);
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

void local_box_close_view_locked(struct local_box *b)
{
	if (b->rootfd >= 0)
		close(b->rootfd);
	if (b->mntnsfd >= 0)
		close(b->mntnsfd);
	b->rootfd = b->mntnsfd = -1;
}

/* Kill the keeper's PID namespace and reap it.  Lock held. */
void local_box_kill_keeper_locked(struct local_box *b)
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
int local_box_running_locked(struct local_box *b)
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
int local_box_spawn_locked(struct local *l, struct local_box *b, int keep)
{
	struct sbx_kvlist cfg = { 0 };
	struct argstore *as = NULL;
	char *argv[256], info[512], path[64], ready[64];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, inf[2] = { -1, -1 };
	int errp[2] = { -1, -1 }, argsp[2] = { -1, -1 };
	int rc, rootfd = -1, nsfd = -1;
	pid_t pid = 0, init = 0;
	char *p;

	rc = local_config_load(&cfg, l, b->name);
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
	local_close_pipe(argsp);
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
	local_box_close_view_locked(b);
	b->rootfd = rootfd;
	b->mntnsfd = nsfd;
	rootfd = nsfd = -1;
	b->keeper = pid;
	b->init = init;
	b->keeper_in = in[1];
	in[1] = -1;
	if (!keep)
		local_box_kill_keeper_locked(b);
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
	local_close_pipe(in);
	local_close_pipe(out);
	local_close_pipe(inf);
	local_close_pipe(errp);
	free(as);
	sbx_kv_free(&cfg);
	return rc;
}

/* A descriptor for the sandbox's root (the caller closes it). */
int local_box_root(struct sbx_provider *p, const char *box)
{
	struct local_box *b = local_box_get(L(p), box);
	int fd, rc = 0;

	if (!b)
		return -ENOENT;
	pthread_mutex_lock(&b->lock);
	if (b->rootfd < 0)
		rc = local_box_spawn_locked(L(p), b, 0);
	fd = rc ? rc : fcntl(b->rootfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 && !rc)
		fd = -errno;
	pthread_mutex_unlock(&b->lock);
	return fd;
}
