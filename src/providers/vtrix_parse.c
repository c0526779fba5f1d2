/* SPDX-License-Identifier: MIT */
/*
 * Vtrix: the pure parts, with no I/O, so that the unit tests and fuzzers
 * reach them: failure codes to errno (the one mapping) and states.
 */
#include "vtrix.h"

/* ---- errors: the one mapping ---- */

static int http_like_errno(long status)
{
	switch (status) {
	case 400:
	case 422:
		return EINVAL;
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 408:
	case 504:
		return ETIMEDOUT;
	case 409:
		return EBUSY;
	case 413:
		return EFBIG;
	case 429:
	case 503:
		return EAGAIN;
	default:
		return EIO;
	}
}

int vx_errno(enum vx_src src, long code)
{
	if (src == VX_ENVELOPE) {
		/* Atlas codes seen so far are the HTTP status times 100
		 * (40400); a bare HTTP-like code is taken as it is. */
		return http_like_errno(code >= 10000 ? code / 100 : code);
	}
	if (src == VX_RPC) {
		switch (code) {
		case -32001:
			return ENOENT; /* file not found: the one code the SDKs know */
		case -32602:
			return EINVAL;
		case -32601:
			return EOPNOTSUPP;
		case -32600:
		case -32700:
			return EPROTO;
		default:
			return EIO; /* -32000 and the rest: a failure with text */
		}
	}
	return http_like_errno(code); /* VX_HTTP: a status without an envelope */
}

enum sbx_state vx_map_state(const char *s)
{
	static const struct {
		const char *word;
		enum sbx_state state;
	} map[] = {
		{ "active", SBX_STATE_RUNNING },    { "stopped", SBX_STATE_STOPPED },
		{ "creating", SBX_STATE_CREATING }, { "warming", SBX_STATE_CREATING },
		{ "warm", SBX_STATE_CREATING },	    { "destroying", SBX_STATE_DELETING },
		{ "deleting", SBX_STATE_DELETING }, { "deleted", SBX_STATE_DELETING },
		{ "failed", SBX_STATE_ERROR },
	};
	size_t i;

	for (i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].word, s))
			return map[i].state;
	return SBX_STATE_UNKNOWN;
}
