#!/bin/sh
# pam_exec with expose_authtok hands the password on stdin (NUL-terminated, no newline).
# The stacks' own password, not the system's, "correct horse": for the demo's made-up user "demo",
# and for any account of this machine (examples/login.ts runs its command as that user).
IFS= read -r password || true
{ [ "$PAM_USER" = demo ] || id "$PAM_USER" >/dev/null 2>&1; } && [ "$password" = "correct horse" ]
