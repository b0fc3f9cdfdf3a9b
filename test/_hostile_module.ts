// A PAM module, compiled for the tests with `cc` (test/_modules.ts), that misbehaves on request,
// by its `mode=` argument:
//   mode=prompt      one echo-off prompt; returns what the conversation returned, answer or not
//                    (trusting it as a careless module would); with log=FILE it appends
//                    "USER STATUS" (STATUS as "0-noresp" when *resp stayed NULL)
//   mode=binary      one binary prompt: a 9-byte packet whose length header says claim=N
//   mode=exit        pthread_exit() on the calling thread, in the middle of pam_authenticate
import { compileModule } from "./_modules.ts";

const hostileSource = String.raw`
#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg(int argc, const char **argv, const char *key) {
  size_t n = strlen(key);
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
  return NULL;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  const char *mode = arg(argc, argv, "mode");
  if (!mode) return PAM_SERVICE_ERR;
  if (strcmp(mode, "exit") == 0) pthread_exit(NULL);
  const struct pam_conv *conv = NULL;
  if (pam_get_item(pamh, PAM_CONV, (const void **)&conv) != PAM_SUCCESS || !conv) return PAM_SYSTEM_ERR;
  struct pam_message m;
  const struct pam_message *pm = &m;
  struct pam_response *resp = NULL;
  unsigned char *packet = NULL;
  if (strcmp(mode, "binary") == 0) {
    const char *claim = arg(argc, argv, "claim");
    unsigned long c = claim ? strtoul(claim, NULL, 0) : 9;
    packet = malloc(9);
    if (!packet) return PAM_BUF_ERR;
    packet[0] = c >> 24; packet[1] = c >> 16; packet[2] = c >> 8; packet[3] = c;
    packet[4] = 1;
    memcpy(packet + 5, "abcd", 4);
    m.msg_style = PAM_BINARY_PROMPT;
    m.msg = (const char *)packet;
  } else {
    m.msg_style = PAM_PROMPT_ECHO_OFF;
    m.msg = "Password: ";
  }
  int r = conv->conv(1, &pm, &resp, conv->appdata_ptr);
  free(packet);
  const char *log = arg(argc, argv, "log");
  if (log) {
    const void *user = NULL;
    pam_get_item(pamh, PAM_USER, &user);
    FILE *f = fopen(log, "a");
    if (f) { fprintf(f, "%s %d%s\n", user ? (const char *)user : "", r, resp ? "" : "-noresp"); fclose(f); }
  }
  if (resp) {
    if (resp[0].resp) { memset(resp[0].resp, 0, strlen(resp[0].resp)); free(resp[0].resp); }
    free(resp);
  }
  return r;
}

int pam_sm_setcred(pam_handle_t *h, int f, int c, const char **v) { return PAM_SUCCESS; }
`;

/** The misbehaving module described at the top of this file. */
export function hostileModule(): { path?: string; why?: string } {
  return compileModule("hostile", hostileSource);
}
