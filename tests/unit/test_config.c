/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbxfs/config.h"
#include "test.h"

static int known(const char *key)
{
	return !strcmp(key, "attr_timeout") || !strcmp(key, "api_key") ||
	       !strcmp(key, "provider") || !strcmp(key, "api_url");
}

/* Load text written to a file of `mode`: the result, the reason in why. */
static int load(struct config *c, const char *text, mode_t mode, char *why, size_t size)
{
	char path[] = "/tmp/sbxfs-config-XXXXXX";
	int fd = mkstemp(path), rc;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -EIO;
	fchmod(fd, mode);
	close(fd);
	why[0] = '\0';
	rc = config_load(c, path, known, why, size);
	unlink(path);
	return rc;
}

void test_config(void)
{
	struct config c;
	char why[512];

	CHECK(load(&c,
		   "# sbxfs\n\n  provider = daytona  \nattr_timeout=7\n[daytona]\n"
		   "api_key = a = b \n\t# indented comment\n[local]\nattr_timeout = 3\n",
		   0600, why, sizeof(why)) == 0);
	CHECK(c.n == 4);
	CHECK(!c.v[0].section && !strcmp(c.v[0].key, "provider") &&
	      !strcmp(c.v[0].value, "daytona") && c.v[0].line == 3);
	CHECK(!strcmp(c.v[1].value, "7"));
	CHECK(!strcmp(c.v[2].section, "daytona") && !strcmp(c.v[2].value, "a = b"));
	CHECK(!strcmp(c.v[3].section, "local") && c.v[3].line == 9);
	config_free(&c);

	/* Malformed lines: the reason with the line number. */
	CHECK(load(&c, "attr_timeout = 1\nwhat\n", 0600, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, ":2: expected \"key = value\"") != NULL);
	CHECK(load(&c, "nope = 1\n", 0600, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, ":1: unknown key \"nope\"") != NULL);
	CHECK(load(&c, "[daytona\n", 0600, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, ":1: a section is") != NULL);
	CHECK(load(&c, "[x]\nprovider = local\n", 0600, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, ":2:") != NULL);
	CHECK(load(&c, "[a/b]\n", 0600, why, sizeof(why)) == -EINVAL);

	/* A credential in a file others may read: refused, and why. */
	CHECK(load(&c, "[daytona]\napi_key = k\n", 0644, why, sizeof(why)) == -EPERM);
	CHECK(strstr(why, "api_key, line 2") && strstr(why, "0644") &&
	      strstr(why, "chmod 600"));
	CHECK(!strstr(why, "= k"));
	CHECK(load(&c, "attr_timeout = 1\n", 0644, why, sizeof(why)) == 0);
	config_free(&c);
	CHECK(config_secret("token") && config_secret("api_key") &&
	      !config_secret("api_url"));

	CHECK(config_load(&c, "/nonexistent/sbxfs/config", known, why, sizeof(why)) ==
	      -ENOENT);
}
