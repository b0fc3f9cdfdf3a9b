"""Runs a command on a fresh pseudo-terminal and plays a script against it.

Usage: python3 _pty.py SCRIPT_JSON COMMAND [ARG]...

SCRIPT_JSON is a list of steps: {"expect": "text"} waits until the output
contains the text (then records whether the terminal's
ECHO flag was on), {"send": "text"} types the text. Prints one JSON object:
{"output": all output, "status": exit status or 128 + signal,
 "echo": [ECHO flag at each expect], "echoAfter": ECHO flag after exit}.
The node:test suites drive it; Node-style runtimes have no pty of their own.
"""

import json
import os
import pty
import select
import sys
import termios
import time

script = json.loads(sys.argv[1])
command = sys.argv[2:]

pid, master = pty.fork()
if pid == 0:
    os.execvp(command[0], command)

output = b""
echo = []


def pump(timeout):
    global output
    ready, _, _ = select.select([master], [], [], timeout)
    if not ready:
        return False
    try:
        data = os.read(master, 4096)
    except OSError:
        return None
    if not data:
        return None
    output += data
    return True


def echo_on():
    # On Linux the master reports the slave's termios.
    return bool(termios.tcgetattr(master)[3] & termios.ECHO)


seen = 0
for step in script:
    if "expect" in step:
        want = step["expect"].encode()
        deadline = time.time() + 20
        while want not in output[seen:]:
            if time.time() > deadline or pump(0.2) is None:
                print(json.dumps({"error": "timeout waiting for %r" % step["expect"],
                                  "output": output.decode(errors="replace")}))
                sys.exit(1)
        seen = output.index(want, seen) + len(want)
        time.sleep(0.05)
        echo.append(echo_on())
    elif "send" in step:
        os.write(master, step["send"].encode())

deadline = time.time() + 20
while time.time() < deadline and pump(0.2) is not None:
    pass
echo_after = None
try:
    echo_after = echo_on()
except OSError:
    pass
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
print(json.dumps({"output": output.decode(errors="replace"), "status": code,
                  "echo": echo, "echoAfter": echo_after}))
