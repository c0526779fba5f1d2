/* SPDX-License-Identifier: MIT */
/*
 * The remote layer's pure parts: base64, times, UTF-8, find(1) records,
 * and POSIX over a shell, whose scripts run here with /bin/sh in a
 * temporary directory and must exit with the errno the call would give.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbxfs/remote/base64.h"
#include "sbxfs/remote/cmdpoll.h"
#include "sbxfs/remote/endmark.h"
#include "sbxfs/remote/errmap.h"
#include "sbxfs/remote/find.h"
#include "sbxfs/remote/json.h"
#include "sbxfs/remote/opts.h"
#include "sbxfs/remote/shell.h"
#include "sbxfs/remote/time.h"
#include "sbxfs/provider.h"
#include "test.h"

static void check_base64(void)
{
	struct b64_decoder d = B64_DECODER_INIT;
	struct strbuf sb = STRBUF_INIT(8);
	unsigned char out[64];

	CHECK(b64_decode(out, "", 0) == 0);
	CHECK(b64_decode(out, "aGk=", 4) == 2 && !memcmp(out, "hi", 2));
	CHECK(b64_decode(out, "aGVs\nbG8=\n", 10) == 5 && !memcmp(out, "hello", 5));
	CHECK(b64_decode(out, "AP/+", 4) == 3 && out[0] == 0 && out[1] == 0xff &&
	      out[2] == 0xfe);
	CHECK(b64_decode(out, "aGk", 3) == 2); /* padding may be left out */
	CHECK(b64_decode(out, "a", 1) == -1);
	CHECK(b64_decode(out, "aG!=", 4) == -1);
	CHECK(b64_decode(out, "aG=k", 4) == -1);
	CHECK(b64_decode(out, "a===", 4) == -1);
	CHECK(b64_decode(out, "aGk=aGk=", 8) == -1); /* data after padding */

	/* Streaming: any split gives the same bytes; the strbuf bounds it. */
	CHECK(b64_feed(&d, &sb, "aG", 2) == 0 && b64_feed(&d, &sb, "VsbG", 4) == 0 &&
	      b64_feed(&d, &sb, "8=", 2) == 0 && b64_finish(&d, &sb) == 0);
	CHECK(sb.len == 5 && !memcmp(sb.buf, "hello", 5));
	CHECK(b64_feed(&d, &sb, "aGVsbG8=", 8) == -E2BIG);
	strbuf_release(&sb);
	d = (struct b64_decoder)B64_DECODER_INIT;
	CHECK(b64_feed(&d, &sb, "aGV", 3) == 0 && b64_finish(&d, &sb) == 0 &&
	      sb.len == 2);
	CHECK(b64_feed(&d, &sb, "Q", 1) == 0 && b64_finish(&d, &sb) == -EPROTO);
	strbuf_release(&sb);
}

/* Base64 decoded the slow, plain way, a character at a time: what the
 * decoder's whole-group path must agree with. */
static ssize_t plain_b64(unsigned char *out, const char *in, size_t len)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0;
	int n = 0, pad = 0;
	ssize_t o = 0;

	for (size_t i = 0; i < len; i++) {
		const char *at = in[i] ? strchr(digits, in[i]) : NULL;

		if (strchr(" \n\r\t", in[i]) && in[i])
			continue;
		if (in[i] == '=') {
			if (n < 2)
				return -1;
			pad++;
		} else if (!at || pad) {
			return -1;
		}
		v = v << 6 | (unsigned)(at ? at - digits : 0);
		if (++n == 4) {
			out[o++] = (unsigned char)(v >> 16);
			out[o++] = (unsigned char)(v >> 8);
			out[o++] = (unsigned char)v;
			o -= pad;
			v = 0;
			n = 0;
		}
	}
	if (n == 0)
		return o;
	if (n - pad < 2)
		return -1;
	for (int i = n; i < 4; i++)
		v <<= 6;
	out[o++] = (unsigned char)(v >> 16);
	if (n - pad == 3)
		out[o++] = (unsigned char)(v >> 8);
	return o;
}

/* Random text, mostly digits, now and then a space, a line break, '='
 * or a stray byte, decoded whole and in pieces; past 16 KiB too, where
 * b64_feed() works in slices. */
