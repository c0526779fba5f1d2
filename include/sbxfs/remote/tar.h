/* SPDX-License-Identifier: MIT */
/*
 * Tar archives, the way the Docker Engine API moves files: GET
 * /containers/{id}/archive?path=P answers with a tar stream that holds P,
 * and PUT /containers/{id}/archive?path=DIR takes one and unpacks it in
 * DIR.  No I/O here: a provider feeds the reader what its transfer
 * brings and sends what the writer builds.
 *
 * The reader takes POSIX ustar, pax (its 'x' extended headers; 'g' global
 * headers are skipped), GNU archives (base-256 numbers, 'L' and 'K' long
 * names) and old v7 headers.  An archive comes from the sandbox, so it is
 * hostile: every header's checksum, magic and numbers are checked, every
 * length is bounded, and the reader keeps all of its state in struct
 * tar_reader, embedded by the caller: it never allocates.
 *
 * The reader does not judge names.  An entry may be called "../x",
 * "/etc/passwd", "a/../../b" or "": the caller must refuse any name it
 * would not itself create, and for the archive of one file it should use
 * tar_name_is().
 *
 * The writer builds one member's header (a pax header first when ustar
 * cannot hold the name, the link, the size, the owner or the time); the
 * caller sends the data, tar_padding() zeros, and after the last member
 * TAR_END_LEN zeros.
 */
#ifndef SBXFS_REMOTE_TAR_H
#define SBXFS_REMOTE_TAR_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "sbxfs/strbuf.h"

/* The zeros that end an archive: two blocks. */
#define TAR_END_LEN 1024

/* The most a pax extended header and a GNU long name may hold. */
#define TAR_PAX_MAX (64 * 1024)
#define TAR_LONGNAME_MAX 4096

/* One member of an archive. */
struct tar_entry {
	/* The path as the archive gives it (pax "path", GNU 'L' long name,
	 * or ustar prefix "/" name), NUL-terminated.  Unjudged: see above. */
	char name[4096];
	/* Symlink ('2') or hard link ('1') target (pax "linkpath", GNU 'K',
	 * or the linkname field); "" for every other type. */
	char link[4096];
	/* The ustar typeflag; '\0' and '7' are reported as '0'.  Types the
	 * reader does not know ('S' GNU sparse, 'D', 'V', a vendor's letter)
	 * are reported as they are, their data as it is: the caller decides. */
	char type;
	mode_t mode; /* the mode field & 07777 */
	uid_t uid;   /* pax "uid" wins; (uid_t)-1 is refused */
	gid_t gid;   /* pax "gid" wins; (gid_t)-1 is refused */
	/* The bytes of data that follow, at most 1 << 62 (pax "size" wins);
	 * 0 for the types that carry none: hard link, symlink, devices,
	 * directory, fifo ('1' to '6'), whatever their size field says. */
	off_t size;
	/* pax "mtime" (with its fraction) wins over the mtime field. */
	struct timespec mtime;
};

/*
 * Called once for each member, in order, with its header; not for the
 * pax 'x' and 'g' or GNU 'L' and 'K' headers, which the reader consumes.
 * `e` is the reader's and only valid during the call.  Return 0 to go on;
 * anything else stops the reader, and tar_feed() returns it.
 */
typedef int (*tar_entry_fn)(void *ctx, const struct tar_entry *e);

/*
 * Called after the entry callback zero or more times with the member's
 * data, in order, never with len 0, exactly e->size bytes in all (fewer
 * only if the archive is cut or the reader stopped); `buf` points into
 * what the caller fed.  The padding after the data is consumed silently.
 * Return 0 to go on; anything else stops the reader.
 */
typedef int (*tar_data_fn)(void *ctx, const char *buf, size_t len);

