//! Matching a device's modalias against a module's `alias=` pattern.
//!
//! The patterns are those of `modules.alias` (what the kernel build writes into each
//! module's `.modinfo`, e.g. `pci:v00001AF4d*sv*sd*bc*sc*i*`), which kmod matches with
//! `fnmatch(3)` and no flags. This is that subset of fnmatch, on bytes (modaliases are
//! ASCII; a `?` matches one byte): `*` any run, `?` any one byte, `[...]` a class with
//! ranges (`a-z`) and negation (`[!...]` or `[^...]`), a `]` right after the opening
//! (or the negation) taken as a member, `\x` the byte `x`; a `[` without its closing
//! `]` is a literal `[`, as glibc has it. Inside a class a backslash is an ordinary
//! member (no module alias uses one there).
//!
//! Written here rather than taken from a crate: `glob::Pattern` has path semantics
//! options and a `Result` per pattern, `globset` compiles to regexes (a large
//! dependency for a few hundred short patterns matched once at boot), `wildmatch` has
//! no character classes (some device aliases use them). The matcher is the classic
//! two-cursor scan that backtracks to the last `*` only: O(pattern x text) at worst,
//! no recursion, no allocation, and it never panics (every index is checked; a
//! proptest feeds it arbitrary strings).

/// Whether `text` matches the fnmatch-style `pattern` (see the module doc).
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the last `*`: the pattern after it, and the text position
    // it was last tried against.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(_) => {
                if let Some(&c) = t.get(ti) {
                    if let Some(len) = one(p, pi, c) {
                        pi += len;
                        ti += 1;
                        continue;
                    }
                }
            }
            None if ti == t.len() => return true,
            None => {}
        }
        match star {
            Some((after, tried)) if tried < t.len() => {
                star = Some((after, tried + 1));
                pi = after;
                ti = tried + 1;
            }
            _ => return false,
        }
    }
}

/// If the single-byte token at `p[at..]` (not `*`) matches `c`, its length in the
/// pattern.
fn one(p: &[u8], at: usize, c: u8) -> Option<usize> {
    match p.get(at)? {
        b'?' => Some(1),
        b'\\' => match p.get(at + 1) {
            Some(&escaped) => (escaped == c).then_some(2),
            None => (c == b'\\').then_some(1),
        },
        b'[' => match class(p, at, c) {
            Some((hit, len)) => hit.then_some(len),
            None => (c == b'[').then_some(1),
        },
        &literal => (literal == c).then_some(1),
    }
}

