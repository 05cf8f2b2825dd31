//! The command grammar: a flat table of command paths (`show sessions`), each with
//! the arguments it takes, resolved by unambiguous prefixes (`sh ses` = `show
//! sessions`), with completion and `?` help computed from the same table.

/// An argument a command accepts after its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `key VALUE`, e.g. `proto udp`.
    Keyed(&'static str, &'static str),
    /// A bare flag, e.g. `--json`.
    Flag(&'static str),
    /// A positional value, e.g. the level of `log level LEVEL`.
    Value(&'static str),
    /// Everything after the positional value, taken raw by the command (it may hold
    /// spaces, e.g. a TOML array).
    Rest(&'static str),
}

/// One command.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    pub path: &'static [&'static str],
    pub args: &'static [Arg],
    pub help: &'static str,
}

const JSON: Arg = Arg::Flag("--json");
const FILTERS: &[Arg] = &[
    Arg::Keyed("proto", "tcp|udp|icmp"),
    Arg::Keyed("inside", "ADDR"),
    Arg::Keyed("outside", "ADDR"),
    Arg::Keyed("remote", "ADDR"),
    Arg::Keyed("limit", "N"),
    JSON,
];

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        path: &["show", "interfaces"],
        args: &[JSON],
        help: "ports: link, MAC, addresses, packets, bytes, drops",
    },
    Command {
        path: &["show", "dhcp"],
        args: &[JSON],
        help: "DHCPv4 clients: state, server, address, lease and T1/T2 left, options in force",
    },
    Command {
        path: &["show", "ipv6"],
        args: &[JSON],
        help: "IPv6 learned on the outside link: router from Router Advertisements, address by SLAAC or DHCPv6, lifetimes left",
    },
    Command {
        path: &["show", "workers"],
        args: &[JSON],
        help: "per worker (engine shard): packets received and sent, sessions, hand-offs",
    },
    Command {
        path: &["show", "sessions"],
        args: FILTERS,
        help: "NAT sessions (filters: proto, inside, outside, remote; limit N, default 50, at most 1000)",
    },
    Command {
        path: &["show", "states6"],
        args: &[Arg::Keyed("limit", "N"), JSON],
        help: "IPv6 filter states",
    },
    Command {
        path: &["show", "policy"],
        args: &[Arg::Keyed("limit", "N"), JSON],
        help: "the egress policy: each rule and the new sessions it decided, the default (limit N, default 50, at most 1000), the per-host rate limits",
    },
    Command {
        path: &["show", "destinations"],
        args: &[JSON],
        help: "top destination prefixes (IPv4 /24, IPv6 /48) by new sessions, with TCP connection success (SYN-ACK within 3 s)",
    },
    Command {
        path: &["show", "forwards"],
        args: &[JSON],
        help: "the port forwards: each forward, the sessions it opened and the packets its allow list refused",
    },
    Command {
        path: &["show", "nat", "pool"],
        args: &[JSON],
        help: "ports in use per public address, top inside hosts",
    },
    Command {
        path: &["show", "stats"],
        args: &[JSON],
        help: "every counter and every drop reason",
    },
    Command {
        path: &["show", "neighbors"],
        args: &[JSON],
        help: "ARP and NDP caches",
    },
    Command {
        path: &["show", "routes"],
        args: &[JSON],
        help: "the routing table",
    },
    Command {
        path: &["show", "config"],
        args: &[JSON],
        help: "the running configuration (TOML)",
    },
    Command {
        path: &["show", "log"],
        args: &[Arg::Keyed("limit", "N")],
        help: "recent log lines",
    },
    Command {
        path: &["show", "version"],
        args: &[JSON],
        help: "version and uptime",
    },
    Command {
        path: &["show", "uptime"],
        args: &[],
        help: "time since start",
    },
    Command {
        path: &["show", "metrics"],
        args: &[],
        help: "counters in Prometheus text format",
    },
    Command {
        path: &["clear", "sessions"],
        args: FILTERS,
        help: "remove NAT sessions (same filters as show sessions)",
    },
    Command {
        path: &["clear", "stats"],
        args: &[],
        help: "reset counters",
    },
    Command {
        path: &["ping"],
        args: &[Arg::Value("ADDR"), Arg::Keyed("count", "N")],
        help: "echo requests from the box's own address, 1 s apart (count N, default 4; ^C stops)",
    },
    Command {
        path: &["terminal", "length"],
        args: &[Arg::Value("ROWS")],
        help: "rows per page on this terminal (0: no paging; default 24)",
    },
    Command {
        path: &["log", "level"],
        args: &[Arg::Value("error|warn|info|debug|trace")],
        help: "set the log level",
    },
    Command {
        path: &["configure"],
        args: &[],
        help: "edit a candidate configuration (then set, delete, diff, commit, abort)",
    },
    Command {
        path: &["set"],
        args: &[Arg::Value("PATH"), Arg::Rest("VALUE")],
        help: "in configuration mode: set a setting, e.g. set timeouts.udp 600",
    },
    Command {
        path: &["delete"],
        args: &[Arg::Value("PATH")],
        help: "in configuration mode: remove a setting (its default applies)",
    },
    Command {
        path: &["diff"],
        args: &[],
        help: "in configuration mode: candidate versus running configuration",
    },
    Command {
        path: &["commit"],
        args: &[Arg::Keyed("confirmed", "MINUTES")],
        help: "in configuration mode: validate, save to the metadata disk, apply live (confirmed MINUTES: roll back unless `confirm` follows)",
    },
    Command {
        path: &["abort"],
        args: &[],
        help: "in configuration mode: discard the candidate",
    },
    Command {
        path: &["confirm"],
        args: &[],
        help: "keep the configuration of a `commit confirmed` (cancels its rollback)",
    },
    Command {
        path: &["help"],
        args: &[],
        help: "list commands (also `?` after any word)",
    },
    Command {
        path: &["exit"],
        args: &[],
        help: "leave the shell (closes this session)",
    },
    Command {
        path: &["reboot"],
        args: &[],
        help: "restart the box (type it in full)",
    },
    Command {
        path: &["poweroff"],
        args: &[],
        help: "stop the box (type it in full)",
    },
];

