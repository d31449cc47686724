/* `vigil dump PID [--type T] [-o FILE]`: writes a core of a running process. */
#ifndef VG_CMD_DUMP_H
#define VG_CMD_DUMP_H

/* argv[0] is "dump". Prints one result line on stdout. Returns the exit code: 0 ok, 1 failure
 * (message on stderr), 2 usage. */
int vg_cmd_dump(int argc, char **argv);

#endif
