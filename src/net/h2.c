/* HTTP/2 arrives with the next change: until then a client that opens a
 * cleartext connection with the HTTP/2 preface is disconnected. */
#include "net/conn.h"

void h2_start(struct conn *c)
{
    conn_close(c, CLOSE_PROTOCOL_ERROR);
}
