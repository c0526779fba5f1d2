/* SPDX-License-Identifier: MIT */
/* The Vtrix provider's pure parts: the one errno mapping, states, times,
 * UTF-8, base64 and the find(1) records, including what a hostile server
 * could send. */
#include <errno.h>
#include <string.h>

#include "../../src/providers/vtrix.h"
#include "test.h"

static void check_errno(void)
{
	CHECK(vx_errno(VX_ENVELOPE, 40000) == EINVAL);
	CHECK(vx_errno(VX_ENVELOPE, 40100) == EACCES);
	CHECK(vx_errno(VX_ENVELOPE, 40300) == EACCES);
	CHECK(vx_errno(VX_ENVELOPE, 40400) == ENOENT);
	CHECK(vx_errno(VX_ENVELOPE, 40900) == EBUSY);
	CHECK(vx_errno(VX_ENVELOPE, 42900) == EAGAIN);
	CHECK(vx_errno(VX_ENVELOPE, 50000) == EIO);
	CHECK(vx_errno(VX_ENVELOPE, 404) == ENOENT);
	CHECK(vx_errno(VX_ENVELOPE, 1) == EIO);
	CHECK(vx_errno(VX_ENVELOPE, -7) == EIO);
	CHECK(vx_errno(VX_HTTP, 401) == EACCES);
	CHECK(vx_errno(VX_HTTP, 502) == EIO);
	CHECK(vx_errno(VX_HTTP, 503) == EAGAIN);
	CHECK(vx_errno(VX_RPC, -32001) == ENOENT);
	CHECK(vx_errno(VX_RPC, -32602) == EINVAL);
	CHECK(vx_errno(VX_RPC, -32601) == EOPNOTSUPP);
	CHECK(vx_errno(VX_RPC, -32700) == EPROTO);
	CHECK(vx_errno(VX_RPC, -32000) == EIO);
	CHECK(vx_errno(VX_RPC, 12345) == EIO);
}

static void check_states_and_times(void)
{
	struct timespec ts;

	CHECK(vx_map_state("active") == SBX_STATE_RUNNING);
	CHECK(vx_map_state("stopped") == SBX_STATE_STOPPED);
	CHECK(vx_map_state("creating") == SBX_STATE_CREATING);
	CHECK(vx_map_state("destroying") == SBX_STATE_DELETING);
	CHECK(vx_map_state("failed") == SBX_STATE_ERROR);
	CHECK(vx_map_state("Active") == SBX_STATE_UNKNOWN);
	CHECK(vx_map_state(NULL) == SBX_STATE_UNKNOWN);
	CHECK(vx_parse_time("2026-06-01T15:16:34Z", &ts) == 0 &&
	      ts.tv_sec == 1780326994 && ts.tv_nsec == 0);
	CHECK(vx_parse_time("2026-06-01T17:16:34.5+02:00", &ts) == 0 &&
	      ts.tv_sec == 1780326994 && ts.tv_nsec == 500000000);
	CHECK(vx_parse_time("", &ts) == -1);
	CHECK(vx_parse_time("2026-06-01", &ts) == -1);
	CHECK(vx_parse_time("2026-06-01T15:16:34 junk", &ts) == -1);
	CHECK(vx_parse_time(NULL, &ts) == -1);
}

static void check_utf8(void)
{
	CHECK(vx_utf8_valid("plain"));
	CHECK(vx_utf8_valid("caf\xc3\xa9 \xce\xbb \xf0\x9f\x98\x80"));
	CHECK(!vx_utf8_valid("caf\xe9"));
	CHECK(!vx_utf8_valid("\xc0\xaf"));	   /* overlong */
	CHECK(!vx_utf8_valid("\xed\xa0\x80"));	   /* a surrogate */
	CHECK(!vx_utf8_valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
	CHECK(!vx_utf8_valid("\xe2\x82"));	   /* cut short */
}

static void check_base64(void)
{
	unsigned char out[64];

	CHECK(vx_b64_decode(out, "", 0) == 0);
	CHECK(vx_b64_decode(out, "aGk=", 4) == 2 && !memcmp(out, "hi", 2));
	CHECK(vx_b64_decode(out, "aGVs\nbG8=\n", 10) == 5 && !memcmp(out, "hello", 5));
	CHECK(vx_b64_decode(out, "AP/+", 4) == 3 && out[0] == 0 && out[1] == 0xff &&
	      out[2] == 0xfe);
	CHECK(vx_b64_decode(out, "aGk", 3) == 2); /* padding may be left out */
	CHECK(vx_b64_decode(out, "a", 1) == -1);
	CHECK(vx_b64_decode(out, "aG!=", 4) == -1);
	CHECK(vx_b64_decode(out, "aG=k", 4) == -1);
	CHECK(vx_b64_decode(out, "a===", 4) == -1);
}

static void check_records(void)
{
	char good[] = "f 644 0 0 12 2 99 1700000000.5 1700000001 1700000002.123456789012 "
		      "a name with spaces";
	char link[] = "l 777 1000 1000 7 1 5 1 2 3 ln";
	char dir[] = "d 4755 0 0 4096 3 7 0 0 0 d";
	char *bad[] = {
		strdup("x 644 0 0 1 1 1 1 1 1 n"),
		strdup("f 644 0 0 1 1 1 1 1 1"),
		strdup("f 9999 0 0 1 1 1 1 1 1 n"),
		strdup("f 644 0 0 -1 1 1 1 1 1 n"),
		strdup("f 644 0 0 1 1 1 1.x 1 1 n"),
		strdup("f 644 4294967296 0 1 1 1 1 1 1 n"),
		strdup("ff 644 0 0 1 1 1 1 1 1 n"),
		strdup(""),
	};
	struct stat st;
	const char *name;

	CHECK(vx_parse_record(good, &st, &name) == 0);
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
	CHECK(st.st_size == 12 && st.st_nlink == 2 && st.st_ino == 0);
	CHECK(st.st_mtim.tv_sec == 1700000000 && st.st_mtim.tv_nsec == 500000000);
	CHECK(st.st_ctim.tv_nsec == 123456789);
	CHECK(!strcmp(name, "a name with spaces"));
	CHECK(vx_parse_record(link, &st, &name) == 0 && S_ISLNK(st.st_mode) &&
	      st.st_uid == 1000 && st.st_size == 7 && !strcmp(name, "ln"));
	CHECK(vx_parse_record(dir, &st, &name) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 07777) == 04755);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(vx_parse_record(bad[i], &st, &name) == -EPROTO);
		free(bad[i]);
	}
}

void test_vtrix(void)
{
	check_errno();
	check_states_and_times();
	check_utf8();
	check_base64();
	check_records();
}
