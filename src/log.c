/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "sbxfs/log.h"

static FILE *log_out;
static enum sbx_log_level log_max = SBX_LOG_INFO;
static unsigned trace_mask;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static const struct {
	const char *name;
	unsigned bit;
} trace_names[] = {
	{ "fuse", SBX_TRACE_FUSE },	    { "cmd", SBX_TRACE_CMD },
	{ "provider", SBX_TRACE_PROVIDER }, { "cache", SBX_TRACE_CACHE },
	{ "http", SBX_TRACE_HTTP },	    { "ws", SBX_TRACE_WS },
};

void sbx_log_setup(FILE *out, enum sbx_log_level max)
{
	log_out = out;
	log_max = max;
}

int sbx_log_set_trace(const char *list)
{
	unsigned mask = 0;
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ":,");
		size_t i;

		for (i = 0; i < sizeof(trace_names) / sizeof(trace_names[0]); i++)
			if (strlen(trace_names[i].name) == n &&
			    !strncmp(trace_names[i].name, p, n))
				break;
		if (n == 3 && !strncmp(p, "all", 3))
			mask = ~0u;
		else if (i == sizeof(trace_names) / sizeof(trace_names[0]))
			return -EINVAL;
		else
			mask |= trace_names[i].bit;
		p += n;
		if (*p == ':' || *p == ',')
			p++;
	}
	trace_mask = mask;
	return 0;
}

int sbx_tracing(unsigned component)
{
	return (trace_mask & component) != 0;
}

static void log_line(const char *level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void log_line(const char *level, const char *fmt, va_list ap)
{
	struct timespec now;
	struct tm tm;
	char stamp[32];
	FILE *out = log_out ? log_out : stderr;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);

	pthread_mutex_lock(&log_lock);
	fprintf(out, "%s.%03ld sbxfs %s: ", stamp, now.tv_nsec / 1000000, level);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
}

void sbx_log(enum sbx_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	log_line(level_names[level], fmt, ap);
	va_end(ap);
}

void sbx_trace(unsigned component, const char *fmt, ...)
{
	va_list ap;

	if (!(trace_mask & component))
		return;
	va_start(ap, fmt);
	log_line("trace", fmt, ap);
	va_end(ap);
}
