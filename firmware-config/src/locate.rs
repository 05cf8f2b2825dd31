//! Where a field sits in the TOML text, so that errors can name a line.
//!
//! The text is parsed a second time with `toml_edit`, which keeps the byte span of every
//! key and value; a dotted field path as `validate` writes it (`outside.ipv4`,
//! `nat.pool[2]`, `inside.routes[0].via`) is walked through that document. A field the
//! file leaves out (it took its default) is reported at the line of the nearest table
//! the file does name, or without a line when there is none.

use std::ops::Range;
use toml_edit::{ImDocument, Item, Table, TableLike, Value};

/// A parsed TOML text that maps field paths to lines and byte offsets to field paths.
pub(crate) struct Locator<'a> {
    text: &'a str,
    doc: ImDocument<&'a str>,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// A place in the document that can have children.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(table) => Some(table as &dyn TableLike),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Value(value) => value.span(),
            Node::Table(table) => table.span(),
        }
    }

    fn child(self, key: &str) -> Option<(Option<Range<usize>>, Node<'a>)> {
        let (k, item) = self.table_like()?.get_key_value(key)?;
        let node = Node::Item(item);
        Some((k.span().or_else(|| node.span()), node))
    }

    fn index(self, i: usize) -> Option<(Option<Range<usize>>, Node<'a>)> {
        let array = match self {
            Node::Item(Item::ArrayOfTables(aot)) => {
                let table = aot.get(i)?;
                return Some((table.span(), Node::Table(table)));
            }
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => a,
            _ => return None,
        };
        let value = array.get(i)?;
        Some((value.span(), Node::Value(value)))
    }

    /// Every child with its path step and the spans that count as "inside" it.
    fn children(self) -> Vec<(String, Node<'a>, Vec<Range<usize>>)> {
        let mut out = Vec::new();
        if let Some(table) = self.table_like() {
            for (name, item) in table.iter() {
                let node = Node::Item(item);
                let key_span = table.key(name).and_then(|k| k.span());
                let spans = key_span.into_iter().chain(node.span()).collect();
                out.push((format!(".{name}"), node, spans));
            }
            return out;
        }
        let mut i = 0;
        while let Some((span, node)) = self.index(i) {
            out.push((format!("[{i}]"), node, span.into_iter().collect()));
            i += 1;
        }
        out
    }
}

fn parse_path(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if !name.is_empty() {
            steps.push(Step::Key(name));
        }
        while let Some(open) = rest.strip_prefix('[') {
            let Some(close) = open.find(']') else { break };
            if let Ok(i) = open[..close].parse() {
                steps.push(Step::Index(i));
            }
            rest = &open[close + 1..];
        }
    }
    steps
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl<'a> Locator<'a> {
    /// Parses `text`; the error is the parser's when it is not TOML.
    pub(crate) fn new(text: &'a str) -> Result<Self, toml_edit::TomlError> {
        let doc = ImDocument::parse(text)?;
        Ok(Locator { text, doc })
    }

    /// The line of `path`, or of its nearest ancestor table the file names.
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        let mut node = Node::Item(self.doc.as_item());
        let mut best = None;
        for step in parse_path(path) {
            let next = match step {
                Step::Key(k) => node.child(k),
                Step::Index(i) => node.index(i),
            };
            let Some((span, child)) = next else { break };
            if let Some(span) = span {
                best = Some(span.start);
            }
            node = child;
        }
        best.map(|offset| line_of(self.text, offset))
    }

    /// The dotted path of the innermost key or value whose span holds `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> Option<String> {
        let mut node = Node::Item(self.doc.as_item());
        let mut path = String::new();
        'descend: loop {
            for (step, child, spans) in node.children() {
                if spans.iter().any(|s| s.contains(&offset)) || Self::holds(child, offset) {
                    path.push_str(&step);
                    node = child;
                    continue 'descend;
                }
            }
            break;
        }
        let path = path.strip_prefix('.').unwrap_or(&path).to_string();
        (!path.is_empty()).then_some(path)
    }

    /// Whether any descendant of `node` has a span holding `offset` (a `[table]`'s own
    /// span need not cover its body, and dotted keys have no span of their own).
    fn holds(node: Node<'_>, offset: usize) -> bool {
        node.children().into_iter().any(|(_, child, spans)| {
            spans.iter().any(|s| s.contains(&offset)) || Self::holds(child, offset)
        })
    }

    /// The source text of the value at `path`, if the file spells it out.
    pub(crate) fn raw_value(&self, path: &str) -> Option<&'a str> {
        let mut node = Node::Item(self.doc.as_item());
        for step in parse_path(path) {
            node = match step {
                Step::Key(k) => node.child(k)?.1,
                Step::Index(i) => node.index(i)?.1,
            };
        }
        match node {
            Node::Item(Item::Value(v)) | Node::Value(v) => self.text.get(v.span()?),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"hostname = "x"

[inside]
port = "lan0"
routes = [
  { prefix = "10.20.0.0/16", via = "10.10.0.254" },
]

[nat]
pool = ["192.0.2.1",
        "192.0.2.2"]
timeouts.udp = 300

[[outside.routes]]
prefix = "0.0.0.0/0"
via = "198.51.100.1"
"#;

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("inside.routes[1].via"),
            vec![
                Step::Key("inside"),
                Step::Key("routes"),
                Step::Index(1),
                Step::Key("via")
            ]
        );
    }

    #[test]
    fn lines_of_fields() {
        let l = Locator::new(TEXT).expect("valid toml");
        assert_eq!(l.line("hostname"), Some(1));
        assert_eq!(l.line("inside.port"), Some(4));
        assert_eq!(l.line("inside.routes[0].via"), Some(6));
        assert_eq!(l.line("nat.pool[1]"), Some(11));
        assert_eq!(l.line("nat.timeouts.udp"), Some(12));
        assert_eq!(l.line("outside.routes[0].via"), Some(16));
        // Absent fields fall back to their table; absent tables to nothing.
        assert_eq!(l.line("inside.mtu"), Some(3));
        assert_eq!(l.line("log.level"), None);
    }

    #[test]
    fn paths_at_offsets() {
        let l = Locator::new(TEXT).expect("valid toml");
        let at = |needle: &str| l.path_at(TEXT.find(needle).expect("needle"));
        assert_eq!(at("\"lan0\"").as_deref(), Some("inside.port"));
        assert_eq!(
            at("\"10.10.0.254\"").as_deref(),
            Some("inside.routes[0].via")
        );
        assert_eq!(at("\"192.0.2.2\"").as_deref(), Some("nat.pool[1]"));
        assert_eq!(at("300").as_deref(), Some("nat.timeouts.udp"));
        assert_eq!(
            at("\"198.51.100.1\"").as_deref(),
            Some("outside.routes[0].via")
        );
        assert_eq!(l.raw_value("nat.pool[1]"), Some("\"192.0.2.2\""));
    }
}
