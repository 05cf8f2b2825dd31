//! Line editing for a dumb serial terminal: bytes in, screen updates and finished
//! lines out. Nothing beyond VT100 is assumed: the screen is redrawn with carriage
//! return, the text, erase-to-end-of-line (`ESC [ K`) and cursor-left (`ESC [ n D`).
//!
//! Keys: printable characters insert at the cursor; Backspace/DEL and ^H delete left;
//! ^U deletes to the start, ^W the word before the cursor, ^K to the end; ^A/Home and
//! ^E/End move to the ends; Left/Right move; Up/Down (and ^P/^N) walk the history;
//! Tab completes from the command grammar (one match: completed; several: listed);
//! ^C abandons the line; Enter (CR or LF) submits it. Other control characters and
//! unknown escape sequences are ignored, so line noise cannot inject anything.

use super::grammar;

/// Lines kept in the history.
const HISTORY: usize = 64;
/// Longest line the editor keeps; further input is refused with a bell.
const MAX_LINE: usize = super::MAX_LINE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Esc,
    /// Inside `ESC [`, with the numeric parameter read so far.
    Csi(u16),
}

/// The editor state of one terminal.
#[derive(Debug)]
pub struct Editor {
    prompt: String,
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while walking the history (`history.len()` = the line being typed).
    browsing: usize,
    /// The line being typed, kept while browsing the history.
    draft: Vec<char>,
    escape: Escape,
    /// The last byte was CR: a following LF is part of the same Enter.
    after_cr: bool,
}

impl Editor {
    pub fn new(prompt: &str) -> Editor {
        Editor {
            prompt: prompt.to_string(),
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: 0,
            draft: Vec::new(),
            escape: Escape::None,
            after_cr: false,
        }
    }

    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Feeds one byte. Screen output goes to `out`; a submitted line is returned.
    pub fn feed(&mut self, byte: u8, out: &mut String) -> Option<String> {
        let after_cr = std::mem::take(&mut self.after_cr);
        match self.escape {
            Escape::Esc => {
                self.escape = if byte == b'[' || byte == b'O' {
                    Escape::Csi(0)
                } else {
                    Escape::None
                };
                return None;
            }
            Escape::Csi(n) => {
                self.escape = Escape::None;
                match byte {
                    b'0'..=b'9' => {
                        self.escape =
                            Escape::Csi(n.saturating_mul(10).saturating_add(u16::from(byte - b'0')))
                    }
                    b'A' => self.history_step(-1, out),
                    b'B' => self.history_step(1, out),
                    b'C' => self.move_to(self.cursor + 1, out),
                    b'D' => self.move_to(self.cursor.saturating_sub(1), out),
                    b'H' => self.move_to(0, out),
                    b'F' => self.move_to(self.line.len(), out),
                    b'~' if n == 1 || n == 7 => self.move_to(0, out),
                    b'~' if n == 4 || n == 8 => self.move_to(self.line.len(), out),
                    b'~' if n == 3 => self.delete_at_cursor(out),
                    _ => {}
                }
                return None;
            }
            Escape::None => {}
        }
        match byte {
            b'\r' => {
                self.after_cr = true;
                return Some(self.submit(out));
            }
            b'\n' if after_cr => {}
            b'\n' => return Some(self.submit(out)),
            0x1b => self.escape = Escape::Esc,
            0x7f | 0x08 if self.cursor > 0 => {
                self.line.remove(self.cursor - 1);
                self.cursor -= 1;
                self.redraw(out);
            }
            0x01 => self.move_to(0, out),
            0x05 => self.move_to(self.line.len(), out),
            0x02 => self.move_to(self.cursor.saturating_sub(1), out),
            0x06 => self.move_to(self.cursor + 1, out),
            0x10 => self.history_step(-1, out),
            0x0e => self.history_step(1, out),
            0x15 => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
                self.redraw(out);
            }
            0x0b => {
                self.line.truncate(self.cursor);
                self.redraw(out);
            }
            0x17 => {
                let mut start = self.cursor;
                while start > 0 && self.line[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.line[start - 1] != ' ' {
                    start -= 1;
                }
                self.line.drain(start..self.cursor);
                self.cursor = start;
                self.redraw(out);
            }
            0x03 => {
                out.push_str("^C\r\n");
                self.line.clear();
                self.cursor = 0;
                self.browsing = self.history.len();
                out.push_str(&self.prompt);
            }
            b'\t' => self.complete(out),
            0x20..=0x7e => {
                if self.line.len() >= MAX_LINE {
                    out.push('\x07');
                } else {
                    self.line.insert(self.cursor, char::from(byte));
                    self.cursor += 1;
                    self.redraw(out);
                }
            }
            _ => {}
        }
        None
    }

    fn submit(&mut self, out: &mut String) -> String {
        out.push_str("\r\n");
        let line: String = self.line.drain(..).collect();
        self.cursor = 0;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        self.browsing = self.history.len();
        self.draft.clear();
        line
    }

