/* SPDX-License-Identifier: MIT */
/* A minimal test harness: CHECK records a failure and goes on. */
#ifndef SBXFS_TEST_H
#define SBXFS_TEST_H

#include <stdio.h>

extern int test_failures;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			test_failures++;                                                 \
		}                                                                        \
	} while (0)

void test_ctl(void);
void test_status(void);
void test_names(void);
void test_cache(void);
void test_log(void);
void test_stage(void);
void test_stagefile(void);
void test_shell(void);
void test_vtrix(void);
void test_fail(void);
void test_remote(void);
void test_daytona(void);
void test_rexec(void);
void test_boxtable(void);
void test_tar(void);
void test_docker(void);
void test_tree(void);
void test_config(void);
void test_cbor(void);
void test_microsandbox(void);
void test_keptsh(void);

#endif