/// Whether a command belongs to configuration mode.
pub fn is_configuration(path: &[&str]) -> bool {
    matches!(
        path,
        ["configure"] | ["set"] | ["delete"] | ["diff"] | ["commit"] | ["abort"]
    )
}

/// A resolved command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub command: &'static [&'static str],
    /// `key=value` pairs and flags (value empty), in order.
    pub args: Vec<(&'static str, String)>,
}

impl Parsed {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, flag: &str) -> bool {
        self.args.iter().any(|(k, _)| *k == flag)
    }
}

/// Resolves `words` (already split) against the table.
pub fn parse(words: &[&str]) -> Result<Parsed, String> {
    let mut depth = 0;
    let mut candidates: Vec<&Command> = COMMANDS.iter().collect();
    let command = loop {
        if let Some(done) = candidates.iter().find(|c| c.path.len() == depth) {
            break *done;
        }
        let Some(word) = words.get(depth) else {
            let next = next_words(&candidates, depth);
            return Err(format!("incomplete command; next: {}", next.join(" | ")));
        };
        let next = next_words(&candidates, depth);
        let chosen = match_word(word, &next)?;
        candidates.retain(|c| c.path.get(depth) == Some(&chosen));
        depth += 1;
    };
    let names = arg_names(command);
    let takes_value = command.args.iter().any(|a| matches!(a, Arg::Value(_)));
    let takes_rest = command.args.iter().any(|a| matches!(a, Arg::Rest(_)));
    let mut args: Vec<(&'static str, String)> = Vec::new();
    let mut rest = words[depth..].iter();
    while let Some(word) = rest.next() {
        if takes_value && !args.iter().any(|(k, _)| *k == "value") {
            args.push(("value", (*word).to_string()));
            if takes_rest {
                break;
            }
            continue;
        }
        let key = match_word(word, &names).map_err(|_| {
            format!(
                "`{word}`: {} takes {}",
                command.path.join(" "),
                describe_args(command.args)
            )
        })?;
        let arg = command
            .args
            .iter()
            .find(|a| matches!(a, Arg::Keyed(k, _) | Arg::Flag(k) if *k == key));
        match arg {
            Some(Arg::Keyed(k, what)) => {
                let value = rest
                    .next()
                    .ok_or_else(|| format!("`{k}` needs a value: {k} {what}"))?;
                args.push((*k, (*value).to_string()));
            }
            Some(Arg::Flag(f)) => args.push((*f, String::new())),
            _ => unreachable!("names come from the keyed args and flags"),
        }
    }
    if let Some(Arg::Value(what)) = command.args.iter().find(|a| matches!(a, Arg::Value(_))) {
        if !args.iter().any(|(k, _)| *k == "value") {
            return Err(format!("{} needs {what}", command.path.join(" ")));
        }
    }
    Ok(Parsed {
        command: command.path,
        args,
    })
}

fn next_words(candidates: &[&Command], depth: usize) -> Vec<&'static str> {
    let mut words: Vec<&'static str> = candidates
        .iter()
        .filter_map(|c| c.path.get(depth).copied())
        .collect();
    words.dedup();
    words
}

