//! Picking one hosted thing by name: the one rule every registry and catalog follows.

use crate::{Error, ErrorKind, echo};

/// The item of `items` whose `name_of` is `name`; an empty `name` picks the first (the
/// default). `Unavailable` when there are no items, `NotFound` naming the hosted ones when none
/// is called `name`. `what` names the kind in messages ("image codec", "keep-classifier").
pub fn pick_by_name<'a, T>(
    items: &'a [T],
    name: &str,
    name_of: impl Fn(&T) -> &str,
    what: &str,
) -> Result<&'a T, Error> {
    let Some(first) = items.first() else {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "no {what} is loaded (none is in the model repository or selected by the configuration)"
            ),
        ));
    };
    if name.is_empty() {
        return Ok(first);
    }
    items
        .iter()
        .find(|item| name_of(item) == name)
        .ok_or_else(|| {
            let available: Vec<&str> = items.iter().map(&name_of).collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "{what} `{}` is not hosted (available: {})",
                    echo(name),
                    available.join(", ")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_default_the_named_or_says_what_is_there() {
        let items = ["a".to_string(), "b".to_string()];
        let name = String::as_str;
        assert_eq!(pick_by_name(&items, "", name, "thing").unwrap(), "a");
        assert_eq!(pick_by_name(&items, "b", name, "thing").unwrap(), "b");
        let err = pick_by_name(&items, "c", name, "thing").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(
            err.message
                .contains("thing `c` is not hosted (available: a, b)"),
            "{err}"
        );
        let none: [String; 0] = [];
        let err = pick_by_name(&none, "", name, "thing").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
    }
}