static void check_base64_differential(void)
{
	enum { MAX = 40000 };
	char *in = malloc(MAX);
	unsigned char *want = malloc(B64_DECODED_MAX(MAX)),
		      *got = malloc(B64_DECODED_MAX(MAX));
	unsigned seed = 7;

	for (int round = 0; in && want && got && round < 400; round++) {
		size_t len = (size_t)(rand_r(&seed) % (round < 300 ? 64 : MAX));
		struct strbuf sb = STRBUF_INIT(B64_DECODED_MAX(MAX));
		struct b64_decoder d = B64_DECODER_INIT;
		size_t cut = len ? (size_t)rand_r(&seed) % len : 0;
		ssize_t n, m;
		int rc;

		for (size_t i = 0; i < len; i++) {
			int r = rand_r(&seed) % 200;

			in[i] = r < 194 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
						  [r % 64]
					: " \n=\r\t*"[r - 194];
		}
		/* Mostly valid: the strays only in some rounds. */
		if (round % 3)
			for (size_t i = 0; i < len; i++)
				if (in[i] == '=' || in[i] == '*')
					in[i] = 'Q';
		want[0] = got[0] = 0;
		n = plain_b64(want, in, len);
		m = b64_decode(got, in, len);
		CHECK(n == m && (n <= 0 || !memcmp(want, got, (size_t)n)));
		rc = b64_feed(&d, &sb, in, cut);
		if (!rc)
			rc = b64_feed(&d, &sb, in + cut, len - cut);
		if (!rc)
			rc = b64_finish(&d, &sb);
		CHECK((n < 0) == (rc != 0));
		CHECK(n < 0 ||
		      ((size_t)n == sb.len && (!n || !memcmp(want, sb.buf, sb.len))));
		strbuf_release(&sb);
	}
	free(in);
	free(want);
	free(got);
}

static void check_time(void)
{
	struct timespec ts;

	CHECK(rfc3339_parse(&ts, "2026-06-01T15:16:34Z") == 0 &&
	      ts.tv_sec == 1780326994 && ts.tv_nsec == 0);
	CHECK(rfc3339_parse(&ts, "2026-06-01T17:16:34.5+02:00") == 0 &&
	      ts.tv_sec == 1780326994 && ts.tv_nsec == 500000000);
	CHECK(rfc3339_parse(&ts, "2026-06-01t15:16:34.123456789123z") == 0 &&
	      ts.tv_nsec == 123456789);
	/* Go's time.String(). */
	CHECK(rfc3339_parse(&ts, "2026-06-01 15:16:34.25 +0000 UTC") == 0 &&
	      ts.tv_sec == 1780326994 && ts.tv_nsec == 250000000);
	CHECK(rfc3339_parse(&ts, "") == -EINVAL);
	CHECK(rfc3339_parse(&ts, "2026-06-01") == -EINVAL);
	CHECK(rfc3339_parse(&ts, "2026-06-01T15:16:34 junk") == -EINVAL);
	CHECK(rfc3339_parse(&ts, "2026-06-01T15:16:34+99:00") == -EINVAL);
	CHECK(rfc3339_parse(&ts, NULL) == -EINVAL);
}

