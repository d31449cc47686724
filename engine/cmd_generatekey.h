/* `vigil generatekey`: prints a new API key and the config snippet holding its hash. */
#ifndef VG_CMD_GENERATEKEY_H
#define VG_CMD_GENERATEKEY_H

/* argv[0] is the command name ("generatekey"); options: --output yaml|json (default yaml),
 * -o as a short form. Returns a process exit code: 0, 1 (failure) or 2 (usage). */
int vg_cmd_generatekey(int argc, char **argv);

#endif
