//! Typed confirmation before destructive actions.

use std::io::{BufRead, Write};

use crate::error::{Error, Result};

/// Ask `question` and require the user to type `expected` exactly.
///
/// Returns `Ok(true)` when confirmed, `Ok(false)` when the answer differs. Callers must check
/// [`crate::Context::interactive`] first: without a terminal there is nobody to ask, and
/// the caller should demand `--yes` instead (see [`require_confirmation`]).
pub fn confirm_typed(
    question: &str,
    expected: &str,
    input: &mut impl BufRead,
    prompt_out: &mut impl Write,
) -> Result<bool> {
    write!(prompt_out, "{question}\nType {expected:?} to continue: ")?;
    prompt_out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}

/// The standard gate: `--yes` passes; on a terminal ask for `expected` on stderr/stdin;
/// otherwise fail with a message telling the user to pass `--yes`.
pub fn require_confirmation(
    yes: bool,
    interactive: bool,
    question: &str,
    expected: &str,
) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !interactive {
        return Err(Error::Aborted(format!(
            "{question}\nrefusing without confirmation: stdin is not a terminal; pass --yes to proceed"
        )));
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut err = std::io::stderr().lock();
    if confirm_typed(question, expected, &mut input, &mut err)? {
        Ok(())
    } else {
        Err(Error::Aborted(
            "aborted: confirmation did not match; nothing was changed".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_confirmation_must_match_exactly() {
        let mut out = Vec::new();
        assert!(confirm_typed("Delete?", "yes", &mut "yes\n".as_bytes(), &mut out).unwrap());
        assert!(!confirm_typed("Delete?", "yes", &mut "y\n".as_bytes(), &mut out).unwrap());
        assert!(!confirm_typed("Delete?", "yes", &mut "".as_bytes(), &mut out).unwrap());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Type \"yes\" to continue")
        );
    }

    #[test]
    fn non_interactive_without_yes_is_refused() {
        let err = require_confirmation(false, false, "Delete 2 claims?", "yes").unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
        assert!(require_confirmation(true, false, "Delete?", "yes").is_ok());
    }
}
