//! The parser: a port of mustache.js 4.2.0's `parseTemplate` / `Scanner` / `squashTokens` /
//! `nestTokens`, into a tree of [`Token`]s.

use super::error::{MAX_SECTION_DEPTH, TemplateError};

#[derive(Debug, Clone)]
pub(super) enum Token {
    Text(String),
    /// `{{name}}` (escaped) or `{{{name}}}` / `{{&name}}` (raw).
    Var {
        name: Name,
        escape: bool,
    },
    /// `{{#name}}…{{/name}}` or, inverted, `{{^name}}…{{/name}}`.
    Section {
        name: Name,
        inverted: bool,
        children: Vec<Token>,
    },
}

/// A tag's name, pre-split the way `Context.prototype.lookup` treats it.
#[derive(Debug, Clone)]
pub(super) enum Name {
    /// `.`: the current context's view.
    Dot,
    /// No `.` after the first character: a property of some context's view.
    Simple(String),
    /// `a.b.c`: the whole path is tried against each context in turn.
    Dotted(Vec<String>),
}

impl Name {
    fn new(full: &str) -> Name {
        if full == "." {
            Name::Dot
        } else if full.find('.').is_some_and(|i| i > 0) {
            Name::Dotted(full.split('.').map(str::to_string).collect())
        } else {
            Name::Simple(full.to_string())
        }
    }
}

/// JavaScript's `\s`: WhiteSpace and LineTerminator (differs from `char::is_whitespace` on
/// U+0085 and U+FEFF).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// mustache.js reports positions as JavaScript string indices (UTF-16 code units).
fn utf16_pos(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(0, |s| s.encode_utf16().count())
}

/// mustache.js's Scanner. Its regexes are all of the forms `LIT\s*`, `\s*LIT` or `\s*` with a
/// literal (escaped) delimiter, so they are matched here with plain string searches.
struct Scanner<'a> {
    src: &'a str,
    pos: usize, // byte offset; always on a char boundary
}

impl<'a> Scanner<'a> {
    fn tail(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn eos(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// `scan(/\s*/)`.
    fn skip_ws(&mut self) {
        let tail = self.tail();
        self.pos += tail.len() - tail.trim_start_matches(is_js_space).len();
    }

    /// `scanUntil(/LIT\s*/)`: the text before the first `lit`, or all of it.
    fn scan_until(&mut self, lit: &str) -> &'a str {
        let tail = self.tail();
        let end = tail.find(lit).unwrap_or(tail.len());
        self.pos += end;
        tail.get(..end).unwrap_or("")
    }

    /// `scanUntil(/\s*LIT/)`: the leftmost match starts at the whitespace run right before the
    /// first `lit` (a delimiter never contains whitespace), so that run is not part of the text.
    fn scan_until_ws_lit(&mut self, lit: &str) -> &'a str {
        let tail = self.tail();
        let end = match tail.find(lit) {
            Some(p) => tail
                .get(..p)
                .map_or(0, |s| s.trim_end_matches(is_js_space).len()),
            None => tail.len(),
        };
        self.pos += end;
        tail.get(..end).unwrap_or("")
    }

    /// `scan(/\s*LIT/)`: consumes whitespace plus `lit` only when both are here.
    fn scan_ws_lit(&mut self, lit: &str) -> bool {
        let tail = self.tail();
        let rest = tail.trim_start_matches(is_js_space);
        if rest.starts_with(lit) {
            self.pos += tail.len() - rest.len() + lit.len();
            true
        } else {
            false
        }
    }

    /// `scan(/LIT\s*/)`.
    fn scan_open(&mut self, lit: &str) -> bool {
        if self.tail().starts_with(lit) {
            self.pos += lit.len();
            self.skip_ws();
            true
        } else {
            false
        }
    }

    /// `scan(/#|\^|\/|>|\{|&|=|!/)`: the tag type, if the next character is one.
    fn scan_tag_type(&mut self) -> Option<char> {
        let c = self.tail().chars().next()?;
        if matches!(c, '#' | '^' | '/' | '>' | '{' | '&' | '=' | '!') {
            self.pos += c.len_utf8();
            Some(c)
        } else {
            None
        }
    }
}

/// Flat tokens before nesting; text as byte ranges of the template.
enum Raw {
    Text(usize, usize),
    Var { name: String, escape: bool },
    Open { name: String, inverted: bool },
    Close,
}

/// Per-line state for mustache.js's standalone-tag rule: a line that holds section, inverted,
/// closing, comment, partial or delimiter tags and otherwise only whitespace loses that
/// whitespace, its newline included.
struct Lines {
    start: usize, // index in `raw` where the current line's tokens begin
    has_tag: bool,
    non_space: bool,
}

impl Lines {
    /// mustache.js's `stripSpace`: when the line was standalone, every text token on it is
    /// whitespace and is dropped.
    fn end_line(&mut self, raw: &mut Vec<Raw>) {
        if self.has_tag && !self.non_space {
            let kept: Vec<Raw> = raw
                .drain(self.start..)
                .filter(|r| !matches!(r, Raw::Text(..)))
                .collect();
            raw.extend(kept);
        }
        self.has_tag = false;
        self.non_space = false;
        self.start = raw.len();
    }
}

