#include "test.h"
void test_status(void) {}
