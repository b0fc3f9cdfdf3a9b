#!/bin/sh
# pam_exec with expose_authtok hands the password on stdin (NUL-terminated, no newline).
# The demo's one account: user "demo", password "correct horse".
IFS= read -r password || true
[ "$PAM_USER" = demo ] && [ "$password" = "correct horse" ]
