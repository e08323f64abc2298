//! The in-memory backend: records kept in a shared vector. NOT durable
//! across a process crash; for unit tests (which restart a replica
//! in-process from the same vector) and for experiments without a disk.

use super::{Durability, DurabilityError, DurableFuture};
use std::sync::{Arc, Mutex, PoisonError};

/// Records in memory; clones share the vector.
#[derive(Clone, Debug)]
pub struct MemDurability<R> {
    records: Arc<Mutex<Vec<R>>>,
}

impl<R> Default for MemDurability<R> {
    fn default() -> Self {
        MemDurability {
            records: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<R: Clone> MemDurability<R> {
    pub fn new() -> Self {
        MemDurability::default()
    }

    /// Every record submitted so far, in order.
    pub fn records(&self) -> Vec<R> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<R: Clone + Send + 'static> Durability<R> for MemDurability<R> {
    fn recover(&mut self) -> Result<Vec<R>, DurabilityError> {
        Ok(self.records())
    }

    fn submit(&mut self, records: Vec<R>) -> DurableFuture {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(records);
        Box::pin(std::future::ready(Ok(())))
    }
}