/// Words that must be typed in full: a stray `r` or `p` (line noise on a serial
/// console, a pasted blob) must never reboot or power off the box.
const FULL_WORD_ONLY: &[&str] = &["reboot", "poweroff"];

/// The one option `word` is a prefix of (an exact match wins).
fn match_word(word: &str, options: &[&'static str]) -> Result<&'static str, String> {
    if let Some(exact) = options.iter().find(|o| **o == word) {
        return Ok(exact);
    }
    let hits: Vec<&'static str> = options
        .iter()
        .copied()
        .filter(|o| o.starts_with(word) && !FULL_WORD_ONLY.contains(o))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "unknown word `{word}`; expected one of: {}",
            options.join(" ")
        )),
        many => Err(format!("`{word}` is ambiguous: {}", many.join(" "))),
    }
}

fn describe_args(args: &[Arg]) -> String {
    if args.is_empty() {
        return "no arguments".into();
    }
    args.iter()
        .map(|a| match a {
            Arg::Keyed(k, v) => format!("[{k} {v}]"),
            Arg::Flag(f) => format!("[{f}]"),
            Arg::Value(v) | Arg::Rest(v) => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Completions for the last (possibly empty) word of `line`.
pub fn complete(line: &str) -> Vec<String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let partial = if line.ends_with(char::is_whitespace) || line.is_empty() {
        ""
    } else {
        words.pop().unwrap_or("")
    };
    options_after(&words)
        .into_iter()
        .filter(|o| o.starts_with(partial))
        .map(str::to_string)
        .collect()
}

/// What may follow `words`: command words, or argument names of a resolved command.
fn options_after(words: &[&str]) -> Vec<&'static str> {
    let mut candidates: Vec<&Command> = COMMANDS.iter().collect();
    for (depth, word) in words.iter().enumerate() {
        if let Some(done) = candidates.iter().find(|c| c.path.len() == depth) {
            return arg_names(done);
        }
        let Ok(chosen) = match_word(word, &next_words(&candidates, depth)) else {
            return Vec::new();
        };
        candidates.retain(|c| c.path.get(depth) == Some(&chosen));
    }
    let depth = words.len();
    if let Some(done) = candidates.iter().find(|c| c.path.len() == depth) {
        return arg_names(done);
    }
    next_words(&candidates, depth)
}

/// The names of a command's keyed arguments and flags.
fn arg_names(command: &Command) -> Vec<&'static str> {
    command
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Keyed(k, _) | Arg::Flag(k) => Some(*k),
            Arg::Value(_) | Arg::Rest(_) => None,
        })
        .collect()
}

