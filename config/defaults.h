/* vigil's built-in defaults, defined once for every module, the CLI help and the docs. */
#ifndef VG_DEFAULTS_H
#define VG_DEFAULTS_H

#define VG_DEFAULT_CONFIG_DIR "/etc/vigil"
#define VG_DEFAULT_STATE_DIR "/var/lib/vigil"
#define VG_DEFAULT_PORT 52323
#define VG_DEFAULT_PORT_STR "52323"
#define VG_DEFAULT_URL "http://127.0.0.1:" VG_DEFAULT_PORT_STR
#define VG_DEFAULT_METRICS_URL "http://127.0.0.1:52325" /* dotnet-monitor's metrics port */

#endif
