/* vigil: the command-line entry point; each command lives in engine/cli/NAME.c. */
#include "engine/cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv)
{
    printf("vigil %s\n", VG_VERSION);
    return 0;
}

static const struct command commands[] = {
    {"run", vg_cmd_run, "run the daemon: watch processes, fire rules, serve the API"},
    {"check", vg_cmd_check, "validate configuration directories and summarize the rules"},
    {"dump", vg_cmd_dump, "write a core dump of a process now (ProcDump-style)"},
    {"upload", vg_cmd_upload, "upload a file with a configured egress provider (or --resume)"},
    {"status", vg_cmd_status, "show each rule's state per process (asks the daemon)"},
    {"ps", vg_cmd_ps, "list the processes the daemon sees"},
    {"generatekey", vg_cmd_generatekey, "create an API key and the config snippet with its hash"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help"},
};

static int cmd_help(int argc, char **argv)
{
    printf("vigil %s - watches processes and captures diagnostics when rules fire\n\n"
           "usage: vigil COMMAND [OPTIONS]\n\ncommands:\n",
           VG_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].help);
    printf("\nRun `vigil COMMAND --help` for a command's options. Documentation: docs/.\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* Everything vigil creates (state database and its WAL, spool, dumps, sockets' directories)
     * is private to its user from the first byte, whatever fails later. */
    umask(077);
    if (argc < 2) {
        cmd_help(0, NULL);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        return cmd_version(0, NULL);
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return cmd_help(0, NULL);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vigil: unknown command \"%s\" (see `vigil help`)\n", name);
    return 2;
}
