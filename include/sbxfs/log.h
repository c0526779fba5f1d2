/* SPDX-License-Identifier: MIT */
/* One logging function, with levels and per-component tracing. */
#ifndef SBXFS_LOG_H
#define SBXFS_LOG_H

#include <stdio.h>

enum sbx_log_level {
	SBX_LOG_ERR,
	SBX_LOG_WARN,
	SBX_LOG_INFO,
	SBX_LOG_DEBUG,
};

/* Components that can be traced one by one with -o trace=fuse:cmd:...
 * (':' because -o splits its values at commas). */
enum {
	SBX_TRACE_FUSE = 1u << 0,
	SBX_TRACE_CMD = 1u << 1,
	SBX_TRACE_PROVIDER = 1u << 2,
	SBX_TRACE_CACHE = 1u << 3,
	SBX_TRACE_HTTP = 1u << 4,
	SBX_TRACE_WS = 1u << 5,
};

/* Where log lines go (stderr by default) and the most verbose level. */
void sbx_log_setup(FILE *out, enum sbx_log_level max);
/* Parse "fuse:cmd" (or "fuse,cmd") into the trace mask; -EINVAL for an
 * unknown name. */
int sbx_log_set_trace(const char *list);
int sbx_tracing(unsigned component);

void sbx_log(enum sbx_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sbx_trace(unsigned component, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define sbx_err(...) sbx_log(SBX_LOG_ERR, __VA_ARGS__)
#define sbx_warn(...) sbx_log(SBX_LOG_WARN, __VA_ARGS__)
#define sbx_info(...) sbx_log(SBX_LOG_INFO, __VA_ARGS__)
#define sbx_debug(...) sbx_log(SBX_LOG_DEBUG, __VA_ARGS__)

#endif
