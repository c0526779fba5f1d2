/* SPDX-License-Identifier: MIT */
/* The fixed-format text of synthetic files: `status`, cmd status words. */
#ifndef SBXFS_STATUS_H
#define SBXFS_STATUS_H

#include "sbxfs/provider.h"
#include "sbxfs/strbuf.h"

/* "key value" lines for a sandbox's status file.  Values have control
 * characters replaced so that each pair stays on one line. */
int status_format(struct strbuf *out, const char *name, const char *provider,
		  const struct sbx_box_info *info);

/* "running", "exited 0", "killed TERM", "failed REASON" (no newline). */
void status_exit_word(char *out, size_t size, int running, const struct sbx_exit *exit);

/* Signal names without "SIG": "TERM" <-> SIGTERM; also accepts numbers
 * and an "SIG" prefix.  Returns the number, or -EINVAL. */
int status_signal_parse(const char *s);
const char *status_signal_name(int sig);

#endif
