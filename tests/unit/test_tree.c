/* SPDX-License-Identifier: MIT */
/* Subtree listings: the tree script run by GNU find and by busybox, and
 * its parser on records a sandbox could send. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbxfs/remote/find.h"
#include "sbxfs/strbuf.h"
#include "test.h"

/* What the walk gave, one line per call: "+rel", "*rel" (opaque), with
 * ">target" for a symlink whose target came, "L" and "W" for the marks. */
struct seen {
	char text[4096];
	int stop_after; /* 0: never */
	int calls;
};

static int note(void *ctx, const char *rel, const struct stat *st, const char *link,
		unsigned flags)
{
	struct seen *s = ctx;
	size_t n = strlen(s->text);

	if (!rel)
		snprintf(s->text + n, sizeof(s->text) - n, "%s ",
			 flags & SBX_TREE_LISTED ? "L" : "W");
	else
		snprintf(s->text + n, sizeof(s->text) - n, "%c%s%s%s%s ",
			 flags & SBX_TREE_OPAQUE ? '*' : '+', rel,
			 S_ISDIR(st->st_mode) ? "/" : "", link ? ">" : "",
			 link ? link : "");
	return ++s->calls == s->stop_after;
}

static void check_parser(void)
{
	/* The walked directory on device 7; "m" is on another device, "u"
	 * could not be read; a bad record after the mark ends the walk. */
	static const char recs[] =
		"+ 7 d 755 2 0 0 0 1 1 1 1 \0"
		"+ 7 f 644 1 0 0 3 1 1 1 1 a\0"
		"+ 7 d 755 2 0 0 0 1 1 1 1 m\0"
		"- 7 d 700 2 0 0 0 1 1 1 1 u\0"
		"+ 7 f 644 1 0 0 3 1 1 1 1 x/deep\0" /* not an entry of step 1 */
		"junk\0"			     /* left out in step 1 */
		"/\0"
		"+ 7 d 755 2 0 0 0 1 1 1 1 d\0"
		"+ 7 f 644 1 0 0 3 1 1 1 1 d/f\0"
		"+ 9 d 755 2 0 0 0 1 1 1 1 m\0"
		"- 7 d 700 2 0 0 0 1 1 1 1 u\0"
		"/\0";
	static const char via_stat[] = "+ 3 x41ed 2 0 0 0 1 1 1 1 .\n\0"
				       "+ 3 x81a4 1 0 0 3 1 1 1 1 ./a\n\0/\0"
				       "+ 3 x41ed 2 0 0 0 1 1 1 1 ./s\n\0"
				       "+ 3 x81a4 1 0 0 3 1 1 1 1 ./s/f\n\0/\0";
	static const char bad_walk[] = "+ 7 d 755 2 0 0 0 1 1 1 1 \0/\0"
				       "+ 7 f 644 1 0 0 3 1 1 1 1 a\0"
				       "+ 7 f 644 1 0 0 3 1 1 1 1 b/../c\0"
				       "+ 7 f 644 1 0 0 3 1 1 1 1 z\0/\0";
	static const char no_mark[] = "+ 7 f 644 1 0 0 3 1 1 1 1 a\0";
	char buf[1024];
	struct seen s = { "", 0, 0 };

	memcpy(buf, recs, sizeof(recs));
	CHECK(find_tree_each(buf, sizeof(recs) - 1, note, &s) == 0);
	CHECK(!strcmp(s.text, "+a +m/ *u/ L +d/ +d/f *m/ *u/ W ") ||
	      !fprintf(stderr, "%s\n", s.text));
	memset(&s, 0, sizeof(s));
	memcpy(buf, via_stat, sizeof(via_stat));
	CHECK(find_tree_each(buf, sizeof(via_stat) - 1, note, &s) == 0);
	CHECK(!strcmp(s.text, "+a L +s/ +s/f W ") || !fprintf(stderr, "%s\n", s.text));
	/* A name that cannot be shown ends the walk: no whole mark. */
	memset(&s, 0, sizeof(s));
	memcpy(buf, bad_walk, sizeof(bad_walk));
	CHECK(find_tree_each(buf, sizeof(bad_walk) - 1, note, &s) == 0);
	CHECK(!strcmp(s.text, "L +a ") || !fprintf(stderr, "%s\n", s.text));
	/* No first mark: not an answer. */
	memset(&s, 0, sizeof(s));
	memcpy(buf, no_mark, sizeof(no_mark));
	CHECK(find_tree_each(buf, sizeof(no_mark) - 1, note, &s) == -EPROTO);
	/* Symlinks with the target after them; a target alone, an empty
	 * one, or one cut short is no target. */
	{
		static const char links[] = "+ 7 d 755 2 0 0 0 1 1 1 1 \0/\0"
					    "+ 7 l 777 1 0 0 1 1 1 1 1 k\0L ../x\0"
					    "L stray\0"
					    "+ 7 l 777 1 0 0 1 1 1 1 1 m\0L \0"
					    "+ 7 f 644 1 0 0 3 1 1 1 1 f\0"
					    "+ 7 l 777 1 0 0 1 1 1 1 1 n\0L cut";

		memset(&s, 0, sizeof(s));
		memcpy(buf, links, sizeof(links));
		CHECK(find_tree_each(buf, sizeof(links) - 1, note, &s) == 0);
		CHECK(!strcmp(s.text, "L +k>../x +m +f +n ") ||
		      !fprintf(stderr, "%s\n", s.text));
	}
	/* busybox's batches: the lines of one stat(1), each an entry; a
	 * symlink in one gets no target, a line cut short is dropped, a bad
	 * line in the walk ends it. */
	{
		static const char batch[] = "+ 3 x41ed 2 0 0 0 1 1 1 1 .\n\0"
					    "B 3 x81a4 1 0 0 3 1 1 1 1 ./a\n"
					    "3 x41ed 2 0 0 0 1 1 1 1 ./s\n\0/\0"
					    "B 3 x81a4 1 0 0 3 1 1 1 1 ./s/f\n"
					    "3 xa1ff 1 0 0 3 1 1 1 1 ./s/l\n\0L t\0"
					    "B 3 x81a4 1 0 0 3 1 1 1 1 ./s/g\n3 x81\0"
					    "B 3 x81a4 1 0 0 3 1 1 1 1 ./s/h\njunk\n"
					    "3 x81a4 1 0 0 3 1 1 1 1 ./s/i\n\0/\0";

		memset(&s, 0, sizeof(s));
		memcpy(buf, batch, sizeof(batch));
		CHECK(find_tree_each(buf, sizeof(batch) - 1, note, &s) == 0);
		CHECK(!strcmp(s.text, "+a +s/ L +s/f +s/l +s/g +s/h ") ||
		      !fprintf(stderr, "%s\n", s.text));
	}
	/* The caller may stop. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	memcpy(buf, recs, sizeof(recs));
	CHECK(find_tree_each(buf, sizeof(recs) - 1, note, &s) == 0 && s.calls == 2);
}

static int count(void *ctx, const char *name, const struct stat *st)
{
	(void)name, (void)st;
	++*(int *)ctx;
	return 0;
}

/* Run the tree script in dir with /bin/sh, PATH set to `path` (NULL: as it
 * is); its output into out.  follow < 0: the listing script of "." instead. */
static int run_tree(const char *dir, const char *path, int follow, size_t max,
		    struct strbuf *out)
{
	struct strbuf cmd = STRBUF_INIT(1 << 20), script = STRBUF_INIT(1 << 20);
	char file[] = "/tmp/sbxfs-test-tree-sh-XXXXXX", buf[4096];
	int fd = mkstemp(file), status = -1;
	size_t n;
	FILE *p;

	if (fd < 0 ||
	    (follow < 0 ? strbuf_addf(&script, "d=.; ") || find_script_list(&script, "d")
			: find_script_tree(&script, follow, max)) ||
	    write(fd, script.buf, script.len) != (ssize_t)script.len)
		goto out;
	strbuf_addf(&cmd, "cd %s && %s%s /bin/sh %s", dir, path ? "PATH=" : "",
		    path ? path : "", file);
	p = popen(cmd.buf, "r");
	if (!p)
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), p)))
		strbuf_add(out, buf, n);
	status = pclose(p);
	status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
