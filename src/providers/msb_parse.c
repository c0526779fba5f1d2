/* SPDX-License-Identifier: MIT */
/*
 * microsandbox: parsing what the agent and the msb tool send.  Every
 * byte here comes from the sandbox or from msb's view of it, so all of
 * it is checked (tests/fuzz/fuzz_microsandbox.c).
 */
#include <cjson/cJSON.h>
#include <limits.h>

#include "msb.h"
#include "sbxfs/names.h"
#include "sbxfs/remote/json.h"

/* ---- frames ---- */

int msb_frame_parse(struct msb_frame *f, const uint8_t *body, size_t len)
{
	struct cbor_val top, v;
	int64_t gen;

	memset(f, 0, sizeof(*f));
	if (cbor_decode(&top, body, len) || top.type != CBOR_MAP)
		return -EPROTO;
	if (cbor_map_get(&top, "v", &v) || cbor_int(&v, &gen) || gen < 0 ||
	    gen > UINT_MAX)
		return -EPROTO;
	f->v = (unsigned)gen;
	if (cbor_map_get(&top, "t", &f->type) || f->type.type != CBOR_TEXT)
		return -EPROTO;
	if (cbor_map_get(&top, "p", &f->raw) || f->raw.type != CBOR_BYTES ||
	    cbor_decode(&f->payload, f->raw.data, f->raw.len))
		return -EPROTO;
	return 0;
}

