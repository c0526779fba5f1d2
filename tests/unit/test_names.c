#include "test.h"
void test_names(void) {}
