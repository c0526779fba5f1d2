/* SPDX-License-Identifier: MIT */
/* microsandbox: frames, entries, error texts and msb's JSON. */
#include <string.h>

#include "../../src/providers/msb.h"
#include "test.h"

static void test_frames(void)
{
	struct strbuf payload = STRBUF_INIT(1 << 20), frame = STRBUF_INIT(1 << 20);
	struct msb_frame f;
	struct cbor_val v;
	const uint8_t *b;
	int64_t n;

	CHECK(!cbor_put_map(&payload, 1));
	CHECK(!cbor_put_text(&payload, "code"));
	CHECK(!cbor_put_int(&payload, -1));
	CHECK(!msb_frame_build(&frame, 0x01000002u, MSB_FLAG_TERMINAL, 7,
			       "core.exec.exited", payload.buf, payload.len));
	b = (const uint8_t *)frame.buf;
	/* [len][id][flags]: len counts id, flags and body. */
	CHECK(frame.len > MSB_FRAME_HEAD);
	CHECK(((uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) == frame.len - 4);
	CHECK(b[4] == 0x01 && b[5] == 0 && b[6] == 0 && b[7] == 2 && b[8] == 1);
	CHECK(!msb_frame_parse(&f, b + MSB_FRAME_HEAD, frame.len - MSB_FRAME_HEAD));
	CHECK(f.v == 7);
	CHECK(msb_frame_is(&f, "core.exec.exited"));
	CHECK(!msb_frame_is(&f, "core.exec"));
	CHECK(!cbor_map_get(&f.payload, "code", &v) && !cbor_int(&v, &n) && n == -1);
	/* No payload: an empty map. */
	frame.len = 0;
	CHECK(!msb_frame_build(&frame, 1, 0, 9, "core.ping", NULL, 0));
	CHECK(!msb_frame_parse(&f, (const uint8_t *)frame.buf + MSB_FRAME_HEAD,
			       frame.len - MSB_FRAME_HEAD));
	CHECK(f.payload.type == CBOR_MAP && f.payload.len == 0 && f.v == 9);
	/* A body that is not the envelope: p must be bytes of CBOR. */
	{
		static const uint8_t no_p[] = { 0xa2, 0x61, 'v',  0x07,
						0x61, 't',  0x61, 'x' };
		static const uint8_t text_p[] = { 0xa3, 0x61, 'v',  0x07, 0x61, 't',
						  0x61, 'x',  0x61, 'p',  0x60 };
		static const uint8_t bad_p[] = { 0xa3, 0x61, 'v',  0x07, 0x61, 't',
						 0x61, 'x',  0x61, 'p',	 0x41, 0x18 };

		CHECK(msb_frame_parse(&f, no_p, sizeof(no_p)) == -EPROTO);
		CHECK(msb_frame_parse(&f, text_p, sizeof(text_p)) == -EPROTO);
		CHECK(msb_frame_parse(&f, bad_p, sizeof(bad_p)) == -EPROTO);
	}
	strbuf_release(&payload);
	strbuf_release(&frame);
}

/* An EntryInfo map with the given mode and kind. */
static void entry(struct strbuf *sb, const char *path, const char *kind, uint64_t mode)
{
	sb->len = 0;
	cbor_put_map(sb, 8);
	cbor_put_text(sb, "path");
	cbor_put_text(sb, path);
	cbor_put_text(sb, "kind");
	cbor_put_text(sb, kind);
	cbor_put_text(sb, "size");
	cbor_put_uint(sb, 1234);
	cbor_put_text(sb, "mode");
	cbor_put_uint(sb, mode);
	cbor_put_text(sb, "uid");
	cbor_put_uint(sb, 1000);
	cbor_put_text(sb, "gid");
	cbor_put_uint(sb, 100);
	cbor_put_text(sb, "mtime");
	cbor_put_uint(sb, 1700000000);
	cbor_put_text(sb, "extra");
	cbor_put_null(sb);
}

static void test_entries(void)
{
	struct strbuf sb = STRBUF_INIT(4096);
	struct cbor_val v;
	struct msb_entry e;

	entry(&sb, "/etc/hosts", "file", S_IFREG | 0644);
	CHECK(!cbor_decode(&v, sb.buf, sb.len));
	CHECK(!msb_entry_parse(&e, &v));
	CHECK(e.st.st_mode == (S_IFREG | 0644) && e.st.st_size == 1234);
	CHECK(e.st.st_uid == 1000 && e.st.st_gid == 100 && e.st.st_nlink == 1);
	CHECK(e.st.st_mtim.tv_sec == 1700000000 && e.st.st_atim.tv_sec == 1700000000);
	CHECK(cbor_text_is(&e.path, "/etc/hosts"));
	/* A mode without type bits: the kind says it. */
	entry(&sb, "/d", "dir", 0755);
	CHECK(!cbor_decode(&v, sb.buf, sb.len) && !msb_entry_parse(&e, &v));
	CHECK(e.st.st_mode == (S_IFDIR | 0755) && e.st.st_nlink == 2);
	entry(&sb, "/l", "symlink", 0777);
	CHECK(!cbor_decode(&v, sb.buf, sb.len) && !msb_entry_parse(&e, &v));
	CHECK(S_ISLNK(e.st.st_mode));
	/* A failed lstat: kind other, all zeros. */
	entry(&sb, "/x", "other", 0);
	CHECK(!cbor_decode(&v, sb.buf, sb.len) && msb_entry_parse(&e, &v) == -EPROTO);
	/* The type bits win over the kind; a FIFO is kind other. */
	entry(&sb, "/p", "other", S_IFIFO | 0600);
	CHECK(!cbor_decode(&v, sb.buf, sb.len) && !msb_entry_parse(&e, &v));
	CHECK(S_ISFIFO(e.st.st_mode));
	/* A mode past 32 bits is refused. */
	entry(&sb, "/big", "file", 1ull << 40);
	CHECK(!cbor_decode(&v, sb.buf, sb.len) && msb_entry_parse(&e, &v) == -EPROTO);
	strbuf_release(&sb);
}

static void test_errors(void)
{
	static const char enoent[] = "stat: No such file or directory (os error 2)";
	static const char twice[] = "rename: (os error 2) then (os error 39)";

	CHECK(msb_os_errno(enoent, strlen(enoent)) == ENOENT);
	CHECK(msb_os_errno(twice, strlen(twice)) == ENOTEMPTY);
	CHECK(msb_os_errno("handle 7 is owned by a different relay client", 44) == EIO);
	CHECK(msb_os_errno("x (os error 0)", 14) == EIO);
	CHECK(msb_os_errno("x (os error 99999)", 18) == EIO);
	CHECK(msb_os_errno("x (os error 13", 14) == EIO);
	/* Only the bytes given are read. */
	CHECK(msb_os_errno(enoent, strlen(enoent) - 2) == EIO);
}

static int count_box(void *ctx, const struct msb_box *b)
{
	int *n = ctx;

	if (*n == 0) {
		CHECK(!strcmp(b->name, "web"));
		CHECK(!strcmp(b->status, "Running"));
		CHECK(!strcmp(b->image, "alpine"));
		CHECK(!strcmp(b->created, "2026-12-07T08:00:00Z"));
	}
	++*n;
	return 0;
}

static void test_msb_json(void)
{
	static const char ls[] =
		"[{\"name\":\"web\",\"status\":\"Running\",\"created_at\":"
		"\"2026-12-07T08:00:00Z\",\"image\":\"alpine\"},"
		"{\"name\":\"../x\",\"status\":\"Running\"},{\"status\":\"Stopped\"},"
		"{\"name\":\"db\",\"status\":\"Stopped\",\"image\":null}]";
	static const char inspect[] =
		"{\"name\":\"web\",\"status\":\"Paused\",\"created_at\":\"2026-12-07T08:00:00Z\","
		"\"config\":{\"image\":{\"Oci\":{\"reference\":\"python\"}},"
		"\"resources\":{\"cpus\":2,\"max_cpus\":2,\"memory_mib\":512},"
		"\"env\":[{\"key\":\"A\",\"value\":\"1\"},{\"key\":\"=bad\",\"value\":\"x\"}],"
		"\"runtime\":{\"workdir\":\"/app\",\"shell\":\"/bin/bash\",\"user\":null}}}";
	struct msb_runtime rt;
	struct msb_box b;
	int n = 0;

	CHECK(!msb_parse_ls(ls, strlen(ls), count_box, &n) && n == 2);
	CHECK(!msb_parse_ls("[]", 2, count_box, &n) && n == 2);
	CHECK(msb_parse_ls("{}", 2, count_box, &n) == -EPROTO);
	CHECK(msb_parse_ls("Error: x", 8, count_box, &n) == -EPROTO);
	CHECK(!msb_parse_inspect(&b, &rt, inspect, strlen(inspect)));
	CHECK(!strcmp(b.name, "web") && !strcmp(b.status, "Paused"));
	CHECK(!strcmp(b.image, "python"));
	CHECK(rt.env && !strcmp(rt.env[0], "A=1") && !rt.env[1]);
	CHECK(rt.workdir && !strcmp(rt.workdir, "/app"));
	CHECK(rt.shell && !strcmp(rt.shell, "/bin/bash"));
	CHECK(!rt.user && rt.cpus == 2 && rt.memory_mib == 512);
	msb_runtime_release(&rt);
	CHECK(msb_parse_inspect(&b, &rt, "[]", 2) == -EPROTO);
	{
		/* A directory image is Bind: its path is the image. */
		static const char bind[] =
			"{\"name\":\"d\",\"status\":\"Stopped\",\"config\":{\"image\":"
			"{\"Bind\":{\"follow_root_symlinks\":false,\"path\":\"/srv/root\"}},"
			"\"env\":[],\"runtime\":{\"shell\":\"/bin/sh\",\"workdir\":null}}}";

		CHECK(!msb_parse_inspect(&b, &rt, bind, strlen(bind)));
		CHECK(!strcmp(b.image, "/srv/root") && !strcmp(b.status, "Stopped"));
		CHECK(rt.env && !rt.env[0] && !rt.workdir && !rt.cpus);
		msb_runtime_release(&rt);
	}
}

static int count_cloud(void *ctx, const struct msb_box *b)
{
	int *n = ctx;

	CHECK(*n > 0 || (!strcmp(b->name, "a") && !strcmp(b->id, "1")));
	++*n;
	return 0;
}

/* The cloud API's Sandbox and its pages: the id goes into URLs. */
static void test_cloud_json(void)
{
	static const char box[] =
		"{\"id\":\"0b4e3c1a-9f51-4c71-8c1e-2f8e9e0a6b11\",\"name\":\"web\","
		"\"status\":\"running\",\"spec\":{\"image\":{\"type\":\"oci\","
		"\"reference\":\"python\"},\"resources\":{\"vcpus\":2,\"memory_mib\":256},"
		"\"runtime\":{\"workdir\":\"/app\",\"shell\":null},"
		"\"env\":[{\"key\":\"A\",\"value\":\"b=c\"}]}}";
	static const char page[] =
		"{\"data\":[{\"id\":\"1\",\"name\":\"a\",\"status\":\"stopped\"},"
		"{\"id\":\"../../x\",\"name\":\"b\"},{\"id\":\"2\",\"name\":\"../c\"}],"
		"\"next_cursor\":\"eyJ4IjoxfQ==\"}";
	struct msb_runtime rt;
	struct msb_box b;
	char cursor[64];
	int n = 0;

	CHECK(!msb_parse_cloud_box(&b, &rt, box, strlen(box)));
	CHECK(!strcmp(b.name, "web") && !strcmp(b.status, "running"));
	CHECK(!strcmp(b.id, "0b4e3c1a-9f51-4c71-8c1e-2f8e9e0a6b11"));
	CHECK(!strcmp(b.image, "python") && rt.cpus == 2 && rt.memory_mib == 256);
	CHECK(rt.env && !strcmp(rt.env[0], "A=b=c") && !rt.env[1]);
	CHECK(rt.workdir && !strcmp(rt.workdir, "/app") && !rt.shell);
	msb_runtime_release(&rt);
	/* Only a good name and an id fit for a URL pass. */
	CHECK(!msb_parse_cloud_page(page, strlen(page), cursor, sizeof(cursor),
				    count_cloud, &n));
	CHECK(n == 1 && !strcmp(cursor, "eyJ4IjoxfQ=="));
	CHECK(msb_parse_cloud_page("{\"data\":[],\"next_cursor\":\"a&b\"}", 31, cursor,
				   sizeof(cursor), count_cloud, &n) == -EPROTO);
	CHECK(msb_parse_cloud_page("[]", 2, cursor, sizeof(cursor), count_cloud, &n) ==
	      -EPROTO);
	CHECK(!msb_parse_cloud_page("{\"data\":[]}", 11, cursor, sizeof(cursor),
				    count_cloud, &n) &&
	      !cursor[0]);
}

void test_microsandbox(void)
{
	test_frames();
	test_entries();
	test_errors();
	test_msb_json();
	test_cloud_json();
}
