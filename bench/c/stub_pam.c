/*
 * A stand-in for libpam.so.0 that does no PAM work, for the bench's
 * "binding overhead" rows: with libpam's own cost (service files, dlopen of
 * modules, the modules) taken away, what is left is what a binding adds per
 * call. Behaviour per service name, mirroring the real stacks:
 *   "matrix", "oneshot": pam_authenticate asks one PAM_PROMPT_ECHO_OFF and checks
 *              an answer came back;
 *   "echo":    pam_authenticate sends ten PAM_TEXT_INFO messages, one per
 *              conversation call, unless PAM_SILENT;
 *   otherwise: every call succeeds without a conversation.
 * Same ABI as Linux-PAM's application API; not a PAM implementation.
 */
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

struct pam_handle {
  struct pam_conv conv;
  int mode; /* 0 = permit, 1 = one prompt, 2 = ten info messages */
};

int pam_start_confdir(const char *service, const char *user, const struct pam_conv *conv,
                      const char *confdir, pam_handle_t **pamh) {
  (void)user;
  (void)confdir;
  struct pam_handle *h = calloc(1, sizeof *h);
  if (!h) return PAM_BUF_ERR;
  h->conv = *conv;
  h->mode = !strcmp(service, "matrix") || !strcmp(service, "oneshot") ? 1
            : !strcmp(service, "echo")                                ? 2
                                                                      : 0;
  *pamh = h;
  return PAM_SUCCESS;
}

int pam_start(const char *service, const char *user, const struct pam_conv *conv,
              pam_handle_t **pamh) {
  return pam_start_confdir(service, user, conv, NULL, pamh);
}

int pam_end(pam_handle_t *h, int status) {
  (void)status;
  free(h);
  return PAM_SUCCESS;
}

static int say(pam_handle_t *h, int style, const char *text) {
  struct pam_message m = {style, text};
  const struct pam_message *mp = &m;
  struct pam_response *r = NULL;
  int s = h->conv.conv(1, &mp, &r, h->conv.appdata_ptr);
  if (s != PAM_SUCCESS) return s;
  if (style == PAM_PROMPT_ECHO_OFF && (!r || !r[0].resp)) s = PAM_AUTH_ERR;
  if (r) {
    if (r[0].resp) {
      memset(r[0].resp, 0, strlen(r[0].resp));
      free(r[0].resp);
    }
    free(r);
  }
  return s;
}

int pam_authenticate(pam_handle_t *h, int flags) {
  if (h->mode == 1) return say(h, PAM_PROMPT_ECHO_OFF, "Password: ");
  if (h->mode == 2 && !(flags & PAM_SILENT)) {
    static const char *lines[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"};
    for (int i = 0; i < 10; i++) {
      int s = say(h, PAM_TEXT_INFO, lines[i]);
      if (s != PAM_SUCCESS) return s;
    }
  }
  return PAM_SUCCESS;
}

#define NOOP(name)                                                                                 \
  int name(pam_handle_t *h, int flags) {                                                           \
    (void)h;                                                                                       \
    (void)flags;                                                                                   \
    return PAM_SUCCESS;                                                                            \
  }
NOOP(pam_setcred)
NOOP(pam_acct_mgmt)
NOOP(pam_open_session)
NOOP(pam_close_session)
NOOP(pam_chauthtok)

int pam_set_item(pam_handle_t *h, int type, const void *item) {
  (void)h, (void)type, (void)item;
  return PAM_SUCCESS;
}
int pam_get_item(const pam_handle_t *h, int type, const void **item) {
  (void)h, (void)type;
  *item = NULL;
  return PAM_SUCCESS;
}
const char *pam_strerror(pam_handle_t *h, int status) {
  (void)h, (void)status;
  return "stub";
}
const char *pam_getenv(pam_handle_t *h, const char *name) {
  (void)h, (void)name;
  return NULL;
}
int pam_putenv(pam_handle_t *h, const char *entry) {
  (void)h, (void)entry;
  return PAM_SUCCESS;
}
char **pam_getenvlist(pam_handle_t *h) {
  (void)h;
  return calloc(1, sizeof(char *));
}
int pam_fail_delay(pam_handle_t *h, unsigned int usec) {
  (void)h, (void)usec;
  return PAM_SUCCESS;
}
