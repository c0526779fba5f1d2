/* SPDX-License-Identifier: MIT */
/* Shell quoting and the base64 wrapper: what /bin/sh gets back must be the
 * bytes we meant, whatever they are. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/shell.h"
#include "test.h"

/* Run sh_signal_marked()'s script for `marker` and `sig`: its exit
 * status. */
static int signal_marked(const char *marker, int sig)
{
	struct strbuf s = STRBUF_INIT(1 << 16);
	int status = -1;

	if (!sh_signal_marked(&s, marker, sig))
		status = system(s.buf);
	strbuf_release(&s);
	return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A command's process, marked as sbxfs marks it, is found among the
 * others and signalled; one of another marker is left alone. */
static void check_signal_marked(void)
{
	char marker[64], env[96], other[96];
	int status;
	pid_t mine, theirs;

	snprintf(marker, sizeof(marker), "unit.%d", (int)getpid());
	snprintf(env, sizeof(env), SH_CMD_ENV "%s", marker);
	snprintf(other, sizeof(other), SH_CMD_ENV "%s.other", marker);
	mine = fork();
	if (mine == 0) {
		char *const envp[] = { env, NULL };

		execle("/bin/sleep", "sleep", "100", (char *)NULL, envp);
		_exit(127);
	}
	theirs = fork();
	if (theirs == 0) {
		char *const envp[] = { other, NULL };

		execle("/bin/sleep", "sleep", "100", (char *)NULL, envp);
		_exit(127);
	}
	CHECK(mine > 0 && theirs > 0);
	CHECK(signal_marked(marker, SIGSTOP) == 0);
	CHECK(waitpid(mine, &status, WUNTRACED) == mine && WIFSTOPPED(status));
	CHECK(signal_marked(marker, SIGTERM) == 0);
	CHECK(waitpid(mine, &status, 0) == mine && WIFSIGNALED(status) &&
	      WTERMSIG(status) == SIGTERM);
	CHECK(waitpid(theirs, &status, WNOHANG) == 0); /* still asleep */
	kill(theirs, SIGKILL);
	waitpid(theirs, &status, 0);
	CHECK(signal_marked(marker, 0) == -1); /* no script for signal 0 */
}

/* Run `printf %s WORD` through /bin/sh and compare the output with s. */
static int round_trips(const char *s)
{
	struct strbuf cmd = STRBUF_INIT(1 << 16);
	char out[512];
	size_t n;
	FILE *p;
	int ok;

	strbuf_addf(&cmd, "printf %%s ");
	sh_quote(&cmd, s);
	p = popen(cmd.buf, "r");
	strbuf_release(&cmd);
	if (!p)
		return 0;
	n = fread(out, 1, sizeof(out), p);
	ok = pclose(p) == 0 && n == strlen(s) && !memcmp(out, s, n);
	return ok;
}

void test_shell(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	static const char *const words[] = {
		"plain",       "with space",	   "it's", "'",
		"''",	       "$HOME `id` $(id)", "a\nb", "-n",
		"back\\slash", "caf\xe9 \xff",
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		CHECK(round_trips(words[i]));
	check_signal_marked();

	b64_encode(&sb, "", 0);
	CHECK(sb.len == 0);
	b64_encode(&sb, "f", 1);
	CHECK(!strcmp(sb.buf, "Zg=="));
	strbuf_release(&sb);
	b64_encode(&sb, "foobar", 6);
	CHECK(!strcmp(sb.buf, "Zm9vYmFy"));
	strbuf_release(&sb);
	b64_encode(&sb, "\xff\xfe", 2);
	CHECK(!strcmp(sb.buf, "//4="));
	strbuf_release(&sb);

	/* The wrapper is plain ASCII and runs the script as given. */
	sh_wrap_base64(&sb, "SBXFS_T=1", "printf '%s' \"$SBXFS_T caf\xc3\xa9\"");
	for (size_t i = 0; i < sb.len; i++)
		CHECK((unsigned char)sb.buf[i] < 0x80);
	{
		FILE *p = popen(sb.buf, "r");
		char out[64] = "";
		size_t n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;

		CHECK(p && pclose(p) == 0);
		out[n] = '\0';
		CHECK(!strcmp(out, "1 caf\xc3\xa9"));
	}
	strbuf_release(&sb);
}
