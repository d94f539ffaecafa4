//! What can go wrong in compiling or rendering a template, and the bounds that turn a
//! hostile template into an error instead of a crash.

use std::fmt;

/// Deepest section nesting a template may have; deeper is a compile error.
pub const MAX_SECTION_DEPTH: usize = 200;

/// Bounds on one render, so that a hostile template cannot exhaust memory or time: nested
/// sections over arrays multiply (`{{#a}}{{#a}}…` over a 10-element array 30 levels deep would
/// otherwise run for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest output in bytes.
    pub max_output_bytes: usize,
    /// Most work units: tokens rendered, contexts searched, object keys and string units
    /// scanned by lookups, array items visited.
    pub max_steps: u64,
}

impl Default for Limits {
    /// 64 MiB of output and 20 million steps: far above any real webhook body, and a few tenths
    /// of a second of work at most.
    fn default() -> Self {
        Limits {
            max_output_bytes: 64 << 20,
            max_steps: 20_000_000,
        }
    }
}

/// A template that failed to compile or render.
///
/// `Display` gives the message as mustache.js / V8 word it (without the `Error: ` prefix);
/// [`TemplateError::js_message`] adds the JavaScript error name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A tag is not closed. `pos`: UTF-16 offset where the scanner stopped.
    UnclosedTag {
        /// UTF-16 offset, as mustache.js reports it.
        pos: usize,
    },
    /// A section is not closed, or is closed by a tag with another name.
    UnclosedSection {
        /// The open section's name.
        name: String,
        /// UTF-16 offset of the mismatched closing tag, or of the end of the template.
        pos: usize,
    },
    /// A closing tag without an open section.
    UnopenedSection {
        /// The closing tag's name.
        name: String,
        /// UTF-16 offset of the closing tag.
        pos: usize,
    },
    /// A set-delimiter tag that does not give two delimiters.
    InvalidTags {
        /// What the tag held.
        tags: String,
    },
    /// Sections nested deeper than [`MAX_SECTION_DEPTH`] (not in mustache.js).
    NestedTooDeep {
        /// UTF-16 offset of the section tag that went too deep.
        pos: usize,
    },
    /// A JavaScript `TypeError` mustache.js would throw while rendering (e.g. calling a `Date`
    /// method on something that is not a date, or looking up a name in a `null` context).
    TypeError {
        /// V8's message.
        message: String,
    },
    /// A JavaScript `RangeError` (e.g. `toISOString` of an invalid date).
    RangeError {
        /// V8's message.
        message: String,
    },
    /// The output grew beyond [`Limits::max_output_bytes`] (not in mustache.js).
    OutputTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// Rendering took more than [`Limits::max_steps`] (not in mustache.js).
    TooMuchWork {
        /// The limit that was hit.
        limit: u64,
    },
}

impl TemplateError {
    /// The JavaScript error class mustache.js would throw: `Error`, `TypeError` or
    /// `RangeError` (`Error` for this crate's own limits).
    pub fn js_name(&self) -> &'static str {
        match self {
            TemplateError::TypeError { .. } => "TypeError",
            TemplateError::RangeError { .. } => "RangeError",
            _ => "Error",
        }
    }

    /// `String(error)` in JavaScript: `Error: Unclosed tag at 18`,
    /// `TypeError: this is not a Date object.`.
    pub fn js_message(&self) -> String {
        format!("{}: {}", self.js_name(), self)
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::UnclosedTag { pos } => write!(f, "Unclosed tag at {pos}"),
            TemplateError::UnclosedSection { name, pos } => {
                write!(f, "Unclosed section \"{name}\" at {pos}")
            }
            TemplateError::UnopenedSection { name, pos } => {
                write!(f, "Unopened section \"{name}\" at {pos}")
            }
            TemplateError::InvalidTags { tags } => write!(f, "Invalid tags: {tags}"),
            TemplateError::NestedTooDeep { pos } => write!(
                f,
                "Sections nested deeper than {MAX_SECTION_DEPTH} levels at {pos}"
            ),
            TemplateError::TypeError { message } | TemplateError::RangeError { message } => {
                f.write_str(message)
            }
            TemplateError::OutputTooLarge { limit } => {
                write!(f, "Rendered output larger than {limit} bytes")
            }
            TemplateError::TooMuchWork { limit } => {
                write!(f, "Rendering needed more than {limit} steps")
            }
        }
    }
}

impl std::error::Error for TemplateError {}
