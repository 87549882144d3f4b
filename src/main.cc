// mitmd: the HTTPS inspection proxy. Everything lives in the core library (src/app/app.h);
// this file is the only one the tests do not reach.

#include "app/app.h"

int main(int argc, char** argv) { return mitmd::AppMain(argc, argv); }
