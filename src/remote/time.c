/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>

#include "sbxfs/remote/time.h"

int rfc3339_parse(struct timespec *ts, const char *s)
{
	struct tm tm = { 0 };
	const char *p;
	long nsec = 0, off = 0;
	int digits = 0;

	if (!s)
		return -EINVAL;
	p = strptime(s, "%Y-%m-%d", &tm);
	if (!p || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p = strptime(p + 1, "%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*p - '0');
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	while (*p == ' ')
		p++;
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 &&
		    sscanf(p + 1, "%2d%2d", &hh, &mm) != 2)
			return -EINVAL;
		if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
			return -EINVAL;
		off = sign * (hh * 3600L + mm * 60L);
	} else if (*p != 'Z' && *p != 'z' && *p) {
		return -EINVAL;
	}
	ts->tv_sec = timegm(&tm) - off;
	ts->tv_nsec = nsec;
	return 0;
}

long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000;
}