/// The class opening at `p[at] == b'['`: whether `c` is in it, and its length; `None`
/// when it has no closing `]`.
fn class(p: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negated = matches!(p.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negated, i + 1 - at));
        }
        first = false;
        match (p.get(i + 1), p.get(i + 2)) {
            (Some(b'-'), Some(&hi)) if hi != b']' => {
                hit |= (lo..=hi).contains(&c);
                i += 3;
            }
            _ => {
                hit |= lo == c;
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;
    use proptest::prelude::*;

    #[test]
    fn virtio_pci_alias_matches_every_virtio_pci_function() {
        let pattern = "pci:v00001AF4d*sv*sd*bc*sc*i*";
        assert!(matches(
            pattern,
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00"
        ));
        assert!(matches(
            pattern,
            "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
        ));
        assert!(!matches(
            pattern,
            "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00"
        ));
    }

    #[test]
    fn pci_device_alias_needs_its_exact_device_id() {
        let virtio_net_modern = "pci:v00001AF4d00001041sv*sd*bc*sc*i*";
        assert!(matches(
            virtio_net_modern,
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00"
        ));
        assert!(!matches(
            virtio_net_modern,
            "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00"
        ));
        let ena = "pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*";
        assert!(matches(
            ena,
            "pci:v00001D0Fd0000EC20sv00001D0Fsd00000000bc02sc00i00"
        ));
        assert!(!matches(
            ena,
            "pci:v00001D0Fd0000EC21sv00001D0Fsd00000000bc02sc00i00"
        ));
        // A trailing `*` is needed for the text to go on.
        assert!(!matches(
            "pci:v00001D0Fd0000EC20",
            "pci:v00001D0Fd0000EC20sv0"
        ));
    }

    #[test]
    fn virtio_alias_matches_the_device_id_only() {
        assert!(matches("virtio:d00000001v*", "virtio:d00000001v00001AF4"));
        assert!(!matches("virtio:d00000001v*", "virtio:d00000002v00001AF4"));
        assert!(!matches("virtio:d00000001v*", "virtio:d00000001"));
        assert!(matches("virtio:d00000001v*", "virtio:d00000001v"));
    }

    #[test]
    fn acpi_and_input_aliases_with_several_stars() {
        assert!(matches("acpi*:LNXPWRBN:*", "acpi:LNXPWRBN:"));
        assert!(matches("acpi*:PNP0C0C:*", "acpi:PNP0C0C:PNP0C0C:"));
        assert!(!matches("acpi*:PNP0C0C:*", "acpi:PNP0C0E:"));
        let evdev = "input:b*v*p*e*-e*k*r*a*m*l*s*f*w*";
        assert!(matches(
            evdev,
            "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw"
        ));
        assert!(!matches(evdev, "serio:ty01pr00id00ex00"));
        assert!(matches("scsi:t-0x00*", "scsi:t-0x00"));
        assert!(!matches("scsi:t-0x00*", "scsi:t-0x05"));
    }

    #[test]
    fn character_classes_ranges_and_negation() {
        assert!(matches("dmi*:pn[Vv]irtual*", "dmi:bvn:pnVirtual Machine"));
        assert!(matches("dmi*:pn[Vv]irtual*", "dmi:pnvirtual"));
        assert!(!matches("dmi*:pn[Vv]irtual*", "dmi:pnXirtual"));
        assert!(matches("d[0-9A-F]", "dB"));
        assert!(!matches("d[0-9A-F]", "dG"));
        assert!(matches("d[!0-9]", "dx"));
        assert!(!matches("d[!0-9]", "d7"));
        assert!(matches("d[^0-9]", "dx"));
        // `]` first is a member; a `-` at the end is a member.
        assert!(matches("[]a]", "]"));
        assert!(matches("[a-]", "-"));
        // An unclosed `[` is literal.
        assert!(matches("a[b", "a[b"));
        assert!(!matches("a[b", "ab"));
    }

    #[test]
    fn question_mark_and_escapes() {
        assert!(matches("usb:v?", "usb:vX"));
        assert!(!matches("usb:v?", "usb:v"));
        assert!(matches(r"a\*b", "a*b"));
        assert!(!matches(r"a\*b", "axb"));
        assert!(matches(r"a\", r"a\"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("*", ""));
    }

    #[test]
    fn star_backtracks_to_find_a_later_match() {
        assert!(matches("*ab*ab", "xabyabab"));
        assert!(!matches("*ab*ab", "xabyaba"));
        assert!(matches("a*b*c", "abbbbc"));
    }

    /// A reference matcher: plain recursion over the same grammar, only for patterns
    /// without classes or escapes (where it is obviously right).
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|k| reference(rest, &t[k..])),
            Some((&c, rest)) => match t.split_first() {
                Some((&d, t_rest)) => (c == b'?' || c == d) && reference(rest, t_rest),
                None => false,
            },
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_pattern_or_text(pattern in ".{0,40}", text in ".{0,60}") {
            let _ = matches(&pattern, &text);
        }

        #[test]
        fn never_panics_on_pattern_syntax_soup(
            pattern in "[\\[\\]!^*?\\\\a-c-]{0,24}",
            text in "[\\[\\]!^*?\\\\a-c-]{0,24}",
        ) {
            let _ = matches(&pattern, &text);
        }

        #[test]
        fn agrees_with_the_recursive_reference(
            pattern in "[ab*?]{0,12}",
            text in "[ab]{0,16}",
        ) {
            prop_assert_eq!(
                matches(&pattern, &text),
                reference(pattern.as_bytes(), text.as_bytes())
            );
        }

        #[test]
        fn a_text_matches_itself_when_it_has_no_special_bytes(text in "[a-zA-Z0-9:,_-]{0,40}") {
            prop_assert!(matches(&text, &text));
        }
    }
}
