//! What the drills' option parsers share: `--name value` or `--name=value`, and integers
//! in a range, each refusal a usage error naming the option.

use std::borrow::Cow;

use crate::Error;

/// The option `arg` (one of `allowed`) and its value, inline or the next argument.
pub fn valued<'a>(
    arg: &str,
    rest: &mut impl Iterator<Item = Cow<'a, str>>,
    allowed: &[&str],
    command: &str,
) -> Result<(String, String), Error> {
    let (name, inline) = match arg.split_once('=') {
        Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
        None => (arg.to_owned(), None),
    };
    if !allowed.contains(&name.as_str()) {
        return Err(Error::Usage(format!(
            "unexpected argument `{arg}` for `{command}`"
        )));
    }
    let value = match inline {
        Some(value) => value,
        None => rest
            .next()
            .map(Cow::into_owned)
            .ok_or_else(|| Error::Usage(format!("`{name}` needs a value")))?,
    };
    Ok((name, value))
}

/// `value` as an integer from `min` to `max`, for the option `name`.
pub fn integer(name: &str, value: &str, min: u64, max: u64) -> Result<u64, Error> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            Error::Usage(format!(
                "`{name}` expects an integer from {min} to {max}, got `{value}`"
            ))
        })
}
