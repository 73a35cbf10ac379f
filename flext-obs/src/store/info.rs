//! Info series: a gauge that always reads 1 and whose labels are replaced as a whole
//! (`build_info`). Kept apart from the series map, so a reader sees exactly one series per info
//! name at every moment: the old labels or the new ones, never both and never none.

use super::key::Labels;
use crate::entity::validate;
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// One info series: its labels and help text.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    pub(crate) labels: Labels,
    pub(crate) help: String,
}

/// The store's info series, by name.
#[derive(Debug, Default)]
pub(crate) struct Infos(Mutex<BTreeMap<String, Info>>);

impl Infos {
    /// Validates an info series' name and labels.
    pub(crate) fn check(name: &str, labels: &[(&str, &str)]) -> Result<Labels> {
        validate::metric_name("store", "name", name)?;
        Labels::new(labels)
    }

    /// Sets (or replaces) info series `name` with `labels` (checked by [`Infos::check`], its
    /// name claimed by the store).
    pub(crate) fn set(&self, name: &str, labels: Labels, help: &str) {
        let info = Info { labels, help: help.to_owned() };
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned(), info);
    }

    /// Every info series, by name.
    pub(crate) fn all(&self) -> Vec<(String, Info)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
