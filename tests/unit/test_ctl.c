#include "test.h"
void test_ctl(void) {}