/// mustache.js's `compileTags` for a `{{=open close=}}` tag: split on whitespace, two parts.
fn compile_tags(value: &str) -> Result<(String, String), TemplateError> {
    let mut parts = value.split(is_js_space).filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(open), Some(close)) => Ok((open.to_string(), close.to_string())),
        // With fewer than two parts the value holds no whitespace, so `String(tags)` is it.
        _ => Err(TemplateError::InvalidTags {
            tags: value.to_string(),
        }),
    }
}

pub(super) fn parse(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut open = "{{".to_string();
    let mut close = "}}".to_string();
    let mut raw: Vec<Raw> = Vec::new();
    let mut lines = Lines {
        start: 0,
        has_tag: false,
        non_space: false,
    };
    let mut sections: Vec<String> = Vec::new();
    let mut sc = Scanner { src, pos: 0 };

    while !sc.eos() {
        // Text up to the next opening delimiter, split into lines.
        let text_start = sc.pos;
        let text = sc.scan_until(&open);
        let mut seg = text_start;
        for (i, c) in text.char_indices() {
            if !is_js_space(c) {
                lines.non_space = true;
            }
            if c == '\n' {
                let end = text_start + i + 1;
                raw.push(Raw::Text(seg, end));
                seg = end;
                lines.end_line(&mut raw);
            }
        }
        if seg < sc.pos {
            raw.push(Raw::Text(seg, sc.pos));
        }

        let tag_start = sc.pos;
        if !sc.scan_open(&open) {
            break;
        }
        lines.has_tag = true;

        let mut kind = sc.scan_tag_type();
        sc.skip_ws();
        let value = match kind {
            Some('=') => {
                let v = sc.scan_until_ws_lit("=");
                sc.scan_ws_lit("=");
                sc.scan_until_ws_lit(&close);
                v
            }
            Some('{') => {
                let v = sc.scan_until_ws_lit(&format!("}}{close}"));
                sc.scan_ws_lit("}");
                sc.scan_until_ws_lit(&close);
                kind = Some('&');
                v
            }
            _ => sc.scan_until_ws_lit(&close),
        };
        if !sc.scan_ws_lit(&close) {
            return Err(TemplateError::UnclosedTag {
                pos: utf16_pos(src, sc.pos),
            });
        }

        match kind {
            Some(c @ ('#' | '^')) => {
                if sections.len() >= MAX_SECTION_DEPTH {
                    return Err(TemplateError::NestedTooDeep {
                        pos: utf16_pos(src, tag_start),
                    });
                }
                sections.push(value.to_string());
                raw.push(Raw::Open {
                    name: value.to_string(),
                    inverted: c == '^',
                });
            }
            Some('/') => match sections.pop() {
                None => {
                    return Err(TemplateError::UnopenedSection {
                        name: value.to_string(),
                        pos: utf16_pos(src, tag_start),
                    });
                }
                Some(open_name) if open_name != value => {
                    return Err(TemplateError::UnclosedSection {
                        name: open_name,
                        pos: utf16_pos(src, tag_start),
                    });
                }
                Some(_) => raw.push(Raw::Close),
            },
            None | Some('&') => {
                lines.non_space = true;
                raw.push(Raw::Var {
                    name: value.to_string(),
                    escape: kind.is_none(),
                });
            }
            Some('=') => (open, close) = compile_tags(value)?,
            // Comments render nothing; partials render nothing because mustache.js is called
            // without partials. Both still count as tags for standalone lines (above).
            _ => {}
        }
    }
    lines.end_line(&mut raw);

    if let Some(name) = sections.pop() {
        return Err(TemplateError::UnclosedSection {
            name,
            pos: utf16_pos(src, sc.pos),
        });
    }
    Ok(nest(src, raw))
}

/// `squashTokens` + `nestTokens`: merge adjacent text, build the section tree (balanced, as
/// `parse` checked), iteratively.
fn nest(src: &str, raw: Vec<Raw>) -> Vec<Token> {
    let mut stack: Vec<(Name, bool, Vec<Token>)> = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    for r in raw {
        match r {
            Raw::Text(a, b) => {
                let t = src.get(a..b).unwrap_or("");
                if let Some(Token::Text(last)) = cur.last_mut() {
                    last.push_str(t);
                } else {
                    cur.push(Token::Text(t.to_string()));
                }
            }
            Raw::Var { name, escape } => cur.push(Token::Var {
                name: Name::new(&name),
                escape,
            }),
            Raw::Open { name, inverted } => {
                stack.push((Name::new(&name), inverted, std::mem::take(&mut cur)));
            }
            Raw::Close => {
                if let Some((name, inverted, parent)) = stack.pop() {
                    let children = std::mem::replace(&mut cur, parent);
                    cur.push(Token::Section {
                        name,
                        inverted,
                        children,
                    });
                }
            }
        }
    }
    cur
}