out:
	if (fd >= 0) {
		close(fd);
		unlink(file);
	}
	strbuf_release(&cmd);
	strbuf_release(&script);
	return status;
}

static void check_script(const char *path)
{
	char dir[] = "/tmp/sbxfs-test-tree-XXXXXX", cmd[512];
	struct strbuf out = STRBUF_INIT(1 << 20);
	struct seen s = { "", 0, 0 };

	CHECK(mkdtemp(dir) != NULL);
	snprintf(
		cmd, sizeof(cmd),
		"cd %s && mkdir -p 'a/b c' e && echo x > 'a/b c/f' && echo y > a/g && "
		"ln -s a l && ln -s nowhere dead && touch \"q'uote\" \"$(printf 'n\\nl')\"",
		dir);
	CHECK(system(cmd) == 0);
	run_tree(dir, path, 0, 1 << 20, &out);
	CHECK(find_tree_each(out.buf, out.len, note, &s) == 0);
	CHECK(strstr(s.text, "+dead>nowhere ") || !fprintf(stderr, "%s\n", s.text));
	/* Orders within a directory are find's: check what matters. */
	CHECK(strstr(s.text, " L ") && strstr(s.text, " W "));
	CHECK(strstr(s.text, "+a/b c/ +a/b c/f ") || strstr(s.text, "+a/b c/f +") ||
	      !fprintf(stderr, "%s\n", s.text));
	CHECK(strstr(s.text, "+l>a ") && strstr(s.text, "+e/ ") &&
	      strstr(s.text, "+q'uote "));
	CHECK(strstr(s.text, " L ") < strstr(s.text, "+a/g "));
	CHECK(strstr(s.text, "+n\nl ") || !fprintf(stderr, "%s\n", s.text));
	strbuf_release(&out);
	/* The listing of one directory: the same names. */
	{
		int entries = 0;

		run_tree(dir, path, -1, 0, &out);
		CHECK(find_each(out.buf, out.len, count, &entries) == 0);
		CHECK(entries == 6 || !fprintf(stderr, "%d entries\n", entries));
		strbuf_release(&out);
	}
	/* Cut at 30 bytes: step 1 whole, the walk not. */
	memset(&s, 0, sizeof(s));
	run_tree(dir, path, 0, 30, &out);
	CHECK(find_tree_each(out.buf, out.len, note, &s) == 0);
	CHECK((strstr(s.text, "L ") && !strstr(s.text, " W ") &&
	       !strstr(s.text, "a/g")) ||
	      !fprintf(stderr, "%s\n", s.text));
	strbuf_release(&out);
	/* Following symlinks (a file API that does): the link to a directory
	 * is one, walked; a dangling one is left out. */
	memset(&s, 0, sizeof(s));
	run_tree(dir, path, 1, 1 << 20, &out);
	CHECK(find_tree_each(out.buf, out.len, note, &s) == 0);
	CHECK((strstr(s.text, "+l/ ") && strstr(s.text, "+l/g ") &&
	       !strstr(s.text, "dead")) ||
	      !fprintf(stderr, "%s\n", s.text));
	strbuf_release(&out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

void test_tree(void)
{
	check_parser();
	check_script(NULL);
	/* busybox: no find -printf, stat -c instead (in CI for the docker
	 * tests; skipped where it is absent). */
	if (access("/bin/busybox", X_OK) == 0) {
		char bin[] = "/tmp/sbxfs-test-bb-XXXXXX", cmd[256];

		CHECK(mkdtemp(bin) != NULL);
		snprintf(cmd, sizeof(cmd),
			 "for a in find stat head printf sh cat; do "
			 "ln -s /bin/busybox %s/$a; done",
			 bin);
		CHECK(system(cmd) == 0);
		check_script(bin);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", bin);
		CHECK(system(cmd) == 0);
	}
}
