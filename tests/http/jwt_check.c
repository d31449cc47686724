/* jwt_check TOKEN PUBLIC_KEY SUBJECT: prints "accepted" or "refused: WHY" as vigil's verifier
 * (engine/http/jwt.c) judges the token, for jwt_interop.py. Exit 0 either way, 2 on misuse. */
#include "config/error.h"
#include "engine/http/jwt.h"

#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: jwt_check TOKEN PUBLIC_KEY SUBJECT\n");
        return 2;
    }
    struct vg_jwt_key *key;
    char err[256];
    if (vg_jwt_key_parse(argv[2], &key, err, sizeof(err)) != 0) {
        printf("refused: key: %s\n", err);
        return 0;
    }
    int rc = vg_jwt_verify(argv[1], key, argv[3], NULL, (int64_t)time(NULL), err, sizeof(err));
    if (rc == 0)
        printf("accepted\n");
    else
        printf("refused: %s\n", rc == VG_EAUTH ? err : vg_strerror(rc));
    vg_jwt_key_free(key);
    return 0;
}
