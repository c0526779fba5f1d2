/* SPDX-License-Identifier: MIT */
/*
 * The synthetic files: MOUNT/ctl and each sandbox's ctl, status, err, exec
 * and cmd/N/ files.  Text files are built at open and served by offset;
 * streams block until a command's output arrives; control files parse one
 * command per line against a verb table.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbxfs/box.h"
#include "sbxfs/cmd.h"
#include "sbxfs/ctl.h"
#include "sbxfs/log.h"
#include "sbxfs/req.h"
#include "sbxfs/mount.h"
#include "sbxfs/names.h"
#include "sbxfs/node.h"
#include "sbxfs/notify.h"
#include "sbxfs/sbxfs.h"
#include "sbxfs/status.h"
#include "sbxfs/strbuf.h"
#include "sbxfs/synth.h"
#include "synth_int.h"

/* The tree the request is on (mount.h). */
static struct sbxfs *FS(fuse_req_t req)
{
	(void)req;
	return mount_serving();
}

/*
 * The synthetic tree, described once as a table: for each kind of
 * node, the directory it sits in, its name, its type and permissions, and
 * whether it is a stream.  Readable and writable are the mode's bits.  A
 * row without a name stands for the entries its directory lists by number
 * or by sandbox.  Rows are in listing order.
 */
/* clang-format off */
static const struct synth_file synth_tab[] = {
	/* parent    name       kind          cfile       mode            flags */
	{ NODE_ROOT, "",        NODE_ROOT,    0,          S_IFDIR | 0755, 0 }, /* the mount itself */
	{ NODE_ROOT, "ctl",     NODE_ROOTCTL, 0,          S_IFREG | 0644, 0 },
	{ NODE_ROOT, "status",  NODE_TREESTATUS, 0,       S_IFREG | 0444, SYNTH_MULTI },
	{ NODE_ROOT, "err",     NODE_TREEERR, 0,          S_IFREG | 0444, SYNTH_MULTI },
	{ NODE_ROOT, NULL,      NODE_BOX,     0,          S_IFDIR | 0755, 0 }, /* the provider's list */
	{ NODE_BOX,  "ctl",     NODE_BOXCTL,  0,          S_IFREG | 0644, 0 },
	{ NODE_BOX,  "status",  NODE_STATUS,  0,          S_IFREG | 0444, 0 },
	{ NODE_BOX,  "err",     NODE_ERR,     0,          S_IFREG | 0444, 0 },
	{ NODE_BOX,  "exec",    NODE_EXEC,    0,          S_IFREG | 0644, SYNTH_STREAM },
	{ NODE_BOX,  "cmd",     NODE_CMDS,    0,          S_IFDIR | 0555, 0 },
	{ NODE_BOX,  "root",    NODE_FSROOT,  0,          S_IFDIR | 0755, SYNTH_PROVIDER },
	{ NODE_CMDS, NULL,      NODE_CMD,     0,          S_IFDIR | 0555, 0 }, /* 1, 2, ... */
	{ NODE_CMDS, "last",    NODE_CMDLAST, 0,          S_IFLNK | 0777, 0 }, /* once one ran */
	{ NODE_CMD,  "cmdline", NODE_CMDFILE, CF_CMDLINE, S_IFREG | 0444, 0 },
	{ NODE_CMD,  "stdout",  NODE_CMDFILE, CF_STDOUT,  S_IFREG | 0444, SYNTH_STREAM },
	{ NODE_CMD,  "stderr",  NODE_CMDFILE, CF_STDERR,  S_IFREG | 0444, SYNTH_STREAM },
	{ NODE_CMD,  "out",     NODE_CMDFILE, CF_OUT,     S_IFREG | 0444, SYNTH_STREAM },
	{ NODE_CMD,  "status",  NODE_CMDFILE, CF_STATUS,  S_IFREG | 0444, 0 },
	{ NODE_CMD,  "stdin",   NODE_CMDFILE, CF_STDIN,   S_IFREG | 0200, 0 },
	{ NODE_CMD,  "ctl",     NODE_CMDFILE, CF_CTL,     S_IFREG | 0200, 0 },
};
/* clang-format on */

