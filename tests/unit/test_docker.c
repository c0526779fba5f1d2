/* SPDX-License-Identifier: MIT */
/* The Docker provider's pure parts: the multiplexed output stream, the
 * archive API's path stat, Go file modes and API versions. */
#include <errno.h>
#include <string.h>

#include "../../src/providers/docker.h"
#include "sbxfs/remote/base64.h"
#include "test.h"

struct got {
	char out[64], err[64];
	size_t nout, nerr;
};

static int take(void *ctx, int stream, const char *buf, size_t len)
{
	struct got *g = ctx;

	if (stream == 1 && g->nout + len < sizeof(g->out)) {
		memcpy(g->out + g->nout, buf, len);
		g->nout += len;
	} else if (stream == 2 && g->nerr + len < sizeof(g->err)) {
		memcpy(g->err + g->nerr, buf, len);
		g->nerr += len;
	}
	return 0;
}

static void check_demux(void)
{
	static const char stream[] = "\1\0\0\0\0\0\0\4out\n"
				     "\2\0\0\0\0\0\0\4err\n"
				     "\1\0\0\0\0\0\0\0"
				     "\1\0\0\0\0\0\0\2hi";
	size_t len = sizeof(stream) - 1, i;
	struct dk_demux d;
	struct got g;

	/* Whole, and a byte at a time: the same. */
	memset(&g, 0, sizeof(g));
	dk_demux_init(&d, take, &g);
	CHECK(dk_demux_feed(&d, stream, len) == 0 && dk_demux_clean(&d));
	CHECK(g.nout == 6 && !memcmp(g.out, "out\nhi", 6));
	CHECK(g.nerr == 4 && !memcmp(g.err, "err\n", 4));
	memset(&g, 0, sizeof(g));
	dk_demux_init(&d, take, &g);
	for (i = 0; i < len; i++)
		CHECK(dk_demux_feed(&d, stream + i, 1) == 0);
	CHECK(dk_demux_clean(&d) && g.nout == 6 && g.nerr == 4);

	/* Cut inside a header, and inside a frame. */
	dk_demux_init(&d, take, &g);
	CHECK(dk_demux_feed(&d, stream, 5) == 0 && !dk_demux_clean(&d));
	dk_demux_init(&d, take, &g);
	CHECK(dk_demux_feed(&d, stream, 10) == 0 && !dk_demux_clean(&d));

	/* Not multiplexed: a terminal's raw bytes. */
	dk_demux_init(&d, take, &g);
	CHECK(dk_demux_feed(&d, "hello world\n", 12) == -EPROTO);
	dk_demux_init(&d, take, &g);
	CHECK(dk_demux_feed(&d, "\3\0\0\0\0\0\0\1x", 9) == -EPROTO);
}

static int stat_of(struct stat *st, char *link, size_t size, const char *json)
{
	struct strbuf b = STRBUF_INIT(1 << 16);
	int rc;

	CHECK(b64_encode(&b, json, strlen(json)) == 0);
	rc = dk_parse_path_stat(st, link, size, b.buf, b.len);
	strbuf_release(&b);
	return rc;
}

static void check_path_stat(void)
{
	struct stat st;
	char link[16];

	/* What Podman said of /bin/sh: a symlink, 0777, its target. */
	CHECK(stat_of(&st, link, sizeof(link),
		      "{\"name\":\"busybox\",\"size\":7,\"mode\":134218239,"
		      "\"mtime\":\"2026-12-02T17:46:23Z\",\"isDir\":false,"
		      "\"linkTarget\":\"/bin/busybox\"}") == 0);
	CHECK(S_ISLNK(st.st_mode) && (st.st_mode & 07777) == 0777);
	CHECK(st.st_size == 7 && st.st_mtim.tv_sec == 1796233583);
	CHECK(!strcmp(link, "/bin/busybox"));
	/* A directory, sticky; a file. */
	CHECK(stat_of(&st, NULL, 0,
		      "{\"name\":\"tmp\",\"size\":4096,\"mode\":2148532735,"
		      "\"mtime\":\"2026-12-02T17:46:23.5Z\",\"linkTarget\":\"\"}") == 0);
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 01777);
	CHECK(st.st_mtim.tv_nsec == 500000000);
	CHECK(stat_of(&st, link, sizeof(link),
		      "{\"name\":\"x\",\"size\":3,\"mode\":420,"
		      "\"mtime\":\"2026-12-02T17:46:23Z\",\"linkTarget\":\"\"}") == 0);
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && !link[0]);
	/* Refused: a target longer than the room, a negative size, no
	 * mtime, no JSON, no base64. */
	CHECK(stat_of(&st, link, 4,
		      "{\"size\":7,\"mode\":134218239,\"mtime\":\"2026-12-02T17:46:23Z\","
		      "\"linkTarget\":\"/bin/busybox\"}") == -EPROTO);
	CHECK(stat_of(&st, NULL, 0,
		      "{\"size\":-1,\"mode\":420,\"mtime\":\"2026-12-02T17:46:23Z\"}") ==
	      -EPROTO);
	CHECK(stat_of(&st, NULL, 0, "{\"size\":1,\"mode\":420}") == -EPROTO);
	CHECK(stat_of(&st, NULL, 0, "[1,2]") == -EPROTO);
	CHECK(dk_parse_path_stat(&st, NULL, 0, "!!!!", 4) == -EPROTO);
	CHECK(dk_parse_path_stat(&st, NULL, 0, "", 0) == -EPROTO);
}

static void check_modes_versions(void)
{
	CHECK(dk_go_mode(0644) == (S_IFREG | 0644));
	CHECK(dk_go_mode((1u << 31) | 0755) == (S_IFDIR | 0755));
	CHECK(dk_go_mode((1u << 26) | (1u << 21) | 0666) == (S_IFCHR | 0666));
	CHECK(dk_go_mode((1u << 26) | 0660) == (S_IFBLK | 0660));
	CHECK(dk_go_mode((1u << 25) | 0600) == (S_IFIFO | 0600));
	CHECK(dk_go_mode((1u << 24) | 0777) == (S_IFSOCK | 0777));
	CHECK(dk_go_mode((1u << 23) | (1u << 22) | 0755) == (S_IFREG | 06755));
	CHECK(dk_version_cmp("1.41", "1.43") < 0);
	CHECK(dk_version_cmp("1.43", "1.41") > 0);
	CHECK(dk_version_cmp("1.9", "1.24") < 0);
	CHECK(dk_version_cmp("2.0", "1.43") > 0);
	CHECK(dk_version_cmp("1.41", "1.41") == 0);
}

void test_docker(void)
{
	check_demux();
	check_path_stat();
	check_modes_versions();
}
