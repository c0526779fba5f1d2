/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "sbxfs/names.h"
#include "test.h"

static int confined(const char *link, const char *target, const char *want)
{
	char out[4096];

	return sbx_symlink_confine(out, sizeof(out), link, target) == 0 &&
	       !strcmp(out, want);
}

void test_names(void)
{
	char name300[301];

	CHECK(sbx_name_valid("b1"));
	CHECK(sbx_name_valid("my-box_2.test"));
	CHECK(!sbx_name_valid(""));
	CHECK(!sbx_name_valid("."));
	CHECK(!sbx_name_valid(".."));
	CHECK(!sbx_name_valid(".hidden"));
	CHECK(!sbx_name_valid("-x"));
	CHECK(!sbx_name_valid("a/b"));
	CHECK(!sbx_name_valid("a b"));
	CHECK(!sbx_name_valid("caf\xc3\xa9"));
	memset(name300, 'a', 300);
	name300[300] = '\0';
	CHECK(!sbx_name_valid(name300));
	name300[63] = '\0';
	CHECK(sbx_name_valid(name300));
	name300[63] = 'a';
	name300[64] = '\0';
	CHECK(!sbx_name_valid(name300));

	CHECK(sbx_entry_name_valid("with space"));
	CHECK(sbx_entry_name_valid("\xff\xfe"));
	CHECK(!sbx_entry_name_valid(""));
	CHECK(!sbx_entry_name_valid(".."));
	CHECK(!sbx_entry_name_valid("a/b"));
	name300[0] = 'a';
	memset(name300, 'a', 300);
	name300[256] = '\0';
	CHECK(!sbx_entry_name_valid(name300));

	/* Symlinks never lead out of root/. */
	CHECK(confined("/root/x", "/etc/shadow", "../etc/shadow"));
	CHECK(confined("/x", "/etc/shadow", "etc/shadow"));
	CHECK(confined("/tmp/up", "/", ".."));
	CHECK(confined("/l", "/", "."));
	CHECK(confined("/a/b/c", "../../../../etc/p", "../../etc/p"));
	CHECK(confined("/a/b/c", "../d", "../d"));
	CHECK(confined("/a/l", "x", "x"));
	CHECK(confined("/a/l", "./x/../../..", ".."));
}
