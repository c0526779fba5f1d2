/* SPDX-License-Identifier: MIT */
#include "test.h"

int test_failures;

int main(void)
{
	test_ctl();
	test_status();
	test_names();
	test_cache();
	test_log();
	test_stage();
	test_stagefile();
	test_shell();
	test_vtrix();
	test_fail();
	test_remote();
	test_daytona();
	test_rexec();
	test_boxtable();
	test_tar();
	test_docker();
	test_tree();
	test_config();
	test_cbor();
	test_microsandbox();
	test_keptsh();
	if (test_failures)
		fprintf(stderr, "%d checks failed\n", test_failures);
	return test_failures ? 1 : 0;
}
