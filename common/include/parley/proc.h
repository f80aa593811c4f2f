/*
 * proc.h - process life cycle helpers for main().
 */
#ifndef PARLEY_PROC_H
#define PARLEY_PROC_H

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread and every thread it creates later.
 * Call first thing in main(). */
void pl_proc_block_signals(void);
/* Waits for SIGTERM or SIGINT; returns the signal number. */
int pl_proc_wait_signal(void);

#endif