/* The record parser of a pax header, between pieces of input.  Private. */
struct tar_pax {
	int state;    /* reading the LEN, the key or the value */
	size_t len;   /* the record's length, as its LEN says */
	size_t pos;   /* bytes of the record seen */
	char key[12]; /* the key, if it is short enough to be one we know */
	size_t klen;  /* the key's length (may exceed sizeof(key)) */
	int kind;     /* which key: path, linkpath, size, ... or unknown */
	char val[40]; /* a number's value, not NUL-terminated */
	size_t vlen;  /* the value's length so far */
};

/* A reader's state.  Private: set up with tar_reader_init(). */
struct tar_reader {
	tar_entry_fn entry;
	tar_data_fn data;
	void *ctx;
	int state;	 /* in a header, data, a meta header, padding, ... */
	int err;	 /* the first error, returned by every later call */
	char block[512]; /* the header being read */
	size_t fill;	 /* its bytes so far */
	off_t pos;	 /* bytes of the archive seen, for messages */
	off_t left;	 /* bytes of data (or of a meta header) to come */
	off_t pad;	 /* then bytes of padding */
	char meta;	 /* the meta header being read: 'x', 'g', 'L' or 'K' */
	size_t mlen;	 /* bytes of a GNU long name so far */
	unsigned have;	 /* the fields meta headers set for the next entry */
	struct tar_pax pax;
	struct tar_entry e; /* the next entry, as meta headers fill it */
};

/*
 * Set up t to read one archive, calling entry and data with ctx.
 * Neither callback may be NULL.  Nothing to release afterwards.
 */
void tar_reader_init(struct tar_reader *t, tar_entry_fn entry, tar_data_fn data,
		     void *ctx);

/*
 * Take the next len bytes of the archive, in pieces of any size (one byte
 * at a time works), calling the callbacks as members and data complete.
 * Returns 0; -EPROTO with sbx_failf() text for a bad archive (a bad
 * checksum, magic or number, a pax record whose length is wrong, a name
 * over 4095 bytes, a pax header over TAR_PAX_MAX or a long name over
 * TAR_LONGNAME_MAX bytes, a lone zero block, anything but zeros after
 * the end, an old GNU sparse member whose map goes on in blocks of its
 * own); or the first nonzero return of a callback.  Either stops the
 * reader: every later call returns the same value.
 */
int tar_feed(struct tar_reader *t, const char *buf, size_t len);

/*
 * The stream has ended.  Returns 0 if it ended at a member boundary: after
 * the two zero blocks, after one, or (as some writers do) right after a
 * complete member with no end blocks at all; an empty stream is 0 too, so
 * the caller checks that it got the member it wanted.  -EPROTO with
 * sbx_failf() text if the stream was cut inside a header, data, padding,
 * or after a meta header with no member; or the error that stopped the
 * reader.
 */
int tar_finish(struct tar_reader *t);

/*
 * Whether an entry's name is exactly the base name `base` (no '/'),
 * allowing one leading "./": Docker's archive of one file names it by its
 * base name.  1 or 0.
 */
int tar_name_is(const char *entry_name, const char *base);

/*
 * Append the header of member e to out: a pax 'x' header first when the
 * name does not fit ustar (over 100 bytes and no '/' splits it into a
 * prefix of at most 155 and a name of at most 100), the link is over 100
 * bytes, the size is 8 GiB or more, the uid or gid is over 07777777, or
 * the mtime is negative, past the octal field or has nanoseconds; then
 * the ustar header ("ustar\0" "00", octal fields, no user or group names,
 * device numbers 0).  e->size is written as given, whatever the type.
 * Returns 0; -EINVAL for an empty or unterminated name or link, a size
 * below 0 or over 1 << 62, tv_nsec out of range, a uid or gid of -1 (the
 * reader refuses them); or out's -E2BIG or -ENOMEM, with out as it was
 * before the call.
 */
int tar_header(struct strbuf *out, const struct tar_entry *e);

/* The zeros that follow `size` bytes of data, up to a 512-byte boundary. */
off_t tar_padding(off_t size);

#endif
