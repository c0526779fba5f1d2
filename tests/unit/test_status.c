/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "sbxfs/status.h"
#include "test.h"

void test_status(void)
{
	struct strbuf sb = STRBUF_INIT(1 << 16);
	struct sbx_box_info info = { 0 };
	struct sbx_exit ex = { 0 };
	char word[128];

	snprintf(info.id, sizeof(info.id), "abc123");
	info.state = SBX_STATE_RUNNING;
	snprintf(info.image, sizeof(info.image), "host");
	info.created = 0;
	sbx_kv_add(&info.extra, "label.team", "a\nb");
	sbx_kv_add(&info.extra, "bad key", "v");
	CHECK(status_format(&sb, "b1", "local", &info) == 0);
	CHECK(!strcmp(sb.buf, "name b1\nid abc123\nprovider local\nstate running\n"
			      "image host\ncreated -\nlabel.team a b\nbad_key v\n"));
	strbuf_release(&sb);
	sbx_kv_free(&info.extra);

	info.created = 1795300000;
	snprintf(info.native_state, sizeof(info.native_state), "started");
	CHECK(status_format(&sb, "b1", "x", &info) == 0);
	CHECK(strstr(sb.buf, "native_state started\n") &&
	      strstr(sb.buf, "created 2026-"));
	strbuf_release(&sb);

	status_exit_word(word, sizeof(word), 1, &ex);
	CHECK(!strcmp(word, "running"));
	ex.how = SBX_EXIT_CODE;
	ex.code = 3;
	status_exit_word(word, sizeof(word), 0, &ex);
	CHECK(!strcmp(word, "exited 3"));
	ex.how = SBX_EXIT_SIGNAL;
	ex.code = SIGKILL;
	status_exit_word(word, sizeof(word), 0, &ex);
	CHECK(!strcmp(word, "killed KILL"));
	ex.how = SBX_EXIT_FAILED;
	snprintf(ex.reason, sizeof(ex.reason), "no such sandbox");
	status_exit_word(word, sizeof(word), 0, &ex);
	CHECK(!strcmp(word, "failed no such sandbox"));

	CHECK(status_signal_parse("TERM") == SIGTERM);
	CHECK(status_signal_parse("sigkill") == SIGKILL);
	CHECK(status_signal_parse("9") == 9);
	CHECK(status_signal_parse("0") == -EINVAL);
	CHECK(status_signal_parse("NOPE") == -EINVAL);
	CHECK(status_signal_parse("9x") == -EINVAL);
	CHECK(!strcmp(status_signal_name(SIGINT), "INT"));
	CHECK(!strcmp(sbx_state_word(SBX_STATE_STOPPED), "stopped"));
	CHECK(!strcmp(sbx_state_word((enum sbx_state)99), "unknown"));

	/* Bounded buffers refuse to grow past their maximum. */
	{
		struct strbuf small = STRBUF_INIT(8);

		CHECK(strbuf_add(&small, "12345678", 8) == 0);
		CHECK(strbuf_add(&small, "9", 1) == -E2BIG);
		strbuf_release(&small);
	}
}
