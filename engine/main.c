#include "config/error.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("vigil %s\n", VG_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: vigil --version\n");
    return 2;
}
