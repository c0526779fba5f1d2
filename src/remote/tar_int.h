/* SPDX-License-Identifier: MIT */
/* What the tar reader (tar.c) and writer (tar_write.c) share. */
#ifndef SBXFS_REMOTE_TAR_INT_H
#define SBXFS_REMOTE_TAR_INT_H

#define TAR_BLOCK 512
#define TAR_NUM_MAX (1ULL << 62) /* the most a size or a time may be */

/* A header block, as POSIX lays it out.  GNU's old sparse headers put
 * their map where the prefix is (see tar.c). */
struct ustar {
	char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], sum[8], type;
	char link[100], magic[6], version[2], uname[32], gname[32], devmajor[8];
	char devminor[8], prefix[155], pad[12];
};
_Static_assert(sizeof(struct ustar) == TAR_BLOCK, "a header is a block");

extern const char tar_zeros[TAR_BLOCK];

/* The sum of a header's bytes with its checksum field counted as spaces:
 * unsigned, or (sign) signed, as some old tars summed. */
long tar_sum(const struct ustar *h, int sign);

#endif
