/* ember-submit's reading of defaults-file lines (the Python client's
 * ember.conf.parse_defaults_line follows the same rules). */
#include <stdlib.h>

#include "submit.h"
#include "test.h"

static const struct {
    const char *line;
    int is_setting;
    const char *key, *value;
} cases[] = {
    {"spark.master ember://h:8080", 1, "spark.master", "ember://h:8080"},
    {"  spark.app.name\t  my app  ", 1, "spark.app.name", "my app"},
    {"spark.x=1", 1, "spark.x", "1"},
    {"spark.x = 1", 1, "spark.x", "1"},
    {"spark.x=a=b", 1, "spark.x", "a=b"},
    {"spark.flag", 1, "spark.flag", ""},
    {"# spark.master local", 0, NULL, NULL},
    {"   ", 0, NULL, NULL},
    {"", 0, NULL, NULL},
};

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *line = strdup(cases[i].line), *key = NULL, *value = NULL;
        int got = submit_conf_split(line, &key, &value);
        CHECK(got == cases[i].is_setting, "'%s': setting %d, want %d", cases[i].line, got,
              cases[i].is_setting);
        if (got && cases[i].is_setting) {
            CHECK(strcmp(key, cases[i].key) == 0, "'%s': key '%s', want '%s'", cases[i].line, key,
                  cases[i].key);
            CHECK(strcmp(value, cases[i].value) == 0, "'%s': value '%s', want '%s'",
                  cases[i].line, value, cases[i].value);
        }
        free(line);
    }
    return TEST_EXIT();
}