static void check_json(void)
{
	char text[16];
	cJSON *j = json_parse("{\"a\":\"x\",\"n\":4}", 15);
	double d = 0;

	CHECK(j && !strcmp(json_str(j, "a"), "x") && !json_str(j, "n"));
	CHECK(json_num(j, "n", &d) == 1 && d == 4 && json_num(j, "a", &d) == 0);
	cJSON_Delete(j);
	CHECK(!json_parse(NULL, 0) && !json_parse("{\"a\":", 5));
	CHECK(json_utf8_valid("plain"));
	CHECK(json_utf8_valid("caf\xc3\xa9 \xce\xbb \xf0\x9f\x98\x80"));
	CHECK(!json_utf8_valid("caf\xe9"));
	CHECK(!json_utf8_valid("\xc0\xaf"));	     /* overlong */
	CHECK(!json_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
	CHECK(!json_utf8_valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
	CHECK(!json_utf8_valid("\xe2\x82"));	     /* cut short */
	CHECK(!strcmp(json_text(text, sizeof(text), "a\nb\x01 c  ", 100), "a b? c"));
	CHECK(!strcmp(json_text(text, sizeof(text), "abcdef", 3), "abc"));
	CHECK(!strcmp(json_text(text, 4, "abcdef", 100), "abc"));
	CHECK(!strcmp(json_text(text, sizeof(text), NULL, 100), ""));

	/* Whole-number arguments of `new`. */
	{
		static const struct json_int_arg ints[] = {
			{ "cpu", "cpu_shares", 0, 8 },
			{ NULL, NULL, 0, 0 },
		};
		cJSON *body = cJSON_CreateObject();

		CHECK(json_add_int_arg(body, ints, "image", "x") == 0);
		CHECK(json_add_int_arg(body, ints, "cpu", "4") == 1 &&
		      json_num(body, "cpu_shares", &d) && d == 4);
		CHECK(json_add_int_arg(body, ints, "cpu", "9") == -EINVAL);
		CHECK(json_add_int_arg(body, ints, "cpu", "-1") == -EINVAL);
		CHECK(json_add_int_arg(body, ints, "cpu", "2x") == -EINVAL);
		CHECK(json_add_int_arg(body, ints, "cpu", "") == -EINVAL);
		cJSON_Delete(body);
	}
}

static int count_entry(void *ctx, const char *name, const struct stat *st)
{
	(*(int *)ctx)++;
	return 0;
}

static void check_records(void)
{
	char good[] = "f 644 2 0 0 12 1700000001 1700000000.5 1700000002.123456789012 99 "
		      "a name with spaces";
	char link[] = "l 777 1 1000 1000 7 2 1 3 5 ln";
	char dir[] = "d 4755 3 0 0 4096 0 0 0 7 d";
	char viastat[] = "x81ed 1 0 0 5 10 20 30 4 /some/dir/file\n";
	char *bad[] = {
		strdup("q 644 1 0 0 1 1 1 1 1 n"),
		strdup("f 644 1 0 0 1 1 1 1 1"),
		strdup("f 9999 1 0 0 1 1 1 1 1 n"),
		strdup("f 644 1 0 0 -1 1 1 1 1 n"),
		strdup("f 644 1 0 0 1 1 1.x 1 1 n"),
		strdup("f 644 1 4294967296 0 1 1 1 1 1 n"),
		strdup("ff 644 1 0 0 1 1 1 1 1 n"),
		strdup("x 1 0 0 5 10 20 30 4 f\n"),
		strdup("x81ed 1 0 0 5 10 20 30 4 f"),
		strdup(""),
	};
	char list[] = "f 644 1 0 0 1 1 1 1 1 a\0junk\0f 644 1 0 0 1 1 1 1 1 ..\0"
		      "d 755 2 0 0 1 1 1 1 1 b\0f 644 1 0 0 1 1 1 1 1 cut";
	char one[] = "f 644 1 0 0 3 1 1 1 1 x";
	struct stat st;
	const char *name;
	int n = 0;

	CHECK(find_parse(good, &st, &name) == 0);
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
	CHECK(st.st_size == 12 && st.st_nlink == 2 && st.st_ino == 0);
	CHECK(st.st_mtim.tv_sec == 1700000000 && st.st_mtim.tv_nsec == 500000000);
	CHECK(st.st_ctim.tv_nsec == 123456789);
	CHECK(!strcmp(name, "a name with spaces"));
	CHECK(find_parse(link, &st, &name) == 0 && S_ISLNK(st.st_mode) &&
	      st.st_uid == 1000 && st.st_size == 7 && !strcmp(name, "ln"));
	CHECK(find_parse(dir, &st, &name) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 07777) == 04755);
	CHECK(find_parse(viastat, &st, &name) == 0 && S_ISREG(st.st_mode) &&
	      (st.st_mode & 07777) == 0755 && st.st_mtim.tv_sec == 20 &&
	      !strcmp(name, "file"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(find_parse(bad[i], &st, &name) == -EPROTO);
		free(bad[i]);
	}
	/* Bad records and names are left out; a cut record ends the walk. */
	CHECK(find_each(list, sizeof(list) - 1, count_entry, &n) == 0 && n == 2);
	CHECK(find_parse_one(one, sizeof(one), &st) == 0 && st.st_size == 3);
	CHECK(find_parse_one(one, sizeof(one) - 1, &st) == -EPROTO);
	CHECK(find_parse_one(list, sizeof(list), &st) == -EPROTO);
}

/* Run a script with /bin/sh in dir: its exit status, and its stdout into
 * out (may be NULL). */
static int run_sh(const char *dir, const struct strbuf *script, struct strbuf *out)
{
	struct strbuf cmd = STRBUF_INIT(1 << 20);
	char buf[4096];
	size_t n;
	FILE *p;
	int status;

	strbuf_addf(&cmd, "cd %s && { %s\n}", dir, script->buf);
	p = popen(cmd.buf, "r");
	strbuf_release(&cmd);
	if (!p)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), p)))
		if (out)
			strbuf_add(out, buf, n);
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The exit status of the script that `build` appended to a fresh buffer. */
#define STATUS(dir, build)                                                \
	({                                                                \
		struct strbuf s_ = STRBUF_INIT(1 << 20);                  \
		int b_ = (build), st_ = b_ ? -1 : run_sh(dir, &s_, NULL); \
		strbuf_release(&s_);                                      \
		st_;                                                      \
	})

