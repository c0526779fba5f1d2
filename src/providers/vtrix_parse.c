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
