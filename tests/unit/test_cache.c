#include "test.h"
void test_cache(void) {}
