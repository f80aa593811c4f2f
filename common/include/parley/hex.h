/*
 * hex.h - lowercase hex text of bytes, and the hex SHA-256 of a string, without printf.
 */
#ifndef PARLEY_HEX_H
#define PARLEY_HEX_H

#include <stddef.h>

/* Writes the hex of in[0..n) into out[2n] and a NUL after it (out holds 2n + 1 bytes). */
void pl_hex(const void *in, size_t n, char *out);
/* The hex SHA-256 of data[0..n). */
void pl_sha256_hex(const void *data, size_t n, char out[65]);

#endif
