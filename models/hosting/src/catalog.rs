//! Hosted models of one kind that are not codecs (context compressors' networks), picked by
//! name and version.

use std::sync::Arc;

use terse_core::{Error, ErrorKind, echo, pick_by_name};

/// A hosted network with its manifest facts.
pub struct Hosted<T> {
    /// The built network.
    pub item: Arc<T>,
    /// Model name in its manifest.
    pub name: String,
    /// Model version in its manifest.
    pub version: String,
    /// One line for people.
    pub description: String,
}

/// The hosted models of one task, sorted by name; the first is the default.
pub struct Catalog<T> {
    what: &'static str,
    hosted: Vec<Hosted<T>>,
}

impl<T> Catalog<T> {
    /// A catalog of `what` (for messages: the task name) holding `hosted`, sorted by name.
    pub fn new(what: &'static str, mut hosted: Vec<Hosted<T>>) -> Self {
        hosted.sort_by(|a, b| a.name.cmp(&b.name));
        Self { what, hosted }
    }

    /// The hosted models.
    pub fn iter(&self) -> impl Iterator<Item = &Hosted<T>> {
        self.hosted.iter()
    }

    /// The model called `name` (empty: the default) at `version` (empty: any):
    /// `Unavailable` when none is hosted, `NotFound` when the name or version is not.
    pub fn pick(&self, name: &str, version: &str) -> Result<&Hosted<T>, Error> {
        let found = pick_by_name(&self.hosted, name, |h| h.name.as_str(), self.what)?;
        // A version that is asked for must be the one served.
        if !version.is_empty() && version != found.version {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} `{}` has no version `{}` (this server has version {})",
                    self.what,
                    found.name,
                    echo(version),
                    found.version
                ),
            ));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted(name: &str) -> Hosted<()> {
        Hosted {
            item: Arc::new(()),
            name: name.into(),
            version: "2".into(),
            description: String::new(),
        }
    }

    #[test]
    fn picks_by_name_and_version() {
        let catalog = Catalog::new("keep-classifier", vec![hosted("b"), hosted("a")]);
        assert_eq!(catalog.pick("", "").unwrap().name, "a");
        assert_eq!(catalog.pick("b", "2").unwrap().name, "b");
        assert_eq!(
            catalog.pick("c", "").err().unwrap().kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            catalog.pick("b", "1").err().unwrap().kind,
            ErrorKind::NotFound
        );
        let empty = Catalog::<()>::new("sentence-encoder", Vec::new());
        assert_eq!(
            empty.pick("", "").err().unwrap().kind,
            ErrorKind::Unavailable
        );
    }
}
