//! Input echoed in error messages, cut so that a client's 100,000-character task name or id
//! does not come back whole in every error about it.

use std::fmt;

/// Most characters of an input an error message repeats.
pub(crate) const MAX_ECHO_CHARS: usize = 200;

/// Most characters of an error message: past this, whatever it repeats (a parser's message
/// quoting a field name, say) is cut.
pub(crate) const MAX_MESSAGE_CHARS: usize = 2000;

/// `message`, cut past [`MAX_MESSAGE_CHARS`] and marked so.
pub(crate) fn bounded(message: String) -> String {
    match cut(&message, MAX_MESSAGE_CHARS) {
        None => message,
        Some((kept, chars)) => format!("{kept}… ({chars} characters, cut)"),
    }
}

/// The first `max` characters of `text` and how many it has, if it has more.
fn cut(text: &str, max: usize) -> Option<(&str, usize)> {
    let (end, _) = text.char_indices().nth(max)?;
    Some((&text[..end], text.chars().count()))
}

/// `input` as an error message repeats it: quoted and escaped as `{:?}` writes it, and past
/// [`MAX_ECHO_CHARS`] cut, with how long it was: `"aaaa…"… (100000 characters, cut)`.
pub(crate) fn echo(input: &str) -> Echo<'_> {
    Echo(input)
}

/// What [`echo`] returns: displays the input quoted, and cut if it is long.
pub(crate) struct Echo<'a>(&'a str);

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match cut(self.0, MAX_ECHO_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((kept, chars)) => write!(f, "{kept:?}… ({chars} characters, cut)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole_and_long_input_is_cut_and_marked() {
        assert_eq!(echo("fib").to_string(), "\"fib\"");
        assert_eq!(echo("a\"b").to_string(), "\"a\\\"b\"");
        let exact = "é".repeat(MAX_ECHO_CHARS);
        assert_eq!(echo(&exact).to_string(), format!("\"{exact}\""));
        let long = "é".repeat(100_000);
        let echoed = echo(&long).to_string();
        assert_eq!(
            echoed,
            format!(
                "\"{}\"… (100000 characters, cut)",
                "é".repeat(MAX_ECHO_CHARS)
            )
        );
        let message = "x".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(bounded(message.clone()), message);
        let cut = bounded(format!("{message}yz"));
        assert_eq!(cut, format!("{message}… (2002 characters, cut)"));
    }
}
