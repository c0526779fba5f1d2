/* SPDX-License-Identifier: MIT */
/*
 * Vtrix: the pure parts, with no I/O, so that the unit tests and fuzzers
 * reach them: failure codes to errno (the one mapping) and states.
 */
#include "vtrix.h"

/* ---- errors: the one mapping ---- */

/* Where Vtrix's gateway differs from the common HTTP statuses. */
static const struct errmap vtrix_http[] = {
	{ 503, EAGAIN },
	{ 504, ETIMEDOUT },
	{ 0, 0 },
};

/* JSON-RPC error codes; -32000 and the rest are failures with text. */
static const struct errmap vtrix_rpc[] = {
	{ -32001, ENOENT }, /* file not found: the one code the SDKs know */
	{ -32602, EINVAL }, { -32601, EOPNOTSUPP },
	{ -32600, EPROTO }, { -32700, EPROTO },
	{ 0, 0 },
};

int vx_errno(enum vx_src src, long code)
{
	static const struct errmap *const http[] = { vtrix_http, errmap_http, NULL };
	static const struct errmap *const rpc[] = { vtrix_rpc, NULL };

	if (src == VX_RPC)
		return errmap_errno(rpc, code);
	/* Atlas codes seen so far are the HTTP status times 100 (40400); a
	 * bare HTTP-like code is taken as it is. */
	if (src == VX_ENVELOPE && code >= 10000)
		code /= 100;
	return errmap_errno(http, code);
}

const struct remote_state_word vx_states[] = {
	{ "active", REMOTE_RUNNING },	 { "stopped", REMOTE_STOPPED },
	{ "creating", REMOTE_CREATING }, { "warming", REMOTE_CREATING },
	{ "warm", REMOTE_CREATING },	 { "destroying", REMOTE_DELETING },
	{ "deleting", REMOTE_DELETING }, { "deleted", REMOTE_DELETING },
	{ "failed", REMOTE_ERROR },	 { NULL, REMOTE_UNKNOWN },
};

enum sbx_state vx_map_state(const char *s)
{
	return remote_sbx_state(remote_state_of(vx_states, s));
}
