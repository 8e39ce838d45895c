/* Error codes shared by every Ember program. Fallible functions return 0 or a
 * negative EMBER_E* code; ember_strerror() gives the text. Codes stay internal:
 * users see sentences built where the detail is known. */
#ifndef EMBER_ERROR_H
#define EMBER_ERROR_H

#define EMBER_MUST_CHECK __attribute__((warn_unused_result))

enum {
    EMBER_OK = 0,
    EMBER_EINVAL = -1,    /* bad argument or malformed input */
    EMBER_EIO = -2,       /* read/write/pipe failure */
    EMBER_ENOENT = -3,    /* unknown id or missing file */
    EMBER_EEOF = -4,      /* clean end of stream */
    EMBER_ERPC = -5,      /* a remote call failed */
    EMBER_ETOOBIG = -6,   /* over a configured limit */
    EMBER_EDEAD = -7,     /* peer process died */
};

const char *ember_strerror(int rc);

#endif
