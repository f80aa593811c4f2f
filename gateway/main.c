/*
 * main.c - gateway placeholder: serves /healthz, /readyz and /metrics until its service is built.
 */
#include "parley/stub.h"

int
main(void)
{
    return pl_stub_main("gateway", "8000");
}
