/* AWS shared credentials and config files (~/.aws/credentials, ~/.aws/config): the profiles the
 * AWS CLI and SDKs read, and dotnet-monitor's S3 AwsProfileName / AwsProfilePath options. Only
 * static keys are used: profiles that get credentials by assuming a role, from a process or
 * from SSO are reported as unsupported, never silently skipped. */
#ifndef VG_AWS_PROFILE_H
#define VG_AWS_PROFILE_H

#include <stddef.h>

struct vg__aws_profile {
    char *access_key_id;
    char *secret_access_key; /* secret */
    char *session_token;     /* secret */
    char *region;
    char *source; /* where the keys were found, for messages: "FILE [NAME]" */
};

/* Reads `profile` from the credentials file (credentials_path; else AWS_SHARED_CREDENTIALS_FILE;
 * else $HOME/.aws/credentials; sections [NAME]) and the config file (AWS_CONFIG_FILE; else
 * $HOME/.aws/config; sections [profile NAME], or [default]); the credentials file's keys win.
 * Returns 0 (keys found), VG_ENOTFOUND (no such profile in either file, or no files),
 * VG_ECONFIG (err says why: a profile without keys, or one vigil cannot use) or VG_ENOMEM. */
int vg__aws_profile_load(const char *profile, const char *credentials_path,
                         struct vg__aws_profile *out, char *err, size_t errlen);
void vg__aws_profile_free(struct vg__aws_profile *p);

#endif
