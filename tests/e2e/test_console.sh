#!/usr/bin/env bash
# The shell on a terminal, driven through a pseudo-terminal as a person would type:
# Tab completion, Backspace, ^U, the history (Up arrow), `?` help, and `poweroff`.
source "$(dirname "$0")/lib.sh"
topology
write_config

cat >"$WORK/drive_tty.py" <<'PY'
import os, pty, select, sys, time
gw, binary, config, log = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("ip", ["ip", "netns", "exec", gw, binary, "run", "--config", config])
seen = b""
def expect(text, limit=15):
    global seen
    end = time.time() + limit
    while time.time() < end:
        if text.encode() in seen:
            return True
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return text.encode() in seen
def step(name, keys, want):
    global seen
    seen = b""
    os.write(fd, keys)
    ok = expect(want)
    print(("ok   - " if ok else "FAIL - ") + name)
    return ok
results = [expect("natbox> ", 20)]
print(("ok   - " if results[0] else "FAIL - ") + "prompt on the terminal")
results.append(step("Tab completes `sh<Tab>int<Tab>` to show interfaces", b"sh\tint\t\r", "wan0"))
results.append(step("Backspace edits the line", b"show verx\x7fsion\r", "natbox 0."))
results.append(step("^U kills the line", b"nonsense\x15show uptime\r", "up "))
results.append(step("Up arrow recalls the last command", b"\x1b[A\r", "up "))
results.append(step("? lists what may follow", b"show ?\r", "show sessions"))
results.append(step("Tab lists several choices", b"show s\t", "states6"))
os.write(fd, b"\x15")
results.append(step("poweroff stops natbox", b"poweroff\r", "powering off"))
_, status = os.waitpid(pid, 0)
ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
print(("ok   - " if ok else "FAIL - ") + "natbox exited cleanly")
results.append(ok)
open(log, "wb").write(seen)
sys.exit(0 if all(results) else 1)
PY
timeout 120 python3 "$WORK/drive_tty.py" "$GW" "$NATBOX_BIN" "$WORK/natbox.toml" "$WORK/pty.log" >"$WORK/pty.out" 2>&1 || true
PASSED=$((PASSED + $(grep -c '^ok' "$WORK/pty.out" || true)))
FAILED=$((FAILED + $(grep -c '^FAIL' "$WORK/pty.out" || true)))
# The script must have reached its end: every step printed a line.
[ "$(grep -cE '^(ok|FAIL)' "$WORK/pty.out" || true)" -eq 9 ] || { FAILED=$((FAILED + 1)); echo "FAIL - pty driver did not finish"; }
cat "$WORK/pty.out"
finish
