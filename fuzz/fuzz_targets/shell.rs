//! Feeds arbitrary bytes to the console shell as keystrokes, the way `control` feeds
//! it what the serial console read: line editor, login, pager, grammar, every command
//! (`configure`/`set`/`delete`/`diff`/`commit` included) against a live engine, and
//! `ping` jobs, and the rollback of an unconfirmed `commit confirmed`. The first byte picks whether a console password is set (bit 0); the
//! rest is typed in chunks of `CHUNK` bytes with 100 ms of engine time between them,
//! during which the box's ping jobs and timers run. Any panic is a bug; so is a
//! committed configuration that does not read back from its own TOML (the box would
//! not boot from what it saved).
#![no_main]

use firmware_config::Config;
use libfuzzer_sys::fuzz_target;
use natbox::control::shards::Inline;
use natbox::engine::Engine;
use natbox::services::ping::Pings;
use natbox::shell::commit::{self, Rollback};
use natbox::shell::terminal::{Backend, TerminalShell};
use natbox::shell::{self, Facts, Reply, Session, Store};

/// Keystrokes per console read.
const CHUNK: usize = 16;
/// SHA-512-crypt of "secret" with the fewest rounds the format allows (1000), so a
/// login costs the fuzzer little: Python's `crypt.crypt("secret",
/// "$6$rounds=1000$natboxsalt$")`.
const HASH: &str = "$6$rounds=1000$natboxsalt$1Ds7s64Jupay7QSJMYdvtcsvDAfAAoYmbAHCmqKzZTwiT1ExRpWDK.F.8F/j/KMgCXuYkmgaJYBv5jkWwTVtj.";

/// Keeps nothing, but checks that what a commit saves reads back as itself.
struct RoundTrip;

impl Store for RoundTrip {
    fn save(&mut self, config: &Config) -> Result<String, String> {
        let text = firmware_config::to_toml(config);
        let back = firmware_config::from_toml(&text).expect("a committed config reads back");
        assert_eq!(&back, config, "a committed config reads back unchanged");
        Ok("checked".into())
    }
}

/// What the commands run against, as `control::Backing` wires it on the box.
struct Box {
    engine: Engine,
    pings: Pings,
    rollback: Rollback,
    facts: Facts,
}

impl Backend for Box {
    fn execute(&mut self, session: &mut Session, line: &str) -> Reply {
        let ctx = shell::Context {
            shards: Some(&mut Inline {
                engine: &mut self.engine,
                now_ms: self.facts.now_ms,
            }),
            facts: &self.facts,
            store: Some(&mut RoundTrip),
            pings: Some(&mut self.pings),
            rollback: Some(&mut self.rollback),
        };
        shell::execute(session, line, ctx)
    }

    fn resume(&mut self, session: &mut Session) -> String {
        shell::resume(session, &mut self.pings)
    }

    fn interrupt(&mut self, session: &mut Session) -> String {
        shell::interrupt(session, &mut self.pings)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, keys)) = data.split_first() else {
        return;
    };
    let mut engine = natbox_fuzz::engine();
    if flags & 1 == 1 {
        let mut config = engine.config().clone();
        config.shell.password_hash = Some(HASH.into());
        engine.reconfigure(&config);
    }
    let now = 1_000_000;
    let mut b = Box {
        engine,
        pings: Pings::default(),
        rollback: Rollback::default(),
        facts: Facts {
            devices: vec!["lan0".into(), "wan0".into()],
            links: vec!["up", "up"],
            now_ms: now,
            io: vec![Default::default(); 2],
            source: Some("fuzz".into()),
            ..Facts::default()
        },
    };
    let mut terminal = TerminalShell::new(&b.engine.config().hostname.clone());
    let mut out = vec![0u8; 9100];
    for chunk in keys.chunks(CHUNK) {
        b.facts.now_ms += 100;
        let now = b.facts.now_ms;
        b.engine.poll(now);
        let mut one = Inline {
            engine: &mut b.engine,
            now_ms: now,
        };
        b.pings.poll(&mut one, now);
        if let Some(previous) = b.rollback.due(now) {
            commit::roll_back(&previous, &mut one, Some(&mut RoundTrip));
        }
        while b.engine.pop_transmit(&mut out).is_some() {}
        let hash = b.engine.config().shell.password_hash.clone();
        terminal.feed(chunk, hash.as_deref(), now, &mut b);
    }
});