static void check_posix(void)
{
	char dir[] = "/tmp/sbxfs-test-remote-XXXXXX";
	char path[128], other[128], link[128];
	struct strbuf s = STRBUF_INIT(1 << 20), out = STRBUF_INIT(1 << 20);
	struct timespec ts[2] = { { 1000, 0 }, { 2000, 500000000 } };
	struct statvfs vfs;
	struct stat st;

	CHECK(sh_exit_errno(0) == 0 && sh_exit_errno(ENOTEMPTY) == -ENOTEMPTY);
	CHECK(sh_exit_errno(ELOOP) == -ELOOP && sh_exit_errno(5) == 1 &&
	      sh_exit_errno(255) == 1 && sh_exit_errno(-1) == 1);
	CHECK(sh_script(&s, "%q %s %L %% %x", "it's", "raw", 42LL) == 0 &&
	      !strcmp(s.buf, "'it'\\''s' raw 42 % %x"));
	strbuf_release(&s);
	CHECK(sh_parse_statfs(&vfs, "4096 10 5 4 100 50 255\n") == 0 &&
	      vfs.f_bsize == 4096 && vfs.f_bavail == 4 && vfs.f_namemax == 255);
	CHECK(sh_parse_statfs(&vfs, "4096 10") == -EPROTO);
	CHECK(sh_parse_statfs(&vfs, NULL) == -EPROTO);

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/d it's", dir);
	snprintf(other, sizeof(other), "%s/f", dir);
	snprintf(link, sizeof(link), "%s/l", dir);
	CHECK(STATUS(dir, sh_mkdir(&s_, path, 0750)) == 0);
	CHECK(STATUS(dir, sh_mkdir(&s_, path, 0750)) == EEXIST);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0750);
	CHECK(STATUS(dir, sh_script(&s_, "echo x > %q", other)) == 0);
	CHECK(STATUS(dir, sh_truncate(&s_, other, 7)) == 0);
	CHECK(stat(other, &st) == 0 && st.st_size == 7);
	CHECK(STATUS(dir, sh_unlink(&s_, path)) == EISDIR);
	CHECK(STATUS(dir, sh_rename(&s_, path, other, 0)) == ENOTDIR);
	CHECK(STATUS(dir, sh_rename(&s_, other, path, 0)) == EISDIR);
	CHECK(STATUS(dir, sh_link(&s_, other, link)) == 0);
	CHECK(STATUS(dir, sh_link(&s_, other, link)) == EEXIST);
	CHECK(stat(other, &st) == 0 && st.st_nlink == 2);
	CHECK(STATUS(dir, sh_unlink(&s_, link)) == 0);
	CHECK(STATUS(dir, sh_unlink(&s_, link)) == ENOENT);
	CHECK(STATUS(dir, sh_script(&s_, "echo abcdefg > %q", link)) == 0);
	CHECK(STATUS(dir, sh_rename(&s_, link, other, 1)) == EEXIST);
	CHECK(STATUS(dir, sh_rename(&s_, link, other, 0)) == 0);
	CHECK(stat(other, &st) == 0 && st.st_size == 8);
	CHECK(STATUS(dir, sh_truncate(&s_, other, 7)) == 0);
	CHECK(STATUS(dir, sh_symlink(&s_, "f", link)) == 0);
	CHECK(STATUS(dir, sh_chmod(&s_, other, 04711)) == 0);
	CHECK(stat(other, &st) == 0 && (st.st_mode & 07777) == 04711);
	CHECK(STATUS(dir, sh_utimens(&s_, other, ts, 0)) == 0);
	CHECK(stat(other, &st) == 0 && st.st_atim.tv_sec == 1000 &&
	      st.st_mtim.tv_sec == 2000 && st.st_mtim.tv_nsec == 500000000);
	CHECK(STATUS(dir, sh_script(&s_, "echo x > %q/inner", path)) == 0);
	CHECK(STATUS(dir, sh_rmdir(&s_, path)) == ENOTEMPTY);
	CHECK(STATUS(dir, sh_rmdir(&s_, other)) == ENOTDIR);
	CHECK(STATUS(dir, sh_rmdir(&s_, "/nonexistent/sbxfs")) == ENOENT);
	CHECK(STATUS(dir, sh_chown(&s_, "/nonexistent/sbxfs", 0, 0)) == ENOENT);
	if (geteuid() == 0) {
		/* give: the maker's owner, the set-ID bits kept; in a
		 * set-group-ID directory, its group. */
		CHECK(STATUS(dir, sh_give(&s_, other, 65534, 65533, 04711)) == 0);
		CHECK(stat(other, &st) == 0 && st.st_uid == 65534 && st.st_gid == 65533 &&
		      (st.st_mode & 07777) == 04711);
		CHECK(chown(path, 0, 4242) == 0 && chmod(path, 02755) == 0);
		snprintf(link, sizeof(link), "%s/d it's/new", dir);
		CHECK(STATUS(dir, sh_script(&s_, "echo x > %q", link)) == 0);
		CHECK(STATUS(dir, sh_give(&s_, link, 65534, 65533, 0)) == 0);
		CHECK(stat(link, &st) == 0 && st.st_uid == 65534 && st.st_gid == 4242);
		snprintf(link, sizeof(link), "%s/l", dir);
	}
	CHECK(STATUS(dir, sh_give(&s_, "/nonexistent/sbxfs", 0, 0, 0)) == 1);

	/* The record scripts, read back by the parser. */
	CHECK(sh_script(&s, "p=%q; ", other) == 0 && find_script_stat(&s, "p") == 0);
	CHECK(run_sh(dir, &s, &out) == 0);
	CHECK(find_parse_one(out.buf, out.len, &st) == 0 && S_ISREG(st.st_mode) &&
	      st.st_size == 7 && st.st_mtim.tv_sec == 2000);
	strbuf_release(&s);
	strbuf_release(&out);
	{
		int n = 0;

		CHECK(sh_script(&s, "d=%q; ", dir) == 0 &&
		      find_script_list(&s, "d") == 0);
		CHECK(run_sh(dir, &s, &out) == 0);
		CHECK(find_each(out.buf, out.len, count_entry, &n) == 0 && n == 3);
	}
	strbuf_release(&s);
	strbuf_release(&out);
	CHECK(sh_statfs(&s, dir) == 0 && run_sh(dir, &s, &out) == 0 &&
	      sh_parse_statfs(&vfs, out.buf) == 0 && vfs.f_bsize > 0);
	strbuf_release(&s);
	strbuf_release(&out);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	CHECK(system(path) == 0);
}

