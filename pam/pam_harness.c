/*
 * pam_harness — drives a PAM session the way login or sshd would, for the tests: no /etc/pam.d
 * involved (pam_start_confdir reads SERVICE from CONFDIR).
 *
 *   pam_harness SERVICE USER CONFDIR [NAME=value ...]
 *
 * Puts each NAME=value into the PAM environment first (what pam_krb5 or pam_systemd would have
 * set), opens the session, prints the PAM environment, then waits for a line on standard input
 * (the "login" lasts until then), closes the session and prints the environment again. Syslog
 * messages of the modules are copied to standard error. Exit status 0 when both steps succeed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_appl.h>

/* The session modules under test never prompt; any question is refused, any message shown. */
static int converse(int count, const struct pam_message **messages, struct pam_response **responses, void *data) {
    (void)data;
    for (int i = 0; i < count; i++) {
        int style = messages[i]->msg_style;
        if (style == PAM_PROMPT_ECHO_ON || style == PAM_PROMPT_ECHO_OFF) return PAM_CONV_ERR;
        fprintf(stderr, "pam message: %s\n", messages[i]->msg);
    }
    *responses = NULL;
    return PAM_SUCCESS;
}

static void print_environment(pam_handle_t *pamh, const char *when) {
    char **list = pam_getenvlist(pamh);
    printf("--- PAM environment %s\n", when);
    for (char **entry = list; entry != NULL && *entry != NULL; entry++) {
        printf("%s\n", *entry);
        free(*entry);
    }
    free(list);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s SERVICE USER CONFDIR [NAME=value ...]\n", argv[0]);
        return 2;
    }
    openlog("pam_harness", LOG_PERROR | LOG_PID, LOG_AUTHPRIV);
    struct pam_conv conversation = {converse, NULL};
    pam_handle_t *pamh = NULL;
    int status = pam_start_confdir(argv[1], argv[2], &conversation, argv[3], &pamh);
    if (status != PAM_SUCCESS) {
        fprintf(stderr, "pam_start_confdir: %s\n", pam_strerror(pamh, status));
        return 1;
    }
    for (int i = 4; i < argc; i++) {
        status = pam_putenv(pamh, argv[i]);
        if (status != PAM_SUCCESS) {
            fprintf(stderr, "pam_putenv %s: %s\n", argv[i], pam_strerror(pamh, status));
            pam_end(pamh, status);
            return 1;
        }
    }

    int opened = pam_open_session(pamh, 0);
    printf("pam_open_session: %s\n", pam_strerror(pamh, opened));
    print_environment(pamh, "after open_session");
    printf("--- logged in; press enter to log out\n");
    fflush(stdout);

    char line[256];
    if (fgets(line, sizeof(line), stdin) == NULL) fprintf(stderr, "standard input closed; logging out\n");

    int closed = pam_close_session(pamh, 0);
    printf("pam_close_session: %s\n", pam_strerror(pamh, closed));
    print_environment(pamh, "after close_session");
    pam_end(pamh, closed);
    return opened == PAM_SUCCESS && closed == PAM_SUCCESS ? 0 : 1;
}
