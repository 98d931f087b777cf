/* http_date.c: IMF-fixdate (RFC 9110 §5.6.7) for the Date header. Not strftime, whose day
 * and month names follow the locale. */
#include "http_date.h"

#include <stdio.h>
#include <time.h>

const char *http_date_now(void)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	static _Thread_local time_t when = -1;
	static _Thread_local char text[64];
	time_t now = time(NULL);
	if (now != when) {
		struct tm tm;
		gmtime_r(&now, &tm);
		snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
		         tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		when = now;
	}
	return text;
}