/// `?` help for what may follow `words`.
pub fn help(words: &[&str]) -> String {
    let resolved: Vec<&str> = {
        let mut candidates: Vec<&Command> = COMMANDS.iter().collect();
        let mut path = Vec::new();
        for (depth, word) in words.iter().enumerate() {
            match match_word(word, &next_words(&candidates, depth)) {
                Ok(chosen) => {
                    candidates.retain(|c| c.path.get(depth) == Some(&chosen));
                    path.push(chosen);
                }
                Err(e) => return e,
            }
        }
        path
    };
    let width = COMMANDS
        .iter()
        .map(|c| c.path.join(" ").len())
        .max()
        .unwrap_or(0);
    COMMANDS
        .iter()
        .filter(|c| c.path.starts_with(&resolved) || resolved.starts_with(c.path))
        .map(|c| {
            let args = if c.args.is_empty() {
                String::new()
            } else {
                format!(" {}", describe_args(c.args))
            };
            format!("  {:<width$}  {}{}", c.path.join(" "), c.help, args)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unambiguous_prefixes_resolve() {
        let p = parse(&["sh", "ses", "pro", "udp", "lim", "5", "--j"]).unwrap();
        assert_eq!(p.command, &["show", "sessions"]);
        assert_eq!(p.get("proto"), Some("udp"));
        assert_eq!(p.get("limit"), Some("5"));
        assert!(p.flag("--json"));
        assert_eq!(
            parse(&["sh", "nat", "p"]).unwrap().command,
            &["show", "nat", "pool"]
        );
    }

    #[test]
    fn ambiguity_and_unknowns_are_explained() {
        let e = parse(&["show", "s"]).unwrap_err();
        assert!(
            e.contains("ambiguous") && e.contains("sessions") && e.contains("stats"),
            "{e}"
        );
        let e = parse(&["frobnicate"]).unwrap_err();
        assert!(e.contains("unknown word"), "{e}");
        let e = parse(&["show"]).unwrap_err();
        assert!(e.contains("incomplete") && e.contains("interfaces"), "{e}");
        let e = parse(&["show", "sessions", "limit"]).unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
        let e = parse(&["show", "uptime", "now"]).unwrap_err();
        assert!(e.contains("no arguments"), "{e}");
        let e = parse(&["log", "level"]).unwrap_err();
        assert!(e.contains("needs"), "{e}");
    }

    #[test]
    fn reboot_and_poweroff_need_the_full_word() {
        assert!(parse(&["p"]).is_err());
        assert!(parse(&["reb"]).is_err());
        assert!(parse(&["poweroff"]).is_ok());
        assert_eq!(
            parse(&["r"]).unwrap_err(),
            "unknown word `r`; expected one of: show clear ping terminal log configure set delete diff commit abort confirm help exit reboot poweroff"
        );
    }

    #[test]
    fn positional_value() {
        let p = parse(&["log", "lev", "debug"]).unwrap();
        assert_eq!(p.command, &["log", "level"]);
        assert_eq!(p.get("value"), Some("debug"));
    }

    #[test]
    fn completion_of_words_and_args() {
        assert_eq!(complete("sh"), vec!["show"]);
        let after_show = complete("show ");
        assert!(
            after_show.contains(&"sessions".to_string())
                && after_show.contains(&"stats".to_string())
        );
        assert_eq!(complete("show ses"), vec!["sessions"]);
        assert_eq!(complete("show sessions li"), vec!["limit"]);
        assert!(complete("nonsense ").is_empty());
    }

    #[test]
    fn help_lists_matching_commands() {
        let h = help(&["show"]);
        assert!(h.contains("show sessions") && !h.contains("poweroff"));
        assert!(help(&[]).contains("poweroff"));
    }
}
