#include <cstdio>
#include "core/config.h"
int main() { std::fputs(mitmd::UsageText().c_str(), stdout); return 0; }
