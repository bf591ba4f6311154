/*
 * sql_array: a PostgreSQL array literal of text, for passing a list as one
 * query parameter ($1::text[]). Every element is quoted, so any text
 * (commas, braces, NULL-looking words) stays one element. Pure.
 */
#ifndef PIPER_SQL_ARRAY_H
#define PIPER_SQL_ARRAY_H

#include <stddef.h>

/* {"a","b\"c"} for items[0..count): a string to free(), or NULL when out of
 * memory. */
char *sql_text_array(const char *const *items, size_t count);

#endif