    fn history_step(&mut self, step: isize, out: &mut String) {
        let target = self.browsing as isize + step;
        if target < 0 || target as usize > self.history.len() {
            out.push('\x07');
            return;
        }
        if self.browsing == self.history.len() {
            self.draft = self.line.clone();
        }
        self.browsing = target as usize;
        self.line = match self.history.get(self.browsing) {
            Some(h) => h.chars().collect(),
            None => self.draft.clone(),
        };
        self.cursor = self.line.len();
        self.redraw(out);
    }

    fn complete(&mut self, out: &mut String) {
        let head: String = self.line[..self.cursor].iter().collect();
        let options = grammar::complete(&head);
        match options.as_slice() {
            [] => out.push('\x07'),
            [one] => {
                let typed = head.rsplit(' ').next().unwrap_or("").len();
                let rest: Vec<char> = one
                    .chars()
                    .skip(typed)
                    .chain(std::iter::once(' '))
                    .collect();
                let n = rest.len();
                self.line.splice(self.cursor..self.cursor, rest);
                self.cursor += n;
                self.redraw(out);
            }
            many => {
                out.push_str("\r\n");
                out.push_str(&many.join("  "));
                out.push_str("\r\n");
                self.redraw(out);
            }
        }
    }

    fn delete_at_cursor(&mut self, out: &mut String) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.redraw(out);
        }
    }

    fn move_to(&mut self, cursor: usize, out: &mut String) {
        self.cursor = cursor.min(self.line.len());
        self.redraw(out);
    }

    /// CR, prompt, the whole line, erase the rest, then back to the cursor.
    fn redraw(&self, out: &mut String) {
        out.push('\r');
        out.push_str(&self.prompt);
        out.extend(self.line.iter());
        out.push_str("\x1b[K");
        let back = self.line.len() - self.cursor;
        if back > 0 {
            out.push_str(&format!("\x1b[{back}D"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_keys(e: &mut Editor, keys: &[u8]) -> (Vec<String>, String) {
        let mut out = String::new();
        let lines = keys.iter().filter_map(|&b| e.feed(b, &mut out)).collect();
        (lines, out)
    }

    #[test]
    fn typing_and_enter() {
        let mut e = Editor::new("> ");
        let (lines, _) = type_keys(&mut e, b"show stats\r\n");
        assert_eq!(lines, vec!["show stats"]);
        let (lines, _) = type_keys(&mut e, b"help\n");
        assert_eq!(lines, vec!["help"]);
    }

    #[test]
    fn backspace_kill_and_word_erase() {
        let mut e = Editor::new("> ");
        assert_eq!(
            type_keys(&mut e, b"showw\x7f stats\r").0,
            vec!["show stats"]
        );
        assert_eq!(type_keys(&mut e, b"garbage\x15help\r").0, vec!["help"]);
        assert_eq!(
            type_keys(&mut e, b"show sessions\x17stats\r").0,
            vec!["show stats"]
        );
        assert_eq!(type_keys(&mut e, b"show x\x08\x08\x08\r").0, vec!["sho"]);
    }

    #[test]
    fn arrows_move_and_history() {
        let mut e = Editor::new("> ");
        type_keys(&mut e, b"show stats\r");
        type_keys(&mut e, b"show routes\r");
        // Up twice: the older line; edit it with Left + insert.
        let (lines, out) = type_keys(
            &mut e,
            b"\x1b[A\x1b[A\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[DX\r",
        );
        assert_eq!(lines, vec!["showX stats"]);
        assert!(out.contains("\x1b[K"), "redraws with erase-to-end");
        // Down past the newest returns to the draft.
        let (lines, _) = type_keys(&mut e, b"dra\x1b[A\x1b[Bft\r");
        assert_eq!(lines, vec!["draft"]);
        // Home/End and Delete.
        assert_eq!(
            type_keys(&mut e, b"elp\x1b[Hh\x1b[F!\x1b[D\x1b[3~\r").0,
            vec!["help"]
        );
    }

    #[test]
    fn tab_completes_and_lists() {
        let mut e = Editor::new("> ");
        assert_eq!(type_keys(&mut e, b"sh\tses\t\r").0, vec!["show sessions "]);
        let (lines, out) = type_keys(&mut e, b"show s\t\x15\r");
        assert!(
            out.contains("sessions") && out.contains("stats"),
            "lists the choices: {out:?}"
        );
        assert_eq!(lines, vec![""]);
    }

    #[test]
    fn noise_is_ignored_and_lines_are_bounded() {
        let mut e = Editor::new("> ");
        let (lines, _) = type_keys(&mut e, b"\x00\x1b[99Z\x1bxhelp\x07\r");
        assert_eq!(lines, vec!["help"]);
        let long = vec![b'a'; MAX_LINE + 10];
        let (_, out) = type_keys(&mut e, &long);
        assert!(out.contains('\x07'));
        assert_eq!(type_keys(&mut e, b"\r").0[0].len(), MAX_LINE);
        let (lines, out) = type_keys(&mut e, b"abc\x03");
        assert!(lines.is_empty() && out.contains("^C"));
    }
}