static void check_errmap(void)
{
	static const struct errmap mine[] = { { 409, EEXIST },
					      { -32001, ENOENT },
					      { 0, 0 } };
	const struct errmap *const maps[] = { mine, errmap_http, NULL };
	const struct errmap *const none[] = { NULL };
	static const char *const keys[] = { "message", "error", NULL };
	char text[64];

	CHECK(errmap_errno(maps, 409) == EEXIST && errmap_errno(maps, 404) == ENOENT);
	CHECK(errmap_errno(maps, -32001) == ENOENT && errmap_errno(maps, 500) == EIO);
	CHECK(errmap_errno(maps, 0) == EIO && errmap_errno(none, 404) == EIO);
	CHECK(errmap_errno(maps, 401) == EACCES && errmap_errno(maps, 429) == EAGAIN);

	errmap_text(text, sizeof(text), "{\"message\":\"no such\",\"error\":\"x\"}", 34,
		    keys);
	CHECK(!strcmp(text, "no such"));
	errmap_text(text, sizeof(text), "{\"message\":[\"first\",\"b\"]}", 26, keys);
	CHECK(!strcmp(text, "first"));
	errmap_text(text, sizeof(text), "{\"message\":3,\"error\":\"Bad\"}", 28, keys);
	CHECK(!strcmp(text, "Bad"));
	errmap_text(text, sizeof(text), "plain words\n", 12, keys);
	CHECK(!strcmp(text, "plain words"));
	errmap_text(text, sizeof(text), "[\"a list\"]", 10, keys);
	CHECK(!strcmp(text, ""));
	errmap_text(text, sizeof(text), NULL, 0, keys);
	CHECK(!strcmp(text, ""));
	CHECK(errmap_fail_http("p", "get x", 404, "gone", "; more", ENOENT) == -ENOENT);
	CHECK(!strcmp(sbx_fail_text(), "p: get x: HTTP 404: gone; more"));
	CHECK(errmap_fail_http("p", "get x", 500, "", NULL, EIO) == -EIO);
	CHECK(!strcmp(sbx_fail_text(), "p: get x: HTTP 500"));
}