int msb_frame_is(const struct msb_frame *f, const char *type)
{
	return cbor_text_is(&f->type, type);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

int msb_frame_build(struct strbuf *out, uint32_t id, unsigned flags, unsigned v,
		    const char *type, const void *payload, size_t len)
{
	static const uint8_t empty_map = 0xa0;
	uint8_t head[MSB_FRAME_HEAD] = { 0 };
	size_t start = out->len;
	int rc;

	if (!payload) {
		payload = &empty_map;
		len = 1;
	}
	rc = strbuf_add(out, head, sizeof(head));
	if (!rc)
		rc = cbor_put_map(out, 3);
	if (!rc)
		rc = cbor_put_text(out, "v");
	if (!rc)
		rc = cbor_put_uint(out, v);
	if (!rc)
		rc = cbor_put_text(out, "t");
	if (!rc)
		rc = cbor_put_text(out, type);
	if (!rc)
		rc = cbor_put_text(out, "p");
	if (!rc)
		rc = cbor_put_bytes(out, payload, len);
	if (rc)
		return rc == -E2BIG ? -E2BIG : -ENOMEM;
	if (out->len - start - 4 > MSB_FRAME_MAX)
		return -E2BIG;
	put_be32((uint8_t *)out->buf + start, (uint32_t)(out->len - start - 4));
	put_be32((uint8_t *)out->buf + start + 4, id);
	out->buf[start + 8] = (char)flags;
	return 0;
}

/* ---- files ---- */

/* A whole number of seconds since the epoch, or 0 if v is not one. */
static time_t seconds(const struct cbor_val *m, const char *key)
{
	struct cbor_val v;
	int64_t n;

	if (cbor_map_get(m, key, &v) || cbor_int(&v, &n))
		return 0;
	return (time_t)n;
}

static int map_uint(const struct cbor_val *m, const char *key, uint64_t max,
		    uint64_t *out)
{
	struct cbor_val v;
	int64_t n;

	if (cbor_map_get(m, key, &v) || cbor_int(&v, &n) || n < 0 || (uint64_t)n > max)
		return -EPROTO;
	*out = (uint64_t)n;
	return 0;
}

int msb_entry_parse(struct msb_entry *e, const struct cbor_val *info)
{
	struct cbor_val kind;
	uint64_t mode, size, uid, gid;
	mode_t type;

	memset(e, 0, sizeof(*e));
	if (info->type != CBOR_MAP || cbor_map_get(info, "path", &e->path) ||
	    e->path.type != CBOR_TEXT || cbor_map_get(info, "kind", &kind) ||
	    map_uint(info, "mode", 0xffffffffu, &mode) ||
	    map_uint(info, "size", INT64_MAX, &size) ||
	    map_uint(info, "uid", 0xfffffffeu, &uid) ||
	    map_uint(info, "gid", 0xfffffffeu, &gid))
		return -EPROTO;
	type = (mode_t)mode & S_IFMT;
	if (!type) {
		if (cbor_text_is(&kind, "file"))
			type = S_IFREG;
		else if (cbor_text_is(&kind, "dir"))
			type = S_IFDIR;
		else if (cbor_text_is(&kind, "symlink"))
			type = S_IFLNK;
		else
			return -EPROTO; /* "other" without a type: a failed lstat */
	}
	if (!S_ISREG(type) && !S_ISDIR(type) && !S_ISLNK(type) && !S_ISFIFO(type) &&
	    !S_ISSOCK(type) && !S_ISCHR(type) && !S_ISBLK(type))
		return -EPROTO;
	e->st.st_mode = type | ((mode_t)mode & 07777);
	e->st.st_size = (off_t)size;
	e->st.st_uid = (uid_t)uid;
	e->st.st_gid = (gid_t)gid;
	e->st.st_nlink = S_ISDIR(type) ? 2 : 1;
	e->st.st_blksize = 4096;
	e->st.st_blocks = (blkcnt_t)((size + 511) / 512);
	e->st.st_mtim.tv_sec = seconds(info, "mtime");
	if (!e->st.st_mtim.tv_sec)
		e->st.st_mtim.tv_sec = seconds(info, "modified");
	e->st.st_atim.tv_sec = seconds(info, "atime");
	if (!e->st.st_atim.tv_sec)
		e->st.st_atim = e->st.st_mtim;
	e->st.st_ctim = e->st.st_mtim;
	return 0;
}

int msb_os_errno(const char *text, size_t len)
{
	static const char mark[] = "(os error ";
	const char *p = NULL;

	for (size_t i = 0; i + sizeof(mark) - 1 <= len; i++)
		if (!memcmp(text + i, mark, sizeof(mark) - 1))
			p = text + i + sizeof(mark) - 1;
	if (p) {
		long n = 0;
		const char *end = text + len;

		while (p < end && *p >= '0' && *p <= '9' && n < 4096)
			n = n * 10 + (*p++ - '0');
		if (p < end && *p == ')' && n > 0 && n < 4096)
			return (int)n;
	}
	return EIO;
}

/* ---- msb's JSON ---- */

static void copy_str(char *out, size_t size, const cJSON *o, const char *key)
{
	const char *s = json_str(o, key);

	out[0] = '\0';
	if (s && strlen(s) < size && !strpbrk(s, "\n\r"))
		snprintf(out, size, "%s", s);
}

/* One sandbox object into *b: 0, or -EPROTO if it has no usable name. */
static int box_of(struct msb_box *b, const cJSON *o)
{
	const char *name = json_str(o, "name");

	memset(b, 0, sizeof(*b));
	if (!name || strlen(name) > SBX_NAME_MAX || !sbx_name_valid(name))
		return -EPROTO;
	snprintf(b->name, sizeof(b->name), "%s", name);
	copy_str(b->status, sizeof(b->status), o, "status");
	copy_str(b->image, sizeof(b->image), o, "image");
	copy_str(b->created, sizeof(b->created), o, "created_at");
	return 0;
}

int msb_parse_ls(const char *json, size_t len,
		 int (*fn)(void *ctx, const struct msb_box *b), void *ctx)
{
	cJSON *j = json_parse(json, len), *o;
	int rc = 0;

	if (!cJSON_IsArray(j)) {
		cJSON_Delete(j);
		return -EPROTO;
	}
	cJSON_ArrayForEach(o, j)
	{
		struct msb_box b;

		if (!cJSON_IsObject(o) || box_of(&b, o))
			continue;
		rc = fn(ctx, &b);
		if (rc)
			break;
	}
	cJSON_Delete(j);
	return rc;
}

static char *dup_str(const cJSON *o, const char *key)
{
	const char *s = json_str(o, key);

	return s && s[0] && !strpbrk(s, "\n\r") ? strdup(s) : NULL;
}

/* The "K=V" strings of an env array of {key, value}, or of "K=V". */
static char **env_of(const cJSON *env)
{
	size_t n = 0, i = 0;
	const cJSON *e;
	char **out;

	if (!cJSON_IsArray(env))
		return NULL;
	n = (size_t)cJSON_GetArraySize(env);
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	cJSON_ArrayForEach(e, env)
	{
		const char *k = json_str(e, "key"), *v = json_str(e, "value");
		char *s = NULL;

		if (cJSON_IsString(e) && strchr(e->valuestring, '=') != e->valuestring)
			s = strdup(e->valuestring);
		else if (k && v && k[0] && !strchr(k, '=') &&
			 asprintf(&s, "%s=%s", k, v) < 0)
			s = NULL;
		if (s)
			out[i++] = s;
	}
	return out;
}

/* The settings of a sandbox's config (msb) or spec (the cloud): env,
 * runtime {workdir, user, shell}, resources {CPUS, memory_mib}. */
static void runtime_of(struct msb_runtime *rt, const cJSON *cfg, const char *cpus)
{
	const cJSON *run = cJSON_GetObjectItemCaseSensitive(cfg, "runtime");
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(cfg, "resources");
	double d;

	memset(rt, 0, sizeof(*rt));
	rt->env = env_of(cJSON_GetObjectItemCaseSensitive(cfg, "env"));
	rt->workdir = dup_str(run, "workdir");
	rt->user = dup_str(run, "user");
	rt->shell = dup_str(run, "shell");
	if (json_num(res, cpus, &d) && d >= 1 && d < 4096)
		rt->cpus = (unsigned)d;
	if (json_num(res, "memory_mib", &d) && d >= 1 && d < 1e9)
		rt->memory_mib = (unsigned)d;
}

int msb_parse_inspect(struct msb_box *b, struct msb_runtime *rt, const char *json,
		      size_t len)
{
	cJSON *j = json_parse(json, len), *cfg;

	memset(rt, 0, sizeof(*rt));
	if (!cJSON_IsObject(j) || box_of(b, j)) {
		cJSON_Delete(j);
		return -EPROTO;
	}
	cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
	runtime_of(rt, cfg, "cpus");
	if (!b->image[0]) {
		/* {"Oci": {"reference": R}} or {"Bind": {"path": P}} */
		const cJSON *img = cJSON_GetObjectItemCaseSensitive(cfg, "image");
		const char *ref = json_str(cJSON_GetObjectItemCaseSensitive(img, "Oci"),
					   "reference");

		if (!ref)
			ref = json_str(cJSON_GetObjectItemCaseSensitive(img, "Bind"),
				       "path");
		if (ref && strlen(ref) < sizeof(b->image) && !strpbrk(ref, "\n\r"))
			snprintf(b->image, sizeof(b->image), "%s", ref);
	}
	cJSON_Delete(j);
	return 0;
}

void msb_runtime_release(struct msb_runtime *rt)
{
	for (size_t i = 0; rt->env && rt->env[i]; i++)
		free(rt->env[i]);
	free(rt->env);
	free(rt->workdir);
	free(rt->user);
	free(rt->shell);
	memset(rt, 0, sizeof(*rt));
}

/* ---- the cloud API's JSON ---- */

/* A cloud sandbox id: a uuid, or at least nothing a URL path would
 * take apart. */
static int cloud_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n && n < MSB_ID_MAX && strspn(id, "0123456789abcdefABCDEF-") == n;
}

