//! Mustache templates rendered exactly as mustache.js 4.2.0 renders them, but safely.
//!
//! Unleash renders webhook body templates with `Mustache.render(template, view)` from
//! mustache.js 4.2.0. Users' existing templates must keep producing the same bytes, so this is a
//! port of that library's parser (`parseTemplate` with its regex scanner, standalone-line
//! whitespace stripping, set delimiters, comments, sections) and renderer (context stack,
//! dotted-name lookup, HTML escaping, JavaScript truthiness and `String(v)` printing). No Rust
//! Mustache crate matches it, and the `mustache` crate panics on some data and reads partials
//! from disk.
//!
//! Safety, on any template and any view: nothing panics, partials never touch the filesystem
//! (they always render empty, as mustache.js does when no partials are given), section nesting
//! is limited to [`MAX_SECTION_DEPTH`](error::MAX_SECTION_DEPTH) (so recursion is bounded), and rendering stops with an
//! error past [`Limits`] on output size and work (nested sections over arrays multiply).
//!
//! # Known differences from mustache.js 4.2.0
//!
//! None on the conformance corpus (83/83). Outside it, deliberately or because JavaScript's
//! object model is only partly modelled:
//! - Sections nested deeper than [`MAX_SECTION_DEPTH`](error::MAX_SECTION_DEPTH) are a compile error, and rendering past
//!   [`Limits`] is an error; mustache.js has no such limits (it would exhaust its stack or
//!   memory instead).
//! - Values are never functions, so there are no lambdas / higher-order sections.
//! - JavaScript prototype properties: modelled are `Object.prototype`'s `constructor`,
//!   `toString`, `hasOwnProperty`, `valueOf`, `isPrototypeOf` and `propertyIsEnumerable`;
//!   `Array.prototype`'s `toString` and `constructor`; and `Date.prototype`'s `constructor`
//!   (`Date()` as a function: the current time as text), getters (`getTime`, `valueOf`,
//!   `get[UTC]FullYear/Month/Date/Day/Hours/Minutes/Seconds/Milliseconds`,
//!   `getTimezoneOffset`, `getYear`) and printers (`toString`, `toISOString`, `toUTCString`,
//!   `toGMTString`, `toDateString`, `toTimeString`), each called with the innermost context as
//!   `this` like mustache.js does, including the TypeErrors V8 throws. Every other inherited
//!   property — other `Array`/`String`/`Number`/`Boolean`/`Function` prototype members
//!   (`list.join`, `s.toUpperCase`, `n.toFixed`, `f.name`), `__proto__` (other than as an own
//!   key), `__defineGetter__` and friends, `toLocaleString`, `Date` setters, `toJSON` and
//!   `toLocale*` — is treated as absent, so the lookup falls through to outer contexts and
//!   prints empty where JavaScript would find a function and call it. Reaching them needs a
//!   template written to probe JavaScript internals; each is cheap to add if ever needed.
//! - `valueOf` on a primitive context gives a wrapper object in JavaScript: always truthy, as
//!   here; but used as a section context it behaves as the primitive for lookups inside it
//!   (JavaScript would find the wrapper's prototype members there, and name it
//!   `[object String]` in error messages).
//! - JavaScript strings are UTF-16: `{{s.0}}` on a string starting with an astral character
//!   yields a lone surrogate, which a Rust string cannot hold; it prints U+FFFD (also inside
//!   error messages). Node would also send U+FFFD for a lone surrogate in a UTF-8 body, but two
//!   adjacent halves printed by two tags would rejoin there.
//!
//! Reproduced although odd: `String(v)` of an object with an own `toString` key throws
//! `Cannot convert object to primitive value` (values are never callable), and mustache.js's
//! lookup cache breaks after a `hasOwnProperty` or `__proto__` lookup that finds data (see
//! `Context` in render.rs), making later lookups in that context throw.
//!
//! The parts: [`error`] holds what can go wrong and the bounds ([`Limits`]); [`parser`] is
//! mustache.js's `parseTemplate`; [`builtins`] is JavaScript property access as far as a
//! template can reach it (the modelled prototype members, `Date` methods); [`render`] is
//! mustache.js's `Context` and `Writer.renderTokens`.

use crate::core::js::Value;

mod builtins;
mod error;
mod parser;
mod render;

// The property tests (src/tests/properties.rs) read the nesting bound from outside.
#[cfg(test)]
pub use error::MAX_SECTION_DEPTH;
pub use error::{Limits, TemplateError};

use parser::Token;

/// A compiled template: parse once, render many times (from any thread).
#[derive(Debug, Clone)]
pub struct Template {
    tokens: Vec<Token>,
}

impl Template {
    /// Parses `src` as mustache.js's `parseTemplate` does (default delimiters `{{ }}`).
    ///
    /// Errors carry mustache.js's messages and UTF-16 positions, e.g. `Unclosed tag at 18`;
    /// in addition, sections nested deeper than [`MAX_SECTION_DEPTH`](error::MAX_SECTION_DEPTH) are an error.
    pub fn compile(src: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            tokens: parser::parse(src)?,
        })
    }

    /// Renders against `view` (the root context) with the default [`Limits`].
    pub fn render(&self, view: &Value) -> Result<String, TemplateError> {
        self.render_with_limits(view, &Limits::default())
    }

    /// Renders against `view` with explicit [`Limits`].
    pub fn render_with_limits(
        &self,
        view: &Value,
        limits: &Limits,
    ) -> Result<String, TemplateError> {
        render::render(&self.tokens, view, limits, true)
    }

    /// Renders as mustache.js does with an identity `escape` (`escape: s => s`), the way
    /// Unleash's Markdown formatter renders its messages: `{{x}}` prints as `{{{x}}}` does,
    /// and nothing else changes.
    pub(crate) fn render_unescaped(&self, view: &Value) -> Result<String, TemplateError> {
        render::render(&self.tokens, view, &Limits::default(), false)
    }
}

#[cfg(test)]
mod tests;
