/*
 * number: the one checked integer parser.
 *
 * Text from outside (settings, query parameters, database columns, tokens)
 * becomes an integer here or not at all: decimal digits with an optional
 * leading '-', nothing before or after, and the value within [min, max].
 * strtoll's silent clamping, accepted leading spaces and ignored trailing
 * garbage are exactly what a strict parser must refuse.
 */
#ifndef PIPER_NUMBER_H
#define PIPER_NUMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses text[0..len) into *out. Returns false, leaving *out alone, when
 * the text is not such an integer or lies outside [min, max]. */
bool parse_int64(const char *text, size_t len, int64_t min, int64_t max, int64_t *out)
    __attribute__((warn_unused_result));

#endif