#define SYNTH_NTAB (sizeof(synth_tab) / sizeof(synth_tab[0]))

static const struct synth_file *row_of(enum node_kind kind, int cfile)
{
	for (size_t i = 0; i < SYNTH_NTAB; i++)
		if (synth_tab[i].kind == kind &&
		    (kind != NODE_CMDFILE || synth_tab[i].cfile == cfile))
			return &synth_tab[i];
	return NULL;
}

const struct synth_file *synth_file_of(const struct node *n)
{
	return row_of(n->kind, n->cfile);
}

static const struct synth_file *child_named(enum node_kind parent, const char *name)
{
	for (size_t i = 0; i < SYNTH_NTAB; i++)
		if (synth_tab[i].parent == parent && synth_tab[i].kind != parent &&
		    synth_tab[i].name && !strcmp(synth_tab[i].name, name))
			return &synth_tab[i];
	return NULL;
}

/* A directory of the synthetic tree (root/ is the provider's). */
static int synth_is_dir(const struct node *n)
{
	const struct synth_file *sf = synth_file_of(n);

	return sf && S_ISDIR(sf->mode) && !(sf->flags & SYNTH_PROVIDER);
}

/* N as written in cmd/: decimal, no sign, no leading zero. */
static unsigned parse_cmd_number(const char *s)
{
	unsigned long n;
	char *end;

	if (s[0] < '1' || s[0] > '9' || strlen(s) > 9)
		return 0;
	n = strtoul(s, &end, 10);
	return *end ? 0 : (unsigned)n;
}

int synth_lookup(struct sbxfs *fs, const struct node *parent, const char *name,
		 struct synth_child *out)
{
	const struct synth_file *sf;
	int rc;

	if (!synth_is_dir(parent))
		return -ENOTDIR;
	out->cmd = parent->cmd;
	out->box = NULL;
	sf = child_named(parent->kind, name);
	if (sf && (sf->flags & SYNTH_MULTI) && !fs->multi)
		sf = NULL; /* a sandbox's name, in a mount of one provider */
	if (sf) {
		if (sf->kind == NODE_CMDLAST && !box_cmd_count(parent->box))
			return -ENOENT;
		out->file = sf;
		return 0;
	}
	if (parent->kind == NODE_ROOT) {
		if (!sbx_name_valid(name) || fs->failed[0])
			return -ENOENT; /* a provider that did not start has none */
		rc = box_exists(fs, name);
		if (rc <= 0)
			return rc ? rc : -ENOENT;
		out->box = box_get(fs, name);
		if (!out->box)
			return -ENOMEM;
		out->file = row_of(NODE_BOX, 0);
		return 0;
	}
	if (parent->kind == NODE_CMDS) {
		out->cmd = parse_cmd_number(name);
		if (!out->cmd || out->cmd > box_cmd_count(parent->box))
			return -ENOENT;
		out->file = row_of(NODE_CMD, 0);
		return 0;
	}
	return -ENOENT;
}

int synth_list(struct sbxfs *fs, struct node *n, struct cache_dir **out)
{
	struct cache_dir *d;
	unsigned count = 0;
	char num[16];
	int rc = 0;

	if (!synth_is_dir(n))
		return -ENOTDIR;
	d = cache_dir_new();
	if (!d)
		return -ENOMEM;
	if (n->kind == NODE_CMDS)
		count = box_cmd_count(n->box);
	else if (n->kind == NODE_ROOT && !fs->failed[0])
		rc = box_list_refresh(fs); /* a failed listing fails readdir */
	for (size_t i = 0; i < SYNTH_NTAB && !rc; i++) {
		const struct synth_file *sf = &synth_tab[i];
		struct stat st = { .st_mode = sf->mode & S_IFMT };

		if (sf->parent != n->kind || sf->kind == n->kind ||
		    ((sf->flags & SYNTH_MULTI) && !fs->multi))
			continue;
		if (sf->name) {
			if (sf->kind != NODE_CMDLAST || count)
				rc = cache_dir_add(d, sf->name, &st);
		} else if (sf->kind == NODE_BOX) {
			pthread_mutex_lock(&fs->list_lock);
			for (size_t j = 0; j < fs->list_n && !rc; j++)
				rc = cache_dir_add(d, fs->list[j], &st);
			pthread_mutex_unlock(&fs->list_lock);
		} else {
			for (unsigned j = 1; j <= count && !rc; j++) {
				snprintf(num, sizeof(num), "%u", j);
				rc = cache_dir_add(d, num, &st);
			}
		}
	}
	if (rc) {
		cache_dir_put(d);
		return rc;
	}
	*out = d;
	return 0;
}

