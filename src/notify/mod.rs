//! Push notifications from the outbox: `store` owns the outbox SQL, `expo`
//! talks to the Expo push API, `delivery` sends due rows in batches and
//! records what happened, `supervisor` restarts the loop when it dies.
//! Delivery is at least once: a row is marked sent only after Expo
//! answered, so a crash in between sends it again.

pub mod delivery;
pub mod expo;
pub mod store;
pub mod supervisor;