static int cloud_box(struct msb_box *b, struct msb_runtime *rt, const cJSON *o)
{
	const cJSON *spec, *img;
	const char *ref;

	if (!cJSON_IsObject(o) || box_of(b, o) || !cloud_id_ok(json_str(o, "id")))
		return -EPROTO;
	snprintf(b->id, sizeof(b->id), "%s", json_str(o, "id"));
	spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
	img = cJSON_GetObjectItemCaseSensitive(spec, "image");
	ref = json_str(img, "reference");
	if (!ref)
		ref = json_str(img, "path");
	if (ref && strlen(ref) < sizeof(b->image) && !strpbrk(ref, "\n\r"))
		snprintf(b->image, sizeof(b->image), "%s", ref);
	if (!rt)
		return 0;
	runtime_of(rt, spec, "vcpus");
	return 0;
}

int msb_parse_cloud_box(struct msb_box *b, struct msb_runtime *rt, const char *json,
			size_t len)
{
	cJSON *j = json_parse(json, len);
	int rc = cloud_box(b, rt, j);

	cJSON_Delete(j);
	return rc;
}

int msb_parse_cloud_page(const char *json, size_t len, char *cursor, size_t size,
			 int (*fn)(void *ctx, const struct msb_box *b), void *ctx)
{
	cJSON *j = json_parse(json, len),
	      *data = cJSON_GetObjectItemCaseSensitive(j, "data"), *o;
	const char *next = json_str(j, "next_cursor");
	int rc = 0;

	cursor[0] = '\0';
	if (!cJSON_IsArray(data)) {
		cJSON_Delete(j);
		return -EPROTO;
	}
	/* The cursor goes back in a query: printable, short, no separators. */
	if (next && next[0]) {
		if (strlen(next) >= size || strpbrk(next, "&#% \n\r\t") ||
		    !json_utf8_valid(next)) {
			cJSON_Delete(j);
			return -EPROTO;
		}
		snprintf(cursor, size, "%s", next);
	}
	cJSON_ArrayForEach(o, data)
	{
		struct msb_box b;

		if (cloud_box(&b, NULL, o))
			continue;
		rc = fn(ctx, &b);
		if (rc)
			break;
	}
	cJSON_Delete(j);
	return rc;
}
