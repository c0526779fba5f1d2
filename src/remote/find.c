/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sbxfs/names.h"
#include "sbxfs/remote/find.h"
#include "sbxfs/remote/shell.h"

int find_script_stat(struct strbuf *sb, const char *var)
{
	return sh_script(sb,
			 "if " FIND_HAVE_PRINTF
			 "; then find \"$%s\" -maxdepth 0 -printf %q; "
			 "else stat -c %q -- \"$%s\" && printf '\\0'; fi",
			 var, FIND_PRINTF, FIND_STAT_FMT, var);
}

/*
 * busybox: the entries of a directory, many to one stat(1) (a batch
 * record, as the walk's below) up to 500 names, so that the arguments
 * stay far below the system's bound; a name with a newline in it gets a
 * record of its own.  The shell's IFS and globbing are as they were
 * after it.
 */
/* clang-format off */
#define LIST_BATCH							\
	"sbxfs_n='\n'; sbxfs_b=; sbxfs_c=0; sbxfs_fl() { "			\
	"[ -z \"$sbxfs_b\" ] || { printf 'B '; sbxfs_o=$IFS; "		\
	"IFS=$sbxfs_n; set -f; stat -c \"$sbxfs_f\" -- $sbxfs_b; "		\
	"IFS=$sbxfs_o; set +f; printf '\\0'; sbxfs_b=; sbxfs_c=0; }; }; "
#define LIST_EACH							\
	"case \"$f\" in *\"$sbxfs_n\"*) "					\
	"stat -c \"$sbxfs_f\" -- \"$f\" && printf '\\0';; "			\
	"*) sbxfs_b=\"$sbxfs_b$f$sbxfs_n\"; sbxfs_c=$((sbxfs_c + 1)); "	\
	"[ $sbxfs_c -lt 500 ] || sbxfs_fl;; esac; "
/* clang-format on */

int find_script_list(struct strbuf *sb, const char *var)
{
	return sh_script(sb,
			 "if " FIND_HAVE_PRINTF "; then "
			 "find \"$%s\" -mindepth 1 -maxdepth 1 -printf %q; else "
			 "sbxfs_f=%q; " LIST_BATCH
			 "for f in \"$%s\"/* \"$%s\"/.[!.]* \"$%s\"/..?*; do "
			 "{ [ -e \"$f\" ] || [ -L \"$f\" ]; } || continue; " LIST_EACH
			 "done; sbxfs_fl; fi",
			 var, FIND_PRINTF, FIND_STAT_FMT, var, var, var);
}

static int parse_u64(const char **p, unsigned long long *out)
{
	char *end;

	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*out = strtoull(*p, &end, 10);
	if (errno || *end != ' ')
		return -1;
	*p = end + 1;
	return 0;
}

static int parse_octal(const char **p, unsigned long *out)
{
	char *end;

	if (**p < '0' || **p > '7')
		return -1;
	*out = strtoul(*p, &end, 8);
	if (*end != ' ' || *out > 07777)
		return -1;
	*p = end + 1;
	return 0;
}

/* "1700000000.1234567890 " into ts. */
static int parse_stamp(const char **p, struct timespec *ts)
{
	const char *s = *p;
	long long sec = 0;
	long nsec = 0;
	int digits = 0, neg = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (sec > 1000000000000ll)
			return -1;
		sec = sec * 10 + (*s - '0');
	}
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*s - '0');
	for (; digits < 9; digits++)
		nsec *= 10;
	if (*s != ' ')
		return -1;
	ts->tv_sec = (time_t)(neg ? -sec : sec);
	ts->tv_nsec = neg ? 0 : nsec;
	*p = s + 1;
	return 0;
}

static mode_t type_of(char c)
{
	switch (c) {
	case 'f':
		return S_IFREG;
	case 'd':
		return S_IFDIR;
	case 'l':
		return S_IFLNK;
	case 'p':
		return S_IFIFO;
	case 's':
		return S_IFSOCK;
	case 'c':
		return S_IFCHR;
	case 'b':
		return S_IFBLK;
	default:
		return 0;
	}
}

