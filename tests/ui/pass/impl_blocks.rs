//! Impl blocks: inherent, trait, generic; every receiver form; overrides and skip.
#![deny(warnings)]

use flext_obs::flext_monitor;
use std::pin::Pin;

pub struct Store<T> {
    items: Vec<T>,
}

#[flext_monitor]
impl<T: Clone + Send + 'static> Store<T> {
    pub fn new() -> Self {
        Store { items: Vec::new() }
    }

    pub fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }

    pub fn boxed(self: Box<Self>) -> usize {
        self.items.len()
    }

    pub fn pinned(self: Pin<&mut Self>) -> usize {
        self.items.len()
    }

    #[flext_monitor(skip)]
    pub fn skipped(&self) -> usize {
        self.items.len()
    }

    #[flext_monitor(severity = "low", name = "store_clear")]
    pub fn clear(&mut self) -> Result<(), String> {
        if self.items.is_empty() {
            return Err("already empty".into());
        }
        self.items.clear();
        Ok(())
    }

    pub async fn len_later(&self) -> usize {
        self.items.len()
    }
}

pub trait Named {
    fn name(&self) -> String;
    fn describe(&self) -> String {
        self.name()
    }
}

#[flext_monitor(service = "naming")]
impl<T> Named for Store<T> {
    fn name(&self) -> String {
        "store".into()
    }
}

fn main() {
    let mut store: Store<u8> = Store::new();
    store.push(1);
    let _ = store.get(0);
    let _ = store.skipped();
    let _ = store.clear();
    let _ = Pin::new(&mut store).pinned();
    let _ = store.describe();
    let _ = store.len_later();
    let _ = Box::new(Store::<u8>::new()).boxed();
    let _ = store.into_items();
}
