/* who.c: portsharectl who (being written). */
#include "who.h"

#include <stdio.h>

const char *who_help(void)
{
	return "usage: portsharectl who PORT|ADDR:PORT|URL [--json]\n";
}

int who_run(struct ctl *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	fprintf(stderr, "portsharectl: who: not built yet\n");
	return 2;
}
