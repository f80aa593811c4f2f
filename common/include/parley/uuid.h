/*
 * uuid.h - UUIDv7 ids (RFC 9562) and RFC 3339 timestamps.
 *
 * UUIDv7: 48-bit Unix milliseconds, then 12 bits of sub-millisecond counter so ids made by one
 * process are strictly increasing, then random bits from OpenSSL RAND_bytes.  Thread-safe.
 */
#ifndef PARLEY_UUID_H
#define PARLEY_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_UUID_STRLEN 36

/* Writes a new lowercase UUIDv7 and a NUL into out[37]. */
void pl_uuid_v7(char out[PL_UUID_STRLEN + 1]);
/*
 * A UUIDv7 whose random bits come from a per-thread generator seeded from RAND_bytes: cheap, no
 * lock, not monotonic across threads.  For request ids only, never for stored ids or secrets.
 */
void pl_uuid_v7_fast(char out[PL_UUID_STRLEN + 1]);
/* Same, from the given time in ms (for tests); seq orders ids within one millisecond. */
void pl_uuid_v7_at(char out[PL_UUID_STRLEN + 1], uint64_t unix_ms, uint16_t seq);
/* True when s is a canonical 8-4-4-4-12 hex UUID (any version); NULL-safe. */
bool pl_uuid_valid(const char *s);
/* Writes the time in microseconds since the epoch as 2026-11-23T10:00:00.123456Z into out[28]. */
void pl_time_rfc3339(char out[28], int64_t unix_us);
/* Current wall-clock time in microseconds since the epoch. */
int64_t pl_time_now_us(void);
/* Monotonic clock in microseconds. */
int64_t pl_time_mono_us(void);

#endif