/* stat's "x81a4 " (raw st_mode in hex) into type and permissions. */
static int parse_rawmode(const char **p, mode_t *type, unsigned long *perm)
{
	char *end;
	unsigned long m;

	if (!((*p)[1] >= '0' && (*p)[1] <= '9') && !((*p)[1] >= 'a' && (*p)[1] <= 'f'))
		return -1;
	m = strtoul(*p + 1, &end, 16);
	if (*end != ' ' || m > 0xffff)
		return -1;
	*type = (mode_t)(m & S_IFMT);
	*perm = m & 07777;
	*p = end + 1;
	return 0;
}

/*
 * The fields of a record after its type, into *st; *rest then points at
 * the name as printed (a stat record's trailing newline cut).
 */
static int parse_fields(char *rec, struct stat *st, char **rest)
{
	unsigned long long nlink, uid, gid, size, ino;
	unsigned long perm = 0;
	mode_t type = type_of(rec[0]);
	int from_stat = rec[0] == 'x';
	const char *p = rec;
	char *s;

	memset(st, 0, sizeof(*st));
	if (from_stat) {
		if (parse_rawmode(&p, &type, &perm))
			return -EPROTO;
	} else {
		if (!type || rec[1] != ' ')
			return -EPROTO;
		p = rec + 2;
		if (parse_octal(&p, &perm))
			return -EPROTO;
	}
	if (!type || parse_u64(&p, &nlink) || parse_u64(&p, &uid) ||
	    parse_u64(&p, &gid) || parse_u64(&p, &size) ||
	    parse_stamp(&p, &st->st_atim) || parse_stamp(&p, &st->st_mtim) ||
	    parse_stamp(&p, &st->st_ctim) || parse_u64(&p, &ino) || size > (1ull << 62) ||
	    uid > 0xfffffffful || gid > 0xfffffffful)
		return -EPROTO;
	s = rec + (p - rec);
	if (from_stat) {
		size_t n = strlen(s);

		if (!n || s[n - 1] != '\n')
			return -EPROTO;
		s[n - 1] = '\0';
	}
	st->st_mode = type | (mode_t)perm;
	st->st_nlink = nlink ? (nlink_t)nlink : 1;
	st->st_uid = (uid_t)uid;
	st->st_gid = (gid_t)gid;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	*rest = s;
	return 0;
}

int find_parse(char *rec, struct stat *st, const char **name)
{
	char *s, *slash;

	if (parse_fields(rec, st, &s))
		return -EPROTO;
	if (rec[0] == 'x') { /* stat's %n is the whole path */
		slash = strrchr(s, '/');
		if (slash && slash[1])
			s = slash + 1;
	}
	*name = s;
	return 0;
}

int find_parse_one(char *buf, size_t len, struct stat *st)
{
	const char *name;

	if (!buf || !len || buf[len - 1] != '\0' || strlen(buf) != len - 1)
		return -EPROTO;
	return find_parse(buf, st, &name);
}

/*
 * A batch record, "B " and the lines of one stat(1) of many files: call
 * one(ctx, line) for each line, which is a record of its own, newline
 * included, NUL-terminated for the time of the call.  A line cut short
 * is dropped.  Stops at one's nonzero, and returns it.
 */
static int batch_each(char *rec, const char *end, int (*one)(void *ctx, char *line),
		      void *ctx)
{
	char *p = rec + 2;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), keep;
		int rc;

		if (!nl)
			break;
		keep = nl[1];
		nl[1] = '\0';
		rc = one(ctx, p);
		nl[1] = keep;
		if (rc)
			return rc;
		p = nl + 1;
	}
	return 0;
}

static int is_batch(const char *rec)
{
	return rec[0] == 'B' && rec[1] == ' ';
}

struct each_ctx {
	sbx_dirent_fn fn;
	void *ctx;
};

/* One record of a listing: nonzero when fn says stop. */
static int each_one(void *ctx, char *rec)
{
	struct each_ctx *c = ctx;
	const char *name;
	struct stat st;

	return !find_parse(rec, &st, &name) && sbx_entry_name_valid(name) &&
	       c->fn(c->ctx, name, &st);
}

