/* SPDX-License-Identifier: MIT */
/* sbxfs --check, the host's part: see check.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbxfs/check.h"
#include "sbxfs/spawn.h"

void check_report(struct check *c, int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(c->out, "%-4s %s: ", ok ? "ok" : "FAIL", what);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	if (!ok)
		c->failed++;
}

/* The path of program `name` in PATH into out, or -ENOENT. */
static int in_path(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path && *path ? path : "/usr/bin:/bin"), *dir, *save = NULL;
	int rc = -ENOENT;

	for (dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && rc;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, size, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			rc = 0;
	}
	free(copy);
	return rc;
}

void check_host(struct check *c, const char *provider)
{
	char path[4096], why[256];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		check_report(c, 1, "FUSE", "/dev/fuse");
	} else {
		check_report(
			c, 0, "FUSE",
			"cannot open /dev/fuse (%s): load the module (modprobe fuse); "
			"in a container, pass the device (--device /dev/fuse)",
			strerror(errno));
	}
	if (in_path("fusermount3", path, sizeof(path)) == 0)
		check_report(c, 1, "fusermount3", "%s", path);
	else
		check_report(c, 0, "fusermount3",
			     "not found (an ordinary user needs it to mount and "
			     "unmount): apt-get install fuse3");
	if (strcmp(provider, "local"))
		return;
	if (in_path("bwrap", path, sizeof(path))) {
		check_report(c, 0, "bubblewrap",
			     "bwrap not found (local sandboxes are its namespaces): "
			     "apt-get install bubblewrap");
		return;
	}
	check_report(c, 1, "bubblewrap", "%s", path);
	{
		/* What a local sandbox needs of the kernel: a user, PID and
		 * mount namespace, as bwrap makes them. */
		char *argv[] = { "bwrap",
				 "--unshare-user",
				 "--uid",
				 "0",
				 "--gid",
				 "0",
				 "--unshare-pid",
				 "--dev",
				 "/dev",
				 "--ro-bind",
				 "/",
				 "/",
				 "true",
				 NULL };
		int rc = spawn_run(argv, 10000, why, sizeof(why));

		if (rc == 0)
			check_report(c, 1, "user namespaces", "bwrap made one");
		else
			check_report(c, 0, "user namespaces",
				     "bwrap could not make a sandbox (%s): allow "
				     "unprivileged user namespaces (sysctl "
				     "kernel.unprivileged_userns_clone=1, and on Ubuntu "
				     "kernel.apparmor_restrict_unprivileged_userns=0), "
				     "or run sbxfs as root",
				     rc > 0 ? why : strerror(-rc));
	}
}
