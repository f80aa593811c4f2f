/*
 * uuid.c - UUIDv7 and RFC 3339 times.
 *
 * Ids made by one process are strictly increasing: the 12-bit rand_a field holds a counter that
 * restarts at a random small value each millisecond (RFC 9562 method 1), under a mutex; when the
 * counter would overflow, the millisecond is advanced artificially, which keeps order.
 */
#include "parley/uuid.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "parley/err.h"
#include "parley/hex.h"

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint16_t last_seq;

int64_t
pl_time_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
pl_time_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
pl_time_rfc3339(char out[28], int64_t unix_us)
{
    int64_t floor_s = unix_us / 1000000 - (unix_us % 1000000 < 0); /* floor, also before 1970 */
    time_t secs = (time_t)floor_s;
    long us = (long)(unix_us - floor_s * 1000000);
    struct tm tm;
    char tmp[96]; /* room for any int the compiler imagines; real dates take 27 bytes */

    gmtime_r(&secs, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
    memcpy(out, tmp, 27);
    out[27] = '\0';
}

/* Writes the v7 layout of unix_ms, seq and 8 random bytes b[8..15] as text. */
static void
format_v7(char out[PL_UUID_STRLEN + 1], unsigned char b[16], uint64_t unix_ms, uint16_t seq)
{
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(unix_ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((seq >> 8) & 0x0f));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    pl_hex(b, 4, out); /* 8-4-4-4-12 */
    out[8] = '-';
    pl_hex(b + 4, 2, out + 9);
    out[13] = '-';
    pl_hex(b + 6, 2, out + 14);
    out[18] = '-';
    pl_hex(b + 8, 2, out + 19);
    out[23] = '-';
    pl_hex(b + 10, 6, out + 24);
}

void
pl_uuid_v7_at(char out[PL_UUID_STRLEN + 1], uint64_t unix_ms, uint16_t seq)
{
    unsigned char b[16];

    PL_ASSERT(RAND_bytes(b + 8, 8) == 1);
    format_v7(out, b, unix_ms, seq);
}

void
pl_uuid_v7_fast(char out[PL_UUID_STRLEN + 1])
{
    static _Thread_local uint64_t state;
    unsigned char b[16];
    uint64_t x;

    while (state == 0)
        PL_ASSERT(RAND_bytes((unsigned char *)&state, sizeof(state)) == 1);
    /* xorshift64*: fast and well spread; request ids need uniqueness, not secrecy. */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    x = state * 0x2545F4914F6CDD1DULL;
    memcpy(b + 8, &x, 8);
    format_v7(out, b, (uint64_t)(pl_time_now_us() / 1000), (uint16_t)(x >> 52));
}

void
pl_uuid_v7(char out[PL_UUID_STRLEN + 1])
{
    uint64_t ms = (uint64_t)(pl_time_now_us() / 1000);
    uint16_t seq;
    unsigned char r;

    pthread_mutex_lock(&gen_lock);
    if (ms > last_ms) {
        PL_ASSERT(RAND_bytes(&r, 1) == 1);
        last_ms = ms;
        last_seq = r; /* random start in 0..255 leaves room for 3800+ ids per ms */
    } else if (++last_seq > 0x0fff) {
        last_ms++;
        last_seq = 0;
    }
    ms = last_ms;
    seq = last_seq;
    pthread_mutex_unlock(&gen_lock);
    pl_uuid_v7_at(out, ms, seq);
}

bool
pl_uuid_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < PL_UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return s[PL_UUID_STRLEN] == '\0';
}