int find_each(char *buf, size_t len, sbx_dirent_fn fn, void *ctx)
{
	struct each_ctx c = { fn, ctx };
	size_t i = 0;

	while (i < len) {
		char *e = memchr(buf + i, '\0', len - i);

		if (!e)
			break; /* a record cut short: the listing was interrupted */
		if (is_batch(buf + i) ? batch_each(buf + i, e, each_one, &c)
				      : each_one(&c, buf + i))
			break;
		i = (size_t)(e - buf) + 1;
	}
	return 0;
}

/*
 * busybox's find has no -printf: the walk stats the names it gives, many
 * to one stat(1) (a batch record, "B " and stat's lines), since a process
 * a file would cost more than the walk.  A name with a newline in it, a
 * symlink (its target follows it) and a directory the sandbox's user
 * cannot read (marked '-') get a record of their own, in find's order.
 * Following symlinks, a dangling one is left out, as a file API that
 * follows them cannot stat it.  Run by find -exec sh -c EACH FMT {} +.
 */
/* clang-format off */
#define EACH_BATCH(L)							\
	"n='\n'; b=; fl() { [ -z \"$b\" ] || { printf 'B '; "		\
	"o=$IFS; IFS=$n; set -f; stat " L "-c \"$0\" -- $b; "		\
	"IFS=$o; set +f; printf '\\0'; b=; }; }; "
#define EACH_UNREADABLE							\
	"[ -d \"$f\" ] && ! { [ -r \"$f\" ] && [ -x \"$f\" ]; }"
#define EACH_FOLLOW							\
	EACH_BATCH("-L ")						\
	"for f; do [ -e \"$f\" ] || continue; "				\
	"case \"$f\" in *\"$n\"*) ;; *) "					\
	"if ! { " EACH_UNREADABLE "; }; then "				\
	"b=\"$b$f$n\"; continue; fi;; esac; fl; "				\
	"if " EACH_UNREADABLE "; then printf %s '- '; "			\
	"else printf %s '+ '; fi; "					\
	"stat -L -c \"$0\" -- \"$f\" && printf '\\0'; done; fl"
#define EACH_LSTAT							\
	EACH_BATCH("")							\
	"for f; do case \"$f\" in *\"$n\"*) ;; *) "				\
	"if ! [ -L \"$f\" ] && ! { " EACH_UNREADABLE "; }; then "		\
	"b=\"$b$f$n\"; continue; fi;; esac; fl; "				\
	"if " SH_REALDIR("f") " && ! { [ -r \"$f\" ] && [ -x \"$f\" ]; }; "	\
	"then printf %s '- '; else printf %s '+ '; fi; "			\
	"stat -c \"$0\" -- \"$f\" && printf '\\0'; "			\
	"[ -L \"$f\" ] && { printf 'L '; readlink -n -- \"$f\"; "		\
	"printf '\\0'; }; done; fl"
/* clang-format on */

int find_script_tree(struct strbuf *sb, int follow, size_t max_bytes)
{
	const char *each = follow ? EACH_FOLLOW : EACH_LSTAT;
	const char *L = follow ? "-L " : "";
	const char *skip = follow ? "! -type l " : "";

	return sh_script(
		sb,
		"if " FIND_HAVE_PRINTF "; then t() { find %s. \"$@\" %s\\( \\( -type d "
		"! \\( -readable -executable \\) -prune -printf %q \\) -o %s-printf %q "
		"\\); }; "
		"else t() { find %s. \"$@\" -exec sh -c %q %q {} +; }; fi; "
		"t -maxdepth 1 2>/dev/null; printf '/\\0'; "
		"{ t -mindepth 1 -xdev; printf '/\\0'; } 2>/dev/null | head -c %L",
		L, skip, "- " FIND_TREE_PRINTF,
		follow ? ""
		       : "\\( -type l -printf '+ " FIND_TREE_PRINTF "L %l\\0' \\) -o ",
		"+ " FIND_TREE_PRINTF, L, each, FIND_TREE_STAT_FMT, (long long)max_bytes);
}

/* A path below the walked directory: names we can show, joined by '/'. */
static int rel_valid(char *rel)
{
	char *p = rel;

	for (;;) {
		char *slash = strchr(p, '/');
		int ok;

		if (slash)
			*slash = '\0';
		ok = sbx_entry_name_valid(p);
		if (slash)
			*slash = '/';
		if (!ok)
			return 0;
		if (!slash)
			return 1;
		p = slash + 1;
	}
}

