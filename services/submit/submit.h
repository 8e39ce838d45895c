/* ember-submit's two steps: read the command line, then replace this process
 * with the Python interpreter running the script (so the script's exit code
 * is ours). */
#ifndef EMBER_SUBMIT_H
#define EMBER_SUBMIT_H

struct submit_args {
    const char *master;    /* --master, else EMBER_MASTER, else local[*] */
    const char *name;      /* --name: the application's name unless the script sets one */
    const char *py_files;  /* --py-files a.py,b.zip,pkg/ */
    char *conf;            /* --conf key=value, one a line (new, or NULL) */
    int shell;             /* run an interactive shell with `sc` instead of a script */
    char **script_argv;    /* script path and its arguments */
    int script_argc;
};

int submit_parse_args(int argc, char **argv, struct submit_args *out);
int submit_exec(const struct submit_args *args);

#endif
