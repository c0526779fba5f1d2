/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sbxfs/names.h"
#include "sbxfs/status.h"

const char *sbx_state_word(enum sbx_state state)
{
	static const char *const words[] = {
		[SBX_STATE_UNKNOWN] = "unknown",   [SBX_STATE_CREATING] = "creating",
		[SBX_STATE_STARTING] = "starting", [SBX_STATE_RUNNING] = "running",
		[SBX_STATE_STOPPING] = "stopping", [SBX_STATE_STOPPED] = "stopped",
		[SBX_STATE_ARCHIVED] = "archived", [SBX_STATE_ERROR] = "error",
		[SBX_STATE_DELETING] = "deleting",
	};

	if ((unsigned)state >= sizeof(words) / sizeof(words[0]))
		return "unknown";
	return words[state];
}

/* Keys are one word of printable bytes; values one line. */
static int add_line(struct strbuf *out, const char *key, const char *value)
{
	int rc = 0;

	for (const char *k = key; *k && !rc; k++)
		rc = strbuf_add(out, (*k > ' ' && *k < 0x7f) ? k : "_", 1);
	if (!rc)
		rc = strbuf_add(out, " ", 1);
	for (const char *v = value; *v && !rc; v++)
		rc = strbuf_add(out, ((unsigned char)*v < ' ' || *v == 0x7f) ? " " : v,
				1);
	if (!rc)
		rc = strbuf_add(out, "\n", 1);
	return rc;
}

int status_format(struct strbuf *out, const char *name, const char *provider,
		  const struct sbx_box_info *info)
{
	char created[32] = "-";
	int rc;

	if (info->created)
		sbx_time_iso(created, sizeof(created), info->created);
	rc = add_line(out, "name", name);
	rc = rc ? rc : add_line(out, "id", info->id[0] ? info->id : "-");
	rc = rc ? rc : add_line(out, "provider", provider);
	rc = rc ? rc : add_line(out, "state", sbx_state_word(info->state));
	if (!rc && info->native_state[0])
		rc = add_line(out, "native_state", info->native_state);
	rc = rc ? rc : add_line(out, "image", info->image[0] ? info->image : "-");
	rc = rc ? rc : add_line(out, "created", created);
	for (size_t i = 0; i < info->extra.n && !rc; i++)
		rc = add_line(out, info->extra.v[i].key, info->extra.v[i].value);
	return rc;
}

static const struct {
	int sig;
	const char *name;
} signals[] = {
	{ SIGHUP, "HUP" },	 { SIGINT, "INT" },   { SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" },	 { SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" },	 { SIGFPE, "FPE" },   { SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" },	 { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" },	 { SIGALRM, "ALRM" }, { SIGTERM, "TERM" },
	{ SIGCHLD, "CHLD" },	 { SIGCONT, "CONT" }, { SIGSTOP, "STOP" },
	{ SIGTSTP, "TSTP" },	 { SIGTTIN, "TTIN" }, { SIGTTOU, "TTOU" },
	{ SIGURG, "URG" },	 { SIGXCPU, "XCPU" }, { SIGXFSZ, "XFSZ" },
	{ SIGVTALRM, "VTALRM" }, { SIGPROF, "PROF" }, { SIGWINCH, "WINCH" },
	{ SIGIO, "IO" },	 { SIGPWR, "PWR" },   { SIGSYS, "SYS" },
};

const char *status_signal_name(int sig)
{
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return NULL;
}

int status_signal_parse(const char *s)
{
	char *end;
	long n;

	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	if (*s >= '0' && *s <= '9') {
		n = strtol(s, &end, 10);
		if (*end || n < 1 || n >= NSIG)
			return -EINVAL;
		return (int)n;
	}
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (!strcasecmp(signals[i].name, s))
			return signals[i].sig;
	return -EINVAL;
}

void status_exit_word(char *out, size_t size, int running, const struct sbx_exit *exit)
{
	const char *name;

	if (running) {
		snprintf(out, size, "running");
		return;
	}
	switch (exit->how) {
	case SBX_EXIT_CODE:
		snprintf(out, size, "exited %d", exit->code);
		break;
	case SBX_EXIT_SIGNAL:
		name = status_signal_name(exit->code);
		if (name)
			snprintf(out, size, "killed %s", name);
		else
			snprintf(out, size, "killed %d", exit->code);
		break;
	default:
		snprintf(out, size, "failed %s",
			 exit->reason[0] ? exit->reason : "unknown");
		break;
	}
}