/* One tree record, after its mark ('+' or '-'): the device, the record;
 * *rel "" for the walked directory itself. */
static int tree_parse(char mark, char *rec, struct stat *st, char **rel,
		      unsigned long long *dev, int *unreadable)
{
	const char *p = rec;
	char *s;

	if ((mark != '+' && mark != '-') || parse_u64(&p, dev) ||
	    parse_fields(rec + (p - rec), st, &s))
		return -EPROTO;
	*unreadable = mark == '-';
	if (s[0] == '.' && (s[1] == '\0' || s[1] == '/')) /* stat's "./a" */
		s += s[1] ? 2 : 1;
	if (s[0] && !rel_valid(s))
		return -EPROTO;
	*rel = s;
	return 0;
}

/* The target record "L target" NUL at buf[*i], if one is there whole: the
 * target (not empty, shorter than PATH_MAX), *i past it; else NULL. */
static const char *link_after(char *buf, size_t len, size_t *i)
{
	char *rec = buf + *i, *e;

	if (*i + 2 >= len || rec[0] != 'L' || rec[1] != ' ' ||
	    !(e = memchr(rec, '\0', len - *i)))
		return NULL;
	*i = (size_t)(e - buf) + 1;
	if (e == rec + 2 || e - (rec + 2) >= PATH_MAX)
		return NULL;
	return rec + 2;
}

/* Where a walk's records go, and what they said so far. */
struct tree_walk {
	sbx_treeent_fn fn;
	void *ctx;
	unsigned long long top_dev;
	int walking, have_top;
	char *buf; /* the records, for a symlink's target after it */
	size_t len, *i;
};

/*
 * One record of an entry (mark '+' or '-', then the record): -1 when it
 * does not parse, 1 when fn says stop, else 0.  A symlink's target is
 * taken from the record at *w->i that follows, if `links`.
 */
static int tree_one(struct tree_walk *w, char mark, char *rec, int links)
{
	unsigned long long dev;
	unsigned flags = 0;
	int unreadable;
	struct stat st;
	char *rel;

	if (tree_parse(mark, rec, &st, &rel, &dev, &unreadable))
		return -1;
	if (!rel[0]) {
		if (!w->walking && !w->have_top) {
			w->top_dev = dev;
			w->have_top = 1;
		}
		return 0;
	}
	if (!w->walking && strchr(rel, '/'))
		return 0;
	if (S_ISDIR(st.st_mode) && (unreadable || !w->have_top || dev != w->top_dev))
		flags |= SBX_TREE_OPAQUE;
	return w->fn(w->ctx, rel, &st,
		     links && S_ISLNK(st.st_mode) ? link_after(w->buf, w->len, w->i)
						  : NULL,
		     flags)
		       ? 1
		       : 0;
}

/* A line of a batch: a record marked '+', no target after it. */
static int tree_batch_one(void *ctx, char *line)
{
	return tree_one(ctx, '+', line, 0);
}

int find_tree_each(char *buf, size_t len, sbx_treeent_fn fn, void *ctx)
{
	size_t i = 0;
	struct tree_walk w = { .fn = fn, .ctx = ctx, .buf = buf, .len = len, .i = &i };

	while (i < len) {
		char *rec = buf + i, *e = memchr(rec, '\0', len - i);
		int rc;

		if (!e)
			break; /* cut short */
		i = (size_t)(e - buf) + 1;
		if (rec[0] == 'L' && rec[1] == ' ')
			continue; /* a target with no symlink before it */
		if (rec[0] == '/' && rec[1] == '\0') {
			if (w.walking) {
				fn(ctx, NULL, NULL, NULL, SBX_TREE_WHOLE);
				return 0;
			}
			w.walking = 1;
			if (fn(ctx, NULL, NULL, NULL, SBX_TREE_LISTED))
				return 0;
			continue;
		}
		if (is_batch(rec))
			rc = batch_each(rec, e, tree_batch_one, &w);
		else if (e - rec < 2 || rec[1] != ' ')
			rc = -1;
		else
			rc = tree_one(&w, rec[0], rec + 2, 1);
		if (rc > 0 || (rc < 0 && w.walking))
			return 0;
	}
	return w.walking ? 0 : -EPROTO;
}
