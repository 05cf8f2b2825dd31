#!/usr/bin/env bash
# The shell on a terminal, driven through a pseudo-terminal as a person would type:
# Tab completion, Backspace, ^U, the history (Up arrow), `?` help, and ^C at the prompt
# stopping natbox (host mode: a foreground program); then, with a console password
# configured: the login without echo, the delay after a wrong password, paging of long
# output, ^C stopping a `ping` and not natbox, `exit` logging out, and `poweroff`.
source "$(dirname "$0")/lib.sh"
topology
write_config

cat >"$WORK/drive_tty.py" <<'PY'
import os, pty, select, sys, time
gw, binary, config, log, mode = sys.argv[1:6]
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
if mode == "open":
    results = [expect("natbox> ", 20)]
    print(("ok   - " if results[0] else "FAIL - ") + "prompt on the terminal")
    results.append(step("Tab completes `sh<Tab>int<Tab>` to show interfaces", b"sh\tint\t\r", "wan0"))
    results.append(step("Backspace edits the line", b"show verx\x7fsion\r", "natbox 0."))
    results.append(step("^U kills the line", b"nonsense\x15show uptime\r", "up "))
    results.append(step("Up arrow recalls the last command", b"\x1b[A\r", "up "))
    results.append(step("? lists what may follow", b"show ?\r", "show sessions"))
    results.append(step("Tab lists several choices", b"show s\t", "states6"))
    os.write(fd, b"\x15")
    results.append(step("^C at the prompt stops natbox", b"\x03", "stopped"))

else:
    results = [expect("password required", 20) and expect("Password: ")]
    print(("ok   - " if results[0] else "FAIL - ") + "password asked for on the terminal")
    ok = step("a wrong password is refused with a delay", b"wrong-pass\r", "login incorrect; wait 1 s")
    results.append(ok and b"wrong-pass" not in seen)
    print(("ok   - " if results[-1] else "FAIL - ") + "the password is not echoed")
    results.append(step("after the delay the password is asked again", b"", "Password: "))
    results.append(step("the right password opens the shell", b"natbox-test\r", "natbox> "))
    results.append(step("long output stops at --More--", b"show stats\r", "--More--"))
    results.append(step("q leaves the pager for the prompt", b"q", "natbox> "))
    results.append(step("ping streams its replies, then the prompt returns",
                        b"ping 198.51.100.1 count 2\r", "2 packets transmitted, 2 received")
                   and expect("natbox> ", 5))
    results.append(step("a long ping runs", b"ping 198.51.100.1 count 50\r", "bytes from"))
    results.append(step("^C stops the ping, not natbox", b"\x03", "packets transmitted")
                   and expect("natbox> ", 5) and b"stopped" not in seen)
    results.append(step("the shell still answers", b"show uptime\r", "up "))
    results.append(step("exit logs out", b"exit\r", "Password: "))
    results.append(step("log in again", b"natbox-test\r", "natbox> "))
    results.append(step("poweroff stops natbox", b"poweroff\r", "powering off"))
_, status = os.waitpid(pid, 0)
ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
print(("ok   - " if ok else "FAIL - ") + "natbox exited cleanly")
results.append(ok)
open(log, "wb").write(seen)
sys.exit(0 if all(results) else 1)
PY
drive() {
    timeout 120 python3 "$WORK/drive_tty.py" "$GW" "$NATBOX_BIN" "$WORK/natbox.toml" "$WORK/pty.log" "$1" >"$WORK/pty.out" 2>&1 || true
    PASSED=$((PASSED + $(grep -c '^ok' "$WORK/pty.out" || true)))
    FAILED=$((FAILED + $(grep -c '^FAIL' "$WORK/pty.out" || true)))
    # The script must have reached its end: every step printed a line.
    [ "$(grep -cE '^(ok|FAIL)' "$WORK/pty.out" || true)" -eq "$2" ] || { FAILED=$((FAILED + 1)); echo "FAIL - pty driver did not finish"; }
    cat "$WORK/pty.out"
}
drive open 9
hash=$(openssl passwd -6 natbox-test)
printf '\n[shell]\npassword_hash = "%s"\n' "$hash" >>"$WORK/natbox.toml"
drive password 15
finish