static void *poll_fn(void *arg)
{
	struct cmdpoll *g = arg;

	while (!cmdpoll_stopping(g))
		usleep(1000);
	cmdpoll_leave(g);
	return NULL;
}

/* A scripted command for cmdpoll_follow(): each poll takes the next
 * answer. */
struct script {
	const int *answers;
	int n, polls;
};

static int script_poll(void *cmd, int *code, int *progressed)
{
	struct script *s = cmd;
	int a = s->answers[s->polls < s->n ? s->polls : s->n - 1];

	s->polls++;
	*progressed = 1;
	if (a == 1)
		*code = 137;
	if (a < 0)
		sbx_failf("poll %d failed", s->polls);
	return a;
}

static int script_failed(void *cmd, int rc, struct sbx_exit *ex)
{
	if (rc != -EAGAIN)
		return 0;
	snprintf(ex->reason, sizeof(ex->reason), "stopped");
	return 1;
}

static void check_follow(void)
{
	static const struct cmdpoll_cmd ops = { .poll = script_poll,
						.failed = script_failed };
	static const int ends[] = { 0, -EIO, 0, 1 }, gone[] = { 0, -ENOENT },
			 stopped[] = { -EAGAIN };
	struct script s = { ends, 4, 0 };
	struct sbx_exit ex;
	struct cmdpoll g;
	int sig = 9;

	cmdpoll_init(&g);
	/* A failure in between is tolerated; the end is the signal sent. */
	cmdpoll_follow(&g, &ex, &ops, &s, &sig);
	CHECK(s.polls == 4 && ex.how == SBX_EXIT_SIGNAL && ex.code == 9);
	s = (struct script){ gone, 2, 0 };
	cmdpoll_follow(&g, &ex, &ops, &s, &sig);
	CHECK(ex.how == SBX_EXIT_FAILED && !strcmp(ex.reason, "lost: poll 2 failed"));
	s = (struct script){ stopped, 1, 0 };
	cmdpoll_follow(&g, &ex, &ops, &s, &sig);
	CHECK(ex.how == SBX_EXIT_FAILED && !strcmp(ex.reason, "stopped"));
	cmdpoll_stop(&g);
	s = (struct script){ ends, 4, 0 };
	cmdpoll_follow(&g, &ex, &ops, &s, &sig);
	CHECK(s.polls == 0 && ex.how == SBX_EXIT_FAILED &&
	      strstr(ex.reason, "unmounted"));
	cmdpoll_destroy(&g);
}

static void check_cmdpoll(void)
{
	struct sbx_exit ex = { 0 };
	struct cmdpoll g;

	cmdpoll_exit(&ex, 137, 9);
	CHECK(ex.how == SBX_EXIT_SIGNAL && ex.code == 9);
	cmdpoll_exit(&ex, 137, 0);
	CHECK(ex.how == SBX_EXIT_CODE && ex.code == 137);
	cmdpoll_exit(&ex, 3, 15);
	CHECK(ex.how == SBX_EXIT_CODE && ex.code == 3);
	sbx_failf("no answer");
	cmdpoll_lost(&ex);
	CHECK(ex.how == SBX_EXIT_FAILED && !strcmp(ex.reason, "lost: no answer"));
	CHECK(cmdpoll_backoff(500, 1) == 0 && cmdpoll_backoff(0, 0) == 20);
	CHECK(cmdpoll_backoff(20, 0) == 30 && cmdpoll_backoff(400, 0) == 500);
	cmdpoll_init(&g);
	CHECK(cmdpoll_start(&g, poll_fn, &g) == 0 && cmdpoll_start(&g, poll_fn, &g) == 0);
	CHECK(cmdpoll_wait(&g, 0) == 2);
	cmdpoll_stop(&g);
	CHECK(cmdpoll_wait(&g, 10) == 0);
	cmdpoll_destroy(&g);
}

