/* http_date.h: the Date header's value (IMF-fixdate, RFC 9110 §5.6.7), for the daemon's own
 * answers and the library's responses alike. */
#ifndef PS_HTTP_DATE_H
#define PS_HTTP_DATE_H

/* "Sun, 06 Nov 1994 08:49:37 GMT" for now; made at most once a second per thread, in a
 * thread-local buffer the next call may overwrite. */
const char *http_date_now(void);

#endif
