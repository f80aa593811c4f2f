/*
 * stub.h - the main() of a binary whose service is not built yet: it reads PORT and
 * PARLEY_LOG_LEVEL, serves /healthz, /readyz and /metrics, and drains on SIGTERM.
 */
#ifndef PARLEY_STUB_H
#define PARLEY_STUB_H

/* Runs until SIGTERM; returns the process exit status. */
int pl_stub_main(const char *service, const char *default_port);

#endif
