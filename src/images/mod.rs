//! Meal images from Unsplash: photos found per dish name (cached 30 days),
//! within an hourly request window shared by every worker, with the
//! attribution and download events the Unsplash API guidelines require.
//!
//! - `settings` the UNSPLASH_* settings and the client they make
//! - `unsplash` the API client: search, download events, [`Photo`]
//! - `store`    every statement: search cache, rate window, downloads
//! - `attach`   [`find_photos`] and [`track_download`] for the meal images job

pub mod attach;
pub mod settings;
pub mod store;
pub mod unsplash;

pub use attach::{Found, ImagesError, Tracked, find_photos, track_download};
pub use settings::UnsplashSettings;
pub use unsplash::{Photo, Reply, Unsplash, UnsplashError};
