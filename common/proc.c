/*
 * proc.c - signals.  Termination signals are blocked in every thread and taken synchronously by
 * main() with sigwait(), so shutdown runs as ordinary code in a known order, not in a handler.
 */
#include "parley/proc.h"

#include <pthread.h>
#include <signal.h>

static sigset_t
term_set(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

void
pl_proc_block_signals(void)
{
    sigset_t set = term_set();

    sigaddset(&set, SIGPIPE); /* a peer closing a socket must not kill the process */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int
pl_proc_wait_signal(void)
{
    sigset_t set = term_set();
    int sig = 0;

    sigwait(&set, &sig);
    return sig;
}