static void check_opts(void)
{
	struct sbx_kvlist o = { 0 };
	uint64_t bytes = 7;
	int s = 30;
	char *v, url[32];

	CHECK(remote_opt_mib(&bytes, &o, "cache_max", 10) == 0 && bytes == 7);
	CHECK(remote_opt_seconds(&s, &o, "timeout", 10) == 0 && s == 30);
	sbx_kv_add(&o, "cache_max", "3");
	sbx_kv_add(&o, "timeout", "9");
	sbx_kv_add(&o, "big", "11");
	sbx_kv_add(&o, "zero", "0");
	sbx_kv_add(&o, "junk", "4s");
	sbx_kv_add(&o, "empty", "");
	CHECK(remote_opt_mib(&bytes, &o, "cache_max", 10) == 0 && bytes == 3u << 20);
	CHECK(remote_opt_seconds(&s, &o, "timeout", 10) == 0 && s == 9);
	CHECK(remote_opt_mib(&bytes, &o, "big", 10) == -EINVAL);
	CHECK(!strcmp(sbx_fail_text(), "big must be a number of MiB, not \"11\""));
	CHECK(remote_opt_seconds(&s, &o, "zero", 10) == -EINVAL);
	CHECK(remote_opt_seconds(&s, &o, "junk", 10) == -EINVAL && s == 9);
	CHECK(remote_opt_mib(&bytes, &o, "zero", 10) == -EINVAL);
	v = remote_opt(&o, "timeout", "SBXFS_TEST_UNSET");
	CHECK(v && !strcmp(v, "9"));
	free(v);
	CHECK(!remote_opt(&o, "empty", "SBXFS_TEST_UNSET"));
	setenv("SBXFS_TEST_SET", "e", 1);
	v = remote_opt(&o, "nothing", "SBXFS_TEST_SET");
	CHECK(v && !strcmp(v, "e"));
	free(v);
	sbx_kv_free(&o);
	snprintf(url, sizeof(url), "http://x//");
	CHECK(remote_trim_url(url) == 8 && !strcmp(url, "http://x"));
	snprintf(url, sizeof(url), "/");
	CHECK(remote_trim_url(url) == 0 && !url[0]);
}

struct collected {
	char buf[256];
	size_t len;
};

static void collect(void *ctx, const char *data, size_t len)
{
	struct collected *c = ctx;

	memcpy(c->buf + c->len, data, len);
	c->len += len;
}

static void check_endmark(void)
{
	static const char out[] =
		"abc\036x\036SBXFS-END:id-1:4\036SBXFS-END:id-1:7\nlater";
	struct strbuf sb = STRBUF_INIT(4096);
	struct collected got = { "", 0 };
	struct endmark m;

	CHECK(endmark_init(&m, "bad id") == -EINVAL);
	CHECK(endmark_init(&m, "id-1") == 0);
	CHECK(endmark_script(&m, &sb) == 0 && strstr(sb.buf, "SBXFS-END:id-1:%d") &&
	      strstr(sb.buf, ">&2"));
	strbuf_release(&sb);
	/* One byte at a time: a false start, a mark cut by a letter, the mark;
	 * what follows it is dropped. */
	for (size_t i = 0; i < sizeof(out) - 1; i++)
		endmark_feed(&m, out + i, 1, collect, &got);
	CHECK(m.ended && m.code == 7);
	CHECK(got.len == 22 && !memcmp(got.buf, "abc\036x\036SBXFS-END:id-1:4", 22));
	/* Whole, and without the mark: everything comes out at the flush. */
	CHECK(endmark_init(&m, "id-1") == 0);
	got.len = 0;
	endmark_feed(&m, "tail\036SBXFS", 10, collect, &got);
	CHECK(got.len == 4);
	endmark_flush(&m, collect, &got);
	CHECK(!m.ended && got.len == 10 && !memcmp(got.buf, "tail\036SBXFS", 10));
}

void test_remote(void)
{
	check_endmark();
	check_opts();
	check_cmdpoll();
	check_follow();
	check_errmap();
	check_base64();
	check_base64_differential();
	check_time();
	check_json();
	check_records();
	check_posix();
}
