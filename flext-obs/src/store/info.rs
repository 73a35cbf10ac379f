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
    /// Sets (or replaces) info series `name` with `labels`.
    pub(crate) fn set(&self, name: &str, labels: &[(&str, &str)], help: &str) -> Result<()> {
        validate::metric_name("store", "name", name)?;
        let labels = Labels::new(labels)?;
        let info = Info { labels, help: help.to_owned() };
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned(), info);
        Ok(())
    }

    /// Every info series, by name.
    pub(crate) fn all(&self) -> Vec<(String, Info)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Whether `name` is an info series (a plain series may not take its name).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains_key(name)
    }
}