double synth_attr_timeout(const struct node *n)
{
	/* A command's output grows: tail -f asks its size every second. */
	return n->kind == NODE_CMDFILE && (synth_file_of(n)->flags & SYNTH_STREAM)
		       ? 0
		       : SYNTH_TIMEOUT;
}

void synth_attr(struct sbxfs *fs, const struct node *n, struct stat *st)
{
	const struct synth_file *sf = synth_file_of(n);

	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atime = st->st_mtime = st->st_ctime = fs->started;
	st->st_nlink = S_ISDIR(sf->mode) ? 2 : 1;
	st->st_blksize = 4096;
	st->st_mode = sf->mode;
	st->st_size = synth_size(fs, n);
	/* The kernel keeps directory listings while the mtime stays: the
	 * directories whose entries change carry the time of the change. */
	if (n->kind == NODE_ROOT) {
		pthread_mutex_lock(&fs->list_lock);
		if (fs->list_mtime.tv_sec)
			st->st_mtim = fs->list_mtime;
		pthread_mutex_unlock(&fs->list_lock);
	} else if (n->kind == NODE_CMDS) {
		pthread_mutex_lock(&n->box->lock);
		if (n->box->cmds_mtime.tv_sec)
			st->st_mtim = n->box->cmds_mtime;
		pthread_mutex_unlock(&n->box->lock);
	}
}

/* ---- synthetic files ---- */

struct sfile {
	struct node *node; /* pinned by the open file */
	struct box *box;   /* reference, or NULL */
	struct cmd *cmd;   /* reference, or NULL */
	char *text;	   /* built at open for text files */
	size_t len;
	int writer;	      /* opened for writing */
	int refs;	      /* atomic: the open file, and each request using it */
	pthread_mutex_t lock; /* guards cmd, rbase */
	/* exec: the kernel's offset of the first read since the command
	 * started (-1 before it), where its output starts: opened O_RDWR,
	 * the offset counts what was written too. */
	off_t rbase;
	struct sfile *prev, *next; /* in open_files */
};

/* Every open synthetic file, so that those the kernel never releases (the
 * daemon exits while they are open) are freed at exit. */
static struct {
	pthread_mutex_t lock;
	struct sfile *head;
} open_files = { PTHREAD_MUTEX_INITIALIZER, NULL };

static int is_stream(const struct node *n)
{
	return (synth_file_of(n)->flags & SYNTH_STREAM) != 0;
}

static int is_writable(const struct node *n)
{
	return (synth_file_of(n)->mode & 0222) != 0;
}

static int is_readable(const struct node *n)
{
	return (synth_file_of(n)->mode & 0444) != 0;
}

static int sfile_build(struct sbxfs *fs, struct sfile *f)
{
	struct strbuf sb = STRBUF_INIT(1 << 20);
	int rc = synth_build_text(fs, f->node, f->cmd, &sb);

	if (rc) {
		strbuf_release(&sb);
		return rc;
	}
	f->text = strbuf_detach(&sb, &f->len);
	return 0;
}

/* A request uses the open file until it has replied: a RELEASE may be
 * served while a READ of an interrupted reader is still being answered. */
