/* SPDX-License-Identifier: MIT */
/* The text of the failure being returned, and whether the request being
 * served was interrupted, per thread (see provider.h). */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "sbxfs/log.h"
#include "sbxfs/provider.h"

static __thread char fail_text[1024];
static __thread const volatile int *intr_flag;
static __thread int in_call;
static __thread long call_stalled_ms;
static __thread struct sbx_caller caller;

/* The arguments may hold the text recorded before (a failure wrapped in
 * its context: sbx_failf("upload: %s", sbx_fail_text())): format aside,
 * then replace. */
void sbx_failf(const char *fmt, ...)
{
	char text[sizeof(fail_text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	memcpy(fail_text, text, sizeof(fail_text));
	sbx_log(SBX_LOG_DEBUG, "failure: %s", fail_text);
}

const char *sbx_fail_text(void)
{
	return fail_text;
}

void sbx_fail_clear(void)
{
	fail_text[0] = '\0';
}

int sbx_interrupted(void)
{
	return intr_flag && *intr_flag;
}

void sbx_intr_enter(const volatile int *flag)
{
	intr_flag = flag;
}

void sbx_intr_leave(void)
{
	intr_flag = NULL;
}

void sbx_call_begin(void)
{
	in_call = 1;
	call_stalled_ms = 0;
}

void sbx_call_end(void)
{
	in_call = 0;
	intr_flag = NULL;
}

void sbx_call_stalled(long ms)
{
	if (in_call && ms > 0)
		call_stalled_ms += ms;
}

long sbx_call_stalled_ms(void)
{
	return in_call ? call_stalled_ms : -1;
}

struct sbx_caller sbx_caller(void)
{
	return caller;
}

void sbx_caller_set(uid_t uid, gid_t gid)
{
	caller.uid = uid;
	caller.gid = gid;
	caller.known = 1;
}

void sbx_caller_clear(void)
{
	caller.known = 0;
}

int sbx_caller_other(struct sbx_caller *c)
{
	*c = caller;
	return c->known && (c->uid != geteuid() || c->gid != getegid());
}