static struct sfile *sfile_get(struct fuse_file_info *fi)
{
	struct sfile *f = (struct sfile *)(uintptr_t)fi->fh;

	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

static void sfile_free(struct sfile *f)
{
	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	pthread_mutex_lock(&open_files.lock);
	if (f->prev)
		f->prev->next = f->next;
	else if (open_files.head == f)
		open_files.head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&open_files.lock);
	cmd_put(f->cmd);
	box_put(f->box);
	free(f->text);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void synth_open(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct sbxfs *fs = FS(req);
	int acc = fi->flags & O_ACCMODE;
	struct sfile *f;
	int rc;

	if ((acc != O_RDONLY && !is_writable(n)) ||
	    (acc != O_WRONLY && !is_readable(n))) {
		if (n->box && acc != O_RDONLY)
			box_fail(n->box, -EACCES, "\"%s\" cannot be written", n->name);
		reply_err(req, -EACCES);
		return;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		reply_err(req, -ENOMEM);
		return;
	}
	pthread_mutex_init(&f->lock, NULL);
	f->refs = 1;
	f->rbase = -1;
	f->node = n;
	pthread_mutex_lock(&open_files.lock);
	f->next = open_files.head;
	if (f->next)
		f->next->prev = f;
	open_files.head = f;
	pthread_mutex_unlock(&open_files.lock);
	f->box = n->box ? box_ref(n->box) : NULL;
	f->writer = acc != O_RDONLY;
	if (n->kind == NODE_CMDFILE && !(f->cmd = box_cmd_get(n->box, n->cmd))) {
		sfile_free(f);
		reply_err(req, -ENOENT);
		return;
	}
	if (acc != O_WRONLY && !is_stream(n)) {
		/* status asks the provider: Ctrl-C ends the wait. */
		volatile int intr;

		req_intr_begin(req, &intr);
		rc = sfile_build(fs, f);
		req_intr_end(req);
		if (rc) {
			sfile_free(f);
			reply_err(req, rc);
			return;
		}
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->direct_io = 1;
	if (reply_open(req, fi))
		sfile_free(f);
}

/* ---- control messages ---- */

static void root_ctl_fail(struct sbxfs *fs, int rc, const char *why)
{
	sbx_warn("ctl: %s (%s)", why, strerror(-rc));
	box_tree_fail(fs, why);
}

/* "new NAME [k=v ...]" (argv[0] is ignored). */
int box_create(struct sbxfs *fs, int argc, char **argv, char *why, size_t whysize)
{
	struct sbx_kvlist args = { 0 };
	const char *name = argv[1];
	int rc = 0;

	if (!sbx_name_valid(name)) {
		snprintf(
			why, whysize,
			"bad sandbox name \"%.80s\": use 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit",
			name, SBX_NAME_MAX);
		rc = -EINVAL;
		goto out;
	}
	for (int i = 2; i < argc && !rc; i++) {
		char *k, *v;

		if (ctl_split_kv(argv[i], &k, &v)) {
			snprintf(why, whysize,
				 "new %s: expected key=value, not \"%.80s\"", name,
				 argv[i]);
			rc = -EINVAL;
		} else {
			rc = sbx_kv_add(&args, k, v);
		}
	}
	if (rc)
		goto out;
	sbx_fail_clear();
	rc = fs->provider->ops.create(fs->provider, name, &args);
	if (rc)
		snprintf(why, whysize, "new %s: %s", name,
			 sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
	box_list_dirty(fs);
out:
	if (rc)
		root_ctl_fail(fs, rc, why);
	sbx_kv_free(&args);
	return rc;
}

int box_remove(struct sbxfs *fs, const char *name, char *why, size_t whysize)
{
	int rc;

	sbx_fail_clear();
	rc = fs->provider->ops.remove(fs->provider, name);
	box_list_dirty(fs);
	if (rc) {
		snprintf(why, whysize, "rm %s: %s", name,
			 sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
		root_ctl_fail(fs, rc, why);
		return rc;
	}
	cache_forget_box(fs->cache, name);
	box_deleted(fs, name);
	return 0;
}

enum { RC_NEW, RC_RM };
static const struct ctl_verb root_verbs[] = {
	[RC_NEW] = { "new", 1, -1 },
	[RC_RM] = { "rm", 1, 1 },
	{ NULL, 0, 0 },
};

enum { BC_START, BC_STOP, BC_RESTART, BC_DELETE };
static const struct ctl_verb box_verbs[] = {
	[BC_START] = { "start", 0, 0 },
	[BC_STOP] = { "stop", 0, 0 },
	[BC_RESTART] = { "restart", 0, 0 },
	[BC_DELETE] = { "delete", 0, 0 },
	{ NULL, 0, 0 },
};

enum { CC_KILL };
static const struct ctl_verb cmd_verbs[] = {
	[CC_KILL] = { "kill", 0, 1 },
	{ NULL, 0, 0 },
};

static int root_ctl_line(struct sbxfs *fs, char *line)
{
	struct ctl_cmd c;
	char why[768];
	int rc = ctl_parse_line(&c, line, root_verbs, why, sizeof(why));

	if (rc == -ENODATA)
		return 0;
	if (rc) {
		root_ctl_fail(fs, rc, why);
		return rc;
	}
	switch (c.index) {
	case RC_NEW:
		rc = box_create(fs, c.argc, c.argv, why, sizeof(why));
		break;
	case RC_RM:
		rc = sbx_name_valid(c.argv[1]) ? box_exists(fs, c.argv[1]) : 0;
		if (rc < 0) {
			snprintf(why, sizeof(why), "rm %.80s: listing sandboxes: %s",
				 c.argv[1],
				 sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
			root_ctl_fail(fs, rc, why);
			return rc;
		}
		if (!rc) {
			snprintf(why, sizeof(why), "rm: no sandbox \"%.80s\"", c.argv[1]);
			root_ctl_fail(fs, -ENOENT, why);
			return -ENOENT;
		}
		rc = box_remove(fs, c.argv[1], why, sizeof(why));
		break;
	}
	/* A write to a ctl file may tell the kernel at once. */
	if (!rc && sbx_name_valid(c.argv[1])) {
		sbxfs_invalidate_name_now(fs, c.argv[1]);
		sbxfs_invalidate_inode_now(fs, fs->root_ino);
	}
	return rc;
}

static int box_ctl_line(struct sbxfs *fs, struct box *b, char *line)
{
	struct sbx_provider *p = fs->provider;
	struct ctl_cmd c;
	char why[768];
	int rc = ctl_parse_line(&c, line, box_verbs, why, sizeof(why));

	if (rc == -ENODATA)
		return 0;
	sbx_fail_clear();
	/* A verb changes what status and ctl say: their sizes are asked for
	 * again. */
	pthread_mutex_lock(&b->lock);
	b->sizes_known = 0;
	pthread_mutex_unlock(&b->lock);
	if (rc) {
		/* An unknown verb may be the provider's (archive, ...). */
		if (c.index >= 0 || c.argc < 1) {
			box_fail(b, rc, "ctl: %s", why);
			return rc;
		}
		rc = p->ops.ctl(p, b->name, c.argc, c.argv);
		if (rc)
			box_fail(b, rc, "ctl: %s",
				 sbx_fail_text()[0] ? sbx_fail_text() : why);
		return rc;
	}
	switch (c.index) {
	case BC_START:
		rc = p->ops.start(p, b->name);
		break;
	case BC_STOP:
		rc = p->ops.stop(p, b->name);
		break;
	case BC_RESTART:
		rc = p->ops.stop(p, b->name);
		if (!rc)
			rc = p->ops.start(p, b->name);
		break;
	case BC_DELETE:
		rc = box_remove(fs, b->name, why, sizeof(why));
		if (rc)
			box_fail(b, rc, "%s", why);
		else {
			sbxfs_invalidate_name_now(fs, b->name);
			sbxfs_invalidate_inode_now(fs, fs->root_ino);
		}
		return rc;
	}
	if (rc)
		box_fail(b, rc, "%s: %s", box_verbs[c.index].verb,
			 sbx_fail_text()[0] ? sbx_fail_text() : strerror(-rc));
	sbxfs_invalidate_box(fs, b->name);
	return rc;
}

static int cmd_ctl_line(struct box *b, struct cmd *cmd, char *line)
{
	struct ctl_cmd c;
	char why[768];
	int rc = ctl_parse_line(&c, line, cmd_verbs, why, sizeof(why));
	int sig = SIGTERM;

	if (rc == -ENODATA)
		return 0;
	if (!rc && c.argc > 1 && (sig = status_signal_parse(c.argv[1])) < 0) {
		snprintf(why, sizeof(why), "kill: unknown signal \"%.40s\"", c.argv[1]);
		rc = -EINVAL;
	}
	if (!rc) {
		rc = cmd_signal(cmd, sig);
		if (rc == -ESRCH)
			snprintf(why, sizeof(why), "kill: command %u is not running",
				 cmd->n);
		else if (rc)
			snprintf(why, sizeof(why), "kill: %s", strerror(-rc));
	}
	if (rc)
		box_fail(b, rc, "cmd %u: %s", cmd->n, why);
	return rc;
}

/* Feed each line of a control write to `fn`; stop at the first error. */
static int ctl_write(struct sbxfs *fs, struct sfile *f, const char *data, size_t size)
{
	size_t pos = 0;
	char *buf, *line;
	int rc = 0;

	if (size > CTL_WRITE_MAX) {
		char why[128];

		snprintf(why, sizeof(why),
			 "control message too long (%zu bytes, at most %d)", size,
			 CTL_WRITE_MAX);
		if (f->box)
			box_fail(f->box, -E2BIG, "%s", why);
		else
			root_ctl_fail(fs, -E2BIG, why);
		return -E2BIG;
	}
	if (memchr(data, '\0', size)) {
		const char *why = "control message holds a NUL byte";

		if (f->box)
			box_fail(f->box, -EINVAL, "ctl: %s", why);
		else
			root_ctl_fail(fs, -EINVAL, why);
		return -EINVAL;
	}
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, data, size);
	buf[size] = '\0';
	while (!rc && (line = ctl_next_line(buf, size, &pos))) {
		switch (f->node->kind) {
		case NODE_ROOTCTL:
			rc = root_ctl_line(fs, line);
			break;
		case NODE_BOXCTL:
			rc = box_ctl_line(fs, f->box, line);
			break;
		default:
			rc = cmd_ctl_line(f->box, f->cmd, line);
			break;
		}
	}
	free(buf);
	return rc;
}

static int exec_write(struct sbxfs *fs, struct sfile *f, const char *data, size_t size)
{
	struct cmd *c = NULL;
	char *line, *start;
	int rc, stdin_open = 0;

	if (size > CTL_WRITE_MAX) {
		box_fail(f->box, -E2BIG,
			 "exec: command line too long (%zu bytes, at most %d)", size,
			 CTL_WRITE_MAX);
		return -E2BIG;
	}
	if (memchr(data, '\0', size)) {
		box_fail(f->box, -EINVAL, "exec: command line holds a NUL byte");
		return -EINVAL;
	}
	line = strndup(data, size);
	if (!line)
		return -ENOMEM;
	if (size && line[size - 1] == '\n')
		line[size - 1] = '\0';
	if (!line[strspn(line, " \t\n")]) {
		free(line);
		box_fail(f->box, -EINVAL, "exec: empty command line");
		return -EINVAL;
	}
	/* "| CMD": CMD's stdin is cmd/N/stdin, open until a writer closes it
	 * (a command line cannot begin with '|'). */
	start = line + strspn(line, " \t");
	if (*start == '|')
		stdin_open = 1, start += 1 + strspn(start + 1, " \t");
	if (!*start) {
		free(line);
		box_fail(f->box, -EINVAL, "exec: \"|\" with no command line after it");
		return -EINVAL;
	}
	rc = box_cmd_start(&c, f->box, start, stdin_open);
	free(line);
	if (rc)
		return rc;
	/* cmd/ has a new entry.  (Safe here: this is a write to exec, not a
	 * request on cmd/ itself.) */
	sbxfs_invalidate_child_now(fs, f->node->parent, "cmd");
	pthread_mutex_lock(&f->lock);
	cmd_put(f->cmd);
	f->cmd = c;
	f->rbase = -1;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* cmd/N/stdin: what a provider without SBX_CAP_STDIN cannot take. */
static ssize_t stdin_write(struct sbxfs *fs, struct sfile *f, const char *buf,
			   size_t size, fuse_req_t req)
{
	if (!(fs->provider->desc->caps & SBX_CAP_STDIN)) {
		box_fail(f->box, -ENOTSUP,
			 "cmd %u: this provider takes no stdin after the start",
			 f->cmd->n);
		return -ENOTSUP;
	}
	if (!f->cmd->stdin_open) {
		box_fail(f->box, -EPIPE,
			 "cmd %u: its stdin was at its end from the start (write \"| "
			 "COMMAND\" to exec for a stdin fed here)",
			 f->cmd->n);
		return -EPIPE;
	}
	return size ? cmd_write_stdin(f->cmd, buf, size, req) : 0;
}

static void sfile_write(fuse_req_t req, struct sfile *f, const char *buf, size_t size)
{
	struct sbxfs *fs = FS(req);
	struct node *n = f->node;
	ssize_t rc;

	if (n->kind == NODE_EXEC)
		rc = exec_write(fs, f, buf, size);
	else if (n->kind == NODE_CMDFILE && n->cfile == CF_STDIN)
		rc = stdin_write(fs, f, buf, size, req);
	else {
		/* A verb may wait long on a provider (start, stop). */
		volatile int intr;

		req_intr_begin(req, &intr);
		rc = ctl_write(fs, f, buf, size);
		req_intr_end(req);
	}
	if (rc < 0)
		reply_err(req, (int)rc);
	else
		reply_write(req, n->kind == NODE_CMDFILE && n->cfile == CF_STDIN
					 ? (size_t)rc
					 : size);
}

static void sfile_read(fuse_req_t req, struct sfile *f, size_t size, off_t off)
{
	struct node *n = f->node;
	enum cmd_stream s = CMD_OUT;
	struct cmd *c;
	char *buf;
	ssize_t got;

	if (!is_stream(n)) {
		if (off >= (off_t)f->len)
			reply_buf(req, NULL, 0);
		else
			reply_buf(req, f->text + off,
				  (size_t)((off_t)f->len - off) < size
					  ? f->len - (size_t)off
					  : size);
		return;
	}
	if (n->kind == NODE_CMDFILE)
		s = n->cfile == CF_STDOUT   ? CMD_STDOUT
		    : n->cfile == CF_STDERR ? CMD_STDERR
					    : CMD_OUT;
	/* exec: this file's command, else the newest at the first read. */
	pthread_mutex_lock(&f->lock);
	if (!f->cmd && n->kind == NODE_EXEC)
		f->cmd = box_cmd_get(f->box, box_cmd_count(f->box));
	c = f->cmd;
	if (c)
		cmd_ref(c);
	if (n->kind == NODE_EXEC) {
		if (f->rbase < 0)
			f->rbase = off;
		off = off < f->rbase ? 0 : off - f->rbase;
	}
	pthread_mutex_unlock(&f->lock);
	if (!c) {
		reply_buf(req, NULL, 0);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		cmd_put(c);
		reply_err(req, -ENOMEM);
		return;
	}
	got = cmd_read(c, s, buf, size, off, req);
	cmd_put(c);
	if (got < 0)
		reply_err(req, (int)got);
	else
		reply_buf(req, buf, (size_t)got);
	free(buf);
}

void synth_read(fuse_req_t req, struct fuse_file_info *fi, size_t size, off_t off)
{
	struct sfile *f = sfile_get(fi);

	sfile_read(req, f, size, off);
	sfile_free(f);
}

void synth_write(fuse_req_t req, struct fuse_file_info *fi, const char *buf, size_t size)
{
	struct sfile *f = sfile_get(fi);

	sfile_write(req, f, buf, size);
	sfile_free(f);
}

void synth_release_all(void)
{
	struct sfile *f;

	for (;;) {
		pthread_mutex_lock(&open_files.lock);
		f = open_files.head;
		if (f)
			f->refs = 1; /* no request runs any more: only the open file */
		pthread_mutex_unlock(&open_files.lock);
		if (!f)
			break;
		sfile_free(f);
	}
}

void synth_release(struct fuse_file_info *fi)
{
	struct sfile *f = (struct sfile *)(uintptr_t)fi->fh;
	struct node *n = f->node;

	if (f->writer && n->kind == NODE_CMDFILE && n->cfile == CF_STDIN)
		cmd_write_stdin(f->cmd, NULL, 0, NULL);
	sfile_free(f);
}
